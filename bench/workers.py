#!/usr/bin/env python3
"""Scaling with workers: how much more a second worker (or thread) gives each proxy.

Every system (pushgate, nghttpx, h2o, HAProxy, nginx) runs once with one worker or thread and
once with two, fresh each time, in front of the same upstream nginx (two workers), with the
configurations of bench/run.py; the load is 1 KiB over TLS 1.3 h2, `h2load -t2 -c32 -m10
-D 5s` after a 1 s warm-up. Rounds interleave the systems (the order rotates) and the two
worker counts. Printed: the medians of req/s with one and with two workers and their ratio
(the performance issue asks 1.8 of pushgate), CPU per request, the cores the proxy kept busy
(its CPU seconds over the load's wall seconds) and those the whole machine did (/proc/stat:
proxy, h2load and upstream together; at the core count nothing more can run). A benchmark, not a test: nothing fails on
a number.

On a 2-core machine h2load and the upstream share the cores with the proxy, so no system can
double; the ratios of one run are what compare.

    python3 bench/workers.py [--rounds 3] [--quick] [--systems LIST] [--out bench/workers.json]
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import run  # noqa: E402  (bench/run.py: configurations, services, h2load parsing)

LOAD = ["h2load", "-t2", "-c32", "-m10", f"--tls13-ciphers={run.TLS13_CIPHER}"]


def machine_busy_seconds():
    """CPU seconds every core of the machine spent not idle (/proc/stat), so far."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / run.CLK_TCK  # less idle and iowait


def measure(bench, system, workers, rnd, duration):
    d = os.path.join(bench.tmp, f"{system}-{workers}w-r{rnd}")
    os.makedirs(d)
    port = run.free_port()
    cmd, ready = run.proxy_config(system, d, port, bench.up_port, bench.cert, bench.key,
                                  bench.pem, pushgate=bench.pushgate, workers=workers)
    service = run.Service(f"{system} {workers}w", cmd, d, port=port, ready_line=ready).start()
    try:
        url = f"https://127.0.0.1:{service.port}/small.bin"
        run.run_cmd(LOAD + ["-D", "1s", url], 60)  # warm-up: TLS sessions, pools, threads
        cpu0, all0, t0 = run.group_cpu_seconds(service.pgid), machine_busy_seconds(), time.monotonic()
        p = run.run_cmd(LOAD + ["-D", duration, url], run.seconds(duration) + 60)
        cpu1, all1, t1 = run.group_cpu_seconds(service.pgid), machine_busy_seconds(), time.monotonic()
        r = run.parse_h2load(p.stdout)
        if not r or not r.get("status_2xx") or r.get("alpn") != "h2":
            raise run.BenchError(f"{system} with {workers} workers: h2load failed\n"
                                 f"{p.stdout[-1500:]}{p.stderr[-500:]}")
        done = r["requests_done"] or 1
        return {"system": system, "workers": workers, "round": rnd, "cmd": cmd,
                "req_per_s": r["req_per_s"], "cpu_us_per_req": (cpu1 - cpu0) / done * 1e6,
                "cores": (cpu1 - cpu0) / (t1 - t0), "machine_cores": (all1 - all0) / (t1 - t0)}
    finally:
        service.stop()


def table(records, systems):
    lines = ["| system | req/s, 1 worker | req/s, 2 workers | 2 ÷ 1 | µs CPU/request, 1 | "
             "µs CPU/request, 2 | cores busy, 1 | cores busy, 2 | machine busy, 1 | "
             "machine busy, 2 |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    out = {}
    for system in systems:
        med = {}
        for w in (1, 2):
            rows = [r for r in records if r["system"] == system and r["workers"] == w]
            med[w] = {k: statistics.median(r[k] for r in rows) if rows else None
                      for k in ("req_per_s", "cpu_us_per_req", "cores", "machine_cores")}
        ratio = (med[2]["req_per_s"] / med[1]["req_per_s"]
                 if med[1]["req_per_s"] and med[2]["req_per_s"] else None)
        out[system] = dict(one=med[1], two=med[2], ratio=ratio)
        fmt = lambda v, f: f.format(v) if v is not None else "-"  # noqa: E731
        lines.append(f"| {system} | {fmt(med[1]['req_per_s'], '{:.0f}')} | "
                     f"{fmt(med[2]['req_per_s'], '{:.0f}')} | {fmt(ratio, '{:.2f}')} | "
                     f"{fmt(med[1]['cpu_us_per_req'], '{:.1f}')} | "
                     f"{fmt(med[2]['cpu_us_per_req'], '{:.1f}')} | "
                     f"{fmt(med[1]['cores'], '{:.2f}')} | {fmt(med[2]['cores'], '{:.2f}')} | "
                     f"{fmt(med[1]['machine_cores'], '{:.2f}')} | "
                     f"{fmt(med[2]['machine_cores'], '{:.2f}')} |")
    return "\n".join(lines), out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=None, help="default 3, --quick 1")
    ap.add_argument("--quick", action="store_true", help="1 round of 1 s loads")
    ap.add_argument("--systems", default=",".join(run.PROXIES))
    ap.add_argument("--out", default=os.path.join(HERE, "workers.json"))
    args = ap.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    duration = "1s" if args.quick else "5s"
    systems = [s for s in args.systems.split(",") if s]
    # Bench gives the temporary directory, the certificate and the files.
    bench = run.Bench("quick" if args.quick else "full", rounds, args.out)
    started = time.monotonic()
    records = []
    try:
        os.makedirs(os.path.dirname(bench.pushgate))
        shutil.copy2(run.PUSHGATE, bench.pushgate)
        bench.make_files()
        d = os.path.join(bench.tmp, "upstream")
        os.makedirs(d)
        bench.up_port = run.free_port()
        upstream = run.Service("upstream nginx",
                               run.upstream_nginx(d, bench.up_port, bench.docroot, workers=2), d,
                               port=bench.up_port).start()
        for rnd in range(rounds):
            order = systems[rnd % len(systems):] + systems[:rnd % len(systems)]
            for system in order:
                for workers in ((1, 2) if rnd % 2 == 0 else (2, 1)):
                    r = measure(bench, system, workers, rnd, duration)
                    records.append(r)
                    print(f"round {rnd + 1}: {system:9} {workers} worker(s) "
                          f"{r['req_per_s']:.0f} req/s, {r['cpu_us_per_req']:.1f} µs CPU/req, "
                          f"{r['cores']:.2f} cores, machine {r['machine_cores']:.2f}",
                          file=sys.stderr, flush=True)
        upstream.stop()
        text, summary = table(records, systems)
        print(text)
        with open(args.out, "w") as f:
            json.dump({"command": "python3 bench/workers.py " + " ".join(sys.argv[1:]),
                       "load": LOAD + ["-D", duration], "rounds": rounds,
                       "elapsed_s": round(time.monotonic() - started, 1),
                       "loadavg_at_end": run.loadavg(),
                       "records": [dict(r, cmd=[bench.scrub(a) for a in r["cmd"]])
                                   for r in records],
                       "summary": summary}, f, indent=1)
    finally:
        run.Service.stop_all()
        shutil.rmtree(bench.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
