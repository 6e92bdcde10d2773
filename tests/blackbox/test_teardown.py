"""Teardown: every way a client can vanish releases its descriptor, and a client that resets
while the server writes to it never kills the server with SIGPIPE (design.md §5, README)."""

import os
import select
import signal
import socket
import struct
import subprocess
import time

from conftest import (IO_TIMEOUT, OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, assert_eof,
                      build_frame, frame_header_len, raw_upgrade, recv_message, send_frame,
                      upgrade_request)
from limits_helpers import (SLACK, fd_count, idle_fd_count, limit_flags, set_linger_rst,
                            wait_fd_count)

PER_KIND = 50


def test_no_descriptor_leaks_after_clients_vanish_in_every_way(websock_factory):
    """50 clients each of: reset in the middle of a frame; half-close right after the upgrade
    and in the middle of a frame; close and reset during the handshake; a Close sent, then
    gone (closed at once) and a Close sent, then silent (socket left open, never answers
    nor sends FIN). Once things settle the server holds exactly its idle descriptors and
    still echoes. The silent ones end only by --close-timeout."""
    srv = websock_factory(*limit_flags("--close-timeout", "1000"), log_level="info")
    idle = idle_fd_count(srv.pid)
    host = f"127.0.0.1:{srv.port}"
    big = build_frame(OP_BINARY, os.urandom(4000))
    cut = frame_header_len(big) + 1000  # a frame sent only in part
    request = upgrade_request(host=host)
    close_frame = build_frame(OP_CLOSE, struct.pack("!H", 1000))
    kept = []  # sockets the test leaves open: the server must end them itself

    def upgraded():
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT)
        raw_upgrade(s, host=host)
        return s

    counts = {}
    for kind in ("rst-mid-frame", "half-close-after-upgrade", "half-close-mid-frame",
                 "close-in-handshake", "rst-in-handshake", "close-frame-then-gone",
                 "close-frame-then-silent"):
        for _ in range(PER_KIND):
            if kind in ("close-in-handshake", "rst-in-handshake"):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT)
                s.sendall(request[:len(request) // 2])
                if kind == "rst-in-handshake":
                    set_linger_rst(s)
                s.close()
                continue
            s = upgraded()
            if kind == "rst-mid-frame":
                s.sendall(big[:cut])
                set_linger_rst(s)
                s.close()
            elif kind == "half-close-after-upgrade":
                s.shutdown(socket.SHUT_WR)
                kept.append(s)
            elif kind == "half-close-mid-frame":
                s.sendall(big[:cut])
                s.shutdown(socket.SHUT_WR)
                kept.append(s)
            elif kind == "close-frame-then-gone":
                s.sendall(close_frame)
                s.close()
            else:  # close-frame-then-silent
                s.sendall(close_frame)
                kept.append(s)
        counts[kind] = fd_count(srv.pid)
    try:
        settled = wait_fd_count(srv.pid, idle, 5.0 + SLACK)
        assert settled == idle, (
            f"the server holds {settled - idle} more descriptors than when idle ({idle}) "
            f"5 s after the battery (descriptor count after each kind: {counts})")
        assert srv.proc.poll() is None
        with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as s:
            raw_upgrade(s, host=host)
            send_frame(s, OP_TEXT, b"still echoing")
            assert recv_message(s)[:2] == (OP_TEXT, b"still echoing")
        assert wait_fd_count(srv.pid, idle, 2.0) == idle
    finally:
        for s in kept:
            s.close()


def test_sigpipe_clients_that_reset_right_after_sending_never_kill_the_server(websock):
    """200 clients send and reset at once, so the server writes into dead sockets; SIGPIPE
    must never kill it (README). Two kinds alternate:
    - a message, a ping and a 300 KiB message (which streams back in many writes), then a
      reset (SO_LINGER 0): the server's first failing write gets ECONNRESET;
    - 1 MiB of messages without reading (the server has echo output pending and stops
      reading), then shutdown(SHUT_WR) and a reset: the reset arrives in CLOSE_WAIT, so the
      server's next write gets EPIPE, which raises SIGPIPE unless it is ignored or the write
      uses MSG_NOSIGNAL."""
    host = f"127.0.0.1:{websock.port}"
    quick = (build_frame(OP_TEXT, b"t" * 100) + build_frame(OP_PING, b"p") +
             build_frame(OP_BINARY, os.urandom(300 * 1024)))
    flood = build_frame(OP_BINARY, os.urandom(64 * 1024)) * 16
    for i in range(200):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(IO_TIMEOUT)
        try:
            s.connect(("127.0.0.1", websock.port))
            raw_upgrade(s, host=host)
        except (ConnectionError, EOFError) as e:
            s.close()
            try:
                websock.proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
            raise AssertionError(f"client {i} could not connect ({e!r}); websock exit status "
                                 f"{websock.proc.returncode} (-13 is SIGPIPE)") from None
        try:
            if i % 2 == 0:
                s.sendall(quick)
            else:
                s.setblocking(False)
                sent = 0
                while sent < len(flood):
                    try:
                        sent += s.send(flood[sent:sent + 256 * 1024])
                    except BlockingIOError:
                        if not select.select([], [s], [], 0.02)[1]:
                            break  # the server stopped reading us
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        set_linger_rst(s)
        s.close()
    time.sleep(0.2)
    assert websock.proc.poll() is None, \
        f"websock died (status {websock.proc.returncode}, -13 is SIGPIPE) during the resets"
    s = websock.upgraded()
    send_frame(s, OP_TEXT, b"alive")
    assert recv_message(s)[:2] == (OP_TEXT, b"alive")


def test_frame_and_fin_read_together_still_end_the_connection(websock):
    """A frame and the client's FIN already queued when the server reads: the socket is watched
    edge-triggered, so no second report of the FIN comes by itself. The frame is echoed and the
    connection ends at once, not at the idle timeout (120 s)."""
    s = websock.upgraded()
    os.kill(websock.pid, signal.SIGSTOP)  # both arrive before the server runs again
    try:
        s.sendall(build_frame(OP_BINARY, b"last words"))
        s.shutdown(socket.SHUT_WR)
        time.sleep(0.2)
    finally:
        os.kill(websock.pid, signal.SIGCONT)
    assert recv_message(s)[:2] == (OP_BINARY, b"last words")
    assert_eof(s)
