#!/usr/bin/env python3
"""Check that each benchmark peer really echoes: same bytes, same type, same order.

    build/venv/bin/python bench/peers/check.py [NAME ...] [--port N]

NAME is one or more of lws, lws-ev, rust, go, node (default: all). Each peer is started with
run.sh on a free loopback port (or --port), checked, then stopped. Needs the `websockets`
package (build/venv has it). Cases, each on its own connection:

- text and binary messages of 0 B, 20 B, 16 KiB, 1 MiB and 16 MiB, one at a time;
- pipelining: 100 messages sent back to back before reading any echo (mixed types and
  sizes, 20 B to 256 KiB), then 1000 x 20 B, then 32 x 1 MiB (enough to make a peer with
  flow control stop reading for a while); echoes compared in order;
- fragmented messages (text and binary, several continuation frames, including a 20 MiB
  one), which the peer must reassemble or pass through and still echo whole;
- a ping, which must be answered with a pong, between data messages;
- the closing handshake, which must complete with code 1000;
- the size limit: exactly 64 MiB is echoed, 64 MiB + 1 is not (the peer closes; the close
  code it sent, 1009 normally, is printed).

A peer passes when every case passed and it printed nothing. Exit status 0 when all passed. The last line reads 'N passed, N failed'.
"""

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = ["lws", "lws-ev", "rust", "go", "node"]
MAX_SIZE = 64 << 20
SIZES = [0, 20, 16 << 10, 1 << 20, 16 << 20]
TIMEOUT = 60.0
LIMIT_CODES = {}  # url -> close code the peer sent when refusing 64 MiB + 1

rng = random.Random(6455)


def binary_payload(n):
    return rng.randbytes(n)


def text_payload(n):
    """Exactly n bytes of UTF-8, with 1- to 4-byte characters mixed in."""
    pool = "abcdefghijklmnopqrstuvwxyz0123456789 éß€✓😀"
    parts, size = [], 0
    while size < n:
        c = rng.choice(pool)
        b = len(c.encode())
        if size + b > n:
            c, b = "x", 1
        parts.append(c)
        size += b
    s = "".join(parts)
    assert len(s.encode()) == n
    return s


def describe(v):
    kind = "text" if isinstance(v, str) else "binary"
    return f"{kind} {len(v.encode()) if isinstance(v, str) else len(v)} B"


def same(sent, got):
    return type(sent) is type(got) and sent == got


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, deadline=15.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def ws_connect(url):
    return connect(url, compression=None, max_size=MAX_SIZE + 1, ping_interval=None,
                   open_timeout=10, close_timeout=10, max_queue=None)


async def case_single(url, payload):
    async with ws_connect(url) as ws:
        await ws.send(payload)
        got = await asyncio.wait_for(ws.recv(), TIMEOUT)
        if not same(payload, got):
            return f"echo differs: sent {describe(payload)}, got {describe(got)}"
    return None


async def case_pipelined(url, count, sizes):
    msgs = []
    for i in range(count):
        n = sizes[i % len(sizes)]
        msgs.append(text_payload(n) if i % 3 == 0 else binary_payload(n))
    async with ws_connect(url) as ws:
        # send every message before reading anything back
        for m in msgs:
            await ws.send(m)
        for i, m in enumerate(msgs):
            got = await asyncio.wait_for(ws.recv(), TIMEOUT)
            if not same(m, got):
                return f"message {i} of {count}: sent {describe(m)}, got {describe(got)}"
    return None


async def case_fragmented(url):
    cases = [
        [text_payload(n) for n in (5, 0, 300, 70000)],
        [binary_payload(n) for n in (1, 65536, 0, 1000)],
        [binary_payload(1 << 20) for _ in range(20)],  # 20 MiB in 20 frames
    ]
    async with ws_connect(url) as ws:
        for frags in cases:
            whole = "".join(frags) if isinstance(frags[0], str) else b"".join(frags)
            await ws.send(frags)  # an iterable goes out as one fragmented message
            got = await asyncio.wait_for(ws.recv(), TIMEOUT)
            if not same(whole, got):
                return (f"{len(frags)} fragments, {describe(whole)} in all: "
                        f"got {describe(got)}")
    return None


async def case_ping(url):
    async with ws_connect(url) as ws:
        await ws.send("before")
        pong = await ws.ping(b"ping-data")
        await ws.send(b"after")
        try:
            await asyncio.wait_for(pong, TIMEOUT)
        except asyncio.TimeoutError:
            return "no pong"
        for want in ("before", b"after"):
            got = await asyncio.wait_for(ws.recv(), TIMEOUT)
            if not same(want, got):
                return f"around a ping: wanted {want!r}, got {got!r}"
    return None


async def case_close(url):
    ws = await ws_connect(url)
    await ws.send(b"x" * 100)
    got = await asyncio.wait_for(ws.recv(), TIMEOUT)
    if got != b"x" * 100:
        return "echo before close differs"
    await ws.close(1000, "bye")
    code = ws.close_code
    if code != 1000:
        return f"close handshake: peer answered code {code}"
    return None


async def case_limit(url):
    """Exactly 64 MiB is echoed; 64 MiB + 1 is refused (the connection closes, no echo)."""
    payload = binary_payload(MAX_SIZE)
    async with ws_connect(url) as ws:
        await ws.send(payload)
        got = await asyncio.wait_for(ws.recv(), TIMEOUT)
        if not same(payload, got):
            return f"64 MiB: got {describe(got)}"
    del payload, got
    ws = await ws_connect(url)
    try:
        await ws.send(bytes(MAX_SIZE + 1))
        await asyncio.wait_for(ws.recv(), TIMEOUT)
        return "a message of 64 MiB + 1 was echoed"
    except ConnectionClosed as e:
        LIMIT_CODES[url] = e.rcvd.code if e.rcvd else None
    except (OSError, asyncio.TimeoutError) as e:
        LIMIT_CODES[url] = type(e).__name__
    finally:
        if not ws.transport.is_closing():
            ws.transport.abort()
    return None


async def check_peer(url):
    cases = []
    for kind in ("text", "binary"):
        for n in SIZES:
            payload = text_payload(n) if kind == "text" else binary_payload(n)
            cases.append((f"{kind} {n} B", case_single(url, payload)))
    mixed = [20, 125, 126, 1000, 16 << 10, 65535, 65536, 256 << 10]
    cases.append(("100 pipelined", case_pipelined(url, 100, mixed)))
    cases.append(("1000 pipelined 20 B", case_pipelined(url, 1000, [20])))
    cases.append(("32 pipelined 1 MiB", case_pipelined(url, 32, [1 << 20])))
    cases.append(("fragmented", case_fragmented(url)))
    cases.append(("ping", case_ping(url)))
    cases.append(("close", case_close(url)))
    cases.append(("64 MiB limit", case_limit(url)))
    results = []
    for label, coro in cases:
        t0 = time.monotonic()
        try:
            err = await asyncio.wait_for(coro, 4 * TIMEOUT)
        except Exception as e:  # noqa: BLE001 - any failure is a failed case
            err = f"{type(e).__name__}: {e}"
        results.append((label, err, time.monotonic() - t0))
    return results


def run_peer(name, port):
    """Start a peer with run.sh; returns the process (its stderr goes to a temp file)."""
    log = open(os.path.join("/tmp", f"peer-{name}-{port}.log"), "w+b")
    proc = subprocess.Popen([os.path.join(HERE, "run.sh"), name, str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    proc.log = log
    return proc


def stop_peer(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.log.seek(0)
    return proc.log.read().decode(errors="replace")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", default=PEERS, metavar="NAME")
    ap.add_argument("--port", type=int, default=0, help="port to use (default: a free one)")
    args = ap.parse_args()
    for n in args.names:
        if n not in PEERS:
            ap.error(f"unknown peer {n!r}; choose from {', '.join(PEERS)}")

    passed = failed = 0
    for name in args.names:
        port = args.port or free_port()
        proc = run_peer(name, port)
        if not wait_listening(port, proc):
            out = stop_peer(proc)
            print(f"{name}: did not start on port {port}: {out.strip()[:500]}")
            failed += 1
            continue
        t0 = time.monotonic()
        results = asyncio.run(check_peer(f"ws://127.0.0.1:{port}/ws"))
        alive = proc.poll() is None
        out = stop_peer(proc)
        bad = [(label, err) for label, err, _ in results if err]
        url = f"ws://127.0.0.1:{port}/ws"
        print(f"{name}: {len(results) - len(bad)}/{len(results)} cases ok "
              f"in {time.monotonic() - t0:.1f} s; 64 MiB + 1 refused with close code "
              f"{LIMIT_CODES.get(url)}" + ("" if alive else " (peer died!)"))
        for label, err in bad:
            print(f"  FAIL {label}: {err}")
        if out.strip():
            print(f"  peer printed: {out.strip()[:500]!r}")
        if bad or not alive or out.strip():
            failed += 1
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
