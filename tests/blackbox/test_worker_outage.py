"""--workers: while any worker is alive, a new client is served, even when the kernel hashes it
to the SO_REUSEPORT socket of a worker that is dead (waiting out its restart back-off) or
stopped (SIGSTOP). Before, such clients waited in that socket's queue until the worker came
back (up to the 10 s back-off), and a steady loop of echo probes lost a third of them.

Each probe is a whole client: connect, upgrade, echo, close, with a per-probe timeout. The
tests only send signals between probes: a probe the killed worker had already accepted dies
with it, and that is not what is measured here; the connections queued for it are."""

import os
import signal
import socket
import time

from conftest import WRAPPER, raw_upgrade
from daemon_helpers import alive, daemon, echo_once  # noqa: F401 (fixture)

PROBE_TIMEOUT = 2.0 if not WRAPPER else 15.0
PROBE_GAP = 0.02


def probe(port: int) -> float:
    """One echo probe; returns its latency in seconds, raises on failure."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as s:
        s.settimeout(PROBE_TIMEOUT)
        raw_upgrade(s, host=f"127.0.0.1:{port}")
        echo_once(s, b"probe")
    return time.monotonic() - start


class Probes:
    def __init__(self, port: int):
        self.port = port
        self.latencies: list[float] = []
        self.failures: list[str] = []

    def run_one(self) -> None:
        try:
            self.latencies.append(probe(self.port))
        except (OSError, AssertionError) as e:
            self.failures.append(f"{type(e).__name__}: {e}")
        time.sleep(PROBE_GAP)

    def report(self, what: str) -> str:
        n = len(self.latencies) + len(self.failures)
        worst = max(self.latencies, default=0) * 1000
        slow = sum(1 for x in self.latencies if x > 0.05)
        return (f"{what}: {len(self.failures)} of {n} echo probes failed; latency max "
                f"{worst:.0f} ms, {slow} over 50 ms; failures: {self.failures[:3]}")


def test_no_probe_fails_while_one_worker_is_killed_again_and_again(daemon):
    """Worker slot 1 is SIGKILLed every 0.5 s for 10 s: it dies within a second of its start
    each time, so the supervisor backs off (100 ms, 200 ms, ... up to 10 s) and its socket has
    nobody behind it most of the time."""
    d = daemon("--workers", "2")
    victim, survivor = d.wait_workers(2)
    survivor_started = d.seen_workers[survivor]
    probes = Probes(d.port)
    kills = 0
    end = time.monotonic() + 10
    next_kill = 0.0
    while time.monotonic() < end:
        probes.run_one()
        if time.monotonic() >= next_kill:
            for p in d.workers():
                if p != survivor:
                    os.kill(p, signal.SIGKILL)
                    kills += 1
            next_kill = time.monotonic() + 0.5
    print(f"\n{probes.report(f'{kills} SIGKILLs in 10 s')}")
    assert alive(survivor, survivor_started), "the surviving worker died"
    assert kills >= 5, f"only {kills} kills: the victim was hardly ever running"
    assert not probes.failures, probes.report("worker crash loop")


def test_no_probe_fails_while_one_worker_is_stopped(daemon):
    """One of two workers is stopped (SIGSTOP) for 5 s, like a hung process: the clients the
    kernel hashes to its socket must be served by the other one."""
    d = daemon("--workers", "2")
    stopped, _ = d.wait_workers(2)
    probes = Probes(d.port)
    for _ in range(5):
        probes.run_one()
    os.kill(stopped, signal.SIGSTOP)
    try:
        end = time.monotonic() + 5
        while time.monotonic() < end:
            probes.run_one()
    finally:
        os.kill(stopped, signal.SIGCONT)
    print(f"\n{probes.report('one worker stopped for 5 s')}")
    assert not probes.failures, probes.report("one worker stopped")
    # Once it runs again it serves its own socket once more.
    assert alive(stopped)
    for _ in range(20):
        probes.run_one()
    assert not probes.failures, probes.report("after SIGCONT")
