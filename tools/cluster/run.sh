#!/usr/bin/env bash
# Runs the cluster tests (crates/parley-server/tests/cluster.rs and
# cluster_files.rs, ignored by a plain `cargo test`) against a three-server NATS cluster with JetStream
# that this script starts on loopback in a temp directory and stops again,
# and the nodes sharing one PostgreSQL (tests/cluster_store.rs) against one
# that tools/postgres/start.sh starts the same way. Installs nats-server and
# postgresql from Debian if they are missing. docs/CLUSTER.md says what the
# tests prove.
#
#   bash tools/cluster/run.sh                       # every cluster test
#   bash tools/cluster/run.sh nick_race             # a cargo test filter
#   bash tools/cluster/run.sh --nats-only           # start NATS and PostgreSQL, print the URLs, wait
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

if ! command -v nats-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "tools/cluster/run.sh: installing nats-server from Debian"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
    else
        echo "tools/cluster/run.sh: nats-server missing; install it (apt-get install nats-server)" >&2
        exit 1
    fi
fi
# The Debian package's systemd unit may have started one on 4222; ours
# use ports of their own and never touch it.

work=$(mktemp -d -t parley-cluster-XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        { wait "$pid"; } 2>/dev/null || true
    done
    rm -rf "$work"
    if declare -F parley_postgres_stop >/dev/null; then
        parley_postgres_stop
    fi
}
trap cleanup EXIT

# Nine free loopback ports: client, route and monitoring for each server.
mapfile -t ports < <(python3 - <<'PY'
import socket
socks = []
for _ in range(9):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
PY
)
urls=()
for i in 0 1 2; do
    client=${ports[$i]} route=${ports[$((i + 3))]} monitor=${ports[$((i + 6))]}
    routes=()
    for j in 0 1 2; do
        [ "$j" = "$i" ] || routes+=("\"nats-route://127.0.0.1:${ports[$((j + 3))]}\"")
    done
    mkdir -p "$work/n$i/js"
    cat >"$work/n$i.conf" <<CONF
server_name: parley-test-n$i
listen: "127.0.0.1:$client"
http: "127.0.0.1:$monitor"
jetstream { store_dir: "$work/n$i/js", max_memory_store: 64MB, max_file_store: 256MB }
cluster {
  name: parley-test
  # Clients reach only the servers they are given: the split test cuts a
  # node off by cutting its one server's link.
  no_advertise: true
  listen: "127.0.0.1:$route"
  routes: [$(IFS=,; echo "${routes[*]}")]
}
CONF
    nats-server -c "$work/n$i.conf" >"$work/n$i.log" 2>&1 &
    pids+=($!)
    urls+=("nats://127.0.0.1:$client")
done

# Ready when every server's /healthz says so (JetStream included: it
# answers ok only once the servers agree on a meta leader). Bounded: 60 s.
for i in 0 1 2; do
    monitor=${ports[$((i + 6))]}
    ok=
    for _ in $(seq 600); do
        if curl -sf "http://127.0.0.1:$monitor/healthz" >/dev/null 2>&1; then
            ok=1
            break
        fi
        if ! kill -0 "${pids[$i]}" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    if [ -z "$ok" ]; then
        echo "tools/cluster/run.sh: NATS server n$i did not become ready; its log:" >&2
        cat "$work/n$i.log" >&2
        exit 1
    fi
done
nats_urls=$(IFS=,; echo "${urls[*]}")
echo "tools/cluster/run.sh: NATS cluster ready at $nats_urls"

# PostgreSQL for the nodes' shared accounts and history; stopped by cleanup.
# shellcheck source=tools/postgres/start.sh
source "$root/tools/postgres/start.sh"

if [ "${1:-}" = "--nats-only" ]; then
    echo "PARLEY_TEST_NATS_URLS=$nats_urls"
    echo "PARLEY_TEST_POSTGRES_URL=$PARLEY_TEST_POSTGRES_URL"
    echo "(Ctrl-C stops it)"
    wait
    exit 0
fi

cd "$root"
cargo build -q -p parley-server --bin parleyd
pids_list=$(IFS=,; echo "${pids[*]}")
monitors=()
for i in 0 1 2; do
    monitors+=("127.0.0.1:${ports[$((i + 6))]}")
done
monitors_list=$(IFS=,; echo "${monitors[*]}")
export PARLEY_TEST_NATS_URLS=$nats_urls
status=0
# The 5,000-user test runs alone when everything runs: it loads the
# machine enough to stretch the timings the others bound.
heavy=a_restarted_node_sees_every_one_of_five_thousand_users
skip_heavy=()
[ $# = 0 ] && skip_heavy=(--skip "$heavy")
cargo test -q -p parley-server --test cluster -- --include-ignored --test-threads=2 \
    --skip one_nats_server_of_three_dies "${skip_heavy[@]}" "$@" || status=$?
# The nodes sharing one PostgreSQL for accounts and history.
cargo test -q -p parley-server --test cluster_store -- --include-ignored --test-threads=2 "$@" || status=$?
# The shared file store and the cluster-wide commands; DIE CLUSTER closes
# every node on the NATS cluster, so it runs alone.
die_cluster=die_cluster_by_an_operator_closes_every_node_and_tells_every_user
skip_die=()
[ $# = 0 ] && skip_die=(--skip "$die_cluster")
cargo test -q -p parley-server --test cluster_files -- --include-ignored --test-threads=2 \
    "${skip_die[@]}" "$@" || status=$?
# Last and alone, since it kills one of the NATS servers.
if [ $# = 0 ]; then
    cargo test -q -p parley-server --test cluster -- --include-ignored "$heavy" || status=$?
    cargo test -q -p parley-server --test cluster_files -- --include-ignored "$die_cluster" || status=$?
    PARLEY_TEST_NATS_PIDS=$pids_list PARLEY_TEST_NATS_MONITORS=$monitors_list \
        cargo test -q -p parley-server --test cluster -- --include-ignored one_nats_server_of_three_dies || status=$?
fi
exit "$status"
