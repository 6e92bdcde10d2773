"""systemd socket activation (LISTEN_PID/LISTEN_FDS, sd_listen_fds(3), without libsystemd).

The test plays the service manager: it creates the listening sockets itself, keeps them open
for the whole test, and starts websock with them at descriptors 3, 4, ..., LISTEN_FDS set and
LISTEN_PID naming websock's own pid (bash sets it to $$ just before it execs websock). Because
the test holds the sockets while one websock stops and the next starts, the kernel queues the
connections made in between, and a restart refuses none of them."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter

import pytest

from conftest import (IO_TIMEOUT, OP_CLOSE, OP_TEXT, SANITIZER_PATTERNS, START_TIMEOUT,
                      STOP_TIMEOUT, WRAPPER, close_payload, expect_close, finish_all, free_port,
                      parse_http_head, raw_upgrade, read_http_head, recv_frame, require_binary,
                      send_frame, upgrade_request)
from daemon_helpers import child_pids, echo_once, socket_inodes, tcp_client

BACKLOG = 4096  # what deploy/websock.socket asks for (Backlog=)


def listening_tcp(host: str = "127.0.0.1") -> socket.socket:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    s.listen(BACKLOG)
    return s


class Activated:
    """A websock process started with passed sockets, as systemd starts it."""

    def __init__(self, proc: subprocess.Popen, stderr_path, port: int | None):
        self.proc = proc
        self.stderr_path = stderr_path
        self.port = port

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, text: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no '{text}' in the log (exit status "
                                     f"{self.proc.poll()}):\n{self.stderr_text()[-3000:]}")
            time.sleep(0.01)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


@pytest.fixture
def activate(tmp_path):
    """Factory: ``activate(socks, *flags, listen_pid="self", env=None, names=None)`` starts
    websock with socks (sockets or open files) at descriptors 3, 4, ... and LISTEN_FDS set;
    LISTEN_PID is websock's own pid unless listen_pid gives another value. At teardown every
    process still running gets SIGTERM and must exit 0 without sanitizer output."""
    started: list[Activated] = []
    binary = require_binary()

    def start(socks, *flags: str, listen_pid: str = "self", env: dict | None = None,
              names: str | None = None, wait_ready: bool = True) -> Activated:
        # Copies above 100 first, so that moving them to 3, 4, ... cannot overwrite another.
        high = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 100) for s in socks]
        moves = " ".join(f"{3 + i}<&{fd}" for i, fd in enumerate(high))
        closes = " ".join(f"{fd}<&-" for fd in high)
        pid = "$$" if listen_pid == "self" else listen_pid
        script = f'exec {moves} {closes}; LISTEN_PID={pid} exec "$@"'
        environ = {k: v for k, v in os.environ.items()
                   if k not in ("NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")}
        environ["LISTEN_FDS"] = str(len(socks))
        if names is not None:
            environ["LISTEN_FDNAMES"] = names
        environ.update(env or {})
        stderr_path = tmp_path / f"activated-{len(started)}.stderr"
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen(["bash", "-c", script, "bash", *WRAPPER, binary,
                                     "--log-level", "debug", *flags],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err, env=environ, pass_fds=high)
        for fd in high:
            os.close(fd)
        port = None
        if socks and isinstance(socks[0], socket.socket) and socks[0].family != socket.AF_UNIX:
            port = socks[0].getsockname()[1]
        a = Activated(proc, stderr_path, port)
        started.append(a)
        if wait_ready:
            a.wait_log("running" if "--workers" in flags else "listening on")
            if "--workers" in flags:
                workers = int(flags[list(flags).index("--workers") + 1])
                deadline = time.monotonic() + START_TIMEOUT
                while a.stderr_text().count(" of %d running" % workers) < workers:
                    assert time.monotonic() < deadline, a.stderr_text()
                    time.sleep(0.01)
        return a

    yield start

    def finish(a: Activated) -> None:
        if a.proc.poll() is None:
            code = a.stop()
            assert code == 0, f"exit status {code}:\n{a.stderr_text()[-3000:]}"
        text = a.stderr_text()
        for pat in SANITIZER_PATTERNS:
            assert pat not in text, f"sanitizer/crash output:\n{text[-5000:]}"

    finish_all(started, finish)


# --------------------------------------------------------------------------------------------
# A steady connect loop across a restart
# --------------------------------------------------------------------------------------------

def one_attempt(port: int, text: bytes) -> str:
    """Connect, upgrade, echo one message, close. Returns "ok", "going away" (a Close 1001:
    the server is stopping, try again) or what went wrong: "refused", "reset", "dropped"
    (closed without an answer), "timeout", "http NNN", "close NNNN", "bad echo"."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT * 2)
    except ConnectionRefusedError:
        return "refused"
    except socket.timeout:
        return "timeout"
    try:
        s.settimeout(IO_TIMEOUT * 2)
        s.sendall(upgrade_request(host=f"127.0.0.1:{port}"))
        try:
            head = read_http_head(s)
        except EOFError:  # closed before a whole response head
            return "dropped"
        status = parse_http_head(head).status
        if status != 101:
            return f"http {status}"
        send_frame(s, OP_TEXT, text)
        f = recv_frame(s)
        if f.opcode == OP_CLOSE:
            return "going away" if f.close_code == 1001 else f"close {f.close_code}"
        if (f.opcode, f.payload) != (OP_TEXT, text):
            return "bad echo"
        send_frame(s, OP_CLOSE, close_payload(1000))
        while recv_frame(s).opcode != OP_CLOSE:
            pass
        return "ok"
    except ConnectionResetError:
        return "reset"
    except (BrokenPipeError, ConnectionAbortedError):
        return "reset"
    except socket.timeout:
        return "timeout"
    except EOFError:  # closed in the middle of the exchange
        return "dropped"
    finally:
        s.close()


class ConnectLoop:
    """Threads that each run attempts back to back; an attempt that did not echo is retried
    until it does (or 20 tries), so every connection the loop wants eventually echoes."""

    def __init__(self, port: int, threads: int = 3):
        self.port = port
        self.outcomes: Counter[str] = Counter()
        self.echoed = 0
        self.gave_up = 0
        self.max_tries = 0
        self.longest_ms = 0.0  # the slowest attempt: one that waited in the queue, a figure
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(threads)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def _run(self, i: int) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            tries = 0
            while True:
                tries += 1
                began = time.monotonic()
                outcome = one_attempt(self.port, f"t{i} m{n} try {tries}".encode())
                with self._lock:
                    self.outcomes[outcome] += 1
                    self.longest_ms = max(self.longest_ms, (time.monotonic() - began) * 1000)
                if outcome == "ok":
                    break
                if tries == 20:
                    with self._lock:
                        self.gave_up += 1
                    break
            with self._lock:
                self.echoed += outcome == "ok"
                self.max_tries = max(self.max_tries, tries)

    def wait_echoed(self, n: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.echoed < n:
            assert time.monotonic() < deadline, f"only {self.echoed} echoes: {self.outcomes}"
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_restart_under_a_steady_connect_loop_refuses_no_connection(activate, workers):
    sock = listening_tcp()
    port = sock.getsockname()[1]
    flags = ("--workers", workers) if workers != "1" else ()
    a = activate([sock], *flags)
    held = [tcp_client(port) for _ in range(3)]  # open on A: they must get Close 1001

    loop = ConnectLoop(port)
    loop.start()
    try:
        loop.wait_echoed(30)
        a.proc.send_signal(signal.SIGTERM)
        for s in held:
            expect_close(s, 1001)
        assert a.proc.wait(timeout=STOP_TIMEOUT) == 0, a.stderr_text()[-3000:]
        # What a service manager does between two processes (RestartSec=, exec, start-up):
        # the socket stays open in its hands and nobody accepts for a while.
        time.sleep(0.3)
        during_gap = loop.echoed
        b = activate([sock], *flags, wait_ready=False)
        loop.wait_echoed(during_gap + 30)
    finally:
        loop.stop()
    print(f"\nrestart with --workers {workers}: outcomes {dict(loop.outcomes)}, "
          f"max tries for one echo {loop.max_tries}, slowest attempt {loop.longest_ms:.0f} ms "
          f"(it waited in the queue through the restart)")
    failed = {k: v for k, v in loop.outcomes.items() if k not in ("ok", "going away")}
    assert not failed, (f"connections failed across the restart: {failed} (all outcomes "
                        f"{dict(loop.outcomes)});\nA:\n{a.stderr_text()[-2000:]}\nB:\n"
                        f"{b.stderr_text()[-2000:]}")
    assert loop.gave_up == 0
    assert "passed by the service manager" in b.stderr_text()
    assert b.stop() == 0


def test_connections_made_while_the_old_process_drains_wait_for_the_next_one(activate):
    sock = listening_tcp()
    port = sock.getsockname()[1]
    a = activate([sock])
    lingering = tcp_client(port)
    a.proc.send_signal(signal.SIGTERM)
    f = recv_frame(lingering)  # Close 1001; not answered, so A waits for the close timeout
    assert (f.opcode, f.close_code) == (OP_CLOSE, 1001)
    a.wait_log("shutting down")

    # A is still running, but it accepts nothing more: the connection waits in the queue.
    waiting = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    waiting.sendall(upgrade_request(host=f"127.0.0.1:{port}"))
    waiting.settimeout(0.5)
    with pytest.raises(socket.timeout):
        waiting.recv(1)
    assert a.proc.poll() is None, "A should still be waiting for the lingering client"
    assert a.proc.wait(timeout=STOP_TIMEOUT) == 0
    lingering.close()

    activate([sock])
    waiting.settimeout(IO_TIMEOUT)
    resp = parse_http_head(read_http_head(waiting))
    assert resp.status == 101, resp.raw_head
    echo_once(waiting, b"queued across the restart")
    waiting.close()


def test_a_request_accepted_before_sigterm_is_answered_then_closed_with_1001(activate):
    sock = listening_tcp()
    port = sock.getsockname()[1]
    a = activate([sock])
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    request = upgrade_request(host=f"127.0.0.1:{port}")
    s.sendall(request[:20])
    a.wait_log("accepted")
    a.proc.send_signal(signal.SIGTERM)
    a.wait_log("shutting down")
    s.sendall(request[20:])
    assert parse_http_head(read_http_head(s)).status == 101
    expect_close(s, 1001)
    assert a.proc.wait(timeout=STOP_TIMEOUT) == 0


# --------------------------------------------------------------------------------------------
# What websock takes, and what it refuses
# --------------------------------------------------------------------------------------------

def test_passed_socket_is_served_and_flags_naming_an_address_are_overridden(activate):
    sock = listening_tcp()
    port = sock.getsockname()[1]
    other = free_port()
    a = activate([sock], "--port", str(other), "--bind", "127.0.0.1", names="websock.socket")
    echo_once(tcp_client(port), b"over the passed socket")
    log = a.stderr_text()
    assert f"127.0.0.1:{port} (websock.socket)" in log, log
    assert f"ignoring --bind 127.0.0.1 --port {other}" in log, log
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", other), timeout=IO_TIMEOUT)


def test_several_passed_sockets_tcp_and_unix_are_all_served(activate, tmp_path):
    tcp = listening_tcp()
    path = str(tmp_path / "ws.sock")
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(path)
    unix.listen(BACKLOG)
    a = activate([tcp, unix], names="tcp:unix")
    echo_once(tcp_client(tcp.getsockname()[1]), b"tcp")
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.settimeout(IO_TIMEOUT)
    u.connect(path)
    raw_upgrade(u, host="localhost")
    echo_once(u, b"unix")
    u.close()
    assert f"unix:{path} (unix)" in a.stderr_text()
    assert a.stop() == 0
    assert os.path.exists(path), "websock removed a socket file the service manager owns"


def test_workers_share_the_passed_socket_and_a_dead_worker_is_replaced(activate):
    sock = listening_tcp()
    port = sock.getsockname()[1]
    a = activate([sock], "--workers", "2")
    inode = os.fstat(sock.fileno()).st_ino
    workers = child_pids(a.proc.pid)
    assert len(workers) == 2
    for w in workers:
        assert inode in socket_inodes(w), f"worker {w} does not hold the passed socket"
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        now = child_pids(a.proc.pid)
        if len(now) == 2 and workers[0] not in now:
            break
        assert time.monotonic() < deadline, a.stderr_text()[-2000:]
        time.sleep(0.01)
    new = (set(now) - set(workers)).pop()
    deadline = time.monotonic() + START_TIMEOUT
    while inode not in socket_inodes(new):
        assert time.monotonic() < deadline, a.stderr_text()[-2000:]
        time.sleep(0.01)
    for _ in range(20):  # both workers accept on the one socket; every client is served
        c = tcp_client(port)
        c.close()


def test_listen_pid_of_another_process_is_ignored(activate):
    sock = listening_tcp()
    port = free_port()
    a = activate([sock], "--bind", "127.0.0.1", "--port", str(port), listen_pid="1")
    a.wait_log("not this process")
    echo_once(tcp_client(port), b"bound by itself")
    # The passed socket is not served: a client there is queued, never answered.
    c = socket.create_connection(("127.0.0.1", sock.getsockname()[1]), timeout=IO_TIMEOUT)
    c.sendall(upgrade_request())
    c.settimeout(0.3)
    with pytest.raises(socket.timeout):
        c.recv(1)


def _not_listening(kind: str, tmp_path):
    if kind == "file":
        return open(tmp_path / "plain-file", "w+")
    if kind == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        return s
    if kind == "bound, not listening":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        return s
    a, b = socket.socketpair()  # a connection, as Accept=yes would pass
    return a


@pytest.mark.parametrize("kind, reason", [
    ("file", "is not a socket but a regular file"),
    ("udp", "is not a stream socket"),
    ("bound, not listening", "is a stream socket that is not listening"),
    ("connected", "is a stream socket that is not listening"),
])
def test_a_passed_descriptor_that_is_not_a_listening_socket_is_an_error(activate, tmp_path,
                                                                       kind, reason):
    bad = _not_listening(kind, tmp_path)
    a = activate([listening_tcp(), bad], "--port", str(free_port()), wait_ready=False,
                 names="websock.socket:extra")
    try:
        code = a.proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"websock kept running with a bad descriptor 4 ({kind}):\n"
                    f"{a.stderr_text()[-2000:]}", pytrace=False)
    assert code != 0
    assert f"descriptor 4 (extra) {reason}" in a.stderr_text(), a.stderr_text()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_malformed_listen_fds_is_an_error(activate, workers):
    a = activate([listening_tcp()], "--workers", workers, "--port", str(free_port()),
                 env={"LISTEN_FDS": "1x"}, wait_ready=False)
    try:
        code = a.proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"websock kept running with LISTEN_FDS=1x:\n{a.stderr_text()[-2000:]}",
                    pytrace=False)
    assert code != 0
    assert "LISTEN_FDS='1x' is not a number of sockets" in a.stderr_text()
