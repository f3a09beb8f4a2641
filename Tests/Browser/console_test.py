#!/usr/bin/env python3
"""The operator console (GET /ui/) in a real browser: Chromium, driven by Selenium through Debian's
chromedriver. Run by scripts/browser-test.sh (which makes the virtualenv); by hand:

    python3 Tests/Browser/console_test.py --gateway .build/debug/webhook-gateway --screenshots /tmp/shots

It starts the gateway with a throwaway configuration and three scripted consumers (HTTP servers in
this process whose answers the test switches), sends signed TikTok events with the gateway's own
send-test-event, and checks each view through the page only:

- sign-in: a wrong token is refused, the right one opens the overview;
- overview: a consumer paused after failures is shown as such, and a click on Resume resumes it;
- events: a search by order id finds the event; its trace shows each attempt (500, 500, 200);
- dead letters: a dead letter is replayed from the page (dry-run count, confirm) and delivered;
- XSS: an order id carrying <script> and "><img onerror=…> shows as text: no element is made from
  it and no marker the payload would set is set;
- phone width: the views fit 390 px without scrolling sideways;
- HTTPS: with admin.tls the console signs in and works the same.

Screenshots of each view go to --screenshots (the README's are made so: --screenshots docs/images).
Every wait is for a condition, bounded in time; nothing sleeps for a fixed time.
"""

import argparse
import base64
import http.server
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

WAIT = 20  # seconds: the bound of every wait for the page or the gateway

XSS_ORDER_ID = '<script>window.__wgXss="script"</script>"><img src=x onerror="window.__wgXss=\'img\'">'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as error:  # the gateway may not answer yet
            last = error
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f" (last error: {last})" if last else ""))


class Consumers:
    """Three consumers on one HTTP server, told apart by path; each answers as its mode says."""

    def __init__(self):
        self.modes = {"orders": "fail-twice", "fulfilment": "fail", "ledger": "fail"}
        self.received = {name: [] for name in self.modes}
        self.attempts = {}
        self.lock = threading.Lock()
        consumers = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                name = self.path.strip("/")
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                webhook_id = self.headers.get("webhook-id", "")
                with consumers.lock:
                    mode = consumers.modes.get(name, "fail")
                    key = (name, webhook_id)
                    consumers.attempts[key] = consumers.attempts.get(key, 0) + 1
                    if mode == "ok" or (mode == "fail-twice" and consumers.attempts[key] > 2):
                        status = 200
                        consumers.received.setdefault(name, []).append((webhook_id, body))
                    else:
                        status = 500
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set(self, name, mode):
        with self.lock:
            self.modes[name] = mode

    def got(self, name):
        with self.lock:
            return list(self.received[name])

    def close(self):
        self.server.shutdown()


class Gateway:
    def __init__(self, binary, work, consumers, tls=None):
        self.binary = binary
        self.work = work
        self.token = "console-test-" + secrets.token_hex(16)
        self.env = dict(os.environ)
        self.env["CONSOLE_TEST_ADMIN_TOKEN"] = self.token
        self.env["CONSOLE_TEST_TIKTOK_SECRET"] = "tiktok-" + secrets.token_hex(16)
        self.env["CONSOLE_TEST_SIGNING_SECRET"] = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.ingress_port = free_port()
        self.admin_port = free_port()
        scheme = "https" if tls else "http"
        self.admin = f"{scheme}://127.0.0.1:{self.admin_port}"
        base = f"http://127.0.0.1:{consumers.port}"

        def consumer(name, events, retry, concurrency=4):
            return {
                "name": name, "url": f"{base}/{name}", "sources": ["tiktok"], "events": events,
                "signingSecret": "env:CONSOLE_TEST_SIGNING_SECRET", "timeout": "5s",
                "concurrency": concurrency, "retry": retry,
            }

        admin = {"host": "127.0.0.1", "port": self.admin_port, "token": "env:CONSOLE_TEST_ADMIN_TOKEN"}
        if tls:
            admin["tls"] = tls
        self.config_path = os.path.join(work, "config.json")
        config = {
            "listen": {"host": "127.0.0.1", "port": self.ingress_port},
            "admin": admin,
            "storage": {"kind": "sqlite", "path": os.path.join(work, "gateway.sqlite")},
            "deadLetters": {"directory": os.path.join(work, "dead-letters")},
            "sources": [{"name": "tiktok", "path": "/webhooks/tiktok", "scheme": "tiktok",
                         "secrets": ["env:CONSOLE_TEST_TIKTOK_SECRET"]}],
            "consumers": [
                # Fails each event twice, then takes it: a trace of three attempts.
                consumer("orders", ["minis.trade_order.redeem.success"],
                         {"maxAttempts": 5, "initialDelay": "100ms", "maxDelay": "200ms"}),
                # Fails everything until told otherwise: paused after five failures in a row. The
                # long delays keep its probes away while the test looks at the pause.
                consumer("fulfilment", ["minis.subscription.*"],
                         {"maxAttempts": 10, "initialDelay": "60s", "maxDelay": "120s"}, concurrency=8),
                # One attempt: a failure is a dead letter at once.
                consumer("ledger", ["minis.trade_order.redeem.refund_traceback"],
                         {"maxAttempts": 1, "initialDelay": "100ms", "maxDelay": "100ms"}),
            ],
        }
        with open(self.config_path, "w") as f:
            json.dump(config, f, indent=2)
        self.log = open(os.path.join(work, "gateway.log"), "w")
        self.process = subprocess.Popen(
            [binary, "serve", "--config", self.config_path], env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        self.context = ssl._create_unverified_context() if tls else None
        wait_until(self.answers, "the gateway to answer")

    def answers(self):
        if self.process.poll() is not None:
            raise SystemExit(f"the gateway exited ({self.process.returncode}); see {self.log.name}")
        return self.get("/healthz", token=False) is not None

    def request(self, method, path, body=None, token=True):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.admin + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=5, context=self.context) as response:
            return json.loads(response.read() or b"null")

    def get(self, path, token=True):
        return self.request("GET", path, token=token)

    def consumer(self, name):
        return next(c for c in self.get("/admin/consumers")["consumers"] if c["name"] == name)

    def send(self, event, order_id, *extra):
        result = subprocess.run(
            [self.binary, "send-test-event", "--config", self.config_path, "--event", event, "--order-id", order_id, *extra],
            env=self.env, capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise AssertionError(f"send-test-event failed: {result.stdout}{result.stderr}")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


class Browser:
    def __init__(self, screenshots, chromium, chromedriver):
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1000", "--lang=en-US", "--force-device-scale-factor=1"):
            options.add_argument(argument)
        options.accept_insecure_certs = True  # the HTTPS test's self-signed certificate
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(chromedriver), options=options)
        self.screenshots = screenshots

    def wait(self, condition, what, timeout=WAIT):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(condition)
        except TimeoutException:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None

    def find(self, selector):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def finds(self, selector):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def visible(self, selector, what=None):
        return self.wait(EC.visibility_of_element_located((By.CSS_SELECTOR, selector)), what or selector)

    def click(self, selector, what=None):
        """Clicks the element once it is clickable; the overview redraws its rows every 5 s, so an
        element found a moment ago may be gone: found again then."""
        def clicked(driver):
            try:
                element = driver.find_element(By.CSS_SELECTOR, selector)
                if not (element.is_displayed() and element.is_enabled()):
                    return False
                element.click()
                return True
            except StaleElementReferenceException:
                return False
        self.wait(clicked, what or f"{selector} to be clickable")

    def matches(self, selector, pattern, what=None):
        import re
        return self.wait(lambda d: re.search(pattern, d.find_element(By.CSS_SELECTOR, selector).text), what or f"{pattern} in {selector}")

    def text_in(self, selector, text, what=None):
        return self.wait(EC.text_to_be_present_in_element((By.CSS_SELECTOR, selector), text), what or f"{text!r} in {selector}")

    def shot(self, name):
        if self.screenshots:
            self.driver.save_screenshot(os.path.join(self.screenshots, f"console-{name}.png"))

    def phone(self, on):
        if on:
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                        {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
        else:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def fits_width(self):
        return self.driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")

    def problems(self):
        """Browser console messages that say something went wrong (a CSP violation, a script error);
        the 401s the tests cause on purpose are expected."""
        found = []
        for entry in self.driver.get_log("browser"):
            if entry["level"] not in ("SEVERE", "WARNING"):
                continue
            message = entry["message"]
            if "401" in message or "favicon" in message:
                continue
            found.append(message)
        return found

    def quit(self):
        self.driver.quit()


def sign_in(browser, gateway, token):
    form_token = browser.visible("#login-token", "the token prompt")
    form_token.clear()
    form_token.send_keys(token)
    browser.find("#login-submit").click()


# ---- The tests, in order: each builds on the gateway state the earlier ones left ----

def test_sign_in(browser, gateway, consumers):
    browser.driver.get(gateway.admin + "/ui/")
    sign_in(browser, gateway, "not-the-token")
    browser.text_in("#login-message", "refused", "the wrong token to be refused")
    assert not browser.find("#nav").is_displayed(), "the navigation shows although the token was refused"
    assert browser.driver.execute_script("return sessionStorage.length") == 0, "a refused token was stored"
    browser.shot("sign-in")
    sign_in(browser, gateway, gateway.token)
    browser.visible("#view-overview", "the overview after signing in")
    browser.text_in("#consumers", "fulfilment", "the consumer table")


def test_pause_after_failures_and_resume(browser, gateway, consumers):
    # Six subscriptions (one order lane each: a lane delivers one at a time), all refused.
    for n in range(1, 7):
        gateway.send("minis.subscription.renew", f"SUB-{n}")
    wait_until(lambda: gateway.consumer("fulfilment")["pausedBy"] == "failures",
               "fulfilment to be paused by failures")
    browser.driver.get(gateway.admin + "/ui/#/overview")
    row = '#consumers tr[data-consumer="fulfilment"]'
    browser.text_in(row, "paused by failures", "the overview to show fulfilment paused by failures")
    # A rate needs two samples (5 s apart): a number, not the placeholder.
    browser.matches("#rate-ingest", r"now \d+(\.\d)?/s", "the ingest rate")
    browser.shot("overview-paused")
    consumers.set("fulfilment", "ok")
    browser.click(f'{row} button[data-action="resume"]', "the Resume button of fulfilment")
    browser.text_in(row, "delivering", "fulfilment to show as delivering after Resume")
    assert gateway.consumer("fulfilment")["paused"] is False, "the gateway still has fulfilment paused"
    browser.text_in("#overview-message", "fulfilment: resumed")


def test_search_by_order_id_and_trace(browser, gateway, consumers):
    gateway.send("minis.trade_order.redeem.success", "ORDER-4711")
    # The consumer counts a delivery before it answers: wait for the gateway's record instead.
    wait_until(lambda: [d["status"] for e in gateway.get("/admin/events?orderId=ORDER-4711")["events"] for d in e["deliveries"]] == ["delivered"],
               "ORDER-4711 to be delivered to orders at its third attempt")
    browser.driver.get(gateway.admin + "/ui/#/events")
    order = browser.visible("#events-order-id")
    order.clear()
    order.send_keys("ORDER-4711")
    browser.find("#events-search").click()
    browser.text_in("#events-message", "1 event", "the search to find one event")
    cells = [c.text for c in browser.finds("#events tbody tr td")]
    assert "ORDER-4711" in cells, f"the result row does not show the order id: {cells}"
    browser.shot("events-search")
    browser.find("#events tbody tr td a").click()
    trace = '#event-trace section[data-consumer="orders"]'
    browser.text_in(trace, "delivered", "the trace to show the delivery")
    steps = [li.text for li in browser.finds(f"{trace} li")]
    attempts = [s for s in steps if "attempt" in s]
    assert len(attempts) == 3, f"expected three attempts in the trace, got {steps}"
    assert "HTTP 500" in attempts[0] and "HTTP 500" in attempts[1] and "HTTP 200" in attempts[2], steps
    assert all(" ms" in a for a in attempts), f"an attempt without its duration: {attempts}"
    headers = {row.find_element(By.TAG_NAME, "th").text: row.find_element(By.TAG_NAME, "td").text
               for row in browser.finds("#event-headers tr")}
    assert headers.get("tiktok-signature") == "[redacted]", f"the signature header is not redacted: {headers}"
    assert "ORDER-4711" in browser.find("#event-body").text, "the body is not shown"
    browser.shot("event-trace")


def test_redeliver_from_the_event(browser, gateway, consumers):
    before = len(consumers.got("orders"))
    consumers.set("orders", "ok")
    browser.find("#redeliver-submit").click()
    browser.text_in("#redeliver-message", "Queued for orders", "the redelivery to be queued")
    wait_until(lambda: len(consumers.got("orders")) > before, "the redelivery to reach orders")
    ids = {webhook_id for webhook_id, _ in consumers.got("orders")}
    assert len(ids) == 1, f"a redelivery must carry the original webhook-id: {ids}"


def test_dead_letter_replay(browser, gateway, consumers):
    gateway.send("minis.trade_order.redeem.refund_traceback", "REFUND-9", "--refund-amount", "100")
    wait_until(lambda: len(gateway.get("/admin/dead-letters?consumer=ledger")["deadLetters"]) == 1,
               "the refund to become a dead letter for ledger")
    consumers.set("ledger", "ok")
    browser.driver.get(gateway.admin + "/ui/#/dead-letters")
    browser.wait(lambda d: len(Select(d.find_element(By.ID, "dl-consumer")).options) == 3, "the consumer list")
    Select(browser.find("#dl-consumer")).select_by_visible_text("ledger")
    browser.find("#dl-show").click()
    browser.text_in("#dl-message", "1 dead letter", "the dead letter to be listed")
    browser.find("#dead-letters button.replay-one").click()
    browser.visible("#dl-confirm", "the dry-run count and confirmation")
    assert "Replay 1 dead letter" in browser.find("#dl-confirm-text").text, browser.find("#dl-confirm-text").text
    assert consumers.got("ledger") == [], "something was replayed before the confirmation"
    browser.shot("dead-letters-confirm")
    browser.find("#dl-confirm-yes").click()
    browser.text_in("#dl-message", "Replayed 1", "the replay to be done")
    wait_until(lambda: len(consumers.got("ledger")) == 1, "the replayed dead letter to reach ledger")
    browser.text_in("#dead-letters tbody", "yes", "the dead letter to show as replayed")
    browser.shot("dead-letters")
    # A second replay of everything finds nothing left: counted, not sent.
    browser.find("#dl-replay-all").click()
    browser.text_in("#dl-message", "Nothing to replay", "the dry run to find nothing left")
    assert len(consumers.got("ledger")) == 1

    # Three more dead letters; two of them ticked and replayed as a selection, then the rest by
    # "all matching": each counted first, and exactly what the count named is sent.
    consumers.set("ledger", "fail")
    for n in (10, 11, 12):
        gateway.send("minis.trade_order.redeem.refund_traceback", f"REFUND-{n}", "--refund-amount", "100")
    wait_until(lambda: len(gateway.get("/admin/dead-letters?consumer=ledger")["deadLetters"]) == 4,
               "three more dead letters for ledger")
    consumers.set("ledger", "ok")
    browser.find("#dl-show").click()
    browser.text_in("#dl-message", "4 dead letters", "the four dead letters")
    boxes = [row.find_element(By.CSS_SELECTOR, ".dl-select") for row in browser.finds("#dead-letters tbody tr")
             if "REFUND-10" in row.text or "REFUND-11" in row.text]
    assert len(boxes) == 2, "the rows of REFUND-10 and REFUND-11"
    for box in boxes:
        box.click()
    browser.text_in("#dl-replay-selected", "(2)", "the selection count on the button")
    browser.find("#dl-replay-selected").click()
    browser.text_in("#dl-confirm-text", "Replay 2 dead letters", "the dry-run count of the selection")
    browser.find("#dl-confirm-yes").click()
    browser.text_in("#dl-message", "Replayed 2", "the selection to be replayed")
    wait_until(lambda: len(consumers.got("ledger")) == 3, "the two replayed dead letters to reach ledger")
    browser.find("#dl-replay-all").click()
    browser.text_in("#dl-confirm-text", "Replay 1 dead letter", "the dry run of all matching: only REFUND-12 is left")
    assert "3 already replayed will be skipped" in browser.find("#dl-confirm-text").text, browser.find("#dl-confirm-text").text
    browser.find("#dl-confirm-yes").click()
    browser.text_in("#dl-message", "Replayed 1", "the rest to be replayed")
    wait_until(lambda: len(consumers.got("ledger")) == 4, "REFUND-12 to reach ledger")
    bodies = b"".join(body for _, body in consumers.got("ledger"))
    assert all(f"REFUND-{n}".encode() in bodies for n in (9, 10, 11, 12)), "each refund delivered once"
    assert len({webhook_id for webhook_id, _ in consumers.got("ledger")}) == 4


def test_payloads_render_as_text(browser, gateway, consumers):
    gateway.send("minis.trade_order.redeem.success", XSS_ORDER_ID)
    wait_until(lambda: gateway.get("/admin/events?eventType=minis.trade_order.redeem.success&limit=5")["events"][0]["orderId"] == XSS_ORDER_ID,
               "the payload event to be stored")
    browser.driver.get(gateway.admin + "/ui/#/events")
    browser.visible("#events-order-id").clear()
    browser.visible("#events-event-type").send_keys("minis.trade_order.redeem.success")
    browser.find("#events-search").click()
    browser.text_in("#events-message", "2 events", "the two trade-order events")
    cells = [c.text for c in browser.finds("#events tbody td")]
    assert XSS_ORDER_ID in cells, f"the order id is not shown as the text it is: {cells}"
    browser.shot("events-payload")
    row = next(r for r in browser.finds("#events tbody tr") if XSS_ORDER_ID in r.text)
    row.find_element(By.TAG_NAME, "a").click()
    browser.text_in("#event-body", "onerror", "the payload event's body")
    assert XSS_ORDER_ID in browser.find("#event-summary").text
    for view in ("#events", "#event-summary", "#event-body", "#event-trace", "#event-headers", "main"):
        made = browser.finds(f"{view} script, {view} img")
        assert not made, f"the payload became markup in {view}: {[e.get_attribute('outerHTML') for e in made]}"
    assert browser.driver.execute_script("return window.__wgXss === undefined"), "the payload's script ran"


def test_phone_width(browser, gateway, consumers):
    browser.phone(True)
    try:
        for name, hash_, ready in (("overview", "#/overview", "#consumers tbody tr"),
                                   ("events", "#/events", "#events-form")):
            browser.driver.get(gateway.admin + "/ui/" + hash_)
            browser.visible(ready)
            assert browser.fits_width(), f"the {name} view scrolls sideways at 390 px"
            browser.shot(f"phone-{name}")
        order = browser.find("#events-order-id")
        order.clear()
        order.send_keys("ORDER-4711")
        browser.find("#events-event-type").clear()
        browser.find("#events-search").click()
        browser.text_in("#events-message", "1 event")
        browser.find("#events tbody tr td a").click()
        browser.text_in("#event-trace", "delivered")
        assert browser.fits_width(), "the event view scrolls sideways at 390 px"
        browser.shot("phone-event")
    finally:
        browser.phone(False)


def test_sign_out_and_401(browser, gateway, consumers):
    browser.driver.get(gateway.admin + "/ui/#/overview")
    browser.visible("#consumers tbody tr")
    browser.matches("#rate-delivery", r"now \d+(\.\d)?/s delivered", "the delivery rate")
    browser.shot("overview")
    # A token that stops working (rotated) sends the page back to the prompt at its next call.
    browser.driver.execute_script("sessionStorage.setItem('webhook-gateway.admin-token', 'rotated-away')")
    browser.visible("#view-login", "the token prompt after a 401 (the next refresh, 5 s)")
    browser.text_in("#login-message", "refused")
    assert browser.driver.execute_script("return sessionStorage.getItem('webhook-gateway.admin-token')") is None
    assert browser.finds("#consumers tbody tr") == [], "the views still hold what the old token read"
    # A reload with a stored token that no longer works lands on the prompt too, not a blank page.
    browser.driver.execute_script("sessionStorage.setItem('webhook-gateway.admin-token', 'rotated-away')")
    browser.driver.refresh()
    browser.visible("#view-login", "the token prompt after a reload with a refused token")
    browser.text_in("#login-message", "refused")
    sign_in(browser, gateway, gateway.token)
    browser.visible("#view-overview", "the overview after signing in again")


def test_security_headers(browser, gateway, consumers):
    context = ssl._create_unverified_context() if gateway.admin.startswith("https") else None
    with urllib.request.urlopen(gateway.admin + "/ui/", timeout=5, context=context) as response:
        headers = response.headers
        assert "script-src 'self'" in headers["Content-Security-Policy"], headers
        assert "unsafe-inline" not in headers["Content-Security-Policy"], headers
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"


def run_https(binary, chromium, chromedriver, screenshots, work):
    """The console over HTTPS (admin.tls): sign in and see the consumers."""
    key, cert = os.path.join(work, "admin.key"), os.path.join(work, "admin.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    consumers = Consumers()
    gateway = Gateway(binary, work, consumers, tls={"certificateChain": cert, "privateKey": key})
    browser = Browser(None, chromium, chromedriver)
    try:
        browser.driver.get(gateway.admin + "/ui/")
        sign_in(browser, gateway, gateway.token)
        browser.text_in("#consumers", "ledger", "the consumer table over HTTPS")
        test_security_headers(browser, gateway, consumers)
        problems = browser.problems()
        assert not problems, f"the browser reported problems: {problems}"
    finally:
        browser.quit()
        gateway.stop()
        consumers.close()


TESTS = [
    test_sign_in,
    test_pause_after_failures_and_resume,
    test_search_by_order_id_and_trace,
    test_redeliver_from_the_event,
    test_dead_letter_replay,
    test_payloads_render_as_text,
    test_phone_width,
    test_sign_out_and_401,
    test_security_headers,
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--screenshots", default=None)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--chromedriver", default=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    arguments = parser.parse_args()
    if arguments.screenshots:
        os.makedirs(arguments.screenshots, exist_ok=True)

    work = tempfile.mkdtemp(prefix="wg-console-test.")
    failures = 0
    consumers = Consumers()
    gateway = Gateway(arguments.gateway, work, consumers)
    browser = Browser(arguments.screenshots, arguments.chromium, arguments.chromedriver)
    try:
        for test in TESTS:
            started = time.monotonic()
            try:
                test(browser, gateway, consumers)
                print(f"ok    {test.__name__} ({time.monotonic() - started:.1f} s)", flush=True)
            except Exception:
                failures += 1
                print(f"FAIL  {test.__name__}", flush=True)
                traceback.print_exc()
                browser.shot(f"failed-{test.__name__}")
                break  # the later tests build on this one's state
        if not failures:
            problems = browser.problems()
            if problems:
                failures += 1
                print(f"FAIL  the browser reported problems: {problems}", flush=True)
    finally:
        browser.quit()
        gateway.stop()
        consumers.close()
    if failures:
        with open(os.path.join(work, "gateway.log")) as log:
            print("--- gateway log (last 40 lines) ---\n" + "".join(log.readlines()[-40:]))
        return 1

    https_work = tempfile.mkdtemp(prefix="wg-console-tls.")
    try:
        run_https(arguments.gateway, arguments.chromium, arguments.chromedriver, arguments.screenshots, https_work)
        print("ok    test_console_over_https", flush=True)
    except Exception:
        traceback.print_exc()
        print("FAIL  test_console_over_https", flush=True)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(https_work, ignore_errors=True)
    print(f"browser tests: {len(TESTS) + 1} passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
