#!/usr/bin/env bash
# Secret-rotation drill against a running `make up` (scripts/up.sh): rotates the secrets the
# services read from .local/ the way AWS Secrets Manager rotations do, then waits (bounded)
# and reports how flowforge-api and flowforge-scaler (which runs the workers) took it: versions in use, credential
# swaps and recoveries, 5xx answered meanwhile, what they logged, database sessions per user.
# Runbook: docs/runbooks/secret-rotation.md.
#
# Usage:
#   scripts/rotate-local.sh db-password  single user: new random password for the login role named
#                                        in .local/db-secret.json (ALTER ROLE), its sessions cut
#                                        (pg_terminate_backend), then the file rewritten (temp file
#                                        + mv). Until the file changes the services hold a password
#                                        the database refuses: they recover through the
#                                        refused-credentials path.
#   scripts/rotate-local.sh db-user      alternating users: switch between flowforge_app_user and
#                                        flowforge_app_user_clone (created if missing, member of
#                                        flowforge_app): new password on the user that becomes
#                                        current, file rewritten with it. The previous user keeps
#                                        working; its sessions retire as they are released.
#   scripts/rotate-local.sh tokens       new random API token: .local/tokens.json becomes
#                                        {"tokens":[NEW]}; prints NEW on stdout. The former token
#                                        stays valid for FLOWFORGE_API_TOKEN_GRACE (default 1h);
#                                        the one before it is refused at once.
#   scripts/rotate-local.sh status       versions in use and refresh counters (both /metrics),
#                                        database sessions per user
#
# Exit status: 0 when both services took the new version within the wait, 1 otherwise.
#
# Environment (all optional; the same ports as scripts/up.sh):
#   FLOWFORGE_UP_API_PORT           API port                               (default 8080)
#   FLOWFORGE_UP_API_ADMIN_PORT     API admin port                         (default 9080)
#   FLOWFORGE_UP_SCALER_ADMIN_PORT  scaler admin port                      (default 9090)
#   FLOWFORGE_ROTATE_WAIT           seconds to wait for the services       (default 15)
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
CLONE_USER=${APP_USER}_clone

API_PORT=${FLOWFORGE_UP_API_PORT:-8080}
API_ADMIN_PORT=${FLOWFORGE_UP_API_ADMIN_PORT:-9080}
SCALER_ADMIN_PORT=${FLOWFORGE_UP_SCALER_ADMIN_PORT:-9090}
WAIT=${FLOWFORGE_ROTATE_WAIT:-15}
[[ $WAIT =~ ^[0-9]+$ ]] || WAIT=15

say() { printf 'rotate: %s\n' "$*" >&2; }
die() {
    printf 'rotate: error: %s\n' "$*" >&2
    exit 1
}
usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
}

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# psql as the superuser on database flowforge; SQL on stdin (passwords never on a command line).
sql() { "$PG" psql "$PGDIR" -d flowforge -qAt -v ON_ERROR_STOP=1 -f - "$@"; }

# Field FIELD of the JSON object in FILE (empty if absent).
json_field() { # file field
    python3 -c 'import json, sys
v = json.load(open(sys.argv[1])).get(sys.argv[2])
print("" if v is None else v)' "$1" "$2"
}

# Replace FILE atomically: stdin goes to a temp file (mode 600) in the same directory, then mv.
replace_file() { # file
    (
        umask 077
        cat >"$1.tmp.$$"
    )
    mv -f "$1.tmp.$$" "$1"
}

# DB secret with username USER and the password read from stdin, written to FILE (mode 600);
# the other fields (host, port, dbname, sslmode, ...) are kept.
write_db_secret() { # user file
    (
        umask 077
        python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
d["username"] = sys.argv[2]
d["password"] = sys.stdin.readline().strip()
with open(sys.argv[3], "w") as f:
    f.write(json.dumps(d, separators=(",", ":")) + "\n")' "$DB_SECRET" "$1" "$2"
    )
}

# --- metrics ----------------------------------------------------------------------------------
SERVICES=(api scaler)
admin_port() { if [ "$1" = api ]; then echo "$API_ADMIN_PORT"; else echo "$SCALER_ADMIN_PORT"; fi; }
metrics() { curl -fsS --max-time 2 "http://127.0.0.1:$(admin_port "$1")/metrics" 2>/dev/null; }

# Sum of the samples of metric NAME whose line contains FILTER (e.g. 'secret="db"').
metric() { # text name [filter]
    awk -v n="$2" -v f="${3:-}" '
        (index($0, n "{") == 1 || index($0, n " ") == 1) && (f == "" || index($0, f)) { s += $NF }
        END { printf "%.0f\n", s }' <<<"$1"
}

# Samples of metric NAME containing FILTER, as LABEL=value pairs ("-" when none).
by_label() { # text name filter label
    awk -v n="$2{" -v f="$3" -v l="$4=\"" '
        index($0, n) == 1 && index($0, f) && (i = index($0, l)) {
            r = substr($0, i + length(l)); r = substr(r, 1, index(r, "\"") - 1)
            printf "%s%s=%.0f", sep, r, $NF; sep = " "
        }
        END { if (sep == "") printf "-"; print "" }' <<<"$1"
}

# Version label of the version of SECRET in use (flowforge_secret_version_info ... 1).
in_use() { # text secret
    awk -v f="secret=\"$2\"" '
        index($0, "flowforge_secret_version_info{") == 1 && index($0, f) && $NF + 0 == 1 &&
            (i = index($0, "version=\"")) {
            v = substr($0, i + 9); v = substr(v, 1, index(v, "\"") - 1)
        }
        END { print v }' <<<"$1"
}

# Counters compared before/after a rotation, per service: KEY|METRIC|FILTER|SHOWN FOR
# (db: database rotations, api_tokens: token rotations, api: any rotation, API only).
COUNTERS=(
    "swaps|flowforge_db_credential_swaps_total||db"
    "auth_failures|flowforge_db_auth_failures_total||db"
    "recovered|flowforge_db_credential_recoveries_total|result=\"recovered\"|db"
    "no_working_credentials|flowforge_db_credential_recoveries_total|result=\"no_working_credentials\"|db"
    "store_failed|flowforge_db_credential_recoveries_total|result=\"store_failed\"|db"
    "statement_retries|flowforge_db_statement_retries_total||db"
    "auth_current|flowforge_auth_total|result=\"current\"|api_tokens"
    "auth_previous|flowforge_auth_total|result=\"previous\"|api_tokens"
    "auth_rejected|flowforge_auth_total|result=\"rejected\"|api_tokens"
    "http_5xx|flowforge_http_requests_total|status=\"5|api"
)
declare -A BEFORE=() LOGSIZE=()

snapshot() { # secret: records versions, counters and log sizes of every service
    local svc m spec key name filter
    for svc in "${SERVICES[@]}"; do
        m=$(metrics "$svc") ||
            die "flowforge-$svc does not answer on 127.0.0.1:$(admin_port "$svc")/metrics: is \`make up\` running (with the same FLOWFORGE_UP_* ports)?"
        BEFORE[$svc.version]=$(in_use "$m" "$1")
        for spec in "${COUNTERS[@]}"; do
            IFS='|' read -r key name filter _ <<<"$spec"
            BEFORE[$svc.$key]=$(metric "$m" "$name" "$filter")
        done
        LOGSIZE[$svc]=$(stat -c %s "$LOGDIR/$svc.log" 2>/dev/null || echo 0)
    done
}

# Secret-related log lines a service wrote since the snapshot (values never appear in logs).
new_logs() { # service
    tail -c +"$((${LOGSIZE[$1]:-0} + 1))" "$LOGDIR/$1.log" 2>/dev/null | python3 -c '
import json, sys
keys = ("secret", "version", "replaced", "username", "stage", "error", "reason")
for line in sys.stdin:
    try:
        e = json.loads(line)
    except ValueError:
        continue
    msg = str(e.get("message", ""))
    level = str(e.get("level", ""))
    if level in ("WARN", "ERROR") or any(w in msg for w in ("secret", "credentials", "LISTEN")):
        extra = " ".join("%s=%s" % (k, e[k]) for k in keys if k in e)
        print("      %-5s %s%s" % (level, msg, "  (" + extra + ")" if extra else ""))
' || true
}

# Waits (up to $WAIT s) until every service in $@ reports another version of SECRET than in
# the snapshot, then reports. Returns 1 if one did not.
await_version() { # secret service...
    local secret=$1 svc m v start now deadline all
    shift
    declare -A took=()
    start=$(date +%s.%N)
    deadline=$(($(date +%s) + WAIT))
    while :; do
        all=1
        for svc in "$@"; do
            [ -z "${took[$svc]:-}" ] || continue
            m=$(metrics "$svc") || m=
            v=$(in_use "$m" "$secret")
            if [ -n "$v" ] && [ "$v" != "${BEFORE[$svc.version]}" ]; then
                now=$(date +%s.%N)
                took[$svc]=$(awk -v a="$start" -v b="$now" 'BEGIN { printf "%.1fs", b - a }')
            else
                all=0
            fi
        done
        [ "$all" -eq 0 ] || break
        [ "$(date +%s)" -lt "$deadline" ] || break
        sleep 0.2
    done
    # Let the pools settle (retired connections released, LISTEN reopened) before reporting.
    sleep 1
    local rc=0 spec key name filter scope delta deltas
    for svc in "$@"; do
        m=$(metrics "$svc") || m=
        if [ -n "${took[$svc]:-}" ]; then
            say "flowforge-$svc: $secret version $(in_use "$m" "$secret") in use after ${took[$svc]} (was ${BEFORE[$svc.version]:-a version not reported in /metrics})"
        else
            say "flowforge-$svc: no new $secret version reported after ${WAIT}s: see .local/logs/$svc.log"
            rc=1
        fi
        deltas=
        for spec in "${COUNTERS[@]}"; do
            IFS='|' read -r key name filter scope <<<"$spec"
            if [ "$scope" = api ]; then
                [ "$svc" = api ] || continue
            elif [ "$scope" != "$secret" ]; then
                continue
            fi
            delta=$(($(metric "$m" "$name" "$filter") - ${BEFORE[$svc.$key]:-0}))
            deltas+=" $key=+$delta"
        done
        say "    counters:$deltas"
        say "    refresh $secret: $(by_label "$m" flowforge_secret_refresh_total "secret=\"$secret\"" result)"
        if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$(admin_port "$svc")/readyz" 2>/dev/null; then
            say "    /readyz: ready"
        else
            say "    /readyz: NOT ready"
            rc=1
        fi
        say "    log:"
        new_logs "$svc" >&2
    done
    return "$rc"
}

sessions() {
    say "database sessions on flowforge per user:"
    sql -F $'\t' <<'EOF' | awk -F '\t' '{ printf "      %-28s %-22s %3s sessions, newest started %s\n", $1, $2, $3, $4 }' >&2
SELECT usename, application_name, count(*), to_char(max(backend_start), 'HH24:MI:SS.MS')
FROM pg_stat_activity
WHERE datname = 'flowforge' AND backend_type = 'client backend' AND usename <> 'postgres'
GROUP BY 1, 2 ORDER BY 1, 2;
EOF
}

# Waits (up to $WAIT s) until USER has no sessions left.
await_no_sessions() { # user
    local deadline n
    deadline=$(($(date +%s) + WAIT))
    while :; do
        n=$(sql -v u="$1" <<<"SELECT count(*) FROM pg_stat_activity WHERE usename = :'u';")
        if [ "$n" -eq 0 ]; then
            say "no session of $1 left"
            return 0
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            say "$n session(s) of $1 still open after ${WAIT}s: idle pooled connections retire when next used, at the latest after the pool's 30 min max lifetime"
            return 0
        fi
        sleep 0.5
    done
}

# --- preconditions ------------------------------------------------------------------------------
need_db_secret() {
    [ -f "$DB_SECRET" ] || die "$DB_SECRET not found: start the system with \`make up\` first"
    "$PG" status "$PGDIR" 2>/dev/null || die "PostgreSQL in $PGDIR is not running: start the system with \`make up\` first"
    CUR_USER=$(json_field "$DB_SECRET" username) || die "$DB_SECRET is not a JSON object"
    [[ $CUR_USER =~ ^[a-z_][a-z0-9_]*$ ]] || die "$DB_SECRET: unexpected username '$CUR_USER'"
}

# Create login role USER (member of the group) if missing; set its password (read from stdin).
set_login() { # user
    local pw
    IFS= read -r pw
    [[ $pw =~ ^[A-Za-z0-9]+$ ]] || die "internal: unexpected password format"
    sql -v u="$1" <<EOF >/dev/null
SET client_min_messages = warning;
SELECT format('CREATE ROLE %I LOGIN', :'u') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'u') \gexec
ALTER ROLE :"u" WITH LOGIN PASSWORD '$pw';
GRANT $APP_GROUP TO :"u";
EOF
}

# --- subcommands --------------------------------------------------------------------------------
rotate_db_password() {
    need_db_secret
    snapshot db
    local pw tmp cut
    pw=$(random_hex 24)
    # The new file is ready before the password changes, so that the gap is as short as the
    # two steps themselves.
    tmp="$DB_SECRET.tmp.$$"
    printf '%s\n' "$pw" | write_db_secret "$CUR_USER" "$tmp"
    say "ALTER ROLE $CUR_USER PASSWORD (new random one); cutting its sessions"
    cut=$(sql -v u="$CUR_USER" <<EOF
ALTER ROLE :"u" WITH PASSWORD '$pw';
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = :'u';
EOF
    ) || {
        rm -f "$tmp"
        die "could not change the password of $CUR_USER (nothing else changed)"
    }
    mv -f "$tmp" "$DB_SECRET"
    say "terminated $cut session(s) of $CUR_USER; rewrote $DB_SECRET"
    local rc=0
    await_version db "${SERVICES[@]}" || rc=1
    sessions
    return "$rc"
}

rotate_db_user() {
    need_db_secret
    local next pw
    case "$CUR_USER" in
    "$APP_USER") next=$CLONE_USER ;;
    "$CLONE_USER") next=$APP_USER ;;
    *) die "$DB_SECRET names user '$CUR_USER'; alternating works between $APP_USER and $CLONE_USER" ;;
    esac
    snapshot db
    pw=$(random_hex 24)
    say "$next: created if missing (member of $APP_GROUP), new random password"
    printf '%s\n' "$pw" | set_login "$next" || die "could not set up role $next (nothing else changed)"
    printf '%s\n' "$pw" | write_db_secret "$next" "$DB_SECRET.tmp.$$"
    mv -f "$DB_SECRET.tmp.$$" "$DB_SECRET"
    say "rewrote $DB_SECRET: user $CUR_USER -> $next ($CUR_USER keeps its password and keeps working)"
    local rc=0
    await_version db "${SERVICES[@]}" || rc=1
    await_no_sessions "$CUR_USER"
    sessions
    return "$rc"
}

rotate_tokens() {
    [ -f "$TOKENS" ] || die "$TOKENS not found: start the system with \`make up\` first"
    local old new code_new code_old m rc=0
    old=$(python3 -c 'import json, sys; print((json.load(open(sys.argv[1])).get("tokens") or [""])[0])' "$TOKENS") ||
        die "$TOKENS is not a JSON object"
    SERVICES=(api)
    snapshot api_tokens
    new=$(random_hex 32)
    printf '{"tokens":["%s"]}\n' "$new" | replace_file "$TOKENS"
    say "rewrote $TOKENS with one new token"
    await_version api_tokens api || rc=1
    code_new=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $new" \
        "http://127.0.0.1:$API_PORT/v1/queues" 2>/dev/null) || code_new=000
    code_old=000
    if [ -n "$old" ]; then
        code_old=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $old" \
            "http://127.0.0.1:$API_PORT/v1/queues" 2>/dev/null) || code_old=000
    fi
    say "GET /v1/queues with the new token: $code_new (expected 200); with the former one: $code_old (expected 200 until the grace ends, default 1h)"
    [ "$code_new" = 200 ] || rc=1
    m=$(metrics api) || m=
    say "flowforge_auth_total since start: $(by_label "$m" flowforge_auth_total '' result) (clients still on the former token count as previous)"
    say "new token (also in .local/tokens.json; any token older than the former one is refused now):"
    printf '%s\n' "$new"
    return "$rc"
}

status() {
    local svc m port secrets s last now
    now=$(date +%s)
    for svc in api scaler; do
        port=$(admin_port "$svc")
        if ! m=$(metrics "$svc"); then
            say "flowforge-$svc (127.0.0.1:$port): not answering"
            continue
        fi
        if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/readyz" 2>/dev/null; then
            say "flowforge-$svc (127.0.0.1:$port): ready"
        else
            say "flowforge-$svc (127.0.0.1:$port): NOT ready"
        fi
        secrets=(db)
        [ "$svc" = scaler ] || secrets+=(api_tokens)
        for s in "${secrets[@]}"; do
            last=$(metric "$m" flowforge_secret_last_success_timestamp_seconds "secret=\"$s\"")
            if [ "$last" -gt 0 ]; then last="$((now - last))s ago"; else last=never; fi
            say "    $s: version $(in_use "$m" "$s" | grep . || echo '(not reported)'), loaded=$(metric "$m" flowforge_secret_loaded "secret=\"$s\"") failing=$(metric "$m" flowforge_secret_refresh_failing "secret=\"$s\""), last successful refresh: $last"
            say "        refresh: $(by_label "$m" flowforge_secret_refresh_total "secret=\"$s\"" result)"
        done
        say "    db: swaps=$(metric "$m" flowforge_db_credential_swaps_total) auth_failures=$(metric "$m" flowforge_db_auth_failures_total) statement_retries=$(metric "$m" flowforge_db_statement_retries_total) recoveries: $(by_label "$m" flowforge_db_credential_recoveries_total '' result)"
        [ "$svc" = scaler ] || say "    auth: $(by_label "$m" flowforge_auth_total '' result)"
    done
    if [ -f "$DB_SECRET" ]; then
        say "$DB_SECRET: user $(json_field "$DB_SECRET" username), written $(date -r "$DB_SECRET" '+%F %T')"
    fi
    if [ -f "$TOKENS" ]; then
        say "$TOKENS: written $(date -r "$TOKENS" '+%F %T')"
    fi
    if "$PG" status "$PGDIR" 2>/dev/null; then
        sessions
    else
        say "PostgreSQL in $PGDIR is not running"
    fi
}

[ $# -eq 1 ] || usage
command -v curl >/dev/null 2>&1 || die "curl not found (scripts/install-deps.sh up)"
command -v python3 >/dev/null 2>&1 || die "python3 not found (scripts/install-deps.sh up)"
case "$1" in
db-password) rotate_db_password ;;
db-user) rotate_db_user ;;
tokens) rotate_tokens ;;
status) status ;;
-h | --help | help) usage ;;
*) usage ;;
esac
