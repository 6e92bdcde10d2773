"""permessage-deflate with bounded memory (issue 17, "What it must show"): 16 MiB compressed
messages stream through, a 1 GiB decompression bomb is closed with 1009 without the server
growing and without stalling another client, a million empty compressed fragments cost
nothing, and an idle connection costs a few hundred bytes with the extension negotiated.

Memory is the server's RSS from /proc/PID/status (test_memory.py): peak growth is VmHWM after
minus VmRSS before, taken after a warm-up that did the same kind of work once, so one-time
allocations (pools, shared codecs) are not charged to the measured part.
"""

import functools
import os
import selectors
import statistics
import threading
import time
import zlib

import pytest

from conftest import (OP_BINARY, OP_CLOSE, OP_CONT, OP_TEXT, build_frame, close_payload,
                      recv_close, send_frame, text_of_utf8_size)
from deflate_helpers import (CHROME, DEFAULT_ANSWER, FIREFOX, RSV1, TAIL, Inflater, Peer,
                             compressed_frames, compressor, deflate, deflate_upgrade, json_like,
                             offer_header, split_frames)
from limits_helpers import (binary_is_sanitized, limit_flags, open_upgraded_many,
                            raise_nofile)
from test_metrics import Scraper
from test_tls import certs, loop_thread, tls_factory  # noqa: F401 (pytest fixtures)

KiB = 1024
MiB = 1024 * KiB

not_sanitized = pytest.mark.skipif(binary_is_sanitized(),
                                   reason="RSS is meaningless under a sanitizer or wrapper")


def warm_up(srv, offer: str = FIREFOX) -> None:
    """One compressed message each way on a connection of its own, so that the server's
    one-time allocations happen before a measurement."""
    s, got = deflate_upgrade(srv, offer)
    Peer(s, got).echo(OP_TEXT, json_like(8 * KiB))
    time.sleep(0.1)


def send_in_background(sock, frames) -> tuple[threading.Thread, list]:
    """Send the frames (any iterable of bytes) from a thread; stops at the first error, which
    it keeps in the returned list. The caller reads the echo meanwhile."""
    errors: list = []

    def run():
        try:
            for f in frames:
                sock.sendall(f)
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, errors


def peak_growth_kib(srv, idle: dict) -> int:
    return srv.status()["VmHWM"] - idle["VmRSS"]


def assert_growth(growth_kib: int, bound_kib: int, what: str) -> None:
    """The RSS bound, judged only when RSS is the server's own (not under a sanitizer, where
    the test still checks everything else)."""
    if not binary_is_sanitized():
        assert growth_kib <= bound_kib, f"peak RSS grew {growth_kib} KiB {what}"


# ---------------------------------------------------------------------------- 16 MiB echo


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["text", "binary"])
def test_16mib_compressed_fragmented_echo_with_bounded_peak_memory(websock, kind):
    """16 MiB sent compressed in 64 KiB fragments: the compressible text is sync-flushed per
    64 KiB of input (so each fragment inflates as it comes); the random binary is one deflate
    stream cut every 64 KiB of wire bytes. The echo comes back intact while it is still
    being sent, and the server's peak RSS grows by at most 4 MiB."""
    warm_up(websock)
    idle = websock.status()
    s, got = deflate_upgrade(websock, FIREFOX)
    peer = Peer(s, got)
    s.settimeout(30)
    if kind == "text":
        data = text_of_utf8_size(16 * MiB).encode()
        frames = compressed_frames(OP_TEXT, data, 64 * KiB)
        opcode = OP_TEXT
    else:
        data = os.urandom(16 * MiB)
        frames = split_frames(OP_BINARY, deflate(data), 64 * KiB)
        opcode = OP_BINARY
    wire = sum(len(f) for f in frames)
    t, errors = send_in_background(s, frames)
    got_op, echo, compressed = peer.recv()
    t.join(30)
    assert not errors, errors
    assert got_op == opcode and len(echo) == len(data)
    assert echo == data, "16 MiB echo corrupted"
    growth = peak_growth_kib(websock, idle)
    print(f"\n[16 MiB {kind}] {len(frames)} frames, {wire} wire bytes; echo "
          f"{'compressed' if compressed else 'plain'}; peak RSS growth {growth} KiB")
    assert_growth(growth, 4 * 1024, f"echoing 16 MiB {kind}")


# ------------------------------------------------------------------------------------ bomb


@functools.lru_cache(maxsize=None)
def bomb_payload() -> bytes:
    """1 GiB of zeros deflated (about 1 MiB), produced a MiB at a time."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(MiB)
    out = bytearray()
    for _ in range(1024):
        out += comp.compress(zeros)
    out += comp.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(TAIL)
    return bytes(out[:-4])


class Victim(threading.Thread):
    """A well-behaved client echoing small compressed messages until stopped; keeps each
    round trip's latency and the first failure."""

    def __init__(self, srv):
        super().__init__(daemon=True)
        s, got = deflate_upgrade(srv, CHROME)
        s.settimeout(10)
        self.peer = Peer(s, got)
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.error: BaseException | None = None

    def run(self):
        i = 0
        try:
            while not self.stop.is_set():
                msg = json_like(200, i)
                t0 = time.monotonic()
                self.peer.echo(OP_TEXT, msg)
                self.latencies.append(time.monotonic() - t0)
                i += 1
                time.sleep(0.002)
        except BaseException as e:  # reported by the test
            self.error = e

    def finish(self) -> str:
        self.stop.set()
        self.join(15)
        assert not self.is_alive(), "the victim's echo loop hung"
        assert self.error is None, f"the other client's echo failed: {self.error!r}"
        lat = sorted(self.latencies)
        assert lat, "the other client got no echo at all"
        return (f"{len(lat)} echoes, latency median {statistics.median(lat) * 1000:.2f} ms, "
                f"p99 {lat[int(len(lat) * 0.99)] * 1000:.2f} ms, max {lat[-1] * 1000:.2f} ms")


def inflated_in(scraper) -> float:
    return scraper.samples().get(("websock_deflate_bytes_total",
                                  frozenset({("direction", "in"), ("form", "plain")})), 0.0)


@pytest.mark.slow
def test_bomb_of_1gib_zeros_is_closed_with_1009_without_growth_or_stall(websock_factory):
    """Three bombs in a row, each 1 GiB of zeros deflated into about 1 MiB of frames against
    --max-message 1M: each gets Close 1009 having inflated at most 1 MiB + 64 KiB (the
    in/plain counter of /metrics), the server's peak RSS grows by at most 2 MiB, and another
    client's echoes keep coming all along (each within a generous 10 s; the latency figures
    are printed, not judged)."""
    srv = websock_factory(*limit_flags("--max-message", "1M"))
    payload = bomb_payload()
    frames = split_frames(OP_BINARY, payload, 16 * KiB)
    scraper = Scraper(srv)
    warm_up(srv, CHROME)
    victim = Victim(srv)
    victim.start()
    time.sleep(0.2)
    idle = srv.status()
    for n in range(3):
        before = inflated_in(scraper)
        s, got = deflate_upgrade(srv, FIREFOX)
        assert got == DEFAULT_ANSWER
        s.settimeout(20)
        t0 = time.monotonic()
        t, _ = send_in_background(s, frames)  # the server may stop reading: errors are fine
        close, _ = recv_close(s)
        elapsed = time.monotonic() - t0
        t.join(20)
        assert close.close_code == 1009, f"bomb {n}: Close {close.close_code}, not 1009"
        try:
            send_frame(s, OP_CLOSE, close_payload(1009))
        except OSError:
            pass
        s.close()
        inflated = inflated_in(scraper) - before
        print(f"\n[bomb {n}] {len(payload)} wire bytes offered; Close 1009 after "
              f"{elapsed * 1000:.1f} ms; in/plain counter +{inflated:.0f}")
        assert inflated <= MiB + 64 * KiB, f"bomb {n}: {inflated:.0f} bytes inflated"
    growth = peak_growth_kib(srv, idle)
    print(f"[bomb] victim: {victim.finish()}; peak RSS growth {growth} KiB")
    assert_growth(growth, 2 * 1024, "during the bombs")


@pytest.mark.slow
def test_bomb_without_a_low_limit_does_not_stall_another_client(websock_factory):
    """The same 1 GiB bomb against the default --max-message (64M): the server inflates
    64 MiB for it, at most 256 KiB per loop turn, and another client's echoes keep coming
    meanwhile. The figures are printed; only a 10 s timeout per echo is judged."""
    srv = websock_factory()
    frames = split_frames(OP_BINARY, bomb_payload(), 16 * KiB)
    warm_up(srv, CHROME)
    victim = Victim(srv)
    victim.start()
    idle = srv.status()
    s, _ = deflate_upgrade(srv, FIREFOX)
    s.settimeout(60)
    t0 = time.monotonic()
    t, _ = send_in_background(s, frames)
    close, _ = recv_close(s)
    elapsed = time.monotonic() - t0
    t.join(20)
    assert close.close_code == 1009
    s.close()
    growth = peak_growth_kib(srv, idle)
    print(f"\n[bomb, 64M limit] Close 1009 after {elapsed:.2f} s; victim: {victim.finish()}; "
          f"peak RSS growth {growth} KiB")
    assert_growth(growth, 2 * 1024, "during the bomb")


# ------------------------------------------------------------- a million empty fragments


def read_frames_bulk(sock, inflater, limit_frames: int = 3_000_000):
    """One whole message read in bulk (the server may echo a million tiny frames): returns
    (opcode, payload, compressed, frame count)."""
    buf = bytearray()
    opcode = compressed = None
    data = bytearray()
    frames = 0
    while True:
        chunk = sock.recv(1 << 20)
        assert chunk, f"connection closed after {frames} frames of the echo"
        buf += chunk
        i = 0
        while len(buf) - i >= 2:
            b0, b1 = buf[i], buf[i + 1]
            n, h = b1 & 0x7F, 2
            if n == 126:
                if len(buf) - i < 4:
                    break
                n, h = int.from_bytes(buf[i + 2:i + 4], "big"), 4
            elif n == 127:
                if len(buf) - i < 10:
                    break
                n, h = int.from_bytes(buf[i + 2:i + 10], "big"), 10
            if len(buf) - i < h + n:
                break
            op, rsv, fin = b0 & 0x0F, (b0 >> 4) & 7, bool(b0 & 0x80)
            payload = bytes(buf[i + h:i + h + n])
            i += h + n
            assert op != OP_CLOSE, f"Close {payload[:2].hex()} {payload[2:]!r} instead of " \
                                   f"the echo, after {frames} frames"
            if op in (0x9, 0xA):
                continue
            if opcode is None:
                assert op in (OP_TEXT, OP_BINARY) and rsv in (0, RSV1), (op, rsv)
                opcode, compressed = op, rsv == RSV1
            else:
                assert op == OP_CONT and rsv == 0, (op, rsv)
            frames += 1
            assert frames <= limit_frames
            data += inflater.feed(payload) if compressed else payload
            if fin:
                assert i == len(buf), "bytes after the echo"
                if compressed:
                    data += inflater.end()
                return opcode, bytes(data), compressed, frames
        del buf[:i]


@pytest.mark.slow
def test_a_million_empty_compressed_fragments_echo_an_empty_message(websock):
    """A text message whose first frame has RSV1 and which then has 999,999 empty
    continuation frames inflates to nothing: it is echoed as an empty text message (in as
    many frames as the server likes), and the server's peak RSS grows by at most 1 MiB."""
    warm_up(websock)
    idle = websock.status()
    s, got = deflate_upgrade(websock, FIREFOX)
    s.settimeout(60)
    n = 1_000_000
    empty_cont = build_frame(OP_CONT, b"", fin=False, mask_key=b"\x00\x00\x00\x00")
    first = build_frame(OP_TEXT, b"", fin=False, rsv=RSV1)
    last = build_frame(OP_CONT, b"", fin=True)
    block = empty_cont * 10_000

    def frames():
        yield first
        for _ in range((n - 2) // 10_000):
            yield block
        yield empty_cont * ((n - 2) % 10_000)
        yield last

    t0 = time.monotonic()
    t, errors = send_in_background(s, frames())
    opcode, data, compressed, count = read_frames_bulk(s, Inflater())
    t.join(30)
    assert not errors, errors
    assert (opcode, data) == (OP_TEXT, b"")
    growth = peak_growth_kib(websock, idle)
    print(f"\n[1M empty fragments] echoed as {count} frame(s), "
          f"{'compressed' if compressed else 'plain'}, in {time.monotonic() - t0:.1f} s; "
          f"peak RSS growth {growth} KiB")
    assert_growth(growth, 1024, "for a million empty fragments")
    Peer(s, got).echo(OP_TEXT, json_like(2000))  # the connection goes on


# --------------------------------------------------------------------- idle connections


N = 10_000


def exchange_all(socks, make_payload, timeout: float = 60.0) -> int:
    """Each socket sends one compressed text message (make_payload(i) -> (data, wire
    payload)) and reads its whole echo, which must inflate to the data. Returns how many
    echoes came compressed."""
    sel = selectors.DefaultSelector()
    state = {}
    compressed_echoes = 0
    try:
        for i, s in enumerate(socks):
            data, payload = make_payload(i)
            frame = build_frame(OP_TEXT, payload, rsv=RSV1)
            s.setblocking(False)
            assert s.send(frame) == len(frame), f"short send on connection {i}"
            state[s] = (i, data, bytearray())
            sel.register(s, selectors.EVENT_READ)
        pending = len(socks)
        deadline = time.monotonic() + timeout
        while pending:
            assert time.monotonic() < deadline, f"{pending} echoes missing after {timeout}s"
            for key, _ in sel.select(0.5):
                s = key.fileobj
                i, data, buf = state[s]
                chunk = s.recv(65536)
                assert chunk, f"connection {i} closed before its echo"
                buf += chunk
                if len(buf) < 2 or len(buf) < 2 + (buf[1] & 0x7F):
                    continue
                n = buf[1] & 0x7F
                assert n < 126 and buf[0] & 0x80 and buf[0] & 0x0F == OP_TEXT, bytes(buf[:4])
                payload = bytes(buf[2:2 + n])
                assert len(buf) == 2 + n, f"connection {i}: bytes after the echo"
                if buf[0] & 0x40:
                    payload = zlib.decompressobj(-15).decompress(payload + TAIL)
                    compressed_echoes += 1
                assert payload == data, f"connection {i}: wrong echo"
                sel.unregister(s)
                pending -= 1
    finally:
        sel.close()
        for s in socks:
            s.setblocking(True)
    return compressed_echoes


def idle_cost(srv, offer: str | None, answer: str | None, client_bits: int | None):
    """RSS per connection of N connections upgraded with the offer; with client_bits each
    also sends one 200-byte JSON-like message compressed with that window and reads its
    echo. Returns (bytes per connection, compressed echoes, seconds)."""
    extra = offer_header(offer) if offer else ""
    warm = open_upgraded_many("127.0.0.1", srv.port, 1, extra=extra, answer=answer)
    if client_bits:
        exchange_all(warm, lambda i: (json_like(200, i), deflate(json_like(200, i),
                                                                 compressor(client_bits))))
    time.sleep(0.2)
    before = srv.status()["VmRSS"]
    t0 = time.monotonic()
    socks = open_upgraded_many("127.0.0.1", srv.port, N, batch=500, timeout=60.0,
                               extra=extra, answer=answer)
    try:
        echoes = 0
        if client_bits:
            echoes = exchange_all(socks, lambda i: (json_like(200, i), deflate(
                json_like(200, i), compressor(client_bits))))
        elapsed = time.monotonic() - t0
        time.sleep(0.3)
        after = srv.status()["VmRSS"]
        return (after - before) * 1024 / N, echoes, elapsed
    finally:
        for s in socks + warm:
            s.close()


IDLE_CASES = [
    # id, server flags, offer, answer, message window bits, bound in bytes per connection
    ("no-extension", [], None, None, None, 0.25 * KiB),
    ("negotiated-unused", [], CHROME, DEFAULT_ANSWER, None, 0.3 * KiB),
    ("one-message-each-way", [], CHROME, DEFAULT_ANSWER, 15, 1.5 * KiB),
    ("takeover-bits-10", ["--deflate", "takeover"], CHROME,
     "permessage-deflate; client_max_window_bits=10", 10, 2.5 * KiB),
]


@pytest.mark.slow
@not_sanitized
@pytest.mark.parametrize("flags,offer,answer,bits,bound", [c[1:] for c in IDLE_CASES],
                         ids=[c[0] for c in IDLE_CASES])
def test_idle_memory_per_connection_at_10000(websock_factory, flags, offer, answer, bits,
                                             bound):
    limit = raise_nofile()
    assert limit >= N + 100, f"descriptor limit {limit} too low for {N} connections"
    srv = websock_factory(*flags, log_level="info")
    per_conn, echoes, elapsed = idle_cost(srv, offer, answer, bits)
    print(f"\n[idle 10k {' '.join(flags) or 'default'} offer={offer!r}] "
          f"{per_conn:.0f} bytes of RSS per connection (bound {bound:.0f}); "
          f"{echoes} of {N if bits else 0} echoes compressed; {elapsed:.1f} s")
    assert per_conn <= bound, f"{per_conn:.0f} bytes per idle connection, bound {bound:.0f}"


# ------------------------------------------------------------------------------ over TLS
#
# The same memory bounds over wss:// (issue 19): the plain path's bound plus OpenSSL's
# per-connection state, which a plain connection does not have: a read and a write record
# buffer (about 17 KB each; SSL_MODE_RELEASE_BUFFERS frees them only while idle) and the
# session itself, with room for malloc's rounding. Each TLS row warms up with a TLS
# connection doing the same work once, as the plain rows do.

TLS_PER_CONNECTION = 128 * KiB
MEMORY_BOUNDS_KIB = {  # case: (bound on the plain path, the plain test that judges it)
    "16 MiB echo": (4 * 1024, "test_memory.py"),
    "16 MiB compressed echo": (4 * 1024, "test_16mib_compressed_fragmented_echo above"),
    "64 MiB non-reader": (2 * 1024, "test_stalled_client.py"),
}


def tls_bound_kib(case: str) -> int:
    return MEMORY_BOUNDS_KIB[case][0] + TLS_PER_CONNECTION // KiB


async def wss_echo(url: str, messages, compress: bool):
    """One wss:// connection echoing each message (bytes, str, or a list of fragments sent
    as one fragmented message); returns whether permessage-deflate was agreed."""
    from websockets.asyncio.client import connect
    from test_tls import client_context
    async with connect(url, ssl=client_context(), max_size=None, max_queue=None,
                       compression="deflate" if compress else None,
                       open_timeout=30, close_timeout=30) as ws:
        agreed = "permessage-deflate" in (ws.response.headers.get("Sec-WebSocket-Extensions")
                                          or "")
        for m in messages:
            await ws.send(m)
            want = b"".join(m) if isinstance(m, list) and isinstance(m[0], bytes) else \
                "".join(m) if isinstance(m, list) else m
            got = await ws.recv()
            assert got == want, f"{len(want)}-byte echo corrupted over TLS"
        return agreed


TLS_ECHO_CASES = {
    # id: (case, compress, messages maker)
    "binary": ("16 MiB echo", False, lambda: [os.urandom(MiB) * 16]),
    "text": ("16 MiB echo", False, lambda: [text_of_utf8_size(16 * MiB)]),
    "deflate-text": ("16 MiB compressed echo", True, lambda: [
        [c.decode() for c in split_utf8(text_of_utf8_size(16 * MiB).encode(), 64 * KiB)]]),
    "deflate-binary": ("16 MiB compressed echo", True, lambda: [
        [os.urandom(64 * KiB) for _ in range(256)]]),
}


def split_utf8(data: bytes, size: int) -> list[bytes]:
    """data cut into pieces of about size bytes, never inside a UTF-8 sequence."""
    out, i = [], 0
    while i < len(data):
        j = min(i + size, len(data))
        while j < len(data) and data[j] & 0xC0 == 0x80:
            j += 1
        out.append(data[i:j])
        i = j
    return out


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(TLS_ECHO_CASES))
def test_16mib_echo_over_tls_within_the_plain_bound(tls_factory, kind):
    """16 MiB echoed over wss://, as one frame or (compressed) in 64 KiB fragments: the
    server's peak RSS grows by at most the plain path's bound plus OpenSSL's buffers."""
    case, compress, make = TLS_ECHO_CASES[kind]
    t = tls_factory()
    messages = make()
    small = [m[:4] if isinstance(m, list) else m[:64 * KiB] for m in messages]
    assert t.lt.run(wss_echo(t.url(), small, compress), 60) == compress  # warm-up
    time.sleep(0.1)
    idle = t.srv.status()
    assert t.lt.run(wss_echo(t.url(), messages, compress), 120) == compress
    growth = peak_growth_kib(t.srv, idle)
    bound = tls_bound_kib(case)
    print(f"\n[wss {case}, {kind}] peak RSS growth {growth} KiB (bound {bound} KiB: "
          f"{MEMORY_BOUNDS_KIB[case][0]} KiB as in {MEMORY_BOUNDS_KIB[case][1]} + "
          f"{TLS_PER_CONNECTION // KiB} KiB for OpenSSL)")
    assert_growth(growth, bound, f"echoing 16 MiB {kind} over TLS")


@pytest.mark.slow
def test_64mib_non_reader_over_tls_within_the_plain_bound(tls_factory):
    """A wss:// client sends 64 MiB of 64 KiB binary messages and never reads: the server
    stops reading it at the output high-water mark (it does not take the 64 MiB), its peak
    RSS grows by at most the plain bound plus OpenSSL's buffers, another wss:// client's
    echo goes on, and --send-timeout closes the stalled one."""
    import re
    import socket
    import ssl
    from conftest import IO_TIMEOUT, read_http_head, upgrade_request
    from test_tls import client_context
    t = tls_factory("--send-timeout", "2000")
    frame = build_frame(OP_BINARY, os.urandom(64 * KiB))
    with t.ws() as other:
        for _ in range(3):  # warm-up: TLS records both ways, the shared buffers
            other.send(os.urandom(64 * KiB))
            other.recv()
        time.sleep(0.1)
        idle = t.srv.status()
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * KiB)
        raw.settimeout(IO_TIMEOUT)
        raw.connect(("127.0.0.1", t.tls_port))
        hog = client_context().wrap_socket(raw)
        hog.sendall(upgrade_request(host=f"127.0.0.1:{t.tls_port}"))
        assert b" 101 " in read_http_head(hog)
        hog.setblocking(False)
        sent, pending, last = 0, frame, time.monotonic()
        while sent < 64 * MiB and time.monotonic() - last < 0.5:
            try:
                n = hog.send(pending)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                time.sleep(0.01)
                continue
            sent += n
            last = time.monotonic()
            pending = pending[n:] or frame
        assert sent < 64 * MiB, "the server read 64 MiB from a client that never reads"
        for i in range(5):
            other.send(f"other {i}")
            assert other.recv() == f"other {i}"
        after = t.srv.status()
        growth = max(after["VmHWM"], after["VmRSS"]) - idle["VmRSS"]
        case = "64 MiB non-reader"
        bound = tls_bound_kib(case)
        print(f"\n[wss {case}] the server took {sent / MiB:.2f} MiB before stalling; peak RSS "
              f"growth {growth} KiB (bound {bound} KiB: {MEMORY_BOUNDS_KIB[case][0]} KiB as in "
              f"{MEMORY_BOUNDS_KIB[case][1]} + {TLS_PER_CONNECTION // KiB} KiB for OpenSSL)")
        assert_growth(growth, bound, "for a stalled TLS client")
        deadline = time.monotonic() + 8
        while not re.search(r"took none of \d+ pending bytes for 2000 ms: closing",
                            t.srv.stderr_text()):
            assert time.monotonic() < deadline, "no send timeout for the stalled TLS client"
            time.sleep(0.05)
        other.send("after")
        assert other.recv() == "after"
        hog.close()
