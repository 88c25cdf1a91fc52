#!/usr/bin/env bash
# The full comparison: parleyd against ngIRCd, InspIRCd and ircd-hybrid
# (from Debian) on this machine, in one run, every scenario of `ircload`,
# each server started fresh for each scenario with the same relaxed limits
# (see bench/servers.sh). Writes every result as a JSON line and one
# Markdown table with the ratios.
#
#   bench/peers.sh                      # 3 rounds of everything (about 30 min)
#   ROUNDS=1 bench/peers.sh             # one round
#   SERVERS="parleyd ngircd" SCENARIOS="fanout pingpong" bench/peers.sh
#   OUT=/tmp/mybench bench/peers.sh     # where results go
#
# Before/after a change: PARLEYD_BEFORE names an earlier parleyd build,
# which runs as `parleyd-before` beside this tree's (listed by default when
# set; its version line: see bench/servers.sh). With only parleyd,
# parleyd-before and the sink, no peer is installed:
#   PARLEYD_BEFORE=/tmp/before/target/release/parleyd SERVERS="parleyd parleyd-before" bench/peers.sh
#
# Needs root (apt-get, and ircd-hybrid runs as nobody in its own mount
# namespace). Everything it starts listens on 127.0.0.1 only and is
# stopped before it exits.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
SERVERS=${SERVERS:-parleyd ${PARLEYD_BEFORE:+parleyd-before }ngircd inspircd hybrid}
SCENARIOS=${SCENARIOS:-pingpong fanout idle storm lobby}
# The crowded lobby takes ~90 s per classic server (they all hit the
# deadline); by default it runs for them in the first round only.
LOBBY_PEER_ROUNDS=${LOBBY_PEER_ROUNDS:-1}
OUT=${OUT:-/tmp/parley-bench/$(date +%Y%m%d-%H%M%S)}
RESULTS="$OUT/results.jsonl"

# Scenario sizes (the issue's defaults).
FANOUT_MEMBERS=${FANOUT_MEMBERS:-1000}
FANOUT_SENDERS=${FANOUT_SENDERS:-100}
FANOUT_RATE=${FANOUT_RATE:-200}
FANOUT_SECONDS=${FANOUT_SECONDS:-10}
IDLE_USERS=${IDLE_USERS:-10000}
LOBBY_USERS=${LOBBY_USERS:-10000}
STORM_SECONDS=${STORM_SECONDS:-10}
PINGPONG_COUNT=${PINGPONG_COUNT:-20000}
# The round trip is short enough that the machine's other load decides much
# of it, and that load drifts within seconds. So all servers run at once and
# one ircload takes turns between them, PINGPONG_TURN round trips each
# (a few tens of milliseconds): every server sees the same drift.
PINGPONG_TURN=${PINGPONG_TURN:-100}

mkdir -p "$OUT/bin"
# shellcheck source=bench/servers.sh
source "$REPO/bench/servers.sh"

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

for s in $SERVERS; do
    port_of "$s" >/dev/null || exit 1
    if [ "$s" = parleyd-before ] && [ ! -x "${PARLEYD_BEFORE:-}" ]; then
        echo "parleyd-before is listed: set PARLEYD_BEFORE to an earlier parleyd binary" >&2
        exit 1
    fi
done

# Servers running side by side (the ping-pong), stopped on exit too.
RUNNING=()

cleanup() {
    stop_server || true
    for pid in "${RUNNING[@]}"; do
        SERVER_PID=$pid
        stop_server || true
    done
    stop_dns || true
}
trap cleanup EXIT

# shellcheck disable=SC2086
if needs_peers $SERVERS; then
    echo "== installing peers and building (results in $OUT)"
    install_peers
else
    echo "== building (results in $OUT)"
fi
# Run copies, so a rebuild during the run cannot change what is measured.
# The earlier build is copied (and described) first: it may be this tree's
# own target/release/parleyd, which the build below replaces.
if [ -n "${PARLEYD_BEFORE:-}" ]; then
    PARLEYD_BEFORE_VERSION=$(before_version)
    cp -p "$PARLEYD_BEFORE" "$OUT/bin/parleyd-before"
fi
(cd "$REPO" && cargo build --release -q -p parley-bench -p parley-server)
cp "$REPO/target/release/parleyd" "$REPO/target/release/ircload" "$OUT/bin/"
BIN="$OUT/bin"
CONF="$OUT/conf"
write_configs "$CONF"
# shellcheck disable=SC2086
if needs_peers $SERVERS; then
    start_dns "$OUT"
fi

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "kernel: $(uname -r)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores)"
    echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
    for s in $SERVERS; do echo "server: $(server_version "$s")"; done
    echo "rounds: $ROUNDS"
} | tee "$OUT/machine.txt"

# Clients connecting at once while a scenario sets up. ngIRCd listens with
# a backlog of 10: more at once and the kernel drops SYNs (1 s, 3 s, 7 s
# retries), so it is set up 10 at a time. This is setup only; the storm
# scenario measures connection handling with the same K for everyone.
setup_concurrency() {
    case "$1" in
        ngircd) echo 10 ;;
        *) echo 1000 ;;
    esac
}

# run NAME SCENARIO VARIANT ROUND ARGS... : fresh server, one scenario, stop.
run() {
    local name=$1 scenario=$2 variant=$3 round=$4
    shift 4
    if ! start_server "$name" "$CONF"; then
        echo "!! $name did not start; skipping $scenario/$variant" >&2
        return 0
    fi
    local threads=()
    if [ "${THREADS_1:-}" = 1 ]; then threads=(--threads 1); fi
    timeout 600 "$BIN/ircload" "${threads[@]}" "$scenario" \
        --server "127.0.0.1:$(port_of "$name")" --server-pid "$SERVER_PID" \
        --label "$name" --variant "$variant" --round "$round" --out "$RESULTS" \
        --connect-concurrency "$(setup_concurrency "$name")" "$@" \
        >/dev/null || echo "!! $name $scenario/$variant: ircload reported a failure or error (exit $?)" >&2
    stop_server
}

# Rotates the server order each round so no server always runs first.
order() {
    local round=$1 list=("${@:2}") n i
    n=${#list[@]}
    for ((i = 0; i < n; i++)); do echo "${list[$(((i + round) % n))]}"; done
}

for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round of $ROUNDS"
    # shellcheck disable=SC2086
    mapfile -t servers < <(order "$round" $SERVERS)
    for scenario in $SCENARIOS; do
        case "$scenario" in
            pingpong)
                # Every server at once, on its own port; the first is
                # --server, the others --also. The sink is the floor: what
                # the machine and the generator take for a round trip.
                RUNNING=()
                args=()
                for s in "${servers[@]}" sink; do
                    if ! start_server "$s" "$CONF"; then
                        echo "!! $s did not start; skipping pingpong" >&2
                        continue
                    fi
                    RUNNING+=("$SERVER_PID")
                    if [ ${#args[@]} -eq 0 ]; then
                        args=(--server "127.0.0.1:$(port_of "$s")" --server-pid "$SERVER_PID" --label "$s")
                    else
                        args+=(--also "$s=127.0.0.1:$(port_of "$s")/$SERVER_PID")
                    fi
                done
                SERVER_PID=
                timeout 1800 "$BIN/ircload" pingpong "${args[@]}" --round "$round" --out "$RESULTS" \
                    --count "$PINGPONG_COUNT" --turn "$PINGPONG_TURN" \
                    >/dev/null || echo "!! pingpong: ircload reported a failure or error (exit $?)" >&2
                for pid in "${RUNNING[@]}"; do
                    SERVER_PID=$pid
                    stop_server
                done
                RUNNING=()
                ;;
            fanout)
                common=(--members "$FANOUT_MEMBERS" --senders "$FANOUT_SENDERS" --duration "$FANOUT_SECONDS" --warmup 3)
                for s in "${servers[@]}" sink; do
                    run "$s" fanout max "$round" "${common[@]}"
                    THREADS_1=1 run "$s" fanout max-1thread "$round" "${common[@]}"
                done
                for s in "${servers[@]}"; do
                    run "$s" fanout "rate$FANOUT_RATE" "$round" "${common[@]}" --rate "$FANOUT_RATE"
                done
                ;;
            idle)
                for s in "${servers[@]}"; do
                    run "$s" idle "" "$round" --users "$IDLE_USERS" --channels 100
                done
                ;;
            storm)
                for k in 10 1000; do
                    for s in "${servers[@]}"; do
                        run "$s" storm "k$k" "$round" --in-flight "$k" --duration "$STORM_SECONDS"
                    done
                done
                ;;
            lobby)
                for s in "${servers[@]}"; do
                    case "$s" in
                        parleyd | parleyd-before) ;;
                        *) if [ "$round" -gt "$LOBBY_PEER_ROUNDS" ]; then continue; fi ;;
                    esac
                    run "$s" lobby "" "$round" --users "$LOBBY_USERS" --join-deadline 60 --message-deadline 30
                done
                ;;
            *) echo "unknown scenario $scenario" >&2 ;;
        esac
    done
done

"$BIN/ircload" table --ours parleyd "$RESULTS" >"$OUT/table.md"
cat "$OUT/table.md"
echo
echo "results: $RESULTS"
echo "table:   $OUT/table.md"
