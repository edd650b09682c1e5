#!/usr/bin/env bash
# CPU of an idle merged capture: two named netns with nothing on their
# loopbacks, `netshim capture` of both (-i lo -w /dev/null), and the CPU
# ticks (utime + stime of every thread of the process tree, from /proc)
# spent in 10 s, read from 2 s after the start.
#
#     sudo ./integration/bench/merge-idle.sh [NETSHIM_BINARY]
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
B=${1:-}
if [ -z "$B" ]; then
  cargo build --release -q -p netshim
  B=$PWD/target/release/netshim
fi
A=nsidleA-$$ C=nsidleB-$$
cleanup() { ip netns del "$A" 2>/dev/null || true; ip netns del "$C" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$A"; ip netns add "$C"
ip -n "$A" link set lo up; ip -n "$C" link set lo up
tree_ticks() {
  local pids=$1 all=$1 next
  while [ -n "$pids" ]; do
    next=$(for p in $pids; do cat "/proc/$p/task/$p/children" 2>/dev/null; done | xargs)
    all="$all $next"
    pids=$next
  done
  for p in $all; do
    for t in /proc/"$p"/task/*; do awk '{print $14, $15}' "$t/stat" 2>/dev/null || true; done
  done | awk '{u += $1; s += $2} END {print u + s}'
}
"$B" capture --target-netns "netns:$A" --target-netns "netns:$C" -i lo -w /dev/null 2>/dev/null &
pid=$!
sleep 2
t0=$(tree_ticks "$pid")
sleep 10
t1=$(tree_ticks "$pid")
kill -INT "$pid"
wait "$pid" || true
echo "idle two-target capture: $((t1 - t0)) ticks of CPU in 10 s ($(getconf CLK_TCK) per second)"
