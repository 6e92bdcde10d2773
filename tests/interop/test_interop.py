"""Interop matrix: widely used WebSocket client libraries talk to the real websock binary.

Each library has a small client (tests/interop/<lib>/) that runs one scenario against a URL,
checks what the server sends back itself (echo type and bytes, pong payload, close code) and
prints "PASS scenario" or "FAIL scenario: why". Scenarios (the same payloads in every client):

- text: a UTF-8 text message with 2-, 3- and 4-byte code points comes back as the same text;
- binary: the 256 byte values come back as the same binary message;
- fragmented: a text message sent as three frames (text + two continuations) comes back as
  the reassembled message;
- ping: a Ping with a binary payload is answered by a Pong with that payload;
- close: a Close with code 4001 and a reason is answered by a Close with code 4001.

Every scenario except close ends with a Close 1000 that must be answered with 1000. Each test
starts its own server on a free port; at teardown it must exit 0 on SIGTERM with no error-level
log line (tests/blackbox/conftest.py).
"""

from __future__ import annotations

import subprocess

import pytest

from .interop_clients import LIBRARIES, SCENARIOS, client_command

CLIENT_TIMEOUT = 30.0  # the clients give up on any single read after 5 s


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("lib", LIBRARIES)
def test_interop(websock, lib, scenario):
    cmd = [*client_command(lib), websock.url(), scenario]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT,
                          stdin=subprocess.DEVNULL)
    detail = (f"{lib} client exited {proc.returncode}\nstdout:\n{proc.stdout}"
              f"stderr:\n{proc.stderr[-3000:]}")
    assert proc.stdout.splitlines() == [f"PASS {scenario}"], detail
    assert proc.returncode == 0, detail
