"""The proxy path against nginx from Debian (a real third-party HTTP/1.1 upstream), driven by
real HTTP/2 clients: curl, nghttp and h2load."""
import hashlib
import os
import subprocess
import sys
import shutil
import tempfile
import unittest

from harness import (Nginx, Pushgate, all_traced, make_cert, require_tool, run, main,
                     strace_counts, wait_until)

BIG = 100 * 1024 * 1024


class AgainstNginx(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pg-proxy-")
        os.chmod(cls.dir, 0o755)
        cls.root = os.path.join(cls.dir, "www")
        os.makedirs(os.path.join(cls.root, "link"))
        with open(os.path.join(cls.root, "small.txt"), "wb") as f:
            f.write(b"hello from nginx\n")
        with open(os.path.join(cls.root, "link", "page.html"), "wb") as f:
            f.write(b"<html>page</html>\n")
        with open(os.path.join(cls.root, "style.css"), "wb") as f:
            f.write(b"body{}\n")
        digest = hashlib.sha256()
        with open(os.path.join(cls.root, "big.bin"), "wb") as f:
            for _ in range(BIG // (1 << 20)):
                block = os.urandom(1 << 20)
                digest.update(block)
                f.write(block)
        cls.big_sha = digest.hexdigest()
        cls.cert, cls.key = make_cert(cls.dir)
        cls.nginx = Nginx(cls.root).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.nginx.__exit__(None, None, None)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_small_get_with_curl_prior_knowledge(self):
        with Pushgate(self.nginx.url) as pg:
            p = run(["curl", "-sS", "--http2-prior-knowledge", "-D", "-", pg.url("/small.txt")])
            self.assertEqual(p.returncode, 0, p.stderr)
            out = p.stdout.decode()
            self.assertTrue(out.startswith("HTTP/2 200"), out)
            self.assertIn("via: 1.1 pushgate", out)
            self.assertTrue(out.endswith("hello from nginx\n"), out)

    def test_tls_alpn_h2_with_curl(self):
        with Pushgate(self.nginx.url, tls=(self.cert, self.key)) as pg:
            p = run(["curl", "-sS", "--http2", "-k", "-o", "/dev/null", "-w",
                     "%{http_version} %{response_code}", pg.url("/small.txt", "https")])
            self.assertEqual(p.stdout.decode(), "2 200", p.stderr)
            old = run(["curl", "-sS", "-k", "--tls-max", "1.1", pg.url("/small.txt", "https")])
            self.assertNotEqual(old.returncode, 0, "TLS 1.1 must be refused")

    def test_tls_policy_refuses_what_rfc_9113_forbids(self):
        """TLS 1.2 with a cipher suite on RFC 9113's block list (no AEAD, no ephemeral key
        exchange) is refused; an allowed TLS 1.2 suite works; renegotiation is refused."""
        with Pushgate(self.nginx.url, tls=(self.cert, self.key)) as pg:
            def s_client(*args, stdin=b""):
                return run(["openssl", "s_client", "-connect", f"127.0.0.1:{pg.port}",
                            "-alpn", "h2", *args], input=stdin)

            def s_client_renegotiating():
                """s_client reads its stdin lazily: 'R' must arrive after the handshake."""
                p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{pg.port}",
                                      "-alpn", "h2", "-tls1_2", "-cipher",
                                      "ECDHE-ECDSA-AES128-GCM-SHA256"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
                out = b""
                while b"Verify return code" not in out:
                    line = p.stdout.readline()
                    if not line:
                        break
                    out += line
                p.stdin.write(b"R\n")
                p.stdin.flush()
                rest, _ = p.communicate(timeout=30)
                return out + rest
            for cipher in ("AES128-SHA", "AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-SHA"):
                p = s_client("-tls1_2", "-cipher", cipher)
                self.assertNotIn(b"Cipher is " + cipher.encode(), p.stdout, cipher)
                self.assertIn(b"handshake failure", p.stdout + p.stderr, cipher)
            ok = s_client("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
            self.assertIn(b"Cipher is ECDHE-ECDSA-AES128-GCM-SHA256", ok.stdout)
            reneg = s_client_renegotiating()
            self.assertIn(b"RENEGOTIATING", reneg)
            self.assertIn(b"no renegotiation", reneg)

    def test_alpn_offering_only_unknown_protocols_is_refused(self):
        """ALPN h2 and http/1.1 are served (test_http1.py); a client offering only protocols
        pushgate does not speak gets no_application_protocol instead of a guess."""
        with Pushgate(self.nginx.url, tls=(self.cert, self.key)) as pg:
            p = run(["openssl", "s_client", "-connect", f"127.0.0.1:{pg.port}", "-alpn",
                     "spdy/3", "-brief"], input=b"")
            self.assertIn(b"no application protocol", p.stdout + p.stderr)

    def test_100_mib_body_checksum_with_nghttp(self):
        with Pushgate(self.nginx.url) as pg:
            p = run(["bash", "-c", f"nghttp {pg.url('/big.bin')} | sha256sum"], timeout=120)
            self.assertEqual(p.stdout.decode().split()[0], self.big_sha)

    def test_head_and_404(self):
        with Pushgate(self.nginx.url) as pg:
            p = run(["curl", "-sS", "--http2-prior-knowledge", "-I", pg.url("/big.bin")])
            out = p.stdout.decode()
            self.assertTrue(out.startswith("HTTP/2 200"), out)
            self.assertIn(f"content-length: {BIG}", out)
            p = run(["curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-w",
                     "%{response_code}", pg.url("/missing")])
            self.assertEqual(p.stdout.decode(), "404")

    def test_304_has_no_body(self):
        with Pushgate(self.nginx.url) as pg:
            first = run(["curl", "-sS", "--http2-prior-knowledge", "-D", "-", "-o", "/dev/null",
                         pg.url("/small.txt")]).stdout.decode()
            etag = [l.split(": ", 1)[1].strip() for l in first.splitlines()
                    if l.startswith("etag:")][0]
            p = run(["nghttp", "-nv", "-H", f"if-none-match: {etag}", pg.url("/small.txt")])
            out = p.stdout.decode()
            self.assertIn(":status: 304", out)
            self.assertNotIn("recv DATA frame", out)

    def test_200_concurrent_streams_on_one_connection(self):
        with Pushgate(self.nginx.url, "--max-concurrent-streams", "256") as pg:
            p = run(["h2load", "-n", "200", "-c", "1", "-m", "200", pg.url("/small.txt")])
            out = p.stdout.decode()
            self.assertIn("200 succeeded, 0 failed, 0 errored", out)
            self.assertIn("status codes: 200 2xx", out)

    def test_upstream_connections_are_reused(self):
        with Pushgate(self.nginx.url) as pg:
            p = run(["h2load", "-n", "400", "-c", "4", "-m", "10", pg.url("/small.txt")])
            self.assertIn("400 succeeded", p.stdout.decode())
            # nginx stub_status is not in nginx-light; count ESTABLISHED sockets instead.
            ss = run(["ss", "-tn", "state", "established", f"( dport = :{self.nginx.port} )"])
            conns = len(ss.stdout.decode().splitlines()) - 1
            self.assertLessEqual(conns, 40, "upstream connections are pooled, not per request")

    def strace_during(self, pg, options, load):
        """Runs load() with `strace -f OPTIONS` attached to every pushgate thread; returns the
        path of strace's output."""
        require_tool(self, "strace", "strace")
        if run(["strace", "-f", "-o", os.devnull, "true"]).returncode != 0:
            self.skipTest("this environment does not allow ptrace")
        out = os.path.join(self.root, "strace.txt")
        tracer = subprocess.Popen(["strace", "-f", *options, "-o", out, "-p", str(pg.proc.pid)],
                                  stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: all_traced(pg.proc.pid), "strace attached to every thread")
            load()
        finally:
            tracer.send_signal(2)
            tracer.wait(timeout=30)
        return out

    def client_writes(self, pg, load):
        """The write-family calls pushgate made on its client sockets while load() ran, as
        strace lines (-yy names each socket's addresses: the client side's local port is
        pushgate's; the upstream's sends are left out)."""
        out = self.strace_during(pg, ["-yy", "-qq", "-e", "signal=none", "-e",
                                      "trace=write,writev,send,sendto,sendmsg"], load)
        local = f"127.0.0.1:{pg.port}->"
        with open(out, errors="replace") as f:
            return [line for line in f if local in line.split(",", 1)[0]]

    def test_small_responses_share_tls_records(self):
        # Each output chain becomes its own SSL_write, record and send(2): a response whose DATA
        # sat in a chain of its own cost two writes instead of a share of one.
        with Pushgate(self.nginx.url, "--max-concurrent-streams", "256",
                      tls=(self.cert, self.key)) as pg:
            run(["h2load", "-n", "1", pg.url("/small.txt", "https")])  # handshake path warmed

            def load():
                p = run(["h2load", "-n", "200", "-c", "1", "-m", "200",
                         pg.url("/small.txt", "https")])
                self.assertIn("200 succeeded", p.stdout.decode())
            writes = self.client_writes(pg, load)
            self.assertGreater(len(writes), 0, "strace saw the client socket")
            self.assertLess(len(writes), 100, f"{len(writes)} writes for 200 responses")

    def test_large_body_goes_out_in_full_records_sent_together(self):
        # A DATA frame is one 16 KiB TLS record: a full-size frame used to spill its last 9
        # bytes into a second record and write, about 112 writes per MiB instead of 65. The
        # records of one flush go with MSG_MORE but its last, so the kernel transmits (and
        # wakes the client) once per flush, not once per record.
        mib = 8
        with open(os.path.join(self.root, "eight.bin"), "wb") as f:
            f.write(os.urandom(mib << 20))
        with Pushgate(self.nginx.url, tls=(self.cert, self.key)) as pg:
            def load():
                p = run(["curl", "-sS", "--http2", "-k", "-o", "/dev/null", "-w",
                         "%{size_download}", pg.url("/eight.bin", "https")])
                self.assertEqual(p.stdout.decode(), str(mib << 20), p.stderr)
            writes = self.client_writes(pg, load)
            self.assertGreater(len(writes), 0, "strace saw the client socket")
            self.assertLess(len(writes), 85 * mib, f"{len(writes)} writes for {mib} MiB")
            more = sum("MSG_MORE" in w for w in writes)
            # a 64 KiB upstream read makes four records: three of them wait for the fourth
            self.assertGreater(more, len(writes) // 2,
                               f"{more} of {len(writes)} writes had MSG_MORE")

    def syscalls_during(self, pg, load, names):
        """{name: calls} of the named syscalls of every pushgate thread while load() ran."""
        return strace_counts(self.strace_during(pg, ["-c", "-e", "trace=" + ",".join(names)],
                                                load))

    def test_steady_state_requests_register_no_events(self):
        # The client side writes in the flush that made the response (no EPOLLOUT round trip),
        # and an upstream connection back in libcurl's pool keeps its read event, so a request
        # on warm connections costs no epoll_ctl at all, and libcurl's polls are answered.
        with Pushgate(self.nginx.url, tls=(self.cert, self.key)) as pg:
            url = pg.url("/small.txt", "https")
            warm = run(["h2load", "-n", "200", "-c", "4", "-m", "4", url])  # pools filled
            self.assertIn("200 succeeded", warm.stdout.decode())
            def load():
                p = run(["h2load", "-n", "2000", "-c", "4", "-m", "4", url])
                self.assertIn("2000 succeeded", p.stdout.decode())
            counts = self.syscalls_during(pg, load, ["epoll_ctl", "epoll_wait", "poll"])
            self.assertGreater(counts.get("epoll_wait", 0), 0, "strace saw the worker")
            self.assertLess(counts.get("epoll_ctl", 0), 100, f"{counts} for 2000 requests")
            # libcurl's zero-timeout readiness and liveness polls are answered from the
            # event loop's state (upstream.c): about 2 per request before
            self.assertLess(counts.get("poll", 0), 400, f"{counts} for 2000 requests")
            print(f"syscalls for 2000 requests: {counts}", file=sys.stderr)


if __name__ == "__main__":
    main()
