"""The Origin policy against cross-site WebSocket hijacking (RFC 6455 §10.2).

Default: an upgrade without Origin (not a browser: Autobahn, CLI tools, client libraries) and
one whose Origin is the request's own host and port (the console page at /) are admitted; a
browser page of any other origin gets 403 with Connection: close, the refused Origin in the log
and the 403 counted in /metrics. --allow-origin admits listed origins (exact, scheme://host
[:port], comma-separated or repeated), "null" and "*"."""

import pytest

from conftest import (OP_TEXT, accept_for, make_key, parse_http_head, read_http_head,
                      read_http_response_until_eof, recv_message, run_cli, send_frame,
                      upgrade_request)

EVIL = "https://evil.example"


def upgrade(srv, origin=None, host=None):
    """One upgrade with this Origin (None: no Origin header); returns (socket, response)."""
    s = srv.connect()
    key = make_key()
    extra = "".join(f"Origin: {o}\r\n" for o in
                    ([] if origin is None else [origin] if isinstance(origin, str) else origin))
    s.sendall(upgrade_request(host=host or f"127.0.0.1:{srv.port}", key=key, extra=extra))
    resp = parse_http_head(read_http_head(s))
    if resp.status == 101:
        assert resp.header("Sec-WebSocket-Accept") == accept_for(key), resp.raw_head
    return s, resp


def assert_echoes(s):
    send_frame(s, OP_TEXT, b"hello")
    assert recv_message(s)[:2] == (OP_TEXT, b"hello")


def assert_refused(srv, origin, host=None):
    s = srv.connect()
    extra = "".join(f"Origin: {o}\r\n" for o in
                    ([origin] if isinstance(origin, str) else origin))
    s.sendall(upgrade_request(host=host or f"127.0.0.1:{srv.port}", extra=extra))
    resp = read_http_response_until_eof(s)
    assert resp.status == 403, f"Origin {origin!r}: {resp.raw_head!r}"
    assert resp.reason == "Forbidden", resp.raw_head
    assert (resp.header("Connection") or "").lower() == "close", resp.raw_head
    assert resp.header("Sec-WebSocket-Accept") is None
    assert not resp.reset
    return resp


def rejections_403(srv):
    s = srv.connect()
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    body = read_http_response_until_eof(s).body.decode()
    line = next(ln for ln in body.splitlines()
                if ln.startswith('websock_handshake_rejections_total{status="403"}'))
    return int(line.split()[-1])


def test_no_origin_is_admitted(websock):
    """Non-browser clients (the Autobahn fuzzingclient among them) send no Origin."""
    s, resp = upgrade(websock)
    assert resp.status == 101, resp.raw_head
    assert_echoes(s)


@pytest.mark.parametrize("origin", ["http://127.0.0.1:{port}", "HTTP://127.0.0.1:{port}",
                                    "https://127.0.0.1:{port}"],
                         ids=["same-origin", "scheme-case", "through-a-tls-proxy"])
def test_same_origin_is_admitted(websock, origin):
    """The console at / connects from the origin it was served from: Origin is http://<Host>."""
    s, resp = upgrade(websock, origin.format(port=websock.port))
    assert resp.status == 101, resp.raw_head
    assert_echoes(s)


def test_default_ports_are_normalised(websock):
    """Behind a proxy on port 80 or 443, Host has no port and the Origin may or may not."""
    for origin in ["http://ws.example.org", "http://ws.example.org:80",
                   "https://ws.example.org", "https://ws.example.org:443"]:
        s, resp = upgrade(websock, origin, host="ws.example.org")
        assert resp.status == 101, (origin, resp.raw_head)
        assert_echoes(s)


@pytest.mark.parametrize("origin", [
    EVIL, "http://127.0.0.1", "http://127.0.0.1:1", "http://localhost:{port}", "null", "",
    "http://127.0.0.1:{port}/", ["http://127.0.0.1:{port}", "http://127.0.0.1:{port}"],
], ids=["other-site", "other-port-default", "other-port", "other-host-name", "null", "empty",
        "with-path", "two-origins"])
def test_other_origins_get_403_logged_and_counted(websock, origin):
    origin = ([o.format(port=websock.port) for o in origin] if isinstance(origin, list)
              else origin.format(port=websock.port))
    before = rejections_403(websock)
    assert_refused(websock, origin)
    assert rejections_403(websock) == before + 1
    shown = origin if isinstance(origin, str) else origin[0]
    logged = [ln for ln in websock.stderr_text().splitlines() if "rejected with 403" in ln]
    assert logged and f"'{shown}'" in logged[-1], websock.stderr_text()[-2000:]


def test_absolute_form_authority_is_the_origin_to_match(websock):
    """RFC 9112 §3.2.2: the absolute form's host overrides Host, for the Origin check too."""
    s = websock.connect()
    s.sendall(upgrade_request(path="http://app.test:9/ws", host="127.0.0.1",
                              extra="Origin: http://app.test:9\r\n"))
    assert parse_http_head(read_http_head(s)).status == 101
    s = websock.connect()
    s.sendall(upgrade_request(path="http://app.test:9/ws", host="127.0.0.1",
                              extra="Origin: http://127.0.0.1\r\n"))
    assert read_http_response_until_eof(s).status == 403


def test_allow_origin_admits_exactly_the_listed_origins(websock_factory):
    srv = websock_factory("--allow-origin", "https://app.example.org, http://tools.test:8080",
                          "--allow-origin", "HTTPS://Second.Example")
    for origin in ["https://app.example.org", "https://app.example.org:443",
                   "http://tools.test:8080", "https://second.example",
                   f"http://127.0.0.1:{srv.port}"]:
        s, resp = upgrade(srv, origin)
        assert resp.status == 101, (origin, resp.raw_head)
        assert_echoes(s)
    s, resp = upgrade(srv)
    assert resp.status == 101
    for origin in ["http://app.example.org", "https://app.example.org:8443",
                   "https://example.org", "http://tools.test", "null", EVIL]:
        assert_refused(srv, origin)


def test_allow_origin_null(websock_factory):
    srv = websock_factory("--allow-origin", "null")
    s, resp = upgrade(srv, "null")
    assert resp.status == 101, resp.raw_head
    assert_refused(srv, EVIL)


def test_allow_origin_star_admits_any(websock_factory):
    srv = websock_factory("--allow-origin", "*")
    for origin in [EVIL, "null", ["http://a.test", "http://b.test"]]:
        s, resp = upgrade(srv, origin)
        assert resp.status == 101, (origin, resp.raw_head)
        assert_echoes(s)


@pytest.mark.parametrize("value", ["", "example.org", "https://example.org/",
                                   "https://*.example.org", "https://a.test,", "http://a:99999"])
def test_bad_allow_origin_value_exits_2(value):
    r = run_cli("--allow-origin", value, "--help")
    assert r.returncode == 2, (value, r)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--allow-origin" in lines[0], r.stderr


def test_python_websockets_client_with_a_foreign_origin_is_refused(websock):
    """What a browser on another site would do, through a real client library."""
    import asyncio

    import websockets
    from websockets.exceptions import InvalidStatus

    async def attempt(origin):
        async with websockets.connect(websock.url(), origin=origin, open_timeout=10) as ws:
            await ws.send("hi")
            return await ws.recv()

    with pytest.raises(InvalidStatus) as e:
        asyncio.run(attempt(EVIL))
    assert e.value.response.status_code == 403
    assert asyncio.run(attempt(f"http://127.0.0.1:{websock.port}")) == "hi"
