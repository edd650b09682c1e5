#!/bin/sh
# PID 1 of the pure cgroup v2 guest (integration/guest/boot.sh boots it):
# mounts what a booted Debian 12 host has (cgroup2 alone at /sys/fs/cgroup),
# mounts the host's stage directory (9p, tag "stage") at /mnt/stage, runs
# /mnt/stage/plan.sh there with its output in /mnt/stage/plan.out and its
# exit status in /mnt/stage/plan.status, and powers the guest off.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
ln -sf pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -o remount,rw /
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/netns /run/user /run/lock
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
# A booted host's / is shared (systemd makes it so); the tests expect that.
mount --make-rshared /
hostname netshim-guest
ip link set lo up
# What the controllers a v2 host delegates to its children.
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
  echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
done

modprobe 9pnet_virtio 2>/dev/null
modprobe 9p 2>/dev/null
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=1048576 stage /mnt/stage; then
  echo "guest: init up $(cut -d' ' -f1 /proc/uptime) s after boot; cgroup mounts: $(awk '$3 ~ /cgroup/ {print $3 " " $2}' /proc/mounts | tr '\n' ' ')"
  if [ -x /mnt/stage/plan.sh ]; then
    (cd /mnt/stage && ./plan.sh >/mnt/stage/plan.out 2>&1; echo $? >/mnt/stage/plan.status)
  else
    echo "guest: no /mnt/stage/plan.sh" >&2
  fi
  sync
  umount /mnt/stage
else
  echo "guest: cannot mount the stage directory (9p tag stage)" >&2
fi
sync
echo o >/proc/sysrq-trigger
sleep 60
