# shellcheck shell=bash
# Starting and stopping the servers under test, with one benchmark config
# each. Sourced by bench/peers.sh and bench/profile.sh; not run directly.
#
# Every server gets the same relaxations (and nothing else changed):
#   - flood / command-rate limits off (1,000,000 lines per second, burst 1,000,000)
#   - 20,000 connections in total and per address
#   - 1 MiB send queue per client (ngIRCd's is fixed at build time; see BENCHMARKS.md)
#   - 8 KiB receive queue (Parley's default)
#   - no DNS or ident lookups (ircd-hybrid cannot turn DNS off: it asks a
#     resolver on 127.0.0.1 that answers NXDOMAIN at once, see `ircload dns`)
#   - up to 100 channels per user, nicks up to 30 characters
#   - ping interval 10 minutes (no PING traffic during a run)
#
# Ports: BASE_PORT + 1 parleyd, +2 ngircd, +3 inspircd, +4 ircd-hybrid, +5 sink,
# +6 parleyd-before.
#
# parleyd-before is an earlier build of parleyd, for before/after runs of a
# change: the binary PARLEYD_BEFORE names, run with parleyd's config and
# flags. Its version line gives PARLEYD_BEFORE_COMMIT if set, else the
# commit checked out where the binary was built when that is another work
# tree (say `git worktree add /tmp/before <commit>`), else the binary's path
# and build time.

BASE_PORT=${BASE_PORT:-16600}
HYBRID_ROOT=${HYBRID_ROOT:-/opt/parley-bench/ircd-hybrid}

port_of() {
    case "$1" in
        parleyd) echo $((BASE_PORT + 1)) ;;
        ngircd) echo $((BASE_PORT + 2)) ;;
        inspircd) echo $((BASE_PORT + 3)) ;;
        hybrid) echo $((BASE_PORT + 4)) ;;
        sink) echo $((BASE_PORT + 5)) ;;
        parleyd-before) echo $((BASE_PORT + 6)) ;;
        *) echo "unknown server $1" >&2; return 1 ;;
    esac
}

# needs_peers SERVER...: true when one of them is a peer (installed from
# Debian), false for parleyd, parleyd-before and the sink alone.
needs_peers() {
    local s
    for s in "$@"; do
        case "$s" in
            parleyd | parleyd-before | sink) ;;
            *) return 0 ;;
        esac
    done
    return 1
}

# Installs the three peers from Debian. ngircd and ircd-hybrid conflict
# (both provide `ircd`), so ircd-hybrid is unpacked rather than installed.
install_peers() {
    local need=()
    command -v ngircd >/dev/null || need+=(ngircd)
    command -v inspircd >/dev/null || need+=(inspircd)
    [ -e /usr/lib/x86_64-linux-gnu/libltdl.so.7 ] || need+=(libltdl7)
    if [ ${#need[@]} -gt 0 ]; then
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
    fi
    if [ ! -x "$HYBRID_ROOT/usr/sbin/ircd-hybrid" ]; then
        local tmp
        tmp=$(mktemp -d)
        (cd "$tmp" && apt-get download -q ircd-hybrid >/dev/null)
        mkdir -p "$HYBRID_ROOT"
        dpkg-deb -x "$tmp"/ircd-hybrid_*.deb "$HYBRID_ROOT"
        dpkg-deb -f "$tmp"/ircd-hybrid_*.deb Version >"$HYBRID_ROOT/VERSION"
        rm -rf "$tmp"
    fi
    # Debian's packages try to start services when installed; in a container
    # without an init they do not. If one is running on a machine with an
    # init, it listens on 6667, which the benchmark ports avoid.
}

# The commit of the work tree $1, with '+local changes' if the server's
# sources differ from it.
tree_commit() {
    echo "$(git -C "$1" rev-parse --short HEAD)$(git -C "$1" diff --quiet HEAD -- crates/parley-server crates/parley-proto || echo '+local changes')"
}

before_version() {
    local bin tree
    bin=$(realpath "$PARLEYD_BEFORE")
    if [ -n "${PARLEYD_BEFORE_COMMIT:-}" ]; then
        echo "parleyd-before $PARLEYD_BEFORE_COMMIT ($bin)"
    elif tree=$(git -C "$(dirname "$bin")" rev-parse --show-toplevel 2>/dev/null) &&
        [ "$(realpath "$tree")" != "$(realpath "$REPO")" ]; then
        echo "parleyd-before $(tree_commit "$tree") ($bin)"
    else
        # Built in this tree at some earlier commit: which one, only the
        # person who built it knows.
        echo "parleyd-before $bin, built $(date -u -r "$bin" +%Y-%m-%dT%H:%M:%SZ)"
    fi
}

server_version() {
    case "$1" in
        parleyd) echo "parleyd $(tree_commit "$REPO")" ;;
        parleyd-before) echo "${PARLEYD_BEFORE_VERSION:-$(before_version)}" ;;
        ngircd) ngircd --version 2>/dev/null | head -1 ;;
        inspircd) dpkg-query -W -f='inspircd ${Version}' inspircd ;;
        hybrid) echo "ircd-hybrid $(cat "$HYBRID_ROOT/VERSION" 2>/dev/null)" ;;
        sink) echo "ircload sink" ;;
    esac
}

write_configs() {
    local dir=$1
    mkdir -p "$dir"
    cat >"$dir/parleyd.toml" <<EOF
server_name = "parley.bench"

[irc]
# Above this many members the auto-join lobby stops announcing joins/quits.
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
# WebSocket clients (ircload --transport ws) hold an HTTP connection
# until their upgrade: as many at once as IRC allows.
max_connections = 20000
max_connections_per_ip = 20000
EOF

    cat >"$dir/ngircd.conf" <<EOF
[Global]
Name = ngircd.bench
Info = benchmark
Listen = 127.0.0.1
Ports = $(port_of ngircd)
MotdPhrase = "benchmark"
PidFile = $dir/ngircd.pid

[Limits]
MaxConnections = 20000
MaxConnectionsIP = 0
MaxJoins = 100
MaxNickLength = 30
# 0 disables the per-command penalty (flood) delays altogether.
MaxPenaltyTime = 0
PingTimeout = 600
PongTimeout = 120

[Options]
DNS = no
Ident = no
PAM = no
EOF

    cat >"$dir/inspircd.conf" <<EOF
<config format="xml">
<server name="inspircd.bench" description="benchmark" network="Bench">
<admin name="bench" nick="bench" email="bench@localhost">
<bind address="127.0.0.1" port="$(port_of inspircd)" type="clients">
<connect name="main" allow="*" timeout="60" pingfreq="600" maxchans="100"
         localmax="20000" globalmax="20000" limit="20000" maxconnwarn="no"
         resolvehostnames="no" useident="no"
         hardsendq="1048576" softsendq="1048576" recvq="8192"
         threshold="1000000" commandrate="1000000000" fakelag="no">
<dns server="127.0.0.1" timeout="1">
<pid file="$dir/inspircd.pid">
<files motd="$dir/motd.txt">
<channels users="100" opers="100">
<limits maxnick="30">
<performance quietbursts="yes" softlimit="20000" somaxconn="4096"
             netbuffersize="10240" clonesonconnect="no" timeskipwarn="0">
<options prefixquit="Quit: " syntaxhints="no">
<security maxtargets="20">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="sparse" target="$dir/inspircd.log">
EOF
    echo "benchmark" >"$dir/motd.txt"

    cat >"$dir/hybrid.conf" <<EOF
serverinfo {
	name = "hybrid.bench";
	sid = "0HY";
	description = "benchmark";
	network_name = "Bench";
	hub = no;
	default_max_clients = 20000;
	max_nick_length = 30;
};
admin { name = "bench"; description = "benchmark"; email = "<bench@localhost>"; };
class {
	name = "users";
	ping_time = 10 minutes;
	number_per_ip_local = 20000;
	number_per_ip_global = 20000;
	max_number = 20000;
	cidr_bitlen_ipv4 = 32;
	number_per_cidr = 20000;
	max_channels = 100;
	sendq = 1 megabyte;
	recvq = 8192 bytes;
};
listen { host = "127.0.0.1"; port = $(port_of hybrid); };
auth { user = "*@*"; class = "users"; flags = exceed_limit, can_flood; };
channel {
	max_channels = 100;
	default_join_flood_count = 0;
};
general {
	disable_auth = yes;
	default_floodcount = 0;
	throttle_count = 0;
	throttle_time = 0 seconds;
	anti_nick_flood = no;
	ping_cookie = no;
	max_targets = 4;
};
modules {
	path = "$HYBRID_ROOT/usr/lib/ircd-hybrid/modules";
	path = "$HYBRID_ROOT/usr/lib/ircd-hybrid/modules/autoload";
};
log { use_logging = no; };
EOF
    # ircd-hybrid resolves every client; it gets a private resolv.conf that
    # points at the local NXDOMAIN responder.
    echo "nameserver 127.0.0.1" >"$dir/resolv.conf"
    mkdir -p "$dir/hybrid-var"
    chown -R nobody "$dir/hybrid-var"
}

# Waits (bounded: $2 seconds, default 10) until something accepts on 127.0.0.1:$1.
wait_port() {
    local port=$1 seconds=${2:-10}
    for _ in $(seq 1 $((seconds * 20))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "nothing listening on port $port after $seconds s" >&2
    return 1
}

# start_server NAME DIR: starts NAME with a fresh state in DIR, sets
# SERVER_PID, and returns once it accepts connections.
start_server() {
    local name=$1 dir=$2 port
    port=$(port_of "$name")
    local log="$dir/$name.stderr"
    case "$name" in
        parleyd | parleyd-before)
            # Both may run at once (the ping-pong): each its own data.
            local data="$dir/parley-data"
            [ "$name" = parleyd ] || data="$dir/$name-data"
            rm -rf "$data"
            # PARLEYD_BEFORE_TOML: settings only parleyd-before gets (the
            # same binary with history off, say), appended to the config.
            local config="$dir/parleyd.toml"
            if [ "$name" = parleyd-before ] && [ -n "${PARLEYD_BEFORE_TOML:-}" ]; then
                config="$dir/parleyd-before.toml"
                { cat "$dir/parleyd.toml"; printf '\n%s\n' "$PARLEYD_BEFORE_TOML"; } >"$config"
            fi
            "$BIN/$name" --data-dir "$data" --irc-listen "127.0.0.1:$port" \
                --http-listen 127.0.0.1:0 --config "$config" >"$dir/$name.stdout" 2>"$log" &
            SERVER_PID=$!
            ;;
        ngircd)
            ngircd --nodaemon --passive --config "$dir/ngircd.conf" >"$log" 2>&1 &
            SERVER_PID=$!
            ;;
        inspircd)
            inspircd --nofork --runasroot --config="$dir/inspircd.conf" >"$log" 2>&1 &
            SERVER_PID=$!
            ;;
        hybrid)
            local v="$dir/hybrid-var"
            rm -f "$v"/*.db
            # A private mount namespace gives it our resolv.conf; setpriv
            # drops to nobody (it refuses to run as root). Both exec, so the
            # PID is the server's.
            # Its modules are looked up under the build-time path, so the
            # unpacked tree is mounted there too (in that namespace only).
            mkdir -p /usr/lib/ircd-hybrid
            unshare --mount sh -c "mount --bind '$dir/resolv.conf' /etc/resolv.conf && mount --bind '$HYBRID_ROOT/usr/lib/ircd-hybrid' /usr/lib/ircd-hybrid && exec setpriv --reuid=nobody --regid=nogroup --clear-groups '$HYBRID_ROOT/usr/sbin/ircd-hybrid' -foreground -configfile '$dir/hybrid.conf' -pidfile '$v/hybrid.pid' -logfile '$v/hybrid.log' -klinefile '$v/kline.db' -dlinefile '$v/dline.db' -xlinefile '$v/xline.db' -resvfile '$v/resv.db'" >"$log" 2>&1 &
            SERVER_PID=$!
            ;;
        sink)
            "$BIN/ircload" sink --listen "127.0.0.1:$port" >"$log" 2>&1 &
            SERVER_PID=$!
            ;;
    esac
    if ! wait_port "$port"; then
        cat "$log" >&2
        stop_server
        return 1
    fi
    sleep 0.3
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "$name exited right after starting:" >&2
        cat "$log" >&2
        return 1
    fi
}

# stop_pid PID...: TERM to each, then KILL to any still running after 10 s.
stop_pid() {
    local pid
    for pid in "$@"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "$@"; do
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

# Stops the server started last.
stop_server() {
    [ -n "${SERVER_PID:-}" ] || return 0
    stop_pid "$SERVER_PID"
    SERVER_PID=
}

# The NXDOMAIN responder ircd-hybrid's lookups go to.
start_dns() {
    "$BIN/ircload" dns --listen 127.0.0.1:53 >"$1/dns.log" 2>&1 &
    DNS_PID=$!
    sleep 0.2
    kill -0 "$DNS_PID" 2>/dev/null || { cat "$1/dns.log" >&2; return 1; }
}

stop_dns() {
    [ -n "${DNS_PID:-}" ] && kill "$DNS_PID" 2>/dev/null || true
    DNS_PID=
}
