#!/usr/bin/env bash
# File-store throughput: Parley against nginx serving and accepting the same
# file over loopback, in the same run, plus two ceilings for uploads:
# SHA-256 of the file (`openssl dgst`, SHA-NI like parleyd's hash; Parley
# hashes every upload) and writing it durably (`dd conv=fsync`; Parley
# syncs every upload before answering, nginx does not). Prints one table and the
# ratios. Needs root for apt-get (nginx) on a fresh machine.
#
#   bash bench/files.sh [SIZE_MIB] [ROUNDS]      (default 1024 MiB, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
ROUNDS=${2:-3}
WORK=$(mktemp -d /tmp/parley-files-bench.XXXXXX)
chmod 755 "$WORK"   # nginx workers run as an unprivileged user
trap 'kill $(jobs -p) 2>/dev/null || true; nginx -c "$WORK/nginx.conf" -s stop 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v nginx >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }
command -v curl >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null

cargo build --release --quiet -p parley-server --bin parleyd
echo "making a ${SIZE_MIB} MiB test file"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$WORK/blob.bin"
mkdir -p "$WORK/www/files" "$WORK/nginx-tmp"
cp "$WORK/blob.bin" "$WORK/www/files/blob.bin"

NGINX_PORT=18080
NGINX_TLS_PORT=18443
# One self-signed certificate for nginx's HTTPS; parleyd makes its own.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_max_body_size 0;
    client_body_temp_path $WORK/nginx-tmp;
    proxy_temp_path $WORK/nginx-tmp;
    fastcgi_temp_path $WORK/nginx-tmp;
    uwsgi_temp_path $WORK/nginx-tmp;
    scgi_temp_path $WORK/nginx-tmp;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        listen 127.0.0.1:$NGINX_TLS_PORT ssl;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        root $WORK/www;
        location /files/ { dav_methods PUT; create_full_put_path on; dav_access user:rw group:r all:r; }
    }
}
CONF
nginx -c "$WORK/nginx.conf"

./target/release/parleyd --data-dir "$WORK/parley" --irc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    --http-tls-listen 127.0.0.1:0 > "$WORK/parleyd.out" 2>&1 &
for _ in $(seq 100); do grep -q "parleyd ready" "$WORK/parleyd.out" && break; sleep 0.1; done
IRC=$(grep -o 'irc=[^ ]*' "$WORK/parleyd.out" | cut -d= -f2)
HTTP=$(grep -o ' http=[^ ]*' "$WORK/parleyd.out" | cut -d= -f2)
HTTPS=$(grep -o ' https=[^ ]*' "$WORK/parleyd.out" | cut -d= -f2)
# Hold an IRC session open (the token dies with it) and fetch a token.
exec 3<>"/dev/tcp/${IRC%:*}/${IRC#*:}"
printf 'NICK bench\r\nUSER b 0 * :b\r\nEXTJWT *\r\n' >&3
TOKEN=""
while read -r -t 10 line <&3; do
    case "$line" in *" EXTJWT "*) TOKEN=$(echo "$line" | awk '{print $NF}' | tr -d '\r'); break;; esac
done
[ -n "$TOKEN" ] || { echo "no token from parleyd" >&2; exit 1; }
AUTH="Authorization: Bearer $TOKEN"

# Upload once to Parley so there is something to download; its Location
# is the share link (no login needed to fetch it).
SHARE=$(curl -sf -o /dev/null -D - -H "$AUTH" -T "$WORK/blob.bin" "http://$HTTP/files/blob.bin" \
    | sed -n 's/^[Ll]ocation: //p' | tr -d '\r')
[ -n "$SHARE" ] || { echo "no share link from parleyd" >&2; exit 1; }
# With an HTTPS listener the links parleyd hands out are https; the plain
# rows use the same path over plain HTTP.
plain() { echo "http://$HTTP/${1#*://*/}"; }
SHARE=$(plain "$SHARE")
BYTES=$((SIZE_MIB * 1024 * 1024))
# A resumable upload (IETF draft): create with no bytes, then one PATCH
# with the whole file; prints the PATCH's upload speed.
resumable() {
    local url
    url=$(curl -sfk -o /dev/null -D - -X POST -H "$AUTH" -H 'Upload-Complete: ?0' -H "Upload-Length: $BYTES" \
        -H "Content-Disposition: attachment; filename=\"r-$1.bin\"" --data-binary '' "http://$HTTP/files" \
        | sed -n 's/^[Ll]ocation: //p' | tr -d '\r')
    url=$(plain "$url")
    curl -sk -o /dev/null -w '%{speed_upload}' -X PATCH -H "$AUTH" -H 'Content-Type: application/partial-upload' \
        -H 'Upload-Offset: 0' -H 'Upload-Complete: ?1' -T "$WORK/blob.bin" "$url"
}

speed() { # prints MiB/s from curl's bytes/s
    awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'
}
best() { sort -n | tail -1; }

dl_nginx=(); dl_parley=(); dl_share=(); ul_nginx=(); ul_parley=(); ul_resume=(); sha=(); disk=()
tdl_nginx=(); tdl_parley=(); tul_nginx=(); tul_parley=()
for r in $(seq "$ROUNDS"); do
    tdl_nginx+=("$(speed "$(curl -sk -o /dev/null -w '%{speed_download}' "https://127.0.0.1:$NGINX_TLS_PORT/files/blob.bin")")")
    tdl_parley+=("$(speed "$(curl -sk -o /dev/null -w '%{speed_download}' -H "$AUTH" "https://$HTTPS/files/blob.bin")")")
    tul_nginx+=("$(speed "$(curl -sk -o /dev/null -w '%{speed_upload}' -T "$WORK/blob.bin" "https://127.0.0.1:$NGINX_TLS_PORT/files/tls-$r.bin")")")
    tul_parley+=("$(speed "$(curl -sk -o /dev/null -w '%{speed_upload}' -H "$AUTH" -T "$WORK/blob.bin" "https://$HTTPS/files/tls-$r.bin")")")
    dl_nginx+=("$(speed "$(curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$NGINX_PORT/files/blob.bin")")")
    dl_parley+=("$(speed "$(curl -s -o /dev/null -w '%{speed_download}' -H "$AUTH" "http://$HTTP/files/blob.bin")")")
    dl_share+=("$(speed "$(curl -sk -o /dev/null -w '%{speed_download}' "$SHARE")")")
    ul_nginx+=("$(speed "$(curl -s -o /dev/null -w '%{speed_upload}' -T "$WORK/blob.bin" "http://127.0.0.1:$NGINX_PORT/files/up-$r.bin")")")
    ul_parley+=("$(speed "$(curl -s -o /dev/null -w '%{speed_upload}' -H "$AUTH" -T "$WORK/blob.bin" "http://$HTTP/files/up-$r.bin")")")
    ul_resume+=("$(speed "$(resumable "$r")")")
    t0=$(date +%s.%N); openssl dgst -sha256 "$WORK/blob.bin" >/dev/null; t1=$(date +%s.%N)
    sha+=("$(awk -v s="$SIZE_MIB" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", s / (b - a) }')")
    t0=$(date +%s.%N); dd if="$WORK/blob.bin" of="$WORK/dd.bin" bs=1M conv=fsync status=none; t1=$(date +%s.%N)
    rm -f "$WORK/dd.bin"
    disk+=("$(awk -v s="$SIZE_MIB" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", s / (b - a) }')")
done
D_N=$(printf '%s\n' "${dl_nginx[@]}" | best); D_P=$(printf '%s\n' "${dl_parley[@]}" | best)
U_N=$(printf '%s\n' "${ul_nginx[@]}" | best); U_P=$(printf '%s\n' "${ul_parley[@]}" | best)
D_S=$(printf '%s\n' "${dl_share[@]}" | best); U_R=$(printf '%s\n' "${ul_resume[@]}" | best)
S=$(printf '%s\n' "${sha[@]}" | best); W=$(printf '%s\n' "${disk[@]}" | best)
TD_N=$(printf '%s\n' "${tdl_nginx[@]}" | best); TD_P=$(printf '%s\n' "${tdl_parley[@]}" | best)
TU_N=$(printf '%s\n' "${tul_nginx[@]}" | best); TU_P=$(printf '%s\n' "${tul_parley[@]}" | best)
echo
echo "file: ${SIZE_MIB} MiB, loopback, best of $ROUNDS rounds (MiB/s); every round: nginx dl ${dl_nginx[*]} | parley dl ${dl_parley[*]} | share link dl ${dl_share[*]} | nginx ul ${ul_nginx[*]} | parley ul ${ul_parley[*]} | resumable ul ${ul_resume[*]} | sha-256 ${sha[*]} | dd fsync ${disk[*]} | https: nginx dl ${tdl_nginx[*]} | parley dl ${tdl_parley[*]} | nginx ul ${tul_nginx[*]} | parley ul ${tul_parley[*]}"
printf '| %-28s | %8s |\n' "measure" "MiB/s"
printf '| %-28s | %8s |\n' "---" "---"
printf '| %-28s | %8s |\n' "download, nginx (sendfile)" "$D_N" "download, parleyd" "$D_P" \
    "download, parleyd share link" "$D_S" "upload, nginx (PUT, dav)" "$U_N" "upload, parleyd (hash+fsync)" "$U_P" \
    "upload, parleyd resumable" "$U_R" "SHA-256 (openssl)" "$S" "durable write (dd fsync)" "$W" \
    "https download, nginx" "$TD_N" "https download, parleyd" "$TD_P" "https upload, nginx" "$TU_N" \
    "https upload, parleyd" "$TU_P"
awk -v dp="$D_P" -v dn="$D_N" -v up="$U_P" -v un="$U_N" -v s="$S" -v w="$W" -v ds="$D_S" -v ur="$U_R" -v tdp="$TD_P" -v tdn="$TD_N" -v tup="$TU_P" -v tun="$TU_N" 'BEGIN {
    printf "\nratios: download parley/nginx = %.2f; share link/nginx = %.2f; upload parley/nginx = %.2f; resumable/plain upload = %.2f; upload parley/durable write = %.2f; upload parley/SHA-256 = %.2f; https download parley/nginx = %.2f; https upload parley/nginx = %.2f\n", dp/dn, ds/dn, up/un, ur/up, up/w, up/s, tdp/tdn, tup/tun }'
