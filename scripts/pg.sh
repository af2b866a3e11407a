#!/usr/bin/env bash
# Ephemeral PostgreSQL clusters for FlowForge development, tests and benchmarks.
#
# Usage:
#   scripts/pg.sh start   DIR [PORT]  create (if needed) and start a cluster; prints its URL
#   scripts/pg.sh stop    DIR         fast shutdown (no error if not running)
#   scripts/pg.sh kill    DIR         immediate shutdown (simulates a crash)
#   scripts/pg.sh restart DIR         (stop if running and) start again on the same port; prints URL
#   scripts/pg.sh url     DIR         print the connection URL
#   scripts/pg.sh destroy DIR         immediate shutdown + rm -rf DIR
#   scripts/pg.sh status  DIR         exit 0 if running, 3 if not running
#   scripts/pg.sh psql    DIR [ARGS]  run psql against the cluster (over 127.0.0.1, with the password)
#   scripts/pg.sh tls     DIR CERT_FILE KEY_FILE
#                                     enable TLS on the running cluster: copies the PEM certificate
#                                     (chain) and key into data/ as server.crt/server.key (owner
#                                     only, mode 600), ALTER SYSTEM SET ssl = on, reloads, waits
#                                     until SHOW ssl says on. Kept across restarts (postgresql.auto.conf);
#                                     run again to replace the certificate. Plain connections stay allowed.
#
# The URL (postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres) is always the LAST line on
# stdout; everything else goes to stderr.
#
# Layout of DIR: data/ (the cluster), password, port, log (server log), the server's unix
# socket, .lock. DIR is owned by the `postgres` OS user when run as root (initdb and the
# server run through runuser); otherwise by the calling user, who then runs everything.
#
# New clusters are copied (cp -a) from a template made once by initdb:
#   ${FLOWFORGE_PG_TEMPLATE:-/tmp/flowforge-pg-template-15}   (non-root: ...-15-UID)
# and get their own random password on first start.
#
# Environment:
#   FLOWFORGE_PG_BIN       PostgreSQL bin dir (default /usr/lib/postgresql/15/bin)
#   FLOWFORGE_PG_TEMPLATE  template dir (see above)
#   FLOWFORGE_PG_START_TIMEOUT  seconds to wait for startup (default 120)
set -euo pipefail

PGBIN=${FLOWFORGE_PG_BIN:-/usr/lib/postgresql/15/bin}
START_TIMEOUT=${FLOWFORGE_PG_START_TIMEOUT:-120}
SUPERUSER=postgres

log() { printf 'pg.sh: %s\n' "$*" >&2; }
die() {
    printf 'pg.sh: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
}

if [ "$(id -u)" -eq 0 ]; then
    IS_ROOT=1
    OWNER=postgres
    TEMPLATE=${FLOWFORGE_PG_TEMPLATE:-/tmp/flowforge-pg-template-15}
else
    IS_ROOT=0
    OWNER=$(id -un)
    TEMPLATE=${FLOWFORGE_PG_TEMPLATE:-/tmp/flowforge-pg-template-15-$(id -u)}
fi

# Run a command as the cluster owner. fd 9 (our lock) is closed so that the postmaster,
# which pg_ctl detaches, never inherits it.
as_owner() {
    if [ "$IS_ROOT" -eq 1 ]; then
        runuser -u "$OWNER" -- "$@" 9>&-
    else
        "$@" 9>&-
    fi
}

# Write stdin to FILE (mode 600), owned by the cluster owner, atomically.
write_owned() {
    local file=$1 tmp
    tmp="$file.tmp.$$"
    (umask 077 && cat >"$tmp")
    if [ "$IS_ROOT" -eq 1 ]; then chown "$OWNER:" "$tmp"; fi
    mv -f "$tmp" "$file"
}

check_bins() {
    local b
    for b in initdb pg_ctl postgres psql; do
        [ -x "$PGBIN/$b" ] || die "$PGBIN/$b not found (install postgresql-15: scripts/install-deps.sh test, or set FLOWFORGE_PG_BIN)"
    done
    if [ "$IS_ROOT" -eq 1 ]; then
        id -u "$OWNER" >/dev/null 2>&1 || die "OS user '$OWNER' does not exist (install postgresql-15)"
    fi
}

random_hex() { # $1 = number of bytes
    od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

# Is something listening on / bound to 127.0.0.1:PORT?
port_busy() {
    local port=$1
    if command -v python3 >/dev/null 2>&1; then
        if python3 - "$port" <<'EOF' 2>/dev/null; then return 1; else return 0; fi
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
EOF
    else
        (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null
    fi
}

free_port() {
    local p i
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
        return
    fi
    for i in $(seq 1 200); do
        p=$((20000 + (RANDOM * 32768 + RANDOM + i) % 40000))
        if ! port_busy "$p"; then
            echo "$p"
            return
        fi
    done
    die "could not find a free port"
}

# ---------------------------------------------------------------------------------------
# Template: initdb once, into a temp dir, renamed into place when complete. A flock makes
# racing processes wait for the one doing initdb instead of running initdb twice; the
# rename makes a crash mid-initdb harmless.
template_ok() {
    [ -f "$TEMPLATE/.ready" ] && [ -f "$TEMPLATE/password" ] &&
        [ -f "$TEMPLATE/data/PG_VERSION" ] && [ -f "$TEMPLATE/data/global/pg_control" ]
}

ensure_template() {
    template_ok && return 0
    local parent tmp pwfile t0
    parent=$(dirname "$TEMPLATE")
    mkdir -p "$parent"
    (
        exec 8>>"$TEMPLATE.lock"
        flock 8
        template_ok && exit 0
        # Leftovers of a builder that died (all builders hold the lock, so none is running).
        rm -rf "$TEMPLATE".tmp.*
        if [ -e "$TEMPLATE" ]; then
            # Incomplete or damaged (e.g. partly cleaned /tmp): move it away, then remove it.
            log "replacing damaged template $TEMPLATE"
            mv -T "$TEMPLATE" "$TEMPLATE.tmp.old$$"
            rm -rf "$TEMPLATE.tmp.old$$"
        fi
        t0=$(date +%s.%N)
        tmp=$(mktemp -d "$TEMPLATE.tmp.XXXXXX")
        chmod 755 "$tmp"
        if [ "$IS_ROOT" -eq 1 ]; then chown "$OWNER:" "$tmp"; fi
        pwfile="$tmp/password"
        random_hex 16 | write_owned "$pwfile"
        log "creating cluster template $TEMPLATE (initdb, one time)"
        (cd / && as_owner "$PGBIN/initdb" -D "$tmp/data" -U "$SUPERUSER" --pwfile="$pwfile" \
            --auth-local=scram-sha-256 --auth-host=scram-sha-256 \
            --encoding=UTF8 --locale=C --no-instructions 8>&-) >"$tmp/initdb.log" 2>&1 || {
            cat "$tmp/initdb.log" >&2
            rm -rf "$tmp"
            die "initdb failed"
        }
        touch "$tmp/.ready"
        mv -T "$tmp" "$TEMPLATE"
        log "template ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1fs", b-a}')"
    ) 9>&-
    template_ok || die "template $TEMPLATE was not created"
}

# ---------------------------------------------------------------------------------------
# Per-DIR state
setup_dir() {
    local arg=$1
    [ -n "$arg" ] || usage
    mkdir -p "$arg"
    DIR=$(cd "$arg" && pwd -P)
    DATA="$DIR/data"
    if [ "$IS_ROOT" -eq 1 ]; then
        if [ "$(stat -c %U "$DIR")" != "$OWNER" ]; then
            chown "$OWNER:" "$DIR"
        fi
        chmod 700 "$DIR"
        # A parent made by mktemp -d (mode 700, root) is not traversable by postgres:
        # grant traversal (o+x, not listing) on the immediate parent only.
        local parent
        parent=$(dirname "$DIR")
        if ! (cd / && as_owner test -x "$parent"); then
            log "chmod o+x $parent (so that '$OWNER' can reach $DIR)"
            chmod o+x "$parent"
        fi
        (cd / && as_owner test -w "$DIR" -a -x "$DIR") ||
            die "user '$OWNER' cannot use $DIR: make every parent directory traversable (chmod o+x), e.g. use the mktemp dir itself as DIR"
    else
        [ -O "$DIR" ] || die "$DIR must be owned by $(id -un)"
        chmod 700 "$DIR"
    fi
    # The unix socket path is limited to 107 bytes: fall back to a short dir in /tmp.
    if [ "${#DIR}" -le 90 ]; then
        SOCKDIR=$DIR
    else
        SOCKDIR="/tmp/ffpg-$(printf '%s' "$DIR" | cksum | cut -d' ' -f1)"
    fi
}

lock_dir() {
    exec 9>>"$DIR/.lock"
    flock 9
}

has_cluster() { [ -f "$DATA/PG_VERSION" ]; }

is_running() {
    has_cluster || return 1
    (cd / && as_owner "$PGBIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1)
}

url() {
    [ -f "$DIR/password" ] && [ -f "$DIR/port" ] || die "no cluster started in $DIR yet"
    printf 'postgres://%s:%s@127.0.0.1:%s/postgres\n' "$SUPERUSER" "$(cat "$DIR/password")" "$(cat "$DIR/port")"
}

create_cluster() {
    ensure_template
    log "creating cluster in $DIR (copy of template)"
    rm -rf "$DIR/data.new"
    cp -a "$TEMPLATE/data" "$DIR/data.new"
    # Host connections: 127.0.0.1 only, scram-sha-256. Local socket: scram-sha-256 too
    # (pg.sh uses it once, with the template password, to set this cluster's password).
    write_owned "$DIR/data.new/pg_hba.conf" <<'EOF'
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 scram-sha-256
host    all       all   127.0.0.1/32  scram-sha-256
EOF
    printf "\n# FlowForge (scripts/pg.sh) settings, rewritten at every start\ninclude = 'flowforge.conf'\n" |
        as_owner tee -a "$DIR/data.new/postgresql.conf" >/dev/null
    # Until the first start sets a cluster password, the template password is valid.
    write_owned "$DIR/password.template" <"$TEMPLATE/password"
    rm -f "$DIR/password"
    mv -T "$DIR/data.new" "$DATA"
}

write_conf() {
    local port=$1
    write_owned "$DATA/flowforge.conf" <<EOF
# Written by scripts/pg.sh at every start; edits are lost.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$SOCKDIR'
unix_socket_permissions = 0700
max_connections = 300
shared_buffers = 512MB
max_wal_size = 4GB
checkpoint_timeout = 15min
# durability stays on
fsync = on
synchronous_commit = on
full_page_writes = on
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
EOF
}

# Try to start the server on PORT. Returns 0 on success, 10 if the port was taken, 1 otherwise.
try_start() {
    local port=$1 logsize=0 rc=0
    write_conf "$port"
    [ -f "$DIR/log" ] && logsize=$(stat -c %s "$DIR/log")
    if [ "$SOCKDIR" != "$DIR" ]; then
        mkdir -p "$SOCKDIR"
        if [ "$IS_ROOT" -eq 1 ]; then chown "$OWNER:" "$SOCKDIR"; fi
        chmod 700 "$SOCKDIR"
    fi
    (cd / && as_owner "$PGBIN/pg_ctl" start -D "$DATA" -l "$DIR/log" -w -t "$START_TIMEOUT" -s) >&2 || rc=$?
    if [ "$rc" -ne 0 ]; then
        if tail -c +"$((logsize + 1))" "$DIR/log" 2>/dev/null | grep -q -E 'could not bind|Address already in use|could not create any TCP/IP sockets'; then
            return 10
        fi
        log "server failed to start; tail of $DIR/log:"
        tail -c +"$((logsize + 1))" "$DIR/log" 2>/dev/null | tail -n 30 >&2 || true
        return 1
    fi
    return 0
}

# Replace the template password by this cluster's own random one (first start only).
set_password() {
    [ -f "$DIR/password" ] && return 0
    [ -f "$DIR/password.template" ] || die "$DIR/password is missing"
    local pw tpw port
    pw=$(random_hex 16)
    tpw=$(cat "$DIR/password.template")
    port=$(cat "$DIR/port")
    printf "ALTER ROLE %s PASSWORD '%s';\n" "$SUPERUSER" "$pw" |
        (cd / && as_owner env PGPASSWORD="$tpw" PGCONNECT_TIMEOUT=10 "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 \
            -h "$SOCKDIR" -p "$port" -U "$SUPERUSER" -d postgres -f -) >&2 ||
        die "could not set the cluster password"
    printf '%s\n' "$pw" | write_owned "$DIR/password"
    rm -f "$DIR/password.template"
}

start() {
    local want_port=${1:-} port rc attempt
    if is_running; then
        [ -f "$DIR/port" ] || die "a server is running on $DATA but $DIR/port is missing"
        if [ -n "$want_port" ] && [ "$want_port" != "$(cat "$DIR/port")" ]; then
            log "already running on port $(cat "$DIR/port") (not $want_port)"
        fi
        set_password
        url
        return 0
    fi
    check_bins
    has_cluster || create_cluster
    local auto=0
    if [ -n "$want_port" ]; then
        port=$want_port
    elif [ -f "$DIR/port" ] && ! port_busy "$(cat "$DIR/port")"; then
        port=$(cat "$DIR/port")
    else
        port=$(free_port)
        auto=1
    fi
    for attempt in 1 2 3 4 5; do
        rc=0
        try_start "$port" || rc=$?
        if [ "$rc" -eq 0 ]; then break; fi
        if [ "$rc" -eq 10 ] && [ "$auto" -eq 1 ] && [ "$attempt" -lt 5 ]; then
            log "port $port was taken, retrying with another one"
            port=$(free_port)
            continue
        fi
        [ "$rc" -eq 10 ] && die "port $port is already in use"
        die "could not start the server in $DIR"
    done
    printf '%s\n' "$port" | write_owned "$DIR/port"
    # readable by whoever can enter DIR (the password file stays 600)
    chmod 644 "$DIR/port"
    set_password
    log "running on 127.0.0.1:$port (data $DATA, log $DIR/log)"
    url
}

# psql as the superuser over 127.0.0.1 with the cluster password (no .psqlrc).
cluster_psql() {
    [ -f "$DIR/password" ] && [ -f "$DIR/port" ] || die "no cluster started in $DIR yet"
    PGPASSWORD=$(cat "$DIR/password") PGPORT=$(cat "$DIR/port") PGHOST=127.0.0.1 \
        PGUSER=$SUPERUSER PGDATABASE=${PGDATABASE:-postgres} PGCONNECT_TIMEOUT=10 "$PGBIN/psql" -X "$@"
}

enable_tls() { # $1 = certificate PEM file, $2 = key PEM file
    local cert=$1 key=$2 state='' logsize=0 had=0
    grep -q -- '-----BEGIN CERTIFICATE-----' "$cert" 2>/dev/null || die "$cert is not a readable PEM certificate"
    grep -q -- '-----BEGIN .*PRIVATE KEY-----' "$key" 2>/dev/null || die "$key is not a readable PEM private key"
    has_cluster || die "no cluster in $DIR"
    is_running || die "the cluster in $DIR is not running (start it first)"
    [ -f "$DIR/log" ] && logsize=$(stat -c %s "$DIR/log")
    # Keep the files in use so that a certificate the server refuses can be rolled back
    # (with ssl = on, a bad key would also stop the next start).
    if [ -f "$DATA/server.crt" ] && [ -f "$DATA/server.key" ]; then
        had=1
        cp -p "$DATA/server.crt" "$DATA/server.crt.prev"
        cp -p "$DATA/server.key" "$DATA/server.key.prev"
    fi
    # The server refuses a key file that the group or others can read: write_owned makes
    # both files mode 600, owned by the cluster owner.
    write_owned "$DATA/server.crt" <"$cert"
    write_owned "$DATA/server.key" <"$key"
    cluster_psql -q -v ON_ERROR_STOP=1 -f - >/dev/null <<'EOF' || die "could not enable TLS (see $DIR/log)"
ALTER SYSTEM SET ssl_cert_file = 'server.crt';
ALTER SYSTEM SET ssl_key_file = 'server.key';
ALTER SYSTEM SET ssl = on;
SELECT pg_reload_conf();
EOF
    # The postmaster reloads asynchronously. Once a new session sees ssl = on it has also
    # tried to load the certificate and key, and logged why if that failed (ssl then still
    # says on, but TLS stays off, or on with the previous certificate).
    for _ in $(seq 1 100); do
        state=$(cluster_psql -At -c 'SHOW ssl' 2>/dev/null) || state=''
        [ "$state" = on ] && break
        sleep 0.1
    done
    if [ "$state" = on ] && ! tail -c +"$((logsize + 1))" "$DIR/log" 2>/dev/null | grep -q 'SSL configuration was not reloaded'; then
        state=$(PGSSLMODE=require cluster_psql -At -c 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()' 2>/dev/null) || state=''
        if [ "$state" = t ]; then
            rm -f "$DATA/server.crt.prev" "$DATA/server.key.prev"
            log "TLS enabled on 127.0.0.1:$(cat "$DIR/port")"
            return 0
        fi
    fi
    log "the server did not take the certificate; tail of $DIR/log:"
    tail -c +"$((logsize + 1))" "$DIR/log" 2>/dev/null | tail -n 20 >&2 || true
    if [ "$had" -eq 1 ]; then
        log "rolling back to the previous certificate"
        mv -f "$DATA/server.crt.prev" "$DATA/server.crt"
        mv -f "$DATA/server.key.prev" "$DATA/server.key"
        cluster_psql -q -c 'SELECT pg_reload_conf()' >/dev/null || true
    else
        log "turning ssl off again"
        rm -f "$DATA/server.crt" "$DATA/server.key"
        cluster_psql -q -v ON_ERROR_STOP=1 -f - >/dev/null <<'EOF' || true
ALTER SYSTEM RESET ssl;
ALTER SYSTEM RESET ssl_cert_file;
ALTER SYSTEM RESET ssl_key_file;
SELECT pg_reload_conf();
EOF
    fi
    die "could not enable TLS in $DIR"
}

stop_mode() { # $1 = fast|immediate
    if ! has_cluster; then return 0; fi
    if ! is_running; then
        return 0
    fi
    log "stopping $DIR ($1)"
    (cd / && as_owner "$PGBIN/pg_ctl" stop -D "$DATA" -m "$1" -w -t 120 -s) >&2 || {
        is_running && die "could not stop the server in $DIR"
    }
    return 0
}

main() {
    [ $# -ge 1 ] || usage
    local cmd=$1
    shift
    case "$cmd" in
    start)
        [ $# -ge 1 ] && [ $# -le 2 ] || usage
        if [ -n "${2:-}" ] && ! [[ $2 =~ ^[0-9]+$ ]]; then die "PORT must be a number"; fi
        setup_dir "$1"
        lock_dir
        start "${2:-}"
        ;;
    stop | kill)
        [ $# -eq 1 ] || usage
        [ -d "$1" ] || return 0
        setup_dir "$1"
        lock_dir
        if [ "$cmd" = stop ]; then stop_mode fast; else stop_mode immediate; fi
        ;;
    restart)
        [ $# -eq 1 ] || usage
        setup_dir "$1"
        lock_dir
        has_cluster || die "no cluster in $DIR"
        [ -f "$DIR/port" ] || die "$DIR/port is missing"
        stop_mode fast
        start "$(cat "$DIR/port")"
        ;;
    url)
        [ $# -eq 1 ] || usage
        [ -d "$1" ] || die "$1 does not exist"
        DIR=$(cd "$1" && pwd -P)
        url
        ;;
    status)
        [ $# -eq 1 ] || usage
        [ -d "$1" ] || exit 3
        setup_dir "$1"
        if is_running; then exit 0; else exit 3; fi
        ;;
    psql)
        [ $# -ge 1 ] || usage
        local d=$1
        shift
        [ -d "$d" ] || die "$d does not exist"
        DIR=$(cd "$d" && pwd -P)
        [ -f "$DIR/password" ] && [ -f "$DIR/port" ] || die "no cluster started in $DIR yet"
        PGPASSWORD=$(cat "$DIR/password")
        PGPORT=$(cat "$DIR/port")
        export PGPASSWORD PGPORT PGHOST=127.0.0.1 PGUSER=$SUPERUSER PGDATABASE=${PGDATABASE:-postgres}
        exec "$PGBIN/psql" -X "$@"
        ;;
    tls)
        [ $# -eq 3 ] || usage
        [ -d "$1" ] || die "$1 does not exist"
        setup_dir "$1"
        lock_dir
        enable_tls "$2" "$3"
        ;;
    destroy)
        [ $# -eq 1 ] || usage
        [ -e "$1" ] || return 0
        setup_dir "$1"
        lock_dir
        stop_mode immediate
        log "removing $DIR"
        rm -rf "$DIR"
        if [ "$SOCKDIR" != "$DIR" ]; then rm -rf "$SOCKDIR"; fi
        ;;
    -h | --help | help) usage ;;
    *) usage ;;
    esac
}

main "$@"
