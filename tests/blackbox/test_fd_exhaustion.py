"""Out of file descriptors (EMFILE): the server refuses the connections it cannot hold (accept
with its spare descriptor, close at once) and keeps serving the others. A flood of refusals
must not flood the log: the first is logged at once, then one line per interval with the
count. Before, every refusal logged its own warning, and each wake-up of the listener added
more (accept reports EMFILE even with nothing queued): 1088 lines for 150 refusals."""

import os
import re
import resource
import socket
import subprocess
import time

import pytest

from conftest import (START_TIMEOUT, STOP_TIMEOUT, WRAPPER, free_port, raw_upgrade,
                      require_binary, wait_accepting)
from daemon_helpers import echo_once

NOFILE = 64       # the server's whole descriptor limit (soft and hard)
HOLDERS = 80      # more connections than it can hold, kept open
REFUSALS = 150    # then this many more, each refused


@pytest.fixture
def starved_server(tmp_path):
    """websock with a hard descriptor limit of NOFILE and --max-connections far above it, so
    it runs out of descriptors (EMFILE) instead of answering 503."""
    if WRAPPER:
        pytest.skip("the wrapper (valgrind) needs descriptors of its own under the limit")
    port = free_port()
    stderr_path = tmp_path / "websock.stderr"

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))

    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen([require_binary(), "--port", str(port), "--bind", "127.0.0.1",
                                 "--max-connections", "1000", "--handshake-timeout", "60000",
                                 "--log-level", "debug"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, preexec_fn=limit)
    try:
        wait_accepting("127.0.0.1", port, proc, stderr_path)
        yield port, proc, stderr_path
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_running_out_of_descriptors_logs_a_count_not_a_line_per_refusal(starved_server):
    port, proc, stderr_path = starved_server
    time.sleep(0.3)  # the start-up check's connection is gone: its descriptor is free again
    holders = [socket.create_connection(("127.0.0.1", port), timeout=START_TIMEOUT)
               for _ in range(HOLDERS)]
    deadline = time.monotonic() + START_TIMEOUT  # every descriptor of the server in use
    while len(os.listdir(f"/proc/{proc.pid}/fd")) < NOFILE and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    start_lines = len(stderr_path.read_text().splitlines())  # debug lines excepted below

    n_refused = 0
    for _ in range(REFUSALS):
        s = socket.create_connection(("127.0.0.1", port), timeout=START_TIMEOUT)
        s.settimeout(START_TIMEOUT)
        try:
            n_refused += s.recv(1) == b""
        except ConnectionResetError:
            n_refused += 1
        s.close()
    # Past the interval (5 s) the held count is written out in one line.
    deadline = time.monotonic() + 10
    while "more connection" not in stderr_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)

    text = stderr_path.read_text()
    lines = [ln for ln in text.splitlines()[start_lines:] if " debug " not in ln]
    counted = sum(int(m) for m in re.findall(r"refused (\d+) more connection", text))
    print(f"\n{n_refused} refusals of {REFUSALS} -> {len(lines)} log lines; "
          f"summaries count {counted} more:\n" + "\n".join(lines[:10]))
    assert n_refused == REFUSALS, "a connection over the limit was not refused"
    assert len(lines) <= 6, f"{len(lines)} log lines for {n_refused} refusals:\n" + \
        "\n".join(lines[:20])
    assert "out of file descriptors" in text
    # The lines account for every refusal: one logged at once, the rest counted.
    first = len(re.findall(r"out of file descriptors: refusing", text))
    assert first + counted >= n_refused, text[-2000:]

    # Descriptors come back: the server serves again once holders leave.
    for h in holders:
        h.close()
    time.sleep(0.3)
    s = socket.create_connection(("127.0.0.1", port), timeout=START_TIMEOUT)
    s.settimeout(START_TIMEOUT)
    raw_upgrade(s, host=f"127.0.0.1:{port}")
    echo_once(s, b"served again")
    s.close()
    assert proc.poll() is None
