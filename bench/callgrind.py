#!/usr/bin/env python3
"""Instructions per proxied request, split by object and at libcurl's boundary (callgrind),
and syscalls per request (strace -c), for pushgate and its peers in front of the same nginx,
1 KiB responses: h2c (or TLS with --tls), or HTTP/1.1 with --h1 (nginx joins as a peer).

Each proxy runs with one worker under `valgrind --tool=callgrind`; after a warm-up load the
counters are zeroed (callgrind_control -z), the measured load runs (h2load -t1 -c32 -m10, or
--h1 -c32 -m1), and the counts are dumped (callgrind_control -d). The per-object split is
exclusive cost: libc and the allocator include what libcurl makes them do. The boundary split
is the performance issue's: libcurl's share is the inclusive cost of the calls into libcurl
from outside it, less the inclusive cost of the calls libcurl makes back into pushgate (its
callbacks); everything else is pushgate's own work around libcurl. A second run of each proxy,
natively, counts its syscalls over the same load with `strace -f -c`. Usage:

    python3 bench/callgrind.py [--requests 10000] [--pushgate build/pushgate] [--tls | --h1]
                               [--systems pushgate,nghttpx[,nginx]] [--no-strace]
"""
import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as bench  # noqa: E402  (bench/run.py: nginx configuration, free ports)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from harness import all_traced, strace_counts  # noqa: E402
from early_hints import wait_port  # noqa: E402  (bench/early_hints.py)

LOAD = ["h2load", "-t1", "-c32", "-m10"]


TLS = None  # (cert, key) with --tls: the client side is TLS 1.3 with ALPN h2
H1 = False  # --h1: the client side is HTTP/1.1 (h2load --h1 -m1)


def nginx_command(d, port, up_port):
    """nginx as a reverse proxy, one process, keep-alive upstream connections."""
    os.makedirs(os.path.join(d, "nginx"), exist_ok=True)
    nd = os.path.join(d, "nginx")
    listen = f"127.0.0.1:{port}" + (" ssl" if TLS else "") + ("" if H1 else " http2")
    tls = f"ssl_certificate {TLS[0]}; ssl_certificate_key {TLS[1]}; ssl_protocols TLSv1.3;" \
        if TLS else ""
    conf = bench.write(os.path.join(nd, "nginx.conf"), bench.nginx_common(nd) + f"""http {{
{bench.nginx_http_common(nd)}    upstream up {{ server 127.0.0.1:{up_port}; keepalive 64;
                   keepalive_requests 1000000; keepalive_timeout 300s; }}
    server {{ listen {listen}; {tls}
        location / {{ proxy_pass http://up; proxy_http_version 1.1;
                      proxy_set_header Connection ""; }} }}
}}
""")
    return ["nginx", "-p", nd + "/", "-c", conf]


def proxy_command(system, pushgate, port, up_port, d, single_process=False):
    if system == "nginx":
        return nginx_command(d, port, up_port)
    if system == "pushgate":
        return [pushgate, "-l", f"127.0.0.1:{port}", "-u", f"http://127.0.0.1:{up_port}",
                "--workers", "1", "--log-level", "error"] + \
            (["--tls-cert", TLS[0], "--tls-key", TLS[1]] if TLS else [])
    return ["nghttpx", "--conf=/dev/null", "--workers=1",
            f"-f127.0.0.1,{port}" + ("" if TLS else ";no-tls"),
            f"-b127.0.0.1,{up_port}", "--backend-keep-alive-timeout=300s", "--no-ocsp",
            f"--errorlog-file={d}/error.log", f"--pid-file={d}/nghttpx.pid"] + \
        (["--single-process"] if single_process else []) + ([TLS[1], TLS[0]] if TLS else [])


def load(port, n):
    scheme = "https" if TLS else "http"
    shape = ["h2load", "--h1", "-t1", "-c32", "-m1"] if H1 else LOAD
    p = subprocess.run(shape + ["-n", str(n), f"{scheme}://127.0.0.1:{port}/small.bin"],
                       capture_output=True, text=True)
    if f"{n} succeeded" not in p.stdout:
        raise RuntimeError("load failed:\n" + p.stdout[-2000:])


def cost_lines(dump):
    """(object, callee object or None, instructions) for every cost line of a callgrind
    profile: callee None for the object's own (exclusive) cost, else the inclusive cost of a
    call, which is the callee's and not the caller's own."""
    names = {}
    current, callee, call = "?", None, False
    with open(dump) as f:
        for line in f:
            if line.startswith(("ob=", "cob=")):
                m = re.match(r"c?ob=(?:\((\d+)\))?\s*(.*)", line.rstrip("\n"))
                if m.group(2):
                    names[m.group(1)] = os.path.basename(m.group(2))
                name = names.get(m.group(1), os.path.basename(m.group(2) or "?"))
                if line.startswith("ob="):
                    current, callee = name, None
                else:
                    callee = name
            elif line.startswith("fn="):
                callee = None
            elif line.startswith("calls="):
                call = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                fields = line.split()
                cost = int(fields[-1]) if len(fields) >= 2 else 0
                if call:
                    yield current, callee or current, cost
                    call, callee = False, None
                else:
                    yield current, None, cost


def split_by_object(dump):
    """Exclusive instructions per object."""
    objects = collections.Counter()
    for obj, callee, cost in cost_lines(dump):
        if callee is None:
            objects[obj] += cost
    return sum(objects.values()), objects


def libcurl_share(dump):
    """Instructions in calls into libcurl from outside it, less those in the calls libcurl
    makes back into the proxy's own binary (its callbacks)."""
    share = 0
    for obj, callee, cost in cost_lines(dump):
        if callee is None:
            continue
        if callee.startswith("libcurl") and not obj.startswith("libcurl"):
            share += cost
        elif obj.startswith("libcurl") and callee == "pushgate":
            share -= cost
    return share


def callgrind(system, pushgate, up_port, n, d):
    port = bench.free_port()
    out = os.path.join(d, f"{system}.cg.%p")
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-line=no",
           "--trace-children=no"] + proxy_command(system, pushgate, port, up_port, d,
                                                  single_process=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_port(port, proc, system, timeout=60)  # valgrind starts slowly
        load(port, max(1000, n // 5))  # warm-up: pools, caches, allocator pages
        # Every process of the proxy (nghttpx forks its worker): zero, load, dump.
        subprocess.run(["callgrind_control", "-z"], capture_output=True)
        load(port, n)
        subprocess.run(["callgrind_control", "-d"], capture_output=True)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
    total, objects, share = 0, collections.Counter(), 0
    for name in os.listdir(d):  # the explicit dumps are NAME.cg.PID.1
        if name.startswith(f"{system}.cg.") and name.endswith(".1"):
            t, o = split_by_object(os.path.join(d, name))
            total += t
            objects.update(o)
            share += libcurl_share(os.path.join(d, name))
    return total / n, {k: v / n for k, v in objects.items()}, share / n


def syscalls(system, pushgate, up_port, n, d):
    port = bench.free_port()
    proc = subprocess.Popen(proxy_command(system, pushgate, port, up_port, d),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    out = os.path.join(d, f"{system}.strace")
    try:
        wait_port(port, proc, system)
        load(port, max(1000, n // 5))
        pids = bench.group_pids(proc.pid)  # nghttpx: its master and its worker process
        tracer = subprocess.Popen(["strace", "-f", "-c", "-o", out] +
                                  [a for pid in pids for a in ("-p", str(pid))],
                                  stderr=subprocess.DEVNULL)
        while not all(all_traced(pid) for pid in pids):
            time.sleep(0.05)
        load(port, n)
        tracer.send_signal(signal.SIGINT)
        tracer.wait()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
    return {name: calls / n for name, calls in strace_counts(out).items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--pushgate", default=os.path.join(HERE, "..", "build", "pushgate"))
    ap.add_argument("--systems", default="pushgate,nghttpx")
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--tls", action="store_true", help="TLS 1.3 client side instead of h2c")
    ap.add_argument("--h1", action="store_true",
                    help="HTTP/1.1 client side (h2load --h1 -m1; with --tls, ALPN http/1.1)")
    args = ap.parse_args()
    global H1
    H1 = args.h1
    d = tempfile.mkdtemp(prefix="pg-callgrind-")
    if args.tls:
        global TLS
        TLS = (os.path.join(d, "cert.pem"), os.path.join(d, "key.pem"))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", TLS[1], "-out", TLS[0],
                        "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
    docroot = os.path.join(d, "www")
    os.makedirs(docroot)
    with open(os.path.join(docroot, "small.bin"), "wb") as f:
        f.write(os.urandom(1024))
    up_dir = os.path.join(d, "upstream")
    os.makedirs(up_dir)
    up_port = bench.free_port()
    upstream = subprocess.Popen(bench.upstream_nginx(up_dir, up_port, docroot),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(up_port, upstream, "upstream nginx")
        shape = ["h2load", "--h1", "-t1", "-c32", "-m1"] if H1 else LOAD
        cmd = " ".join(shape + ["-n", str(args.requests)])
        side = ("TLS 1.3 " if TLS else "cleartext ") + ("HTTP/1.1" if H1 else "h2") \
            if TLS or H1 else "h2c"
        print(f"{side}, 1 KiB, `{cmd}` after a warm-up, nginx upstream; per request")
        for system in args.systems.split(","):
            per_req, objects, share = callgrind(system, args.pushgate, up_port, args.requests, d)
            print(f"\n{system}: {per_req:,.0f} instructions per request")
            if share:
                print(f"  at libcurl's boundary: libcurl's share {share:,.0f}, "
                      f"outside libcurl {per_req - share:,.0f}")
            for obj, ir in sorted(objects.items(), key=lambda kv: -kv[1]):
                if ir >= 50:
                    print(f"  {obj:40} {ir:10,.0f}")
            if not args.no_strace:
                counts = syscalls(system, args.pushgate, up_port, args.requests, d)
                print("  syscalls per request: " + ", ".join(
                    f"{k} {v:.2f}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])
                    if v >= 0.005))
    finally:
        upstream.terminate()
        upstream.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
