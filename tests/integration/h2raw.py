"""A raw HTTP/2 frame client for adversarial tests: it sends whatever frames a test builds,
valid or not, and reads back the frames the server sends (standard library only).

HPACK is written with literal fields without indexing and no Huffman coding (RFC 7541 §6.2.2),
which every decoder must accept; responses are not decoded beyond frame type, flags, stream and
the error codes of RST_STREAM and GOAWAY, which is all these tests assert on."""
import socket
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, \
    STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, \
    CONNECT_ERROR, ENHANCE_YOUR_CALM = range(12)
ENABLE_PUSH = 0x2


def hpack_int(value, prefix_bits, first_byte=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = [first_byte | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name, value):
    name = name.encode() if isinstance(name, str) else name
    value = value.encode() if isinstance(value, str) else value
    return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def header_block(fields):
    return b"".join(hpack_literal(n, v) for n, v in fields)


def request_fields(authority, path="/", method="GET", scheme="http", extra=()):
    return [(":method", method), (":scheme", scheme), (":authority", authority),
            (":path", path), *extra]


class Frame:
    def __init__(self, ftype, flags, stream, payload):
        self.type, self.flags, self.stream, self.payload = ftype, flags, stream, payload

    @property
    def error_code(self):
        """The error code of a RST_STREAM or GOAWAY."""
        if self.type == RST_STREAM:
            return struct.unpack(">I", self.payload[:4])[0]
        if self.type == GOAWAY:
            return struct.unpack(">I", self.payload[4:8])[0]
        return None

    def __repr__(self):
        return f"Frame(type={self.type}, flags={self.flags:#x}, stream={self.stream}, " \
               f"len={len(self.payload)})"


class RawClient:
    """One cleartext HTTP/2 connection (prior knowledge)."""

    def __init__(self, port, host="127.0.0.1", settings=((ENABLE_PUSH, 0),), timeout=30,
                 ack_settings=True):
        self.ack_settings = ack_settings
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.authority = f"{host}:{port}"
        self.buf = b""
        self.closed = False
        self.send_raw(PREFACE + self.frame(SETTINGS, 0, 0, b"".join(
            struct.pack(">HI", k, v) for k, v in settings)))

    @staticmethod
    def frame(ftype, flags, stream, payload=b""):
        return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
            struct.pack(">I", stream) + payload

    def send_raw(self, data):
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            self.closed = True
            return False

    def send(self, ftype, flags, stream, payload=b""):
        return self.send_raw(self.frame(ftype, flags, stream, payload))

    def headers(self, stream, fields, end_stream=True, flags=END_HEADERS):
        return self.send(HEADERS, flags | (END_STREAM if end_stream else 0), stream,
                         header_block(fields))

    def request(self, stream, path="/", **kw):
        return self.headers(stream, request_fields(self.authority, path, **kw))

    def rst(self, stream, code=CANCEL):
        return self.send(RST_STREAM, 0, stream, struct.pack(">I", code))

    def read_frame(self, deadline):
        """The next frame, or None when the connection closed (or the deadline passed)."""
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None  # nothing within the deadline; the connection is still open
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk
        length = int.from_bytes(self.buf[:3], "big")
        ftype, flags = self.buf[3], self.buf[4]
        stream = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
        payload = self.buf[9:9 + length]
        self.buf = self.buf[9 + length:]
        if ftype == SETTINGS and not flags & ACK and self.ack_settings:
            self.send(SETTINGS, ACK, 0)
        return Frame(ftype, flags, stream, payload)

    def read_until(self, predicate, timeout=30):
        """Frames until one matches (returned last) or the connection ends; returns the list."""
        deadline = time.monotonic() + timeout
        frames = []
        while True:
            f = self.read_frame(deadline)
            if f is None:
                return frames
            frames.append(f)
            if predicate(f):
                return frames

    def goaway(self, timeout=30):
        """Reads until GOAWAY or close; returns the GOAWAY frame or None."""
        frames = self.read_until(lambda f: f.type == GOAWAY, timeout)
        return frames[-1] if frames and frames[-1].type == GOAWAY else None

    def wait_closed(self, timeout=30):
        self.read_until(lambda f: False, timeout)
        return self.closed

    def close(self):
        self.sock.close()
