"""What most scenarios do first: input files, a coordinator, a fixture server, the fault
proxy and workers behind it; and the job specs with their references."""

import json
import os
import time

import inputs
from lib import Cluster, posts_source, write_spec


def start_cluster(run, files=0, workers=0, slots=4, seed=1, files_kw=None, **cluster_kw):
    """A running cluster: coordinator, worker token (prefix w-), fixture server over the
    generated files, proxy, and `workers` workers named w-1… behind the proxy."""
    cluster = Cluster(run, **cluster_kw)
    cluster.files = inputs.make_files(run.wpath("files"), files, seed, **(files_kw or {})) if files else []
    cluster.start_coordinator()
    cluster.create_worker_token()
    cluster.fixture = cluster.start_fixture(run.wpath("files"))
    cluster.proxy = cluster.start_proxy()
    for i in range(1, workers + 1):
        cluster.start_worker(f"w-{i}", cluster.proxy.addr, slots=slots)
    if workers:
        cluster.wait_workers(workers)
    return cluster


def source_for(cluster, name, file_info, query=""):
    """A source (spec form) and its reference form (with the local path)."""
    url = cluster.fixture.file_url(file_info["file"], query)
    spec = posts_source(name, url, file_info)
    ref = dict(spec, path=file_info["path"])
    return spec, ref


def job_kind(run, ref_name, sources, ok=None, expect=None):
    """Writes the reference of a kind of job; `sources` are (spec, ref) pairs, `ok` the
    ones that must succeed (default all). Returns the spec sources."""
    ok = [r for _, r in sources] if ok is None else ok
    report = inputs.job_reference([r for _, r in sources], ok)
    run.reference(ref_name, report, expect or {"state": "succeeded", "dead": {}})
    return [s for s, _ in sources]


def submit_kind(cluster, key, ref_name, spec_sources, retry_unavailable_for=0.0, **spec_kw):
    """Submits a job named `key` of a kind; returns its id (or None)."""
    path = cluster.run.wpath("specs", f"{key}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_spec(path, key, spec_sources, **spec_kw)
    return cluster.submit(path, key, ref_name, retry_unavailable_for=retry_unavailable_for)


def job_tasks(cluster, job):
    out = cluster.cli_json("job", str(job), "--tasks", timeout=30)
    return (out or {}).get("tasks") or []


def proxy_lines(run, name="proxy"):
    """The proxy history recorded so far (the scenario's own view, for its checks)."""
    path = run.hpath(name + ".jsonl")
    out = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


def wait_job(cluster, job, timeout):
    """Until the job has ended; its state."""
    states = cluster.wait_jobs([job], timeout)
    return states.get(str(job))


def count_in_log(path, text):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read().count(text)
    except OSError:
        return 0


class Poller:
    """Calls `function` every `interval` s in a thread until stopped (bounded by
    `limit` s); each non-None value is appended to a history file."""

    def __init__(self, run, file, function, interval, limit):
        import threading
        self.run = run
        self.file = file
        self.function = function
        self.interval = interval
        self.limit = limit
        self.stopped = threading.Event()
        self.values = []
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        end = time.monotonic() + self.limit
        while not self.stopped.is_set() and time.monotonic() < end:
            try:
                value = self.function()
            except Exception as error:  # a failed poll is recorded, not fatal
                value = {"error": str(error)[:200]}
            if value is not None:
                record = {"t": round(time.monotonic(), 4), "w": round(time.time(), 4), "value": value}
                self.values.append(record)
                self.run.append(self.file, record)
            self.stopped.wait(self.interval)

    def stop(self):
        self.stopped.set()
        self.thread.join(30)
        return self.values

