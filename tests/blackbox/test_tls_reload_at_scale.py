"""SIGHUP with 1,000 live wss:// connections (issue 19): none is dropped (each echoes before
and after the reload, and one keeps echoing in a loop across it), and the next handshake
presents the new certificate, checked by its serial number. test_tls.py has the 20-connection
version that also runs under valgrind; this one is marked slow (1,000 TLS handshakes under
valgrind take minutes)."""

import asyncio
import shutil
import signal
import threading
import time

import pytest

from conftest import IO_TIMEOUT
from limits_helpers import raise_nofile
from test_tls import (certs, client_context, loop_thread, make_cert,  # noqa: F401 (fixtures)
                      tls_factory, wait_for)

N = 1000


async def open_all(url: str, n: int, at_once: int = 50):
    """n wss:// clients, at most at_once handshakes in flight."""
    from websockets.asyncio.client import connect
    gate = asyncio.Semaphore(at_once)

    async def one():
        async with gate:
            return await connect(url, ssl=client_context(), compression=None,
                                 ping_interval=None, open_timeout=IO_TIMEOUT,
                                 close_timeout=IO_TIMEOUT)
    return await asyncio.gather(*(one() for _ in range(n)))


async def echo_each(conns, word: str):
    """Every connection sends a message of its own and gets it back (all in flight at once)."""
    async def one(i, ws):
        await ws.send(f"{word} {i}")
        got = await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
        assert got == f"{word} {i}", (i, got)
    await asyncio.gather(*(one(i, ws) for i, ws in enumerate(conns)))


async def echo_loop(ws, counter: list, stop: threading.Event):
    """Echoes until stopped; counter[0] counts completed echoes (read from the test thread)."""
    while not stop.is_set():
        msg = f"loop {counter[0]}"
        await ws.send(msg)
        assert await asyncio.wait_for(ws.recv(), IO_TIMEOUT) == msg
        counter[0] += 1


def wait_count(counter, target, srv):
    wait_for(lambda: counter[0] >= target, f"the echo loop stalled at {counter[0]}", srv)


@pytest.mark.slow
def test_sighup_with_1000_live_wss_connections(tls_factory, certs, tmp_path):
    assert raise_nofile() >= N + 100
    live_cert, live_key = tmp_path / "live.crt", tmp_path / "live.key"
    shutil.copy(certs[0], live_cert)
    shutil.copy(certs[1], live_key)
    t = tls_factory("--access-log", "off", cert=live_cert, key=live_key)
    lt = t.lt
    assert t.serial() == 0x1111

    started = time.monotonic()
    conns = lt.run(open_all(t.url(), N), 120)
    opened = time.monotonic() - started
    lt.run(echo_each(conns, "before"), 60)

    counter, stop = [0], threading.Event()
    looping = asyncio.run_coroutine_threadsafe(echo_loop(conns[0], counter, stop), lt.loop)
    wait_count(counter, 20, t.srv)

    new_cert, new_key = make_cert(tmp_path, "second", 0x2222)
    shutil.copy(new_cert, live_cert)
    shutil.copy(new_key, live_key)
    at_signal = counter[0]
    signalled = time.monotonic()
    t.srv.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "serial 2222" in t.srv.stderr_text(), "no reload line", t.srv)
    reloaded = time.monotonic() - signalled
    at_reload = counter[0]
    assert t.serial() == 0x2222
    wait_count(counter, at_reload + 20, t.srv)  # the loop goes on after the reload
    stop.set()
    looping.result(IO_TIMEOUT)  # re-raises a failed echo of the loop

    dropped = [i for i, ws in enumerate(conns) if ws.close_code is not None]
    assert not dropped, f"{len(dropped)} connections closed by the reload: {dropped[:10]}"
    lt.run(echo_each(conns, "after"), 60)
    print(f"{N} wss:// connections opened in {opened:.2f} s; reload logged "
          f"{reloaded * 1000:.0f} ms after SIGHUP; the echo loop did {at_reload - at_signal} "
          f"echoes between the signal and the reload line and {counter[0]} in all")

    async def close_all():
        await asyncio.gather(*(ws.close() for ws in conns))
    lt.run(close_all(), 60)
    assert all(ws.close_code == 1000 for ws in conns)
