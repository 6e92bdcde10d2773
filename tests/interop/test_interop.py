"""Interop matrix: widely used WebSocket client libraries talk to the real websock binary.

Each library has a small client (tests/interop/<lib>/) that runs one scenario against a URL,
checks what the server sends back itself (echo type and bytes, pong payload, close code) and
prints "PASS scenario" or "FAIL scenario: why". Scenarios (the same payloads in every client):

- text: a UTF-8 text message with 2-, 3- and 4-byte code points comes back as the same text;
- binary: the 256 byte values come back as the same binary message;
- fragmented: a text message sent as three frames (text + two continuations) comes back as
  the reassembled message;
- ping: a Ping with a binary payload is answered by a Pong with that payload;
- close: a Close with code 4001 and a reason is answered by a Close with code 4001;
- deflate: with the library's permessage-deflate on, the extension is negotiated, and a
  repetitive text message and a repetitive binary message come back intact; the server's
  /metrics then shows both messages arrived compressed and both echoes left compressed.

Every scenario except close ends with a Close 1000 that must be answered with 1000. Each test
starts its own server on a free port; at teardown it must exit 0 on SIGTERM with no error-level
log line (tests/blackbox/conftest.py).

Every scenario runs over ws:// and over wss:// (websock's --tls-port). Over wss:// the client
gets --ca with a throwaway test CA and verifies the server's certificate as its library does by
default (chain, host name 127.0.0.1); the server's /metrics must then count exactly one
completed TLS handshake and no failed one, so a client that fell back to plain TCP, or opened
more connections than the scenario, fails.
"""

from __future__ import annotations

import subprocess
import urllib.request

import pytest

from .interop_clients import LIBRARIES, SCENARIOS, TRANSPORTS, UNSUPPORTED, client_command

CLIENT_TIMEOUT = 30.0  # the clients give up on any single read after 5 s

# The deflate scenario's two messages, the same in every client (tests/interop/README.md).
DEFLATE_BYTES = len(("interop deflate: h\u00e9llo w\u00f6rld \u20ac \U0001F600 " * 64)
                    .encode()) + 256 * 16


def counters(srv) -> dict[str, float]:
    """The server's permessage-deflate counters (negotiated, and in/out compressed/plain) and
    TLS handshake counters (tls, tls_failed)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    singles = {"websock_deflate_negotiated_total": "negotiated",
               "websock_tls_handshakes_total": "tls",
               "websock_tls_handshake_failures_total": "tls_failed"}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in singles:
            out[singles[name]] = float(value)
        elif line.startswith("websock_deflate_bytes_total{"):
            labels, value = line[len("websock_deflate_bytes_total{"):].split("} ")
            d = dict(kv.split("=") for kv in labels.split(","))
            out[f"{d['direction'].strip(chr(34))}/{d['form'].strip(chr(34))}"] = float(value)
    return out


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("lib", LIBRARIES)
def test_interop(start_server, test_certs, lib, transport, scenario):
    if (lib, scenario) in UNSUPPORTED:
        pytest.skip(UNSUPPORTED[(lib, scenario)])
    srv, url = start_server(transport)
    ca = ["--ca", str(test_certs.ca)] if transport == "wss" else []
    cmd = [*client_command(lib), *ca, url, scenario]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT,
                          stdin=subprocess.DEVNULL)
    detail = (f"{lib} client exited {proc.returncode}\nstdout:\n{proc.stdout}"
              f"stderr:\n{proc.stderr[-3000:]}")
    assert proc.stdout.splitlines() == [f"PASS {scenario}"], detail
    assert proc.returncode == 0, detail
    got = counters(srv)
    assert (got["tls"], got["tls_failed"]) == ((1, 0) if transport == "wss" else (0, 0)), got
    if scenario == "deflate":
        assert got["negotiated"] == 1, got
        assert got["in/plain"] == got["out/plain"] == DEFLATE_BYTES, \
            f"not every message went compressed both ways: {got}"
        assert 0 < got["in/compressed"] < DEFLATE_BYTES / 4, got
        assert 0 < got["out/compressed"] < DEFLATE_BYTES / 4, got
