#!/usr/bin/env bash
# Instructions per private message, counted by callgrind: parleyd, and the
# sink (the floor) for scale.
#
#   bench/instructions.sh                   # parleyd from this tree, and the sink
#   SERVERS=parleyd bench/instructions.sh   # parleyd only
#
# Each server runs under valgrind twice, for 1,000 and for 3,000 ping-pong
# round trips (after 100 unmeasured); the difference, divided by the 4,000
# extra messages, is one message's cost, with startup and shutdown
# cancelled out. "all threads" counts everything; "message path" leaves
# out the activity log's writer (the ticker thread formats the log lines
# once a second, off the path a message takes). Counted, not timed: the
# same binary gives the same count (to about 0.5 %: timer ticks) on a busy
# machine, so a change's effect shows even when it is far below the noise
# of a timed run. What it cannot show is the cost of cache misses, which
# is much of a message's time (docs/BENCHMARKS.md, finding 4).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/parley-instructions-$(date +%Y%m%d-%H%M%S)}
read -r -a servers <<<"${SERVERS:-parleyd sink}"
mkdir -p "$OUT/bin"
# shellcheck source=bench/servers.sh
source "$REPO/bench/servers.sh"

if ! command -v valgrind >/dev/null; then
    echo "needs valgrind (Debian: apt-get install valgrind)" >&2
    exit 1
fi
(cd "$REPO" && cargo build --release -q -p parley-bench -p parley-server)
cp "$REPO/target/release/parleyd" "$REPO/target/release/ircload" "$OUT/bin/"
BIN="$OUT/bin"
write_configs "$OUT/conf" >/dev/null

# instructions NAME ROUND_TRIPS: the server's whole instruction count over
# that many round trips.
instructions() {
    local name=$1 n=$2 port cg pid
    port=$(port_of "$name")
    cg="$OUT/$name-$n.callgrind"
    case "$name" in
        parleyd)
            rm -rf "$OUT/conf/parley-data"
            valgrind --tool=callgrind --callgrind-out-file="$cg" "$BIN/parleyd" \
                --data-dir "$OUT/conf/parley-data" --irc-listen "127.0.0.1:$port" \
                --http-listen 127.0.0.1:0 --config "$OUT/conf/parleyd.toml" >/dev/null 2>"$OUT/$name-$n.stderr" &
            ;;
        sink)
            valgrind --tool=callgrind --callgrind-out-file="$cg" "$BIN/ircload" sink \
                --listen "127.0.0.1:$port" >/dev/null 2>"$OUT/$name-$n.stderr" &
            ;;
        *)
            echo "instructions.sh counts parleyd and the sink, not $name" >&2
            return 1
            ;;
    esac
    pid=$!
    # Slow under valgrind (parleyd hashes its first admin password).
    wait_port "$port" 120 || { cat "$OUT/$name-$n.stderr" >&2; kill "$pid" 2>/dev/null; return 1; }
    "$BIN/ircload" pingpong --server "127.0.0.1:$port" --count "$n" --warmup 100 \
        >"$OUT/$name-$n.json" 2>"$OUT/$name-$n.table"
    kill -TERM "$pid"
    wait "$pid" || true
    awk '/^(summary|totals):/ { print $2; exit }' "$cg"
}

# log_writer NAME ROUND_TRIPS: the instructions of the activity log's
# formatting and writing in that run (0 for the sink).
log_writer() {
    callgrind_annotate --threshold=100 --inclusive=yes "$OUT/$1-$2.callgrind" 2>/dev/null |
        awk '!found && /ActivityLog::write_pending \[/ { gsub(",", "", $1); n = $1; found = 1 }
             END { print found ? n : 0 }'
}

printf '%-8s %14s %14s %26s %26s\n' server "1,000 trips" "3,000 trips" \
    "instructions/message, all" "message path"
for s in "${servers[@]}"; do
    low=$(instructions "$s" 1000)
    high=$(instructions "$s" 3000)
    path=$(((high - $(log_writer "$s" 3000) - low + $(log_writer "$s" 1000)) / 4000))
    printf '%-8s %14s %14s %26s %26s\n' "$s" "$low" "$high" $(((high - low) / 4000)) "$path"
done
echo "callgrind files: $OUT"
