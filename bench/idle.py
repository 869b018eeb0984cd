"""Holds many idle TLS connections open against a server (standard library only).

HTTP/2 (the default): each connection does the TLS handshake with ALPN h2, sends the client
connection preface and an empty SETTINGS frame, waits for the server's SETTINGS and acknowledges
it, then stays open and idle (still answering SETTINGS and PING, so no server drops it for being
unresponsive). HTTP/1.1 (--http1 PATH): ALPN http/1.1, one keep-alive GET for PATH read to its
end (Content-Length), then idle, as a browser's or a monitor's spare connection is. Used by
bench/run.py to measure the server's memory per idle connection; runnable alone as

    python3 bench/idle.py PORT [N] [--hold SECONDS] [--http1 PATH] [--pid PID]
"""
import argparse
import asyncio
import ssl
import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, PING, GOAWAY = 0x4, 0x6, 0x7
ACK = 0x1


def frame(ftype, flags=0, payload=b"", stream=0):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def client_context(alpn="h2"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols([alpn])
    return ctx


class IdleHttp1Connection:
    """An HTTP/1.1 keep-alive connection after one complete response; notices a close."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.open = True
        self.task = None

    async def first_response(self, path):
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if status != b"200" or length == 0 and b"chunked" in head.lower():
            raise ConnectionError(f"unexpected response head: {head[:200]!r}")
        await self.reader.readexactly(length)
        self.task = asyncio.create_task(self.watch())

    async def watch(self):
        try:
            await self.reader.read(1)  # EOF (or anything) means the server let go
        except (ConnectionError, ssl.SSLError):
            pass
        self.open = False

    def close(self):
        if self.task:
            self.task.cancel()
        self.writer.close()


class IdleConnection:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.open = True
        self.settings_seen = asyncio.Event()
        self.task = asyncio.create_task(self.serve())

    async def serve(self):
        """Reads frames until EOF, acknowledging SETTINGS and PING."""
        try:
            while True:
                head = await self.reader.readexactly(9)
                length = int.from_bytes(head[:3], "big")
                ftype, flags = head[3], head[4]
                payload = await self.reader.readexactly(length) if length else b""
                if ftype == SETTINGS and not flags & ACK:
                    self.writer.write(frame(SETTINGS, ACK))
                    self.settings_seen.set()
                elif ftype == PING and not flags & ACK:
                    self.writer.write(frame(PING, ACK, payload))
                elif ftype == GOAWAY:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            self.open = False
            self.settings_seen.set()

    def close(self):
        self.task.cancel()
        self.writer.close()


async def connect(port, ctx, limit, host="127.0.0.1", timeout=20.0, http1_path=None):
    async with limit:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx, server_hostname="localhost"), timeout)
        alpn = writer.get_extra_info("ssl_object").selected_alpn_protocol()
        if http1_path:
            if alpn not in (None, "http/1.1"):
                writer.close()
                raise ConnectionError(f"server chose ALPN {alpn!r}, not http/1.1")
            conn = IdleHttp1Connection(reader, writer)
            await asyncio.wait_for(conn.first_response(http1_path), timeout)
            return conn
        if alpn != "h2":
            writer.close()
            raise ConnectionError(f"server chose ALPN {alpn!r}, not h2")
        writer.write(PREFACE + frame(SETTINGS))
        conn = IdleConnection(reader, writer)
        await asyncio.wait_for(conn.settings_seen.wait(), timeout)
        if not conn.open:
            raise ConnectionError("server closed the connection during the HTTP/2 preface")
        return conn


async def hold(port, count, on_held=None, settle=0.5, concurrency=32, http1_path=None):
    """Opens `count` idle connections (HTTP/1.1 after one GET of http1_path when given), waits
    `settle` seconds, calls `on_held()` (its result is returned as "measured") while they are
    all held, then closes them. Raises on any failure."""
    ctx = client_context("http/1.1" if http1_path else "h2")
    limit = asyncio.Semaphore(concurrency)
    results = await asyncio.gather(
        *(connect(port, ctx, limit, http1_path=http1_path) for _ in range(count)),
        return_exceptions=True)
    kinds = (IdleConnection, IdleHttp1Connection)
    conns = [r for r in results if isinstance(r, kinds)]
    errors = [r for r in results if not isinstance(r, kinds)]
    try:
        if errors:
            raise ConnectionError(f"{len(errors)} of {count} idle connections failed, first: "
                                  f"{errors[0]!r}")
        await asyncio.sleep(settle)
        measured = on_held() if on_held else None
        still_open = sum(c.open for c in conns)
        return {"opened": len(conns), "still_open": still_open, "measured": measured}
    finally:
        for c in conns:
            c.close()
        await asyncio.sleep(0)


async def warm_up(port, http1_path=None, concurrency=32, settle=0.5):
    """Opens as many connections as hold() runs at once, does what each of them does and closes
    them: what a server sets up once (TLS library tables, upstream connection pools, allocator
    pages) is then in place before the baseline is read, and is not charged to each idle
    connection. The cold figure (baseline before the warm-up) is reported beside it."""
    r = await hold(port, concurrency, settle=0, concurrency=concurrency, http1_path=http1_path)
    await asyncio.sleep(settle)  # the server notices the closes and frees what they held
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int)
    ap.add_argument("count", type=int, nargs="?", default=100)
    ap.add_argument("--hold", type=float, default=1.0, help="seconds to hold them")
    ap.add_argument("--http1", metavar="PATH", help="HTTP/1.1 keep-alive after one GET of PATH")
    ap.add_argument("--pid", type=int, help="report this process's PSS growth per connection")
    ap.add_argument("--no-warmup", action="store_true",
                    help="baseline on the fresh process (one-time setup charged to the count)")
    args = ap.parse_args()

    def pss():
        with open(f"/proc/{args.pid}/smaps_rollup") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("Pss:"))

    cold = pss() if args.pid else None
    if not args.no_warmup:
        asyncio.run(warm_up(args.port, http1_path=args.http1))
    before = pss() if args.pid else None
    r = asyncio.run(hold(args.port, args.count, settle=args.hold, http1_path=args.http1,
                         on_held=pss if args.pid else None))
    if args.pid:
        r["pss_cold_kib"], r["pss_before_kib"] = cold, before
        r["kib_per_conn"] = (r["measured"] - before) / args.count
        r["kib_per_conn_cold"] = (r["measured"] - cold) / args.count
    print(r)


if __name__ == "__main__":
    main()
