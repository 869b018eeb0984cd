"""A small HTTP/1.1 keep-alive upstream for the push-page benchmark (standard library only).

It serves one page per think time, /t<MS>/index.html, which waits MS milliseconds before
answering (the "think time" of a slow application) and then sends an HTML page that references
20 assets with <link>, <script> and <img> tags *and* announces the same 20 assets in 20
`Link: </assets/N.ext>; rel=preload; as=...` header fields. The assets (about 0.7 MB of CSS,
JavaScript and images) are served from /assets/ at once.

    python3 bench/push_upstream.py [--port 0]

prints "LISTENING <port>" on stdout once it accepts connections.
"""
import argparse
import asyncio
import random

# (extension, `as=` value, content type, size in bytes): 4 CSS, 8 JS, 8 images, 695 390 bytes
ASSET_KINDS = [("css", "style", "text/css", 18_000)] * 4 + \
              [("js", "script", "application/javascript", 36_000)] * 8 + \
              [("png", "image", "image/png", 42_000)] * 8


def make_assets(seed=1):
    """{path: (content type, body)} for the 20 assets, deterministic."""
    rng = random.Random(seed)
    assets = {}
    for n, (ext, _, ctype, size) in enumerate(ASSET_KINDS):
        if ext == "png":
            body = rng.randbytes(size)  # incompressible, like a real image
        else:
            line = (f"/* asset {n} */ .c{n} {{ color: #{n:06x}; }}\n" if ext == "css"
                    else f"function f{n}_{{i}}() {{ return {n} * 2; }}\n")
            text = "".join(line.replace("{i}", str(i)) for i in range(size // len(line) + 1))
            body = text.encode()[:size]
        assets[f"/assets/{n}.{ext}"] = (ctype, body)
    return assets


def link_fields():
    """The 20 Link header values, one per asset."""
    return [f"</assets/{n}.{ext}>; rel=preload; as={as_}"
            for n, (ext, as_, _, _) in enumerate(ASSET_KINDS)]


def page_html():
    tags = []
    for n, (ext, _, _, _) in enumerate(ASSET_KINDS):
        path = f"/assets/{n}.{ext}"
        if ext == "css":
            tags.append(f'<link rel="stylesheet" href="{path}">')
        elif ext == "js":
            tags.append(f'<script src="{path}"></script>')
        else:
            tags.append(f'<img src="{path}" alt="image {n}">')
    filler = "<p>" + "Lorem ipsum dolor sit amet. " * 20 + "</p>\n"
    return ("<!DOCTYPE html>\n<html><head><title>push page</title>\n" + "\n".join(tags[:12]) +
            "\n</head><body>\n" + filler * 8 + "\n".join(tags[12:]) +
            "\n</body></html>\n").encode()


class Upstream:
    def __init__(self):
        self.assets = make_assets()
        self.page = page_html()
        self.links = link_fields()

    async def handle(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _version = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                if length:
                    await reader.readexactly(length)
                path = target.split("?", 1)[0]
                status, ctype, body, extra = 404, "text/plain", b"not found\n", []
                if path in self.assets:
                    status, (ctype, body) = 200, self.assets[path]
                    extra = ["Cache-Control: max-age=3600"]
                elif path.startswith("/t") and path.endswith("/index.html"):
                    think_ms = int(path[2:].split("/", 1)[0])
                    await asyncio.sleep(think_ms / 1000)
                    status, ctype, body = 200, "text/html; charset=utf-8", self.page
                    extra = [f"Link: {v}" for v in self.links]
                reason = "OK" if status == 200 else "Not Found"
                out = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {ctype}",
                       f"Content-Length: {len(body)}", *extra, "", ""]
                writer.write("\r\n".join(out).encode("latin-1"))
                if method != "HEAD":
                    writer.write(body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    upstream = Upstream()
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", args.port, backlog=1024)
    print("LISTENING", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
