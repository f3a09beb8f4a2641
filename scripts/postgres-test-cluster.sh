#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests of the shared store and several gateways.
#
#   eval "$(scripts/postgres-test-cluster.sh start)"   # starts it, exports its URL
#   swift test                                          # the PostgreSQL tests now run
#   scripts/postgres-test-cluster.sh stop               # stops it and removes its files
#
# Needs Debian's postgresql package (`apt-get install postgresql`). The cluster lives in a
# temporary directory owned by the `postgres` user (the server refuses to run as root), listens on
# a free loopback port only, and has a user `gateway` with a password (scram-sha-256), so the tests
# use a URL as a deployment would. It prints shell lines that export:
#   WEBHOOK_GATEWAY_TEST_POSTGRES_URL   postgres://gateway:…@127.0.0.1:PORT/webhook_gateway?sslmode=disable
#   WEBHOOK_GATEWAY_TEST_POSTGRES_DIR   the cluster's directory (for stop, and for tests that stop
#                                       and start the server)
set -euo pipefail

state_file="${TMPDIR:-/tmp}/webhook-gateway-test-postgres.env"
bin_dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
    [ -x "$bin_dir/initdb" ] || { echo "no PostgreSQL server found: apt-get install postgresql" >&2; exit 1; }
    if [ -f "$state_file" ]; then
        # shellcheck disable=SC1090
        . "$state_file"
        if as_postgres "$bin_dir/pg_ctl" -D "$WEBHOOK_GATEWAY_TEST_POSTGRES_DIR/data" status >/dev/null 2>&1; then
            cat "$state_file"
            exit 0
        fi
    fi
    dir="$(mktemp -d /tmp/wg-postgres.XXXXXX)"
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    password="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
    printf '%s\n' "$password" > "$dir/pwfile"
    [ "$(id -u)" = 0 ] && chown postgres "$dir/pwfile"
    as_postgres "$bin_dir/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        --pwfile="$dir/pwfile" >"$dir/initdb.log" 2>&1
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    as_postgres "$bin_dir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=256MB -c fsync=on -c synchronous_commit=on" \
        start >/dev/null
    as_postgres "$bin_dir/psql" -h "$dir" -p "$port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE gateway LOGIN CREATEDB PASSWORD '$password'" \
        -c "CREATE DATABASE webhook_gateway OWNER gateway" >/dev/null
    {
        echo "export WEBHOOK_GATEWAY_TEST_POSTGRES_URL='postgres://gateway:$password@127.0.0.1:$port/webhook_gateway?sslmode=disable'"
        echo "export WEBHOOK_GATEWAY_TEST_POSTGRES_DIR='$dir'"
        echo "export WEBHOOK_GATEWAY_TEST_POSTGRES_PORT='$port'"
    } > "$state_file"
    cat "$state_file"
    ;;
stop)
    [ -f "$state_file" ] || exit 0
    # shellcheck disable=SC1090
    . "$state_file"
    as_postgres "$bin_dir/pg_ctl" -D "$WEBHOOK_GATEWAY_TEST_POSTGRES_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$WEBHOOK_GATEWAY_TEST_POSTGRES_DIR" "$state_file"
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
