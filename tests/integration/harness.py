"""Shared helpers for the integration tests: start real processes on loopback and wait for
events they announce (a line on a pipe, a port accepting), never for fixed sleeps.

Environment (set by meson): PUSHGATE (binary), PG_SOURCE_ROOT, PG_BUILD_ROOT.
"""
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SOURCE_ROOT = os.environ.get("PG_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_ROOT = os.environ.get("PG_BUILD_ROOT", os.path.join(SOURCE_ROOT, "build"))
PUSHGATE = os.environ.get("PUSHGATE", os.path.join(BUILD_ROOT, "pushgate"))
H2CLIENT = os.path.join(BUILD_ROOT, "tests", "h2client")
TEST_UPSTREAM = os.path.join(SOURCE_ROOT, "tests", "tools", "test_upstream.py")
SANITIZED = os.environ.get("PG_SANITIZED") == "1"
DEADLINE = 60.0  # seconds any single wait may take before the test fails


def pattern_bytes(size):
    """The body the test upstream and h2client generate: bytes 0..255 repeating."""
    block = bytes(range(256)) * 4096
    out = bytearray()
    while len(out) < size:
        out += block[: size - len(out)]
    return bytes(out)


def pattern_sha256(size):
    h = hashlib.sha256()
    block = bytes(range(256)) * 4096
    left = size
    while left > 0:
        chunk = block[: min(left, len(block))]
        h.update(chunk)
        left -= len(chunk)
    return h.hexdigest()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc=None, deadline=DEADLINE):
    """Polls until something accepts on port (bounded); fails if proc dies first."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on port {port}")


def require_tool(test, name, package):
    """Skips test when the program name is missing, except in CI (CI=true), where a missing
    tool means deploy/dev.sh failed to install it: that fails loudly instead."""
    if shutil.which(name):
        return
    reason = f"{name} is not installed (Debian package {package}; deploy/dev.sh installs it)"
    if os.environ.get("CI") == "true":
        test.fail(reason)
    test.skipTest(reason)


def all_traced(pid):
    """Every thread of process pid has a tracer (strace attached to all of them)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/status") as f:
            if any(line.startswith("TracerPid:\t0") for line in f):
                return False
    return True


def strace_counts(path):
    """{syscall: calls} from the summary `strace -c -o path` wrote."""
    counts = {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 5 and fields[3].isdigit() and fields[-1] != "total":
                counts[fields[-1]] = int(fields[3])
    return counts


def wait_until(predicate, what, deadline=DEADLINE):
    """Polls predicate (bounded) until it returns something true, and returns that."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class LineReader:
    """Drains a pipe on a thread; lets a test wait for a line matching a predicate."""

    def __init__(self, pipe):
        self.lines = []
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self.thread.start()

    def _run(self, pipe):
        for raw in iter(pipe.readline, b""):
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait_for(self, predicate, deadline=DEADLINE):
        end = time.monotonic() + deadline
        seen = 0
        with self.cond:
            while True:
                for line in self.lines[seen:]:
                    if predicate(line):
                        return line
                seen = len(self.lines)
                left = end - time.monotonic()
                if self.closed or left <= 0:
                    raise TimeoutError("line not seen; got:\n" + "\n".join(self.lines[-30:]))
                self.cond.wait(left)

    def text(self):
        with self.cond:
            return "\n".join(self.lines)


class Pushgate:
    """Runs the proxy on a kernel-chosen loopback port, read back from its log."""

    def __init__(self, upstream, *extra, tls=None, listen="127.0.0.1:0"):
        self.args = [PUSHGATE, "-l", listen, "--log-level", "info"]
        if upstream:
            self.args += ["-u", upstream]
        if tls:
            self.args += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        self.args += list(extra)
        if "--shutdown-timeout" not in extra:
            # A test that ends with a client still holding a response open (one that stopped
            # reading, a held upstream) must not wait out the 30 s default drain.
            self.args += ["--shutdown-timeout", "5s"]
        self.proc = None

    def __enter__(self):
        env = dict(os.environ)
        if SANITIZED:
            # ASan parks freed memory in a 256 MiB quarantine by default, which would make the
            # RSS bounds measure the sanitizer rather than pushgate; a small one still catches
            # use-after-free of recently freed buffers.
            env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=8"
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.log = LineReader(self.proc.stderr)
        line = self.log.wait_for(lambda l: "listening on" in l or "pushgate:" in l)
        if "listening on" not in line:
            raise RuntimeError("pushgate failed to start: " + self.log.text())
        self.port = int(line.split("listening on ")[1].split(" ")[0].rsplit(":", 1)[1])
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        """SIGTERM, then the exit status must be 0: sanitizer reports make it non-zero."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("pushgate did not stop on SIGTERM")
        self.log.thread.join(5)
        self.proc.stderr.close()
        if self.proc.returncode != 0:
            raise AssertionError(f"pushgate exited with {self.proc.returncode}:\n" +
                                 self.log.text()[-4000:])

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def url(self, path="/", scheme="http"):
        return f"{scheme}://127.0.0.1:{self.port}{path}"


class Nginx:
    """Debian's nginx as a real third-party HTTP/1.1 upstream serving a directory."""

    def __init__(self, root):
        self.root = root
        self.port = free_port()

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="pg-nginx-")
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""
daemon off;
master_process off;
worker_processes 1;
error_log {self.dir}/error.log warn;
pid {self.dir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {self.dir}/body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    keepalive_requests 100000;
    sendfile on;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.root};
        location /link/ {{
            add_header Link "</style.css>; rel=preload; as=style";
        }}
    }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-c", conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc)
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=DEADLINE)
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"


class TestUpstream:
    """The project's scriptable upstream (tests/tools/test_upstream.py)."""

    def __init__(self, port=0):
        self.dir = tempfile.mkdtemp(prefix="pg-upstream-")
        self.log_path = os.path.join(self.dir, "requests.jsonl")
        self.requested_port = port

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, TEST_UPSTREAM, "--port",
                                      str(self.requested_port),
                                      "--log", self.log_path],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = LineReader(self.proc.stdout)
        self.err = LineReader(self.proc.stderr)
        line = self.out.wait_for(lambda l: l.startswith("LISTENING "))
        self.port = int(line.split()[1])
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=DEADLINE)
        for reader, pipe in ((self.out, self.proc.stdout), (self.err, self.proc.stderr)):
            reader.thread.join(5)
            pipe.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def requests(self):
        """Every logged request so far."""
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def wait_for_request(self, predicate, deadline=DEADLINE):
        """Waits for a log entry; the upstream appends each one as the request completes."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            for r in self.requests():
                if predicate(r):
                    return r
            time.sleep(0.02)
        raise TimeoutError("request not logged: " + json.dumps(self.requests())[-2000:])

    def control(self, path, **params):
        """Calls one of the upstream's control paths (/_stats, /_release, /_links)."""
        import urllib.parse
        import urllib.request
        query = urllib.parse.urlencode(params, doseq=True)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as r:
            return json.loads(r.read())

    def stats(self):
        return self.control("/_stats")

    def release(self, name):
        """Lets one request held with hold=NAME answer (now, or when it arrives)."""
        self.control("/_release", name=name)

    def set_links(self, name, *links):
        """Sets the Link fields a request with links_from=NAME gets."""
        self.control("/_links", name=name, link=list(links))


class UpstreamTestCase(unittest.TestCase):
    """A test class sharing one scriptable upstream; proxy() starts pushgate in front of it."""

    @classmethod
    def setUpClass(cls):
        cls.upstream = TestUpstream().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.upstream.__exit__(None, None, None)

    def proxy(self, *extra):
        return Pushgate(self.upstream.url, *extra)


def make_cert(directory, name="server"):
    """A self-signed ECDSA P-256 certificate for localhost, made at test time."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def run(cmd, timeout=DEADLINE, **kw):
    return subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)


class H2ClientRun:
    """h2client as a running process whose events a test reads as they happen."""

    def __init__(self, *args, timeout=DEADLINE):
        self.proc = subprocess.Popen([H2CLIENT, "--timeout", str(int(timeout)), *map(str, args)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        self.lines = LineReader(self.proc.stdout)
        self.events = []

    def wait_event(self, predicate):
        line = self.lines.wait_for(lambda l: l.startswith("{") and predicate(json.loads(l)))
        return json.loads(line)

    def finish(self):
        """Waits for the exit; returns (exit code, every event)."""
        rc = self.proc.wait(timeout=DEADLINE)
        self.lines.thread.join(5)
        self.proc.stdout.close()
        return rc, [json.loads(l) for l in self.lines.lines if l.startswith("{")]


def h2client(*args, stdin=None, timeout=DEADLINE):
    """Runs the libnghttp2 test client; returns (exit code, list of events)."""
    proc = run([H2CLIENT, "--timeout", str(int(timeout)), *map(str, args)], timeout=timeout + 10,
               input=stdin)
    events = [json.loads(l) for l in proc.stdout.decode().splitlines() if l.startswith("{")]
    return proc.returncode, events


def main():
    unittest.main(verbosity=2)
