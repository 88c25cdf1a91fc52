#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for Parley's tests and benchmarks: installs
# `postgresql` from Debian if missing (as root), runs initdb in a temp
# directory as the `postgres` user (PostgreSQL refuses to run as root),
# starts it on a free loopback port with its socket in that directory,
# creates the database `parley`, and stops and deletes everything at exit.
# Every wait is bounded.
#
#   source tools/postgres/start.sh            # exports PARLEY_TEST_POSTGRES_URL;
#                                             # stopped when the sourcing shell exits
#   bash tools/postgres/start.sh CMD ARGS...  # runs CMD with it set, then stops
#   bash tools/postgres/start.sh              # prints the URL and waits (Ctrl-C stops)
#
# A script that sources this and has an EXIT trap of its own calls
# parley_postgres_stop from it (sourcing sets the trap only if none is set).

parley_postgres_fail() {
    echo "tools/postgres/start.sh: $*" >&2
    return 1
}

parley_postgres_bin() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$bin" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "tools/postgres/start.sh: installing postgresql from Debian" >&2
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || return 1
            # The package's own cluster is not ours: ours has its own port and directory.
            bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
        fi
    fi
    [ -n "$bin" ] || { parley_postgres_fail "PostgreSQL missing: install it (apt-get install postgresql)"; return 1; }
    echo "$bin"
}

# Runs a PostgreSQL program as the `postgres` user when we are root.
parley_postgres_as() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

parley_postgres_stop() {
    if [ -n "${PARLEY_POSTGRES_DIR:-}" ] && [ -d "$PARLEY_POSTGRES_DIR" ]; then
        parley_postgres_as "$PARLEY_POSTGRES_BIN/pg_ctl" -D "$PARLEY_POSTGRES_DIR/data" -m immediate -t 20 \
            stop >/dev/null 2>&1 || true
        rm -rf "$PARLEY_POSTGRES_DIR"
    fi
    PARLEY_POSTGRES_DIR=
}

parley_postgres_start() {
    PARLEY_POSTGRES_BIN=$(parley_postgres_bin) || return 1
    PARLEY_POSTGRES_DIR=$(mktemp -d -t parley-pg-XXXXXX)
    chmod 755 "$PARLEY_POSTGRES_DIR"
    [ "$(id -u)" = 0 ] && chown postgres: "$PARLEY_POSTGRES_DIR"
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if ! parley_postgres_as "$PARLEY_POSTGRES_BIN/initdb" -D "$PARLEY_POSTGRES_DIR/data" -U postgres -A trust \
        --no-sync >"$PARLEY_POSTGRES_DIR/initdb.log" 2>&1; then
        cat "$PARLEY_POSTGRES_DIR/initdb.log" >&2
        parley_postgres_stop
        parley_postgres_fail "initdb failed"
        return 1
    fi
    # Loopback and a socket in our directory only; at most 30 s to start.
    if ! parley_postgres_as "$PARLEY_POSTGRES_BIN/pg_ctl" -D "$PARLEY_POSTGRES_DIR/data" -w -t 30 \
        -l "$PARLEY_POSTGRES_DIR/server.log" \
        -o "-p $port -k $PARLEY_POSTGRES_DIR -c listen_addresses=127.0.0.1 -c max_connections=200" \
        start >/dev/null; then
        cat "$PARLEY_POSTGRES_DIR/server.log" >&2
        parley_postgres_stop
        parley_postgres_fail "PostgreSQL did not start"
        return 1
    fi
    parley_postgres_as "$PARLEY_POSTGRES_BIN/createdb" -h "$PARLEY_POSTGRES_DIR" -p "$port" -U postgres parley \
        || { parley_postgres_stop; parley_postgres_fail "createdb failed"; return 1; }
    PARLEY_POSTGRES_PORT=$port
    export PARLEY_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/parley"
    echo "tools/postgres/start.sh: PostgreSQL ready at $PARLEY_TEST_POSTGRES_URL" >&2
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    # Sourced.
    parley_postgres_start || return 1
    if [ -z "$(trap -p EXIT)" ]; then
        trap parley_postgres_stop EXIT
    fi
else
    set -euo pipefail
    parley_postgres_start
    trap parley_postgres_stop EXIT
    if [ $# -gt 0 ]; then
        status=0
        "$@" || status=$?
        exit "$status"
    fi
    echo "PARLEY_TEST_POSTGRES_URL=$PARLEY_TEST_POSTGRES_URL"
    echo "(Ctrl-C stops it)"
    sleep infinity &
    wait $! || true
fi
