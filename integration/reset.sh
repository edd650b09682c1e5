#!/usr/bin/env bash
# Puts back what a fresh Debian 12 machine has, as far as netshim's suite is
# concerned, so that the suite can be shown to pass from there (and to
# depend on nothing an earlier run left):
#
#     ./integration/reset.sh && ./integration/run.sh
#
#   - net.ipv4.ip_forward = 0 (a fresh machine's value);
#   - the test user removed with its home (its rootless Docker and Podman
#     data live there) and its /etc/subuid, /etc/subgid lines, its runtime
#     directory under /run/user;
#   - the private rootful Docker's data (/var/lib/netshim-test-docker) and
#     root's Podman image netshim-busybox;
#   - netshim's own state: /run/netshim*.
# Installed packages are kept (the suite installs missing ones itself;
# removing them is the apt log's business). Run it as root, with no suite
# running.
set -euo pipefail
say() { printf '==> %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { echo "reset.sh: run this as root" >&2; exit 1; }
TEST_USER=${NETSHIM_TEST_USER:-netshim-test}

say "net.ipv4.ip_forward = 0"
sysctl -qw net.ipv4.ip_forward=0

if id "$TEST_USER" >/dev/null 2>&1; then
  uid=$(id -u "$TEST_USER")
  # A rootless Podman pause process may outlive a run; it records its PID.
  pause=/run/user/$uid/libpod/tmp/pause.pid
  if [ -f "$pause" ]; then kill "$(cat "$pause")" 2>/dev/null || true; fi
  if [ -n "$(ps -o pid= -u "$uid")" ]; then
    echo "reset.sh: $TEST_USER still has processes (a suite running?): $(ps -o pid=,comm= -u "$uid" | tr '\n' ' ')" >&2
    exit 1
  fi
  say "removing $TEST_USER, its home and its subordinate ID ranges"
  userdel -r "$TEST_USER" 2>/dev/null || userdel "$TEST_USER"
  rm -rf "/home/$TEST_USER" "/run/user/$uid"
  sed -i "/^$TEST_USER:/d" /etc/subuid /etc/subgid
fi

say "removing the private rootful Docker's data and root's Podman test image"
rm -rf /var/lib/netshim-test-docker
(cd /tmp && podman image rm -f netshim-busybox >/dev/null 2>&1) || true

say "removing netshim's state under /run"
rm -rf /run/netshim /run/netshim-test-docker /run/netshim-test-docker.log
say "done"
