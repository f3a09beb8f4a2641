#!/usr/bin/env bash
# PostgreSQL benchmark, on loopback, with PostgreSQL on the same cores, everything in one run:
#   (a) ingest, ROUNDS rounds, one server after the other in each round: the gateway on SQLite,
#       the gateway on PostgreSQL, a bare Hummingbird hello-world, then two and three gateways on one
#       PostgreSQL database (one wrk per gateway at once, the connections split between them; their
#       total). Unique signed TikTok events; requests/s, p50, p99, and PostgreSQL's CPU per event;
#   (b) end to end: two gateways on one database ingest for DURATION seconds while they deliver
#       to a consumer (nginx `return 200`): events/s ingested, deliveries/s until the queue is empty;
#   (c) drain: DRAINED deliveries queued (inserted with SQL, the consumer down), then one and then
#       two gateways deliver them: time until the shared queue is empty.
#
#   Benchmarks/postgres/run.sh [duration-seconds] [connections]      (default 10 64)
#   ROUNDS=3 DRAINED=100000 GATEWAY=/path/webhook-gateway HELLO=/path/HelloHummingbird Benchmarks/postgres/run.sh 10 64
#   PEERS=0 GATEWAY=/path/webhook-gateway Benchmarks/postgres/run.sh 10 64   # without the bare Hummingbird
#   INGEST_ONLY=1 …                                                            # (a) only
#   ROUNDS=0 DRAIN_ONLY=1 …                                                    # (c) only
#
# Needs: wrk, nginx, python3, postgresql (apt-get install wrk nginx postgresql sqlite3); builds release
# binaries unless GATEWAY and HELLO are given. The cluster is a throwaway one of
# scripts/postgres-test-cluster.sh, in the work directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Benchmarks/common.sh
DURATION=${1:-10}
CONNECTIONS=${2:-64}
THREADS=2
ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-300000}
DRAINED=${DRAINED:-100000}
SECRET=bench-tiktok-client-secret
TOKEN=benchmark-admin-token
SIGNING=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
WORK=$(mktemp -d /tmp/wg-postgres-bench.XXXXXX)
chmod 755 "$WORK"
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    wait 2>/dev/null || true
    [ -f "$WORK/nginx/nginx.pid" ] && kill "$(cat "$WORK/nginx/nginx.pid")" 2>/dev/null || true
    TMPDIR="$WORK" scripts/postgres-test-cluster.sh stop || true
    rm -rf "$WORK"
}
trap cleanup EXIT
for tool in wrk nginx python3 psql sqlite3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install wrk nginx postgresql sqlite3)" >&2; exit 1; }
done
PEERS=${PEERS:-1}
if [ "$PEERS" = 1 ] || [ ! -x "${GATEWAY:-}" ]; then build_binaries; fi

eval "$(TMPDIR="$WORK" scripts/postgres-test-cluster.sh start)"
BASE_URL=$WEBHOOK_GATEWAY_TEST_POSTGRES_URL
database_url() { echo "${BASE_URL/\/webhook_gateway\?//$1?}"; }
new_database() { psql "$BASE_URL" -q -c "CREATE DATABASE $1"; database_url "$1"; }
sql() { psql "$1" -Atq -c "$2"; }
# Transactions committed in a database so far (read after its sessions closed: they report at exit).
# Every statement in autocommit counts as one (claims, counts, checks), not only the batches.
commits() {
    local tries=0
    while [ "$(sql "$BASE_URL" "SELECT count(*) FROM pg_stat_activity WHERE datname = '$1'")" != 0 ] && [ $tries -lt 100 ]; do
        sleep 0.1; tries=$((tries + 1))
    done
    sql "$BASE_URL" "SELECT xact_commit FROM pg_stat_database WHERE datname = '$1'"
}

# CPU time so far (user + system), in clock ticks, summed over the given processes.
ticks_of() {
    local total=0 pid
    for pid in "$@"; do
        read -r -a stat < "/proc/$pid/stat" 2>/dev/null || continue
        total=$((total + stat[13] + stat[14]))
    done
    echo "$total"
}
# PostgreSQL's: the server and its backends.
postgres_ticks() { ticks_of $(pgrep -u postgres); }

mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    server { listen 127.0.0.1:17201; location / { return 200 "ok"; } }
}
NGINX

# gateway_config NAME INGRESS ADMIN STORAGE-JSON CONSUMER-PORT
gateway_config() {
    cat > "$WORK/$1.json" <<JSON
{
  "listen": { "host": "127.0.0.1", "port": $2 },
  "admin": { "host": "127.0.0.1", "port": $3, "token": "$TOKEN" },
  "storage": $4,
  "deadLetters": { "directory": "$WORK/dead-letters-$1" },
  "sources": [ { "name": "tiktok", "path": "/webhooks/tiktok", "scheme": "tiktok", "secrets": ["$SECRET"] } ],
  "consumers": [ { "name": "orders", "url": "http://127.0.0.1:$5/", "signingSecret": "$SIGNING", "concurrency": 32 } ]
}
JSON
    echo "$WORK/$1.json"
}
PIDS=()
start_gateway() { # config url
    DATABASE_URL="${2:-}" "$GATEWAY" serve --config "$1" --log-level warning &
    PIDS+=($!)
}
stop_gateways() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}
metric_sum() { # series, admin ports…
    local series=$1 total=0 port value
    shift
    for port in "$@"; do
        value=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/metrics" | awk -v s="$series" '$1 == s {print $2}')
        total=$(python3 -c "print(int($total + float('${value:-0}')))")
    done
    echo "$total"
}

# wrk against several gateways at once, each its own share of the requests and of the connections.
# run_wrk NAME FILE PORT…
run_wrk() {
    local name=$1 file=$2 count connections index=0 port wrks=()
    shift 2
    count=$#
    connections=$((CONNECTIONS / count))
    split -n "l/$count" -d "$file" "$WORK/part-"
    for port in "$@"; do
        wrk -t1 -c"$connections" -d"${DURATION}s" --latency -s Benchmarks/ingest/requests.lua \
            "http://127.0.0.1:$port/webhooks/tiktok" -- "$WORK/part-0$index" 1 | grep '^RESULT' > "$WORK/wrk-$index.txt" &
        wrks+=($!)
        index=$((index + 1))
    done
    for pid in "${wrks[@]}"; do wait "$pid" || true; done
    python3 - "$name" "$WORK"/wrk-*.txt >> "$WORK/results.txt" <<'PY'
import sys
name, files = sys.argv[1], sys.argv[2:]
runs = [dict(f.split("=", 1) for f in open(p).read().split() if "=" in f) for p in files]
rps = sum(float(r["rps"]) for r in runs)
p50 = max(float(r["p50_ms"]) for r in runs)
p99 = max(float(r["p99_ms"]) for r in runs)
print(name, f"rps={rps:.0f}", f"p50_ms={p50:.2f}", f"p99_ms={p99:.2f}",
      "non200=%d" % sum(int(r["non200"]) for r in runs), "errors=%d" % sum(int(r["errors"]) for r in runs),
      "wrapped=%d" % sum(int(r["wrapped"]) for r in runs))
PY
    rm -f "$WORK"/part-* "$WORK"/wrk-*.txt
}

: > "$WORK/results.txt"
: > "$WORK/cpu.txt"
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round of $ROUNDS: signing $COUNT unique events with Python's hmac…" >&2
    python3 Benchmarks/ingest/sign_requests.py tiktok "$COUNT" "$SECRET" > "$WORK/tiktok.txt"

    # SQLite
    start_gateway "$(gateway_config sqlite-$round 18280 19280 "{\"path\": \"$WORK/round-$round.sqlite\"}" 9)"
    wait_for_port 18280
    gateway_before=$(ticks_of "${PIDS[@]}")
    run_wrk gateway-sqlite "$WORK/tiktok.txt" 18280
    gateway_after=$(ticks_of "${PIDS[@]}")
    stop_gateways
    stored=$(sqlite3 "$WORK/round-$round.sqlite" "SELECT count(*) FROM events")
    echo "gateway-sqlite $stored 0 $((gateway_after - gateway_before)) 0" >> "$WORK/cpu.txt"

    # PostgreSQL, 1, 2 and 3 gateways, each on a database of its own
    for gateways in 1 2 3; do
        url=$(new_database "bench_${round}_$gateways")
        ports=()
        for index in $(seq 1 "$gateways"); do
            start_gateway "$(gateway_config pg-$round-$gateways-$index $((18280 + index)) $((19280 + index)) \
                '{"kind": "postgres", "url": "env:DATABASE_URL", "maxConnections": 16}' 9)" "$url"
            ports+=($((18280 + index)))
        done
        for port in "${ports[@]}"; do wait_for_port "$port"; done
        before=$(postgres_ticks)
        gateway_before=$(ticks_of "${PIDS[@]}")
        run_wrk "gateway-postgres-x$gateways" "$WORK/tiktok.txt" "${ports[@]}"
        after=$(postgres_ticks)
        gateway_after=$(ticks_of "${PIDS[@]}")
        stored=$(sql "$url" "SELECT count(*) FROM events")
        stop_gateways
        echo "gateway-postgres-x$gateways $stored $((after - before)) $((gateway_after - gateway_before)) $(commits "bench_${round}_$gateways")" >> "$WORK/cpu.txt"
    done

    # bare Hummingbird
    [ "$PEERS" = 1 ] || continue
    "$HELLO" 18290 > /dev/null 2>&1 &
    HELLO_PID=$!
    wait_for_port 18290
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s Benchmarks/ingest/requests.lua \
        "http://127.0.0.1:18290/" -- "$WORK/tiktok.txt" "$THREADS" | grep '^RESULT' | sed 's/^/hummingbird-hello /' >> "$WORK/results.txt"
    kill -TERM $HELLO_PID; wait $HELLO_PID || true
done

echo
echo "## Ingest: wrk -c$CONNECTIONS -d${DURATION}s in all (split between the gateways), loopback, $(nproc) cores shared by wrk, the gateways and PostgreSQL, $ROUNDS rounds"
echo
python3 - "$WORK/results.txt" "$WORK/cpu.txt" "$(getconf CLK_TCK)" <<'PY'
import sys
runs = {}
for line in open(sys.argv[1]):
    name, *fields = line.split()
    runs.setdefault(name, []).append(dict(f.split("=", 1) for f in fields if "=" in f))
cpu = {}
for line in open(sys.argv[2]):
    name, stored, ticks, gateway_ticks, commits = line.split()
    cpu.setdefault(name, []).append((int(stored), int(ticks), int(gateway_ticks), int(commits)))
tick = float(sys.argv[3])
print("| server | requests/s (median) | range over rounds | p50 ms | p99 ms | non-200 | gateway CPU µs/event | PostgreSQL CPU µs/event | events per database transaction |")
print("|---|---|---|---|---|---|---|---|---|")
medians = {}
for name, rounds in runs.items():
    rounds.sort(key=lambda r: float(r["rps"]))
    middle = rounds[(len(rounds) - 1) // 2]
    medians[name] = float(middle["rps"])
    per_event = gateway_per_event = batch = ""
    if name in cpu:
        stored = sum(c[0] for c in cpu[name]); ticks = sum(c[1] for c in cpu[name]); gateway = sum(c[2] for c in cpu[name])
        commits = sum(c[3] for c in cpu[name])
        if ticks: per_event = "%.0f" % (ticks / tick / max(stored, 1) * 1e6)
        if commits: batch = "%.1f" % (stored / commits)
        gateway_per_event = "%.0f" % (gateway / tick / max(stored, 1) * 1e6)
    bad = sum(int(r["non200"]) for r in rounds)
    print(f"| {name} | {float(middle['rps']):.0f} | {float(rounds[0]['rps']):.0f} to {float(rounds[-1]['rps']):.0f} | {middle['p50_ms']} | {middle['p99_ms']} | {bad} | {gateway_per_event} | {per_event} | {batch} |")
    if any(r.get("wrapped", "0") != "0" for r in rounds) and name.startswith("gateway"):
        print("  (warning: requests repeated: raise COUNT)")
print()
if "gateway-sqlite" in medians and "gateway-postgres-x1" in medians:
    print("postgres x1 / sqlite = %.2fx; postgres x2 / x1 = %.2fx; postgres x3 / x1 = %.2fx (medians)" % (
        medians["gateway-postgres-x1"] / medians["gateway-sqlite"],
        medians.get("gateway-postgres-x2", 0) / medians["gateway-postgres-x1"],
        medians.get("gateway-postgres-x3", 0) / medians["gateway-postgres-x1"]))
PY

[ "${INGEST_ONLY:-0}" = 1 ] && exit 0

nginx -c "$WORK/nginx/nginx.conf"

# (b) end to end: two gateways ingest and deliver to nginx at once.
if [ "${DRAIN_ONLY:-0}" != 1 ]; then
url=$(new_database bench_e2e)
python3 Benchmarks/ingest/sign_requests.py tiktok "$COUNT" "$SECRET" > "$WORK/tiktok.txt"
for index in 1 2; do
    start_gateway "$(gateway_config e2e-$index $((18280 + index)) $((19280 + index)) \
        '{"kind": "postgres", "url": "env:DATABASE_URL", "maxConnections": 16}' 17201)" "$url"
done
wait_for_port 18281; wait_for_port 18282
start=$(date +%s.%N)
run_wrk e2e "$WORK/tiktok.txt" 18281 18282
ingested=$(sql "$url" "SELECT count(*) FROM events")
while [ "$(sql "$url" "SELECT count(*) FROM deliveries")" != 0 ]; do sleep 0.2; done
end=$(date +%s.%N)
delivered=$(metric_sum 'webhook_gateway_deliveries_total{consumer="orders",outcome="delivered"}' 19281 19282)
stop_gateways
echo
echo "## End to end: two gateways, one database, consumer nginx return 200"
python3 -c "
d=$DURATION; total=$end-$start
print(f'ingested {$ingested} events in {d} s ({$ingested/d:.0f}/s); delivered {$delivered} in {total:.1f} s from the first request to an empty queue ({$delivered/total:.0f}/s)')"

fi

# (c) drain: DRAINED queued deliveries, then one and then two gateways.
for gateways in 1 2; do
    url=$(new_database "bench_drain_$gateways")
    start_gateway "$(gateway_config drain-setup 18283 19283 '{"kind": "postgres", "url": "env:DATABASE_URL"}' 9)" "$url"
    wait_for_port 18283
    stop_gateways
    now_ms=$(($(date +%s) * 1000))
    sql "$url" "INSERT INTO events (id, source, event_type, dedup_key, order_id, received_at, headers, body)
        SELECT 'evt_drain_' || n, 'tiktok', 'minis.trade_order.redeem.success', 'drain:' || n, NULL, $now_ms,
          '{}', convert_to('{\"event\":\"minis.trade_order.redeem.success\",\"n\":' || n || '}', 'UTF8')
        FROM generate_series(1, $DRAINED) n;
        INSERT INTO deliveries (event_id, consumer, state, next_attempt_at, created_at)
        SELECT 'evt_drain_' || n, 'orders', 'pending', $now_ms, $now_ms FROM generate_series(1, $DRAINED) n;
        ANALYZE;"
    before=$(postgres_ticks)
    commits_before=$(commits "bench_drain_$gateways")
    start=$(date +%s.%N)
    for index in $(seq 1 "$gateways"); do
        start_gateway "$(gateway_config drain-$gateways-$index $((18280 + index)) $((19280 + index)) \
            '{"kind": "postgres", "url": "env:DATABASE_URL", "maxConnections": 16}' 17201)" "$url"
    done
    while [ "$(sql "$url" "SELECT count(*) FROM deliveries")" != 0 ]; do sleep 0.2; done
    end=$(date +%s.%N)
    after=$(postgres_ticks)
    stop_gateways
    commits_after=$(commits "bench_drain_$gateways")
    python3 -c "t=$end-$start; print(f'drain: $DRAINED queued deliveries, $gateways gateway(s): {t:.1f} s ({$DRAINED/t:.0f} deliveries/s); PostgreSQL CPU {($after-$before)/$(getconf CLK_TCK)/$DRAINED*1e6:.0f} µs per delivery; {$DRAINED/max(1,$commits_after-$commits_before):.1f} deliveries per database transaction')"
done
