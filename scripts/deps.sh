#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Blende needs. Idempotent: installs only what is missing.
# Usage: scripts/deps.sh [build] [test] [package]   (build = compile and run, test = also the
# test suite, package = build the .deb/.rpm packages; the test suite also tests the packages)
set -euo pipefail

BUILD=(pkg-config cmake clang libclang-dev libxcb1-dev libxcb-shm0-dev libxcb-randr0-dev
  libpipewire-0.3-dev libgbm-dev libwayland-dev libegl-dev libxkbcommon-dev libx11-dev
  libxi-dev libxtst-dev libasound2-dev libvpx-dev libssl-dev libdbus-1-dev
  libgl1-mesa-dri libegl-mesa0 libxkbcommon-x11-0 xvfb openbox)
TEST=(xdotool xterm x11-utils pulseaudio pulseaudio-utils dbus dbus-x11 imagemagick
  janus libjs-janus-gateway iproute2 curl chromium chromium-driver python3-venv openssl
  postgresql gnome-keyring coturn nftables iptables libnetfilter-queue1)
PACKAGE=(dpkg-dev fakeroot binutils rpm librsvg2-bin debootstrap desktop-file-utils appstream systemd
  man-db)

want=("${BUILD[@]}")
for arg in "$@"; do
  case "$arg" in
    test) want+=("${TEST[@]}" "${PACKAGE[@]}") ;;
    package) want+=("${PACKAGE[@]}") ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "deps: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if ! command -v cargo >/dev/null; then
  echo "deps: Rust is missing: install Rust 1.88 or newer (https://rustup.rs), then run this again" >&2
  exit 1
fi

# `fuzz`: cargo-fuzz (from crates.io, built once into the target folder) and a nightly Rust
# (libFuzzer's instrumentation needs it; rustup installs it where it can reach its server).
for arg in "$@"; do
  if [ "$arg" = fuzz ] || [ "$arg" = test ]; then
    tools="${CARGO_TARGET_DIR:-/var/tmp/blende-target}/tools"
    toolchains=$(rustup toolchain list 2>/dev/null || true)
    if ! grep -q '^nightly' <<<"$toolchains"; then
      echo "deps: installing the nightly Rust toolchain (for fuzzing)" >&2
      rustup toolchain install nightly --profile minimal >&2
    fi
    if [ ! -x "$tools/bin/cargo-fuzz" ]; then
      echo "deps: building cargo-fuzz into $tools" >&2
      CARGO_TARGET_DIR="$tools/build" cargo install cargo-fuzz --version 0.13.2 --locked --root "$tools" >&2
    fi
    break
  fi
done
