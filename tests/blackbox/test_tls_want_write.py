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
import subprocess

import pytest

from conftest import (SANITIZER_PATTERNS, WRAPPER, free_port, raw_upgrade, require_binary,
                      wait_accepting)
from daemon_helpers import echo_once
from test_tls import certs, client_context  # noqa: F401 (fixture)

SHIM = pathlib.Path(__file__).parent / "shims" / "eagain_handshake_write.c"
# One: a fake EAGAIN leaves the socket writable, so after the retry no new edge would report
# it (epoll is edge-triggered); a real EAGAIN means a full buffer, whose draining is an edge.
REFUSALS = 1


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
