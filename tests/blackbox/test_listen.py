"""Where websock listens: a Unix domain socket (--unix), IPv6 (--bind ::1) and the default
dual-stack listener that takes IPv4 and IPv6 clients on one socket."""

import os
import socket
import stat

import pytest

from conftest import IO_TIMEOUT, raw_upgrade, run_cli
from daemon_helpers import (daemon, echo_once, has_ipv6_loopback,  # noqa: F401 (fixture)
                            run_to_exit, tcp_client)


def unix_client(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(IO_TIMEOUT)
    s.connect(path)
    raw_upgrade(s, host="localhost")
    return s


def test_unix_socket_upgrades_and_echoes_and_is_removed_at_exit(daemon, tmp_path):
    path = str(tmp_path / "websock.sock")
    d = daemon("--unix", path, tcp=False, unix=path)
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    s = unix_client(path)
    echo_once(s, b"over a Unix socket")

    from websockets.sync.client import unix_connect
    with unix_connect(path, uri="ws://localhost/ws", open_timeout=IO_TIMEOUT) as ws:
        ws.send("library client")
        assert ws.recv(timeout=IO_TIMEOUT) == "library client"
    assert "unix fd=" in d.stderr_text(), "peers on a Unix socket are logged as such"
    s.close()
    assert d.terminate() == 0
    assert not os.path.exists(path), "the socket file was left behind"


def test_a_stale_socket_file_is_replaced(daemon, tmp_path):
    path = str(tmp_path / "websock.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(path)  # a server that died without removing its socket file
    assert os.path.exists(path)
    d = daemon("--unix", path, tcp=False, unix=path)
    echo_once(unix_client(path))
    assert d.terminate() == 0


def test_a_live_socket_is_not_taken_over(tmp_path):
    path = str(tmp_path / "websock.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(path)
        other.listen()
        r = run_to_exit(["--unix", path])
        assert r.returncode == 1, r
        assert "in use" in r.stderr, r.stderr
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(path)  # still the other server's socket
            conn, _ = other.accept()
            conn.close()


def test_a_file_that_is_not_a_socket_is_left_alone(tmp_path):
    path = tmp_path / "websock.sock"
    path.write_text("precious")
    r = run_cli("--unix", str(path))
    assert r.returncode == 1, r
    assert "not a socket" in r.stderr, r.stderr
    assert path.read_text() == "precious"


def test_unix_socket_with_workers(daemon, tmp_path):
    path = str(tmp_path / "websock.sock")
    d = daemon("--unix", path, "--workers", "2", tcp=False, unix=path)
    d.wait_workers(2)
    clients = [unix_client(path) for _ in range(8)]
    for c in clients:
        echo_once(c)
        c.close()
    assert d.terminate() == 0
    assert not os.path.exists(path), "the supervisor must remove the socket file"


@pytest.mark.parametrize("args", [["--unix", "/tmp/x.sock", "--port", "9000"],
                                  ["--bind", "127.0.0.1", "--unix", "/tmp/x.sock"],
                                  ["--unix", ""], ["--unix", "/" + "x" * 110]],
                         ids=["with-port", "with-bind", "empty", "too-long"])
def test_bad_unix_flag_exits_2_naming_it(args):
    r = run_cli(*args)
    assert r.returncode == 2, r
    assert len(r.stderr.strip().splitlines()) == 1 and "--unix" in r.stderr, r.stderr


needs_ipv6 = pytest.mark.skipif(not has_ipv6_loopback(),
                                reason="this machine has no IPv6 loopback (::1)")


@needs_ipv6
def test_bind_ipv6_loopback_upgrades_and_echoes(websock_factory):
    srv = websock_factory(bind="::1")
    ws = srv.ws_connect()  # ws://[::1]:port/ws
    ws.send("over IPv6")
    assert ws.recv(timeout=IO_TIMEOUT) == "over IPv6"
    echo_once(tcp_client(srv.port, host="::1"))
    with pytest.raises(OSError):  # bound to ::1 only
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()


@needs_ipv6
def test_default_listener_is_dual_stack(daemon):
    d = daemon()  # no --bind
    for host in ("127.0.0.1", "::1"):
        c = tcp_client(d.port, host=host)
        echo_once(c, f"via {host}".encode())
        c.close()
