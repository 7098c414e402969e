#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: installs what is missing, starts Xvfb with a
# window manager, PulseAudio with a null sink and a D-Bus session, then checks and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build test
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/blende-target}
scripts/prune-target.sh
. scripts/services.sh
blende_start_x
# A window manager that died mid-run makes later X tests fail for no fault of theirs: say so.
trap 'if grep -q "started again" /tmp/blende-openbox.log 2>/dev/null; then echo "test.sh: the window manager exited during the run:" >&2; grep "started again" /tmp/blende-openbox.log >&2; fi' EXIT
blende_start_pulse
blende_start_dbus
blende_start_keyring
blende_start_janus
blende_start_postgres
tests/interop/setup-browser.sh
tests/interop/setup-whip.sh
# Tests that need these services fail instead of skipping.
export BLENDE_REQUIRE_X11=1 BLENDE_REQUIRE_PULSE=1 BLENDE_REQUIRE_JANUS=1 BLENDE_REQUIRE_POSTGRES=1 BLENDE_REQUIRE_KEYRING=1

cargo fmt --all -- --check
cargo xtask check-deps
cargo xtask check-layers
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --no-fail-fast "$@"
# A short slice of every fuzz target over its corpus (scripts/fuzz.sh long for the full runs).
scripts/fuzz.sh
# The .deb and .rpm packages, installed into a clean Debian 12 root.
tests/package/test.sh
