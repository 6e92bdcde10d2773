"""Interop client on the Python `websockets` library (its threading API).

    python client.py URL SCENARIO...     (SCENARIO: text, binary, fragmented, ping, close,
                                          deflate, all)

Prints one line per scenario, "PASS name" or "FAIL name: why", and exits 0 when every scenario
passed, 1 when one failed, 2 on a usage error. The payloads are the same in every interop
client (tests/interop/README.md).
"""

from __future__ import annotations

import sys
import threading

import websockets
from websockets.frames import Opcode
from websockets.sync.client import ClientConnection, connect

TIMEOUT = 5.0
TEXT = "interop text: h\u00e9llo w\u00f6rld \u20ac \U0001F600"
BINARY = bytes(range(256))
FRAGMENTS = ["frag-1 \u00e9\u00e9|", "frag-2 \u20ac!|", "frag-3 \U0001F600|"]
PING = b"interop-ping\x00\xff\x80"
CLOSE_CODE = 4001
CLOSE_REASON = "interop-bye"
# The deflate scenario's payloads: repetitive, so that both sides compress them.
DEFLATE_TEXT = "interop deflate: h\u00e9llo w\u00f6rld \u20ac \U0001F600 " * 64
DEFLATE_BINARY = bytes(range(256)) * 16


class Failure(Exception):
    pass


class RecordingConnection(ClientConnection):
    """Keeps the payload of every Pong: the library itself only matches pongs to its pings."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pongs: list[bytes] = []
        self.pong_arrived = threading.Event()

    def process_event(self, event) -> None:
        if self.response is not None and event.opcode is Opcode.PONG:
            self.pongs.append(bytes(event.data))
            self.pong_arrived.set()
        super().process_event(event)


def open_connection(url: str, compression: str | None = None) -> RecordingConnection:
    return connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT, max_size=None,
                   compression=compression, create_connection=RecordingConnection)


def expect_echo(ws, want) -> None:
    got = ws.recv(timeout=TIMEOUT)
    if type(got) is not type(want):
        raise Failure(f"echo is {type(got).__name__}, sent {type(want).__name__}")
    if got != want:
        raise Failure(f"echo {got!r} differs from {want!r}")


def close_expecting(ws, code: int, reason: str = "") -> None:
    ws.close(code, reason)
    if ws.close_code != code:  # the code of the Close the server sent back
        raise Failure(f"server answered Close {code} with {ws.close_code} "
                      f"(reason {ws.close_reason!r})")


def scenario_text(url: str) -> None:
    with open_connection(url) as ws:
        ws.send(TEXT)
        expect_echo(ws, TEXT)
        close_expecting(ws, 1000)


def scenario_binary(url: str) -> None:
    with open_connection(url) as ws:
        ws.send(BINARY)
        expect_echo(ws, BINARY)
        close_expecting(ws, 1000)


def scenario_fragmented(url: str) -> None:
    with open_connection(url) as ws:
        ws.send(FRAGMENTS)  # an iterable is sent as one message, one frame per item
        expect_echo(ws, "".join(FRAGMENTS))
        close_expecting(ws, 1000)


def scenario_ping(url: str) -> None:
    with open_connection(url) as ws:
        matched = ws.ping(PING)
        if not ws.pong_arrived.wait(TIMEOUT):
            raise Failure(f"no Pong within {TIMEOUT} s")
        if ws.pongs[0] != PING:
            raise Failure(f"pong payload {ws.pongs[0]!r} differs from ping payload {PING!r}")
        if not matched.wait(TIMEOUT):
            raise Failure("the library did not match the Pong to its Ping")
        close_expecting(ws, 1000)


def scenario_close(url: str) -> None:
    with open_connection(url) as ws:
        close_expecting(ws, CLOSE_CODE, CLOSE_REASON)


def scenario_deflate(url: str) -> None:
    with open_connection(url, compression="deflate") as ws:
        answer = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        if not answer.startswith("permessage-deflate"):
            raise Failure(f"permessage-deflate not negotiated (answer {answer!r})")
        ws.send(DEFLATE_TEXT)
        expect_echo(ws, DEFLATE_TEXT)
        ws.send(DEFLATE_BINARY)
        expect_echo(ws, DEFLATE_BINARY)
        close_expecting(ws, 1000)


SCENARIOS = {
    "text": scenario_text,
    "binary": scenario_binary,
    "fragmented": scenario_fragmented,
    "ping": scenario_ping,
    "close": scenario_close,
    "deflate": scenario_deflate,
}


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[1] == "--version":
        print(f"websockets {websockets.__version__}")
        return 0
    names = argv[2:]
    if names == ["all"]:
        names = list(SCENARIOS)
    if not names or any(n not in SCENARIOS for n in names):
        print(f"usage: {argv[0]} URL SCENARIO... ({', '.join(SCENARIOS)} or all)",
              file=sys.stderr)
        return 2
    failed = False
    for name in names:
        try:
            SCENARIOS[name](argv[1])
            print(f"PASS {name}", flush=True)
        except Exception as e:  # any library error is this scenario's failure
            why = str(e) if isinstance(e, Failure) else f"{type(e).__name__}: {e}"
            print(f"FAIL {name}: {why}", flush=True)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
