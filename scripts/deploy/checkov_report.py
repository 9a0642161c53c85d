"""Reads checkov's JSON output (a file) and prints what failed and what was skipped, with
the reasons. Exits 1 if a check failed, a file did not parse, nothing was checked, or a
check was skipped without a reason."""

import json
import sys

NO_REASON = {"", "No comment provided"}


def main() -> int:
    path, label = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        print(f"  FAIL: checkov printed no JSON for {label}:\n{text[-2000:]}")
        return 1
    reports = data if isinstance(data, list) else [data]
    status = 0
    checked = 0
    for report in reports:
        if "summary" not in report:  # "no resources found" answers
            continue
        summary = report["summary"]
        kind = report.get("check_type", "?")
        checked += summary.get("passed", 0) + summary.get("failed", 0) + summary.get("skipped", 0)
        print(f"  {label} [{kind}]: {summary.get('passed', 0)} passed, {summary.get('failed', 0)} failed, "
              f"{summary.get('skipped', 0)} skipped, {summary.get('parsing_errors', 0)} parsing errors")
        results = report.get("results", {})
        for check in results.get("failed_checks", []):
            status = 1
            print(f"    FAILED  {check['check_id']} {check.get('check_name', '')}: {check.get('resource')} "
                  f"({check.get('file_path')}:{'-'.join(map(str, check.get('file_line_range', [])))})")
        for check in results.get("skipped_checks", []):
            reason = (check.get("suppress_comment") or (check.get("check_result") or {}).get("suppress_comment") or "").strip()
            if reason in NO_REASON:
                status = 1
                print(f"    SKIPPED WITHOUT A REASON  {check['check_id']}: {check.get('resource')}")
            else:
                print(f"    skipped {check['check_id']} ({check.get('resource')}): {reason}")
        if summary.get("parsing_errors", 0):
            status = 1
            for error in results.get("parsing_errors", []) or report.get("parsing_errors", []):
                print(f"    PARSING ERROR  {error}")
    if checked == 0:
        print(f"  FAIL: checkov checked nothing in {label}")
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
