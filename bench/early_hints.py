"""Benchmark: how soon does a page's last subresource arrive with push, learned push and 103?

One page, /t200/index.html of bench/push_upstream.py: the upstream thinks 200 ms, then answers
with 20 `Link: </assets/N>; rel=preload` fields (about 0.7 MB of assets). A browser-like client
(tests/tools/h2client with --fetch-links: it GETs the preload targets of a 103 or of the final
response that were not pushed to it) loads the page over a fresh HTTP/2 connection through
bench/relay.py (RTT/2 added per direction) and we take the time from client start to the close
of its last stream (h2client `done.last_close_t`). Scenarios:

  a    pushgate --no-push --no-early-hints --no-push-learn   client --no-push --fetch-links
  b    pushgate --no-push-learn (push from the final response) client push + --fetch-links
  c    pushgate defaults (learned push), warmed up            client push + --fetch-links
  d    pushgate defaults (learned 103), warmed up             client --no-push --fetch-links
  a'   nghttpx, no push                                       client --no-push --fetch-links
  b'   nghttpx, push from Link preload (its default)          client push + --fetch-links
  b20  extra: b with --max-pushes-per-response 20 (the page has 20 preloads, the default is 16)
  c20  extra: c with --max-pushes-per-response 20

    python3 bench/early_hints.py [--quick] [--rounds N] [--out FILE] [--rate-mbit 0,20]
    python3 bench/early_hints.py --report bench/early_hints.json [--markdown]

Each scenario is measured under each link condition: RTT 50 and 100 ms, and link capacity
uncapped and 20 Mbit/s per direction (--rate-mbit; 0 is uncapped). Uncapped, the assets take
no time to transfer and only round trips count; at 20 Mbit/s the 0.7 MB of assets take about
280 ms, so what matters is whether the link is busy during the upstream's think time.

Every server is warmed up once (one page load on its own connection, not through the relay,
with the same :authority as the timed runs) so upstream connections are open and pages learned.
Rounds interleave all scenarios (rotating their order) for each RTT. A benchmark, not a test:
a failed run is recorded and left out of the statistics; nothing fails on a number.
"""
import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ left behind by this import
import push_upstream  # noqa: E402  (for the expected byte count only)

PAGE = "/t200/index.html"
THINK_MS = 200
AUTHORITY = "bench.test"
RTTS = (50, 100)
WINDOW = 6 * 1024 * 1024  # client stream and connection window, browser-like (Chrome: 6 MiB)
EXPECTED_STREAMS = 1 + len(push_upstream.ASSET_KINDS)
EXPECTED_BYTES = len(push_upstream.page_html()) + sum(
    len(b) for _, b in push_upstream.make_assets().values())

# name, description, server, client accepts push
SCENARIOS = [
    ("a", "no push, no hints (pushgate)", "pg_plain", False),
    ("b", "push from final response (pushgate)", "pg_final", True),
    ("c", "learned push (pushgate)", "pg_learn", True),
    ("d", "learned 103 Early Hints (pushgate)", "pg_learn", False),
    ("a'", "no push (nghttpx)", "nghttpx", False),
    ("b'", "push (nghttpx)", "nghttpx", True),
    ("b20", "extra: b, --max-pushes-per-response 20", "pg_final20", True),
    ("c20", "extra: c, --max-pushes-per-response 20", "pg_learn20", True),
]

PUSHGATE_FLAGS = {
    "pg_plain": ["--no-push", "--no-early-hints", "--no-push-learn"],
    "pg_final": ["--no-push-learn"],
    "pg_learn": [],
    "pg_final20": ["--no-push-learn", "--max-pushes-per-response", "20"],
    "pg_learn20": ["--max-pushes-per-response", "20"],
}


class Procs:
    """Every process we start, each in its own session so its whole group can be ended."""

    def __init__(self):
        self.procs = []

    def start(self, argv, log_path, **kw):
        log = open(log_path, "wb")
        p = subprocess.Popen(argv, stdout=kw.pop("stdout", log), stderr=log,
                             stdin=subprocess.DEVNULL, start_new_session=True, **kw)
        log.close()
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for p in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
            if p.stdout:
                p.stdout.close()
        self.procs = []


def rel(path):
    """A path for the record: relative to the repository when inside it."""
    try:
        r = os.path.relpath(path, ROOT)
    except ValueError:
        return path
    return path if r.startswith("..") else r


def cmdline(argv, tmp):
    """A command line for the record, with repository and temporary paths made relative."""
    out = []
    for a in argv:
        a = str(a)
        if tmp and tmp in a:
            a = a.replace(tmp, "$TMP")
        elif a.startswith(ROOT + os.sep):
            a = rel(a)
        out.append(a)
    return " ".join(shlex.quote(a) for a in out)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} does not accept connections on port {port}")


def read_listening(proc, what, timeout=10.0):
    """Port from the 'LISTENING <port>' line of relay.py / push_upstream.py."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
            break
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
        for line in buf.decode(errors="replace").split("\n")[:-1]:  # complete lines only
            if line.startswith("LISTENING ") and len(line.split()) == 2:
                sel.close()
                return int(line.split()[1])
    sel.close()
    raise RuntimeError(f"{what} did not print LISTENING (exit status {proc.poll()})")


def h2client_supports_fetch_links(path):
    try:
        r = subprocess.run([path, "--help"], capture_output=True, timeout=5)
    except OSError:
        return False
    return b"--fetch-links" in r.stdout


def find_h2client(arg, tmp, notes):
    if arg:
        if not h2client_supports_fetch_links(arg):
            raise SystemExit(f"{arg} has no --fetch-links")
        return arg
    built = os.path.join(ROOT, "build", "tests", "h2client")
    if h2client_supports_fetch_links(built):
        return built
    # build/ predates --fetch-links: compile the client alone (one gcc command, no meson)
    out = os.path.join(tmp, "h2client")
    cmd = ["gcc", "-std=c11", "-O2", "-o", out, os.path.join(ROOT, "tests", "tools", "h2client.c"),
           "-lnghttp2", "-lssl", "-lcrypto"]
    subprocess.run(cmd, check=True)
    notes.append("build/tests/h2client lacked --fetch-links; compiled with: " + cmdline(cmd, tmp))
    return out


def make_cert(tmp):
    key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=bench.test"],
                   check=True, capture_output=True)
    return key, cert


def run_client(h2client, port, push, tls, tmp, timeout=20.0):
    argv = [h2client, "--fetch-links", "--window", str(WINDOW), "--timeout", "15",
            "--authority", AUTHORITY]
    if tls:
        argv.append("--tls")
    if not push:
        argv.append("--no-push")
    argv += ["127.0.0.1", str(port), PAGE]
    t0 = time.monotonic()
    try:
        r = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        rc, out, err = r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(
            errors="replace")
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, (e.stdout or b"").decode(errors="replace"), "killed after timeout"
    wall_ms = (time.monotonic() - t0) * 1000
    rec = {"rc": rc, "wall_ms": round(wall_ms, 1), "cmd": cmdline(argv, tmp)}
    events = []
    for line in out.splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                pass
    done = next((e for e in events if e.get("ev") == "done"), None)
    errors = [e.get("msg") for e in events if e.get("ev") in ("error", "timeout")]
    page_hdr = [e for e in events if e.get("ev") == "headers" and e.get("stream") == 1]
    hints = [e["t"] for e in page_hdr if 100 <= e.get("status", 0) < 200]
    final = [e["t"] for e in page_hdr if e.get("status", 0) >= 200]
    page_close = [e["t"] for e in events if e.get("ev") == "close" and e.get("stream") == 1]
    rec.update({
        "last_close_t": done.get("last_close_t") if done else None,
        "completed": done.get("completed") if done else None,
        "bytes": done.get("bytes") if done else None,
        "pushed": done.get("pushed") if done else None,
        "fetched": done.get("fetched") if done else None,
        "first_hint_t": hints[0] if hints else None,
        "response_t": final[0] if final else None,
        "page_close_t": page_close[0] if page_close else None,
    })
    ok = (rc == 0 and done is not None and rec["last_close_t"] is not None
          and rec["completed"] == EXPECTED_STREAMS and rec["bytes"] == EXPECTED_BYTES)
    rec["ok"] = ok
    if not ok:
        rec["problem"] = "; ".join(x for x in errors if x) or err.strip()[-300:] or (
            f"rc={rc}, completed={rec['completed']}, bytes={rec['bytes']}")
    return rec


def summarize(values):
    if not values:
        return None
    return {"n": len(values), "median": statistics.median(values), "min": min(values),
            "max": max(values)}


def fmt(v, width=7):
    return f"{v:{width}.1f}" if isinstance(v, (int, float)) else f"{'-':>{width}}"


def num(v):
    return f"{v:g}" if isinstance(v, (int, float)) else "-"


def link_label(rate):
    return f"{rate:g} Mbit/s" if rate else "uncapped"


def cond_key(rate, rtt):
    return f"{link_label(rate)}, RTT {rtt:g} ms"


def print_tables(result, out=sys.stdout, markdown=False):
    for rate in result["config"]["rates_mbit"]:
        for rtt in result["config"]["rtts_ms"]:
            (print_markdown if markdown else print_table)(result, rate, rtt, out)


def print_markdown(result, rate, rtt, out):
    stats = result["stats"].get(cond_key(rate, rtt), {})
    base = (stats.get("a") or {}).get("median")
    print(f"\n**RTT {rtt} ms, link {link_label(rate)}** (ms until the last subresource "
          "arrived)\n", file=out)
    print("| scenario | median | min | max | saving vs (a) | n | page arrived | pushed | fetched |",
          file=out)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|", file=out)
    for name, desc, _, _ in SCENARIOS:
        s = stats.get(name)
        if s is None:
            continue
        saving = base - s["median"] if (base is not None and s["median"] is not None) else None
        cells = [f"({name}) {desc}", *(fmt(s[k]).strip() for k in ("median", "min", "max")),
                 fmt(saving).strip(), str(s["n"]), fmt(s["page_close_median"]).strip(),
                 num(s["pushed"]), num(s["fetched"])]
        print("| " + " | ".join(cells) + " |", file=out)


def print_table(result, rate, rtt, out):
    stats = result["stats"].get(cond_key(rate, rtt), {})
    base = (stats.get("a") or {}).get("median")
    print(f"\nRTT {rtt} ms, link {link_label(rate)}, think time {THINK_MS} ms, "
          f"{'TLS' if result['config']['tls'] else 'h2c'}: "
          "time until the last subresource arrived, ms", file=out)
    print(f"{'scenario':<48} {'median':>7} {'min':>7} {'max':>7} {'saving':>7} "
          f"{'n':>3} {'page':>7} {'pushed':>6} {'fetched':>7}", file=out)
    for name, desc, _, _ in SCENARIOS:
        s = stats.get(name)
        if s is None:
            continue
        saving = base - s["median"] if (base is not None and s["median"] is not None) else None
        print(f"{'(' + name + ') ' + desc:<48} {fmt(s['median'])} {fmt(s['min'])} "
              f"{fmt(s['max'])} {fmt(saving)} {s['n']:>3} {fmt(s['page_close_median'])} "
              f"{num(s['pushed']):>6} {num(s['fetched']):>7}", file=out)
    print("saving: median of (a) minus this median; page: median time the page itself "
          "had arrived;\npushed/fetched: median assets pushed / requested by the client; "
          "n: successful runs", file=out)


def machine_info(packages=("nghttp2-proxy", "nghttp2-client", "libnghttp2-14", "openssl")):
    """The machine and the versions of the packages that matter, for the record."""
    info = {"nproc": os.cpu_count(), "platform": platform.platform()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info["loadavg_start"] = open("/proc/loadavg").read().split()[:3]
    except OSError:
        pass
    try:
        r = subprocess.run(["dpkg-query", "-W", *packages], capture_output=True, timeout=10)
        info["packages"] = r.stdout.decode().strip().splitlines()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 round (smoke run, under a minute)")
    ap.add_argument("--rounds", type=int, help="rounds (default 7, --quick 1)")
    ap.add_argument("--out", default=os.path.join(HERE, "early_hints.json"))
    ap.add_argument("--rate-mbit", default="0,20",
                    help="comma-separated relay link capacities per direction, Mbit/s, each a "
                         "condition of its own; 0 means uncapped (default 0,20)")
    ap.add_argument("--h2c", action="store_true", help="cleartext h2c instead of TLS")
    ap.add_argument("--scenarios", help="comma-separated subset, e.g. a,c,d")
    ap.add_argument("--pushgate", default=os.path.join(ROOT, "build", "pushgate"))
    ap.add_argument("--nghttpx", default="/usr/sbin/nghttpx")
    ap.add_argument("--h2client", help="h2client binary with --fetch-links "
                    "(default build/tests/h2client, else compiled with gcc into a temp dir)")
    ap.add_argument("--report", metavar="JSON",
                    help="do not measure: print the tables of an earlier run's JSON file")
    ap.add_argument("--markdown", action="store_true", help="with --report: Markdown tables")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            print_tables(json.load(f), markdown=args.markdown)
        return
    rounds = args.rounds or (1 if args.quick else 7)
    tls = not args.h2c
    rates = [float(x) for x in args.rate_mbit.split(",") if x.strip()]
    conditions = [(rate, rtt) for rate in rates for rtt in RTTS]

    scenarios = SCENARIOS
    if args.scenarios:
        want = set(args.scenarios.split(","))
        scenarios = [s for s in SCENARIOS if s[0] in want]
    notes = []
    if not os.path.exists(args.nghttpx):
        notes.append(f"{args.nghttpx} not found: nghttpx scenarios skipped")
        scenarios = [s for s in scenarios if s[2] != "nghttpx"]
    servers_needed = sorted({s[2] for s in scenarios})

    def on_term(signum, frame):
        raise SystemExit(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    procs = Procs()
    tmp = tempfile.mkdtemp(prefix="early_hints.")
    started = time.monotonic()
    result = {
        "what": "ms from h2client start to the close of its last stream (done.last_close_t), "
                "fresh TLS/h2c connection through bench/relay.py per run",
        "config": {"page": PAGE, "think_ms": THINK_MS, "rtts_ms": list(RTTS), "rounds": rounds,
                   "tls": tls, "rates_mbit": rates, "client_window": WINDOW,
                   "authority": AUTHORITY, "expected_streams": EXPECTED_STREAMS,
                   "expected_bytes": EXPECTED_BYTES,
                   "scenarios": {n: {"desc": d, "server": s, "client_push": p}
                                 for n, d, s, p in scenarios}},
        "command": "python3 bench/early_hints.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "machine": machine_info(),
        "notes": notes,
        "servers": {},
        "warmup": {},
        "runs": [],
    }

    def save():
        result["elapsed_s"] = round(time.monotonic() - started, 1)
        stats = {}
        for rate, rtt in conditions:
            per = {}
            for name, _, _, _ in scenarios:
                runs = [r for r in result["runs"] if r["rtt_ms"] == rtt and
                        r["rate_mbit"] == rate and r["scenario"] == name]
                good = [r for r in runs if r["ok"]]
                s = summarize([r["last_close_t"] for r in good])
                if s is None:
                    s = {"n": 0, "median": None, "min": None, "max": None}
                s["failed"] = len(runs) - len(good)
                s["pushed"] = statistics.median([r["pushed"] for r in good]) if good else None
                s["fetched"] = statistics.median([r["fetched"] for r in good]) if good else None
                pages = [r["page_close_t"] for r in good if r["page_close_t"] is not None]
                s["page_close_median"] = statistics.median(pages) if pages else None
                per[name] = s
            stats[cond_key(rate, rtt)] = per
        result["stats"] = stats
        with open(args.out + ".tmp", "w") as f:
            json.dump(result, f, indent=1)
        os.replace(args.out + ".tmp", args.out)

    display = {}
    try:
        h2client = find_h2client(args.h2client, tmp, notes)
        result["config"]["h2client"] = rel(h2client) if not h2client.startswith(tmp) else \
            "$TMP/h2client (compiled from tests/tools/h2client.c)"
        # run from a copy taken now: build/pushgate may be rebuilt while we measure
        pushgate = os.path.join(tmp, "pushgate")
        shutil.copy2(args.pushgate, pushgate)
        display["pushgate"] = rel(args.pushgate) + " (a copy taken at start)"
        result["config"]["pushgate"] = display["pushgate"]
        result["config"]["pushgate_version"] = subprocess.run(
            [pushgate, "--version"], capture_output=True, timeout=10).stdout.decode().strip()
        try:
            result["config"]["git"] = subprocess.run(
                ["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                timeout=10).stdout.decode().strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
        key = cert = None
        if tls:
            key, cert = make_cert(tmp)

        up = procs.start([sys.executable, os.path.join(HERE, "push_upstream.py"), "--port", "0"],
                         os.path.join(tmp, "upstream.log"), stdout=subprocess.PIPE)
        up_port = read_listening(up, "push_upstream.py")
        result["servers"]["upstream"] = cmdline(
            ["python3", os.path.join(HERE, "push_upstream.py"), "--port", "0"],
            tmp)

        ports = {}
        for name in servers_needed:
            port = free_port()
            if name == "nghttpx":
                if args.nghttpx == "/usr/sbin/nghttpx":
                    display["nghttpx"] = "nghttpx"
                front = f"127.0.0.1,{port}" + ("" if tls else ";no-tls")
                argv = [args.nghttpx, "--conf=/dev/null", "--workers=1", f"-f{front}",
                        f"-b127.0.0.1,{up_port}", "--no-ocsp"]
                if tls:
                    argv += [key, cert]
            else:
                argv = [pushgate, "--upstream", f"http://127.0.0.1:{up_port}",
                        "--listen", f"127.0.0.1:{port}", "--log-level", "warn",
                        *PUSHGATE_FLAGS[name]]
                if tls:
                    argv += ["--tls-cert", cert, "--tls-key", key]
            p = procs.start(argv, os.path.join(tmp, name + ".log"))
            wait_port(port, p, name)
            ports[name] = port
            shown = display.get(name) or display["pushgate"].split()[0]
            result["servers"][name] = cmdline([shown] + argv[1:], tmp)

        relays = {}
        for rate, rtt in conditions:
            for name in servers_needed:
                opts = ["--rtt-ms", f"{rtt:g}", "--port", "0"]
                if rate:
                    opts += ["--rate-mbit", f"{rate:g}"]
                argv = [sys.executable, os.path.join(HERE, "relay.py"), "--target",
                        f"127.0.0.1:{ports[name]}", *opts]
                tag = f"relay_{name}_{rtt:g}ms_{link_label(rate).replace(' ', '').replace('/', '')}"
                p = procs.start(argv, os.path.join(tmp, tag + ".log"), stdout=subprocess.PIPE)
                relays[(rate, rtt, name)] = read_listening(p, tag)
                result["servers"][tag] = cmdline(
                    ["python3", os.path.join(HERE, "relay.py"), "--target",
                     f"127.0.0.1:<{name} port>", *opts], tmp)

        # warm-up: one page load per server on its own connection, straight to the server
        for name in servers_needed:
            w = run_client(h2client, ports[name], True, tls, tmp)
            w["cmd"] = w["cmd"].replace(f" {ports[name]} ", f" <{name} port> ")
            result["warmup"][name] = w
            if not w["ok"]:
                print(f"warning: warm-up on {name} failed: {w.get('problem')}", file=sys.stderr)
        save()

        for rnd in range(rounds):
            for ci, (rate, rtt) in enumerate(conditions):
                k = (rnd * len(conditions) + ci) % len(scenarios)
                order = scenarios[k:] + scenarios[:k]
                for name, _, server, push in order:
                    port = relays[(rate, rtt, server)]
                    r = run_client(h2client, port, push, tls, tmp)
                    r["cmd"] = r["cmd"].replace(
                        f" {port} ", f" <relay port: {server}, {cond_key(rate, rtt)}> ")
                    r.update({"round": rnd, "rate_mbit": rate, "rtt_ms": rtt, "scenario": name})
                    result["runs"].append(r)
                    if not r["ok"]:
                        print(f"warning: round {rnd + 1}, {cond_key(rate, rtt)}, ({name}) "
                              f"failed: {r.get('problem')}", file=sys.stderr)
                    time.sleep(0.02)
            save()
            print(f"round {rnd + 1}/{rounds} done ({time.monotonic() - started:.0f} s)",
                  file=sys.stderr)
        dead = [n for n, p in zip(["upstream"] + servers_needed, procs.procs)
                if p.poll() is not None]
        if dead:
            notes.append("processes that exited during the run: " + ", ".join(dead))
        save()
        print_tables(result)
        print(f"\nraw numbers and command lines: {rel(args.out)} "
              f"(elapsed {result['elapsed_s']} s)")
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
