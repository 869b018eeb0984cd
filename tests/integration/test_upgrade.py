"""Zero-loss restarts: SIGUSR2 (the binary starts again on the same listening sockets and the
old process drains), socket activation through LISTEN_FDS, and what systemd is told
(sd_notify READY, RELOADING, STOPPING, MAINPID) on a test NOTIFY_SOCKET.
"""
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (DEADLINE, PUSHGATE, LineReader, Pushgate, UpstreamTestCase, h2client,
                     wait_until, main)

REFUSED_STREAM = 7



def process_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:  # a zombie of another parent counts as gone
        return f.read().split(")")[-1].split()[0] == "Z"


def new_pid(line):
    return int(line.split("upgraded: pid ")[1].split()[0])


class BrowserLikeH2:
    """Batches of requests on a fresh HTTP/2 connection each; after a GOAWAY, only the requests
    it marked unprocessed (refused above its last stream id, or never sent) are sent again on a
    new connection, as browsers do."""

    def __init__(self, port, name):
        self.port, self.name = port, name
        self.done, self.retried, self.errors = [], 0, []

    def run(self, stop):
        n = 0
        while not stop.is_set():
            pending = [f"/u?tag={self.name}-{n + i}-&delay_ms=5" for i in range(12)]
            n += 12
            while pending:
                rc, ev = h2client("--concurrency", 4, "127.0.0.1", self.port, *pending)
                retry = []
                for e in ev:
                    if e["ev"] == "not_sent" or (e["ev"] == "close" and
                                                 e["error_code"] == REFUSED_STREAM):
                        retry.append(e["path"])
                    elif e["ev"] == "close" and (e["error_code"], e["status"]) == (0, 200):
                        self.done.append(e["path"])
                    elif e["ev"] in ("close", "error", "lib_error", "rst_recv"):
                        self.errors.append(e)
                if rc != 0:
                    self.errors.append({"rc": rc, "events": ev[-3:]})
                    return
                self.retried += len(retry)
                pending = retry


class KeepAliveH1:
    """One HTTP/1.1 keep-alive connection at a time; a request that got no byte of answer
    because the server closed the idle connection is sent again on a new one."""

    def __init__(self, port):
        self.port = port
        self.done, self.retried, self.errors = [], 0, []

    def one(self, sock, path):
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None if not data else data
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            body += chunk
        return head

    def run(self, stop):
        sock, n = None, 0
        while not stop.is_set():
            path = f"/u?tag=h1-{n}-&size=3"
            n += 1
            while True:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)
                try:
                    head = self.one(sock, path)
                except OSError as e:  # a reset or a refused connection: never acceptable
                    self.errors.append(repr(e))
                    return
                if head is None:  # closed before answering: it was never read
                    sock.close()
                    sock = None
                    self.retried += 1
                    continue
                if not head.startswith(b"HTTP/1.1 200"):
                    self.errors.append(head[:100])
                    return
                self.done.append(path)
                if b"connection: close" in head.lower():
                    sock.close()
                    sock = None
                break
        if sock:
            sock.close()


class Upgrade(UpstreamTestCase):
    def test_two_upgrades_under_load_lose_nothing_and_repeat_nothing(self):
        """For about ten seconds three browser-like HTTP/2 clients and an HTTP/1.1 keep-alive loop
        send requests while SIGUSR2 is sent twice: every request succeeds, none that the proxy
        had accepted is sent twice (the upstream sees each once), no connection is refused or
        reset, and a new pid serves after each upgrade while the old one drains and exits."""
        pg = Pushgate(self.upstream.url, "--workers", "2").__enter__()
        pids = [pg.proc.pid]
        self.addCleanup(self.stop_all, pg, pids)
        clients = [BrowserLikeH2(pg.port, f"h2c{k}") for k in range(3)] + [KeepAliveH1(pg.port)]
        stop = threading.Event()
        threads = [threading.Thread(target=c.run, args=(stop,)) for c in clients]
        for t in threads:
            t.start()
        try:
            for round_ in range(2):
                wait_until(lambda: sum(len(c.done) for c in clients) >= 100 * (round_ + 1),
                           "requests to flow")
                stop.wait(3)  # pacing: the load runs for about ten seconds in all
                os.kill(pids[-1], signal.SIGUSR2)
                line = pg.log.wait_for(lambda l: "upgraded: pid " in l and
                                       new_pid(l) not in pids)
                pids.append(new_pid(line))
            stop.wait(3)
            wait_until(lambda: sum(len(c.done) for c in clients) >= 300, "requests after")
        finally:
            stop.set()
            for t in threads:
                t.join(DEADLINE)
        for c in clients:
            self.assertEqual(c.errors, [], type(c).__name__)
        self.assertEqual(len(set(pids)), 3, pids)
        self.assertEqual(pg.proc.wait(timeout=DEADLINE), 0)  # the first one drained
        wait_until(lambda: process_gone(pids[1]), "the second process to exit")
        sent = [p for c in clients for p in c.done]
        self.assertEqual(len(sent), len(set(sent)))
        seen = {}
        for r in self.upstream.requests():
            m = re.search(r"tag=((?:h2c\d|h1)-\d+-)", r["target"])
            if m:
                seen[m.group(1)] = seen.get(m.group(1), 0) + 1
        tags = [re.search(r"tag=([^&]+)", p).group(1) for p in sent]
        self.assertEqual([t for t in tags if seen.get(t) != 1], [],
                         "every answered request reached the upstream exactly once")
        self.assertEqual([t for t, k in seen.items() if k > 1], [], "nothing accepted twice")

    def stop_all(self, pg, pids):
        for pid in pids[1:]:
            if not process_gone(pid):
                os.kill(pid, signal.SIGTERM)
        for pid in pids[1:]:
            wait_until(lambda: process_gone(pid), f"pid {pid} to exit")
        if pg.proc.poll() is None:
            pg.proc.kill()
        pg.proc.wait()
        pg.log.thread.join(5)
        pg.proc.stderr.close()


class Systemd(UpstreamTestCase):
    def notify_socket(self):
        d = tempfile.mkdtemp(prefix="pg-notify-")
        path = os.path.join(d, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(DEADLINE)
        self.addCleanup(sock.close)
        return sock, path

    def start_notified(self):
        """pushgate started with NOTIFY_SOCKET on a datagram socket the test reads."""
        sock, path = self.notify_socket()
        env = dict(os.environ, NOTIFY_SOCKET=path)
        proc = subprocess.Popen([PUSHGATE, "-u", self.upstream.url, "-l", "127.0.0.1:0"],
                                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        return sock, proc, LineReader(proc.stderr)

    @staticmethod
    def stop(proc, log):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.thread.join(5)
        proc.stderr.close()

    def test_sd_notify_ready_reloading_stopping(self):
        """With NOTIFY_SOCKET set, pushgate sends READY=1 once listening, RELOADING=1 and
        READY=1 around SIGHUP, and STOPPING=1 when SIGTERM starts the drain."""
        sock, proc, log = self.start_notified()
        try:
            self.assertEqual(sock.recv(4096), b"READY=1")
            log.wait_for(lambda l: "listening on" in l)
            proc.send_signal(signal.SIGHUP)
            self.assertEqual(sock.recv(4096), b"RELOADING=1")
            self.assertEqual(sock.recv(4096), b"READY=1")
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(sock.recv(4096), b"STOPPING=1")
            self.assertEqual(proc.wait(timeout=DEADLINE), 0)
        finally:
            self.stop(proc, log)

    def test_sd_notify_mainpid_after_an_upgrade(self):
        """SIGUSR2 under systemd: once the new process serves, systemd is told its pid
        (MAINPID=, with READY=1) before the old process drains; the new one reports its own
        STOPPING=1 when it is stopped in turn."""
        sock, proc, log = self.start_notified()
        child = None
        try:
            self.assertEqual(sock.recv(4096), b"READY=1")
            proc.send_signal(signal.SIGUSR2)
            line = log.wait_for(lambda l: "upgraded: pid " in l)
            child = new_pid(line)
            self.assertEqual(sock.recv(4096), f"MAINPID={child}\nREADY=1".encode())
            self.assertEqual(proc.wait(timeout=DEADLINE), 0)  # the old one drained
            os.kill(child, signal.SIGTERM)
            self.assertEqual(sock.recv(4096), b"STOPPING=1")
            wait_until(lambda: process_gone(child), "the new process to exit")
        finally:
            if child and not process_gone(child):
                os.kill(child, signal.SIGKILL)
            self.stop(proc, log)

    def test_socket_activation_serves_on_the_inherited_socket(self):
        """Started as systemd starts a socket-activated service (LISTEN_FDS=1, LISTEN_PID, the
        listening socket as descriptor 3), pushgate binds nothing and serves on that socket,
        queued connections included."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        early = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)  # queued now
        fd = listener.fileno()
        script = ("import os, sys\n"
                  f"os.dup2({fd}, 3)\n"
                  "os.environ['LISTEN_FDS'] = '1'\n"
                  "os.environ['LISTEN_PID'] = str(os.getpid())\n"
                  "os.execv(sys.argv[1], sys.argv[1:])\n")
        proc = subprocess.Popen(["python3", "-c", script, PUSHGATE, "-u", self.upstream.url,
                                 "-l", "127.0.0.1:1", "--workers", "2"],
                                pass_fds=(fd,), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        listener.close()
        log = LineReader(proc.stderr)
        try:
            line = log.wait_for(lambda l: "listening on" in l)
            self.assertIn(f"127.0.0.1:{port}", line)  # not the --listen address
            early.sendall(b"GET /sa?size=4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            self.assertTrue(early.recv(4096).startswith(b"HTTP/1.1 200"))
            rc, ev = h2client("127.0.0.1", port, "/sa2?size=5")
            self.assertEqual(rc, 0)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=DEADLINE), 0)
        finally:
            early.close()
            self.stop(proc, log)


if __name__ == "__main__":
    main()
