"""The binary's command line: help, version, and one clear line + exit 2 for every bad input."""
import os
import shutil
import tempfile
import unittest

from harness import PUSHGATE, Pushgate, make_cert, run, main


class CommandLine(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pg-cli-")
        cls.cert, cls.key = make_cert(cls.dir)
        cls.other_cert, cls.other_key = make_cert(cls.dir, "other")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def assert_usage_error(self, args, words):
        p = run([PUSHGATE, *args])
        self.assertEqual(p.returncode, 2, p.stderr)
        first = p.stderr.decode().splitlines()[0]
        self.assertTrue(first.startswith("pushgate: "), first)
        self.assertIn(words, first)

    def test_help_reads_like_a_manual(self):
        p = run([PUSHGATE, "--help"])
        self.assertEqual(p.returncode, 0)
        out = p.stdout.decode()
        for section in ("NAME", "SYNOPSIS", "OPTIONS", "EXIT STATUS"):
            self.assertIn(section, out)
        for flag in ("--listen", "--tls-cert", "--tls-key", "--upstream", "--workers",
                     "--upstream-connect-timeout", "--upstream-timeout",
                     "--max-concurrent-streams", "--log-level", "--no-push"):
            self.assertIn(flag, out)

    def test_version(self):
        p = run([PUSHGATE, "--version"])
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout.decode(), r"^pushgate \d+\.\d+\.\d+")

    def test_bad_flags(self):
        self.assert_usage_error(["--bogus"], "unknown option '--bogus'")
        self.assert_usage_error([], "no upstream")
        self.assert_usage_error(["-u", "ftp://x"], "only http://")
        self.assert_usage_error(["-u", "http://a:1/x"], "no path")
        self.assert_usage_error(["-u", "http://a:1", "--workers", "zero"], "--workers 'zero'")
        self.assert_usage_error(["-u", "http://a:1", "-l", "nowhere"], "--listen 'nowhere'")
        self.assert_usage_error(["-u", "http://a:1", "--tls-cert", self.cert], "together")

    def test_unreadable_certificate(self):
        missing = os.path.join(self.dir, "missing.crt")
        self.assert_usage_error(["-u", "http://a:1", "--tls-cert", missing, "--tls-key",
                                 self.key], "cannot read")

    def test_not_a_certificate(self):
        self.assert_usage_error(["-u", "http://a:1", "--tls-cert", self.key, "--tls-key",
                                 self.key], "--tls-cert")

    def test_key_does_not_match(self):
        self.assert_usage_error(["-u", "http://a:1", "--tls-cert", self.cert, "--tls-key",
                                 self.other_key], "does not match")

    def test_address_in_use(self):
        with Pushgate("http://127.0.0.1:9") as pg:
            self.assert_usage_error(["-u", "http://a:1", "-l", f"127.0.0.1:{pg.port}",
                                     "--workers", "1"], "Address already in use")

    def test_restart_on_the_same_port_right_after_a_shutdown(self):
        """The "address in use" probe must not mistake our own TIME_WAIT sockets for a
        running program: a restart follows a shutdown at once."""
        import socket
        import h2raw
        with Pushgate("http://127.0.0.1:9") as pg:
            port = pg.port
            c = h2raw.RawClient(port)
            c.read_until(lambda f: f.type == h2raw.SETTINGS)
        c.wait_closed()  # the server closed first: its side is in TIME_WAIT
        c.close()
        with Pushgate("http://127.0.0.1:9", listen=f"127.0.0.1:{port}") as again:
            self.assertEqual(again.port, port)
            socket.create_connection(("127.0.0.1", port), timeout=10).close()

    def test_clean_shutdown_with_workers_and_ipv6(self):
        with Pushgate("http://127.0.0.1:9", "--workers", "3", "-l", "[::1]:0") as pg:
            self.assertGreater(pg.port, 0)


if __name__ == "__main__":
    main()
