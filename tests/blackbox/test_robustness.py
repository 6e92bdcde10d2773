"""Behaviour under awkward clients: fail paths that must stop processing, streamed text cut at
code-point boundaries, clients that never read, slow handshakes, many concurrent clients."""

import os
import select
import socket
import time

import pytest

from conftest import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, build_frame,
                      expect_close, frame_header_len, recv_close, recv_frame, recv_message,
                      send_frame, summarize)

KiB = 1024


@pytest.mark.parametrize("bad", [
    build_frame(OP_TEXT, b"x", rsv=4),
    build_frame(OP_TEXT, b"\xff"),
    build_frame(OP_CONT, b"orphan"),
], ids=["1002-rsv", "1007-utf8", "1002-orphan-continuation"])
def test_nothing_is_processed_after_the_frame_that_fails_the_connection(websock, bad):
    """design.md §3: failing the connection stops reading application data. Frames sent in
    the same write after the bad one are neither echoed nor answered."""
    s = websock.upgraded()
    after = build_frame(OP_TEXT, b"must not echo") + build_frame(OP_PING, b"no pong")
    s.sendall(bad + after)
    f, before = recv_close(s)
    assert before == [], f"server sent frames before its Close: {summarize(before)}"
    assert f.close_code in (1002, 1007)
    s.settimeout(3)
    while True:  # after the Close: nothing but EOF
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            break
        assert data == b"", f"server sent bytes after its Close: {data[:64]!r}"
        break


@pytest.mark.parametrize("total", [4 * KiB, 300 * KiB], ids=["held-4KiB", "streamed-300KiB"])
def test_invalid_utf8_fails_fast_in_small_and_large_frames(websock, total):
    """Whether the server holds the frame (under the 64 KiB coalescing threshold) or streams
    it, the invalid byte fails the connection before the frame is complete."""
    s = websock.upgraded()
    good = "\u00e9t\u00e9 ".encode() * (total // 2 // 6)
    payload = good + b"\xf4\x90" + b"a" * (total - len(good) - 2)
    frame = build_frame(OP_TEXT, payload)
    s.sendall(frame[:frame_header_len(frame) + len(good) + 2])
    f, before = recv_close(s)
    assert f.close_code == 1007, f"got Close {f.close_code} {f.payload!r}"
    echoed = b"".join(x.payload for x in before)
    assert good.startswith(echoed), "the server echoed bytes that were never sent as valid"


def _read_text_echo(s):
    frames = []
    while not frames or not frames[-1].fin:
        f = recv_frame(s)
        assert f.opcode in (OP_TEXT, OP_CONT), f"unexpected opcode {f.opcode}"
        frames.append(f)
    return frames


def test_streamed_text_fragments_are_cut_at_code_point_boundaries(websock):
    """design.md §4: a large text message streams back as fragments cut at code-point
    boundaries, so every outgoing fragment is valid UTF-8 on its own."""
    s = websock.upgraded()
    text = ("a" + "\U0001F600" * (300 * KiB // 4)).encode()  # 4-byte chars, odd offset
    send_frame(s, OP_TEXT, text)
    frames = _read_text_echo(s)
    assert b"".join(f.payload for f in frames) == text
    for i, f in enumerate(frames):
        try:
            f.payload.decode("utf-8")
        except UnicodeDecodeError as e:
            pytest.fail(f"outgoing fragment {i} of {len(frames)} (len {len(f.payload)}) is cut "
                        f"inside a code point: {e}")


def test_client_fragments_cut_inside_code_points_echo_as_valid_fragments(websock):
    s = websock.upgraded()
    text = ("\u20ac" * 50000).encode()  # 150000 bytes of 3-byte chars
    cuts = [0, 1001, 70001, 100000, len(text)]  # none on a code-point boundary
    parts = [text[a:b] for a, b in zip(cuts, cuts[1:])]
    send_frame(s, OP_TEXT, parts[0], fin=False)
    for p in parts[1:-1]:
        send_frame(s, OP_CONT, p, fin=False)
    send_frame(s, OP_CONT, parts[-1], fin=True)
    frames = _read_text_echo(s)
    assert b"".join(f.payload for f in frames) == text
    for i, f in enumerate(frames):
        try:
            f.payload.decode("utf-8")
        except UnicodeDecodeError as e:
            pytest.fail(f"outgoing fragment {i} cut inside a code point: {e}")


def test_client_that_never_reads_neither_grows_memory_nor_blocks_others(websock):
    """design.md §4 backpressure: a client that sends a huge message and never reads stops
    being read once its output passes the high-water mark; the server's memory stays bounded
    and other clients are served at once."""
    warm = websock.upgraded()
    send_frame(warm, OP_BINARY, b"warm")
    recv_message(warm)
    idle_rss = websock.status()["VmRSS"]

    hog = websock.upgraded()
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * KiB)
    hog.setblocking(False)
    chunk = os.urandom(256 * KiB)
    # Header of a 60 MiB binary frame with an all-zero mask key, so the payload can be
    # streamed as is; the payload follows in chunks for as long as the server takes it.
    hog.send(build_frame(OP_BINARY, b"", length_override=60 * 1024 * KiB,
                         mask_key=b"\x00\x00\x00\x00"))
    sent, stalled_since = 0, None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        _, w, _ = select.select([], [hog], [], 0.2)
        if w:
            try:
                sent += hog.send(chunk)
                stalled_since = None
                continue
            except BlockingIOError:
                pass
        if stalled_since is None:
            stalled_since = time.monotonic()
        elif time.monotonic() - stalled_since > 0.5:
            break
    assert stalled_since is not None, "the server kept reading a client that never reads"
    assert sent < 60 * 1024 * KiB

    other = websock.upgraded()
    t0 = time.monotonic()
    send_frame(other, OP_TEXT, b"still served")
    assert recv_message(other)[:2] == (OP_TEXT, b"still served")
    assert time.monotonic() - t0 < 1.0
    growth = websock.status()["VmHWM"] - idle_rss
    assert growth < 4 * 1024, f"server RSS grew {growth} KiB for a client that never reads " \
                              f"(it accepted {sent // KiB} KiB from it)"


def test_slow_handshake_is_dropped_after_handshake_timeout(websock_factory):
    """Slowloris: a connection that never finishes its request is closed (design.md §5)."""
    srv = websock_factory("--handshake-timeout", "300")
    s = srv.connect()
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    s.settimeout(5)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    elapsed = time.monotonic() - t0
    assert elapsed < 3, f"slow handshake not dropped after {elapsed:.1f}s"
    assert elapsed > 0.15, f"dropped after {elapsed:.2f}s, before the 300 ms timeout"
    if data:
        assert data.startswith(b"HTTP/1.1 "), data[:100]


def test_many_clients_interleaved_are_echoed_correctly(websock):
    clients = [websock.upgraded() for _ in range(20)]
    expected = {i: [] for i in range(len(clients))}
    for rnd in range(5):
        for i, c in enumerate(clients):
            op = OP_TEXT if (i + rnd) % 2 else OP_BINARY
            payload = (f"client {i} round {rnd} " * (1 + i * rnd)).encode()
            if op == OP_BINARY:
                payload = os.urandom(1 + 997 * i * rnd)
            send_frame(c, op, payload)
            expected[i].append((op, payload))
    for i, c in enumerate(clients):
        for op, payload in expected[i]:
            assert recv_message(c)[:2] == (op, payload), f"client {i}"
    for c in clients:
        send_frame(c, OP_CLOSE, b"\x03\xe8")
        expect_close(c, 1000, reply=False)


def test_max_message_on_streaming_path_fails_with_1009(websock_factory):
    """A limit above the 64 KiB coalescing threshold: a frame just over it streams and then
    fails with 1009; one exactly at it is echoed whole."""
    srv = websock_factory("--max-message", "100000")
    s = srv.upgraded()
    data = os.urandom(100000)
    send_frame(s, OP_BINARY, data)
    assert recv_message(s)[:2] == (OP_BINARY, data)
    send_frame(s, OP_BINARY, os.urandom(100001))
    expect_close(s, 1009)
