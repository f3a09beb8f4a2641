#!/usr/bin/env python3
"""Attacks a running gateway's ingress port from 127.0.0.2, for the edge tests.

usage: attack.py KIND PORT   (KIND: slow-body, idle, header-flood, garbage, flood,
                             big-unsigned, big-wrong-signature)

Every attack is bounded in count and time and stops by itself. It prints one JSON object with
what it saw, for the test to check.
"""
import json
import os
import random
import select
import socket
import sys
import threading
import time

SOURCE = ("127.0.0.2", 0)


def connect(port, timeout=5.0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind(SOURCE)
    sock.connect(("127.0.0.1", port))
    return sock


def read_status(sock):
    """The status code of the answer, or None if the connection closed without one."""
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        pass
    if data.startswith(b"HTTP/1.1 "):
        return int(data[9:12])
    return None


def slow_body(port):
    """Headers promise 1000 bytes; one byte a second follows. How long until the gateway cuts it off?

    The signature header is well formed (and wrong), so the gateway waits for the body rather than
    refusing it on the header alone.
    """
    sock = connect(port)
    sock.sendall(
        b"POST /webhooks/tiktok HTTP/1.1\r\nHost: x\r\nTikTok-Signature: t=%d,s=%s\r\nContent-Length: 1000\r\n\r\n"
        % (int(time.time()), b"0" * 64)
    )
    started = time.monotonic()
    sent = 0
    closed_after = None
    while time.monotonic() - started < 20:
        try:
            sock.sendall(b"{")
            sent += 1
            sock.settimeout(1.0)
            if sock.recv(4096) == b"":
                closed_after = time.monotonic() - started
                break
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            closed_after = time.monotonic() - started
            break
    sock.close()
    return {"closedAfter": closed_after, "bytesSent": sent}


def idle(port, count=300, hold=3.0):
    """Opens many connections that never send a byte, and holds them."""
    socks = []
    refused = 0
    for _ in range(count):
        try:
            socks.append(connect(port, timeout=2.0))
        except OSError:
            refused += 1
    time.sleep(hold)
    closed = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            if sock.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        sock.close()
    return {"opened": len(socks), "refused": refused, "closedByServer": closed}


def header_flood(port, rounds=50):
    """Requests with 100 KB of headers, and requests with 5,000 small header lines."""
    statuses = []
    for index in range(rounds):
        try:
            sock = connect(port)
            if index % 2 == 0:
                headers = b"X-Flood: " + b"a" * 100_000 + b"\r\n"
            else:
                headers = b"".join(b"X-F%d: b\r\n" % n for n in range(5_000))
            sock.sendall(b"POST /webhooks/tiktok HTTP/1.1\r\nHost: x\r\n" + headers + b"Content-Length: 0\r\n\r\n")
            statuses.append(read_status(sock))
            sock.close()
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            statuses.append(None)
    return {"statuses": statuses}


def garbage(port, total=10_000):
    """10,000 bad requests: random bytes, broken request lines, unsigned and wrongly signed posts."""
    rng = random.Random(20261201)
    statuses = {}
    sock = None
    for index in range(total):
        kind = index % 4
        if kind == 0:
            payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200))) + b"\r\n\r\n"
        elif kind == 1:
            payload = b"GET /" + b"%" * rng.randint(1, 50) + b" HTTP/9.9\r\n\r\n"
        elif kind == 2:
            body = b'{"event":"minis.trade_order.redeem.success"}'
            payload = b"POST /webhooks/tiktok HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        else:
            body = b'{"event":"x"}'
            payload = (
                b"POST /webhooks/tiktok HTTP/1.1\r\nHost: x\r\nTikTok-Signature: t=%d,s=%s\r\nContent-Length: %d\r\n\r\n%s"
                % (int(time.time()), b"0" * 64, len(body), body)
            )
        try:
            if sock is None:
                sock = connect(port)
            sock.sendall(payload)
            status = read_status(sock)
        except (OSError, socket.timeout):
            status = None
        # A garbage request usually ends its connection; keep-alive ones are reused.
        if status is None or kind < 2:
            if sock is not None:
                sock.close()
            sock = None
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    if sock is not None:
        sock.close()
    return {"statuses": statuses}


def flood(port, total=400):
    """Unsigned posts as fast as one connection allows, to hit the rate limit."""
    statuses = {}
    retry_after = None
    sock = connect(port)
    body = b"{}"
    for _ in range(total):
        try:
            sock.sendall(b"POST /webhooks/tiktok HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n" + body)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionResetError
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0][9:12])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
                if name.strip().lower() == b"retry-after":
                    retry_after = value.strip().decode()
            while len(rest) < length:
                rest += sock.recv(4096)
        except (OSError, socket.timeout):
            sock.close()
            sock = connect(port)
            status = None
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    sock.close()
    return {"statuses": statuses, "retryAfter": retry_after}


def big_bodies(port, signed, count=300, size=1 << 20, deadline=30.0):
    """`count` connections at once, each posting a `size`-byte body in 64 KiB chunks.

    Unsigned: half without a signature header, half with a malformed one. Wrongly signed: a
    well-formed header whose signature is wrong. Every head is sent before any body (a barrier),
    so all requests are in flight together. A connection stops sending as soon as an answer
    arrives. Reports the statuses and the body bytes sent in all.
    """
    started = time.monotonic()
    barrier = threading.Barrier(count)
    results = [None] * count
    chunk = b"x" * 65536

    def one(index):
        status, sent, sock = None, 0, None
        try:
            sock = connect(port, timeout=10.0)
            if signed:
                header = b"TikTok-Signature: t=%d,s=%s\r\n" % (int(time.time()), b"0" * 64)
            elif index % 2 == 0:
                header = b""
            else:
                header = b"TikTok-Signature: t=now,s=not-hex\r\n"
            sock.sendall(b"POST /webhooks/tiktok HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n" % (header, size))
            try:
                barrier.wait(timeout=max(1.0, deadline - (time.monotonic() - started)))
            except threading.BrokenBarrierError:
                pass
            while sent < size and time.monotonic() - started < deadline:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                sock.sendall(chunk[: min(len(chunk), size - sent)])
                sent += min(len(chunk), size - sent)
            status = read_status(sock)
        except (OSError, socket.timeout):
            barrier.abort()
            if sock is not None:
                status = read_status(sock)
        finally:
            if sock is not None:
                sock.close()
        results[index] = (status, sent)

    threads = [threading.Thread(target=one, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.1, deadline + 15 - (time.monotonic() - started)))
    statuses = {}
    sent = 0
    for result in results:
        status, bytes_sent = result if result is not None else (None, 0)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        sent += bytes_sent
    return {"statuses": statuses, "bytesSent": sent, "seconds": time.monotonic() - started}


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    attack = {
        "slow-body": slow_body,
        "idle": idle,
        "header-flood": header_flood,
        "garbage": garbage,
        "flood": flood,
        "big-unsigned": lambda port: big_bodies(port, signed=False),
        "big-wrong-signature": lambda port: big_bodies(port, signed=True),
    }[kind]
    print(json.dumps(attack(port)))
    sys.stdout.flush()
