"""Fixtures and raw-socket helpers for the websock black-box tests.

The tests start the real binary (``$WEBSOCK_BIN``, default ``build/websock``) on a free
loopback port and talk to it over TCP, either with the ``websockets`` client library or by
hand (raw frames) where a library cannot produce the bad input we want to send.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import pathlib
import random
import re
import signal
import socket
import struct
import subprocess
import time
from dataclasses import dataclass

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Every blocking socket operation in the tests uses this timeout, so a hung server fails a
# test instead of hanging the suite.
# WEBSOCK_WRAPPER runs the server under a tool, e.g. "valgrind -q --error-exitcode=99"; the
# tool's exit status then reaches the SIGTERM check at teardown.
WRAPPER = os.environ.get("WEBSOCK_WRAPPER", "").split()

IO_TIMEOUT = 5.0 if not WRAPPER else 30.0
TEST_TIMEOUT = 90 if not WRAPPER else 300  # hard limit per test (SIGALRM)
START_TIMEOUT = 5.0 if not WRAPPER else 30.0
STOP_TIMEOUT = 10.0

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

# Output on stderr that must never appear unless a test says so.
SANITIZER_PATTERNS = (
    "AddressSanitizer",
    "LeakSanitizer",
    "UndefinedBehaviorSanitizer",
    "ThreadSanitizer",
    "MemorySanitizer",
    "runtime error:",
    "Segmentation fault",
)
# websock's log lines look like "2025-01-01T00:00:00.000Z error message"; also catch "ERROR".
ERROR_LINE = re.compile(r"(\bERROR\b)|(^\S+\s+error\s)", re.MULTILINE)


def websock_bin() -> str:
    """Path of the server binary under test."""
    value = os.environ.get("WEBSOCK_BIN", "build/websock")
    path = pathlib.Path(value)
    if not path.is_absolute() and not path.exists():
        path = REPO_ROOT / value
    return str(path.resolve())


def require_binary() -> str:
    path = websock_bin()
    if not os.access(path, os.X_OK):
        pytest.fail(f"websock binary not found or not executable at {path} (run `make` first "
                    "or set WEBSOCK_BIN)", pytrace=False)
    return path


def _ephemeral_low() -> int:
    try:
        return int(pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable_everywhere(port: int) -> bool:
    """Whether port is free on every address, as the server's default :: listener needs."""
    for family, addr in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                if family == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                s.bind((addr, port))
                return True
        except OSError as e:
            if family == socket.AF_INET6 and e.errno == errno.EAFNOSUPPORT:
                continue
            return False
    return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port for a server under test, free on every address (host only says which family the
    test will use). It comes from below the kernel's ephemeral range: an outgoing connection of
    any process on the machine (a many-connection load beside the suite) takes ephemeral ports,
    and one taken that way makes a later bind of the server on all addresses fail."""
    del host
    top = max(_ephemeral_low(), 12000)
    rng = random.Random()
    for _ in range(500):
        port = rng.randrange(10000, top)
        if _bindable_everywhere(port):
            return port
    raise RuntimeError("no free port below the ephemeral range")


def run_cli(*args: str, timeout: float = 10.0) -> subprocess.CompletedProcess:
    """Run the binary with arguments that make it exit by itself (--help, bad flags, ...)."""
    return subprocess.run([require_binary(), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: large transfers or many connections; skipped "
                            "when the server runs under a wrapper such as valgrind")


@pytest.fixture(autouse=True)
def _hard_test_timeout():
    """Fail (not hang) a test that blocks somewhere without a timeout of its own."""
    def on_alarm(signum, frame):
        raise TimeoutError(f"test exceeded the hard limit of {TEST_TIMEOUT}s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------------------------
# Server process fixture
# --------------------------------------------------------------------------------------------

class Server:
    """A running websock process. Unpacks as ``port, proc``."""

    def __init__(self, port: int, proc: subprocess.Popen, stderr_path: pathlib.Path,
                 host: str, args: list[str]):
        self.port = port
        self.proc = proc
        self.stderr_path = stderr_path
        self.host = host
        self.args = args
        self.allow_error_log = False
        self._sockets: list[socket.socket] = []
        self._ws_clients: list = []

    def __iter__(self):
        return iter((self.port, self.proc))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, path: str = "/ws") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{path}"

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def connect(self, timeout: float = IO_TIMEOUT) -> socket.socket:
        """A plain TCP connection to the server (closed automatically at teardown)."""
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(timeout)
        self._sockets.append(s)
        return s

    def upgraded(self, path: str = "/ws", timeout: float = IO_TIMEOUT) -> socket.socket:
        """A TCP connection that has completed the WebSocket handshake by hand."""
        s = self.connect(timeout)
        raw_upgrade(s, path=path, host=f"127.0.0.1:{self.port}")
        return s

    def ws_connect(self, path: str = "/ws", **kwargs):
        """A ``websockets`` sync client connection (closed automatically at teardown)."""
        from websockets.sync.client import connect

        kwargs.setdefault("open_timeout", IO_TIMEOUT)
        kwargs.setdefault("close_timeout", IO_TIMEOUT)
        kwargs.setdefault("max_size", None)
        kwargs.setdefault("legacy", True)  # returned directly; closed at teardown
        # The library stops reading the socket once 16 frames are queued unread. The server
        # streams a big echo back as many fragments while we are still sending (design.md
        # §4), so with that default a test that sends 16 MiB before calling recv() would
        # deadlock on mutual backpressure. Let the client buffer without a frame limit.
        kwargs.setdefault("max_queue", None)
        ws = connect(self.url(path), **kwargs)
        self._ws_clients.append(ws)
        return ws

    def echo_async(self, messages, path: str = "/ws", timeout: float = 60.0):
        """Send each message with the ``websockets`` asyncio client and wait for its echo
        before sending the next; close with 1000. Returns (echoes, close code received).

        The asyncio client keeps reading the socket while a big send is in progress, which
        the sync client does not (it holds its protocol lock during sendall): with the sync
        client, a message larger than the socket buffers deadlocks against any server that
        starts echoing before the whole message has arrived (design.md §4)."""
        import asyncio

        from websockets.asyncio.client import connect

        async def run():
            async with connect(self.url(path), max_size=None, max_queue=None,
                               open_timeout=IO_TIMEOUT, close_timeout=IO_TIMEOUT) as ws:
                echoes = []
                for m in messages:
                    await ws.send(m)
                    echoes.append(await ws.recv())
                await ws.close()
                return echoes, ws.close_code

        async def with_timeout():
            return await asyncio.wait_for(run(), timeout)

        return asyncio.run(with_timeout())

    def close_clients(self) -> None:
        for ws in self._ws_clients:
            try:
                ws.close()
            except Exception:
                pass
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass
        self._ws_clients.clear()
        self._sockets.clear()

    def status(self) -> dict[str, int]:
        """VmRSS/VmHWM/... of the server process in KiB, from /proc/PID/status."""
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                m = re.match(r"^(Vm\w+):\s+(\d+)\s+kB", line)
                if m:
                    out[m.group(1)] = int(m.group(2))
        return out

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM the server and return its exit code (fails the test if it does not exit)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"websock did not exit within {timeout}s of SIGTERM\n"
                            f"stderr tail:\n{self.stderr_text()[-3000:]}")
        return self.proc.returncode

    def check_stderr(self) -> None:
        text = self.stderr_text()
        for pat in SANITIZER_PATTERNS:
            assert pat not in text, f"sanitizer/crash output on stderr:\n{text[-5000:]}"
        if not self.allow_error_log:
            m = ERROR_LINE.search(text)
            assert m is None, ("unexpected error-level log line on stderr: "
                               f"{text[m.start():text.find(chr(10), m.start())]!r}\n"
                               f"stderr tail:\n{text[-3000:]}")


def wait_connectable(connect, what: str, proc: subprocess.Popen, stderr_path) -> None:
    """Waits until ``connect()`` (which opens and closes one connection) succeeds; fails at
    once if websock exits, and kills it if it is not accepting within START_TIMEOUT."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"websock exited with {proc.returncode} during start-up: "
                               f"{pathlib.Path(stderr_path).read_text(errors='replace')}")
        try:
            connect()
            return
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"websock did not accept on {what} within {START_TIMEOUT}s")
            time.sleep(0.02)


def wait_accepting(host: str, port: int, proc: subprocess.Popen, stderr_path) -> None:
    def connect():
        socket.create_connection((host, port), timeout=0.5).close()
    wait_connectable(connect, f"{host}:{port}", proc, stderr_path)


@pytest.fixture
def websock_factory(tmp_path):
    """Factory: ``websock_factory("--max-message", "1000")`` starts a server with extra flags.

    Every server is started with ``--bind 127.0.0.1 --log-level debug`` (``bind=`` overrides
    the address). At teardown clients are closed, the server gets SIGTERM and must exit 0
    with no sanitizer output and no error-level log line (unless ``allow_error_log``).
    Stderr is kept in a file under tmp_path for diagnosis.
    """
    servers: list[Server] = []
    binary = require_binary()

    def start(*extra: str, bind: str = "127.0.0.1", log_level: str = "debug") -> Server:
        last_err = None
        for attempt in range(3):  # the free port may be taken between probe and bind
            port = free_port(bind)
            args = [*WRAPPER, binary, "--port", str(port), "--bind", bind,
                    "--log-level", log_level, *extra]
            stderr_path = tmp_path / f"websock-{len(servers)}-{attempt}.stderr"
            with open(stderr_path, "wb") as err:
                proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=err)
            try:
                wait_accepting(bind, port, proc, stderr_path)
            except RuntimeError as e:
                last_err = e
                if proc.poll() == 1:  # port in use: try another port
                    continue
                raise
            srv = Server(port, proc, stderr_path, bind, args)
            servers.append(srv)
            return srv
        raise last_err

    yield start

    def finish(srv: Server) -> None:
        srv.close_clients()
        code = srv.terminate()
        assert code == 0, (f"websock exited with {code} after SIGTERM; stderr tail:\n"
                           f"{srv.stderr_text()[-3000:]}")
        srv.check_stderr()

    finish_all(servers, finish)


def finish_all(started, finish) -> None:
    """A fixture's teardown: finish(x) for every started process x (each has .proc), all of
    them even when one fails, none left running; then the first failure is raised."""
    failures = []
    for x in started:
        try:
            finish(x)
        except BaseException as e:  # report all of them, then fail
            failures.append(e)
        finally:
            if x.proc.poll() is None:
                x.proc.kill()
                x.proc.wait()
    if failures:
        raise failures[0]


@pytest.fixture
def websock(websock_factory) -> Server:
    """A server with default flags (plus --bind 127.0.0.1 --log-level debug)."""
    return websock_factory()


# --------------------------------------------------------------------------------------------
# Payload helpers
# --------------------------------------------------------------------------------------------

# A mix of 1-, 2-, 3- and 4-byte UTF-8 sequences, so that any place where the server cuts a
# long text message into outgoing fragments falls next to a multi-byte code point somewhere.
_MIX = "a\u00e9\u20ac\U0001F600z\u00df\u4e2d\U00010348"


def text_of_utf8_size(n: int) -> str:
    """A str whose UTF-8 encoding is exactly n bytes and contains multi-byte code points."""
    unit = _MIX.encode()
    s = _MIX * (n // len(unit))
    return s + "x" * (n - len(s.encode()))


# --------------------------------------------------------------------------------------------
# Raw protocol helpers
# --------------------------------------------------------------------------------------------

def make_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def accept_for(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def upgrade_request(path: str = "/ws", host: str = "127.0.0.1", key: str | None = None,
                    extra: str = "") -> bytes:
    key = key or make_key()
    return (f"GET {path} HTTP/1.1\r\n"
            f"Host: {host}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            f"{extra}"
            "\r\n").encode()


@dataclass
class HttpResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    raw_head: bytes
    body: bytes = b""
    reset: bool = False  # the connection ended with a TCP reset instead of a FIN

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def read_http_head(sock: socket.socket, limit: int = 65536) -> bytes:
    """Read a response head byte by byte (so no frame byte after it is consumed)."""
    buf = bytearray()
    while not buf.endswith(b"\r\n\r\n"):
        b = sock.recv(1)
        if not b:
            raise EOFError(f"connection closed inside the HTTP response head: {bytes(buf)!r}")
        buf += b
        if len(buf) > limit:
            raise AssertionError("HTTP response head too long")
    return bytes(buf)


def parse_http_head(head: bytes) -> HttpResponse:
    text = head.decode("iso-8859-1")
    lines = text.split("\r\n")
    m = re.match(r"^HTTP/1\.1 (\d{3}) ?(.*)$", lines[0])
    assert m, f"bad status line: {lines[0]!r}"
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        assert sep, f"bad header line: {line!r}"
        headers.append((name.strip(), value.strip()))
    return HttpResponse(int(m.group(1)), m.group(2), headers, head)


def read_http_response_until_eof(sock: socket.socket) -> HttpResponse:
    """Read a whole error response and require the server to close the TCP connection."""
    return read_body_until_eof(sock, parse_http_head(read_http_head(sock)))


def read_body_until_eof(sock: socket.socket, resp: HttpResponse) -> HttpResponse:
    """Read the rest of a response after its head, until the server closes (or resets)."""
    body = bytearray()
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            resp.reset = True
            break
        if not chunk:
            break
        body += chunk
    resp.body = bytes(body)
    return resp


def raw_upgrade(sock: socket.socket, path: str = "/ws", host: str = "127.0.0.1",
                extra: str = "", pipelined: bytes = b"") -> HttpResponse:
    """Do the opening handshake by hand; assert a correct 101. ``pipelined`` bytes are sent in
    the same write as the request."""
    key = make_key()
    sock.sendall(upgrade_request(path, host, key, extra) + pipelined)
    resp = parse_http_head(read_http_head(sock))
    assert resp.status == 101, f"expected 101, got {resp.raw_head!r}"
    assert resp.header("Sec-WebSocket-Accept") == accept_for(key), resp.raw_head
    return resp


def build_frame(opcode: int, payload: bytes = b"", fin: bool = True, mask: bool = True,
                rsv: int = 0, length_override: int | None = None,
                mask_key: bytes | None = None) -> bytes:
    """Encode one client frame. ``rsv`` is a 3-bit value (4 = RSV1, 2 = RSV2, 1 = RSV3).
    ``length_override`` puts that number in the length field whatever the payload is (the
    smallest encoding that fits it, or the 64-bit form for values >= 2**16)."""
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    length = len(payload) if length_override is None else length_override
    mbit = 0x80 if mask else 0
    if length < 126:
        head = struct.pack("!BB", b0, mbit | length)
    elif length < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, length)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, length)
    if mask:
        key = mask_key if mask_key is not None else os.urandom(4)
        return head + key + mask_payload(key, payload)
    return head + payload


def mask_payload(key: bytes, payload: bytes) -> bytes:
    if not payload:
        return b""
    n = len(payload)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ k).to_bytes(n, "big")


def frame_header_len(frame: bytes) -> int:
    """Length of the header (including the mask key) of an encoded frame."""
    n = frame[1] & 0x7F
    size = 2 + (2 if n == 126 else 8 if n == 127 else 0)
    return size + (4 if frame[1] & 0x80 else 0)


def send_frame(sock: socket.socket, opcode: int, payload: bytes = b"", fin: bool = True,
               mask: bool = True, rsv: int = 0, length_override: int | None = None) -> None:
    sock.sendall(build_frame(opcode, payload, fin=fin, mask=mask, rsv=rsv,
                             length_override=length_override))


@dataclass
class Frame:
    fin: bool
    rsv: int
    opcode: int
    payload: bytes
    header: bytes

    @property
    def close_code(self) -> int | None:
        assert self.opcode == OP_CLOSE
        if len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    @property
    def close_reason(self) -> bytes:
        return self.payload[2:]


def recv_frame(sock: socket.socket) -> Frame:
    """Read and parse one server frame; asserts the server did not mask it and used the
    minimal length encoding (RFC 6455 §5.1, §5.2)."""
    head = recv_exact(sock, 2)
    b0, b1 = head
    assert not b1 & 0x80, f"server frame is masked: {head!r}"
    n = b1 & 0x7F
    if n == 126:
        ext = recv_exact(sock, 2)
        n = struct.unpack("!H", ext)[0]
        assert n >= 126, f"non-minimal 16-bit length {n}"
    elif n == 127:
        ext = recv_exact(sock, 8)
        n = struct.unpack("!Q", ext)[0]
        assert n >= 65536 and not n >> 63, f"non-minimal/invalid 64-bit length {n}"
    else:
        ext = b""
    payload = recv_exact(sock, n) if n else b""
    return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, payload, head + ext)


def recv_close(sock: socket.socket, max_frames: int = 100000) -> tuple[Frame, list[Frame]]:
    """Read frames until a Close; returns (close frame, frames before it)."""
    before = []
    for _ in range(max_frames):
        try:
            f = recv_frame(sock)
        except EOFError as e:
            raise AssertionError(f"TCP closed without a Close frame ({e}); "
                                 f"frames before: {summarize(before)}") from None
        except ConnectionResetError:
            raise AssertionError("TCP reset without a Close frame; "
                                 f"frames before: {summarize(before)}") from None
        if f.opcode == OP_CLOSE:
            return f, before
        before.append(f)
    raise AssertionError("no Close frame")


def summarize(frames: list[Frame]) -> str:
    return ", ".join(f"(op={f.opcode} fin={int(f.fin)} len={len(f.payload)} "
                     f"{f.payload[:16]!r})" for f in frames) or "none"


def assert_eof(sock: socket.socket) -> None:
    """The server must close the TCP connection in order: recv returns b"" promptly (a reset
    is a failure: it can destroy the Close frame or response still in flight)."""
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        raise AssertionError("server reset the TCP connection instead of closing it") from None
    except socket.timeout:
        raise AssertionError("server did not close the TCP connection within "
                             f"{sock.gettimeout()}s") from None
    assert data == b"", f"expected EOF, got more bytes: {data[:64]!r}"


def expect_close(sock: socket.socket, code: int | None, reply: bool = True) -> Frame:
    """Read until the server's Close, check its code, optionally answer it, then require EOF."""
    f, before = recv_close(sock)
    assert f.fin, "server Close frame without FIN"
    assert f.close_code == code, (f"expected Close {code}, got {f.close_code} "
                                  f"(payload {f.payload!r}); frames before: {summarize(before)}")
    if f.payload[2:]:
        f.payload[2:].decode("utf-8")  # a close reason must itself be valid UTF-8
    if reply:
        try:
            send_frame(sock, OP_CLOSE, f.payload[:2])
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert_eof(sock)
    sock.close()  # our FIN, so the server need not wait for it
    return f


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def recv_message(sock: socket.socket) -> tuple[int, bytes, list[Frame]]:
    """Read one whole data message (possibly fragmented); pongs are returned separately.
    Returns (opcode, payload, pongs)."""
    opcode = None
    data = bytearray()
    pongs = []
    while True:
        f = recv_frame(sock)
        if f.opcode == OP_PONG:
            pongs.append(f)
            continue
        assert f.opcode != OP_CLOSE, f"unexpected Close {f.close_code} {f.payload[2:]!r}"
        assert f.opcode != OP_PING, "server sent an unexpected ping"
        assert f.rsv == 0, f"server frame with RSV bits {f.rsv}"
        if opcode is None:
            assert f.opcode in (OP_TEXT, OP_BINARY), f"message starts with opcode {f.opcode}"
            opcode = f.opcode
        else:
            assert f.opcode == OP_CONT, f"expected continuation, got opcode {f.opcode}"
        data += f.payload
        if f.fin:
            return opcode, bytes(data), pongs
