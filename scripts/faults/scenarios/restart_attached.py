"""restart-attached: the coordinator is killed (SIGKILL) and started again on the same
store while `haat submit --wait` and `haat logs -f` are attached to it.

What the documentation promises (docs/operations.md, "Crashes and restarts"; the exit
codes and JSON output of docs/cli.md): "A `haat submit --wait` or `haat logs -f` running
at the time exits 6; the job itself goes on. Pick it up again with `haat result ID
--wait`." So: both commands (run with --json) must exit 6 (unavailable), promptly (within
10 s of the kill; neither may hang), with an `unavailable` line on stderr and the error
object as the last line of stdout; the job must go on after the restart and
`haat result ID --wait` must then exit 0 with the reference report."""

import json
import re
import threading
import time

from lib import Proc, Run, finish, wait_until
from scenarios.common import job_kind, source_for, start_cluster

NAME = "restart-attached"
SUMMARY = "coordinator kill -9 + restart while `submit --wait` and `logs -f` are attached: they exit 6"

PROMPT_S = 10


def run(ctx):
    run = Run(ctx, NAME, __doc__)
    cluster = start_cluster(run, files=6, seed=ctx.seed + 9, workers=2, lease_ms=2000, heartbeat_ms=400)
    try:
        rng = ctx.rng
        sources = [source_for(cluster, f"s{i:02d}", cluster.files[i % len(cluster.files)],
                              f"delay_ms={rng.randint(1500, 2500)}&i={i}") for i in range(48)]
        spec_sources = job_kind(run, "attached", sources)
        spec_path = run.wpath("attached.json")
        with open(spec_path, "w") as fh:
            json.dump({"name": "attached", "sources": spec_sources}, fh)
        common = ["--coordinator", cluster.addr, "--token-file", cluster.admin_token]
        t0, w0 = time.monotonic(), time.time()
        submit_out = run.hpath("logs", "submit-wait.stdout")
        submit = Proc("submit-wait", [ctx.bin, "submit", spec_path, "--wait", "--json", *common],
                      run.hpath("logs", "submit-wait.stderr"), stdout_path=submit_out)
        logs = Proc("logs-follow", [ctx.bin, "logs", "-f", "--json", *common], run.hpath("logs", "logs-follow.stderr"),
                    stdout_path=run.hpath("logs", "logs-follow.stdout"))

        def accepted():
            with open(submit.log_path, errors="replace") as fh:
                # with --json the progress lines tell the job id: "job 1: 0/48 tasks · … · queued"
                match = re.search(r"job (\d+): \d+/(\d+) tasks", fh.read())
            return match and (match.group(1), int(match.group(2)))
        job, tasks = wait_until("submit --wait to print the job id", accepted, 20, 0.1)
        cluster.record_submit("attached", "attached", job, tasks, 0, t0, time.monotonic(), w0, time.time(),
                              note="haat submit --wait, attached across a coordinator restart")

        def following():
            with open(run.hpath("logs", "logs-follow.stdout"), errors="replace") as fh:
                return fh.read().count("\n") >= 1
        wait_until("logs -f to print a line", following, 20, 0.1)
        time.sleep(1.0)
        states = cluster.job_states() or {}
        run.check("both commands attached before the kill, the job still running",
                  submit.alive() and logs.alive() and states.get(job) == "running", states.get(job))
        exits = {}

        def watch(proc):  # when each command exits; the CLI's own limit without a reply is 60 s
            exits[proc.name] = (proc.wait(70), time.monotonic())
        watchers = [threading.Thread(target=watch, args=(p,), daemon=True) for p in (submit, logs)]
        cluster.kill_coordinator()
        killed = time.monotonic()
        for watcher in watchers:
            watcher.start()
        time.sleep(1.0)
        cluster.start_coordinator()
        for watcher in watchers:
            watcher.join(75)
        submit_rc, submit_at = exits.get("submit-wait", (None, time.monotonic()))
        logs_rc, logs_at = exits.get("logs-follow", (None, time.monotonic()))
        submit_after, logs_after = submit_at - killed, logs_at - killed
        for name, proc, rc, after in (("submit --wait", submit, submit_rc, submit_after),
                                      ("logs -f", logs, logs_rc, logs_after)):
            with open(proc.log_path, errors="replace") as fh:
                stderr = fh.read().strip().splitlines()
            last = stderr[-1] if stderr else ""
            if rc is None:
                detail = f"still running {after:.0f} s after the kill (hangs)"
                proc.kill()
            else:
                detail = f"exit {rc} {after:.1f} s after the kill; stderr: {last[:160]}"
            run.event("attached_cli", command=name, rc=rc, seconds=round(after, 2), stderr=last[:300])
            run.check(f"{name} exits 6 (unavailable) as documented", rc == 6 and "unavailable" in last, detail)
            run.check(f"{name} exits promptly (within {PROMPT_S} s of the kill)", rc is not None and after <= PROMPT_S,
                      detail)
        # With --json an error is also one JSON object on stdout (docs/cli.md, "JSON output").
        for name, path in (("submit --wait", submit_out), ("logs -f", run.hpath("logs", "logs-follow.stdout"))):
            with open(path, errors="replace") as fh:
                last = (fh.read().strip().splitlines() or [""])[-1]
            try:
                code = json.loads(last)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = None
            run.check(f"{name} --json ends its stdout with the error object (unavailable)", code == "unavailable",
                      last[:160])
        result = cluster.cli("result", job, "--wait", "--json", timeout=120)
        state = None
        try:
            state = json.loads(result.stdout)["job"]["state"]
        except (ValueError, KeyError, TypeError):
            pass
        run.check("`haat result ID --wait` picks the job up after the restart", result.returncode == 0 and
                  state == "succeeded", f"exit {result.returncode}, {state}")
    finally:
        finish(cluster)
