"""Benchmark: how soon does a real browser show and finish a page, with pushgate's Early Hints?

Debian's headless Chromium (cold: a fresh profile and connection per load) loads one page over
TLS through bench/relay.py (50 ms added each way, so RTT 100 ms), and we read from the browser
the page's load event (PerformanceNavigationTiming.loadEventStart) and its largest contentful
paint (the last `largest-contentful-paint` entry), both in ms from the start of the navigation.

The page's upstream (this script with --serve-upstream, HTTP/1.1 keep-alive) thinks 300 ms. It
sends its own 103 naming the stylesheet at once, then the page, whose final response lists
with Link the module script, the module it imports and the hero image that module inserts
(about 0.5 MB in all). Modes, interleaved round by round (the order rotates):

  on       pushgate defaults (learning and our 103 on), the page learned by a warm-up load:
           its first 103 names all four links at once
  off      pushgate --no-early-hints --no-push-learn: the upstream's 103 is forwarded, the
           final response's links are acted on when it arrives
  nghttpx  nghttpx in front of the same upstream (it forwards the upstream's 103)

Conditions: the relay uncapped, and at 20 Mbit/s per direction (--rate-mbit). Chromium acts
on a 103 only for a navigation and only on the first one; every load's first 103 and final
response times are recorded with the numbers.

    python3 bench/early_hints_browser.py [--quick] [--rounds N] [--out FILE]
    python3 bench/early_hints_browser.py --report bench/early_hints_browser.json --markdown

A benchmark, not a test: a failed load is recorded and left out of the medians; nothing fails
on a number. Exit status 77 (skipped) when chromium is not installed.
"""
import argparse
import asyncio
import json
import os
import random
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import test_early_hints_browser as browser  # noqa: E402  (the Chromium driver and NetLog reader)
sys.path.insert(0, HERE)
from early_hints import free_port, machine_info, read_listening, wait_port  # noqa: E402

THINK_MS = 300
RTT_MS = 100
PAGE = "/page"
MODES = [
    ("on", "pushgate, hints and learning on", "pushgate", []),
    ("off", "pushgate, hints and learning off", "pushgate",
     ["--no-early-hints", "--no-push-learn"]),
    ("nghttpx", "nghttpx", "nghttpx", None),
]

# ---- The page and its upstream. ----


def png(width, height, seed=7):
    """A valid RGB PNG of noise: incompressible, like a photograph."""
    rng = random.Random(seed)
    raw = b"".join(b"\0" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                              0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def filler(line, size):
    return (line * (size // len(line) + 1))[:size]


def assets():
    """{path: (content type, body)}: what the page needs."""
    css = "h1 { font: bold 40px sans-serif; color: #123; }\nimg { display: block; }\n" + \
        filler(".unused-rule-n { margin: 1px 2px 3px 4px; color: #abcdef; }\n", 20_000)
    app = 'import { render } from "/assets/dep.js";\nrender();\n' + \
        filler("// weight only: function unused(n) { return n * 2 + 1; }\n", 30_000)
    dep = ('export function render() {\n  const img = new Image(480, 320);\n'
           '  img.src = "/assets/hero.png";\n  img.fetchPriority = "high";\n'
           '  document.body.prepend(img);\n}\n' +
           filler("// weight only: function unused(n) { return n * 3 + 1; }\n", 30_000))
    return {"/assets/app.css": ("text/css", css.encode()),
            "/assets/app.js": ("text/javascript", app.encode()),
            "/assets/dep.js": ("text/javascript", dep.encode()),
            "/assets/hero.png": ("image/png", png(480, 320))}


HINTED = ["</assets/app.css>; rel=preload; as=style"]  # the upstream's own 103
LISTED = ["</assets/app.js>; rel=modulepreload", "</assets/dep.js>; rel=modulepreload",
          "</assets/hero.png>; rel=preload; as=image; fetchpriority=high"]  # its final head

# The second origin of the `third-party` page (a font or CDN host, as most pages have): its
# stylesheet is render-blocking and blocks the module script, so the hero waits for it.
CDN_CSS = "/fonts.css"
CDN_BODY = ("body { font-family: serif; }\n" + filler(
    ".font-face-n { font-weight: 400; font-style: normal; }\n", 8_000)).encode()
PAGES = {
    "third-party": "same-origin assets and a render-blocking stylesheet from another origin, "
                   "announced in the final head with preconnect and preload",
    "same-origin": "same-origin assets only",
}


def cdn_origin(cdn_port):
    return f"https://127.0.0.1:{cdn_port}"


def listed_links(cdn_port):
    """The final head's Link fields: the third-party page also names the other origin."""
    if not cdn_port:
        return LISTED
    return LISTED + [f"<{cdn_origin(cdn_port)}>; rel=preconnect",
                     f"<{cdn_origin(cdn_port)}{CDN_CSS}>; rel=preload; as=style"]


def page_url(page, cdn_port):
    return PAGE + (f"?cdn={cdn_port}" if page == "third-party" else "")


def page_html(cdn_port=None):
    """Little text: the hero image (480x320) is the largest contentful paint."""
    third = (f'<link rel="stylesheet" href="{cdn_origin(cdn_port)}{CDN_CSS}">\n'
             if cdn_port else "")
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>early hints</title>\n"
            '<link rel="stylesheet" href="/assets/app.css">\n' + third +
            '<script type="module" src="/assets/app.js"></script>\n'
            "</head><body><h1>Early hints</h1>\n<p>The upstream takes its time.</p>\n"
            "</body></html>\n").encode()


def query_port(target):
    """The cdn=PORT of a page request, or None."""
    for part in target.partition("?")[2].split("&"):
        if part.startswith("cdn=") and part[4:].isdigit():
            return int(part[4:])
    return None


async def serve_upstream(port, cdn=None):
    """The page's upstream (HTTP/1.1), or with cdn=(cert, key) the other origin (over TLS)."""
    files = {CDN_CSS: ("text/css", CDN_BODY)} if cdn else assets()
    counts = {}

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode("latin-1")
                path = target.split("?", 1)[0]
                if path == "/_stats":
                    body = json.dumps(counts).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
                    await writer.drain()
                    continue
                counts[path] = counts.get(path, 0) + 1
                if path == PAGE and not cdn:
                    cdn_port = query_port(target)
                    writer.write(b"HTTP/1.1 103 Early Hints\r\n" + b"".join(
                        b"Link: " + v.encode() + b"\r\n" for v in HINTED) + b"\r\n")
                    await writer.drain()
                    await asyncio.sleep(THINK_MS / 1000)
                    fields = [b"Content-Type: text/html; charset=utf-8",
                              b"Cache-Control: no-cache"] + [b"Link: " + v.encode()
                                                            for v in listed_links(cdn_port)]
                    body = page_html(cdn_port)
                elif path in files:
                    ctype, body = files[path]
                    fields = [b"Content-Type: " + ctype.encode(),
                              b"Cache-Control: public, max-age=3600"]
                else:
                    fields, body = [b"Content-Type: text/plain"], b"not here\n"
                status = b"200 OK" if path == PAGE or path in files else b"404 Not Found"
                if cdn:
                    fields.append(b"Access-Control-Allow-Origin: *")
                writer.write(b"HTTP/1.1 " + status + b"\r\n" + b"".join(f + b"\r\n" for f in fields)
                             + b"Content-Length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    tls = None
    if cdn:
        import ssl
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(*cdn)
        tls.set_alpn_protocols(["http/1.1"])
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=256, ssl=tls)
    print("LISTENING", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


# ---- Processes. ----


class Procs:
    """Every server we start, each in its own session so its whole group can be ended."""

    def __init__(self):
        self.procs = []

    def start(self, argv, log_path, stdout=None):
        with open(log_path, "wb") as log:
            p = subprocess.Popen(argv, stdout=stdout or log, stderr=log,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in reversed(self.procs):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
            if p.stdout:
                p.stdout.close()
        self.procs = []


def upstream_counts(port, tls=False):
    import ssl
    import urllib.request
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/_stats"
    ctx = ssl._create_unverified_context() if tls else None  # our own test certificate
    with urllib.request.urlopen(url, timeout=10, context=ctx) as r:
        return json.loads(r.read())


# ---- One load. ----

# After the load event: the navigation's numbers, and the largest contentful paint once it has
# been still for 300 ms (the hero's entry can come a frame after the load event).
MEASURE = """new Promise(resolve => {
  const nav = performance.getEntriesByType('navigation')[0];
  let lcp = null, element = null, timer = null;
  const done = () => resolve({
    load: nav.loadEventStart, lcp: lcp, lcp_element: element,
    final: nav.finalResponseHeadersStart || nav.responseStart,
    hint: nav.firstInterimResponseStart || null,
    early: performance.getEntriesByType('resource')
      .filter(e => e.initiatorType === 'early-hints').map(e => new URL(e.name).pathname),
    hero: !!document.querySelector('img') && document.querySelector('img').complete});
  new PerformanceObserver(list => {
    const last = list.getEntries()[list.getEntries().length - 1];
    lcp = last.startTime;
    element = last.element ? last.element.tagName : null;
    clearTimeout(timer);
    timer = setTimeout(done, 300);
  }).observe({type: 'largest-contentful-paint', buffered: true});
  timer = setTimeout(done, 2000);
})"""


def load_once(port, spki, up_port, cdn_port, page, cdn_relay):
    """One cold load of `page` through the relay on `port`; cdn_relay is the other origin's
    relay (the page names it), cdn_port the other origin's server."""
    counted = [(up_port, False)] + ([(cdn_port, True)] if page == "third-party" else [])
    before = [upstream_counts(p, tls) for p, tls in counted]
    rec = {"ok": False}
    t0 = time.monotonic()
    try:
        with browser.Chromium(f"--ignore-certificate-errors-spki-list={spki}") as c:
            c.open_page()
            c.navigate(f"https://127.0.0.1:{port}{page_url(page, cdn_relay)}", timeout=30)
            rec.update(c.evaluate(MEASURE, timeout=10))
        rec["fetched"] = {}
        for (p, tls), b in zip(counted, before):
            after = upstream_counts(p, tls)
            rec["fetched"].update({k: after.get(k, 0) - b.get(k, 0) for k in after
                                   if k != PAGE and after.get(k, 0) != b.get(k, 0)})
        rec["ok"] = (rec.get("load") is not None and rec.get("lcp") is not None and
                     rec["hero"] and rec.get("lcp_element") == "IMG")
        if not rec["ok"]:
            rec["problem"] = "no load event, the hero image did not load or was not the LCP"
    except Exception as e:  # a benchmark records a failed load and goes on
        rec["problem"] = f"{type(e).__name__}: {str(e)[:300]}"
    rec["wall_ms"] = round((time.monotonic() - t0) * 1000, 1)
    for k in ("load", "lcp", "final", "hint"):
        if isinstance(rec.get(k), (int, float)):
            rec[k] = round(rec[k], 1)
    return rec


# ---- Statistics and tables. ----


def cond_label(rate):
    return f"RTT {RTT_MS} ms, " + (f"{rate:g} Mbit/s" if rate else "uncapped")


def hinted_count(page):
    """How many of the page's resources a complete first 103 names as preloads."""
    return len(HINTED) + len(LISTED) + (1 if page == "third-party" else 0)


def stats_of(result):
    out = {}
    for page, rate in [(p, r) for p in result["config"].get("pages", ["same-origin"])
                       for r in result["config"]["rates_mbit"]]:
        per = {"page": page}
        for name, desc, _, _ in MODES:
            runs = [r for r in result["runs"] if r["mode"] == name and r["rate_mbit"] == rate
                    and r.get("page", "same-origin") == page]
            good = [r for r in runs if r["ok"]]
            if not runs:
                continue
            med = lambda k: statistics.median([r[k] for r in good]) if good else None  # noqa
            per[name] = {"n": len(good), "failed": len(runs) - len(good), "load": med("load"),
                         "lcp": med("lcp"), "final": med("final"),
                         "hint": statistics.median([r["hint"] for r in good if r.get("hint")])
                         if any(r.get("hint") for r in good) else None,
                         "early": statistics.median([len(r["early"]) for r in good])
                         if good else None,
                         "load_min": min(r["load"] for r in good) if good else None,
                         "load_max": max(r["load"] for r in good) if good else None,
                         "lcp_min": min(r["lcp"] for r in good) if good else None,
                         "lcp_max": max(r["lcp"] for r in good) if good else None}
        out[f"{page} page, {cond_label(rate)}"] = per
    return out


def fmt(v):
    return f"{v:.0f}" if isinstance(v, (int, float)) else "-"


def print_tables(result, out=sys.stdout, markdown=False):
    for cond, per in result["stats"].items():
        on = per.get("on") or {}
        of = hinted_count(per.get("page", "same-origin"))
        if markdown:
            print(f"\n**{cond}**, upstream think time {THINK_MS} ms, ms from navigation start "
                  "(median of n; min-max)\n", file=out)
            print("| mode | load event | LCP | load saved by `on` | LCP saved by `on` | "
                  "first 103 | final response | preloaded from a 103 | n |", file=out)
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|", file=out)
        else:
            print(f"\n{cond}, think {THINK_MS} ms: ms from navigation start (medians)", file=out)
            print(f"{'mode':<36} {'load':>6} {'lcp':>6} {'-load':>6} {'-lcp':>6} {'103':>6} "
                  f"{'final':>6} {'early':>5} {'n':>3}", file=out)
        for name, desc, _, _ in MODES:
            s = per.get(name)
            if not isinstance(s, dict):
                continue
            dl = s["load"] - on["load"] if s["load"] is not None and on.get("load") else None
            dp = s["lcp"] - on["lcp"] if s["lcp"] is not None and on.get("lcp") else None
            if markdown:
                print(f"| {name}: {desc} | {fmt(s['load'])} ({fmt(s['load_min'])}-"
                      f"{fmt(s['load_max'])}) | {fmt(s['lcp'])} ({fmt(s['lcp_min'])}-"
                      f"{fmt(s['lcp_max'])}) | {fmt(dl) if name != 'on' else ''} | "
                      f"{fmt(dp) if name != 'on' else ''} | {fmt(s['hint'])} | "
                      f"{fmt(s['final'])} | {fmt(s['early'])} of {of} | {s['n']} |", file=out)
            else:
                print(f"{name + ': ' + desc:<36} {fmt(s['load']):>6} {fmt(s['lcp']):>6} "
                      f"{fmt(dl) if name != 'on' else '':>6} {fmt(dp) if name != 'on' else '':>6}"
                      f" {fmt(s['hint']):>6} {fmt(s['final']):>6} {fmt(s['early']):>5} "
                      f"{s['n']:>3}", file=out)
    if not markdown:
        print("-load/-lcp: how much later than `on`; 103/final: when the first 103 and the "
              "final response head arrived; early: resources the page took from a 103 "
              "preload", file=out)


def shown_arg(arg):
    """An argument for the record: no path of this machine outside the repository."""
    if not os.path.isabs(arg):
        return arg
    r = os.path.relpath(arg, ROOT)
    return r if not r.startswith("..") else "<" + os.path.basename(arg) + ">"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 round (a smoke run, under a minute)")
    ap.add_argument("--rounds", type=int, help="rounds (default 5, --quick 1)")
    ap.add_argument("--rate-mbit", default="0,20",
                    help="comma-separated relay capacities per direction, each a condition; "
                         "0 is uncapped (default 0,20)")
    ap.add_argument("--out", default=os.path.join(HERE, "early_hints_browser.json"))
    ap.add_argument("--pushgate", default=os.environ.get(
        "PUSHGATE", os.path.join(ROOT, "build", "pushgate")))
    ap.add_argument("--nghttpx", default="/usr/sbin/nghttpx")
    ap.add_argument("--report", metavar="JSON", help="print the tables of an earlier run")
    ap.add_argument("--markdown", action="store_true", help="with --report: Markdown tables")
    ap.add_argument("--pages", default=",".join(PAGES),
                    help="comma-separated page shapes (default: " + ",".join(PAGES) + "): " +
                    "; ".join(f"{k}: {v}" for k, v in PAGES.items()))
    ap.add_argument("--serve-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--serve-cdn", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--cert", help=argparse.SUPPRESS)
    ap.add_argument("--key", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_upstream is not None:
        asyncio.run(serve_upstream(args.serve_upstream))
        return
    if args.serve_cdn is not None:
        asyncio.run(serve_upstream(args.serve_cdn, cdn=(args.cert, args.key)))
        return
    if args.report:
        with open(args.report) as f:
            print_tables(json.load(f), markdown=args.markdown)
        return
    if not browser.CHROMIUM:
        print("chromium is not installed (deploy/dev.sh installs it): skipped", file=sys.stderr)
        sys.exit(77)
    rounds = args.rounds or (1 if args.quick else 5)
    rates = [float(x) for x in args.rate_mbit.split(",") if x.strip()]
    pages = [x.strip() for x in args.pages.split(",") if x.strip()]
    for page in pages:
        if page not in PAGES:
            print(f"--pages: unknown page {page!r} (known: {', '.join(PAGES)})",
                  file=sys.stderr)
            sys.exit(2)
    modes = list(MODES)
    notes = []
    if not os.path.exists(args.nghttpx):
        notes.append(f"{args.nghttpx} not found: nghttpx left out")
        modes = [m for m in modes if m[2] != "nghttpx"]

    def on_term(signum, frame):
        raise SystemExit(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    procs = Procs()
    tmp = tempfile.mkdtemp(prefix="early_hints_browser.")
    started = time.monotonic()
    result = {
        "what": "headless Chromium, cold (fresh profile and connection per load), TLS through "
                "bench/relay.py: loadEventStart and the last largest-contentful-paint startTime, "
                "ms from navigation start",
        "config": {"think_ms": THINK_MS, "rtt_ms": RTT_MS, "rounds": rounds, "rates_mbit": rates,
                   "pages": pages, "upstream_103": HINTED, "final_links": LISTED,
                   "third_party_final_links": listed_links("CDN"),
                   "third_party_bytes": len(CDN_BODY), "relay_tcp_handshake": True,
                   "asset_bytes": {p: len(b) for p, (_, b) in assets().items()},
                   "page_bytes": len(page_html()),
                   "modes": {n: {"desc": d, "server": s, "flags": f} for n, d, s, f in modes},
                   "chromium_flags": list(browser.CHROMIUM_FLAGS) +
                   ["--remote-debugging-pipe", "--user-data-dir=<fresh>",
                    "--ignore-certificate-errors-spki-list=<the test certificate>"]},
        "command": "python3 bench/early_hints_browser.py " +
                   " ".join(shlex.quote(shown_arg(a)) for a in sys.argv[1:]),
        "machine": machine_info(["chromium", "nghttp2-proxy", "openssl"]),
        "notes": notes,
        "servers": {},
        "runs": [],
    }

    def save():
        result["elapsed_s"] = round(time.monotonic() - started, 1)
        result["stats"] = stats_of(result)
        with open(args.out + ".tmp", "w") as f:
            json.dump(result, f, indent=1)
        os.replace(args.out + ".tmp", args.out)

    try:
        pushgate = os.path.join(tmp, "pushgate")  # a copy: the build may change meanwhile
        shutil.copy2(args.pushgate, pushgate)
        try:
            result["config"]["git"] = subprocess.run(
                ["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True,
                timeout=10).stdout.decode().strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
        dir_cert = os.path.join(tmp, "cert")
        os.mkdir(dir_cert)
        cert, key = browser.make_cert(dir_cert)
        spki = browser.spki_sha256(cert)
        up = procs.start([sys.executable, os.path.abspath(__file__), "--serve-upstream", "0"],
                         os.path.join(tmp, "upstream.log"), stdout=subprocess.PIPE)
        up_port = read_listening(up, "the page upstream")
        result["servers"]["upstream"] = "python3 bench/early_hints_browser.py --serve-upstream 0"
        cdn = procs.start([sys.executable, os.path.abspath(__file__), "--serve-cdn", "0",
                           "--cert", cert, "--key", key], os.path.join(tmp, "cdn.log"),
                          stdout=subprocess.PIPE)
        cdn_port = read_listening(cdn, "the other origin")
        result["servers"]["third-party origin"] = \
            "python3 bench/early_hints_browser.py --serve-cdn 0 (TLS, HTTP/1.1)"
        ports = {}
        for name, _, server, flags in modes:
            port = free_port()
            if server == "nghttpx":
                argv = [args.nghttpx, "--conf=/dev/null", "--workers=1",
                        f"-f127.0.0.1,{port}", f"-b127.0.0.1,{up_port}", "--no-ocsp", key, cert]
                shown = ["nghttpx"]
            else:
                argv = [pushgate, "--upstream", f"http://127.0.0.1:{up_port}", "--listen",
                        f"127.0.0.1:{port}", "--log-level", "warn", "--tls-cert", cert,
                        "--tls-key", key, *flags]
                shown = ["pushgate"]
            p = procs.start(argv, os.path.join(tmp, name + ".log"))
            wait_port(port, p, name)
            ports[name] = port
            result["servers"][name] = " ".join(shown + [
                a.replace(tmp, "$TMP").replace(str(port), "P").replace(str(up_port), "UP")
                for a in argv[1:]])
        relays = {}
        # One relay per server and condition, and one per condition for the other origin:
        # its own path, as a CDN's is. Each emulates the TCP handshake, so a new connection
        # costs what it costs on a real network (one RTT, then TLS's).
        for rate in rates:
            for name, target in [(m[0], ports[m[0]]) for m in modes] + [("cdn", cdn_port)]:
                opts = ["--rtt-ms", str(RTT_MS), "--port", "0", "--tcp-handshake"] + \
                    (["--rate-mbit", f"{rate:g}"] if rate else [])
                p = procs.start([sys.executable, os.path.join(HERE, "relay.py"), "--target",
                                 f"127.0.0.1:{target}", *opts],
                                os.path.join(tmp, f"relay-{name}-{rate:g}.log"),
                                stdout=subprocess.PIPE)
                relays[(rate, name)] = read_listening(p, "relay.py")
                result["servers"][f"relay {name} {cond_label(rate)}"] = \
                    "python3 bench/relay.py --target 127.0.0.1:<its server> " + " ".join(opts)

        def load(rate, name, page):
            return load_once(relays[(rate, name)], spki, up_port, cdn_port, page,
                             relays[(rate, "cdn")])

        # Warm-up: one load per page, mode and condition (upstream connections open; `on`
        # learns the page under the authority the browser uses, the relay's).
        result["warmup"] = {}
        for page in pages:
            for rate in rates:
                for name, _, _, _ in modes:
                    w = load(rate, name, page)
                    result["warmup"][f"{name} {page} {cond_label(rate)}"] = w
                    if not w["ok"]:
                        print(f"warning: warm-up {name} {page} {cond_label(rate)}: "
                              f"{w.get('problem')}", file=sys.stderr)
        save()
        for rnd in range(rounds):
            for ci, (page, rate) in enumerate([(p, r) for p in pages for r in rates]):
                k = (rnd + ci) % len(modes)
                for name, _, _, _ in modes[k:] + modes[:k]:
                    r = load(rate, name, page)
                    r.update({"round": rnd, "mode": name, "rate_mbit": rate, "page": page})
                    result["runs"].append(r)
                    if not r["ok"]:
                        print(f"warning: round {rnd + 1} {name} {page} {cond_label(rate)}: "
                              f"{r.get('problem')}", file=sys.stderr)
            save()
            print(f"round {rnd + 1}/{rounds} done ({time.monotonic() - started:.0f} s)",
                  file=sys.stderr)
        try:
            with open("/proc/loadavg") as f:
                result["machine"]["loadavg_end"] = f.read().split()[:3]
        except OSError:
            pass
        save()
        print_tables(result)
        print(f"\nraw numbers: {os.path.relpath(args.out, ROOT)} "
              f"(elapsed {result['elapsed_s']} s)")
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
