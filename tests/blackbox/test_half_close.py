"""A client that half-closes (shutdown(SHUT_WR), no Close frame) while its echo is still on the
way keeps reading: the server finishes sending what it queued, whole frames only, then closes.
"""

import os
import select
import socket
import time

from conftest import IO_TIMEOUT, OP_BINARY, build_frame, raw_upgrade
from limits_helpers import KiB, MiB, parse_server_frames


def send_then_half_close(srv, payload: bytes) -> bytes:
    """Send payload as one binary frame while reading, shut down our sending side, and read
    until the server's FIN. Returns every byte received."""
    s = socket.socket()
    # A small receive buffer: the echo backs up in the server, as with a reader on a slow link.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * KiB)
    s.settimeout(IO_TIMEOUT)
    s.connect(("127.0.0.1", srv.port))
    srv._sockets.append(s)
    raw_upgrade(s, host=f"127.0.0.1:{srv.port}")
    data = build_frame(OP_BINARY, payload)
    s.setblocking(False)
    sent, received, shut = 0, bytearray(), False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r, w, _ = select.select([s], [s] if not shut else [], [], 0.5)
        if w and sent < len(data):
            try:
                sent += s.send(data[sent:sent + 256 * KiB])
            except BlockingIOError:
                pass
            if sent == len(data):
                s.shutdown(socket.SHUT_WR)
                shut = True
        if r:
            try:
                chunk = s.recv(16 * KiB)
            except BlockingIOError:
                continue
            if not chunk:
                return bytes(received)
            received += chunk
    raise AssertionError(f"no end of the echo within 30 s: {len(received)} bytes received")


def test_half_close_after_a_4mib_message_still_gets_the_whole_echo(websock):
    """Ten times: a 4 MiB binary message, then shutdown(SHUT_WR) without a Close. The echo
    must arrive whole (every fragment complete, 4 MiB in all) before the server's FIN; no
    truncated frame may precede it. Before the fix 9 runs in 10 lost the tail."""
    payload = os.urandom(4 * MiB)
    results = []
    for run in range(10):
        data = send_then_half_close(websock, payload)
        frames, rest = parse_server_frames(data)
        echoed = b"".join(p for _, _, p in frames)
        results.append(len(echoed))
        assert not rest, f"run {run}: {len(rest)} bytes of a truncated frame before the FIN " \
                         f"({len(echoed)} of {len(payload)} payload bytes in whole frames)"
        assert echoed == payload, f"run {run}: echo of {len(echoed)} bytes, not {len(payload)}"
        assert frames[0][0] == OP_BINARY and frames[-1][1], "not one whole fragmented message"
    print(f"\n[half-close] {len(results)} of 10 runs got the whole 4 MiB echo")
    s = websock.upgraded()  # still serving
    s.sendall(build_frame(OP_BINARY, b"after"))
    s.settimeout(IO_TIMEOUT)
    assert s.recv(64)[2:] == b"after"
