# shellcheck shell=bash
# Test services for blende-server. Source this file, then call the function:
#
#   . crates/blende-server/tests/services.sh
#   blende_start_postgres            # exports BLENDE_TEST_POSTGRES_URL
#   BLENDE_REQUIRE_POSTGRES=1 cargo test -p blende-server
#
# Needs Debian's `postgresql` package (server binaries under /usr/lib/postgresql/<v>/bin).

# Starts (or finds already running) a throw-away PostgreSQL cluster under /var/tmp on
# 127.0.0.1 with a free port, trust authentication for the loopback only, and a database
# `blende_test`. Idempotent: a second call reuses the running cluster.
blende_start_postgres() {
    local base="${BLENDE_POSTGRES_DIR:-/var/tmp/blende-postgres}"
    local bin
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
        echo "blende_start_postgres: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
        return 1
    fi
    # PostgreSQL refuses to run as root: use the package's `postgres` user then.
    local as=()
    if [ "$(id -u)" = 0 ]; then
        as=(runuser -u postgres --)
    fi
    mkdir -p "$base"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$base"; fi

    if [ -f "$base/port" ] && "${as[@]}" "$bin/pg_ctl" -D "$base/data" status >/dev/null 2>&1; then
        local port
        port="$(cat "$base/port")"
        export BLENDE_TEST_POSTGRES_URL="postgres://blende@127.0.0.1:${port}/blende_test"
        return 0
    fi

    if [ ! -f "$base/data/PG_VERSION" ]; then
        "${as[@]}" "$bin/initdb" -D "$base/data" -U blende --auth=trust --encoding=UTF8 --no-sync >"$base/initdb.log" 2>&1 || {
            echo "blende_start_postgres: initdb failed, see $base/initdb.log" >&2
            return 1
        }
    fi

    local port=""
    local p
    for p in $(seq 55432 55632); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            port="$p"
            break
        fi
    done
    if [ -z "$port" ]; then
        echo "blende_start_postgres: no free port in 55432-55632" >&2
        return 1
    fi
    mkdir -p "$base/sock"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$base/sock"; fi
    "${as[@]}" "$bin/pg_ctl" -D "$base/data" -l "$base/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $base/sock -c fsync=off" start >/dev/null || {
        echo "blende_start_postgres: the server did not start, see $base/server.log" >&2
        return 1
    }
    echo "$port" >"$base/port"
    "${as[@]}" "$bin/psql" -h 127.0.0.1 -p "$port" -U blende -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'blende_test'" | grep -q 1 ||
        "${as[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U blende blende_test || return 1
    export BLENDE_TEST_POSTGRES_URL="postgres://blende@127.0.0.1:${port}/blende_test"
}

# Stops the cluster started by blende_start_postgres (the data stays for the next start).
blende_stop_postgres() {
    local base="${BLENDE_POSTGRES_DIR:-/var/tmp/blende-postgres}"
    local bin
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    local as=()
    if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); fi
    if [ -d "$base/data" ]; then "${as[@]}" "$bin/pg_ctl" -D "$base/data" -m fast stop >/dev/null 2>&1 || true; fi
    rm -f "$base/port"
    unset BLENDE_TEST_POSTGRES_URL
}
