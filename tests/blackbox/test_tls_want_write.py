"""SSL_read asking for a writable socket (SSL_ERROR_WANT_WRITE while reading): tls_receive
sets the connection's tls_rw bit, the connection then waits for writability, and on it reads
on (conn_on_event), which resumes OpenSSL's write. The server's handshake runs inside
SSL_read, so the path is reached when the socket refuses the server's first flight.

On loopback the kernel takes a whole flight (its send buffer starts at about 1 MiB there),
so an LD_PRELOAD shim (shims/eagain_handshake_write.c) makes the first writes of a TLS
handshake record fail with EAGAIN, as a closed receive window would. The server's debug line
"TLS read waits for the socket to be writable" shows the path was taken. (A TLS 1.3 KeyUpdate
with update_requested does not reach it with OpenSSL 3.0: its answer is sent by the next
SSL_write, not from SSL_read.)"""

import os
import pathlib
import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import (SANITIZER_PATTERNS, WRAPPER, free_port, raw_upgrade, require_binary,
                      wait_accepting)
from daemon_helpers import echo_once
from test_tls import (certs, client_context, loop_thread,  # noqa: F401 (fixtures)
                      tls_factory)

SHIM = pathlib.Path(__file__).parent / "shims" / "eagain_handshake_write.c"
# One: a fake EAGAIN leaves the socket writable, so after the retry no new edge would report
# it (epoll is edge-triggered); a real EAGAIN means a full buffer, whose draining is an edge.
REFUSALS = 1
MiB = 1024 * 1024


@pytest.fixture
def shim(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.fail("a C compiler is needed to build the LD_PRELOAD shim")
    out = tmp_path / "eagain_handshake_write.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(out), str(SHIM), "-ldl"],
                   check=True, capture_output=True)
    return out


def test_want_write_during_read_handshake_resumes_on_writability(shim, certs, tmp_path):
    binary = require_binary()
    port, tls_port = free_port(), free_port()
    env = dict(os.environ, LD_PRELOAD=str(shim), EAGAIN_HANDSHAKE_WRITES=str(REFUSALS))
    # an ASan build wants its runtime first among the libraries: the shim comes before it
    env["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                 "verify_asan_link_order=0"]))
    stderr_path = tmp_path / "websock.stderr"
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen([*WRAPPER, binary, "--port", str(port), "--bind", "127.0.0.1",
                                 "--log-level", "debug", "--tls-port", str(tls_port),
                                 "--tls-cert", str(certs[0]), "--tls-key", str(certs[1])],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, env=env)
    try:
        wait_accepting("127.0.0.1", tls_port, proc, stderr_path)
        with socket.create_connection(("127.0.0.1", tls_port), timeout=10) as raw:
            s = client_context().wrap_socket(raw)  # the handshake: its first write refused
            s.settimeout(10)
            raw_upgrade(s, host=f"127.0.0.1:{tls_port}")
            echo_once(s, b"after a refused flight")
            s.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    log = stderr_path.read_text(errors="replace")
    refused = log.count("shim: EAGAIN for a TLS handshake record write")
    waited = log.count("TLS read waits for the socket to be writable")
    print(f"\n{refused} handshake write refused; the server waited for writability "
          f"{waited} time(s); the handshake then completed and the echo came back")
    assert code == 0, log[-3000:]
    assert not any(p in log for p in SANITIZER_PATTERNS), log[-5000:]
    assert refused == REFUSALS, log[-3000:]  # the shim was in the path of the server's writes
    assert waited == REFUSALS, log[-3000:]  # the refusal went through tls_rw
    assert "TLS established" in log


# ---- a KeyUpdate asking for ours while our socket is full ----------------------------------

class LibsslClient:
    """A TLS 1.3 client over the system's libssl through ctypes: Python's ssl module cannot
    send a KeyUpdate. Records the handshake message types it receives (msg callback)."""

    KEY_UPDATE = 24  # the handshake message type

    def __init__(self, port: int, rcvbuf: int):
        import ctypes
        import ctypes.util
        c = ctypes
        lib = c.CDLL(ctypes.util.find_library("ssl") or "libssl.so.3")
        proto = {
            "TLS_client_method": (c.c_void_p, []),
            "SSL_CTX_new": (c.c_void_p, [c.c_void_p]),
            "SSL_CTX_free": (None, [c.c_void_p]),
            "SSL_CTX_set_msg_callback": (None, [c.c_void_p, c.c_void_p]),
            "SSL_new": (c.c_void_p, [c.c_void_p]),
            "SSL_free": (None, [c.c_void_p]),
            "SSL_set_fd": (c.c_int, [c.c_void_p, c.c_int]),
            "SSL_connect": (c.c_int, [c.c_void_p]),
            "SSL_write": (c.c_int, [c.c_void_p, c.c_char_p, c.c_int]),
            "SSL_read": (c.c_int, [c.c_void_p, c.c_void_p, c.c_int]),
            "SSL_key_update": (c.c_int, [c.c_void_p, c.c_int]),
            "SSL_get_error": (c.c_int, [c.c_void_p, c.c_int]),
        }
        for name, (res, args) in proto.items():
            f = getattr(lib, name)
            f.restype, f.argtypes = res, args
        self.lib = lib
        self.received: list[int] = []
        callback_type = c.CFUNCTYPE(None, c.c_int, c.c_int, c.c_int, c.c_void_p, c.c_size_t,
                                    c.c_void_p, c.c_void_p)

        def on_message(write_p, version, content_type, buf, length, ssl, arg):
            if not write_p and content_type == 22 and length:
                self.received.append(c.string_at(buf, 1)[0])
        self.callback = callback_type(on_message)  # kept alive as long as the client
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        # libssl reads and writes the descriptor itself: a blocking one (Python's timeouts
        # make it non-blocking), with the kernel's timeouts instead
        self.sock.settimeout(None)
        for opt in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
            self.sock.setsockopt(socket.SOL_SOCKET, opt, struct.pack("ll", 10, 0))
        self.ctx = lib.SSL_CTX_new(lib.TLS_client_method())
        lib.SSL_CTX_set_msg_callback(self.ctx, c.cast(self.callback, c.c_void_p))
        self.ssl = lib.SSL_new(self.ctx)
        lib.SSL_set_fd(self.ssl, self.sock.fileno())
        assert lib.SSL_connect(self.ssl) == 1, "TLS handshake failed"
        self.buf = c.create_string_buffer(1 << 16)

    def write(self, data: bytes) -> None:
        n = self.lib.SSL_write(self.ssl, data, len(data))
        assert n == len(data), f"SSL_write: {n}, error {self.lib.SSL_get_error(self.ssl, n)}"

    def read(self) -> bytes:
        n = self.lib.SSL_read(self.ssl, self.buf, len(self.buf))
        assert n > 0, f"SSL_read: {n}, error {self.lib.SSL_get_error(self.ssl, n)}"
        return self.buf.raw[:n]

    def request_key_update(self) -> None:
        assert self.lib.SSL_key_update(self.ssl, 1) == 1  # SSL_KEY_UPDATE_REQUESTED

    def close(self) -> None:
        self.lib.SSL_free(self.ssl)
        self.lib.SSL_CTX_free(self.ctx)
        self.sock.close()


def queues(local_port: int, remote_port: int) -> tuple[int, int]:
    """(unsent, unread) bytes of the server's socket from local_port to remote_port: its
    tx_queue and rx_queue in /proc/net/tcp."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if (int(cols[1].split(":")[1], 16) == local_port
                    and int(cols[2].split(":")[1], 16) == remote_port):
                tx, rx = cols[4].split(":")
                return int(tx, 16), int(rx, 16)
    return 0, 0


def wait_queues(pred, local_port, remote_port, what):
    deadline = time.monotonic() + 10
    while not pred(*queues(local_port, remote_port)):
        assert time.monotonic() < deadline, f"{what}: {queues(local_port, remote_port)}"
        time.sleep(0.02)
    return queues(local_port, remote_port)


def test_key_update_requested_while_the_socket_is_full(tls_factory):
    """A client that stopped reading has filled the server's socket (its echoes wait in the
    kernel and in the connection's output, below --output-high-water so reading goes on),
    then sends a KeyUpdate asking for the server's: the connection survives, the server's
    KeyUpdate reaches the client once it reads again, and every echo comes back in order.
    OpenSSL 3.0 sends that answer from the server's next SSL_write, after the pending
    output (an answer from inside SSL_read would meet the socket full: WANT_WRITE)."""
    from conftest import OP_BINARY, OP_TEXT, build_frame, upgrade_request
    from limits_helpers import parse_server_frames
    t = tls_factory("--output-high-water", "16M")
    client = LibsslClient(t.tls_port, rcvbuf=16 * 1024)
    try:
        client.write(upgrade_request(host=f"127.0.0.1:{t.tls_port}"))
        data = b""
        while b"\r\n\r\n" not in data:
            data += client.read()
        head, data = data.split(b"\r\n\r\n", 1)
        assert b" 101 " in head
        payloads = [os.urandom(16 * 1024) for _ in range(384)]  # 6 MiB: more than the socket
        for p in payloads:
            client.write(build_frame(OP_BINARY, p))
        local = client.sock.getsockname()[1]
        wait_queues(lambda tx, rx: tx >= MiB and rx == 0, t.tls_port, local,
                    "the server's socket never filled up, or it stopped reading")
        client.request_key_update()
        client.write(build_frame(OP_TEXT, b"after the key update"))  # carries the KeyUpdate
        # the server reads both (nothing left unread) while its socket stays full
        time.sleep(0.1)
        full, _ = wait_queues(lambda tx, rx: rx == 0, t.tls_port, local, "not read")
        assert full >= MiB, f"the socket drained ({full} bytes unsent): the test proves nothing"
        want = len(payloads) + 1
        frames = []
        while len(frames) < want:
            data += client.read()
            got, data = parse_server_frames(data)
            frames += got
        assert [f[2] for f in frames[:-1]] == payloads, "echo corrupted"
        assert frames[-1] == (OP_TEXT, True, b"after the key update")
        print(f"\nthe server's socket held {full} unsent bytes at the KeyUpdate; handshake "
              f"messages received after it: {client.received[-3:]}")
        assert LibsslClient.KEY_UPDATE in client.received, "the server sent no KeyUpdate"
    finally:
        client.close()
    assert "TLS error" not in t.srv.stderr_text()
