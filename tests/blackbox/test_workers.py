"""--workers N: a supervisor forks N single-threaded workers sharing the port (SO_REUSEPORT),
restarts the ones that die (test_worker_outage.py: no client waits for them meanwhile) (backing off when they keep dying at start), passes SIGTERM and
SIGINT on, and exits 0 once they all exited cleanly. --workers 1 does not fork."""

import os
import re
import signal
import socket
import time

import pytest

from conftest import WRAPPER, expect_close, run_cli
from daemon_helpers import (alive, client_ports, daemon, echo_once,  # noqa: F401 (fixture)
                            run_to_exit, tcp_client)

# Liveness bound for a restart (the figure itself is printed): generous, and more so under
# valgrind, where a fresh worker needs a few seconds just to start.
RESTART_BOUND = 5.0 if not WRAPPER else 30.0


def test_workers_1_serves_in_one_process_without_forking(daemon):
    d = daemon("--workers", "1")
    clients = [tcp_client(d.port) for _ in range(4)]
    assert d.workers() == [], "--workers 1 must not fork"
    assert len(client_ports(d.pid, d.port)) == 4, "the single process holds every connection"
    for c in clients:
        c.close()
    assert "supervisor" not in d.stderr_text()


def test_connections_are_spread_over_both_workers(daemon):
    d = daemon("--workers", "2")
    workers = d.wait_workers(2)
    clients = [tcp_client(d.port) for _ in range(40)]  # each upgraded and echoed once
    counts = {pid: len(client_ports(pid, d.port)) for pid in workers}
    print(f"\nestablished connections per worker: {counts}")
    assert sum(counts.values()) == 40, counts
    assert all(n > 0 for n in counts.values()), f"a worker served nothing: {counts}"
    assert not client_ports(d.pid, d.port), "the supervisor itself must not accept clients"
    for c in clients:
        echo_once(c, b"still here")
        c.close()


def test_a_killed_worker_is_restarted_and_its_socket_served_again(daemon):
    d = daemon("--workers", "2")
    victim, survivor = d.wait_workers(2)
    # Clients on the survivor must not notice anything.
    kept = [tcp_client(d.port) for _ in range(12)]
    on_survivor = client_ports(survivor, d.port)
    kept = [c for c in kept if c.getsockname()[1] in on_survivor]
    assert kept, "no client landed on the surviving worker"

    start = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    # New clients, one after another. The kernel keeps hashing some of them to the killed
    # worker's socket (the supervisor still holds it); they wait in its queue until the new
    # worker takes over that socket or the survivor takes them (test_worker_outage.py).
    fresh = [tcp_client(d.port) for _ in range(16)]
    elapsed = time.monotonic() - start
    new = d.wait_workers(2, exclude={victim})
    replacement = next(p for p in new if p != survivor)
    print(f"\nSIGKILL to 16 fresh clients all echoed: {elapsed * 1000:.0f} ms "
          f"(worker {victim} -> {replacement})")
    assert elapsed < RESTART_BOUND, f"restart took {elapsed:.2f}s"
    assert survivor in new
    # The new worker serves its socket again. If it started slowly (valgrind), the survivor
    # may have served every fresh client: then more clients, until one reaches the new one.
    while not client_ports(replacement, d.port) and len(fresh) < 64:
        fresh.append(tcp_client(d.port))
    served = len(client_ports(replacement, d.port))
    assert served > 0, "the new worker serves none of the connections to its socket"
    assert re.search(rf"worker \d \(pid {victim}\) was killed by signal 9", d.stderr_text()), \
        d.stderr_text()[-2000:]
    for c in kept + fresh:
        echo_once(c, b"after the restart")
        c.close()


def test_sigterm_to_the_supervisor_closes_every_client_with_1001_and_exits_0(daemon):
    d = daemon("--workers", "2")
    workers = d.wait_workers(2)
    clients = []
    while (len(clients) < 64 and
           not all(client_ports(p, d.port) for p in workers)) or len(clients) < 8:
        clients.append(tcp_client(d.port))
    assert all(client_ports(p, d.port) for p in workers), "clients on one worker only"

    d.proc.send_signal(signal.SIGTERM)
    for c in clients:
        expect_close(c, 1001)
    assert d.proc.wait(timeout=10) == 0
    log = d.stderr_text()
    for p in workers:
        assert not alive(p), f"worker {p} outlived the supervisor"
        assert re.search(rf"worker \d \(pid {p}\) exited with status 0", log), log[-2000:]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", d.port), timeout=2).close()


def test_ctrl_c_to_the_process_group_is_one_graceful_stop_not_two(daemon):
    """A terminal's Ctrl-C signals the whole foreground group. The workers run in their own
    group, so they get a single SIGTERM from the supervisor and still close with 1001 (a
    second signal would make them drop their clients at once)."""
    d = daemon("--workers", "2", new_session=True)
    d.wait_workers(2)
    clients = [tcp_client(d.port) for _ in range(8)]
    os.killpg(d.pid, signal.SIGINT)
    for c in clients:
        expect_close(c, 1001)
    assert d.proc.wait(timeout=10) == 0


def test_workers_exit_when_the_supervisor_is_killed(daemon):
    d = daemon("--workers", "2")
    workers = d.wait_workers(2)
    client = tcp_client(d.port)
    d.proc.kill()
    d.proc.wait()
    d.expect_exit = None
    expect_close(client, 1001)  # the orphaned worker drains like on SIGTERM
    deadline = time.monotonic() + 10
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(alive(p) for p in workers), "workers kept running without a supervisor"


def test_a_worker_that_keeps_dying_at_start_is_restarted_with_back_off(daemon):
    """Kill every worker the moment it appears, for 2.5 s: without a back-off that is a fork
    loop (hundreds of processes); with it, a handful. Afterwards service resumes."""
    d = daemon("--workers", "2")
    killed = set()
    end = time.monotonic() + 2.5
    while time.monotonic() < end:
        for p in d.workers():
            if p not in killed:
                os.kill(p, signal.SIGKILL)
                killed.add(p)
        time.sleep(0.002)
    delays = [int(x) for x in re.findall(r"restarting it in (\d+) ms", d.stderr_text())]
    print(f"\nworkers started in 2.5 s while each was killed at once: {len(killed)}; "
          f"restart delays (ms): {delays}")
    assert len(killed) <= 24, f"{len(killed)} workers forked in 2.5 s: no back-off"
    assert max(delays) >= 800, f"the delay did not grow: {delays}"
    new = d.wait_workers(2, timeout=15, exclude=killed)
    assert set(new).isdisjoint(killed)
    tcp_client(d.port).close()


def test_two_worker_groups_cannot_share_a_port(daemon):
    """SO_REUSEPORT would let a second websock join the first one's port and take half its
    connections; the supervisor must see the port as in use instead."""
    first = daemon("--workers", "2")
    r = run_to_exit(["--port", str(first.port), "--workers", "2"])
    assert r.returncode == 1, f"exit {r.returncode}: {r.stderr}"
    assert "in use" in r.stderr, r.stderr
    clients = [tcp_client(first.port) for _ in range(8)]
    assert first.workers(), "the first server lost its workers"
    assert sum(len(client_ports(p, first.port)) for p in first.workers()) == 8
    for c in clients:
        c.close()


@pytest.mark.parametrize("value", ["0", "abc", "1025", "-2", "2K"])
def test_bad_workers_value_exits_2_naming_the_flag(value):
    r = run_cli("--workers", value)
    assert r.returncode == 2, r
    assert len(r.stderr.strip().splitlines()) == 1 and "--workers" in r.stderr, r.stderr


def test_a_listener_error_is_reported_once_before_any_fork():
    """The supervisor opens the listeners itself: a busy port is one clear error, exit 1."""
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        r = run_to_exit(["--port", str(port), "--bind", "127.0.0.1", "--workers", "3"])
    assert r.returncode == 1, r
    assert r.stderr.count("in use") == 1, r.stderr
    assert "started" not in r.stderr, r.stderr
