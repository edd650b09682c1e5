#!/usr/bin/env bash
# Start-up cost of the join-userns plan: an unprivileged user gets `true`
# into the network namespace of a user namespace it owns (as a rootless
# container's) as UID 65534 with only ambient CAP_NET_RAW under
# no_new_privs, two ways, interleaved in one run:
#
#   netshim   netshim run --target-netns pid:PID -- true
#   nsenter   nsenter -U --preserve-credentials -n -t PID setpriv --reuid 65534 …
#             --ambient-caps +net_raw --no-new-privs true   (the by-hand floor)
#
# The target is `unshare --user --map-auto --map-root-user --net sleep`,
# started as USER (which needs a range in /etc/subuid and /etc/subgid, and
# newuidmap: package uidmap), so that UID 65534 is mapped in it as in a
# rootless container. runc is not compared here: a rootless runc joining an
# existing user namespace needs a bundle per target that netshim does not
# make. Run as root; the measurements run as USER.
#
#   sudo ./integration/bench/startup-userns.sh [USER] [ROUNDS]   (default netshim-test, 40)
set -euo pipefail
cd "$(dirname "$0")/../.."
U=${1:-netshim-test}
ROUNDS=${2:-40}
[ "$(id -u)" = 0 ] || { echo "run as root (the measurements run as $U)" >&2; exit 2; }
id "$U" >/dev/null 2>&1 || { echo "no user $U: give one with a range in /etc/subuid (integration/run.sh makes netshim-test)" >&2; exit 2; }
grep -q "^$U:" /etc/subuid || { echo "$U has no range in /etc/subuid (usermod --add-subuids)" >&2; exit 2; }
command -v newuidmap >/dev/null || { echo "missing newuidmap (apt-get install uidmap)" >&2; exit 2; }

cargo build --release -q -p netshim
WORK=$(mktemp -d)
chmod 755 "$WORK"
cp target/release/netshim "$WORK/netshim"
NETSHIM=$WORK/netshim
runuser -u "$U" -- unshare --user --map-auto --map-root-user --net sleep 100000 &
HOLDER=$!
cleanup() {
  # The sleep, by its PID (runuser's child's child: unshare execs sleep).
  [ -n "${TPID:-}" ] && kill "$TPID" 2>/dev/null || true
  wait "$HOLDER" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 50); do
  TPID=$(cat "/proc/$HOLDER/task/$HOLDER/children" 2>/dev/null | awk '{print $1}')
  [ -n "$TPID" ] && [ "$(readlink "/proc/$TPID/ns/user")" != "$(readlink /proc/self/ns/user)" ] && break
  sleep 0.1
done
[ -n "$TPID" ] || { echo "the target did not start" >&2; exit 1; }

as_user() { runuser -u "$U" -- "$@"; }
FLOOR=(nsenter -U --preserve-credentials -n -t "$TPID" setpriv --reuid 65534 --regid 65534 --clear-groups
  --inh-caps -all,+net_raw --ambient-caps +net_raw --bounding-set -all,+net_raw --no-new-privs)
check() {
  local name=$1 out
  shift
  out=$(as_user "$@" cat /proc/self/status)
  grep -q "^CapAmb:.*0000000000002000" <<<"$out" || { echo "$name: CapAmb is not NET_RAW" >&2; exit 1; }
  grep -q "^NoNewPrivs:.*1" <<<"$out" || { echo "$name: no_new_privs is off" >&2; exit 1; }
  grep -q "^Uid:.*65534" <<<"$out" || { echo "$name: not UID 65534" >&2; exit 1; }
}
check netshim "$NETSHIM" run --target-netns "pid:$TPID" --
check nsenter "${FLOOR[@]}"
# netshim's stderr is read whole (never cut short by a pipe).
dbg=$(as_user "$NETSHIM" --debug run --target-netns "pid:$TPID" -- true 2>&1 >/dev/null || true)
plan=$(grep -o 'join-userns\|drop-uid' <<<"$dbg" | head -1 || true)

# One shell as USER runs every round, so runuser's own cost is not timed.
as_user env NETSHIM="$NETSHIM" TPID="$TPID" ROUNDS="$ROUNDS" bash -c '
  floor() { nsenter -U --preserve-credentials -n -t "$TPID" setpriv --reuid 65534 --regid 65534 --clear-groups \
    --inh-caps -all,+net_raw --ambient-caps +net_raw --bounding-set -all,+net_raw --no-new-privs true; }
  ns() { "$NETSHIM" run --target-netns "pid:$TPID" -- true; }
  for _ in 1 2 3; do ns; floor; done
  for _ in $(seq 1 "$ROUNDS"); do
    s=$(date +%s%N); ns; e=$(date +%s%N); echo "netshim $(((e - s) / 1000))"
    s=$(date +%s%N); floor; e=$(date +%s%N); echo "nsenter $(((e - s) / 1000))"
  done' >"$WORK/times"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ns=$(awk '$1 == "netshim" {print $2}' "$WORK/times")
fl=$(awk '$1 == "nsenter" {print $2}' "$WORK/times")
ratios=$(paste -d' ' <(echo "$ns") <(echo "$fl") | awk '{printf "%.2f\n", $1 / $2}')
printf '\njoin-userns start-up as %s (%s), %s interleaved rounds (%s, %s cores)\n\n' "$U" "plan ${plan:-?}" \
  "$ROUNDS" "$(uname -r)" "$(nproc)"
printf '| %-8s | %10s | %10s | %10s |\n' tool "median µs" "min µs" "max µs"
printf '|----------|-----------:|-----------:|-----------:|\n'
for t in netshim nsenter; do
  v=$([ $t = netshim ] && echo "$ns" || echo "$fl")
  printf '| %-8s | %10s | %10s | %10s |\n' "$t" "$(echo "$v" | median)" "$(echo "$v" | sort -n | head -1)" "$(echo "$v" | sort -n | tail -1)"
done
printf '\nnetshim ÷ floor per round: median %s, spread (p10–p90) %s–%s (goal: at most 3)\n' \
  "$(echo "$ratios" | median)" "$(echo "$ratios" | sort -n | awk '{a[NR]=$1} END {print a[int(NR*0.1)+1]}')" \
  "$(echo "$ratios" | sort -n | awk '{a[NR]=$1} END {print a[int(NR*0.9)]}')"
