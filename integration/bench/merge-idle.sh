#!/usr/bin/env bash
# CPU of an idle merged capture: two named netns with nothing on their
# loopbacks, `netshim capture` of both (-i lo -w /dev/null), and the CPU
# ticks (utime + stime of the process tree, every thread, from /proc)
# spent in 10 s, read from 2 s after the start.
#
#     sudo ./integration/bench/merge-idle.sh [NETSHIM_BINARY]
set -euo pipefail
B=${1:+$(realpath "$1")}
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
if [ -z "$B" ]; then
  cargo build --release -q -p netshim
  B=$PWD/target/release/netshim
fi
A=nsidleA-$$ C=nsidleB-$$
cleanup() { ip netns del "$A" 2>/dev/null || true; ip netns del "$C" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$A"; ip netns add "$C"
ip -n "$A" link set lo up; ip -n "$C" link set lo up
# shellcheck source=integration/bench/lib.sh
source integration/bench/lib.sh
"$B" capture --target-netns "netns:$A" --target-netns "netns:$C" -i lo -w /dev/null 2>/dev/null &
pid=$!
sleep 2
read -r u0 s0 < <(tree_ticks "$pid")
sleep 10
read -r u1 s1 < <(tree_ticks "$pid")
kill -INT "$pid"
wait "$pid" || true
echo "idle two-target capture: $((u1 + s1 - u0 - s0)) ticks of CPU in 10 s ($(getconf CLK_TCK) per second)"
