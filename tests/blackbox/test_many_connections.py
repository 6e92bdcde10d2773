"""Many connections: 10,000 concurrent open WebSockets each echo correctly (and cost little
memory each), and SIGTERM with 100 open clients closes every one with 1001 and exits 0."""

import os
import selectors
import signal
import struct
import time

import pytest

from conftest import (IO_TIMEOUT, OP_BINARY, OP_CLOSE, OP_TEXT, assert_eof, build_frame,
                      recv_close, recv_message, send_frame)
from limits_helpers import (SLACK, binary_is_sanitized, open_upgraded_many,
                            parse_server_frames, raise_nofile)

N = 10_000


def echo_all(socks, timeout: float = 30.0) -> None:
    """Every socket sends one small distinct message; every echo must come back exactly."""
    sel = selectors.DefaultSelector()
    expected = {}
    try:
        for i, s in enumerate(socks):
            op = OP_TEXT if i % 2 else OP_BINARY
            payload = f"connection {i} says {os.urandom(4).hex()}".encode()
            s.setblocking(False)
            frame = build_frame(op, payload)
            assert s.send(frame) == len(frame), f"short send on connection {i}"
            expected[s] = (i, op, payload)
            sel.register(s, selectors.EVENT_READ, bytearray())
        pending = len(socks)
        deadline = time.monotonic() + timeout
        while pending:
            assert time.monotonic() < deadline, f"{pending} of {len(socks)} echoes missing " \
                                                f"after {timeout}s"
            for key, _ in sel.select(0.5):
                s, buf = key.fileobj, key.data
                i, op, payload = expected[s]
                try:
                    chunk = s.recv(4096)
                except ConnectionResetError:
                    chunk = b""
                assert chunk, f"connection {i} closed before its echo"
                buf += chunk
                frames, rest = parse_server_frames(bytes(buf))
                if frames:
                    assert frames == [(op, True, payload)] and not rest, \
                        f"connection {i}: wrong echo {frames!r} {rest!r}"
                    sel.unregister(s)
                    pending -= 1
    finally:
        sel.close()
        for s in socks:
            s.setblocking(True)


@pytest.mark.slow
def test_10000_concurrent_connections_all_echo(websock_factory):
    limit = raise_nofile()
    assert limit >= N + 100, f"descriptor limit {limit} too low for {N} connections"
    srv = websock_factory(log_level="info")  # debug would log ~40,000 lines
    warm = srv.upgraded()
    send_frame(warm, OP_TEXT, b"warm-up")
    assert recv_message(warm)[:2] == (OP_TEXT, b"warm-up")
    time.sleep(0.1)
    before = srv.status()["VmRSS"]
    t0 = time.monotonic()
    socks = open_upgraded_many("127.0.0.1", srv.port, N, batch=500, timeout=40.0)
    try:
        opened = time.monotonic() - t0
        assert len(socks) == N
        time.sleep(0.2)
        after_open = srv.status()["VmRSS"]
        t1 = time.monotonic()
        echo_all(socks)
        echoed = time.monotonic() - t1
        after_echo = srv.status()
        per_conn = (after_open - before) * 1024 / N
        print(f"\n[10k] opened {N} upgraded connections in {opened:.1f}s, all echoed in "
              f"{echoed:.1f}s; VmRSS {before} KiB idle -> {after_open} KiB with {N} open "
              f"= {per_conn:.0f} bytes per idle connection; after the echo round VmRSS "
              f"{after_echo['VmRSS']} KiB, VmHWM {after_echo['VmHWM']} KiB")
        if not binary_is_sanitized():
            assert per_conn < 4096, f"{per_conn:.0f} bytes of RSS per idle connection"
        # The server still serves a new client with all of them open.
        send_frame(warm, OP_TEXT, b"after 10k")
        assert recv_message(warm)[:2] == (OP_TEXT, b"after 10k")
    finally:
        for s in socks:
            s.close()


def test_sigterm_with_100_open_clients_closes_each_with_1001_and_exits_0(websock_factory):
    srv = websock_factory()
    clients = [srv.upgraded() for _ in range(100)]
    for i, c in enumerate(clients[::10]):
        send_frame(c, OP_TEXT, f"busy {i}".encode())
        assert recv_message(c)[:2] == (OP_TEXT, f"busy {i}".encode())
    time.sleep(0.1)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    codes = []
    for c in clients:
        c.settimeout(IO_TIMEOUT)
        f, before = recv_close(c)
        assert not before, f"frames before the Close: {before!r}"
        codes.append(f.close_code)
        send_frame(c, OP_CLOSE, struct.pack("!H", f.close_code or 1000))
        assert_eof(c)
        c.close()
    assert codes == [1001] * 100, f"close codes: {sorted(set(codes))}"
    try:
        rc = srv.proc.wait(timeout=3.0 + SLACK)
    except Exception:
        pytest.fail("websock did not exit within 3 s of SIGTERM although all 100 clients "
                    "answered")
    elapsed = time.monotonic() - t0
    assert rc == 0
    assert elapsed < 3.0 * SLACK, f"exit took {elapsed:.2f}s"
    print(f"\n[sigterm-100] all 100 got Close 1001; exit 0 after {elapsed:.2f}s")
