#!/usr/bin/env bash
# Live latency of a capture of two targets against one target, in one run:
# how long after its time stamp each packet of `netshim capture -w -`
# reaches a reader of the stream (issues: one capture across many
# containers; one unprivileged engine reads every target's rings — "within
# 5 ms of one target's").
#
# Two named network namespaces, each pinging its own loopback every 50 ms
# (traffic stays inside them). The capture of one target, then of both, is
# read by a small reader that notes each Enhanced Packet Block's arrival
# time against its time stamp. Rounds are interleaved; each line is one
# round.
#
#   sudo ./integration/bench/merge-latency.sh [PACKETS] [ROUNDS]   (default 200, 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200}
ROUNDS=${2:-3}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
command -v python3 >/dev/null || { echo "missing python3" >&2; exit 2; }

cargo build --release -q -p netshim
NETSHIM=$PWD/target/release/netshim

A=nsla-$$ B=nslb-$$
PINGS=()
cleanup() {
  for p in "${PINGS[@]}"; do kill "$p" 2>/dev/null || true; done
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
}
trap cleanup EXIT
for n in "$A" "$B"; do
  ip netns add "$n"
  ip -n "$n" link set lo up
  ip netns exec "$n" ping -q -i 0.05 127.0.0.1 >/dev/null 2>&1 &
  PINGS+=($!)
done

# Reads pcapng on stdin; prints the median, p95 and max of arrival minus
# time stamp, in ms (interfaces' if_tsresol is netshim's: nanoseconds).
READER='
import sys, struct, time
f = sys.stdin.buffer
lat = []
while True:
    h = f.read(8)
    if len(h) < 8:
        break
    t, l = struct.unpack("<II", h)
    body = f.read(l - 8)
    now = time.time()
    if t == 6:
        hi, lo = struct.unpack("<II", body[4:12])
        lat.append((now - ((hi << 32) | lo) / 1e9) * 1000)
lat.sort()
n = len(lat)
print(f"{n:5d} packets: median {lat[n // 2]:6.1f} ms  p95 {lat[int(n * 0.95)]:6.1f} ms  max {lat[-1]:6.1f} ms")
'

measure() {
  "$NETSHIM" capture "$@" -i lo -c "$N" -w - icmp 2>/dev/null | python3 -c "$READER"
}

printf 'pings every 50 ms on the loopback of each of two named netns; %s packets per capture;\n' "$N"
printf '%s interleaved rounds (%s, %s cores, netshim %s)\n\n' "$ROUNDS" "$(uname -r)" "$(nproc)" \
  "$("$NETSHIM" --version | cut -d' ' -f2)"
for r in $(seq 1 "$ROUNDS"); do
  printf 'round %s  one target:  %s\n' "$r" "$(measure --target-netns "netns:$A")"
  printf 'round %s  two targets: %s\n' "$r" "$(measure --target-netns "netns:$A" --target-netns "netns:$B")"
done
