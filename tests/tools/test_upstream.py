#!/usr/bin/env python3
"""pushgate's scriptable HTTP/1.1 test upstream (standard library only, asyncio).

Each request is scripted by its query string, so a test says in the URL what the upstream must
do. Keep-alive connections; every completed request head+body is logged as one JSON line.

Query parameters (all optional; repeatable ones say so):
  status=N          final status (default 200); reason=TEXT its reason phrase
  size=N            body of N bytes, bytes 0..255 repeating (default 0)
  chunked=1         send the body chunked; chunk=N chunk size (default 65536)
  header=Name:Value extra response field, repeatable, sent verbatim (a Content-Length or
                    Transfer-Encoding given here replaces the upstream's own framing, and the
                    connection is closed after the body)
  link=VALUE        a Link response field, repeatable
  fill_head=N       N filler fields of 200 bytes each (an oversized head)
  link_bytes=N      one Link field of about N bytes: "</lI.css>; rel=preload" values
  links_from=NAME   also one Link field per value last set with /_links?name=NAME&link=...
  early_hints=VALUE send "103 Early Hints" with this Link value first (repeatable: one field
                    each); hint_delay_ms=N wait between the 103 and the final response
  hints_from=NAME   send one "103 Early Hints" (after any early_hints=) with one Link field per
                    value last set with /_links?name=NAME (none set: no 103)
  status_from=NAME  the final status is the one last set with /_status?name=NAME&status=N
                    (none set: status=, else 200)
  body_from=NAME    the body is the text last set with /_body?name=NAME&body=TEXT (UTF-8)
  delay_ms=N        wait before the response head; body_delay_ms=N wait between head and body
  chunk_delay_ms=N  wait N ms after each body chunk but the last (a trickling body)
  hold=NAME         wait before the response head for a permit from GET /_release?name=NAME
  reset_after=N     send N body bytes, then reset the connection (RST)
  close_after=N     send N body bytes, then close the connection (FIN): a truncated body
  close_idle=1      close the connection (FIN) right after a keep-alive response, as an upstream
                    whose keep-alive timeout expired does to an idle pooled connection
  echo=1            the response body is the request body
  slow_read=BPS     read the request body at BPS bytes per second
  read_pause_ms=N   wait before reading the request body
  no_body_read=1    answer without reading the request body, then close
  raw=BYTES         answer with exactly these bytes (percent-encoded, latin-1), then close:
                    for malformed and hostile responses

Special paths: /_stats (JSON counters), /_release?name=NAME (one permit for a held request,
now or later), /_links?name=NAME&link=V&link=W (replaces the named Link set),
/_status?name=NAME&status=N (the status for status_from=NAME), /_body?name=NAME&body=TEXT (the
body for body_from=NAME).
Log entries: conn, seq, raw_head, method, target, headers [[name, value]], body_len,
body_sha256, chunked, completed.
"""
import argparse
import asyncio
import hashlib
import json
import os
import socket
import struct
import sys
from urllib.parse import parse_qs, urlsplit

BLOCK = bytes(range(256)) * 4096  # 1 MiB of the pattern; its length is a multiple of 256
MAX_HEAD = 65536


class Stats:
    def __init__(self):
        self.connections_open = 0
        self.connections_total = 0
        self.requests_total = 0
        self.active_requests = 0
        self.aborted_requests = 0
        self.bytes_sent = 0

    def as_dict(self):
        return dict(vars(self))


class Holds:
    """Named gates: a request with hold=NAME waits for a permit that /_release?name=NAME
    gives (one per release, kept when nobody waits yet)."""

    def __init__(self):
        self.gates = {}

    def gate(self, name):
        return self.gates.setdefault(name, asyncio.Semaphore(0))


class Request:
    def __init__(self, raw_head):
        self.raw_head = raw_head
        lines = raw_head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise ValueError("bad request line")
        self.method, self.target, self.version = parts
        self.headers = []
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise ValueError("bad header line")
            self.headers.append([name, value.strip(" \t")])
        url = urlsplit(self.target)
        self.path = url.path
        self.query = parse_qs(url.query, keep_blank_values=True, encoding="latin-1")
        self.body = bytearray()
        self.body_len = 0
        self.body_hash = hashlib.sha256()
        self.chunked = False
        self.completed = False

    def field(self, name):
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return None

    def q(self, name, default=None):
        values = self.query.get(name)
        return values[0] if values else default

    def qi(self, name, default=0):
        return int(self.q(name, default))

    def wants_close(self):
        conn = (self.field("connection") or "").lower()
        return "close" in conn or self.version == "HTTP/1.0"


class Upstream:
    def __init__(self, log_path):
        self.stats = Stats()
        self.holds = Holds()
        self.link_sets = {}
        self.statuses = {}
        self.bodies = {}
        self.log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) \
            if log_path else None
        self.next_conn = 0

    def log(self, conn_id, seq, req):
        if self.log_fd is None:
            return
        entry = {"conn": conn_id, "seq": seq, "raw_head": req.raw_head.decode("latin-1"),
                 "method": req.method, "target": req.target, "headers": req.headers,
                 "body_len": req.body_len, "body_sha256": req.body_hash.hexdigest(),
                 "chunked": req.chunked, "completed": req.completed}
        os.write(self.log_fd, (json.dumps(entry) + "\n").encode())

    async def serve(self, reader, writer):
        self.next_conn += 1
        conn_id = self.next_conn
        self.stats.connections_open += 1
        self.stats.connections_total += 1
        try:
            seq = 0
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                except asyncio.LimitOverrunError:
                    writer.write(b"HTTP/1.1 431 Too Large\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
                    await writer.drain()
                    return
                seq += 1
                try:
                    req = Request(raw)
                except ValueError:
                    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
                    await writer.drain()
                    return
                if not await self.handle(conn_id, seq, req, reader, writer):
                    return
        except (ConnectionError, OSError):
            pass
        finally:
            self.stats.connections_open -= 1
            if not writer.transport.is_closing():
                writer.close()

    async def handle(self, conn_id, seq, req, reader, writer):
        """Serves one request; returns whether the connection stays open."""
        if req.path == "/_stats":
            return await self.send_json(writer, req, self.stats.as_dict())
        if req.path == "/_links":
            self.link_sets[req.q("name", "")] = req.query.get("link", [])
            return await self.send_json(writer, req, {"links": req.query.get("link", [])})
        if req.path == "/_status":
            self.statuses[req.q("name", "")] = int(req.q("status", "200"))
            return await self.send_json(writer, req, {"status": self.statuses[req.q("name", "")]})
        if req.path == "/_body":
            # The query was decoded as latin-1; the text was sent as UTF-8.
            self.bodies[req.q("name", "")] = req.q("body", "").encode("latin-1")
            return await self.send_json(writer, req, {"bytes": len(self.bodies[req.q("name", "")])})
        if req.path == "/_release":
            self.holds.gate(req.q("name", "")).release()
            return await self.send_json(writer, req, {"released": req.q("name", "")})
        self.stats.requests_total += 1
        self.stats.active_requests += 1
        done = False
        try:
            keep = await self.exchange(conn_id, seq, req, reader, writer)
            done = True
            if keep and req.qi("close_idle"):
                await writer.drain()  # the response said keep-alive; then the upstream leaves
                return False
            return keep
        finally:
            self.stats.active_requests -= 1
            if not done:
                self.stats.aborted_requests += 1
                if not req.completed:
                    self.log(conn_id, seq, req)

    async def exchange(self, conn_id, seq, req, reader, writer):
        if (req.field("expect") or "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if req.qi("no_body_read"):
            req.completed = True
            self.log(conn_id, seq, req)
            await self.respond(req, writer, b"")
            return False
        await asyncio.sleep(req.qi("read_pause_ms") / 1000)
        await self.read_body(req, reader)
        req.completed = True
        self.log(conn_id, seq, req)
        if req.q("raw") is not None:
            writer.write(req.q("raw").encode("latin-1"))
            await writer.drain()
            return False
        if req.q("body_from") is not None:
            return await self.respond(req, writer, self.bodies.get(req.q("body_from"), b""))
        return await self.respond(req, writer, bytes(req.body) if req.qi("echo") else None)

    async def read_body(self, req, reader):
        keep = bool(req.qi("echo"))
        rate = req.qi("slow_read")
        loop = asyncio.get_running_loop()
        start = loop.time()

        def take(data):
            req.body_len += len(data)
            req.body_hash.update(data)
            if keep:
                req.body.extend(data)

        async def pace():
            if rate:
                ahead = req.body_len / rate - (loop.time() - start)
                if ahead > 0:
                    await asyncio.sleep(ahead)

        async def read_exactly(left):
            while left:
                data = await reader.read(min(left, 65536))
                if not data:
                    raise asyncio.IncompleteReadError(b"", left)
                take(data)
                left -= len(data)
                await pace()

        if "chunked" in (req.field("transfer-encoding") or "").lower():
            req.chunked = True
            while True:
                line = await reader.readuntil(b"\r\n")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass  # trailer fields
                    return
                await read_exactly(size)
                if await reader.readexactly(2) != b"\r\n":
                    raise ValueError("bad chunk end")
        await read_exactly(int(req.field("content-length") or 0))

    async def send_json(self, writer, req, obj):
        body = json.dumps(obj).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        return not req.wants_close()

    async def respond(self, req, writer, echo_body):
        status = req.qi("status", 200)
        if req.q("status_from") is not None:
            status = self.statuses.get(req.q("status_from"), status)
        size = len(echo_body) if echo_body is not None else req.qi("size")
        for value in req.query.get("early_hints", []):
            writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: " + value.encode("latin-1") +
                         b"\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(req.qi("hint_delay_ms") / 1000)
        hinted = self.link_sets.get(req.q("hints_from"), []) if req.q("hints_from") else []
        if hinted:
            writer.write(b"HTTP/1.1 103 Early Hints\r\n" + b"".join(
                b"Link: " + v.encode("latin-1") + b"\r\n" for v in hinted) + b"\r\n")
            await writer.drain()
        await asyncio.sleep(req.qi("delay_ms") / 1000)
        hold = req.q("hold")
        if hold is not None:
            await self.holds.gate(hold).acquire()
        chunked = bool(req.qi("chunked"))
        no_body = req.method == "HEAD" or status in (204, 304) or 100 <= status < 200
        extra = req.query.get("header", [])
        own_framing = not any(h.split(":", 1)[0].strip().lower() in
                              ("content-length", "transfer-encoding") for h in extra)
        close = req.wants_close() or not own_framing or any(
            h.split(":", 1)[0].strip().lower() == "connection" and "close" in h.lower()
            for h in extra)
        lines = [f"HTTP/1.1 {status} {req.q('reason', 'Scripted')}", "Server: pg-test-upstream"]
        if own_framing and status not in (204, 304) and not 100 <= status < 200:
            lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
        lines += [f"Link: {v}" for v in req.query.get("link", [])]
        lines += [f"X-Fill-{i}: {'v' * 200}" for i in range(req.qi("fill_head"))]
        if req.qi("link_bytes"):
            values, total, i = [], 0, 0
            while total < req.qi("link_bytes"):
                values.append(f"</l{i}.css>; rel=preload")
                total += len(values[-1]) + 2
                i += 1
            lines.append("Link: " + ", ".join(values))
        if req.q("links_from") is not None:
            lines += [f"Link: {v}" for v in self.link_sets.get(req.q("links_from"), [])]
        for h in extra:
            name, _, value = h.partition(":")
            lines.append(f"{name}: {value}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        if no_body:
            return not close
        await asyncio.sleep(req.qi("body_delay_ms") / 1000)
        limit = size
        cut = None
        for name in ("reset_after", "close_after"):
            if req.q(name) is not None:
                cut = name
                limit = min(size, req.qi(name))
        await self.send_body(writer, echo_body, limit, chunked and own_framing,
                             req.qi("chunk", 65536) or 65536, finish=cut is None,
                             gap=req.qi("chunk_delay_ms") / 1000)
        if cut == "reset_after":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if cut == "close_after":
            return False
        return not close

    async def send_body(self, writer, echo_body, size, chunked, chunk, finish, gap=0.0):
        pos = 0
        while pos < size:
            if pos and gap:
                await asyncio.sleep(gap)
            if echo_body is not None:
                piece = memoryview(echo_body)[pos:pos + min(chunk, size - pos)]
            else:
                off = pos % len(BLOCK)
                piece = memoryview(BLOCK)[off:off + min(chunk, size - pos, len(BLOCK) - off)]
            if chunked:
                writer.write(b"%x\r\n" % len(piece))
                writer.write(piece)
                writer.write(b"\r\n")
            else:
                writer.write(piece)
            await writer.drain()
            pos += len(piece)
            self.stats.bytes_sent += len(piece)
        if chunked and finish:
            writer.write(b"0\r\n\r\n")
            await writer.drain()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log", help="append one JSON line per request to this file")
    args = ap.parse_args()
    upstream = Upstream(args.log)
    server = await asyncio.start_server(upstream.serve, args.host, args.port, limit=MAX_HEAD,
                                        backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"LISTENING {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
