"""Operating pushgate: draining on SIGTERM, --shutdown-timeout, --check.

Each test starts its own pushgate (the harness) in front of the shared scriptable upstream and
drives it with real clients (curl, raw sockets) and signals.
"""
import hashlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (DEADLINE, PUSHGATE, Pushgate, UpstreamTestCase, make_cert, main, wait_until,
                     pattern_bytes, pattern_sha256, run)

MiB = 1024 * 1024


def connect_refused(port):
    """True when nothing accepts on port any more."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return False
    except ConnectionRefusedError:
        return True



def read_response(sock, body_len):
    """One whole response with a body of body_len bytes (the head may come apart from it)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < body_len:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed mid-response: {data!r}")
        data += chunk
    return data


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


class Drain(UpstreamTestCase):
    def start(self, *flags):
        pg = Pushgate(self.upstream.url, *flags).__enter__()
        self.addCleanup(lambda: pg.proc.poll() is None and pg.proc.kill())
        return pg

    def exit_status(self, pg):
        rc = pg.proc.wait(timeout=DEADLINE)
        pg.log.thread.join(5)
        pg.proc.stderr.close()
        return rc

    def test_sigterm_lets_downloads_and_a_slow_upload_finish_and_refuses_new_clients(self):
        """SIGTERM with a 50 MiB download over HTTP/2, another over HTTP/1.1, and an upload
        still arriving: every transfer completes byte for byte, a new connection is refused at
        once, and the process exits 0 after the last one. Fails if SIGTERM closes
        connections with requests in flight (as before draining existed)."""
        size = 50 * MiB
        pg = self.start("--shutdown-timeout", "60s")
        tmp = tempfile.mkdtemp(prefix="pg-drain-")
        outs = {proto: os.path.join(tmp, proto) for proto in ("h2", "h1")}
        curls = {
            "h2": subprocess.Popen(["curl", "-sS", "--http2-prior-knowledge", "--limit-rate",
                                    "8M", "-o", outs["h2"], pg.url(f"/d2?size={size}")]),
            "h1": subprocess.Popen(["curl", "-sS", "--http1.1", "--limit-rate", "8M", "-o",
                                    outs["h1"], pg.url(f"/d1?size={size}")]),
        }
        upload = socket.create_connection(("127.0.0.1", pg.port), timeout=DEADLINE)
        body = pattern_bytes(1 * MiB)
        upload.sendall(b"POST /up?echo=1 HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n"
                       % len(body) + body[:300000])
        wait_until(lambda: all(file_size(p) > MiB for p in outs.values()), "downloads to start")
        pg.proc.send_signal(signal.SIGTERM)
        pg.log.wait_for(lambda l: "draining" in l)
        wait_until(lambda: connect_refused(pg.port), "the listener to close")
        upload.sendall(body[300000:])  # the rest of the request arrives after SIGTERM
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < len(body):
            chunk = upload.recv(65536)
            if not chunk:
                break
            reply += chunk
        self.assertTrue(reply.startswith(b"HTTP/1.1 200"), reply[:200])
        self.assertEqual(reply.split(b"\r\n\r\n", 1)[1], body)
        upload.close()
        for proto, curl in curls.items():
            self.assertEqual(curl.wait(timeout=DEADLINE), 0, proto)
            with open(outs[proto], "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), pattern_sha256(size),
                                 proto)
        self.assertEqual(self.exit_status(pg), 0, pg.log.text()[-3000:])

    def test_idle_connections_do_not_hold_the_drain(self):
        """Idle HTTP/2 and HTTP/1.1 keep-alive connections are closed at once on SIGTERM (GOAWAY
        for HTTP/2): the process exits long before the shutdown timeout."""
        pg = self.start("--shutdown-timeout", "60s")
        h1 = socket.create_connection(("127.0.0.1", pg.port), timeout=DEADLINE)
        h1.sendall(b"GET /k?size=3 HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertTrue(read_response(h1, 3).startswith(b"HTTP/1.1 200"))
        import h2raw
        h2 = h2raw.RawClient(pg.port)
        h2.read_until(lambda f: f.type == h2raw.SETTINGS)
        start = time.monotonic()
        pg.proc.send_signal(signal.SIGTERM)
        goaway = h2.read_until(lambda f: f.type == h2raw.GOAWAY)
        self.assertIsNotNone(goaway)
        self.assertEqual(h1.recv(4096), b"")  # the keep-alive connection is closed
        self.assertEqual(self.exit_status(pg), 0)
        self.assertLess(time.monotonic() - start, 30)
        h2.close()
        h1.close()

    def test_shutdown_timeout_ends_a_drain_that_would_not_finish(self):
        """A request the upstream never answers keeps the drain going: with
        --shutdown-timeout 1s the process exits 0 at the deadline anyway, not before it."""
        pg = self.start("--shutdown-timeout", "1s")
        c = socket.create_connection(("127.0.0.1", pg.port), timeout=DEADLINE)
        c.sendall(b"GET /held?hold=drain-never HTTP/1.1\r\nHost: a\r\n\r\n")
        self.upstream.wait_for_request(lambda r: "hold=drain-never" in r["target"])
        start = time.monotonic()
        pg.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.exit_status(pg), 0)
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.9, "exited before the shutdown timeout")
        self.assertIn("shutdown timeout", pg.log.text())
        c.close()
        self.upstream.release("drain-never")


def served_certificate(port, alpn="http/1.1"):
    """sha256 of the certificate a new TLS connection to port is shown."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols([alpn])
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def file_certificate(path):
    with open(path) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


class Reload(UpstreamTestCase):
    def test_sighup_gives_new_connections_the_new_certificate_and_keeps_open_ones(self):
        """SIGHUP after the certificate files were replaced: a new connection is shown the new
        certificate, a connection opened before keeps working; a broken new pair is logged
        and the current one kept."""
        d = tempfile.mkdtemp(prefix="pg-reload-")
        old = make_cert(d, "old")
        new = make_cert(d, "new")
        live = (os.path.join(d, "live.crt"), os.path.join(d, "live.key"))
        for src, dst in zip(old, live):
            shutil.copy(src, dst)
        with Pushgate(self.upstream.url, tls=live) as pg:
            self.assertEqual(served_certificate(pg.port), file_certificate(old[0]))
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["http/1.1"])
            kept = ctx.wrap_socket(socket.create_connection(("127.0.0.1", pg.port),
                                                            timeout=DEADLINE),
                                   server_hostname="localhost")
            request = b"GET /r?size=3 HTTP/1.1\r\nHost: a\r\n\r\n"

            def exchange():
                kept.sendall(request)
                reply = b""
                while not (b"\r\n\r\n" in reply and len(reply.split(b"\r\n\r\n", 1)[1]) >= 3):
                    chunk = kept.recv(4096)
                    self.assertTrue(chunk, reply)
                    reply += chunk
                return reply

            self.assertTrue(exchange().startswith(b"HTTP/1.1 200"))
            for src, dst in zip(new, live):
                shutil.copy(src, dst)
            pg.proc.send_signal(signal.SIGHUP)
            pg.log.wait_for(lambda l: "reloaded for new connections" in l)
            self.assertEqual(served_certificate(pg.port), file_certificate(new[0]))
            self.assertEqual(served_certificate(pg.port, "h2"), file_certificate(new[0]))
            self.assertTrue(exchange().startswith(b"HTTP/1.1 200"))  # the open one carries on
            with open(live[0], "w") as f:
                f.write("not a certificate\n")
            pg.proc.send_signal(signal.SIGHUP)
            line = pg.log.wait_for(lambda l: "keeping the current certificate" in l)
            self.assertIn("--tls-cert", line)
            self.assertEqual(served_certificate(pg.port), file_certificate(new[0]))
            kept.close()


class Check(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pg-check-")
        cls.cert, cls.key = make_cert(cls.dir)

    def check(self, *flags):
        return run([PUSHGATE, "--check", *flags])

    def test_good_configurations_are_ok_and_bind_nothing(self):
        """--check prints one line and exits 0; the port it names is not bound (a second
        process can bind it at once)."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        for flags in ([], ["--tls-cert", self.cert, "--tls-key", self.key],
                      ["--metrics-listen", "127.0.0.1:0", "--access-log", "-",
                       "--access-log-format", "json"]):
            p = self.check("-u", "http://127.0.0.1:9", "-l", f"127.0.0.1:{port}", *flags)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, b"pushgate: configuration OK\n")
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))  # fails if --check had bound it

    def test_bad_configurations_are_one_line_and_exit_2(self):
        """A bad flag, an unreadable key, an unresolvable upstream or listen address: exit 2
        and one line that names what is wrong."""
        cases = (
            (["-u", "http://127.0.0.1:9", "--shutdown-timeout", "0"], "--shutdown-timeout"),
            (["-u", "http://127.0.0.1:9", "--tls-cert", self.cert, "--tls-key", "/nonexistent"],
             "--tls-key"),
            (["-u", "http://no-such-host.invalid:80"], "--upstream"),
            (["-u", "http://127.0.0.1:9", "-l", "no-such-host.invalid:80"], "--listen"),
            (["-u", "http://127.0.0.1:9", "--metrics-listen", "nowhere"], "--metrics-listen"),
            (["-u", "http://127.0.0.1:9", "--access-log-format", "xml"], "--access-log-format"),
        )
        for flags, word in cases:
            with self.subTest(word):
                p = self.check(*flags)
                self.assertEqual(p.returncode, 2, p)
                self.assertIn(word.encode(), p.stderr)
                self.assertTrue(p.stderr.startswith(b"pushgate: "), p.stderr)
                self.assertEqual(p.stdout, b"")


if __name__ == "__main__":
    main()
