#!/usr/bin/env bash
# Installs what is missing, builds and starts Blende on its embedded default (no server to
# configure). Without a desktop session it starts a virtual display (Xvfb) for it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/blende-target}
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  . scripts/services.sh
  blende_start_x
  echo "run: no desktop session; Blende runs on the virtual display $DISPLAY" >&2
fi
exec cargo run --release --locked -p blende-app --bin blende -- "$@"
