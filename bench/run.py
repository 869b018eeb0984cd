"""Benchmark pushgate against other HTTP/2 reverse proxies on this one machine, in one run.

    python3 bench/run.py [--quick] [--rounds N] [--out bench/results.json]

Every system runs with one worker/thread, TLS 1.3 and the same ECDSA P-256 certificate (made on
the spot with openssl), in front of the same upstream with keep-alive:

  upstream   nginx (1 worker) serving static files from a temp dir, HTTP/1.1 keep-alive
  pushgate   build/pushgate --workers 1
  nghttpx    nghttpx --workers=1
  h2o        h2o, num-threads: 1
  haproxy    haproxy, nbthread 1, http-reuse always (never pushes)
  nginx      a second nginx as HTTP/2 proxy, upstream keepalive pool, http2_push_preload on
  direct     h2load --h1 straight to the upstream nginx: the floor, not a peer

Measures (h2load for load, /proc for CPU and memory):
  1. small responses (1 KiB): requests/s, latency mean/p50/p99 at -c 32 -m 10 after a warm-up
     (measure "small"); and over HTTP/1.1 (TLS, ALPN http/1.1; direct in cleartext), h2load
     --h1 -c 32 -m 1 (one request at a time per connection, no pipelining): requests/s, p99
     and CPU per request (measure "small_h1")
  2. large responses (1 MiB): MiB/s of body at -c 4 -m 1, and at -c 32 -m 10 (320 in flight,
     a count of requests rather than a duration: 320 to warm up, then 3200; MiB/s, CPU and
     that load's own peak PSS; measure "large_many")
  3. CPU time (utime+stime of the system's whole process group) per request, and peak PSS
     (smaps_rollup, summed over the group, sampled every 100 ms during the load)
  4. PSS growth per idle TLS HTTP/2 connection (bench/idle.py holds them open; measure
     "idle"), and per idle TLS HTTP/1.1 keep-alive connection after one GET of the 1 KiB file
     (idle.py --http1, on a second fresh instance of the system; measure "idle_h1"). The
     baseline is read after a warm-up (idle.warm_up: as many connections as are opened at once,
     each doing the same, then closed), so one-time setup (TLS library tables, upstream pools,
     allocator pages) is not charged to every connection; "cold" columns charge it.
  5. the push page (bench/push_upstream.py): time until the page and its 20 assets have all
     arrived, with `nghttp -a` with and without push, through bench/relay.py (100 ms RTT,
     optionally 20 Mbit/s), upstream think time 0 and 200 ms; only systems that push

Every system is started afresh for each round (idle h2 connections are measured first, on the
fresh process, then the loads; 320 large responses on a second fresh process, idle HTTP/1.1
connections on a third); pushgate
runs from a copy of build/pushgate taken at start, so a rebuild during the run changes nothing.
Every TLS port serves h2 and http/1.1 (HAProxy's bind lists both in its alpn). Rounds interleave
the systems (the order rotates every round) and the tables show medians.
Ratios compare each system with the best peer of that column (best system other than pushgate
and the direct floor). Every raw number and command line goes to the JSON file; paths of the
temporary directory and of the repository are written as <tmp> and <repo>.

Exit status: 0 when every system started and answered 200 everywhere (numbers never fail the
run), 1 on a real error (one line says which), 130 when interrupted. All started processes are
killed (by process group) on every exit path.
"""
import argparse
import asyncio
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
import idle  # noqa: E402  (bench/idle.py)

PUSHGATE = os.path.join(ROOT, "build", "pushgate")
CLK_TCK = os.sysconf("SC_CLK_TCK")
TLS13_CIPHER = "TLS_AES_128_GCM_SHA256"  # one suite for every system, so TLS costs the same
SMALL_SIZE, LARGE_SIZE = 1024, 1024 * 1024
SMALL_LOAD = dict(clients=32, streams=10)
# HTTP/1.1 over TLS (ALPN http/1.1): with --h1, h2load's -m is the pipelining depth, so 1.
SMALL_H1_LOAD = dict(SMALL_LOAD, streams=1, h1=True)
LARGE_LOAD = dict(clients=4, streams=1)
LARGE_MANY_LOAD = dict(clients=32, streams=10)  # 320 large responses in flight at once
RTT_MS, RATE_MBIT = 100, 20
# nghttp's default windows are 64 KiB, which would cap every system at 64 KiB per RTT; browsers
# open MiBs, so the push-page client does too (stream 2^22-1, connection 2^24-1).
NGHTTP_WINDOWS = ["-w", "22", "-W", "24"]
# One :authority for every page load, direct or through either relay: pushgate learns links per
# (authority, path), and a real site has one name whatever the path to it.
NGHTTP_AUTHORITY = ["-H", ":authority: localhost"]

PROFILES = {
    "full": dict(rounds=3, small_warmup="1s", small_duration="5s", large_warmup="1s",
                 large_duration="3s", many_warmup=320, many_requests=3200, idle_conns=1000,
                 push_caps=(0, RATE_MBIT), push_reps=1),
    "quick": dict(rounds=1, small_warmup="300ms", small_duration="1500ms", large_warmup="200ms",
                  large_duration="1s", many_warmup=320, many_requests=640, idle_conns=200,
                  push_caps=(0, RATE_MBIT), push_reps=1),
}
PROXIES = ["pushgate", "nghttpx", "h2o", "haproxy", "nginx"]
LOAD_SYSTEMS = PROXIES + ["direct"]
PUSHERS = ["pushgate", "nghttpx", "h2o", "nginx"]
NOT_PEERS = ("pushgate", "direct")


class BenchError(Exception):
    """A real failure: a system that does not start, a response that is not 200."""


# ---------------------------------------------------------------------------------------------
# /proc: CPU time and PSS of a process group


def group_pids(pgid):
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after "(comm)": state, ppid, pgrp, ...
            pids.append(int(entry))
    return pids


def group_cpu_seconds(pgid):
    """utime + stime of every live process in the group (and of its reaped children)."""
    total = 0
    for pid in group_pids(pgid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime stime cutime cstime are fields 14..17 of stat, 12..15 after "(comm)"
        total += sum(int(x) for x in fields[11:15])
    return total / CLK_TCK


def group_pss_kib(pgid):
    total = 0
    for pid in group_pids(pgid):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


class PssSampler:
    """Samples a group's PSS on a thread; `stop()` returns the peak in KiB."""

    def __init__(self, pgid, interval=0.1):
        self.pgid, self.interval = pgid, interval
        self.peak = group_pss_kib(pgid)
        self.samples = 1
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.wait(self.interval):
            self.peak = max(self.peak, group_pss_kib(self.pgid))
            self.samples += 1

    def stop(self):
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, group_pss_kib(self.pgid))
        return self.peak


# ---------------------------------------------------------------------------------------------
# processes


def read_text(path):
    with open(path) as f:
        return f.read()


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def loadavg():
    return read_text("/proc/loadavg").split()[:3]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """A process started in its own session (process group), logging to a file."""

    live = []

    def __init__(self, name, cmd, workdir, port=None, ready_line=None):
        self.name, self.cmd, self.workdir = name, cmd, workdir
        self.port, self.ready_line = port, ready_line
        self.log_path = os.path.join(workdir, name.replace(" ", "_") + ".log")
        self.proc = None

    @property
    def pgid(self):
        return self.proc.pid

    def start(self, deadline=20.0):
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(self.cmd, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        except OSError as e:
            raise BenchError(f"{self.name}: cannot run {self.cmd[0]}: {e}") from e
        finally:
            log.close()
        Service.live.append(self)
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with status {self.proc.returncode} "
                                 f"before it was ready:\n{self.log_tail()}")
            if self.ready_line is not None:
                match = re.search(self.ready_line, self.log_text())
                if match:
                    if match.groups():
                        self.port = int(match.group(1))
                    return self
            else:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return self
                except OSError:
                    pass
            time.sleep(0.02)
        raise BenchError(f"{self.name} not ready after {deadline:.0f}s:\n{self.log_tail()}")

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=15):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self):
        """SIGTERM to the whole group, SIGKILL after 5 s; never raises."""
        if self in Service.live:
            Service.live.remove(self)
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.pgid, sig)
            except ProcessLookupError:
                break
            end = time.monotonic() + wait
            while time.monotonic() < end and (self.proc.poll() is None or group_pids(self.pgid)):
                time.sleep(0.02)
            if self.proc.poll() is not None and not group_pids(self.pgid):
                break
        self.proc.poll()

    @classmethod
    def stop_all(cls):
        for service in list(cls.live):
            service.stop()


# ---------------------------------------------------------------------------------------------
# configurations


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def nginx_common(d, workers=1):
    """Lines every nginx instance needs to live in its own prefix, in the foreground (more
    than one worker needs the master process)."""
    # a master started as root would run its workers as nobody, who cannot read the files
    user = "user root;\n" if workers > 1 and os.geteuid() == 0 else ""
    return f"""{user}daemon off;
master_process {"on" if workers > 1 else "off"};
worker_processes {workers};
worker_rlimit_nofile 20000;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 16384; }}
"""


def nginx_http_common(d):
    return f"""    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
"""


def upstream_nginx(d, port, docroot, workers=1):
    conf = write(os.path.join(d, "nginx.conf"), nginx_common(d, workers) + f"""http {{
{nginx_http_common(d)}    sendfile on;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {docroot};
    }}
}}
""")
    return ["nginx", "-p", d + "/", "-c", conf]


def proxy_config(system, d, port, up_port, cert, key, pem, extra=(), pushgate=PUSHGATE,
                 workers=1):
    """(command, Service ready pattern or None) for one proxy with `workers` workers or
    threads; config files go into d."""
    up = f"127.0.0.1:{up_port}"
    if system == "pushgate":
        return ([pushgate, "-l", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key,
                 "-u", f"http://{up}", "--workers", str(workers), *extra],
                r"listening on 127\.0\.0\.1:(\d+)")
    if system == "nghttpx":
        return (["nghttpx", "--conf=/dev/null", f"--workers={workers}", f"-f127.0.0.1,{port}",
                 f"-b127.0.0.1,{up_port}", "--no-ocsp", "--tls-min-proto-version=TLSv1.3",
                 "--backend-keep-alive-timeout=300s", "--frontend-http2-read-timeout=300s",
                 "--frontend-keep-alive-timeout=300s", "--frontend-read-timeout=300s",
                 f"--errorlog-file={d}/error.log",
                 f"--pid-file={d}/nghttpx.pid", key, cert], None)
    if system == "h2o":
        user = "user: root\n" if os.geteuid() == 0 else ""
        conf = write(os.path.join(d, "h2o.conf"), f"""{user}num-threads: {workers}
max-connections: 16384
pid-file: {d}/h2o.pid
error-log: {d}/error.log
http2-reprioritize-blocking-assets: ON
http2-push-preload: ON
http2-idle-timeout: 300
http1-request-timeout: 300
listen:
  host: 127.0.0.1
  port: {port}
  ssl:
    certificate-file: {cert}
    key-file: {key}
    minimum-version: TLSv1.3
hosts:
  "127.0.0.1:{port}":
    paths:
      /:
        proxy.reverse.url: http://{up}/
        proxy.timeout.keepalive: 300000
""")
        return ["h2o", "-c", conf], None
    if system == "haproxy":
        conf = write(os.path.join(d, "haproxy.cfg"), f"""global
    nbthread {workers}
    maxconn 8000
    ssl-default-bind-options ssl-min-ver TLSv1.3
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
    http-reuse always
frontend fe
    bind 127.0.0.1:{port} ssl crt {pem} alpn h2,http/1.1
    default_backend be
backend be
    server up {up}
""")
        return ["haproxy", "-db", "-f", conf], None
    if system == "nginx":
        conf = write(os.path.join(d, "nginx.conf"), nginx_common(d, workers) + f"""http {{
{nginx_http_common(d)}    http2_push_preload on;
    upstream up {{
        server {up};
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }}
    server {{
        listen 127.0.0.1:{port} ssl http2 backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        location / {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
""")
        return ["nginx", "-p", d + "/", "-c", conf], None
    raise ValueError(system)


# ---------------------------------------------------------------------------------------------
# clients


def run_cmd(cmd, timeout):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"timed out after {timeout}s: {' '.join(cmd)}") from e


def seconds(value):
    """h2load durations: 1s, 500ms, 2m, or a bare number of seconds."""
    m = re.fullmatch(r"([\d.]+)(ms|s|m)?", value)
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m.group(2)]


def parse_h2load(out):
    def grab(pattern, cast=float):
        m = re.search(pattern, out, re.M)
        return cast(m.group(1)) if m else None
    r = {}
    m = re.search(r"^finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s", out, re.M)
    if not m:
        return None
    r["seconds"] = float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1}[m.group(2)]
    r["req_per_s"] = float(m.group(3))
    m = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", out, re.M)
    for name, value in zip(("total", "started", "done", "succeeded", "failed", "errored",
                            "timeout"), m.groups() if m else ()):
        r["requests_" + name] = int(value)
    m = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out, re.M)
    for name, value in zip(("2xx", "3xx", "4xx", "5xx"), m.groups() if m else ()):
        r["status_" + name] = int(value)
    r["traffic_bytes"] = grab(r"^traffic: \S+ \((\d+)\) total", int)
    r["data_bytes"] = grab(r"^traffic: .*\((\d+)\) data", int)
    r["tls_protocol"] = grab(r"^TLS Protocol: (\S+)", str)
    r["cipher"] = grab(r"^Cipher: (\S+)", str)
    r["alpn"] = grab(r"^Application protocol: (\S+)", str)
    return r


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def parse_stat_time(value, unit):
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1000.0}[unit]


NGHTTP_ROW = re.compile(r"^\s*(\d+)\s+\+([\d.]+)(us|ms|s)\s+(\*)?\s*\+([\d.]+)(us|ms|s)\s+"
                        r"\S+\s+(\d+)\s+\S+\s+(\S+)\s*$", re.M)


# ---------------------------------------------------------------------------------------------
# the benchmark


class Bench:
    def __init__(self, profile, rounds, out_path):
        self.profile = dict(PROFILES[profile], name=profile)
        self.profile["rounds"] = rounds or self.profile["rounds"]
        self.out_path = out_path
        self.tmp = tempfile.mkdtemp(prefix="pushgate-bench-")
        # a copy of build/pushgate, so that a rebuild during the run cannot change or break it
        self.pushgate = os.path.join(self.tmp, "bin", "pushgate")
        self.records = []
        self.commands = {}
        self.meta = {}
        self.push_variants = []
        self.started = time.monotonic()

    # -- bookkeeping --------------------------------------------------------------------------

    def scrub(self, value):
        """Replaces this machine's paths with placeholders, recursively."""
        if isinstance(value, str):
            return value.replace(self.pushgate, "build/pushgate") \
                .replace(sys.executable, "python3") \
                .replace(self.tmp, "<tmp>").replace(ROOT, "<repo>")
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        return value

    def record(self, **fields):
        self.records.append(fields)
        self.save()

    def save(self, summary=None):
        doc = {"meta": dict(self.meta, elapsed_s=round(time.monotonic() - self.started, 1)),
               "profile": self.profile, "commands": self.commands,
               "summary": summary, "records": self.records}
        os.makedirs(os.path.dirname(os.path.abspath(self.out_path)), exist_ok=True)
        tmp = self.out_path + ".part"
        with open(tmp, "w") as f:
            json.dump(self.scrub(doc), f, indent=1)
            f.write("\n")
        os.replace(tmp, self.out_path)

    def log(self, text):
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    # -- set-up --------------------------------------------------------------------------------

    def check_tools(self):
        missing = [t for t in ("nginx", "nghttpx", "h2o", "haproxy", "h2load", "nghttp",
                               "openssl") if not shutil.which(t)]
        if not os.access(PUSHGATE, os.X_OK):
            missing.append("build/pushgate (build it first)")
        if missing:
            raise BenchError("missing: " + ", ".join(missing))
        os.makedirs(os.path.dirname(self.pushgate))
        shutil.copy2(PUSHGATE, self.pushgate)
        help_text = run_cmd([self.pushgate, "--help"], 10).stdout
        # The peers push every preload of the page (20); pushgate's default cap is 16, so it is
        # raised to the page's 20 for a like-for-like comparison.
        same_pushes = ["--max-pushes-per-response", "20"]
        self.push_variants = [("pushgate", same_pushes)]
        if "--no-push-learn" in help_text:
            self.push_variants.append(("pushgate --no-push-learn",
                                       same_pushes + ["--no-push-learn"]))
        else:
            self.log("build/pushgate has no --no-push-learn yet: that variant is skipped")
        self.push_variants += [(s, []) for s in PUSHERS if s != "pushgate"]

    def collect_meta(self):
        def out(cmd):
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
                return (p.stdout + p.stderr).strip()
            except OSError as e:
                return str(e)
        cpu = "unknown"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        self.meta = {
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "nproc": os.cpu_count(), "cpu_model": cpu, "kernel": os.uname().release,
            "python": sys.version.split()[0],
            "packages": out(["dpkg-query", "-W", "nghttp2-proxy", "h2o", "haproxy",
                             "nginx-light", "nghttp2-client"]).splitlines(),
            "pushgate_version": out([self.pushgate, "--version"]).splitlines()[0],
            "pushgate_sha256": sha256_file(self.pushgate),
            "pushgate_push_variants": [v[0] for v in self.push_variants],
            "loadavg_at_start": loadavg(),
        }

    def make_files(self):
        d = os.path.join(self.tmp, "tls")
        os.makedirs(d)
        self.cert, self.key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        cmd = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=localhost",
               "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
               "-keyout", self.key, "-out", self.cert]
        p = run_cmd(cmd, 30)
        if p.returncode != 0:
            raise BenchError("openssl failed: " + p.stderr.strip())
        self.commands["certificate"] = " ".join(cmd)
        self.pem = os.path.join(d, "cert+key.pem")  # haproxy wants both in one file
        with open(self.pem, "w") as f:
            f.write(read_text(self.cert) + read_text(self.key))
        self.docroot = os.path.join(self.tmp, "www")
        os.makedirs(self.docroot)
        rnd = os.urandom(LARGE_SIZE)
        with open(os.path.join(self.docroot, "small.bin"), "wb") as f:
            f.write(rnd[:SMALL_SIZE])
        with open(os.path.join(self.docroot, "large.bin"), "wb") as f:
            f.write(rnd)

    def start_upstreams(self):
        d = os.path.join(self.tmp, "upstream")
        os.makedirs(d)
        port = free_port()
        cmd = upstream_nginx(d, port, self.docroot)
        self.upstream = Service("upstream nginx", cmd, d, port=port).start()
        self.commands["upstream"] = {"cmd": cmd,
                                     "config": read_text(os.path.join(d, "nginx.conf"))}
        d = os.path.join(self.tmp, "push-upstream")
        os.makedirs(d)
        cmd = [sys.executable, os.path.join(HERE, "push_upstream.py"), "--port", "0"]
        self.push_upstream = Service("push upstream", cmd, d, ready_line=r"LISTENING (\d+)").start()
        self.commands["push_upstream"] = {"cmd": cmd}

    def start_proxy(self, system, up_port, key, rnd, extra=()):
        """A fresh instance of `system` in front of up_port; its command and configuration
        are kept in self.commands[key] (the first round's; later rounds differ in ports)."""
        d = os.path.join(self.tmp, re.sub(r"[^a-z0-9]+", "-", key) + f"-r{rnd}")
        os.makedirs(d, exist_ok=True)
        port = free_port()
        cmd, ready = proxy_config(system, d, port, up_port, self.cert, self.key, self.pem,
                                  extra, self.pushgate)
        service = Service(system, cmd, d, port=port, ready_line=ready).start()
        configs = {n: read_text(os.path.join(d, n)) for n in sorted(os.listdir(d))
                   if n.endswith((".conf", ".cfg"))}
        name = system + (" " + " ".join(extra) if extra else "")
        self.commands.setdefault(key, {"system": name, "cmd": cmd, "configs": configs})
        return service

    # -- measures ------------------------------------------------------------------------------

    def h2load(self, system, target, url, load, warmup, duration, rnd, measure):
        """One warm-up run, then one measured run with CPU and PSS of target's group.
        load["h1"]: HTTP/1.1 (ALPN http/1.1 over TLS) instead of h2; direct is always h1."""
        alpn = "http/1.1" if load.get("h1") else "h2"
        base = ["h2load", "-t", "1", "-c", str(load["clients"]), "-m", str(load["streams"])]
        base += ["--h1"] if system == "direct" or load.get("h1") else []
        base += [] if system == "direct" else [f"--tls13-ciphers={TLS13_CIPHER}"]
        # A duration (-D), or a number of requests (-n): h2load -D can hang when no response
        # of a burst of large ones finished within the duration (seen with a fresh nghttpx).
        def amount(a):
            return ["-n", str(a)] if isinstance(a, int) else ["-D", a]

        def limit(a):
            return 120 if isinstance(a, int) else seconds(a) + 60
        warm_cmd = base + amount(warmup) + [url]
        warm = run_cmd(warm_cmd, limit(warmup))
        self.check_h2load(system, measure + " warm-up", warm_cmd, warm, alpn)
        log_path = os.path.join(self.tmp, "h2load-requests.log")
        cmd = base + amount(duration) + [f"--log-file={log_path}", url]
        sampler = PssSampler(target.pgid)
        cpu0 = group_cpu_seconds(target.pgid)
        up0 = group_cpu_seconds(self.upstream.pgid)
        proc = run_cmd(cmd, limit(duration))
        cpu1 = group_cpu_seconds(target.pgid)
        up1 = group_cpu_seconds(self.upstream.pgid)
        peak = sampler.stop()
        r = self.check_h2load(system, measure, cmd, proc, alpn)
        lat = []
        with open(log_path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[1] == "200":
                    lat.append(int(parts[2]) / 1000.0)  # µs -> ms
        os.unlink(log_path)
        lat.sort()
        done = r["requests_done"] or 1
        r.update({
            "latency_ms_mean": statistics.fmean(lat) if lat else None,
            "latency_ms_p50": percentile(lat, 0.50), "latency_ms_p99": percentile(lat, 0.99),
            "mib_per_s": r["data_bytes"] / r["seconds"] / 2**20 if r["seconds"] else None,
            "cpu_s": cpu1 - cpu0, "cpu_us_per_req": (cpu1 - cpu0) / done * 1e6,
            "upstream_cpu_s": up1 - up0, "peak_pss_kib": peak, "pss_samples": sampler.samples,
        })
        self.record(round=rnd, system=system, measure=measure, cmd=cmd, warmup_cmd=warm_cmd,
                    **r)
        return r

    def check_h2load(self, system, what, cmd, proc, alpn="h2"):
        r = parse_h2load(proc.stdout)
        where = f"{system} {what}: {' '.join(cmd)}"
        if proc.returncode != 0 or r is None or "status_2xx" not in r:
            raise BenchError(f"h2load failed (exit {proc.returncode}) for {where}\n"
                             f"{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
        bad = r["status_3xx"] + r["status_4xx"] + r["status_5xx"]
        if r["status_2xx"] == 0 or bad:
            raise BenchError(f"responses not 200 ({r['status_2xx']} 2xx, {bad} other) for "
                             f"{where}")
        if system != "direct" and (r["alpn"] != alpn or r["tls_protocol"] != "TLSv1.3"):
            raise BenchError(f"expected {alpn} over TLSv1.3, got {r['alpn']} over "
                             f"{r['tls_protocol']} for {where}")
        if r.get("requests_errored") or r.get("requests_failed") or r.get("requests_timeout"):
            self.log(f"  warning: {system} {what}: {r['requests_failed']} failed, "
                     f"{r['requests_errored']} errored, {r['requests_timeout']} timed out")
        return r

    def idle_memory(self, system, service, rnd, http1_path=None):
        """PSS growth per idle TLS connection: h2 ("idle"), or HTTP/1.1 keep-alive after one
        GET of http1_path ("idle_h1")."""
        n = self.profile["idle_conns"]
        kind = "HTTP/1.1" if http1_path else "h2"
        time.sleep(0.3)
        cold = group_pss_kib(service.pgid)
        try:
            asyncio.run(idle.warm_up(service.port, http1_path=http1_path))
            before = group_pss_kib(service.pgid)
            held = asyncio.run(idle.hold(service.port, n,
                                         on_held=lambda: group_pss_kib(service.pgid),
                                         http1_path=http1_path))
        except (OSError, asyncio.TimeoutError) as e:
            raise BenchError(f"{system}: could not hold {n} idle {kind} connections: "
                             f"{e!r}") from e
        if held["still_open"] < n:
            self.log(f"  warning: {system} closed {n - held['still_open']} of {n} idle "
                     f"{kind} connections before the measurement")
        after = held["measured"]
        r = {"connections": n, "still_open": held["still_open"], "pss_cold_kib": cold,
             "pss_before_kib": before, "pss_after_kib": after,
             "kib_per_conn": (after - before) / n, "kib_per_conn_cold": (after - cold) / n}
        if http1_path:
            measure = "idle_h1"
            cmd = (f"bench/idle.py client: {n} TLS 1.3 HTTP/1.1 keep-alive connections, "
                   f"one GET {http1_path} each")
        else:
            measure = "idle"
            cmd = f"bench/idle.py client: {n} TLS 1.3 h2 connections, preface + SETTINGS"
        self.record(round=rnd, system=system, measure=measure, cmd=cmd, **r)
        return r

    def nghttp(self, variant, url, push, rnd, think, cap):
        cmd = ["nghttp", "-a", "-n", "-s", *NGHTTP_WINDOWS, *NGHTTP_AUTHORITY]
        cmd += [] if push else ["--no-push"]
        cmd.append(url)
        t0 = time.perf_counter()
        proc = run_cmd(cmd, 120)
        wall_ms = (time.perf_counter() - t0) * 1000
        rows = NGHTTP_ROW.findall(proc.stdout)
        codes = [int(r[6]) for r in rows]
        if proc.returncode != 0 or len(rows) != 21 or any(c != 200 for c in codes):
            raise BenchError(f"{variant}: expected 21 responses, all 200, got {len(rows)} "
                             f"with statuses {sorted(set(codes))} (exit {proc.returncode}): "
                             f"{' '.join(cmd)}\n{proc.stdout[-1500:]}{proc.stderr[-800:]}")
        r = {"wall_ms": wall_ms,
             "last_response_end_ms": max(parse_stat_time(r[1], r[2]) for r in rows),
             "pushed": sum(1 for r in rows if r[3] == "*"), "responses": len(rows)}
        if rnd is not None:
            self.record(round=rnd, system=variant, measure="push", think_ms=think,
                        rate_mbit=cap, push=push, cmd=cmd, **r)
        return r

    # -- the run -------------------------------------------------------------------------------

    def load_round(self, rnd):
        p = self.profile
        order = LOAD_SYSTEMS[rnd % len(LOAD_SYSTEMS):] + LOAD_SYSTEMS[:rnd % len(LOAD_SYSTEMS)]
        for system in order:
            if system == "direct":
                service, base = self.upstream, f"http://127.0.0.1:{self.upstream.port}"
            else:
                service = self.start_proxy(system, self.upstream.port, system, rnd)
                base = f"https://127.0.0.1:{service.port}"
            try:
                msg = f"round {rnd + 1}: {system:9}"
                if system != "direct":
                    i = self.idle_memory(system, service, rnd)
                    msg += f" idle {i['kib_per_conn']:.1f} KiB/conn,"
                s = self.h2load(system, service, base + "/small.bin", SMALL_LOAD,
                                p["small_warmup"], p["small_duration"], rnd, "small")
                g = self.h2load(system, service, base + "/large.bin", LARGE_LOAD,
                                p["large_warmup"], p["large_duration"], rnd, "large")
                h = self.h2load(system, service, base + "/small.bin", SMALL_H1_LOAD,
                                p["small_warmup"], p["small_duration"], rnd, "small_h1")
                msg += (f" small {s['req_per_s']:.0f} req/s p99 {s['latency_ms_p99']:.2f} ms,"
                        f" large {g['mib_per_s']:.0f} MiB/s, h1 {h['req_per_s']:.0f} req/s"
                        f" p99 {h['latency_ms_p99']:.2f} ms")
            finally:
                if service is not self.upstream:
                    service.stop()
            # 320 large responses in flight on a fresh instance of their own: their peak PSS
            # must not include what the idle connections left allocated
            if system != "direct":
                service = self.start_proxy(system, self.upstream.port, system, rnd)
                base = f"https://127.0.0.1:{service.port}"
            try:
                gm = self.h2load(system, service, base + "/large.bin", LARGE_MANY_LOAD,
                                 p["many_warmup"], p["many_requests"], rnd, "large_many")
                msg += (f", 320 large {gm['mib_per_s']:.0f} MiB/s peak"
                        f" {gm['peak_pss_kib'] / 1024:.0f} MiB")
            finally:
                if service is not self.upstream:
                    service.stop()
            if system != "direct":
                # idle HTTP/1.1 connections on a second fresh instance, as the idle h2 ones
                # are (not on what the idle h2 connections and the loads left allocated)
                service = self.start_proxy(system, self.upstream.port, system, rnd)
                try:
                    i = self.idle_memory(system, service, rnd, http1_path="/small.bin")
                    msg += f", idle h1 {i['kib_per_conn']:.1f} KiB/conn"
                finally:
                    service.stop()
            self.log(msg)

    def push_round(self, rnd):
        variants = self.push_variants[rnd % len(self.push_variants):] + \
            self.push_variants[:rnd % len(self.push_variants)]
        for variant, extra in variants:
            system = variant.split()[0]
            proxy = self.start_proxy(system, self.push_upstream.port, "push " + variant, rnd,
                                     extra)
            relays = []
            try:
                for cap in self.profile["push_caps"]:
                    cmd = [sys.executable, os.path.join(HERE, "relay.py"), "--target",
                           f"127.0.0.1:{proxy.port}", "--rtt-ms", str(RTT_MS),
                           "--rate-mbit", str(cap), "--port", "0"]
                    self.commands.setdefault(f"relay {cap} Mbit/s", {"cmd": cmd})
                    relays.append((cap, Service(f"relay-{cap}", cmd, proxy.workdir,
                                                ready_line=r"LISTENING (\d+)").start()))
                # warm-up: one page load per page straight to the proxy (fills learned tables)
                for think in (0, 200):
                    self.nghttp(variant, f"https://127.0.0.1:{proxy.port}/t{think}/index.html",
                                True, None, think, None)
                line = []
                for cap, relay in relays:
                    for think in (0, 200):
                        url = f"https://127.0.0.1:{relay.port}/t{think}/index.html"
                        modes = (True, False) if rnd % 2 == 0 else (False, True)
                        for _ in range(self.profile["push_reps"]):
                            res = {push: self.nghttp(variant, url, push, rnd, think, cap)
                                   for push in modes}
                        line.append(f"{think}ms/{cap or '-'}: {res[True]['wall_ms']:.0f}"
                                    f"({res[True]['pushed']}p)/{res[False]['wall_ms']:.0f}")
                self.log(f"round {rnd + 1}: push {variant:24} " + " ".join(line))
            finally:
                for _, relay in relays:
                    relay.stop()
                proxy.stop()

    def run(self):
        self.check_tools()
        self.collect_meta()
        self.make_files()
        self.start_upstreams()
        self.save()
        p = self.profile
        self.log(f"{p['name']} profile, {p['rounds']} round(s), temp dir {self.tmp}")
        for rnd in range(p["rounds"]):
            self.load_round(rnd)
            self.push_round(rnd)
        summary = summarize(self.records)
        self.meta["loadavg_at_end"] = loadavg()
        self.save(summary)
        print_tables(summary, self.push_variants)
        self.log(f"done; raw numbers and commands in {self.out_path}")


# ---------------------------------------------------------------------------------------------
# summary and tables

LOAD_METRICS = {
    "small": ["req_per_s", "latency_ms_mean", "latency_ms_p50", "latency_ms_p99",
              "cpu_us_per_req", "peak_pss_kib", "upstream_cpu_s"],
    "large": ["mib_per_s", "latency_ms_mean", "cpu_us_per_req", "peak_pss_kib"],
    "large_many": ["mib_per_s", "latency_ms_mean", "cpu_us_per_req", "peak_pss_kib"],
    "idle": ["kib_per_conn", "kib_per_conn_cold", "pss_before_kib", "pss_after_kib"],
    "small_h1": ["req_per_s", "latency_ms_mean", "latency_ms_p50", "latency_ms_p99",
                 "cpu_us_per_req", "peak_pss_kib", "upstream_cpu_s"],
    "idle_h1": ["kib_per_conn", "kib_per_conn_cold", "pss_before_kib", "pss_after_kib"],
}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(records):
    """Medians over rounds: summary[measure][system][metric]; push keyed by scenario."""
    summary = {}
    for measure, metrics in LOAD_METRICS.items():
        table = summary.setdefault(measure, {})
        for r in records:
            if r["measure"] == measure:
                row = table.setdefault(r["system"], {m: [] for m in metrics})
                for m in metrics:
                    row[m].append(r.get(m))
        for row in table.values():
            for m in metrics:
                row[m] = median(row[m])
    push = summary.setdefault("push", {})
    for r in records:
        if r["measure"] == "push":
            key = f"think {r['think_ms']} ms, " + \
                (f"{r['rate_mbit']} Mbit/s" if r["rate_mbit"] else "no rate cap")
            mode = "push" if r["push"] else "no_push"
            row = push.setdefault(key, {}).setdefault(r["system"], {})
            row.setdefault(mode + "_ms", []).append(r["wall_ms"])
            if r["push"]:
                row.setdefault("pushed", []).append(r["pushed"])
    for scenario in push.values():
        for row in scenario.values():
            for k in list(row):
                row[k] = median(row[k])
    return summary


def best_peer(rows, metric, higher_better):
    peers = [(row[metric], s) for s, row in rows.items()
             if not s.startswith(NOT_PEERS) and row.get(metric) is not None]
    if not peers:
        return None, None
    return (max if higher_better else min)(peers)


def table(title, rows, columns, order):
    """columns: (metric, label, format, higher_better or None for no ratio)."""
    head = [f"{'system':26}"]
    for metric, label, _, better in columns:
        head.append(f"{label:>12}")
        if better is not None:
            head.append(f"{'x best peer':>12}")
    lines = [title, " ".join(head)]
    bests = {m: best_peer(rows, m, b) for m, _, _, b in columns if b is not None}
    for system in order:
        if system not in rows:
            continue
        cells = [f"{system:26}"]
        for metric, _, fmt, better in columns:
            v = rows[system].get(metric)
            cells.append(f"{fmt.format(v) if v is not None else '-':>12}")
            if better is not None:
                best = bests[metric][0]
                ratio = f"{v / best:.2f}" if v is not None and best else "-"
                cells.append(f"{ratio:>12}")
        lines.append(" ".join(cells))
    notes = [f"{label}: best peer {bests[m][1]} ({'higher' if b else 'lower'} is better)"
             for m, label, _, b in columns if b is not None and bests[m][1]]
    return "\n".join(lines + ["  " + "; ".join(notes), ""])


def print_tables(summary, push_variants, out=sys.stdout):
    order = LOAD_SYSTEMS
    kib_mib = "{:.1f}"
    print("", file=out)
    print(table("1. small responses (1 KiB, h2load -c 32 -m 10), medians", summary["small"], [
        ("req_per_s", "req/s", "{:.0f}", True),
        ("latency_ms_mean", "mean ms", "{:.2f}", False),
        ("latency_ms_p50", "p50 ms", "{:.2f}", False),
        ("latency_ms_p99", "p99 ms", "{:.2f}", False)], order), file=out)
    print(table("1b. small responses over HTTP/1.1 (1 KiB, h2load --h1 -c 32 -m 1, TLS; "
                "direct in cleartext), medians", summary["small_h1"], [
                    ("req_per_s", "req/s", "{:.0f}", True),
                    ("cpu_us_per_req", "us/1KiB req", "{:.1f}", False),
                    ("latency_ms_p99", "p99 ms", "{:.2f}", False)], order), file=out)
    print(table("2. large responses (1 MiB, h2load -c 4 -m 1), medians", summary["large"], [
        ("mib_per_s", "MiB/s", "{:.0f}", True),
        ("latency_ms_mean", "mean ms", "{:.1f}", False)], order), file=out)
    many = {s: dict(summary["large_many"].get(s, {}),
                    peak_mib=(summary["large_many"].get(s, {}).get("peak_pss_kib") or 0) / 1024)
            for s in order}
    print(table("2b. many large responses (1 MiB, h2load -c 32 -m 10: 320 in flight), medians",
                many, [("mib_per_s", "MiB/s", "{:.0f}", True),
                       ("cpu_us_per_req", "us/1MiB req", "{:.0f}", False),
                       ("peak_mib", "peak MiB", kib_mib, False)], order), file=out)
    cpu = {s: {"small_cpu": summary["small"].get(s, {}).get("cpu_us_per_req"),
               "large_cpu": summary["large"].get(s, {}).get("cpu_us_per_req"),
               "peak_mib": max([x for x in (summary["small"].get(s, {}).get("peak_pss_kib"),
                                            summary["large"].get(s, {}).get("peak_pss_kib"))
                                if x is not None], default=0) / 1024}
           for s in order}
    print(table("3. CPU per request (whole process group) and peak PSS under load, medians",
                cpu, [("small_cpu", "us/1KiB req", "{:.1f}", False),
                      ("large_cpu", "us/1MiB req", "{:.0f}", False),
                      ("peak_mib", "peak MiB", kib_mib, False)], order), file=out)
    print(table("4. memory per idle TLS HTTP/2 connection (PSS growth / connections), medians",
                summary["idle"], [("kib_per_conn", "KiB/conn", "{:.1f}", False),
                                  ("kib_per_conn_cold", "cold KiB/conn", "{:.1f}", None),
                                  ("pss_before_kib", "PSS KiB", "{:.0f}", None)], order),
          file=out)
    print(table("4b. memory per idle TLS HTTP/1.1 keep-alive connection (after one 1 KiB GET; "
                "PSS growth / connections), medians",
                summary["idle_h1"], [("kib_per_conn", "KiB/conn", "{:.1f}", False),
                                     ("kib_per_conn_cold", "cold KiB/conn", "{:.1f}", None),
                                     ("pss_before_kib", "PSS KiB", "{:.0f}", None)], order),
          file=out)
    names = [v[0] for v in push_variants]
    for scenario, rows in summary["push"].items():
        print(table(f"5. push page, {RTT_MS} ms RTT, {scenario}: ms to last byte, medians",
                    rows, [("push_ms", "push ms", "{:.0f}", False),
                           ("no_push_ms", "no-push ms", "{:.0f}", False),
                           ("pushed", "pushed", "{:.0f}", None)], names), file=out)


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="1 round, short durations, 200 idle connections (CI)")
    ap.add_argument("--rounds", type=int, help="rounds (default 3, or 1 with --quick)")
    ap.add_argument("--out", default=os.path.join("bench", "results.json"),
                    help="JSON file for raw numbers and commands (default bench/results.json)")
    args = ap.parse_args()
    if args.rounds is not None and args.rounds < 1:
        ap.error("--rounds must be at least 1")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < want:  # inherited by every server started, and needed by the idle client
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    bench = Bench("quick" if args.quick else "full", args.rounds, args.out)
    status = 0
    try:
        bench.run()
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        status = 130
    finally:
        Service.stop_all()
        shutil.rmtree(bench.tmp, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
