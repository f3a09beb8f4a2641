#!/usr/bin/env bash
# Soak test, on loopback: the gateway under a steady signed load for a while, with consumers that
# misbehave and with the operator's interruptions, checking that nothing acknowledged is lost and
# that memory, file descriptors and queues level off.
#
#   GATEWAY=path/to/webhook-gateway Benchmarks/soak/run.sh [--duration 10m] [--out DIR]
#
# - config in a temp dir: ingress and admin on free ports of 127.0.0.1, sqlite store, dead-letter
#   files, source `tiktok` with two `file:` secrets, admin token `file:`; three consumers (Python
#   servers inside the driver) with `timeout` 1s and short retries:
#     stall  answers `200 OK`, `Content-Length: 10` and never the body during every other 20 s window,
#     flaky  answers 503 for 15 s of every 45 s,
#     slow   answers 200 after 300–700 ms;
#   each verifies the Standard Webhooks signature of every delivery.
# - load: SOAK_RATE (20) distinct signed `minis.trade_order.redeem.success` events a second; an
#   event not answered 200 is resent with back-off, like TikTok; a 200 is "acknowledged".
# - at 1/4 of the run: the admin token and the second TikTok secret are rotated (SIGHUP), the load
#   then signs with the new secret; at 1/2: SIGTERM (exit 0 expected) and restart; at 3/4: kill -9
#   and restart.
# - every 5 s: RSS, open fds, database size (+ WAL), queue depth -> OUT/samples.csv.
# - after the load: waits (at most 120 s) for every queue to be empty, stops the gateway, and
#   checks every acknowledged event reached every consumer (2xx) or its dead-letter file.
# Prints a summary; writes OUT/summary.json and, with matplotlib, OUT/soak.png. Exit status 1 if an
# event was lost, a signature failed, a restart failed, or another check failed.
#
# Default OUT: Benchmarks/soak/results/<UTC timestamp> (git-ignored). Optional environment:
# SOAK_RATE, SOAK_EVENT_RETENTION (adds `"events": {"retention": …}` to the config),
# SOAK_SAMPLE_INTERVAL (5), SOAK_DRAIN_TIMEOUT (120), SOAK_LOG_LEVEL (info), SOAK_KEEP_WORK=1
# (keeps the temp dir: config, secrets, database). Needs python3 (standard library).
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

DURATION=10m
OUT=
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=${2:?--duration needs a value}; shift 2 ;;
        --duration=*) DURATION=${1#*=}; shift ;;
        --out) OUT=${2:?--out needs a value}; shift 2 ;;
        --out=*) OUT=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ -z "${GATEWAY:-}" ]; then
    echo "set GATEWAY to the webhook-gateway binary to test (see --help)" >&2
    exit 2
fi
[ -x "$GATEWAY" ] || { echo "GATEWAY=$GATEWAY is not an executable file" >&2; exit 2; }
GATEWAY=$(cd "$(dirname "$GATEWAY")" && pwd)/$(basename "$GATEWAY")
command -v python3 >/dev/null || { echo "missing python3" >&2; exit 2; }

# Duration in seconds, for the overall time limit (the driver parses the same forms).
case "$DURATION" in
    *ms) SECONDS_TOTAL=1 ;;
    *s) SECONDS_TOTAL=${DURATION%s} ;;
    *m) SECONDS_TOTAL=$((${DURATION%m} * 60)) ;;
    *h) SECONDS_TOTAL=$((${DURATION%h} * 3600)) ;;
    *) SECONDS_TOTAL=$DURATION ;;
esac
[[ "$SECONDS_TOTAL" =~ ^[0-9]+$ ]] || { echo "bad --duration $DURATION (use e.g. 90s, 2m, 10m)" >&2; exit 2; }
# The load, its resends (90 s), the restarts, the drain and the final stop, with room to spare.
LIMIT=$((SECONDS_TOTAL + 90 + ${SOAK_DRAIN_TIMEOUT:-120} + 180))

OUT=${OUT:-Benchmarks/soak/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/wg-soak.XXXXXX)
DRIVER=

cleanup() {
    local status=$?
    trap - EXIT INT TERM HUP
    if [ -n "$DRIVER" ] && kill -0 "$DRIVER" 2>/dev/null; then
        kill -TERM "$DRIVER" 2>/dev/null || true
        for _ in $(seq 1 200); do kill -0 "$DRIVER" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DRIVER" 2>/dev/null || true
    fi
    # The gateway the driver started last, if it outlived the driver.
    if [ -f "$WORK/gateway.pid" ]; then
        local pid
        pid=$(cat "$WORK/gateway.pid")
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--config $WORK/"; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    if [ "${SOAK_KEEP_WORK:-0}" = 1 ]; then
        echo "kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

status=0
timeout --signal=TERM --kill-after=30 "$LIMIT" \
    python3 -u Benchmarks/soak/soak.py --gateway "$GATEWAY" --duration "$DURATION" --out "$OUT" --work "$WORK" &
DRIVER=$!
wait "$DRIVER" || status=$?
DRIVER=
if [ "$status" = 124 ]; then
    echo "soak: the driver ran over its limit of $LIMIT s and was stopped" >&2
fi
exit "$status"
