#!/usr/bin/env bash
# simple-whip-server (Meetecho, Debian package) for the WHIP interop test; idempotent.
# Its Debian package conflicts with this machine's Node.js, so: download the .deb, unpack it
# into $BLENDE_WHIP_DIR and install its Node dependencies from npm there.
set -euo pipefail
DIR=${BLENDE_WHIP_DIR:-/var/tmp/blende-whip}
if [ -f "$DIR/usr/share/simple-whip-server/src/server.js" ] && [ -d "$DIR/usr/share/simple-whip-server/node_modules/express" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "setup-whip: npm missing (Debian: nodejs npm)" >&2; exit 1; }
mkdir -p "$DIR"
cd "$DIR"
apt-get download simple-whip-server >/dev/null 2>&1
dpkg-deb -x simple-whip-server_*.deb .
APP="$DIR/usr/share/simple-whip-server"
rm -f "$APP/src/config.js"
cp etc/simple-whip-server/config.js "$APP/src/config.js"
cd "$APP"
[ -f package.json ] || echo '{"name":"simple-whip-server-local","private":true}' > package.json
npm install --silent --no-audit --no-fund express@4 cors colors@1.4.0 debug async websocket body-parser >/dev/null
