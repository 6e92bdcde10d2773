"""Helpers for the tests of how operators run the daemon (test_workers.py, test_listen.py,
test_notify.py): start websock with exactly the flags a test gives (no implied --bind), find
its worker processes and the sockets each one holds in /proc."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest

from conftest import (IO_TIMEOUT, OP_TEXT, SANITIZER_PATTERNS, START_TIMEOUT, STOP_TIMEOUT,
                      WRAPPER, free_port, raw_upgrade, recv_message, require_binary,
                      send_frame, wait_accepting, wait_connectable)


class Daemon:
    """One websock process started by the ``daemon`` fixture."""

    def __init__(self, proc: subprocess.Popen, stderr_path: pathlib.Path, args: list[str],
                 port: int | None):
        self.proc = proc
        self.stderr_path = stderr_path
        self.args = args
        self.port = port
        self.expect_exit = 0      # exit status the teardown requires (None: any)
        self.seen_workers: dict[int, int] = {}  # pid -> start time, see same_process()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def workers(self) -> list[int]:
        pids = child_pids(self.pid)
        for p in pids:
            self.seen_workers.setdefault(p, start_time(p))
        return pids

    def wait_workers(self, n: int, timeout: float = START_TIMEOUT,
                     exclude: set[int] = frozenset()) -> list[int]:
        """Waits until n live workers exist (none of them in exclude) and returns them."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.workers()
            if len(pids) == n and not set(pids) & set(exclude):
                return sorted(pids)
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {n} workers (not {sorted(exclude)}), have "
                                     f"{pids}; stderr:\n{self.stderr_text()[-3000:]}")
            time.sleep(0.01)

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"websock did not exit within {timeout}s of SIGTERM; stderr:\n"
                        f"{self.stderr_text()[-3000:]}")


def child_pids(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is pid, from /proc/*/stat."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # the command name may hold spaces
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):  # field 4: parent pid
            out.append(int(entry))
    return out


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat from the state on (field 3), or None if pid is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()


def start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None  # field 22: start time in clock ticks


def alive(pid: int, started: int | None = None) -> bool:
    """True while pid exists and is not a zombie (and, given its start time, is still the
    same process, not a new one that reused the number)."""
    fields = _stat_fields(pid)
    if not fields or fields[0] in ("Z", "X"):
        return False
    return started is None or int(fields[19]) == started


def socket_inodes(pid: int) -> set[int]:
    out = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(int(link[8:-1]))
    return out


def established(port: int) -> dict[int, int]:
    """inode -> remote port of every ESTABLISHED TCP socket whose local port is port."""
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            local, remote, state, inode = cols[1], cols[2], cols[3], int(cols[9])
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                out[inode] = int(remote.rsplit(":", 1)[1], 16)
    return out


def client_ports(pid: int, port: int) -> set[int]:
    """Client-side ports of the established connections that process pid holds on port."""
    est = established(port)
    return {est[i] for i in socket_inodes(pid) & est.keys()}


def echo_once(sock: socket.socket, text: bytes = b"hello") -> None:
    send_frame(sock, OP_TEXT, text)
    assert recv_message(sock)[:2] == (OP_TEXT, text)


def tcp_client(port: int, host: str = "127.0.0.1", timeout: float = IO_TIMEOUT) -> socket.socket:
    """An upgraded raw WebSocket connection that has echoed one message."""
    s = socket.create_connection((host, port), timeout=timeout)
    s.settimeout(timeout)
    raw_upgrade(s, host=f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    echo_once(s)
    return s


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def run_to_exit(args: list[str], env: dict | None = None,
                timeout: float = 10.0) -> subprocess.CompletedProcess:
    """Runs websock where it must refuse to start; fails clearly (not with a timeout
    traceback) if it keeps running instead."""
    proc = subprocess.Popen([require_binary(), *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_environment(env))
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, err = proc.communicate(timeout=STOP_TIMEOUT)
        pytest.fail(f"websock {' '.join(args)} kept running instead of refusing to start; "
                    f"stderr:\n{err[-2000:]}", pytrace=False)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _environment(extra: dict | None) -> dict:
    """The test's environment, without a service manager's NOTIFY_SOCKET unless given."""
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    env.update(extra or {})
    return env


def _wait_unix(path: str, proc: subprocess.Popen, stderr_path) -> None:
    def connect():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(path)
    wait_connectable(connect, path, proc, stderr_path)


@pytest.fixture
def daemon(tmp_path):
    """Factory: ``daemon(*flags, tcp=True, connect_host="127.0.0.1", unix=None, env=None,
    wait=True)``.

    With ``tcp`` a free port is chosen and ``--port`` added (retried if the port was taken
    meanwhile); ``unix`` names the socket path to wait on instead. ``wait=False`` returns at
    once (the test waits its own way). At teardown the server gets SIGTERM and must exit with
    ``expect_exit`` (0 unless the test changes it) without sanitizer output, and every
    worker process ever seen must be gone."""
    started: list[Daemon] = []
    binary = require_binary()

    def start(*flags: str, tcp: bool = True, connect_host: str = "127.0.0.1",
              unix: str | None = None, env: dict | None = None, wait: bool = True,
              new_session: bool = False) -> Daemon:
        for attempt in range(3):
            port = free_port(connect_host) if tcp else None
            args = [*WRAPPER, binary, *(["--port", str(port)] if tcp else []),
                    "--log-level", "debug", *flags]
            stderr_path = tmp_path / f"daemon-{len(started)}-{attempt}.stderr"
            with open(stderr_path, "wb") as err:
                proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=err,
                                        env=_environment(env),
                                        start_new_session=new_session)
            d = Daemon(proc, stderr_path, args, port)
            started.append(d)
            if not wait:
                return d
            try:
                if unix:
                    _wait_unix(unix, proc, stderr_path)
                else:
                    wait_accepting(connect_host, port, proc, stderr_path)
                return d
            except RuntimeError:
                if tcp and proc.poll() == 1 and attempt < 2:  # port taken: another one
                    d.expect_exit = None
                    continue
                raise
        raise AssertionError("unreachable")

    yield start

    failures = []
    for d in started:
        try:
            if d.proc.poll() is None:
                d.workers()
            code = d.terminate()
            if d.expect_exit is not None:
                assert code == d.expect_exit, (f"websock exited with {code}, expected "
                                               f"{d.expect_exit}; stderr:\n"
                                               f"{d.stderr_text()[-3000:]}")
            text = d.stderr_text()
            for pat in SANITIZER_PATTERNS:
                assert pat not in text, f"sanitizer/crash output:\n{text[-5000:]}"
            deadline = time.monotonic() + STOP_TIMEOUT
            while (any(alive(p, t) for p, t in d.seen_workers.items())
                   and time.monotonic() < deadline):
                time.sleep(0.02)
            left = [p for p, t in d.seen_workers.items() if alive(p, t)]
            assert not left, f"worker processes {left} outlived the supervisor"
        except BaseException as e:
            failures.append(e)
        finally:
            for p, t in d.seen_workers.items():
                if alive(p, t):
                    os.kill(p, signal.SIGKILL)
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
    if failures:
        raise failures[0]
