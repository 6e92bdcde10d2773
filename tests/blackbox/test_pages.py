"""The operator pages over plain HTTP: the browser console at /, /healthz and /metrics.

Each is answered whole with ``Connection: close`` and the connection is closed in order (FIN,
not reset), like the handshake's error responses."""

import re

import pytest

from conftest import parse_http_head, read_body_until_eof, read_http_head

SERVER_HEADER = re.compile(r"^websock/\S+$")
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def http(srv, path, method="GET", version="1.1", extra=b""):
    """One request on a fresh connection; the response read until the server closes."""
    s = srv.connect()
    s.sendall(f"{method} {path} HTTP/{version}\r\nHost: 127.0.0.1\r\n\r\n".encode() + extra)
    return read_body_until_eof(s, parse_http_head(read_http_head(s)))


def check_page(resp, content_type, head=False):
    assert resp.status == 200, resp.raw_head
    assert SERVER_HEADER.match(resp.header("Server") or ""), resp.raw_head
    assert resp.header("Content-Type") == content_type, resp.raw_head
    assert (resp.header("Connection") or "").lower() == "close", resp.raw_head
    assert resp.header("Cache-Control") == "no-store", resp.raw_head
    length = int(resp.header("Content-Length"))
    assert len(resp.body) == (0 if head else length), (length, resp.body[:200])
    assert not resp.reset, f"connection reset after the page instead of closed: {resp.raw_head!r}"
    return length


def test_healthz_is_ok(websock):
    resp = http(websock, "/healthz")
    check_page(resp, "text/plain; charset=utf-8")
    assert resp.body == b"ok\n"


@pytest.mark.parametrize("path,version", [("/healthz?probe=lb", "1.1"), ("/healthz", "1.0")],
                         ids=["query-string", "http-1.0"])
def test_healthz_for_simple_probes(websock, path, version):
    """Load balancers' probes: a query string, or HTTP/1.0 (which the WebSocket path refuses)."""
    resp = http(websock, path, version=version)
    check_page(resp, "text/plain; charset=utf-8")
    assert resp.body == b"ok\n"


@pytest.mark.parametrize("target,content_type", [
    ("http://127.0.0.1/", "text/html; charset=utf-8"),
    ("HTTP://127.0.0.1:8888", "text/html; charset=utf-8"),
    ("https://example.org?tab=log", "text/html; charset=utf-8"),
    ("http://127.0.0.1/healthz?probe=lb", "text/plain; charset=utf-8"),
    ("http://127.0.0.1/metrics", METRICS_TYPE),
], ids=["root", "no-path-upper-case", "https-query", "healthz", "metrics"])
@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_absolute_form_reaches_the_pages(websock, target, content_type, version):
    """RFC 9112 §3.2.2: GET http://host/healthz is GET /healthz (what a proxy may send)."""
    resp = http(websock, target, version=version)
    check_page(resp, content_type)
    if "healthz" in target:
        assert resp.body == b"ok\n"


@pytest.mark.parametrize("path,content_type", [
    ("/", "text/html; charset=utf-8"),
    ("/healthz", "text/plain; charset=utf-8"),
    ("/metrics", METRICS_TYPE),
])
def test_head_is_the_get_head_without_a_body(websock, path, content_type):
    get = http(websock, path)
    head = http(websock, path, method="HEAD")
    length = check_page(head, content_type, head=True)
    assert head.body == b""
    if path != "/metrics":  # the metrics change between the two requests
        assert length == len(get.body)
        assert head.raw_head == get.raw_head


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("path", ["/", "/healthz", "/metrics"])
def test_other_methods_give_405_allowing_get_and_head(websock, path, method):
    resp = http(websock, path, method=method)
    assert resp.status == 405, resp.raw_head
    assert [t.strip() for t in resp.header("Allow").split(",")] == ["GET", "HEAD"]
    assert (resp.header("Connection") or "").lower() == "close"
    assert int(resp.header("Content-Length")) == len(resp.body)
    assert not resp.reset


def test_console_is_a_self_contained_page_for_the_websocket_path(websock):
    resp = http(websock, "/")
    check_page(resp, "text/html; charset=utf-8")
    html = resp.body.decode("utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert '<meta name="websock-path" content="/ws">' in html
    assert "new WebSocket(" in html
    # No external assets: nothing is loaded from anywhere but this page (a data: URL is the
    # page's own: the icon is one, so that browsers do not ask for /favicon.ico).
    assert not re.search(r"""\b(src|href)\s*=\s*(?!"data:)|@import|url\(""", html), \
        "external asset"
    assert '<link rel="icon" href="data:,">' in html


def test_console_follows_the_path_flag(websock_factory):
    srv = websock_factory("--path", "/echo")
    html = http(srv, "/").body.decode()
    assert '<meta name="websock-path" content="/echo">' in html
    assert http(srv, "/ws").status == 404


def test_no_page_turns_only_the_console_off(websock_factory):
    srv = websock_factory("--no-page")
    resp = http(srv, "/")
    assert resp.status == 404, resp.raw_head
    assert b"<html" not in resp.body
    assert http(srv, "/healthz").body == b"ok\n"
    assert http(srv, "/metrics").status == 200


def test_path_flag_naming_a_page_keeps_it_for_the_websocket(websock_factory):
    srv = websock_factory("--path", "/healthz")
    resp = http(srv, "/healthz")
    assert resp.status == 426, resp.raw_head  # a plain GET of the WebSocket path
    srv.upgraded("/healthz")


def test_one_response_per_connection_even_when_requests_are_pipelined(websock):
    """A second request behind the first is not answered (Connection: close), and the extra
    bytes do not turn the close into a reset that could destroy the page in flight."""
    second = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    resp = http(websock, "/healthz", extra=second * 3)
    check_page(resp, "text/plain; charset=utf-8")
    assert resp.body == b"ok\n"
