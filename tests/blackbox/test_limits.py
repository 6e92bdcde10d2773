"""design.md §5 hardening limits: request-head size and field count, the handshake deadline,
idle timeout and ping keep-alive, the close-handshake timeout (also on SIGTERM), the
connection limit and the global buffer cap.

Every test here fails if its limit is not enforced; run it with
``WEBSOCK_DISABLE_LIMITS=<flag>`` to see that (limits_helpers.py). The message-size limit
(1009, Close frame actually received) is covered by test_protocol_errors.py.
"""

import os
import select
import selectors
import signal
import socket
import time

import pytest

from conftest import (IO_TIMEOUT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT,
                      assert_eof, build_frame, close_payload, expect_close, parse_http_head,
                      raw_upgrade, read_body_until_eof, read_http_head, recv_close, recv_frame, recv_message,
                      send_frame, summarize, upgrade_request)
from limits_helpers import (KiB, SLACK, assert_error_response, binary_is_sanitized,
                            cpu_seconds, fd_count, idle_fd_count, limit_flags, wait_fd_count)


def expect_error_response(s, status, what):
    """Read an HTTP error response: the status is checked as soon as the head arrives (so a
    101 fails at once instead of waiting for an EOF that never comes), then the rest of the
    response and the server's orderly close."""
    resp = parse_http_head(read_http_head(s))
    assert resp.status == status, f"{what} got {resp.raw_head!r}, expected {status}"
    read_body_until_eof(s, resp)
    assert_error_response(resp, status)
    cl = resp.header("Content-Length")
    if cl is not None:
        assert int(cl) == len(resp.body), f"Content-Length {cl}, body {resp.body!r}"
    return resp


def echo_ok(s, payload=b"still here", op=OP_TEXT):
    send_frame(s, op, payload)
    assert recv_message(s)[:2] == (op, payload)


# ------------------------------------------------------------------------ request head: 431

def test_max_header_bytes_gives_431_over_the_limit_and_upgrades_under_it(websock_factory):
    srv = websock_factory(*limit_flags("--max-header-bytes", "1024"))
    host = f"127.0.0.1:{srv.port}"

    # A 900-byte request head upgrades (and the connection works).
    bare = len(upgrade_request(host=host, extra="X-Filler: \r\n"))
    extra = f"X-Filler: {'a' * (900 - bare)}\r\n"
    assert len(upgrade_request(host=host, extra=extra)) == 900
    s = srv.connect()
    raw_upgrade(s, host=host, extra=extra)
    echo_ok(s)

    # A 2 KiB one gets 431 and the connection is closed.
    bare = len(upgrade_request(host=host, extra="X-Filler: \r\n"))
    extra = f"X-Filler: {'b' * (2048 - bare)}\r\n"
    req = upgrade_request(host=host, extra=extra)
    assert len(req) == 2048
    s = srv.connect()
    s.sendall(req)
    expect_error_response(s, 431, "a 2 KiB request head with --max-header-bytes 1024")


def test_more_than_64_header_fields_gives_431(websock):
    """64 header fields in all upgrade; 65 get 431 (README: "more than 64 header fields").
    The request stays far below the 8 KiB byte limit, so only the count can refuse it."""
    host = f"127.0.0.1:{websock.port}"
    # upgrade_request() already carries 5 fields: Host, Upgrade, Connection, Key, Version.
    fields_64 = "".join(f"X-F{i:02d}: v\r\n" for i in range(59))
    fields_65 = "".join(f"X-F{i:02d}: v\r\n" for i in range(60))
    assert len(upgrade_request(host=host, extra=fields_65)) < 2 * KiB

    s = websock.connect()
    raw_upgrade(s, host=host, extra=fields_64)
    echo_ok(s)

    s = websock.connect()
    s.sendall(upgrade_request(host=host, extra=fields_65))
    expect_error_response(s, 431, "a request head with 65 header fields")


# ------------------------------------------------------------------- handshake deadline

def test_handshake_deadline_is_not_extended_by_trickled_bytes(websock_factory):
    """A client trickling one header byte every 200 ms is closed 2 s after it connected,
    not 2 s after its last byte."""
    timeout_s = 2.0
    srv = websock_factory(*limit_flags("--handshake-timeout", "2000"))
    s = srv.connect()
    t0 = time.monotonic()
    # The head minus its final CRLF: ~150 bytes, 30 s at this rate; it never completes.
    req = upgrade_request(host=f"127.0.0.1:{srv.port}", extra="X-Pad: " + "p" * 200 + "\r\n")
    req = req[:-2]
    s.setblocking(False)
    sent = 0
    ended, how, data = None, None, b""
    give_up = t0 + timeout_s + 1.0 + SLACK
    while ended is None and time.monotonic() < give_up:
        try:
            s.send(req[sent:sent + 1])
            sent += 1
        except (BrokenPipeError, ConnectionResetError) as e:
            ended, how = time.monotonic(), type(e).__name__
            break
        wake = time.monotonic() + 0.2
        while ended is None and time.monotonic() < wake:
            r, _, _ = select.select([s], [], [], max(0.0, wake - time.monotonic()))
            if r:
                try:
                    chunk = s.recv(4096)
                except ConnectionResetError:
                    ended, how = time.monotonic(), "reset"
                    break
                if not chunk:
                    ended, how = time.monotonic(), "eof"
                    break
                data += chunk
    assert ended is not None, (f"a trickling client ({sent} bytes sent, one per 200 ms) was "
                               f"still connected {give_up - t0:.1f}s after it connected, with "
                               f"--handshake-timeout 2000")
    elapsed = ended - t0
    assert timeout_s - 1.0 <= elapsed <= timeout_s + SLACK, \
        f"closed after {elapsed:.2f}s ({how}), expected {timeout_s}s ± 1s"
    assert sent >= 5, f"only {sent} bytes trickled before the close"
    if data:
        assert data.startswith(b"HTTP/1.1 "), data[:100]
    assert "handshake not completed within 2000 ms" in srv.stderr_text()


# ----------------------------------------------------------------------------- idle timeout

def test_idle_client_gets_close_1001_after_idle_timeout(websock_factory):
    srv = websock_factory(*limit_flags("--ping-interval", "0", "--idle-timeout", "1000"))
    s = srv.upgraded(timeout=1.0 + 1.0 + SLACK)
    t0 = time.monotonic()
    try:
        f, before = recv_close(s)
    except socket.timeout:
        pytest.fail(f"an idle client got no Close within {s.gettimeout()}s with "
                    "--idle-timeout 1000")
    elapsed = time.monotonic() - t0
    assert f.close_code == 1001, f"got Close {f.close_code} {f.payload!r}"
    assert before == [], f"frames before the Close (pings are off): {summarize(before)}"
    assert 0.5 <= elapsed <= 1.0 + SLACK, f"Close 1001 after {elapsed:.2f}s, expected ~1s"
    send_frame(s, OP_CLOSE, f.payload[:2])
    s.settimeout(IO_TIMEOUT)
    assert_eof(s)


def test_client_that_keeps_sending_stays_open_past_idle_timeout(websock_factory):
    srv = websock_factory(*limit_flags("--ping-interval", "0", "--idle-timeout", "1000"))
    s = srv.upgraded()
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < 2.5:
        echo_ok(s, f"message {i}".encode())  # recv_message fails on a Close
        i += 1
        time.sleep(0.2)
    echo_ok(s, b"after 2.5 s")


# ------------------------------------------------------------------------ ping keep-alive

def test_silent_client_is_pinged_then_closed_1001_at_idle_timeout(websock_factory):
    """--ping-interval 300 --idle-timeout 1500: a peer that never answers gets Pings every
    ~300 ms, then Close 1001 ~1.5 s after it was last heard."""
    srv = websock_factory(*limit_flags("--ping-interval", "300", "--idle-timeout", "1500"))
    s = srv.upgraded(timeout=1.5 + 1.0 + SLACK)
    t0 = time.monotonic()
    pings = []
    give_up = t0 + 1.5 + 1.0 + SLACK
    while True:
        try:
            if time.monotonic() > give_up:
                raise socket.timeout
            f = recv_frame(s)
        except socket.timeout:
            pytest.fail(f"no Close within {give_up - t0:.1f}s of silence (pings at "
                        f"{[round(t, 2) for t in pings]})")
        except EOFError as e:
            pytest.fail(f"TCP closed without a Close frame: {e}")
        now = time.monotonic() - t0
        if f.opcode == OP_CLOSE:
            break
        assert f.opcode == OP_PING, f"unexpected opcode {f.opcode} at {now:.2f}s"
        assert len(f.payload) <= 125
        pings.append(now)
    assert f.close_code == 1001, f"got Close {f.close_code} {f.payload!r}"
    assert len(pings) >= 2, f"a silent client got {len(pings)} pings before the Close"
    assert 0.1 <= pings[0] <= 0.3 + SLACK, f"first ping after {pings[0]:.2f}s, expected ~0.3s"
    assert 1.0 <= now <= 1.5 + SLACK, f"Close 1001 after {now:.2f}s of silence, expected ~1.5s"
    send_frame(s, OP_CLOSE, f.payload[:2])
    s.settimeout(IO_TIMEOUT)
    assert_eof(s)


def test_client_answering_pings_stays_open(websock_factory):
    """Pongs count as traffic: a client that only answers Pings is still open after 3 s,
    twice the idle timeout."""
    srv = websock_factory(*limit_flags("--ping-interval", "300", "--idle-timeout", "1500"))
    s = srv.upgraded(timeout=1.0)
    t0 = time.monotonic()
    pings = 0
    while time.monotonic() - t0 < 3.0:
        try:
            f = recv_frame(s)
        except socket.timeout:
            continue
        at = time.monotonic() - t0
        assert f.opcode != OP_CLOSE, \
            f"a client answering every Ping got Close {f.close_code} after {at:.2f}s " \
            f"({pings} pings answered)"
        assert f.opcode == OP_PING, f"unexpected opcode {f.opcode}"
        send_frame(s, OP_PONG, f.payload)
        pings += 1
    assert pings >= 4, f"only {pings} pings in 3 s with --ping-interval 300"
    s.settimeout(IO_TIMEOUT)
    send_frame(s, OP_TEXT, b"still open")
    while True:  # a ping may be in flight before the echo
        f = recv_frame(s)
        if f.opcode == OP_PING:
            send_frame(s, OP_PONG, f.payload)
            continue
        assert (f.opcode, f.payload) == (OP_TEXT, b"still open"), f"got opcode {f.opcode}"
        break


# -------------------------------------------------------------------- close-handshake timeout

def test_server_closes_tcp_close_timeout_after_its_close_if_peer_never_answers(
        websock_factory):
    """After failing a connection (1002), the server waits --close-timeout for the peer's
    Close and FIN, then closes the socket even though the peer neither answers nor closes."""
    srv = websock_factory(*limit_flags("--close-timeout", "1000"))
    idle = idle_fd_count(srv.pid)
    s = srv.upgraded()
    assert wait_fd_count(srv.pid, idle + 1, 2.0) == idle + 1
    send_frame(s, OP_TEXT, b"unmasked", mask=False)
    f, _ = recv_close(s)
    t0 = time.monotonic()
    assert f.close_code == 1002
    # Neither reply nor close: watch the server's descriptor for this client go away.
    deadline = t0 + 1.0 + 1.0 + SLACK
    while fd_count(srv.pid) > idle and time.monotonic() < deadline:
        time.sleep(0.01)
    elapsed = time.monotonic() - t0
    assert fd_count(srv.pid) == idle, \
        f"the server still held the connection {elapsed:.1f}s after its Close although " \
        f"--close-timeout is 1000 ms"
    assert 0.5 <= elapsed <= 1.0 + SLACK, f"socket closed {elapsed:.2f}s after the Close"
    assert "closed: close timeout" in srv.stderr_text()


def sigterm_with_silent_client(srv, wait_s):
    """SIGTERM the server while one client is open; the client gets Close 1001 and then neither
    answers nor closes. Returns (exit code, seconds from the signal to the exit)."""
    s = srv.upgraded()
    echo_ok(s)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    f, _ = recv_close(s)
    assert f.close_code == 1001
    try:
        code = srv.proc.wait(timeout=wait_s)
    except Exception:
        pytest.fail(f"websock did not exit within {wait_s:.1f}s of SIGTERM with a silent client")
    return code, time.monotonic() - t0


def test_sigterm_exits_within_close_timeout_when_client_never_answers(websock_factory):
    srv = websock_factory(*limit_flags("--close-timeout", "1000"))
    code, elapsed = sigterm_with_silent_client(srv, 3.0 + 1.0 + SLACK)
    assert code == 0
    assert 0.5 <= elapsed <= 1.0 + SLACK, \
        f"exit took {elapsed:.2f}s with --close-timeout 1000 (shutdown bound 3 s)"


def test_sigterm_shutdown_bound_caps_a_long_close_timeout(websock_factory):
    """With a 60 s close timeout, the 3 s shutdown bound (README: "wait for their Close for up
    to 3 s, exit 0") still ends the process."""
    srv = websock_factory("--close-timeout", "60000")
    code, elapsed = sigterm_with_silent_client(srv, 3.0 + 2.0 + SLACK)
    assert code == 0
    assert 2.0 <= elapsed <= 3.0 + SLACK, f"exit took {elapsed:.2f}s, shutdown bound is 3 s"
    assert "shutdown bound passed" in srv.stderr_text()


# ----------------------------------------------------------------------------- connections

def upgrade_or_status(srv):
    """Connect and send an upgrade; returns (socket, status) after reading the head."""
    s = srv.connect()
    s.sendall(upgrade_request(host=f"127.0.0.1:{srv.port}"))
    return s, parse_http_head(read_http_head(s))


def test_max_connections_refuses_with_503_and_frees_the_slot(websock_factory):
    srv = websock_factory(*limit_flags("--max-connections", "5"))
    clients = [srv.upgraded() for _ in range(5)]
    for i, c in enumerate(clients):
        echo_ok(c, f"client {i}".encode())

    s = srv.connect()
    s.sendall(upgrade_request(host=f"127.0.0.1:{srv.port}"))
    expect_error_response(s, 503, "the 6th client with --max-connections 5")
    s.close()

    # One of the five leaves (clean close handshake): a new client upgrades again.
    send_frame(clients[0], OP_CLOSE, close_payload(1000))
    expect_close(clients[0], 1000, reply=False)
    deadline = time.monotonic() + 2.0
    while True:
        s, resp = upgrade_or_status(srv)
        if resp.status == 101:
            break
        assert resp.status == 503, resp.raw_head
        s.close()
        assert time.monotonic() < deadline, "no slot freed 2 s after a client left"
        time.sleep(0.05)
    echo_ok(s, b"took the free slot")
    for c in clients[1:]:
        echo_ok(c)


def test_burst_over_max_connections_neither_crashes_nor_spins(websock_factory):
    """200 connections beyond --max-connections 5 at once: each gets a 503 or is closed, the
    server stays up, serves its 5 clients, and is idle afterwards (CPU time over a 2 s window
    far below 1 s: a busy loop on the listener or on refused sockets would show here)."""
    srv = websock_factory(*limit_flags("--max-connections", "5"))
    clients = [srv.upgraded() for _ in range(5)]
    for c in clients:
        echo_ok(c)

    req = upgrade_request(host=f"127.0.0.1:{srv.port}")
    sel = selectors.DefaultSelector()
    burst, results = [], {}
    for _ in range(200):
        b = socket.socket()
        b.setblocking(False)
        b.connect_ex(("127.0.0.1", srv.port))
        burst.append(b)
        sel.register(b, selectors.EVENT_WRITE, bytearray())
    deadline = time.monotonic() + 5.0 + SLACK
    try:
        while len(results) < len(burst) and time.monotonic() < deadline:
            for key, ev in sel.select(0.2):
                b, buf = key.fileobj, key.data
                try:
                    if ev & selectors.EVENT_WRITE:
                        if b.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                            results[b] = ("connect-error", b"")
                            sel.unregister(b)
                            continue
                        b.send(req)
                        sel.modify(b, selectors.EVENT_READ, buf)
                        continue
                    chunk = b.recv(4096)
                except (ConnectionResetError, BrokenPipeError):
                    results[b] = ("reset", bytes(buf))
                    sel.unregister(b)
                    continue
                except BlockingIOError:
                    continue
                if chunk:
                    buf += chunk
                    assert not buf.startswith(b"HTTP/1.1 101"), \
                        "a client beyond --max-connections 5 was upgraded"
                else:
                    results[b] = ("eof", bytes(buf))
                    sel.unregister(b)
    finally:
        sel.close()
    assert len(results) == len(burst), \
        f"{len(burst) - len(results)} of 200 clients beyond the limit were neither answered " \
        f"nor closed within {5.0 + SLACK:.0f}s"
    upgraded = [r for r in results.values() if r[1].startswith(b"HTTP/1.1 101")]
    assert not upgraded, f"{len(upgraded)} clients beyond the limit were upgraded"
    answered = [r for r in results.values() if r[1]]
    for how, data in answered:
        assert data.startswith(b"HTTP/1.1 503 "), f"unexpected answer {data[:80]!r}"
        assert b"\r\n\r\n" in data, f"truncated 503: {data!r}"
    assert answered, "no client beyond the limit got a 503"
    assert srv.proc.poll() is None, "websock died during the burst"

    time.sleep(0.2)
    cpu0, t0 = cpu_seconds(srv.pid), time.monotonic()
    time.sleep(2.0)
    used, span = cpu_seconds(srv.pid) - cpu0, time.monotonic() - t0
    assert used < 0.25, f"websock used {used:.2f}s of CPU in {span:.1f}s of idle after the " \
                        "burst (a busy loop?)"
    print(f"\n[burst] 200 over the limit: {len(answered)} got 503, "
          f"{len(results) - len(answered)} closed without an answer; "
          f"CPU {used * 1000:.0f} ms over {span:.1f}s idle")
    for b in burst:
        b.close()
    for c in clients:
        echo_ok(c, b"after the burst")


# -------------------------------------------------------------------------- --max-buffered

def stall_sender(sock, data: bytes, stall_s: float = 0.5, limit_s: float = 20.0) -> int:
    """Send data on a non-blocking socket until all is sent or the peer takes nothing for
    stall_s; returns the number of bytes sent."""
    sock.setblocking(False)
    sent, stalled_since = 0, None
    deadline = time.monotonic() + limit_s
    while sent < len(data) and time.monotonic() < deadline:
        _, w, _ = select.select([], [sock], [], 0.05)
        if w:
            try:
                sent += sock.send(data[sent:sent + 256 * KiB])
                stalled_since = None
                continue
            except BlockingIOError:
                pass
        if stalled_since is None:
            stalled_since = time.monotonic()
        elif time.monotonic() - stalled_since > stall_s:
            break
    return sent


@pytest.mark.parametrize("cap", ["64K", None], ids=["cap-64K", "default-cap"])
def test_max_buffered_stops_reading_clients_over_the_cap(websock_factory, cap):
    """--output-high-water 8M lets one connection queue up to 8 MiB of output; --max-buffered
    64K caps the whole process. A client that sends without reading (up to 16 MiB, until the
    server takes no more) makes the capped server log "over --max-buffered" and stop reading
    it: RSS grows well under 8 MiB, while another client keeps echoing. With the default cap
    (256M) the same run logs no such line, and the server buffers towards the 8 MiB mark
    (which shows the cap, not the high-water mark, is what bounded the first run)."""
    flags = ["--output-high-water", "8M"] + (["--max-buffered", cap] if cap else [])
    srv = websock_factory(*limit_flags(*flags))
    other = srv.upgraded()
    echo_ok(other, os.urandom(60 * KiB), OP_BINARY)  # warm up the shared buffers
    idle_rss = srv.status()["VmRSS"]

    hog = socket.socket()
    # Small kernel buffers on the hog's side, so that what it manages to send is mostly what
    # the server read, not what the kernel absorbed.
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * KiB)
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * KiB)
    hog.settimeout(IO_TIMEOUT)
    hog.connect(("127.0.0.1", srv.port))
    srv._sockets.append(hog)
    raw_upgrade(hog, host=f"127.0.0.1:{srv.port}")
    payload = os.urandom(64 * KiB)
    data = b"".join(build_frame(OP_BINARY, payload) for _ in range(256))  # 16 MiB of messages
    sent = stall_sender(hog, data)
    time.sleep(0.2)
    growth = srv.status()["VmRSS"] - idle_rss

    other.settimeout(1.0 * SLACK)
    for i in range(5):
        t0 = time.monotonic()
        echo_ok(other, f"other client {i}".encode())
        assert time.monotonic() - t0 < 1.0 * SLACK

    warned = "over --max-buffered" in srv.stderr_text()
    print(f"\n[max-buffered {cap or 'default'}] hog sent {sent // KiB} KiB of "
          f"{len(data) // KiB} KiB before stalling; RSS growth {growth} KiB; warned={warned}")
    if cap:
        assert warned, "no 'over --max-buffered' warning with --max-buffered 64K " \
                       f"(hog sent {sent // KiB} KiB, RSS growth {growth} KiB)"
        assert sent < len(data), "the server read all 16 MiB of a client over --max-buffered"
        if not binary_is_sanitized():
            assert growth < 2 * 1024, f"RSS grew {growth} KiB with --max-buffered 64K"
    else:
        assert not warned, "'over --max-buffered' logged with the default 256M cap"
        if not binary_is_sanitized():
            assert growth > 4 * 1024, \
                f"with the default cap and an 8M high-water mark RSS grew only {growth} KiB: " \
                "the run does not show what the cap prevents"
