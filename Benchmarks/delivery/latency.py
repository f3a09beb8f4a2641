#!/usr/bin/env python3
"""Delivery latency from nginx access logs written with `log_format timing '$msec $http_webhook_id'`.

The gateway's event ids are ULIDs (`evt_` + 26 Crockford base32 characters) whose first 48 bits
are the time the event was received, in Unix milliseconds. Receipt precedes the 200 to TikTok,
so `arrival - receipt` slightly over-states the latency from the 200 to the consumer.

  latency.py FROM_MS TO_MS LOG...   -> "count=N p50_ms=… p99_ms=… max_ms=…" for events received in [FROM, TO)
"""
import sys

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def received_ms(event_id):
    text = event_id[4:14]
    value = 0
    for char in text:
        value = value * 32 + ALPHABET.index(char)
    return value


start, end = int(sys.argv[1]), int(sys.argv[2])
first = {}
for path in sys.argv[3:]:
    with open(path) as log:
        for line in log:
            parts = line.split()
            if len(parts) != 2 or not parts[1].startswith("evt_"):
                continue
            arrival = float(parts[0]) * 1000
            key = (path, parts[1])
            if key not in first or arrival < first[key]:
                first[key] = arrival
latencies = sorted(arrival - received_ms(key[1]) for key, arrival in first.items() if start <= received_ms(key[1]) < end)
if not latencies:
    print("count=0 p50_ms=- p99_ms=- max_ms=-")
else:
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    print("count=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f" % (len(latencies), pick(0.50), pick(0.99), latencies[-1]))
