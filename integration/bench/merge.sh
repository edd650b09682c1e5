#!/usr/bin/env bash
# The cost of several targets in one capture (issues: one capture across
# many containers; one unprivileged engine reads every target's rings): CPU
# per written packet of `netshim capture` with two and four targets against
# one target, at the same total rate, in one run.
#
# A generator namespace is joined by a veth pair to each of four capture
# namespaces (198.18.0.0/15). trafgen, pinned to CPU 0, sends 64-byte UDP
# frames at its full rate: into the first namespace only (one target), or
# shared by two or four (one trafgen process per target, all on CPU 0, so
# the total rate is the same). The capture, pinned to CPU 1, writes pcapng
# to tmpfs. CPU is the user and system time of the whole netshim process
# tree (netshim and its one engine), per packet written; "dropped" is
# offered minus written; "late" the packets the engine counted as written
# out of timestamp order, and "ordered" capinfos' own check of the file
# (-o). Rounds are interleaved; the table shows medians and the spread
# (min–max) of the ratios.
#
#   sudo ./integration/bench/merge.sh [SECONDS] [ROUNDS]   (default 5, 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-5}
ROUNDS=${2:-5}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
for t in trafgen capinfos taskset; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install netsniff-ng tshark util-linux)" >&2; exit 2; }
done
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs (generator and capture pinned apart)" >&2; exit 2; }

cargo build --release -q -p netshim
NETSHIM=$PWD/target/release/netshim

G=nsmg-$$ C1=nsm1-$$ C2=nsm2-$$ C3=nsm3-$$ C4=nsm4-$$ OUT=/dev/shm/netshim-merge-$$
mkdir -p "$OUT"
GENS=()
cleanup() {
  for g in "${GENS[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
  for n in "$G" "$C1" "$C2" "$C3" "$C4"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$OUT"
}
trap cleanup EXIT
ip netns add "$G"
for k in 1 2 3 4; do
  C=nsm$k-$$
  ip netns add "$C"
  ip link add vg$k netns "$G" type veth peer name vc$k netns "$C"
  ip -n "$G" addr add 198.18.$k.2/30 dev vg$k
  ip -n "$C" addr add 198.18.$k.1/30 dev vc$k
  ip -n "$G" link set vg$k up
  ip -n "$C" link set vc$k up
  ip -n "$C" link set lo up
  DMAC=$(ip -n "$C" -o link show vc$k | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
  SMAC=$(ip -n "$G" -o link show vg$k | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
  cat >"$OUT/udp$k.cfg" <<EOF
{ eth(da=$DMAC, sa=$SMAC), ipv4(saddr=198.18.$k.2, daddr=198.18.$k.1, ttl=64), udp(sp=4000, dp=5000), fill(0x41, 18) }
EOF
done

rx() { ip netns exec "nsm$1-$$" cat "/sys/class/net/vc$1/statistics/rx_packets"; }
# shellcheck source=integration/bench/lib.sh
source integration/bench/lib.sh

declare -A OFFERED WRITTEN USER SYS LATE ORDERED
# measure NAME IFACES... -- COMMAND...
measure() {
  local name=$1
  shift
  local ks=()
  while [ "$1" != -- ]; do ks+=("$1"); shift; done
  shift
  taskset -c 1 "$@" >"$OUT/$name.stdout" 2>"$OUT/$name.stderr" &
  local pid=$!
  sleep 2
  local u0 s0 u1 s1 r0=0 r1=0
  read -r u0 s0 < <(tree_ticks "$pid")
  for k in "${ks[@]}"; do r0=$((r0 + $(rx "$k"))); done
  GENS=()
  for k in "${ks[@]}"; do
    setsid ip netns exec "$G" taskset -c 0 trafgen --dev "vg$k" --conf "$OUT/udp$k.cfg" -P 1 -q >/dev/null 2>&1 &
    GENS+=($!)
  done
  sleep "$SECS"
  for g in "${GENS[@]}"; do kill -INT -- "-$g"; wait "$g" 2>/dev/null || true; done
  GENS=()
  sleep 1
  for k in "${ks[@]}"; do r1=$((r1 + $(rx "$k"))); done
  read -r u1 s1 < <(tree_ticks "$pid")
  kill -INT "$pid"
  wait "$pid" 2>/dev/null || true
  OFFERED[$name]+="$((r1 - r0)) "
  USER[$name]+="$((u1 - u0)) "
  SYS[$name]+="$((s1 - s0)) "
  WRITTEN[$name]+="$(capinfos -c -M "$OUT/$name.pcapng" | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}') "
  LATE[$name]+="$(sed -n 's/^netshim: \([0-9]*\) packet(s) were written out of timestamp order.*/\1/p' "$OUT/$name.stderr" | head -1 | grep . || echo 0) "
  ORDERED[$name]+="$(capinfos -o -M "$OUT/$name.pcapng" | awk -F: '/Strict time order/ {gsub(/ /,"",$2); print $2}') "
  rm -f "$OUT/$name.pcapng"
}

for _ in $(seq 1 "$ROUNDS"); do
  measure one 1 -- "$NETSHIM" capture --target-netns "netns:$C1" -i vc1 -w "$OUT/one.pcapng" udp
  measure oneany 1 -- "$NETSHIM" capture --target-netns "netns:$C1" -i any -w "$OUT/oneany.pcapng" udp
  measure onesealed 1 -- "$NETSHIM" capture --sealed --target-netns "netns:$C1" -i any -w "$OUT/onesealed.pcapng" udp
  measure two 1 2 -- "$NETSHIM" capture --target-netns "netns:$C1" --target-netns "netns:$C2" -i any -w "$OUT/two.pcapng" udp
  measure four 1 2 3 4 -- "$NETSHIM" capture --target-netns "netns:$C1" --target-netns "netns:$C2" \
    --target-netns "netns:$C3" --target-netns "netns:$C4" -i any -w "$OUT/four.pcapng" udp
done

list() { tr ' ' '\n' <<<"$1" | grep .; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# ns per written packet, per round.
per_packet() { paste -d' ' <(list "$1") <(list "$2") <(list "$3") | awk '{ if ($3 > 0) printf "%.1f\n", ($1 + $2) * 1e7 / $3 }'; }
declare -A PER
for n in one oneany onesealed two four; do
  PER[$n]=$(per_packet "${USER[$n]}" "${SYS[$n]}" "${WRITTEN[$n]}")
done
# Per round: a ÷ b of the per-packet CPU.
ratio() { paste -d' ' <(echo "${PER[$1]}") <(echo "${PER[$2]}") | awk '{printf "%.2f\n", $1 / $2}'; }
spread() { printf 'median %s, spread %s–%s' "$(echo "$1" | median)" "$(echo "$1" | sort -n | head -1)" "$(echo "$1" | sort -n | tail -1)"; }

printf '\n64-byte UDP from trafgen (CPU 0), capture on CPU 1, %ss each, pcapng on tmpfs;\n' "$SECS"
printf '%s interleaved rounds (%s, %s cores, netshim %s)\n\n' "$ROUNDS" "$(uname -r)" "$(nproc)" \
  "$("$NETSHIM" --version | cut -d' ' -f2)"
printf '| %-22s | %10s | %10s | %9s | %5s | %8s | %12s |\n' capture offered written dropped "late" ordered "CPU ns/pkt"
printf '|------------------------|-----------:|-----------:|----------:|------:|---------:|-------------:|\n'
for n in one oneany onesealed two four; do
  case $n in
    one) label="one, -i vc1" ;; oneany) label="one, -i any" ;; onesealed) label="one, --sealed, -i any" ;;
    two) label="two, -i any" ;; *) label="four, -i any" ;;
  esac
  printf '| %-22s | %10s | %10s | %9s | %5s | %8s | %12s |\n' "$label" \
    "$(list "${OFFERED[$n]}" | median)" "$(list "${WRITTEN[$n]}" | median)" \
    "$(paste -d' ' <(list "${OFFERED[$n]}") <(list "${WRITTEN[$n]}") | awk '{print $1 - $2}' | median)" \
    "$(list "${LATE[$n]}" | sort -n | tail -1)" \
    "$(list "${ORDERED[$n]}" | sort | uniq -c | xargs)" \
    "$(echo "${PER[$n]}" | median)"
done
two=$(ratio two oneany)
four=$(ratio four oneany)
sealed=$(ratio onesealed oneany)
printf '\nCPU per packet ÷ one target with -i any (like for like), per round:\n'
printf '  two targets:  %s — %s (goal: at most 1.20)\n' "$(echo "$two" | xargs)" "$(spread "$two")"
printf '  four targets: %s — %s (goal: at most 1.30)\n' "$(echo "$four" | xargs)" "$(spread "$four")"
printf '  one target, --sealed: %s — %s\n' "$(echo "$sealed" | xargs)" "$(spread "$sealed")"
printf 'two targets ÷ one target with -i vc1, per round: %s\n' "$(ratio two one | xargs)"
