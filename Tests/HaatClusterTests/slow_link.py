#!/usr/bin/env python3
"""A slow link between a worker and the coordinator, for the cluster tests.

  slow_link.py LISTEN_PORT TARGET_PORT BYTES_PER_SECOND SECONDS

Forwards every connection made to 127.0.0.1:LISTEN_PORT to 127.0.0.1:TARGET_PORT. What
the client sends is paced to BYTES_PER_SECOND (a worker's result crossing a thin uplink);
what the target sends back passes at once. Prints "listening" once bound and "open N"
for each connection, then exits after SECONDS whatever happens (a test's bound).
"""

import socket
import sys
import threading
import time


def pump(source, target, rate):
    try:
        while True:
            data = source.recv(16384)
            if not data:
                break
            if rate is None:
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
    listen_port, target_port, rate, seconds = (int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]),
                                               float(sys.argv[4]))
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", listen_port))
    listener.listen(16)
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
        upstream = socket.create_connection(("127.0.0.1", target_port))
        print("open", opened, flush=True)
        threading.Thread(target=pump, args=(client, upstream, rate), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, None), daemon=True).start()


if __name__ == "__main__":
    main()
