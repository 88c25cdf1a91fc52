#!/bin/bash
# A/B fan-out: parleyd before (main 2415d52) and after (h-reload), same
# config as bench/servers.sh, alternating, ROUNDS rounds each.
set -u
ROUNDS=${ROUNDS:-3}
BEFORE=/tmp/parley-before/target/package-ci/parleyd
AFTER=/work/wt-reload/target/package-ci/parleyd
IRCLOAD=/work/wt-reload/target/package-ci/ircload
OUT=/tmp/abbench/results.jsonl
dir=/tmp/abbench
cat >"$dir/parleyd.toml" <<TOML
server_name = "parley.bench"
[irc]
quiet_lobby_above = 200
[limits]
flood_burst = 1000000
flood_lines_per_second = 1000000.0
max_connections = 20000
max_connections_per_ip = 20000
sendq_bytes = 1048576
recvq_bytes = 8192
max_channels_per_user = 100
nick_len = 30
ping_interval_secs = 600
[files]
max_connections = 20000
max_connections_per_ip = 20000
TOML
for round in $(seq "$ROUNDS"); do
  for which in before after; do
    bin=$BEFORE; [ "$which" = after ] && bin=$AFTER
    rm -rf "$dir/data"
    "$bin" --data-dir "$dir/data" --irc-listen 127.0.0.1:16611 --http-listen 127.0.0.1:0 \
        --config "$dir/parleyd.toml" >"$dir/$which.stdout" 2>"$dir/$which.stderr" &
    pid=$!
    for _ in $(seq 200); do grep -q "parleyd ready" "$dir/$which.stdout" && break; sleep 0.05; done
    "$IRCLOAD" ${SCENARIO:-fanout} --server 127.0.0.1:16611 --server-pid "$pid" --label "parleyd-$which" \
        --round "$round" --variant ${VARIANT:-max} --out "$OUT" > "$dir/$which.$round.txt" 2>&1
    kill -TERM "$pid"; wait "$pid"
  done
done
