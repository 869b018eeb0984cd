"""What operators see: the access log (combined and JSON, logrotate with SIGUSR1, dropping
instead of stalling) and the metrics listener (/metrics scraped by a real Prometheus server,
checked by promtool; /healthz, /readyz while draining).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request
from urllib.parse import quote

from harness import (DEADLINE, LineReader, Pushgate, UpstreamTestCase, free_port, h2client,
                     wait_until, main, require_tool, run, wait_for_port)


def page(*links, extra=""):
    q = "&".join("link=" + quote(l, safe="") for l in links)
    return f"/page?size=100&{q}{extra}"



def metrics_port(pg):
    line = pg.log.wait_for(lambda l: "metrics on " in l)
    return int(line.split("metrics on ")[1].split(" ")[0].rsplit(":", 1)[1])


def http_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text):
    """{'name{labels}': value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [l for l in f.read().splitlines() if l]


class AccessLog(UpstreamTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pg-access-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "access.log")

    def entries(self, path=None):
        return [json.loads(l) for l in read_lines(path or self.path)]

    def wait_entries(self, n, path=None):
        return wait_until(lambda: len(self.entries(path)) >= n and self.entries(path),
                          f"{n} access-log lines")

    def test_json_lines_for_requests_pushes_http11_and_a_502(self):
        """One JSON object per request and per pushed stream with every documented field: an
        HTTP/2 page that pushes (the pushed line names its parent), an HTTP/1.1 request, and a
        502 with upstream_time_ms null."""
        with Pushgate(self.upstream.url, "--access-log", self.path, "--access-log-format",
                      "json") as pg:
            rc, _ = h2client("127.0.0.1", pg.port, page("</j.css?size=7>; rel=preload"))
            self.assertEqual(rc, 0)
            run(["curl", "-sS", "--http1.1", "-o", "/dev/null", pg.url("/h1?size=5")])
            entries = self.wait_entries(3)
        by_path = {e["path"]: e for e in entries}
        keys = {"time", "remote_addr", "protocol", "tls", "method", "authority", "path", "status",
                "bytes_sent", "request_time_ms", "upstream_time_ms", "pushed", "parent_path",
                "hinted", "learned"}
        for e in entries:
            self.assertTrue(keys <= set(e), e)
            self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        parent = by_path[page("</j.css?size=7>; rel=preload")]
        pushed = by_path["/j.css?size=7"]
        h1 = by_path["/h1?size=5"]
        self.assertEqual((parent["protocol"], parent["status"], parent["bytes_sent"],
                          parent["pushed"], parent["tls"]), ("HTTP/2.0", 200, 100, False, False))
        self.assertEqual((pushed["pushed"], pushed["parent_path"], pushed["bytes_sent"]),
                         (True, parent["path"], 7))
        self.assertEqual((h1["protocol"], h1["method"], h1["status"], h1["bytes_sent"]),
                         ("HTTP/1.1", "GET", 200, 5))
        self.assertIsInstance(h1["upstream_time_ms"], float)
        self.assertGreaterEqual(h1["request_time_ms"], h1["upstream_time_ms"])
        with Pushgate("http://127.0.0.1:9", "--access-log", self.path, "--access-log-format",
                      "json") as pg:
            run(["curl", "-sS", "-o", "/dev/null", pg.url("/down")])
            down = wait_until(lambda: [e for e in self.entries() if e["path"] == "/down"],
                              "the 502 line")[0]
        self.assertEqual((down["status"], down["upstream_time_ms"]), (502, None))

    def test_learned_103_is_logged_as_hinted_and_learned(self):
        """The second request for a learned page gets our 103: its line says hinted > 0 and
        learned true, the first says neither; the learned table counts one miss and one hit,
        and one 103 of ours went out."""
        p = page("</l.css>; rel=preload; as=style", extra="&tag=learned-log")
        with Pushgate(self.upstream.url, "--access-log", self.path, "--access-log-format",
                      "json", "--metrics-listen", "127.0.0.1:0") as pg:
            for _ in range(2):
                rc, _ = h2client("--no-push", "127.0.0.1", pg.port, p)
                self.assertEqual(rc, 0)
            entries = self.wait_entries(2)
            got = samples(http_get(metrics_port(pg), "/metrics")[1])
        self.assertEqual(got['pushgate_learned_lookups_total{result="miss"}'], 1)
        self.assertEqual(got['pushgate_learned_lookups_total{result="hit"}'], 1)
        self.assertEqual(got['pushgate_early_hints_sent_total{source="learned"}'], 1)
        self.assertEqual(got['pushgate_early_hints_sent_total{source="upstream"}'], 0)
        first, second = [e for e in entries if e["path"] == p][:2]
        self.assertEqual((first["hinted"], first["learned"]), (0, False))
        self.assertGreater(second["hinted"], 0)
        self.assertTrue(second["learned"])

    def test_combined_format(self):
        """The default format is Apache's combined with rt= and urt= appended."""
        with Pushgate(self.upstream.url, "--access-log", self.path) as pg:
            run(["curl", "-sS", "--http1.1", "-A", "agent/1.0", "-e", "http://ref/", "-o",
                 "/dev/null", pg.url("/c?size=12")])
            line = wait_until(lambda: read_lines(self.path), "a line")[0]
        self.assertRegex(line, r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
                               r'"GET /c\?size=12 HTTP/1\.1" 200 12 "http://ref/" "agent/1\.0" '
                               r'rt=\d+\.\d{3} urt=\d+\.\d{3}$')

    def test_logrotate_rename_and_sigusr1_lose_no_line(self):
        """Requests before a rename go to the renamed file, requests after SIGUSR1 to a new
        file at the path: every request has exactly one line between the two."""
        rotated = self.path + ".1"
        with Pushgate(self.upstream.url, "--access-log", self.path, "--access-log-format",
                      "json") as pg:
            for i in range(5):
                run(["curl", "-sS", "-o", "/dev/null", pg.url(f"/rot?n={i}")])
            self.wait_entries(5)
            os.rename(self.path, rotated)
            run(["curl", "-sS", "-o", "/dev/null", pg.url("/rot?n=5")])  # before the reopen
            pg.proc.send_signal(signal.SIGUSR1)
            pg.log.wait_for(lambda l: "reopening the access log" in l)
            wait_until(lambda: os.path.exists(self.path), "the new file")
            for i in range(6, 10):
                run(["curl", "-sS", "-o", "/dev/null", pg.url(f"/rot?n={i}")])
            wait_until(lambda: len(self.entries()) + len(self.entries(rotated)) >= 10,
                       "ten lines")
        old, new = self.entries(rotated), self.entries()
        seen = sorted(e["path"] for e in old + new)
        self.assertEqual(seen, sorted(f"/rot?n={i}" for i in range(10)))
        self.assertTrue(all(e["path"] in {f"/rot?n={i}" for i in range(6, 10)} for e in new))

    def test_a_pipe_nobody_reads_drops_lines_instead_of_stalling(self):
        """--access-log on a FIFO whose reader never reads: requests keep being answered at
        once, and pushgate_access_log_dropped_total counts the lines that could not go."""
        fifo = os.path.join(self.dir, "fifo")
        os.mkfifo(fifo)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # open, never read
        self.addCleanup(os.close, reader)
        long_path = "/drop?pad=" + "x" * 3000
        with Pushgate(self.upstream.url, "--access-log", fifo, "--metrics-listen",
                      "127.0.0.1:0") as pg:
            mport = metrics_port(pg)
            rc, ev = h2client("--repeat", 600, "127.0.0.1", pg.port, long_path,
                              timeout=DEADLINE)
            self.assertEqual(rc, 0)
            self.assertEqual(sum(1 for e in ev if e["ev"] == "close" and e["status"] == 200),
                             600)
            dropped = wait_until(
                lambda: samples(http_get(mport, "/metrics")[1]).get(
                    "pushgate_access_log_dropped_total", 0) > 0 and True,
                "dropped lines to be counted")
            self.assertTrue(dropped)


class Metrics(UpstreamTestCase):
    def test_healthz_and_readyz_while_draining(self):
        """/healthz is 200 while the process runs; /readyz is 200 until SIGTERM starts the
        drain, then 503 while a request still holds the process open."""
        pg = Pushgate(self.upstream.url, "--metrics-listen", "127.0.0.1:0",
                      "--shutdown-timeout", "20s").__enter__()
        self.addCleanup(lambda: pg.proc.poll() is None and pg.proc.kill())
        mport = metrics_port(pg)
        self.assertEqual(http_get(mport, "/healthz"), (200, "ok\n"))
        self.assertEqual(http_get(mport, "/readyz"), (200, "ready\n"))
        self.assertEqual(http_get(mport, "/nope")[0], 404)
        held = socket.create_connection(("127.0.0.1", pg.port), timeout=DEADLINE)
        held.sendall(b"GET /h?hold=readyz HTTP/1.1\r\nHost: a\r\n\r\n")
        self.upstream.wait_for_request(lambda r: "hold=readyz" in r["target"])
        pg.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: http_get(mport, "/readyz")[0] == 503, "/readyz to turn 503")
        self.assertEqual(http_get(mport, "/healthz")[0], 200)
        self.upstream.release("readyz")
        self.assertIn(b"200", held.recv(4096))
        held.close()
        self.assertEqual(pg.proc.wait(timeout=DEADLINE), 0)
        pg.log.thread.join(5)
        pg.proc.stderr.close()

    def test_prometheus_scrapes_the_counters_it_should(self):
        """A real Prometheus server scrapes --metrics-listen; its HTTP API then reports the
        requests and pushes the test made: 20 requests on three HTTP/2 connections, 3 pushes
        promised of which the client reset 1. promtool accepts the exposition."""
        require_tool(self, "prometheus", "prometheus")
        prometheus = shutil.which("prometheus")
        with Pushgate(self.upstream.url, "--metrics-listen", "127.0.0.1:0") as pg:
            mport = metrics_port(pg)
            plain = [f"/m{i}?size=10" for i in range(18)]
            rc, _ = h2client("--no-push", "127.0.0.1", pg.port, *plain)
            self.assertEqual(rc, 0)
            rc, _ = h2client("127.0.0.1", pg.port,
                             page("</p1.css?size=5>; rel=preload", "</p2.js?size=6>; rel=preload",
                                  extra="&tag=prom-a"))
            self.assertEqual(rc, 0)
            # The reset promise's upstream answer is slow, so the reset always comes first.
            rc, _ = h2client("--rst-promised", "127.0.0.1", pg.port,
                             page("</p3.css?size=7&delay_ms=300>; rel=preload",
                                  extra="&tag=prom-b"))
            self.assertEqual(rc, 0)
            text = http_get(mport, "/metrics")[1]
            check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                                   capture_output=True, timeout=DEADLINE)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
            got = self.scrape_with_prometheus(prometheus, mport, [
                "pushgate_pushes_promised_total", "pushgate_pushes_cancelled_total",
                "pushgate_pushes_completed_total", 'pushgate_connections_total{protocol="h2"}',
                'sum(pushgate_requests_total{protocol="h2"})'])
        self.assertEqual(got["pushgate_pushes_promised_total"], 3)
        self.assertEqual(got["pushgate_pushes_cancelled_total"], 1)
        self.assertEqual(got["pushgate_pushes_completed_total"], 2)
        self.assertEqual(got['pushgate_connections_total{protocol="h2"}'], 3)
        # 20 client requests answered 200, and the 2 pushes that were delivered (the reset one
        # was never answered).
        self.assertEqual(got['sum(pushgate_requests_total{protocol="h2"})'], 22)

    def scrape_with_prometheus(self, binary, target_port, queries):
        d = tempfile.mkdtemp(prefix="pg-prom-")
        self.addCleanup(shutil.rmtree, d, True)
        conf = os.path.join(d, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: pushgate\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{target_port}']\n")
        port = free_port()
        proc = subprocess.Popen([binary, f"--config.file={conf}", f"--storage.tsdb.path={d}/data",
                                 f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(proc.wait, DEADLINE)
        self.addCleanup(proc.terminate)
        wait_for_port(port, proc)

        def query(q):
            url = f"http://127.0.0.1:{port}/api/v1/query?query={quote(q)}"
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    result = json.loads(r.read())["data"]["result"]
            except (urllib.error.URLError, OSError):
                return None
            return float(result[0]["value"][1]) if result else None

        # The first scrapes after start-up come within a few scrape intervals.
        wait_until(lambda: query("pushgate_pushes_promised_total") == 3, "Prometheus to scrape")
        return {q: query(q) for q in queries}


if __name__ == "__main__":
    main()
