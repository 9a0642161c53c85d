"""kill9-storm: one job of 2,000 tasks on 8 worker processes; every 2 s a random worker
is killed with SIGKILL and replaced (alternately under the same name, which inherits the
dead one's leases by name, and under a new one), 50 times. Every task must count exactly
once and the report must equal the reference."""

import signal
import time

from lib import Run, finish
from scenarios.common import job_kind, source_for, start_cluster, submit_kind, wait_job

NAME = "kill9-storm"
SUMMARY = "2,000 tasks, 8 workers, a random worker kill -9'd and replaced every 2 s, 50 times"

TASKS = 2000
WORKERS = 8
KILLS = 50
PERIOD_S = 2.0
DELAY_MS = (1400, 2600)  # per source: the job outlasts the 100 s of kills


def run(ctx):
    run = Run(ctx, NAME, __doc__)
    rng = ctx.rng
    cluster = start_cluster(run, files=40, seed=ctx.seed + 1, workers=WORKERS, lease_ms=3000, heartbeat_ms=500,
                            retry_base_ms=100, retry_cap_ms=1000)
    try:
        sources = []
        for i in range(TASKS):
            info = cluster.files[i % len(cluster.files)]
            sources.append(source_for(cluster, f"s{i:04d}", info, f"delay_ms={rng.randint(*DELAY_MS)}&i={i}"))
        spec = job_kind(run, "storm", sources)
        began = time.monotonic()
        job = submit_kind(cluster, "storm", "storm", spec, max_attempts=50)
        run.check("job accepted", job is not None, job)
        names = [f"w-{i}" for i in range(1, WORKERS + 1)]
        fresh = WORKERS
        kills = kills_while_running = 0
        next_at = time.monotonic() + PERIOD_S
        for k in range(KILLS):
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += PERIOD_S
            victim = rng.choice(names)
            cluster.kill_worker(victim, signal.SIGKILL)
            kills += 1
            if k % 2 == 0:
                replacement = victim  # the same name: it takes over the dead one's identity
            else:
                fresh += 1
                replacement = f"w-{fresh}"
                names[names.index(victim)] = replacement
            cluster.start_worker(replacement, cluster.proxy.addr)
            if k % 5 == 4 or k == KILLS - 1:
                states = cluster.job_states() or {}
                running = states.get(str(job)) not in ("succeeded", "failed", "partial", "cancelled")
                kills_while_running = kills if running else kills_while_running
        run.check(f"{KILLS} workers killed with SIGKILL and replaced", kills == KILLS, kills)
        run.check("the job was still running after the last kill", kills_while_running == KILLS,
                  f"{kills_while_running} kills while it ran")
        state = wait_job(cluster, job, 300)
        took = time.monotonic() - began
        run.check("job succeeded", state == "succeeded", f"{state} after {took:.0f} s")
        alive = [n for n in names if cluster.workers[n].alive()]
        run.check("the replacement workers are alive", len(alive) == WORKERS, f"{len(alive)} of {WORKERS}")
        run.event("storm_done", kills=kills, seconds=round(took, 1))
    finally:
        finish(cluster)
