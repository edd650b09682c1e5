#!/usr/bin/env bash
# Boots the pure cgroup v2 guest (built or reused by build.sh) under QEMU's
# software emulation (TCG; KVM is not needed) with STAGE shared at
# /mnt/stage, where the guest's init runs STAGE/plan.sh and leaves
# plan.out and plan.status; the guest's console goes to STAGE/console.log.
# The root filesystem is the cached image in QEMU's snapshot mode: the
# guest's writes are thrown away.
#
#     integration/guest/boot.sh STAGE [TIMEOUT_SECONDS]
#
# Kernel command line: cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1
# (cgroup2 alone, as Debian 12, Ubuntu 22.04 and later boot).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
stage=$(cd "$1" && pwd)
limit=${2:-1200}
guest=$("$here/build.sh")
q=$guest/qemu
cpus=$(nproc)
[ "$cpus" -le 4 ] || cpus=4
start=$(date +%s.%N)
rc=0
LD_LIBRARY_PATH=$q/usr/lib/x86_64-linux-gnu timeout "$limit" \
  "$q/usr/bin/qemu-system-x86_64" \
  -L "$q/usr/share/qemu" -L "$q/usr/share/seabios" \
  -machine q35 -accel tcg,thread=multi -cpu max -smp "$cpus" -m 3072 \
  -kernel "$guest/vmlinuz" -initrd "$guest/initrd.img" \
  -append "console=ttyS0 root=/dev/vda rw init=/sbin/netshim-guest-init panic=-1 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1" \
  -drive "file=$guest/rootfs.img,if=virtio,format=raw,snapshot=on,cache=unsafe" \
  -virtfs "local,path=$stage,mount_tag=stage,security_model=none" \
  -nic none -display none -no-reboot \
  -serial "file:$stage/console.log" -monitor none || rc=$?
echo "guest: ran $(echo "$(date +%s.%N) - $start" | bc | cut -d. -f1) s (boot, tests, power-off)" >&2
exit $rc
