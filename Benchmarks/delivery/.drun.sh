#!/usr/bin/env bash
# Delivery benchmark, on loopback, everything in one run:
#   (a) bare Hummingbird hello-world requests/s (the yardstick of the targets);
#   (b) sustained end to end: wrk ingests unique signed events into the gateway for DURATION
#       seconds while it delivers them to 1, then 3, consumers (nginx `return 200`); reports
#       events/s ingested, deliveries/s, the queue left at the end, and the latency from receipt
#       to the consumer (p50/p99, from nginx's log against the event ids' timestamps);
#   (c) drain: 100,000 events queued while the consumer is down, then the consumer comes back;
#       time until the queue is empty;
#   (d) replay: 100,000 dead letters (the consumer answered 400), then the consumer is fixed and
#       `webhook-gateway dead-letters replay` re-queues them; time of the command and until delivered;
#   (e) 1,000,000 queued deliveries (inserted with sqlite3, for speed) with the consumer down,
#       then draining: the gateway's peak RSS.
#
#   Benchmarks/delivery/run.sh [duration-seconds]        (default 60)
#   CONNECTIONS="8 16" QUEUED=1000000 DRAINED=100000 PHASES="sustained drain replay queued" Benchmarks/delivery/run.sh
#
# Needs: wrk, nginx, sqlite3, python3, curl (apt-get install wrk nginx sqlite3 curl); builds release binaries.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/common.sh
DURATION=${1:-60}
CONNECTIONS=${CONNECTIONS:-"8 16"}
DRAINED=${DRAINED:-100000}
QUEUED=${QUEUED:-1000000}
THREADS=2
WORK=$(mktemp -d /tmp/wg-delivery-bench.XXXXXX)
SECRET=bench-tiktok-client-secret
TOKEN=benchmark-admin-token
SIGNING=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
GW_PORT=18180
ADMIN_PORT=19190
GW_PID=
cleanup() {
    [ -n "$GW_PID" ] && kill -TERM "$GW_PID" 2>/dev/null || true
    [ -f "$WORK/nginx/nginx.pid" ] && kill "$(cat "$WORK/nginx/nginx.pid")" 2>/dev/null || true
    [ -f "$WORK/late/nginx.pid" ] && kill "$(cat "$WORK/late/nginx.pid")" 2>/dev/null || true
    kill $(jobs -p) 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

PHASES=${PHASES:-"sustained drain replay queued"}
has_phase() { [[ " $PHASES " == *" $1 "* ]]; }
for tool in wrk nginx sqlite3 python3 curl; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install wrk nginx sqlite3 curl)" >&2; exit 1; }
done

HELLO=/work/main/Benchmarks/.build/release/HelloHummingbird

log() { echo "[$(date +%T)] $*" >&2; }
now_ms() { date +%s%3N; }
metric() { # exact series name, e.g. webhook_gateway_queue_depth{consumer="orders"}
    curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/metrics" \
        | awk -v name="$1" '$1 == name { printf "%d\n", $2 }'
}
depth() { metric "webhook_gateway_queue_depth{consumer=\"$1\"}"; }
wait_until() { # seconds-limit command... ; polls every 100 ms
    local limit=$1
    shift
    local deadline=$(($(date +%s) + limit))
    until "$@"; do
        if [ "$(date +%s)" -ge "$deadline" ]; then return 1; fi
        sleep 0.1
    done
}
queue_empty() { for consumer in "$@"; do [ "$(depth "$consumer")" = 0 ] || return 1; done; }
sign() { python3 Benchmarks/ingest/sign_requests.py tiktok "$1" "$SECRET" > "$WORK/requests.txt"; }
rss_peak_mb() { awk '/VmHWM/ {printf "%d", $2 / 1024}' "/proc/$GW_PID/status"; }

# Consumers: nginx, one `return 200` server per consumer with its own access log, and one whose
# answer is switched by a reload (400 while dead letters are made, 200 for the replay).
mkdir -p "$WORK/nginx" "$WORK/late"
echo 'return 400 "refused";' > "$WORK/nginx/answer.conf"
cat > "$WORK/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
    log_format timing '\$msec \$http_webhook_id';
    client_body_temp_path $WORK/nginx/body;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:17101; access_log $WORK/nginx/c1.log timing buffer=256k flush=1s; location / { return 200 "ok"; } }
    server { listen 127.0.0.1:17102; access_log $WORK/nginx/c2.log timing buffer=256k flush=1s; location / { return 200 "ok"; } }
    server { listen 127.0.0.1:17103; access_log $WORK/nginx/c3.log timing buffer=256k flush=1s; location / { return 200 "ok"; } }
    server { listen 127.0.0.1:17109; access_log off; location / { include $WORK/nginx/answer.conf; } }
}
NGINX
# The consumer of the drain phase, started only when it "comes back".
sed -e "s#$WORK/nginx/nginx.pid#$WORK/late/nginx.pid#" -e "s#$WORK/nginx/error.log#$WORK/late/error.log#" \
    -e "s#$WORK/nginx/body#$WORK/late/body#" -e '/listen 127.0.0.1:1710[1239]/d' "$WORK/nginx/nginx.conf" > "$WORK/late/nginx.conf"
sed -i "s#^}\$#    server { listen 127.0.0.1:17104; access_log off; location / { return 200 \"ok\"; } }\n}#" "$WORK/late/nginx.conf"
nginx -c "$WORK/nginx/nginx.conf"
wait_for_port 17101

# consumers-json NAME=URL... ; retry settings per phase in RETRY
RETRY='{ "maxAttempts": 12, "initialDelay": "250ms", "maxDelay": "1s" }'
write_config() {
    local consumers="" separator=""
    for pair in "$@"; do
        consumers+="$separator{ \"name\": \"${pair%%=*}\", \"url\": \"${pair#*=}\", \"signingSecret\": \"$SIGNING\", \"concurrency\": 64, \"retry\": $RETRY }"
        separator=", "
    done
    rm -rf "$WORK/data"
    cat > "$WORK/gateway.json" <<JSON
{
  "listen": { "host": "127.0.0.1", "port": $GW_PORT },
  "admin": { "host": "127.0.0.1", "port": $ADMIN_PORT, "token": "$TOKEN" },
  "storage": { "path": "$WORK/data/gateway.sqlite" },
  "deadLetters": { "directory": "$WORK/data/dead-letters" },
  "sources": [ { "name": "tiktok", "path": "/webhooks/tiktok", "scheme": "tiktok", "secrets": ["$SECRET"] } ],
  "consumers": [ $consumers ]
}
JSON
}
start_gateway() {
    "$GATEWAY" serve --config "$WORK/gateway.json" --log-level warning 2>>"$WORK/gateway.log" &
    GW_PID=$!
    wait_for_port "$GW_PORT"
    wait_for_port "$ADMIN_PORT"
}
stop_gateway() {
    kill -TERM "$GW_PID"
    wait "$GW_PID" || true
    GW_PID=
}
ingest_all() { # sends every signed request once (wrk runs for its duration, so it is stopped here)
    local total accepted last_change previous=-1
    total=$(wc -l < "$WORK/requests.txt")
    wrk -t"$THREADS" -c64 -d600s -s Benchmarks/ingest/requests.lua "http://127.0.0.1:$GW_PORT/webhooks/tiktok" \
        -- "$WORK/requests.txt" "$THREADS" once > "$WORK/wrk.out" &
    local wrk_pid=$! started
    started=$(now_ms)
    last_change=$(date +%s)
    while true; do
        sleep 0.2
        accepted=$(metric 'webhook_gateway_requests_total{source="tiktok",outcome="accepted"}')
        [ "${accepted:-0}" -ge "$total" ] && break
        if [ "${accepted:-0}" != "$previous" ]; then previous=$accepted; last_change=$(date +%s); fi
        [ $(($(date +%s) - last_change)) -ge 3 ] && break # wrk lost a request or two; what was accepted counts
    done
    local took=$(($(now_ms) - started))
    kill -INT "$wrk_pid" 2>/dev/null || true
    wait "$wrk_pid" || true
    echo "RESULT rps=$(python3 -c "print(round(${accepted:-0} * 1000 / $took))") accepted=${accepted:-0}"
}
field() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }

# (a) bare Hummingbird
log "hummingbird hello-world baseline"
sign 200000
"$HELLO" 18181 > /dev/null 2>&1 &
HELLO_PID=$!
wait_for_port 18181
HELLO_RESULT=$(wrk -t"$THREADS" -c64 -d10s -s Benchmarks/ingest/requests.lua http://127.0.0.1:18181/ -- "$WORK/requests.txt" "$THREADS" | grep '^RESULT')
kill -TERM $HELLO_PID; wait $HELLO_PID || true
HELLO_RPS=$(field "$HELLO_RESULT" rps)

SUSTAINED=()
if has_phase sustained; then
# (b) sustained end to end
for count in 1 3; do
    for connections in $CONNECTIONS; do
        log "sustained: $count consumer(s), wrk -c$connections for ${DURATION}s"
        consumers=()
        names=()
        for index in $(seq 1 "$count"); do
            consumers+=("c$index=http://127.0.0.1:1710$index/")
            names+=("c$index")
            : > "$WORK/nginx/c$index.log"
        done
        RETRY='{ "maxAttempts": 12, "initialDelay": "250ms", "maxDelay": "1s" }'
        write_config "${consumers[@]}"
        sign $((DURATION * 5000))
        start_gateway
        from=$(now_ms)
        result=$(wrk -t"$THREADS" -c"$connections" -d"${DURATION}s" -s Benchmarks/ingest/requests.lua \
            "http://127.0.0.1:$GW_PORT/webhooks/tiktok" -- "$WORK/requests.txt" "$THREADS" | grep '^RESULT')
        to=$(now_ms)
        left=0
        for name in "${names[@]}"; do left=$((left + $(depth "$name"))); done
        rss=$(rss_peak_mb)
        wait_until 300 queue_empty "${names[@]}" || log "queue did not drain"
        sleep 1.5 # nginx flushes its log buffer every second
        logs=()
        for index in $(seq 1 "$count"); do logs+=("$WORK/nginx/c$index.log"); done
        # Deliveries per second while deliveries arrived (wrk spends the first seconds loading its file).
        delivered=$(awk -v from="$from" -v to="$to" '{ t = $1 * 1000; if (t >= from && t < to) { n++; if (!first || t < first) first = t; if (t > last) last = t } }
            END { if (last > first) printf "%d", n * 1000 / (last - first); else print 0 }' "${logs[@]}")
        latency=$(python3 Benchmarks/delivery/latency.py "$from" "$to" "${logs[@]}")
        stop_gateway
        SUSTAINED+=("$count $connections $(field "$result" rps) $delivered $left $(field "$latency" p50_ms) $(field "$latency" p99_ms) $rss $(field "$result" wrapped) $(field "$result" non200)")
    done
done

fi

if has_phase drain; then
# (c) drain after an outage
log "drain: $DRAINED events queued while the consumer is down"
RETRY='{ "maxAttempts": 1000, "initialDelay": "250ms", "maxDelay": "1s" }'
write_config "orders=http://127.0.0.1:17104/"
sign "$DRAINED"
start_gateway
ingest=$(ingest_all)
queued=$(depth orders)
nginx -c "$WORK/late/nginx.conf"
back=$(now_ms)
wait_until 600 queue_empty orders
drained=$(now_ms)
DRAIN_SECONDS=$(python3 -c "print('%.1f' % (($drained - $back) / 1000))")
DRAIN_RSS=$(rss_peak_mb)
stop_gateway
kill "$(cat "$WORK/late/nginx.pid")"

fi

if has_phase replay; then
# (d) replay of dead letters
log "replay: $DRAINED dead letters"
RETRY='{ "maxAttempts": 1, "initialDelay": "250ms", "maxDelay": "1s" }'
write_config "orders=http://127.0.0.1:17109/"
sign "$DRAINED"
start_gateway
ingest_all > /dev/null
ACCEPTED=$(metric 'webhook_gateway_requests_total{source="tiktok",outcome="accepted"}')
dead_letters_done() { [ "$(metric 'webhook_gateway_dead_letters_total{consumer="orders"}')" -ge "$ACCEPTED" ] && queue_empty orders; }
wait_until 600 dead_letters_done
DEAD=$(metric 'webhook_gateway_dead_letters_total{consumer="orders"}')
echo 'return 200 "ok";' > "$WORK/nginx/answer.conf"
nginx -c "$WORK/nginx/nginx.conf" -s reload
sleep 1
start=$(now_ms)
REPLAY_OUTPUT=$("$GATEWAY" dead-letters replay --config "$WORK/gateway.json" --consumer orders 2>/dev/null | tail -1)
queued_at=$(now_ms)
wait_until 600 queue_empty orders
delivered_at=$(now_ms)
REPLAY_COMMAND=$(python3 -c "print('%.1f' % (($queued_at - $start) / 1000))")
REPLAY_TOTAL=$(python3 -c "print('%.1f' % (($delivered_at - $start) / 1000))")
REPLAY_RSS=$(rss_peak_mb)
stop_gateway

fi

if has_phase queued; then
# (e) a million queued deliveries
log "$QUEUED queued deliveries"
RETRY='{ "maxAttempts": 1000, "initialDelay": "250ms", "maxDelay": "1s" }'
write_config "orders=http://127.0.0.1:17104/"
start_gateway
stop_gateway
sqlite3 "$WORK/data/gateway.sqlite" <<SQL
PRAGMA journal_mode = WAL;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $QUEUED)
INSERT INTO events (id, source, event_type, dedup_key, order_id, received_at, headers, body)
SELECT printf('evt_BULK%018d', i), 'tiktok', 'minis.trade_order.redeem.success', 'tiktok:bulk:' || i, 'bulk-' || i,
       CAST(strftime('%s', 'now') AS INTEGER) * 1000, '{"content-type":"application/json"}',
       CAST(printf('{"event":"minis.trade_order.redeem.success","n":%d,"pad":"%s"}', i, hex(randomblob(400))) AS BLOB)
FROM n;
INSERT INTO deliveries (event_id, consumer, order_id, state, attempts, next_attempt_at, created_at)
SELECT id, 'orders', order_id, 'pending', 0, received_at, received_at FROM events;
COMMIT;
SQL
start_gateway
BIG_QUEUED=$(depth orders)
sleep 10 # the consumer is down: the gateway pauses it and probes
BIG_RSS_DOWN=$(rss_peak_mb)
nginx -c "$WORK/late/nginx.conf"
sleep 30 # draining
BIG_LEFT=$(depth orders)
BIG_RSS=$(rss_peak_mb)
stop_gateway

fi

echo
echo "Loopback, $(nproc) cores shared by wrk, the gateway and nginx; bare Hummingbird hello-world: $HELLO_RPS requests/s (wrk -c64)."
echo
echo "| consumers | wrk connections | events/s ingested | deliveries/s | queue left at end | p50 ms receipt→consumer | p99 ms | peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|"
for line in "${SUSTAINED[@]}"; do
    read -r count connections rps deliveries left p50 p99 rss wrapped non200 <<< "$line"
    echo "| $count | $connections | $rps | $deliveries | $left | $p50 | $p99 | $rss |"
    [ "$wrapped" != 0 ] && echo "  (warning: wrk ran out of unique requests and repeated them)"
    [ "$non200" != 0 ] && echo "  (warning: $non200 answers were not 200)"
done
echo
# Sustained: the queue left at the end is less than a second of ingest.
best=$(printf '%s\n' "${SUSTAINED[@]}" | awk '$1 == 1 && $5 <= $3 { if ($4 > best) best = $4 } END { print best + 0 }')
python3 -c "print('best sustained one-consumer rate / hummingbird hello = %.2fx' % ($best / $HELLO_RPS))"
echo
echo "| measurement | result |"
echo "|---|---|"
has_phase drain && echo "| drain: $queued queued while the consumer was down ($(field "$ingest" rps) events/s ingested) | empty ${DRAIN_SECONDS} s after the consumer came back; peak RSS ${DRAIN_RSS} MB |"
has_phase replay && echo "| replay: $DEAD dead letters | \`dead-letters replay\` took ${REPLAY_COMMAND} s ($REPLAY_OUTPUT); all delivered after ${REPLAY_TOTAL} s; peak RSS ${REPLAY_RSS} MB |"
has_phase queued && echo "| $BIG_QUEUED queued deliveries | peak RSS ${BIG_RSS_DOWN} MB with the consumer down, ${BIG_RSS} MB after 30 s of draining ($BIG_LEFT left) |"
true
