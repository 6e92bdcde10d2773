"""Slowloris (design.md §5): 1,000 connections trickling their handshakes are all closed at the
handshake deadline, while a fresh client keeps completing upgrade + echo quickly.

Run with ``WEBSOCK_DISABLE_LIMITS=--handshake-timeout`` to see it fail (limits_helpers.py).
"""

import random
import selectors
import socket
import threading
import time

import pytest

from conftest import IO_TIMEOUT, OP_TEXT, raw_upgrade, recv_message, send_frame, upgrade_request
from limits_helpers import SLACK, limit_flags, raise_nofile

N = 1000
DEADLINE_S = 3.0
TRICKLE_S = 0.5


def probe_loop(srv, stop: threading.Event, latencies: list, errors: list) -> None:
    """A fresh client at a time: connect, upgrade, echo one message, close; record each
    round trip until stopped."""
    i = 0
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as s:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                raw_upgrade(s, host=f"127.0.0.1:{srv.port}")
                msg = f"probe {i}".encode()
                send_frame(s, OP_TEXT, msg)
                assert recv_message(s)[:2] == (OP_TEXT, msg)
            latencies.append(time.monotonic() - t0)
        except Exception as e:  # reported by the test
            errors.append(f"probe {i}: {type(e).__name__}: {e}")
            return
        i += 1
        stop.wait(0.05)


@pytest.mark.slow
def test_slowloris_1000_trickling_handshakes_closed_at_deadline(websock_factory):
    raise_nofile()
    srv = websock_factory(*limit_flags("--handshake-timeout", str(int(DEADLINE_S * 1000))))
    host = f"127.0.0.1:{srv.port}"
    # A request head that takes ~75 s at one byte per 0.5 s: never completes here.
    req = upgrade_request(host=host, extra="X-Slow: " + "s" * 100 + "\r\n")[:-2]

    stop = threading.Event()
    latencies, errors = [], []
    prober = threading.Thread(target=probe_loop, args=(srv, stop, latencies, errors),
                              daemon=True)
    prober.start()

    sel = selectors.DefaultSelector()
    conns = {}  # socket -> dict(connected, next, sent, closed, how)
    try:
        for _ in range(N):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT)
            now = time.monotonic()
            s.setblocking(False)
            conns[s] = {"connected": now, "next": now + random.uniform(0, TRICKLE_S),
                        "sent": 0, "closed": None, "how": None}
            sel.register(s, selectors.EVENT_READ)
        open_count = N
        give_up = time.monotonic() + DEADLINE_S + 1.0 + SLACK + 1.0
        while open_count and time.monotonic() < give_up:
            for key, _ in sel.select(0.01):
                s, c = key.fileobj, conns[key.fileobj]
                try:
                    data = s.recv(4096)
                    how = "eof" if not data else f"data {data[:40]!r}"
                except ConnectionResetError:
                    how = "reset"
                except BlockingIOError:
                    continue
                c["closed"], c["how"] = time.monotonic(), how
                sel.unregister(s)
                open_count -= 1
            now = time.monotonic()
            for s, c in conns.items():
                if c["closed"] is None and now >= c["next"]:
                    try:
                        s.send(req[c["sent"]:c["sent"] + 1])
                        c["sent"] += 1
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the read side reports it
                    except BlockingIOError:
                        pass
                    c["next"] += TRICKLE_S
    finally:
        stop.set()
        prober.join(IO_TIMEOUT + 1)
        sel.close()
        for s in conns:
            s.close()

    still_open = [c for c in conns.values() if c["closed"] is None]
    assert not still_open, (f"{len(still_open)} of {N} trickling connections were still open "
                            f"{DEADLINE_S + 2 + SLACK:.0f}s after connecting, with "
                            f"--handshake-timeout {int(DEADLINE_S * 1000)}")
    lifetimes = sorted(c["closed"] - c["connected"] for c in conns.values())
    early = [t for t in lifetimes if t < DEADLINE_S - 1.0]
    late = [t for t in lifetimes if t > DEADLINE_S + SLACK]
    unexpected = [c["how"] for c in conns.values() if c["how"] not in ("eof", "reset")]
    assert not unexpected, f"unexpected answers: {unexpected[:5]}"
    assert not early, f"{len(early)} closed before the deadline, e.g. after {early[0]:.2f}s"
    assert not late, f"{len(late)} closed more than 1 s after the deadline, " \
                     f"the latest after {late[-1]:.2f}s"
    assert not errors, f"the fresh client failed during the slowloris: {errors}"
    assert len(latencies) >= 20, f"only {len(latencies)} fresh-client round trips"
    worst = max(latencies)
    print(f"\n[slowloris] {N} closed after {lifetimes[0]:.2f}..{lifetimes[-1]:.2f}s "
          f"(median {lifetimes[N // 2]:.2f}s); {sum(c['sent'] for c in conns.values())} "
          f"bytes trickled; fresh client: {len(latencies)} upgrade+echo round trips, max "
          f"{worst * 1000:.1f} ms, median {sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms")
    assert worst < 0.1, f"a fresh upgrade + echo took {worst * 1000:.0f} ms during the " \
                        "slowloris"
