#!/usr/bin/env python3
"""A TCP proxy for the cluster tests: a link to slow down, or to cut.

  tcp_proxy.py LISTEN_PORT HOST TARGET_PORT [BYTES_PER_SECOND [SECONDS]]

Forwards every connection made to 127.0.0.1:LISTEN_PORT to HOST:TARGET_PORT, a thread each
way. With BYTES_PER_SECOND (0: unpaced), what the client sends is paced to it (a worker's
result crossing a thin uplink); what the target sends back passes at once. Prints
"listening" once bound and "open N" for each connection; exits after SECONDS (default an
hour) whatever happens, or when killed (a test cuts the link so).
"""

import socket
import sys
import threading
import time


def pump(source, target, rate):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            if not rate:
                target.sendall(data)
                continue
            for start in range(0, len(data), 4096):
                piece = data[start:start + 4096]
                target.sendall(piece)
                time.sleep(len(piece) / rate)
    except OSError:
        pass
    for end in (source, target):
        try:
            end.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main():
    listen_port, host, target_port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    rate = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 3600.0
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", listen_port))
    listener.listen(64)
    listener.settimeout(0.5)
    print("listening", flush=True)
    deadline = time.time() + seconds
    opened = 0
    while time.time() < deadline:
        try:
            client, _ = listener.accept()
        except socket.timeout:
            continue
        opened += 1
        upstream = socket.create_connection((host, target_port))
        print("open", opened, flush=True)
        threading.Thread(target=pump, args=(client, upstream, rate), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, 0.0), daemon=True).start()


if __name__ == "__main__":
    main()
