#!/usr/bin/env bash
# Run the whole FlowForge system locally on its embedded defaults:
# PostgreSQL (persistent, in .local/pg), flowforge-api and one flowforge-worker.
# Ctrl-C (or SIGTERM) stops everything.
#
# Environment (all optional):
#   FLOWFORGE_UP_API_PORT           API port                        (default 8080)
#   FLOWFORGE_UP_API_ADMIN_PORT     API admin port (/readyz, ...)   (default 9080)
#   FLOWFORGE_UP_WORKER_ADMIN_PORT  worker admin port               (default 9081)
#   FLOWFORGE_UP_PG_PORT            PostgreSQL port (default 55432, or any free one if busy)
#   FLOWFORGE_UP_READY_TIMEOUT      seconds to wait for /readyz     (default 60)
#   FLOWFORGE_UP_NO_BUILD=1         skip cargo build (use the binaries already built)
#   CARGO_TARGET_DIR                where the release binaries are (default ./target)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
PG="$ROOT/scripts/pg.sh"
LOCAL="$ROOT/.local"
PGDIR="$LOCAL/pg"
LOGDIR="$LOCAL/logs"
TOKENS="$LOCAL/tokens.json"

API_PORT=${FLOWFORGE_UP_API_PORT:-8080}
API_ADMIN_PORT=${FLOWFORGE_UP_API_ADMIN_PORT:-9080}
WORKER_ADMIN_PORT=${FLOWFORGE_UP_WORKER_ADMIN_PORT:-9081}
READY_TIMEOUT=${FLOWFORGE_UP_READY_TIMEOUT:-60}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
API_BIN="$TARGET_DIR/release/flowforge-api"
WORKER_BIN="$TARGET_DIR/release/flowforge-worker"

say() { printf 'up: %s\n' "$*" >&2; }
die() {
    printf 'up: error: %s\n' "$*" >&2
    exit 1
}

# Something accepts connections on 127.0.0.1:PORT?
port_busy() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

API_PID=
WORKER_PID=
PG_STARTED=0
# shellcheck disable=SC2329 # invoked by the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    local pid name
    for name in api worker; do
        if [ "$name" = api ]; then pid=$API_PID; else pid=$WORKER_PID; fi
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            if [ "$name" = worker ]; then
                say "stopping flowforge-worker (pid $pid): running tasks get up to 25s to finish, the rest are handed back"
            else
                say "stopping flowforge-$name (pid $pid)"
            fi
            kill -TERM "$pid" 2>/dev/null
        fi
    done
    for name in api worker; do
        if [ "$name" = api ]; then pid=$API_PID; else pid=$WORKER_PID; fi
        [ -n "$pid" ] || continue
        local i
        for i in $(seq 1 300); do
            kill -0 "$pid" 2>/dev/null || break
            if [ "$i" -eq 300 ]; then
                say "flowforge-$name did not stop within 30s: SIGKILL"
                kill -KILL "$pid" 2>/dev/null
            fi
            sleep 0.1
        done
        wait "$pid" 2>/dev/null
    done
    if [ "$PG_STARTED" -eq 1 ]; then
        say "stopping PostgreSQL"
        "$PG" stop "$PGDIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- ports --------------------------------------------------------------------------------
for spec in "API:$API_PORT:FLOWFORGE_UP_API_PORT" "API admin:$API_ADMIN_PORT:FLOWFORGE_UP_API_ADMIN_PORT" \
    "worker admin:$WORKER_ADMIN_PORT:FLOWFORGE_UP_WORKER_ADMIN_PORT"; do
    IFS=: read -r what port var <<<"$spec"
    if port_busy "$port"; then
        die "port $port ($what) is already in use: stop what uses it, or choose another port, e.g. $var=$((port + 100)) make up"
    fi
done

# --- build --------------------------------------------------------------------------------
if [ "${FLOWFORGE_UP_NO_BUILD:-0}" != 1 ]; then
    say "cargo build --release --bin flowforge-api --bin flowforge-worker"
    cargo build --release --bin flowforge-api --bin flowforge-worker
fi
[ -x "$API_BIN" ] || die "$API_BIN not found"
[ -x "$WORKER_BIN" ] || die "$WORKER_BIN not found"

# --- PostgreSQL ---------------------------------------------------------------------------
mkdir -p "$LOCAL" "$LOGDIR"
pg_args=()
if ! "$PG" status "$PGDIR" 2>/dev/null; then
    if [ -n "${FLOWFORGE_UP_PG_PORT:-}" ]; then
        port_busy "$FLOWFORGE_UP_PG_PORT" && die "FLOWFORGE_UP_PG_PORT=$FLOWFORGE_UP_PG_PORT is already in use"
        pg_args=("$FLOWFORGE_UP_PG_PORT")
    elif ! port_busy 55432; then
        pg_args=(55432)
    else
        say "port 55432 is busy: PostgreSQL will use another one"
    fi
fi
PG_STARTED=1
PG_URL=$("$PG" start "$PGDIR" "${pg_args[@]}" | tail -n 1) || die "could not start PostgreSQL (see above)"
DB_URL="${PG_URL%/postgres}/flowforge"
PG_PORT=$(cat "$PGDIR/port")

if [ "$("$PG" psql "$PGDIR" -qAtc "SELECT 1 FROM pg_database WHERE datname = 'flowforge'")" != 1 ]; then
    say "creating database flowforge"
    "$PG" psql "$PGDIR" -qc 'CREATE DATABASE flowforge'
fi

# --- API token ----------------------------------------------------------------------------
if [ ! -f "$TOKENS" ]; then
    say "creating $TOKENS"
    (
        umask 077
        printf '{"tokens":["%s"]}\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >"$TOKENS.tmp"
    )
    mv -f "$TOKENS.tmp" "$TOKENS"
fi
chmod 600 "$TOKENS"
TOKEN=$(sed -n 's/.*"tokens"[[:space:]]*:[[:space:]]*\[[[:space:]]*"\([^"]*\)".*/\1/p' "$TOKENS" | head -n 1)
[ -n "$TOKEN" ] || die "no token found in $TOKENS (expected {\"tokens\":[\"...\"]})"

# --- migrate ------------------------------------------------------------------------------
say "flowforge-api migrate"
DATABASE_URL="$DB_URL" FLOWFORGE_API_TOKENS_SECRET="file:$TOKENS" "$API_BIN" migrate ||
    die "migration failed"

# --- start --------------------------------------------------------------------------------
rotate() { if [ -f "$1" ]; then mv -f "$1" "$1.1"; fi; }
rotate "$LOGDIR/api.log"
rotate "$LOGDIR/worker.log"

say "starting flowforge-api (log: .local/logs/api.log)"
DATABASE_URL="$DB_URL" \
    FLOWFORGE_API_TOKENS_SECRET="file:$TOKENS" \
    FLOWFORGE_API_ADDR="127.0.0.1:$API_PORT" \
    FLOWFORGE_ADMIN_ADDR="127.0.0.1:$API_ADMIN_PORT" \
    "$API_BIN" </dev/null >>"$LOGDIR/api.log" 2>&1 &
API_PID=$!

say "starting flowforge-worker (log: .local/logs/worker.log)"
DATABASE_URL="$DB_URL" \
    FLOWFORGE_ADMIN_ADDR="127.0.0.1:$WORKER_ADMIN_PORT" \
    FLOWFORGE_QUEUES=default \
    FLOWFORGE_HTTP_ALLOW_HOSTS=127.0.0.1,localhost \
    "$WORKER_BIN" </dev/null >>"$LOGDIR/worker.log" 2>&1 &
WORKER_PID=$!

# --- wait for readiness -------------------------------------------------------------------
ready() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/readyz" 2>/dev/null; }
fail_with_logs() {
    printf 'up: error: %s\n' "$1" >&2
    local name
    for name in api worker; do
        printf '\n--- last lines of .local/logs/%s.log ---\n' "$name" >&2
        tail -n 40 "$LOGDIR/$name.log" >&2 2>/dev/null || true
    done
    exit 1
}
deadline=$(($(date +%s) + READY_TIMEOUT))
api_ready=0
worker_ready=0
while :; do
    kill -0 "$API_PID" 2>/dev/null || fail_with_logs "flowforge-api exited during startup"
    kill -0 "$WORKER_PID" 2>/dev/null || fail_with_logs "flowforge-worker exited during startup"
    [ "$api_ready" -eq 1 ] || { ready "$API_ADMIN_PORT" && api_ready=1; } || true
    [ "$worker_ready" -eq 1 ] || { ready "$WORKER_ADMIN_PORT" && worker_ready=1; } || true
    if [ "$api_ready" -eq 1 ] && [ "$worker_ready" -eq 1 ]; then break; fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        not=()
        [ "$api_ready" -eq 1 ] || not+=("api (http://127.0.0.1:$API_ADMIN_PORT/readyz)")
        [ "$worker_ready" -eq 1 ] || not+=("worker (http://127.0.0.1:$WORKER_ADMIN_PORT/readyz)")
        fail_with_logs "not ready after ${READY_TIMEOUT}s: ${not[*]}"
    fi
    sleep 0.5
done

API="http://127.0.0.1:$API_PORT"
cat <<EOF

FlowForge is up.
  API:         $API
  admin:       http://127.0.0.1:$API_ADMIN_PORT (api), http://127.0.0.1:$WORKER_ADMIN_PORT (worker): /readyz, /metrics
  database:    ${DB_URL%%:*}://postgres:***@127.0.0.1:$PG_PORT/flowforge  (password: .local/pg/password)
  API token:   $TOKEN  (in .local/tokens.json)
  logs:        .local/logs/api.log, .local/logs/worker.log

Try it (in another terminal):
  TOKEN=$TOKEN
  # create a task
  curl -sS -X POST $API/v1/tasks -H "Authorization: Bearer \$TOKEN" -H 'content-type: application/json' -d '{"queue":"default","kind":"sleep","payload":{"ms":500}}'
  # get it back (use the id printed above)
  curl -sS $API/v1/tasks/ID -H "Authorization: Bearer \$TOKEN"
  # list queues
  curl -sS $API/v1/queues -H "Authorization: Bearer \$TOKEN"

Press Ctrl-C to stop everything.
EOF

# --- run until interrupted or until one of them exits ---------------------------------------
rc=0
wait -n "$API_PID" "$WORKER_PID" || rc=$?
if ! kill -0 "$API_PID" 2>/dev/null; then
    say "flowforge-api exited (status $rc); stopping everything. Log: .local/logs/api.log"
else
    say "flowforge-worker exited (status $rc); stopping everything. Log: .local/logs/worker.log"
fi
exit 1
