#!/usr/bin/env bash
# netshim's whole test suite: sets up what it needs on a fresh Debian 12 machine
# and runs lint, unit and integration tests against the real kernel and a real
# rootless Docker. Run it as root:
#
#     sudo ./integration/run.sh
#
# What it does, and undoes when it ends:
#   - installs the Debian packages the tests use (apt, once);
#   - creates the unprivileged test user $NETSHIM_TEST_USER (default
#     netshim-test) with /etc/subuid and /etc/subgid ranges (kept: it is
#     harmless and makes the next run faster);
#   - gives that user /dev/net/tun by ACL (removed at the end);
#   - starts a rootless dockerd for that user and a private rootful dockerd
#     (its own data root, exec root and socket; no bridge, no iptables), both
#     with netshim registered as a runtime from examples/docker/daemon.json,
#     and stops both at the end;
#   - imports a busybox image built from Debian's busybox-static into both
#     Dockers, into the user's rootless Podman and root's Podman (daemonless);
#   - the containerd tests start private containerd instances themselves;
#   - cgroup_v2_guest.rs builds a pure cgroup v2 Debian 12 guest once per
#     machine (integration/guest/build.sh, cached under ~/.cache/netshim/guest)
#     and runs a plan of the tests in it under QEMU's software emulation;
#   - runs cargo fmt --check, cargo clippy -D warnings and cargo test;
#   - installs with install.sh into a throwaway prefix and uninstalls;
#   - runs each cargo-fuzz target briefly (with a nightly toolchain).
#
# Environment: NETSHIM_TEST_USER, NETSHIM_SKIP_LINT=1 (skip fmt/clippy),
# NETSHIM_FUZZ_SECONDS (per fuzz target, default 10), KUBE_BIN_DIR (a directory
# with kube-apiserver and kubelet v1.26.x for the real-cluster tests, default
# ~/.cache/netshim/kube/v1.26.1/bin if it exists; without it they are SKIPPED),
# extra arguments are passed to `cargo test` (e.g. a test name filter).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
TEST_USER=${NETSHIM_TEST_USER:-netshim-test}

say() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run this as root: it installs packages, creates a test user and starts daemons (sudo $0)"

PACKAGES=(
  containerd runc docker.io rootlesskit slirp4netns uidmap
  tcpdump tshark netsniff-ng busybox-static iperf3 iputils-ping
  podman conmon catatonit fuse-overlayfs
  iproute2 procps psmisc util-linux acl iptables
  libpcap-dev libseccomp-dev pkg-config protobuf-compiler containernetworking-plugins
  etcd-server debootstrap
)

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

make_test_user() {
  if ! id "$TEST_USER" >/dev/null 2>&1; then
    say "creating test user $TEST_USER"
    useradd --create-home --shell /bin/bash "$TEST_USER"
  fi
  TEST_UID=$(id -u "$TEST_USER")
  for f in /etc/subuid /etc/subgid; do
    touch "$f"
    if ! grep -q "^$TEST_USER:" "$f"; then
      # Pick a range past every range already given out.
      local start
      start=$(awk -F: 'BEGIN{m=100000} {e=$2+$3; if (e>m) m=e} END{print m}' "$f")
      echo "$TEST_USER:$start:65536" >>"$f"
    fi
  done
  TEST_RUNTIME_DIR=/run/user/$TEST_UID
  install -d -m 0700 -o "$TEST_USER" -g "$TEST_USER" "$TEST_RUNTIME_DIR"
  # The repository (and the built binary) must be reachable by the test user.
  local d=$REPO
  while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
}

DOCKERD_PID=
ROOTFUL_PID=
TUN_ACL=
ROOTFUL_DIR=/run/netshim-test-docker
ROOTFUL_SOCK=unix://$ROOTFUL_DIR/docker.sock

cleanup() {
  local rc=$?
  if [ -n "$DOCKERD_PID" ]; then
    say "stopping the rootless dockerd (process group $DOCKERD_PID)"
    kill -TERM -- "-$DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$DOCKERD_PID" 2>/dev/null || true
  fi
  if [ -n "$ROOTFUL_PID" ]; then
    say "stopping the private rootful dockerd (process group $ROOTFUL_PID)"
    kill -TERM -- "-$ROOTFUL_PID" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$ROOTFUL_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$ROOTFUL_PID" 2>/dev/null || true
  fi
  rm -f "$ROOTFUL_DIR-daemon.json"
  if [ -n "$TUN_ACL" ]; then setfacl -x "u:$TEST_USER" /dev/net/tun 2>/dev/null || true; fi
  # Rootless Podman keeps a pause process holding its user namespace; the
  # tests made it start, so end it, by the PID Podman records.
  local pause=${TEST_RUNTIME_DIR:-/nonexistent}/libpod/tmp/pause.pid
  if [ -f "$pause" ]; then kill "$(cat "$pause")" 2>/dev/null || true; fi
  exit $rc
}
trap cleanup EXIT INT TERM

user_env() {
  echo "HOME=/home/$TEST_USER XDG_RUNTIME_DIR=$TEST_RUNTIME_DIR DOCKER_HOST=unix://$TEST_RUNTIME_DIR/docker.sock PATH=/usr/sbin:/usr/bin:/sbin:/bin"
}

as_user() {
  # shellcheck disable=SC2046
  runuser -u "$TEST_USER" -- env $(user_env) "$@"
}

start_rootless_docker() {
  say "starting a rootless dockerd for $TEST_USER"
  [ -e /dev/net/tun ] || { mkdir -p /dev/net; mknod /dev/net/tun c 10 200; chmod 0600 /dev/net/tun; }
  setfacl -m "u:$TEST_USER:rw" /dev/net/tun
  TUN_ACL=1
  local log=/home/$TEST_USER/netshim-test-dockerd.log
  # setsid: the daemon gets a process group of its own, which cleanup ends.
  # shellcheck disable=SC2046
  setsid runuser -u "$TEST_USER" -- env $(user_env) \
    /usr/share/docker.io/contrib/dockerd-rootless.sh \
    --data-root "/home/$TEST_USER/.local/share/docker-netshim-test" \
    --config-file "$DAEMON_JSON" >"$log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 1 120); do
    if as_user /usr/bin/docker info >/dev/null 2>&1; then return 0; fi
    kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -20 "$log" >&2; die "rootless dockerd exited; its log is above"; }
    sleep 0.5
  done
  tail -20 "$log" >&2
  die "rootless dockerd did not answer within 60 s; its log is above"
}

# examples/docker/daemon.json, pointing at the binary just built: one file
# per daemon, each owned by the daemon's user (the `netshim install docker`
# test edits them, and the rootful daemon must not read a file the test
# user can write).
write_daemon_json() {
  DAEMON_JSON=/home/$TEST_USER/.netshim-test-daemon.json
  ROOTFUL_DAEMON_JSON=$ROOTFUL_DIR-daemon.json
  sed "s|/usr/local/bin/netshim|$REPO/target/debug/netshim|" examples/docker/daemon.json >"$DAEMON_JSON"
  chown "$TEST_USER:" "$DAEMON_JSON"
  chmod 0644 "$DAEMON_JSON"
  sed "s|/usr/local/bin/netshim|$REPO/target/debug/netshim|" examples/docker/daemon.json >"$ROOTFUL_DAEMON_JSON"
  chmod 0644 "$ROOTFUL_DAEMON_JSON"
}

start_rootful_docker() {
  say "starting a private rootful dockerd"
  install -d -m 0700 "$ROOTFUL_DIR"
  local log=$ROOTFUL_DIR.log
  setsid dockerd --data-root /var/lib/netshim-test-docker --exec-root "$ROOTFUL_DIR/exec" \
    --pidfile "$ROOTFUL_DIR/docker.pid" -H "$ROOTFUL_SOCK" \
    --bridge none --iptables=false --ip-masq=false --ip-forward=false \
    --config-file "$ROOTFUL_DAEMON_JSON" >"$log" 2>&1 &
  ROOTFUL_PID=$!
  for _ in $(seq 1 120); do
    if /usr/bin/docker -H "$ROOTFUL_SOCK" info >/dev/null 2>&1; then return 0; fi
    kill -0 "$ROOTFUL_PID" 2>/dev/null || { tail -20 "$log" >&2; die "the rootful dockerd exited; its log is above"; }
    sleep 0.5
  done
  tail -20 "$log" >&2
  die "the rootful dockerd did not answer within 60 s; its log is above"
}

import_busybox() {
  if as_user /usr/bin/docker image inspect netshim-busybox >/dev/null 2>&1 &&
    /usr/bin/docker -H "$ROOTFUL_SOCK" image inspect netshim-busybox netshim-pause-noenv >/dev/null 2>&1 &&
    (cd /tmp && as_user podman image exists netshim-busybox) &&
    (cd /tmp && podman image exists netshim-busybox); then
    return 0
  fi
  say "importing a busybox image (from Debian's busybox-static)"
  local root
  root=$(mktemp -d)
  mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev}
  cp /bin/busybox "$root/bin/"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
  echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
  echo "root:x:0:" >"$root/etc/group"
  tar -C "$root" -cf "$root.tar" .
  chmod 0644 "$root.tar"
  as_user /usr/bin/docker import --change "ENV PATH=/bin" "$root.tar" netshim-busybox >/dev/null
  /usr/bin/docker -H "$ROOTFUL_SOCK" import --change "ENV PATH=/bin" "$root.tar" netshim-busybox >/dev/null
  # A pod sandbox ("pause") image for the CRI tests, which save it from here.
  # Its config has no Env, as some pause images: the sandbox's process gets no
  # PATH, and its absolute args[0] must run as under runc.
  /usr/bin/docker -H "$ROOTFUL_SOCK" import \
    --change 'CMD ["/bin/sleep", "2147483647"]' "$root.tar" netshim-pause-noenv >/dev/null
  (cd /tmp && as_user podman import --change "ENV PATH=/bin" "$root.tar" netshim-busybox >/dev/null)
  (cd /tmp && podman import --change "ENV PATH=/bin" "$root.tar" netshim-busybox >/dev/null)
  rm -rf "$root" "$root.tar"
}

# A short run of each cargo-fuzz target (fuzz/). libFuzzer needs a nightly
# toolchain; without one this says so loudly (the same properties still ran
# in `cargo test`, on generated inputs). NETSHIM_FUZZ_SECONDS sets the time
# per target (default 10; 0 skips, loudly).
fuzz_smoke() {
  local secs=${NETSHIM_FUZZ_SECONDS:-10}
  if [ "$secs" = 0 ]; then
    say "fuzz smoke run SKIPPED: NETSHIM_FUZZ_SECONDS=0"
    return 0
  fi
  if ! cargo +nightly --version >/dev/null 2>&1; then
    say "fuzz smoke run SKIPPED: no nightly Rust toolchain (rustup toolchain install nightly); the fuzz properties ran in cargo test on generated inputs only"
    return 0
  fi
  if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz"
    cargo install --locked cargo-fuzz
  fi
  local t
  for t in filter summary records read merge policy config; do
    say "fuzzing $t for ${secs} s"
    (cd fuzz && cargo +nightly fuzz run "$t" -- -max_total_time="$secs" 2>&1 |
      grep -E '^Done|ERROR|SUMMARY|panicked')
  done
}

# install.sh into a throwaway prefix and back out: every file it lists is
# there and sound (the binary runs, the man page is roff, the bash
# completion loads), and --uninstall leaves no file behind.
install_check() {
  say "checking install.sh and install.sh --uninstall (throwaway PREFIX, debug build)"
  local prefix
  prefix=$(mktemp -d)
  PREFIX=$prefix PROFILE=dev ./install.sh
  "$prefix/bin/netshim" --version >/dev/null || die "the installed binary does not run"
  grep -q '^\.TH' "$prefix/share/man/man1/netshim.1" || die "the installed man page is not roff"
  bash -c "source $prefix/share/bash-completion/completions/netshim && complete -p netshim" >/dev/null ||
    die "the installed bash completion does not load"
  [ "$(wc -l <"$prefix/share/netshim/installed-files")" = 5 ] || die "install.sh listed an unexpected number of files"
  PREFIX=$prefix ./install.sh --uninstall
  local left
  left=$(find "$prefix" -type f)
  [ -z "$left" ] || die "install.sh --uninstall left files: $left"
  rm -rf "$prefix"
}

install_packages
make_test_user

say "building"
cargo build --workspace --all-targets

if [ "${NETSHIM_SKIP_LINT:-}" != 1 ]; then
  say "cargo fmt --check and cargo clippy"
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets -- -D warnings
fi

write_daemon_json
start_rootless_docker
start_rootful_docker
import_busybox

say "running the tests"
export NETSHIM_TEST_USER=$TEST_USER
export NETSHIM_TEST_RUNTIME_DIR=$TEST_RUNTIME_DIR
export NETSHIM_TEST_DOCKER=1
export NETSHIM_TEST_ROOTFUL_DOCKER=$ROOTFUL_SOCK
export NETSHIM_TEST_ROOTFUL_DAEMON_JSON=$ROOTFUL_DAEMON_JSON
export NETSHIM_TEST_ROOTLESS_DAEMON_JSON=$DAEMON_JSON
KUBE_DEFAULT=${XDG_CACHE_HOME:-$HOME/.cache}/netshim/kube/v1.26.1/bin
if [ -z "${KUBE_BIN_DIR:-}" ] && [ -d "$KUBE_DEFAULT" ]; then KUBE_BIN_DIR=$KUBE_DEFAULT; fi
if [ -n "${KUBE_BIN_DIR:-}" ]; then
  export KUBE_BIN_DIR
else
  say "real-cluster tests (kube_cluster) SKIPPED: no KUBE_BIN_DIR and no $KUBE_DEFAULT (kube-apiserver and kubelet v1.26.x)"
fi
cargo test --workspace --no-fail-fast "$@"

if [ $# = 0 ]; then install_check; fi

# The fuzz smoke run belongs to the whole suite, not to a filtered run.
if [ $# = 0 ]; then fuzz_smoke; fi
