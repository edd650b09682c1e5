#!/usr/bin/env bash
# Start-up cost of getting `true` into a network namespace as UID 65534 with
# only ambient CAP_NET_RAW under no_new_privs and netshim's seccomp profile
# (nsenter: none), three ways, in one run:
#
#   netshim   netshim run --target-netns netns:NS -- true   (libcontainer)
#   runc      runc run of an equivalent bundle               (same namespaces,
#             PID namespace and fresh /proc included, mounts, user,
#             capabilities and no_new_privs as netshim's spec)
#   nsenter   nsenter --net=… setpriv --reuid … --ambient-caps +net_raw true
#             (the by-hand floor: no mount namespace, no state, no checks)
#
# The three are interleaved round by round so machine noise hits them alike;
# what matters is the ratio. Needs root (the drop-uid plan, runc).
#
#   sudo ./integration/bench/startup.sh [ROUNDS]      (default 40)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-40}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
for t in runc nsenter setpriv jq; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install runc util-linux jq)" >&2; exit 2; }
done

cargo build --release -q -p netshim
NETSHIM=$PWD/target/release/netshim

NS=netshim-bench-$$
WORK=$(mktemp -d)
cleanup() {
  ip netns del "$NS" 2>/dev/null || true
  runc --root "$WORK/runc" list -q 2>/dev/null | while read -r id; do runc --root "$WORK/runc" delete -f "$id"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up

# An OCI bundle equivalent to the one netshim synthesizes (see runtime/src/spec.rs).
mkdir -p "$WORK/bundle/rootfs" "$WORK/runc"
for e in /*; do
  n=${e#/}
  if [ -L "$e" ]; then ln -s "$(readlink "$e")" "$WORK/bundle/rootfs/$n"; fi
done
binds=$(for e in /*; do
  n=${e#/}
  [ -L "$e" ] && continue
  [ -d "$e" ] || continue
  case $n in dev|proc|sys) continue;; esac
  printf '{"destination":"/%s","type":"bind","source":"/%s","options":["rbind"]},' "$n" "$n"
done)
cat >"$WORK/bundle/config.json" <<EOF
{
  "ociVersion": "1.0.2",
  "root": {"path": "rootfs", "readonly": false},
  "process": {
    "terminal": false,
    "user": {"uid": 65534, "gid": 65534},
    "args": ["true"],
    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/"],
    "cwd": "/",
    "noNewPrivileges": true,
    "capabilities": {
      "bounding": ["CAP_NET_RAW"], "effective": ["CAP_NET_RAW"], "permitted": ["CAP_NET_RAW"],
      "inheritable": ["CAP_NET_RAW"], "ambient": ["CAP_NET_RAW"]
    }
  },
  "mounts": [
    ${binds}
    {"destination":"/proc","type":"proc","source":"proc","options":["nosuid","nodev","noexec"]},
    {"destination":"/sys","type":"bind","source":"/sys","options":["rbind","nosuid","nodev","noexec"]},
    {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},
    {"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620"]},
    {"destination":"/dev/shm","type":"tmpfs","source":"shm","options":["nosuid","noexec","nodev","mode=1777","size=65536k"]}
  ],
  "linux": {
    "namespaces": [{"type": "mount"}, {"type": "pid"}, {"type": "network", "path": "/run/netns/$NS"}],
    "cgroupsPath": "/netshim-bench/runc",
    "maskedPaths": [], "readonlyPaths": [],
    "seccomp": $("$NETSHIM" seccomp-profile)
  }
}
EOF
jq -e . "$WORK/bundle/config.json" >/dev/null

run_netshim() { "$NETSHIM" run --target-netns "netns:$NS" -- true; }
RUNC_N=0
run_runc() { RUNC_N=$((RUNC_N + 1)); runc --root "$WORK/runc" run --bundle "$WORK/bundle" "bench-$RUNC_N" </dev/null; }
run_nsenter() {
  nsenter --net="/run/netns/$NS" setpriv --reuid 65534 --regid 65534 --clear-groups \
    --inh-caps -all,+net_raw --ambient-caps +net_raw --bounding-set -all,+net_raw --no-new-privs true
}

# Each must really give the process what it claims before we time it.
check() {
  local name=$1
  shift
  local out
  out=$("$@")
  grep -q "^CapAmb:.*0000000000002000" <<<"$out" || { echo "$name: CapAmb is not NET_RAW: $out" >&2; exit 1; }
  grep -q "^NoNewPrivs:.*1" <<<"$out" || { echo "$name: no_new_privs is off" >&2; exit 1; }
  grep -q "^Uid:.*65534" <<<"$out" || { echo "$name: not UID 65534" >&2; exit 1; }
}
check netshim "$NETSHIM" run --target-netns "netns:$NS" -- cat /proc/self/status
sed -i 's/"args": \["true"\]/"args": ["cat", "\/proc\/self\/status"]/' "$WORK/bundle/config.json"
check runc runc --root "$WORK/runc" run --bundle "$WORK/bundle" bench-check
sed -i 's/"args": \["cat", "\/proc\/self\/status"\]/"args": ["true"]/' "$WORK/bundle/config.json"
check nsenter nsenter --net="/run/netns/$NS" setpriv --reuid 65534 --regid 65534 --clear-groups \
  --inh-caps -all,+net_raw --ambient-caps +net_raw --bounding-set -all,+net_raw --no-new-privs cat /proc/self/status

declare -A T
for tool in netshim runc nsenter; do T[$tool]=""; done
for _ in 1 2 3; do run_netshim; run_runc; run_nsenter; done # warm caches
for _ in $(seq 1 "$ROUNDS"); do
  for tool in netshim runc nsenter; do
    s=$(date +%s%N)
    "run_$tool"
    e=$(date +%s%N)
    T[$tool]+="$(((e - s) / 1000)) "
  done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mean() { tr ' ' '\n' | grep . | awk '{s+=$1} END {printf "%.0f", s/NR}'; }
# The spread: the 25th and 75th percentiles (nearest rank).
quartiles() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {q1=int((NR+3)/4); q3=int((3*NR+3)/4); print a[q1] "–" a[q3]}'; }
RUNC_MED=$(median <<<"${T[runc]}")
printf '\nstart-up of `true` as UID 65534 with ambient CAP_NET_RAW, %s rounds, interleaved (%s, %s cores)\n\n' \
  "$ROUNDS" "$(uname -r)" "$(nproc)"
printf '| %-8s | %12s | %15s | %12s | %10s |\n' tool "median (µs)" "p25–p75 (µs)" "mean (µs)" "÷ runc"
printf '|----------|-------------:|----------------:|-------------:|-----------:|\n'
for tool in netshim runc nsenter; do
  med=$(median <<<"${T[$tool]}")
  printf '| %-8s | %12s | %15s | %12s | %10s |\n' "$tool" "$med" "$(quartiles <<<"${T[$tool]}")" "$(mean <<<"${T[$tool]}")" \
    "$(awk -v a="$med" -v b="$RUNC_MED" 'BEGIN {printf "%.2f", a/b}')"
done
printf '\nnetshim %s, runc %s, util-linux %s\n' "$("$NETSHIM" --version | cut -d' ' -f2)" \
  "$(runc --version | head -1 | cut -d' ' -f3)" "$(nsenter --version | awk '{print $NF}')"
