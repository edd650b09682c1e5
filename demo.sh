#!/usr/bin/env bash
# The README's first command: build netshim and run `netshim demo` (a throwaway
# target netshim makes itself, with traffic on it), from nothing but a Rust
# toolchain.
#
#     ./demo.sh [demo flags, e.g. -c 20 -w /tmp/x.pcapng]
#
# It installs exactly what the build and the demo need and are missing, with
# apt-get (through sudo when you are not root), and says what and why first:
#   - pkg-config, libpcap-dev: the capture engine compiles tcpdump filters with
#     libpcap;
#   - libseccomp-dev: the seccomp filters of every process netshim starts;
#   - gcc (for the C parts of some crates), if there is no C compiler;
#   - uidmap (newuidmap/newgidmap), only when you are not root: the demo makes
#     a user namespace of yours and maps UID 65534 in it from your
#     subordinate range.
# Then it builds the netshim binary alone (`cargo build --release -p netshim`;
# the test crate is not built) and runs the demo as you.
# NETSHIM_NO_INSTALL=1 skips the installation step (it then only checks).
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'demo.sh: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null 2>&1 ||
  die "cargo was not found: install a Rust toolchain (https://rustup.rs), open a new shell, and run ./demo.sh again"

# What is missing, as Debian package names (Debian and Ubuntu share them).
missing=()
has_pc() { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$1"; }
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
has_pc libpcap || [ -e /usr/include/pcap/pcap.h ] || missing+=(libpcap-dev)
has_pc libseccomp || missing+=(libseccomp-dev)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
if [ "$(id -u)" != 0 ]; then
  command -v newuidmap >/dev/null 2>&1 && command -v newgidmap >/dev/null 2>&1 || missing+=(uidmap)
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "${NETSHIM_NO_INSTALL:-}" = 1 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "missing: ${missing[*]} (Debian/Ubuntu package names; on other systems: pkg-config and the development files of libpcap and libseccomp, plus newuidmap for the demo as a user). Install them and run ./demo.sh again"
  fi
  for p in "${missing[@]}"; do
    case $p in
      pkg-config) why="finds libpcap and libseccomp for the build" ;;
      libpcap-dev) why="libpcap compiles tcpdump filters for the capture engine" ;;
      libseccomp-dev) why="libseccomp builds the seccomp filters of the processes netshim starts" ;;
      gcc) why="a C compiler for the C parts of some crates" ;;
      uidmap) why="newuidmap/newgidmap map UID 65534 in the demo's user namespace" ;;
    esac
    say "installing $p: $why"
  done
  if [ "$(id -u)" = 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    die "installing packages needs root and there is no sudo here; as root run: apt-get update && apt-get install -y ${missing[*]}  -- then run ./demo.sh again"
  fi
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
    die "apt-get update failed (see above); install ${missing[*]} yourself and run ./demo.sh again"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    die "apt-get install ${missing[*]} failed (see above)"
fi

say "building netshim (cargo build --release -p netshim; the first build takes a few minutes)"
cargo build --release -p netshim
exec target/release/netshim demo "$@"
