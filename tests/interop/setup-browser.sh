#!/usr/bin/env bash
# Python selenium (PyPI) in a venv for the Chromium interop tests, and aiortc for the WHEP
# endpoint; idempotent.
# Chromium and chromedriver come from Debian (scripts/deps.sh); selenium never downloads a browser
# because the tests set SE_OFFLINE=true and give it /usr/bin/chromedriver.
set -euo pipefail
VENV=${BLENDE_VENV:-/var/tmp/blende-venv}
if ! "$VENV/bin/python" -c 'import selenium' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'selenium>=4.20,<5'
fi
# aiortc + aiohttp: an independent WebRTC stack for the WHEP endpoint (tests/interop/whep_server.py).
if ! "$VENV/bin/python" -c 'import aiortc, aiohttp, numpy' 2>/dev/null; then
  "$VENV/bin/pip" install -q 'aiortc>=1.9,<2' 'aiohttp>=3.9,<4' 'numpy>=1.26,<3'
fi
