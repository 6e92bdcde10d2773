"""Every signal an operator (or a stray `kill`) may send has a deliberate meaning, in the
single-process server, in the --workers supervisor and in each worker:

- SIGTERM, SIGINT, SIGQUIT: graceful stop (Close 1001 to every client, exit 0);
- SIGHUP: "reload": logged, the server keeps running (the supervisor passes it on);
- SIGUSR1: one status line in the log (the supervisor passes it on);
- SIGUSR2, SIGALRM: ignored, with a log line.

Before, all but TERM and INT killed the process outright, with no Close to anyone."""

import os
import re
import signal
import time

import pytest

from conftest import WRAPPER, expect_close, recv_close
from daemon_helpers import alive, daemon, echo_once, tcp_client  # noqa: F401 (fixture)

SURVIVED = [signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM]
LOG_WAIT = 5.0 if not WRAPPER else 30.0


def wait_for_log(read_log, pattern: str, count: int = 1) -> str:
    deadline = time.monotonic() + LOG_WAIT
    while True:
        text = read_log()
        if len(re.findall(pattern, text)) >= count:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"no {count}x {pattern!r} in the log:\n{text[-3000:]}")
        time.sleep(0.02)


@pytest.mark.parametrize("sig", SURVIVED, ids=lambda s: s.name)
def test_signal_is_logged_and_the_server_keeps_serving(websock, sig):
    client = websock.upgraded()
    echo_once(client, b"before")
    websock.proc.send_signal(sig)
    wait_for_log(websock.stderr_text, sig.name + ":")
    assert websock.proc.poll() is None, f"{sig.name} ended the server"
    echo_once(client, b"after")           # the open connection did not notice
    fresh = websock.upgraded()            # and new ones are still accepted
    echo_once(fresh, b"new client")


def test_sighup_says_what_it_reloaded(websock):
    websock.proc.send_signal(signal.SIGHUP)
    text = wait_for_log(websock.stderr_text, "SIGHUP:")
    line = next(ln for ln in text.splitlines() if "SIGHUP:" in ln)
    assert "stderr" in line and "running" in line, line


def test_sigusr1_logs_a_status_line_with_counts(websock):
    clients = [websock.upgraded() for _ in range(3)]
    for c in clients:
        echo_once(c)
    websock.proc.send_signal(signal.SIGUSR1)
    text = wait_for_log(websock.stderr_text, "SIGUSR1: status")
    line = next(ln for ln in text.splitlines() if "SIGUSR1: status" in ln)
    assert "3 WebSocket(s) open" in line, line
    assert "3 message(s) echoed" in line, line


def test_sigquit_stops_gracefully_with_close_1001(websock):
    client = websock.upgraded()
    echo_once(client)
    websock.proc.send_signal(signal.SIGQUIT)
    expect_close(client, 1001)
    assert websock.proc.wait(timeout=10) == 0
    assert "SIGQUIT: stopping" in websock.stderr_text()


@pytest.mark.parametrize("sig", SURVIVED, ids=lambda s: s.name)
def test_signal_to_the_supervisor_kills_neither_it_nor_its_workers(daemon, sig):
    d = daemon("--workers", "2")
    workers = d.wait_workers(2)
    clients = [tcp_client(d.port) for _ in range(6)]
    d.proc.send_signal(sig)
    passed_on = sig in (signal.SIGHUP, signal.SIGUSR1)
    # The supervisor notes it; for HUP and USR1 each worker logs it too.
    wait_for_log(d.stderr_text, rf"\[{d.pid}\] {sig.name}:")
    if passed_on:
        for p in workers:
            wait_for_log(d.stderr_text, rf"\[{p}\] {sig.name}:")
    assert d.proc.poll() is None, f"{sig.name} ended the supervisor"
    assert sorted(d.workers()) == workers, "a worker was lost or restarted"
    assert "restarting it" not in d.stderr_text()
    for c in clients:
        echo_once(c, b"still here")
    tcp_client(d.port).close()


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGUSR2], ids=lambda s: s.name)
def test_signal_to_one_worker_does_not_kill_it(daemon, sig):
    d = daemon("--workers", "2")
    victim, _ = d.wait_workers(2)
    os.kill(victim, sig)
    wait_for_log(d.stderr_text, rf"\[{victim}\] {sig.name}:")
    assert alive(victim), f"{sig.name} killed worker {victim}"
    assert "restarting it" not in d.stderr_text()


def test_sigquit_to_the_supervisor_stops_everything_gracefully(daemon):
    d = daemon("--workers", "2")
    workers = d.wait_workers(2)
    clients = [tcp_client(d.port) for _ in range(6)]
    d.proc.send_signal(signal.SIGQUIT)
    for c in clients:
        expect_close(c, 1001)
    assert d.proc.wait(timeout=10) == 0
    for p in workers:
        assert not alive(p)


def upgraded_silent_clients(port: int, n: int) -> list:
    """Clients that never answer the server's Close, so a graceful stop waits for them."""
    return [tcp_client(port) for _ in range(n)]


@pytest.mark.parametrize("sig,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_forced_second_signal_drops_the_clients_and_exits_non_zero(daemon, sig, status):
    """A second Ctrl-C during the drain does not claim a clean exit: 128 + the signal, and a
    line saying clients were dropped. (One signal: exit 0, see the tests above.)"""
    d = daemon("--close-timeout", "30000")  # the drain would wait for the silent client
    d.expect_exit = status
    client, = upgraded_silent_clients(d.port, 1)
    d.proc.send_signal(sig)
    f, _ = recv_close(client)
    assert f.close_code == 1001
    d.proc.send_signal(sig)
    assert d.proc.wait(timeout=10) == status, d.stderr_text()[-3000:]
    text = d.stderr_text()
    assert re.search(rf"second signal \({sig.name}\): dropping 1 connection", text), text
    assert "clients were dropped" in text, text


def test_a_forced_second_ctrl_c_to_the_supervisor_exits_130(daemon):
    d = daemon("--workers", "2", "--close-timeout", "30000")
    d.expect_exit = 130
    workers = d.wait_workers(2)
    clients = upgraded_silent_clients(d.port, 6)
    d.proc.send_signal(signal.SIGINT)
    for c in clients:
        f, _ = recv_close(c)
        assert f.close_code == 1001
    d.proc.send_signal(signal.SIGINT)
    assert d.proc.wait(timeout=10) == 130, d.stderr_text()[-3000:]
    text = d.stderr_text()
    assert re.search(rf"\[{d.pid}\] .*clients were dropped", text), text
    for p in workers:
        assert not alive(p)
