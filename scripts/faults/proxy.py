#!/usr/bin/env python3
"""A small userspace TCP fault proxy for Haat's line protocol (docs/protocol.md).

It sits between workers and the coordinator and forwards the bytes unchanged, in order,
line by line (the handshake MACs cover the nonces, role, name and session, never
addresses, so a proxy in the path does not break them). Each direction is split into
lines and every line forwarded is recorded as one JSON object in the history file
(JSONL), with its type and ids only, never a secret or a payload:

  {"t": 1234.5678, "w": 1796028784.2, "conn": 3, "peer": "w-1", "dir": "w2c", "type": "complete",
   "id": "17", "task": "42", "attempt": 2, "part": 0, "parts": 0}

`t` is CLOCK_MONOTONIC seconds (comparable with other processes on the machine), `w` the
wall clock. `dir` is w2c (worker to coordinator) or c2w. Types recorded with their ids:
hello (name, role), welcome, assign (task, attempt, job, source), credit, heartbeat
(leases), heartbeat_ack (extended, revoked), complete (task, attempt, part, parts, rows),
fail (task, attempt, code, retryable, retry_after_ms), ack (task, attempt, accepted,
reason, reply_to), error (code, reply_to), log, drain, ping, pong. Connection events are
recorded too: open, close (why), refused, upstream_failed, and lines read but never
delivered because the connection was cut ("undelivered": true).

Faults, from flags at start or from commands on the control socket (--control PATH, one
JSON object per line, answered with one JSON line):

  {"cmd": "delay", "ms": 200, "jitter_ms": 100, "dir": "both"|"w2c"|"c2w", "peer": "w-1"}
        latency per line (ms + uniform(0, jitter_ms)); order is kept. ms 0 removes it.
  {"cmd": "stall", "seconds": 5, "peer": "w-1"}   forward nothing (both ways) for a while
  {"cmd": "cut", "peer": "w-1"}                   reset matching connections (all without peer)
  {"cmd": "cut_random"}                           reset one random connection
  {"cmd": "drop", "seconds": 8, "mode": "reset"|"blackhole"}
        cut every connection and, for that long, refuse new ones (reset: closed at once;
        blackhole: held open without an answer, like a dead link)
  {"cmd": "chaos", "seconds": 30, "delay_ms": 20, "jitter_ms": 150, "cut_min_s": 1, "cut_max_s": 3}
        random latency and a random connection cut every cut_min_s..cut_max_s, for a while
  {"cmd": "stats"}                                connections and line counts

Standalone:

  scripts/faults/proxy.py --listen 127.0.0.1:7421 --upstream 127.0.0.1:7420 \\
      --history proxy.jsonl --control proxy.sock --delay-ms 50 --jitter-ms 100 --cut-every 5
  haat worker --coordinator 127.0.0.1:7421 ...
"""

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import sys
import time

MAX_PARTIAL = 8 << 20  # a "line" longer than this without a newline is forwarded raw
QUEUE_LINES = 10000


def split_hostport(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class Direction:
    """One direction of one connection: a reader feeding a queue, a writer draining it at
    each line's due time."""

    def __init__(self, conn, name, reader, writer):
        self.conn = conn
        self.name = name
        self.reader = reader
        self.writer = writer
        self.queue = asyncio.Queue(QUEUE_LINES)
        self.last_due = 0.0


class Conn:
    def __init__(self, cid, client):
        self.id = cid
        self.client = client
        self.peer = ""
        self.role = ""
        self.why = ""
        self.transports = []
        self.dirs = []
        self.closed = False


class Proxy:
    def __init__(self, args):
        self.args = args
        self.upstream = split_hostport(args.upstream)
        self.history = open(args.history, "a", buffering=1, encoding="utf-8")
        self.rng = random.Random(args.seed)
        self.conns = {}
        self.next_id = 1
        # latency (ms, jitter) per direction, and per peer overrides
        self.delay = {"w2c": (args.delay_ms, args.jitter_ms), "c2w": (args.delay_ms, args.jitter_ms)}
        self.peer_delay = {}
        self.stall_until = 0.0
        self.peer_stall = {}
        self.refuse_until = 0.0
        self.refuse_mode = "reset"
        self.counts = {}
        self.chaos_task = None

    # ---- history

    def record(self, obj):
        obj["t"] = round(time.monotonic(), 4)
        obj["w"] = round(time.time(), 4)
        self.history.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n")

    def describe(self, conn, direction, line):
        rec = {"conn": conn.id, "peer": conn.peer, "dir": direction, "n": len(line)}
        try:
            obj = json.loads(line)
        except ValueError:
            rec["type"] = "?"
            return rec
        if not isinstance(obj, dict):
            rec["type"] = "?"
            return rec
        keys = [k for k in obj if k not in ("id", "reply_to", "replyTo")]
        kind = keys[0] if len(keys) == 1 else ("+".join(sorted(keys)) or "none")
        rec["type"] = kind
        if "id" in obj:
            rec["id"] = obj["id"]
        reply_to = obj.get("reply_to", obj.get("replyTo"))
        if reply_to is not None:
            rec["reply_to"] = reply_to
        body = obj.get(kind)
        if not isinstance(body, dict):
            body = {}
        get = body.get
        if kind == "hello":
            conn.peer = str(get("name", ""))
            conn.role = str(get("role", ""))
            rec["peer"] = conn.peer
            rec["role"] = conn.role
        elif kind == "welcome":
            rec["lease_ms"] = get("lease_ms", get("leaseMs"))
            rec["heartbeat_ms"] = get("heartbeat_ms", get("heartbeatMs"))
        elif kind == "assign":
            spec = get("spec") or {}
            source = spec.get("source") or {} if isinstance(spec, dict) else {}
            rec.update(task=get("task"), attempt=get("attempt", 0), job=get("job"),
                       source=source.get("name") if isinstance(source, dict) else None)
        elif kind == "complete":
            stats = get("stats") or {}
            rec.update(task=get("task"), attempt=get("attempt", 0), part=get("part", 0), parts=get("parts", 0),
                       rows=stats.get("rows") if isinstance(stats, dict) else None)
        elif kind == "fail":
            error = get("error") or {}
            rec.update(task=get("task"), attempt=get("attempt", 0),
                       code=error.get("code", "") if isinstance(error, dict) else "",
                       retryable=bool(get("retryable", False)),
                       retry_after_ms=get("retry_after_ms", get("retryAfterMs", 0)))
        elif kind == "ack":
            rec.update(task=get("task"), attempt=get("attempt", 0), accepted=bool(get("accepted", False)),
                       reason=get("reason", ""))
        elif kind == "heartbeat":
            rec["leases"] = [[l.get("task"), l.get("attempt", 0)] for l in get("leases") or [] if isinstance(l, dict)]
        elif kind == "heartbeat_ack":
            rec["extended"] = len(get("extended") or [])
            rec["revoked"] = [[l.get("task"), l.get("attempt", 0)] for l in get("revoked") or [] if isinstance(l, dict)]
        elif kind == "credit":
            rec.update(pool=get("pool"), free=get("free", 0))
        elif kind == "error":
            rec.update(code=get("code", ""), message=str(get("message", ""))[:200])
        return rec

    # ---- faults

    def latency(self, conn, direction):
        ms, jitter = self.peer_delay.get((conn.peer, direction), self.delay[direction])
        if ms <= 0 and jitter <= 0:
            return 0.0
        return (ms + self.rng.uniform(0, jitter)) / 1000.0

    def stalled_until(self, conn):
        return max(self.stall_until, self.peer_stall.get(conn.peer, 0.0))

    def cut(self, conn, why):
        if conn.closed:
            return
        conn.why = conn.why or why
        for transport in conn.transports:
            try:
                sock = transport.get_extra_info("socket")
                if sock is not None:  # an RST, not a FIN: the peer sees the connection reset
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except OSError:
                pass
            transport.abort()

    # ---- connections

    async def handle(self, reader, writer):
        cid = self.next_id
        self.next_id += 1
        client = writer.get_extra_info("peername")
        client = f"{client[0]}:{client[1]}" if client else "?"
        now = time.monotonic()
        if now < self.refuse_until:
            self.record({"event": "refused", "conn": cid, "client": client, "mode": self.refuse_mode})
            if self.refuse_mode == "blackhole":
                await asyncio.sleep(min(self.refuse_until - now, 600))
            writer.transport.abort()
            return
        try:
            ureader, uwriter = await asyncio.wait_for(asyncio.open_connection(*self.upstream), 10)
        except (OSError, asyncio.TimeoutError) as error:
            self.record({"event": "upstream_failed", "conn": cid, "client": client, "error": str(error)[:200]})
            writer.transport.abort()
            return
        conn = Conn(cid, client)
        conn.transports = [writer.transport, uwriter.transport]
        self.conns[cid] = conn
        self.record({"event": "open", "conn": cid, "client": client})
        w2c = Direction(conn, "w2c", reader, uwriter)
        c2w = Direction(conn, "c2w", ureader, writer)
        conn.dirs = [w2c, c2w]
        tasks = [asyncio.create_task(self.read_side(d)) for d in conn.dirs] + \
                [asyncio.create_task(self.write_side(d)) for d in conn.dirs]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        # One side ended: flush what the other writer has queued only if the end was clean.
        if not conn.why:
            conn.why = "eof"
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        undelivered = 0
        for d in conn.dirs:
            while not d.queue.empty():
                item = d.queue.get_nowait()
                if item is not None and item[1]:
                    undelivered += 1
                    rec = self.describe(conn, d.name, item[1].rstrip(b"\r\n"))
                    rec["undelivered"] = True
                    self.record(rec)
        conn.closed = True
        for transport in conn.transports:
            if conn.why == "eof":
                transport.close()
            else:
                transport.abort()
        self.conns.pop(cid, None)
        self.record({"event": "close", "conn": cid, "peer": conn.peer, "why": conn.why, "undelivered": undelivered})

    async def read_side(self, d):
        pending = b""
        try:
            while True:
                chunk = await d.reader.read(65536)
                if not chunk:
                    break
                pending += chunk
                start = 0
                while True:
                    end = pending.find(b"\n", start)
                    if end < 0:
                        break
                    await d.queue.put((time.monotonic(), pending[start:end + 1], True))
                    start = end + 1
                pending = pending[start:]
                if len(pending) > MAX_PARTIAL:  # not a protocol line: forward it raw
                    await d.queue.put((time.monotonic(), pending, False))
                    pending = b""
        except (ConnectionError, OSError):
            d.conn.why = d.conn.why or f"{d.name} read error"
        if pending:
            await d.queue.put((time.monotonic(), pending, False))
        await d.queue.put(None)
        # The writer ends the connection once it has sent everything before the EOF.
        await asyncio.Event().wait()

    async def write_side(self, d):
        conn = d.conn
        try:
            while True:
                item = await d.queue.get()
                if item is None:
                    conn.why = conn.why or f"{'worker' if d.name == 'w2c' else 'coordinator'} closed"
                    return
                arrived, data, whole = item
                due = max(arrived + self.latency(conn, d.name), d.last_due)
                d.last_due = due
                while True:
                    now = time.monotonic()
                    wait = max(due - now, self.stalled_until(conn) - now)
                    if wait <= 0:
                        break
                    await asyncio.sleep(min(wait, 0.5))
                d.writer.write(data)
                line = data.rstrip(b"\r\n") if whole else b""
                rec = self.describe(conn, d.name, line) if whole else {
                    "conn": conn.id, "peer": conn.peer, "dir": d.name, "type": "raw", "n": len(data)}
                self.counts[rec["type"]] = self.counts.get(rec["type"], 0) + 1
                self.record(rec)
                await d.writer.drain()
        except (ConnectionError, OSError):
            conn.why = conn.why or f"{d.name} write error"

    # ---- control

    async def chaos(self, seconds, cut_min, cut_max):
        end = time.monotonic() + seconds
        try:
            while True:
                pause = self.rng.uniform(cut_min, cut_max)
                if time.monotonic() + pause >= end:
                    await asyncio.sleep(max(0.0, end - time.monotonic()))
                    break
                await asyncio.sleep(pause)
                live = [c for c in self.conns.values() if not c.closed]
                if live:
                    victim = self.rng.choice(live)
                    self.record({"event": "fault", "fault": "chaos_cut", "conn": victim.id, "peer": victim.peer})
                    self.cut(victim, "chaos cut")
        finally:
            self.delay = {"w2c": (0, 0), "c2w": (0, 0)}
            self.record({"event": "fault", "fault": "chaos_end"})

    def command(self, cmd):
        kind = cmd.get("cmd")
        now = time.monotonic()
        peer = cmd.get("peer")
        self.record({"event": "fault", "fault": kind, "command": cmd})
        if kind == "delay":
            value = (float(cmd.get("ms", 0)), float(cmd.get("jitter_ms", 0)))
            dirs = ["w2c", "c2w"] if cmd.get("dir", "both") == "both" else [cmd["dir"]]
            for direction in dirs:
                if peer:
                    self.peer_delay[(peer, direction)] = value
                else:
                    self.delay[direction] = value
            return {"ok": True}
        if kind == "stall":
            until = now + float(cmd.get("seconds", 0))
            if peer:
                self.peer_stall[peer] = until
            else:
                self.stall_until = until
            return {"ok": True}
        if kind == "cut":
            victims = [c for c in self.conns.values() if not peer or c.peer == peer]
            for victim in victims:
                self.cut(victim, "cut")
            return {"ok": True, "cut": [v.id for v in victims]}
        if kind == "cut_random":
            live = [c for c in self.conns.values() if not c.closed]
            if not live:
                return {"ok": True, "cut": []}
            victim = self.rng.choice(live)
            self.cut(victim, "cut")
            return {"ok": True, "cut": [victim.id], "peer": victim.peer}
        if kind == "drop":
            self.refuse_until = now + float(cmd.get("seconds", 0))
            self.refuse_mode = cmd.get("mode", "reset")
            victims = list(self.conns.values())
            for victim in victims:
                self.cut(victim, "drop")
            return {"ok": True, "cut": [v.id for v in victims]}
        if kind == "chaos":
            self.delay = {d: (float(cmd.get("delay_ms", 0)), float(cmd.get("jitter_ms", 0))) for d in ("w2c", "c2w")}
            if self.chaos_task and not self.chaos_task.done():
                self.chaos_task.cancel()
            self.chaos_task = asyncio.get_running_loop().create_task(
                self.chaos(float(cmd.get("seconds", 10)), float(cmd.get("cut_min_s", 1)), float(cmd.get("cut_max_s", 3))))
            return {"ok": True}
        if kind == "stats":
            return {"ok": True, "connections": [[c.id, c.peer] for c in self.conns.values()], "lines": self.counts}
        return {"ok": False, "error": f"unknown command {kind!r}"}

    async def control(self, reader, writer):
        try:
            for _ in range(1000):
                line = await reader.readline()
                if not line:
                    break
                try:
                    reply = self.command(json.loads(line))
                except (ValueError, KeyError, TypeError) as error:
                    reply = {"ok": False, "error": str(error)}
                writer.write((json.dumps(reply) + "\n").encode())
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def run(self):
        host, port = split_hostport(self.args.listen)
        server = await asyncio.start_server(self.handle, host, port, backlog=512)
        bound = server.sockets[0].getsockname()
        address = f"{bound[0]}:{bound[1]}"
        if self.args.control:
            if os.path.exists(self.args.control):
                os.unlink(self.args.control)
            await asyncio.start_unix_server(self.control, self.args.control)
        self.record({"event": "listening", "address": address, "upstream": self.args.upstream})
        if self.args.ready_file:
            tmp = self.args.ready_file + ".tmp"
            with open(tmp, "w") as fh:
                fh.write(address + "\n")
            os.rename(tmp, self.args.ready_file)
        print(f"proxy {address} -> {self.args.upstream}", flush=True)
        if self.args.cut_every > 0:
            asyncio.get_running_loop().create_task(
                self.chaos(1e9, self.args.cut_every * 0.5, self.args.cut_every * 1.5))
        parent = os.getppid()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        end = time.monotonic() + self.args.max_seconds
        while not stop.is_set() and time.monotonic() < end:
            if self.args.exit_with_parent and os.getppid() != parent:
                break
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
        server.close()
        for conn in list(self.conns.values()):
            self.cut(conn, "proxy stopping")
        await asyncio.sleep(0.1)
        self.record({"event": "stopped"})
        self.history.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", default="127.0.0.1:0", help="where workers connect (host:port; port 0 picks one)")
    ap.add_argument("--upstream", required=True, help="the coordinator (host:port)")
    ap.add_argument("--history", required=True, help="JSONL file to append the history to")
    ap.add_argument("--control", help="a Unix socket path for fault commands")
    ap.add_argument("--ready-file", help="write host:port here once listening")
    ap.add_argument("--delay-ms", type=float, default=0, help="latency added to every line")
    ap.add_argument("--jitter-ms", type=float, default=0, help="plus a uniform random 0..jitter")
    ap.add_argument("--cut-every", type=float, default=0, help="reset a random connection about every N s")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--exit-with-parent", action="store_true", help="exit when the parent process is gone")
    ap.add_argument("--max-seconds", type=float, default=4 * 3600, help="exit after this long (default 4 h)")
    args = ap.parse_args(argv)
    asyncio.run(Proxy(args).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
