"""A user-space TCP relay that emulates a slow network path between a client and a server.

Every chunk read from one side is written to the other side RTT/2 later (in both directions),
so a request/response exchange costs one RTT. With --rate-mbit each direction is also a link of
that capacity: chunks are serialised one after another at that rate before the delay applies,
and the relay stops reading from a sender while more than one bandwidth-delay product (plus a
little) is in flight, so back-pressure reaches the sender instead of an unbounded queue.
The TCP handshake is emulated only with --tcp-handshake: the relay accepts at once (the
client's connect() returns immediately), so it holds the client's first bytes one extra RTT,
as a real client could send them only once the SYN-ACK came back. Not emulated: loss,
congestion control, slow start.

    python3 bench/relay.py --target 127.0.0.1:8443 --rtt-ms 100 [--rate-mbit 20] [--port 0]
                           [--tcp-handshake]

prints "LISTENING <port>" on stdout once it accepts connections.
"""
import argparse
import asyncio
import socket

CHUNK = 16384


class Direction:
    """One direction of one connection: reader -> (rate, delay) -> writer."""

    def __init__(self, reader, writer, delay, rate_bps, limit, not_before=0.0):
        self.reader, self.writer = reader, writer
        self.delay, self.rate_bps, self.limit = delay, rate_bps, limit
        self.not_before = not_before  # loop time before which nothing may leave the sender
        self.queue = asyncio.Queue()
        self.in_flight = 0
        self.space = asyncio.Event()
        self.space.set()
        self.link_free = 0.0

    async def pump(self):
        loop = asyncio.get_running_loop()
        sender = asyncio.create_task(self.send())
        try:
            while True:
                await self.space.wait()
                data = await self.reader.read(CHUNK)
                if not data:
                    break
                now = max(loop.time(), self.not_before)
                if self.rate_bps:
                    self.link_free = max(now, self.link_free) + len(data) * 8 / self.rate_bps
                    due = self.link_free + self.delay
                else:
                    due = now + self.delay
                self.in_flight += len(data)
                if self.in_flight >= self.limit:
                    self.space.clear()
                self.queue.put_nowait((due, data))
        except ConnectionError:
            pass
        finally:
            self.queue.put_nowait((None, None))
            await sender

    async def send(self):
        loop = asyncio.get_running_loop()
        try:
            while True:
                due, data = await self.queue.get()
                if data is None:
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                    return
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self.writer.write(data)
                await self.writer.drain()
                self.in_flight -= len(data)
                if self.in_flight < self.limit:
                    self.space.set()
        except (ConnectionError, OSError):
            self.space.set()


class Relay:
    def __init__(self, target, rtt_ms, rate_mbit, tcp_handshake=False):
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.delay = rtt_ms / 2000.0
        self.handshake = rtt_ms / 1000.0 if tcp_handshake else 0.0
        self.rate_bps = rate_mbit * 1e6 if rate_mbit else 0.0
        if self.rate_bps:
            bdp = self.rate_bps * (rtt_ms / 1000.0) / 8
            self.limit = int(bdp) + 4 * CHUNK
            self.sockbuf = 64 * 1024  # keep kernel buffers from hiding a large queue
        else:
            self.limit = 8 * 1024 * 1024
            self.sockbuf = 0

    async def handle(self, c_reader, c_writer):
        s_writer = None
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.sockbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.sockbuf)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sockbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, self.target)
            s_reader, s_writer = await asyncio.open_connection(sock=sock)
            c_sock = c_writer.get_extra_info("socket")
            c_sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.sockbuf:
                c_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sockbuf)
            accepted = asyncio.get_running_loop().time()
            up = Direction(c_reader, s_writer, self.delay, self.rate_bps, self.limit,
                           not_before=accepted + self.handshake)
            down = Direction(s_reader, c_writer, self.delay, self.rate_bps, self.limit)
            await asyncio.gather(up.pump(), down.pump())
        except OSError:
            pass
        finally:
            for w in (c_writer, s_writer):
                if w is not None:
                    w.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True, help="HOST:PORT of the server")
    ap.add_argument("--rtt-ms", type=float, default=100.0)
    ap.add_argument("--rate-mbit", type=float, default=0.0, help="0 means no cap")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tcp-handshake", action="store_true",
                    help="a new connection's first bytes wait one RTT more (SYN, SYN-ACK)")
    args = ap.parse_args()
    relay = Relay(args.target, args.rtt_ms, args.rate_mbit, args.tcp_handshake)
    server = await asyncio.start_server(relay.handle, "127.0.0.1", args.port, backlog=256)
    print("LISTENING", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
