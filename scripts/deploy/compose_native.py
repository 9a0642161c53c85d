"""scripts/compose-native's runner: deploy/compose.yaml's topology as local processes.

It reads the compose file itself and runs each service's command, flags and environment
as written, with these substitutions (each printed):

- the PostgreSQL service (image postgres:*) is a server of scripts/postgres instead; its
  SERVICE:PORT becomes that server's address, and its POSTGRES_USER/POSTGRES_DB must match
  the server's (haat/haat);
- every SERVICE:PORT (a port under the service's `expose`) becomes 127.0.0.1:N, N a free
  local port; in the service's own command 0.0.0.0:PORT and `--port PORT` become that N;
- a forwarder (label dev.haat.compose-native: forward, a socat in another service's
  network namespace) runs nothing: its listening port becomes an alias of its target's;
- named volumes are folders of a temporary directory; bind mounts are copied there, with
  the same SERVICE:PORT rewriting in their text files; container paths in commands and
  environments become those folders;
- `haat` (the image's entrypoint) is $HAAT_BIN;
- depends_on is honoured: service_started, service_healthy (the dependency's own
  healthcheck command, run here with its interval, timeout, retries and start period),
  service_completed_successfully.

Then the scenario: wait for the workers, submit a job with the `submit` service's command
(profile client) and check it succeeded, kill -9 the active coordinator, wait for the
standby to take over, submit and finish a second job, restart the killed coordinator
(compose's restart: unless-stopped) and check it is now the standby. Every wait is
bounded, and the whole run too. Everything started is stopped on the way out, whatever
happens (the bash wrapper is a second line of defence)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import composefile  # noqa: E402

PROG = "compose-native"
FORWARD_LABEL = "dev.haat.compose-native"


class Fail(Exception):
    pass


class Interrupted(Exception):
    pass


def say(message: str) -> None:
    print(f"{PROG}: {message}", flush=True)


def note(message: str) -> None:
    print(f"{PROG}: note: {message}", flush=True)


def free_port(taken: set[int]) -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port
    raise Fail("no free local port")


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", port))
            return True
        except OSError:
            return False


def bounded_wait(what: str, timeout: float, check, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise Fail(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


def is_haat_service(service: dict) -> bool:
    return str(service.get("image", "")).startswith("haat:")


def is_postgres_service(service: dict) -> bool:
    image = str(service.get("image", ""))
    return image.startswith("postgres:") or image.startswith("docker.io/library/postgres:")


def is_forwarder(service: dict) -> bool:
    labels = service.get("labels") or {}
    if isinstance(labels, list):
        labels = dict(item.split("=", 1) for item in labels if "=" in item)
    return labels.get(FORWARD_LABEL) == "forward"


class Process:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: str, log: str):
        self.name, self.argv, self.env, self.cwd, self.log = name, argv, env, cwd, log
        self.popen: subprocess.Popen | None = None
        self.started_at = 0.0

    def start(self, pidfile: str) -> None:
        os.makedirs(self.cwd, exist_ok=True)
        with open(self.log, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        self.started_at = time.monotonic()
        with open(pidfile, "a", encoding="utf-8") as handle:
            handle.write(f"{self.popen.pid} {self.name}\n")

    @property
    def pid(self) -> int:
        return self.popen.pid if self.popen else -1

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_text(self) -> str:
        try:
            with open(self.log, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return ""

    def stop(self, grace: float) -> None:
        """SIGTERM (the process's own group), then SIGKILL after `grace` seconds."""
        if not self.running():
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


class Runner:
    def __init__(self, args):
        self.args = args
        self.root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.compose_path = os.path.abspath(args.compose)
        self.compose_dir = os.path.dirname(self.compose_path)
        self.state = os.path.abspath(args.state)
        self.pidfile = os.path.join(self.state, "pids")
        self.haat = os.path.abspath(args.haat_bin)
        self.taken: set[int] = set()
        self.ports: dict[tuple[str, int], int] = {}  # (service, container port) -> local port
        self.volumes: dict[str, str] = {}  # named volume -> folder
        self.processes: dict[str, Process] = {}
        self.pg_dir: str | None = None
        self.pg_url: str | None = None
        self.summary: list[tuple[str, str]] = []
        self.notes: list[str] = []
        self.met: set[tuple[str, str]] = set()  # (dependency, condition) already waited for

    # --- reading the compose file ---------------------------------------------------------

    def load(self) -> None:
        env = composefile.read_env_file(os.path.join(self.compose_dir, ".env"))
        env.update(os.environ)
        if not env.get("HAAT_PG_PASSWORD"):
            # scripts/postgres trusts loopback; the value only has to be set.
            env["HAAT_PG_PASSWORD"] = os.urandom(12).hex()
            note("HAAT_PG_PASSWORD was unset: using a throwaway value (scripts/postgres's server trusts loopback)")
        self.project = composefile.load(self.compose_path, env)
        self.services: dict[str, dict] = self.project["services"]
        self.names = sorted(self.services, key=len, reverse=True)

    def plan(self) -> None:
        """Ports and volumes; which service is what."""
        self.postgres = [n for n, s in self.services.items() if is_postgres_service(s)]
        if len(self.postgres) != 1:
            raise Fail(f"expected one postgres:* service, found {self.postgres or 'none'}")
        self.forwarders = [n for n, s in self.services.items() if is_forwarder(s)]
        self.tools = [n for n, s in self.services.items() if s.get("profiles")]
        self.run_order = self.topological(
            [n for n in self.services if n not in self.postgres + self.forwarders + self.tools])
        for name, service in self.services.items():
            if name in self.postgres + self.forwarders:
                continue
            if not is_haat_service(service):
                raise Fail(f"service {name}: image {service.get('image')!r} is neither haat:*, postgres:* nor a forwarder")
            entrypoint = service.get("entrypoint")
            if entrypoint not in (None, ["haat"], "haat"):
                raise Fail(f"service {name}: an entrypoint other than haat ({entrypoint!r}) cannot run natively")
            if not isinstance(service.get("command", []), list):
                raise Fail(f"service {name}: command must be a YAML list")
            for port in self.exposed(service):
                self.ports[(name, port)] = free_port(self.taken)
        for name in self.forwarders:
            self.plan_forwarder(name)
        used = {str(v.get("source") if isinstance(v, dict) else str(v).split(":")[0])
                for n, s in self.services.items() if n not in self.postgres for v in s.get("volumes") or []}
        for name in self.project.get("volumes") or {}:
            if name not in used:
                self.notes.append(f"volume {name} is not made: only {', '.join(self.postgres)} uses it")
                continue
            folder = os.path.join(self.state, "volumes", name)
            os.makedirs(folder, mode=0o700, exist_ok=True)
            self.volumes[name] = folder

    @staticmethod
    def exposed(service: dict) -> list[int]:
        ports = [int(str(p).split("/")[0]) for p in service.get("expose") or []]
        for mapping in service.get("ports") or []:
            target = mapping.get("target") if isinstance(mapping, dict) else str(mapping).split(":")[-1]
            ports.append(int(str(target).split("/")[0]))
        return ports

    def plan_forwarder(self, name: str) -> None:
        service = self.services[name]
        mode = str(service.get("network_mode", ""))
        command = service.get("command") or []
        listen = re.match(r"TCP[46]?-LISTEN:(\d+)", command[0]) if command else None
        target = re.match(r"TCP[46]?:(127\.0\.0\.1|localhost):(\d+)", command[1]) if len(command) > 1 else None
        if not mode.startswith("service:") or not listen or not target:
            raise Fail(f"service {name}: a forwarder must be network_mode: service:X with "
                       "command [TCP-LISTEN:PORT,…, TCP:127.0.0.1:PORT]")
        owner = mode.split(":", 1)[1]
        public, private = int(listen.group(1)), int(target.group(2))
        if (owner, private) not in self.ports:
            self.ports[(owner, private)] = free_port(self.taken)
        self.ports[(owner, public)] = self.ports[(owner, private)]
        self.notes.append(f"{name} is not run: {owner}:{public} is {owner}'s own port "
                          f"(127.0.0.1:{self.ports[(owner, private)]})")

    def topological(self, names: list[str]) -> list[str]:
        order: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in order or name not in names:
                return
            if name in visiting:
                raise Fail(f"a depends_on cycle through {name}")
            visiting.add(name)
            for dep in composefile.depends_on(self.services[name]):
                if dep not in self.services:
                    raise Fail(f"service {name} depends on {dep}, which is not in the file")
                visit(dep)
            visiting.discard(name)
            order.append(name)

        for name in names:
            visit(name)
        return order

    # --- rewriting ------------------------------------------------------------------------

    def rewrite(self, text: str, owner: str | None, mounts: list[tuple[str, str]]) -> str:
        """SERVICE:PORT → 127.0.0.1:N; the owner's 0.0.0.0:PORT → 127.0.0.1:N; container
        paths of the owner's mounts → their folders."""
        for (service, port), local in self.ports.items():
            pattern = r"(?<![\w.-])" + re.escape(service) + ":" + str(port) + r"(?![\w.-])"
            text = re.sub(pattern, f"127.0.0.1:{local}", text)
            if service == owner:
                text = re.sub(r"(?:0\.0\.0\.0|\[::\]):" + str(port) + r"(?!\d)", f"127.0.0.1:{local}", text)
        for container_path, host_path in sorted(mounts, key=lambda m: len(m[0]), reverse=True):
            pattern = r"(?<![\w./-])" + re.escape(container_path.rstrip("/")) + r"(?=/|$|[^\w.-])"
            text = re.sub(pattern, host_path, text)
        for service in self.names:
            if re.search(r"(?<![\w.-])" + re.escape(service) + r":\d+", text):
                raise Fail(f"{text!r} names {service} on a port it does not expose (add it to its expose list)")
        return text

    def rewrite_args(self, name: str, args: list[str], mounts: list[tuple[str, str]]) -> list[str]:
        out: list[str] = []
        for n, arg in enumerate(args):
            arg = str(arg)
            if n > 0 and str(args[n - 1]) == "--port" and arg.isdigit() and (name, int(arg)) in self.ports:
                out.append(str(self.ports[(name, int(arg))]))
                continue
            match = re.fullmatch(r"--port=(\d+)", arg)
            if match and (name, int(match.group(1))) in self.ports:
                out.append(f"--port={self.ports[(name, int(match.group(1)))]}")
                continue
            out.append(self.rewrite(arg, name, mounts))
        return out

    def mounts(self, name: str) -> list[tuple[str, str]]:
        """(container path, local folder) of a service's volumes; bind mounts are copied."""
        result = []
        for n, volume in enumerate(self.services[name].get("volumes") or []):
            if isinstance(volume, dict):
                source, target = volume.get("source"), volume.get("target")
            else:
                parts = str(volume).split(":")
                source, target = parts[0], parts[1]
            if source in self.volumes:
                result.append((target, self.volumes[source]))
            elif source.startswith((".", "/")):
                result.append((target, self.copy_bind(name, n, source)))
            else:
                raise Fail(f"service {name}: volume {source} is not declared under volumes")
        return result

    def copy_bind(self, name: str, n: int, source: str) -> str:
        source_path = os.path.normpath(os.path.join(self.compose_dir, source))
        folder = os.path.join(self.state, "binds", f"{name}-{n}-{os.path.basename(source_path)}")
        if os.path.exists(folder):
            return folder
        if os.path.isdir(source_path):
            shutil.copytree(source_path, folder)
        else:
            os.makedirs(os.path.dirname(folder), exist_ok=True)
            shutil.copy2(source_path, folder)
        for directory, _, files in os.walk(folder) if os.path.isdir(folder) else [(os.path.dirname(folder), [], [os.path.basename(folder)])]:
            for file in files:
                path = os.path.join(directory, file)
                try:
                    with open(path, encoding="utf-8") as handle:
                        text = handle.read()
                except (UnicodeDecodeError, OSError):
                    continue
                rewritten = self.rewrite(text, None, [])
                if rewritten != text:
                    with open(path, "w", encoding="utf-8") as handle:
                        handle.write(rewritten)
        self.notes.append(f"{name}: bind mount {source} is a copy in {folder}, addresses rewritten")
        return folder

    def argv(self, name: str, words: list[str], mounts) -> list[str]:
        args = self.rewrite_args(name, words, mounts)
        return [self.haat] + self.drop_unsupported(name, args)

    def drop_unsupported(self, name: str, args: list[str]) -> list[str]:
        if "--admin-listen" not in " ".join(args) and "--admin-auth" not in args:
            return args
        if self.supports("--admin-listen"):
            return args
        out, skip = [], False
        for arg in args:
            if skip:
                skip = False
                continue
            if arg == "--admin-listen":
                skip = True
                continue
            if arg.startswith("--admin-listen=") or arg == "--admin-auth":
                continue
            out.append(arg)
        self.notes.append(f"{name}: dropped --admin-listen/--admin-auth: {self.haat} predates the admin port")
        return out

    def supports(self, flag: str) -> bool:
        try:
            result = subprocess.run([self.haat, "coordinator", "--help"], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return flag in result.stdout

    def base_env(self, name: str) -> dict[str, str]:
        home = os.path.join(self.state, "run", name)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "TMPDIR": os.path.join(self.state, "tmp")}
        for key in ("LANG", "LC_ALL", "TZ"):
            if key in os.environ:
                env[key] = os.environ[key]
        return env

    def service_env(self, name: str, mounts) -> dict[str, str]:
        env = self.base_env(name)
        for key, value in composefile.environment(self.services[name]).items():
            env[key] = self.rewrite(value, name, mounts)
        return env

    # --- running --------------------------------------------------------------------------

    def start_postgres(self) -> None:
        name = self.postgres[0]
        service = self.services[name]
        env = composefile.environment(service)
        self.pg_dir = self.args.pg_dir
        script = os.path.join(self.root, "scripts", "postgres")
        say(f"{name}: scripts/postgres start {self.pg_dir} (instead of {service.get('image')})")
        try:
            result = subprocess.run([script, "start", self.pg_dir], capture_output=True, text=True, timeout=90)
        except subprocess.TimeoutExpired:
            raise Fail("scripts/postgres start took longer than 90 s")
        if result.returncode != 0:
            sys.stderr.write(result.stderr)
            raise Fail(f"scripts/postgres start failed ({result.returncode})")
        self.pg_url = result.stdout.strip()
        match = re.fullmatch(r"postgres://([^@]+)@127\.0\.0\.1:(\d+)/(\w+)", self.pg_url)
        if not match:
            raise Fail(f"scripts/postgres printed {self.pg_url!r}, not postgres://USER@127.0.0.1:PORT/DB")
        user, port, database = match.group(1), int(match.group(2)), match.group(3)
        if env.get("POSTGRES_USER", "postgres") != user or env.get("POSTGRES_DB", env.get("POSTGRES_USER")) != database:
            raise Fail(f"{name}: POSTGRES_USER/POSTGRES_DB are {env.get('POSTGRES_USER')}/{env.get('POSTGRES_DB')}, "
                       f"scripts/postgres makes {user}/{database}")
        for container_port in self.exposed(service) or [5432]:
            self.ports[(name, container_port)] = port
        self.summary.append((name, f"scripts/postgres {self.pg_url} (instead of the {service.get('image')} service)"))

    def start(self, name: str) -> Process:
        service = self.services[name]
        mounts = self.mounts(name)
        argv = self.argv(name, service.get("command") or [], mounts)
        process = Process(name, argv, self.service_env(name, mounts), os.path.join(self.state, "run", name),
                          os.path.join(self.state, "logs", f"{name}.log"))
        say(f"{name}: {' '.join(argv[1:])}")
        process.start(self.pidfile)
        self.processes[name] = process
        return process

    def healthcheck(self, name: str) -> tuple[list[str], float, float, int, float] | None:
        check = self.services[name].get("healthcheck")
        if not check or check.get("disable"):
            return None
        test = check.get("test")
        if isinstance(test, str):
            raise Fail(f"service {name}: a healthcheck must be a list ([CMD, haat, …]) to run natively")
        if test[0] == "NONE":
            return None
        if test[0] != "CMD" or test[1] != "haat":
            raise Fail(f"service {name}: healthcheck {test!r} is not [CMD, haat, …]")
        mounts = self.mounts(name)
        argv = self.argv(name, test[2:], mounts)
        return (argv, composefile.duration_seconds(check.get("interval"), 30),
                composefile.duration_seconds(check.get("timeout"), 30), int(check.get("retries", 3)),
                composefile.duration_seconds(check.get("start_period"), 0))

    def wait_healthy(self, name: str) -> None:
        check = self.healthcheck(name)
        if check is None:
            raise Fail(f"something waits for {name} to be healthy, and it has no healthcheck")
        argv, interval, timeout, retries, start_period = check
        process = self.processes[name]
        # Compose counts failures only after the start period; cap the whole wait anyway.
        budget = min(start_period + interval * retries + timeout, self.args.wait_cap)
        deadline = time.monotonic() + budget
        tries = 0
        while True:
            if not process.running():
                raise Fail(f"{name} exited ({process.popen.returncode}) before it was healthy")
            tries += 1
            try:
                result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                        env=self.base_env(name), cwd=process.cwd)
                if result.returncode == 0:
                    say(f"{name}: healthy (healthcheck passed on try {tries})")
                    return
                last = (result.stderr or result.stdout).strip().splitlines()[-1:] or [f"exit {result.returncode}"]
            except subprocess.TimeoutExpired:
                last = [f"timed out after {timeout:g} s"]
            if time.monotonic() + interval > deadline:
                raise Fail(f"{name}: not healthy within {budget:g} s ({tries} tries; last: {last[0]})")
            time.sleep(interval)

    def wait_completed(self, name: str) -> None:
        process = self.processes[name]
        try:
            code = process.popen.wait(timeout=self.args.wait_cap)
        except subprocess.TimeoutExpired:
            raise Fail(f"{name} did not finish within {self.args.wait_cap:g} s")
        if code != 0:
            raise Fail(f"{name} exited {code}")
        say(f"{name}: completed (exit 0)")

    def up(self) -> None:
        self.start_postgres()
        for name in self.run_order:
            for dep, condition in composefile.depends_on(self.services[name]).items():
                if dep in self.postgres or dep in self.forwarders:
                    continue  # scripts/postgres start returns once the server accepts connections
                if dep not in self.processes:
                    raise Fail(f"{name} depends on {dep}, which was not started")
                if (dep, condition) in self.met and condition != "service_started":
                    continue
                self.met.add((dep, condition))
                if condition == "service_healthy":
                    self.wait_healthy(dep)
                elif condition == "service_completed_successfully":
                    self.wait_completed(dep)
                elif condition == "service_started":
                    if not self.processes[dep].running():
                        raise Fail(f"{dep} is not running ({self.processes[dep].popen.returncode})")
                else:
                    raise Fail(f"{name}: unknown depends_on condition {condition}")
            self.start(name)
        time.sleep(0.5)
        for name in self.run_order:
            process = self.processes[name]
            restart = self.services[name].get("restart", "no")
            if not process.running() and (restart != "no" or process.popen.returncode != 0):
                raise Fail(f"{name} exited ({process.popen.returncode}) right after starting")

    # --- the scenario ---------------------------------------------------------------------

    def client(self, *words: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """A client command with the submit service's --coordinator and --data-dir."""
        submit = self.services[self.submit_service]
        mounts = self.mounts(self.submit_service)
        args = self.rewrite_args(self.submit_service, submit["command"], mounts)
        flags: list[str] = []
        for flag in ("--coordinator", "--data-dir", "--token-file", "--tls-ca"):
            if flag in args:
                flags += [flag, args[args.index(flag) + 1]]
        try:
            return subprocess.run([self.haat, *words, *flags], capture_output=True, text=True, timeout=timeout,
                                  env=self.base_env(self.submit_service))
        except subprocess.TimeoutExpired:
            raise Fail(f"haat {' '.join(words)} took longer than {timeout:g} s")

    def workers(self) -> list[str]:
        return [n for n in self.run_order if (self.services[n].get("command") or [None])[0] == "worker"]

    def coordinators(self) -> list[str]:
        return [n for n in self.run_order if (self.services[n].get("command") or [None])[0] == "coordinator"]

    def coordinator_port(self, name: str) -> int:
        command = self.services[name]["command"]
        listen = command[command.index("--listen") + 1]
        return self.ports[(name, int(listen.rsplit(":", 1)[1]))]

    def wait_workers(self) -> None:
        names = set(self.workers())

        def healthy():
            result = self.client("workers", "--json", timeout=20)
            if result.returncode != 0:
                return False
            try:
                rows = json.loads(result.stdout or "[]")
            except json.JSONDecodeError:
                return False
            return {row.get("id") for row in rows if row.get("state") == "healthy"} >= names

        bounded_wait(f"the workers {', '.join(sorted(names))} healthy", self.args.wait_cap, healthy, interval=0.5)
        say(f"workers healthy: {', '.join(sorted(names))}")

    def submit_job(self, label: str) -> tuple[str, float]:
        submit = self.services[self.submit_service]
        mounts = self.mounts(self.submit_service)
        argv = self.argv(self.submit_service, submit["command"], mounts)
        say(f"{label}: {self.submit_service}: {' '.join(argv[1:])}")
        began = time.monotonic()
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=self.args.job_timeout,
                                    env=self.service_env(self.submit_service, mounts),
                                    cwd=os.path.join(self.state, "run"))
        except subprocess.TimeoutExpired:
            raise Fail(f"{label}: haat submit --wait took longer than {self.args.job_timeout:g} s")
        elapsed = time.monotonic() - began
        with open(os.path.join(self.state, "logs", f"{label.replace(' ', '-')}.out"), "w", encoding="utf-8") as out:
            out.write(result.stdout)
            out.write(result.stderr)
        match = re.search(r"job (\d+) accepted", result.stderr + result.stdout)
        if result.returncode != 0 or not match:
            sys.stdout.write(result.stderr[-3000:])
            raise Fail(f"{label}: haat submit --wait exited {result.returncode}")
        job = match.group(1)
        detail = self.client("job", job, "--json")
        try:
            state = json.loads(detail.stdout).get("state")
            counts = json.loads(detail.stdout).get("counts", {})
        except json.JSONDecodeError:
            state, counts = None, {}
        if state != "succeeded":
            raise Fail(f"{label}: job {job} is {state!r}, not succeeded")
        if "platform" not in result.stdout:
            raise Fail(f"{label}: job {job}'s report has no engagement table")
        records = re.search(r"([\d,]+) records from (\d+) of (\d+) sources", result.stdout)
        tail = f", {records.group(0)}" if records else ""
        say(f"{label}: job {job} succeeded in {elapsed:.1f} s ({counts.get('done', '?')}/{counts.get('total', '?')} tasks{tail})")
        return job, elapsed

    def scenario(self) -> None:
        tools = [n for n in self.tools if (self.services[n].get("command") or [None])[0] == "submit"]
        if len(tools) != 1:
            raise Fail(f"expected one client service whose command is submit, found {tools or 'none'}")
        self.submit_service = tools[0]
        coordinators = self.coordinators()
        if len(coordinators) != 2:
            raise Fail(f"expected two coordinator services, found {coordinators}")

        self.wait_workers()
        job1, t1 = self.submit_job("job 1")

        active = [n for n in coordinators if listening(self.coordinator_port(n))]
        if len(active) != 1:
            raise Fail(f"expected exactly one coordinator listening, found {active or 'none'}")
        active = active[0]
        standby = next(n for n in coordinators if n != active)
        if "standby" not in self.processes[standby].log_text():
            raise Fail(f"{standby} does not log that it is the standby")
        say(f"{active} is active on 127.0.0.1:{self.coordinator_port(active)}; {standby} is the standby")

        killed = self.processes[active]
        say(f"kill -9 {killed.pid} ({active})")
        os.kill(killed.pid, signal.SIGKILL)
        killed.popen.wait(timeout=10)
        began = time.monotonic()
        bounded_wait(f"{standby} taking over", self.args.wait_cap,
                     lambda: listening(self.coordinator_port(standby))
                     and "active: this coordinator holds the store's lock" in self.processes[standby].log_text())
        takeover = time.monotonic() - began
        say(f"{standby} took over in {takeover:.1f} s")

        # The store is shared: the job the dead coordinator ran is there, succeeded.
        detail = self.client("job", job1, "--json")
        try:
            state1 = json.loads(detail.stdout).get("state")
        except json.JSONDecodeError:
            state1 = None
        if state1 != "succeeded":
            raise Fail(f"{standby} shows job {job1} as {state1!r} (exit {detail.returncode}), not succeeded")
        say(f"{standby} shows job {job1} (run by {active}) as succeeded")

        self.wait_workers()
        job2, t2 = self.submit_job("job 2")

        # compose's restart: unless-stopped brings the killed one back: as the standby now.
        restarted = self.start(active)
        bounded_wait(f"{active} (restarted) logging that it is the standby", self.args.wait_cap,
                     lambda: "standby" in restarted.log_text() or not restarted.running())
        if not restarted.running():
            raise Fail(f"{active} exited ({restarted.popen.returncode}) after its restart")
        if listening(self.coordinator_port(active)):
            raise Fail(f"{active}, restarted, listens although {standby} is active")
        say(f"{active} restarted as the standby")

        self.summary += [
            (active, f"127.0.0.1:{self.coordinator_port(active)}: active for job {job1}, killed -9, restarted as the standby"),
            (standby, f"127.0.0.1:{self.coordinator_port(standby)}: standby, took over in {takeover:.1f} s, ran job {job2}"),
            ("workers", f"{', '.join(self.workers())}: healthy on both coordinators"),
            (f"job {job1}", f"succeeded in {t1:.1f} s (on {active})"),
            (f"job {job2}", f"succeeded in {t2:.1f} s (on {standby}, after the failover)"),
        ]
        for name in self.run_order:
            if name in coordinators or name in self.workers():
                continue
            process = self.processes[name]
            code = process.popen.poll()
            self.summary.append((name, f"exited {code}" if code is not None else f"running (pid {process.pid})"))
        for name in self.forwarders:
            self.summary.append((name, "not run: a forwarder to a loopback-only port, and natively every service shares loopback"))

    # --- stopping -------------------------------------------------------------------------

    def down(self) -> None:
        for name in reversed(list(self.processes)):
            grace = composefile.duration_seconds(self.services.get(name, {}).get("stop_grace_period"), 10)
            self.processes[name].stop(min(grace, 15))
        if self.pg_dir:
            script = os.path.join(self.root, "scripts", "postgres")
            try:
                subprocess.run([script, "stop", self.pg_dir], capture_output=True, timeout=60)
            except subprocess.TimeoutExpired:
                note(f"scripts/postgres stop {self.pg_dir} took longer than 60 s")

    def show_logs(self) -> None:
        for name, process in self.processes.items():
            lines = process.log_text().splitlines()[-15:]
            print(f"--- {name} (last {len(lines)} lines of {process.log})")
            for line in lines:
                print(f"  {line[:400]}")

    def run(self) -> int:
        os.makedirs(os.path.join(self.state, "logs"), exist_ok=True)
        os.makedirs(os.path.join(self.state, "tmp"), exist_ok=True)
        ok = False
        try:
            self.load()
            self.plan()
            say(f"{self.compose_path}: services {', '.join(self.services)}")
            say(f"haat is {self.haat}")
            for (service, port), local in sorted(self.ports.items()):
                say(f"  {service}:{port} -> 127.0.0.1:{local}")
            for name, folder in self.volumes.items():
                say(f"  volume {name} -> {folder}")
            for line in self.notes:
                note(line)
            self.notes.clear()
            self.up()
            for line in self.notes:
                note(line)
            self.scenario()
            ok = True
        except Fail as error:
            say(f"FAIL: {error}")
        except Interrupted as error:
            say(f"interrupted ({error})")
        except composefile.ComposeError as error:
            say(f"FAIL: {error}")
        finally:
            # Teardown is bounded on its own: no alarm or signal may cut it short.
            signal.alarm(0)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            if not ok:
                self.show_logs()
            self.down()
        if ok:
            print()
            say("summary")
            width = max(len(n) for n, _ in self.summary)
            for name, text in self.summary:
                print(f"  {name.ljust(width)}  {text}")
            say("PASS: the compose topology ran natively, and the standby took over after kill -9")
            return 0
        say("FAIL")
        return 1


def main() -> int:
    parser = argparse.ArgumentParser(prog=PROG)
    parser.add_argument("--compose", required=True)
    parser.add_argument("--state", required=True, help="a fresh folder for volumes, logs and pids")
    parser.add_argument("--pg-dir", required=True, help="where scripts/postgres puts its server")
    parser.add_argument("--haat-bin", required=True)
    parser.add_argument("--wait-cap", type=float, default=90, help="the longest any one wait may take, in s")
    parser.add_argument("--job-timeout", type=float, default=180)
    parser.add_argument("--deadline", type=float, default=600, help="the whole run, in s")
    args = parser.parse_args()

    def interrupted(signum, _frame):
        if signum == signal.SIGALRM:
            raise Fail(f"the whole run took longer than {args.deadline:g} s")
        raise Interrupted(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, interrupted)
    signal.alarm(int(args.deadline))
    return Runner(args).run()


if __name__ == "__main__":
    sys.exit(main())
