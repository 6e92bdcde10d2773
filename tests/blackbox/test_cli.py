"""Command line: --help/-h, --version/-V, bad flag values and mistyped flags (exit 2, with a
suggestion), durations with units, a port in use or privileged (exit 1, with what to do), the
start-up line's URLs, and the flags that change behaviour (--path, --bind, --log-level)."""

import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from conftest import (OP_TEXT, REPO_ROOT, free_port, parse_http_head, raw_upgrade,
                      read_http_head, read_http_response_until_eof, recv_message,
                      require_binary, run_cli, send_frame, upgrade_request)
from daemon_helpers import daemon  # noqa: F401 (fixture)

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
NUMERIC_FLAGS = ["--port", "--tls-port", "--max-message", "--coalesce-max", "--max-header-bytes",
                 "--output-high-water", "--max-buffered", "--max-connections", "--workers",
                 "--handshake-timeout", "--close-timeout", "--send-timeout", "--ping-interval",
                 "--idle-timeout", "--shutdown-timeout"]


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


# --------------------------------------------------------------------------------------------
# Issue 18 item 6: the command line as an operator meets it
# --------------------------------------------------------------------------------------------

def one_error_line(r: subprocess.CompletedProcess, args) -> str:
    assert r.returncode == 2, f"{args}: exit {r.returncode}, stderr={r.stderr!r}"
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"{args}: expected one line on stderr, got {r.stderr!r}"
    assert r.stdout == "", f"{args}: unexpected stdout {r.stdout!r}"
    return lines[0]


@pytest.mark.parametrize("short,long", [("-h", "--help"), ("-V", "--version")])
def test_short_help_and_version_flags_work_like_the_long_ones(short, long):
    r, expected = run_cli(short), run_cli(long)
    assert r.returncode == 0, f"{short}: exit {r.returncode}, stderr={r.stderr!r}"
    assert r.stdout == expected.stdout and r.stdout, f"{short} printed {r.stdout!r}"
    assert short in run_cli("--help").stdout, f"--help does not mention {short}"


def closed_after(srv, at_least: float, at_most: float) -> None:
    """A client that sends nothing is still connected after at_least seconds and closed by
    at_most (the handshake timeout)."""
    s = srv.connect(timeout=at_most)
    time.sleep(at_least)
    s.setblocking(False)
    try:
        assert s.recv(1) != b"", "unexpected bytes"
        raise AssertionError("closed before the handshake timeout")
    except BlockingIOError:
        pass  # still open, nothing sent: as it should be
    s.setblocking(True)
    s.settimeout(at_most)
    try:
        data = s.recv(1)
    except ConnectionResetError:
        data = b""
    assert data == b"", f"expected the server to close, got {data!r}"


@pytest.mark.parametrize("value", ["1s", "1000ms", "1000"])
def test_durations_take_units_and_a_bare_number_means_milliseconds(websock_factory, value):
    """--handshake-timeout 1s, 1000ms and 1000 all mean one second: a silent client is still
    connected after 0.4 s (so not 1 ms) and closed well before 1000 s."""
    srv = websock_factory("--handshake-timeout", value)
    closed_after(srv, 0.4, 5.0)


@pytest.mark.parametrize("flag,value", [("--idle-timeout", "2m"), ("--ping-interval", "1h"),
                                        ("--send-timeout", "500ms"), ("--close-timeout", "10s"),
                                        ("--handshake-timeout", "24h"), ("--idle-timeout", "0"),
                                        ("--shutdown-timeout", "30s")])
def test_every_duration_flag_takes_units(flag, value):
    r = run_cli(flag, value, "--help")
    assert r.returncode == 0, f"{flag} {value}: exit {r.returncode}, {r.stderr!r}"


@pytest.mark.parametrize("value", ["5d", "10S", "1.5s", "-1s", "s", "10 s", "25h", "86400001",
                                   "99999999999999999999ms", "18446744073709551617s", "1m30s",
                                   ""])
def test_bad_durations_name_the_flag_and_the_accepted_forms(value):
    args = ["--idle-timeout", value]
    line = one_error_line(run_cli(*args), args)
    assert "--idle-timeout" in line, line
    for form in ("500ms", "10s", "2m", "1h", "bare number"):
        assert form in line, f"{args}: the error does not show {form!r}: {line!r}"


def test_durations_are_shown_with_units_in_help():
    out = run_cli("--help").stdout
    assert re.search(r"--idle-timeout T .*\n.*default 2m\)", out), out
    assert "500ms, 10s, 2m, 1h" in out, out


@pytest.mark.parametrize("typed,meant", [("--prot", "--port"), ("--bnd", "--bind"),
                                         ("--idle-timout", "--idle-timeout"),
                                         ("--workres", "--workers"), ("--prot=80", "--port"),
                                         ("--verison", "--version"), ("-port", "--port"),
                                         ("--max-mesage", "--max-message")])
def test_a_mistyped_flag_gets_a_suggestion_and_exit_2(typed, meant):
    args = [typed, "80"] if "=" not in typed else [typed]
    line = one_error_line(run_cli(*args), args)
    shown = typed.split("=")[0]
    assert f"unknown option {shown}; did you mean {meant}?" in line, line
    assert "--help" in line, f"the error does not point to --help: {line!r}"


@pytest.mark.parametrize("typed", ["--frobnicate", "--xyz", "-q"])
def test_no_suggestion_for_a_flag_close_to_nothing(typed):
    line = one_error_line(run_cli(typed), [typed])
    assert f"unknown option {typed}" in line and "did you mean" not in line, line
    assert "--help" in line, line


def test_an_ambiguous_prefix_names_the_candidates():
    line = one_error_line(run_cli("--max-conn", "5"), ["--max-conn"])
    assert "--max-connections " in line and "--max-connections-per-ip" in line, line


def test_a_value_given_to_a_flag_that_takes_none_is_an_error():
    line = one_error_line(run_cli("--no-page=yes"), ["--no-page=yes"])
    assert "--no-page" in line and "no value" in line, line


def unprivileged(args: list[str]) -> list[str]:
    """args run as an unprivileged user: as is for a non-root test, via setpriv for root."""
    if os.geteuid() != 0:
        return args
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv (util-linux): cannot drop privileges")
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *args]


@pytest.mark.parametrize("extra", [[], ["--workers", "2"]], ids=["single", "workers"])
def test_a_privileged_port_without_privilege_says_what_to_do(extra):
    try:
        start = int(open("/proc/sys/net/ipv4/ip_unprivileged_port_start").read())
    except OSError:
        start = 1024
    if start == 0:
        pytest.skip("net.ipv4.ip_unprivileged_port_start is 0: every port is unprivileged")
    port = min(80, start - 1)
    args = unprivileged([require_binary(), "--port", str(port), "--bind", "127.0.0.1", *extra])
    r = subprocess.run(args, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    if r.returncode == 0 or "Permission denied" not in r.stderr:
        pytest.skip(f"port {port} was not refused here (capabilities?): {r.stderr!r}")
    assert r.returncode == 1, r
    err = r.stderr
    assert f"port {port}" in err, err
    assert f"--port {start} or above" in err, err
    assert "setcap cap_net_bind_service=+ep " in err, err
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in err, err
    assert len(err.strip().splitlines()) == 1, f"more than one line: {err!r}"


@pytest.mark.parametrize("extra", [[], ["--workers", "2"]], ids=["single", "workers"])
def test_port_in_use_says_how_to_find_the_holder(extra):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        r = subprocess.run([require_binary(), "--port", str(port), "--bind", "127.0.0.1",
                            *extra], capture_output=True, text=True, timeout=10,
                           stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r
    assert "another process holds this port" in r.stderr, r.stderr
    assert f"ss -ltnp 'sport = :{port}'" in r.stderr, r.stderr


def bind_default_texts() -> dict[str, str]:
    """What --help, the README's flag table and the man page say about --bind's default."""
    help_text = run_cli("--help").stdout
    m = re.search(r"^  --bind ADDR(.*\n(?: {20,}.*\n)*)", help_text, re.M)
    readme = (REPO_ROOT / "README.md").read_text()
    row = next(ln for ln in readme.splitlines() if ln.startswith("| `--bind ADDR`"))
    man = (REPO_ROOT / "doc/websock.1").read_text().replace("\\-", "-")
    entry = man[man.index('.BI --bind " ADDR"'):]
    entry = entry[:entry.index(".TP")]
    return {"--help": " ".join(m.group(1).split()), "README": row, "man page": entry}


def test_help_readme_and_man_page_agree_on_the_default_bind_address(daemon):
    """The code listens on one dual-stack :: socket (0.0.0.0 where IPv6 is missing); each of
    the three texts says exactly that."""
    for where, text in bind_default_texts().items():
        for words in ("all addresses", "dual-stack", "::", "0.0.0.0"):
            assert words in text, f"{where} does not say {words!r} about --bind: {text!r}"
    d = daemon()  # no --bind: both families on the one port
    for host in ("127.0.0.1", "::1"):
        socket.create_connection((host, d.port), timeout=5).close()


def startup_line(d) -> str:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        m = re.search(r"^.*(listening on|workers on) .*$", d.stderr_text(), re.M)
        if m:
            return m.group(0)
        time.sleep(0.02)
    raise AssertionError(f"no start-up line: {d.stderr_text()!r}")


def ws_echo(url: str) -> None:
    from websockets.sync.client import connect
    with connect(url, open_timeout=5, close_timeout=5) as ws:
        ws.send("via the logged URL")
        assert ws.recv(timeout=5) == "via the logged URL"


@pytest.mark.parametrize("extra", [[], ["--workers", "2"]], ids=["single", "workers"])
def test_startup_line_gives_urls_that_answer(daemon, extra):
    d = daemon(*extra)  # all addresses: the line shows the loopback URL
    line = startup_line(d)
    assert "all addresses" in line, line
    http_url = re.search(r"console (http://\S+/)(?=[,\s]|$)", line)
    ws_url = re.search(r"WebSocket (ws://\S+)", line)
    assert http_url and ws_url, f"no URLs in {line!r}"
    assert http_url.group(1) == f"http://127.0.0.1:{d.port}/", line
    assert ws_url.group(1) == f"ws://127.0.0.1:{d.port}/ws", line
    with urllib.request.urlopen(http_url.group(1), timeout=5) as resp:
        assert resp.status == 200 and "html" in resp.headers["Content-Type"]
    ws_echo(ws_url.group(1))


def test_startup_line_for_an_ipv6_address_without_the_page(daemon):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    d = daemon("--bind", "::1", "--path", "/echo", "--no-page", connect_host="::1")
    line = startup_line(d)
    assert f"WebSocket ws://[::1]:{d.port}/echo" in line, line
    assert "http://" not in line, f"a console URL although --no-page: {line!r}"
    ws_echo(f"ws://[::1]:{d.port}/echo")
