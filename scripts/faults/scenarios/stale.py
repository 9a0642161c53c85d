"""stale: a worker frozen (SIGSTOP) while it holds leases, past the lease time; another
worker takes those tasks over; then the frozen one is thawed (SIGCONT) and sends its late
results. They must be refused and never counted: each task keeps the one result of the
worker that finished it.

Two rounds: (1) thawed after the other worker has finished: the late results meet a task
that is done (already_done); (2) thawed while the other worker still holds the new lease:
they meet a later attempt (stale_attempt or not_lease_holder)."""

import signal
import time

from lib import Run, finish, wait_until
from scenarios.common import job_kind, job_tasks, proxy_lines, source_for, start_cluster, submit_kind, wait_job

NAME = "stale"
SUMMARY = "SIGSTOP a lease holder past its lease, another worker takes over, SIGCONT: late results refused"

LEASE_MS = 2000
SLOW_MS = 3000  # each source answers after 3 s, so the frozen worker's fetches are in flight


def freeze_round(run, cluster, key, frozen, finisher, thaw_after_done, files, expect_reasons):
    cluster.start_worker(frozen, cluster.proxy.addr, slots=2)
    cluster.wait_workers(names=[frozen])
    sources = [source_for(cluster, f"{key}-{i}", files[i], f"delay_ms={SLOW_MS}&k={key}") for i in range(2)]
    job = submit_kind(cluster, key, key, job_kind(run, key, sources), max_attempts=10)
    run.check(f"{key}: job accepted", job is not None, job)

    def held():
        tasks = job_tasks(cluster, job)
        ok = len(tasks) == 2 and all(t.get("state") == "leased" and t.get("worker") == frozen for t in tasks)
        return tasks if ok else None
    tasks = wait_until(f"both tasks leased by {frozen}", held, 20, 0.1)
    leased_at = time.monotonic()
    ids = {str(t["id"]) for t in tasks}
    time.sleep(0.3)  # its requests have reached the fixture server
    frozen_at = time.monotonic()
    cluster.kill_worker(frozen, signal.SIGSTOP)
    cluster.start_worker(finisher, cluster.proxy.addr, slots=2)

    if thaw_after_done:
        def taken_over():
            tasks = job_tasks(cluster, job)
            return tasks if all(t.get("state") == "done" and t.get("worker") == finisher for t in tasks) else None
        what = f"{finisher} to finish both tasks"
    else:
        def taken_over():
            tasks = job_tasks(cluster, job)
            return tasks if all(t.get("state") == "leased" and t.get("worker") == finisher for t in tasks) else None
        what = f"{finisher} to hold both tasks"
    wait_until(what, taken_over, 40, 0.1)
    if not thaw_after_done:
        # Thaw once the frozen worker's responses have arrived (so its results go out at
        # once), while the finisher still fetches (it got the tasks after the lease expired).
        time.sleep(max(0.0, leased_at + SLOW_MS / 1000 + 0.4 - time.monotonic()))
        still = all(t.get("state") == "leased" and t.get("worker") == finisher for t in job_tasks(cluster, job))
        run.check(f"{key}: {finisher} still holds the tasks at the thaw", still)
    frozen_for = time.monotonic() - frozen_at
    run.check(f"{key}: {frozen} frozen past its lease", frozen_for * 1000 > LEASE_MS,
              f"{frozen_for:.1f} s frozen, lease {LEASE_MS} ms")
    # On the thaw the worker's heartbeat (listing the old leases) and its results race; the
    # heartbeat's answer revokes the leases and a worker that reads it first rightly drops
    # its results. A slow link towards it (1.5 s, through the proxy) lets the results out
    # first, so the coordinator's refusal is what is tested.
    cluster.proxy.command(cmd="delay", peer=frozen, dir="c2w", ms=1500)
    thawed = time.monotonic()
    cluster.kill_worker(frozen, signal.SIGCONT)

    def late_answers():
        lines = proxy_lines(run)
        mine = [r for r in lines if r.get("peer") == frozen and str(r.get("task")) in ids]
        sent = [r for r in mine if r.get("dir") == "w2c" and r.get("type") in ("complete", "fail")]
        acks = [r for r in mine if r.get("type") == "ack"]
        revoked = [r for r in lines if r.get("peer") == frozen and r.get("type") == "heartbeat_ack"
                   and any(str(t) in ids for t, _ in r.get("revoked") or [])]
        if len(acks) >= len(ids) or (revoked and time.monotonic() - thawed > 8):
            return sent, acks, revoked
        return None
    sent, acks, revoked = wait_until(f"{frozen}'s late answers to be acknowledged", late_answers, 20, 0.25)
    cluster.proxy.command(cmd="delay", peer=frozen, dir="c2w", ms=0)
    results = [r for r in sent if r["type"] == "complete"]
    run.check(f"{key}: {frozen} sent late results after the thaw", len(results) >= 1,
              f"{len(results)} late complete(s), {len(sent) - len(results)} fail(s), "
              f"{len(revoked)} heartbeat_ack(s) revoking the old leases")
    accepted = [a for a in acks if a.get("accepted")]
    reasons = sorted({a.get("reason") for a in acks})
    run.check(f"{key}: every late answer refused ({' or '.join(expect_reasons)})",
              acks and not accepted and set(reasons) <= set(expect_reasons),
              ", ".join(f"task {a.get('task')} attempt {a.get('attempt')}: "
                        f"{'accepted' if a.get('accepted') else a.get('reason')}" for a in acks))
    state = wait_job(cluster, job, 30)
    run.check(f"{key}: job succeeded", state == "succeeded", state)
    tasks = job_tasks(cluster, job)
    run.check(f"{key}: each task's result is {finisher}'s", all(t.get("worker") == finisher for t in tasks),
              ", ".join(f"task {t['id']}: {t.get('worker')} attempt {t.get('attempt')}" for t in tasks))
    run.check(f"{key}: the thawed worker is still running", cluster.workers[frozen].alive())
    for name in (frozen, finisher):  # leave the next round a cluster without them
        cluster.workers[name].stop(grace=15)


def run(ctx):
    run = Run(ctx, NAME, __doc__)
    cluster = start_cluster(run, files=4, seed=ctx.seed + 3, lease_ms=LEASE_MS, heartbeat_ms=400)
    try:
        freeze_round(run, cluster, "after-done", "w-1", "w-2", True, cluster.files[0:2], ["already_done"])
        freeze_round(run, cluster, "while-leased", "w-3", "w-4", False, cluster.files[2:4],
                     ["stale_attempt", "not_lease_holder"])
    finally:
        finish(cluster)
