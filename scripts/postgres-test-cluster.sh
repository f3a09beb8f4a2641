#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests of the shared store and several gateways.
#
#   eval "$(scripts/postgres-test-cluster.sh start)"   # starts it, exports its URL
#   swift test                                          # the PostgreSQL tests now run
#   scripts/postgres-test-cluster.sh stop               # stops it and removes its files
#   scripts/postgres-test-cluster.sh halt | resume      # stops / starts the server, keeping its data
#                                                       # (for tests of the database going away)
#
# The state lives in $TMPDIR/webhook-gateway-test-postgres.env, so another TMPDIR gives another
# cluster (a test that stops its server uses one of its own).
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

# The server outlives this script: it must not keep the caller's file descriptors (other than its
# log) open, or a caller that waits for this script's output or exit through a pipe (Foundation's
# Process does) waits for the server instead.
close_inherited_fds() {
    local fd
    for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
}

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
    close_inherited_fds
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
    (umask 077; printf '%s\n' "$password" > "$dir/pwfile")
    [ "$(id -u)" = 0 ] && chown postgres "$dir/pwfile"
    as_postgres "$bin_dir/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        --pwfile="$dir/pwfile" >"$dir/initdb.log" 2>&1
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    # The server's settings go into its own configuration file, so halt/resume start it the same way.
    cat >> "$dir/data/postgresql.conf" <<CONF
port = $port
unix_socket_directories = '$dir'
listen_addresses = '127.0.0.1'
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
CONF
    as_postgres "$bin_dir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
    as_postgres "$bin_dir/psql" -h "$dir" -p "$port" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE gateway LOGIN CREATEDB PASSWORD '$password'" \
        -c "CREATE DATABASE webhook_gateway OWNER gateway" >/dev/null
    (umask 077; : > "$state_file")
    {
        echo "export WEBHOOK_GATEWAY_TEST_POSTGRES_URL='postgres://gateway:$password@127.0.0.1:$port/webhook_gateway?sslmode=disable'"
        echo "export WEBHOOK_GATEWAY_TEST_POSTGRES_DIR='$dir'"
        echo "export WEBHOOK_GATEWAY_TEST_POSTGRES_PORT='$port'"
    } > "$state_file"
    cat "$state_file"
    ;;
halt)
    # shellcheck disable=SC1090
    . "$state_file"
    as_postgres "$bin_dir/pg_ctl" -D "$WEBHOOK_GATEWAY_TEST_POSTGRES_DIR/data" -m fast -w stop >/dev/null
    ;;
resume)
    close_inherited_fds
    # shellcheck disable=SC1090
    . "$state_file"
    as_postgres "$bin_dir/pg_ctl" -D "$WEBHOOK_GATEWAY_TEST_POSTGRES_DIR/data" -l "$WEBHOOK_GATEWAY_TEST_POSTGRES_DIR/server.log" \
        -w -t 60 start >/dev/null
    ;;
stop)
    [ -f "$state_file" ] || exit 0
    # shellcheck disable=SC1090
    . "$state_file"
    as_postgres "$bin_dir/pg_ctl" -D "$WEBHOOK_GATEWAY_TEST_POSTGRES_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$WEBHOOK_GATEWAY_TEST_POSTGRES_DIR" "$state_file"
    ;;
*)
    echo "usage: $0 start|stop|halt|resume" >&2
    exit 2
    ;;
esac
