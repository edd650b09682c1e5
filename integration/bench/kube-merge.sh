#!/usr/bin/env bash
# The cost of merging pods' streams in `kubectl netshim capture` (issue:
# the plugin, "the merge of streams from the cluster costs at most 1.2x the
# CPU per packet of writing one pod's stream, at the same total rate"), and
# the live stream's latency, on the suite's real cluster of two nodes
# (integration/src/kube.rs: etcd, kube-apiserver, two kubelets and
# containerds on this machine, netshim the default handler).
#
# integration/tests/kube_bench.rs (an ignored test) puts four sleeping
# busybox pods on the nodes, two each, and sends 64-byte UDP datagrams on
# each captured pod's loopback from a thread that has joined the pod's
# network namespace, paced by the clock. The plugin (a release build)
# captures `udp port 9999` with -c N into a file on tmpfs: one pod at the
# total rate R, two pods (one per node) at R/2 each, four at R/4 each.
# CPU is the user and system time of the plugin's whole process (wait4 on
# kubectl, which execs the plugin in its place), per packet written; and
# "steady", from the plugin's "capturing" line to its end (its start and
# the API calls left out). Rounds are interleaved; the table shows medians
# and the spread (min-max), packets/s reached (from the file's time
# stamps), packets written, late and dropped. Then the live stream of two
# pods, `-w -`, read by a pcapng reader in the test and by
# `tshark -l -i -`, with reorder windows 200, 20 and 0 ms: packet time
# stamp to the reader, median, p95 and max.
#
# Needs KUBE_BIN_DIR (or ~/.cache/netshim/kube/v1.26.1/bin), as the suite.
# Takes the shared lock of the suite's machine resources if
# NETSHIM_SUITE_LOCK names one.
#
#   sudo ./integration/bench/kube-merge.sh [RATE] [PACKETS] [ROUNDS]   (default 4000, 60000, 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
command -v tshark >/dev/null || { echo "missing tshark (apt-get install tshark)" >&2; exit 2; }

cargo build --release -q -p kubectl-netshim
export NETSHIM_PLUGIN_DIR=$PWD/target/release
export NETSHIM_BENCH_RATE=${1:-4000}
export NETSHIM_BENCH_PACKETS=${2:-60000}
export NETSHIM_BENCH_ROUNDS=${3:-5}
export NETSHIM_SKIP_LINT=1 NETSHIM_FUZZ_SECONDS=0

RUN=(./integration/run.sh --test kube_bench -- --ignored --nocapture)
if [ -n "${NETSHIM_SUITE_LOCK:-}" ]; then
  flock "$NETSHIM_SUITE_LOCK" "${RUN[@]}"
else
  "${RUN[@]}"
fi
