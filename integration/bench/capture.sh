#!/usr/bin/env bash
# Capture throughput, CPU per packet and memory: netshim capture against
# tcpdump and dumpcap, one after the other in one run, same ring size.
#
# Two network namespaces joined by a veth pair (198.18.0.0/15); trafgen sends
# 64-byte UDP frames from the generator namespace at its full rate, pinned to
# CPU 0; the capture runs in the other namespace pinned to CPU 1 and writes to
# tmpfs. For each tool: packets offered (rx_packets delta of the capture
# veth), written (capinfos on the file), dropped, process CPU seconds, CPU per
# packet, peak RSS — then ratios against tcpdump. A second table compares
# netshim's one-line printer with `tcpdump -n`.
#
# Each tool runs ROUNDS times, interleaved with the others, and the table
# shows medians, with the spread (min–max over the rounds) of each ratio to
# the base tool in the same round: on shared virtual machines the
# kernel-side (system) time of a single run swings by 3x, while user time is
# steady, so both are shown. User and system time come from the kernel's
# accounting (/proc/PID/stat); `perf stat -e cycles:u,cycles:k` would split
# them by cycles, but these virtual machines expose no PMU ("<not
# supported>").
#
#   sudo ./integration/bench/capture.sh [SECONDS] [RING_KiB] [ROUNDS]   (default 5, 4096, 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-5}
RING=${2:-4096}
ROUNDS=${3:-3}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
for t in trafgen tcpdump dumpcap capinfos taskset; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install netsniff-ng tcpdump tshark util-linux)" >&2; exit 2; }
done
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs (generator and capture pinned apart)" >&2; exit 2; }

cargo build --release -q -p netshim
NETSHIM=$PWD/target/release/netshim

G=nsbg-$$ C=nsbc-$$ OUT=/dev/shm/netshim-bench-$$
mkdir -p "$OUT"
cleanup() {
  [ -n "${GEN:-}" ] && kill -KILL -- "-$GEN" 2>/dev/null || true
  ip netns del "$G" 2>/dev/null || true
  ip netns del "$C" 2>/dev/null || true
  rm -rf "$OUT"
}
trap cleanup EXIT
ip netns add "$G"
ip netns add "$C"
ip link add vbg netns "$G" type veth peer name vbc netns "$C"
ip -n "$G" addr add 198.18.0.2/30 dev vbg
ip -n "$C" addr add 198.18.0.1/30 dev vbc
ip -n "$G" link set vbg up
ip -n "$C" link set vbc up
ip -n "$C" link set lo up
DMAC=$(ip -n "$C" -o link show vbc | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
SMAC=$(ip -n "$G" -o link show vbg | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
cat >"$OUT/udp.cfg" <<EOF
{ eth(da=$DMAC, sa=$SMAC), ipv4(saddr=198.18.0.2, daddr=198.18.0.1, ttl=64), udp(sp=4000, dp=5000), fill(0x41, 18) }
EOF

rx() { ip netns exec "$C" cat /sys/class/net/vbc/statistics/rx_packets; }
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; } # utime stime, in USER_HZ (100) ticks
rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# measure NAME FILE-OR-"" COMMAND...: starts the capture pinned to CPU 1,
# runs the generator for SECS, stops the capture with SIGINT, and appends the
# round's figures to the tool's lists.
declare -A OFFERED WRITTEN USER SYS RSS
measure() {
  local name=$1 file=$2
  shift 2
  taskset -c 1 "$@" >"$OUT/$name.stdout" 2>"$OUT/$name.stderr" &
  local pid=$!
  sleep 1.5
  # netshim: the engine is the child of the netshim process we started.
  local work=$pid
  case $name in netshim*) work=$(pgrep -P "$pid" | head -1) ;; esac
  local u0 s0 u1 s1 r0 r1
  read -r u0 s0 < <(ticks "$work")
  r0=$(rx)
  # trafgen forks a worker: a session of its own, ended as a group.
  setsid ip netns exec "$G" taskset -c 0 trafgen --dev vbg --conf "$OUT/udp.cfg" -P 1 -q >/dev/null 2>&1 &
  GEN=$!
  sleep "$SECS"
  kill -INT -- "-$GEN"; wait "$GEN" 2>/dev/null || true; GEN=
  sleep 1
  r1=$(rx)
  read -r u1 s1 < <(ticks "$work")
  RSS[$name]+="$(awk '/VmHWM/ {print $2}' "/proc/$work/status") "
  kill -INT "$pid"
  wait "$pid" 2>/dev/null || true
  OFFERED[$name]+="$((r1 - r0)) "
  USER[$name]+="$((u1 - u0)) "
  SYS[$name]+="$((s1 - s0)) "
  if [ -n "$file" ]; then
    WRITTEN[$name]+="$(capinfos -c -M "$file" | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}') "
  else
    WRITTEN[$name]+="$(grep -c " > 198.18.0.1.5000" "$OUT/$name.stdout" || true) "
  fi
  rm -f "$file"
}

for _ in $(seq 1 "$ROUNDS"); do
  measure netshim "$OUT/n.pcapng" "$NETSHIM" capture --target-netns "netns:$C" -i vbc -B "$RING" -w "$OUT/n.pcapng" udp
  measure netshim-pcap "$OUT/n.pcap" "$NETSHIM" capture --target-netns "netns:$C" -i vbc -B "$RING" --format pcap -w "$OUT/n.pcap" udp
  measure tcpdump "$OUT/t.pcap" ip netns exec "$C" tcpdump -i vbc -B "$RING" -w "$OUT/t.pcap" udp
  measure dumpcap "$OUT/d.pcapng" ip netns exec "$C" dumpcap -q -i vbc -B $((RING / 1024)) -w "$OUT/d.pcapng" -f udp
  measure netshim-lines "" "$NETSHIM" capture --target-netns "netns:$C" -i vbc -B "$RING" -n udp
  measure tcpdump-n "" ip netns exec "$C" tcpdump -n -l -i vbc -B "$RING" udp
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# Per round: ns per written packet of user, system and both; medians of each.
per_packet() { # LIST-OF-TICKS LIST-OF-WRITTEN -> median ns/packet
  paste -d' ' <(tr ' ' '\n' <<<"$1" | grep .) <(tr ' ' '\n' <<<"$2" | grep .) |
    awk '{ if ($2 > 0) printf "%.1f ", $1 * 1e7 / $2 }' | median
}
# Per round: the tool's ns per packet ÷ the base's in the same round; "min–max".
ratio_spread() { # TICKS-T WRITTEN-T TICKS-BASE WRITTEN-BASE
  paste -d' ' <(tr ' ' '\n' <<<"$1" | grep .) <(tr ' ' '\n' <<<"$2" | grep .) \
    <(tr ' ' '\n' <<<"$3" | grep .) <(tr ' ' '\n' <<<"$4" | grep .) |
    awk '{ if ($2 > 0 && $3 > 0) printf "%.2f\n", ($1 / $2) / ($3 / $4) }' |
    sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%s–%s", lo, hi}'
}
sum_lists() { paste -d' ' <(tr ' ' '\n' <<<"$1" | grep .) <(tr ' ' '\n' <<<"$2" | grep .) | awk '{printf "%d ", $1 + $2}'; }

table() {
  local base=$1
  shift
  printf '| %-14s | %9s | %9s | %8s | %8s | %8s | %8s | %8s | %11s | %7s | %11s |\n' tool offered written dropped \
    "user ns" "sys ns" "ns/pkt" "÷ base" "spread" "RSS MiB" "RSS spread"
  printf '|----------------|----------:|----------:|---------:|---------:|---------:|---------:|---------:|------------:|--------:|------------:|\n'
  local bpp btot
  btot=$(sum_lists "${USER[$base]}" "${SYS[$base]}")
  bpp=$(per_packet "$btot" "${WRITTEN[$base]}")
  for t in "$@"; do
    local off wr pp
    off=$(median <<<"${OFFERED[$t]}")
    wr=$(median <<<"${WRITTEN[$t]}")
    pp=$(per_packet "$(sum_lists "${USER[$t]}" "${SYS[$t]}")" "${WRITTEN[$t]}")
    printf '| %-14s | %9s | %9s | %8s | %8s | %8s | %8s | %8s | %11s | %7s | %11s |\n' "$t" "$off" "$wr" \
      "$(median <<<"$(paste -d' ' <(tr ' ' '\n' <<<"${OFFERED[$t]}" | grep .) <(tr ' ' '\n' <<<"${WRITTEN[$t]}" | grep .) | awk '{printf "%d ", $1 - $2}')")" \
      "$(per_packet "${USER[$t]}" "${WRITTEN[$t]}")" "$(per_packet "${SYS[$t]}" "${WRITTEN[$t]}")" "$pp" \
      "$(awk -v a="$pp" -v b="$bpp" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')" \
      "$(ratio_spread "$(sum_lists "${USER[$t]}" "${SYS[$t]}")" "${WRITTEN[$t]}" "$btot" "${WRITTEN[$base]}")" \
      "$(median <<<"${RSS[$t]}" | awk '{printf "%.1f", $1 / 1024}')" \
      "$(ratio_spread "${RSS[$t]}" "$(sed 's/[0-9]\+/1/g' <<<"${RSS[$t]}")" "${RSS[$base]}" "$(sed 's/[0-9]\+/1/g' <<<"${RSS[$base]}")")"
  done
}

printf '\n64-byte UDP from trafgen (CPU 0) over a veth pair, capture on CPU 1, %ss each, ring %s KiB,\n' "$SECS" "$RING"
printf 'files on tmpfs; medians of %s interleaved rounds (%s, %s cores;\n' "$ROUNDS" "$(uname -r)" "$(nproc)"
printf 'netshim %s, %s, %s)\n\n' "$("$NETSHIM" --version | cut -d' ' -f2)" \
  "$(tcpdump --version 2>&1 | head -1)" "$(dumpcap --version 2>&1 | head -1 | cut -d' ' -f1-3)"
printf 'Writing a file (-w); CPU per written packet of the capturing process:\n\n'
table tcpdump netshim netshim-pcap tcpdump dumpcap
printf '\nPrinting one line per packet (to a file on tmpfs):\n\n'
table tcpdump-n netshim-lines tcpdump-n
printf '\nnetshim runs with --target-netns (drop-uid plan: the engine is UID 65534 with only CAP_NET_RAW);\n'
printf 'tcpdump and dumpcap run as root through ip netns exec. "dropped" = offered - written, which\n'
printf 'includes the odd non-UDP packet (IPv6 neighbour discovery) the filter leaves out.\n'
