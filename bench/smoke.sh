#!/usr/bin/env bash
# A few-second benchmark smoke test, fit for CI: builds parleyd and
# ircload, starts parleyd on a free loopback port with the benchmark
# config, runs every ircload scenario at a small size (`ircload smoke`),
# and fails if any message is lost or reordered or any client fails to
# register, join or get the lobby message; then the same over WebSocket
# (`--transport ws`, on the file store's /socket). The numbers it prints
# are not benchmarks; bench/peers.sh and bench/websocket.sh are.
#
#   bench/smoke.sh
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PROFILE=${PROFILE:-release}
cd "$REPO"
if [ "$PROFILE" = release ]; then
    cargo build --release -q -p parley-bench -p parley-server
else
    cargo build -q -p parley-bench -p parley-server
fi
BIN="$REPO/target/$PROFILE"
# shellcheck source=bench/servers.sh
source "$REPO/bench/servers.sh"
ulimit -n 4096 2>/dev/null || true

dir=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

write_configs "$dir/conf" >/dev/null
# Made here, not by the server's redirect: the loop below may read it first.
: >"$dir/stdout"
"$BIN/parleyd" --data-dir "$dir/data" --irc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    --config "$dir/conf/parleyd.toml" >"$dir/stdout" 2>"$dir/stderr" &
pid=$!
addr=
http=
for _ in $(seq 1 200); do
    addr=$(sed -n 's/^parleyd ready irc=\([^ ]*\).*/\1/p' "$dir/stdout")
    http=$(sed -n 's/^parleyd ready .*http=\([^ ]*\).*/\1/p' "$dir/stdout")
    [ -n "$addr" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
done
if [ -z "$addr" ]; then
    echo "parleyd did not become ready:" >&2
    cat "$dir/stderr" >&2
    exit 1
fi
"$BIN/ircload" smoke --server "$addr" --server-pid "$pid" --label parleyd --users "${SMOKE_USERS:-300}" >/dev/null
"$BIN/ircload" smoke --transport ws --server "$http" --server-pid "$pid" --label parleyd \
    --users "${SMOKE_USERS:-300}" >/dev/null
