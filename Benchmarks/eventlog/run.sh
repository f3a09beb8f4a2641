#!/usr/bin/env bash
# Event-log benchmark: lookups of `GET /admin/events` and `GET /admin/events/{id}` on a SQLite
# store holding EVENTS (1,000,000) events.
#   1. the gateway starts once on a new store (creating its schema) and stops;
#   2. sqlite3 fills the store in one transaction (Benchmarks/eventlog/fill_sql.py: events over
#      5 days with their delivery rows, mostly delivered, ~1 % dead-lettered, the newest 0.1 %
#      pending behind an operator's pause, so that the gateway touches no row while it is measured);
#   3. the gateway starts on the filled store; measure.py checks that the API shows the synthetic
#      events as stored, then times each query REQUESTS times (after 3 warm-up requests) on one
#      keep-alive connection over loopback, client-side, connection setup excluded.
# Prints a table of median, p95 and max per query against the issue's targets (orderId < 50 ms,
# a page of 100 < 200 ms; judged on p95), the store's size, the fill time and the query plans.
# Exits non-zero on errors only, not on a missed target.
#
#   Benchmarks/eventlog/run.sh [requests-per-query]        (default 50)
#   EVENTS=1000000 GATEWAY=/path/webhook-gateway Benchmarks/eventlog/run.sh 50
#   KEEP=1 …        keeps the work directory (the filled store) and prints its path
#
# Needs: sqlite3, python3, curl (apt-get install sqlite3 curl); builds the release gateway unless
# GATEWAY is given. The measurement runs on a warm page cache (the store was just written).
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/common.sh
REQUESTS=${1:-50}
EVENTS=${EVENTS:-1000000}
TOKEN=benchmark-admin-token
GW_PORT=18380
ADMIN_PORT=19380
WORK=$(mktemp -d /tmp/wg-eventlog-bench.XXXXXX)
GW_PID=
cleanup() {
    if [ -n "$GW_PID" ]; then kill -TERM "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
for tool in sqlite3 python3 curl; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install sqlite3 curl)" >&2; exit 1; }
done
if [ ! -x "${GATEWAY:-}" ]; then
    echo "building the release gateway…" >&2
    lock=()
    command -v flock >/dev/null && lock=(flock /tmp/swift-build.lock)
    "${lock[@]}" swift build -c release --product webhook-gateway >&2
    GATEWAY=$(swift build -c release --show-bin-path)/webhook-gateway
fi
log() { echo "[$(date +%T)] $*" >&2; }
STORE=$WORK/data/gateway.sqlite

# One consumer at a closed port, paused by the fill (consumer_holds); a retention longer than the
# synthetic history, so that pruning deletes nothing.
cat > "$WORK/gateway.json" <<JSON
{
  "listen": { "host": "127.0.0.1", "port": $GW_PORT },
  "admin": { "host": "127.0.0.1", "port": $ADMIN_PORT, "token": "$TOKEN" },
  "storage": { "kind": "sqlite", "path": "$STORE" },
  "deadLetters": { "directory": "$WORK/data/dead-letters" },
  "events": { "retention": "30d" },
  "sources": [ { "name": "tiktok", "path": "/webhooks/tiktok", "scheme": "tiktok", "secrets": ["bench-tiktok-client-secret"] } ],
  "consumers": [ { "name": "orders", "url": "http://127.0.0.1:9/", "signingSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" } ]
}
JSON
"$GATEWAY" check-config --config "$WORK/gateway.json" > "$WORK/check.txt" 2>&1 || { cat "$WORK/check.txt" >&2; exit 1; }

start_gateway() {
    "$GATEWAY" serve --config "$WORK/gateway.json" --log-level warning 2>> "$WORK/gateway.log" &
    GW_PID=$!
    wait_for_port "$ADMIN_PORT"
    for _ in $(seq 1 300); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/readyz")" = 200 ] && return 0
        sleep 0.1
    done
    echo "the gateway did not become ready" >&2
    exit 1
}
stop_gateway() {
    kill -TERM "$GW_PID"
    local status=0
    wait "$GW_PID" || status=$?
    GW_PID=
    [ "$status" = 0 ] || { echo "the gateway exited with $status" >&2; cat "$WORK/gateway.log" >&2; exit 1; }
}

log "creating the schema"
start_gateway
stop_gateway

log "filling the store with $EVENTS events"
python3 Benchmarks/eventlog/fill_sql.py "$EVENTS" "$(date +%s%3N)" > "$WORK/fill.sql"
fill_start=$(date +%s.%N)
sqlite3 -bail "$STORE" < "$WORK/fill.sql" > /dev/null
fill_end=$(date +%s.%N)
FILL_SECONDS=$(python3 -c "print(f'{$fill_end - $fill_start:.0f}')")
read -r stored delivery_rows dead pending < <(sqlite3 -separator ' ' "$STORE" \
    "SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM deliveries),
            (SELECT COUNT(*) FROM deliveries WHERE state = 'dead_lettered'),
            (SELECT COUNT(*) FROM deliveries WHERE state = 'pending')")
[ "$stored" = "$EVENTS" ] || { echo "the store holds $stored events, not $EVENTS" >&2; exit 1; }
STORE_MB=$(du -cm "$STORE"* | awk 'END {print $1}')
log "filled in ${FILL_SECONDS} s: $stored events, $delivery_rows deliveries ($dead dead-lettered, $pending pending), ${STORE_MB} MB"

log "measuring ($REQUESTS requests per query)"
start_gateway
python3 Benchmarks/eventlog/measure.py "$ADMIN_PORT" "$TOKEN" "$STORE" "$REQUESTS" "$WORK/results.tsv"
RSS_MB=$(awk '/VmHWM/ {printf "%d", $2 / 1024}' "/proc/$GW_PID/status")
# The gateway must have left the rows alone (nothing delivered, pruned or marked meanwhile).
stop_gateway
after=$(sqlite3 -separator ' ' "$STORE" "SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM deliveries WHERE state = 'pending')")
[ "$after" = "$stored $pending" ] || echo "warning: the gateway changed the store during the run ($after, was $stored $pending)" >&2
if grep -qiE 'error|critical' "$WORK/gateway.log"; then
    echo "warning: the gateway logged errors:" >&2
    grep -iE 'error|critical' "$WORK/gateway.log" | head -5 >&2
fi

echo
echo "## Event log: $stored events in SQLite ($delivery_rows delivery rows: $dead dead-lettered, $pending pending)"
echo
echo "Store $STORE_MB MB (database and WAL), filled with sqlite3 in $FILL_SECONDS s; gateway peak RSS $RSS_MB MB."
echo "Client-side over loopback, one keep-alive connection, connection setup excluded; $(nproc) cores; warm page cache."
echo
python3 - "$WORK/results.tsv" <<'PY'
import sys
print("| query | n | median ms | p95 ms | max ms | target | pass (p95) |")
print("|---|---|---|---|---|---|---|")
for line in open(sys.argv[1]):
    name, n, median, p95, maximum, target = line.rstrip("\n").split("\t")
    verdict = ("pass" if float(p95) < float(target) else "FAIL") if target else "—"
    print(f"| `{name}` | {n} | {median} | {p95} | {maximum} | {'< ' + target + ' ms' if target else '—'} | {verdict} |")
PY

echo
echo "Query plans (SQLite, the SQL of SQLiteStore+EventLog.swift; no ANALYZE, as the gateway runs none):"
plan() {
    echo "- $1"
    sqlite3 "$STORE" "EXPLAIN QUERY PLAN SELECT e.id, e.source, e.event_type, e.order_id, e.dedup_key, e.received_at, e.sandbox
        FROM events e $2 ORDER BY e.received_at DESC, e.id DESC LIMIT 101" | sed 's/^/    /'
}
CURSOR="(e.received_at < 1 OR (e.received_at = 1 AND e.id < 'x'))"
plan "limit=100" ""
plan "limit=100&cursor=…" "WHERE $CURSOR"
plan "orderId=…" "WHERE e.order_id = 'order-4'"
plan "eventType=…" "WHERE e.event_type = 'minis.subscription.renew'"
plan "status=dead_lettered" "WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state IN ('dying', 'dead_lettered'))"
plan "status=dead_lettered&cursor=…" "WHERE $CURSOR AND EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state IN ('dying', 'dead_lettered'))"
