#!/usr/bin/env bash
# Checks the Kubernetes manifests, the container build files and docker-compose.yml, offline,
# in well under two minutes. Every step runs (a failure does not stop the others); the exit
# status is 1 if any failed.
#
#   1. kustomize   `kubectl kustomize` builds every base and every overlay (k8s/)
#   2. schemas     kubernetes-validate --strict on the built-in kinds (Kubernetes $K8S_VERSION);
#                  the custom kinds (KEDA, Prometheus Operator, cert-manager) against their CRD
#                  models (k8s/tests/manifests.py)
#   3. policies    k8s/tests/test_policies.py on the rendered overlays (limits, images, service
#                  accounts, pod security, probes, ports, network policies, ingress, monitoring)
#   4. checkov     on the rendered overlays and the Dockerfile(s) at the repository root: no
#                  failed check; a skip must carry its reason inline
#                  (`checkov.io/skipN: CKV_..=reason`, `# checkov:skip=CKV_...:reason`)
#   5. hadolint    on the Dockerfile(s) at the repository root, if there are any
#   6. yamllint    k8s/ (k8s/.yamllint), alerts/ (generated PromQL: long lines allowed),
#                  docker-compose.yml and compose/*.yml
#   7. compose     compose/tests/test_compose.py: docker-compose.yml against the Compose
#                  Specification's JSON schema and against `make up` (services, ports, database
#                  roles, pinned images, health checks, watch paths), the Dockerfile's compile and
#                  binaries stages, .dockerignore at any depth
#   8. shellcheck  compose/*.sh (the scripts compose runs in the postgres image)
#
# Usage: scripts/check-manifests.sh
# Tools: `scripts/install-deps.sh test` puts them into
# ${FLOWFORGE_TOOLS_DIR:-$HOME/.cache/flowforge}/{manifest,checkov}-venv and the Compose schema
# into .../compose-schema/; kubectl comes from PATH (or that venv). FLOWFORGE_CHECK_KEEP=1 keeps
# the rendered manifests and says where.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
TOOLS_DIR=${FLOWFORGE_TOOLS_DIR:-$HOME/.cache/flowforge}
MANIFEST_BIN="$TOOLS_DIR/manifest-venv/bin"
CHECKOV="$TOOLS_DIR/checkov-venv/bin/checkov"
COMPOSE_SCHEMA="$TOOLS_DIR/compose-schema/compose.schema.json"
K8S_VERSION=1.33.0 # the EKS version the overlays target (k8s/README.md)
OVERLAYS=(dev staging prod)
BASES=(namespace api worker scaler migration monitoring)

say() { printf '\n==> %s\n' "$*" >&2; }

missing=()
KUBECTL=$(command -v kubectl || true)
[ -n "$KUBECTL" ] || [ ! -x "$MANIFEST_BIN/kubectl" ] || KUBECTL="$MANIFEST_BIN/kubectl"
[ -n "$KUBECTL" ] || missing+=(kubectl)
for tool in python kubernetes-validate yamllint hadolint shellcheck; do
    [ -x "$MANIFEST_BIN/$tool" ] || missing+=("$MANIFEST_BIN/$tool")
done
[ -x "$CHECKOV" ] || missing+=("$CHECKOV")
[ -f "$COMPOSE_SCHEMA" ] || missing+=("$COMPOSE_SCHEMA")
if [ "${#missing[@]}" -gt 0 ]; then
    printf 'check-manifests: missing: %s\n' "${missing[*]}" >&2
    printf 'check-manifests: run scripts/install-deps.sh test\n' >&2
    exit 1
fi
PY="$MANIFEST_BIN/python"

OUT=$(mktemp -d "${TMPDIR:-/tmp}/flowforge-manifests.XXXXXX")
cleanup() {
    if [ "${FLOWFORGE_CHECK_KEEP:-0}" = 1 ]; then
        printf 'check-manifests: rendered manifests kept in %s\n' "$OUT" >&2
    else
        rm -rf "$OUT"
    fi
}
trap cleanup EXIT
mkdir -p "$OUT/overlays" "$OUT/bases"

declare -a FAILED=() SUMMARY=()
# step NAME CMD...: run, time, record the outcome, go on.
step() {
    local name=$1 start rc=0
    shift
    say "$name"
    start=$(date +%s)
    "$@" || rc=$?
    if [ "$rc" -eq 0 ]; then
        SUMMARY+=("ok      $name ($(($(date +%s) - start))s)")
    else
        SUMMARY+=("FAILED  $name (exit $rc, $(($(date +%s) - start))s)")
        FAILED+=("$name")
    fi
}

# The Dockerfiles at the repository root (Dockerfile, Dockerfile.<variant>).
DOCKERFILES=()
for f in Dockerfile Dockerfile.*; do
    [ -f "$f" ] && DOCKERFILES+=("$f")
done

render() {
    local rc=0 name
    for name in "${BASES[@]}"; do
        "$KUBECTL" kustomize "k8s/base/$name" >"$OUT/bases/$name.yaml" || { echo "k8s/base/$name: kustomize failed" >&2; rc=1; }
    done
    "$KUBECTL" kustomize k8s/base >"$OUT/bases/all.yaml" || { echo "k8s/base: kustomize failed" >&2; rc=1; }
    for name in "${OVERLAYS[@]}"; do
        if "$KUBECTL" kustomize "k8s/overlays/$name" >"$OUT/overlays/$name.yaml"; then
            printf '%-22s %3s objects\n' "k8s/overlays/$name" "$(grep -c '^kind:' "$OUT/overlays/$name.yaml")"
        else
            echo "k8s/overlays/$name: kustomize failed" >&2
            rc=1
        fi
    done
    return "$rc"
}

schemas() {
    local rc=0 file builtin
    for file in "$OUT/bases/all.yaml" "$OUT"/overlays/*.yaml; do
        builtin="${file%.yaml}.builtin"
        "$PY" k8s/tests/manifests.py builtin "$file" "$builtin" || { rc=1; continue; }
        if "$MANIFEST_BIN/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$builtin"; then
            printf '%s: built-in kinds valid against Kubernetes %s (strict)\n' "${file#"$OUT"/}" "$K8S_VERSION"
        else
            rc=1
        fi
    done
    (cd "$OUT" && "$PY" "$ROOT/k8s/tests/manifests.py" crds bases/all.yaml overlays/*.yaml) || rc=1
    return "$rc"
}

policies() {
    FLOWFORGE_RENDERED_DIR="$OUT/overlays" "$PY" -m unittest discover -s k8s/tests -p 'test_*.py'
}

# A skip without a reason is a failure of its own: checkov accepts `checkov:skip=CKV_X` alone.
skips_have_reasons() {
    local rc=0 line
    while IFS= read -r line; do
        printf 'checkov skip without a reason: %s\n' "$line" >&2
        rc=1
    done < <(
        grep -hoE 'checkov\.io/skip[0-9]+: *[^ ]+' "$OUT"/overlays/*.yaml | grep -vE '=.+' || true
        [ "${#DOCKERFILES[@]}" -eq 0 ] || grep -HnE 'checkov:skip=' "${DOCKERFILES[@]}" | grep -vE 'checkov:skip=[A-Z0-9_]+: *[^ ]' || true
    )
    return "$rc"
}

run_checkov() {
    local rc=0
    skips_have_reasons || rc=1
    # --skip-download: offline, no guidelines or policies from Prisma Cloud.
    "$CHECKOV" --quiet --compact --skip-download --framework kubernetes -d "$OUT/overlays" || rc=1
    if [ "${#DOCKERFILES[@]}" -gt 0 ]; then
        local args=()
        for f in "${DOCKERFILES[@]}"; do args+=(-f "$f"); done
        "$CHECKOV" --quiet --compact --skip-download --framework dockerfile "${args[@]}" || rc=1
    else
        echo "no Dockerfile at the repository root: only the manifests were checked"
    fi
    return "$rc"
}

run_hadolint() {
    if [ "${#DOCKERFILES[@]}" -eq 0 ]; then
        echo "skip: no Dockerfile at the repository root"
        return 0
    fi
    "$MANIFEST_BIN/hadolint" "${DOCKERFILES[@]}" && echo "hadolint: ${DOCKERFILES[*]} clean"
}

run_yamllint() {
    local rc=0
    "$MANIFEST_BIN/yamllint" --strict -c k8s/.yamllint k8s || rc=1
    # alerts/ is generated from slo/slos.yaml: its PromQL lines are as long as they are.
    "$MANIFEST_BIN/yamllint" --strict -d '{extends: default, rules: {document-start: disable, line-length: disable, indentation: {indent-sequences: consistent}}}' alerts || rc=1
    "$MANIFEST_BIN/yamllint" --strict -d '{extends: default, rules: {line-length: {max: 100}, document-start: disable, indentation: {indent-sequences: consistent}, octal-values: {forbid-implicit-octal: true}}}' \
        docker-compose.yml compose/*.yml || rc=1
    [ "$rc" -ne 0 ] || echo "yamllint: k8s/, alerts/, docker-compose.yml and compose/ clean"
    return "$rc"
}

compose_tests() {
    FLOWFORGE_COMPOSE_SCHEMA="$COMPOSE_SCHEMA" "$PY" -m unittest discover -s compose/tests -p 'test_*.py'
}

run_shellcheck() {
    local scripts=(compose/*.sh)
    [ -e "${scripts[0]}" ] || { echo "skip: no compose/*.sh"; return 0; }
    "$MANIFEST_BIN/shellcheck" "${scripts[@]}" && echo "shellcheck: ${scripts[*]} clean"
}

step "kustomize: build every base and overlay" render
step "schemas: kubernetes-validate (built-in kinds) and CRD models (custom kinds)" schemas
step "policies: k8s/tests on the rendered overlays" policies
step "checkov: rendered overlays and Dockerfiles" run_checkov
step "hadolint: Dockerfiles" run_hadolint
step "yamllint: k8s/, alerts/, docker-compose.yml, compose/" run_yamllint
step "compose: docker-compose.yml, Dockerfile stages, .dockerignore" compose_tests
step "shellcheck: compose/*.sh" run_shellcheck

say "summary"
printf '  %s\n' "${SUMMARY[@]}" >&2
if [ "${#FAILED[@]}" -gt 0 ]; then
    failed=$(printf '%s, ' "${FAILED[@]}")
    printf 'check-manifests: FAILED step(s): %s\n' "${failed%, }" >&2
    exit 1
fi
printf 'check-manifests: all checks passed\n' >&2
