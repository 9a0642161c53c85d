#!/usr/bin/env python3
"""Hostile HTTP responses the fixture server (haat fixture-server) does not make.

  /headers-then-hang   200 with headers (Content-Length 100000), then not one byte, ever
  /short-body          Content-Length 100000, a CSV header and 1,000 bytes, then the
                       connection closes (a transfer cut short)

Listens on 127.0.0.1 (port 0 picks one), writes host:port to --ready-file. Every
connection is held at most --hold-seconds, then closed: nothing here runs unbounded.

  scripts/faults/hostile_http.py --ready-file hostile.ready
"""

import argparse
import os
import socket
import sys
import threading
import time

CSV_HEAD = b"platform,account,id,created_at,media_type,likes\n"


def serve(conn, hold):
    conn.settimeout(hold)
    try:
        request = b""
        while b"\r\n\r\n" not in request and len(request) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        path = request.split(b" ", 2)[1].decode("latin-1") if request.count(b" ") >= 2 else "/"
        path = path.split("?", 1)[0]
        if path == "/headers-then-hang":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 100000\r\n\r\n")
            deadline = time.monotonic() + hold
            while time.monotonic() < deadline:  # until the client gives up or the hold ends
                try:
                    if not conn.recv(4096):
                        return
                except socket.timeout:
                    return
        elif path == "/short-body":
            body = CSV_HEAD + b"x" * 1000
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 100000\r\n\r\n" + body)
        else:
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    except OSError:
        pass
    finally:
        conn.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ready-file")
    ap.add_argument("--hold-seconds", type=float, default=300)
    ap.add_argument("--max-seconds", type=float, default=3600, help="exit after this long")
    args = ap.parse_args(argv)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", args.port))
    server.listen(64)
    address = "%s:%d" % server.getsockname()
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w") as fh:
            fh.write(address + "\n")
        os.rename(args.ready_file + ".tmp", args.ready_file)
    print(f"hostile http on {address}", flush=True)
    parent = os.getppid()
    server.settimeout(0.5)
    end = time.monotonic() + args.max_seconds
    while os.getppid() == parent and time.monotonic() < end:  # exits with the harness
        try:
            conn, _ = server.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(conn, args.hold_seconds), daemon=True).start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
