"""websock behind nginx, configured by deploy/nginx.conf (README "Behind nginx").

nginx closes an upgraded connection on which no byte has passed for proxy_read_timeout; websock's
pings (--ping-interval) are what keep an idle client's connection open through it. Here nginx
runs with proxy_read_timeout 2 s and a raw client sits idle through nginx for four times that,
answering pings with pongs but sending nothing else:

- with --ping-interval 500 the client is pinged all along and can still echo afterwards;
- with --ping-interval 0 (the negative control, which shows the first test can fail) nginx cuts
  the idle client, without a Close frame, after about 2 s.

The whole Autobahn suite through the same proxy is `make autobahn-nginx`.
"""

from __future__ import annotations

import pathlib
import socket
import subprocess
import time
from dataclasses import dataclass

import pytest

import nginx_proxy
from conftest import (IO_TIMEOUT, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, STOP_TIMEOUT, Server,
                      assert_eof, close_payload, free_port, parse_http_head, read_http_head,
                      read_http_response_until_eof, raw_upgrade, recv_close, recv_frame,
                      recv_message, send_frame, upgrade_request)

NGINX = nginx_proxy.find_nginx()
pytestmark = pytest.mark.skipif(NGINX is None, reason=nginx_proxy.MISSING)

PROXY_READ_TIMEOUT_S = 2
IDLE_S = 4 * PROXY_READ_TIMEOUT_S   # how long the client stays idle: several proxy timeouts
PING_INTERVAL_MS = 500              # well below the proxy timeout


@dataclass
class Proxy:
    """nginx running deploy/nginx.conf in front of a websock."""
    port: int
    proc: subprocess.Popen
    workdir: pathlib.Path

    def error_log(self) -> str:
        try:
            return (self.workdir / "error.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=IO_TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s


@pytest.fixture
def nginx_factory(tmp_path, websock_factory):
    """Factory: ``nginx_factory(server, read_timeout="2s")`` starts nginx in front of server.

    At teardown nginx gets SIGTERM and must exit 0 with no [crit]/[alert]/[emerg] line logged.
    """
    proxies: list[Proxy] = []

    def start(server: Server, read_timeout: str = f"{PROXY_READ_TIMEOUT_S}s") -> Proxy:
        for attempt in range(3):  # the free port may be taken between probe and bind
            port = free_port()
            workdir = tmp_path / f"nginx-{len(proxies)}-{attempt}"
            nginx_proxy.write_conf(workdir, port, f"127.0.0.1:{server.port}",
                                   read_timeout=read_timeout)
            proc = subprocess.Popen(nginx_proxy.command(NGINX, workdir), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            proxy = Proxy(port, proc, workdir)
            deadline = time.monotonic() + IO_TIMEOUT
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    proxies.append(proxy)
                    return proxy
                except OSError:
                    time.sleep(0.02)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
                pytest.fail(f"nginx did not accept on port {port} within {IO_TIMEOUT}s:\n"
                            f"{proxy.error_log()[-3000:]}")
            if "Address already in use" not in proxy.error_log():
                pytest.fail(f"nginx exited with {proc.returncode} during start-up:\n"
                            f"{proxy.error_log()[-3000:]}")
        pytest.fail("nginx: no free port after 3 attempts")

    yield start

    for proxy in proxies:
        proxy.proc.terminate()
        try:
            code = proxy.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proxy.proc.kill()
            proxy.proc.wait()
            pytest.fail(f"nginx did not exit within {STOP_TIMEOUT}s of SIGTERM")
        assert code == 0, f"nginx exited with {code}:\n{proxy.error_log()[-3000:]}"
        for level in ("[crit]", "[alert]", "[emerg]"):
            assert level not in proxy.error_log(), proxy.error_log()[-3000:]


def upgraded_through(proxy: Proxy) -> socket.socket:
    s = proxy.connect()
    raw_upgrade(s, host=f"127.0.0.1:{proxy.port}")
    return s


def echo(s: socket.socket, text: str) -> None:
    send_frame(s, OP_TEXT, text.encode())
    opcode, payload, _ = recv_message(s)
    assert (opcode, payload) == (OP_TEXT, text.encode())


def stay_idle(s: socket.socket, seconds: float) -> tuple[int, float | None]:
    """Send nothing but pongs for `seconds`. Returns (pings answered, seconds after which the
    connection was cut, or None if it stayed open)."""
    start = time.monotonic()
    pings = 0
    while (left := start + seconds - time.monotonic()) > 0:
        s.settimeout(left)
        try:
            f = recv_frame(s)
        except TimeoutError:
            break
        except (EOFError, ConnectionResetError):
            return pings, time.monotonic() - start
        assert f.opcode == OP_PING, f"unexpected frame while idle: opcode {f.opcode}"
        pings += 1
        send_frame(s, OP_PONG, f.payload)
    s.settimeout(IO_TIMEOUT)
    return pings, None


def wait_for_log(server: Server, text: str) -> bool:
    deadline = time.monotonic() + IO_TIMEOUT
    while text not in server.stderr_text():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_idle_client_survives_nginx_read_timeout_thanks_to_pings(websock_factory, nginx_factory):
    server = websock_factory("--ping-interval", str(PING_INTERVAL_MS))
    proxy = nginx_factory(server)
    s = upgraded_through(proxy)
    echo(s, "before the idle time")

    pings, cut_after = stay_idle(s, IDLE_S)

    assert cut_after is None, (f"the idle client was cut after {cut_after:.1f} s despite "
                               f"{pings} pings; nginx error log:\n{proxy.error_log()[-2000:]}")
    assert pings >= 2, f"websock sent only {pings} pings in {IDLE_S} s of client silence"
    echo(s, "after the idle time")
    # And it still closes cleanly end to end.
    send_frame(s, OP_CLOSE, close_payload(1000))
    f, before = recv_close(s)
    assert (f.close_code, before) == (1000, [])
    assert_eof(s)
    assert "timed out" not in proxy.error_log()


def test_without_pings_nginx_cuts_the_idle_client(websock_factory, nginx_factory):
    """Negative control: the same idle client, no pings: nginx's proxy_read_timeout fires."""
    server = websock_factory("--ping-interval", "0")
    proxy = nginx_factory(server)
    s = upgraded_through(proxy)
    echo(s, "before the idle time")

    pings, cut_after = stay_idle(s, IDLE_S)

    assert pings == 0
    assert cut_after is not None, (f"nginx did not cut a client idle for {IDLE_S} s with "
                                   f"proxy_read_timeout {PROXY_READ_TIMEOUT_S}s and no pings")
    assert "upstream timed out" in proxy.error_log(), proxy.error_log()[-2000:]
    # It was nginx, not websock's own idle timer: websock saw its upstream connection close
    # (nginx closes both sides at once, so websock's log line may follow our EOF a little).
    assert wait_for_log(server, "peer closed TCP without a Close frame"), server.stderr_text()
    assert "silent for" not in server.stderr_text()
    with pytest.raises((EOFError, ConnectionResetError, BrokenPipeError)):
        echo(s, "after the idle time")


def test_plain_get_through_nginx_reaches_websock(websock_factory, nginx_factory):
    """A request without Upgrade takes the same location (as "Connection: close", the map's
    '' branch) and websock's own answer comes back through nginx: 426, not an nginx error."""
    server = websock_factory()
    proxy = nginx_factory(server)
    s = proxy.connect()
    s.sendall(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{proxy.port}\r\nConnection: close\r\n\r\n"
              .encode())
    resp = read_http_response_until_eof(s)
    assert resp.status == 426, resp.raw_head
    assert resp.header("Sec-WebSocket-Version") == "13", resp.raw_head
    assert wait_for_log(server, "rejected with 426"), server.stderr_text()


def test_origin_policy_through_nginx(websock_factory, nginx_factory):
    """A browser page of the proxy's own host and port (on a non-default port here) is the same
    origin for websock: nginx passes the client's Host with its port on (with $host it would
    drop the port and this page would get 403). A foreign page still gets websock's 403."""
    server = websock_factory()
    proxy = nginx_factory(server)
    s = proxy.connect()
    raw_upgrade(s, host=f"127.0.0.1:{proxy.port}",
                extra=f"Origin: http://127.0.0.1:{proxy.port}\r\n")
    echo(s, "same origin through nginx")
    s = proxy.connect()
    s.sendall(upgrade_request(host=f"127.0.0.1:{proxy.port}",
                              extra="Origin: https://evil.example\r\n"))
    resp = parse_http_head(read_http_head(s))  # nginx keeps the client connection open
    assert resp.status == 403, resp.raw_head


def upgraded_through_from(proxy: Proxy, source: str) -> socket.socket:
    """An upgraded connection through nginx from the loopback address source."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(IO_TIMEOUT)
    s.bind((source, 0))
    s.connect(("127.0.0.1", proxy.port))
    raw_upgrade(s, host=f"127.0.0.1:{proxy.port}")
    return s


def test_per_ip_limit_through_nginx_counts_each_client_not_nginx(websock_factory, nginx_factory):
    """With --trust-proxy for nginx's address, the address nginx puts in X-Forwarded-For is
    limited: a client over --max-connections-per-ip gets websock's 429 through nginx, while a
    client from another address is served - everyone behind nginx does not share one limit.
    Fails if deploy/nginx.conf does not send X-Forwarded-For (then every client counts as
    nginx's 127.0.0.1, and the other client is refused too)."""
    server = websock_factory("--trust-proxy", "127.0.0.1", "--per-ip-exempt", "none",
                             "--max-connections-per-ip", "2")
    proxy = nginx_factory(server)
    held = [upgraded_through_from(proxy, "127.0.0.2") for _ in range(2)]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(IO_TIMEOUT)
    s.bind(("127.0.0.2", 0))
    s.connect(("127.0.0.1", proxy.port))
    s.sendall(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{proxy.port}\r\nUpgrade: websocket\r\n"
              "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    # nginx keeps its client connection alive after an error from upstream: read the head only.
    resp = parse_http_head(read_http_head(s))
    s.close()
    assert resp.status == 429, f"third client connection from 127.0.0.2: {resp.raw_head!r}"
    others = [upgraded_through_from(proxy, "127.0.0.3") for _ in range(2)]
    for c in held + others:
        echo(c, "served")
    for c in held + others:
        c.close()
