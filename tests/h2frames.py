"""Raw HTTP/2 frames (RFC 9113 §4), enough to play a hostile gRPC client in tests: the preface, SETTINGS,
PING, and reading what the server sends back (SETTINGS values, GOAWAY and its error code)."""

from __future__ import annotations

import socket
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, PING, GOAWAY = 0x0, 0x1, 0x4, 0x6, 0x7
MAX_CONCURRENT_STREAMS = 0x3
ENHANCE_YOUR_CALM = 0xB


def frame(kind: int, payload: bytes = b"", *, flags: int = 0, stream: int = 0) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def hello() -> bytes:
    """The client preface and an empty SETTINGS frame."""
    return PREFACE + frame(SETTINGS)


def _literal(name: str, value: str) -> bytes:
    """An HPACK literal header field without indexing, new name, no Huffman (RFC 7541 §6.2.2)."""
    return b"\x00" + bytes([len(name)]) + name.encode() + bytes([len(value)]) + value.encode()


def headers_frame(stream: int, path: str) -> bytes:
    """The HEADERS of a gRPC call on ``stream`` (END_HEADERS, not END_STREAM): its message never follows."""
    block = b"".join(_literal(k, v) for k, v in (
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "t"),
        ("content-type", "application/grpc"), ("te", "trailers"),
    ))
    return frame(HEADERS, block, flags=0x4, stream=stream)


def ping(n: int) -> bytes:
    return frame(PING, struct.pack(">Q", n))


def read_frames(sock: socket.socket, *, until: float) -> list[tuple[int, int, bytes]]:
    """(type, flags, payload) of every frame until the peer closes or ``until`` (time.monotonic())."""
    frames: list[tuple[int, int, bytes]] = []
    buffer = b""
    while time.monotonic() < until:
        sock.settimeout(max(0.01, until - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, socket.timeout):
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        buffer += chunk
        while len(buffer) >= 9:
            length = int.from_bytes(buffer[:3], "big")
            if len(buffer) < 9 + length:
                break
            frames.append((buffer[3], buffer[4], buffer[9:9 + length]))
            buffer = buffer[9 + length:]
    return frames


def settings_of(frames: list[tuple[int, int, bytes]]) -> dict[int, int]:
    values: dict[int, int] = {}
    for kind, flags, payload in frames:
        if kind == SETTINGS and not flags & 0x1:
            for i in range(0, len(payload), 6):
                key, value = struct.unpack(">HI", payload[i:i + 6])
                values[key] = value
    return values


def goaway_code(frames: list[tuple[int, int, bytes]]) -> int | None:
    for kind, _, payload in frames:
        if kind == GOAWAY:
            return int(struct.unpack(">I", payload[4:8])[0])
    return None
