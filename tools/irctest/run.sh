#!/usr/bin/env bash
# Runs irctest, the public IRC server conformance suite (pinned in
# ../shared/irctest), against target/debug/parleyd through Parley's
# controller (tools/irctest/parleyd_controller.py). Everything it needs
# lives in target/irctest: the unpacked suite and a Python venv with its
# pinned requirements from PyPI. Exit status: pytest's (1 on any failure).
#
#   bash tools/irctest/run.sh                 # the selection docs/CONFORMANCE.md counts
#   bash tools/irctest/run.sh -k whowas -x    # one pass, with more pytest arguments
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
shared=${IRCTEST_DIR:-$root/../shared/irctest}
work=$root/target/irctest

if [ ! -d "$work/irctest" ]; then
    mkdir -p "$work"
    tar -xzf "$shared"/irctest-*.tar.gz -C "$work"
fi
if [ ! -x "$work/venv/bin/pytest" ]; then
    if ! python3 -m venv "$work/venv" >/dev/null 2>&1; then
        # Debian splits venv support out of python3.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            rm -rf "$work/venv"
            python3 -m venv "$work/venv"
        else
            echo "tools/irctest/run.sh: python3 -m venv failed; install python3-venv" >&2
            exit 1
        fi
    fi
    "$work/venv/bin/pip" install -q --disable-pip-version-check -r "$shared/requirements.txt"
fi
(cd "$root" && cargo build -q -p parley-server --bin parleyd)

# The selection: every server test that is not deprecated, not "strict"
# (stricter than what servers do in practice) and not specific to another
# implementation. Skips are reported with their reasons (-rs). Accounts
# are built in, so the tests that need "services" run too. One test is
# left out: testLinksWithServices wants services as a second server in
# LINKS, and Parley's are built in (irctest skips it for Ergo, whose
# services are built in too, only because Ergo has no LINKS).
# Also left out: testReadMarkerPropagatedToOtherSessions, which connects
# twice with one nick (ergo's multiclient; a Parley nick is one
# connection); tests/history.rs proves the propagation between an
# account's connections under two nicks.
cd "$work/irctest"
PATH="$root/target/debug:$PATH" PYTHONPATH="$root/tools/irctest" \
    exec "$work/venv/bin/pytest" --controller parleyd_controller irctest/server_tests \
    -m 'not implementation-specific' -n 2 -p no:cacheprovider -q -rfs --timeout 120 \
    --deselect irctest/server_tests/links.py::ServicesLinksTestCase::testLinksWithServices \
    --deselect irctest/server_tests/read_marker.py::ReadMarkerServiceTestCase::testReadMarkerPropagatedToOtherSessions \
    -k 'not deprecated and not strict' "$@"
