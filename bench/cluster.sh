#!/usr/bin/env bash
# Three parleyd nodes over a three-server NATS cluster against one parleyd
# alone, same build, same run (docs/CLUSTER.md, "Measurements";
# docs/BENCHMARKS.md, "Cluster"):
#
#   - private-message round trip: client A on node 1, client B on node 2,
#     against A and B on one parleyd with no [cluster] section; the two take
#     turns of 100 round trips in one ircload run (`pingpong --also`), so
#     both see the same machine load. Goal: cross-node p50 ≤ 2× single.
#   - fan-out: a 1,000-member channel, 100 senders, as fast as the server
#     takes it, members spread round-robin over the three nodes
#     (`ircload --spread`), against the same on one parleyd; a fresh server
#     (or cluster) for each run, the order swapped every round. Goal:
#     deliveries/s ≥ 0.5× single, nothing lost.
#
# Starts the NATS cluster with tools/cluster/run.sh --nats-only (installs
# nats-server from Debian if missing). Prints the medians and the ratios.
#
#   bench/cluster.sh                  # 3 rounds
#   ROUNDS=5 OUT=/tmp/cb bench/cluster.sh
#   NO_BUILD=1 bench/cluster.sh       # target/release as it is
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-/tmp/parley-bench/cluster-$(date +%Y%m%d-%H%M%S)}
RESULTS="$OUT/results.jsonl"
FANOUT_MEMBERS=${FANOUT_MEMBERS:-1000}
FANOUT_SENDERS=${FANOUT_SENDERS:-100}
FANOUT_SECONDS=${FANOUT_SECONDS:-10}
PINGPONG_COUNT=${PINGPONG_COUNT:-20000}
PINGPONG_ROUNDS=${PINGPONG_ROUNDS:-3}

mkdir -p "$OUT/bin"
# shellcheck source=bench/servers.sh
source "$REPO/bench/servers.sh"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

NODE_PIDS=()
NATS_PID=
stop_nodes() {
    [ ${#NODE_PIDS[@]} = 0 ] || stop_pid "${NODE_PIDS[@]}"
    NODE_PIDS=()
}
cleanup() {
    stop_server || true
    stop_nodes
    [ -z "$NATS_PID" ] || stop_pid "$NATS_PID"
}
trap cleanup EXIT

echo "== building (results in $OUT)"
if [ -z "${NO_BUILD:-}" ]; then
    (cd "$REPO" && cargo build --release -q -p parley-bench -p parley-server)
fi
cp "$REPO/target/release/parleyd" "$REPO/target/release/ircload" "$OUT/bin/"
BIN="$OUT/bin"
CONF="$OUT/conf"
write_configs "$CONF"

echo "== NATS cluster (tools/cluster/run.sh --nats-only)"
: >"$OUT/nats.log"
bash "$REPO/tools/cluster/run.sh" --nats-only >>"$OUT/nats.log" 2>&1 &
NATS_PID=$!
NATS_URLS=
for _ in $(seq 1 1200); do
    NATS_URLS=$(sed -n 's/^PARLEY_TEST_NATS_URLS=//p' "$OUT/nats.log")
    [ -n "$NATS_URLS" ] && break
    kill -0 "$NATS_PID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$NATS_URLS" ]; then
    echo "bench/cluster.sh: the NATS cluster did not start:" >&2
    cat "$OUT/nats.log" >&2
    exit 1
fi
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "kernel: $(uname -r)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores)"
    echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
    echo "server: $(server_version parleyd)"
    echo "nats-server: $(nats-server --version 2>&1 | head -1)"
    echo "rounds: $ROUNDS"
} | tee "$OUT/machine.txt"

# NATS_SERVER=one: every node connects to the first NATS server only (no
# route hop between NATS servers on the way); default: all three URLs,
# the client picking one at random, as a deployment would list them.
node_urls() {
    if [ "${NATS_SERVER:-}" = one ]; then echo "${NATS_URLS%%,*}"; else echo "$NATS_URLS"; fi
}
# The nodes' config: the benchmark config plus a [cluster] section.
# kv_replicas = 3 as a real three-server deployment would have.
node_config() {
    local name=$1
    {
        if [ -n "${NODE_BUSY_POLL_US:-}" ]; then
            sed "s/^\[limits\]$/[limits]\nbusy_poll_us = $NODE_BUSY_POLL_US/" "$CONF/parleyd.toml"
        else
            cat "$CONF/parleyd.toml"
        fi
        printf '\n[cluster]\nnats_urls = [%s]\nnode_name = "%s"\nkv_replicas = 3\n' \
            "$(node_urls | sed 's/[^,]*/"&"/g')" "$name"
    } >"$CONF/$name.toml"
}
NODE_PORTS=($((BASE_PORT + 11)) $((BASE_PORT + 12)) $((BASE_PORT + 13)))
# start_nodes RUN: three fresh nodes; node names are new for every run so
# no claim of an earlier run is in the way (they are stale anyway).
start_nodes() {
    local run=$1 i name
    for i in 0 1 2; do
        name="b$run-n$i"
        node_config "$name"
        rm -rf "$CONF/$name-data"
        "$BIN/parleyd" --data-dir "$CONF/$name-data" --irc-listen "127.0.0.1:${NODE_PORTS[$i]}" \
            --http-listen 127.0.0.1:0 --config "$CONF/$name.toml" \
            >"$CONF/$name.stdout" 2>"$CONF/$name.stderr" &
        NODE_PIDS+=($!)
    done
    for i in 0 1 2; do
        name="b$run-n$i"
        # Ready once it prints its ready line (after joining the cluster).
        for _ in $(seq 1 400); do
            grep -q '^parleyd ready' "$CONF/$name.stdout" 2>/dev/null && break
            if ! kill -0 "${NODE_PIDS[$i]}" 2>/dev/null; then
                echo "node $name exited:" >&2
                cat "$CONF/$name.stderr" >&2
                return 1
            fi
            sleep 0.05
        done
        grep -q '^parleyd ready' "$CONF/$name.stdout" || {
            echo "node $name not ready after 20 s" >&2
            return 1
        }
    done
}
# CPU seconds (user + system) of the given PIDs, summed.
cpu_of() {
    local ticks=0 pid
    for pid in "$@"; do
        ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "scale=3; $ticks / $(getconf CLK_TCK)" | bc
}
command -v bc >/dev/null || { apt-get install -y -qq bc >/dev/null 2>&1 || true; }

run_no=0
fanout() {
    local kind=$1 round=$2 before after
    run_no=$((run_no + 1))
    if [ "$kind" = single ]; then
        start_server parleyd "$CONF"
        timeout 600 "$BIN/ircload" fanout --server "127.0.0.1:$(port_of parleyd)" \
            --server-pid "$SERVER_PID" --label single --variant max --round "$round" \
            --out "$RESULTS" --connect-concurrency 1000 --members "$FANOUT_MEMBERS" \
            --senders "$FANOUT_SENDERS" --duration "$FANOUT_SECONDS" --nick-prefix f \
            >"$OUT/fanout-$kind-$round.txt" || echo "!! single fan-out: ircload reported a failure" >&2
        stop_server
    else
        start_nodes "$run_no"
        before=$(cpu_of "${NODE_PIDS[@]}")
        timeout 600 "$BIN/ircload" fanout --server "127.0.0.1:${NODE_PORTS[0]}" \
            --spread "127.0.0.1:${NODE_PORTS[1]},127.0.0.1:${NODE_PORTS[2]}" \
            --label cluster --variant max --round "$round" \
            --out "$RESULTS" --connect-concurrency 1000 --members "$FANOUT_MEMBERS" \
            --senders "$FANOUT_SENDERS" --duration "$FANOUT_SECONDS" --nick-prefix f \
            >"$OUT/fanout-$kind-$round.txt" || echo "!! cluster fan-out: ircload reported a failure" >&2
        after=$(cpu_of "${NODE_PIDS[@]}")
        echo "cluster round $round: the three nodes used $(echo "$after - $before" | bc) CPU s (whole run, setup included)" \
            | tee -a "$OUT/cluster-cpu.txt"
        stop_nodes
    fi
}

for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then kinds="single cluster"; else kinds="cluster single"; fi
    for k in $kinds; do
        echo "== round $round: fan-out, $FANOUT_MEMBERS members, max rate, $k"
        fanout "$k" "$round"
    done
done

# The round trips: the single parleyd and the cluster in turns within one
# ircload run, then NATS alone (two NATS clients through two servers of
# the cluster, and through one), the floor under the cross-node figure.
run_no=$((run_no + 1))
start_server parleyd "$CONF"
start_nodes "$run_no"
nats_a=${NATS_URLS%%,*}
nats_b=$(echo "$NATS_URLS" | cut -d, -f2)
for round in $(seq 1 "$PINGPONG_ROUNDS"); do
    echo "== round $round: round trip, single parleyd and cross-node in turns; NATS alone"
    timeout 900 "$BIN/ircload" pingpong --server "127.0.0.1:$(port_of parleyd)" \
        --server-pid "$SERVER_PID" --label single --count "$PINGPONG_COUNT" --round "$round" \
        --nick-prefix "p$round" \
        --also "cluster=127.0.0.1:${NODE_PORTS[0]}+127.0.0.1:${NODE_PORTS[1]}" \
        --out "$RESULTS" >>"$OUT/pingpong.txt" || echo "!! pingpong: ircload reported a failure" >&2
    timeout 300 "$BIN/ircload" natsping --nats-a "$nats_a" --nats-b "$nats_b" --label nats-two-servers \
        --count "$PINGPONG_COUNT" --round "$round" --out "$RESULTS" >>"$OUT/pingpong.txt" ||
        echo "!! natsping: ircload reported a failure" >&2
    timeout 300 "$BIN/ircload" natsping --nats-a "$nats_a" --nats-b "$nats_a" --label nats-one-server \
        --count "$PINGPONG_COUNT" --round "$round" --out "$RESULTS" >>"$OUT/pingpong.txt" ||
        echo "!! natsping: ircload reported a failure" >&2
done
stop_nodes
stop_server

python3 - "$RESULTS" "$FANOUT_MEMBERS" <<'PY' | tee "$OUT/summary.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def vals(scenario, label, key, sub=None):
    out = []
    for r in rows:
        if (r["scenario"], r["label"]) != (scenario, label):
            continue
        v = r["results"].get(key)
        if sub is not None and isinstance(v, dict):
            v = v.get(sub)
        if isinstance(v, (int, float)):
            out.append(v)
    return out
def line(what, scenario, key, sub=None, fmt="{:,.0f}"):
    s, c = vals(scenario, "single", key, sub), vals(scenario, "cluster", key, sub)
    ms, mc = (statistics.median(s) if s else None), (statistics.median(c) if c else None)
    show = lambda v: "–" if v is None else fmt.format(v)
    each = lambda vs: ", ".join(fmt.format(v) for v in vs)
    ratio = f"{mc / ms:.2f}" if ms and mc is not None else "–"
    print(f"| {what} | {show(ms)} ({each(s)}) | {show(mc)} ({each(c)}) | **{ratio}** |")
print("| metric (median of rounds) | one parleyd | three nodes | three ÷ one |")
print("|---|---:|---:|---:|")
line(f"fan-out deliveries/s, {int(sys.argv[2]):,} members, max rate", "fanout", "deliveries_per_s")
line("… p99 latency ms", "fanout", "latency", "p99_ms", "{:.1f}")
line("… lost", "fanout", "lost")
line("… reordered", "fanout", "reordered")
line("private-message round trip p50 µs (cross-node)", "pingpong", "rtt_p50_us", None, "{:.1f}")
line("… p99 µs", "pingpong", "rtt_p99_us", None, "{:.1f}")
for label in ["nats-two-servers", "nats-one-server"]:
    v = vals("natsping", label, "rtt_p50_us")
    if v:
        print(f"| NATS alone, {label[5:].replace('-', ' ')}: round trip p50 µs | | {statistics.median(v):.1f} ({', '.join(f'{x:.1f}' for x in v)}) | |")
bad = [r for r in rows if not r["ok"]]
if bad:
    print(f"\n{len(bad)} run(s) reported a failure: " + ", ".join(f'{r["scenario"]}/{r["label"]} round {r.get("round")}' for r in bad))
PY
