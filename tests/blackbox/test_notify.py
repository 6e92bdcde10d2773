"""systemd readiness (sd_notify protocol, no libsystemd): with $NOTIFY_SOCKET set, the main
process sends READY=1 and MAINPID= once its listener accepts connections, and STOPPING=1 on
SIGTERM. The test plays the service manager with its own datagram socket and checks, as
systemd's NotifyAccess=main does, that every message comes from the main process."""

import os
import signal
import socket
import struct

import pytest

from conftest import IO_TIMEOUT
from daemon_helpers import daemon, echo_once, run_to_exit, tcp_client  # noqa: F401 (fixture)


class Manager:
    """A listening AF_UNIX datagram socket that records each message with its sender."""

    def __init__(self, address: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        # "@name" is the abstract namespace: a leading NUL byte in the address.
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.address = address

    def recv(self, timeout: float = IO_TIMEOUT) -> tuple[dict[str, str], int]:
        """One message as {key: value} and the sender's pid."""
        self.sock.settimeout(timeout)
        data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
        return fields, pid

    def assert_silent(self, timeout: float) -> None:
        with pytest.raises(TimeoutError):
            fields, pid = self.recv(timeout)
            raise AssertionError(f"unexpected notification {fields} from pid {pid}")

    def close(self):
        self.sock.close()


@pytest.fixture(params=["path", "abstract"])
def manager(request, tmp_path):
    if request.param == "path":
        m = Manager(str(tmp_path / "notify"))
    else:
        m = Manager(f"@websock-test-{os.getpid()}-{os.urandom(4).hex()}")
    yield m
    m.close()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ready_once_listening_then_stopping_on_sigterm(daemon, manager, workers):
    d = daemon("--bind", "127.0.0.1", "--workers", workers,
               env={"NOTIFY_SOCKET": manager.address}, wait=False)
    fields, sender = manager.recv()
    # READY=1 means "accepting now": connect at once, no retry, must succeed and echo.
    client = tcp_client(d.port)
    assert fields.get("READY") == "1", fields
    assert fields.get("MAINPID") == str(d.pid), fields
    assert sender == d.pid, f"READY=1 sent by pid {sender}, not the main process {d.pid}"
    manager.assert_silent(0.3)  # nothing from the workers

    d.proc.send_signal(signal.SIGTERM)
    fields, sender = manager.recv()
    assert fields == {"STOPPING": "1"}, fields
    assert sender == d.pid
    client.close()
    assert d.proc.wait(timeout=10) == 0
    manager.assert_silent(0.1)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_no_ready_when_the_port_cannot_be_opened(manager, workers):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        r = run_to_exit(["--bind", "127.0.0.1", "--workers", workers,
                         "--port", str(blocker.getsockname()[1])],
                        env={"NOTIFY_SOCKET": manager.address})
    assert r.returncode == 1, r
    manager.assert_silent(0.2)


def test_without_notify_socket_nothing_is_sent_and_nothing_breaks(daemon):
    d = daemon("--bind", "127.0.0.1")
    echo_once(tcp_client(d.port))
    assert "notify" not in d.stderr_text()
