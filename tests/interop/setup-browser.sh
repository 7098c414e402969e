#!/usr/bin/env bash
# Python selenium (PyPI) in a venv for the Chromium interop tests; idempotent.
# Chromium and chromedriver come from Debian (scripts/deps.sh); selenium never downloads a browser
# because the tests set SE_OFFLINE=true and give it /usr/bin/chromedriver.
set -euo pipefail
VENV=${BLENDE_VENV:-/var/tmp/blende-venv}
if ! "$VENV/bin/python" -c 'import selenium' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'selenium>=4.20,<5'
fi
