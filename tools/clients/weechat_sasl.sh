#!/usr/bin/env bash
# A real IRC client logs in with SASL PLAIN: WeeChat (weechat-headless, from
# Debian) against the real parleyd on a loopback port of its own, with an
# account made by `parleyd account add`. It joins a channel and speaks, and
# a test client on the server's side checks the login (WHOIS 330) and the
# message. The test is crates/parley-server/tests/weechat_sasl.rs (a plain
# `cargo test` skips it, as it needs WeeChat); this script installs WeeChat
# if it is missing (apt-get, as root) and runs it. Every wait in the test is
# bounded and waits for something the server or WeeChat does; WeeChat and
# parleyd are killed and their directories removed however the test ends.
#
#   bash tools/clients/weechat_sasl.sh        # extra arguments go to the test binary
set -euo pipefail
cd "$(dirname "$0")/../.."

# weechat-headless, and the FIFO plugin the test drives it through
# (weechat-plugins, which Debian only recommends).
have_weechat() {
    command -v weechat-headless >/dev/null 2>&1 && compgen -G '/usr/lib/*/weechat/plugins/fifo.so' >/dev/null
}
if ! have_weechat; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "tools/clients/weechat_sasl.sh: installing weechat-headless from Debian"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            weechat-headless weechat-plugins >/dev/null
    elif [ -n "${CI:-}" ]; then
        echo "tools/clients/weechat_sasl.sh: weechat-headless is missing and cannot be installed as non-root" >&2
        exit 1
    else
        echo "tools/clients/weechat_sasl.sh: note: skipped, weechat-headless is missing;" \
            "install it with: apt-get install weechat-headless weechat-plugins" >&2
        exit 0
    fi
fi

cargo build -q -p parley-server --bin parleyd
cargo test -q -p parley-server --test weechat_sasl -- --ignored "$@"
