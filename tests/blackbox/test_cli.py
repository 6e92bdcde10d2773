"""Command line: --help, --version, bad flag values (exit 2), port in use (exit 1), and the
flags that change behaviour (--path, --bind, --log-level)."""

import queue
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import (OP_TEXT, free_port, parse_http_head, raw_upgrade, read_http_head,
                      read_http_response_until_eof, recv_message, require_binary, run_cli,
                      send_frame, upgrade_request)

FLAGS = ["--port", "--bind", "--path", "--max-message", "--log-level", "--help", "--version"]


def test_help_exits_0_and_lists_every_flag():
    r = run_cli("--help")
    assert r.returncode == 0, r.stderr
    for flag in FLAGS:
        assert flag in r.stdout, f"--help does not mention {flag}:\n{r.stdout}"


def test_version_exits_0_and_prints_version():
    r = run_cli("--version")
    assert r.returncode == 0, r.stderr
    assert re.search(r"websock", r.stdout, re.I), r.stdout
    assert re.search(r"\d+\.\d+(\.\d+)?", r.stdout), r.stdout
    assert len(r.stdout.strip().splitlines()) == 1, r.stdout


@pytest.mark.parametrize("args,flag", [
    (["--port", "abc"], "--port"),
    (["--port", "70000"], "--port"),
    (["--port", "-1"], "--port"),
    (["--port", "80x"], "--port"),
    (["--port", ""], "--port"),
    (["--log-level", "loud"], "--log-level"),
    (["--max-message", "abc"], "--max-message"),
    (["--max-message", "-5"], "--max-message"),
    (["--bind", "not-an-ip"], "--bind"),
    (["--bind", "999.1.1.1"], "--bind"),
    (["--port"], "--port"),
    (["--frobnicate"], "--frobnicate"),
], ids=["port-abc", "port-70000", "port-negative", "port-trailing-junk", "port-empty",
        "log-level-loud", "max-message-abc", "max-message-negative", "bind-hostname",
        "bind-bad-ipv4", "port-missing-value", "unknown-flag"])
def test_bad_flag_value_exits_2_with_one_line_naming_the_flag(args, flag):
    r = run_cli(*args)
    assert r.returncode == 2, (f"{args}: exit {r.returncode}, stdout={r.stdout!r}, "
                               f"stderr={r.stderr!r}")
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"{args}: expected one line on stderr, got {r.stderr!r}"
    assert flag in lines[0], f"{args}: error does not name {flag}: {lines[0]!r}"
    assert r.stdout == "", f"{args}: unexpected stdout {r.stdout!r}"


# Every flag that takes a number; its error text names the accepted range as "(LOW to HIGH".
NUMERIC_FLAGS = ["--port", "--max-message", "--coalesce-max", "--max-header-bytes",
                 "--output-high-water", "--max-buffered", "--max-connections", "--workers",
                 "--handshake-timeout", "--close-timeout", "--send-timeout", "--ping-interval",
                 "--idle-timeout"]


def accepted_range(flag: str) -> tuple[str, str]:
    r = run_cli(flag, "x")
    assert r.returncode == 2, r
    m = re.search(r"\((\w+) to (\w+)[;)]", r.stderr)
    assert m, f"{flag}: the error does not name the accepted range: {r.stderr!r}"
    return m.group(1), m.group(2)


@pytest.mark.parametrize("flag", NUMERIC_FLAGS)
def test_both_ends_of_the_range_the_error_names_are_accepted(flag):
    """What the error text promises is what the flag takes: "(1 to 1T)" means 1T is valid.
    --help after the flag exits 0 only if the value before it parsed."""
    for value in accepted_range(flag):
        r = run_cli(flag, value, "--help")
        assert r.returncode == 0, f"{flag} {value}: exit {r.returncode}, {r.stderr!r}"


@pytest.mark.parametrize("flag", NUMERIC_FLAGS)
def test_numbers_with_spaces_or_signs_are_rejected(flag):
    """strtol/strtoull skip leading whitespace and take a sign; a flag value must not."""
    low, _ = accepted_range(flag)
    for value in [f" {low}", f"\t{low}", f"{low} ", f"{low}\n", f"+{low}", f"-{low}",
                  f"{low} {low}"]:
        r = run_cli(flag, value, "--help")
        assert r.returncode == 2, f"{flag} {value!r} accepted: exit {r.returncode}"
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and flag in lines[0], f"{flag} {value!r}: {r.stderr!r}"


@pytest.mark.parametrize("flag,value", [("--port", "1K"), ("--port", "1T"),
                                        ("--max-connections", "0T"), ("--workers", "1t"),
                                        ("--idle-timeout", "0K")])
def test_counts_take_no_size_suffix(flag, value):
    r = run_cli(flag, value, "--help")
    assert r.returncode == 2, f"{flag} {value} accepted"


def test_port_with_a_leading_space_does_not_start_a_server():
    """The issue's example, --port " 80", used to listen on port 80 (a free port here)."""
    port = free_port()
    r = run_cli("--port", f" {port}", "--bind", "127.0.0.1")
    assert r.returncode == 2, r
    assert "--port" in r.stderr and f"' {port}'" in r.stderr, r.stderr


def test_port_in_use_exits_1_with_clear_message():
    binary = require_binary()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        r = subprocess.run([binary, "--port", str(port), "--bind", "127.0.0.1"],
                           capture_output=True, text=True, timeout=10,
                           stdin=subprocess.DEVNULL)
    assert r.returncode == 1, f"exit {r.returncode}, stderr={r.stderr!r}"
    assert "in use" in r.stderr.lower(), f"unclear message: {r.stderr!r}"
    assert str(port) in r.stderr, f"message does not name the port: {r.stderr!r}"


def test_custom_path_upgrades_and_default_path_is_404(websock_factory):
    srv = websock_factory("--path", "/echo")
    s = srv.connect()
    raw_upgrade(s, path="/echo")
    send_frame(s, OP_TEXT, b"on /echo")
    assert recv_message(s)[:2] == (OP_TEXT, b"on /echo")
    s2 = srv.connect()
    s2.sendall(upgrade_request("/ws"))
    assert read_http_response_until_eof(s2).status == 404


def test_bind_ipv6_loopback(websock_factory):
    srv = websock_factory(bind="::1")
    s = socket.create_connection(("::1", srv.port), timeout=5)
    srv._sockets.append(s)
    raw_upgrade(s, host=f"[::1]:{srv.port}")
    send_frame(s, OP_TEXT, b"over ipv6")
    assert recv_message(s)[:2] == (OP_TEXT, b"over ipv6")
    # and it is not listening on IPv4
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()


def test_log_level_error_is_quiet_for_a_normal_session(websock_factory):
    srv = websock_factory(log_level="error")
    s = srv.upgraded()
    send_frame(s, OP_TEXT, b"quiet")
    assert recv_message(s)[:2] == (OP_TEXT, b"quiet")
    s.close()
    assert srv.terminate() == 0
    assert srv.stderr_text() == "", f"stderr at --log-level error: {srv.stderr_text()!r}"


def test_log_level_debug_logs_connections(websock):
    s = websock.upgraded()
    send_frame(s, OP_TEXT, b"hi")
    recv_message(s)
    s.close()
    time.sleep(0.1)
    assert websock.stderr_text().strip(), "nothing logged at --log-level debug"


def _reader(stream, q):
    for chunk in iter(lambda: stream.read1(4096), b""):
        q.put(chunk)
    q.put(None)


def test_python_websockets_interactive_client_echoes_a_line(websock):
    """`python -m websockets ws://127.0.0.1:PORT/ws`: a typed line comes back as '< line'."""
    proc = subprocess.Popen([sys.executable, "-m", "websockets", websock.url()],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    q = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, q), daemon=True).start()
    out = bytearray()

    def wait_for(needle: bytes, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in out:
            try:
                chunk = q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{needle!r} not seen; client output: {bytes(out)!r}")
            if chunk is None:
                raise AssertionError(f"client exited before {needle!r}: {bytes(out)!r}")
            out.extend(chunk)

    try:
        wait_for(b"Connected to ")
        line = "hello from the interactive client \u20ac"
        proc.stdin.write((line + "\n").encode())
        proc.stdin.flush()
        wait_for(("< " + line).encode())
        proc.stdin.close()  # EOF: the client closes the connection with 1000
        wait_for(b"Connection closed: 1000")
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_http_response_to_plain_tcp_probe_is_well_formed(websock):
    """A load balancer probe (plain GET /ws) gets a parseable HTTP/1.1 response."""
    s = websock.connect()
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: lb\r\n\r\n")
    resp = parse_http_head(read_http_head(s))
    assert resp.status == 426
