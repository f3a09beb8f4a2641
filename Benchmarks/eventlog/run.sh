#!/usr/bin/env bash
# Event-log benchmark: lookups of `GET /admin/events` and `GET /admin/events/{id}` on a SQLite
# store (or, with STORE=postgres, a PostgreSQL store) holding EVENTS (1,000,000) events.
#   1. the gateway starts once on a new store (creating its schema) and stops;
#   2. sqlite3 fills the store in one transaction (Benchmarks/eventlog/fill_sql.py: events over
#      5 days with their delivery rows, mostly delivered, ~1 % dead-lettered, the newest 0.1 %
#      pending behind an operator's pause, so that the gateway touches no row while it is measured);
#      with STORE=postgres, psql fills a new database with the same rows (fill_pg.py: one
#      INSERT … SELECT … FROM generate_series per table), then VACUUM (ANALYZE) runs;
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
#   STORE=postgres …  on PostgreSQL: a new database `wg_eventlog_bench_<pid>`, dropped at the end
#                   (KEEP=1 keeps it), on the server of POSTGRES_URL (a role that may CREATE
#                   DATABASE), by default the throwaway cluster of scripts/postgres-test-cluster.sh
#                   (started if it is not running, and left running)
#
# Needs: sqlite3, python3, curl (apt-get install sqlite3 curl); psql for STORE=postgres (and the
# postgresql package for the throwaway cluster); builds the release gateway unless GATEWAY is
# given. The measurement runs on a warm page cache (the store was just written).
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/common.sh
REQUESTS=${1:-50}
EVENTS=${EVENTS:-1000000}
KIND=${STORE:-sqlite}
case "$KIND" in sqlite | postgres) ;; *) echo "STORE must be sqlite or postgres, not $KIND" >&2; exit 2 ;; esac
TOKEN=benchmark-admin-token
GW_PORT=18380
ADMIN_PORT=19380
WORK=$(mktemp -d /tmp/wg-eventlog-bench.XXXXXX)
GW_PID=
PG_DB=
cleanup() {
    if [ -n "$GW_PID" ]; then kill -TERM "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; fi
    if [ -n "$PG_DB" ]; then
        if [ "${KEEP:-0}" = 1 ]; then
            echo "kept the database $PG_DB" >&2
        else
            psql "$POSTGRES_URL" -X -q -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >&2 || true
        fi
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
tools=(python3 curl sqlite3)
[ "$KIND" = postgres ] && tools=(python3 curl psql)
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install sqlite3 curl postgresql-client)" >&2; exit 1; }
done
if [ ! -x "${GATEWAY:-}" ]; then
    echo "building the release gateway…" >&2
    lock=()
    command -v flock >/dev/null && lock=(flock /tmp/swift-build.lock)
    "${lock[@]}" swift build -c release --product webhook-gateway >&2
    GATEWAY=$(swift build -c release --show-bin-path)/webhook-gateway
fi
log() { echo "[$(date +%T)] $*" >&2; }

if [ "$KIND" = sqlite ]; then
    STORE=$WORK/data/gateway.sqlite
    STORAGE_JSON="\"storage\": { \"kind\": \"sqlite\", \"path\": \"$STORE\" },
  \"deadLetters\": { \"directory\": \"$WORK/data/dead-letters\" },"
else
    if [ -z "${POSTGRES_URL:-}" ]; then
        eval "$(scripts/postgres-test-cluster.sh start)"
        POSTGRES_URL=$WEBHOOK_GATEWAY_TEST_POSTGRES_URL
    fi
    PG_DB=wg_eventlog_bench_$$
    psql "$POSTGRES_URL" -X -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $PG_DB" >&2
    # The same URL with the benchmark's database: scheme://user:password@host:port/DB?query
    base=${POSTGRES_URL%%\?*}
    query=${POSTGRES_URL#"$base"}
    STORE=${base%/*}/$PG_DB$query
    export WG_EVENTLOG_BENCH_DATABASE_URL=$STORE
    # Dead letters live in the database (no directory).
    STORAGE_JSON='"storage": { "kind": "postgres", "url": "env:WG_EVENTLOG_BENCH_DATABASE_URL" },'
fi
pg() { psql "$STORE" -X -q -v ON_ERROR_STOP=1 "$@"; }

# One consumer at a closed port, paused by the fill (consumer_holds); a retention longer than the
# synthetic history, so that pruning deletes nothing.
cat > "$WORK/gateway.json" <<JSON
{
  "listen": { "host": "127.0.0.1", "port": $GW_PORT },
  "admin": { "host": "127.0.0.1", "port": $ADMIN_PORT, "token": "$TOKEN" },
  $STORAGE_JSON
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

# `query SQL`: the rows of SQL, columns separated by a space.
query() {
    if [ "$KIND" = sqlite ]; then sqlite3 -separator ' ' "$STORE" "$1"; else pg -A -t -F ' ' -c "$1"; fi
}
seconds_since() { python3 -c "import time; print(f'{time.time() - $1:.0f}')"; }

log "filling the store with $EVENTS events"
if [ "$KIND" = sqlite ]; then
    python3 Benchmarks/eventlog/fill_sql.py "$EVENTS" "$(date +%s%3N)" > "$WORK/fill.sql"
    fill_start=$(date +%s.%N)
    sqlite3 -bail "$STORE" < "$WORK/fill.sql" > /dev/null
    FILL_SECONDS=$(seconds_since "$fill_start")
    STORE_MB=$(du -cm "$STORE"* | awk 'END {print $1}')
    STORE_WHAT="database and WAL"
else
    python3 Benchmarks/eventlog/fill_pg.py "$EVENTS" "$(date +%s%3N)" > "$WORK/fill.sql"
    fill_start=$(date +%s.%N)
    pg -f "$WORK/fill.sql" > /dev/null
    FILL_SECONDS=$(seconds_since "$fill_start")
    # The statistics and the visibility map that autovacuum would make on its own (by insert
    # count: the schema sets autovacuum_vacuum_insert_scale_factor and autovacuum_analyze_scale_factor
    # on these tables) within a minute or so of the fill, taken now, so that the planner sees the
    # real distribution (a rare `state`) and no autovacuum runs during the measurement. A store
    # the gateway filled itself, over days, would have had them long since.
    vacuum_start=$(date +%s.%N)
    pg -c "VACUUM (ANALYZE) events, deliveries, dedup_keys, consumer_holds"
    VACUUM_SECONDS=$(seconds_since "$vacuum_start")
    STORE_MB=$(query "SELECT pg_database_size(current_database()) / 1048576")
    STORE_WHAT="pg_database_size: events $(query "SELECT pg_total_relation_size('events') / 1048576") MB, deliveries $(query "SELECT pg_total_relation_size('deliveries') / 1048576") MB, dedup_keys $(query "SELECT pg_total_relation_size('dedup_keys') / 1048576") MB, with their indexes and TOAST"
fi
read -r stored delivery_rows dead pending < <(query \
    "SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM deliveries),
            (SELECT COUNT(*) FROM deliveries WHERE state = 'dead_lettered'),
            (SELECT COUNT(*) FROM deliveries WHERE state = 'pending')")
[ "$stored" = "$EVENTS" ] || { echo "the store holds $stored events, not $EVENTS" >&2; exit 1; }
log "filled in ${FILL_SECONDS} s${VACUUM_SECONDS:+ (then VACUUM (ANALYZE) in $VACUUM_SECONDS s)}: $stored events, $delivery_rows deliveries ($dead dead-lettered, $pending pending), ${STORE_MB} MB"

log "measuring ($REQUESTS requests per query)"
start_gateway
python3 Benchmarks/eventlog/measure.py "$ADMIN_PORT" "$TOKEN" "$STORE" "$REQUESTS" "$WORK/results.tsv"
RSS_MB=$(awk '/VmHWM/ {printf "%d", $2 / 1024}' "/proc/$GW_PID/status")
# The gateway must have left the rows alone (nothing delivered, pruned or marked meanwhile).
stop_gateway
after=$(query "SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM deliveries WHERE state = 'pending')")
[ "$after" = "$stored $pending" ] || echo "warning: the gateway changed the store during the run ($after, was $stored $pending)" >&2
if [ "$KIND" = postgres ]; then
    # A claim would have set a lease and a token on the pending rows (the hold forbids it).
    leased=$(query "SELECT COUNT(*) FROM deliveries WHERE lease_until IS NOT NULL OR claim_token IS NOT NULL")
    [ "$leased" = 0 ] || echo "warning: the gateway claimed $leased deliveries during the run" >&2
fi
if grep -qiE 'error|critical' "$WORK/gateway.log"; then
    echo "warning: the gateway logged errors:" >&2
    grep -iE 'error|critical' "$WORK/gateway.log" | head -5 >&2
fi

echo
if [ "$KIND" = sqlite ]; then
    echo "## Event log: $stored events in SQLite ($delivery_rows delivery rows: $dead dead-lettered, $pending pending)"
    echo
    echo "Store $STORE_MB MB ($STORE_WHAT), filled with sqlite3 in $FILL_SECONDS s; gateway peak RSS $RSS_MB MB."
else
    echo "## Event log: $stored events in PostgreSQL $(query "SHOW server_version" | cut -d' ' -f1) ($delivery_rows delivery rows: $dead dead-lettered, $pending pending)"
    echo
    echo "Store $STORE_MB MB ($STORE_WHAT), filled with psql in $FILL_SECONDS s, then VACUUM (ANALYZE) in $VACUUM_SECONDS s; gateway peak RSS $RSS_MB MB (the server's memory not included)."
fi
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
if [ "$KIND" = postgres ]; then
    # The SQL of PostgresStore+EventLog.swift, with the values the gateway binds as literals (it runs
    # unnamed statements, planned for their values); real cursors, so that the plans read rows.
    read -r mid_at mid_id < <(query "SELECT received_at, id FROM events ORDER BY received_at DESC, id DESC OFFSET $((stored / 2)) LIMIT 1")
    read -r pend_at pend_id < <(query "SELECT e.received_at, e.id FROM events e JOIN deliveries d ON d.event_id = e.id
        WHERE d.state = 'pending' ORDER BY e.received_at, e.id LIMIT 1")
    echo "Query plans (PostgreSQL, the SQL of PostgresStore+EventLog.swift, EXPLAIN (ANALYZE, BUFFERS) after the measurement):"
    pgplan() {
        echo "- $1"
        pg -A -t -c "EXPLAIN (ANALYZE, BUFFERS) SELECT e.id, e.source, e.event_type, e.order_id, e.dedup_key, e.received_at, e.sandbox
            FROM events e $2 ORDER BY e.received_at DESC, e.id DESC LIMIT 101" | sed 's/^/    /'
    }
    CURSOR="(e.received_at, e.id) < ($mid_at, '$mid_id')"
    DEAD="EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state = ANY(ARRAY['dying', 'dead_lettered']))"
    pgplan "limit=100" ""
    pgplan "limit=100&cursor=<the middle>" "WHERE $CURSOR"
    pgplan "orderId=…" "WHERE e.order_id = 'order-4'"
    pgplan "eventType=…" "WHERE e.event_type = 'minis.subscription.renew'"
    pgplan "status=dead_lettered" "WHERE $DEAD"
    pgplan "status=dead_lettered&cursor=<the middle>" "WHERE $CURSOR AND $DEAD"
    pgplan "status=pending&cursor=<past the oldest pending>" "WHERE (e.received_at, e.id) < ($pend_at, '$pend_id')
        AND EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state = ANY(ARRAY['pending']))"
else
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
fi
