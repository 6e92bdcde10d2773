"""The access log: one line at info per connection, with an id that ties it to the
connection's other lines; key=value text or JSON (--log-format); escaped client values; the
real client behind a trusted proxy; syslog priority prefixes when stderr is the journal; no
error line for the browser's /favicon.ico. Bytes are the kernel's TCP counts (wire bytes:
HTTP head and frame headers included), so the test adds up exactly what went over the socket."""

import json
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import (IO_TIMEOUT, OP_BINARY, OP_CLOSE, OP_TEXT, build_frame, close_payload,
                      free_port, make_key, parse_http_head, read_http_head,
                      read_http_response_until_eof, recv_frame, require_binary,
                      upgrade_request, wait_accepting)

TEXT_SIZES = [0, 17, 125, 126, 3000]    # every header length a client frame can have here
BINARY_SIZES = [1, 65535, 200]
CLOSE_CODE = 4001

FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def text_fields(line: str) -> dict[str, str]:
    """The key=value fields of a text line, unquoted (\\" and \\\\ undone)."""
    out = {}
    for k, v in FIELD.findall(line):
        if v.startswith('"'):
            v = re.sub(r'\\(["\\])', r"\1", v[1:-1])
        out[k] = v
    return out


def access_lines(srv, fmt: str) -> list[dict]:
    found = []
    for line in srv.stderr_text().splitlines():
        if fmt == "json":
            obj = json.loads(line)  # every line is JSON, not just the access lines
            if obj["msg"] == "access":
                found.append(obj)
        elif re.match(r"^\S+ info  access ", line):
            found.append(text_fields(line.split(" access ", 1)[1]))
    return found


def wait_access(srv, fmt: str, pred, what: str) -> dict:
    deadline = time.monotonic() + IO_TIMEOUT
    while time.monotonic() < deadline:
        hits = [a for a in access_lines(srv, fmt) if pred(a)]
        if hits:
            assert len(hits) == 1, f"{len(hits)} access lines for {what}: {hits}"
            return hits[0]
        time.sleep(0.05)
    raise AssertionError(f"no access line for {what}:\n{srv.stderr_text()[-3000:]}")


def value(a: dict, key: str, fmt: str):
    """A field as the JSON value it would be (text fields are strings; '-' is null)."""
    v = a.get(key)
    if fmt == "text" and v is not None:
        if v == "-":
            return None
        if re.fullmatch(r"-?\d+", v):
            return int(v)
    return v


def scripted_session(port: int) -> dict:
    """Upgrade, send the texts and binaries, read each echo, wait a little, close with
    CLOSE_CODE, read to EOF. Returns what the line must say."""
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    sent = received = 0
    request = upgrade_request("/ws?token=secret", f"127.0.0.1:{port}", make_key())
    s.sendall(request)
    sent += len(request)
    head = read_http_head(s)
    assert parse_http_head(head).status == 101
    received += len(head)
    messages = [(OP_TEXT, b"t" * n) for n in TEXT_SIZES] + \
               [(OP_BINARY, os.urandom(n)) for n in BINARY_SIZES]
    for op, payload in messages:
        frame = build_frame(op, payload)
        s.sendall(frame)
        sent += len(frame)
        echo = recv_frame(s)
        assert (echo.opcode, echo.payload) == (op, payload)
        received += len(echo.header) + len(echo.payload)
    time.sleep(0.3)  # the duration must show it
    close = build_frame(OP_CLOSE, close_payload(CLOSE_CODE, b"bye"))
    s.sendall(close)
    sent += len(close)
    reply = recv_frame(s)
    assert reply.opcode == OP_CLOSE and reply.close_code == CLOSE_CODE
    received += len(reply.header) + len(reply.payload)
    assert s.recv(1) == b"", "the server did not close TCP after the close handshake"
    local_port = s.getsockname()[1]
    s.close()
    return {"port": local_port, "msgs": len(messages), "bytes_in": sent, "bytes_out": received}


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_scripted_session_gives_one_line_with_every_field(websock_factory, fmt):
    srv = websock_factory("--log-format", fmt, "--deflate", "off")
    want = scripted_session(srv.port)
    a = wait_access(srv, fmt, lambda a: value(a, "port", fmt) == want["port"], "the session")
    assert re.fullmatch(r"1-\d+", a["id"]), a
    assert value(a, "client", fmt) == "127.0.0.1"
    assert value(a, "path", fmt) == "/ws", "the path is logged without its query"
    assert value(a, "status", fmt) == 101
    assert 250 <= value(a, "duration_ms", fmt) < 10000, a
    assert value(a, "msgs_in", fmt) == want["msgs"]
    assert value(a, "msgs_out", fmt) == want["msgs"]
    assert value(a, "bytes_in", fmt) == want["bytes_in"], (a, want)
    assert value(a, "bytes_out", fmt) == want["bytes_out"], (a, want)
    assert value(a, "close", fmt) == CLOSE_CODE
    assert value(a, "close_by", fmt) == "client"
    assert "reason" not in a, f"a clean close has no failure reason: {a}"
    assert "proxy" not in a
    # The id ties the connection's debug lines (which had no address at the end) together.
    tagged = [ln for ln in srv.stderr_text().splitlines() if f"id={a['id']} " in ln]
    assert any(f"127.0.0.1:{want['port']} " in ln and "accepted" in ln for ln in tagged), tagged
    assert any(" 127.0.0.1" in ln and "closed:" in ln for ln in tagged), \
        f"the debug line of the end names no client: {tagged}"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_protocol_error_shows_the_server_closed_with_1002_and_why(websock_factory, fmt):
    srv = websock_factory("--log-format", fmt)
    s = srv.upgraded()
    port = s.getsockname()[1]
    s.sendall(build_frame(0x3, b"x"))  # reserved opcode
    f = recv_frame(s)
    assert f.opcode == OP_CLOSE and f.close_code == 1002
    s.sendall(build_frame(OP_CLOSE, close_payload(1002)))
    a = wait_access(srv, fmt, lambda a: value(a, "port", fmt) == port, "the failed session")
    assert value(a, "close", fmt) == 1002
    assert value(a, "close_by", fmt) == "server"
    assert value(a, "reason", fmt) == "reserved opcode"
    assert value(a, "status", fmt) == 101


def test_a_dropped_connection_is_1006_by_nobody_with_the_reason(websock):
    s = websock.upgraded()
    port = s.getsockname()[1]
    s.close()
    a = wait_access(websock, "text", lambda a: value(a, "port", "text") == port, "the drop")
    assert (a["close"], a["close_by"]) == ("1006", "none")
    assert a["reason"] == "peer closed TCP without a Close frame"


def test_an_idle_timeout_shows_the_server_closed_with_1001_and_why(websock_factory):
    srv = websock_factory("--idle-timeout", "300", "--ping-interval", "0")
    s = srv.upgraded()
    port = s.getsockname()[1]
    f = recv_frame(s)
    assert f.opcode == OP_CLOSE and f.close_code == 1001
    s.sendall(build_frame(OP_CLOSE, close_payload(1001)))
    a = wait_access(srv, "text", lambda a: value(a, "port", "text") == port, "the idle session")
    assert (a["close"], a["close_by"], a["reason"]) == ("1001", "server", "idle timeout")
    assert 250 <= int(a["duration_ms"]) < 10000


def test_an_unfinished_request_has_a_line_without_status(websock_factory):
    srv = websock_factory("--handshake-timeout", "300")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT)
    port = s.getsockname()[1]
    s.sendall(b"GET /ws HTTP/1.1\r\nHost:")
    a = wait_access(srv, "text", lambda a: value(a, "port", "text") == port, "the slow request")
    assert (a["status"], a["path"], a["reason"]) == ("-", "-", "handshake timeout")
    assert a["bytes_in"] == "23"


def get(port: int, target: bytes, extra: bytes = b"") -> tuple[int, int]:
    """A plain request; returns (status, our local port)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n")
    local = s.getsockname()[1]
    status = read_http_response_until_eof(s).status
    s.close()
    return status, local


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_404_names_its_path_escaped_on_one_line(websock_factory, fmt):
    srv = websock_factory("--log-format", fmt)
    status, port = get(srv.port, b'/no"such\\path?query=hidden')
    assert status == 404
    a = wait_access(srv, fmt, lambda a: value(a, "port", fmt) == port, "the 404")
    assert value(a, "status", fmt) == 404
    assert value(a, "path", fmt) == '/no"such\\path', a
    assert value(a, "reason", fmt) == "unknown path"
    assert value(a, "bytes_out", fmt) > 0 and value(a, "bytes_in", fmt) > 0


def test_pages_get_a_line_with_path_and_status(websock):
    for target, status in [(b"/healthz", 200), (b"/metrics", 200), (b"/", 200)]:
        got, port = get(websock.port, target)
        assert got == status
        a = wait_access(websock, "text", lambda a: value(a, "port", "text") == port,
                        target.decode())
        assert (a["path"], a["status"]) == (target.decode(), str(status))


def test_favicon_is_an_info_access_line_and_the_console_does_not_ask_for_it(websock):
    s = socket.create_connection(("127.0.0.1", websock.port), timeout=IO_TIMEOUT)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    page = read_http_response_until_eof(s).body
    s.close()
    assert b'<link rel="icon" href="data:,">' in page
    status, port = get(websock.port, b"/favicon.ico")
    assert status == 404
    wait_access(websock, "text", lambda a: value(a, "port", "text") == port, "/favicon.ico")
    for line in websock.stderr_text().splitlines():
        if "favicon" in line:
            assert re.match(r"^\S+ (info |debug) ", line), f"not info/debug: {line!r}"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_behind_a_trusted_proxy_the_line_shows_the_real_client(websock_factory, fmt):
    srv = websock_factory("--log-format", fmt, "--trust-proxy", "127.0.0.1")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT)
    s.sendall(upgrade_request("/ws", "x", make_key(),
                              "X-Forwarded-For: 203.0.113.7, 127.0.0.1\r\n"))
    assert parse_http_head(read_http_head(s)).status == 101
    port = s.getsockname()[1]
    s.sendall(build_frame(OP_CLOSE, close_payload(1000)))
    assert recv_frame(s).close_code == 1000
    s.close()
    a = wait_access(srv, fmt, lambda a: value(a, "port", fmt) == port, "the proxied session")
    assert value(a, "client", fmt) == "203.0.113.7"
    assert value(a, "proxy", fmt) == "127.0.0.1"


def test_a_client_cannot_forge_a_line(websock_factory):
    """Client bytes (an Origin the server refuses) land escaped inside one field."""
    srv = websock_factory("--log-format", "text")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT)
    evil = b'http://x" status=101 \xe2\x80\xa8'  # a quote, a fake field, U+2028
    s.sendall(upgrade_request("/ws", "x", make_key()).replace(
        b"\r\n\r\n", b"\r\nOrigin: " + evil + b"\r\n\r\n"))
    assert read_http_response_until_eof(s).status == 403
    port = s.getsockname()[1]
    s.close()
    a = wait_access(srv, "text", lambda a: value(a, "port", "text") == port, "the 403")
    assert a["status"] == "403"
    assert a["detail"] == 'http://x" status=101 \\xe2\\x80\\xa8', a
    assert "\u2028" not in srv.stderr_text()


def test_access_log_off_leaves_only_the_other_lines(websock_factory):
    srv = websock_factory("--access-log", "off", log_level="info")
    assert get(srv.port, b"/nothing")[0] == 404
    srv.upgraded().close()
    time.sleep(0.3)
    assert " access " not in srv.stderr_text(), srv.stderr_text()


def start_with_stderr(tmp_path, env_value, *args):
    """websock with stderr in a file; JOURNAL_STREAM is env_value(st_dev, st_ino) of it."""
    path = tmp_path / "journal.stderr"
    port = free_port()
    with open(path, "wb") as err:
        st = os.fstat(err.fileno())
        env = dict(os.environ, JOURNAL_STREAM=env_value(st.st_dev, st.st_ino))
        proc = subprocess.Popen([require_binary(), "--port", str(port), "--bind", "127.0.0.1",
                                 "--log-level", "debug", *args],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, env=env)
    return port, proc, path


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_under_journald_lines_carry_the_priority_and_no_timestamp(tmp_path, fmt):
    port, proc, path = start_with_stderr(tmp_path, lambda d, i: f"{d}:{i}", "--log-format", fmt)
    try:
        wait_accepting("127.0.0.1", port, proc, path)
        assert get(port, b"/missing")[0] == 404
        time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    lines = path.read_text().splitlines()
    prio = {"error": "3", "warn": "4", "info": "6", "debug": "7"}
    assert any(ln.startswith("<6>") for ln in lines) and any(ln.startswith("<7>") for ln in lines)
    for ln in lines:
        m = re.match(r"^<(\d)>(.*)$", ln)
        assert m, f"no priority prefix: {ln!r}"
        if fmt == "json":
            obj = json.loads(m.group(2))
            assert prio[obj["level"]] == m.group(1), ln
        else:
            level = m.group(2).split()[0]
            assert prio[level] == m.group(1), ln
            assert not re.match(r"^\d{4}-", m.group(2)), f"timestamp under the journal: {ln!r}"


def test_a_journal_stream_that_is_not_stderr_changes_nothing(tmp_path):
    port, proc, path = start_with_stderr(tmp_path, lambda d, i: f"{d}:{i + 1}")
    try:
        wait_accepting("127.0.0.1", port, proc, path)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    lines = path.read_text().splitlines()
    assert lines and all(re.match(r"^\d{4}-\d\d-\d\dT", ln) for ln in lines), lines
