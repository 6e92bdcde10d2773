"""Clients that stop reading: --send-timeout closes a client that takes none of its pending
output for that long, a slow but steady reader is left alone, and a stalled client costs the
server a bounded amount of memory while others are served at once (design.md §4, §5).

Run with ``WEBSOCK_DISABLE_LIMITS=--send-timeout`` to see the limit tests fail
(limits_helpers.py).
"""

import os
import re
import select
import socket
import time

import pytest

from conftest import (IO_TIMEOUT, OP_BINARY, OP_TEXT, build_frame, raw_upgrade, recv_message,
                      send_frame)
from limits_helpers import (KiB, MiB, SLACK, binary_is_sanitized, drain_until_end,
                            limit_flags, parse_server_frames, tcp_state, wait_peer_gone,
                            TCP_ESTABLISHED)


def small_buffer_client(srv, rcvbuf=64 * KiB, sndbuf=None):
    """An upgraded client whose kernel buffers are fixed small (no autotuning), so that a
    client that does not read stalls the server after little data."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(IO_TIMEOUT)
    s.connect(("127.0.0.1", srv.port))
    srv._sockets.append(s)
    raw_upgrade(s, host=f"127.0.0.1:{srv.port}")
    return s


def send_until_stalled(sock, data: bytes, stall_s: float = 0.5, limit_s: float = 30.0):
    """Send on a non-blocking socket until everything is sent or nothing more is taken for
    stall_s. Returns (bytes sent, monotonic time of the last byte taken)."""
    sock.setblocking(False)
    sent, last_progress = 0, time.monotonic()
    deadline = last_progress + limit_s
    while sent < len(data) and time.monotonic() < deadline:
        _, w, _ = select.select([], [sock], [], 0.02)
        if w:
            try:
                sent += sock.send(data[sent:sent + 256 * KiB])
                last_progress = time.monotonic()
                continue
            except BlockingIOError:
                pass
        if time.monotonic() - last_progress > stall_s:
            break
    return sent, last_progress


def test_send_timeout_closes_a_client_that_takes_nothing(websock_factory):
    """--send-timeout 1000: a client that sends data and never reads the echo fills the
    socket buffers and the output high-water mark; ~1 s after the server last made progress
    it closes the connection (log line "took none of … pending bytes", then EOF/RST)."""
    srv = websock_factory(*limit_flags("--send-timeout", "1000"))
    hog = small_buffer_client(srv, rcvbuf=64 * KiB, sndbuf=64 * KiB)
    payload = os.urandom(60 * KiB)
    data = b"".join(build_frame(OP_BINARY, payload) for _ in range(128))  # 7.5 MiB
    sent, last = send_until_stalled(hog, data, stall_s=0.3)
    assert sent < len(data), "the server read 7.5 MiB from a client that never reads"
    assert tcp_state(hog) == TCP_ESTABLISHED, "closed before the send timeout could apply"

    gone = wait_peer_gone(hog, timeout=1.0 + 2.0 + SLACK)
    assert gone is not None, \
        f"a client that took no output was still connected {time.monotonic() - last:.1f}s " \
        "after it stalled, with --send-timeout 1000"
    elapsed = gone - last
    assert 0.3 <= elapsed <= 1.0 + SLACK, \
        f"closed {elapsed:.2f}s after our last byte was taken, expected ~1s"
    log = srv.stderr_text()
    m = re.search(r"took none of (\d+) pending bytes for 1000 ms: closing", log)
    assert m, f"no send-timeout log line; stderr tail:\n{log[-2000:]}"
    how = drain_until_end(hog, IO_TIMEOUT)
    print(f"\n[send-timeout] sent {sent // KiB} KiB; closed {elapsed:.2f}s after the stall "
          f"({how}), {m.group(1)} bytes pending")


def test_slow_but_steady_reader_is_not_closed(websock_factory):
    """The same limit must not close a client that keeps taking its output, however slowly.
    The client keeps a large backlog queued (it sends far more than it reads, so the server
    always has output pending for it) and reads 64 KiB every 100 ms (~640 KiB/s) for 3 s,
    three times the send timeout: it takes output ten times per timeout period and must
    still be connected at the end."""
    srv = websock_factory(*limit_flags("--send-timeout", "1000"))
    s = small_buffer_client(srv, rcvbuf=128 * KiB, sndbuf=64 * KiB)
    payload = os.urandom(60 * KiB)
    out = build_frame(OP_BINARY, payload) * 512  # 30 MiB: never all sent in 3 s
    s.setblocking(False)
    sent, received, reads = 0, bytearray(), 0
    first_block = None
    t0 = time.monotonic()
    next_read = t0
    while time.monotonic() - t0 < 3.0:
        wait = max(0.0, next_read - time.monotonic())
        select.select([], [s], [], min(wait, 0.01))
        try:
            sent += s.send(out[sent:sent + 64 * KiB])
        except BlockingIOError:
            if first_block is None:
                first_block = time.monotonic()
        except (ConnectionResetError, BrokenPipeError):
            pass  # seen by the read below
        if time.monotonic() >= next_read:
            next_read += 0.1
            at = time.monotonic() - t0
            try:
                chunk = s.recv(64 * KiB)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                chunk = None
            if not chunk:
                log = srv.stderr_text()
                m = re.search(r"took none of \d+ pending bytes for \d+ ms: closing", log)
                pytest.fail(f"a client reading 64 KiB every 100 ms was "
                            f"{'reset' if chunk is None else 'closed'} after {at:.2f}s, "
                            f"having read {len(received)} bytes in {reads} reads, with "
                            f"--send-timeout 1000; server log: "
                            f"{m.group(0) if m else 'no send-timeout line'}")
            received += chunk
            reads += 1
    assert first_block is not None and sent < len(out), \
        "the server took everything: no output was pending"
    assert tcp_state(s) == TCP_ESTABLISHED
    assert "took none of" not in srv.stderr_text()
    frames, _ = parse_server_frames(bytes(received))
    assert frames and all(f == (OP_BINARY, True, payload) for f in frames), "echo corrupted"
    print(f"\n[steady reader] read {len(received) // KiB} KiB in {reads} reads over 3 s; "
          f"sent {sent // KiB} KiB; still open")


@pytest.mark.slow
def test_64mib_stalled_client_bounded_memory_others_served_then_send_timeout(
        websock_factory):
    """A client sends 64 MiB of 64 KiB binary messages and never reads (non-blocking sends
    until the server takes no more). websock's RSS grows by at most 2 MiB: the output
    high-water mark (256 KiB) + the shared read buffer (256 KiB) + scratch + a few pages;
    other clients echo in under 100 ms each; --send-timeout 2000 then closes the stalled
    client (log line and EOF/RST)."""
    srv = websock_factory(*limit_flags("--send-timeout", "2000"))
    others = [srv.upgraded() for _ in range(3)]
    for o in others:  # warm-up: shared read buffer, scratch, libcrypto already warm
        send_frame(o, OP_BINARY, os.urandom(64 * KiB))
        assert recv_message(o)[0] == OP_BINARY
    time.sleep(0.1)
    idle = srv.status()

    hog = small_buffer_client(srv, rcvbuf=64 * KiB)
    payload = os.urandom(64 * KiB)
    frame = build_frame(OP_BINARY, payload)
    data = frame * 1024  # 64 MiB of 64 KiB messages
    sent, last = send_until_stalled(hog, data, stall_s=0.3)
    assert sent < len(data), "the server read 64 MiB from a client that never reads"

    latencies = []
    for rnd in range(4):
        for i, o in enumerate(others):
            msg = f"other {i} round {rnd}".encode()
            t0 = time.monotonic()
            send_frame(o, OP_TEXT, msg)
            assert recv_message(o)[:2] == (OP_TEXT, msg)
            latencies.append(time.monotonic() - t0)
        time.sleep(0.1)
    after = srv.status()
    growth = max(after["VmHWM"], after["VmRSS"]) - idle["VmRSS"]

    gone = wait_peer_gone(hog, timeout=2.0 + 2.0 + SLACK)
    assert gone is not None, \
        f"the stalled client was still connected {time.monotonic() - last:.1f}s after it " \
        "stalled, with --send-timeout 2000"
    elapsed = gone - last
    log = srv.stderr_text()
    m = re.search(r"took none of (\d+) pending bytes for 2000 ms: closing", log)
    assert m, f"no send-timeout log line; stderr tail:\n{log[-2000:]}"
    how = drain_until_end(hog, IO_TIMEOUT)
    print(f"\n[64MiB stalled] accepted {sent / MiB:.2f} MiB before stalling; RSS growth "
          f"{growth} KiB (idle VmRSS {idle['VmRSS']} KiB, after VmRSS {after['VmRSS']} KiB "
          f"VmHWM {after['VmHWM']} KiB); other clients' echo max "
          f"{max(latencies) * 1000:.1f} ms; closed {elapsed:.2f}s after the stall ({how}), "
          f"{m.group(1)} bytes pending")
    assert 1.0 <= elapsed <= 2.0 + SLACK, \
        f"closed {elapsed:.2f}s after our last byte was taken, expected ~2s"
    assert max(latencies) < 0.1 * SLACK, \
        f"other clients' echo took up to {max(latencies) * 1000:.0f} ms"
    if not binary_is_sanitized():
        assert growth <= 2 * 1024, f"RSS grew {growth} KiB for a stalled client"
    for o in others:
        send_frame(o, OP_TEXT, b"after")
        assert recv_message(o)[:2] == (OP_TEXT, b"after")


@pytest.mark.parametrize("rate_kib,rcvbuf", [(16, 32 * KiB), (64, None)])
def test_slow_readers_of_a_4mib_echo_survive_the_send_timeout(websock_factory, rate_kib, rcvbuf):
    """--send-timeout 3000: a client sends a 4 MiB binary message and reads its echo steadily
    at rate_kib KiB/s (16 KiB reads) for 9 s, three send timeouts. It takes output all the
    time, so it must not be closed. Before the fix the server only counted the writes it made
    when EPOLLOUT fired, which with a large unsent backlog in the kernel came too late: these
    readers were reset after about 4 s.

    What the server can see of a reader is the kernel's count of acknowledged bytes, which
    moves when the reader's window opens again. On loopback (MSS 64 KiB) a reader with default
    buffers reopens it only in 64 KiB steps, one every 4 s at 16 KiB/s; across a real link
    (MSS ~1.4 KiB), or with a smaller receive buffer as here, the steps are small. So the
    16 KiB/s reader has a 32 KiB receive buffer; the 64 KiB/s one keeps the defaults."""
    srv = websock_factory(*limit_flags("--send-timeout", "3000"))
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(IO_TIMEOUT)
    s.connect(("127.0.0.1", srv.port))
    srv._sockets.append(s)
    raw_upgrade(s, host=f"127.0.0.1:{srv.port}")
    data = build_frame(OP_BINARY, os.urandom(4 * MiB))
    s.setblocking(False)
    sent, received = 0, 0
    t0 = time.monotonic()
    next_read = t0
    interval = 16 / rate_kib
    while time.monotonic() - t0 < 9.0:
        select.select([], [s] if sent < len(data) else [], [], 0.01)
        if sent < len(data):
            try:
                sent += s.send(data[sent:sent + 256 * KiB])
            except BlockingIOError:
                pass
        if time.monotonic() < next_read:
            continue
        next_read += interval
        try:
            chunk = s.recv(16 * KiB)
        except BlockingIOError:
            continue
        except ConnectionResetError:
            chunk = None
        if not chunk:
            m = re.search(r"took none of \d+ pending bytes for \d+ ms: closing", srv.stderr_text())
            pytest.fail(f"a reader at {rate_kib} KiB/s was "
                        f"{'reset' if chunk is None else 'closed'} after "
                        f"{time.monotonic() - t0:.1f}s having read {received // KiB} KiB; "
                        f"server log: {m.group(0) if m else 'no send-timeout line'}")
        received += len(chunk)
    assert tcp_state(s) == TCP_ESTABLISHED
    assert "took none of" not in srv.stderr_text()
    print(f"\n[slow reader {rate_kib} KiB/s] read {received // KiB} KiB in 9 s, sent "
          f"{sent // KiB} KiB; still open")
