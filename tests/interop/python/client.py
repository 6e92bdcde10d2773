"""Interop client on the Python `websockets` library (its asyncio API).

    python client.py [--ca FILE] URL SCENARIO...   (SCENARIO: text, binary, fragmented, ping,
                                                    close, deflate, all)

A wss:// URL is verified (certificate chain and host name) against the CA certificates in FILE
(PEM), or the system's when --ca is not given.

Prints one line per scenario, "PASS name" or "FAIL name: why", and exits 0 when every scenario
passed, 1 when one failed, 2 on a usage error. The payloads are the same in every interop
client (tests/interop/README.md).

Why asyncio and not websockets' threading API: that one reads the socket in a thread of its own
while the caller writes, and CPython's ssl module does not support one SSLSocket used from two
threads at once. Over wss:// with four clients running at once, about one connection in 200
lost its HTTP request (written while the reader thread was taking in the server's TLS 1.3
session tickets): a client-side handshake timeout, and in the server's log a connection whose
TLS handshake completed and then nothing came.
"""

from __future__ import annotations

import asyncio
import ssl
import sys

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Opcode

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
        self.pong_arrived = asyncio.Event()

    def process_event(self, event) -> None:
        if self.response is not None and event.opcode is Opcode.PONG:
            self.pongs.append(bytes(event.data))
            self.pong_arrived.set()
        super().process_event(event)


# The TLS context of wss:// URLs: certificate and host name checked, trusting --ca's CAs.
TLS: ssl.SSLContext | None = None


def open_connection(url: str, compression: str | None = None):
    return connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT, max_size=None,
                   compression=compression, create_connection=RecordingConnection,
                   ssl=TLS if url.startswith("wss:") else None)


async def expect_echo(ws, want) -> None:
    got = await asyncio.wait_for(ws.recv(), TIMEOUT)
    if type(got) is not type(want):
        raise Failure(f"echo is {type(got).__name__}, sent {type(want).__name__}")
    if got != want:
        raise Failure(f"echo {got!r} differs from {want!r}")


async def close_expecting(ws, code: int, reason: str = "") -> None:
    await ws.close(code, reason)
    if ws.close_code != code:  # the code of the Close the server sent back
        raise Failure(f"server answered Close {code} with {ws.close_code} "
                      f"(reason {ws.close_reason!r})")


async def scenario_text(url: str) -> None:
    async with open_connection(url) as ws:
        await ws.send(TEXT)
        await expect_echo(ws, TEXT)
        await close_expecting(ws, 1000)


async def scenario_binary(url: str) -> None:
    async with open_connection(url) as ws:
        await ws.send(BINARY)
        await expect_echo(ws, BINARY)
        await close_expecting(ws, 1000)


async def scenario_fragmented(url: str) -> None:
    async with open_connection(url) as ws:
        await ws.send(FRAGMENTS)  # an iterable is sent as one message, one frame per item
        await expect_echo(ws, "".join(FRAGMENTS))
        await close_expecting(ws, 1000)


async def scenario_ping(url: str) -> None:
    async with open_connection(url) as ws:
        matched = await ws.ping(PING)
        try:
            await asyncio.wait_for(ws.pong_arrived.wait(), TIMEOUT)
        except asyncio.TimeoutError:
            raise Failure(f"no Pong within {TIMEOUT} s") from None
        if ws.pongs[0] != PING:
            raise Failure(f"pong payload {ws.pongs[0]!r} differs from ping payload {PING!r}")
        try:
            await asyncio.wait_for(matched, TIMEOUT)
        except asyncio.TimeoutError:
            raise Failure("the library did not match the Pong to its Ping") from None
        await close_expecting(ws, 1000)


async def scenario_close(url: str) -> None:
    async with open_connection(url) as ws:
        await close_expecting(ws, CLOSE_CODE, CLOSE_REASON)


async def scenario_deflate(url: str) -> None:
    async with open_connection(url, compression="deflate") as ws:
        answer = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        if not answer.startswith("permessage-deflate"):
            raise Failure(f"permessage-deflate not negotiated (answer {answer!r})")
        await ws.send(DEFLATE_TEXT)
        await expect_echo(ws, DEFLATE_TEXT)
        await ws.send(DEFLATE_BINARY)
        await expect_echo(ws, DEFLATE_BINARY)
        await close_expecting(ws, 1000)


SCENARIOS = {
    "text": scenario_text,
    "binary": scenario_binary,
    "fragmented": scenario_fragmented,
    "ping": scenario_ping,
    "close": scenario_close,
    "deflate": scenario_deflate,
}


def main(argv: list[str]) -> int:
    global TLS
    if len(argv) == 2 and argv[1] == "--version":
        print(f"websockets {websockets.__version__}")
        return 0
    ca = None
    if len(argv) > 2 and argv[1] == "--ca":
        ca = argv[2]
        argv = argv[:1] + argv[3:]
    TLS = ssl.create_default_context(cafile=ca)
    names = argv[2:]
    if names == ["all"]:
        names = list(SCENARIOS)
    if not names or any(n not in SCENARIOS for n in names):
        print(f"usage: {argv[0]} [--ca FILE] URL SCENARIO... ({', '.join(SCENARIOS)} or all)",
              file=sys.stderr)
        return 2
    failed = False
    for name in names:
        try:
            asyncio.run(SCENARIOS[name](argv[1]))
            print(f"PASS {name}", flush=True)
        except Exception as e:  # any library error is this scenario's failure
            why = str(e) if isinstance(e, Failure) else f"{type(e).__name__}: {e}"
            print(f"FAIL {name}: {why}", flush=True)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
