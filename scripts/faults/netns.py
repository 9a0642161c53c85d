"""A network namespace of our own for the partition scenario: a veth pair with
10.200.0.1/30 on the host side and 10.200.0.2/30 inside, a link that can be cut
(`ip link set … down`) and restored. Deleted at exit, even after a failure; namespaces
left by an earlier run that died are deleted at the next start. Only namespaces named
haatf-<pid> (ours) are ever touched."""

import os
import subprocess
import sys

from lib import on_cleanup, run_cmd

PREFIX = "haatf-"
HOST_ADDR = "10.200.0.1"
NS_ADDR = "10.200.0.2"


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def remove_stale():
    """Deletes haatf-<pid> namespaces (and their host-side veths) whose harness is gone."""
    listing = run_cmd(["ip", "netns", "list"], check=False).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(PREFIX):
            continue
        pid = name[len(PREFIX):]
        if pid.isdigit() and not _pid_alive(int(pid)):
            _delete(name, f"hf{pid}h")


def _delete(name, host_veth):
    pids = run_cmd(["ip", "netns", "pids", name], check=False).stdout.split()
    for pid in pids:  # only processes inside our namespace
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError):
            pass
    run_cmd(["ip", "netns", "del", name], check=False)
    if run_cmd(["ip", "link", "show", host_veth], check=False).returncode == 0:
        run_cmd(["ip", "link", "del", host_veth], check=False)


class Netns:
    def __init__(self):
        remove_stale()
        pid = os.getpid()
        self.name = f"{PREFIX}{pid}"
        self.host_veth = f"hf{pid}h"
        self.ns_veth = f"hf{pid}n"
        on_cleanup(self.delete)
        run_cmd(["ip", "netns", "add", self.name])
        run_cmd(["ip", "link", "add", self.host_veth, "type", "veth", "peer", "name", self.ns_veth])
        run_cmd(["ip", "link", "set", self.ns_veth, "netns", self.name])
        run_cmd(["ip", "addr", "add", f"{HOST_ADDR}/30", "dev", self.host_veth])
        run_cmd(["ip", "link", "set", self.host_veth, "up"])
        self.exec(["ip", "addr", "add", f"{NS_ADDR}/30", "dev", self.ns_veth])
        self.exec(["ip", "link", "set", self.ns_veth, "up"])
        self.exec(["ip", "link", "set", "lo", "up"])

    def exec(self, argv, check=True):
        return run_cmd(["ip", "netns", "exec", self.name, *argv], check=check)

    def link(self, up):
        run_cmd(["ip", "link", "set", self.host_veth, "up" if up else "down"])

    def reachable(self, address):
        """Whether a TCP connection from inside the namespace to `address` (host:port)
        opens within 1 s."""
        host, port = address.rsplit(":", 1)
        probe = ("import socket,sys\ntry:\n socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()\n"
                 "except OSError:\n sys.exit(1)")
        return self.exec([sys.executable, "-c", probe, host, port], check=False).returncode == 0

    def delete(self):
        _delete(self.name, self.host_veth)


def free_port():
    """A TCP port free on 127.0.0.1 right now (the fixture servers in both namespaces
    take the same one, so one URL reaches the local copy from either side)."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def has_ip_netns():
    try:
        return subprocess.run(["ip", "netns", "list"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
