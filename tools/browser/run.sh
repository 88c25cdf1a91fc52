#!/usr/bin/env bash
# Runs the built-in web client's tests (tools/browser/test_web_client.py) in
# a real, headless Chromium against target/debug/parleyd. Installs what they
# need if missing: Debian's chromium (no browser is ever downloaded by
# Playwright: it is pointed at /usr/bin/chromium) and a Python venv in
# target/browser-venv with Playwright and pytest from PyPI. Screenshots of
# the main screens and the measured first load go to
# target/browser-artifacts/. Exit status: pytest's (1 on any failure).
#
#   bash tools/browser/run.sh                   # every scenario
#   bash tools/browser/run.sh -k overwrite -x   # with more pytest arguments
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
venv=$target/browser-venv

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "tools/browser/run.sh: installing chromium from Debian"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "tools/browser/run.sh: /usr/bin/chromium is missing and cannot be installed as non-root (apt-get install chromium)" >&2
        exit 1
    fi
fi
if [ ! -x "$venv/bin/pytest" ] || ! "$venv/bin/python" -c 'import playwright' 2>/dev/null; then
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        # Debian splits venv support out of python3.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            rm -rf "$venv"
            python3 -m venv "$venv"
        else
            echo "tools/browser/run.sh: python3 -m venv failed; install python3-venv" >&2
            exit 1
        fi
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check 'playwright==1.65.*' 'pytest==9.*'
fi
(cd "$root" && cargo build -q -p parley-server --bin parleyd)

mkdir -p "$target/browser-artifacts"
cd "$root/tools/browser"
PYTHONDONTWRITEBYTECODE=1 PARLEYD="$target/debug/parleyd" BROWSER_ARTIFACTS="$target/browser-artifacts" \
    exec "$venv/bin/pytest" -p no:cacheprovider -q -rfs -s "$@" test_web_client.py
