"""Summarises checkov's JSON report for scripts/check-infra.sh.

Usage: checkov_report.py REPORT.json TERRAFORM_DIR

Prints "PASSED FAILED SKIPPED BARE_SKIPS" on stdout; on stderr, each failed check and each
`#checkov:skip=` comment without a reason. Exit 1 if the report holds no results.
"""

import json
import pathlib
import re
import sys


def main() -> int:
    report, tree = sys.argv[1], pathlib.Path(sys.argv[2])
    try:
        data = json.loads(pathlib.Path(report).read_text())
    except (OSError, ValueError):
        return 1
    reports = data if isinstance(data, list) else [data]
    passed = failed = skipped = 0
    for r in reports:
        if "summary" not in r:
            continue
        passed += r["summary"]["passed"]
        failed += r["summary"]["failed"]
        skipped += r["summary"]["skipped"]
        for check in r.get("results", {}).get("failed_checks", []):
            print(
                f"    FAILED {check['check_id']} {check['resource']} "
                f"({check['file_path']}:{check['file_line_range'][0]}): {check['check_name']}",
                file=sys.stderr,
            )
    if passed + failed + skipped == 0:
        return 1
    bare = 0
    for path in sorted(tree.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = re.search(r"checkov:skip=(CKV2?_[A-Z0-9_]+)(?::(.*))?", line)
            if m and not (m.group(2) or "").strip():
                bare += 1
                print(f"    skip without a reason: {path}:{n}", file=sys.stderr)
    print(passed, failed, skipped, bare)
    return 0


if __name__ == "__main__":
    sys.exit(main())
