#!/usr/bin/env bash
# Sourced by scripts: starts what the tests and a headless run need, each only if missing:
# an X display with a window manager (Xvfb + openbox), PulseAudio with a null sink whose
# monitor is the default source, and a D-Bus session bus. Exports DISPLAY, XDG_RUNTIME_DIR,
# PULSE_SERVER and DBUS_SESSION_BUS_ADDRESS.

blende_start_x() {
  if [ -z "${DISPLAY:-}" ]; then
    export DISPLAY=:${BLENDE_DISPLAY_NUM:-77}
    if ! xdpyinfo >/dev/null 2>&1; then
      Xvfb "$DISPLAY" -screen 0 1920x1080x24 -nolisten tcp >/tmp/blende-xvfb.log 2>&1 &
      for _ in $(seq 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.1; done
    fi
  fi
  # xcap needs _NET_CLIENT_LIST_STACKING: a window manager must be running.
  if ! xprop -root _NET_SUPPORTING_WM_CHECK 2>/dev/null | grep -q 'window id'; then
    openbox >/tmp/blende-openbox.log 2>&1 &
    for _ in $(seq 50); do xprop -root _NET_SUPPORTING_WM_CHECK 2>/dev/null | grep -q 'window id' && break; sleep 0.1; done
  fi
}

blende_start_pulse() {
  export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/blende-xdg}
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
  if ! pactl info >/dev/null 2>&1; then
    pulseaudio -D --exit-idle-time=-1 --system=false --disallow-exit >/tmp/blende-pulse.log 2>&1 || true
    for _ in $(seq 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  if ! pactl list short sinks | grep -q blende_null; then
    pactl load-module module-null-sink sink_name=blende_null >/dev/null
  fi
  pactl set-default-sink blende_null
  pactl set-default-source blende_null.monitor
  export PULSE_SERVER="unix:$XDG_RUNTIME_DIR/pulse/native"
}

blende_start_dbus() {
  if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
    eval "$(dbus-launch --sh-syntax)"
    export DBUS_SESSION_BUS_ADDRESS
  fi
}

# The Secret Service (gnome-keyring) on the session bus, unlocked with a throw-away password,
# for the keychain tests; only if nothing answers on org.freedesktop.secrets yet.
blende_start_keyring() {
  blende_start_dbus
  if ! dbus-send --session --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner \
      string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'; then
    export XDG_DATA_HOME=${XDG_DATA_HOME:-/tmp/blende-keyring-data}
    mkdir -p "$XDG_DATA_HOME"
    printf 'blende-test' | gnome-keyring-daemon --unlock --components=secrets --daemonize >/tmp/blende-keyring.env 2>/tmp/blende-keyring.log || true
    for _ in $(seq 50); do
      dbus-send --session --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner \
        string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true' && break
      sleep 0.1
    done
  fi
}

# Janus (VideoRoom) inside the `blende-ns` network namespace for the interop tests; only if it
# is not already up. Needs root for `ip netns`. Exports BLENDE_NETNS.
blende_start_janus() {
  export BLENDE_NETNS=${BLENDE_NETNS:-blende-ns}
  tests/interop/janus-netns.sh start
}

# PostgreSQL for blende-server's persistence tests (a throw-away cluster on 127.0.0.1).
# shellcheck source=../crates/blende-server/tests/services.sh
. "$(dirname "${BASH_SOURCE[0]}")/../crates/blende-server/tests/services.sh"
