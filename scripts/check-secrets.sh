#!/usr/bin/env bash
# Secret scanning: detect-secrets over every tracked file (lock files hold checksums, not
# secrets, and are left out). .github/secrets.baseline lists the reviewed findings (test
# fixtures, `secret = ...` keywords); a finding is matched by file and hashed value, not by
# line, so moving code does not fail the check. Anything else fails it, with file and line.
#
# Usage: scripts/check-secrets.sh            exit 1 on a finding not in the baseline
#        scripts/check-secrets.sh --update   add the findings not in the baseline to it (after
#                                            reviewing each: false positives only)
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

UPDATE=0
case "${1:-}" in
"") ;;
--update) UPDATE=1 ;;
*)
    printf 'check-secrets: unknown argument %s (usage: scripts/check-secrets.sh [--update])\n' "$1" >&2
    exit 64
    ;;
esac

scan=$(mktemp)
trap 'rm -f "$scan"' EXIT
git ls-files -z -- ':!:Cargo.lock' ':!:**/package-lock.json' ':!:.github/secrets.baseline' |
    xargs -0 "$DS" scan >"$scan"
"$PY" - "$scan" .github/secrets.baseline "$UPDATE" <<'PY'
import json, os, sys
scan_path, baseline_path, update = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
scan = json.load(open(scan_path))["results"]
full = json.load(open(baseline_path))
baseline = full["results"]
known = {(f, s["hashed_secret"]) for f, items in baseline.items() for s in items}
new = [(f, s) for f, items in scan.items() for s in items if (f, s["hashed_secret"]) not in known]
if update:
    for f, s in new:
        baseline.setdefault(f, []).append(dict(s, is_verified=False))
        print(f"{f}:{s['line_number']}: added to the baseline ({s['type']})")
    full["results"] = dict(sorted(baseline.items()))
    with open(baseline_path, "w") as out:
        json.dump(full, out, indent=2)
        out.write("\n")
    sys.exit(0)
annotate = os.environ.get("GITHUB_ACTIONS") == "true"
for f, s in new:
    if annotate:
        print(f"::error file={f},line={s['line_number']}::possible secret ({s['type']})")
    else:
        print(f"{f}:{s['line_number']}: possible secret ({s['type']})")
print(f"detect-secrets: {sum(map(len, scan.values()))} finding(s), {len(new)} not in the baseline")
sys.exit(1 if new else 0)
PY
