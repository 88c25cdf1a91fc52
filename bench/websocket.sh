#!/usr/bin/env bash
# IRC over WebSocket against plain TCP, same parleyd build, same run
# (docs/BENCHMARKS.md, "IRC over WebSocket"): the fan-out (1,000 members,
# 100 senders, as fast as the server takes it, then at 200 msg/s) and the
# crowded lobby (1,000 members), each round once over TCP and once over
# WebSocket (`ircload --transport ws`, /socket on the file store's
# listener), the order swapped every round, a fresh parleyd for each run;
# and the memory an idle registered user costs (5,000 users).
# Prints the medians and the WebSocket ÷ TCP ratios.
#
#   bench/websocket.sh                  # 3 rounds
#   ROUNDS=5 OUT=/tmp/wsbench bench/websocket.sh
#   NO_BUILD=1 bench/websocket.sh       # target/release as it is
#   PARLEYD_BEFORE=/tmp/before/parleyd bench/websocket.sh
#                                       # also an earlier build's WebSocket
#                                       # fan-out, in the same rounds
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-/tmp/parley-bench/ws-$(date +%Y%m%d-%H%M%S)}
RESULTS="$OUT/results.jsonl"
FANOUT_MEMBERS=${FANOUT_MEMBERS:-1000}
FANOUT_SENDERS=${FANOUT_SENDERS:-100}
FANOUT_SECONDS=${FANOUT_SECONDS:-10}
LOBBY_USERS=${LOBBY_USERS:-1000}
IDLE_USERS=${IDLE_USERS:-5000}

mkdir -p "$OUT/bin"
# shellcheck source=bench/servers.sh
source "$REPO/bench/servers.sh"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
trap 'stop_server || true' EXIT

echo "== building (results in $OUT)"
if [ -z "${NO_BUILD:-}" ]; then
    (cd "$REPO" && cargo build --release -q -p parley-bench -p parley-server)
fi
cp "$REPO/target/release/parleyd" "$REPO/target/release/ircload" "$OUT/bin/"
if [ -n "${PARLEYD_BEFORE:-}" ]; then
    cp -p "$PARLEYD_BEFORE" "$OUT/bin/parleyd-before"
fi
BIN="$OUT/bin"
CONF="$OUT/conf"
write_configs "$CONF"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "kernel: $(uname -r)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores)"
    echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
    echo "server: $(server_version parleyd)"
    echo "rounds: $ROUNDS"
    if [ -n "${PARLEYD_BEFORE:-}" ]; then echo "before: $(before_version)"; fi
} | tee "$OUT/machine.txt"

# run TRANSPORT SCENARIO VARIANT ROUND ARGS...: fresh parleyd, one run.
# TRANSPORT ws-before: over WebSocket, against parleyd-before.
run() {
    local transport=$1 scenario=$2 variant=$3 round=$4 addr name=parleyd
    shift 4
    if [ "$transport" = ws-before ]; then
        name=parleyd-before
        transport=ws
    fi
    start_server "$name" "$CONF"
    addr="127.0.0.1:$(port_of "$name")"
    if [ "$transport" = ws ]; then
        addr=$(sed -n 's/^parleyd ready .*http=\([^ ]*\).*/\1/p' "$CONF/$name.stdout")
    fi
    timeout 600 "$BIN/ircload" "$scenario" --transport "$transport" \
        --server "$addr" --server-pid "$SERVER_PID" --label "$name" --variant "$variant" \
        --round "$round" --out "$RESULTS" --connect-concurrency 1000 "$@" \
        >/dev/null || echo "!! $transport $scenario/$variant: ircload reported a failure (exit $?)" >&2
    stop_server
}

for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then transports="tcp ws"; else transports="ws tcp"; fi
    fanout=$transports
    if [ -n "${PARLEYD_BEFORE:-}" ]; then
        if [ $((round % 2)) = 1 ]; then fanout="tcp ws-before ws"; else fanout="ws ws-before tcp"; fi
    fi
    for t in $fanout; do
        echo "== round $round: fan-out, max rate, over $t"
        run "$t" fanout max "$round" --members "$FANOUT_MEMBERS" --senders "$FANOUT_SENDERS" \
            --duration "$FANOUT_SECONDS" --nick-prefix f
    done
    for t in $transports; do
        echo "== round $round: fan-out, 200 msg/s, over $t"
        run "$t" fanout rate200 "$round" --members "$FANOUT_MEMBERS" --senders "$FANOUT_SENDERS" \
            --rate 200 --duration "$FANOUT_SECONDS" --nick-prefix r
    done
    for t in $transports; do
        echo "== round $round: lobby of $LOBBY_USERS over $t"
        run "$t" lobby "$LOBBY_USERS" "$round" --users "$LOBBY_USERS" --join-deadline 30
    done
    for t in $transports; do
        echo "== round $round: $IDLE_USERS idle users over $t"
        run "$t" idle "$IDLE_USERS" "$round" --users "$IDLE_USERS"
    done
done

python3 - "$RESULTS" <<'PY' | tee "$OUT/summary.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(scenario, variant, transport, key, sub=None, label="parleyd"):
    vals = []
    for r in rows:
        if (r["scenario"], r["variant"], r.get("transport"), r.get("label", "parleyd")) != (scenario, variant, transport, label):
            continue
        v = r["results"].get(key)
        if sub is not None and isinstance(v, dict):
            v = v.get(sub)
        if isinstance(v, (int, float)):
            vals.append(v)
    return (statistics.median(vals), vals) if vals else (None, [])
def line(label, scenario, variant, key, sub=None, fmt="{:,.0f}"):
    (t, tv), (w, wv) = med(scenario, variant, "tcp", key, sub), med(scenario, variant, "ws", key, sub)
    show = lambda v: "–" if v is None else fmt.format(v)
    ratio = f"{w / t:.2f}" if t and w is not None else "–"
    rounds = lambda vs: ", ".join(fmt.format(v) for v in vs)
    print(f"| {label} | {show(t)} ({rounds(tv)}) | {show(w)} ({rounds(wv)}) | **{ratio}** |")
print("| metric (median of rounds) | TCP | WebSocket | WS ÷ TCP |")
print("|---|---:|---:|---:|")
line("fan-out deliveries/s, max rate", "fanout", "max", "deliveries_per_s")
line("… per server CPU-second", "fanout", "max", "deliveries_per_server_cpu_s")
if any(r.get("label") == "parleyd-before" for r in rows):
    def before(label, key):
        (t, _), (b, bv) = med("fanout", "max", "tcp", key), med("fanout", "max", "ws", key, label="parleyd-before")
        ratio = f"{b / t:.2f}" if t and b is not None else "–"
        shown = ", ".join(f"{v:,.0f}" for v in bv)
        print(f"| {label}, parleyd-before over WebSocket | | {b:,.0f} ({shown}) | **{ratio}** |")
    before("fan-out deliveries/s, max rate", "deliveries_per_s")
    before("… per server CPU-second", "deliveries_per_server_cpu_s")
line("… p99 latency ms", "fanout", "max", "latency", "p99_ms", "{:.1f}")
line("fan-out p99 latency ms, 200 msg/s", "fanout", "rate200", "latency", "p99_ms", "{:.2f}")
line("… server CPU cores, 200 msg/s", "fanout", "rate200", "server_cores", None, "{:.3f}")
lobby = sorted({r["variant"] for r in rows if r["scenario"] == "lobby"})
for v in lobby:
    for key, label, fmt in [("fill_s", "seconds to fill", "{:.2f}"), ("reach_ms", "ms for the message to reach all", "{:.1f}"), ("server_cpu_s", "server CPU s while filling", "{:.2f}")]:
        line(f"lobby of {v}: {label}", "lobby", v, key, None, fmt)
for v in sorted({r["variant"] for r in rows if r["scenario"] == "idle"}):
    line(f"{v} idle users: bytes of server memory per user", "idle", v, "bytes_per_user", None, "{:.0f}")
bad = [r for r in rows if not r["ok"]]
print(f"\n{len(rows)} runs, {len(bad)} not ok" + "".join(f"\n- not ok: {r['scenario']} {r['variant']} {r.get('transport')} round {r['round']}" for r in bad))
PY
