#!/usr/bin/env python3
"""A Haat protocol client written from docs/protocol.md alone: raw JSON lines, stdlib only.

  raw_client.py job    --coordinator HOST:PORT --token-file CRED.json --spec SPEC.json [--timeout 60]
  raw_client.py faults --coordinator HOST:PORT --token-file CRED.json [--max-line-bytes N]
"""
import argparse, hashlib, hmac, json, os, socket, sys, time


class ProtocolError(Exception):
    pass


class Conn:
    """One TCP connection speaking newline-delimited JSON."""

    def __init__(self, addr, timeout=10.0):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.buf = b""
        self.timeout = timeout

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    def recv(self, timeout=None):
        """The next non-empty line as a dict; None on EOF; ProtocolError on timeout or bad JSON."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError("timed out waiting for a line")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise ProtocolError("timed out waiting for a line")
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        line = line.rstrip(b"\r")
        if not line.strip():
            return self.recv(timeout)
        try:
            msg = json.loads(line)
        except ValueError:
            raise ProtocolError(f"server sent a non-JSON line: {line[:200]!r}")
        if not isinstance(msg, dict):
            raise ProtocolError(f"server sent a non-object line: {line[:200]!r}")
        return msg

    def reply(self, req_id, timeout=None):
        """Wait for the reply to req_id, skipping unrelated messages. Errors without reply_to count too."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self.recv(max(0.01, deadline - time.monotonic()))
            if msg is None:
                raise ProtocolError(f"connection closed while waiting for reply to {req_id!r}")
            rt = msg.get("reply_to", msg.get("replyTo", ""))
            if rt == req_id or ("error" in msg and not rt):
                return msg

    def at_eof(self, timeout=5.0):
        """True if the server closes the connection within timeout (ignoring any further lines)."""
        try:
            while True:
                if self.recv(timeout) is None:
                    return True
        except ProtocolError:
            return False

    def close(self):
        self.sock.close()


def as_int(v, default=0):
    """64-bit integers arrive as JSON strings, 32-bit ones as numbers; omitted means default."""
    return default if v is None or v == "" else int(v)


def mac_hex(secret, *parts):
    return hmac.new(secret.encode(), "\n".join(parts).encode(), hashlib.sha256).hexdigest()


def load_cred(path):
    with open(path) as f:
        cred = json.load(f)
    for k in ("secret", "token_id"):
        if not cred.get(k):
            raise ProtocolError(f"credential file {path} has no {k}")
    return cred


def open_hello(addr, cred, role="client", name="raw-client", mac=None, extra=None):
    """Connect, read the challenge and send hello. Returns (conn, nonce, client_nonce)."""
    conn = Conn(addr)
    ch = conn.recv()
    if ch is None or "challenge" not in ch:
        raise ProtocolError(f"expected challenge, got {ch!r}")
    ch = ch["challenge"]
    if 1 not in ch.get("versions", []):
        raise ProtocolError(f"server does not offer version 1: {ch!r}")
    nonce, cnonce = ch.get("nonce", ""), os.urandom(16).hex()
    if mac is None:
        mac = mac_hex(cred["secret"], "client", nonce, cnonce, role, name)
    hello = {"version": 1, "role": role, "name": name, "token_id": cred["token_id"],
             "client_nonce": cnonce, "mac": mac, **(extra or {})}
    conn.send({"id": "hello", "hello": hello})
    return conn, nonce, cnonce


def handshake(addr, cred, role="client", name="raw-client"):
    """Full handshake with server_mac verification. Returns (conn, welcome)."""
    conn, nonce, cnonce = open_hello(addr, cred, role, name)
    msg = conn.reply("hello")
    if "error" in msg:
        raise ProtocolError(f"handshake refused: {msg['error']}")
    if "welcome" not in msg:
        raise ProtocolError(f"expected welcome, got {msg!r}")
    welcome = msg["welcome"]
    want = mac_hex(cred["secret"], "server", nonce, cnonce, welcome.get("session", ""))
    if not hmac.compare_digest(want, welcome.get("server_mac", "")):
        conn.close()
        raise ProtocolError("server_mac is wrong: this coordinator does not know our secret")
    return conn, welcome


def request(conn, req_id, body_name, body, expect):
    """Send a request and return the body of the expected reply; ProtocolError otherwise."""
    conn.send({"id": req_id, body_name: body})
    msg = conn.reply(req_id)
    if expect not in msg:
        raise ProtocolError(f"{body_name}: expected {expect}, got {msg!r}")
    return msg[expect]


# ---------------------------------------------------------------- job mode

def run_job(args):
    deadline = time.monotonic() + args.timeout
    cred = load_cred(args.token_file)
    with open(args.spec) as f:
        spec = json.load(f)
    conn, welcome = handshake(args.coordinator, cred)
    print(f"connected: session {welcome.get('session')} as {welcome.get('role')}", file=sys.stderr)
    acc = request(conn, "submit", "submit", {"spec": spec}, "accepted")
    job = acc.get("job", "")
    print(f"accepted: job {job}, {as_int(acc.get('tasks'))} tasks", file=sys.stderr)
    conn.send({"id": "watch", "watch": {"job": job}})
    state = ""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProtocolError(f"job {job} did not finish within {args.timeout}s")
        msg = conn.reply("watch", timeout=left)
        if "job_event" not in msg:
            raise ProtocolError(f"watch: expected job_event, got {msg!r}")
        ev = msg["job_event"]
        state, c = ev.get("state", ""), ev.get("counts", {})
        print(f"event: job {ev.get('job', job)} {state} done={as_int(c.get('done'))}"
              f"/{as_int(c.get('total'))} leased={as_int(c.get('leased'))} dead={as_int(c.get('dead'))}"
              f"{' final' if ev.get('final') else ''}", file=sys.stderr)
        if ev.get("final", False):
            break
    result = request(conn, "result", "get_result", {"job": job}, "result")
    conn.close()
    state = result.get("job", {}).get("state", state)
    print(json.dumps({"job": as_int(job), "state": state, "report": result.get("report", {})}))
    return 0 if state == "succeeded" else 3


# ---------------------------------------------------------------- faults mode

def expect_error(conn, req_id, code):
    """Wait for the reply to req_id (or an error with no reply_to) and check it is error{code}."""
    msg = conn.reply(req_id)
    err = msg.get("error")
    if err is None:
        raise ProtocolError(f"expected error {code}, got {msg!r}")
    if err.get("code") != code:
        raise ProtocolError(f"expected error {code}, got {err!r}")
    if req_id and msg.get("reply_to") != req_id:
        raise ProtocolError(f"error has reply_to {msg.get('reply_to')!r}, wanted {req_id!r}")
    return err


def expect_closed(conn):
    if not conn.at_eof(5.0):
        raise ProtocolError("connection still open after the error")


def expect_open(conn):
    conn.send({"id": "p1", "ping": {}})
    msg = conn.reply("p1")
    if "pong" not in msg or msg.get("reply_to") != "p1":
        raise ProtocolError(f"ping after the error got {msg!r}, not a pong")


def check_wrong_hmac(a):
    conn, _, _ = open_hello(a.coordinator, a.cred, mac="0" * 64)
    expect_error(conn, "hello", "auth_failed")
    expect_closed(conn)


def check_wrong_role(a):
    conn, _, _ = open_hello(a.coordinator, a.cred, role="worker")  # correct MAC for "worker"
    expect_error(conn, "hello", "auth_failed")
    expect_closed(conn)


def check_non_json_line(a):
    conn, _ = handshake(a.coordinator, a.cred)
    conn.send_raw(b"this is not json\n")
    expect_error(conn, "", "bad_frame")
    expect_open(conn)


def check_unknown_type(a):
    conn, _ = handshake(a.coordinator, a.cred)
    conn.send({"id": "u1", "frobnicate": {}})
    expect_error(conn, "u1", "unsupported")
    expect_open(conn)


def check_over_long_line(a):
    conn, welcome = handshake(a.coordinator, a.cred)
    if as_int(welcome.get("max_line_bytes")) not in (0, a.max_line_bytes):
        print(f"note: welcome.max_line_bytes={welcome.get('max_line_bytes')}, testing "
              f"--max-line-bytes={a.max_line_bytes}", file=sys.stderr)
    try:
        conn.send_raw(b'"' + b"x" * (a.max_line_bytes + 100) + b'"\n')
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may close before it has read everything; the reply is already sent
    expect_error(conn, "", "frame_too_long")
    expect_closed(conn)


def check_forbidden(a):
    conn, _ = handshake(a.coordinator, a.cred)
    conn.send({"id": "f1", "complete": {"task": "1", "attempt": 1}})
    expect_error(conn, "f1", "forbidden")
    expect_open(conn)


def check_bad_spec(a):
    conn, _ = handshake(a.coordinator, a.cred)
    conn.send({"id": "b1", "submit": {"spec": {"sources": [{"url": "ftp://x"}]}}})
    err = expect_error(conn, "b1", "bad_spec")
    if not err.get("field"):
        raise ProtocolError(f"bad_spec error has no field: {err!r}")


CHECKS = [check_wrong_hmac, check_wrong_role, check_non_json_line, check_unknown_type,
          check_over_long_line, check_forbidden, check_bad_spec]


def run_faults(args):
    args.cred = load_cred(args.token_file)
    passed = failed = 0
    for check in CHECKS:
        name = check.__name__[len("check_"):]
        try:
            check(args)
            print(f"PASS {name}")
            passed += 1
        except (ProtocolError, OSError) as e:
            print(f"FAIL {name}: {e}")
            failed += 1
        sys.stdout.flush()
    print(f"raw_client: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    for mode in ("job", "faults"):
        s = sub.add_parser(mode)
        s.add_argument("--coordinator", required=True, help="HOST:PORT")
        s.add_argument("--token-file", required=True, help="credential JSON from `haat token create`")
        if mode == "job":
            s.add_argument("--spec", required=True, help="JSON file holding the JobSpec")
            s.add_argument("--timeout", type=float, default=60.0)
        else:
            s.add_argument("--max-line-bytes", type=int, default=1048576)
    args = p.parse_args()
    try:
        return run_job(args) if args.mode == "job" else run_faults(args)
    except (ProtocolError, OSError, ValueError) as e:
        print(f"raw_client: protocol error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
