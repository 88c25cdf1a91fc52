#!/usr/bin/env bash
# Tests the Debian package as an administrator would meet it: builds it
# (tools/package/build.sh, profile $PACKAGE_PROFILE, default `package-ci`:
# release without whole-program optimisation, to keep CI short), checks its
# contents, installs it with dpkg -i, checks the unit with
# `systemd-analyze verify`, runs the installed parleyd as the parley user
# with the installed configuration (once as systemd would: READY=1 over a
# notify socket and the first admin password in a file; once by hand: the
# readiness line), talks to it with the installed parley, stops it with
# SIGTERM and with the admin's password from that file, installs the
# package again over itself (the upgrade path), removes it and purges it.
# There is no systemd as PID 1 here, so the unit itself is only verified,
# never started.
#
# Needs root and dpkg. Installs what it needs from Debian (systemd for
# systemd-analyze, adduser). Not root: it says so and skips, except under
# CI (CI=true), where that fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

fail() {
    echo "tools/package/test.sh: FAIL: $*" >&2
    exit 1
}
if [ "$(id -u)" != 0 ] || ! command -v dpkg >/dev/null 2>&1; then
    if [ -n "${CI:-}" ]; then
        fail "needs root and dpkg"
    fi
    echo "tools/package/test.sh: skipped (needs root and dpkg to install the package)" >&2
    exit 0
fi

need=()
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v adduser >/dev/null 2>&1 || need+=(adduser)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if ((${#need[@]})); then
    echo "tools/package/test.sh: installing ${need[*]} from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

started=$SECONDS
export PACKAGE_PROFILE=${PACKAGE_PROFILE:-package-ci}
deb=$(bash tools/package/build.sh | tail -n 1)
[ -f "$deb" ] || fail "build.sh made no package"
echo "built $deb ($(du -h "$deb" | cut -f1), profile $PACKAGE_PROFILE) in $((SECONDS - started)) s"

passed=0
installed=
work=
server_pid=
listener_pid=
# A failed run leaves nothing behind: not the server, nor the package.
cleanup() {
    if [ -n "$server_pid" ]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
    if [ -n "$listener_pid" ]; then kill "$listener_pid" 2>/dev/null || true; fi
    if [ -n "$installed" ]; then dpkg --purge parley >/dev/null 2>&1 || true; fi
    if [ -n "$work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
ok() {
    passed=$((passed + 1))
    echo "ok: $*"
}

# --- What the package holds.
contents=$(dpkg-deb --contents "$deb")
for path in ./usr/bin/parleyd ./usr/bin/parley ./etc/parley/parleyd.toml \
    ./usr/lib/systemd/system/parleyd.service ./usr/share/man/man1/parleyd.1.gz \
    ./usr/share/man/man1/parley.1.gz ./usr/share/man/man1/parleyd-account-add.1.gz \
    ./usr/share/bash-completion/completions/parleyd ./usr/share/bash-completion/completions/parley \
    ./usr/share/zsh/vendor-completions/_parleyd ./usr/share/fish/vendor_completions.d/parley.fish \
    ./usr/share/doc/parley/OPERATIONS.md; do
    grep -q " $path\$" <<<"$contents" || fail "the package lacks $path"
done
ok "the package holds both programs, the unit, the config, man pages and completions"
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
[ "$conffiles" = /etc/parley/parleyd.toml ] || fail "conffiles is '$conffiles'"
ok "/etc/parley/parleyd.toml is a conffile"

# --- Install. Purging at the end deletes /var/lib/parley, so a parley
# installed before this test is left alone unless told otherwise.
if dpkg-query -W -f='${Status}' parley 2>/dev/null | grep -q installed; then
    [ -n "${PARLEY_PACKAGE_TEST_REPLACE:-}" ] ||
        fail "parley is installed here; this test would purge it with its data in /var/lib/parley (PARLEY_PACKAGE_TEST_REPLACE=1 to allow)"
    dpkg --purge parley >/dev/null
fi
installed=1
dpkg -i "$deb" >"$root/target/package/dpkg-install.log" 2>&1 ||
    fail "dpkg -i $deb: $(cat "$root/target/package/dpkg-install.log")"
ok "dpkg -i installed it"
[ "$(getent passwd parley | cut -d: -f6,7)" = /var/lib/parley:/usr/sbin/nologin ] ||
    fail "the parley user: $(getent passwd parley)"
[ "$(stat -c %U:%G:%a /var/lib/parley)" = parley:parley:750 ] ||
    fail "/var/lib/parley is $(stat -c %U:%G:%a /var/lib/parley)"
[ "$(stat -c %U:%G:%a /etc/parley/parleyd.toml)" = root:parley:640 ] ||
    fail "/etc/parley/parleyd.toml is $(stat -c %U:%G:%a /etc/parley/parleyd.toml)"
ok "system user parley (no login), /var/lib/parley 0750, config root:parley 0640"
/usr/bin/parleyd --version >/dev/null && /usr/bin/parley --version >/dev/null || fail "--version"
# From the package itself: some images tell dpkg to skip /usr/share/man.
man_page=$(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/man/man1/parleyd.1.gz | zcat)
grep -qF 'data\-dir' <<<"$man_page" && grep -qF PARLEY_DATA_DIR <<<"$man_page" ||
    fail "parleyd(1) does not document --data-dir and PARLEY_DATA_DIR"
ok "the installed programs run; parleyd(1) documents the flags"

# --- The unit, checked statically (no systemd as PID 1 here).
unit=/usr/lib/systemd/system/parleyd.service
# verify also runs `man` for Documentation=man:parleyd(1) when it can.
man_check=()
if ! man -w parleyd >/dev/null 2>&1; then
    man_check=(--man=no)
fi
verify=$(systemd-analyze verify "${man_check[@]}" "$unit" 2>&1) || fail "systemd-analyze verify: $verify"
if grep -q parleyd <<<"$verify"; then
    fail "systemd-analyze verify warns about the unit: $verify"
fi
ok "systemd-analyze verify $unit"
for setting in Type=notify User=parley StateDirectory=parley Restart=on-failure NoNewPrivileges=yes \
    ProtectSystem=strict ProtectHome=yes PrivateTmp=yes AmbientCapabilities=CAP_NET_BIND_SERVICE \
    CapabilityBoundingSet=CAP_NET_BIND_SERVICE MemoryDenyWriteExecute=yes \
    "ExecStart=/usr/bin/parleyd --config /etc/parley/parleyd.toml"; do
    grep -qx "$setting" "$unit" || fail "the unit lacks $setting"
done
grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$unit" || fail "the unit lacks ExecReload (SIGHUP reloads)"
ok "the unit: Type=notify, the parley user, its state directory, the hardening"
exposure=$(systemd-analyze security --offline=true "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for parleyd.service: \([0-9.]*\).*/\1/p')
if [ -n "$exposure" ]; then
    awk -v e="$exposure" 'BEGIN { exit !(e <= 2.5) }' || fail "systemd-analyze security: exposure $exposure (above 2.5)"
    ok "systemd-analyze security --offline: exposure $exposure"
fi

# --- The installed parleyd, as the parley user, with the installed config.
work=$(mktemp -d)
runuser -u parley -- parleyd --config /etc/parley/parleyd.toml check-config >/dev/null ||
    fail "parleyd check-config with the installed config, as parley"
ok "the installed config is valid (check-config as the parley user)"
data=$work/data
install -d -o parley -g parley -m 0750 "$data"
chmod 0755 "$work"

# Starts the installed parleyd as parley in the background, with extra
# environment in "$@"; sets server_pid. setpriv execs, so the pid is
# parleyd's own and the signals below reach it directly.
start_server() {
    env -u NOTIFY_SOCKET -u INVOCATION_ID -u PARLEY_ADMIN_PASSWORD "$@" \
        setpriv --reuid=parley --regid=parley --init-groups \
        /usr/bin/parleyd --config /etc/parley/parleyd.toml --data-dir "$data" \
        --irc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
        >"$work/stdout" 2>"$work/stderr" </dev/null &
    server_pid=$!
}
# Waits (20 s at most) for the readiness line; sets irc to the IRC address.
wait_ready() {
    local deadline=$((SECONDS + 20)) line
    while ((SECONDS < deadline)); do
        line=$(grep -m1 '^parleyd ready ' "$work/stdout" 2>/dev/null || true)
        if [ -n "$line" ]; then
            irc=$(sed -n 's/.* irc=\([^ ,]*\).*/\1/p' <<<"$line")
            return 0
        fi
        kill -0 "$server_pid" 2>/dev/null || fail "parleyd exited before it was ready: $(cat "$work/stderr")"
        sleep 0.1
    done
    fail "no readiness line in 20 s: $(cat "$work/stdout" "$work/stderr")"
}
# Waits (20 s at most) for the server to exit; sets status to its exit status.
wait_exit() {
    status=0
    timeout 20 tail --pid="$server_pid" -f /dev/null || fail "parleyd did not stop within 20 s"
    wait "$server_pid" || status=$?
    server_pid=
}

# Run 1, as systemd would start it: $NOTIFY_SOCKET and $INVOCATION_ID set.
sock=$work/notify.sock
python3 - "$sock" "$work/notify.log" <<'PY' &
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
s.settimeout(60)
with open(log, "a") as out:
    while True:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            break
        out.write(msg if msg.endswith("\n") else msg + "\n")
        out.flush()
        if "STOPPING=1" in msg:
            break
PY
listener_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
[ -S "$sock" ] || fail "the notify listener did not start"
start_server NOTIFY_SOCKET="$sock" INVOCATION_ID=0123456789abcdef0123456789abcdef
wait_ready
for _ in $(seq 100); do grep -q '^READY=1$' "$work/notify.log" 2>/dev/null && break; sleep 0.05; done
grep -q '^READY=1$' "$work/notify.log" || fail "no READY=1 on the notify socket: $(cat "$work/notify.log" 2>/dev/null)"
ok "under a (simulated) systemd: READY=1 on \$NOTIFY_SOCKET and the readiness line ($irc)"
pwfile=$data/initial-admin-password
[ "$(stat -c %U:%a "$pwfile" 2>/dev/null)" = parley:600 ] || fail "$pwfile: $(stat -c %U:%a "$pwfile" 2>&1)"
password=$(cat "$pwfile")
[ -n "$password" ] || fail "$pwfile is empty"
grep -q "its password is in $pwfile" "$work/stderr" || fail "stderr does not name $pwfile: $(cat "$work/stderr")"
if grep -qF -- "$password" "$work/stderr" "$work/stdout"; then
    fail "the first admin password was printed"
fi
ok "the first admin password is in $pwfile (parley, 0600), not in the output"
/usr/bin/parley --server "$irc" --nick pkgtest send "hello from the package test" ||
    fail "the installed parley could not send a message"
# SIGHUP reloads the installed configuration (readable by parley) and
# reopens the activity log: the server runs on.
kill -HUP "$server_pid"
for _ in $(seq 100); do grep -q 'configuration reloaded' "$work/stderr" && break; sleep 0.05; done
grep -q 'configuration reloaded' "$work/stderr" && kill -0 "$server_pid" || fail "SIGHUP: $(cat "$work/stderr")"
kill -TERM "$server_pid"
wait_exit
[ "$status" = 0 ] || fail "parleyd exited $status after SIGTERM: $(cat "$work/stderr")"
grep -q 'stopped by signal SIGTERM' "$work/stderr" || fail "no clean stop: $(cat "$work/stderr")"
grep -q ' message .*nick="pkgtest"' "$data/server_log.txt" || fail "the message is not in the activity log"
for _ in $(seq 100); do grep -q '^STOPPING=1$' "$work/notify.log" && break; sleep 0.05; done
grep -q '^STOPPING=1$' "$work/notify.log" || fail "no STOPPING=1 on the notify socket"
ok "the installed parley sent a message; SIGHUP reloaded and left parleyd running; SIGTERM stopped it cleanly (exit 0, STOPPING=1)"

# Run 2, by hand: the readiness line only; the admin closes the server with
# the password from the file.
start_server
wait_ready
if grep -q 'created administrator' "$work/stderr"; then
    fail "a second administrator was created"
fi
PARLEY_ADMIN_PASSWORD=$password /usr/bin/parley --server "$irc" --nick pkgadmin shutdown --admin admin \
    --reason "package test" >/dev/null ||
    fail "parley shutdown with the password from $pwfile"
wait_exit
[ "$status" = 0 ] || fail "parleyd exited $status after DIE: $(cat "$work/stderr")"
ok "restarted on the same data; the admin closed it with the password from the file"

# --- Upgrade (installing the package again runs the same maintainer
# script paths): the admin's config changes and the data stay.
echo "# changed by the package test" >>/etc/parley/parleyd.toml
install -o parley -g parley -m 0600 /dev/null /var/lib/parley/kept-by-upgrade
dpkg -i "$deb" >"$root/target/package/dpkg-upgrade.log" 2>&1 ||
    fail "dpkg -i over the installed package: $(cat "$root/target/package/dpkg-upgrade.log")"
grep -q '^# changed by the package test$' /etc/parley/parleyd.toml || fail "the upgrade replaced the changed config"
[ -f /var/lib/parley/kept-by-upgrade ] || fail "the upgrade lost /var/lib/parley's contents"
[ "$(stat -c %U:%G:%a /etc/parley/parleyd.toml)" = root:parley:640 ] || fail "the upgrade changed the config's mode"
ok "an upgrade keeps the changed config (root:parley 0640) and /var/lib/parley"

# --- Remove keeps the config, the data and the user; purge takes them.
dpkg --remove parley >"$root/target/package/dpkg-remove.log" 2>&1 ||
    fail "dpkg --remove parley: $(cat "$root/target/package/dpkg-remove.log")"
[ ! -e /usr/bin/parleyd ] && [ -f /etc/parley/parleyd.toml ] && [ -f /var/lib/parley/kept-by-upgrade ] &&
    getent passwd parley >/dev/null || fail "dpkg --remove did not keep exactly the config, the data and the user"
ok "dpkg --remove took the programs and kept the config, /var/lib/parley and the user"
dpkg --purge parley >"$root/target/package/dpkg-purge.log" 2>&1 ||
    fail "dpkg --purge parley: $(cat "$root/target/package/dpkg-purge.log")"
installed=
for path in /usr/bin/parleyd /usr/bin/parley /etc/parley /var/lib/parley "$unit"; do
    [ ! -e "$path" ] || fail "$path is still there after purge"
done
if getent passwd parley >/dev/null || getent group parley >/dev/null; then
    fail "the parley user or group is still there after purge"
fi
ok "dpkg --purge removed the programs, the config, /var/lib/parley and the user"

echo "package test took $((SECONDS - started)) s"
echo "package: $passed passed, 0 failed"
