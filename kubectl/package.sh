#!/usr/bin/env bash
# Packs kubectl-netshim the way krew installs plugins: a .tar.gz holding the
# binary, and a krew Plugin manifest (krew.googlecontainertools.github.com/
# v1alpha2) that names the archive by URI and sha256 and says which file is
# the plugin. Install from the two files, without an index:
#
#   kubectl krew install --manifest=OUT/netshim.yaml \
#       --archive=OUT/kubectl-netshim_VERSION_linux_amd64.tar.gz
#
# or, without krew, what krew does: unpack the archive anywhere and put
# kubectl-netshim on PATH (kubectl runs any kubectl-NAME on PATH as
# `kubectl NAME`).
#
# Reproducible: the archive's entries are owned by 0:0 with mtime 0, so the
# same binary gives the same sha256.
#
#   kubectl/package.sh OUTDIR [BINARY] [URI_BASE]
#     default binary: target/release/kubectl-netshim (built if missing);
#     URI_BASE: where the archive will be published (the manifest's uri).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: kubectl/package.sh OUTDIR [BINARY] [URI_BASE]}
BIN=${2:-target/release/kubectl-netshim}
URI_BASE=${3:-https://example.invalid/netshim/releases}
[ -e "$BIN" ] || cargo build --release -q -p kubectl-netshim
VERSION=$("$BIN" --version | awk '{print $2}')
case $VERSION in
  [0-9]*.[0-9]*.[0-9]*) ;;
  *) echo "unexpected version ${VERSION@Q} from $BIN --version" >&2; exit 2 ;;
esac
ARCH=$(uname -m)
case $ARCH in x86_64) ARCH=amd64 ;; aarch64) ARCH=arm64 ;; esac
mkdir -p "$OUT"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
install -m 0755 "$BIN" "$W/kubectl-netshim"
NAME=kubectl-netshim_${VERSION}_linux_${ARCH}.tar.gz
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=ustar \
  -C "$W" -cf - kubectl-netshim | gzip -n >"$OUT/$NAME"
SHA=$(sha256sum "$OUT/$NAME" | awk '{print $1}')
cat >"$OUT/netshim.yaml" <<MANIFEST
apiVersion: krew.googlecontainertools.github.com/v1alpha2
kind: Plugin
metadata:
  name: netshim
spec:
  version: v$VERSION
  shortDescription: Capture pods' traffic across nodes, non-root, into one pcapng
  description: |
    kubectl netshim capture adds an ephemeral debug container of netshim's
    image to each pod you name or select (non-root, no privilege
    escalation, only NET_RAW, seccomp RuntimeDefault: Pod Security
    "baseline" admits it), runs netshim's capture in it through the API
    server, and merges every pod's stream in time order into one pcapng,
    one interface per pod and interface (NS/POD/IFACE), to a file or live
    to Wireshark. The pods must run under netshim's runtime (a RuntimeClass
    whose handler is netshim, or a node where netshim is the default).
    kubectl netshim doctor says which pods can be captured and why not.
  platforms:
  - selector:
      matchLabels:
        os: linux
        arch: $ARCH
    uri: $URI_BASE/$NAME
    sha256: $SHA
    bin: kubectl-netshim
    files:
    - from: kubectl-netshim
      to: .
MANIFEST
echo "$OUT/$NAME"
echo "$OUT/netshim.yaml"
