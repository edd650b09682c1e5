#!/usr/bin/env bash
# Builds netshim's debug image: one uncompressed layer with netshim, the
# shared libraries it loads (as ldd lists them, from this machine), the
# dynamic loader and a static busybox for a shell, as one tarball that is
# both an OCI image layout and a `docker save` archive — loadable by
# `ctr image import`, `docker load` and `podman load`.
#
# Reproducible: the same inputs give the same bytes (files sorted, owned by
# 0:0, mtime 0, modes normalized; the config's dates are the epoch), so the
# same image digest. The image runs as 65534:65534; netshim is its
# entrypoint (`… --image=netshim:VERSION -- capture -i any -w -`).
#
#   examples/image/build.sh OUT.tar [NETSHIM_BINARY] [TAG]
#     default binary: target/release/netshim (built if missing), stripped;
#     default tag: netshim:VERSION
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:?usage: examples/image/build.sh OUT.tar [NETSHIM_BINARY] [TAG]}
BIN=${2:-target/release/netshim}
[ -e "$BIN" ] || cargo build --release -q -p netshim
VERSION=$("$BIN" --version | awk '{print $2}')
TAG=${3:-netshim:$VERSION}
for t in ldd tar sha256sum strip; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 2; }
done
[ -x /bin/busybox ] || { echo "missing /bin/busybox (apt-get install busybox-static)" >&2; exit 2; }
bb=$(ldd /bin/busybox 2>&1 || true)
grep -q "not a dynamic" <<<"$bb" || { echo "/bin/busybox is not static (apt-get install busybox-static)" >&2; exit 2; }

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
R=$W/rootfs
mkdir -p "$R/usr/local/bin" "$R/bin" "$R/etc" "$R/tmp" "$R/proc" "$R/sys" "$R/dev"
strip -o "$R/usr/local/bin/netshim" "$BIN"
# Every library ldd resolves, and the loader, at the same paths; and
# libpcap with its own, which netshim opens (dlopen) to compile filters.
PCAP=$("$(command -v ldconfig || echo /sbin/ldconfig)" -p | awk '($1 == "libpcap.so.0.8" || $1 == "libpcap.so.1") && !n++ {print $NF}')
[ -n "$PCAP" ] || { echo "missing libpcap (apt-get install libpcap0.8)" >&2; exit 2; }
{
  ldd "$BIN"
  echo "	libpcap => $PCAP (0)"
  ldd "$PCAP"
} | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u | while read -r lib; do
  mkdir -p "$R$(dirname "$lib")"
  cp -L "$lib" "$R$lib"
done
cp /bin/busybox "$R/bin/busybox"
for a in sh ls cat grep ps sleep ping ip wc head timeout id kill; do ln -s busybox "$R/bin/$a"; done
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$R/etc/group"
find "$R" -type d -exec chmod 755 {} +
chmod 1777 "$R/tmp"
find "$R" -type f -exec chmod go-w {} +

dtar() { tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=ustar "$@"; }
mkdir -p "$W/img/blobs/sha256"
dtar -C "$R" -cf "$W/layer.tar" .
blob() { # FILE -> prints its digest hex, stores it as a blob
  local d
  d=$(sha256sum "$1" | awk '{print $1}')
  mv "$1" "$W/img/blobs/sha256/$d"
  echo "$d"
}
size() { stat -c %s "$W/img/blobs/sha256/$1"; }
LAYER=$(blob "$W/layer.tar")
cat >"$W/config.json" <<EOF
{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"User":"65534:65534","Env":["PATH=/usr/local/bin:/bin"],"Entrypoint":["/usr/local/bin/netshim"],"WorkingDir":"/tmp","Labels":{"org.opencontainers.image.title":"netshim","org.opencontainers.image.version":"$VERSION"}},"rootfs":{"type":"layers","diff_ids":["sha256:$LAYER"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"examples/image/build.sh"}]}
EOF
CONFIG=$(blob "$W/config.json")
cat >"$W/manifest.oci" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$CONFIG","size":$(size "$CONFIG")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$LAYER","size":$(size "$LAYER")}]}
EOF
MANIFEST=$(blob "$W/manifest.oci")
REF=${TAG##*:}
NAME=${TAG%:*}
case $NAME in */*) FULL=$NAME ;; *) FULL=docker.io/library/$NAME ;; esac
cat >"$W/img/index.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$MANIFEST","size":$(size "$MANIFEST"),"annotations":{"io.containerd.image.name":"$FULL:$REF","org.opencontainers.image.ref.name":"$REF"}}]}
EOF
printf '{"imageLayoutVersion":"1.0.0"}' >"$W/img/oci-layout"
printf '[{"Config":"blobs/sha256/%s","RepoTags":["%s"],"Layers":["blobs/sha256/%s"]}]' "$CONFIG" "$TAG" "$LAYER" >"$W/img/manifest.json"
dtar -C "$W/img" -cf "$OUT" .
echo "$TAG: manifest sha256:$MANIFEST, config (image ID) sha256:$CONFIG, $(stat -c %s "$OUT") bytes -> $OUT" >&2
