"""clock-steps: the wall clock of one process is stepped +1 h, then -1 h (the LD_PRELOAD
shim scripts/faults/wallclock.c, which shifts CLOCK_REALTIME, gettimeofday and time by
the offset in a file), during a job with slow trickling sources and one source answered
429 with Retry-After: 5. Run twice: the coordinator's clock, then one worker's.

The job must finish promptly (within 40 s of the submit, not an hour later), the 429
source must be retried after its 5 s (between 4.5 and 15 s later, by the fixture server's
own clock), and no worker may ever be shown `stalled` or `lost` by `haat workers --json`
(polled every 0.3 s) while it works."""

import os
import time

from lib import Run, finish, wait_until
from scenarios.common import Poller, job_kind, job_tasks, source_for, start_cluster, submit_kind, wait_job

NAME = "clock-steps"
SUMMARY = "wall clock stepped +1 h and -1 h on the coordinator, then on a worker, during a 429 Retry-After wait"

HOUR_MS = 3600 * 1000
SLOW = "trickle_ms=250&chunk=1024"  # ~40 KB files: about 10 s each, new bytes every 250 ms


def one_run(ctx, target):
    run = Run(ctx, f"{NAME}/{target}", __doc__)
    shim = ctx.wallclock_shim()
    offset_file = run.wpath("offset-ms")
    with open(offset_file, "w") as fh:
        fh.write("0")
    env = {"LD_PRELOAD": shim, "HAAT_CLOCK_OFFSET_FILE": offset_file}
    cluster = start_cluster(run, files=5, seed=ctx.seed + 6, lease_ms=4000, heartbeat_ms=1000, retry_base_ms=100,
                            retry_cap_ms=1000, coord_env=env if target == "coordinator" else None,
                            files_kw={"rows": (320, 360), "bad_every": 0})
    try:
        cluster.start_worker("w-1", cluster.proxy.addr, slots=4, env=env if target == "worker" else None)
        cluster.start_worker("w-2", cluster.proxy.addr, slots=4)
        cluster.wait_workers(names=["w-1", "w-2"])
        series = f"clock429-{target}"
        sources = [source_for(cluster, f"slow-{i}", cluster.files[i], SLOW) for i in range(4)]
        sources.append(source_for(cluster, "throttled", cluster.files[4],
                                  f"fail_first=1&fail_status=429&retry_after=5&series={series}"))
        spec = job_kind(run, "clock", sources)

        def poll_workers():
            workers = cluster.workers_json()
            if workers is None:
                return {"error": "haat workers failed"}
            return [{k: w.get(k) for k in ("id", "state", "leases", "last_progress_ms", "last_heartbeat_ms")}
                    for w in workers]
        poller = Poller(run, "workers.jsonl", poll_workers, 0.3, 120)
        began = time.monotonic()
        job = submit_kind(cluster, "clock", "clock", spec, max_attempts=5)
        run.check("job accepted", job is not None, job)

        def throttled_waits():
            return any(t.get("source") == "throttled" and t.get("state") == "scheduled" for t in job_tasks(cluster, job))
        wait_until("the throttled task to wait for its retry", throttled_waits, 20, 0.1)
        stepped = {}
        for offset, hold in ((HOUR_MS, 2.0), (-HOUR_MS, 0.0)):
            with open(offset_file + ".tmp", "w") as fh:
                fh.write(str(offset))
            os.rename(offset_file + ".tmp", offset_file)
            run.event("clock_step", target=target, offset_ms=offset)
            stepped[offset] = time.monotonic()
            time.sleep(hold)
        state = wait_job(cluster, job, 60)
        took = time.monotonic() - began
        values = poller.stop()
        run.check("job succeeded promptly (not an hour later)", state == "succeeded" and took < 40,
                  f"{state} {took:.1f} s after the submit")
        times = cluster.fixture.requests(series)
        gap = (times[1] - times[0]) / 1000 if len(times) == 2 else None
        run.check("the 429 was retried after its Retry-After of 5 s, not an hour later",
                  gap is not None and 4.5 <= gap <= 15, f"{len(times)} requests, {gap} s apart")
        bad = []
        polls = 0
        for sample in values:
            if not isinstance(sample["value"], list):
                continue
            polls += 1
            for w in sample["value"]:
                if w.get("state") in ("stalled", "lost"):
                    bad.append(f"{w['id']} {w['state']} at +{sample['t'] - began:.1f} s (leases {w.get('leases')})")
        run.check("no worker shown stalled or lost while working", polls > 10 and not bad,
                  f"{polls} polls" + (f"; {', '.join(bad[:5])}" if bad else ""))
        # The step did happen: what the shifted process writes is an hour behind now.
        now_ms = time.time() * 1000
        if target == "coordinator":
            final = cluster.cli_json("job", str(job)) or {}
            behind = now_ms - int(final.get("finished_ms", 0))
            run.check("the coordinator's clock was stepped (its finished_ms is an hour behind)",
                      HOUR_MS - 120000 < behind < HOUR_MS + 120000, f"{behind / 60000:.1f} min behind")
        else:
            last = [w for w in (cluster.workers_json() or []) if w.get("id") == "w-1"]
            behind = now_ms - int(last[0].get("last_progress_ms", 0)) if last else 0
            run.check("w-1's clock was stepped (its last_progress_ms is an hour behind)",
                      HOUR_MS - 120000 < behind < HOUR_MS + 120000, f"{behind / 60000:.1f} min behind")
            ran = {t.get("worker") for t in job_tasks(cluster, job)}
            run.check("the stepped worker ran tasks of the job", "w-1" in ran, f"workers {sorted(ran)}")
    finally:
        finish(cluster)


def run(ctx):
    for target in ("coordinator", "worker"):
        one_run(ctx, target)
