#!/usr/bin/env python3
"""Soak test driver for webhook-gateway (started by Benchmarks/soak/run.sh; standard library only).

  soak.py --gateway PATH --duration 10m --out DIR --work DIR

On 127.0.0.1 only: writes a config into WORK, starts three consumer servers (threads in this
process), starts the gateway, sends a steady rate of distinct signed TikTok events for DURATION
while the consumers misbehave on a schedule, and at fixed fractions of the run rotates a secret and
the admin token (SIGHUP), restarts the gateway gracefully (SIGTERM) and after a crash (kill -9).
Every ~5 s it samples the gateway's RSS, open fds, database size and queue depth (OUT/samples.csv).
After the load it waits for the queues to drain, stops the gateway and checks that every event
acknowledged with a 200 reached every consumer (a 2xx) or that consumer's dead-letter file.
Writes OUT/summary.json (and OUT/soak.png with matplotlib) and exits 1 if a check failed.

Environment: SOAK_RATE (events/s, 20), SOAK_EVENT_RETENTION (adds "events": {"retention": …}),
SOAK_SAMPLE_INTERVAL (s, 5), SOAK_DRAIN_TIMEOUT (s, 120), SOAK_LOG_LEVEL (gateway, "info"),
SOAK_STALL_WINDOW (s, 20: `stall` stalls bodies during every other window),
SOAK_FLAKY_PERIOD / SOAK_FLAKY_BURST (s, 45 / 15: `flaky` answers 503 for the last BURST s of each PERIOD).
"""
import argparse
import base64
import csv
import hashlib
import heapq
import hmac
import http.client
import json
import os
import random
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EVENT = "minis.trade_order.redeem.success"
SOURCE_PATH = "/webhooks/tiktok"
CONSUMER_TIMEOUT = 1.0  # the consumers' "timeout" in the config, seconds
RETRY = {"maxAttempts": 6, "initialDelay": "200ms", "maxDelay": "2s"}
STALL_MAX = 30.0  # a stalled answer is held at most this long (the gateway should cut it at 1 s)
STALL_CUT_SLACK = 2.0  # a stall not cut off within timeout + this is a failure
SLOW_RANGE = (0.3, 0.7)
LOAD_RETRY_DELAYS = [0.5, 1, 2, 4, 8, 8, 8, 8]  # the load generator's resends (like TikTok's)
LOAD_TAIL_MAX = 90.0  # resends still pending after the load are given this long
KILL_WINDOW = 5.0  # a duplicate is "around the kill -9" if its first 2xx was this close before it

T0 = time.monotonic()


def rel():
    return time.monotonic() - T0


def log(message):
    print("[%s +%6.1fs] %s" % (time.strftime("%H:%M:%S"), rel(), message), file=sys.stderr, flush=True)


def env_float(name, default):
    value = os.environ.get(name)
    return float(value) if value else default


def parse_duration(text):
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not match:
        raise SystemExit("bad duration %r (use e.g. 90s, 2m, 10m, 1h)" % text)
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]
    return float(match.group(1)) * scale


def write_secret(path, value):
    """Writes atomically, mode 0600 (check-config warns about world-readable secret files)."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# Consumers


class Consumer:
    """A consumer HTTP server: verifies the Standard Webhooks signature of every delivery, records
    what it answered, and misbehaves on its schedule until `calm` is set."""

    def __init__(self, name, behaviour, secret):
        self.name = name
        self.behaviour = behaviour  # "stall", "flaky" or "slow"
        self.secret = secret
        self.key = base64.b64decode(secret[len("whsec_"):])
        self.lock = threading.Lock()
        self.records = []  # one dict per request
        self.in_flight = 0
        self.sig_failures = 0
        self.sig_failure_examples = []
        self.calm = threading.Event()
        self.stopping = threading.Event()
        self.stall_window = env_float("SOAK_STALL_WINDOW", 20)
        self.flaky_period = env_float("SOAK_FLAKY_PERIOD", 45)
        self.flaky_burst = env_float("SOAK_FLAKY_BURST", 15)
        consumer = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        class Handler(_ConsumerHandler):
            pass

        Handler.consumer = consumer
        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/%s" % (self.port, name)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                       name="consumer-" + name, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def mode(self):
        """What to answer now: "ok", "stall", "503" or "slow"."""
        t = rel()
        if self.behaviour == "slow":
            return "slow"
        if self.calm.is_set():
            return "ok"
        if self.behaviour == "stall":
            return "stall" if int(t // self.stall_window) % 2 == 1 else "ok"
        if self.behaviour == "flaky":
            return "503" if (t % self.flaky_period) >= self.flaky_period - self.flaky_burst else "ok"
        return "ok"

    def verify(self, wid, timestamp, signature, body):
        if not (wid and timestamp and signature):
            return "missing webhook-id/timestamp/signature header"
        try:
            if abs(int(timestamp) - time.time()) > 300:
                return "webhook-timestamp %s outside 5 minutes" % timestamp
        except ValueError:
            return "webhook-timestamp %r is not a number" % timestamp
        signed = wid.encode() + b"." + timestamp.encode() + b"." + body
        expected = base64.b64encode(hmac.new(self.key, signed, hashlib.sha256).digest()).decode()
        for part in signature.split():
            version, _, value = part.partition(",")
            if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
                return None
        return "no matching v1 signature"


class _ConsumerHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    consumer = None

    def log_message(self, *args):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(self, status, text):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def do_POST(self):
        c = self.consumer
        started = rel()
        body = self.read_body()
        wid = self.headers.get("webhook-id")
        record = {
            "id": wid,
            "attempt": self.headers.get("webhook-attempt"),
            "t": started,
            "sha": hashlib.sha256(body).hexdigest(),
            "status": None,
            "end": None,
            "cut_after": None,
        }
        with c.lock:
            c.in_flight += 1
        try:
            problem = c.verify(wid, self.headers.get("webhook-timestamp"), self.headers.get("webhook-signature"), body)
            if problem:
                with c.lock:
                    c.sig_failures += 1
                    if len(c.sig_failure_examples) < 5:
                        c.sig_failure_examples.append("%s: %s" % (wid, problem))
                record["status"] = 401
                self.answer(401, "bad signature")
                return
            mode = c.mode()
            if mode == "slow":
                time.sleep(random.uniform(*SLOW_RANGE))
                record["status"] = 200
                self.answer(200, "ok")
            elif mode == "503":
                record["status"] = 503
                self.answer(503, "flaky")
            elif mode == "stall":
                record["status"] = "stall"
                self.stall(record)
            else:
                record["status"] = 200
                self.answer(200, "ok")
        except OSError:
            record["error"] = "connection broke"
            self.close_connection = True
        finally:
            record["end"] = rel()
            with c.lock:
                c.in_flight -= 1
                c.records.append(record)

    def stall(self, record):
        """Sends the status line and a Content-Length of 10, then never the body: waits until the
        gateway closes the connection (it should, at its timeout), at most STALL_MAX."""
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n")
        self.wfile.flush()
        head_sent = time.monotonic()
        deadline = head_sent + STALL_MAX
        while time.monotonic() < deadline and not self.consumer.stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.1)
            if readable:
                try:
                    self.connection.recv(4096)
                except OSError:
                    pass
                record["cut_after"] = time.monotonic() - head_sent
                break
        self.close_connection = True


# ---------------------------------------------------------------------------------------------
# The gateway process


class Gateway:
    def __init__(self, binary, config, work, out, ingress_port, admin_port, log_level):
        self.binary, self.config, self.work, self.out = binary, config, work, out
        self.ingress_port, self.admin_port = ingress_port, admin_port
        self.log_level = log_level
        self.proc = None
        self.starts = 0
        self.tokens = []  # admin tokens to try, newest first

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, ready_timeout=30.0):
        """Starts `serve`; True once /readyz answers 200."""
        self.starts += 1
        with open(os.path.join(self.out, "gateway.log"), "ab") as logfile:
            logfile.write(("\n===== soak: start #%d at +%.1fs =====\n" % (self.starts, rel())).encode())
            logfile.flush()
            self.proc = subprocess.Popen(
                [self.binary, "serve", "--config", self.config, "--log-level", self.log_level],
                stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT, cwd=self.work)
        with open(os.path.join(self.work, "gateway.pid"), "w") as handle:
            handle.write(str(self.proc.pid))
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log("gateway exited at start with status %s (see gateway.log)" % self.proc.returncode)
                return False
            status, _ = self.admin("GET", "/readyz", token=False, timeout=1)
            if status == 200:
                return True
            time.sleep(0.1)
        log("gateway not ready within %.0f s" % ready_timeout)
        return False

    def terminate(self, timeout=15.0):
        """SIGTERM; (exit status or None if it did not exit, seconds)."""
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - began

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def admin(self, method, path, token=True, timeout=5.0, token_value=None):
        """(status or None, body text) from the admin listener; tries the known tokens in turn."""
        candidates = [token_value] if token_value else (self.tokens if token else [None])
        result = (None, "")
        for value in candidates:
            conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
            try:
                headers = {"Authorization": "Bearer " + value} if value else {}
                conn.request(method, path, headers=headers)
                resp = conn.getresponse()
                result = (resp.status, resp.read().decode("utf-8", "replace"))
            except (OSError, http.client.HTTPException) as error:
                result = (None, "%s: %s" % (type(error).__name__, error))
            finally:
                conn.close()
            if result[0] != 401:
                return result
        return result

    def metrics(self):
        """{series name: {label dict as tuple: value}} or None."""
        status, text = self.admin("GET", "/metrics", timeout=3)
        if status != 200:
            return None
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            match = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)', line)
            if not match:
                continue
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', match.group(2) or "")))
            try:
                out.setdefault(match.group(1), {})[labels] = float(match.group(3))
            except ValueError:
                pass
        return out


def queue_depths(metrics, consumers):
    if metrics is None:
        return None
    series = metrics.get("webhook_gateway_queue_depth", {})
    depths = {}
    for name in consumers:
        value = series.get((("consumer", name),))
        if value is None:
            return None
        depths[name] = int(value)
    return depths


# ---------------------------------------------------------------------------------------------
# Load generator


class Load:
    """Sends distinct signed events at a steady rate; resends an event that is not answered 200
    (503, connection refused, …) with back-off, like TikTok. An event answered 200 is acknowledged."""

    def __init__(self, port, rate, secret_label, secret, run_id):
        self.port, self.rate, self.run_id = port, rate, run_id
        self.secret_lock = threading.Lock()
        self.secret_label, self.secret = secret_label, secret
        self.cv = threading.Condition()
        self.heap = []
        self.seq = 0
        self.outstanding = 0
        self.generating = True
        self.abort = threading.Event()
        self.hard_deadline = None
        self.lock = threading.Lock()
        self.acked = {}  # event id -> {"order", "sha", "t", "how"}
        self.events_created = 0
        self.attempts = 0
        self.answers = {}  # status or error name -> count
        self.unauthorized = []  # (t, secret label, order)
        self.gave_up = []
        self.unfinished = 0
        self.local = threading.local()
        self.threads = []

    def set_secret(self, label, secret):
        with self.secret_lock:
            self.secret_label, self.secret = label, secret

    def current_secret(self):
        with self.secret_lock:
            return self.secret_label, self.secret

    def make_event(self, order):
        now = int(time.time())
        content = json.dumps({"order_id": order, "trade_order_id": "T" + order, "is_sandbox": False},
                             separators=(",", ":"))
        body = json.dumps({"client_key": "soak-client", "event": EVENT, "create_time": now,
                           "user_openid": "openid-" + secrets.token_hex(8), "content": content},
                          separators=(",", ":"))
        return {"order": order, "body": body.encode(), "attempts": 0}

    def post(self, body, secret, timeout=10.0):
        """(status or error name, parsed JSON or None). One connection per worker thread."""
        t = str(int(time.time()))
        signature = hmac.new(secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            self.local.conn = conn
        try:
            conn.request("POST", SOURCE_PATH, body=body, headers={
                "Content-Type": "application/json", "TikTok-Signature": "t=%s,s=%s" % (t, signature)})
            resp = conn.getresponse()
            data = resp.read()
            if resp.will_close:
                conn.close()
                self.local.conn = None
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = None
            return resp.status, parsed
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            self.local.conn = None
            return type(error).__name__, None

    def acknowledge(self, event, answer, how):
        with self.lock:
            self.acked[answer["id"]] = {"order": event["order"], "sha": hashlib.sha256(event["body"]).hexdigest(),
                                        "t": rel(), "how": how, "status": answer.get("status")}

    def count(self, key):
        with self.lock:
            self.answers[key] = self.answers.get(key, 0) + 1

    def schedule(self, due, event):
        with self.cv:
            self.seq += 1
            heapq.heappush(self.heap, (due, self.seq, event))
            self.cv.notify()

    def worker(self):
        while True:
            with self.cv:
                while True:
                    if self.abort.is_set():
                        return
                    if not self.generating and self.outstanding == 0:
                        return
                    if self.hard_deadline is not None and time.monotonic() > self.hard_deadline:
                        return
                    now = time.monotonic()
                    if self.heap and self.heap[0][0] <= now:
                        _, _, event = heapq.heappop(self.heap)
                        break
                    self.cv.wait(min(self.heap[0][0] - now, 0.2) if self.heap else 0.2)
            self.send(event)

    def send(self, event):
        label, secret = self.current_secret()
        event["attempts"] += 1
        status, answer = self.post(event["body"], secret)
        with self.lock:
            self.attempts += 1
        self.count(status)
        if status == 200 and answer and answer.get("id"):
            self.acknowledge(event, answer, "load")
            self.finish()
            return
        if status == 401:
            with self.lock:
                self.unauthorized.append((round(rel(), 1), label, event["order"]))
        if event["attempts"] > len(LOAD_RETRY_DELAYS):
            with self.lock:
                self.gave_up.append((event["order"], status))
            self.finish()
            return
        self.schedule(time.monotonic() + LOAD_RETRY_DELAYS[event["attempts"] - 1], event)

    def finish(self):
        with self.cv:
            self.outstanding -= 1
            self.cv.notify_all()

    def run(self, duration, workers):
        """Starts the generator and the workers; returns at once."""
        for index in range(workers):
            thread = threading.Thread(target=self.worker, name="load-%d" % index, daemon=True)
            thread.start()
            self.threads.append(thread)
        generator = threading.Thread(target=self.generate, args=(duration,), name="load-generator", daemon=True)
        generator.start()
        self.threads.append(generator)

    def generate(self, duration):
        start = time.monotonic()
        index = 0
        while not self.abort.is_set():
            due = start + index / self.rate
            if due - start >= duration:
                break
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            event = self.make_event("soak-%s-%d" % (self.run_id, index))
            with self.cv:
                self.outstanding += 1
            with self.lock:
                self.events_created += 1
            self.schedule(time.monotonic(), event)
            index += 1
        with self.cv:
            self.generating = False
            self.cv.notify_all()

    def wait(self, tail):
        """Waits for the generator, then at most `tail` seconds for the resends."""
        self.threads[-1].join()
        with self.cv:
            self.hard_deadline = time.monotonic() + tail
            self.cv.notify_all()
        for thread in self.threads[:-1]:
            thread.join(max(0.1, self.hard_deadline - time.monotonic() + 15))
        with self.cv:
            self.unfinished = self.outstanding


# ---------------------------------------------------------------------------------------------
# Sampling


class Sampler:
    def __init__(self, gateway, consumers, db_path, interval, load):
        self.gateway, self.consumers, self.db_path = gateway, consumers, db_path
        self.interval, self.load = interval, load
        self.rows = []
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.loop, name="sampler", daemon=True)

    def sample(self):
        row = {"t": round(rel(), 1), "rss_kb": None, "fds": None, "db_bytes": None, "wal_bytes": None}
        pid = self.gateway.pid if self.gateway.alive() else None
        if pid:
            try:
                with open("/proc/%d/status" % pid) as handle:
                    for line in handle:
                        if line.startswith("VmRSS:"):
                            row["rss_kb"] = int(line.split()[1])
                if not row["rss_kb"]:  # a process that is dying shows VmRSS 0 (or none) and no fds
                    row["rss_kb"] = None
                else:
                    row["fds"] = len(os.listdir("/proc/%d/fd" % pid))
            except OSError:
                pass
        try:
            row["db_bytes"] = os.path.getsize(self.db_path)
        except OSError:
            pass
        try:
            row["wal_bytes"] = os.path.getsize(self.db_path + "-wal")
        except OSError:
            row["wal_bytes"] = 0
        depths = queue_depths(self.gateway.metrics(), [c.name for c in self.consumers]) if pid else None
        for consumer in self.consumers:
            row["queue_" + consumer.name] = depths[consumer.name] if depths else None
        row["queue_total"] = sum(depths.values()) if depths else None
        with self.load.lock:
            row["acked"] = len(self.load.acked)
        row["delivered_2xx"] = sum(1 for c in self.consumers for r in list(c.records) if r["status"] == 200)
        self.rows.append(row)

    def loop(self):
        while not self.stop_event.is_set():
            began = time.monotonic()
            try:
                self.sample()
            except Exception as error:  # a sample must never stop the run
                log("sample failed: %r" % error)
            self.stop_event.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def start(self):
        self.thread.start()

    def stop(self):
        self.stop_event.set()
        self.thread.join(10)


# ---------------------------------------------------------------------------------------------
# The run


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--duration", default="10m")
    parser.add_argument("--out", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()

    duration = parse_duration(args.duration)
    rate = env_float("SOAK_RATE", 20)
    interval = env_float("SOAK_SAMPLE_INTERVAL", 5)
    drain_timeout = env_float("SOAK_DRAIN_TIMEOUT", 120)
    retention = os.environ.get("SOAK_EVENT_RETENTION")
    log_level = os.environ.get("SOAK_LOG_LEVEL", "info")
    work, out = os.path.abspath(args.work), os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    run_id = time.strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(3)

    failures, warnings, markers, notes = [], [], [], {}

    def fail(message):
        failures.append(message)
        log("FAIL: " + message)

    def warn(message):
        warnings.append(message)
        log("warning: " + message)

    def mark(label):
        markers.append({"t": round(rel(), 1), "label": label})

    # Secrets and config.
    secret_a, secret_b0 = secrets.token_hex(24), secrets.token_hex(24)
    admin_token = secrets.token_urlsafe(24)
    write_secret(os.path.join(work, "secret-a"), secret_a)
    write_secret(os.path.join(work, "secret-b"), secret_b0)
    write_secret(os.path.join(work, "admin-token"), admin_token)
    consumers = []
    for name in ("stall", "flaky", "slow"):
        signing = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        write_secret(os.path.join(work, "signing-" + name), signing)
        consumers.append(Consumer(name, name, signing))
    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    ingress_port, admin_port = ports
    os.makedirs(os.path.join(work, "data"), exist_ok=True)
    config = {
        "listen": {"host": "127.0.0.1", "port": ingress_port},
        "admin": {"host": "127.0.0.1", "port": admin_port, "token": "file:admin-token"},
        "storage": {"kind": "sqlite", "path": "data/gateway.sqlite"},
        "deadLetters": {"directory": "data/dead-letters"},
        "sources": [{"name": "tiktok", "path": SOURCE_PATH, "scheme": "tiktok",
                     "secrets": ["file:secret-a", "file:secret-b"], "tolerance": "5m"}],
        "consumers": [{"name": c.name, "url": c.url, "signingSecret": "file:signing-" + c.name,
                       "timeout": "%ds" % CONSUMER_TIMEOUT, "retry": RETRY} for c in consumers],
    }
    if retention:
        config["events"] = {"retention": retention}
    config_path = os.path.join(work, "gateway.json")
    with open(config_path, "w") as handle:
        json.dump(config, handle, indent=2)
    with open(os.path.join(out, "config.json"), "w") as handle:  # no secret values in it: file: references
        json.dump(config, handle, indent=2)
    db_path = os.path.join(work, "data", "gateway.sqlite")
    dl_dir = os.path.join(work, "data", "dead-letters")

    check = subprocess.run([args.gateway, "check-config", "--config", config_path], cwd=work,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    if check.returncode != 0:
        print(check.stdout.decode(errors="replace"), file=sys.stderr)
        raise SystemExit("check-config failed (status %d); the config is %s" % (
            check.returncode, os.path.join(out, "config.json")))

    for consumer in consumers:
        consumer.start()
    gateway = Gateway(args.gateway, config_path, work, out, ingress_port, admin_port, log_level)
    gateway.tokens = [admin_token]
    load = Load(ingress_port, rate, "secret-a", secret_a.encode(), run_id)
    sampler = Sampler(gateway, consumers, db_path, interval, load)
    restart_failed = False
    stopping = {"signal": None}

    def on_signal(number, _frame):
        stopping["signal"] = number
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    load_started = None
    try:
        log("gateway %s, %s, %.0f events/s, work %s, out %s" % (args.gateway, args.duration, rate, work, out))
        if not gateway.start():
            fail("gateway did not start")
            restart_failed = True
            raise RuntimeError("gateway did not start")
        mark("start")
        sampler.start()
        load_started = rel()
        load.run(duration, workers=max(16, int(rate)))
        actions = [(0.25, "SIGHUP"), (0.5, "SIGTERM"), (0.75, "kill -9")]
        for fraction, action in actions:
            due = load_started + fraction * duration
            while rel() < due:
                time.sleep(min(0.2, due - rel()))
            if action == "SIGHUP":
                rotate(gateway, load, work, secret_b0, notes, fail, warn, mark)
            else:
                if not restart(gateway, action, notes, fail, mark):
                    restart_failed = True
                    raise RuntimeError("gateway failed to restart after " + action)

        log("load runs until +%.0fs; then resends for at most %.0f s" % (load_started + duration, LOAD_TAIL_MAX))
        load.wait(LOAD_TAIL_MAX)
        mark("load end")
        log("load done: %d events, %d acknowledged, %d gave up, %d unfinished" % (
            load.events_created, len(load.acked), len(load.gave_up), load.unfinished))
        for consumer in consumers:
            consumer.calm.set()

        # Drain: every queue 0 and nothing in flight at the consumers, three polls in a row.
        began = time.monotonic()
        stable, depths = 0, None
        while time.monotonic() - began < drain_timeout:
            depths = queue_depths(gateway.metrics(), [c.name for c in consumers])
            busy = sum(c.in_flight for c in consumers)
            if depths is not None and sum(depths.values()) == 0 and busy == 0:
                stable += 1
                if stable >= 3:
                    break
            else:
                stable = 0
            time.sleep(0.5)
        drained = stable >= 3
        notes["drain_seconds"] = round(time.monotonic() - began, 1)
        notes["queue_depth_at_end"] = depths
        if drained:
            log("queues empty %.1f s after the load" % notes["drain_seconds"])
        else:
            fail("queues not empty %.0f s after the load: %s" % (drain_timeout, depths))
        status, text = gateway.admin("GET", "/admin/consumers")
        try:
            notes["consumers_at_end"] = json.loads(text).get("consumers") if status == 200 else text
        except ValueError:
            notes["consumers_at_end"] = text
        final_metrics = gateway.metrics() or {}
        notes["final_metrics_since_last_start"] = {
            name: {",".join("%s=%s" % kv for kv in labels): value for labels, value in series.items()}
            for name, series in final_metrics.items() if name.startswith("webhook_gateway_")
            and not name.startswith("webhook_gateway_delivery_latency")}
        mark("stop")
        sampler.sample()
        code, seconds = gateway.terminate()
        notes["final_sigterm"] = {"exit": code, "seconds": round(seconds, 1)}
        if code is None:
            fail("gateway did not exit within 15 s of the final SIGTERM")
            gateway.kill9()
        elif code != 0:
            fail("gateway exited with status %s after the final SIGTERM" % code)
    except KeyboardInterrupt:
        fail("interrupted by signal %s" % stopping["signal"])
    except RuntimeError as error:
        log("run aborted: %s" % error)
    finally:
        load.abort.set()
        sampler.stop()
        if gateway.alive():
            code, _ = gateway.terminate(12)
            if code is None:
                gateway.kill9()
        for consumer in consumers:
            consumer.stop()

    if os.path.isdir(dl_dir):
        import shutil
        shutil.copytree(dl_dir, os.path.join(out, "dead-letters"), dirs_exist_ok=True)
    summary = analyse(consumers, load, dl_dir, markers, notes, sampler.rows, duration, rate,
                      failures, warnings, restart_failed, args, retention)
    write_outputs(out, sampler.rows, consumers, summary, markers)
    return 1 if summary["failures"] else 0


def rotate(gateway, load, work, secret_b0, notes, fail, warn, mark):
    """Rotates the admin token and secret-b, SIGHUP, then signs with the new secret-b."""
    old_token = gateway.tokens[0]
    new_token = secrets.token_urlsafe(24)
    secret_b1 = secrets.token_hex(24)
    write_secret(os.path.join(work, "admin-token"), new_token)
    write_secret(os.path.join(work, "secret-b"), secret_b1)
    gateway.tokens = [new_token, old_token]  # the sampler keeps working whichever is live
    log("SIGHUP: secret-b and the admin token rotated")
    mark("SIGHUP")
    sent = time.monotonic()
    os.kill(gateway.pid, signal.SIGHUP)

    # The new secret must verify (a probe event, resent every 250 ms for up to 10 s).
    probe = load.make_event("soak-%s-probe-new-secret" % load.run_id)
    accepted_after = None
    while time.monotonic() - sent < 10:
        status, answer = load.post(probe["body"], secret_b1.encode())
        if status == 200 and answer and answer.get("id"):
            load.acknowledge(probe, answer, "probe")
            accepted_after = time.monotonic() - sent
            break
        time.sleep(0.25)
    rotation = {"new_secret_accepted_after_s": round(accepted_after, 2) if accepted_after is not None else None}
    if accepted_after is None:
        fail("SIGHUP: an event signed with the new secret-b was not accepted within 10 s")
    else:
        load.set_secret("secret-b (rotated)", secret_b1.encode())
        log("the new secret-b verifies %.2f s after SIGHUP; the load signs with it now" % accepted_after)
    # The replaced value of secret-b must not verify any more.
    stale = load.make_event("soak-%s-probe-old-secret" % load.run_id)
    status, answer = load.post(stale["body"], secret_b0.encode())
    rotation["old_secret_b_answer"] = status
    if status == 200:
        if answer and answer.get("id"):
            load.acknowledge(stale, answer, "probe")
        fail("SIGHUP: an event signed with the replaced secret-b value was accepted (%s)" % status)
    elif status != 401:
        warn("SIGHUP: the replaced secret-b value got %s (expected 401)" % status)

    # Admin token: the new one must work, the old one must not (reported, never fatal).
    new_status = None
    while time.monotonic() - sent < 10:
        new_status, _ = gateway.admin("GET", "/metrics", token_value=new_token, timeout=3)
        if new_status == 200:
            break
        time.sleep(0.25)
    old_status, _ = gateway.admin("GET", "/metrics", token_value=old_token, timeout=3)
    rotation["metrics_with_new_token"] = new_status
    rotation["metrics_with_old_token"] = old_status
    if new_status != 200 or old_status != 401:
        warn("admin token rotation by SIGHUP: /metrics answered %s with the new token (want 200), %s with the "
             "old one (want 401)" % (new_status, old_status))
    else:
        log("admin token rotated: new token 200, old token 401")
    notes["rotation"] = rotation


def restart(gateway, action, notes, fail, mark):
    """SIGTERM (expects exit 0) or kill -9, then start again on the same config and data."""
    log("%s, then restart" % action)
    mark(action)
    began = time.monotonic()
    entry = {"action": action, "t": round(rel(), 1)}
    if action == "SIGTERM":
        code, seconds = gateway.terminate()
        entry.update(exit=code, exit_seconds=round(seconds, 2))
        if code is None:
            fail("SIGTERM: the gateway did not exit within 15 s")
            gateway.kill9()
        elif code != 0:
            fail("SIGTERM: the gateway exited with status %s (want 0)" % code)
        elif seconds > 10:
            fail("SIGTERM: the gateway took %.1f s to exit (at most 10 s)" % seconds)
    else:
        gateway.kill9()
    ok = gateway.start()
    entry["ready"] = ok
    entry["downtime_s"] = round(time.monotonic() - began, 2)
    notes.setdefault("restarts", []).append(entry)
    if not ok:
        fail("%s: the gateway failed to restart" % action)
    else:
        log("%s: ready again after %.2f s" % (action, entry["downtime_s"]))
    return ok


# ---------------------------------------------------------------------------------------------
# Checks and outputs


def read_dead_letters(directory, name, failures):
    path = os.path.join(directory, name + ".jsonl")
    letters = []
    if not os.path.exists(path):
        return letters
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                letters.append(json.loads(line))
            except ValueError:
                failures.append("%s.jsonl line %d is not a whole JSON object" % (name, number))
    return letters


def dead_letter_matches(consumer, letter, records):
    """A dead letter is acceptable only if every attempt failed the way this consumer misbehaves and
    the consumer never answered 2xx for that event."""
    if any(r["status"] == 200 for r in records):
        return False, "the consumer answered 2xx for it"
    attempts = letter.get("attempts") or []
    if not attempts:
        return False, "no attempts recorded"
    for attempt in attempts:
        status, error = attempt.get("status"), attempt.get("error")
        if consumer.behaviour == "flaky" and not (isinstance(status, int) and 500 <= status <= 599):
            return False, "attempt %s is not the 503 flaky answers" % attempt
        if consumer.behaviour == "stall" and not (error and status in (None, 200)):
            return False, "attempt %s is not a timeout" % attempt
        if consumer.behaviour == "slow":
            return False, "slow never misbehaves"
    return True, "every attempt failed the way the consumer misbehaved"


def analyse(consumers, load, dl_dir, markers, notes, rows, duration, rate, failures, warnings,
            restart_failed, args, retention):
    acked = load.acked
    kill_times = [m["t"] for m in markers if m["label"] == "kill -9"]
    per_consumer = {}
    for consumer in consumers:
        by_id = {}
        for record in consumer.records:
            by_id.setdefault(record["id"], []).append(record)
        letters = read_dead_letters(dl_dir, consumer.name, failures)
        dead = {}
        for letter in letters:
            dead.setdefault(letter.get("eventId"), []).append(letter)
        delivered = {wid for wid, records in by_id.items() if any(r["status"] == 200 for r in records)}
        lost = [wid for wid in acked if wid not in delivered and wid not in dead]
        unexpected_letters, acceptable_letters = [], 0
        for wid, items in dead.items():
            for letter in items:
                ok, why = dead_letter_matches(consumer, letter, by_id.get(wid, []))
                if ok:
                    acceptable_letters += 1
                else:
                    unexpected_letters.append({"eventId": wid, "reason": letter.get("reason"), "why": why,
                                               "attempts": letter.get("attempts")})
        duplicates = {"total": 0, "around_kill9": 0, "after_late_answer": 0, "unexplained": 0, "examples": []}
        for wid, records in by_id.items():
            oks = sorted((r for r in records if r["status"] == 200), key=lambda r: r["end"])
            if len(oks) < 2:
                continue
            duplicates["total"] += len(oks) - 1
            for first in oks[:-1]:
                if any(k - KILL_WINDOW <= first["end"] <= k + 1.0 for k in kill_times):
                    duplicates["around_kill9"] += 1
                elif first["end"] - first["t"] >= CONSUMER_TIMEOUT - 0.1:
                    duplicates["after_late_answer"] += 1
                else:
                    duplicates["unexplained"] += 1
                    if len(duplicates["examples"]) < 5:
                        duplicates["examples"].append({"id": wid, "answers_at": [round(r["end"], 2) for r in oks]})
        body_mismatch = sum(1 for wid in delivered if wid in acked and any(
            r["sha"] != acked[wid]["sha"] for r in by_id[wid] if r["status"] == 200))
        stalls = [r for r in consumer.records if r["status"] == "stall"]
        cut = [r["cut_after"] for r in stalls if r["cut_after"] is not None]
        not_cut = [r for r in stalls if r["cut_after"] is None or r["cut_after"] > CONSUMER_TIMEOUT + STALL_CUT_SLACK]
        entry = {
            "requests": len(consumer.records),
            "delivered": len(delivered & set(acked)),
            "dead_lettered": len(set(dead) & set(acked)),
            "dead_letter_lines": len(letters),
            "dead_letters_acceptable": acceptable_letters,
            "dead_letters_unexpected": unexpected_letters[:20],
            "delivered_and_dead_lettered": len(delivered & set(dead)),
            "duplicates": duplicates,
            "lost": len(lost),
            "lost_examples": lost[:10],
            "signature_failures": consumer.sig_failures,
            "signature_failure_examples": consumer.sig_failure_examples,
            "body_mismatches": body_mismatch,
            "unknown_ids": len(set(by_id) - set(acked)),
            "answers": {},
            "stalls": len(stalls),
            "stall_cut_after_max_s": round(max(cut), 2) if cut else None,
            "stalls_not_cut_in_time": len(not_cut),
        }
        for record in consumer.records:
            key = str(record["status"])
            entry["answers"][key] = entry["answers"].get(key, 0) + 1
        per_consumer[consumer.name] = entry

        if lost:
            failures.append("%s: %d acknowledged events neither delivered nor dead-lettered (e.g. %s)" % (
                consumer.name, len(lost), ", ".join(lost[:3])))
        if consumer.sig_failures:
            failures.append("%s: %d signature verification failures (%s)" % (
                consumer.name, consumer.sig_failures, "; ".join(consumer.sig_failure_examples[:2])))
        if unexpected_letters:
            failures.append("%s: %d dead letters that its behaviour does not explain (e.g. %s: %s)" % (
                consumer.name, len(unexpected_letters), unexpected_letters[0]["eventId"], unexpected_letters[0]["why"]))
        if duplicates["unexplained"]:
            failures.append("%s: %d duplicate deliveries not around the kill -9 (e.g. %s)" % (
                consumer.name, duplicates["unexplained"], duplicates["examples"][:1]))
        if entry["unknown_ids"]:
            warnings.append("%s: %d webhook-ids delivered that no 200 acknowledged (events whose answer was lost "
                            "and that the load gave up resending?)" % (consumer.name, entry["unknown_ids"]))
        if body_mismatch:
            failures.append("%s: %d deliveries whose body differs from the body sent" % (consumer.name, body_mismatch))
        if not_cut:
            failures.append("%s: %d stalled answers not cut off within %.0f s (timeout %.0f s; longest %s)" % (
                consumer.name, len(not_cut), CONSUMER_TIMEOUT + STALL_CUT_SLACK, CONSUMER_TIMEOUT,
                "never (held %.0f s)" % STALL_MAX if any(r["cut_after"] is None for r in not_cut)
                else "%.1f s" % max(r["cut_after"] for r in not_cut)))

    if load.unauthorized:
        failures.append("%d load requests answered 401 (first: %s)" % (len(load.unauthorized), load.unauthorized[:3]))
    if load.gave_up or load.unfinished:
        warnings.append("%d events never answered 200 after %d sends, %d unfinished at the end (not acknowledged, "
                        "so not checked)" % (len(load.gave_up), len(LOAD_RETRY_DELAYS) + 1, load.unfinished))

    half = duration / 2
    load_start = next((m["t"] for m in markers if m["label"] == "start"), 0)

    def maxima(selected):
        def top(key, scale=1):
            values = [r[key] for r in selected if r[key] is not None]
            if not values:
                return None
            return round(max(values) / scale, 1) if scale != 1 else max(values)
        db = [r["db_bytes"] + (r["wal_bytes"] or 0) for r in selected if r["db_bytes"] is not None]
        return {"rss_mb": top("rss_kb", 1024), "fds": top("fds"), "db_mb": round(max(db) / 2 ** 20, 1) if db else None,
                "queue_depth": top("queue_total")}

    first = [r for r in rows if r["t"] < load_start + half]
    second = [r for r in rows if r["t"] >= load_start + half]
    a, b = maxima(first), maxima(second)
    # Levelling off is reported, not enforced: a restart resets the process, and the store grows until
    # events.retention (at least 1 h) prunes.
    if a["rss_mb"] and b["rss_mb"] and b["rss_mb"] > a["rss_mb"] * 1.25 + 10:
        warnings.append("RSS still growing: max %.1f MB in the first half, %.1f MB in the second" % (a["rss_mb"], b["rss_mb"]))
    if a["fds"] and b["fds"] and b["fds"] > a["fds"] * 1.25 + 20:
        warnings.append("open fds still growing: max %d in the first half, %d in the second" % (a["fds"], b["fds"]))
    return {
        "gateway": args.gateway,
        "duration_s": duration,
        "rate_per_s": rate,
        "events_retention": retention,
        "events_created": load.events_created,
        "events_acknowledged": len(acked),
        "acknowledged_as_duplicate": sum(1 for a in acked.values() if a["status"] == "duplicate"),
        "load_sends": load.attempts,
        "load_answers": {str(k): v for k, v in load.answers.items()},
        "load_unauthorized": len(load.unauthorized),
        "load_gave_up": len(load.gave_up),
        "load_unfinished": load.unfinished,
        "consumers": per_consumer,
        "markers": markers,
        "notes": notes,
        "first_half_max": a,
        "second_half_max": b,
        "restart_failed": restart_failed,
        "failures": failures,
        "warnings": warnings,
    }


def write_outputs(out, rows, consumers, summary, markers):
    fields = ["t", "rss_kb", "fds", "db_bytes", "wal_bytes"] + ["queue_" + c.name for c in consumers] + [
        "queue_total", "acked", "delivered_2xx"]
    with open(os.path.join(out, "samples.csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    with open(os.path.join(out, "summary.json"), "w") as handle:
        json.dump(summary, handle, indent=2, default=str)

    p = print
    p()
    p("soak: %s at %.0f events/s for %.0f s; gateway %s" % (
        "PASS" if not summary["failures"] else "FAIL", summary["rate_per_s"], summary["duration_s"], summary["gateway"]))
    p("events acknowledged: %d (%d load events sent, plus rotation probes; %d answered duplicate after a resend); "
      "load answers: %s" % (
        summary["events_acknowledged"], summary["events_created"], summary["acknowledged_as_duplicate"],
        ", ".join("%s=%d" % kv for kv in sorted(summary["load_answers"].items()))))
    for restart in summary["notes"].get("restarts", []):
        p("restart: %s at +%.0fs: exit %s, ready again after %.1f s" % (
            restart["action"], restart["t"], restart.get("exit", "-"), restart["downtime_s"]))
    if "rotation" in summary["notes"]:
        p("rotation: %s" % summary["notes"]["rotation"])
    if "drain_seconds" in summary["notes"]:
        p("drain: queues %s %.1f s after the load" % (
            "empty" if summary["notes"].get("queue_depth_at_end") and not sum(
                summary["notes"]["queue_depth_at_end"].values()) else "NOT empty", summary["notes"]["drain_seconds"]))
    p()
    p("| consumer | delivered | dead-lettered | duplicates (kill -9 / late / other) | lost | sig failures | stalls (max cut s) | answers |")
    p("|---|---|---|---|---|---|---|---|")
    for name, c in summary["consumers"].items():
        d = c["duplicates"]
        p("| %s | %d | %d | %d (%d / %d / %d) | %d | %d | %d (%s) | %s |" % (
            name, c["delivered"], c["dead_lettered"], d["total"], d["around_kill9"], d["after_late_answer"],
            d["unexplained"], c["lost"], c["signature_failures"], c["stalls"], c["stall_cut_after_max_s"],
            " ".join("%s:%d" % kv for kv in sorted(c["answers"].items()))))
        for letter in c["dead_letters_unexpected"][:3]:
            p("    unexpected dead letter %s: reason %r; %s" % (letter["eventId"], letter["reason"], letter["why"]))
    p()
    p("| t s | RSS MB | fds | db MB | queue depth | event |")
    p("|---|---|---|---|---|---|")
    if rows:
        step = max(1, len(rows) // 10)
        picked = rows[::step]
        if picked[-1] is not rows[-1]:
            picked.append(rows[-1])
        shown = {}
        for m in markers:  # each marker on the first row shown at or after it
            at = next((r for r in picked if r["t"] >= m["t"]), picked[-1])
            shown.setdefault(id(at), []).append("%s at %.0f" % (m["label"], m["t"]))
        for row in picked:
            near = shown.get(id(row), [])
            db = (row["db_bytes"] + (row["wal_bytes"] or 0)) / 2 ** 20 if row["db_bytes"] is not None else None
            p("| %.0f | %s | %s | %s | %s | %s |" % (
                row["t"], "%.1f" % (row["rss_kb"] / 1024) if row["rss_kb"] else "-",
                row["fds"] if row["fds"] is not None else "-", "%.1f" % db if db is not None else "-",
                row["queue_total"] if row["queue_total"] is not None else "-", ", ".join(near)))
    p()
    a, b = summary["first_half_max"], summary["second_half_max"]
    p("max in the first half / second half: RSS %s / %s MB, fds %s / %s, db %s / %s MB, queue %s / %s" % (
        a["rss_mb"], b["rss_mb"], a["fds"], b["fds"], a["db_mb"], b["db_mb"], a["queue_depth"], b["queue_depth"]))
    if not summary["events_retention"]:
        p("(the database grows with every event until events.retention, at least 1h, prunes: not within this run)")
    for warning in summary["warnings"]:
        p("warning: " + warning)
    for failure in summary["failures"]:
        p("FAILED: " + failure)
    p()
    p("samples: %s; summary: %s" % (os.path.join(out, "samples.csv"), os.path.join(out, "summary.json")))
    plot(out, rows, markers)


def plot(out, rows, markers):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no soak.png (pip install matplotlib)")
        return
    t = [r["t"] for r in rows]
    series = [
        ("RSS MB", [r["rss_kb"] / 1024 if r["rss_kb"] else None for r in rows]),
        ("open fds", [r["fds"] for r in rows]),
        ("db + wal MB", [(r["db_bytes"] + (r["wal_bytes"] or 0)) / 2 ** 20 if r["db_bytes"] is not None else None
                         for r in rows]),
        ("queue depth", [r["queue_total"] for r in rows]),
    ]
    figure, axes = plt.subplots(len(series), 1, sharex=True, figsize=(10, 9))
    colours = {"SIGHUP": "tab:green", "SIGTERM": "tab:orange", "kill -9": "tab:red", "load end": "tab:gray"}
    for axis, (label, values) in zip(axes, series):
        axis.plot(t, [v if v is not None else float("nan") for v in values], marker=".", linewidth=1)
        axis.set_ylabel(label)
        axis.grid(True, alpha=0.3)
        for m in markers:
            if m["label"] in colours:
                axis.axvline(m["t"], color=colours[m["label"]], linestyle="--", linewidth=1)
    for m in markers:
        if m["label"] in colours:
            axes[0].annotate(m["label"], (m["t"], 1), xycoords=("data", "axes fraction"), rotation=90,
                             va="top", ha="right", fontsize=8, color=colours[m["label"]])
    axes[-1].set_xlabel("seconds since the driver started")
    figure.suptitle("webhook-gateway soak")
    figure.tight_layout()
    path = os.path.join(out, "soak.png")
    figure.savefig(path, dpi=100)
    print("plot: %s" % path)


if __name__ == "__main__":
    sys.exit(main())
