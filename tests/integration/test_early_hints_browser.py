"""Early Hints in a real browser: Debian's headless Chromium against pushgate over TLS, through
a relay that adds a few milliseconds each way (Chromium drops a 103 that arrives before it has
finished sending its request), with an upstream that thinks 300 ms.

The page's upstream sends its own 103 naming a stylesheet, and its final response names a
script; the page uses both. Chromium acts only on the first 103 of a navigation. Cold (nothing
learned), pushgate forwards the upstream's 103: the stylesheet is preloaded early, the script
only once the final response arrives. Learned, pushgate's own 103 goes first and names both:
both are preloaded while the upstream thinks, and the page reuses them (one upstream fetch
each). What happened is read from the browser's own records: its NetLog (the requests its
network stack made, with times) and PerformanceResourceTiming (initiatorType "early-hints").

Chromium is driven over the DevTools protocol on --remote-debugging-pipe (NUL-framed JSON on
its fds 3 and 4) with the standard library only; a fresh --user-data-dir per browser; every
process it starts is killed at the end (its session), on failure too. Every wait is an awaited
event with a deadline."""
import base64
import contextlib
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from urllib.parse import urlencode

from harness import (DEADLINE, SOURCE_ROOT, LineReader, Pushgate, TestUpstream, main, make_cert,
                     require_tool)

CHROMIUM = shutil.which("chromium")
RELAY = os.path.join(SOURCE_ROOT, "bench", "relay.py")

# Flags every run uses: headless, no sandbox (tests run as root), nothing that talks to the
# network by itself or caches between runs, HTTP/2 over TCP only.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")

# Runs in the child: puts the pipe ends on fds 3 and 4, where --remote-debugging-pipe expects
# them, whatever numbers they had, then becomes the browser.
_TRAMPOLINE = """import os, sys
r, w = int(sys.argv[1]), int(sys.argv[2])
r2, w2 = os.dup(r), os.dup(w)
os.dup2(r2, 3)
os.dup2(w2, 4)
os.set_inheritable(3, True)
os.set_inheritable(4, True)
for fd in {r, w, r2, w2} - {3, 4}:
    os.close(fd)
os.execvp(sys.argv[3], sys.argv[3:])
"""


def spki_sha256(cert):
    """base64(sha256(SubjectPublicKeyInfo)) of a PEM certificate, for
    --ignore-certificate-errors-spki-list (which, unlike --ignore-certificate-errors, leaves
    Chromium's HTTP cache on: preloads are reused, not fetched twice)."""
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-pubkey", "-noout"],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                         capture_output=True, check=True).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def _session_members(sid):
    """Pids of live processes in session sid (chromium's helpers stay in its session)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:  # state, ppid, pgrp, session
            pids.append(int(name))
    return pids


class Chromium:
    """One headless Chromium with a fresh profile, spoken to over its DevTools pipe."""

    def __init__(self, *flags, netlog=None):
        self.profile = tempfile.mkdtemp(prefix="pg-chromium-")
        self.netlog = netlog
        argv = [CHROMIUM, *CHROMIUM_FLAGS, "--remote-debugging-pipe",
                f"--user-data-dir={self.profile}", *flags]
        if netlog:
            argv.append(f"--log-net-log={netlog}")
        argv.append("about:blank")
        cmd_r, self.cmd_w = os.pipe()
        self.resp_r, resp_w = os.pipe()
        self.stderr_path = os.path.join(self.profile, "stderr.log")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _TRAMPOLINE, str(cmd_r), str(resp_w), *argv],
                pass_fds=(cmd_r, resp_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err, start_new_session=True)
        os.close(cmd_r)
        os.close(resp_w)
        self.buf = b""
        self.next_id = 0
        self.events = []  # events read while waiting for something else, oldest first
        self.session = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _read(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.resp_r], [], [], left)[0]:
                raise TimeoutError("no DevTools message in time; browser log:\n" + self.log())
            chunk = os.read(self.resp_r, 1 << 16)
            if not chunk:
                raise EOFError("the browser closed its DevTools pipe; log:\n" + self.log())
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None, timeout=DEADLINE):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method, timeout=DEADLINE):
        for k, m in enumerate(self.events):
            if m.get("method") == method:
                return self.events.pop(k)
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(deadline)
            if m.get("method") == method:
                return m
            self.events.append(m)

    def open_page(self):
        """Attaches to the about:blank tab; later page calls go to it."""
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": page["targetId"], "flatten": True})["sessionId"]
        self.call("Page.enable", session=self.session)

    def navigate(self, url, timeout=DEADLINE):
        """Navigates the page and waits for its load event."""
        self.events.clear()
        result = self.call("Page.navigate", {"url": url}, session=self.session)
        if result.get("errorText"):
            raise RuntimeError(f"navigation failed: {result['errorText']}")
        self.wait_event("Page.loadEventFired", timeout)

    def evaluate(self, expression, timeout=DEADLINE):
        """The JSON value of an expression (a promise is awaited) in the page."""
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True}, session=self.session,
                      timeout=timeout)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def log(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def close(self):
        """Closes the browser (so the NetLog is complete), then kills whatever of its session
        is left, and checks that nothing is."""
        try:
            if self.proc.poll() is None:
                with contextlib.suppress(Exception):
                    self.call("Browser.close", timeout=5)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=10)
        finally:
            sid = self.proc.pid
            with contextlib.suppress(ProcessLookupError):
                os.killpg(sid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            left = _session_members(sid)
            while left and time.monotonic() < deadline:
                for pid in left:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.05)  # a killed process needs a moment to be reaped
                left = _session_members(sid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
            for fd in (self.cmd_w, self.resp_r):
                with contextlib.suppress(OSError):
                    os.close(fd)
            shutil.rmtree(self.profile, ignore_errors=True)
            if left:
                raise AssertionError(f"browser processes survived: {left}")


def read_netlog(path):
    """The URL requests of a Chromium NetLog: [{url, start, network, hints, final}], where
    start is when the request began, network whether it was sent on the network (not served
    by the cache), hints the header lists of its 103s in arrival order (with their times) and
    final the time its final response head was read. Times are the NetLog's milliseconds."""
    with open(path) as f:
        text = f.read()
    try:
        log = json.loads(text)
    except ValueError:  # cut short: close the event list after the last complete event
        log = json.loads(text[:text.rfind("},") + 1] + "]}")
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    url_request = log["constants"]["logSourceType"]["URL_REQUEST"]
    requests = {}
    for e in log.get("events", []):
        if e["source"]["type"] != url_request:
            continue
        r = requests.setdefault(e["source"]["id"], {"url": None, "start": None, "network": False,
                                                    "hints": [], "final": None})
        name, t, params = names.get(e["type"]), int(e["time"]), e.get("params") or {}
        if name == "REQUEST_ALIVE" and r["start"] is None:
            r["start"], r["url"] = t, params.get("url")
        elif name == "HTTP_TRANSACTION_SEND_REQUEST":
            r["network"] = True
        elif name == "HTTP_TRANSACTION_READ_EARLY_HINTS_RESPONSE_HEADERS":
            r["hints"].append((t, params.get("headers", [])))
        elif name == "HTTP_TRANSACTION_READ_RESPONSE_HEADERS" and r["final"] is None:
            r["final"] = t
    return [r for r in requests.values() if r["url"]]


def links_in(headers):
    return [h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("link:")]


class Relay:
    """bench/relay.py between the browser and the proxy: rtt_ms / 2 added each way."""

    def __init__(self, port, rtt_ms):
        self.args = [sys.executable, RELAY, "--target", f"127.0.0.1:{port}", "--rtt-ms",
                     str(rtt_ms)]

    def __enter__(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL)
        self.out = LineReader(self.proc.stdout)
        self.port = int(self.out.wait_for(lambda l: l.startswith("LISTENING ")).split()[1])
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=DEADLINE)
        self.out.thread.join(5)
        self.proc.stdout.close()


def q(**params):
    return urlencode(params, doseq=True)


class EarlyHintsInChromium(unittest.TestCase):
    THINK_MS = 300

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pg-browser-")
        cls.cert, cls.key = make_cert(cls.dir)
        cls.spki = spki_sha256(cls.cert)
        cls.upstream = TestUpstream().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.upstream.__exit__(None, None, None)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        require_tool(self, "chromium", "chromium")
        cacheable = ["Cache-Control:max-age=600"]
        self.css = "/style.css?" + q(body_from="css", header=["Content-Type:text/css"] + cacheable)
        self.js = "/app.js?" + q(body_from="js",
                                 header=["Content-Type:text/javascript"] + cacheable)
        up = self.upstream
        up.control("/_body", name="css", body="h1 { color: rgb(1, 2, 3); }")
        up.control("/_body", name="js", body="window.appRan = true;")
        up.control("/_body", name="page", body=(
            "<!DOCTYPE html><html><head><title>early hints</title>"
            f'<link rel="stylesheet" href="{self.css}"><script src="{self.js}"></script>'
            "</head><body><h1>Hello</h1><p>A page the upstream takes its time over.</p>"
            "</body></html>"))
        up.set_links("page-103", f"<{self.css}>; rel=preload; as=style")
        up.set_links("page-final", f"<{self.js}>; rel=preload; as=script")
        self.page = "/page?" + q(body_from="page", hints_from="page-103",
                                 links_from="page-final", delay_ms=self.THINK_MS,
                                 header=["Content-Type:text/html; charset=utf-8"])

    def fetched(self, path):
        return sum(1 for r in self.upstream.requests() if r["target"] == path)

    def visit(self, port, name):
        """One cold navigation (fresh profile) to the page; what the browser recorded."""
        netlog = os.path.join(self.dir, f"{name}.netlog.json")
        before = {p: self.fetched(p) for p in (self.css, self.js)}
        with Chromium(f"--ignore-certificate-errors-spki-list={self.spki}", netlog=netlog) as c:
            c.open_page()
            c.navigate(f"https://127.0.0.1:{port}{self.page}")
            page = c.evaluate("""({
                appRan: window.appRan === true,
                color: getComputedStyle(document.querySelector('h1')).color,
                resources: performance.getEntriesByType('resource').map(
                    e => ({name: e.name, initiatorType: e.initiatorType}))})""")
        requests = read_netlog(netlog)
        doc = [r for r in requests if r["url"].endswith(self.page)]
        self.assertEqual(len(doc), 1, requests)
        self.assertTrue(page["appRan"] and page["color"] == "rgb(1, 2, 3)",
                        f"the page used its script and stylesheet: {page}")
        fetched = {p: self.fetched(p) - before[p] for p in (self.css, self.js)}
        return doc[0], requests, page, fetched

    def assert_early(self, doc, requests, page, fetched, path):
        """path was preloaded from the 103 while the upstream thought, and reused."""
        sent = [r for r in requests if r["url"].endswith(path) and r["network"]]
        self.assertEqual(len(sent), 1, f"{path} went to the network once: {sent}")
        self.assertLess(sent[0]["start"], doc["final"],
                        f"{path} started before the final response arrived")
        self.assertLess(sent[0]["final"], doc["final"], f"{path} even arrived before it")
        self.assertEqual(fetched[path], 1, f"{path} fetched once from the upstream")
        kinds = [e["initiatorType"] for e in page["resources"] if e["name"].endswith(path)]
        self.assertEqual(kinds, ["early-hints"], f"the page reused the preload of {path}")

    def test_one_complete_first_103_preloads_everything_while_the_upstream_thinks(self):
        # A relay of a few ms each way: a 103 must arrive after the browser sent its request.
        with Pushgate(self.upstream.url, tls=(self.cert, self.key)) as pg, \
                Relay(pg.port, rtt_ms=10) as relay:
            # Cold: nothing learned; the upstream's own 103 (the stylesheet) is forwarded.
            doc, requests, page, fetched = self.visit(relay.port, "cold")
            self.assertEqual([links_in(h) for _, h in doc["hints"]][:1],
                             [[f"<{self.css}>; rel=preload; as=style"]])
            self.assertGreaterEqual(doc["final"] - doc["start"], self.THINK_MS)
            self.assert_early(doc, requests, page, fetched, self.css)
            js = [r for r in requests if r["url"].endswith(self.js) and r["network"]]
            self.assertEqual(len(js), 1, js)
            self.assertGreaterEqual(js[0]["start"], doc["final"],
                                    "cold, the script waits for the final response")

            # Learned: our 103 goes first and names the upstream's 103 link and the final's.
            doc, requests, page, fetched = self.visit(relay.port, "learned")
            self.assertTrue(doc["hints"], "a 103 reached the browser")
            first = links_in(doc["hints"][0][1])
            self.assertEqual(first, [f"<{self.css}>; rel=preload; as=style",
                                     f"<{self.js}>; rel=preload; as=script"])
            self.assertEqual(len(doc["hints"]), 1,
                             "the upstream's 103 named nothing new: not forwarded")
            self.assertGreaterEqual(doc["final"] - doc["start"], self.THINK_MS)
            self.assert_early(doc, requests, page, fetched, self.css)
            self.assert_early(doc, requests, page, fetched, self.js)

    def test_the_browser_process_tree_is_gone_after_a_failure(self):
        with self.assertRaises(TimeoutError):
            with Chromium() as c:
                c.open_page()
                pid = c.proc.pid
                c.call("Runtime.evaluate", {"expression": "new Promise(() => {})",
                                            "awaitPromise": True}, session=c.session, timeout=1)
        self.assertEqual(_session_members(pid), [])


if __name__ == "__main__":
    main()
