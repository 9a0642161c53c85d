#!/usr/bin/env python3
"""A Haat protocol client written from docs/protocol.md alone: raw JSON lines, stdlib only.

  raw_client.py job    --coordinator HOST:PORT --token-file CRED.json --spec SPEC.json [--timeout 60]
  raw_client.py faults --coordinator HOST:PORT --token-file CRED.json [--max-line-bytes N]
  raw_client.py worker --coordinator HOST:PORT --token-file WORKER.json --client-token-file CRED.json [--name N]
  raw_client.py logger --coordinator HOST:PORT --token-file WORKER.json --client-token-file CRED.json [--name N]
"""
import argparse, hashlib, hmac, json, os, socket, sys, time


class ProtocolError(Exception):
    """Anything the peer did that the protocol does not allow, or a timeout."""


class Conn:
    """One TCP connection speaking newline-delimited JSON."""

    def __init__(self, addr, timeout=10.0):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.buf = b""
        self.timeout = timeout
        self.longest = 0  # the longest line received, newline not counted

    def send(self, msg):
        """Send a dict as one JSON line, or raw bytes as they are."""
        if isinstance(msg, dict):
            msg = json.dumps(msg, separators=(",", ":")).encode() + b"\n"
        self.sock.sendall(msg)

    def recv(self, timeout=None):
        """The next non-empty line as a dict; None on EOF; ProtocolError on timeout or bad JSON."""
        deadline = time.monotonic() + (timeout or self.timeout)
        line = b""
        while not line.strip():  # empty lines are ignored
            while b"\n" not in self.buf:
                try:
                    self.sock.settimeout(max(0.001, deadline - time.monotonic()))
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    raise ProtocolError("timed out waiting for a line")
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    return None
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            self.longest = max(self.longest, len(line.rstrip(b"\r")))
        try:
            msg = json.loads(line)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            raise ProtocolError(f"server sent a line that is not a JSON object: {line[:200]!r}")
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
    if not cred.get("secret") or not cred.get("token_id"):
        raise ProtocolError(f"credential file {path} needs secret and token_id")
    return cred


def open_hello(addr, cred, role="client", name="raw-client", mac=None, max_line_bytes=None, worker=None):
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
             "client_nonce": cnonce, "mac": mac}
    if max_line_bytes is not None:
        hello["max_line_bytes"] = max_line_bytes
    if worker is not None:
        hello["worker"] = worker
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
    if not hmac.compare_digest(want.encode(), str(welcome.get("server_mac", "")).encode()):
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
    while True:
        try:
            msg = conn.reply("watch", timeout=max(0.01, deadline - time.monotonic()))
        except ProtocolError as e:
            if time.monotonic() < deadline:
                raise
            raise ProtocolError(f"job {job} did not finish within {args.timeout:g}s ({e})")
        if "job_event" not in msg:
            raise ProtocolError(f"watch: expected job_event, got {msg!r}")
        ev = msg["job_event"]
        state, c = ev.get("state", ""), ev.get("counts", {})
        print(f"event: job {ev.get('job', job)} {state} done={as_int(c.get('done'))}"
              f"/{as_int(c.get('total'))} leased={as_int(c.get('leased'))} dead={as_int(c.get('dead'))}"
              f"{' final' if ev.get('final') else ''}", file=sys.stderr)
        if ev.get("final", False):
            break
    result = read_result(conn, job)
    conn.close()
    state = result.get("job", {}).get("state", state)
    print(json.dumps({"job": job, "state": state, "report": result.get("report", {})}))
    return 0 if state == "succeeded" else 3


def read_result(conn, job):
    """get_result, joining a result sent in parts: lists concatenate in part order, the
    other fields come from the last part (the one with `parts`)."""
    part = request(conn, "result", "get_result", {"job": job}, "result")
    parts = [part]
    while part.get("part") and not part.get("parts"):
        msg = conn.reply("result")
        if "result" not in msg:
            raise ProtocolError(f"get_result: expected the next result part, got {msg!r}")
        part = msg["result"]
        parts.append(part)
    if len(parts) == 1:
        return part
    whole = dict(parts[-1])
    report = whole.setdefault("report", {})
    rows = [r for p in parts for r in p.get("report", {}).get("engagement", {}).get("rows", [])]
    missing = [m for p in parts for m in p.get("report", {}).get("summary", {}).get("missing", [])]
    report.setdefault("engagement", {})["rows"] = rows
    report.setdefault("summary", {})["missing"] = missing
    return whole


# ---------------------------------------------------------------- faults mode

def expect_error(conn, req_id, code):
    """Wait for the reply to req_id (or an error with no reply_to) and check it is error{code}."""
    msg = conn.reply(req_id)
    err = msg.get("error") or {}
    if err.get("code") != code:
        raise ProtocolError(f"expected error {code}, got {msg!r}")
    if req_id and msg.get("reply_to") != req_id:
        raise ProtocolError(f"error has reply_to {msg.get('reply_to')!r}, wanted {req_id!r}")
    return err


def expect_closed(conn):
    """The server must close the connection within 5 s (any further lines are ignored)."""
    try:
        while conn.recv(5.0) is not None:
            pass
    except ProtocolError:
        raise ProtocolError("connection still open 5 s after the error")


def expect_open(conn):
    conn.send({"id": "p1", "ping": {}})
    msg = conn.reply("p1")
    if "pong" not in msg:
        raise ProtocolError(f"ping after the error got {msg!r}, not a pong")


def bad_hello(a, **hello_args):
    """A refused handshake: error auth_failed, then the server closes the connection."""
    conn = open_hello(a.coordinator, a.cred, **hello_args)[0]
    try:
        expect_error(conn, "hello", "auth_failed")
        expect_closed(conn)
    finally:
        conn.close()


def ping_first(a):
    """A first message other than hello: error auth_failed with its reply_to, then closed."""
    conn = Conn(a.coordinator)
    try:
        first = conn.recv()
        if first is None or "challenge" not in first:
            raise ProtocolError(f"expected challenge, got {first!r}")
        conn.send({"id": "p0", "ping": {}})
        expect_error(conn, "p0", "auth_failed")
        expect_closed(conn)
    finally:
        conn.close()
    # With an id over 64 bytes, the refusal does not echo it (a reply as long as the line,
    # to a peer with no token).
    conn = Conn(a.coordinator)
    try:
        conn.recv()
        conn.send({"id": "x" * 100, "get_job": {"job": "1"}})
        msg = conn.recv()
        if not msg or msg.get("error", {}).get("code") != "auth_failed" or msg.get("reply_to", "") != "":
            raise ProtocolError(f"a first line with a 100-byte id: expected auth_failed without reply_to, got {msg!r}")
        expect_closed(conn)
    finally:
        conn.close()


def after_handshake(a, line, reply_to, code, then):
    """Handshake, send one raw line, expect error{code}, then run `then(conn)`."""
    conn = handshake(a.coordinator, a.cred)[0]
    try:
        try:
            conn.send(line)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close before reading it all; its reply is still in our buffer
        err = expect_error(conn, reply_to, code)
        if then:
            then(conn)
        return err
    finally:
        conn.close()


def negotiated_limit_before_newline(a):
    """A session that asked for a 64 KiB line limit has a line still open past it refused at
    once, before any newline comes: the coordinator holds no more than the session's limit."""
    conn, _, _ = open_hello(a.coordinator, a.cred, max_line_bytes=65536)
    try:
        welcome = conn.reply("hello").get("welcome", {})
        if welcome.get("max_line_bytes") != 65536:
            raise ProtocolError(f"asked for 65536, welcome says {welcome!r}")
        try:
            conn.send(b"x" * 70000)  # no newline
        except (BrokenPipeError, ConnectionResetError):
            pass
        err = expect_error(conn, "", "frame_too_long")
        if "65536" not in err.get("message", ""):
            raise ProtocolError(f"frame_too_long does not name the session's limit: {err!r}")
        expect_closed(conn)
    finally:
        conn.close()


def check_bad_spec(a):
    err = after_handshake(a, b'{"id":"b1","submit":{"spec":{"sources":[{"url":"ftp://x"}]}}}\n',
                          "b1", "bad_spec", None)
    if not err.get("field"):
        raise ProtocolError(f"bad_spec error has no field: {err!r}")


def collect(conn, ids):
    """The first reply to each of `ids`, in whatever order they come."""
    got = {}
    while len(got) < len(ids):
        msg = conn.recv()
        if msg is None:
            raise ProtocolError(f"connection closed with {len(ids) - len(got)} replies missing")
        rt = msg.get("reply_to", "")
        if rt in ids and rt not in got:
            got[rt] = msg
    return got


def check_session_bounds(a):
    """A session cannot make the coordinator hold unbounded work, and every line stays under
    the session's limit: a 30,000-task job's tasks and the job list come a page at a time
    (every task exactly once), pipelined reads beyond the in-flight bound and watches beyond
    the per-session bound are refused as busy, and the session still answers afterwards."""
    conn, welcome = handshake(a.coordinator, a.cred)
    limit = as_int(welcome.get("max_line_bytes"), a.max_line_bytes)
    try:
        job = request(conn, "s1", "submit", {"spec": {"name": "big", "not_before": "2099-01-01T00:00:00Z",
                                                     "sources": [{"kind": "noop", "tasks": 30000}]}},
                      "accepted")["job"]
        seen, after, pages = [], "", 0
        while True:
            page = request(conn, f"t{pages}", "get_job", {"job": job, "tasks": True, "after": after}, "job")
            seen += [t["id"] for t in page.get("tasks", [])]
            pages += 1
            after = page.get("next", "")
            if not after:
                break
            if pages > 1000:
                raise ProtocolError("get_job pages never end")
        if len(seen) != 30000 or len(set(seen)) != 30000:
            raise ProtocolError(f"paged get_job gave {len(seen)} tasks ({len(set(seen))} distinct), not 30000")
        listed, after = [], ""
        while True:
            page = request(conn, f"l{len(listed)}", "list_jobs", {"limit": 2, "after": after}, "job_list")
            if any("spec" in j for j in page.get("jobs", [])):
                raise ProtocolError("list_jobs carried a spec")
            listed += [j["id"] for j in page.get("jobs", [])]
            after = page.get("next", "")
            if not after:
                break
        if job not in listed or len(listed) != len(set(listed)):
            raise ProtocolError(f"paged list_jobs gave {listed}")
        if conn.longest > limit:
            raise ProtocolError(f"the coordinator sent a line of {conn.longest} bytes, over the limit of {limit}")
        burst = b"".join(json.dumps({"id": f"g{i}", "get_job": {"job": job}}).encode() + b"\n" for i in range(40))
        conn.sock.sendall(burst)
        replies = collect(conn, {f"g{i}" for i in range(40)})
        busy = sum(1 for m in replies.values() if m.get("error", {}).get("code") == "busy")
        for rid, msg in replies.items():
            if "job" not in msg and msg.get("error", {}).get("code") != "busy":
                raise ProtocolError(f"get_job {rid}: expected job or busy, got {msg!r}")
        if busy == 0:
            raise ProtocolError("40 pipelined reads were all taken in flight; expected busy past the bound")
        for i in range(20):
            conn.send({"id": f"w{i}", "watch": {"job": job}})
        replies = collect(conn, {f"w{i}" for i in range(20)})
        refused = sum(1 for m in replies.values() if m.get("error", {}).get("code") == "busy")
        if refused != 4:
            raise ProtocolError(f"expected 4 of 20 watches refused (16 per session), got {refused}")
        request(conn, "c1", "cancel", {"job": job}, "job")
        expect_open(conn)
    finally:
        conn.close()


def check_connection_limits(a):
    """One address may hold at most 512 connections open (docs: busy at connect): the
    connections past that get error busy instead of a challenge; closing them frees room."""
    conns = []
    try:
        refused = None
        for i in range(520):
            conn = Conn(a.coordinator)
            conns.append(conn)
            first = conn.recv()
            if first and "error" in first:
                if first["error"].get("code") != "busy":
                    raise ProtocolError(f"expected busy past the per-address bound, got {first!r}")
                refused = i
                break
        if refused is None:
            raise ProtocolError("520 connections from one address were all taken")
        if refused < 500:
            raise ProtocolError(f"refused after only {refused} connections (this test's own count)")
    finally:
        for conn in conns:
            conn.close()
    time.sleep(0.5)
    handshake(a.coordinator, a.cred)[0].close()  # room again


def check_auth_throttle(a):
    """Failed handshakes from one address are throttled: after a burst of wrong MACs a new
    connection is refused with busy before any challenge. Runs last: it locks this address
    out for a minute."""
    for attempt in range(60):
        conn = Conn(a.coordinator)
        try:
            first = conn.recv()
            if first and "error" in first:
                if first["error"].get("code") != "busy":
                    raise ProtocolError(f"expected busy for a throttled address, got {first!r}")
                if attempt < 5:
                    raise ProtocolError(f"throttled after only {attempt} failures")
                return
            nonce, cnonce = first["challenge"]["nonce"], os.urandom(16).hex()
            conn.send({"id": "h", "hello": {"version": 1, "role": "client", "name": "guesser",
                                            "token_id": a.cred["token_id"], "client_nonce": cnonce,
                                            "mac": "0" * 64}})
            expect_error(conn, "h", "auth_failed")
        finally:
            conn.close()
    raise ProtocolError("60 wrong MACs in a row and still not throttled")


CHECKS = [
    ("session_bounds", check_session_bounds),
    ("wrong_hmac", lambda a: bad_hello(a, mac="0" * 64)),
    ("wrong_role", lambda a: bad_hello(a, role="worker")),  # with the correct MAC for "worker"
    ("ping_first", ping_first),
    ("non_json_line", lambda a: after_handshake(a, b"this is not json\n", "", "bad_frame", expect_open)),
    ("unknown_type", lambda a: after_handshake(
        a, b'{"id":"u1","frobnicate":{}}\n', "u1", "unsupported", expect_open)),
    ("over_long_line", lambda a: after_handshake(
        a, b'"' + b"x" * (a.max_line_bytes + 100) + b'"\n', "", "frame_too_long", expect_closed)),
    ("negotiated_limit_before_newline", negotiated_limit_before_newline),
    ("long_id", lambda a: after_handshake(
        a, b'{"id":"' + b"i" * 65 + b'","ping":{}}\n', "", "bad_request", expect_open)),
    ("forbidden", lambda a: after_handshake(
        a, b'{"id":"f1","complete":{"task":"1","attempt":1}}\n', "f1", "forbidden", expect_open)),
    ("bad_spec", check_bad_spec),
    ("connection_limits", check_connection_limits),
    ("auth_throttle", check_auth_throttle),
]


def run_faults(args):
    args.cred = load_cred(args.token_file)
    passed = failed = 0
    for name, check in CHECKS:
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


# ---------------------------------------------------------------- worker mode

def varint(n):
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def field(number, value):
    """One protobuf field: bytes/strings/messages length-delimited, ints as varints."""
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(number << 3 | 2) + varint(len(value)) + value


def engagement_partial(account, posts, likes):
    """A Partial (analytics.proto) with one EngagementCell, in protobuf's binary encoding."""
    cell = field(1, "x") + field(2, account) + field(3, "image") + field(4, posts) + field(5, likes)
    return field(1, field(1, cell))  # Partial.engagement = 1, EngagementPartial.cells = 1


def b64(data):
    import base64
    return base64.b64encode(data).decode()


def next_assign(conn, task=None):
    """The next `assign` on a worker session (for `task`, when given), other lines skipped."""
    while True:
        msg = conn.recv()
        if msg is None:
            raise ProtocolError("the coordinator closed the worker session")
        if "assign" in msg and (task is None or msg["assign"]["task"] == task):
            return msg["assign"]


def run_greedy(args):
    """A worker whose hello claims too much: the most slots a uint32 holds in both pools, a
    pool twice, a pool that does not exist, a 100 KB host name. Then a heartbeat naming a
    lease by no task id, and a bad line with a 65-byte id; then it holds its session for
    --hold seconds, for the CLI to show it."""
    cred = load_cred(args.token_file)
    most = 2**32 - 1
    info = {"host": "H" * 100_000, "pid": 1, "version": "v" * 1000,
            "pools": [{"pool": "collect", "slots": most}, {"pool": "analyze", "slots": most},
                      {"pool": "collect", "slots": 5}, {"pool": "p" * 1000, "slots": 7}]}
    conn, _, _ = open_hello(args.coordinator, cred, role="worker", name=args.name, worker=info)
    if "welcome" not in conn.reply("hello"):
        raise ProtocolError("the greedy hello was refused")
    # "012" is no spelling of task 12: it would only be echoed back.
    conn.send({"id": "hb", "heartbeat": {"leases": [{"task": "012", "attempt": 1}]}})
    error = conn.reply("hb").get("error", {})
    if error.get("code") != "bad_request" or error.get("field") != "leases[0].task":
        raise ProtocolError(f"a lease named by no task id: expected bad_request on leases[0].task, got {error!r}")
    # A bad line's long id is not echoed (a reply as long as the request, to anyone).
    conn.send({"id": "i" * 65, "credit": {"pool": "collect", "free": -1}})
    msg = conn.recv()
    if not msg or "error" not in msg or msg.get("reply_to", "") != "":
        raise ProtocolError(f"a bad line with a 65-byte id: expected an error without reply_to, got {msg!r}")
    print("greedy worker connected", flush=True)
    time.sleep(args.hold)
    conn.close()
    return 0


def run_narrow(args):
    """A worker that reads lines of at most 64 KiB. A spec whose task would be longer is
    refused at submit, naming the field (it was accepted, and its task could never be sent);
    the longest spec taken, every source text at its most, gives an assign the worker reads.
    Prints the refused field and that assign's length."""
    cred, client_cred = load_cred(args.token_file), load_cred(args.client_token_file)
    client, _ = handshake(args.coordinator, client_cred)
    long_spec = {"name": "narrow", "sources": [{"kind": "noop", "url": "https://example.com/" + "a" * 70_000}]}
    client.send({"id": "long", "submit": {"spec": long_spec}})
    refused = client.reply("long").get("error", {})
    if refused.get("code") != "bad_spec":
        raise ProtocolError(f"a 70 KB URL was not refused: {refused!r}")
    widest = {"kind": "noop", "name": "n" * 1024, "account": "a" * 1024, "timezone": "UTC",
              "business_hours": "Mon-Fri 09:00-17:00" + ";" * 1000,
              "url": "https://example.com/" + "u" * (8192 - len("https://example.com/"))}
    job = request(client, "submit", "submit", {"spec": {"name": "widest", "sources": [widest]}}, "accepted")["job"]
    conn, _, _ = open_hello(args.coordinator, cred, role="worker", name=args.name, max_line_bytes=65536)
    welcome = conn.reply("hello").get("welcome", {})
    if as_int(welcome.get("max_line_bytes")) != 65536:
        raise ProtocolError(f"expected a 64 KiB session, got {welcome!r}")
    conn.send({"credit": {"pool": "collect", "free": 1}})
    assign = next_assign(conn)
    length = len(json.dumps({"assign": assign}).encode())
    print(json.dumps({"refused_field": refused.get("field", ""), "refused": refused.get("message", ""),
                      "job": job, "assign_bytes": length}))
    return 0


def run_booker(args):
    """A worker booking rate slots ahead for one task: a task holds one slot at a time, so
    a request while its last slot is not yet due gets that slot again and books nothing
    (booked without end, they pushed every other worker's slots minutes out). Prints the
    waits."""
    cred, client_cred = load_cred(args.token_file), load_cred(args.client_token_file)
    client, _ = handshake(args.coordinator, client_cred)
    source = {"kind": "facebook_posts", "account": "111", "url": "http://127.0.0.1:9/meta/v21.0",
              "credential": "meta", "requests_per_second": 1}
    job = request(client, "submit", "submit", {"spec": {"name": "booker", "sources": [source]}}, "accepted")["job"]
    conn, _, _ = open_hello(args.coordinator, cred, role="worker", name=args.name)
    if "welcome" not in conn.reply("hello"):
        raise ProtocolError("the booker's hello was refused")
    conn.send({"credit": {"pool": "collect", "free": 1}})
    assign = next_assign(conn)
    key = assign.get("spec", {}).get("rate_key", "")
    def ask(req_id):
        conn.send({"id": req_id, "rate_request": {"key": key, "requests_per_second": 1,
                                                  "task": assign["task"], "attempt": assign["attempt"]}})
        return conn.reply(req_id)
    first, second, third = ask("r1"), ask("r2"), ask("r3")
    due = as_int(second.get("rate_grant", {}).get("wait_ms"))
    time.sleep(due / 1000 + 0.1)
    fourth = ask("r4")
    # No task id is a bad request, as in a heartbeat (it was answered as a stale attempt).
    conn.send({"id": "r5", "rate_request": {"key": key, "requests_per_second": 1, "task": "abc", "attempt": 1}})
    bad = conn.reply("r5").get("error", {})
    if bad.get("code") != "bad_request" or bad.get("field") != "task":
        raise ProtocolError(f"a rate_request naming no task id: expected bad_request on task, got {bad!r}")
    conn.send({"id": "f", "fail": {"task": assign["task"], "attempt": assign["attempt"], "retryable": False,
                                   "error": {"code": "done", "message": "the booker is done"}}})
    conn.reply("f")
    print(json.dumps({"job": job, "key": key, "first": "rate_grant" in first, "second_wait_ms": due,
                      "third_wait_ms": as_int(third.get("rate_grant", {}).get("wait_ms", -1)),
                      "fourth_wait_ms": as_int(fourth.get("rate_grant", {}).get("wait_ms", -1))}))
    return 0


def run_worker(args):
    """Takes a job's tasks as a worker and answers them with `partial` as JSON, with
    `partial_binary` in one line and in two parts, and checks that a line with both, or
    with bytes that are not a Partial, is refused. Prints the job's engagement rows."""
    cred, client_cred = load_cred(args.token_file), load_cred(args.client_token_file)
    client, _ = handshake(args.coordinator, client_cred)
    spec = {"name": "raw-worker", "sources": [{"kind": "noop", "tasks": 6}], "reports": ["engagement"],
            "retry_base_ms": 1}
    job = request(client, "submit", "submit", {"spec": spec}, "accepted").get("job", "")
    conn, nonce, cnonce = open_hello(args.coordinator, cred, role="worker", name=args.name)
    welcome = conn.reply("hello").get("welcome")
    if not welcome or welcome.get("partial_binary") is not True:
        raise ProtocolError(f"welcome does not offer partial_binary: {welcome!r}")
    conn.send({"credit": {"pool": "collect", "free": 6}})
    tasks = [(assign["task"], assign["attempt"]) for assign in (next_assign(conn) for _ in range(6))]
    def complete(req_id, body, expect="ack"):
        conn.send({"id": req_id, "complete": body})
        msg = conn.reply(req_id)
        if expect not in msg:
            raise ProtocolError(f"{req_id}: expected {expect}, got {msg!r}")
        return msg[expect]
    (t1, a1), (t2, a2), (t3, a3), (t4, a4), (t5, a5), (t6, a6) = tasks
    # A pause counts only under a key this session was granted a slot under, and a slot is
    # granted only under the key of the task it is for: a noop task names none, so a
    # request for any key is refused and a pause after it is dropped, as is one for a
    # credential the worker never asked about.
    conn.send({"rate_pause": {"key": "credential:meta", "pause_ms": 3600000, "reason": "forged"}})
    conn.send({"id": "rr", "rate_request": {"task": t1, "attempt": a1, "key": "credential:raw",
                                            "requests_per_second": 5}})
    refused = conn.reply("rr").get("error", {})
    if refused.get("code") != "bad_request" or refused.get("field") != "key":
        raise ProtocolError(f"a slot under a key the task does not name: expected bad_request on key, got {refused!r}")
    conn.send({"rate_pause": {"key": "credential:raw", "pause_ms": 60000, "reason": "throttled"}})
    # A log line that tries to forge another worker's line with a line break of its own,
    # and to speak for worker w9 in its `worker` field.
    conn.send({"log": {"level": "info", "message": "forged\n2026-01-01 00:00:00 w9 INFO fake",
                       "fields": {"k": "v\r\nw9 ERROR", "worker": "w9"}}})
    cell = {"platform": "x", "account": "json", "media_type": "image", "posts": "1", "likes": "5"}
    checks = [
        ("json", complete("c1", {"task": t1, "attempt": a1, "partial": {"engagement": {"cells": [cell]}}})),
        ("binary", complete("c2", {"task": t2, "attempt": a2, "partial_binary": b64(engagement_partial("bin", 2, 7))})),
    ]
    both = complete("c3", {"task": t3, "attempt": a3, "partial": {}, "partial_binary": b64(engagement_partial("b", 1, 1))},
                    expect="error")
    garbage = complete("c4", {"task": t3, "attempt": a3, "partial_binary": b64(b"\x0a\xff\x01")}, expect="error")
    for name, error in (("both", both), ("garbage", garbage)):
        if error.get("code") != "bad_request" or error.get("field") != "complete.partial_binary":
            raise ProtocolError(f"{name}: expected bad_request on complete.partial_binary, got {error!r}")
    # Another worker's parts for this worker's lease are refused as such, not staged.
    other, _, _ = open_hello(args.coordinator, cred, role="worker", name=args.name + "-other")
    if "welcome" not in other.reply("hello"):
        raise ProtocolError("the second worker's hello was refused")
    for req_id, part in (("o1", {"part": 1}), ("o2", {"part": 2, "parts": 2})):
        other.send({"id": req_id, "complete": dict({"task": t3, "attempt": a3,
                                                    "partial_binary": b64(engagement_partial("other", 1, 99))}, **part)})
        refused = other.reply(req_id).get("ack", {})
        if refused.get("accepted") is True or refused.get("reason") != "not_lease_holder":
            raise ProtocolError(f"another worker's part {part}: expected not_lease_holder, got {refused!r}")
    other.close()
    conn.send({"id": "p1", "complete": {"task": t3, "attempt": a3, "part": 1,
                                        "partial_binary": b64(engagement_partial("parts", 1, 10))}})
    checks.append(("parts", complete("p2", {"task": t3, "attempt": a3, "part": 2, "parts": 2,
                                            "partial_binary": b64(engagement_partial("parts", 3, 20))})))
    checks.append(("empty", complete("c5", {"task": t4, "attempt": a4, "partial": {}})))
    # A split on a task that is no plan task records nothing (it was acked as accepted while
    # the task died); the same attempt's plain result then lands.
    split = complete("s1", {"task": t5, "attempt": a5, "partial": {}, "split": {"size": "10", "bounds": ["0", "10"]}})
    if split.get("accepted") is True or split.get("reason") != "bad_split":
        raise ProtocolError(f"a split on a task that is no plan task: expected bad_split, got {split!r}")
    checks.append(("after the split", complete("s2", {"task": t5, "attempt": a5, "partial": {}})))
    # A megabyte's error message is kept cut to 8 KiB: whole, it made the job too large to send.
    conn.send({"id": "f1", "fail": {"task": t6, "attempt": a6, "retryable": True,
                                    "error": {"code": "hu\u0000ge" + "\u0000" * 70, "message": "E" * 1_000_000}}})
    if conn.reply("f1").get("ack", {}).get("accepted") is not True:
        raise ProtocolError("the failure was not recorded")
    conn.send({"credit": {"pool": "collect", "free": 1}})
    retried = next_assign(conn, task=t6)
    checks.append(("retried", complete("f2", {"task": t6, "attempt": retried["attempt"], "partial": {}})))
    for name, ack in checks:
        if ack.get("accepted") is not True:
            raise ProtocolError(f"{name}: the result was not accepted: {ack!r}")
    client.send({"id": "watch", "watch": {"job": job}})
    while not client.reply("watch").get("job_event", {}).get("final", False):
        pass
    result = read_result(client, job)
    shown = request(client, "job", "get_job", {"job": job, "tasks": True}, "job")
    error = next((t.get("last_error", {}) for t in shown.get("tasks", []) if t.get("id") == t6), {})
    if error.get("message", "") != "E" * 8192 + "\u2026":
        raise ProtocolError(f"the failure's message is kept as {len(error.get('message', ''))} characters, not 8,192 and an ellipsis")
    # A NUL is kept visible (the store's reads ended the text there), and the cut to 64
    # bytes comes after: cut first, each NUL's 3-byte U+FFFD made it 190 bytes.
    if error.get("code") != "hu\ufffdge" + "\ufffd" * 19 + "\u2026":
        raise ProtocolError(f"the failure's code with a NUL is kept as {error.get('code')!r}")
    pauses = request(client, "workers", "list_workers", {}, "worker_list").get("pauses", [])
    print(json.dumps({"state": result.get("job", {}).get("state"),
                      "rows": result.get("report", {}).get("engagement", {}).get("rows", []),
                      "pauses": sorted(p.get("key", "") for p in pauses)}))
    return 0


def run_silent(args):
    """A worker that falls silent (no line for over 3 heartbeats) with credit to spare gets
    no assign; then one `log` line, later one `ping`, must each bring the waiting task at
    once. Prints, per waking line, whether a task came while silent and how long the
    assign took after the line."""
    cred, client_cred = load_cred(args.token_file), load_cred(args.client_token_file)
    client, _ = handshake(args.coordinator, client_cred)
    conn, _, _ = open_hello(args.coordinator, cred, role="worker", name=args.name)
    welcome = conn.reply("hello").get("welcome", {})
    silence = 3 * as_int(welcome.get("heartbeat_ms"), 5000) / 1000 + 0.5
    conn.send({"credit": {"pool": "collect", "free": 1}})
    shown = {}
    for index, line in enumerate([{"log": {"level": "info", "message": "awake"}}, {"id": "p", "ping": {}}]):
        time.sleep(silence)  # silent: not a line sent
        spec = {"name": f"silent-{index}", "sources": [{"kind": "noop"}]}
        job = request(client, f"submit{index}", "submit", {"spec": spec}, "accepted").get("job", "")
        early = None
        try:
            msg = conn.recv(1.0)
            early = msg and "assign" in msg
        except ProtocolError:
            pass  # nothing came: as it should
        woken = time.monotonic()
        conn.send(line)
        assign = next_assign(conn)
        name = "log" if "log" in line else "ping"
        shown[name] = {"assigned_while_silent": bool(early),
                       "assign_ms": round(1000 * (time.monotonic() - woken)), "job": job}
        conn.send({"id": f"c{index}", "complete": {"task": assign["task"], "attempt": assign["attempt"]}})
        ack = conn.reply(f"c{index}").get("ack", {})
        if ack.get("accepted") is not True:
            raise ProtocolError(f"the silent worker's result was refused: {ack!r}")
        conn.send({"credit": {"pool": "collect", "free": 1}})
    print(json.dumps(shown))
    return 0


def run_paused(args):
    """A worker paused past its lease (no line, as a stopped process or a frozen VM) answers
    for its attempt after the task moved on to another worker's next attempt: refused as
    `stale_attempt`, not as another worker's lease (which the coordinator warns of as a
    stolen token); the new holder's result counts. Prints the attempts and both answers."""
    cred, client_cred = load_cred(args.token_file), load_cred(args.client_token_file)
    client, _ = handshake(args.coordinator, client_cred)
    paused, _, _ = open_hello(args.coordinator, cred, role="worker", name=args.name)
    lease_s = as_int(paused.reply("hello").get("welcome", {}).get("lease_ms"), 30000) / 1000
    spec = {"name": "paused", "sources": [{"kind": "noop"}]}
    request(client, "submit", "submit", {"spec": spec}, "accepted")
    paused.send({"credit": {"pool": "collect", "free": 1}})
    first = next_assign(paused)
    time.sleep(lease_s + 1.0)  # paused: its lease runs out
    other, _, _ = open_hello(args.coordinator, cred, role="worker", name=args.name + "-b")
    other.reply("hello")
    other.send({"credit": {"pool": "collect", "free": 1}})
    second = next_assign(other, task=first["task"])
    paused.send({"id": "late", "complete": {"task": first["task"], "attempt": first["attempt"]}})
    late = paused.reply("late").get("ack", {})
    other.send({"id": "held", "complete": {"task": second["task"], "attempt": second["attempt"]}})
    held = other.reply("held").get("ack", {})
    print(json.dumps({"first_attempt": first["attempt"], "second_attempt": second["attempt"],
                      "late": late.get("reason", ""), "held_accepted": held.get("accepted") is True}))
    return 0


def run_reconnect(args):
    """A worker that reconnects under its name mid-way through a result in parts: the parts
    its old session sent are dropped (docs/protocol.md: send all parts again), so the last
    part alone gets `missing_parts`; all parts again on the new session are accepted.
    Prints both answers."""
    cred, client_cred = load_cred(args.token_file), load_cred(args.client_token_file)
    client, _ = handshake(args.coordinator, client_cred)
    old, _, _ = open_hello(args.coordinator, cred, role="worker", name=args.name)
    old.reply("hello")
    spec = {"name": "reconnect", "sources": [{"kind": "noop"}]}
    request(client, "submit", "submit", {"spec": spec}, "accepted")
    old.send({"credit": {"pool": "collect", "free": 1}})
    task = next_assign(old)
    first = {"task": task["task"], "attempt": task["attempt"], "part": 1,
             "partial_binary": b64(engagement_partial("old", 1, 10))}
    old.send({"id": "p1", "complete": first})
    time.sleep(0.5)  # the part is staged
    new, _, _ = open_hello(args.coordinator, cred, role="worker", name=args.name)
    new.reply("hello")
    last = {"task": task["task"], "attempt": task["attempt"], "part": 2, "parts": 2,
            "partial_binary": b64(engagement_partial("new", 1, 20))}
    new.send({"id": "p2", "complete": last})
    alone = new.reply("p2").get("ack", {})
    new.send({"id": "q1", "complete": first})
    new.send({"id": "q2", "complete": last})
    again = new.reply("q2").get("ack", {})
    print(json.dumps({"last_alone": alone.get("reason", ""), "again_accepted": again.get("accepted") is True}))
    return 0


def run_forged(args):
    """A worker whose failure message holds a line break (as a hostile platform's error
    page can): the task dies with it. Prints the job's id, for `haat job` to show."""
    cred, client_cred = load_cred(args.token_file), load_cred(args.client_token_file)
    client, _ = handshake(args.coordinator, client_cred)
    conn, _, _ = open_hello(args.coordinator, cred, role="worker", name=args.name)
    conn.reply("hello")
    spec = {"name": "forged", "sources": [{"kind": "noop"}]}
    job = request(client, "submit", "submit", {"spec": spec}, "accepted").get("job", "")
    conn.send({"credit": {"pool": "collect", "free": 1}})
    task = next_assign(conn)
    conn.send({"id": "f", "fail": {"task": task["task"], "attempt": task["attempt"], "retryable": False,
                                   "error": {"code": "x", "message": "line1\nFAKE-LINE tasks: 9/9 done"}}})
    conn.reply("f")
    client.send({"id": "watch", "watch": {"job": job}})
    while not client.reply("watch").get("job_event", {}).get("final", False):
        pass
    print(json.dumps({"job": job}))
    return 0


def run_logger(args):
    """Ships 2,000 log lines of 8 KiB messages and 32 fields as a worker (the ring keeps
    about 16 MiB of them), then reads them all back with `tail_logs` as a client that
    starts reading a second late: the backlog must come (the newest lines that fit), not
    close the session. Prints how many lines came."""
    cred, client_cred = load_cred(args.token_file), load_cred(args.client_token_file)
    conn, _, _ = open_hello(args.coordinator, cred, role="worker", name=args.name)
    if "welcome" not in conn.reply("hello"):
        raise ProtocolError("the worker handshake was refused")
    fields = {f"field{i:02d}": "v" * 100 for i in range(32)}
    for i in range(2000):
        conn.send({"log": {"level": "warning", "message": f"line {i} " + "m" * 8192, "fields": fields}})
    # A field over 1 KiB: cut to 512 bytes and marked where cut (found by a tester: a cut
    # value read as whole).
    conn.send({"log": {"level": "warning", "message": "cut", "fields": {"long": "w" * 1100}}})
    # A ping's answer comes after every line before it was taken.
    conn.send({"id": "p", "ping": {}})
    if "pong" not in conn.reply("p", timeout=60):
        raise ProtocolError("no pong after the log lines")
    client, welcome = handshake(args.coordinator, client_cred)
    limit = int(welcome.get("max_line_bytes", 1048576))
    client.send({"id": "t", "tail_logs": {"limit": 10000}})
    # A reader busy for a moment (the CLI decodes and prints each line): what the
    # coordinator queued meanwhile must stay under what a session may leave unsent.
    time.sleep(1.0)
    got = 0
    cut = None
    while True:
        msg = client.recv(timeout=60)
        if msg is None:
            raise ProtocolError(f"the coordinator closed the session after {got} lines of the backlog")
        if client.longest > limit:
            raise ProtocolError(f"a line of {client.longest} bytes, over the session's {limit}")
        if msg.get("reply_to") != "t":
            continue
        if "stream_end" in msg:
            break
        if "log" not in msg:
            raise ProtocolError(f"expected log or stream_end, got {msg!r}")
        got += 1
        if msg["log"].get("message") == "cut":
            cut = msg["log"].get("fields", {}).get("long", "")
    conn.close()
    client.close()
    print(json.dumps({"lines": got, "cut": cut}))
    return 0


def run_flooder(args):
    """Ships 16,000 small log lines as fast as it can, while a client asks for the job
    list: the coordinator paces a session past a burst of 10,000 lines at 2,000 a second,
    so the client is answered meanwhile, and the flood's ping comes back only once its
    lines are read (at least 3 s). Prints the seconds until that pong."""
    import threading
    cred, client_cred = load_cred(args.token_file), load_cred(args.client_token_file)
    conn, _, _ = open_hello(args.coordinator, cred, role="worker", name=args.name)
    if "welcome" not in conn.reply("hello"):
        raise ProtocolError("the worker handshake was refused")
    payload = b"".join(json.dumps({"log": {"level": "info", "message": f"flood {i}"}}).encode() + b"\n"
                       for i in range(16000))
    start = time.time()
    sender = threading.Thread(target=lambda: conn.sock.sendall(payload))
    sender.start()
    client, _ = handshake(args.coordinator, client_cred)
    request(client, "j", "list_jobs", {"limit": 1}, "job_list")
    client.close()
    sender.join(60)
    conn.send({"id": "p", "ping": {}})
    if "pong" not in conn.reply("p", timeout=60):
        raise ProtocolError("no pong after the flood")
    print(json.dumps({"seconds": round(time.time() - start, 2)}))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    for mode in ("job", "faults", "worker", "greedy", "narrow", "booker", "silent", "paused", "reconnect", "forged",
                 "logger", "flooder"):
        s = sub.add_parser(mode)
        s.add_argument("--coordinator", required=True, help="HOST:PORT")
        s.add_argument("--token-file", required=True, help="credential JSON from `haat token create`")
        if mode == "job":
            s.add_argument("--spec", required=True, help="JSON file holding the JobSpec")
            s.add_argument("--timeout", type=float, default=60.0)
        elif mode in ("worker", "narrow", "booker", "silent", "paused", "reconnect", "forged", "logger", "flooder"):
            s.add_argument("--client-token-file", required=True, help="a submit or admin credential")
            s.add_argument("--name", default="raw-worker", help="the worker's name (one the token covers)")
        elif mode == "greedy":
            s.add_argument("--name", default="raw-worker", help="the worker's name (one the token covers)")
            s.add_argument("--hold", type=float, default=30.0, help="seconds to keep the session")
        else:
            s.add_argument("--max-line-bytes", type=int, default=1048576)
    args = p.parse_args()
    try:
        return {"job": run_job, "faults": run_faults, "worker": run_worker, "greedy": run_greedy,
                "narrow": run_narrow, "booker": run_booker, "silent": run_silent, "paused": run_paused, "reconnect": run_reconnect, "forged": run_forged,
                "logger": run_logger, "flooder": run_flooder}[args.mode](args)
    except (ProtocolError, OSError, ValueError) as e:
        print(f"raw_client: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
