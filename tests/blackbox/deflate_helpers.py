"""Client side of permessage-deflate (RFC 7692) for the black-box tests, on Python's zlib:
the offer and its parsed answer, message compression exactly as a test wants it on the wire,
and an inflater that enforces the window the server agreed to.

A compressed message is a raw deflate stream whose final 00 00 ff ff (the empty stored block
of a sync flush) is removed by the sender and put back by the receiver (RFC 7692 §7.2).
"""

from __future__ import annotations

import zlib

from conftest import (OP_CLOSE, OP_CONT, OP_PING, OP_PONG, Frame, accept_for,
                      build_frame, make_key, parse_http_head, read_http_head, recv_frame,
                      upgrade_request)

TAIL = b"\x00\x00\xff\xff"
RSV1 = 4

FIREFOX = "permessage-deflate"
CHROME = "permessage-deflate; client_max_window_bits"
DEFAULT_ANSWER = "permessage-deflate; client_no_context_takeover"


def offer_header(*values: str) -> str:
    """One Sec-WebSocket-Extensions header line per value (the header may repeat)."""
    return "".join(f"Sec-WebSocket-Extensions: {v}\r\n" for v in values)


def deflate_upgrade(srv, *offers: str, path: str = "/ws"):
    """Upgrade a new connection offering the given header values; returns (socket, the
    extension answer or None). Asserts a correct 101 that answers at most one header."""
    s = srv.connect()
    key = make_key()
    s.sendall(upgrade_request(path, f"127.0.0.1:{srv.port}", key, offer_header(*offers)))
    resp = parse_http_head(read_http_head(s))
    assert resp.status == 101, f"expected 101, got {resp.raw_head!r}"
    assert resp.header("Sec-WebSocket-Accept") == accept_for(key), resp.raw_head
    answers = resp.header_all("Sec-WebSocket-Extensions")
    assert len(answers) <= 1, f"several extension headers in the 101: {resp.raw_head!r}"
    return s, (answers[0] if answers else None)


def answer_params(answer: str) -> dict[str, str | None]:
    """{parameter: value or None} of a permessage-deflate answer (asserts its name)."""
    name, *params = [p.strip() for p in answer.split(";")]
    assert name == "permessage-deflate", answer
    out = {}
    for p in params:
        k, eq, v = p.partition("=")
        assert k not in out, f"duplicate parameter in {answer!r}"
        out[k] = v if eq else None
    return out


# --------------------------------------------------------------------------------------------
# Compressing (client to server)
# --------------------------------------------------------------------------------------------

def compressor(wbits: int = 15, level: int = 6):
    """A raw deflate stream; Python's zlib, like zlib itself, refuses wbits 8."""
    return zlib.compressobj(level, zlib.DEFLATED, -wbits)


def deflate(data: bytes, comp=None) -> bytes:
    """The payload of one compressed message: data deflated and sync-flushed, tail removed.
    comp carries context across messages (context takeover); None gives a fresh stream."""
    comp = comp or compressor()
    out = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return out[:-4]


def compressed_frames(opcode: int, data: bytes, chunk: int, comp=None) -> list[bytes]:
    """A compressed message as masked frames, one per chunk bytes of data, each sync-flushed
    so that the server can inflate every fragment as it arrives. RSV1 on the first only."""
    comp = comp or compressor()
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] or [b""]
    frames = []
    for i, piece in enumerate(pieces):
        out = comp.compress(piece) + comp.flush(zlib.Z_SYNC_FLUSH)
        last = i == len(pieces) - 1
        if last:
            out = out[:-4]
        frames.append(build_frame(OP_CONT if i else opcode, out, fin=last,
                                  rsv=0 if i else RSV1))
    return frames


def split_frames(opcode: int, payload: bytes, size: int) -> list[bytes]:
    """An already compressed payload cut into frames of size wire bytes, wherever that falls
    in the deflate stream."""
    parts = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
    return [build_frame(OP_CONT if i else opcode, p, fin=i == len(parts) - 1,
                        rsv=0 if i else RSV1) for i, p in enumerate(parts)]


# --------------------------------------------------------------------------------------------
# Inflating (server to client)
# --------------------------------------------------------------------------------------------

class Inflater:
    """Inflates the server's compressed messages. With takeover (the server did not agree to
    server_no_context_takeover) one stream spans the connection. Output is taken at most
    STEP bytes per call, so back-references are resolved from zlib's window alone: a
    distance beyond 2**wbits fails with "invalid distance too far back"."""

    STEP = 4096

    def __init__(self, wbits: int = 15, takeover: bool = True):
        self.wbits = wbits
        self.takeover = takeover
        self.d = zlib.decompressobj(-wbits)

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        buf = data
        while True:
            piece = self.d.decompress(buf, self.STEP)
            out += piece
            buf = self.d.unconsumed_tail
            if not buf and len(piece) < self.STEP:
                return bytes(out)

    def end(self) -> bytes:
        """The message's last bytes (its removed tail put back); resets without takeover."""
        out = self.feed(TAIL)
        assert not self.d.unused_data, "data after the end of the deflate stream"
        if not self.takeover:
            self.d = zlib.decompressobj(-self.wbits)
        return out


def recv_data_frame(sock, pongs: list | None = None) -> Frame:
    """The next data frame; answers the server's pings and keeps its pongs."""
    while True:
        f = recv_frame(sock)
        if f.opcode == OP_PONG and pongs is not None:
            pongs.append(f)
            continue
        if f.opcode == OP_PING:
            sock.sendall(build_frame(OP_PONG, f.payload))
            continue
        assert f.opcode != OP_CLOSE, f"unexpected Close {f.close_code} {f.payload[2:]!r}"
        return f


def recv_deflate_message(sock, inflater: Inflater, on_frame=None) -> tuple[int, bytes, bool]:
    """One whole message from a connection with the extension: (opcode, payload, whether it
    came compressed). RSV1 only on the first frame; RSV2/RSV3 never. on_frame(frame) is
    called for each frame (to count wire bytes)."""
    f = recv_data_frame(sock)
    assert f.opcode in (1, 2), f"message starts with opcode {f.opcode}"
    assert f.rsv in (0, RSV1), f"server frame with RSV bits {f.rsv:03b}"
    opcode, compressed = f.opcode, f.rsv == RSV1
    data = bytearray()
    while True:
        if on_frame:
            on_frame(f)
        data += inflater.feed(f.payload) if compressed else f.payload
        if f.fin:
            break
        f = recv_data_frame(sock)
        assert f.opcode == OP_CONT, f"expected a continuation, got opcode {f.opcode}"
        assert f.rsv == 0, f"continuation frame with RSV bits {f.rsv:03b}"
    if compressed:
        data += inflater.end()
    return opcode, bytes(data), compressed


class Peer:
    """A client connection that speaks the extension with the parameters the server answered:
    a fresh compressor per message when it answered client_no_context_takeover (else one
    stream with its client_max_window_bits), and an inflater held to server_max_window_bits."""

    def __init__(self, sock, answer: str):
        self.sock = sock
        p = answer_params(answer)
        self.fresh = "client_no_context_takeover" in p
        self.client_bits = int(p.get("client_max_window_bits") or 15)
        self.comp = None if self.fresh else compressor(self.client_bits)
        self.inflater = Inflater(int(p.get("server_max_window_bits") or 15),
                                 takeover="server_no_context_takeover" not in p)

    def send(self, opcode: int, data: bytes) -> bytes:
        """Send data as one compressed frame; returns its wire payload."""
        comp = compressor(self.client_bits) if self.fresh else self.comp
        payload = deflate(data, comp)
        self.sock.sendall(build_frame(opcode, payload, rsv=RSV1))
        return payload

    def recv(self):
        return recv_deflate_message(self.sock, self.inflater)

    def echo(self, opcode: int, data: bytes) -> bool:
        """Send compressed, require the echo intact; returns whether it came compressed."""
        self.send(opcode, data)
        got_op, got, compressed = self.recv()
        assert (got_op, len(got)) == (opcode, len(data)), (got_op, len(got))
        assert got == data, "echo differs from what was sent"
        return compressed


def json_like(n: int, seed: int = 0) -> bytes:
    """n bytes of repetitive JSON-looking text (compresses well), with a few varying digits."""
    out = bytearray()
    i = seed
    while len(out) < n:
        out += (f'{{"id":{i},"user":"user-{i % 7}","event":"update","ok":true,'
                f'"tags":["a","b","c"]}},').encode()
        i += 1
    return bytes(out[:n])
