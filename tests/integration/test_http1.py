"""The HTTP/1.1 frontend: keep-alive and framing, pipelining, request bodies, 100-continue,
request smuggling and malformed input (RFC 9112 §6.3, §11.2), slow clients, 103 Early Hints,
and real HTTP/1.1 clients (curl, Python's http.client, h2load --h1, ab, openssl s_client), over
cleartext and TLS, against the project's scriptable upstream and against nginx.

Most tests speak raw HTTP/1.x over a socket and parse the answer strictly (Http1 below): every
status line must be "HTTP/1.1 <code> <reason>", every field line well formed, and a message
never carries both Content-Length and Transfer-Encoding. "Nothing reached the upstream" is
asserted with a sentinel request on a new connection: once the upstream has logged it, its
request counter may have grown by exactly one. Every wait is bounded by DEADLINE and waits for
an event (bytes, a close, a log entry, a counter), never for a fixed time."""
import hashlib
import http.client
import itertools
import os
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
import unittest
from urllib.parse import quote

from harness import (DEADLINE, SANITIZED, Nginx, Pushgate, UpstreamTestCase, free_port, wait_until,
                     make_cert, pattern_bytes, pattern_sha256, run, main)

KiB = 1024
MiB = 1024 * 1024
STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-5][0-9][0-9]) ([\x21-\x7e\x80-\xff][\t\x20-\x7e\x80-\xff]*)\Z")
TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
MAX_RESPONSE_HEAD = 256 * KiB
MAX_RESPONSE_BODY = 64 * MiB

_tags = itertools.count()


def new_tag(prefix="t"):
    """A tag no other request of this run carries, to find a request in the upstream's log:
    "tag=" + one tag is never the start of "tag=" + another."""
    return f"{prefix}-{next(_tags)}-"


def message(method, target, host, fields=(), body=b"", version="HTTP/1.1"):
    """One request as bytes: request line, Host (unless None), the given field lines, body."""
    lines = [f"{method} {target} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines += list(fields)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(body, size, ext="", trailers=()):
    """body in chunked coding with chunks of size bytes, each with the chunk extension ext."""
    out = bytearray()
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out += b"%x%s\r\n" % (len(piece), ext.encode()) + piece + b"\r\n"
    out += b"0\r\n" + b"".join(t.encode() + b"\r\n" for t in trailers) + b"\r\n"
    return bytes(out)



def unverified_tls(alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


class ConnectionEnded(AssertionError):
    """The server closed the connection in the middle of a message."""


class Response:
    def __init__(self, status_line, headers, raw_head):
        self.status_line = status_line.decode("latin-1")
        self.status = int(status_line[9:12])
        self.headers = headers  # [(name, value)] as received
        self.raw_head = raw_head
        self.body = b""
        self.trailers = []
        self.framing = None  # "none", "length", "chunked" or "close"

    def values(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def value(self, name):
        values = self.values(name)
        return values[0] if values else None

    def tokens(self, name):
        """The comma-separated tokens of every field of that name, lower-cased."""
        return {t.strip().lower() for v in self.values(name) for t in v.split(",") if t.strip()}

    def __repr__(self):
        return f"Response({self.raw_head[:600]!r}, {len(self.body)} body bytes, {self.framing})"


class Http1:
    """One raw HTTP/1.x client connection (optionally TLS). It sends whatever bytes a test
    builds and parses the responses strictly, bounded in size and in time: a response that
    is malformed, or does not complete within DEADLINE, fails the test."""

    def __init__(self, port, tls=False, alpn=None, timeout=DEADLINE):
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            sock = unverified_tls(alpn).wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        self.authority = f"127.0.0.1:{port}"
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
        self.reset = False

    def close(self):
        self.sock.close()

    def send(self, data):
        """Sends everything; False when the server had already closed (or reset)."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _recv(self, deadline):
        """Appends what arrives to buf; False at end of stream (a reset counts as one)."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no complete answer within {self.timeout:.0f}s; have "
                                 f"{bytes(self.buf[:300])!r}")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(256 * KiB)
        except socket.timeout:
            raise AssertionError(f"no complete answer within {self.timeout:.0f}s; have "
                                 f"{bytes(self.buf[:300])!r}") from None
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            data = b""
            self.reset = True
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _deadline(self):
        return time.monotonic() + self.timeout

    def _line(self, deadline, limit=64 * KiB):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > limit:
                raise AssertionError(f"a line longer than {limit} bytes: {bytes(self.buf[:100])!r}")
            if not self._recv(deadline):
                raise ConnectionEnded(f"closed inside a line: {bytes(self.buf[:200])!r}")

    def _exact(self, n, deadline):
        while len(self.buf) < n:
            if not self._recv(deadline):
                raise ConnectionEnded(f"closed {len(self.buf)} bytes into {n} expected")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def _chunked_body(self, deadline):
        body = bytearray()
        while True:
            line = self._line(deadline, 4096)
            size_text = line.split(b";")[0].strip(b" \t")
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_text):
                raise AssertionError(f"bad chunk size line {line!r}")
            size = int(size_text, 16)
            if size == 0:
                break
            if len(body) + size > MAX_RESPONSE_BODY:
                raise AssertionError("chunked body over the test's bound")
            body += self._exact(size, deadline)
            if self._exact(2, deadline) != b"\r\n":
                raise AssertionError("chunk data not followed by CRLF")
        trailers = []
        while True:
            line = self._line(deadline)
            if not line:
                return bytes(body), trailers
            trailers.append(line.decode("latin-1"))

    def read_response(self, head=False):
        """The next response, interim (1xx) or final. head: it answers a HEAD request."""
        deadline = self._deadline()
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self.buf) > MAX_RESPONSE_HEAD:
                raise AssertionError("response head over 256 KiB")
            if not self._recv(deadline):
                raise ConnectionEnded("closed before a complete response head; got "
                                      f"{bytes(self.buf[:300])!r}")
        raw = bytes(self.buf[:end + 4])
        del self.buf[:end + 4]
        lines = raw[:-4].split(b"\r\n")
        if not STATUS_LINE.match(lines[0]):
            raise AssertionError(f"status line is not 'HTTP/1.1 <code> <reason>': {lines[0]!r}")
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not TOKEN.match(name) or re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", value):
                raise AssertionError(f"malformed response field line {line!r} in {raw!r}")
            headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        r = Response(lines[0], headers, raw)
        te, cl = r.values("transfer-encoding"), r.values("content-length")
        if te and cl:
            raise AssertionError(f"both Transfer-Encoding and Content-Length: {raw!r}")
        if 100 <= r.status < 200 or r.status == 204:
            if te or cl:
                raise AssertionError(f"framing fields on a {r.status}: {raw!r}")
            r.framing = "none"
        elif head or r.status == 304:
            if te:
                raise AssertionError(f"Transfer-Encoding on a {r.status} or HEAD response: {raw!r}")
            r.framing = "none"
        elif te:
            codings = [t.strip().lower() for v in te for t in v.split(",")]
            if codings != ["chunked"]:
                raise AssertionError(f"Transfer-Encoding is not exactly 'chunked': {raw!r}")
            r.body, r.trailers = self._chunked_body(deadline)
            r.framing = "chunked"
        elif cl:
            if len(cl) != 1 or not cl[0].isdigit() or int(cl[0]) > MAX_RESPONSE_BODY:
                raise AssertionError(f"bad Content-Length: {raw!r}")
            r.body = self._exact(int(cl[0]), deadline)
            r.framing = "length"
        else:
            while self._recv(deadline):
                if len(self.buf) > MAX_RESPONSE_BODY:
                    raise AssertionError("close-delimited body over the test's bound")
            r.body = bytes(self.buf)
            self.buf.clear()
            r.framing = "close"
        return r

    def read_final(self, head=False):
        """Reads interim responses up to the final one; returns (interims, final)."""
        interims = []
        while True:
            r = self.read_response(head)
            if r.status >= 200:
                return interims, r
            interims.append(r)
            if len(interims) > 16:
                raise AssertionError("more than 16 interim responses")

    def wait_closed(self):
        """Blocks until the server closes (bounded); returns what arrived before the end."""
        deadline = self._deadline()
        while self._recv(deadline):
            if len(self.buf) > MAX_RESPONSE_BODY:
                raise AssertionError("the server keeps sending instead of closing")
        data = bytes(self.buf)
        self.buf.clear()
        return data


class H1Case(UpstreamTestCase):
    """Shared helpers: connections closed at the end of the test, and upstream assertions."""

    def connect(self, pg, **kw):
        c = Http1(pg.port, **kw)
        self.addCleanup(c.close)
        return c

    def fetch(self, pg, target, fields=(), method="GET", **kw):
        """One request on a new connection; returns the final response."""
        c = self.connect(pg, **kw)
        c.send(message(method, target, c.authority, fields))
        return c.read_final(head=method == "HEAD")[1]

    def upstream_request(self, tag):
        return self.upstream.wait_for_request(lambda r: f"tag={tag}" in r["target"])

    @staticmethod
    def fields_of(logged):
        fields = {}
        for n, v in logged["headers"]:
            fields.setdefault(n.lower(), []).append(v)
        return fields

    def assert_via(self, r):
        self.assertTrue(any("1.1 pushgate" in v for v in r.values("via")), r)

    def assert_nothing_reached_upstream(self, pg, requests_before, tag, why=""):
        """A sentinel on a new connection reaches the upstream; nothing else did since
        requests_before (the upstream counts every request head it parsed)."""
        sentinel = new_tag("sentinel")
        r = self.fetch(pg, f"/sentinel?tag={sentinel}")
        self.assertEqual(r.status, 200, (why, r))
        self.upstream_request(sentinel)
        reached = self.upstream.stats()["requests_total"] - requests_before
        self.assertEqual(reached, 1, f"{why}: {reached - 1} request(s) reached the upstream")
        self.assertFalse([e for e in self.upstream.requests() if f"tag={tag}" in e["target"]],
                         why)


# ---------------------------------------------------------------------------------------------
class Framing(H1Case):
    """Connection persistence, status lines, response framing and field mapping."""

    def test_http11_keeps_alive_with_length_and_chunked_responses(self):
        """Three requests on one connection: a Content-Length response keeps that length, an
        upstream chunked response goes out chunked (one Transfer-Encoding), and only the
        request with Connection: close ends the connection; fails if pushgate closes an
        HTTP/1.1 connection by default or frames a body wrongly."""
        with self.proxy() as pg:
            c = self.connect(pg)
            c.send(message("GET", "/ka1?size=5000", c.authority))
            first = c.read_response()
            self.assertEqual((first.status, first.framing, first.values("content-length")),
                             (200, "length", ["5000"]), first)
            self.assertEqual(first.body, pattern_bytes(5000))
            self.assertNotIn("close", first.tokens("connection"), first)
            self.assert_via(first)
            c.send(message("GET", "/ka2?size=100000&chunked=1&chunk=7000", c.authority))
            second = c.read_response()
            self.assertEqual((second.status, second.framing), (200, "chunked"), second)
            self.assertEqual(len(second.values("transfer-encoding")), 1, second)
            self.assertEqual(hashlib.sha256(second.body).hexdigest(), pattern_sha256(100000))
            self.assert_via(second)
            c.send(message("GET", "/ka3?size=3", c.authority, ["Connection: close"]))
            third = c.read_response()
            self.assertEqual(third.body, pattern_bytes(3))
            self.assertIn("close", third.tokens("connection"), third)
            self.assertEqual(c.wait_closed(), b"", "closed after a Connection: close request")

    def test_close_delimited_upstream_response_is_chunked_to_http11(self):
        """An upstream body ended by the upstream's close reaches an HTTP/1.1 client chunked,
        and the client connection stays usable; fails if pushgate passes on close-delimited
        framing to a keep-alive client."""
        raw = "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nhello, close-delimited"
        with self.proxy() as pg:
            c = self.connect(pg)
            c.send(message("GET", "/raw?raw=" + quote(raw, safe=""), c.authority))
            r = c.read_response()
            self.assertEqual((r.status, r.framing, r.body), (200, "chunked",
                                                             b"hello, close-delimited"), r)
            c.send(message("GET", "/after-raw?size=10", c.authority))
            self.assertEqual(c.read_response().body, pattern_bytes(10))

    def test_http10_closes_after_the_response(self):
        """An HTTP/1.0 request without keep-alive: status line HTTP/1.1, the body, then EOF;
        fails if pushgate keeps an HTTP/1.0 connection open by default."""
        with self.proxy() as pg:
            c = self.connect(pg)
            c.send(message("GET", "/h10?size=10", c.authority, version="HTTP/1.0"))
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, pattern_bytes(10))
            self.assertEqual(c.wait_closed(), b"")

    def test_http10_keep_alive_and_close_delimited_bodies(self):
        """HTTP/1.0 with Connection: keep-alive: the answer says keep-alive and the connection
        serves a second request; an upstream response without a length is sent close-delimited
        with Connection: close (an HTTP/1.0 client cannot decode chunked)."""
        with self.proxy() as pg:
            c = self.connect(pg)
            for i in range(2):
                c.send(message("GET", f"/h10ka{i}?size=100", c.authority,
                               ["Connection: keep-alive"], version="HTTP/1.0"))
                r = c.read_response()
                self.assertEqual((r.status, r.framing), (200, "length"), r)
                self.assertIn("keep-alive", r.tokens("connection"), r)
                self.assertEqual(r.body, pattern_bytes(100))
            c.send(message("GET", "/h10c?size=70000&chunked=1", c.authority,
                           ["Connection: keep-alive"], version="HTTP/1.0"))
            r = c.read_response()
            self.assertEqual((r.status, r.framing), (200, "close"), r)
            self.assertIn("close", r.tokens("connection"), r)
            self.assertEqual(r.values("transfer-encoding"), [])
            self.assertEqual(hashlib.sha256(r.body).hexdigest(), pattern_sha256(70000))
            self.assertTrue(c.eof)

    def test_head_204_304_carry_no_body(self):
        """HEAD (with the length of the GET), 204 and 304 pipelined with a GET after them:
        the GET's answer comes next, so no body bytes (and no chunked terminator) were sent
        after any of them."""
        with self.proxy() as pg:
            c = self.connect(pg)
            c.send(message("HEAD", "/hd?size=5000", c.authority) +
                   message("GET", "/n?status=204", c.authority) +
                   message("GET", "/n?status=304", c.authority) +
                   message("GET", "/after-nobody?size=7", c.authority))
            head = c.read_response(head=True)
            self.assertEqual((head.status, head.values("content-length")), (200, ["5000"]), head)
            self.assert_via(head)
            for status in (204, 304):
                r = c.read_response()
                self.assertEqual(r.status, status, r)
                self.assert_via(r)
            last = c.read_response()
            self.assertEqual((last.status, last.body), (200, pattern_bytes(7)), last)

    def test_upstream_hop_by_hop_fields_do_not_reach_the_client(self):
        """Connection, Keep-Alive, Upgrade, TE, Proxy-Connection and fields named in the
        upstream's Connection are removed; Link and Set-Cookie fields are kept one by one;
        the upstream's 'Connection: close' does not close the client's connection."""
        q = ("/hop?size=10&header=Connection:close,X-Secret&header=X-Secret:s"
             "&header=Keep-Alive:timeout=5&header=Upgrade:h2c&header=TE:trailers"
             "&header=Proxy-Connection:keep-alive&header=X-Kept:yes"
             "&header=Set-Cookie:a=1&header=Set-Cookie:b=2"
             "&link=" + quote("</h1-link.css>; rel=preload; as=style", safe="") +
             "&link=" + quote("</h1-other.js>; rel=preload", safe=""))
        with self.proxy() as pg:
            c = self.connect(pg)
            c.send(message("GET", q, c.authority))
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, pattern_bytes(10)), r)
            for absent in ("x-secret", "keep-alive", "upgrade", "te", "proxy-connection"):
                self.assertEqual(r.values(absent), [], (absent, r))
            self.assertFalse(r.tokens("connection") & {"close", "x-secret"}, r)
            self.assertEqual(r.values("x-kept"), ["yes"])
            self.assertEqual(r.values("set-cookie"), ["a=1", "b=2"])
            self.assertEqual(r.values("link"), ["</h1-link.css>; rel=preload; as=style",
                                                "</h1-other.js>; rel=preload"])
            self.assert_via(r)
            sentinel = new_tag("after-hop")
            c.send(message("GET", f"/x?tag={sentinel}", c.authority))
            self.assertEqual(c.read_response().status, 200)
        # never a push over HTTP/1.1: no fetch of the linked targets reached the upstream
        self.upstream_request(sentinel)
        self.assertFalse([e for e in self.upstream.requests() if "/h1-" in e["target"]])

    def test_request_fields_as_the_upstream_sees_them(self):
        """Host is kept, hop-by-hop fields and fields named in the client's Connection are
        not forwarded, X-Forwarded-For/-Proto and Via are added."""
        tag = new_tag("map")
        with self.proxy() as pg:
            c = self.connect(pg)
            c.send(message("GET", f"/map?tag={tag}", c.authority, [
                "Connection: keep-alive, X-Drop", "X-Drop: secret", "Keep-Alive: timeout=5",
                "Proxy-Connection: keep-alive", "TE: gzip", "X-Kept: 1",
                "User-Agent: raw-http1-test", "Cookie: a=1"]))
            self.assertEqual(c.read_response().status, 200)
            logged = self.upstream_request(tag)
        self.assertTrue(logged["raw_head"].startswith(f"GET /map?tag={tag} HTTP/1.1\r\n"),
                        logged["raw_head"])
        f = self.fields_of(logged)
        self.assertEqual(f["host"], [c.authority])
        self.assertEqual(f["x-kept"], ["1"])
        self.assertEqual(f["user-agent"], ["raw-http1-test"])
        self.assertEqual(f["cookie"], ["a=1"])
        self.assertEqual(f["x-forwarded-for"], ["127.0.0.1"])
        self.assertEqual(f["x-forwarded-proto"], ["http"])
        self.assertTrue(any("pushgate" in v for v in f.get("via", [])), logged["raw_head"])
        for absent in ("x-drop", "keep-alive", "proxy-connection", "connection",
                       "transfer-encoding", "content-length", "upgrade"):
            self.assertNotIn(absent, f, logged["raw_head"])
        self.assertFalse([v for v in f.get("te", []) if "gzip" in v], logged["raw_head"])

    def test_absolute_form_and_asterisk_targets(self):
        """An absolute-form target reaches the upstream in origin form with that authority as
        Host; OPTIONS * reaches it as OPTIONS *."""
        tag = new_tag("abs")
        with self.proxy() as pg:
            c = self.connect(pg)
            authority = c.authority
            c.send(message("GET", f"http://{authority}/abs/x?tag={tag}", authority))
            self.assertEqual(c.read_response().status, 200)
            c.send(message("OPTIONS", "*", authority))
            self.assertEqual(c.read_response().status, 200)
            logged = self.upstream_request(tag)
            star = self.upstream.wait_for_request(lambda r: r["method"] == "OPTIONS" and
                                                  r["target"] == "*")
        self.assertTrue(logged["raw_head"].startswith(f"GET /abs/x?tag={tag} HTTP/1.1\r\n"),
                        logged["raw_head"])
        self.assertEqual(self.fields_of(logged)["host"], [authority])
        self.assertTrue(star["raw_head"].startswith("OPTIONS * HTTP/1.1\r\n"), star["raw_head"])

    def test_connect_is_405_and_other_upgrades_are_501(self):
        """CONNECT is refused with 405 and an Upgrade other than h2c with 501; neither reaches
        the upstream."""
        with self.proxy() as pg:
            for what, raw, status in (
                    ("CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443"
                                "\r\n\r\n", 405),
                    ("websocket", "GET /ws?tag={tag} HTTP/1.1\r\nHost: {host}\r\n"
                                  "Connection: Upgrade\r\nUpgrade: websocket\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                  "Sec-WebSocket-Version: 13\r\n\r\n", 501)):
                with self.subTest(what):
                    tag = new_tag("refused")
                    before = self.upstream.stats()["requests_total"]
                    c = self.connect(pg)
                    c.send(raw.format(tag=tag, host=c.authority).encode())
                    r = c.read_response()
                    self.assertEqual(r.status, status, r)
                    self.assert_nothing_reached_upstream(pg, before, tag, what)
                    self.assertEqual([e for e in self.upstream.requests()
                                      if e["method"] == "CONNECT"], [])

    def test_upgrade_h2c_is_served_over_http11(self):
        """A request offering Upgrade: h2c (curl --http2 on http:// sends one) is answered over
        HTTP/1.1 with 200, not 101, and the Upgrade fields are not forwarded."""
        tag = new_tag("h2c-upgrade")
        with self.proxy() as pg:
            c = self.connect(pg)
            c.send(message("GET", f"/up?size=20&tag={tag}", c.authority, [
                "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c",
                "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"]))
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, pattern_bytes(20)), r)
            f = self.fields_of(self.upstream_request(tag))
            self.assertNotIn("upgrade", f)
            self.assertNotIn("http2-settings", f)
            p = run(["curl", "-sS", "--http2", "-o", "/dev/null", "-w",
                     "%{http_version} %{response_code}", pg.url("/curl-upgrade?size=10")])
            self.assertEqual(p.stdout.decode(), "1.1 200", p.stderr)

    def test_truncated_upstream_body_never_looks_complete(self):
        """The upstream closes early, with a Content-Length and chunked: the client's
        connection is closed before the message is complete, never ended as if whole."""
        with self.proxy() as pg:
            for what, q in (("length", "/trunc?size=100000&close_after=5000"),
                            ("chunked", "/trunc?size=100000&chunked=1&chunk=1000&close_after=5000")):
                with self.subTest(what):
                    c = self.connect(pg)
                    c.send(message("GET", q, c.authority))
                    try:
                        r = c.read_response()
                    except ConnectionEnded:
                        continue  # closed before the message was complete: right
                    self.assertGreaterEqual(r.status, 500, f"{what}: looks complete: {r}")
            self.assertEqual(self.fetch(pg, "/after-trunc?size=10").body, pattern_bytes(10))


# ---------------------------------------------------------------------------------------------
class Pipelining(H1Case):
    def test_pipelined_requests_are_answered_in_order_once_each(self):
        """Three requests in one write, the first answered slowest by the upstream: the
        answers come in request order, one each, and the last (Connection: close) is the last
        thing on the connection."""
        tags = [new_tag("pipe") for _ in range(3)]
        with self.proxy() as pg:
            c = self.connect(pg)
            c.send(message("GET", f"/p?size=1000&delay_ms=300&tag={tags[0]}", c.authority) +
                   message("GET", f"/p?size=2000&tag={tags[1]}", c.authority) +
                   message("GET", f"/p?size=3000&tag={tags[2]}", c.authority,
                           ["Connection: close"]))
            for size in (1000, 2000, 3000):
                r = c.read_response()
                self.assertEqual((r.status, len(r.body)), (200, size), r)
                self.assertEqual(r.body, pattern_bytes(size))
            self.assertEqual(c.wait_closed(), b"", "an extra answer")
        for tag in tags:
            self.upstream_request(tag)
            self.assertEqual(len([e for e in self.upstream.requests()
                                  if f"tag={tag}" in e["target"]]), 1, tag)

    def test_100_pipelined_requests_all_answered_in_order(self):
        """100 requests sent at once, more than the pipelining depth of 16: pushgate reads on
        as answers drain, and every one is answered, in order."""
        tag = new_tag("pipe100")
        with self.proxy() as pg:
            c = self.connect(pg)
            burst = b"".join(message("GET", f"/p100?i={i}&size={i}&tag={tag}", c.authority,
                                     ["Connection: close"] if i == 99 else [])
                             for i in range(100))
            c.send(burst)
            for i in range(100):
                r = c.read_response()
                self.assertEqual((r.status, r.body), (200, pattern_bytes(i)), (i, r))
            self.assertEqual(c.wait_closed(), b"")
        seen = sorted(int(e["target"].split("i=")[1].split("&")[0])
                      for e in self.upstream.requests() if f"tag={tag}" in e["target"])
        self.assertEqual(seen, list(range(100)), "each request reached the upstream once")

    def test_a_client_that_pipelines_without_reading_keeps_memory_bounded(self):
        """20000 pipelined GETs (3 KiB each, 60 MB in all) for 64 KiB answers, never read:
        pushgate stops reading the client once its answers back up, so the writer stalls,
        few requests reach the upstream and RSS stays flat; closing the client cancels it all."""
        count, per_write = 20000, 100
        limit_mib = 48 if SANITIZED else 20
        with self.proxy() as pg:
            self.assertEqual(self.fetch(pg, "/warm?size=65536").status, 200)
            base = pg.rss_kib()
            before = self.upstream.stats()["requests_total"]
            c = self.connect(pg)
            block = b"".join(message("GET", f"/flood?size=65536&i={i}", c.authority,
                                     ["X-Pad: " + "p" * 3000]) for i in range(per_write))
            total = len(block) * (count // per_write)
            sent = [0]
            done = threading.Event()

            def writer():
                try:
                    for _ in range(count // per_write):
                        c.sock.sendall(block)
                        sent[0] += len(block)
                except OSError:
                    pass
                finally:
                    done.set()

            thread = threading.Thread(target=writer, daemon=True)
            thread.start()
            peak, last, still, end = base, None, 0, time.monotonic() + DEADLINE
            try:
                # Stalled: neither the writer nor the upstream moved for 0.5 s.
                while not done.is_set() and still < 3:
                    now = (sent[0], self.upstream.stats()["bytes_sent"])
                    peak = max(peak, pg.rss_kib())
                    still = still + 1 if now == last else 0
                    last = now
                    self.assertLess(time.monotonic(), end, "never stalled")
                    done.wait(0.25)
                peak = max(peak, pg.rss_kib())
                forwarded = self.upstream.stats()["requests_total"] - before
            finally:
                try:
                    c.sock.shutdown(socket.SHUT_RDWR)  # wakes the writer blocked in sendall
                except OSError:
                    pass
                thread.join(DEADLINE)
                c.close()
            grown = peak - base
            print(f"pipelining without reading: {sent[0] / MiB:.1f} of {total / MiB:.1f} MiB "
                  f"written, {forwarded} requests forwarded, RSS grew {grown / 1024:.1f} MiB "
                  f"(limit {limit_mib} MiB)")
            self.assertLess(sent[0], total, "pushgate read every request while no answer drained")
            self.assertLess(forwarded, 1000, "requests kept being forwarded without answers draining")
            self.assertLess(grown, limit_mib * 1024)
            wait_until(lambda: self.upstream.stats()["active_requests"] == 0,
                       "the upstream transfers to be cancelled")
            self.assertEqual(self.fetch(pg, "/victim?size=100").body, pattern_bytes(100))


# ---------------------------------------------------------------------------------------------
class Bodies(H1Case):
    def post_echo(self, pg, tag, head_fields, body_bytes, expected):
        c = self.connect(pg)
        c.send(message("POST", f"/echo?echo=1&tag={tag}", c.authority, head_fields) + body_bytes)
        interims, r = c.read_final()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.body), len(expected), tag)
        self.assertTrue(r.body == expected, f"{tag}: the echoed body differs")
        return self.upstream_request(tag)

    def test_content_length_uploads_of_odd_sizes(self):
        """Content-Length bodies of 1, 4095, 65537 and 1 MiB + 3 bytes reach the upstream
        exactly (length, hash, framing) and come back echoed byte for byte."""
        with self.proxy() as pg:
            for size in (1, 4095, 65537, MiB + 3):
                with self.subTest(size=size):
                    tag = new_tag("cl")
                    body = pattern_bytes(size)
                    logged = self.post_echo(pg, tag, [f"Content-Length: {size}"], body, body)
                    self.assertEqual((logged["body_len"], logged["body_sha256"],
                                      logged["chunked"]), (size, pattern_sha256(size), False))
                    self.assertEqual(self.fields_of(logged).get("content-length"), [str(size)])

    def test_chunked_uploads_of_odd_chunkings(self):
        """Chunked bodies (chunks of 1, 7 and 8191 bytes, chunk extensions, trailer fields)
        reach the upstream chunked with exactly the bytes of the body."""
        cases = [(1, 1, "", ()), (4095, 7, "", ()), (65537, 8191, "", ()),
                 (MiB + 3, 8191, "", ()), (1000, 1, ";a=b", ("X-Trailer: t", "X-Sum: 1")),
                 (20000, 8191, ";name=\"quoted value\"", ("X-Trailer: t",))]
        with self.proxy() as pg:
            for size, chunk, ext, trailers in cases:
                with self.subTest(size=size, chunk=chunk, ext=ext):
                    tag = new_tag("ch")
                    body = pattern_bytes(size)
                    logged = self.post_echo(pg, tag, ["Transfer-Encoding: chunked"],
                                            chunked(body, chunk, ext, trailers), body)
                    self.assertEqual((logged["body_len"], logged["body_sha256"],
                                      logged["chunked"]), (size, pattern_sha256(size), True))
                    self.assertNotIn("content-length", self.fields_of(logged))

    def test_expect_100_continue(self):
        """With Expect: 100-continue pushgate sends 'HTTP/1.1 100 Continue' while the client
        still holds the body back; after the body comes one final 200, no second 100."""
        tag = new_tag("expect")
        body = pattern_bytes(5000)
        with self.proxy() as pg:
            c = self.connect(pg)
            c.send(message("POST", f"/echo?echo=1&tag={tag}", c.authority,
                           ["Content-Length: 5000", "Expect: 100-continue"]))
            cont = c.read_response()
            self.assertEqual(cont.status_line, "HTTP/1.1 100 Continue", cont)
            c.send(body)
            interims, r = c.read_final()
            self.assertEqual(interims, [], "a second interim response")
            self.assertEqual((r.status, r.body), (200, body), r)
            logged = self.upstream_request(tag)
            self.assertEqual((logged["body_len"], logged["body_sha256"]),
                             (5000, pattern_sha256(5000)))
            c.send(message("GET", "/after-expect?size=5", c.authority))
            self.assertEqual(c.read_response().body, pattern_bytes(5))

    def test_upload_to_a_slow_upstream_reader_is_back_pressured(self):
        """16 MiB uploaded to an upstream reading 16 MB/s: pushgate streams it with back-pressure
        instead of buffering it whole (RSS bound), and the bytes arrive intact."""
        size = 16 * MiB
        limit_mib = 20 if SANITIZED else 6
        tag = new_tag("slowup")
        with self.proxy() as pg:
            self.assertEqual(self.fetch(pg, "/warm?size=10").status, 200)
            base = pg.rss_kib()
            c = self.connect(pg)
            data = message("POST", f"/up?slow_read=16000000&tag={tag}", c.authority,
                           [f"Content-Length: {size}"]) + pattern_bytes(size)
            sender = threading.Thread(target=c.send, args=(data,), daemon=True)
            sender.start()
            peak, end = base, time.monotonic() + DEADLINE
            while sender.is_alive() and time.monotonic() < end:
                peak = max(peak, pg.rss_kib())
                sender.join(0.05)
            r = c.read_response()
            peak = max(peak, pg.rss_kib())
            self.assertEqual(r.status, 200, r)
            logged = self.upstream_request(tag)
        self.assertEqual((logged["body_len"], logged["body_sha256"]), (size, pattern_sha256(size)))
        grown = peak - base
        print(f"slow upstream reader (HTTP/1.1): RSS grew {grown / 1024:.1f} MiB for a "
              f"{size // MiB} MiB upload (limit {limit_mib} MiB)")
        self.assertLess(grown, limit_mib * 1024)


# ---------------------------------------------------------------------------------------------
H = "Host: {host}\r\n"
SMUGGLED = "0\r\n\r\nGET /smuggled?tag={tag}-smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n"

# (what, request with {tag} and {host}, status). None of these may reach the upstream.
BAD_REQUESTS = [
    ("Content-Length with Transfer-Encoding (CL.TE)",
     "POST /bad?tag={tag} HTTP/1.1\r\n" + H + "Content-Length: {smuggled_len}\r\n"
     "Transfer-Encoding: chunked\r\n\r\n" + SMUGGLED, 400),
    ("Transfer-Encoding with Content-Length (TE.CL)",
     "POST /bad?tag={tag} HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n"
     "Content-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", 400),
    ("two differing Content-Lengths",
     "POST /bad?tag={tag} HTTP/1.1\r\n" + H + "Content-Length: 3\r\nContent-Length: 4\r\n"
     "\r\nabcd", 400),
    ("Content-Length list", "POST /bad?tag={tag} HTTP/1.1\r\n" + H +
     "Content-Length: 1, 2\r\n\r\nabc", 400),
    ("Content-Length not a number", "POST /bad?tag={tag} HTTP/1.1\r\n" + H +
     "Content-Length: abc\r\n\r\n", 400),
    ("negative Content-Length", "POST /bad?tag={tag} HTTP/1.1\r\n" + H +
     "Content-Length: -1\r\n\r\n", 400),
    ("signed Content-Length", "POST /bad?tag={tag} HTTP/1.1\r\n" + H +
     "Content-Length: +5\r\n\r\nhello", 400),
    ("Transfer-Encoding gzip", "POST /bad?tag={tag} HTTP/1.1\r\n" + H +
     "Transfer-Encoding: gzip\r\n\r\n", 400),
    ("Transfer-Encoding chunked, gzip", "POST /bad?tag={tag} HTTP/1.1\r\n" + H +
     "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
    ("obs-fold (space)", "GET /bad?tag={tag} HTTP/1.1\r\n" + H +
     "X-Folded: a\r\n b\r\n\r\n", 400),
    ("obs-fold (tab) of Transfer-Encoding", "POST /bad?tag={tag} HTTP/1.1\r\n" + H +
     "Transfer-Encoding: identity\r\n\tchunked\r\n\r\n0\r\n\r\n", 400),
    ("whitespace before the colon", "GET /bad?tag={tag} HTTP/1.1\r\n" + H +
     "X-Name : v\r\n\r\n", 400),
    ("whitespace before the colon of Transfer-Encoding", "POST /bad?tag={tag} HTTP/1.1\r\n" +
     H + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
    ("Host with whitespace before the colon", "GET /bad?tag={tag} HTTP/1.1\r\n"
     "Host : {host}\r\n\r\n", 400),
    ("bare CR in a field value", "GET /bad?tag={tag} HTTP/1.1\r\n" + H +
     "X-A: 1\rX-B: 2\r\n\r\n", 400),
    ("NUL in a field value", "GET /bad?tag={tag} HTTP/1.1\r\n" + H + "X-A: 1\x002\r\n\r\n", 400),
    ("control byte in a field value", "GET /bad?tag={tag} HTTP/1.1\r\n" + H +
     "X-A: 1\x012\r\n\r\n", 400),
    ("DEL in a field value", "GET /bad?tag={tag} HTTP/1.1\r\n" + H + "X-A: 1\x7f2\r\n\r\n", 400),
    ("control byte in a field name", "GET /bad?tag={tag} HTTP/1.1\r\n" + H +
     "X-\x01A: 1\r\n\r\n", 400),
    ("a field line without a colon", "GET /bad?tag={tag} HTTP/1.1\r\n" + H +
     "X-No-Colon\r\n\r\n", 400),
    ("no Host in HTTP/1.1", "GET /bad?tag={tag} HTTP/1.1\r\n\r\n", 400),
    ("two Host fields", "GET /bad?tag={tag} HTTP/1.1\r\n" + H + "Host: other.example\r\n\r\n",
     400),
    ("invalid method token", "G(T /bad?tag={tag} HTTP/1.1\r\n" + H + "\r\n", 400),
    ("garbage request line", "hello there {tag}\r\n" + H + "\r\n", 400),
    ("request line with an extra word", "GET /bad?tag={tag} HTTP/1.1 extra\r\n" + H + "\r\n",
     400),
    ("request line over 8 KiB", "GET /bad?tag={tag}&pad=" + "a" * 9000 + " HTTP/1.1\r\n" + H +
     "\r\n", 414),
    ("more than 128 fields", "GET /bad?tag={tag} HTTP/1.1\r\n" + H +
     "".join(f"X-F{i}: v\r\n" for i in range(140)) + "\r\n", 431),
    ("header block over 64 KiB", "GET /bad?tag={tag} HTTP/1.1\r\n" + H +
     "".join(f"X-Big{i}: {'v' * 2000}\r\n" for i in range(40)) + "\r\n", 431),
]


class BadRequests(H1Case):
    def test_smuggling_and_malformed_requests_are_refused_and_reach_no_upstream(self):
        """Each case (RFC 9112 §6.3, §11.2 and the size limits) is answered with its status
        and Connection: close, the connection is closed by pushgate, and nothing (not the
        request, not a request smuggled in its body) reaches the upstream."""
        with self.proxy() as pg:
            for what, template, status in BAD_REQUESTS:
                with self.subTest(what):
                    tag = new_tag("bad")
                    before = self.upstream.stats()["requests_total"]
                    c = self.connect(pg)
                    smuggled = SMUGGLED.format(tag=tag, host=c.authority)
                    raw = template.format(tag=tag, host=c.authority,
                                          smuggled_len=len(smuggled)).encode("latin-1")
                    c.send(raw)
                    r = c.read_response()
                    self.assertEqual(r.status, status, (what, r))
                    self.assertIn("close", r.tokens("connection"), (what, r))
                    self.assertEqual(c.wait_closed(), b"", f"{what}: more after the refusal")
                    self.assert_nothing_reached_upstream(pg, before, tag, what)

    def test_requests_just_inside_the_limits_are_served(self):
        """A 7000-byte target, 120 fields and a 56 KiB header block are served: the limits
        refuse what is over them, not what comes close."""
        with self.proxy() as pg:
            cases = (("long target", "/near?pad=" + "a" * 7000, []),
                     ("120 fields", "/near?fields=120", [f"X-F{i}: v" for i in range(119)]),
                     ("56 KiB block", "/near?block=56k",
                      [f"X-Big{i}: {'v' * 2000}" for i in range(28)]))
            for what, target, fields in cases:
                with self.subTest(what):
                    r = self.fetch(pg, target, fields)
                    self.assertEqual(r.status, 200, (what, r))

    def test_bad_chunked_bodies_close_the_connection(self):
        """A chunk size that is not hex, one that overflows, and chunk data without its CRLF:
        pushgate closes the connection (answering 400 if it still can) and does not hang,
        and the upstream transfer it may have started is aborted."""
        cases = (("not hex", "zz\r\n"), ("overflowing size", "1" * 40 + "\r\nabc"),
                 ("no CRLF after the data", "3\r\nabcXY0\r\n\r\n"))
        with self.proxy() as pg:
            for what, body in cases:
                with self.subTest(what):
                    c = self.connect(pg)
                    c.send(message("POST", f"/echo?echo=1&tag={new_tag('badchunk')}",
                                   c.authority, ["Transfer-Encoding: chunked"]) +
                           body.encode())
                    data = c.wait_closed()
                    if data:
                        self.assertTrue(data.startswith(b"HTTP/1.1 400 "), (what, data[:200]))
                    wait_until(lambda: self.upstream.stats()["active_requests"] == 0,
                               f"{what}: the upstream transfer to end")
            self.assertEqual(self.fetch(pg, "/after-badchunk?size=3").body, pattern_bytes(3))


# ---------------------------------------------------------------------------------------------
class Timeouts(H1Case):
    def assert_closed_after(self, c, start, what):
        data = c.wait_closed()
        elapsed = time.monotonic() - start
        if data:
            self.assertRegex(data[:12], rb"^HTTP/1\.1 4\d\d", what)
        self.assertGreaterEqual(elapsed, 0.8, f"{what}: closed too early ({elapsed:.2f} s)")
        self.assertLess(elapsed, DEADLINE)
        return elapsed

    def test_half_a_header_block_is_cut_off_by_the_request_timeout(self):
        """Slowloris: a head that stops half way is closed about --request-timeout (1 s) later;
        fails if pushgate waits on such a client indefinitely."""
        with self.proxy("--request-timeout", "1s") as pg:
            c = self.connect(pg)
            start = time.monotonic()
            c.send(f"GET /slowloris HTTP/1.1\r\nHost: {c.authority}\r\nX-Half: ".encode())
            self.assert_closed_after(c, start, "half a head")
            self.assertEqual(self.fetch(pg, "/after-slowloris?size=3").body, pattern_bytes(3))

    def test_a_request_body_that_stops_coming_is_cut_off(self):
        """A Content-Length body that stops after 10 of 100 bytes: the connection is closed
        after --request-timeout (1 s) and the upstream transfer aborted."""
        with self.proxy("--request-timeout", "1s") as pg:
            c = self.connect(pg)
            start = time.monotonic()
            c.send(message("POST", "/stalled-body", c.authority, ["Content-Length: 100"]) +
                   b"x" * 10)
            self.assert_closed_after(c, start, "stalled body")
            wait_until(lambda: self.upstream.stats()["active_requests"] == 0,
                       "the upstream transfer to be aborted")

    def test_idle_keep_alive_connection_is_closed(self):
        """After a completed exchange, an idle keep-alive connection is closed by pushgate once
        --idle-timeout (1 s) passes."""
        with self.proxy("--idle-timeout", "1s") as pg:
            c = self.connect(pg)
            c.send(message("GET", "/before-idle?size=10", c.authority))
            self.assertEqual(c.read_response().body, pattern_bytes(10))
            start = time.monotonic()
            data = c.wait_closed()
            elapsed = time.monotonic() - start
            self.assertEqual(data, b"", "nothing sent on an idle connection but its close")
            self.assertGreaterEqual(elapsed, 0.8)
            self.assertLess(elapsed, DEADLINE)


# ---------------------------------------------------------------------------------------------
class EarlyHints(H1Case):
    def hinted(self, extra=""):
        value = quote("</a.css>; rel=preload", safe="")
        return f"/{new_tag('hinted')}?early_hints={value}&size=3{extra}"

    def test_no_103_to_http11_clients_by_default(self):
        """Without --early-hints-http1, the upstream's 103 is not passed to an HTTP/1.1 client,
        nor a 103 of pushgate's own for a page whose links it has learned."""
        learned = f"/{new_tag('learned')}?size=3&link=" + quote("</b.css>; rel=preload", safe="")
        with self.proxy() as pg:
            c = self.connect(pg)
            for target in (self.hinted(), learned, learned):
                c.send(message("GET", target, c.authority))
                r = c.read_response()
                self.assertEqual((r.status, r.body), (200, pattern_bytes(3)), (target, r))

    def test_early_hints_http1_flag_passes_the_103_on(self):
        """With --early-hints-http1, an HTTP/1.1 client sees 'HTTP/1.1 103 Early Hints' with
        the Link field, then the 200; an HTTP/1.0 client still never gets a 103."""
        with self.proxy("--early-hints-http1") as pg:
            c = self.connect(pg)
            c.send(message("GET", self.hinted(), c.authority))
            hint = c.read_response()
            self.assertEqual(hint.status_line, "HTTP/1.1 103 Early Hints", hint)
            self.assertEqual(hint.values("link"), ["</a.css>; rel=preload"])
            interims, r = c.read_final()
            self.assertEqual(interims, [])
            self.assertEqual((r.status, r.body), (200, pattern_bytes(3)), r)
            old = self.connect(pg)
            old.send(message("GET", self.hinted(), old.authority, version="HTTP/1.0"))
            r = old.read_response()
            self.assertEqual((r.status, r.body), (200, pattern_bytes(3)), r)


# ---------------------------------------------------------------------------------------------
class UpstreamDown(unittest.TestCase):
    def test_unreachable_upstream_is_502(self):
        """Nothing listens upstream: the request is answered 502 and pushgate keeps serving
        (a second client gets its 502 too)."""
        with Pushgate(f"http://127.0.0.1:{free_port()}") as pg:
            for i in range(2):
                c = Http1(pg.port)
                try:
                    c.send(message("GET", f"/down{i}", c.authority))
                    self.assertEqual(c.read_final()[1].status, 502)
                finally:
                    c.close()
                self.assertIsNone(pg.proc.poll(), "pushgate exited")


# ---------------------------------------------------------------------------------------------
class RealClients(H1Case):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = tempfile.mkdtemp(prefix="pg-http1-")
        cls.cert, cls.key = make_cert(cls.dir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)
        super().tearDownClass()

    def tls_proxy(self, *extra):
        return Pushgate(self.upstream.url, *extra, tls=(self.cert, self.key))

    def curl_two_urls(self, pg, scheme):
        p = run(["curl", "-sS", "-v", "-k", "--http1.1", "-o", "/dev/null", "-o", "/dev/null",
                 "-w", "%{http_version} %{response_code} %{num_connects}\\n",
                 pg.url("/curl1?size=1000", scheme), pg.url("/curl2?size=2000", scheme)])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode().splitlines(), ["1.1 200 1", "1.1 200 0"],
                         p.stderr.decode()[-3000:])
        err = p.stderr.decode()
        self.assertIn("Re-using existing connection", err)
        return err

    def test_curl_http11_cleartext_reuses_the_connection(self):
        """curl --http1.1 with two URLs: both 200 over HTTP/1.1 on one connection."""
        with self.proxy() as pg:
            self.curl_two_urls(pg, "http")

    def test_curl_http11_over_tls_negotiates_alpn_http11(self):
        """curl --http1.1 over TLS offers only http/1.1 and gets it (and reuses the
        connection); curl --http2 on the same port still gets h2."""
        with self.tls_proxy() as pg:
            err = self.curl_two_urls(pg, "https")
            self.assertIn("ALPN: server accepted http/1.1", err)
            p = run(["curl", "-sS", "--http2", "-k", "-o", "/dev/null", "-w",
                     "%{http_version} %{response_code}", pg.url("/curl-h2?size=10", "https")])
            self.assertEqual(p.stdout.decode(), "2 200", p.stderr)

    def test_tls_alpn_choices(self):
        """ALPN: h2 is preferred when offered (even listed second), http/1.1 alone gets
        http/1.1, and a client offering no ALPN is served HTTP/1.1."""
        with self.tls_proxy() as pg:
            c = self.connect(pg, tls=True, alpn=["http/1.1", "h2"])
            self.assertEqual(c.sock.selected_alpn_protocol(), "h2")
            for alpn, selected in ((["http/1.1"], "http/1.1"), (None, None)):
                c = self.connect(pg, tls=True, alpn=alpn)
                self.assertEqual(c.sock.selected_alpn_protocol(), selected)
                c.send(message("GET", "/alpn?size=300", c.authority))
                r = c.read_response()
                self.assertEqual((r.status, r.body), (200, pattern_bytes(300)), (alpn, r))

    def test_openssl_s_client_without_alpn_gets_http11(self):
        """openssl s_client without -alpn: no ALPN negotiated, and a request typed on its
        stdin is answered 'HTTP/1.1 200'."""
        with self.tls_proxy() as pg:
            request = message("GET", "/s-client?size=12", f"127.0.0.1:{pg.port}",
                              ["Connection: close"])
            p = run(["openssl", "s_client", "-connect", f"127.0.0.1:{pg.port}",
                     "-servername", "localhost", "-ign_eof"], input=request)
            out = p.stdout.decode("latin-1")
            self.assertIn("No ALPN negotiated", out)
            self.assertIn("HTTP/1.1 200 ", out)

    def http_client_session(self, conn):
        """GET, POST, chunked POST, chunked GET and HEAD on one http.client connection."""
        tag = new_tag("hc")
        conn.request("GET", "/hc?size=1000")
        r = conn.getresponse()
        self.assertEqual((r.status, r.version, r.read()), (200, 11, pattern_bytes(1000)))
        self.assertIn("1.1 pushgate", r.getheader("Via", ""))
        sock = conn.sock
        payload = pattern_bytes(70001)
        conn.request("POST", f"/echo?echo=1&tag={tag}", body=payload)
        r = conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, payload))
        conn.request("POST", f"/echo?echo=1&tag={tag}c", body=iter([b"abc", b"defgh", b"i"]))
        r = conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, b"abcdefghi"))
        conn.request("GET", "/c?size=100000&chunked=1")
        r = conn.getresponse()
        self.assertEqual(r.getheader("Transfer-Encoding"), "chunked")
        self.assertEqual(hashlib.sha256(r.read()).hexdigest(), pattern_sha256(100000))
        conn.request("HEAD", "/hc-head?size=5000")
        r = conn.getresponse()
        self.assertEqual((r.status, r.getheader("Content-Length"), r.read()), (200, "5000", b""))
        self.assertIs(conn.sock, sock, "http.client had to reconnect: the connection closed")
        self.assertTrue(self.upstream_request(f"{tag}c")["chunked"])
        return self.upstream_request(tag)

    def test_python_http_client(self):
        """http.client: five requests, bodies and framings on one cleartext connection."""
        with self.proxy() as pg:
            conn = http.client.HTTPConnection("127.0.0.1", pg.port, timeout=DEADLINE)
            try:
                logged = self.http_client_session(conn)
            finally:
                conn.close()
        self.assertEqual(self.fields_of(logged)["x-forwarded-proto"], ["http"])

    def test_python_https_client_without_alpn(self):
        """http.client over TLS with a context that offers no ALPN: HTTP/1.1 with the same
        five requests on one connection; the upstream is told the scheme was https."""
        with self.tls_proxy() as pg:
            conn = http.client.HTTPSConnection("127.0.0.1", pg.port, timeout=DEADLINE,
                                               context=unverified_tls())
            try:
                logged = self.http_client_session(conn)
                self.assertIsNone(conn.sock.selected_alpn_protocol())
            finally:
                conn.close()
        self.assertEqual(self.fields_of(logged)["x-forwarded-proto"], ["https"])

    def h2load_h1(self, url):
        p = run(["h2load", "--h1", "-n", "2000", "-c", "10", url], timeout=120)
        out = p.stdout.decode()
        self.assertIn("requests: 2000 total, 2000 started, 2000 done, 2000 succeeded", out)
        self.assertIn("status codes: 2000 2xx", out)
        return out

    def test_h2load_h1_cleartext_and_tls(self):
        """h2load --h1, 2000 requests over 10 connections, cleartext and TLS (ALPN http/1.1):
        all succeed."""
        with self.proxy() as pg:
            self.h2load_h1(pg.url("/s?size=1024"))
        with self.tls_proxy() as pg:
            out = self.h2load_h1(pg.url("/s?size=1024", "https"))
            self.assertIn("Application protocol: http/1.1", out)

    def test_ab_keep_alive(self):
        """ApacheBench -k (HTTP/1.0 with Connection: keep-alive): 2000 requests, none failed,
        every one on a kept-alive connection."""
        with self.proxy() as pg:
            p = run(["ab", "-k", "-n", "2000", "-c", "10", pg.url("/s?size=1024")], timeout=120)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, out + p.stderr.decode())
        self.assertIn("Complete requests:      2000", out)
        self.assertIn("Failed requests:        0", out)
        self.assertIn("Keep-Alive requests:    2000", out)
        self.assertNotIn("Non-2xx", out)

    def test_http2_still_works_on_the_same_cleartext_port(self):
        """One cleartext port serves HTTP/1.1 and prior-knowledge h2c: an HTTP/1.1 request,
        then nghttp and h2load over HTTP/2 on the same port."""
        with self.proxy() as pg:
            self.assertEqual(self.fetch(pg, "/first-h1?size=10").status, 200)
            p = run(["nghttp", "-nv", pg.url("/h2c?size=100")])
            out = p.stdout.decode()
            self.assertEqual(p.returncode, 0, out)
            self.assertIn(":status: 200", out)
            p = run(["h2load", "-n", "200", "-c", "2", "-m", "10", pg.url("/h2c-load?size=100")])
            self.assertIn("200 succeeded, 0 failed, 0 errored", p.stdout.decode())
            self.assertEqual(self.fetch(pg, "/last-h1?size=10").status, 200)


# ---------------------------------------------------------------------------------------------
class AgainstNginx(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pg-http1-nginx-")
        os.chmod(cls.dir, 0o755)
        cls.root = os.path.join(cls.dir, "www")
        os.makedirs(cls.root)
        cls.small = b"hello from nginx over http/1.1\n"
        cls.big = os.urandom(3 * MiB + 17)
        with open(os.path.join(cls.root, "small.txt"), "wb") as f:
            f.write(cls.small)
        with open(os.path.join(cls.root, "big.bin"), "wb") as f:
            f.write(cls.big)
        cls.nginx = Nginx(cls.root).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.nginx.__exit__(None, None, None)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_curl_http11_through_to_nginx(self):
        """curl --http1.1 fetches two files served by nginx through pushgate on one
        connection: both byte for byte."""
        out_big, out_small = os.path.join(self.dir, "big.out"), os.path.join(self.dir, "small.out")
        with Pushgate(self.nginx.url) as pg:
            p = run(["curl", "-sS", "--http1.1", "-w", "%{http_version} %{response_code}\\n",
                     "-o", out_big, pg.url("/big.bin"), "-o", out_small, pg.url("/small.txt")])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode().splitlines(), ["1.1 200", "1.1 200"])
        with open(out_big, "rb") as f:
            self.assertTrue(f.read() == self.big, "big.bin differs")
        with open(out_small, "rb") as f:
            self.assertEqual(f.read(), self.small)


if __name__ == "__main__":
    main()
