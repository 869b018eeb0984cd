"""Request/response mapping, streaming, back-pressure and upstream failures, against the
project's scriptable upstream (tests/tools/test_upstream.py) with the libnghttp2 test client,
nghttp and curl."""
import json
import os
import subprocess
import threading
import time
import unittest

import h2raw

from harness import (DEADLINE, H2CLIENT, SANITIZED, Pushgate, UpstreamTestCase, free_port,
                     h2client, pattern_sha256, run, main)

MiB = 1024 * 1024


def by_stream(events, kind):
    return {e["stream"]: e for e in events if e["ev"] == kind}


def header_values(event, name):
    return [v for n, v in event["headers"] if n == name]


class Exchange(UpstreamTestCase):
    def upstream_request(self, tag):
        return self.upstream.wait_for_request(lambda r: tag in r["target"])

    # ---- request mapping ----

    def test_request_fields_as_the_upstream_sees_them(self):
        with self.proxy() as pg:
            rc, ev = h2client("-H", "cookie: a=1", "-H", "cookie: b=2", "-H", "x-empty:",
                              "-H", "x-http2-push: 1", "-H", "x_user: admin",
                              "-H", "te: trailers", "-H", "user-agent: h2client-test",
                              "127.0.0.1", pg.port, "/map?tag=fields")
            self.assertEqual(rc, 0, ev)
            r = self.upstream_request("tag=fields")
        head = r["raw_head"]
        self.assertTrue(head.startswith("GET /map?tag=fields HTTP/1.1\r\n"), head)
        fields = {}
        for n, v in r["headers"]:
            fields.setdefault(n.lower(), []).append(v)
        self.assertEqual(fields["host"], [f"127.0.0.1:{pg.port}"])
        self.assertEqual(fields["cookie"], ["a=1; b=2"])
        self.assertEqual(fields["x-empty"], [""])
        self.assertEqual(fields["te"], ["trailers"])
        self.assertEqual(fields["via"], ["2 pushgate"])
        self.assertEqual(fields["x-forwarded-for"], ["127.0.0.1"])
        self.assertEqual(fields["x-forwarded-proto"], ["http"])
        for absent in ("accept", "expect", "x-http2-push", "x_user", "content-length",
                       "transfer-encoding", "connection"):
            self.assertNotIn(absent, fields, head)

    def test_many_request_fields_reach_the_upstream_in_order(self):
        # A stream keeps its first 8 regular fields in its own arrays, then moves them to the
        # heap and grows by 16 (h2_session.c): 1, 8, 9, 24, 25 and 40 fields all arrive whole.
        with self.proxy() as pg:
            for count in (1, 8, 9, 24, 25, 40):
                args = []
                for i in range(count):
                    args += ["-H", f"x-n{i}: v{i}"]
                rc, ev = h2client(*args, "127.0.0.1", pg.port, f"/map?tag=many{count}")
                self.assertEqual(rc, 0, ev)
                r = self.upstream_request(f"tag=many{count}")
                got = [(n.lower(), v) for n, v in r["headers"] if n.lower().startswith("x-n")]
                self.assertEqual(got, [(f"x-n{i}", f"v{i}") for i in range(count)], count)

    def test_a_reused_upstream_handle_forgets_the_previous_method(self):
        """libcurl handles are pooled without curl_easy_reset: each request sets its method, body
        and size again, so nothing of the previous request on the handle carries over."""
        steps = [(["-d", "abc"], "POST", 3), ([], "GET", 0), (["-I"], "HEAD", 0),
                 (["-X", "DELETE"], "DELETE", 0), (["-X", "PUT", "-d", "hello"], "PUT", 5),
                 (["-X", "OPTIONS"], "OPTIONS", 0), ([], "GET", 0)]
        with self.proxy() as pg:
            for i, (args, method, body_len) in enumerate(steps):
                p = run(["curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null", *args,
                         pg.url(f"/reuse?tag=reuse{i}")])
                self.assertEqual(p.returncode, 0, p.stderr)
                r = self.upstream_request(f"tag=reuse{i}")
                self.assertTrue(r["raw_head"].startswith(f"{method} /reuse?tag=reuse{i} "),
                                r["raw_head"])
                self.assertEqual(r["body_len"], body_len, r["raw_head"])
                names = {n.lower() for n, _ in r["headers"]}
                if not body_len:
                    self.assertFalse(names & {"content-length", "transfer-encoding"},
                                     r["raw_head"])
            conns = {r["conn"] for r in self.upstream.requests() if "tag=reuse" in r["target"]}
            self.assertEqual(len(conns), 1, "one pooled upstream connection served them all")

    def test_path_is_sent_verbatim_after_dot_segments_are_removed(self):
        """Dot-segments (also percent-encoded) are removed so the proxy and the upstream name
        the same resource; every other byte, the query included, goes out as sent."""
        with self.proxy() as pg:
            for sent, expected in (("/a/../b/./c%2F%41?q=1&x=%zz;p", "/b/c%2F%41?q=1&x=%zz;p"),
                                   ("/x/%2e%2e/%2E%2e/etc?v=/../", "/etc?v=/../"),
                                   ("/keep//this/%41?a=b", "/keep//this/%41?a=b")):
                rc, ev = h2client("127.0.0.1", pg.port, sent)
                self.assertEqual(rc, 0, ev)
                r = self.upstream.wait_for_request(lambda r: r["target"] == expected)
                self.assertTrue(r["raw_head"].startswith(f"GET {expected} HTTP/1.1\r\n"))

    def test_connection_specific_request_fields_are_refused(self):
        with self.proxy() as pg:
            for field in ("connection: close", "keep-alive: 1", "transfer-encoding: chunked",
                          "upgrade: h2c", "te: gzip"):
                rc, ev = h2client("--raw-header", field, "127.0.0.1", pg.port, "/x?tag=hop")
                closes = [e for e in ev if e["ev"] == "close"]
                self.assertTrue(closes and closes[0]["error_code"] != 0, (field, ev))
            # none of them reached the upstream
            self.assertFalse([r for r in self.upstream.requests() if "tag=hop" in r["target"]])

    # ---- response mapping ----

    def test_response_fields(self):
        with self.proxy() as pg:
            q = ("/r?header=Set-Cookie:a=1&header=Set-Cookie:b=2&header=Set-Cookie:c=3"
                 "&header=Connection:close,X-Secret&header=X-Secret:s&header=Keep-Alive:5"
                 "&header=X-Kept:yes&size=10")
            rc, ev = h2client("127.0.0.1", pg.port, q)
            self.assertEqual(rc, 0, ev)
        h = [e for e in ev if e["ev"] == "headers"][0]
        self.assertEqual(header_values(h, "set-cookie"), ["a=1", "b=2", "c=3"])
        self.assertEqual(header_values(h, "x-kept"), ["yes"])
        names = [n for n, _ in h["headers"]]
        for absent in ("connection", "x-secret", "keep-alive", "transfer-encoding"):
            self.assertNotIn(absent, names)
        self.assertTrue(all(n == n.lower() for n in names), names)
        self.assertIn("1.1 pushgate", header_values(h, "via"))

    def test_head_204_304_carry_no_body(self):
        with self.proxy() as pg:
            for extra, path, status in ((["-H", ":method: HEAD"], "/h?size=5000", 200),
                                        ([], "/n?status=204", 204), ([], "/n?status=304", 304)):
                p = run(["nghttp", "-nv", *extra, pg.url(path)])
                out = p.stdout.decode()
                self.assertEqual(p.returncode, 0, out)
                self.assertIn(f":status: {status}", out)
                self.assertNotIn("recv DATA frame", out)
            p = run(["nghttp", "-nv", "-H", ":method: HEAD", pg.url("/h?size=5000")])
            self.assertIn("content-length: 5000", p.stdout.decode())

    def test_103_is_forwarded_before_the_final_response(self):
        with self.proxy("--no-push") as pg:
            rc, ev = h2client("127.0.0.1", pg.port,
                              "/e?early_hints=</a.css>;rel=preload&size=3")
            self.assertEqual(rc, 0, ev)
        heads = [e for e in ev if e["ev"] == "headers"]
        self.assertEqual([h["status"] for h in heads], [103, 200])
        self.assertEqual(header_values(heads[0], "link"), ["</a.css>;rel=preload"])
        self.assertEqual(header_values(heads[1], "link"), [])

    # ---- bodies ----

    def test_get_100_mib_chunked_checksum(self):
        with self.proxy() as pg:
            rc, ev = h2client("127.0.0.1", pg.port, f"/big?size={100 * MiB}&chunked=1",
                              timeout=120)
            self.assertEqual(rc, 0, ev)
        close = [e for e in ev if e["ev"] == "close"][0]
        self.assertEqual(close["bytes"], 100 * MiB)
        self.assertEqual(close["sha256"], pattern_sha256(100 * MiB))

    def test_bodies_of_odd_sizes_and_chunkings_arrive_intact(self):
        """Response bytes wait in record-sized pieces that later reads top up: chunk sizes on
        both sides of a piece (16 247 bytes) and of a read (64 988), and bodies that end mid-piece,
        must come out byte for byte."""
        cases = [(1, 1), (1000, 7), (16247, 16247), (16248, 16248), (300001, 1000),
                 (300001, 16246), (300001, 64989), (1 * MiB + 3, 70001)]
        with self.proxy() as pg:
            for size, chunk in cases:
                rc, ev = h2client("127.0.0.1", pg.port,
                                  f"/odd?size={size}&chunked=1&chunk={chunk}")
                self.assertEqual(rc, 0, ev)
                close = [e for e in ev if e["ev"] == "close"][0]
                self.assertEqual(close["bytes"], size, (size, chunk))
                self.assertEqual(close["sha256"], pattern_sha256(size), (size, chunk))

    def test_post_100_mib_with_content_length(self):
        with self.proxy() as pg:
            rc, ev = h2client("--method", "POST", "--data-size", 100 * MiB, "--content-length",
                              "127.0.0.1", pg.port, "/up?tag=post-cl", timeout=120)
            self.assertEqual(rc, 0, ev)
            r = self.upstream_request("tag=post-cl")
        self.assertEqual(r["method"], "POST")
        self.assertFalse(r["chunked"])
        self.assertEqual(r["body_len"], 100 * MiB)
        self.assertEqual(r["body_sha256"], pattern_sha256(100 * MiB))
        self.assertIn(("Content-Length", str(100 * MiB)),
                      [(n.title(), v) for n, v in r["headers"]])

    def test_put_100_mib_without_content_length_goes_chunked(self):
        with self.proxy() as pg:
            rc, ev = h2client("--method", "PUT", "--data-size", 100 * MiB, "127.0.0.1", pg.port,
                              "/up?tag=put-chunked", timeout=120)
            self.assertEqual(rc, 0, ev)
            r = self.upstream_request("tag=put-chunked")
        self.assertEqual(r["method"], "PUT")
        self.assertTrue(r["chunked"])
        self.assertEqual(r["body_len"], 100 * MiB)
        self.assertEqual(r["body_sha256"], pattern_sha256(100 * MiB))
        self.assertNotIn("expect", [n.lower() for n, _ in r["headers"]])

    def test_slow_upstream_reader_bounds_upload_memory(self):
        size = 32 * MiB
        # ASan's shadow, redzones and (small) quarantine cost more than the windows themselves.
        limit_mib = 20 if SANITIZED else 6
        with self.proxy() as pg:
            base = pg.rss_kib()
            rc, ev = h2client("--method", "POST", "--data-size", size, "127.0.0.1", pg.port,
                              "/up?tag=slow-read&slow_read=16000000", timeout=120)
            self.assertEqual(rc, 0, ev)
            grown = pg.rss_kib() - base
            r = self.upstream_request("tag=slow-read")
        self.assertEqual(r["body_sha256"], pattern_sha256(size))
        print(f"slow upstream reader: RSS grew {grown / 1024:.1f} MiB for a {size // MiB} MiB "
              f"upload (limit {limit_mib} MiB)")
        self.assertLess(grown, limit_mib * 1024, "an upload to a slow reader is not buffered whole")

    def test_200_concurrent_streams(self):
        with self.proxy("--max-concurrent-streams", "256") as pg:
            paths = [f"/c{i}?size={i * 100}" for i in range(200)]
            rc, ev = h2client("127.0.0.1", pg.port, *paths)
            self.assertEqual(rc, 0, ev)
        closes = [e for e in ev if e["ev"] == "close"]
        self.assertEqual(len(closes), 200)
        self.assertTrue(all(c["status"] == 200 and c["error_code"] == 0 for c in closes))
        self.assertEqual(sorted(c["bytes"] for c in closes), [i * 100 for i in range(200)])

    # ---- failures ----

    def test_an_upstream_named_by_host_name_is_looked_up(self):
        # Only an upstream given by address keeps libcurl's cache entry forever (upstream.c):
        # one given by name is looked up by libcurl, and must reach the same upstream.
        url = self.upstream.url.replace("127.0.0.1", "localhost")
        self.assertNotEqual(url, self.upstream.url)
        with Pushgate(url) as pg:
            rc, ev = h2client("127.0.0.1", pg.port, "/named-a?size=10", "/named-b?size=20")
            self.assertEqual(rc, 0, ev)
        closes = sorted(e["bytes"] for e in ev if e["ev"] == "close" and e["error_code"] == 0)
        self.assertEqual(closes, [10, 20])
        self.upstream_request("/named-b")

    def test_upstream_refused_is_502(self):
        with Pushgate(f"http://127.0.0.1:{free_port()}") as pg:
            rc, ev = h2client("127.0.0.1", pg.port, "/a", "/b")
            self.assertEqual(rc, 0, ev)
        self.assertEqual([e["status"] for e in ev if e["ev"] == "headers"], [502, 502])

    def test_upstream_timeout_is_504_and_others_carry_on(self):
        # The exchanges wait in one queue, oldest sign of life first, under one timer
        # (upstream.c): the fast ones leave it before their deadline, both ahead of and behind
        # the slow one, and the timer must still find the slow one when it is set for them.
        with self.proxy("--upstream-timeout", "300ms") as pg:
            rc, ev = h2client("127.0.0.1", pg.port, "/fast?size=100", "/slow?delay_ms=5000",
                              "/fast?size=200")
            self.assertEqual(rc, 0, ev)
        statuses = {e["stream"]: e["status"] for e in ev if e["ev"] == "headers"}
        self.assertEqual(statuses, {1: 200, 3: 504, 5: 200})

    def test_upstream_timeout_counts_from_the_last_body_piece(self):
        # 1.2 s of body in 8 pieces 150 ms apart: longer than the 400 ms timeout in all, never
        # that long without a piece. The timer keeps its first expiry and is set again for
        # what is left when it fires early (upstream.c), so this checks that path.
        with self.proxy("--upstream-timeout", "400ms") as pg:
            rc, ev = h2client("127.0.0.1", pg.port,
                              "/trickle?size=800&chunk=100&chunk_delay_ms=150",
                              "/stall?size=800&chunk=100&chunk_delay_ms=1500")
            self.assertEqual(rc, 0, ev)
        closes = {e["stream"]: e for e in ev if e["ev"] == "close"}
        self.assertEqual((closes[1]["error_code"], closes[1]["bytes"]), (0, 800), closes)
        self.assertNotEqual(closes[3]["error_code"], 0, "a body silent for 1.5 s is cut")
        self.assertLess(closes[3]["bytes"], 800, closes)

    def test_malformed_upstream_head_is_502(self):
        with self.proxy() as pg:
            rc, ev = h2client("127.0.0.1", pg.port,
                              "/m?header=Content-Length:3&header=Transfer-Encoding:chunked")
            self.assertEqual(rc, 0, ev)
        self.assertEqual([e["status"] for e in ev if e["ev"] == "headers"], [502])

    def test_upstream_reset_mid_body_resets_only_that_stream(self):
        with self.proxy() as pg:
            rc, ev = h2client("127.0.0.1", pg.port, f"/reset?size={4 * MiB}&reset_after=100000",
                              f"/ok?size={MiB}", f"/trunc?size={MiB}&close_after=5000")
            self.assertEqual(rc, 0, ev)
        closes = {e["stream"]: e for e in ev if e["ev"] == "close"}
        self.assertEqual(closes[1]["error_code"], 2)  # INTERNAL_ERROR
        self.assertEqual((closes[3]["error_code"], closes[3]["bytes"]), (0, MiB))
        self.assertEqual(closes[5]["error_code"], 2, "a truncated body never looks complete")

    def test_client_reset_aborts_the_upstream_transfer(self):
        with self.proxy() as pg:
            before = self.upstream.stats()["aborted_requests"]
            rc, ev = h2client("--rst-after", 65536, "127.0.0.1", pg.port,
                              f"/huge?size={1024 * MiB}")
            self.assertEqual(rc, 0, ev)
            end = time.monotonic() + DEADLINE
            while self.upstream.stats()["aborted_requests"] == before:
                self.assertLess(time.monotonic(), end, "the upstream transfer went on")
                time.sleep(0.02)

    def test_many_large_responses_share_their_connection_budget(self):
        """64 large responses in flight on one connection whose client reads nothing (the
        default 64 KiB windows): what waits is bounded per connection, not 128 KiB and two
        64 KiB reads per stream (the kernel holds the rest of each 1 MiB response)."""
        limit_mib = 48 if SANITIZED else 10
        streams = 64
        with self.proxy() as pg:
            c = h2raw.RawClient(pg.port)
            try:
                self.assertTrue(c.request(1, "/warm?size=100"))
                c.read_until(lambda f: f.type == h2raw.DATA and f.flags & h2raw.END_STREAM)
                before = pg.rss_kib()
                for i in range(streams):
                    self.assertTrue(c.request(3 + 2 * i, f"/many{i}?size={MiB}"))
                # Back-pressure reached the upstream: its sent counter stops growing.
                last, end = -1, time.monotonic() + DEADLINE
                while True:
                    sent = self.upstream.stats().get("bytes_sent", 0)
                    if sent == last and sent > 0:
                        break
                    last = sent
                    self.assertLess(time.monotonic(), end, "the upstream never paused")
                    time.sleep(0.2)
                grown = pg.rss_kib() - before
                self.assertLess(grown, limit_mib * 1024, f"{grown} KiB for {streams} streams")
            finally:
                c.close()

    def test_slow_reading_client_keeps_rss_bounded(self):
        """1 GiB through a client that stops reading: memory stays bounded by windows."""
        limit_mib = 256 if SANITIZED else 64
        size = 1024 * MiB
        with self.proxy() as pg:
            client = subprocess.Popen(
                [H2CLIENT, "--timeout", "300", "--pause-after", str(4 * MiB), "127.0.0.1",
                 str(pg.port), f"/gib?size={size}"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            peak = [0]
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    peak[0] = max(peak[0], pg.rss_kib())
                    stop.wait(0.05)

            sampler = threading.Thread(target=sample)
            sampler.start()
            try:
                line = client.stdout.readline()
                while line and json.loads(line)["ev"] != "paused":
                    line = client.stdout.readline()
                self.assertTrue(line, "client never paused")
                # Wait until back-pressure reached the upstream: its sent counter stops.
                last, end = -1, time.monotonic() + DEADLINE
                while True:
                    sent = self.upstream.stats().get("bytes_sent", 0)
                    if sent == last:
                        break
                    last = sent
                    self.assertLess(time.monotonic(), end)
                    time.sleep(0.2)
                self.assertLess(last, 256 * MiB, "the upstream was not paused")
                client.stdin.write(b"go\n")
                client.stdin.flush()
                out, _ = client.communicate(timeout=300)
            finally:
                stop.set()
                sampler.join()
                if client.poll() is None:
                    client.kill()
        events = [json.loads(l) for l in out.decode().splitlines() if l.startswith("{")]
        close = [e for e in events if e["ev"] == "close"][0]
        self.assertEqual(close["bytes"], size)
        self.assertEqual(close["sha256"], pattern_sha256(size))
        print(f"slow reader: peak RSS {peak[0] / 1024:.1f} MiB (limit {limit_mib} MiB)")
        self.assertLess(peak[0], limit_mib * 1024)


if __name__ == "__main__":
    main()
