#!/usr/bin/env bash
# Runs Parley's whole test suite: unit, property and integration tests, the
# latter against the real parleyd over loopback sockets, then the public IRC
# conformance suite irctest (tools/irctest/run.sh), a real client
# logging in with SASL (tools/clients/weechat_sasl.sh), and the built-in
# web client in a real Chromium (tools/browser/run.sh). Installs what the
# tests need first (stock IRC clients and curl from Debian; PostgreSQL and
# nats-server are installed by the scripts that start them), so a fresh
# machine only needs the Rust toolchain. Under CI (CI=true) a dependency that
# cannot be installed fails the run instead of letting a test skip.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ii >/dev/null 2>&1 || need+=(ii)
command -v curl >/dev/null 2>&1 || need+=(curl)
# irctest's LIST C/T filter tests make time pass with libfaketime.
command -v faketime >/dev/null 2>&1 || need+=(faketime)
if ((${#need[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "tools/test.sh: installing ${need[*]} from Debian"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    elif [ -n "${CI:-}" ]; then
        echo "tools/test.sh: missing ${need[*]} and cannot install as non-root" >&2
        exit 1
    else
        echo "tools/test.sh: note: ${need[*]} missing; tests that need them will skip (install with apt-get)" >&2
    fi
fi

# Build every binary first so client tests find a fresh parleyd.
cargo build --workspace --bins --quiet
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace "$@" 2>&1 | tee "$log" || status=$?
# The public conformance suite against the real parleyd (docs/CONFORMANCE.md).
echo "== irctest (tools/irctest/run.sh)"
bash tools/irctest/run.sh 2>&1 | tee -a "$log" || status=$?
# Several parleyd nodes as one chat over a three-server NATS cluster that
# the script starts on loopback (installs nats-server if missing).
echo "== cluster (tools/cluster/run.sh)"
bash tools/cluster/run.sh 2>&1 | tee -a "$log" || status=$?
# Accounts and history with PostgreSQL as the store, one node, against a
# PostgreSQL the script starts in a temp directory (installs it if missing).
echo "== postgres (tools/postgres/start.sh)"
bash tools/postgres/start.sh cargo test -q -p parley-server --test postgres -- --include-ignored 2>&1 | tee -a "$log" \
    || status=$?
# WeeChat logs in with SASL PLAIN, joins and speaks (installs WeeChat if missing).
echo "== WeeChat with SASL (tools/clients/weechat_sasl.sh)"
bash tools/clients/weechat_sasl.sh 2>&1 | tee -a "$log" || status=$?
# The built-in web client in a real Chromium (installs chromium and Playwright if missing).
echo "== browser (tools/browser/run.sh)"
bash tools/browser/run.sh 2>&1 | tee -a "$log" || status=$?
# One closing line for the whole run: cargo prints one per test binary (the
# last of which is the doc-tests' and often counts zero), pytest one.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?/) p += $i; if ($(i+1) ~ /^failed;?/) f += $i } }
     /^[0-9]+ (passed|failed).* in [0-9.]+s/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed,?/) p += $i; if ($(i+1) ~ /^failed,?/) f += $i } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
