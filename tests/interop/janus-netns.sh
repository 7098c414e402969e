#!/usr/bin/env bash
# Creates the `blende-ns` network namespace (127.0.0.1 on lo, 127.0.0.2/32 on a veth whose both
# ends stay inside) and starts Janus in it with tests/interop/janus/ as config folder.
# Idempotent: does nothing that is already done. Needs root (ip netns).
# Usage: tests/interop/janus-netns.sh [start|stop|status]
set -euo pipefail
NS=${BLENDE_NETNS:-blende-ns}
HERE="$(cd "$(dirname "$0")" && pwd)"
LOG=${BLENDE_JANUS_LOG:-/tmp/blende-janus.log}
PIDFILE=/tmp/blende-janus.pid

in_ns() { ip netns exec "$NS" "$@"; }

janus_up() {
  # The WebSocket transport answers on 127.0.0.1:8188 inside the namespace.
  in_ns bash -c 'exec 3<>/dev/tcp/127.0.0.1/8188' 2>/dev/null
}

start() {
  if ! ip netns list | grep -qw "$NS"; then
    ip netns add "$NS"
  fi
  in_ns ip link set lo up
  if ! in_ns ip link show v0 >/dev/null 2>&1; then
    in_ns ip link add v0 type veth peer name v1
  fi
  in_ns sysctl -qw net.ipv6.conf.v0.disable_ipv6=1 net.ipv6.conf.v1.disable_ipv6=1
  # Large socket buffers: video bursts otherwise overflow the 208 KB default.
  in_ns sysctl -qw net.core.rmem_default=4194304 net.core.rmem_max=8388608 2>/dev/null || true
  # Every other socket's port outside Janus's RTP range (20000-40000, janus.jcfg): a rule on
  # `udp dport 20000-40000` then shapes what goes to Janus and nothing Janus sends back.
  in_ns sysctl -qw net.ipv4.ip_local_port_range="41000 60999"
  if ! in_ns ip -4 addr show dev v0 | grep -q '127.0.0.2/32'; then
    in_ns ip addr add 127.0.0.2/32 dev v0
  fi
  in_ns ip link set v1 up
  in_ns ip link set v0 up

  # A running Janus is kept unless its configuration changed since it started.
  if janus_up && [ -f "$PIDFILE" ] && [ -z "$(find "$HERE/janus" -newer "$PIDFILE" -print -quit)" ]; then
    echo "janus-netns: Janus already running in $NS" >&2
    return 0
  fi
  # A Janus of ours that runs but does not answer: replace it.
  stop
  in_ns janus -F "$HERE/janus" -o -N -L "$LOG" >/dev/null 2>&1 &
  for _ in $(seq 100); do
    if janus_up; then
      # `ip netns exec` forks: record Janus's own pid, found by its exact command line.
      pgrep -n -f "^janus -F $HERE/janus " >"$PIDFILE" || true
      echo "janus-netns: Janus up in $NS (log $LOG)" >&2
      return 0
    fi
    sleep 0.1
  done
  echo "janus-netns: Janus did not come up; see $LOG" >&2
  tail -20 "$LOG" >&2 || true
  return 1
}

stop() {
  if [ -f "$PIDFILE" ]; then
    pid=$(cat "$PIDFILE")
    if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$PIDFILE"
  fi
}

status() {
  if ip netns list | grep -qw "$NS" && janus_up; then echo up; else echo down; return 1; fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
