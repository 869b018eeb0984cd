"""Benchmark: what the access log and the metrics listener cost on small responses.

The same pushgate binary, in front of the same nginx (1 KiB file), is started without and with
`--access-log FILE --access-log-format json --metrics-listen 127.0.0.1:0` (a scraper reads
/metrics every second meanwhile), and loaded with h2load (h2c, -c 32 -m 10) in interleaved
rounds. Reported per variant: median req/s and median CPU microseconds per request of the
proxy process (utime + stime from /proc), and the ratio of "with" to "without". A benchmark,
not a test: nothing fails on a number.

    python3 bench/observability_cost.py [--rounds N] [--requests N] [--quick] [--out FILE]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUSHGATE = os.environ.get("PUSHGATE", os.path.join(ROOT, "build", "pushgate"))
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, deadline=20.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {port}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_nginx(d):
    root = os.path.join(d, "www")
    os.makedirs(root)
    with open(os.path.join(root, "small.bin"), "wb") as f:
        f.write(os.urandom(1024))
    port = free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off; master_process off; worker_processes 1;
error_log {d}/error.log warn; pid {d}/nginx.pid;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000;
  client_body_temp_path {d}/b; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f;
  uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;
  server {{ listen 127.0.0.1:{port}; root {root}; }} }}
""")
    proc = subprocess.Popen(["nginx", "-p", d, "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc, port


def start_pushgate(up_port, extra):
    port = free_port()
    proc = subprocess.Popen([PUSHGATE, "-u", f"http://127.0.0.1:{up_port}", "-l",
                             f"127.0.0.1:{port}", "--log-level", "warn", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    return proc, port


def scrape_loop(metrics_port, stop):
    while not stop.wait(1.0):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read()
        except OSError:
            pass


def h2load(port, requests):
    cmd = ["h2load", "-t", "1", "-c", "32", "-m", "10", "-n", str(requests),
           f"http://127.0.0.1:{port}/small.bin"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    ok = re.search(r"(\d+) succeeded", out)
    if not m or not ok or int(ok.group(1)) != requests:
        raise RuntimeError("h2load failed:\n" + out[-1500:])
    return float(m.group(1))


def one_round(variant, up_port, d, requests):
    extra, metrics_port = [], None
    if variant == "with":
        metrics_port = free_port()
        extra = ["--access-log", os.path.join(d, "access.log"), "--access-log-format", "json",
                 "--metrics-listen", f"127.0.0.1:{metrics_port}"]
    proc, port = start_pushgate(up_port, extra)
    stop = threading.Event()
    scraper = None
    try:
        h2load(port, min(requests, 5000))  # warm-up: upstream connections, pools
        if metrics_port:
            scraper = threading.Thread(target=scrape_loop, args=(metrics_port, stop))
            scraper.start()
        before = cpu_seconds(proc.pid)
        rps = h2load(port, requests)
        cpu = cpu_seconds(proc.pid) - before
    finally:
        stop.set()
        if scraper:
            scraper.join()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    return {"variant": variant, "req_per_s": rps, "cpu_us_per_req": cpu * 1e6 / requests}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--quick", action="store_true", help="1 round of 20000 requests (CI)")
    ap.add_argument("--out", help="write the records and the summary as JSON")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.requests = 1, 20000
    d = tempfile.mkdtemp(prefix="pg-obs-cost-")
    nginx, up_port = start_nginx(d)
    records = []
    try:
        for r in range(args.rounds):
            order = ("without", "with") if r % 2 == 0 else ("with", "without")
            for variant in order:
                rec = one_round(variant, up_port, d, args.requests)
                rec["round"] = r
                records.append(rec)
                print(f"round {r} {variant:8} {rec['req_per_s']:9.0f} req/s "
                      f"{rec['cpu_us_per_req']:6.1f} us/req", flush=True)
    finally:
        nginx.terminate()
        nginx.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)
    summary = {}
    for v in ("without", "with"):
        rows = [r for r in records if r["variant"] == v]
        summary[v] = {"req_per_s": statistics.median(r["req_per_s"] for r in rows),
                      "cpu_us_per_req": statistics.median(r["cpu_us_per_req"] for r in rows)}
    ratio_rps = summary["with"]["req_per_s"] / summary["without"]["req_per_s"]
    ratio_cpu = summary["with"]["cpu_us_per_req"] / summary["without"]["cpu_us_per_req"]
    print(f"\nmedians of {args.rounds} interleaved round(s), h2c, h2load -c32 -m10 -n "
          f"{args.requests}, 1 KiB from nginx")
    print(f"{'variant':28} {'req/s':>9} {'us/req':>8}")
    print(f"{'without':28} {summary['without']['req_per_s']:9.0f} "
          f"{summary['without']['cpu_us_per_req']:8.1f}")
    print(f"{'with access log + metrics':28} {summary['with']['req_per_s']:9.0f} "
          f"{summary['with']['cpu_us_per_req']:8.1f}")
    print(f"{'ratio with/without':28} {ratio_rps:9.3f} {ratio_cpu:8.3f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"records": records, "summary": summary, "ratio_req_per_s": ratio_rps,
                       "ratio_cpu_per_req": ratio_cpu}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
