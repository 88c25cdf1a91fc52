#!/usr/bin/env bash
# The history benchmark (docs/BENCHMARKS.md, "History"): persists N
# messages (default 1,000,000) through the real queue and writer into a
# fresh database, then times CHATHISTORY- and SEARCH-shaped queries on them
# directly and over IRC against a parleyd started on that data directory.
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
if [ -z "${SKIP_POPULATE:-}" ]; then
    rm -rf "$out"
    mkdir -p "$out"
    echo "== populate ($n messages)"
    "$bin" populate "$out/data" "$n"
fi
echo "== queries, direct"
"$bin" query "$out/data"
echo "== queries over IRC"
port=$((20000 + RANDOM % 20000))
# The reader sends its requests back to back: no flood limit.
printf '[limits]\nflood_burst = 1000000\nflood_lines_per_second = 1000000.0\n' >"$out/parleyd.toml"
target/release/parleyd --config "$out/parleyd.toml" --data-dir "$out/data" --irc-listen "127.0.0.1:$port" \
    --http-listen 127.0.0.1:0 >"$out/parleyd.stdout" 2>"$out/parleyd.stderr" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q "parleyd ready" "$out/parleyd.stdout" 2>/dev/null && break
    sleep 0.1
done
"$bin" irc "127.0.0.1:$port" 1000
