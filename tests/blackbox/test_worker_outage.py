"""--workers: while any worker is alive, a new client is served, even when the kernel hashes it
to the SO_REUSEPORT socket of a worker that is dead (waiting out its restart back-off),
stopped (SIGSTOP) or could not be forked. Before, such clients waited in that socket's queue
until the worker came back (up to the 10 s back-off), and echo probes with a 2 s timeout
failed: 3 of 75 over a 10 s crash loop, 3 of 13 with a worker stopped, 2 of 7 with two
forks failing (each failure costs the probe loop 2 s, hence the small totals).

Each probe is a whole client: connect, upgrade, echo, close, with a per-probe timeout. The
tests only send signals between probes: a probe the killed worker had already accepted dies
with it, and that is not what is measured here; the connections queued for it are."""

import os
import signal
import socket
import time

import pytest

from conftest import WRAPPER, free_port, raw_upgrade, wait_accepting
from daemon_helpers import alive, daemon, echo_once  # noqa: F401 (fixture)
from test_tls import certs, client_context  # noqa: F401 (fixture)

PROBE_TIMEOUT = 2.0 if not WRAPPER else 15.0
PROBE_GAP = 0.02


def probe(port: int, tls: bool = False) -> float:
    """One echo probe (over wss:// with tls: the TLS handshake included); returns its latency
    in seconds, raises on failure."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=PROBE_TIMEOUT) as raw:
        s = client_context().wrap_socket(raw) if tls else raw
        s.settimeout(PROBE_TIMEOUT)
        raw_upgrade(s, host=f"127.0.0.1:{port}")
        echo_once(s, b"probe")
        s.close()
    return time.monotonic() - start


class Probes:
    def __init__(self, port: int, tls: bool = False):
        self.port, self.tls = port, tls
        self.latencies: list[float] = []
        self.failures: list[str] = []

    def run_one(self) -> None:
        try:
            self.latencies.append(probe(self.port, self.tls))
        except (OSError, AssertionError) as e:  # ssl.SSLError is an OSError
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


def tls_daemon(daemon, certs, *flags):
    """A daemon with a --tls-port beside its plain port; returns (daemon, TLS port)."""
    port = free_port()
    d = daemon("--tls-port", str(port), "--tls-cert", str(certs[0]), "--tls-key",
               str(certs[1]), *flags)
    wait_accepting("127.0.0.1", port, d.proc, d.stderr_path)
    return d, port


def test_no_wss_probe_fails_while_one_worker_is_stopped(daemon, certs):
    """The wss:// listener too: each worker has its own SO_REUSEPORT --tls-port socket, and
    the wss:// clients the kernel hashes to a stopped worker's are served by the other one."""
    d, port = tls_daemon(daemon, certs, "--workers", "2")
    stopped, _ = d.wait_workers(2)
    probes = Probes(port, tls=True)
    for _ in range(5):
        probes.run_one()
    os.kill(stopped, signal.SIGSTOP)
    try:
        end = time.monotonic() + 3
        while time.monotonic() < end:
            probes.run_one()
    finally:
        os.kill(stopped, signal.SIGCONT)
    print(f"\n{probes.report('wss://, one worker stopped for 3 s')}")
    assert not probes.failures, probes.report("wss://, one worker stopped")
    assert "took over" in d.stderr_text()
    assert alive(stopped)
    for _ in range(10):
        probes.run_one()
    assert not probes.failures, probes.report("wss://, after SIGCONT")


def test_no_wss_probe_fails_while_one_worker_is_dead(daemon, certs):
    """A worker SIGKILLed while the supervisor is stopped (so no replacement comes): its TLS
    socket stays open (the supervisor and the other worker hold it) with nobody accepting
    on it, and the wss:// clients that land there are served by the other worker."""
    d, port = tls_daemon(daemon, certs, "--workers", "2")
    dead, survivor = d.wait_workers(2)
    survivor_started = d.seen_workers[survivor]
    probes = Probes(port, tls=True)
    os.kill(d.pid, signal.SIGSTOP)
    try:
        os.kill(dead, signal.SIGKILL)
        end = time.monotonic() + 3
        while time.monotonic() < end:
            probes.run_one()
    finally:
        os.kill(d.pid, signal.SIGCONT)
    print(f"\n{probes.report('wss://, one worker dead for 3 s')}")
    assert alive(survivor, survivor_started), "the surviving worker died"
    assert not probes.failures, probes.report("wss://, one worker dead")
    d.wait_workers(2, exclude={dead})  # the supervisor forks its replacement once it runs
    for _ in range(10):
        probes.run_one()
    assert not probes.failures, probes.report("wss://, after the replacement")


PIDS_CGROUPS = "/sys/fs/cgroup/pids"


@pytest.fixture
def fork_limit():
    """A pids cgroup (v1) of its own whose pids.max is 1: a process moved into it can no
    longer fork. Skips where there is no writable pids hierarchy (not root, cgroup v2 only)."""
    path = f"{PIDS_CGROUPS}/websock-test-{os.getpid()}-{time.monotonic_ns()}"
    try:
        os.mkdir(path)
        with open(f"{path}/pids.max", "w") as f:
            f.write("1")
    except OSError as e:
        pytest.skip(f"no writable pids cgroup to make fork fail ({e})")

    class Limit:
        @staticmethod
        def confine(pid: int) -> None:
            with open(f"{path}/cgroup.procs", "w") as f:
                f.write(str(pid))

        @staticmethod
        def lift() -> None:
            """Lets it fork again (LeakSanitizer needs a thread to check at exit)."""
            with open(f"{path}/pids.max", "w") as f:
                f.write("max")

    yield Limit
    deadline = time.monotonic() + 10
    while True:
        try:
            os.rmdir(path)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_no_probe_fails_while_forks_of_new_workers_fail(fork_limit, daemon):
    """2 of 4 workers die and the supervisor cannot fork their replacements (it is confined to
    a pids cgroup that is full): it retries every 10 s, and meanwhile the two sockets without
    a worker must not swallow clients."""
    d = daemon("--workers", "4")
    workers = d.wait_workers(4)
    fork_limit.confine(d.pid)
    try:
        for p in workers[:2]:
            os.kill(p, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while d.stderr_text().count("cannot fork worker") < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert d.stderr_text().count("cannot fork worker") >= 2, d.stderr_text()[-2000:]
        probes = Probes(d.port)
        end = time.monotonic() + 3
        while time.monotonic() < end:
            probes.run_one()
        print(f"\n{probes.report('2 of 4 workers down, forks failing')}")
        assert sorted(d.workers()) == workers[2:], "a replacement was forked after all"
    finally:
        fork_limit.lift()  # the next retry is 10 s away: the test is over by then
    assert not probes.failures, probes.report("2 of 4 workers down, forks failing")
