#!/usr/bin/env bash
# Builds the pure cgroup v2 guest for integration/tests/cgroup_v2_guest.rs,
# from Debian's packages only, once per machine: a Debian 12 root filesystem
# (debootstrap, with Debian's kernel and the packages in ./packages) as an
# ext4 image, its kernel and initramfs, and Debian 12's QEMU unpacked with
# `dpkg -x` (./qemu-packages). The result is kept under
#
#     ${XDG_CACHE_HOME:-$HOME/.cache}/netshim/guest/KEY/
#
# where KEY hashes this script, init.sh and both package lists: an unchanged
# guest is built once and reused. Prints that directory on stdout; progress
# goes to stderr. Needs root (debootstrap, files owned by the guest's users)
# and apt; installs debootstrap with apt when it is missing.
#
# Environment: NETSHIM_GUEST_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
say() { printf '==> guest: %s\n' "$*" >&2; }
die() { printf 'error: guest: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "building the guest needs root (debootstrap)"

SUITE=bookworm
MIRROR=${NETSHIM_GUEST_MIRROR:-http://deb.debian.org/debian}
list() { grep -v '^#' "$1" | sed '/^$/d'; }

key=$( (echo "$SUITE $MIRROR"; cat "$here/build.sh" "$here/init.sh" "$here/packages" "$here/qemu-packages") |
  sha256sum | cut -c1-16)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/netshim/guest
out=$cache/$key
if [ -f "$out/complete" ]; then
  echo "$out"
  exit 0
fi

start=$(date +%s)
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap (apt)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

say "unpacking Debian 12's QEMU ($(list "$here/qemu-packages" | wc -l) packages)"
mkdir -p "$tmp/debs" "$tmp/qemu"
# apt-get download drops privileges to _apt, which must be able to write here.
chmod 0777 "$tmp/debs"
(cd "$tmp/debs" && list "$here/qemu-packages" | xargs apt-get download -qq 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
for d in "$tmp"/debs/*.deb; do dpkg -x "$d" "$tmp/qemu"; done
missing=$(LD_LIBRARY_PATH=$tmp/qemu/usr/lib/x86_64-linux-gnu ldd "$tmp/qemu/usr/bin/qemu-system-x86_64" | grep 'not found' || true)
[ -z "$missing" ] || die "QEMU still lacks libraries (add their packages to qemu-packages): $missing"
rm -rf "$tmp/debs"

say "debootstrap $SUITE with $(list "$here/packages" | wc -l) packages (the longest step)"
debootstrap --variant=minbase --include="$(list "$here/packages" | paste -sd,)" \
  "$SUITE" "$tmp/rootfs" "$MIRROR" >"$tmp/debootstrap.log" 2>&1 ||
  { tail -30 "$tmp/debootstrap.log" >&2; die "debootstrap failed; its log is above"; }

say "configuring the guest"
r=$tmp/rootfs
echo netshim-guest >"$r/etc/hostname"
install -m 0755 "$here/init.sh" "$r/sbin/netshim-guest-init"
# The unprivileged test user, with subordinate IDs (as integration/run.sh makes it).
chroot "$r" useradd --create-home --shell /bin/bash netshim-test
echo "netshim-test:100000:65536" >"$r/etc/subuid"
echo "netshim-test:100000:65536" >"$r/etc/subgid"
mkdir -p "$r/mnt/stage"
chroot "$r" apt-get clean
rm -rf "$r"/var/lib/apt/lists/*
cp -L "$r/vmlinuz" "$tmp/vmlinuz"
cp -L "$r/initrd.img" "$tmp/initrd.img"

say "making the root filesystem image"
size=$(($(du -sm "$r" | cut -f1) + 3072))
mkfs.ext4 -q -L netshim-guest -d "$r" "$tmp/rootfs.img" "${size}M" >&2
rm -rf "$r"
echo "$(( $(date +%s) - start ))" >"$tmp/build-seconds"
touch "$tmp/complete"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
say "built in $(cat "$out/build-seconds") s: $out"
# Older guests (other keys) are no longer used.
for old in "$cache"/*/; do
  old=${old%/}
  [ "$old" = "$out" ] || [ ! -f "$old/complete" ] || rm -rf "$old"
done
echo "$out"
