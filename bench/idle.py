"""Holds many idle TLS HTTP/2 connections open against a server (standard library only).

Each connection does the TLS handshake with ALPN h2, sends the client connection preface and an
empty SETTINGS frame, waits for the server's SETTINGS and acknowledges it, then stays open and
idle (still answering SETTINGS and PING, so no server drops it for being unresponsive). Used
by bench/run.py to measure the server's memory per idle connection; runnable alone as

    python3 bench/idle.py PORT [N] [--hold SECONDS]
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


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["h2"])
    return ctx


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


async def connect(port, ctx, limit, host="127.0.0.1", timeout=20.0):
    async with limit:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx, server_hostname="localhost"), timeout)
        alpn = writer.get_extra_info("ssl_object").selected_alpn_protocol()
        if alpn != "h2":
            writer.close()
            raise ConnectionError(f"server chose ALPN {alpn!r}, not h2")
        writer.write(PREFACE + frame(SETTINGS))
        conn = IdleConnection(reader, writer)
        await asyncio.wait_for(conn.settings_seen.wait(), timeout)
        if not conn.open:
            raise ConnectionError("server closed the connection during the HTTP/2 preface")
        return conn


async def hold(port, count, on_held=None, settle=0.5, concurrency=32):
    """Opens `count` idle connections, waits `settle` seconds, calls `on_held()` (its result is
    returned as "measured") while they are all held, then closes them. Raises on any failure."""
    ctx = client_context()
    limit = asyncio.Semaphore(concurrency)
    results = await asyncio.gather(*(connect(port, ctx, limit) for _ in range(count)),
                                   return_exceptions=True)
    conns = [r for r in results if isinstance(r, IdleConnection)]
    errors = [r for r in results if not isinstance(r, IdleConnection)]
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int)
    ap.add_argument("count", type=int, nargs="?", default=100)
    ap.add_argument("--hold", type=float, default=1.0, help="seconds to hold them")
    args = ap.parse_args()
    print(asyncio.run(hold(args.port, args.count, settle=args.hold)))


if __name__ == "__main__":
    main()
