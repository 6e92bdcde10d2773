"""A stop with many connections whose Close replies come slowly (issue 20: at a million
connections a busy worker reads the replies seconds after it sent its Close 1001).

The clients here answer one Close every few milliseconds, so the whole stop takes longer than
--close-timeout and longer than the old fixed bounds (3 s in a worker, 5 s in the supervisor),
while some connection finishes all the time. Every client must get Close 1001, the server must
wait for its reply (not close first: a reply that meets a closed socket is answered with an
RST), end with a FIN, and exit 0."""

import re
import signal
import socket
import time

import pytest

from conftest import (OP_CLOSE, parse_http_head, read_http_head, recv_close, recv_frame,
                      send_frame, upgrade_request)
from limits_helpers import raise_nofile


def open_upgraded(srv, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(upgrade_request(host=f"127.0.0.1:{srv.port}"))
        socks.append(s)
    for s in socks:
        assert parse_http_head(read_http_head(s)).status == 101
    return socks


TCP_CLOSE_WAIT, TCP_CLOSE = 8, 7


def how_it_ended(s):
    """After the server is gone: "fin" if our socket saw its FIN and nothing else (we have not
    closed: CLOSE_WAIT), "rst" if a reset came (our Close reply met a socket the server had
    already closed), else the TCP state."""
    state = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if state == TCP_CLOSE_WAIT and err == 0:
        return "fin"
    if state == TCP_CLOSE or err:
        return "rst"
    return f"state {state}"


@pytest.mark.parametrize("workers,n,pace_s", [(1, 1500, 0.003), (2, 1500, 0.004)])
def test_a_slow_stop_waits_for_every_close_reply_while_clients_keep_answering(
        websock_factory, workers, n, pace_s):
    raise_nofile()
    srv = websock_factory("--close-timeout", "1s", "--workers", str(workers),
                          "--max-connections-per-ip", "0", log_level="info")
    socks = open_upgraded(srv, n)
    time.sleep(0.3)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    codes = []
    for s in socks:
        f = recv_frame(s)
        assert f.opcode == OP_CLOSE
        codes.append(f.close_code)
        try:
            send_frame(s, OP_CLOSE, f.payload[:2])
        except OSError:
            pass
        time.sleep(pace_s)
    code = srv.proc.wait(timeout=30)
    took = time.monotonic() - t0
    time.sleep(0.2)
    ends = [how_it_ended(s) for s in socks]
    assert codes == [1001] * n
    assert ends.count("fin") == n, (f"{ends.count('rst')} of {n} connections were reset after "
                                    f"the client's Close reply; others: "
                                    f"{sorted(set(ends) - {'fin', 'rst'})} (stop took {took:.1f} s)")
    assert code == 0, srv.stderr_text()[-2000:]
    assert "no Close from the peer" not in srv.stderr_text()
    for s in socks:
        s.close()


def test_close_timeouts_are_logged_once_then_counted(websock_factory):
    """Hundreds of peers that never answer a Close: one line names the first, one more counts
    the rest, not a line each (at scale such lines kept workers busy past their bounds)."""
    raise_nofile()
    n = 300
    srv = websock_factory("--close-timeout", "300ms", "--idle-timeout", "300ms",
                          "--ping-interval", "0", "--max-connections-per-ip", "0",
                          log_level="info")
    socks = open_upgraded(srv, n)
    for s in socks:
        f, _ = recv_close(s)  # idle: Close 1001 from the server, never answered
        assert f.close_code == 1001
    deadline = time.monotonic() + 0.3 + 5.0 + 3.0  # the timeouts, then the count's interval
    while True:
        text = srv.stderr_text()
        lines = [l for l in text.splitlines() if "no Close from" in l]
        counted = sum(int(m) for l in lines for m in re.findall(r"no Close from (\d+) more", l))
        singles = sum(1 for l in lines if "no Close from the peer" in l)
        if singles + counted >= n or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(lines) <= 3, f"{len(lines)} close-timeout lines for {n} silent peers"
    assert singles + counted == n, lines
    for s in socks:
        s.close()


def test_shutdown_timeout_sets_how_long_a_stalled_stop_waits(websock_factory):
    """One client that never answers the Close: nothing moves, so the stop gives up after
    --shutdown-timeout (here 1 s instead of the default 3 s), and still exits 0."""
    srv = websock_factory("--close-timeout", "60s", "--shutdown-timeout", "1s")
    s = srv.upgraded()
    time.sleep(0.1)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    f, _ = recv_close(s)
    assert f.close_code == 1001
    assert srv.proc.wait(timeout=10) == 0
    took = time.monotonic() - t0
    assert 0.8 <= took <= 2.5, f"the stop took {took:.2f} s with --shutdown-timeout 1s"
    assert "shutdown bound passed" in srv.stderr_text()
    s.close()
