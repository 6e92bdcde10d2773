"""Opening handshake: the 101 and every HTTP error response of design.md §3."""

import base64
import os
import re
import time

import pytest

from conftest import (OP_BINARY, OP_TEXT, accept_for, build_frame, make_key,
                      parse_http_head, raw_upgrade, read_http_head,
                      read_http_response_until_eof, recv_message, run_cli)

SERVER_HEADER = re.compile(r"^websock/\S+$")


def request(method="GET", path="/ws", headers=None, body=b""):
    """Build a request; ``headers`` is a list of (name, value), None values are dropped."""
    lines = [f"{method} {path} HTTP/1.1"]
    for name, value in headers or []:
        if value is not None:
            lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def upgrade_headers(key=None, **override):
    """The headers of a valid upgrade; override with name=value (None removes it)."""
    h = {
        "Host": "127.0.0.1",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key or make_key(),
        "Sec-WebSocket-Version": "13",
    }
    for k, v in override.items():
        h[k.replace("_", "-")] = v
    return list(h.items())


def exchange(websock, data, chunked=False):
    s = websock.connect()
    if chunked:
        for i in range(len(data)):
            s.sendall(data[i:i + 1])
    else:
        s.sendall(data)
    return read_http_response_until_eof(s)


def check_error_response(resp, status, head_request=False):
    assert resp.status == status, f"expected {status}, got {resp.raw_head!r}"
    server = resp.header("Server")
    assert server is not None and SERVER_HEADER.match(server), \
        f"missing/bad Server header: {resp.raw_head!r}"
    conn = resp.header("Connection")
    assert conn is not None and conn.lower() == "close", \
        f"error response without Connection: close: {resp.raw_head!r}"
    cl = resp.header("Content-Length")
    if cl is not None and not head_request:
        assert int(cl) == len(resp.body), \
            f"Content-Length {cl} but {len(resp.body)} body bytes: {resp.body!r}"
    assert resp.header("Sec-WebSocket-Accept") is None
    # read_http_response_until_eof returned, so the server closed the TCP connection; it must
    # be an orderly close (FIN), not a reset that can destroy the response in flight.
    assert not resp.reset, f"connection reset after {status} instead of closed: {resp.raw_head!r}"


# ---------------------------------------------------------------------------- 101

def test_valid_upgrade_returns_101_with_correct_accept(websock):
    s = websock.connect()
    key = "dGhlIHNhbXBsZSBub25jZQ=="  # the RFC 6455 §1.3 example
    s.sendall(request(headers=upgrade_headers(key=key)))
    resp = parse_http_head(read_http_head(s))
    assert resp.status == 101, resp.raw_head
    assert resp.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert resp.header("Sec-WebSocket-Accept") == accept_for(key)
    assert resp.header("Upgrade").lower() == "websocket"
    assert "upgrade" in [t.strip().lower() for t in resp.header("Connection").split(",")]
    assert SERVER_HEADER.match(resp.header("Server") or ""), resp.raw_head


def test_server_header_matches_version_flag(websock):
    s = websock.connect()
    resp = raw_upgrade(s)
    out = run_cli("--version")
    m = re.search(r"\d+\.\d+(\.\d+)?\S*", out.stdout)
    assert m, f"--version printed no version: {out.stdout!r}"
    assert resp.header("Server") == f"websock/{m.group(0)}"


@pytest.mark.parametrize("name,value", [
    ("Connection", "keep-alive, Upgrade"),
    ("Connection", "upgrade"),
    ("Connection", "Upgrade,keep-alive"),
    ("Upgrade", "WebSocket"),
    ("Upgrade", "WEBSOCKET"),
], ids=["conn-list", "conn-lower", "conn-list-nospace", "upgrade-mixed", "upgrade-upper"])
def test_upgrade_header_tokens_are_case_insensitive_lists(websock, name, value):
    s = websock.connect()
    key = make_key()
    s.sendall(request(headers=upgrade_headers(key=key, **{name: value})))
    resp = parse_http_head(read_http_head(s))
    assert resp.status == 101, resp.raw_head
    assert resp.header("Sec-WebSocket-Accept") == accept_for(key)


def test_header_names_are_case_insensitive(websock):
    s = websock.connect()
    key = make_key()
    headers = [(n.lower() if i % 2 else n.upper(), v)
               for i, (n, v) in enumerate(upgrade_headers(key=key))]
    s.sendall(request(headers=headers))
    resp = parse_http_head(read_http_head(s))
    assert resp.status == 101, resp.raw_head
    assert resp.header("Sec-WebSocket-Accept") == accept_for(key)


def test_unsupported_extensions_and_subprotocols_are_not_echoed(websock):
    """Extensions other than permessage-deflate (test_deflate.py) are declined."""
    s = websock.connect()
    extra = ("Sec-WebSocket-Extensions: x-webkit-deflate-frame, foo; bar=1\r\n"
             "Sec-WebSocket-Protocol: chat, superchat\r\n"
             "Origin: http://127.0.0.1\r\n"  # its own origin (Host: 127.0.0.1)
             "User-Agent: blackbox-test\r\n")
    resp = raw_upgrade(s, extra=extra)
    assert resp.header("Sec-WebSocket-Extensions") is None, resp.raw_head
    assert resp.header("Sec-WebSocket-Protocol") is None, resp.raw_head
    # and the connection works without any extension
    s.sendall(build_frame(OP_TEXT, b"plain"))
    assert recv_message(s)[:2] == (OP_TEXT, b"plain")


def test_frame_pipelined_with_upgrade_request_is_echoed(websock):
    """The first frame sent in the same write as the request must not be lost."""
    s = websock.connect()
    frames = build_frame(OP_TEXT, b"pipelined hello") + build_frame(OP_BINARY, b"\x00\x01")
    raw_upgrade(s, pipelined=frames)
    assert recv_message(s)[:2] == (OP_TEXT, b"pipelined hello")
    assert recv_message(s)[:2] == (OP_BINARY, b"\x00\x01")


def test_request_sent_one_byte_at_a_time_still_upgrades(websock):
    s = websock.connect()
    key = make_key()
    data = request(headers=upgrade_headers(key=key))
    for i in range(len(data)):
        s.sendall(data[i:i + 1])
        time.sleep(0.002)
    resp = parse_http_head(read_http_head(s))
    assert resp.status == 101, resp.raw_head
    assert resp.header("Sec-WebSocket-Accept") == accept_for(key)
    s.sendall(build_frame(OP_TEXT, b"after slow handshake"))
    assert recv_message(s)[:2] == (OP_TEXT, b"after slow handshake")


def test_request_terminator_split_across_writes_upgrades(websock):
    """CRLF CRLF terminator split between two writes (\\r\\n\\r | \\n)."""
    s = websock.connect()
    key = make_key()
    data = request(headers=upgrade_headers(key=key))
    s.sendall(data[:-1])
    time.sleep(0.05)
    s.sendall(data[-1:])
    resp = parse_http_head(read_http_head(s))
    assert resp.status == 101, resp.raw_head


# ---------------------------------------------------------------------------- request targets

@pytest.mark.parametrize("target", [
    "http://127.0.0.1/ws", "http://127.0.0.1:8888/ws?token=abc", "HTTPS://Example.ORG/ws",
    "hTtP://[::1]:9/ws?",
], ids=["http", "port-and-query", "https-upper-case", "ipv6-empty-query"])
def test_absolute_form_upgrades_on_its_path(websock, target):
    """RFC 9112 §3.2.2: a server must accept the absolute form and route on its path."""
    s = websock.connect()
    key = make_key()
    s.sendall(request(path=target, headers=upgrade_headers(key=key)))
    resp = parse_http_head(read_http_head(s))
    assert resp.status == 101, resp.raw_head
    assert resp.header("Sec-WebSocket-Accept") == accept_for(key)
    s.sendall(build_frame(OP_TEXT, b"absolute"))
    assert recv_message(s)[:2] == (OP_TEXT, b"absolute")


@pytest.mark.parametrize("target", ["http://127.0.0.1/wsx", "http://127.0.0.1/nope?ws",
                                    "http://127.0.0.1"],
                         ids=["other-path", "query-is-not-path", "no-path-is-root"])
def test_absolute_form_of_an_unknown_path_gives_404(websock_factory, target):
    srv = websock_factory("--no-page")  # so http://host (that is, /) is unknown too
    check_error_response(exchange(srv, request(path=target, headers=upgrade_headers())), 404)


@pytest.mark.parametrize("headers", [upgrade_headers(), [("Host", "127.0.0.1")], []],
                         ids=["upgrade-headers", "plain", "no-host"])
def test_http_1_0_request_for_an_unknown_path_gives_404(websock, headers):
    """The README promises 404 for unknown paths; HTTP/1.0 used to get 400 before its path
    was looked at."""
    data = request(path="/does-not-exist", headers=headers).replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    check_error_response(exchange(websock, data), 404)


def test_http_1_0_upgrade_of_the_websocket_path_still_gives_400(websock):
    data = request(headers=upgrade_headers()).replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    resp = exchange(websock, data)
    check_error_response(resp, 400)
    assert b"HTTP/1.1" in resp.body, resp.body


@pytest.mark.parametrize("method,target,status", [
    ("OPTIONS", "*", 405), ("CONNECT", "127.0.0.1:443", 405), ("GET", "*", 400),
    ("GET", "127.0.0.1:80", 400), ("GET", "ftp://127.0.0.1/ws", 400),
    ("GET", "http://user@127.0.0.1/ws", 400), ("GET", "http:///ws", 400),
], ids=["options-asterisk", "connect-authority", "get-asterisk", "get-authority",
        "other-scheme", "userinfo", "no-host"])
def test_other_target_forms_are_refused(websock, method, target, status):
    check_error_response(exchange(websock, request(method=method, path=target,
                                                   headers=upgrade_headers())), status)


# ---------------------------------------------------------------------------- 426

@pytest.mark.parametrize("version", ["8", "12", "14", "", None],
                         ids=["v8", "v12", "v14", "empty", "missing"])
def test_wrong_or_missing_version_gives_426(websock, version):
    resp = exchange(websock, request(headers=upgrade_headers(Sec_WebSocket_Version=version)))
    check_error_response(resp, 426)
    assert resp.header("Sec-WebSocket-Version") == "13", resp.raw_head


def test_plain_get_of_ws_path_gives_426(websock):
    resp = exchange(websock, request(headers=[("Host", "127.0.0.1"),
                                              ("Accept", "text/html")]))
    check_error_response(resp, 426)
    assert resp.header("Sec-WebSocket-Version") == "13", resp.raw_head


# ---------------------------------------------------------------------------- 400

def b64(n):
    return base64.b64encode(os.urandom(n)).decode()


@pytest.mark.parametrize("headers", [
    upgrade_headers(Host=None),
    upgrade_headers(Sec_WebSocket_Key=None),
    upgrade_headers(Sec_WebSocket_Key="not base64 at all!!"),
    upgrade_headers(Sec_WebSocket_Key=b64(15)),
    upgrade_headers(Sec_WebSocket_Key=b64(17)),
    upgrade_headers(Sec_WebSocket_Key=b64(16)[:-2]),  # padding removed
    upgrade_headers(Sec_WebSocket_Key=""),
    upgrade_headers(Connection="keep-alive"),
    upgrade_headers(Connection=None),
    upgrade_headers(Connection="upgrades"),
], ids=["missing-host", "missing-key", "key-not-base64", "key-15-bytes", "key-17-bytes",
        "key-unpadded", "key-empty", "connection-without-upgrade", "connection-missing",
        "connection-token-upgrades"])
def test_malformed_upgrade_gives_400(websock, headers):
    check_error_response(exchange(websock, request(headers=headers)), 400)


def test_upgrade_with_content_length_body_gives_400(websock):
    headers = upgrade_headers() + [("Content-Length", "5")]
    check_error_response(exchange(websock, request(headers=headers, body=b"hello")), 400)


def test_upgrade_with_transfer_encoding_gives_400(websock):
    headers = upgrade_headers() + [("Transfer-Encoding", "chunked")]
    check_error_response(exchange(websock, request(headers=headers, body=b"0\r\n\r\n")), 400)


def test_garbage_request_line_gives_400(websock):
    resp = exchange(websock, b"HELLO THERE\r\n\r\n")
    check_error_response(resp, 400)


# ---------------------------------------------------------------------------- 404 / 405 / 431

@pytest.mark.parametrize("path", ["/nope", "/ws/extra", "/wsx", "/WS"])
def test_upgrade_to_unknown_path_gives_404(websock, path):
    check_error_response(exchange(websock, request(path=path, headers=upgrade_headers())), 404)


def test_plain_get_of_unknown_path_gives_404(websock):
    resp = exchange(websock, request(path="/does-not-exist", headers=[("Host", "x")]))
    check_error_response(resp, 404)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD", "OPTIONS"])
def test_non_get_method_gives_405_with_allow(websock, method):
    headers = upgrade_headers()
    if method in ("POST", "PUT"):
        headers = [h for h in headers] + [("Content-Length", "0")]
    resp = exchange(websock, request(method=method, headers=headers))
    check_error_response(resp, 405, head_request=(method == "HEAD"))
    allow = resp.header("Allow")
    assert allow is not None and "GET" in [t.strip() for t in allow.split(",")], resp.raw_head


def test_headers_over_limit_give_431(websock):
    headers = upgrade_headers() + [("X-Filler", "a" * (9 * 1024))]
    check_error_response(exchange(websock, request(headers=headers)), 431)


def test_many_headers_over_limit_give_431(websock):
    headers = upgrade_headers() + [(f"X-H{i}", "v" * 100) for i in range(100)]
    check_error_response(exchange(websock, request(headers=headers)), 431)


def test_endless_header_without_terminator_gives_431(websock):
    """Headers that never end must not be buffered without bound: 431 once past the limit."""
    s = websock.connect()
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nX-Long: " + b"b" * (16 * 1024))
    check_error_response(read_http_response_until_eof(s), 431)


def test_headers_just_under_limit_upgrade(websock):
    """A request a little under 8 KiB in total is accepted (the limit is not too small)."""
    base = request(headers=upgrade_headers())
    filler = 7 * 1024 - len(base)
    s = websock.connect()
    raw_upgrade(s, extra=f"X-Filler: {'c' * filler}\r\n")


def test_error_response_sent_one_byte_at_a_time_request(websock):
    """An invalid request arriving byte by byte still gets its complete error response."""
    resp = exchange(websock, request(headers=upgrade_headers(Sec_WebSocket_Version="8")),
                    chunked=True)
    check_error_response(resp, 426)
