#!/usr/bin/env bash
# The history benchmark (docs/BENCHMARKS.md, "History"): persists N
# messages (default 1,000,000) through the real queue and writer into a
# fresh store, then times CHATHISTORY- and SEARCH-shaped queries on them
# directly and over IRC against a parleyd started on that store. Runs twice
# in the same run: SQLite (the default store), then PostgreSQL
# (`[database] url`, started by tools/postgres/start.sh with its defaults
# in a temp directory; SKIP_POSTGRES=1 leaves it out).
#
#   bash bench/history.sh [N]
#
# Fan-out and round trips with history on and off, same run: bench/peers.sh
# with the same binary as parleyd-before and history turned off for it:
#   PARLEYD_BEFORE=target/release/parleyd PARLEYD_BEFORE_TOML=$'[history]\nenabled = false' \
#       SERVERS="parleyd parleyd-before" SCENARIOS="pingpong fanout" bench/peers.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000000}
out=${OUT:-/tmp/parley-history-bench}
cd "$root"
cargo build -q --release -p parley-server --bin parleyd --example history_bench
bin=target/release/examples/history_bench
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    if declare -F parley_postgres_stop >/dev/null; then
        parley_postgres_stop
    fi
}
trap cleanup EXIT

# One store: populate, direct queries, queries over IRC. $1 names it; the
# database URL (empty for SQLite) is in PARLEY_BENCH_DATABASE_URL.
run() {
    local name=$1 dir=$out/$1
    if [ -z "${SKIP_POPULATE:-}" ]; then
        rm -rf "$dir"
        mkdir -p "$dir"
        echo "== $name: populate ($n messages)"
        "$bin" populate "$dir/data" "$n"
    fi
    echo "== $name: queries, direct"
    "$bin" query "$dir/data"
    echo "== $name: queries over IRC"
    local port=$((20000 + RANDOM % 20000))
    # The reader sends its requests back to back: no flood limit.
    printf '[limits]\nflood_burst = 1000000\nflood_lines_per_second = 1000000.0\n' >"$dir/parleyd.toml"
    if [ -n "${PARLEY_BENCH_DATABASE_URL:-}" ]; then
        printf '[database]\nurl = "%s"\n' "$PARLEY_BENCH_DATABASE_URL" >>"$dir/parleyd.toml"
    fi
    target/release/parleyd --config "$dir/parleyd.toml" --data-dir "$dir/data" --irc-listen "127.0.0.1:$port" \
        --http-listen 127.0.0.1:0 >"$dir/parleyd.stdout" 2>"$dir/parleyd.stderr" &
    pid=$!
    for _ in $(seq 100); do
        grep -q "parleyd ready" "$dir/parleyd.stdout" 2>/dev/null && break
        sleep 0.1
    done
    "$bin" irc "127.0.0.1:$port" 1000
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
}

PARLEY_BENCH_DATABASE_URL= run sqlite
if [ -z "${SKIP_POSTGRES:-}" ]; then
    # shellcheck source=tools/postgres/start.sh
    source tools/postgres/start.sh
    PARLEY_BENCH_DATABASE_URL=$PARLEY_TEST_POSTGRES_URL run postgres
fi
