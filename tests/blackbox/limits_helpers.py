"""Helpers shared by the hardening-limit tests (test_limits.py, test_slowloris.py,
test_stalled_client.py, test_many_connections.py, test_teardown.py).

Negative controls
-----------------
Each limit test builds its server flags with ``limit_flags(...)``. Setting the environment
variable ``WEBSOCK_DISABLE_LIMITS`` to a comma-separated list of flags (for example
``WEBSOCK_DISABLE_LIMITS=--handshake-timeout``) replaces those flags' values with one that
effectively disables the limit (see ``DISABLED``). The tests for that limit must then fail:
that is how each test is shown able to detect a limit that is not enforced. A normal run does
not set the variable and the flags are passed through unchanged.
"""

from __future__ import annotations

import os
import resource
import selectors
import socket
import struct
import time

from conftest import (WRAPPER, accept_for, make_key, parse_http_head, upgrade_request,
                      websock_bin)

KiB = 1024
MiB = 1024 * KiB

# Timing slack: assertions about when the server acts get this much extra room when it runs
# under a wrapper such as valgrind.
SLACK = 1.0 if not WRAPPER else 3.0

# A value for each flag that makes its limit unreachable in a test (used only for negative
# controls, see the module docstring).
DISABLED = {
    "--max-header-bytes": "1M",
    "--handshake-timeout": "86400000",
    "--idle-timeout": "0",
    "--ping-interval": "0",
    "--close-timeout": "86400000",
    "--send-timeout": "86400000",
    "--max-message": "1024G",
    "--max-connections": "0",
    "--max-buffered": "1024G",
    "--output-high-water": "1G",
    "--max-connections-per-ip": "0",
    "--handshake-rate-per-ip": "0",
}


def limit_flags(*args: str) -> list[str]:
    """The flags as given, unless WEBSOCK_DISABLE_LIMITS names some of them (negative
    control): those get the value that disables their limit."""
    disabled = {f.strip() for f in os.environ.get("WEBSOCK_DISABLE_LIMITS", "").split(",")
                if f.strip()}
    unknown = disabled - DISABLED.keys()
    assert not unknown, f"WEBSOCK_DISABLE_LIMITS names unknown flags: {sorted(unknown)}"
    out = list(args)
    for i in range(0, len(out) - 1):
        if out[i] in disabled:
            out[i + 1] = DISABLED[out[i]]
    return out


def binary_is_sanitized() -> bool:
    """True when RSS figures are not websock's own (ASan/MSan/TSan build, or a wrapper)."""
    if WRAPPER:
        return True
    try:
        with open(websock_bin(), "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"__msan_init" in data or b"__tsan_init" in data


# --------------------------------------------------------------------------------------------
# /proc of the server process
# --------------------------------------------------------------------------------------------

def fd_count(pid: int) -> int:
    """The server's open sockets (listener and connections). Other descriptors are left out:
    a wrapper such as valgrind opens files of its own while the server runs."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass  # closed while we looked
    return n


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process, in seconds (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_fd_count(pid: int, target: int, timeout: float) -> int:
    """Poll the server's descriptor count until it equals target (and stays there for 0.2 s)
    or timeout passes; returns the last count seen."""
    deadline = time.monotonic() + timeout
    stable_since = None
    while True:
        n = fd_count(pid)
        now = time.monotonic()
        if n == target:
            if stable_since is None:
                stable_since = now
            elif now - stable_since >= 0.2:
                return n
        else:
            stable_since = None
        if now > deadline:
            return n
        time.sleep(0.02)


def idle_fd_count(pid: int, timeout: float = 3.0) -> int:
    """The server's descriptor count once it has held still for 0.3 s (or timeout passes):
    the readiness probe's connection may not have been torn down yet when a test starts."""
    deadline = time.monotonic() + timeout
    last, since = fd_count(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        n = fd_count(pid)
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= 0.3:
            break
    return last


def raise_nofile() -> int:
    """Raise this process's descriptor soft limit to the hard limit; returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --------------------------------------------------------------------------------------------
# Socket state without reading
# --------------------------------------------------------------------------------------------

TCP_ESTABLISHED = 1
TCP_CLOSE = 7       # after a reset
TCP_CLOSE_WAIT = 8  # after the peer's FIN


def tcp_state(sock: socket.socket) -> int:
    """The kernel's TCP state of our socket (tcpi_state of TCP_INFO). Lets a test see the
    server's FIN or RST while unread data still sits in our receive buffer."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def wait_peer_gone(sock: socket.socket, timeout: float, poll: float = 0.01) -> float | None:
    """Wait until the server has closed (FIN) or reset our connection, without consuming any
    data. Returns the monotonic time it was first seen, or None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        now = time.monotonic()
        if tcp_state(sock) != TCP_ESTABLISHED:
            return now
        if now > deadline:
            return None
        time.sleep(poll)


def drain_until_end(sock: socket.socket, timeout: float) -> str:
    """Read and discard until EOF or reset; returns "eof" or "reset". Fails on timeout."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(1 << 20):
                return "eof"
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        raise AssertionError(f"the connection was still open after {timeout}s of reading") \
            from None


def set_linger_rst(sock: socket.socket) -> None:
    """close() will then send a reset instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


# --------------------------------------------------------------------------------------------
# Many connections from one process
# --------------------------------------------------------------------------------------------

def open_upgraded_many(host: str, port: int, n: int, batch: int = 500,
                       timeout: float = 40.0, max_failures: int = 200, extra: str = "",
                       answer: str | None = None) -> list[socket.socket]:
    """Open n upgraded WebSocket connections with non-blocking sockets driven by a selector,
    in batches; failed attempts (connect error, reset) are retried. ``extra`` header lines go
    into each request, and each 101 must answer Sec-WebSocket-Extensions with ``answer``
    (None: no such header). Returns blocking-mode sockets with no timeout set; the caller
    owns (and must close) them."""
    done: list[socket.socket] = []
    failures = 0
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    try:
        while len(done) < n:
            assert time.monotonic() < deadline, \
                f"only {len(done)} of {n} connections upgraded within {timeout}s"
            want = min(batch, n - len(done))
            pending = 0
            for _ in range(want):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                err = s.connect_ex((host, port))
                if err not in (0, 115):  # EINPROGRESS
                    s.close()
                    failures += 1
                    continue
                key = make_key()
                state = {"phase": "connect", "key": key, "buf": bytearray(),
                         "req": upgrade_request("/ws", f"{host}:{port}", key, extra)}
                sel.register(s, selectors.EVENT_WRITE, state)
                pending += 1
            batch_deadline = time.monotonic() + 10.0
            while pending and time.monotonic() < batch_deadline:
                for key, _ in sel.select(0.5):
                    s, st = key.fileobj, key.data
                    ok = None
                    try:
                        if st["phase"] == "connect":
                            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                            if err:
                                ok = False
                            else:
                                sent = s.send(st["req"])
                                assert sent == len(st["req"]), "short send of a request"
                                st["phase"] = "response"
                                sel.modify(s, selectors.EVENT_READ, st)
                        else:
                            chunk = s.recv(4096)
                            if not chunk:
                                ok = False
                            else:
                                st["buf"] += chunk
                                if b"\r\n\r\n" in st["buf"]:
                                    head, _, rest = bytes(st["buf"]).partition(b"\r\n\r\n")
                                    resp = parse_http_head(head + b"\r\n\r\n")
                                    assert resp.status == 101, resp.raw_head
                                    assert resp.header("Sec-WebSocket-Accept") == \
                                        accept_for(st["key"]), resp.raw_head
                                    assert resp.header("Sec-WebSocket-Extensions") == answer, \
                                        resp.raw_head
                                    assert not rest, f"bytes after the 101: {rest!r}"
                                    ok = True
                    except (ConnectionResetError, BrokenPipeError, ConnectionRefusedError):
                        ok = False
                    except BlockingIOError:
                        pass
                    if ok is not None:
                        sel.unregister(s)
                        pending -= 1
                        if ok:
                            s.setblocking(True)
                            done.append(s)
                        else:
                            s.close()
                            failures += 1
                            assert failures <= max_failures, \
                                f"{failures} connection attempts failed"
            for key in list(sel.get_map().values()):  # this batch's stragglers: retry them
                sel.unregister(key.fileobj)
                key.fileobj.close()
                failures += 1
            assert failures <= max_failures, f"{failures} connection attempts failed"
    except BaseException:
        for s in done:
            s.close()
        raise
    finally:
        sel.close()
    return done


def parse_server_frames(data: bytes) -> tuple[list[tuple[int, bool, bytes]], bytes]:
    """Split unmasked server frames out of a byte string: ([(opcode, fin, payload)], rest)."""
    frames = []
    i = 0
    while True:
        if len(data) - i < 2:
            break
        b0, b1 = data[i], data[i + 1]
        n = b1 & 0x7F
        h = 2
        if n == 126:
            if len(data) - i < 4:
                break
            n = struct.unpack_from("!H", data, i + 2)[0]
            h = 4
        elif n == 127:
            if len(data) - i < 10:
                break
            n = struct.unpack_from("!Q", data, i + 2)[0]
            h = 10
        if len(data) - i < h + n:
            break
        frames.append((b0 & 0x0F, bool(b0 & 0x80), data[i + h:i + h + n]))
        i += h + n
    return frames, data[i:]


def assert_error_response(resp, status: int) -> None:
    """An HTTP error response as README.md describes it: the status, a Server header,
    Connection: close, and an orderly close (FIN, not a reset) once it is written."""
    assert resp.status == status, f"expected {status}, got {resp.raw_head!r}"
    server = resp.header("Server")
    assert server is not None and server.startswith("websock/"), \
        f"missing/bad Server header: {resp.raw_head!r}"
    conn = resp.header("Connection")
    assert conn is not None and conn.lower() == "close", \
        f"error response without Connection: close: {resp.raw_head!r}"
    assert resp.header("Sec-WebSocket-Accept") is None, resp.raw_head
    assert not resp.reset, f"connection reset after {status} instead of closed: {resp.raw_head!r}"
