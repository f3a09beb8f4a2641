#!/usr/bin/env python3
"""Prints the SQL (for psql) that fills a gateway's PostgreSQL store with the synthetic events of
fill_sql.py: the same events, delivery rows and pause, in the columns and encodings of the
PostgreSQL store (PostgresMigration, PostgresStore+Ingest, +Deliveries).

  fill_pg.py EVENTS NOW_MS [CONSUMER]

The distribution is fill_sql.py's (read its docstring); what differs is PostgreSQL's:
- `sandbox` is a boolean, `body` a bytea; a delivery's order lane is the column `lane`
  (`tiktok` U+001F `order_id`), its `id` the bigserial;
- one INSERT … SELECT over generate_series per table (no generated rows in the SQL text). The
  columns that the three tables share (an event's id and dedup key) are functions of the row number
  and a salt (NOW_MS), through md5, so that each INSERT computes them alike without a temporary
  table; the parts of a row only its event holds (signature, user, `extra`) come from random().
- the operator's pause is a row in `consumer_holds` (the claim skips a held consumer), as
  `POST /admin/consumers/{name}/pause` writes it.
Run it in one session (psql -1 or its own BEGIN/COMMIT, which it has); then VACUUM (ANALYZE).
"""
import sys

events = int(sys.argv[1])
now_ms = int(sys.argv[2])
consumer = sys.argv[3] if len(sys.argv) > 3 else "orders"
span_ms = 5 * 86_400_000
start_ms = now_ms - span_ms - 60_000
pending = max(1, events // 1000)
step = 2 * span_ms // events  # two events per millisecond value
salt = str(now_ms)

ALPHABET = "'0123456789ABCDEFGHJKMNPQRSTVWXYZ'"


def digit(expression):
    return f"substr({ALPHABET}, ((({expression}) & 31) + 1)::int, 1)"


def ulid(prefix, ms, bits, unique):
    """`prefix` + 26 Crockford base32 digits: 48 bits of `ms`, then 80 bits: 50 from `bits` (a
    bigint of 52 pseudo-random bits), the last 30 those of `unique` (ids unique by construction)."""
    parts = [digit(f"({ms}) >> {45 - 5 * k}") for k in range(10)]
    parts += [digit(f"({bits}) >> {45 - 5 * k}") for k in range(10)]
    parts += [digit(f"({unique}) >> {5 * (5 - k)}") for k in range(6)]
    return f"'{prefix}' || " + " || ".join(parts)


def hashed_bits(tag):
    """52 pseudo-random bits of row i, the same in every statement (md5 of the salt, tag and i)."""
    return f"('x' || substr(md5('{salt}:{tag}:' || i), 1, 13))::bit(52)::bigint"


def random_hex(chars):
    """`chars` (a multiple of 32) random lowercase hex digits."""
    return " || ".join(["md5(random()::text)"] * (chars // 32))


def rfc3339(ms):
    return f"to_char(timestamp 'epoch' + ({ms}) * interval '1 millisecond', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"


def attempt(at, duration, status, error="null"):
    """One attempt as AttemptLog.encode writes it (keys sorted, nulls written, no spaces)."""
    return (f"""('{{"at":"' || {rfc3339(at)} || '","durationMs":' || ({duration}) || ',"error":{error},"status":{status}}}')""")


print(f"""
\\set ON_ERROR_STOP on
SET synchronous_commit = off;
SET maintenance_work_mem = '256MB';
BEGIN;
-- Row i of the synthetic history, as fill_sql.py's table `gen` (a view: each INSERT reads it once).
-- OFFSET 0 keeps the subquery as it is, so that md5 runs once per row, not once per ULID digit.
CREATE TEMP VIEW gen AS
SELECT i, ms, event_type, order_id, sandbox, state,
  {ulid('evt_', 'ms', 'bits', 'i')} AS id,
  CASE WHEN event_type LIKE 'minis.trade_order.%' THEN 'tiktok:' || event_type || ':' || order_id
       ELSE 'tiktok:sha256=' || encode(sha256(convert_to('{salt}:body:' || i, 'UTF8')), 'hex') END AS dedup_key,
  dl_bits
FROM (
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
    i % 50 = 3 AS sandbox,
    CASE WHEN i > {events - pending} THEN 'pending'
         WHEN i % 97 = 0 THEN 'dead_lettered'
         ELSE 'delivered' END AS state,
    {hashed_bits('evt')} AS bits,
    {hashed_bits('dl')} AS dl_bits
  FROM generate_series(1::bigint, {events}::bigint) AS i
  OFFSET 0) AS n;

-- In the order of i (generate_series's; an ORDER BY would sort a gigabyte of rows for nothing).
INSERT INTO events (id, source, event_type, dedup_key, order_id, received_at, headers, body, sandbox, finished_at)
SELECT id, 'tiktok', event_type, dedup_key, order_id, ms,
  '{{"host":"hooks.example.com","user-agent":"TikTok-Webhook/1.0","content-type":"application/json","content-length":"'
    || octet_length(body) || '","tiktok-signature":"t=' || (ms / 1000) || ',s=' || {random_hex(64)} || '"}}',
  convert_to(body, 'UTF8'), sandbox,
  CASE state WHEN 'pending' THEN NULL ELSE ms + 90000 END
FROM (SELECT g.*,
  format('{{"client_key":"awbench%s","event":"%s","create_time":%s,"user_openid":"_000%s","content":"%s"}}',
    lpad((g.i % 20)::text, 4, '0'), g.event_type, g.ms / 1000, upper(md5(random()::text)),
    format('{{\\"order_id\\":\\"%s\\",\\"trade_order_id\\":\\"TOID%s\\",\\"is_sandbox\\":%s,\\"amount\\":%s,\\"currency\\":\\"USD\\",\\"product_id\\":\\"prod-%s\\",\\"extra\\":\\"%s\\"}}',
      g.order_id, g.i, CASE WHEN g.sandbox THEN 'true' ELSE 'false' END, 100 + g.i % 9900, g.i % 300,
      {random_hex(320)}))
  AS body
  FROM gen g) AS b;

INSERT INTO dedup_keys (key, event_id, expires_at)
SELECT dedup_key, id, ms + 7 * 86400000 FROM gen;

INSERT INTO deliveries (event_id, consumer, lane, state, attempts, next_attempt_at, created_at,
                        attempt_log, finished_at, dead_letter_id, reason)
SELECT id, '{consumer}', 'tiktok' || chr(31) || order_id, state,
  CASE WHEN state = 'pending' THEN 0
       WHEN state = 'delivered' THEN CASE WHEN i % 13 = 0 THEN 2 ELSE 1 END
       WHEN (i / 97) % 2 = 0 THEN 1 ELSE 12 END,
  CASE WHEN state = 'delivered' AND i % 13 = 0 THEN ms + 1040 ELSE ms END,
  ms,
  CASE WHEN state = 'pending' THEN '[]'
       WHEN state = 'delivered' AND i % 13 = 0 THEN
         '[' || {attempt('ms + 40', 15, 503)} || ',' || {attempt('ms + 1040', '20 + i % 50', 200)} || ']'
       WHEN state = 'delivered' THEN '[' || {attempt('ms + 40', '20 + i % 50', 200)} || ']'
       WHEN (i / 97) % 2 = 0 THEN '[' || {attempt('ms + 40', 12, 400)} || ']'
       ELSE (SELECT '[' || string_agg(CASE WHEN k % 2 = 1
                THEN {attempt('ms + 40 + (k - 1) * 60000', 3, 'null', '"connection refused"')}
                ELSE {attempt('ms + 40 + (k - 1) * 60000', 31, 500)} END, ',' ORDER BY k) || ']'
             FROM generate_series(1, 12) AS k)
  END,
  CASE WHEN state = 'pending' THEN NULL
       WHEN state = 'delivered' AND i % 13 = 0 THEN ms + 1040 + 20 + i % 50
       WHEN state = 'delivered' THEN ms + 40 + 20 + i % 50
       WHEN (i / 97) % 2 = 0 THEN ms + 40 + 12
       ELSE ms + 40 + 11 * 60000 + 31 END,
  CASE WHEN state = 'dead_lettered' THEN
    {ulid('dl_', "CASE WHEN (i / 97) % 2 = 0 THEN ms + 52 ELSE ms + 40 + 11 * 60000 + 31 END", 'dl_bits', 'i')} END,
  CASE WHEN state = 'dead_lettered' THEN
    CASE WHEN (i / 97) % 2 = 0 THEN 'not retryable: status 400' ELSE 'max attempts' END END
FROM gen;

INSERT INTO consumer_holds (consumer, held_since) VALUES ('{consumer}', {now_ms})
  ON CONFLICT (consumer) DO NOTHING;
DROP VIEW gen;
COMMIT;
""")
