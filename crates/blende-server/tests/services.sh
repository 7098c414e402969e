# shellcheck shell=bash
# Test services for blende-server. Source this file, then call the function:
#
#   . crates/blende-server/tests/services.sh
#   blende_start_postgres            # exports BLENDE_TEST_POSTGRES_URL
#   BLENDE_REQUIRE_POSTGRES=1 cargo test -p blende-server
#
# Needs Debian's `postgresql` package (server binaries under /usr/lib/postgresql/<v>/bin).

# Starts (or finds already running) a throw-away PostgreSQL cluster under /var/tmp on
# 127.0.0.1 with a free port, TLS only (a test CA made here with openssl; plain-text TCP is
# rejected), trust authentication for the loopback only, and a database `blende_test`.
# The URL verifies the certificate and name (sslmode=verify-full, sslrootcert=the test CA).
# Idempotent: a second call reuses the running cluster.
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

    local tls="$base/tls"
    if [ -f "$base/port" ] && "${as[@]}" "$bin/pg_ctl" -D "$base/data" status >/dev/null 2>&1; then
        if [ -f "$tls/ca.pem" ]; then
            local port
            port="$(cat "$base/port")"
            export BLENDE_TEST_POSTGRES_URL="postgres://blende@127.0.0.1:${port}/blende_test?sslmode=verify-full&sslrootcert=$tls/ca.pem"
            return 0
        fi
        # A cluster from before TLS: restart it with TLS.
        "${as[@]}" "$bin/pg_ctl" -D "$base/data" -m fast stop >/dev/null 2>&1 || true
    fi
    if [ ! -f "$tls/ca.pem" ]; then
        mkdir -p "$tls"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Blende test CA" \
            -keyout "$tls/ca.key" -out "$tls/ca.pem" >/dev/null 2>&1 &&
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$tls/server.key" -out "$tls/server.csr" >/dev/null 2>&1 &&
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tls/ext" &&
        openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 3650 \
            -extfile "$tls/ext" -out "$tls/server.pem" >/dev/null 2>&1 || {
            echo "blende_start_postgres: making the test certificates failed" >&2
            rm -f "$tls/ca.pem"
            return 1
        }
        chmod 600 "$tls/server.key"
        if [ "$(id -u)" = 0 ]; then chown postgres: "$tls/server.key" "$tls/server.pem"; fi
        chmod 644 "$tls/ca.pem"
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
    # TCP only with TLS; the Unix socket (for pg_ctl) as before.
    printf 'local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n' >"$base/pg_hba.conf"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$base/pg_hba.conf"; fi
    "${as[@]}" "$bin/pg_ctl" -D "$base/data" -l "$base/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $base/sock -c fsync=off -c ssl=on -c ssl_cert_file=$tls/server.pem -c ssl_key_file=$tls/server.key -c hba_file=$base/pg_hba.conf" start >/dev/null || {
        echo "blende_start_postgres: the server did not start, see $base/server.log" >&2
        return 1
    }
    echo "$port" >"$base/port"
    "${as[@]}" "$bin/psql" -h "$base/sock" -p "$port" -U blende -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'blende_test'" | grep -q 1 ||
        "${as[@]}" "$bin/createdb" -h "$base/sock" -p "$port" -U blende blende_test || return 1
    export BLENDE_TEST_POSTGRES_URL="postgres://blende@127.0.0.1:${port}/blende_test?sslmode=verify-full&sslrootcert=$tls/ca.pem"
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
