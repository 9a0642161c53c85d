"""hostile-http: one job whose sources misbehave on purpose, next to sources that behave.

  hang            never answers (fixture hang=1)                      -> dead, timeout
  headers-hang    headers, then not a byte (hostile_http.py)          -> dead, timeout
  drip            1 byte every 10 s (trickle_ms=10000&chunk=1)         -> dead, timeout
  short-body      Content-Length 100000, 1 KB, then the close          -> dead, network
  gzip-truncated  a gzip body cut in the middle (a job of its own)     -> dead (a clear error)
  gzip-bomb       ~1000x expansion                                     -> dead, decompression
  endless         /generate/posts.csv?rows=10^15 (never ends)          -> dead, too_large
  storm-forever   503 + Retry-After: 1 on every request                -> dead, http_503 (gave up)
  storm-429       429 + Retry-After: 1, three times, then the file     -> done
  storm-503       503 + Retry-After: 1, twice, then the file           -> done
  ok-*            plain, chunked and gzip-encoded files                -> done

Workers run with short fetch limits (--stall-seconds 2, --max-body-bytes 16 MiB). The job
must end (partial) with the hostile sources dead with those errors and the others in the
report, the workers must stay alive with bounded memory (VmHWM under 256 MiB), and
nothing may be lost."""

import os
import sys
import time

import inputs
from lib import FAULTS, Proc, Run, finish, wait_ready_file
from scenarios.common import Poller, job_kind, job_tasks, source_for, start_cluster, submit_kind, wait_job

NAME = "hostile-http"
SUMMARY = "hanging, dripping, truncated, bombing, endless and throttling sources: the job ends, workers live"

RSS_LIMIT_KB = 256 * 1024
WORKER_FLAGS = ["--stall-seconds", "2", "--timeout-ms", "60000", "--max-body-bytes", str(16 << 20),
                "--connect-timeout-ms", "3000"]


def run(ctx):
    run = Run(ctx, NAME, __doc__)
    cluster = start_cluster(run, files=6, seed=ctx.seed + 4, lease_ms=3000, heartbeat_ms=500,
                            retry_base_ms=100, retry_cap_ms=500, files_kw={"rows": (200, 400)})
    try:
        files_dir = run.wpath("files")
        with open(cluster.files[0]["path"], "rb") as fh:
            first = fh.read()
        inputs.write_gzip(os.path.join(files_dir, "ok.csv.gz"), open(cluster.files[2]["path"], "rb").read())
        inputs.write_truncated_gzip(os.path.join(files_dir, "truncated.csv.gz"), first * 20)
        inputs.write_gzip_bomb(os.path.join(files_dir, "bomb.csv.gz"))
        ready = run.wpath("hostile.ready")
        hostile = Proc("hostile_http", [sys.executable, os.path.join(FAULTS, "hostile_http.py"), "--ready-file", ready,
                                        "--hold-seconds", "120"], run.hpath("logs", "hostile_http.log"))
        hostile_base = f"http://{wait_ready_file(ready, hostile)}"
        for i in (1, 2):
            cluster.start_worker(f"w-{i}", cluster.proxy.addr, slots=4, extra=WORKER_FLAGS)
        cluster.wait_workers(names=["w-1", "w-2"])
        workers = [cluster.workers["w-1"], cluster.workers["w-2"]]
        pids = [w.pid for w in workers]

        fx, f = cluster.fixture, cluster.files
        good = [
            source_for(cluster, "ok-plain", f[1]),
            source_for(cluster, "ok-chunked", f[3], "chunked=1&chunk=512"),
            source_for(cluster, "storm-429", f[4], "fail_first=3&fail_status=429&retry_after=1&series=storm429"),
            source_for(cluster, "storm-503", f[5], "fail_first=2&fail_status=503&retry_after=1&series=storm503"),
        ]
        gz_spec, gz_ref = source_for(cluster, "ok-gzip", f[2])
        gz_spec["url"] = fx.file_url("ok.csv.gz", "encoding=gzip&content_type=text/csv")
        good.append((gz_spec, gz_ref))

        def hostile_source(name, url, fmt="csv"):
            return ({"name": name, "url": url, "platform": "facebook", "account": "hostile", "format": fmt},
                    {"name": name})
        bad = {
            "hang": (hostile_source("hang", fx.file_url(f[0]["file"], "hang=1")), ["timeout"]),
            "headers-hang": (hostile_source("headers-hang", f"{hostile_base}/headers-then-hang"), ["timeout"]),
            "drip": (hostile_source("drip", fx.file_url(f[0]["file"], "trickle_ms=10000&chunk=1")), ["timeout"]),
            "short-body": (hostile_source("short-body", f"{hostile_base}/short-body"), ["network"]),
            "gzip-bomb": (hostile_source("gzip-bomb", fx.file_url("bomb.csv.gz", "encoding=gzip")), ["decompression"]),
            "endless": (hostile_source("endless", f"{fx.base}/generate/posts.csv?rows=1000000000000000&seed=7"),
                        ["too_large"]),
            "storm-forever": (hostile_source("storm-forever", fx.file_url(f[0]["file"], "status=503&retry_after=1")),
                              ["http_503"]),
        }
        sources = [s for s, _ in bad.values()] + good
        expect = {"state": "partial", "dead": {name: codes for name, (_, codes) in bad.items()}}
        spec = job_kind(run, "hostile", sources, ok=[r for _, r in good], expect=expect)
        # A gzip body cut in the middle (no deflate end, no trailer) in a job of its own, so
        # that what happens to it is told apart from the rest.
        truncated = hostile_source("gzip-truncated", fx.file_url("truncated.csv.gz", "encoding=gzip"))
        truncated_codes = ["decompression", "network", "bad_export"]
        truncated_spec = job_kind(run, "truncated", [truncated], ok=[],
                                  expect={"state": "failed", "dead": {"gzip-truncated": truncated_codes}})
        rss = Poller(run, "rss.jsonl", lambda: {w.name: [w.status_kb("VmRSS"), w.status_kb("VmHWM")]
                                                for w in workers if w.alive()}, 0.5, 180)
        began = time.monotonic()
        job = submit_kind(cluster, "hostile", "hostile", spec, max_attempts=5, retry_base_ms=100, retry_cap_ms=500)
        run.check("job accepted", job is not None, job)
        truncated_job = submit_kind(cluster, "truncated", "truncated", truncated_spec, max_attempts=2,
                                    retry_base_ms=100, retry_cap_ms=500)
        run.check("job accepted (truncated gzip)", truncated_job is not None, truncated_job)
        state = wait_job(cluster, job, 150)
        took = time.monotonic() - began
        truncated_state = wait_job(cluster, truncated_job, 60)
        task = (job_tasks(cluster, truncated_job) or [{}])[0]
        error = task.get("last_error") or {}
        run.check("gzip-truncated: the task fails (a cut gzip body is not a whole export)",
                  truncated_state == "failed" and task.get("state") == "dead" and error.get("code") in truncated_codes,
                  f"job {truncated_state}, task {task.get('state')} after {task.get('attempt')} attempt(s)"
                  + (f": {error.get('code')}: {error.get('message', '')[:120]}" if error else
                     f", {(task.get('stats') or {}).get('rows')} rows counted from a truncated body"))
        samples = rss.stop()
        run.check("the job ended, partial", state == "partial", f"{state} after {took:.0f} s")
        tasks = {t.get("source"): t for t in job_tasks(cluster, job)}
        for name, (_, codes) in bad.items():
            task = tasks.get(name, {})
            error = task.get("last_error") or {}
            run.check(f"{name}: dead with {' or '.join(codes)}",
                      task.get("state") == "dead" and error.get("code") in codes and error.get("message"),
                      f"{task.get('state')} after {task.get('attempt')} attempt(s): {error.get('code')}: "
                      f"{(error.get('message') or '')[:160]}")
        for spec_source, _ in good:
            task = tasks.get(spec_source["name"], {})
            run.check(f"{spec_source['name']}: done", task.get("state") == "done",
                      f"{task.get('state')} after {task.get('attempt')} attempt(s)")
        for name, series, fails in (("storm-429", "storm429", 3), ("storm-503", "storm503", 2)):
            times = fx.requests(series)
            gaps = [round((b - a) / 1000, 1) for a, b in zip(times, times[1:])]
            run.check(f"{name}: Retry-After honoured", len(times) == fails + 1 and all(g >= 0.95 for g in gaps),
                      f"{len(times)} requests, gaps {gaps} s")
        alive = [w.alive() and w.pid == pid for w, pid in zip(workers, pids)]
        run.check("the workers stayed alive (same processes)", all(alive),
                  ", ".join(f"{w.name} pid {w.pid} {'alive' if w.alive() else f'exited {w.returncode}'}" for w in workers))
        peak = max((max(hwm for _, hwm in s["value"].values()) for s in samples if s["value"]
                    and "error" not in s["value"]), default=0)
        run.check("worker memory bounded (peak VmHWM < 256 MiB)", 0 < peak < RSS_LIMIT_KB, f"peak {peak / 1024:.1f} MiB")
    finally:
        finish(cluster)
