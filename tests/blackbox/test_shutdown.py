"""SIGTERM: every open WebSocket gets Close 1001, and the process exits 0."""

import signal
import time

import pytest
from websockets.exceptions import ConnectionClosed

from conftest import (OP_BINARY, OP_TEXT, assert_eof, expect_close, parse_http_head,
                      read_http_head, recv_close, recv_message, send_frame, upgrade_request)


def test_sigterm_sends_close_1001_to_every_open_client_and_exits_0(websock):
    idle = websock.upgraded()
    busy = websock.upgraded()
    send_frame(busy, OP_TEXT, b"before shutdown")
    assert recv_message(busy)[:2] == (OP_TEXT, b"before shutdown")
    mid_message = websock.upgraded()
    send_frame(mid_message, OP_BINARY, b"half a message", fin=False)
    ws = websock.ws_connect()
    ws.send("library client")
    assert ws.recv(timeout=5) == "library client"
    handshaking = websock.connect()  # TCP connected, request not finished
    request = upgrade_request()
    handshaking.sendall(request[:20])
    time.sleep(0.1)  # let the server see every connection

    start = time.monotonic()
    websock.proc.send_signal(signal.SIGTERM)

    for s in (idle, busy, mid_message):
        expect_close(s, 1001)  # answers with Close 1001, requires EOF, then closes
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=5)
    assert ws.close_code == 1001, f"websockets client saw close code {ws.close_code}"
    ws.close()
    # Accepted before the signal: not dropped, but answered once its request is complete,
    # then closed with 1001 like every open client.
    handshaking.sendall(request[20:])
    assert parse_http_head(read_http_head(handshaking)).status == 101
    expect_close(handshaking, 1001)
    assert websock.proc.wait(timeout=10) == 0
    # Every peer finished its side promptly, so the server has nothing left to wait for.
    elapsed = time.monotonic() - start
    assert elapsed < 1.5, f"exit took {elapsed:.2f}s although every client closed at once"


def test_sigterm_exits_0_even_if_client_never_answers_close(websock):
    s = websock.upgraded()
    time.sleep(0.05)
    start = time.monotonic()
    websock.proc.send_signal(signal.SIGTERM)
    f, _ = recv_close(s)
    assert f.close_code == 1001
    # never answer: the server must give up after a bounded time and exit 0
    assert websock.proc.wait(timeout=10) == 0
    assert time.monotonic() - start < 10
    assert_eof(s)


def test_sigterm_with_no_clients_exits_0_promptly(websock):
    start = time.monotonic()
    assert websock.terminate() == 0
    assert time.monotonic() - start < 2, "idle server took over 2 s to exit on SIGTERM"


def test_sigterm_stops_accepting_new_connections(websock):
    s = websock.upgraded()
    websock.proc.send_signal(signal.SIGTERM)
    expect_close(s, 1001)
    assert websock.proc.wait(timeout=10) == 0
    with pytest.raises(OSError):
        websock.connect(timeout=2)
