#!/usr/bin/env bash
# Start-up cost of the OCI runtime, as containerd and Docker use it: `run`
# (create, start, wait) and `delete` of one small bundle (busybox `true`,
# `runc spec`'s namespaces, mounts, capabilities and masked paths), netshim
# beside runc, interleaved round by round so machine noise hits both alike.
# netshim's `run` re-executes itself from a sealed in-memory copy first
# (CVE-2019-5736; runc 1.1 clones itself the same way), so this measures
# that cost too.
#
#   sudo ./integration/bench/oci-startup.sh [ROUNDS]     (default 40)
#   NETSHIM=/path/to/netshim sudo -E ./integration/bench/oci-startup.sh   (another build)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-40}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
command -v runc >/dev/null || { echo "missing runc (apt-get install runc)" >&2; exit 2; }
[ -x /bin/busybox ] || { echo "missing /bin/busybox (apt-get install busybox-static)" >&2; exit 2; }
if [ -z "${NETSHIM:-}" ]; then
  cargo build --release -q -p netshim
  NETSHIM=$PWD/target/release/netshim
fi

WORK=$(mktemp -d)
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/b/rootfs/bin" "$WORK/netshim" "$WORK/runc"
cp /bin/busybox "$WORK/b/rootfs/bin/"
ln -s busybox "$WORK/b/rootfs/bin/true"
(cd "$WORK/b" && runc spec)
sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"true"/' "$WORK/b/config.json"

now() { date +%s%N; }
one() { # runtime root id -> microseconds for run + delete
  local t0 t1
  t0=$(now)
  "$1" --root "$2" run --bundle "$WORK/b" "$3" </dev/null >/dev/null
  "$1" --root "$2" delete "$3" >/dev/null 2>&1 || true
  t1=$(now)
  echo $(((t1 - t0) / 1000))
}
echo "warm-up" >&2
one "$NETSHIM" "$WORK/netshim" w0 >/dev/null
one runc "$WORK/runc" w1 >/dev/null
: >"$WORK/rounds"
for i in $(seq 1 "$ROUNDS"); do
  n=$(one "$NETSHIM" "$WORK/netshim" "n$i")
  r=$(one runc "$WORK/runc" "r$i")
  echo "$n $r" >>"$WORK/rounds"
done
python3 - "$WORK/rounds" "$NETSHIM" <<'PY'
import statistics, sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1])]
def q(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(p * len(v)))]
n = [a for a, _ in rows]; r = [b for _, b in rows]; ratio = [a / b for a, b in rows]
print(f"binary: {sys.argv[2]}, {len(rows)} rounds, run + delete of busybox true")
print(f"{'':10} {'median us':>10} {'p10':>8} {'p90':>8}")
print(f"{'netshim':10} {statistics.median(n):>10.0f} {q(n, .1):>8} {q(n, .9):>8}")
print(f"{'runc':10} {statistics.median(r):>10.0f} {q(r, .1):>8} {q(r, .9):>8}")
print(f"netshim / runc per round: median {statistics.median(ratio):.2f}, p10-p90 {q(ratio, .1):.2f}-{q(ratio, .9):.2f}")
PY
