#!/usr/bin/env python3
"""Prints the SQL (for the sqlite3 CLI) that fills a gateway's SQLite store with synthetic events.

  fill_sql.py EVENTS NOW_MS [CONSUMER]

The rows are what the gateway itself writes (SQLiteStore+GroupCommit, +Deliveries, +Retention):
- events: ids `evt_` + a ULID of `received_at` (milliseconds), spread over the 5 days before
  NOW_MS, two events per millisecond (so cursors need the id to break ties); TikTok envelopes of
  about 700 bytes, headers as a JSON object of lowercased names; `sandbox` for 2 %.
- event types and orders: 70 % `minis.trade_order.redeem.success` of their own order
  (`order-<i>`); the orders `order-<i>` with i % 10 == 4 get a `refund.success` (1003 events later)
  and a `refund_traceback` (20004 events later), three events each; 10 %
  `minis.subscription.renew` of 5000 subscriptions (`sub-<n>`, about 20 events each).
- dedup keys as the tiktok scheme makes them: `(source, event, order_id)` for trade orders, the
  body's hash for subscriptions; rows in `dedup_keys` that expire 7 days after receipt.
- one delivery per event to CONSUMER (default `orders`), with its order lane: the newest 0.1 %
  `pending` (never attempted), about 1 % `dead_lettered` (half `not retryable: status 400` after
  one attempt, half `max attempts` after 12), the rest `delivered` (every 13th after a 503 and a
  retry); attempt logs as AttemptLog writes them; a finished event has its `finished_at`.
- the consumer paused by an operator (`consumer_holds`), so the gateway attempts nothing.
"""
import sys

events = int(sys.argv[1])
now_ms = int(sys.argv[2])
consumer = sys.argv[3] if len(sys.argv) > 3 else "orders"
span_ms = 5 * 86_400_000
start_ms = now_ms - span_ms - 60_000
pending = max(1, events // 1000)
step = 2 * span_ms // events  # two events per millisecond value

ALPHABET = "'0123456789ABCDEFGHJKMNPQRSTVWXYZ'"


def digit(expression):
    return f"substr({ALPHABET}, (({expression}) & 31) + 1, 1)"


def ulid(prefix, ms, unique=None):
    """`prefix` + 26 Crockford base32 digits: 48 bits of `ms`, then 80 bits, the last 30 of them
    `unique` (so that ids are unique by construction), the rest random."""
    parts = [digit(f"({ms}) >> {45 - 5 * k}") for k in range(10)]
    for k in range(16):
        if unique is not None and k >= 10:
            parts.append(digit(f"({unique}) >> {5 * (15 - k)}"))
        else:
            parts.append(digit("random()"))
    return f"'{prefix}' || " + " || ".join(parts)


def rfc3339(ms):
    return f"strftime('%Y-%m-%dT%H:%M:%fZ', ({ms}) / 1000.0, 'unixepoch')"


def attempt(at, duration, status, error="NULL"):
    return f"json_object('at', {rfc3339(at)}, 'durationMs', {duration}, 'error', {error}, 'status', {status})"


print(f"""
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -1000000;
PRAGMA temp_store = FILE;
BEGIN;
CREATE TEMP TABLE twelve (k INTEGER PRIMARY KEY);
WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 12) INSERT INTO twelve SELECT k FROM n;

CREATE TEMP TABLE gen AS
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {events})
SELECT i,
  {start_ms} + ((i - 1) / 2) * {step} AS ms,
  CASE i % 10 WHEN 7 THEN 'minis.trade_order.refund.success'
              WHEN 8 THEN 'minis.trade_order.refund_traceback'
              WHEN 9 THEN 'minis.subscription.renew'
              ELSE 'minis.trade_order.redeem.success' END AS event_type,
  CASE i % 10 WHEN 7 THEN 'order-' || (i - 1003)
              WHEN 8 THEN 'order-' || (i - 20004)
              WHEN 9 THEN 'sub-' || ((i / 10) % 5000)
              ELSE 'order-' || i END AS order_id,
  CASE WHEN i % 50 = 3 THEN 1 ELSE 0 END AS sandbox,
  CASE WHEN i > {events - pending} THEN 'pending'
       WHEN i % 97 = 0 THEN 'dead_lettered'
       ELSE 'delivered' END AS state
FROM n;
ALTER TABLE gen ADD COLUMN id TEXT;
ALTER TABLE gen ADD COLUMN dedup_key TEXT;
UPDATE gen SET id = {ulid('evt_', 'ms', 'i')},
  dedup_key = CASE WHEN event_type LIKE 'minis.trade_order.%' THEN 'tiktok:' || event_type || ':' || order_id
                   ELSE 'tiktok:sha256=' || lower(hex(randomblob(32))) END;

INSERT INTO events (id, source, event_type, dedup_key, order_id, received_at, headers, body, sandbox, finished_at)
SELECT id, 'tiktok', event_type, dedup_key, order_id, ms,
  '{{"host":"hooks.example.com","user-agent":"TikTok-Webhook/1.0","content-type":"application/json","content-length":"'
    || length(body) || '","tiktok-signature":"t=' || (ms / 1000) || ',s=' || lower(hex(randomblob(32))) || '"}}',
  body, sandbox,
  CASE state WHEN 'pending' THEN NULL ELSE ms + 90000 END
FROM (SELECT g.*,
  CAST(printf('{{"client_key":"awbench%04d","event":"%s","create_time":%d,"user_openid":"_000%s","content":"%s"}}',
    g.i % 20, g.event_type, g.ms / 1000, hex(randomblob(16)),
    printf('{{\\"order_id\\":\\"%s\\",\\"trade_order_id\\":\\"TOID%d\\",\\"is_sandbox\\":%s,\\"amount\\":%d,\\"currency\\":\\"USD\\",\\"product_id\\":\\"prod-%d\\",\\"extra\\":\\"%s\\"}}',
      g.order_id, g.i, CASE g.sandbox WHEN 1 THEN 'true' ELSE 'false' END, 100 + g.i % 9900, g.i % 300,
      lower(hex(randomblob(160)))))
  AS BLOB) AS body
  FROM gen g)
ORDER BY i;

INSERT INTO dedup_keys (key, event_id, expires_at)
SELECT dedup_key, id, ms + 7 * 86400000 FROM gen ORDER BY i;

INSERT INTO deliveries (event_id, consumer, order_id, state, attempts, next_attempt_at, created_at,
                        attempt_log, finished_at, dead_letter_id, reason)
SELECT id, '{consumer}', 'tiktok' || char(31) || order_id, state,
  CASE WHEN state = 'pending' THEN 0
       WHEN state = 'delivered' THEN CASE WHEN i % 13 = 0 THEN 2 ELSE 1 END
       WHEN (i / 97) % 2 = 0 THEN 1 ELSE 12 END,
  CASE WHEN state = 'delivered' AND i % 13 = 0 THEN ms + 1040 ELSE ms END,
  ms,
  CASE WHEN state = 'pending' THEN '[]'
       WHEN state = 'delivered' AND i % 13 = 0 THEN
         json_array({attempt('ms + 40', 15, 503)}, {attempt('ms + 1040', '20 + i % 50', 200)})
       WHEN state = 'delivered' THEN json_array({attempt('ms + 40', '20 + i % 50', 200)})
       WHEN (i / 97) % 2 = 0 THEN json_array({attempt('ms + 40', 12, 400)})
       ELSE (SELECT json_group_array(CASE WHEN k % 2 = 1
                THEN {attempt('ms + 40 + (k - 1) * 60000', 3, 'NULL', "'connection refused'")}
                ELSE {attempt('ms + 40 + (k - 1) * 60000', 31, 500)} END) FROM twelve)
  END,
  CASE WHEN state = 'pending' THEN NULL
       WHEN state = 'delivered' AND i % 13 = 0 THEN ms + 1040 + 20 + i % 50
       WHEN state = 'delivered' THEN ms + 40 + 20 + i % 50
       WHEN (i / 97) % 2 = 0 THEN ms + 40 + 12
       ELSE ms + 40 + 11 * 60000 + 31 END,
  CASE WHEN state = 'dead_lettered' THEN
    {ulid('dl_', "CASE WHEN (i / 97) % 2 = 0 THEN ms + 52 ELSE ms + 40 + 11 * 60000 + 31 END")} END,
  CASE WHEN state = 'dead_lettered' THEN
    CASE WHEN (i / 97) % 2 = 0 THEN 'not retryable: status 400' ELSE 'max attempts' END END
FROM gen ORDER BY i;

INSERT INTO consumer_holds (consumer, held_since) VALUES ('{consumer}', {now_ms})
  ON CONFLICT (consumer) DO NOTHING;
COMMIT;
DROP TABLE gen;
PRAGMA wal_checkpoint(TRUNCATE);
""")
