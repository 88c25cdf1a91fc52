#!/usr/bin/env bash
# Profiles parleyd with perf while one ircload scenario runs against it,
# and prints where the time goes (flat and by caller).
#
#   bench/profile.sh                       # busy-channel fan-out, 1000 members / 100 senders
#   bench/profile.sh idle --users 10000    # any scenario and its arguments
#
# Output lands in $OUT (default /tmp/parley-profile-<time>): perf.data,
# report-flat.txt, report-callers.txt and the scenario's JSON line.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/parley-profile-$(date +%Y%m%d-%H%M%S)}
SECONDS_PROFILED=${SECONDS_PROFILED:-8}
mkdir -p "$OUT/bin"
# shellcheck source=bench/servers.sh
source "$REPO/bench/servers.sh"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if ! perf stat -e instructions true >/dev/null 2>&1; then
    echo "perf cannot count here; try: valgrind --tool=callgrind $REPO/target/release/parleyd ..." >&2
    exit 1
fi

scenario=${1:-fanout}
shift || true
args=("$@")
if [ ${#args[@]} -eq 0 ] && [ "$scenario" = fanout ]; then
    args=(--members 1000 --senders 100 --warmup 2 --duration $((SECONDS_PROFILED + 4)))
fi

(cd "$REPO" && cargo build --release -q -p parley-bench -p parley-server)
cp "$REPO/target/release/parleyd" "$REPO/target/release/ircload" "$OUT/bin/"
BIN="$OUT/bin"
write_configs "$OUT/conf"
trap 'stop_server' EXIT
start_server parleyd "$OUT/conf"

"$BIN/ircload" "$scenario" --server "127.0.0.1:$(port_of parleyd)" --server-pid "$SERVER_PID" \
    --label parleyd --variant profiled --out "$OUT/result.jsonl" "${args[@]}" >/dev/null &
load=$!
sleep 3
perf record -F 499 --call-graph dwarf,16384 -o "$OUT/perf.data" -p "$SERVER_PID" -- sleep "$SECONDS_PROFILED" 2>/dev/null
wait "$load" || true
perf report -i "$OUT/perf.data" --no-children --stdio --percent-limit 0.7 -g none 2>/dev/null >"$OUT/report-flat.txt"
perf report -i "$OUT/perf.data" --children --stdio --percent-limit 3 -g caller,0.5,callee,function,percent --max-stack 24 2>/dev/null >"$OUT/report-callers.txt"
grep -v '^#' "$OUT/report-flat.txt" | grep -v '^$' | head -45
echo
echo "full reports: $OUT/report-flat.txt $OUT/report-callers.txt"
