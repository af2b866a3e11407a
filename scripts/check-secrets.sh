#!/usr/bin/env bash
# Secret scanning: detect-secrets over every tracked file (lock files hold checksums, not
# secrets, and are left out). .github/secrets.baseline lists the reviewed findings (test
# fixtures, `secret = ...` keywords); a finding is matched by file and hashed value, not by
# line, so moving code does not fail the check. Anything else fails it, with file and line.
#
# Usage: scripts/check-secrets.sh       (exit 1 on a finding not in the baseline)
# Update the baseline after reviewing a false positive:
#   detect-secrets scan --baseline .github/secrets.baseline
# Tool: detect-secrets on PATH or in ${FLOWFORGE_TOOLS_DIR:-~/.cache/flowforge}/manifest-venv
# (scripts/install-deps.sh test installs it there).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
DS=$(command -v detect-secrets 2>/dev/null || true)
[ -n "$DS" ] || DS=${FLOWFORGE_TOOLS_DIR:-$HOME/.cache/flowforge}/manifest-venv/bin/detect-secrets
[ -x "$DS" ] || {
    printf 'check-secrets: detect-secrets not found (scripts/install-deps.sh test installs it)\n' >&2
    exit 2
}
PY=$(dirname "$DS")/python
[ -x "$PY" ] || PY=python3

scan=$(mktemp)
trap 'rm -f "$scan"' EXIT
git ls-files -z -- ':!:Cargo.lock' ':!:**/package-lock.json' ':!:.github/secrets.baseline' |
    xargs -0 "$DS" scan >"$scan"
"$PY" - "$scan" .github/secrets.baseline <<'PY'
import json, os, sys
scan, baseline = (json.load(open(p))["results"] for p in sys.argv[1:3])
known = {(f, s["hashed_secret"]) for f, items in baseline.items() for s in items}
new = [(f, s) for f, items in scan.items() for s in items if (f, s["hashed_secret"]) not in known]
annotate = os.environ.get("GITHUB_ACTIONS") == "true"
for f, s in new:
    if annotate:
        print(f"::error file={f},line={s['line_number']}::possible secret ({s['type']})")
    else:
        print(f"{f}:{s['line_number']}: possible secret ({s['type']})")
print(f"detect-secrets: {sum(map(len, scan.values()))} finding(s), {len(new)} not in the baseline")
sys.exit(1 if new else 0)
PY
