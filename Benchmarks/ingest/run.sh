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
#   ROUNDS=5 Benchmarks/ingest/run.sh 10 64
#   BASELINE=/tmp/old/webhook-gateway Benchmarks/ingest/run.sh 10 64   # adds the old build, same rounds
#   PEERS=0 GATEWAY=… BASELINE=… Benchmarks/ingest/run.sh 10 64          # only the two builds (no peers)
#
# This machine's results vary by a third from one run to the next, so the servers are run in
# ROUNDS rounds (3 unless set), one after the other in each round; the table gives each server's
# median round and the range over all rounds. Each round signs its own events and uses new stores.
#
# Needs: wrk, nginx, webhook (apt-get install wrk nginx webhook), python3, openssl; builds release binaries.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/common.sh
DURATION=${1:-10}
CONNECTIONS=${2:-64}
THREADS=2
COUNT=${COUNT:-400000}
ROUNDS=${ROUNDS:-3}
WORK=$(mktemp -d /tmp/wg-ingest-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

PEERS=${PEERS:-1}
tools="wrk python3 openssl"
[ "$PEERS" = 1 ] && tools="$tools nginx webhook"
for tool in $tools; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install wrk nginx webhook)" >&2; exit 1; }
done

if [ "$PEERS" = 1 ] || [ ! -x "${GATEWAY:-}" ]; then build_binaries; fi

SECRET=bench-tiktok-client-secret

run_wrk() { # name url requests-file
    local result
    result=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s Benchmarks/ingest/requests.lua "$2" -- "$3" "$THREADS" | grep '^RESULT')
    echo "$1 $result" >> "$WORK/results.txt"
}

# The peers' configurations, written once.
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
cat > "$WORK/hooks.json" <<HOOKS
[{"id": "tiktok", "execute-command": "/bin/true", "response-message": "ok",
  "trigger-rule": {"match": {"type": "payload-hmac-sha256", "secret": "$SECRET",
                             "parameter": {"source": "header", "name": "X-Signature"}}}}]
HOOKS
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=bench \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

# The gateway's configuration for round $1: a store of its own, over TLS when $2 is "tls".
gateway_config() {
    local port=18080 tls=""
    if [ "${2:-}" = tls ]; then
        port=18084
        tls=", \"tls\": { \"certificateChain\": \"$WORK/cert.pem\", \"privateKey\": \"$WORK/key.pem\" }"
    fi
    cat > "$WORK/gateway-$1-${2:-plain}.json" <<JSON
{
  "listen": { "host": "127.0.0.1", "port": $port$tls },
  "admin": { "host": "127.0.0.1", "port": 19090, "token": "benchmark-admin-token" },
  "storage": { "path": "$WORK/round-$1-${2:-plain}.sqlite" },
  "deadLetters": { "directory": "$WORK/dead-letters-$1-${2:-plain}" },
  "sources": [ { "name": "tiktok", "path": "/webhooks/tiktok", "scheme": "tiktok", "secrets": ["$SECRET"] } ],
  "consumers": [ { "name": "orders", "url": "http://127.0.0.1:7001/", "signingSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" } ]
}
JSON
    echo "$WORK/gateway-$1-${2:-plain}.json"
}

: > "$WORK/results.txt"
PEAK_RSS_KB=0
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round of $ROUNDS: signing $COUNT unique events with Python's hmac…" >&2
    python3 Benchmarks/ingest/sign_requests.py tiktok "$COUNT" "$SECRET" > "$WORK/tiktok.txt"
    python3 Benchmarks/ingest/sign_requests.py webhook "$COUNT" "$SECRET" > "$WORK/webhook.txt"

    # (a0) the previous build, when given, on a store of its own and the same requests
    if [ -n "${BASELINE:-}" ]; then
        "$BASELINE" serve --config "$(gateway_config "$round" baseline)" --log-level warning &
        GATEWAY_PID=$!
        wait_for_port 18080
        run_wrk gateway-baseline http://127.0.0.1:18080/webhooks/tiktok "$WORK/tiktok.txt"
        kill -TERM $GATEWAY_PID; wait $GATEWAY_PID || true
    fi

    # (a) the gateway
    "$GATEWAY" serve --config "$(gateway_config "$round")" --log-level warning &
    GATEWAY_PID=$!
    wait_for_port 18080
    run_wrk gateway http://127.0.0.1:18080/webhooks/tiktok "$WORK/tiktok.txt"
    rss=$(awk '/VmHWM/ {print $2}' /proc/$GATEWAY_PID/status)
    [ "$rss" -gt "$PEAK_RSS_KB" ] && PEAK_RSS_KB=$rss
    kill -TERM $GATEWAY_PID; wait $GATEWAY_PID || true
    echo "stored $(sqlite3 "$WORK/round-$round-plain.sqlite" "SELECT COUNT(*) FROM events" 2>/dev/null || echo "?")" >> "$WORK/stored.txt"

    [ "$PEERS" = 1 ] || continue

    # (b) bare Hummingbird
    "$HELLO" 18081 > /dev/null 2>&1 &
    HELLO_PID=$!
    wait_for_port 18081
    run_wrk hummingbird-hello http://127.0.0.1:18081/ "$WORK/tiktok.txt"
    kill -TERM $HELLO_PID; wait $HELLO_PID || true

    # (c) nginx return 200
    nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
    NGINX_PID=$!
    wait_for_port 18082
    run_wrk nginx-return-200 http://127.0.0.1:18082/ "$WORK/tiktok.txt"
    kill -TERM $NGINX_PID; wait $NGINX_PID || true

    # (d) adnanh/webhook with an HMAC-SHA256 trigger rule
    webhook -hooks "$WORK/hooks.json" -ip 127.0.0.1 -port 18083 > /dev/null 2>&1 &
    WEBHOOK_PID=$!
    wait_for_port 18083
    run_wrk adnanh-webhook http://127.0.0.1:18083/hooks/tiktok "$WORK/webhook.txt"
    kill -TERM $WEBHOOK_PID; wait $WEBHOOK_PID || true

    # (e) the gateway over TLS, on a store of its own (so the same requests are new events there)
    "$GATEWAY" serve --config "$(gateway_config "$round" tls)" --log-level warning &
    GATEWAY_PID=$!
    wait_for_port 18084
    run_wrk gateway-tls https://127.0.0.1:18084/webhooks/tiktok "$WORK/tiktok.txt"
    kill -TERM $GATEWAY_PID; wait $GATEWAY_PID || true
done

echo
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, loopback, $(nproc) cores shared by client and server, $ROUNDS rounds"
echo
python3 - "$WORK/results.txt" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, *fields = line.split()
    values = dict(field.split("=", 1) for field in fields if "=" in field)
    runs.setdefault(name, []).append(values)
print("| server | requests/s (median) | range over rounds | p50 ms | p99 ms | non-200 | socket errors |")
print("|---|---|---|---|---|---|---|")
medians = {}
for name, rounds in runs.items():
    rounds.sort(key=lambda r: float(r["rps"]))
    middle = rounds[(len(rounds) - 1) // 2]
    medians[name] = float(middle["rps"])
    low, high = rounds[0]["rps"], rounds[-1]["rps"]
    bad = sum(int(r["non200"]) for r in rounds)
    errors = sum(int(r["errors"]) for r in rounds)
    print(f"| {name} | {middle['rps']} | {low} to {high} | {middle['p50_ms']} | {middle['p99_ms']} | {bad} | {errors} |")
    # Only the gateway de-duplicates, so only its numbers change when requests repeat.
    if name.startswith("gateway") and any(r["wrapped"] != "0" for r in rounds):
        print("  (warning: the gateway ran out of unique requests and repeated them: raise COUNT)")
print()
if "hummingbird-hello" in medians:
    print("gateway / hummingbird-hello = %.2fx; gateway / adnanh-webhook = %.2fx (medians)" % (
        medians["gateway"] / medians["hummingbird-hello"], medians["gateway"] / medians["adnanh-webhook"]))
if "gateway-baseline" in medians:
    print("gateway / gateway-baseline (the previous build) = %.2fx (medians)" % (medians["gateway"] / medians["gateway-baseline"]))
PY
echo "gateway: peak RSS $((PEAK_RSS_KB / 1024)) MB; events stored per round: $(awk '{print $2}' "$WORK/stored.txt" | paste -sd ' ')"
