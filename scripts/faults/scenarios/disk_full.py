"""disk-full: the coordinator's store is on a small tmpfs (24 MiB). While a job of 40
slow tasks runs, a filler file takes every free byte; commits fail (results answered
`unavailable`, kept and resent by the workers); after some seconds the filler is deleted.
The job must finish without a restart of anything, nothing lost, failed commits backed
off (fewer than 60 failures logged in 5 s)."""

import errno
import os
import time

from lib import Run, finish, on_cleanup, run_cmd, wait_until
from scenarios.common import count_in_log, job_kind, proxy_lines, source_for, start_cluster, submit_kind, wait_job

NAME = "disk-full"
SUMMARY = "store on a 24 MiB tmpfs filled to the last byte mid-job, then freed: the job finishes"

TASKS = 40
FULL_FOR_S = 5


def fill(path, limit=64 << 20):
    """Writes until the file system is full (ENOSPC), at most `limit` bytes."""
    chunk = b"\x55" * (64 << 10)
    written = 0
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    try:
        while written < limit:
            try:
                count = os.write(fd, chunk)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                break
            if count <= 0:
                break
            written += count
        # the last partial chunk, byte by byte at the end
        for size in (4096, 512, 1):
            while True:
                try:
                    if os.write(fd, chunk[:size]) <= 0:
                        break
                    written += size
                except OSError:
                    break
        os.fsync(fd)
    finally:
        os.close(fd)
    return written


def run(ctx):
    run = Run(ctx, NAME, __doc__)
    mount = run.wpath("tmpfs")
    os.makedirs(mount, exist_ok=True)
    run_cmd(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mount])
    on_cleanup(lambda: run_cmd(["umount", "-l", mount], check=False))
    cluster = start_cluster(run, files=8, seed=ctx.seed + 5, workers=2, lease_ms=2000, heartbeat_ms=400,
                            retry_base_ms=100, retry_cap_ms=1000, data_dir=os.path.join(mount, "data"),
                            coord_args=["--min-free-disk-bytes", "0"])
    try:
        coordinator_pid = cluster.coord.pid
        rng = ctx.rng
        sources = [source_for(cluster, f"s{i:02d}", cluster.files[i % len(cluster.files)],
                              f"delay_ms={1500 + rng.randint(0, 1500)}&i={i}") for i in range(TASKS)]
        spec = job_kind(run, "full", sources)
        job = submit_kind(cluster, "full", "full", spec, max_attempts=100)
        run.check("job accepted", job is not None, job)
        time.sleep(0.5)
        filler = os.path.join(mount, "filler")
        written = fill(filler)
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        run.event("disk_filled", bytes=written, free=free)
        run.check("the store's file system is full", free == 0, f"{written / 1048576:.1f} MiB written, {free} bytes free")
        log = cluster.coord.log_path
        wait_until("a commit to fail on the full disk", lambda: count_in_log(log, "store commit failed"), 30, 0.2)
        first = count_in_log(log, "store commit failed")
        time.sleep(FULL_FOR_S)
        failures = count_in_log(log, "store commit failed") - first
        run.check(f"failed commits backed off (< 60 in {FULL_FOR_S} s)", failures < 60, f"{failures} more failures logged")
        states = cluster.job_states() or {}
        run.check("the job was still running when the disk was freed", states.get(str(job)) == "running",
                  states.get(str(job)))
        os.unlink(filler)
        run.event("disk_freed")
        freed_at = time.monotonic()
        state = wait_job(cluster, job, 120)
        run.check("job succeeded after space came back", state == "succeeded",
                  f"{state}, {time.monotonic() - freed_at:.1f} s after the filler was deleted")
        run.check("no restart: the same coordinator process ran throughout",
                  cluster.coord.alive() and cluster.coord.pid == coordinator_pid and cluster.coord_starts == 1)
        workers_alive = all(w.alive() for w in cluster.workers.values())
        run.check("no restart: the same workers ran throughout", workers_alive and len(cluster.workers) == 2)
        unavailable = [r for r in proxy_lines(run) if r.get("type") == "ack" and r.get("reason") == "unavailable"]
        run.check("results were refused `unavailable` while the disk was full (and resent)", len(unavailable) > 0,
                  f"{len(unavailable)} acks")
    finally:
        finish(cluster)
