"""Shared machinery of the fault-injection suite (scripts/faults/run).

Processes (each in its own process group, killed at exit however the harness ends), a
Haat cluster on loopback or in a network namespace (coordinator, workers, the fixture
HTTP server, the fault proxy between workers and coordinator), the client-side history,
and bounded waits. Standard library only.

Nothing here prints or stores a secret: tokens are created by `haat token create` into
files under the run's work directory (mode 0700) and only their paths are passed around.
"""

import atexit
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

FAULTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(FAULTS, "..", ".."))
ENDED = ("succeeded", "failed", "partial", "cancelled")


class FaultError(Exception):
    """A scenario could not carry on (a process did not start, a wait timed out, ...)."""


# ---------------------------------------------------------------- the binary


def haat_bin():
    """HAAT_BIN, default .build/release/haat (relative to the current directory, else to
    the repository)."""
    path = os.environ.get("HAAT_BIN", ".build/release/haat")
    candidates = [os.path.abspath(path)]
    if not os.path.isabs(path):
        candidates.append(os.path.join(REPO, path))
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise FaultError(f"no haat executable at {candidates[0]} (build it, or set HAAT_BIN)")


# ---------------------------------------------------------------- bounded waits


def wait_until(what, condition, timeout, interval=0.1):
    """Calls condition() until it returns something true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise FaultError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------- processes and cleanup

_PROCS = []
_CLEANUPS = []
_LOCK = threading.Lock()
_CLEANED = False


def on_cleanup(function):
    """Runs `function` at cleanup (last registered, first run), even after a failure."""
    with _LOCK:
        _CLEANUPS.append(function)


def cleanup():
    """Kills every process this harness started (SIGKILL to its process group, stopped
    ones included) and runs the cleanup functions. Safe to call more than once."""
    global _CLEANED
    with _LOCK:
        procs = list(_PROCS)
        _PROCS.clear()
        functions = list(reversed(_CLEANUPS))
        _CLEANUPS.clear()
    for proc in reversed(procs):
        proc.kill()
    for function in functions:
        try:
            function()
        except Exception as error:  # cleanup must go on
            print(f"faults: cleanup: {error}", file=sys.stderr)
    _CLEANED = True


atexit.register(cleanup)


def _terminate(signum, _frame):
    # Turn SIGTERM into an exception so `finally` blocks and atexit run.
    raise SystemExit(128 + signum)


def install_signal_handlers():
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)


class Proc:
    """A child process in its own process group, stdout and stderr to a log file."""

    def __init__(self, name, argv, log_path, env=None, cwd=None, stdout_path=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        with open(log_path, "ab") as log, open(stdout_path or os.devnull, "ab") as out:
            self.popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out if stdout_path else log, stderr=log, env=env,
                cwd=cwd, start_new_session=True)
        self.pid = self.popen.pid
        self.started = time.monotonic()
        with _LOCK:
            _PROCS.append(self)

    def alive(self):
        return self.popen.poll() is None

    @property
    def returncode(self):
        return self.popen.poll()

    def signal(self, sig):
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def wait(self, timeout):
        """The exit status, or None if it still runs after `timeout` seconds."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        """SIGKILL to the whole process group (a stopped process dies too)."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.wait(10)
        with _LOCK:
            if self in _PROCS:
                _PROCS.remove(self)

    def stop(self, grace=10):
        """SIGTERM, then SIGKILL after `grace` seconds."""
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        status = self.wait(grace)
        if status is None:
            self.kill()
        with _LOCK:
            if self in _PROCS:
                _PROCS.remove(self)
        return self.popen.poll()

    def status_kb(self, field):
        """VmRSS / VmHWM etc. from /proc, in KiB; 0 once it has exited."""
        try:
            with open(f"/proc/{self.pid}/status") as fh:
                for line in fh:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def tail(self, lines=20):
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 16384))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def wait_ready_file(path, proc, timeout=30):
    """Waits for a ready file (host:port) written by `proc`; fails early if it exits."""
    def ready():
        if not proc.alive():
            raise FaultError(f"{proc.name} exited with {proc.returncode} before it was ready:\n{proc.tail()}")
        try:
            with open(path) as fh:
                text = fh.read().strip()
        except OSError:
            return None
        return text or None
    return wait_until(f"{proc.name} to be ready ({path})", ready, timeout, 0.05)


def run_cmd(argv, timeout=30, check=True):
    """Runs a short command (ip, mount, ...) and returns its CompletedProcess."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise FaultError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return result


# ---------------------------------------------------------------- a run: history and work dirs


def jdump(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class Run:
    """One checked run of a scenario: a history directory (what check.py reads, plus
    logs) and a work directory (stores, tokens; private)."""

    def __init__(self, ctx, name, description=""):
        self.ctx = ctx
        self.name = name
        self.hdir = os.path.join(ctx.out, "history", name)
        self.wdir = os.path.join(ctx.out, "work", name)
        for sub in ("", "jobs", "results", "reference", "logs"):
            os.makedirs(os.path.join(self.hdir, sub), exist_ok=True)
        os.makedirs(self.wdir, mode=0o700, exist_ok=True)
        os.chmod(self.wdir, 0o700)
        self.t0 = time.monotonic()
        self.seconds = None
        self._lock = threading.Lock()
        ctx.runs.append(self)
        self.write_json("run.json", {
            "run": name, "description": description, "haat_bin": ctx.bin,
            "started_wall": time.time(), "started_mono": self.t0})

    def hpath(self, *parts):
        return os.path.join(self.hdir, *parts)

    def wpath(self, *parts):
        return os.path.join(self.wdir, *parts)

    def append(self, file, obj):
        with self._lock, open(self.hpath(file), "a", encoding="utf-8") as fh:
            fh.write(jdump(obj) + "\n")

    def event(self, kind, **fields):
        """A harness event (a kill, a restart, a fault) with monotonic and wall times."""
        self.append("events.jsonl", {"event": kind, "t": round(time.monotonic(), 4), "w": round(time.time(), 4), **fields})

    def check(self, name, ok, detail=""):
        """A scenario-specific assertion; check.py fails the run if any is false."""
        self.append("checks.jsonl", {"check": name, "ok": bool(ok), "detail": str(detail)})
        mark = "ok  " if ok else "FAIL"
        self.ctx.say(f"    [{mark}] {name}{': ' + str(detail) if detail else ''}")

    def write_json(self, rel, obj):
        path = self.hpath(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, ensure_ascii=False)

    def reference(self, ref, report, expect):
        """The reference report of one kind of job (computed by reference.py from the
        inputs, without Haat) and what the job must end as."""
        self.write_json(os.path.join("reference", ref + ".json"), {"ref": ref, "expect": expect, "report": report})


# ---------------------------------------------------------------- processes of a cluster


class Fixture:
    """`haat fixture-server`, serving DIR at /files/ (in a network namespace if given)."""

    def __init__(self, run, root, name="fixture", netns=None, port=0):
        ready = run.wpath(name + ".ready")
        if os.path.exists(ready):
            os.unlink(ready)
        argv = [run.ctx.bin, "fixture-server", "--port", str(port), "--root", root, "--ready-file", ready, "--exit-with-parent"]
        if netns:
            argv = ["ip", "netns", "exec", netns] + argv
        self.proc = Proc(name, argv, run.hpath("logs", name + ".log"))
        self.addr = wait_ready_file(ready, self.proc)
        self.base = f"http://{self.addr}"

    def file_url(self, name, query=""):
        return f"{self.base}/files/{name}" + (f"?{query}" if query else "")

    def requests(self, series):
        """When the requests of a series arrived (the server's own wall clock, ms). Reading
        the log is not a request of the series (docs/fixtures.md)."""
        import urllib.request
        with urllib.request.urlopen(f"{self.base}/_requests?series={series}", timeout=5) as response:
            return json.loads(response.read())


class Proxy:
    """scripts/faults/proxy.py between workers and the coordinator; records the
    worker-side history (proxy-NAME.jsonl) and takes fault commands."""

    def __init__(self, run, upstream, name="proxy", listen="127.0.0.1:0", netns=None, extra=()):
        self.run = run
        self.name = name
        ready = run.wpath(name + ".ready")
        self.control = run.wpath(name + ".sock")
        for path in (ready, self.control):
            if os.path.exists(path):
                os.unlink(path)
        argv = [sys.executable, os.path.join(FAULTS, "proxy.py"), "--listen", listen, "--upstream", upstream,
                "--history", run.hpath(name + ".jsonl"), "--control", self.control, "--ready-file", ready,
                "--exit-with-parent", "--seed", str(run.ctx.rng.randrange(1 << 30)), *extra]
        if netns:
            argv = ["ip", "netns", "exec", netns] + argv
        self.proc = Proc(name, argv, run.hpath("logs", name + ".log"))
        self.addr = wait_ready_file(ready, self.proc)

    def command(self, **command):
        """Sends one control command; returns the proxy's JSON reply."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(self.control)
            sock.sendall((jdump(command) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        reply = json.loads(data or b"{}")
        self.run.event("proxy_command", proxy=self.name, command=command, reply_ok=reply.get("ok"))
        return reply


class Cluster:
    """A coordinator on one store, its workers (through a fault proxy), and the CLI."""

    def __init__(self, run, *, lease_ms=2000, heartbeat_ms=400, retry_base_ms=100, retry_cap_ms=1000,
                 durability="full", listen="127.0.0.1:0", data_dir=None, coord_env=None, coord_args=(),
                 log_level="info"):
        self.run = run
        self.ctx = run.ctx
        self.bin = run.ctx.bin
        self.lease_ms = lease_ms
        self.heartbeat_ms = heartbeat_ms
        self.retry_base_ms = retry_base_ms
        self.retry_cap_ms = retry_cap_ms
        self.durability = durability
        self.listen = listen
        self.data = data_dir or run.wpath("data")
        self.coord_env = coord_env
        self.coord_args = list(coord_args)
        self.log_level = log_level
        self.addr = None
        self.coord = None
        self.coord_starts = 0
        self.workers = {}
        self.worker_starts = {}
        self.proxies = []
        self.fixtures = []
        self.worker_token = run.wpath("worker.token")
        self.jobs = {}  # job id -> (key, ref) of accepted submits
        os.makedirs(self.data, mode=0o700, exist_ok=True)

    # ---- coordinator

    @property
    def admin_token(self):
        return os.path.join(self.data, "admin.token")

    def start_coordinator(self, env_extra=None):
        """Starts (or restarts, on the same address and store) the coordinator."""
        ready = self.run.wpath("coordinator.ready")
        listen = self.addr or self.listen
        env = None
        extra = dict(self.coord_env or {}, **(env_extra or {}))
        if extra:
            env = dict(os.environ, **extra)
        argv = [self.bin, "coordinator", "--listen", listen, "--data-dir", self.data,
                "--durability", self.durability, "--lease-ms", str(self.lease_ms),
                "--heartbeat-ms", str(self.heartbeat_ms), "--retry-base-ms", str(self.retry_base_ms),
                "--retry-cap-ms", str(self.retry_cap_ms), "--ready-file", ready,
                "--log-level", self.log_level, "--exit-with-parent", *self.coord_args]
        for attempt in range(20):  # the old socket's port may take a moment to be free
            if os.path.exists(ready):
                os.unlink(ready)
            n = self.coord_starts
            self.coord_starts += 1
            log = self.run.hpath("logs", "coordinator.log" if n == 0 else f"coordinator-{n}.log")
            proc = Proc("coordinator", argv, log, env=env)
            try:
                self.addr = wait_ready_file(ready, proc)
            except FaultError:
                if proc.alive() or attempt == 19 or self.addr is None:
                    raise
                time.sleep(0.25)
                continue
            self.coord = proc
            self.run.event("coordinator_start", pid=proc.pid, addr=self.addr, start=n)
            return proc
        raise FaultError("the coordinator did not start")

    def kill_coordinator(self, sig=signal.SIGKILL):
        self.run.event("coordinator_kill", pid=self.coord.pid, signal=int(sig))
        self.coord.signal(sig)
        self.coord.wait(10)

    def create_token(self, role, out, name_prefix=None, coordinator=None):
        argv = [self.bin, "token", "create", "--role", role, "--data-dir", self.data, "--out", out]
        if name_prefix:
            argv += ["--name-prefix", name_prefix]
        if coordinator:
            argv += ["--coordinator", coordinator]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise FaultError(f"haat token create exited {result.returncode}: {result.stderr.strip()}")

    def create_worker_token(self, prefix="w-"):
        self.create_token("worker", self.worker_token, name_prefix=prefix)

    # ---- proxy, fixture, workers

    def start_proxy(self, name="proxy", listen="127.0.0.1:0", netns=None, upstream=None, extra=()):
        proxy = Proxy(self.run, upstream or self.addr, name=name, listen=listen, netns=netns, extra=extra)
        self.proxies.append(proxy)
        return proxy

    def start_fixture(self, root, name="fixture", netns=None, port=0):
        fixture = Fixture(self.run, root, name=name, netns=netns, port=port)
        self.fixtures.append(fixture)
        return fixture

    def start_worker(self, name, coordinator, slots=4, extra=(), env=None, netns=None):
        """A worker named `name` connecting to `coordinator` (a proxy's address)."""
        n = self.worker_starts.get(name, 0)
        self.worker_starts[name] = n + 1
        argv = [self.bin, "worker", "--coordinator", coordinator, "--token-file", self.worker_token,
                "--name", name, "--collect-slots", str(slots), "--allow-private-networks",
                "--log-level", "info", "--exit-with-parent", *extra]
        if netns:
            argv = ["ip", "netns", "exec", netns] + argv
        log = self.run.hpath("logs", f"{name}.log" if n == 0 else f"{name}-{n}.log")
        proc = Proc(name, argv, log, env=dict(os.environ, **env) if env else None)
        self.workers[name] = proc
        self.run.event("worker_start", name=name, pid=proc.pid)
        return proc

    def kill_worker(self, name, sig=signal.SIGKILL):
        proc = self.workers[name]
        self.run.event("worker_kill", name=name, pid=proc.pid, signal=int(sig))
        proc.signal(sig)
        if sig == signal.SIGKILL:
            proc.wait(10)
        return proc

    def wait_workers(self, count=None, timeout=30, names=None):
        """Until `count` workers (or the workers `names`) show healthy in `haat workers`."""
        def healthy():
            workers = self.workers_json()
            if workers is None:
                return False
            up = {w.get("id") for w in workers if w.get("state") == "healthy"}
            return set(names) <= up if names else len(up) >= count
        wait_until(f"healthy workers ({', '.join(names) if names else count})", healthy, timeout, 0.2)

    # ---- the CLI

    def cli(self, *args, timeout=60):
        """Runs a client command against this coordinator with the admin credential."""
        argv = [self.bin, *args, "--coordinator", self.addr, "--token-file", self.admin_token]
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as error:
            return subprocess.CompletedProcess(argv, 124, error.stdout or "", f"timed out after {timeout} s")

    def cli_json(self, *args, timeout=60):
        result = self.cli(*args, "--json", timeout=timeout)
        if result.returncode != 0:
            return None
        try:
            return json.loads(result.stdout)
        except ValueError:
            return None

    def workers_json(self):
        return self.cli_json("workers", timeout=20)

    def submit(self, spec_path, key, ref, retry_unavailable_for=0.0):
        """`haat submit SPEC --json`, recorded in submits.jsonl. On exit 6 (unavailable)
        it tries again for up to `retry_unavailable_for` seconds. Returns the job id or None."""
        deadline = time.monotonic() + retry_unavailable_for
        for attempt in range(1, 1000):
            t0, w0 = time.monotonic(), time.time()
            result = self.cli("submit", spec_path, "--json", timeout=90)
            t1, w1 = time.monotonic(), time.time()
            job = tasks = None
            if result.returncode == 0:
                try:
                    reply = json.loads(result.stdout)
                    job, tasks = str(reply["job"]), reply.get("tasks")
                except (ValueError, KeyError, TypeError):
                    pass
            self.run.append("submits.jsonl", {
                "event": "submit", "key": key, "ref": ref, "attempt": attempt, "rc": result.returncode,
                "job": job, "tasks": tasks, "t0": round(t0, 4), "t1": round(t1, 4), "w0": round(w0, 4),
                "w1": round(w1, 4), "stderr": result.stderr.strip().splitlines()[-1:] if result.returncode else []})
            if job is not None:
                self.jobs[job] = (key, ref)
                return job
            if result.returncode != 6 or time.monotonic() >= deadline:
                return None
            time.sleep(0.2)
        return None

    def record_submit(self, key, ref, job, tasks, rc, t0, t1, w0, w1, note=""):
        """Records a submit made outside submit() (e.g. a `haat submit --wait` child)."""
        self.run.append("submits.jsonl", {
            "event": "submit", "key": key, "ref": ref, "attempt": 1, "rc": rc, "job": job, "tasks": tasks,
            "t0": round(t0, 4), "t1": round(t1, 4), "w0": round(w0, 4), "w1": round(w1, 4), "note": note})
        if job is not None:
            self.jobs[str(job)] = (key, ref)

    def list_jobs(self):
        return self.cli_json("jobs", "--limit", "10000", timeout=30)

    def job_states(self):
        jobs = self.list_jobs()
        return None if jobs is None else {str(j["id"]): j.get("state", "") for j in jobs}

    def wait_jobs(self, jobs, timeout):
        """Until every job in `jobs` has ended; returns their states (bounded)."""
        jobs = [str(j) for j in jobs]

        def ended():
            states = self.job_states()
            if states is None:
                return None
            return states if all(states.get(j) in ENDED for j in jobs) else None
        return wait_until(f"jobs {', '.join(jobs[:5])}{'…' if len(jobs) > 5 else ''} to end", ended, timeout, 0.5)

    def collect_finals(self):
        """Saves `haat job ID --tasks --json` and `haat result ID --json` of every job in
        the store (and of every accepted one, found or not) into the history."""
        listed = self.list_jobs() or []
        ids = sorted({str(j["id"]) for j in listed} | set(self.jobs), key=lambda s: int(s) if s.isdigit() else 0)
        for job in ids:
            for kind, args in (("jobs", ("job", job, "--tasks")), ("results", ("result", job))):
                result = self.cli(*args, "--json", timeout=120)
                record = {"rc": result.returncode, "stderr": result.stderr.strip()[-500:]}
                try:
                    record["output"] = json.loads(result.stdout) if result.stdout.strip() else None
                except ValueError:
                    record["output"] = None
                self.run.write_json(os.path.join(kind, f"{job}.json"), record)
        self.run.event("finals_collected", jobs=len(ids))
        return ids

    def stop(self):
        for proc in list(self.workers.values()):
            proc.kill()
        if self.coord:
            self.coord.stop(grace=10)
        for proxy in self.proxies:
            proxy.proc.stop(grace=5)
        for fixture in self.fixtures:
            fixture.proc.kill()


# ---------------------------------------------------------------- job specs


def write_spec(path, name, sources, max_attempts=None, retry_base_ms=None, retry_cap_ms=None):
    spec = {"name": name, "sources": sources}
    if max_attempts is not None:
        spec["max_attempts"] = max_attempts
    if retry_base_ms is not None:
        spec["retry_base_ms"] = retry_base_ms
    if retry_cap_ms is not None:
        spec["retry_cap_ms"] = retry_cap_ms
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(spec, fh, ensure_ascii=False)
    return path


def posts_source(name, url, file_info, fmt="csv"):
    """A posts source reading `url`; its defaults are the generated file's."""
    return {"name": name, "url": url, "platform": file_info["platform"], "account": file_info["account"],
            "format": fmt}


# ---------------------------------------------------------------- context shared by scenarios


class Context:
    def __init__(self, out, seed, verbose=False):
        self.out = out
        self.bin = haat_bin()
        self.seed = seed
        self.rng = random.Random(seed)
        self.verbose = verbose
        self.runs = []
        self._shim = None
        os.makedirs(out, exist_ok=True)
        remove_stale_mounts()
        with open(os.path.join(out, ".faults-pid"), "w") as fh:
            fh.write(str(os.getpid()))

    def say(self, text):
        print(text, flush=True)

    def wallclock_shim(self):
        """Builds scripts/faults/wallclock.c into the output directory, once."""
        if self._shim:
            return self._shim
        compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if not compiler:
            raise FaultError("no C compiler (cc) to build scripts/faults/wallclock.c")
        out = os.path.join(self.out, "wallclock.so")
        run_cmd([compiler, "-shared", "-fPIC", "-O2", "-o", out, os.path.join(FAULTS, "wallclock.c"), "-ldl"], timeout=120)
        self._shim = out
        return out


def remove_stale_mounts():
    """Unmounts the disk-full tmpfs of an earlier run whose harness was killed before it
    could clean up (its output directory's .faults-pid names a process that is gone)."""
    try:
        with open("/proc/mounts") as fh:
            mounts = [line.split()[1] for line in fh if line.split()[0] == "tmpfs"]
    except OSError:
        return
    for mount in mounts:
        if not mount.endswith("/work/disk-full/tmpfs"):
            continue
        pid_file = os.path.join(mount[: -len("/work/disk-full/tmpfs")], ".faults-pid")
        try:
            with open(pid_file) as fh:
                pid = int(fh.read().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            run_cmd(["umount", "-l", mount], check=False)


def finish(cluster):
    """The end of every run, also after a failure: save the final job and result of every
    job while the coordinator still runs, then stop the cluster's processes."""
    run = cluster.run
    try:
        if cluster.coord is not None and cluster.coord.alive():
            cluster.collect_finals()
        else:
            run.event("finals_not_collected", reason="the coordinator is not running")
    except Exception as error:  # the checker will see what is missing
        run.event("finals_failed", error=str(error)[:500])
    finally:
        cluster.stop()
        run.seconds = time.monotonic() - run.t0
