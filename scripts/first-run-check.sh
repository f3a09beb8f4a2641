#!/usr/bin/env bash
# Follows the README's "First run" as a newcomer would: runs the first terminal's command, waits for
# the gateway, runs the second terminal's commands exactly as the README writes them, and checks
# what they print (an accepted event unlocked by the example consumer, sandbox renewals only at
# orders-sandbox, working dead-letter and admin commands). Then stops the first terminal with
# Ctrl-C (SIGINT) and checks that it exits cleanly and stops the consumers it started.
#
# Run from the repository root: scripts/first-run-check.sh. It needs ports 8080, 9090, 7001, 7002 and
# 7003 free. An existing ./data is moved aside and put back afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    echo "first-run-check: $*" >&2
    exit 1
}

# The two fenced sh blocks after "## First run" in the README: the first terminal's, the second's.
read_block() {
    awk -v want="$1" '
        /^## First run/ { inside = 1; next }
        inside && /^## / { exit }
        inside && /^```sh/ { block++; if (block == want) { printing = 1 }; next }
        inside && /^```/ { printing = 0; next }
        printing { print }
    ' README.md
}
first_terminal=$(read_block 1)
second_terminal=$(read_block 2)
[ -n "$first_terminal" ] || fail "README has no first-terminal block under '## First run'"
[ -n "$second_terminal" ] || fail "README has no second-terminal block under '## First run'"

ports="8080 9090 7001 7002 7003"
listening() { curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/"; }
for port in $ports; do
    if listening "$port"; then fail "port $port is taken; the first run needs $ports free"; fi
done

work=$(mktemp -d /tmp/wg-first-run.XXXXXX)
if [ -e data ]; then mv data "$work/data.before"; fi
gateway_pid=""
# Stops the first terminal's processes (SIGTERM, 15 s, then SIGKILL) and waits for the example
# consumers' ports to close; only then is ./data put back.
stop_everything() {
    if [ -n "$gateway_pid" ] && kill -0 "$gateway_pid" 2>/dev/null; then
        kill -TERM "-$gateway_pid" 2>/dev/null || true
        for _ in $(seq 1 150); do kill -0 "$gateway_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "-$gateway_pid" 2>/dev/null || true
    fi
    pkill -KILL -f "example-consumer --port 700[123]" 2>/dev/null || true
}
cleanup() {
    stop_everything
    rm -rf data
    if [ -e "$work/data.before" ]; then mv "$work/data.before" data; fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "first-run-check: terminal 1: $first_terminal"
# Its own process group, as a terminal would give it, so that Ctrl-C reaches the gateway.
set -m
bash -c "$first_terminal" >"$work/terminal1.log" 2>&1 &
gateway_pid=$!
set +m

# The build may take minutes on a fresh clone; the banner says when to go on.
for _ in $(seq 1 1800); do
    if grep -q "In a second terminal" "$work/terminal1.log"; then break; fi
    kill -0 "$gateway_pid" 2>/dev/null || { cat "$work/terminal1.log"; fail "the first terminal's command exited"; }
    sleep 0.5
done
grep -q "In a second terminal" "$work/terminal1.log" || { tail -50 "$work/terminal1.log"; fail "no banner after 15 minutes"; }
# The gateway and the consumers listen shortly after the banner.
ready() {
    curl -s -o /dev/null --max-time 1 http://127.0.0.1:9090/healthz && grep -q "^\[orders\] listening on port" "$work/terminal1.log" \
        && grep -q "^\[orders-sandbox\] listening on port" "$work/terminal1.log"
}
for _ in $(seq 1 150); do
    if ready; then break; fi
    kill -0 "$gateway_pid" 2>/dev/null || { cat "$work/terminal1.log"; fail "the first terminal's command exited"; }
    sleep 0.2
done
ready || { cat "$work/terminal1.log"; fail "the gateway and both example consumers were not listening 30 s after the banner"; }

echo "first-run-check: terminal 2:"
echo "$second_terminal"
bash -e -c "$second_terminal" >"$work/terminal2.log" 2>&1 || {
    cat "$work/terminal2.log"
    tail -30 "$work/terminal1.log"
    fail "a second-terminal command failed"
}
cat "$work/terminal2.log"

grep -q '^200 {"status":"accepted"' "$work/terminal2.log" || fail "the first event was not accepted"
grep -q '^sent 3: accepted 3, duplicate 0, failed 0$' "$work/terminal2.log" || fail "the sandbox renewals were not three events"
grep -q '^0 dead letters$' "$work/terminal2.log" || fail "dead-letters list did not answer"
grep -q '^replayed 0, skipped 0$' "$work/terminal2.log" || fail "dead-letters replay --dry-run did not answer"
grep -q 'webhook_gateway_requests_total{source="tiktok",outcome="accepted"} 4' "$work/terminal2.log" \
    || fail "the metrics do not count the four accepted events"

# Delivered: the production consumer unlocked order 42 and nothing of the sandbox; the sandbox
# consumer got the three renewals of S1.
delivered() { grep "^\[$1\] " "$work/terminal1.log" | grep "purchase unlocked" | grep -cE "order=$2( |$)" || true; }
for _ in $(seq 1 100); do
    if [ "$(delivered orders 42)" = 1 ] && [ "$(delivered orders-sandbox S1)" = 3 ]; then break; fi
    sleep 0.2
done
[ "$(delivered orders 42)" = 1 ] || { cat "$work/terminal1.log"; fail "order 42 was not unlocked once by [orders]"; }
[ "$(delivered orders-sandbox S1)" = 3 ] || { cat "$work/terminal1.log"; fail "[orders-sandbox] did not get the three renewals"; }
[ "$(delivered orders S1)" = 0 ] || fail "the production consumer got a sandbox event"

# Secrets are printed once, in the banner, and never in a log line.
token=$(sed -n 's/^WEBHOOK_GATEWAY_ADMIN_TOKEN=//p' data/dev-secrets.env)
[ -n "$token" ] || fail "data/dev-secrets.env has no admin token"
[ "$(grep -c "$token" "$work/terminal1.log")" = 1 ] || fail "the admin token appears other than once in the first terminal"

# The console the README points to: announced by dev, served without the token.
grep -q '^Operator console: http://127.0.0.1:9090/ui/' "$work/terminal1.log" || fail "dev did not print the console's address"
curl -sf http://127.0.0.1:9090/ui/ | grep -q '<title>webhook-gateway console</title>' || fail "the console page is not served at /ui/"

# Ctrl-C: the gateway drains and exits 0, and the consumers it started stop with it.
kill -INT "-$gateway_pid"
status=0
for _ in $(seq 1 100); do kill -0 "$gateway_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$gateway_pid" 2>/dev/null && fail "the first terminal did not stop within 10 s of Ctrl-C"
wait "$gateway_pid" || status=$?
gateway_pid=""
[ "$status" = 0 ] || { tail -20 "$work/terminal1.log"; fail "the first terminal exited with $status"; }
# dev stops its consumers before it exits (they are in process groups of their own).
for port in 7001 7002 7003; do
    if listening "$port"; then fail "an example consumer still listens on $port after Ctrl-C"; fi
done
echo "first-run-check: ok"
