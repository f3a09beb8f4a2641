#!/usr/bin/env python3
"""Checks that the admin API shows the synthetic events of fill_sql.py (or fill_pg.py) correctly,
then times the event-log lookups, client-side, on one keep-alive connection (connection setup not
counted).

  measure.py ADMIN_PORT TOKEN STORE REQUESTS RESULTS_FILE

STORE is the SQLite file, or a postgres:// URL (read with psql). Expected values come from the
store itself (read-only). Exits non-zero when the API answers
wrongly (a check fails, a non-200 answer); a missed latency target is only reported.
Writes one line per query to RESULTS_FILE: name<TAB>n<TAB>median<TAB>p95<TAB>max<TAB>target.
"""
import http.client
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.parse
from datetime import datetime, timezone

port, token, store_path, requests, results_path = (
    int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
random.seed(20261124)
POSTGRES = store_path.startswith(("postgres://", "postgresql://"))
db = None if POSTGRES else sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
HEADERS = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
failures = []


def get(path):
    """(seconds, status, decoded JSON or text) of one GET on the kept-alive connection."""
    started = time.perf_counter()
    connection.request("GET", path, headers=HEADERS)
    response = connection.getresponse()
    data = response.read()
    elapsed = time.perf_counter() - started
    if response.getheader("connection", "").lower() == "close":
        failures.append(f"{path}: the server closed the connection (no keep-alive)")
    try:
        body = json.loads(data)
    except ValueError:
        body = data.decode(errors="replace")
    return elapsed, response.status, body


def ok(path):
    _, status, body = get(path)
    if status != 200:
        raise SystemExit(f"GET {path}: {status} {str(body)[:300]}")
    return body


def check(condition, what):
    if not condition:
        failures.append(what)


def rfc3339(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def rows(sql, *args):
    if not POSTGRES:
        return db.execute(sql, args).fetchall()
    # psql, one statement a call (a handful, none timed): `?` becomes a quoted literal, the rows come
    # back as JSON (types kept: numbers, booleans, nulls); a bytea column `body` as bytes.
    parts = sql.split("?")
    assert len(parts) == len(args) + 1, sql
    literal = lambda v: str(v) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'"
    sql = parts[0] + "".join(literal(v) + part for v, part in zip(args, parts[1:]))
    out = subprocess.run(["psql", store_path, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c",
                          f"SELECT coalesce(json_agg(t), '[]') FROM ({sql}) AS t"],
                         check=True, capture_output=True, text=True).stdout
    return [tuple(bytes.fromhex(v[2:]) if k == "body" else v for k, v in pairs)
            for pairs in json.loads(out, object_pairs_hook=list)]


def cursor_of(event_id):
    (received_at,) = rows("SELECT received_at FROM events WHERE id = ?", event_id)[0]
    return f"{received_at}.{event_id}"


NEWEST = "SELECT id FROM events {} ORDER BY received_at DESC, id DESC LIMIT {}"
LIST_KEYS = {"id", "source", "eventType", "orderId", "dedupKey", "receivedAt", "sandbox", "deliveries"}
DELIVERY_KEYS = {"consumer", "status", "attempts", "lastAttemptAt", "lastStatus", "nextAttemptAt"}

# --- correctness of the synthetic rows as the API shows them ---------------------------------
total = rows("SELECT COUNT(*) FROM events")[0][0]
first = ok("/admin/events?limit=100")
expected = [r[0] for r in rows(NEWEST.format("", 201))]
check([e["id"] for e in first["events"]] == expected[:100], "first page: not the 100 newest events")
check(first["nextCursor"] is not None, "first page: no nextCursor")
second = ok("/admin/events?limit=100&cursor=" + urllib.parse.quote(first["nextCursor"]))
check([e["id"] for e in second["events"]] == expected[100:200], "second page: not events 101 to 200")
# pages of 99 end inside a pair of events with the same received_at: the cursor must break the tie
odd = ok("/admin/events?limit=99")
odd_next = ok("/admin/events?limit=99&cursor=" + urllib.parse.quote(odd["nextCursor"]))
check([e["id"] for e in odd["events"] + odd_next["events"]] == expected[:198], "pages of 99: events lost or repeated")
for event in first["events"] + second["events"]:
    check(LIST_KEYS <= event.keys(), f"list item lacks {LIST_KEYS - event.keys()}")
    for delivery in event["deliveries"]:
        check(DELIVERY_KEYS <= delivery.keys(), f"delivery lacks {DELIVERY_KEYS - delivery.keys()}")
(eid, source, etype, order, dedup, received, sandbox) = rows(
    "SELECT id, source, event_type, order_id, dedup_key, received_at, sandbox FROM events WHERE id = ?",
    first["events"][0]["id"])[0]
item = first["events"][0]
check((item["source"], item["eventType"], item["orderId"], item["dedupKey"], item["receivedAt"], item["sandbox"])
      == (source, etype, order, dedup, rfc3339(received), bool(sandbox)), f"newest event's fields differ: {item}")
check(item["deliveries"] and item["deliveries"][0]["status"] == "pending" and item["deliveries"][0]["nextAttemptAt"],
      f"newest event should be pending with a nextAttemptAt: {item['deliveries']}")

# one event of each delivery story
stories = {
    "delivered": "SELECT event_id FROM deliveries WHERE state = 'delivered' AND attempts = 1 LIMIT 1 OFFSET 5000",
    "retried": "SELECT event_id FROM deliveries WHERE state = 'delivered' AND attempts = 2 LIMIT 1 OFFSET 500",
    "dead_lettered 400": "SELECT event_id FROM deliveries WHERE state = 'dead_lettered' AND attempts = 1 LIMIT 1 OFFSET 50",
    "dead_lettered max": "SELECT event_id FROM deliveries WHERE state = 'dead_lettered' AND attempts = 12 LIMIT 1 OFFSET 50",
}
for story, sql in stories.items():
    event_id = rows(sql)[0][0]
    detail = ok("/admin/events/" + event_id)
    (body, headers, state, attempts, reason) = rows(
        "SELECT e.body, e.headers, d.state, d.attempts, d.reason FROM events e JOIN deliveries d ON d.event_id = e.id "
        "WHERE e.id = ?", event_id)[0]
    check(detail.get("body") == body.decode(), f"{story}: body differs")
    check(json.loads(detail["body"])["event"] == detail["eventType"], f"{story}: body's event is not eventType")
    check(detail.get("headers") == json.loads(headers), f"{story}: headers differ")
    (delivery,) = detail["deliveries"]
    check(delivery["status"] == state and len(delivery["attempts"]) == attempts, f"{story}: delivery {delivery}")
    check(delivery.get("reason") == reason, f"{story}: reason {delivery.get('reason')!r} != {reason!r}")
    check(all({"at", "status", "error", "durationMs"} <= a.keys() for a in delivery["attempts"]), f"{story}: attempt fields")
    check(delivery["finishedAt"] is not None and delivery["nextAttemptAt"] is None, f"{story}: finishedAt/nextAttemptAt")
    if state == "dead_lettered":
        check(delivery["deadLetterId"].startswith("dl_"), f"{story}: deadLetterId")
    if attempts == 12:
        check(delivery["attempts"][0]["status"] is None and delivery["attempts"][0]["error"] == "connection refused",
              f"{story}: first attempt {delivery['attempts'][0]}")

# filters against the store
order3 = rows("SELECT order_id FROM events WHERE event_type = 'minis.trade_order.refund_traceback' "
               f"ORDER BY {'received_at DESC, id DESC' if POSTGRES else 'rowid DESC'} LIMIT 1 OFFSET 77")[0][0]  # with its redeem and refund
sub = rows("SELECT order_id FROM events WHERE event_type = 'minis.subscription.renew' LIMIT 1 OFFSET 77")[0][0]
for order_id, least in ((order3, 3), (sub, 1)):
    answer = ok("/admin/events?limit=1000&orderId=" + urllib.parse.quote(order_id))
    expected = [r[0] for r in rows(NEWEST.format("WHERE order_id = ?", 1000), order_id)]
    check([e["id"] for e in answer["events"]] == expected and len(expected) >= least,
          f"orderId={order_id}: {len(answer['events'])} events, the store has {len(expected)}")
dedup = rows("SELECT dedup_key, id FROM events LIMIT 1 OFFSET 4321")[0]
answer = ok("/admin/events?dedupKey=" + urllib.parse.quote(dedup[0]))
check([e["id"] for e in answer["events"]] == [dedup[1]], "dedupKey: wrong event")
answer = ok("/admin/events?limit=100&eventType=minis.trade_order.refund.success")
expected = [r[0] for r in rows(NEWEST.format("WHERE event_type = 'minis.trade_order.refund.success'", 100))]
check([e["id"] for e in answer["events"]] == expected, "eventType: wrong events")
answer = ok("/admin/events?limit=100&status=dead_lettered")
expected = [r[0] for r in rows(NEWEST.format(
    "e WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state = 'dead_lettered')", 100))]
check([e["id"] for e in answer["events"]] == expected and len(expected) == 100, "status=dead_lettered: wrong events")
check(all(any(d["status"] == "dead_lettered" for d in e["deliveries"]) for e in answer["events"]),
      "status=dead_lettered: an event without a dead-lettered delivery")
_, status, _ = get("/admin/events/evt_00000000000000000000000000")
check(status == 404, f"unknown event: {status}, not 404")

if failures:
    print("the API does not show the synthetic events as stored:", *failures, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"checks passed: {total} events; pages, cursor, filters and event details match the store", file=sys.stderr)

# --- timing -----------------------------------------------------------------------------------
sample_size = max(requests, 50)
if POSTGRES:
    random_events = rows(f"SELECT id, order_id, dedup_key, received_at FROM events ORDER BY random() LIMIT {sample_size}")
else:
    random_events = rows(f"SELECT id, order_id, dedup_key, received_at FROM events WHERE rowid IN "
                         f"(SELECT abs(random()) % {total} + 1 FROM events LIMIT {sample_size * 4}) LIMIT {sample_size}")
event_types = [r[0] for r in rows("SELECT DISTINCT event_type FROM events")]  # a scan, once, not timed
first_cursor = first["nextCursor"]
oldest_pending = rows("SELECT e.id FROM events e JOIN deliveries d ON d.event_id = e.id WHERE d.state = 'pending' "
                      "ORDER BY e.received_at, e.id LIMIT 1")[0][0]
status_page = ok("/admin/events?limit=100&status=dead_lettered")


def paths(make):
    return [make(index) for index in range(requests)]


cases = [
    ("GET /admin/events?orderId=<random order>", 50,
     paths(lambda i: "/admin/events?orderId=" + urllib.parse.quote(random_events[i % len(random_events)][1]))),
    ("GET /admin/events?limit=100 (first page)", 200, paths(lambda i: "/admin/events?limit=100")),
    ("GET /admin/events?limit=100&cursor=<first page's nextCursor>", 200,
     paths(lambda i: "/admin/events?limit=100&cursor=" + urllib.parse.quote(first_cursor))),
    ("GET /admin/events?limit=100&cursor=<random position>", 200,
     paths(lambda i: "/admin/events?limit=100&cursor=%d.%s" % (random_events[i % len(random_events)][3],
                                                                random_events[i % len(random_events)][0]))),
    ("GET /admin/events?eventType=<each of 4>&limit=100", 200,
     paths(lambda i: "/admin/events?limit=100&eventType=" + event_types[i % len(event_types)])),
    ("GET /admin/events?status=dead_lettered&limit=100", 200,
     paths(lambda i: "/admin/events?limit=100&status=dead_lettered")),
    ("GET /admin/events?status=dead_lettered&limit=100&cursor=<page 1's>", 200,
     paths(lambda i: "/admin/events?limit=100&status=dead_lettered&cursor=" + urllib.parse.quote(status_page["nextCursor"]))),
    ("GET /admin/events?dedupKey=<random>", None,
     paths(lambda i: "/admin/events?dedupKey=" + urllib.parse.quote(random_events[i % len(random_events)][2]))),
    ("GET /admin/events/{id} (random)", None,
     paths(lambda i: "/admin/events/" + random_events[i % len(random_events)][0])),
    # fewer than `limit` matches: the status filter reads every older event (worst case)
    ("GET /admin/events?status=pending&limit=100&cursor=<past the oldest pending>", 200,
     [f"/admin/events?limit=100&status=pending&cursor={cursor_of(oldest_pending)}"] * min(requests, 5)),
]

with open(results_path, "w") as out:
    for name, target, case_paths in cases:
        for path in case_paths[:3]:  # warm-up, not counted
            ok(path)
        times = []
        for path in case_paths:
            elapsed, status, body = get(path)
            if status != 200:
                raise SystemExit(f"GET {path}: {status} {str(body)[:300]}")
            times.append(elapsed * 1000)
        times.sort()
        p95 = times[max(0, -(-95 * len(times) // 100) - 1)]  # nearest rank
        out.write(f"{name}\t{len(times)}\t{statistics.median(times):.1f}\t{p95:.1f}\t{times[-1]:.1f}\t{target or ''}\n")
        print(f"  {name}: median {statistics.median(times):.1f} ms", file=sys.stderr)
if failures:
    print(*failures, sep="\n", file=sys.stderr)
    sys.exit(1)
