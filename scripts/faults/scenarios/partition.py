"""partition: the network between workers and the coordinator fails.

partition/netns: three workers live in a network namespace of their own (haatf-<pid>, a
veth pair 10.200.0.1/30 on the host side, 10.200.0.2/30 inside); the coordinator
listens on 10.200.0.1; a fourth worker stays on the host. Mid-job the host side of the
link is set down for 3 lease lengths (packets are dropped, nothing is reset), then up
again. The host worker carries on alone meanwhile; the namespace's leases expire and
their tasks run elsewhere; after the link is back the namespace's workers resume (their
late results refused). The namespace is deleted at exit, even after a failure.

partition/chaos: four workers on loopback behind proxy.py in chaos mode: random latency
(0-120 ms a line) and a connection reset every 0.7-2 s for 25 s, a 3 s blackhole of the
whole link (every connection dropped, new ones held unanswered) and a 4.5 s stall of
every connection (longer than the lease) in the middle.

Both: the job must succeed, nothing lost, no result counted twice, the report equal to
the reference."""

import time

import inputs
from lib import Cluster, Run, finish
from netns import HOST_ADDR, Netns, free_port
from scenarios.common import count_in_log, job_kind, proxy_lines, source_for, start_cluster, submit_kind, wait_job

NAME = "partition"
SUMMARY = "workers in a netns cut off past the lease (ip link down/up); random delays and cuts through the proxy"

LEASE_MS = 2000


def accepted_by(run, proxy, peers, since=None, until=None):
    """Results of `peers` acknowledged accepted through `proxy`, optionally in [since, until)."""
    return [r for r in proxy_lines(run, proxy) if r.get("type") == "ack" and r.get("accepted")
            and r.get("peer") in peers and (since is None or r["t"] >= since) and (until is None or r["t"] < until)]


def netns_run(ctx):
    run = Run(ctx, f"{NAME}/netns", __doc__)
    ns = Netns()
    run.event("netns_created", name=ns.name, host_veth=ns.host_veth)
    cluster = None
    try:
        cluster = Cluster(run, listen=f"{HOST_ADDR}:0", lease_ms=LEASE_MS, heartbeat_ms=400, retry_base_ms=100,
                          retry_cap_ms=1000)
        cluster.files = inputs.make_files(run.wpath("files"), 12, ctx.seed + 7)
        cluster.start_coordinator()
        cluster.create_worker_token()
        # One URL reaches a fixture server in either namespace: both listen on the same port.
        port = free_port()
        cluster.fixture = cluster.start_fixture(run.wpath("files"), name="fixture-host", port=port)
        cluster.start_fixture(run.wpath("files"), name="fixture-ns", netns=ns.name, port=port)
        proxy_ns = cluster.start_proxy(name="proxy-ns", netns=ns.name)
        proxy_host = cluster.start_proxy(name="proxy-host")
        inside = ["w-n1", "w-n2", "w-n3"]
        for name in inside:
            cluster.start_worker(name, proxy_ns.addr, netns=ns.name)
        cluster.start_worker("w-h1", proxy_host.addr)
        cluster.wait_workers(names=inside + ["w-h1"])
        rng = ctx.rng
        sources = [source_for(cluster, f"s{i:03d}", cluster.files[i % len(cluster.files)],
                              f"delay_ms={rng.randint(600, 1400)}&i={i}") for i in range(240)]
        spec = job_kind(run, "partition", sources)
        job = submit_kind(cluster, "partition", "partition", spec, max_attempts=50)
        run.check("job accepted", job is not None, job)
        run.check("the namespace reaches the coordinator while the link is up", ns.reachable(cluster.addr))
        time.sleep(3)
        expired_before = count_in_log(cluster.coord.log_path, "lease expired")
        ns.link(False)
        down_at = time.monotonic()
        run.event("link_down", veth=ns.host_veth)
        reachable = ns.reachable(cluster.addr)
        run.check("the namespace cannot reach the coordinator while the link is down", not reachable)
        time.sleep(3 * LEASE_MS / 1000)
        ns.link(True)
        up_at = time.monotonic()
        run.event("link_up", veth=ns.host_veth)
        state = wait_job(cluster, job, 180)
        run.check("job succeeded", state == "succeeded", state)
        expired = count_in_log(cluster.coord.log_path, "lease expired") - expired_before
        run.check("leases expired during the partition", expired > 0, f"{expired} expiries logged")
        during = accepted_by(run, "proxy-host", {"w-h1"}, down_at, up_at)
        run.check("the host worker's results were accepted during the partition", len(during) > 0, len(during))
        after = accepted_by(run, "proxy-ns", set(inside), up_at + 0.5)
        run.check("the namespace's workers worked again after the link came back", len(after) > 0, len(after))
    finally:
        if cluster is not None:
            finish(cluster)
        ns.delete()


def chaos_run(ctx):
    run = Run(ctx, f"{NAME}/chaos", __doc__)
    cluster = start_cluster(run, files=12, seed=ctx.seed + 8, workers=4, lease_ms=LEASE_MS, heartbeat_ms=400,
                            retry_base_ms=100, retry_cap_ms=1000)
    try:
        rng = ctx.rng
        sources = [source_for(cluster, f"s{i:03d}", cluster.files[i % len(cluster.files)],
                              f"delay_ms={rng.randint(200, 700)}&i={i}") for i in range(300)]
        spec = job_kind(run, "chaos", sources)
        proxy = cluster.proxy
        job = submit_kind(cluster, "chaos", "chaos", spec, max_attempts=50)
        run.check("job accepted", job is not None, job)
        proxy.command(cmd="chaos", seconds=25, delay_ms=0, jitter_ms=120, cut_min_s=0.7, cut_max_s=2.0)
        time.sleep(7)
        proxy.command(cmd="drop", seconds=3, mode="blackhole")
        time.sleep(6)
        proxy.command(cmd="stall", seconds=LEASE_MS / 1000 * 2.25)
        state = wait_job(cluster, job, 180)
        run.check("job succeeded", state == "succeeded", state)
        lines = proxy_lines(run)
        cuts = [r for r in lines if r.get("event") == "fault" and r.get("fault") == "chaos_cut"]
        run.check("connections were reset at random", len(cuts) >= 8, f"{len(cuts)} resets")
        refused = [r for r in lines if r.get("event") == "refused"]
        run.check("the blackhole held new connections", len(refused) > 0, f"{len(refused)} connections held")
        undelivered = [r for r in lines if r.get("undelivered")]
        run.event("chaos_done", cuts=len(cuts), refused=len(refused), undelivered=len(undelivered))
    finally:
        finish(cluster)


def run(ctx):
    netns_run(ctx)
    chaos_run(ctx)
