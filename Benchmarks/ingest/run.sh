#!/usr/bin/env bash
# Ingest benchmark: in one run, on loopback, wrk against
#   (a) the gateway ingesting unique signed TikTok events durably (SQLite, fsync per group commit),
#   (b) a bare Hummingbird hello-world,
#   (c) nginx `return 200` (this machine's HTTP ceiling),
#   (d) Debian's `webhook` (adnanh/webhook) verifying an HMAC-SHA256 over the same bodies,
#   (e) the gateway again with `listen.tls` (HTTPS; wrk speaks HTTP/1.1 over TLS), on a new store.
# Prints a markdown table of requests/s, p50, p99 and the gateway's peak RSS.
#
#   Benchmarks/ingest/run.sh [duration-seconds] [connections]
#
# Needs: wrk, nginx, webhook (apt-get install wrk nginx webhook), python3, openssl; builds release binaries.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/common.sh
DURATION=${1:-10}
CONNECTIONS=${2:-64}
THREADS=2
COUNT=${COUNT:-400000}
WORK=$(mktemp -d /tmp/wg-ingest-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

for tool in wrk nginx webhook python3 openssl; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install wrk nginx webhook)" >&2; exit 1; }
done

build_binaries

SECRET=bench-tiktok-client-secret
echo "signing $COUNT unique events with Python's hmac…" >&2
python3 Benchmarks/ingest/sign_requests.py tiktok "$COUNT" "$SECRET" > "$WORK/tiktok.txt"
python3 Benchmarks/ingest/sign_requests.py webhook "$COUNT" "$SECRET" > "$WORK/webhook.txt"


run_wrk() { # name url requests-file
    local result
    result=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s Benchmarks/ingest/requests.lua "$2" -- "$3" "$THREADS" | grep '^RESULT')
    echo "$1 $result"
}

# (a) the gateway
cat > "$WORK/gateway.json" <<JSON
{
  "listen": { "host": "127.0.0.1", "port": 18080 },
  "admin": { "host": "127.0.0.1", "port": 19090, "token": "benchmark-admin-token" },
  "storage": { "path": "$WORK/gateway.sqlite" },
  "deadLetters": { "directory": "$WORK/dead-letters" },
  "sources": [ { "name": "tiktok", "path": "/webhooks/tiktok", "scheme": "tiktok", "secrets": ["$SECRET"] } ],
  "consumers": [ { "name": "orders", "url": "http://127.0.0.1:7001/", "signingSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" } ]
}
JSON
"$GATEWAY" serve --config "$WORK/gateway.json" --log-level warning &
GATEWAY_PID=$!
wait_for_port 18080
RESULTS=()
RESULTS+=("$(run_wrk gateway http://127.0.0.1:18080/webhooks/tiktok "$WORK/tiktok.txt")")
GATEWAY_RSS_KB=$(awk '/VmHWM/ {print $2}' /proc/$GATEWAY_PID/status)
STORED=$(sqlite3 "$WORK/gateway.sqlite" "SELECT COUNT(*) FROM events" 2>/dev/null || echo "?")
kill -TERM $GATEWAY_PID; wait $GATEWAY_PID || true

# (b) bare Hummingbird
"$HELLO" 18081 > /dev/null 2>&1 &
HELLO_PID=$!
wait_for_port 18081
RESULTS+=("$(run_wrk hummingbird-hello http://127.0.0.1:18081/ "$WORK/tiktok.txt")")
kill -TERM $HELLO_PID; wait $HELLO_PID || true

# (c) nginx return 200
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<NGINX
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    server {
        listen 127.0.0.1:18082;
        location / { return 200 "ok"; }
    }
}
NGINX
nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
wait_for_port 18082
RESULTS+=("$(run_wrk nginx-return-200 http://127.0.0.1:18082/ "$WORK/tiktok.txt")")
kill -TERM $NGINX_PID; wait $NGINX_PID || true

# (d) adnanh/webhook with an HMAC-SHA256 trigger rule
cat > "$WORK/hooks.json" <<HOOKS
[{"id": "tiktok", "execute-command": "/bin/true", "response-message": "ok",
  "trigger-rule": {"match": {"type": "payload-hmac-sha256", "secret": "$SECRET",
                             "parameter": {"source": "header", "name": "X-Signature"}}}}]
HOOKS
webhook -hooks "$WORK/hooks.json" -ip 127.0.0.1 -port 18083 > /dev/null 2>&1 &
WEBHOOK_PID=$!
wait_for_port 18083
RESULTS+=("$(run_wrk adnanh-webhook http://127.0.0.1:18083/hooks/tiktok "$WORK/webhook.txt")")
kill -TERM $WEBHOOK_PID; wait $WEBHOOK_PID || true

# (e) the gateway over TLS, on a store of its own (so the same requests are new events there)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=bench \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
sed -e "s|\"port\": 18080 }|\"port\": 18084, \"tls\": { \"certificateChain\": \"$WORK/cert.pem\", \"privateKey\": \"$WORK/key.pem\" } }|" \
    -e "s|$WORK/gateway.sqlite|$WORK/gateway-tls.sqlite|" "$WORK/gateway.json" > "$WORK/gateway-tls.json"
"$GATEWAY" serve --config "$WORK/gateway-tls.json" --log-level warning &
GATEWAY_PID=$!
wait_for_port 18084
RESULTS+=("$(run_wrk gateway-tls https://127.0.0.1:18084/webhooks/tiktok "$WORK/tiktok.txt")")
kill -TERM $GATEWAY_PID; wait $GATEWAY_PID || true

echo
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, loopback, $(nproc) cores shared by client and server"
echo
echo "| server | requests/s | p50 ms | p99 ms | non-200 | socket errors |"
echo "|---|---|---|---|---|---|"
for line in "${RESULTS[@]}"; do
    name=${line%% *}
    get() { echo "$line" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }
    echo "| $name | $(get rps) | $(get p50_ms) | $(get p99_ms) | $(get non200) | $(get errors) |"
    # Only the gateway de-duplicates, so only its numbers change when requests repeat.
    if [ "$name" = gateway ] && [ "$(get wrapped)" != "0" ]; then
        echo "  (warning: the gateway ran out of unique requests and repeated them: raise COUNT)"
    fi
done
echo
echo "gateway: peak RSS $((GATEWAY_RSS_KB / 1024)) MB; events stored: $STORED"
gw=$(echo "${RESULTS[0]}" | tr ' ' '\n' | awk -F= '$1=="rps"{print $2}')
hb=$(echo "${RESULTS[1]}" | tr ' ' '\n' | awk -F= '$1=="rps"{print $2}')
wh=$(echo "${RESULTS[3]}" | tr ' ' '\n' | awk -F= '$1=="rps"{print $2}')
python3 -c "print('gateway / hummingbird-hello = %.2fx; gateway / adnanh-webhook = %.2fx' % ($gw/$hb, $gw/$wh))"
