#!/usr/bin/env python3
"""The independent checker of a fault run: check.py HISTORY_DIR [--json]

It reads only what the harness recorded in HISTORY_DIR:

  submits.jsonl        every submit as the client saw it (job id, exit status, times)
  proxy*.jsonl         every line between workers and the coordinator (proxy.py)
  jobs/ID.json         the final `haat job ID --tasks --json` (with its exit status)
  results/ID.json      the final `haat result ID --json`
  reference/REF.json   the reference report of each kind of job (scripts/reference-
                       engagement.py over the inputs) and the state it must end in
  checks.jsonl         the scenario's own assertions (timings, exit codes, RSS, ...)

and prints:

  jobs accepted / finished        accepted = a job id printed by submit; finished = ended
  tasks with exactly one accepted result
                                  the task is done and exactly one `complete` of it was
                                  acknowledged accepted, for the attempt and worker the
                                  final job shows (or the ack was lost with its connection
                                  and a resend was answered already_done: "ack lost")
  results refused as stale        complete/fail answered not_lease_holder, stale_attempt
                                  or already_done
  lost (must be 0)                an accepted job missing or not ended; a task that is
                                  neither done nor an expected dead one; a result
                                  acknowledged accepted that the final job does not hold;
                                  a done task no complete in the history explains
  double-counted (must be 0)      a task with more than one accepted result
  reports equal (must be all)     each finished job's report equals its reference
  coordinator errors to workers   bad_frame, frame_too_long or auth_failed would mean the
                                  proxy broke a line: a problem

A run passes when lost = 0, double = 0, every report is equal, and every scenario check
holds. The verdict is also written to HISTORY_DIR/check.json. Exit status 0 = pass.
"""

import glob
import json
import os
import sys

ENDED = ("succeeded", "failed", "partial", "cancelled")
STALE = ("not_lease_holder", "stale_attempt", "already_done")
INT_FIELDS = ("posts", "likes", "comments", "shares", "saves", "reach", "impressions", "clicks", "video_views",
              "engagements")
RATE_FIELDS = ("engagement_rate_reach", "engagement_rate_impressions", "ctr")


def load_jsonl(path):
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append({"event": "unreadable"})
    return out


def load_json(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def num(value):
    if value is None or value == "":
        return 0
    return int(value)


# ---------------------------------------------------------------- report comparison


def norm_row(row):
    out = {f: num(row.get(f)) for f in INT_FIELDS}
    for f in RATE_FIELDS:
        out[f] = row.get(f)
    return out


def same_rate(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def same_row(got, want):
    g, w = norm_row(got), norm_row(want)
    diffs = [f"{f} {g[f]} != {w[f]}" for f in INT_FIELDS if g[f] != w[f]]
    diffs += [f"{f} {g[f]} != {w[f]}" for f in RATE_FIELDS if not same_rate(g[f], w[f])]
    return diffs


def compare_report(result, reference, expect):
    """Differences between Haat's result ({"job", "report"}) and the reference."""
    diffs = []
    job = result.get("job") or {}
    report = result.get("report") or {}
    summary = report.get("summary") or {}
    want = reference["summary"]
    if expect.get("state") and job.get("state") != expect["state"]:
        diffs.append(f"state {job.get('state')} != {expect['state']}")
    for field in ("tasks", "sources", "sources_ok", "rows", "bad_rows", "bytes"):
        if field in want and num(summary.get(field)) != want[field]:
            diffs.append(f"summary.{field} {num(summary.get(field))} != {want[field]}")
    got_errors = [{"source": e.get("source", ""), "row": num(e.get("row")), "column": e.get("column", ""),
                   "message": e.get("message", "")} for e in summary.get("row_errors") or []]
    if "row_errors" in want and got_errors != want["row_errors"]:
        diffs.append(f"row_errors differ ({len(got_errors)} vs {len(want['row_errors'])})")
    missing = sorted(m.get("source", "") for m in summary.get("missing") or [])
    if missing != sorted(expect.get("dead", {})):
        diffs.append(f"missing sources {missing[:6]} != expected {sorted(expect.get('dead', {}))[:6]}")
    engagement = report.get("engagement") or {}
    got_rows = {(r.get("platform", ""), r.get("account", ""), r.get("media_type", "")): r
                for r in engagement.get("rows") or []}
    want_rows = {(r["platform"], r["account"], r["media_type"]): r for r in reference["rows"]}
    if set(got_rows) != set(want_rows):
        extra = sorted(set(got_rows) - set(want_rows))[:3]
        lacking = sorted(set(want_rows) - set(got_rows))[:3]
        diffs.append(f"report rows differ: extra {extra}, missing {lacking}")
    for key in sorted(set(got_rows) & set(want_rows)):
        for d in same_row(got_rows[key], want_rows[key]):
            diffs.append(f"row {'/'.join(key)}: {d}")
    if reference["rows"] or engagement:
        for d in same_row(engagement.get("total") or {}, reference["total"]):
            diffs.append(f"total: {d}")
    return diffs


# ---------------------------------------------------------------- the check


def check(hdir):
    submits = load_jsonl(os.path.join(hdir, "submits.jsonl")) if os.path.exists(os.path.join(hdir, "submits.jsonl")) else []
    lines = []
    for path in sorted(glob.glob(os.path.join(hdir, "proxy*.jsonl"))):
        proxy = os.path.basename(path)[:-6]
        for rec in load_jsonl(path):
            rec["proxy"] = proxy
            lines.append(rec)
    lines.sort(key=lambda r: r.get("t", 0))
    references = {}
    for path in glob.glob(os.path.join(hdir, "reference", "*.json")):
        ref = load_json(path)
        if ref:
            references[ref["ref"]] = ref
    scenario_checks = load_jsonl(os.path.join(hdir, "checks.jsonl")) if os.path.exists(os.path.join(hdir, "checks.jsonl")) else []

    # Jobs the clients were told about, and every job found in the store at the end.
    accepted = {}
    submit_failures = {}
    for s in submits:
        if s.get("job"):
            accepted[str(s["job"])] = s
        else:
            submit_failures[s.get("rc")] = submit_failures.get(s.get("rc"), 0) + 1
    finals = {}
    for path in glob.glob(os.path.join(hdir, "jobs", "*.json")):
        finals[os.path.basename(path)[:-5]] = load_json(path) or {}
    results = {}
    for path in glob.glob(os.path.join(hdir, "results", "*.json")):
        results[os.path.basename(path)[:-5]] = load_json(path) or {}

    # The worker side: requests by (proxy, conn, id), acks, completes, assigns.
    requests = {}
    sent_on_conn = {}  # (proxy, conn, task, attempt) -> "complete" | "fail"
    completes = {}  # task -> [(attempt, peer, t)] whole results forwarded to the coordinator
    acks = []
    assigns = {}
    for r in lines:
        kind = r.get("type")
        if r.get("dir") == "w2c" and kind in ("complete", "fail") and not r.get("undelivered"):
            if "id" in r:
                requests[(r["proxy"], r["conn"], str(r["id"]))] = r
            sent_on_conn.setdefault((r["proxy"], r["conn"], str(r.get("task")), r.get("attempt", 0)), kind)
            if kind == "complete" and (r.get("parts") or not r.get("part")):
                completes.setdefault(str(r.get("task")), []).append((r.get("attempt", 0), r.get("peer", ""), r.get("t")))
        elif r.get("dir") == "c2w" and kind == "ack" and not r.get("undelivered"):
            acks.append(r)
        elif r.get("dir") == "c2w" and kind == "assign" and not r.get("undelivered"):
            assigns.setdefault(str(r.get("task")), []).append((r.get("attempt", 0), r.get("peer", ""), r.get("job")))

    # The coordinator's errors to workers: a line the proxy broke would show here.
    protocol_errors = {}
    for r in lines:
        if r.get("dir") == "c2w" and r.get("type") == "error" and not r.get("undelivered"):
            protocol_errors[r.get("code", "?")] = protocol_errors.get(r.get("code", "?"), 0) + 1

    accepted_results = {}  # task -> [(attempt, peer)]
    refused = {}
    stale = 0
    unavailable = 0
    acks_unmatched = 0
    for a in acks:
        request = requests.get((a["proxy"], a["conn"], str(a.get("reply_to"))))
        what = request.get("type") if request else None
        if what is None:
            # No id to match: what was sent on this connection for the task and attempt.
            what = sent_on_conn.get((a["proxy"], a["conn"], str(a.get("task")), a.get("attempt", 0)))
            acks_unmatched += 1
        if a.get("accepted"):
            if what == "complete":
                accepted_results.setdefault(str(a.get("task")), []).append((a.get("attempt", 0), a.get("peer", "")))
            continue
        reason = a.get("reason") or "?"
        refused[f"{what or '?'}:{reason}"] = refused.get(f"{what or '?'}:{reason}", 0) + 1
        if reason in STALE:
            stale += 1
        if reason == "unavailable":
            unavailable += 1

    # Job by job, task by task.
    problems = []
    lost = double = one = ack_lost = 0
    jobs_finished = reports_equal = reports_total = 0
    orphans = []
    task_total = 0
    all_jobs = sorted(set(accepted) | set(finals), key=lambda s: int(s) if s.isdigit() else 0)
    for job in all_jobs:
        final = (finals.get(job) or {}).get("output")
        sub = accepted.get(job)
        if sub is None:
            orphans.append(job)
        if not final:
            if sub is not None:
                lost += max(1, int(sub.get("tasks") or 1))
                problems.append(f"job {job} (accepted, {sub.get('tasks')} tasks) is not in the store at the end "
                                f"(haat job exit {(finals.get(job) or {}).get('rc')})")
            continue
        state = final.get("state")
        ref_name = sub.get("ref") if sub else None
        if ref_name is None:
            # An orphan (the store took it but the client never heard): its name is its key.
            ref_name = next((s.get("ref") for s in submits if s.get("key") == final.get("name")), None)
        reference = references.get(ref_name) if ref_name else None
        expect = (reference or {}).get("expect", {})
        if state in ENDED:
            jobs_finished += 1 if sub is not None else 0
        else:
            tasks = final.get("counts", {}).get("total", 0)
            lost += tasks
            problems.append(f"job {job} did not end: {state}, counts {final.get('counts')}")
            continue
        for task in final.get("tasks") or []:
            task_total += 1
            tid = str(task.get("id"))
            tstate = task.get("state")
            got = accepted_results.get(tid, [])
            sent = completes.get(tid, [])
            if len(got) > 1:
                double += 1
                problems.append(f"task {tid} (job {job}) has {len(got)} accepted results: {got}")
            if tstate == "done":
                if len(got) == 1:
                    attempt, peer = got[0]
                    if attempt != task.get("attempt", 0) or (task.get("worker") and peer != task.get("worker")):
                        problems.append(f"task {tid}: accepted attempt {attempt} from {peer}, but the job shows "
                                        f"attempt {task.get('attempt')} by {task.get('worker')}")
                        lost += 1
                    else:
                        one += 1
                elif not got:
                    holder = [c for c in sent if c[0] == task.get("attempt", 0)
                              and (not task.get("worker") or c[1] == task.get("worker"))]
                    if holder:
                        ack_lost += 1
                        one += 1
                    else:
                        lost += 1
                        problems.append(f"task {tid} (job {job}) is done but no complete for attempt "
                                        f"{task.get('attempt')} passed the proxy")
            else:
                if got:
                    lost += 1
                    problems.append(f"task {tid} (job {job}) had a result accepted ({got}) but ended {tstate}")
                dead_ok = expect.get("dead", {}).get(task.get("source"))
                code = (task.get("last_error") or {}).get("code", "")
                if tstate == "dead" and dead_ok is not None and (not dead_ok or code in dead_ok):
                    pass
                elif tstate == "cancelled" and expect.get("state") == "cancelled":
                    pass
                else:
                    lost += 1
                    problems.append(f"task {tid} (job {job}, {task.get('source')}) ended {tstate} "
                                    f"({code}: {(task.get('last_error') or {}).get('message', '')[:120]})")
        if final.get("next"):
            problems.append(f"job {job}: the final job listing was cut (next={final.get('next')})")
        # The report.
        result = (results.get(job) or {}).get("output")
        reports_total += 1
        if reference is None:
            problems.append(f"job {job}: no reference report ({ref_name})")
        elif not result:
            problems.append(f"job {job}: no result (haat result exit {(results.get(job) or {}).get('rc')})")
        else:
            diffs = compare_report(result, reference["report"], expect)
            if diffs:
                problems.append(f"job {job} report differs from the reference {ref_name}: " + "; ".join(diffs[:8]))
            else:
                reports_equal += 1

    for code in ("bad_frame", "frame_too_long", "auth_failed"):
        if protocol_errors.get(code):
            problems.append(f"the coordinator answered {protocol_errors[code]} worker line(s) with {code}")
    failed_checks = [c for c in scenario_checks if not c.get("ok")]
    verdict = (lost == 0 and double == 0 and reports_equal == reports_total and not failed_checks
               and len(accepted) > 0 and not problems)
    run_info = load_json(os.path.join(hdir, "run.json")) or {}
    summary = {
        "run": run_info.get("run") or os.path.basename(os.path.normpath(hdir)),
        "jobs_accepted": len(accepted), "jobs_finished": jobs_finished, "jobs_orphan": len(orphans),
        "submit_failures": submit_failures, "tasks": task_total, "tasks_one_result": one,
        "tasks_ack_lost": ack_lost, "stale_refused": stale, "unavailable_acks": unavailable,
        "refused": refused, "lost": lost, "double": double, "reports_equal": reports_equal,
        "reports_total": reports_total, "proxy_lines": len(lines), "acks_unmatched": acks_unmatched,
        "protocol_errors": protocol_errors,
        "scenario_checks": len(scenario_checks), "scenario_checks_failed": [c["check"] for c in failed_checks],
        "problems": problems[:50], "problems_total": len(problems), "pass": verdict,
    }
    return summary


def render(s):
    out = [f"check {s['run']}"]
    rows = [
        ("jobs accepted / finished", f"{s['jobs_accepted']} / {s['jobs_finished']}"
         + (f"  (+{s['jobs_orphan']} stored without the client hearing: checked too)" if s["jobs_orphan"] else "")),
        ("submits refused (by exit status)", json.dumps(s["submit_failures"]) if s["submit_failures"] else "0"),
        ("tasks", s["tasks"]),
        ("tasks with exactly one accepted result", f"{s['tasks_one_result']}"
         + (f"  ({s['tasks_ack_lost']} with the ack lost in a cut or crash, the resend answered already_done)"
            if s["tasks_ack_lost"] else "")),
        ("results refused as stale", f"{s['stale_refused']}"
         + (f"  (refusals by request:reason {json.dumps(s['refused'])})" if s["refused"] else "")),
        ("results deferred (ack unavailable)", s["unavailable_acks"]),
        ("lost (must be 0)", s["lost"]),
        ("double-counted (must be 0)", s["double"]),
        ("reports equal to the reference", f"{s['reports_equal']} / {s['reports_total']}"),
        ("scenario checks", f"{s['scenario_checks'] - len(s['scenario_checks_failed'])} / {s['scenario_checks']} hold"
         + (f"; failed: {', '.join(s['scenario_checks_failed'])}" if s["scenario_checks_failed"] else "")),
        ("proxy lines recorded", f"{s['proxy_lines']}"
         + (f"  (coordinator errors to workers: {json.dumps(s['protocol_errors'])})" if s["protocol_errors"] else "")),
    ]
    for name, value in rows:
        out.append(f"  {name:<40} {value}")
    for p in s["problems"]:
        out.append(f"  problem: {p}")
    if s["problems_total"] > len(s["problems"]):
        out.append(f"  … {s['problems_total'] - len(s['problems'])} more problems")
    out.append(f"  verdict: {'PASS' if s['pass'] else 'FAIL'}")
    return "\n".join(out)


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 2
    hdir = argv[0]
    summary = check(hdir)
    with open(os.path.join(hdir, "check.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=1)
    if "--json" in argv:
        print(json.dumps(summary))
    else:
        print(render(summary))
    return 0 if summary["pass"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
