#!/usr/bin/env bash
# Runs schemathesis (PyPI) against a running gateway's admin API, described by docs/admin-api.yaml:
# no answer may be a 5xx, every answer's status, content type and body must match the document, and no
# route that the document protects may answer without the token.
#
# Starts the gateway (GATEWAY, default: the debug build's binary) with a throwaway configuration: a
# TikTok source and one consumer at a closed port, so that a few seeded events end as dead letters
# and the event, dead-letter and consumer routes all have something to show. schemathesis runs in
# its own virtualenv (SCHEMATHESIS_VENV, default /tmp/wg-schemathesis-venv), installed with pip when
# missing. The run is bounded: MAX_EXAMPLES per operation (default 60) and MAX_TIME seconds in all
# (default 300).
#
#   scripts/schemathesis.sh            # from the repository root, after swift build
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    echo "schemathesis: $*" >&2
    exit 1
}

venv=${SCHEMATHESIS_VENV:-/tmp/wg-schemathesis-venv}
if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "schemathesis==${SCHEMATHESIS_VERSION:-4.32.5}"
fi
"$venv/bin/schemathesis" --version

gateway=${GATEWAY:-$(swift build --show-bin-path)/webhook-gateway}
[ -x "$gateway" ] || fail "no gateway binary at $gateway (run swift build, or set GATEWAY)"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ingress_port=$(free_port)
admin_port=$(free_port)
closed_port=$(free_port)

work=$(mktemp -d /tmp/wg-schemathesis.XXXXXX)
gateway_pid=""
cleanup() {
    if [ -n "$gateway_pid" ]; then
        kill -TERM "$gateway_pid" 2>/dev/null || true
        wait "$gateway_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

export SCHEMATHESIS_ADMIN_TOKEN="schemathesis-admin-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
export SCHEMATHESIS_TIKTOK_SECRET="schemathesis-tiktok-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
export SCHEMATHESIS_SIGNING_SECRET="whsec_$(head -c 24 /dev/urandom | base64)"
cat >"$work/config.json" <<JSON
{
  "listen": { "host": "127.0.0.1", "port": $ingress_port },
  "admin": { "host": "127.0.0.1", "port": $admin_port, "token": "env:SCHEMATHESIS_ADMIN_TOKEN" },
  "storage": { "kind": "sqlite", "path": "$work/gateway.sqlite" },
  "deadLetters": { "directory": "$work/dead-letters" },
  "sources": [
    { "name": "tiktok", "path": "/webhooks/tiktok", "scheme": "tiktok", "secrets": ["env:SCHEMATHESIS_TIKTOK_SECRET"] }
  ],
  "consumers": [
    {
      "name": "orders", "url": "http://127.0.0.1:$closed_port/tiktok-events", "sources": ["tiktok"],
      "signingSecret": "env:SCHEMATHESIS_SIGNING_SECRET", "timeout": "2s",
      "retry": { "maxAttempts": 2, "initialDelay": "100ms", "maxDelay": "100ms" }
    }
  ]
}
JSON
"$gateway" serve --config "$work/config.json" >"$work/gateway.log" 2>&1 &
gateway_pid=$!
admin="http://127.0.0.1:$admin_port"
for _ in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 "$admin/healthz" && break
    kill -0 "$gateway_pid" 2>/dev/null || { cat "$work/gateway.log"; fail "the gateway exited"; }
    sleep 0.1
done
curl -sf -o /dev/null "$admin/healthz" || { cat "$work/gateway.log"; fail "the gateway is not answering"; }

# Seed: events that the closed port turns into dead letters, so that every list has entries.
"$gateway" send-test-event --config "$work/config.json" --event minis.trade_order.redeem.success --order-id st --count 5 >/dev/null
dead_letters=0
for _ in $(seq 1 100); do
    dead_letters=$(curl -sf -H "Authorization: Bearer $SCHEMATHESIS_ADMIN_TOKEN" "$admin/admin/dead-letters?consumer=orders" \
        | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["deadLetters"]))')
    [ "$dead_letters" -ge 5 ] && break
    sleep 0.2
done
[ "$dead_letters" -ge 5 ] || { tail -30 "$work/gateway.log"; fail "the seeded events did not become dead letters"; }
echo "schemathesis: gateway on $admin with 5 events and $dead_letters dead letters"

status=0
document="$PWD/docs/admin-api.yaml"
# In the work directory, so that schemathesis's caches (.schemathesis, .hypothesis) go with it.
(cd "$work" && "$venv/bin/schemathesis" run "$document" \
    --url "$admin" \
    --header "Authorization: Bearer $SCHEMATHESIS_ADMIN_TOKEN" \
    --checks "${CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ignored_auth}" \
    --max-examples "${MAX_EXAMPLES:-60}" \
    --max-time "${MAX_TIME:-300}" \
    --request-timeout 10 \
    --workers 1 \
    --seed "${SEED:-20261203}" \
    --no-color \
    --suppress-health-check all \
    --warnings off) \
    >"$work/schemathesis.out" 2>&1 || status=$?
cat "$work/schemathesis.out"
if ! kill -0 "$gateway_pid" 2>/dev/null; then
    tail -30 "$work/gateway.log"
    fail "the gateway died during the run"
fi
[ "$status" -eq 0 ] || fail "schemathesis found failures (exit $status)"
echo "schemathesis: passed"
