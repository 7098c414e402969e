#!/usr/bin/env bash
# Sourced by scripts: starts what the tests and a headless run need, each only if missing:
# an X display with a window manager (Xvfb + openbox), PulseAudio with a null sink whose
# monitor is the default source, and a D-Bus session bus. Exports DISPLAY, XDG_RUNTIME_DIR,
# PULSE_SERVER and DBUS_SESSION_BUS_ADDRESS.

blende_start_x() {
  if [ -z "${DISPLAY:-}" ]; then
    export DISPLAY=:${BLENDE_DISPLAY_NUM:-77}
    if ! xdpyinfo >/dev/null 2>&1; then
      # -displayfd: Xvfb picks a free display itself, so a lock file left behind by a server of
      # an earlier run (whose PID may now belong to another process) cannot keep it from starting.
      local fifo=/tmp/blende-xvfb.display
      rm -f "$fifo"
      Xvfb -displayfd 3 -screen 0 1920x1080x24 -nolisten tcp -noreset 3>"$fifo" >/tmp/blende-xvfb.log 2>&1 &
      for _ in $(seq 100); do [ -s "$fifo" ] && break; sleep 0.1; done
      export DISPLAY=:$(tr -d '[:space:]' <"$fifo")
      for _ in $(seq 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.1; done
      if ! xdpyinfo >/dev/null 2>&1; then
        echo "services: Xvfb did not start:" >&2
        cat /tmp/blende-xvfb.log >&2
        return 1
      fi
    fi
  fi
  # xcap needs _NET_CLIENT_LIST_STACKING and xdotool _NET_ACTIVE_WINDOW: a window manager
  # must be running, and it must still be running for the last X test. If openbox ever exits,
  # it is started again and the exit is logged (scripts/test.sh reports it).
  if ! blende_wm_running; then
    : >/tmp/blende-openbox.log
    (
      while xdpyinfo >/dev/null 2>&1; do
        openbox >>/tmp/blende-openbox.log 2>&1 && break
        echo "services: openbox exited with $? on $DISPLAY at $(date -u +%T); started again" >>/tmp/blende-openbox.log
        sleep 0.5
      done
    ) &
    for _ in $(seq 100); do blende_wm_running && break; sleep 0.1; done
    if ! blende_wm_running; then
      echo "services: no window manager on $DISPLAY; openbox said:" >&2
      cat /tmp/blende-openbox.log >&2
      return 1
    fi
  fi
}

# Whether an EWMH window manager runs on $DISPLAY: the root's _NET_SUPPORTING_WM_CHECK names a
# window that still exists (the root property outlives a window manager that crashed).
blende_wm_running() {
  local check
  check=$(xprop -root _NET_SUPPORTING_WM_CHECK 2>/dev/null | sed -n 's/.*window id # *//p')
  [ -n "$check" ] && xprop -id "$check" _NET_SUPPORTING_WM_CHECK >/dev/null 2>&1
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
