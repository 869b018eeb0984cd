"""Hostile clients: floods, resets, idle and stalled connections, connection limits, and
requests that try to confuse the upstream. Every test states its bound and checks it; every
wait is bounded and waits for an event (a frame, a close, a counter), never for a fixed time."""
import resource
import socket
import struct
import subprocess
import time
import unittest

import h2raw
from harness import DEADLINE, Pushgate, UpstreamTestCase, h2client, main, wait_until



class Hardening(UpstreamTestCase):
    def assert_stream_cancelled(self, c, stream, aborted_before):
        """RST_STREAM(CANCEL) reaches the client and the upstream transfer is aborted."""
        frames = c.read_until(lambda f: f.type == h2raw.RST_STREAM and f.stream == stream)
        c.close()
        self.assertTrue(frames and frames[-1].type == h2raw.RST_STREAM, frames[-5:])
        self.assertEqual(frames[-1].error_code, h2raw.CANCEL)
        wait_until(lambda: self.upstream.stats()["aborted_requests"] > aborted_before,
                   "the upstream transfer to be aborted")

    def assert_victim_served(self, pg):
        """Another client on another connection is served completely."""
        rc, ev = h2client("127.0.0.1", pg.port, "/victim?size=100000")
        self.assertEqual(rc, 0, ev)
        close = [e for e in ev if e["ev"] == "close"][0]
        self.assertEqual((close["status"], close["bytes"]), (200, 100000))

    # ---- floods end with GOAWAY(ENHANCE_YOUR_CALM) ----

    def flood(self, pg, send_one, count=5000):
        """Sends count abusive frames (stops early if the server closes); returns the GOAWAY."""
        c = h2raw.RawClient(pg.port)
        try:
            for i in range(count):
                if not send_one(c, i):
                    break
            return c.goaway()
        finally:
            c.close()

    def test_rapid_reset_is_stopped_and_upstream_work_stays_bounded(self):
        before = self.upstream.stats()["requests_total"]
        with self.proxy() as pg:
            self.assert_victim_served(pg)
            baseline_fds, baseline_rss = pg.fd_count(), pg.rss_kib()
            def open_and_reset(c, i):
                stream = 2 * i + 1
                return c.request(stream, f"/rr{i}?delay_ms=5000") and c.rst(stream)
            goaway = self.flood(pg, open_and_reset, count=20000)
            self.assertIsNotNone(goaway, "no GOAWAY")
            self.assertEqual(goaway.error_code, h2raw.ENHANCE_YOUR_CALM)
            self.assert_victim_served(pg)
            # bounded: descriptors back (the lingering close ends within 2 s), memory flat
            wait_until(lambda: pg.fd_count() <= baseline_fds + 2, "descriptors back to baseline")
            grown = pg.rss_kib() - baseline_rss
            print(f"rapid reset: RSS grew {grown} KiB")
            self.assertLess(grown, 32 * 1024)
        started = self.upstream.stats()["requests_total"] - before
        print(f"rapid reset: {started} upstream requests started for 20000 reset streams")
        self.assertLess(started, 1200, "bounded by the reset budget, not by the attack")
        wait_until(lambda: self.upstream.stats()["active_requests"] == 0,
                   "the upstream transfers to be cancelled")

    def test_paced_rapid_reset_is_stopped(self):
        with self.proxy() as pg:
            c = h2raw.RawClient(pg.port)
            start = time.monotonic()
            goaway = None
            for i in range(10000):  # about 500 resets per second: under any burst limit
                stream = 2 * i + 1
                if not (c.request(stream, f"/prr{i}") and c.rst(stream)):
                    break
                if i % 50 == 49:
                    frames = c.read_until(lambda f: f.type == h2raw.GOAWAY,
                                          timeout=max(0.0, start + (i + 1) / 500 -
                                                      time.monotonic()))
                    if frames and frames[-1].type == h2raw.GOAWAY:
                        goaway = frames[-1]
                        break
            goaway = goaway or c.goaway()
            c.close()
            self.assertIsNotNone(goaway)
            self.assertEqual(goaway.error_code, h2raw.ENHANCE_YOUR_CALM)
            self.assertLess(i, 10000 - 1, "stopped before the attack ended")
            self.assert_victim_served(pg)

    def test_control_frame_floods(self):
        floods = {
            "PING": lambda c, i: c.send(h2raw.PING, 0, 0, struct.pack(">Q", i)),
            "SETTINGS": lambda c, i: c.send(h2raw.SETTINGS, 0, 0),
            "PRIORITY": lambda c, i: c.send(h2raw.PRIORITY, 0, 2 * i + 1,
                                            struct.pack(">IB", 0, 15)),
            "WINDOW_UPDATE(1)": lambda c, i: c.send(h2raw.WINDOW_UPDATE, 0, 0,
                                                    struct.pack(">I", 1)),
            "empty DATA": lambda c, i: (i > 0 or c.headers(
                1, h2raw.request_fields(c.authority, "/upload?hold=never", "POST"),
                end_stream=False)) and c.send(h2raw.DATA, 0, 1),
        }
        with self.proxy() as pg:
            for name, send_one in floods.items():
                goaway = self.flood(pg, send_one)
                self.assertIsNotNone(goaway, name)
                self.assertEqual(goaway.error_code, h2raw.ENHANCE_YOUR_CALM, name)
            self.assert_victim_served(pg)

    def test_abuse_budget_flags(self):
        with self.proxy("--abuse-budget", "20", "--abuse-refill", "0") as pg:
            goaway = self.flood(pg, lambda c, i: c.send(h2raw.PING, 0, 0, struct.pack(">Q", i)),
                                count=50)  # far below the default budget of 1000
            self.assertIsNotNone(goaway)
            self.assertEqual(goaway.error_code, h2raw.ENHANCE_YOUR_CALM)

    def test_made_you_reset_spends_the_budget_and_reaches_no_upstream(self):
        with self.proxy() as pg:
            def malformed(c, i):  # an upper-case field name: the library resets the stream
                fields = h2raw.request_fields(c.authority, f"/myr?tag=myr{i}",
                                              extra=[("X-Bad", "1")])
                return c.headers(2 * i + 1, fields)
            goaway = self.flood(pg, malformed)
            self.assertIsNotNone(goaway)
            self.assertEqual(goaway.error_code, h2raw.ENHANCE_YOUR_CALM)
            self.assert_victim_served(pg)
        self.assertFalse([r for r in self.upstream.requests() if "tag=myr" in r["target"]])

    def test_ordinary_traffic_stays_within_the_budget(self):
        with self.proxy("--max-concurrent-streams", "400") as pg:
            c = h2raw.RawClient(pg.port)
            for i in range(300):  # a few pings, then 300 requests read to the end
                if i % 100 == 0:
                    c.send(h2raw.PING, 0, 0, b"12345678")
                c.request(2 * i + 1, f"/ord?size=10&i={i}")
            done = set()
            frames = c.read_until(lambda f: (f.type == h2raw.DATA and f.flags & h2raw.END_STREAM
                                             and not done.add(f.stream) and len(done) == 300)
                                  or f.type == h2raw.GOAWAY)
            c.close()
            self.assertEqual(len(done), 300, [f for f in frames if f.type == h2raw.GOAWAY])

    def test_link_abuse_stays_bounded(self):
        with self.proxy() as pg:
            # thousands of links in one field: at most 16 pushed, the page intact
            rc, ev = h2client("127.0.0.1", pg.port, "/many-links?link_bytes=60000&size=10",
                              "/after?size=10")
            self.assertEqual(rc, 0, ev)
            self.assertEqual(len([e for e in ev if e["ev"] == "push_promise"]), 16)
            self.assertEqual([c["status"] for c in ev if c["ev"] == "close" and
                              not c["promised"]], [200, 200])
            # a megabyte of Link: refused as an oversized head, nothing pushed
            rc, ev = h2client("127.0.0.1", pg.port, "/huge-link?link_bytes=1000000")
            self.assertEqual([e["status"] for e in ev if e["ev"] == "headers"], [502])
            self.assertEqual([e for e in ev if e["ev"] == "push_promise"], [])
            self.assert_victim_served(pg)

    # ---- upstream work per connection is capped ----

    def test_upstream_transfers_per_connection_are_capped(self):
        gate = "cap-gate"
        before = self.upstream.stats()["requests_total"]
        with self.proxy("--max-upstream-per-connection", "2") as pg:
            c = h2raw.RawClient(pg.port)
            for i in range(10):
                c.request(2 * i + 1, f"/cap{i}?hold={gate}")
            wait_until(lambda: self.upstream.stats()["active_requests"] == 2, "2 held requests")
            self.assertEqual(self.upstream.stats()["requests_total"] - before, 2)
            for _ in range(10):
                self.upstream.release(gate)
            ended = set()
            c.read_until(lambda f: f.type in (h2raw.HEADERS, h2raw.DATA) and
                         f.flags & h2raw.END_STREAM and not ended.add(f.stream) and
                         len(ended) == 10)
            c.close()
            self.assertEqual(len(ended), 10, "every waiting request was served in turn")

    # ---- idle, slow and stalled clients ----

    def test_idle_connection_is_closed_even_while_pinging(self):
        with self.proxy("--idle-timeout", "300ms") as pg:
            c = h2raw.RawClient(pg.port)
            goaway = None
            end = time.monotonic() + DEADLINE
            while goaway is None and time.monotonic() < end:
                c.send(h2raw.PING, 0, 0, b"keepaliv")
                frames = c.read_until(lambda f: f.type == h2raw.GOAWAY, timeout=0.1)
                goaway = next((f for f in frames if f.type == h2raw.GOAWAY), None)
                if c.closed:
                    break
            self.assertIsNotNone(goaway, "no GOAWAY for an idle connection")
            self.assertEqual(goaway.error_code, h2raw.NO_ERROR)
            self.assertTrue(c.wait_closed(), "closed after the GOAWAY")
            c.close()

    def test_a_connection_that_never_speaks_is_closed(self):
        with self.proxy("--handshake-timeout", "300ms") as pg:
            s = socket.create_connection(("127.0.0.1", pg.port), timeout=DEADLINE)
            s.settimeout(DEADLINE)
            data = s.recv(65536)  # the server's SETTINGS
            while data:
                data = s.recv(65536)
            s.close()

    def test_a_client_that_never_acknowledges_our_settings_is_closed(self):
        with self.proxy("--handshake-timeout", "300ms") as pg:
            c = h2raw.RawClient(pg.port, ack_settings=False)
            self.assertTrue(c.wait_closed(), "SETTINGS never acknowledged, yet the connection lives")
            c.close()

    def test_a_tls_client_that_never_handshakes_is_closed(self):
        import tempfile
        from harness import make_cert
        with tempfile.TemporaryDirectory() as d:
            with Pushgate(self.upstream.url, "--handshake-timeout", "300ms",
                          tls=make_cert(d)) as pg:
                s = socket.create_connection(("127.0.0.1", pg.port), timeout=DEADLINE)
                s.settimeout(DEADLINE)
                self.assertEqual(s.recv(65536), b"", "closed without a byte from us")
                s.close()

    def test_hpack_bomb_is_bounded(self):
        """One 4000-byte field put in the HPACK dynamic table, then referenced by 1-byte indexes
        thousands of times: tiny on the wire, megabytes decoded. The header-list bound stops it
        (431 or a reset), memory stays flat, nothing reaches the upstream."""
        with self.proxy() as pg:
            self.assert_victim_served(pg)
            baseline_rss = pg.rss_kib()
            c = h2raw.RawClient(pg.port)
            fields = h2raw.request_fields(c.authority, "/bomb?tag=hpack-bomb")
            block = h2raw.header_block(fields)
            big = b"x-bomb"
            block += b"\x40" + h2raw.hpack_int(len(big), 7) + big + h2raw.hpack_int(4000, 7) + \
                b"v" * 4000  # literal with incremental indexing: dynamic entry 62
            block += b"\xbe" * 10000  # indexed field 62, ten thousand times (40 MB decoded)
            c.send(h2raw.HEADERS, h2raw.END_STREAM | h2raw.END_HEADERS, 1, block[:16384])
            rest = block[16384:]
            while rest:
                c.send(h2raw.CONTINUATION, 0 if len(rest) > 16384 else h2raw.END_HEADERS, 1,
                       rest[:16384])
                rest = rest[16384:]
            def answer(f):
                return f.stream == 1 and f.type in (h2raw.RST_STREAM, h2raw.HEADERS) or \
                    f.type == h2raw.GOAWAY
            frames = c.read_until(answer)
            c.close()
            # read_until also returns the server's SETTINGS: the last frame must be the answer
            self.assertTrue(frames and answer(frames[-1]), f"no answer to a header bomb: {frames}")
            self.assert_victim_served(pg)
            self.assertLess(pg.rss_kib() - baseline_rss, 32 * 1024)
        self.assertFalse([r for r in self.upstream.requests() if "hpack-bomb" in r["target"]])

    def test_continuation_flood_ends_the_connection(self):
        with self.proxy() as pg:
            c = h2raw.RawClient(pg.port)
            block = h2raw.header_block(h2raw.request_fields(c.authority, "/cont"))
            c.send(h2raw.HEADERS, h2raw.END_STREAM, 1, block)  # no END_HEADERS
            for _ in range(20000):
                if not c.send(h2raw.CONTINUATION, 0, 1, h2raw.hpack_literal("x-a", "b")):
                    break
            self.assertTrue(c.wait_closed(), "a header block without end was accepted")
            c.close()
            self.assert_victim_served(pg)

    def test_stream_id_and_concurrency_abuse(self):
        with self.proxy("--max-concurrent-streams", "5") as pg:
            c = h2raw.RawClient(pg.port)
            for i in range(10):  # twice the advertised limit, all held open
                c.headers(2 * i + 1, h2raw.request_fields(c.authority, f"/conc{i}", "POST"),
                          end_stream=False)
            refused = c.read_until(lambda f: f.type == h2raw.RST_STREAM and
                                   f.error_code == h2raw.REFUSED_STREAM)
            self.assertTrue(refused and refused[-1].type == h2raw.RST_STREAM, refused[-5:])
            c.request(41, "/forward")
            c.request(31, "/backwards")  # a new stream id below one already used
            goaway = c.goaway()
            self.assertIsNotNone(goaway)
            self.assertEqual(goaway.error_code, h2raw.PROTOCOL_ERROR)
            c.close()
            self.assert_victim_served(pg)

    def test_a_client_that_stops_reading_is_dropped_and_its_transfer_cancelled(self):
        before = self.upstream.stats()["aborted_requests"]
        with self.proxy("--write-timeout", "500ms") as pg:
            c = h2raw.RawClient(pg.port, settings=((h2raw.ENABLE_PUSH, 0), (0x4, 0x7FFFFFFF)))
            c.send(h2raw.WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7FFFFFFF - 65535))
            c.request(1, f"/stall?size={1024 * 1024 * 1024}")
            # never read: the kernel buffers fill, then the proxy's output, then the timeout
            wait_until(lambda: self.upstream.stats()["aborted_requests"] > before,
                       "the upstream transfer to be aborted")
            c.close()
            self.assert_victim_served(pg)

    def test_a_stream_whose_window_never_opens_is_reset_and_its_transfer_cancelled(self):
        """Slow read per stream: a closed window must not hold an upstream connection."""
        before = self.upstream.stats()["aborted_requests"]
        with self.proxy("--write-timeout", "500ms") as pg:
            c = h2raw.RawClient(pg.port, settings=((h2raw.ENABLE_PUSH, 0), (0x4, 0)))
            c.request(1, f"/window?size={64 * 1024 * 1024}")
            self.assert_stream_cancelled(c, 1, before)

    def test_an_unfinished_header_block_ends_the_connection(self):
        with self.proxy("--request-timeout", "300ms") as pg:
            c = h2raw.RawClient(pg.port)
            block = h2raw.header_block(h2raw.request_fields(c.authority, "/slowloris"))
            c.send(h2raw.HEADERS, h2raw.END_STREAM, 1, block[:8])  # no END_HEADERS, ever
            goaway = c.goaway()
            self.assertIsNotNone(goaway, "the connection was left open")
            self.assertTrue(c.wait_closed())
            c.close()
            self.assert_victim_served(pg)

    def test_a_request_body_that_stops_coming_is_reset_and_its_transfer_cancelled(self):
        before = self.upstream.stats()["aborted_requests"]
        with self.proxy("--request-timeout", "300ms") as pg:
            c = h2raw.RawClient(pg.port)
            c.headers(1, h2raw.request_fields(c.authority, "/stalled-upload", "POST"),
                      end_stream=False)
            c.send(h2raw.DATA, 0, 1, b"x" * 1000)  # then nothing: no END_STREAM
            self.assert_stream_cancelled(c, 1, before)

    def test_too_many_request_fields_get_431_and_reach_no_upstream(self):
        with self.proxy() as pg:
            flags = []
            for i in range(200):
                flags += ["-H", f"x-f{i}: v"]
            rc, ev = h2client(*flags, "127.0.0.1", pg.port, "/many?tag=many-fields")
            self.assertEqual([e["status"] for e in ev if e["ev"] == "headers"], [431], ev[-3:])
        self.assertFalse([r for r in self.upstream.requests() if "many-fields" in r["target"]])

    # ---- connection limits and descriptor exhaustion ----

    def test_max_connections_holds_further_clients_in_the_backlog(self):
        with self.proxy("--max-connections", "4") as pg:
            clients = [h2raw.RawClient(pg.port) for _ in range(4)]
            for c in clients:
                frames = c.read_until(lambda f: f.type == h2raw.SETTINGS)
                self.assertTrue(frames and frames[-1].type == h2raw.SETTINGS)
            extra = h2raw.RawClient(pg.port)
            self.assertFalse(extra.read_until(lambda f: True, timeout=0.5),
                             "a fifth connection is not served while four are open")
            clients.pop().close()
            frames = extra.read_until(lambda f: f.type == h2raw.SETTINGS)
            self.assertTrue(frames and frames[-1].type == h2raw.SETTINGS)
            for c in clients + [extra]:
                c.close()
            self.assert_victim_served(pg)

    def test_running_out_of_descriptors_is_survived(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

        def low_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (48, hard))

        pg = Pushgate(self.upstream.url)
        real_popen = subprocess.Popen
        subprocess.Popen = lambda *a, **kw: real_popen(*a, preexec_fn=low_limit, **kw)
        try:
            pg.__enter__()
        finally:
            subprocess.Popen = real_popen
        try:
            self.assert_victim_served(pg)  # one pooled upstream connection from now on
            baseline = pg.fd_count()
            early = h2raw.RawClient(pg.port)  # a client already in when descriptors run out
            early.read_until(lambda f: f.type == h2raw.SETTINGS)
            socks = []
            for _ in range(80):
                s = socket.create_connection(("127.0.0.1", pg.port), timeout=DEADLINE)
                s.sendall(h2raw.PREFACE + h2raw.RawClient.frame(h2raw.SETTINGS, 0, 0))
                socks.append(s)
            pg.log.wait_for(lambda l: "pausing new connections" in l)
            # Its requests are answered (by the pooled connection, or 502 if a new upstream
            # socket is needed): never left hanging.
            for i in range(3):
                early.request(2 * i + 1, f"/during-emfile{i}")
            ended = set()
            early.read_until(lambda f: f.type in (h2raw.HEADERS, h2raw.DATA) and
                             f.flags & h2raw.END_STREAM and not ended.add(f.stream) and
                             len(ended) == 3)
            self.assertEqual(len(ended), 3, "requests hung while descriptors ran out")
            early.close()
            for s in socks:
                s.close()
            self.assert_victim_served(pg)
            wait_until(lambda: pg.fd_count() <= baseline + 2, "descriptors back to baseline")
        finally:
            pg.stop()

    # ---- requests that could confuse the upstream ----

    def test_origin_confusion_is_refused(self):
        with self.proxy() as pg:
            cases = ((["-H", ":scheme: https"], "scheme differs from the connection's"),
                     (["--authority", "user@127.0.0.1"], "userinfo in :authority"),
                     (["-H", "host: other.example"], "host disagrees with :authority"),
                     (["--method", "CONNECT"], "CONNECT"))
            for flags, why in cases:
                rc, ev = h2client(*flags, "127.0.0.1", pg.port, "/conf?tag=confused")
                statuses = [e["status"] for e in ev if e["ev"] == "headers"]
                closes = [e for e in ev if e["ev"] == "close"]
                refused = statuses and statuses[0] in (400, 405) or \
                    (closes and closes[0]["error_code"] != 0)
                self.assertTrue(refused, (why, ev))
        self.assertFalse([r for r in self.upstream.requests() if "tag=confused" in r["target"]])


if __name__ == "__main__":
    main()
