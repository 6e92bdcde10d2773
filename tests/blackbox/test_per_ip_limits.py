"""Per-client-address limits (README "Per-address limits"): --max-connections-per-ip (default
64) and --handshake-rate-per-ip / --handshake-burst-per-ip (default 20 per second, burst 40),
answered with 429 Too Many Requests and counted in /metrics; behind --trust-proxy, the client
the proxy names in X-Forwarded-For is limited, not the proxy.

Loopback clients are exempt by default (--per-ip-exempt 127.0.0.0/8,::1: conformance suites
and load generators run there), so the tests pass --per-ip-exempt none and otherwise keep the
default limits. A limit is judged by what it does to everyone else: every test also checks that
a client from ANOTHER loopback address (the client socket bound to 127.0.0.2 or 127.0.0.3
before connect) keeps being served and echoing while 127.0.0.1 is over its limit.

Negative control (limits_helpers.py): with WEBSOCK_DISABLE_LIMITS=--max-connections-per-ip or
=--handshake-rate-per-ip the tests of that limit fail - as they do against a websock without
these limits, where the 65th connection from one address is upgraded and a flood of
handshakes is never refused.
"""

from __future__ import annotations

import re
import socket
import threading
import time

from conftest import (IO_TIMEOUT, OP_TEXT, make_key, parse_http_head, raw_upgrade,
                      read_body_until_eof, read_http_head, recv_message, send_frame,
                      upgrade_request)
from limits_helpers import assert_error_response, limit_flags

DEFAULT_PER_IP = 64
DEFAULT_RATE, DEFAULT_BURST = 20, 40
NOT_EXEMPT = ("--per-ip-exempt", "none")


def connect_from(port: int, source: str, timeout: float = IO_TIMEOUT) -> socket.socket:
    """A TCP connection to the server from the loopback address source."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def attempt(port: int, source: str, extra: str = ""):
    """One upgrade request from source. Returns (response head, socket): the socket is open
    and upgraded on a 101; on anything else the rest of the response has been read up to the
    server's close."""
    s = connect_from(port, source)
    s.sendall(upgrade_request("/ws", f"127.0.0.1:{port}", make_key(), extra))
    resp = parse_http_head(read_http_head(s))
    if resp.status != 101:
        read_body_until_eof(s, resp)
    return resp, s


def upgraded_from(port: int, source: str, extra: str = "") -> socket.socket:
    s = connect_from(port, source)
    raw_upgrade(s, host=f"127.0.0.1:{port}", extra=extra)
    return s


def echo_ok(s: socket.socket, text: str = "still served") -> None:
    send_frame(s, OP_TEXT, text.encode())
    assert recv_message(s)[:2] == (OP_TEXT, text.encode())


def assert_429(resp, what: str) -> None:
    assert resp.status == 429, f"{what}: expected 429, got {resp.raw_head!r}"
    assert_error_response(resp, 429)


def metrics_from(port: int, source: str) -> str:
    s = connect_from(port, source)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    resp = read_body_until_eof(s, parse_http_head(read_http_head(s)))
    s.close()
    assert resp.status == 200, resp.raw_head
    return resp.body.decode()


def metric(text: str, line_start: str) -> int:
    m = re.search(rf"^{re.escape(line_start)} (\d+)$", text, re.M)
    assert m, f"no {line_start} in /metrics:\n{text}"
    return int(m.group(1))


def wait_admitted(port: int, source: str, timeout: float = 5.0) -> socket.socket:
    """Retries an upgrade from source until it is admitted (a freed slot is returned when the
    server has seen the other connection's close, not at once)."""
    deadline = time.monotonic() + timeout
    while True:
        resp, s = attempt(port, source)
        if resp.status == 101:
            return s
        s.close()
        assert time.monotonic() < deadline, \
            f"{source} still refused {timeout}s after one of its connections closed: " \
            f"{resp.raw_head!r}"
        time.sleep(0.05)


def test_default_connection_limit_refuses_the_65th_from_one_address_only(websock_factory):
    srv = websock_factory(*NOT_EXEMPT, *limit_flags("--max-connections-per-ip", "64"))
    port = srv.port
    held = []
    try:
        # 64 from 127.0.0.1, paced under the default handshake rate: the burst of 40, then
        # the rest once the bucket has refilled.
        for i in range(DEFAULT_PER_IP):
            if i == DEFAULT_BURST - 2:  # the fixture's readiness probe took one handshake
                time.sleep(1.5)
            held.append(upgraded_from(port, "127.0.0.1"))
        time.sleep(0.2)  # the probe's connection is torn down; nothing but the 64 remain

        resp, s = attempt(port, "127.0.0.1")
        s.close()
        assert_429(resp, "the 65th connection from 127.0.0.1 (default limit 64)")
        assert resp.header("Retry-After") is None, resp.raw_head  # not a rate refusal
        assert b"connections" in resp.body, resp.body

        # Everyone else is served meanwhile, and the 64 keep echoing.
        other = upgraded_from(port, "127.0.0.2")
        echo_ok(other)
        for s in held[::16]:
            echo_ok(s)
        resp, s = attempt(port, "127.0.0.1")
        s.close()
        assert_429(resp, "127.0.0.1 while still holding 64 connections")
        echo_ok(other, "and still served")
        other.close()

        # One of the 64 ends: 127.0.0.1 may open one more.
        held.pop().close()
        held.append(wait_admitted(port, "127.0.0.1"))
        echo_ok(held[-1])

        text = metrics_from(port, "127.0.0.3")
        refused = metric(text, 'websock_ip_limited_total{reason="connections"}')
        print(f"\n[per-ip] {refused} refused over connections")
        assert metric(text, 'websock_handshake_rejections_total{status="429"}') >= 2
        assert metric(text, 'websock_ip_limited_total{reason="connections"}') >= 2
        assert metric(text, 'websock_ip_limited_total{reason="rate"}') == 0
    finally:
        for s in held:
            s.close()
    log = srv.stderr_text()
    assert "127.0.0.1: over --max-connections-per-ip 64" in log, log[-3000:]


def flood(port: int, source: str, stop: threading.Event, seen: list) -> None:
    """Upgrade attempts from source, each closed at once, until stop: appends each status."""
    while not stop.is_set():
        try:
            resp, s = attempt(port, source)
            s.close()
            seen.append(resp)
        except OSError as e:  # a refusal closed at once (a flood past the answered ones)
            seen.append(e)


def test_default_handshake_rate_refuses_a_flood_from_one_address_only(websock_factory):
    srv = websock_factory(*NOT_EXEMPT, *limit_flags("--handshake-rate-per-ip", "20"))
    port = srv.port
    stop = threading.Event()
    seen: list = []
    t0 = time.monotonic()
    flooder = threading.Thread(target=flood, args=(port, "127.0.0.1", stop, seen), daemon=True)
    flooder.start()
    try:
        deadline = time.monotonic() + 20
        while not any(getattr(r, "status", 0) == 429 for r in seen):
            assert flooder.is_alive() and time.monotonic() < deadline, \
                f"no 429 after {len(seen)} rapid handshakes from one address: " \
                f"{[getattr(r, 'status', r) for r in seen[-5:]]}"
            time.sleep(0.01)

        # While 127.0.0.1 floods and is being refused, another address is served.
        refused_before = sum(getattr(r, "status", 0) == 429 for r in seen)
        other = upgraded_from(port, "127.0.0.2")
        for i in range(10):
            echo_ok(other, f"message {i}")
        for _ in range(5):
            s = upgraded_from(port, "127.0.0.3")
            echo_ok(s)
            s.close()
        refused_after = sum(getattr(r, "status", 0) == 429 for r in seen)
        assert refused_after > refused_before, \
            "127.0.0.1 was not refused while the other addresses were served"
    finally:
        stop.set()
        flooder.join(IO_TIMEOUT * 2)
    elapsed = time.monotonic() - t0
    statuses = [getattr(r, "status", None) for r in seen]
    ok = statuses.count(101)
    refused = [r for r in seen if getattr(r, "status", 0) == 429]
    print(f"\n[per-ip] {len(seen)} handshakes from one address in {elapsed:.2f}s: {ok} upgraded, "
          f"{len(refused)} got 429, {statuses.count(None)} closed at once")
    assert set(statuses) <= {101, 429, None}, statuses
    # The burst passes whole (less the readiness probe's), then no more than the rate.
    assert ok >= DEFAULT_BURST - 1, statuses[:DEFAULT_BURST + 5]
    assert ok <= DEFAULT_BURST + DEFAULT_RATE * elapsed + 1, (ok, elapsed)
    for r in refused:
        assert_error_response(r, 429)
        assert int(r.header("Retry-After")) >= 1, r.raw_head
    text = metrics_from(port, "127.0.0.3")
    assert metric(text, 'websock_ip_limited_total{reason="rate"}') >= len(refused)
    # One log line per 5 s at most, not one per refusal.
    lines = [l for l in srv.stderr_text().splitlines() if "over --handshake-rate-per-ip" in l]
    assert 1 <= len(lines) <= elapsed / 5 + 1, lines
    assert "127.0.0.1: over --handshake-rate-per-ip 20" in lines[0], lines[0]


def test_loopback_is_exempt_by_default_and_zero_disables_the_limits(websock_factory):
    """What Autobahn's wstest, the benchmarks and the other black-box tests rely on: many fast
    handshakes and connections from 127.0.0.1 with the default flags."""
    for flags in ([], ["--max-connections-per-ip", "0", "--handshake-rate-per-ip", "0",
                       *NOT_EXEMPT]):
        srv = websock_factory(*flags)
        held = [upgraded_from(srv.port, "127.0.0.1") for _ in range(2 * DEFAULT_PER_IP)]
        echo_ok(held[-1])
        for s in held:
            s.close()
    # An exemption names exactly its addresses: 127.0.0.2 is free, 127.0.0.1 is not.
    srv = websock_factory("--per-ip-exempt", "127.0.0.2", "--max-connections-per-ip", "2")
    held = [upgraded_from(srv.port, "127.0.0.2") for _ in range(5)]
    held += [upgraded_from(srv.port, "127.0.0.1") for _ in range(2)]
    resp, s = attempt(srv.port, "127.0.0.1")
    s.close()
    assert_429(resp, "127.0.0.1, not exempt, over --max-connections-per-ip 2")
    for s in held:
        s.close()


def test_trusted_proxy_clients_are_limited_by_x_forwarded_for(websock_factory):
    """A trusted proxy (127.0.0.1) is not limited as one client: the address its request names
    is. An untrusted peer (127.0.0.2) cannot name one: its own address is charged."""
    srv = websock_factory("--trust-proxy", "127.0.0.1", *NOT_EXEMPT,
                          *limit_flags("--max-connections-per-ip", "2"))
    port = srv.port
    xff = lambda addr: f"X-Forwarded-For: 198.51.100.77, {addr}\r\n"  # noqa: E731
    held = [upgraded_from(port, "127.0.0.1", xff("192.0.2.1")) for _ in range(2)]
    resp, s = attempt(port, "127.0.0.1", xff("192.0.2.1"))
    s.close()
    assert_429(resp, "a third connection for client 192.0.2.1 through the proxy")
    # Other clients behind the same proxy: not limited by 192.0.2.1's count, nor the proxy's.
    for i in range(2, 7):
        held.append(upgraded_from(port, "127.0.0.1", xff(f"192.0.2.{i}")))
    echo_ok(held[-1])
    # IPv6 clients are counted by their /64.
    held.append(upgraded_from(port, "127.0.0.1", xff("2001:db8:1:2::1")))
    held.append(upgraded_from(port, "127.0.0.1", xff("[2001:db8:1:2::2]:4711")))
    resp, s = attempt(port, "127.0.0.1", xff("2001:db8:1:2:ffff::3"))
    s.close()
    assert_429(resp, "a third connection from the same IPv6 /64")
    # Nothing the proxy can use: its own address is charged (so it has room for two).
    held.append(upgraded_from(port, "127.0.0.1", "X-Forwarded-For: garbage\r\n"))
    held.append(upgraded_from(port, "127.0.0.1"))
    resp, s = attempt(port, "127.0.0.1")
    s.close()
    assert_429(resp, "a third request without X-Forwarded-For from the proxy itself")
    # An untrusted peer's header is ignored: it cannot escape its limit by naming others.
    held.append(upgraded_from(port, "127.0.0.2", "X-Forwarded-For: 192.0.2.100\r\n"))
    held.append(upgraded_from(port, "127.0.0.2", "X-Forwarded-For: 192.0.2.101\r\n"))
    resp, s = attempt(port, "127.0.0.2", "X-Forwarded-For: 192.0.2.102\r\n")
    s.close()
    assert_429(resp, "an untrusted peer naming yet another client")
    for s in held[::3]:
        echo_ok(s)
    # Closing a proxied connection returns its client's slot.
    held.pop(0).close()
    deadline = time.monotonic() + 5
    while True:
        resp, s = attempt(port, "127.0.0.1", xff("192.0.2.1"))
        if resp.status == 101:
            held.append(s)
            break
        s.close()
        assert time.monotonic() < deadline, resp.raw_head
        time.sleep(0.05)
    for s in held:
        s.close()
