"""Broken or hostile upstreams: each malformed response is answered with 502 before any header
reaches the client, or with RST_STREAM once headers are out; never a truncated response that
looks complete, never a field of a 1xx leaking into the final response. After each, a benign
request on the same proxy still works. And every request, however odd, reaches the upstream as
exactly one well-formed HTTP/1.1 message (the upstream logs the exact bytes)."""
import re
import unittest
from urllib.parse import quote

from harness import H2ClientRun, Pushgate, TestUpstream, UpstreamTestCase, h2client, main


def raw(response):
    return "/raw?raw=" + quote(response, safe="")


# (what, raw response, expected status or None for "reset after the headers")
MALFORMED = [
    ("two different Content-Lengths",
     "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 502),
    ("Content-Length with chunked",
     "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     502),
    ("bare CR in a field", "HTTP/1.1 200 OK\r\nX-A: 1\rX-B: 2\r\nContent-Length: 0\r\n\r\n", 502),
    ("NUL in a field", "HTTP/1.1 200 OK\r\nX-A: 1\x002\r\nContent-Length: 0\r\n\r\n", 502),
    ("obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n", 502),
    ("bad field name", "HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n", 502),
    ("101 to a normal request",
     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", 502),
    ("204 announcing a body", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello", 502),
    ("HTTP/0.9 (no status line)", "hello world\r\n", 502),
    ("garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 502),
    ("HTTP/2 status line", "HTTP/2 200\r\n\r\n", 502),
    ("premature end of body", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", None),
    ("chunked body cut off", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", None),
]


class UpstreamFaults(UpstreamTestCase):
    def assert_benign_request_works(self, pg):
        rc, ev = h2client("127.0.0.1", pg.port, "/benign?size=1000")
        close = [e for e in ev if e["ev"] == "close"][0]
        self.assertEqual((close["status"], close["bytes"], close["error_code"]), (200, 1000, 0))

    def test_malformed_responses(self):
        with self.proxy() as pg:
            for what, response, expected in MALFORMED:
                rc, ev = h2client("127.0.0.1", pg.port, raw(response))
                self.assertEqual(rc, 0, (what, ev))
                heads = [e for e in ev if e["ev"] == "headers"]
                close = [e for e in ev if e["ev"] == "close"][0]
                if expected is not None:
                    self.assertEqual([h["status"] for h in heads], [expected], what)
                else:
                    self.assertNotEqual(close["error_code"], 0,
                                        f"{what}: a truncated body must not look complete")
                self.assert_benign_request_works(pg)

    def test_a_full_upstream_queue_answers_503_at_once(self):
        gate = "queue-gate"
        with self.proxy("--upstream-max-connections", "1", "--upstream-queue", "1") as pg:
            run = H2ClientRun("127.0.0.1", pg.port, f"/q1?hold={gate}", f"/q2?hold={gate}",
                              f"/q3?hold={gate}")
            refused = run.wait_event(lambda e: e["ev"] == "headers")
            self.assertEqual(refused["status"], 503, "the third waits for nothing")
            self.assertIn(["retry-after", "1"], refused["headers"])
            self.upstream.release(gate)
            self.upstream.release(gate)
            rc, ev = run.finish()
            self.assertEqual(rc, 0, ev)
            self.assertEqual(sorted(e["status"] for e in ev if e["ev"] == "headers"),
                             [200, 200, 503])
            self.assert_benign_request_works(pg)

    def test_requests_beyond_the_connection_limit_wait_their_turn_in_order(self):
        # Past --upstream-max-connections a request waits in pushgate (upstream.c), not in
        # libcurl: it reaches the upstream only as a transfer ends, oldest first, and on one
        # of the connections already open.
        gate = "turn-gate"
        with self.proxy("--upstream-max-connections", "2", "--upstream-queue", "8") as pg:
            run = H2ClientRun("127.0.0.1", pg.port,
                              *[f"/turn{i}?hold={gate}&size={10 + i}" for i in range(6)])
            arrived = lambda: [r["target"][:6] for r in self.upstream.requests()
                               if r["target"].startswith("/turn")]
            self.upstream.wait_for_request(lambda r: r["target"].startswith("/turn0"))
            self.upstream.wait_for_request(lambda r: r["target"].startswith("/turn1"))
            self.assertEqual(sorted(arrived()), ["/turn0", "/turn1"], "two run, four wait")
            for i in range(2, 6):
                self.upstream.release(gate)
                self.upstream.wait_for_request(lambda r, i=i: r["target"].startswith(f"/turn{i}"))
                self.assertEqual(arrived()[2:], [f"/turn{k}" for k in range(2, i + 1)])
            self.upstream.release(gate)
            self.upstream.release(gate)
            rc, ev = run.finish()
            self.assertEqual(rc, 0, ev)
        closes = sorted((e["status"], e["bytes"]) for e in ev if e["ev"] == "close")
        self.assertEqual(closes, [(200, 10 + i) for i in range(6)])
        conns = {r["conn"] for r in self.upstream.requests() if r["target"].startswith("/turn")}
        self.assertLessEqual(len(conns), 2)

    def test_waiting_requests_of_a_client_that_leaves_never_reach_the_upstream(self):
        gate = "leave-gate"
        with self.proxy("--upstream-max-connections", "1", "--upstream-queue", "8") as pg:
            run = H2ClientRun("127.0.0.1", pg.port,
                              *[f"/leave{i}?hold={gate}" for i in range(4)])
            self.upstream.wait_for_request(lambda r: r["target"].startswith("/leave0"))
            run.proc.kill()  # the connection closes: one running exchange, three waiting
            run.finish()
            self.upstream.release(gate)
            self.assert_benign_request_works(pg)
        left = [r["target"] for r in self.upstream.requests() if r["target"].startswith("/leave")]
        self.assertEqual(left, [f"/leave0?hold={gate}"])

    def test_the_pool_recovers_when_the_upstream_comes_back(self):
        first = TestUpstream().__enter__()
        with Pushgate(first.url) as pg:
            self.assert_benign_request_works(pg)  # a pooled connection now exists
            first.__exit__(None, None, None)  # the upstream goes away
            rc, ev = h2client("127.0.0.1", pg.port, "/down")
            self.assertEqual([e["status"] for e in ev if e["ev"] == "headers"], [502])
            with TestUpstream(port=first.port):
                self.assert_benign_request_works(pg)

    def test_an_idle_pooled_connection_the_upstream_closes_is_replaced(self):
        # A pooled connection keeps its read event while idle (so a request costs no
        # epoll_ctl); the upstream's FIN on it must not fail the next request.
        with self.proxy() as pg:
            for i in range(3):
                rc, ev = h2client("127.0.0.1", pg.port, f"/idle-close{i}?close_idle=1&size=100")
                close = [e for e in ev if e["ev"] == "close"][0]
                self.assertEqual((close["status"], close["bytes"]), (200, 100), ev)
            conns = {r["conn"] for r in self.upstream.requests()
                     if r["target"].startswith("/idle-close")}
            self.assertEqual(len(conns), 3, "each request after an idle close on a new connection")
            self.assert_benign_request_works(pg)

    def test_a_head_larger_than_we_accept_is_502(self):
        with self.proxy() as pg:
            rc, ev = h2client("127.0.0.1", pg.port, "/big-head?fill_head=400")
            self.assertEqual([e["status"] for e in ev if e["ev"] == "headers"], [502])
            self.assert_benign_request_works(pg)

    def test_body_longer_than_content_length_is_cut_at_the_length(self):
        with self.proxy() as pg:
            rc, ev = h2client("--print-data", "127.0.0.1", pg.port,
                              raw("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhello, more"))
            close = [e for e in ev if e["ev"] == "close"][0]
            self.assertEqual((close["status"], close["bytes"], close["error_code"]), (200, 3, 0))
            self.assert_benign_request_works(pg)

    def test_fields_of_a_1xx_never_leak_into_the_final_response(self):
        with self.proxy("--no-push") as pg:
            rc, ev = h2client("127.0.0.1", pg.port, raw(
                "HTTP/1.1 100 Continue\r\nX-Leak-100: 1\r\n\r\n"
                "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nX-Leak-103: 1\r\n\r\n"
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Final: 1\r\n\r\nok"))
        heads = [e for e in ev if e["ev"] == "headers"]
        self.assertEqual([h["status"] for h in heads], [103, 200])
        final = dict(heads[1]["headers"])
        self.assertEqual(final.get("x-final"), "1")
        self.assertNotIn("x-leak-100", final)
        self.assertNotIn("x-leak-103", final)
        self.assertNotIn("link", final)
        self.assertNotIn("x-leak-100", dict(heads[0]["headers"]))

    def test_hop_by_hop_and_connection_named_fields_are_stripped(self):
        with self.proxy() as pg:
            rc, ev = h2client("127.0.0.1", pg.port, raw(
                "HTTP/1.1 200 OK\r\nConnection: X-Private, close\r\nX-Private: s\r\n"
                "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\n"
                "X-Kept: 1\r\nContent-Length: 2\r\n\r\nok"))
        final = dict([e for e in ev if e["ev"] == "headers"][0]["headers"])
        self.assertEqual(final.get("x-kept"), "1")
        for name in ("connection", "x-private", "keep-alive", "proxy-connection", "upgrade"):
            self.assertNotIn(name, final)

    def test_every_request_reaches_the_upstream_as_one_well_formed_message(self):
        """Odd but legal inputs; the upstream sees exactly one HTTP/1.1 message for each, and
        the next request on the same upstream connection parses cleanly too."""
        odd = [
            ["-H", "x-empty:"],
            ["-H", "x-spaces:   padded   "],
            ["-H", "x-utf8: caf\u00e9"],
            ["-H", "x-long: " + "a" * 8000],
            ["-H", "cookie: a=1", "-H", "cookie: b=2", "-H", "cookie: "],
            ["-H", "x-colon: a:b:c"],
            ["--method", "OPTIONS"],
            ["--method", "DELETE", "--data-size", "10", "--content-length"],
            ["--method", "PATCH", "--data-size", "10"],
        ]
        request_line = re.compile(r"^[A-Z]+ /\S* HTTP/1\.1\r\n")
        with self.proxy() as pg:
            for i, flags in enumerate(odd):
                tag = f"wf{i}"
                rc, ev = h2client("--concurrency", "1", *flags, "127.0.0.1", pg.port,
                                  f"/wf?tag={tag}", f"/wf-next?tag={tag}-next")
                self.assertEqual(rc, 0, (flags, ev))
                conns = set()
                for t in (tag, f"{tag}-next"):
                    r = self.upstream.wait_for_request(lambda r, t=t: f"tag={t}" in r["target"]
                                                       and r["target"].endswith(t))
                    head = r["raw_head"]
                    self.assertTrue(request_line.match(head), (flags, head[:200]))
                    self.assertTrue(head.endswith("\r\n\r\n"), flags)
                    self.assertEqual(head.count("\r\n\r\n"), 1, flags)
                    for line in head.split("\r\n")[1:-2]:
                        self.assertRegex(line, r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+: ?[^\r\n\x00]*$",
                                         (flags, line))
                    self.assertTrue(r["completed"], flags)
                    names = [n.lower() for n, _ in r["headers"]]
                    self.assertLessEqual(names.count("content-length") +
                                         names.count("transfer-encoding"), 1, (flags, head))
                    conns.add(r["conn"])
                self.assertEqual(len(conns), 1, f"{flags}: the next request reused the connection")


if __name__ == "__main__":
    main()
