#!/usr/bin/env bash
# Run the whole FlowForge system locally on its embedded defaults:
# PostgreSQL (persistent, in .local/pg), flowforge-api, and flowforge-scaler in local mode, which
# plays KEDA: it starts flowforge-worker processes when tasks arrive (0..FLOWFORGE_UP_MAX_WORKERS)
# and stops them after a cooldown.
# Prometheus (Debian's package) scrapes all of them every 5 s and evaluates the generated SLO
# rules and alerts (alerts/flowforge-rules.yaml); its data lives in .local/prometheus.
# Ctrl-C (or SIGTERM) stops everything.
#
# Like production, the services read rotating secrets from files, re-read every second:
#   .local/db-secret.json  database credentials (AWS RDS rotation JSON) of the login role
#                          flowforge_app_user, a member of the group role flowforge_app that holds
#                          the application's privileges; migrations run as the superuser
#   .local/tokens.json     the API's bearer tokens
# Both are created on the first run and kept; scripts/rotate-local.sh rotates them while
# everything runs.
#
# Environment (all optional):
#   FLOWFORGE_UP_API_PORT           API port                        (default 8080)
#   FLOWFORGE_UP_API_ADMIN_PORT     API admin port (/readyz, ...)   (default 9080)
#   FLOWFORGE_UP_WORKER_ADMIN_PORT  first worker's admin port; worker i uses this + i (default 9081)
#   FLOWFORGE_UP_SCALER_ADMIN_PORT  scaler admin port               (default 9090)
#   FLOWFORGE_UP_SCALER_GRPC_PORT   scaler gRPC port                (default 6000)
#   FLOWFORGE_UP_MAX_WORKERS        most workers at once            (default 4)
#   FLOWFORGE_UP_PROMETHEUS_PORT    Prometheus web UI and API       (default 9091)
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
DB_SECRET="$LOCAL/db-secret.json"
APP_GROUP=flowforge_app
APP_USER=flowforge_app_user

API_PORT=${FLOWFORGE_UP_API_PORT:-8080}
API_ADMIN_PORT=${FLOWFORGE_UP_API_ADMIN_PORT:-9080}
WORKER_ADMIN_PORT=${FLOWFORGE_UP_WORKER_ADMIN_PORT:-9081}
READY_TIMEOUT=${FLOWFORGE_UP_READY_TIMEOUT:-60}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
API_BIN="$TARGET_DIR/release/flowforge-api"
WORKER_BIN="$TARGET_DIR/release/flowforge-worker"
SCALER_BIN="$TARGET_DIR/release/flowforge-scaler"
SCALER_ADMIN_PORT=${FLOWFORGE_UP_SCALER_ADMIN_PORT:-9090}
SCALER_GRPC_PORT=${FLOWFORGE_UP_SCALER_GRPC_PORT:-6000}
MAX_WORKERS=${FLOWFORGE_UP_MAX_WORKERS:-4}
PROMETHEUS_PORT=${FLOWFORGE_UP_PROMETHEUS_PORT:-9091}

say() { printf 'up: %s\n' "$*" >&2; }
die() {
    printf 'up: error: %s\n' "$*" >&2
    exit 1
}

# Something accepts connections on 127.0.0.1:PORT?
port_busy() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

API_PID=
WORKER_PID=
PROMETHEUS_PID=
PG_STARTED=0
# shellcheck disable=SC2329 # invoked by the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    local pid name
    if [ -n "$PROMETHEUS_PID" ] && kill -0 "$PROMETHEUS_PID" 2>/dev/null; then
        say "stopping Prometheus"
        kill -TERM "$PROMETHEUS_PID" 2>/dev/null
        wait "$PROMETHEUS_PID" 2>/dev/null
    fi
    for name in api worker; do
        if [ "$name" = api ]; then pid=$API_PID; else pid=$WORKER_PID; fi
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            if [ "$name" = worker ]; then
                say "stopping flowforge-scaler and its workers (pid $pid): running tasks get up to 25s to finish, the rest are handed back"
            else
                say "stopping flowforge-$name (pid $pid)"
            fi
            kill -TERM "$pid" 2>/dev/null
        fi
    done
    for name in api worker; do
        if [ "$name" = api ]; then pid=$API_PID; else pid=$WORKER_PID; fi
        [ -n "$pid" ] || continue
        # The scaler first drains its workers (25 s grace), then stops itself.
        local i limit=300
        if [ "$name" = worker ]; then limit=450; fi
        for i in $(seq 1 "$limit"); do
            kill -0 "$pid" 2>/dev/null || break
            if [ "$i" -eq "$limit" ]; then
                say "flowforge-$name did not stop within $((limit / 10))s: SIGKILL"
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
    "worker admin:$WORKER_ADMIN_PORT:FLOWFORGE_UP_WORKER_ADMIN_PORT" \
    "scaler admin:$SCALER_ADMIN_PORT:FLOWFORGE_UP_SCALER_ADMIN_PORT" "scaler gRPC:$SCALER_GRPC_PORT:FLOWFORGE_UP_SCALER_GRPC_PORT" \
    "Prometheus:$PROMETHEUS_PORT:FLOWFORGE_UP_PROMETHEUS_PORT"; do
    IFS=: read -r what port var <<<"$spec"
    if port_busy "$port"; then
        die "port $port ($what) is already in use: stop what uses it, or choose another port, e.g. $var=$((port + 100)) make up"
    fi
done

# --- build --------------------------------------------------------------------------------
if [ "${FLOWFORGE_UP_NO_BUILD:-0}" != 1 ]; then
    say "cargo build --release --bin flowforge-api --bin flowforge-worker --bin flowforge-scaler"
    cargo build --release --bin flowforge-api --bin flowforge-worker --bin flowforge-scaler
fi
[ -x "$API_BIN" ] || die "$API_BIN not found"
[ -x "$WORKER_BIN" ] || die "$WORKER_BIN not found"
[ -x "$SCALER_BIN" ] || die "$SCALER_BIN not found"

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
# As the superuser, through DATABASE_URL (a FLOWFORGE_DB_SECRET from the caller's environment
# would take precedence: drop it).
say "flowforge-api migrate"
env -u FLOWFORGE_DB_SECRET DATABASE_URL="$DB_URL" FLOWFORGE_API_TOKENS_SECRET="file:$TOKENS" "$API_BIN" migrate ||
    die "migration failed"

# --- application role and its credentials -------------------------------------------------
# The group role holds the privileges (granted again at every run: new tables and functions
# get them); login roles are its members, so that the alternating-users rotation's
# <user>_clone works the same. The login password lives in $DB_SECRET only.
say "granting the application's privileges to role $APP_GROUP"
"$PG" psql "$PGDIR" -d flowforge -qAt -v ON_ERROR_STOP=1 -f - >/dev/null <<EOF || die "could not set up role $APP_GROUP"
SET client_min_messages = warning;
SELECT 'CREATE ROLE $APP_GROUP NOLOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$APP_GROUP') \gexec
GRANT CONNECT ON DATABASE flowforge TO $APP_GROUP;
GRANT USAGE ON SCHEMA flowforge TO $APP_GROUP;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA flowforge TO $APP_GROUP;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA flowforge TO $APP_GROUP;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA flowforge TO $APP_GROUP;
EOF

# Field FIELD of the JSON object in FILE (empty if absent).
json_field() { # file field
    python3 -c 'import json, sys
v = json.load(open(sys.argv[1])).get(sys.argv[2])
print("" if v is None else v)' "$1" "$2"
}
random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# Create login role $1 (member of the group) if missing, and set its password to $2.
# Through stdin, so that the password shows in no process list.
set_login() { # user password
    "$PG" psql "$PGDIR" -d flowforge -qAt -v ON_ERROR_STOP=1 -f - >/dev/null <<EOF
SET client_min_messages = warning;
SELECT 'CREATE ROLE $1 LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$1') \gexec
ALTER ROLE $1 WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '$2';
GRANT $APP_GROUP TO $1;
EOF
}

db_user=$APP_USER
db_password=
if [ -f "$DB_SECRET" ]; then
    db_user=$(json_field "$DB_SECRET" username) ||
        die "$DB_SECRET is not a JSON object: fix it, or delete it to get new credentials"
    db_password=$(json_field "$DB_SECRET" password) || die "cannot read $DB_SECRET"
    [[ $db_user =~ ^[a-z_][a-z0-9_]*$ ]] ||
        die "$DB_SECRET: unexpected username '$db_user': fix it, or delete the file to get new credentials"
    [ -n "$db_password" ] || die "$DB_SECRET has no password: delete it to get new credentials"
    [[ $db_password =~ ^[A-Za-z0-9]+$ ]] ||
        die "$DB_SECRET: the password must be letters and digits only: delete the file to get new credentials"
    # Make the role agree with the file (also repairs a rotation drill interrupted half-way).
    set_login "$db_user" "$db_password" || die "could not set up role $db_user"
else
    if [ "$("$PG" psql "$PGDIR" -qAtc "SELECT 1 FROM pg_roles WHERE rolname = '$APP_USER'")" = 1 ]; then
        say "$DB_SECRET is missing: setting a new password on role $APP_USER"
    else
        say "creating login role $APP_USER (member of $APP_GROUP)"
    fi
    db_password=$(random_hex 24)
    set_login "$APP_USER" "$db_password" || die "could not set up role $APP_USER"
fi
# Written when missing, or when the cluster runs on another port than the file says.
secret_json=$(printf '{"engine":"postgres","host":"127.0.0.1","port":%s,"username":"%s","password":"%s","dbname":"flowforge","sslmode":"disable"}' \
    "$PG_PORT" "$db_user" "$db_password")
if [ ! -f "$DB_SECRET" ] || [ "$(cat "$DB_SECRET")" != "$secret_json" ]; then
    say "writing $DB_SECRET (user $db_user)"
    (
        umask 077
        printf '%s\n' "$secret_json" >"$DB_SECRET.tmp"
    )
    mv -f "$DB_SECRET.tmp" "$DB_SECRET"
fi
chmod 600 "$DB_SECRET"
unset db_password secret_json

# --- start --------------------------------------------------------------------------------
rotate() { if [ -f "$1" ]; then mv -f "$1" "$1.1"; fi; }
rotate "$LOGDIR/api.log"
rotate "$LOGDIR/worker.log"

say "starting flowforge-api (log: .local/logs/api.log)"
FLOWFORGE_DB_SECRET="file:$DB_SECRET" \
    FLOWFORGE_API_TOKENS_SECRET="file:$TOKENS" \
    FLOWFORGE_API_ADDR="127.0.0.1:$API_PORT" \
    FLOWFORGE_ADMIN_ADDR="127.0.0.1:$API_ADMIN_PORT" \
    "$API_BIN" </dev/null >>"$LOGDIR/api.log" 2>&1 &
API_PID=$!

say "starting flowforge-scaler local: workers on demand, 0..$MAX_WORKERS (log: .local/logs/worker.log)"
# The workers inherit this environment (database secret, allowed hosts); each gets its own
# admin port from the scaler.
FLOWFORGE_DB_SECRET="file:$DB_SECRET" \
    FLOWFORGE_ADMIN_ADDR="127.0.0.1:$SCALER_ADMIN_PORT" \
    FLOWFORGE_GRPC_ADDR="127.0.0.1:$SCALER_GRPC_PORT" \
    FLOWFORGE_HTTP_ALLOW_HOSTS=127.0.0.1,localhost \
    "$SCALER_BIN" local --queues default --max-workers "$MAX_WORKERS" \
    --worker-bin "$WORKER_BIN" --worker-admin-base-port "$WORKER_ADMIN_PORT" \
    </dev/null >>"$LOGDIR/worker.log" 2>&1 &
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
    kill -0 "$WORKER_PID" 2>/dev/null || fail_with_logs "flowforge-scaler exited during startup"
    [ "$api_ready" -eq 1 ] || { ready "$API_ADMIN_PORT" && api_ready=1; } || true
    [ "$worker_ready" -eq 1 ] || { ready "$SCALER_ADMIN_PORT" && worker_ready=1; } || true
    if [ "$api_ready" -eq 1 ] && [ "$worker_ready" -eq 1 ]; then break; fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        not=()
        [ "$api_ready" -eq 1 ] || not+=("api (http://127.0.0.1:$API_ADMIN_PORT/readyz)")
        [ "$worker_ready" -eq 1 ] || not+=("scaler (http://127.0.0.1:$SCALER_ADMIN_PORT/readyz)")
        fail_with_logs "not ready after ${READY_TIMEOUT}s: ${not[*]}"
    fi
    sleep 0.5
done

# --- Prometheus ---------------------------------------------------------------------------
command -v prometheus >/dev/null 2>&1 || die "prometheus not found: run scripts/install-deps.sh up (or make up)"
mkdir -p "$LOCAL/prometheus"
worker_targets=
for i in $(seq 0 $((MAX_WORKERS - 1))); do
    worker_targets+="${worker_targets:+, }'127.0.0.1:$((WORKER_ADMIN_PORT + i))'"
done
cat >"$LOCAL/prometheus/prometheus.yml" <<EOF
# Written by scripts/up.sh on every start.
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files:
  - $ROOT/alerts/flowforge-rules.yaml
scrape_configs:
  - job_name: flowforge-api
    static_configs: [{targets: ['127.0.0.1:$API_ADMIN_PORT']}]
  - job_name: flowforge-scaler
    static_configs: [{targets: ['127.0.0.1:$SCALER_ADMIN_PORT']}]
  - job_name: flowforge-worker
    static_configs: [{targets: [$worker_targets]}]
EOF
rotate "$LOGDIR/prometheus.log"
say "starting Prometheus on 127.0.0.1:$PROMETHEUS_PORT (log: .local/logs/prometheus.log)"
prometheus --config.file="$LOCAL/prometheus/prometheus.yml" --storage.tsdb.path="$LOCAL/prometheus/data" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" </dev/null >>"$LOGDIR/prometheus.log" 2>&1 &
PROMETHEUS_PID=$!

API="http://127.0.0.1:$API_PORT"
cat <<EOF

FlowForge is up.
  API:         $API
  admin:       http://127.0.0.1:$API_ADMIN_PORT (api), http://127.0.0.1:$SCALER_ADMIN_PORT (scaler): /readyz, /metrics
  workers:     started by flowforge-scaler local when tasks arrive (0..$MAX_WORKERS, admin from port
               $WORKER_ADMIN_PORT up), stopped 30s after the queue is idle; watch them:
               curl -s http://127.0.0.1:$SCALER_ADMIN_PORT/metrics | grep flowforge_local_workers
  database:    127.0.0.1:$PG_PORT/flowforge; the services log in as $db_user (member of $APP_GROUP)
               with FLOWFORGE_DB_SECRET=file:.local/db-secret.json (re-read every second)
               superuser (migrations, psql): postgres, password in .local/pg/password
               psql: scripts/pg.sh psql .local/pg -d flowforge
  API token:   $TOKEN  (FLOWFORGE_API_TOKENS_SECRET=file:.local/tokens.json)
  logs:        .local/logs/api.log, .local/logs/worker.log (scaler and workers), JSON lines
  monitoring:  Prometheus http://127.0.0.1:$PROMETHEUS_PORT with the SLO rules and alerts of
               alerts/flowforge-rules.yaml (e.g. /alerts; query flowforge_slo:burn_rate:rate5m);
               dashboards to import into Grafana: dashboards/*.json (docs/monitoring.md)
  rotation:    scripts/rotate-local.sh db-password | db-user | tokens | status
               (rotates the secrets while everything runs; runbook: docs/runbooks/secret-rotation.md)

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
    say "flowforge-scaler exited (status $rc); stopping everything. Log: .local/logs/worker.log"
fi
exit 1
