"""Fair under attack: clients that park partial frames fill the global buffer cap
(--max-buffered), and a well-behaved client beside them must keep its echo and its keep-alive
(design.md §4, §5).

Each attacker sends 60,000 bytes of a 65,000-byte binary frame and then nothing: the server
holds the partial frame to echo it whole (it is under --coalesce-max). Once the parked bytes
pass the cap, the cap may stop the server from growing, but it must not stop it from reading a
client that merely sends a frame in two writes, nor let an idle deadline fire on a client the
server itself stopped reading.

Run with ``WEBSOCK_DISABLE_LIMITS=--max-buffered`` to see the first test pass trivially (no
cap) and check the memory assertion is what binds: the parked bytes then exceed it.
"""

import os
import socket
import time

from conftest import OP_BINARY, OP_PING, OP_PONG, build_frame, raw_upgrade, recv_frame
from limits_helpers import binary_is_sanitized, limit_flags

FRAME_LEN = 65_000
PARKED = 60_000


def park_partial_frames(srv, n: int) -> list[socket.socket]:
    """n upgraded clients, each having sent PARKED bytes of a FRAME_LEN-byte frame."""
    attackers = []
    frame = build_frame(OP_BINARY, os.urandom(FRAME_LEN))
    head = frame[:len(frame) - (FRAME_LEN - PARKED)]
    for _ in range(n):
        s = srv.upgraded()
        s.sendall(head)
        attackers.append(s)
    return attackers


def victim_echo(sock: socket.socket, size: int, gap: float) -> tuple[float, bytes, bytes]:
    """Send one binary message of size bytes as one frame in two writes gap seconds apart;
    return (seconds from the second write to the whole echo, the echo, the payload). The echo
    may come back as one frame or as fragments."""
    payload = os.urandom(size)
    frame = build_frame(OP_BINARY, payload)
    half = len(frame) // 2
    sock.sendall(frame[:half])
    time.sleep(gap)
    sock.sendall(frame[half:])
    t0 = time.monotonic()
    got = bytearray()
    first = True
    while True:
        f = recv_frame(sock)
        if f.opcode == OP_PING:  # keep-alive: answer it, as any client does
            sock.sendall(build_frame(OP_PONG, f.payload))
            continue
        assert f.opcode == (OP_BINARY if first else 0), f"unexpected frame {f}"
        first = False
        got += f.payload
        if f.fin:
            break
    return time.monotonic() - t0, bytes(got), payload


def test_partial_frames_over_the_cap_do_not_stall_a_normal_client(websock_factory):
    """40 attackers park 60,000 bytes each (2.3 MiB) against --max-buffered 1M: a normal
    client's 40,000-byte frame, sent in two writes 0.1 s apart, is still echoed at once (the
    bound here is generous: before the fix it never came while the attackers stayed), and the
    server's memory stays bounded near the cap."""
    srv = websock_factory(*limit_flags("--max-buffered", "1M"))
    victim = srv.upgraded()
    victim.settimeout(3.0)
    latency, got, payload = victim_echo(victim, 40_000, 0.1)  # warm-up, before the attack
    assert got == payload
    idle_rss = srv.status()["VmRSS"]

    attackers = park_partial_frames(srv, 40)
    time.sleep(0.3)
    latencies = []
    for _ in range(5):
        latency, got, payload = victim_echo(victim, 40_000, 0.1)
        assert got == payload, "echo corrupted"
        latencies.append(latency)
    growth = srv.status()["VmRSS"] - idle_rss
    print(f"\n[parked frames] 40 attackers x {PARKED} B against --max-buffered 1M: victim echo "
          f"latency max {max(latencies) * 1000:.1f} ms, RSS growth {growth} KiB")
    if not binary_is_sanitized():
        # The cap (1 MiB) plus one partial frame per client that arrived before it filled,
        # plus allocator slack: far below the 2.3 MiB the attackers sent.
        assert growth < 2 * 1024, f"RSS grew {growth} KiB with --max-buffered 1M"
    assert srv.proc.poll() is None
    del attackers


def test_pings_keep_a_client_alive_while_attackers_hold_the_cap(websock_factory):
    """--max-buffered 256K --ping-interval 1000 --idle-timeout 3000 with 5 attackers parking
    60,000 bytes each (more than the cap): a victim that sends a 20,000-byte frame in two
    writes every 0.5 s and answers every ping keeps echoing for 5 s, past the idle timeout.
    Before the fix its second write and its pongs were no longer read, and it was closed with
    1001 "silent for 3000 ms"."""
    srv = websock_factory(*limit_flags("--max-buffered", "256K", "--ping-interval", "1000",
                                       "--idle-timeout", "3000"))
    victim = srv.upgraded()
    victim.settimeout(2.0)
    attackers = park_partial_frames(srv, 5)
    time.sleep(0.2)
    t0 = time.monotonic()
    latencies = []
    while time.monotonic() - t0 < 5.0:
        try:
            latency, got, payload = victim_echo(victim, 20_000, 0.05)
        except socket.timeout:
            raise AssertionError(f"no echo after {time.monotonic() - t0:.1f}s of the attack; "
                                 f"server log tail:\n{srv.stderr_text()[-1500:]}") from None
        assert got == payload
        latencies.append(latency)
        time.sleep(0.5)
    print(f"\n[keep-alive under the cap] {len(latencies)} echoes in 5 s, latency max "
          f"{max(latencies) * 1000:.1f} ms")
    me = f"127.0.0.1:{victim.getsockname()[1]} "
    assert not [line for line in srv.stderr_text().splitlines() if me in line and "silent" in line]
    del attackers
