#!/usr/bin/env bash
# Installs netshim under a prefix, or removes what it installed:
#
#     ./install.sh                      # build, install under /usr/local (sudo when not root)
#     PREFIX=$HOME/.local ./install.sh  # for one user, no sudo
#     ./install.sh --uninstall          # remove exactly what was installed
#
# What goes where (PREFIX defaults to /usr/local):
#   PREFIX/bin/netshim                                    the binary (release build)
#   PREFIX/share/man/man1/netshim.1                       its man page
#   PREFIX/share/bash-completion/completions/netshim      bash completion
#   PREFIX/share/zsh/site-functions/_netshim              zsh completion
#   PREFIX/share/fish/vendor_completions.d/netshim.fish   fish completion
#   PREFIX/share/netshim/installed-files                  this list, for --uninstall
#
# The build needs the packages ./demo.sh installs (pkg-config, libpcap-dev,
# libseccomp-dev, gcc); run that first on a fresh machine, or install them.
# At run time the binary needs libseccomp.so.2 (Debian and Ubuntu package
# libseccomp2), and, to compile capture filters, libpcap.so.0.8
# (libpcap0.8), which it opens only then; this script checks both, fails on
# a missing libseccomp and notes a missing libpcap.
set -euo pipefail
cd "$(dirname "$0")"

PREFIX=${PREFIX:-/usr/local}
LIST=$PREFIX/share/netshim/installed-files

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

# Runs a command as root when the prefix is not writable by this user.
as_owner() {
  if [ -w "$PREFIX" ] || { [ ! -e "$PREFIX" ] && [ -w "$(dirname "$PREFIX")" ]; }; then
    "$@"
  elif [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    die "$PREFIX is not writable and sudo is missing: run as root, or choose PREFIX=\$HOME/.local"
  fi
}

if [ "${1:-}" = --uninstall ]; then
  [ -f "$LIST" ] || die "nothing to remove: $LIST does not exist (installed with another PREFIX?)"
  say "removing the files listed in $LIST"
  while IFS= read -r f; do
    as_owner rm -f -- "$f"
  done <"$LIST"
  as_owner rm -f -- "$LIST"
  as_owner rmdir --ignore-fail-on-non-empty -- "$PREFIX/share/netshim" 2>/dev/null || true
  say "netshim removed from $PREFIX"
  exit 0
fi
[ $# -eq 0 ] || die "unknown argument $1: use no argument to install, or --uninstall"

command -v cargo >/dev/null || die "cargo is missing: install a Rust toolchain (https://rustup.rs)"
# PROFILE=dev installs the debug build (the test suite does, to reuse it).
PROFILE=${PROFILE:-release}
say "building netshim ($PROFILE profile)"
cargo build --profile "$PROFILE" --locked -p netshim
BIN=${CARGO_TARGET_DIR:-target}/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")/netshim

# Run-time libraries: a binary whose libraries are missing cannot start, so
# nothing in it can report them; ldd does, before installing.
missing=$(ldd "$BIN" | awk '/not found/ {print $1}')
if [ -n "$missing" ]; then
  for lib in $missing; do
    case $lib in
      libpcap.so*) pkg=libpcap0.8 ;;
      libseccomp.so*) pkg=libseccomp2 ;;
      *) pkg="the package that provides $lib" ;;
    esac
    printf 'install.sh: %s is missing at run time: install %s (apt-get install %s)\n' "$lib" "$pkg" "$pkg" >&2
  done
  exit 1
fi

# libpcap is opened (dlopen) only to compile capture filters, so it is not
# in ldd's list and netshim runs without it: say so, and go on.
# (No early exit in the pipe: with pipefail, ldconfig's SIGPIPE would count.)
"$(command -v ldconfig || echo /sbin/ldconfig)" -p | grep -E 'libpcap\.so\.(0\.8|1) ' >/dev/null ||
  say "note: libpcap.so.0.8 is missing: netshim runs, but capture filters need it (apt-get install libpcap0.8)"

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
"$BIN" completions man >"$STAGE/netshim.1"
"$BIN" completions bash >"$STAGE/netshim.bash"
"$BIN" completions zsh >"$STAGE/_netshim"
"$BIN" completions fish >"$STAGE/netshim.fish"

files=(
  "$BIN:bin/netshim:0755"
  "$STAGE/netshim.1:share/man/man1/netshim.1:0644"
  "$STAGE/netshim.bash:share/bash-completion/completions/netshim:0644"
  "$STAGE/_netshim:share/zsh/site-functions/_netshim:0644"
  "$STAGE/netshim.fish:share/fish/vendor_completions.d/netshim.fish:0644"
)
: >"$STAGE/installed-files"
for spec in "${files[@]}"; do
  IFS=: read -r src dst mode <<<"$spec"
  as_owner install -D -m "$mode" "$src" "$PREFIX/$dst"
  echo "$PREFIX/$dst" >>"$STAGE/installed-files"
  say "installed $PREFIX/$dst"
done
as_owner install -D -m 0644 "$STAGE/installed-files" "$LIST"
say "done: $PREFIX/bin/netshim ($("$PREFIX/bin/netshim" --version)); remove it with ./install.sh --uninstall (same PREFIX)"
