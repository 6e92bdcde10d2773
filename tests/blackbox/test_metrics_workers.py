"""GET /metrics with --workers N shows the whole server, whichever worker answers: counters kept
in a region shared by all workers (one slot each) and summed at exposition. Counters never go
backwards between scrapes, not even across a worker killed with SIGKILL and restarted; the
exposition stays valid Prometheus text (one HELP and TYPE per family, no duplicate series)."""

import os
import re
import signal
import time

from conftest import (OP_BINARY, OP_CLOSE, OP_TEXT, close_payload, read_http_response_until_eof,
                      recv_close, recv_message, send_frame)
from daemon_helpers import child_pids
from test_metrics import CONTENT_TYPE, STATUSES

SCRAPES = 20
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def scrape_text(srv) -> str:
    s = srv.connect()
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    resp = read_http_response_until_eof(s)
    assert resp.status == 200, resp.raw_head
    assert resp.header("Content-Type") == CONTENT_TYPE
    assert int(resp.header("Content-Length")) == len(resp.body)
    return resp.body.decode("utf-8")


def parse_strictly(text: str) -> tuple[dict, dict]:
    """Checks the text format by hand: every family has one HELP and one TYPE line, before its
    samples, which follow each other; no series appears twice. Returns ({series: value},
    {family: type}), a series being "name{labels}"."""
    assert text.endswith("\n")
    helps, types, series, done = {}, {}, {}, set()
    current = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helps, f"second HELP for {name}"
            helps[name] = line
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in types, f"second TYPE for {name}"
            assert kind in ("counter", "gauge"), line
            assert name in helps, f"TYPE before HELP for {name}"
            if current:
                done.add(current)
            types[name] = kind
            current = name
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.groups()
        assert name == current, f"{name} outside its family block (in {current})"
        assert name not in done
        if types[name] == "counter":
            assert name.endswith("_total"), f"counter {name} without _total"
        key = name + (labels or "")
        assert key not in series, f"duplicate series {key}"
        series[key] = float(value)
    assert set(helps) == set(types)
    return series, types


def scrape(srv) -> tuple[dict, dict]:
    return parse_strictly(scrape_text(srv))


def counters(series: dict, types: dict) -> dict:
    return {k: v for k, v in series.items() if types[k.split("{")[0]] == "counter"}


def settled(srv) -> tuple[dict, dict]:
    """A scrape once no WebSocket connection is open; returns it and how many scrapes it took."""
    deadline = time.monotonic() + 5
    n = 0
    while True:
        got, types = scrape(srv)
        n += 1
        if got["websock_connections_open"] == 0:
            return got, types, n
        assert time.monotonic() < deadline, f"connections still open: {got}"
        time.sleep(0.02)


def scripted_session(srv, sessions: int = 12) -> dict:
    """Upgraded connections that echo messages and close with various codes, and refused
    requests. Returns the counters it must have added to a scrape."""
    did = {"accepted": 0, "upgrades": 0, "messages": 0, "bytes": 0, "closes": {}, "status": {}}
    for i in range(sessions):
        s = srv.upgraded()
        did["accepted"] += 1
        did["upgrades"] += 1
        for j in range(i % 4 + 1):
            payload = bytes([i]) * (j * 100 + i)
            opcode = OP_TEXT if j % 2 == 0 else OP_BINARY
            if opcode == OP_TEXT:
                payload = b"t" * len(payload)
            send_frame(s, opcode, payload)
            assert recv_message(s)[:2] == (opcode, payload)
            did["messages"] += 1
            did["bytes"] += len(payload)
        code = (1000, 4001, 3001)[i % 3]
        send_frame(s, OP_CLOSE, close_payload(code))
        assert recv_close(s)[0].close_code == code
        s.close()
        did["closes"][str(code)] = did["closes"].get(str(code), 0) + 1
    for path, status in ((b"/nope", "404"), (b"/nope2", "404")):
        s = srv.connect()
        s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert str(read_http_response_until_eof(s).status) == status
        did["accepted"] += 1
        did["status"][status] = did["status"].get(status, 0) + 1
    return did


def expected(before: dict, did: dict, scrapes_since: int) -> dict:
    """Counters before the session plus what it did; each scrape since the baseline one is an
    accepted connection too (a scrape counts itself)."""
    want = {k: v for k, v in before.items()}
    want["websock_connections_accepted_total"] += did["accepted"] + scrapes_since
    want["websock_upgrades_total"] += did["upgrades"]
    for name in ("websock_messages_received_total", "websock_messages_sent_total"):
        want[name] += did["messages"]
    for name in ("websock_payload_received_bytes_total", "websock_payload_sent_bytes_total"):
        want[name] += did["bytes"]
    for code, n in did["closes"].items():
        key = f'websock_closes_total{{code="{code}"}}'
        want[key] = want.get(key, 0) + n
    for status, n in did["status"].items():
        want[f'websock_handshake_rejections_total{{status="{status}"}}'] += n
    return want


WEBSOCK_COUNTERS = ("websock_connections_accepted_total", "websock_upgrades_total",
                    "websock_messages_received_total", "websock_messages_sent_total",
                    "websock_payload_received_bytes_total", "websock_payload_sent_bytes_total",
                    "websock_closes_total", "websock_handshake_rejections_total")


def server_totals(series: dict) -> dict:
    return {k: v for k, v in series.items() if k.startswith(WEBSOCK_COUNTERS)}


def check_consecutive_scrapes(srv, want: dict, previous: dict, scrapes_before: int) -> dict:
    """SCRAPES scrapes in a row: each shows exactly want (accepted growing by one per scrape),
    and no counter (process CPU time included) is below what the scrape before it showed."""
    for i in range(SCRAPES):
        got, types = scrape(srv)
        now = counters(got, types)
        for key, value in previous.items():
            assert now.get(key, 0) >= value, \
                f"scrape {i + 1}: {key} went backwards: {value} -> {now.get(key)}"
        expect = dict(want)
        expect["websock_connections_accepted_total"] += scrapes_before + i
        assert server_totals(got) == expect, f"scrape {i + 1} of {SCRAPES}"
        assert got["websock_connections_open"] == 0
        workers = {k: v for k, v in got.items()
                   if k.startswith("websock_worker_connections_accepted_total{")}
        assert sum(workers.values()) == got["websock_connections_accepted_total"]
        previous = now
    return previous


def test_twenty_scrapes_show_the_whole_server_and_never_go_backwards(websock_factory):
    srv = websock_factory("--workers", "2")
    base, types, n = settled(srv)
    did = scripted_session(srv)
    got, types, m = settled(srv)
    want = server_totals(expected(server_totals(base), did, m))
    assert server_totals(got) == want
    # Both workers served some of it (the kernel spreads connections over their sockets).
    by_worker = {k: v for k, v in got.items()
                 if k.startswith("websock_worker_connections_accepted_total{")}
    assert sorted(by_worker) == [f'websock_worker_connections_accepted_total{{worker="{w}"}}'
                                 for w in (1, 2)]
    assert all(v > 0 for v in by_worker.values()), by_worker
    check_consecutive_scrapes(srv, want, counters(got, types), 1)


def worker_pids(srv) -> dict:
    """{worker index: pid} from the supervisor's "worker N started (pid P)" lines, the latest
    for each index, among its live children."""
    live = set(child_pids(srv.pid))
    out = {}
    for m in re.finditer(r"worker (\d+) started \(pid (\d+)\)", srv.stderr_text()):
        if int(m.group(2)) in live:
            out[int(m.group(1))] = int(m.group(2))
    return out


def wait_for(what, predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_counters_survive_a_worker_killed_and_restarted(websock_factory):
    srv = websock_factory("--workers", "2")
    pids = wait_for("two workers", lambda: len(worker_pids(srv)) == 2 and worker_pids(srv))
    base, _, n = settled(srv)
    did = scripted_session(srv)
    # WebSockets left open: their gauge drops to 0 with the worker that holds them.
    held = [srv.upgraded() for _ in range(6)]
    got, types = scrape(srv)
    assert got["websock_connections_open"] == 6
    busy = {w: got[f'websock_worker_connections_open{{worker="{w}"}}'] for w in (1, 2)}
    victim = max(busy, key=busy.get)
    before_kill = counters(got, types)

    os.kill(pids[victim], signal.SIGKILL)
    wait_for("the restart", lambda: worker_pids(srv).get(victim, pids[victim]) != pids[victim])
    for s in held:
        s.close()
    after, types, m = settled(srv)
    for key, value in before_kill.items():
        assert counters(after, types).get(key, 0) >= value, f"{key} went backwards"
    assert after[f'websock_worker_restarts_total{{worker="{victim}"}}'] == 1
    assert after[f'websock_worker_connections_open{{worker="{victim}"}}'] == 0
    # Everything the dead worker counted is still there: the session, the held upgrades,
    # every scrape (the baseline's own not included, as in expected()).
    did["accepted"] += len(held)
    did["upgrades"] += len(held)
    scrapes_since = 1 + m
    want = server_totals(expected(server_totals(base), did, scrapes_since))
    # The held connections ended without a Close: counted as 1006 by the survivor, and not at
    # all for the killed worker's, which died with them.
    survivor = 3 - victim
    if busy[survivor]:
        want['websock_closes_total{code="1006"}'] = \
            want.get('websock_closes_total{code="1006"}', 0) + busy[survivor]
    assert server_totals(after) == want
    check_consecutive_scrapes(srv, want, counters(after, types), 1)
    assert re.search(rf"worker {victim} \(pid {pids[victim]}\) was killed by signal 9",
                     srv.stderr_text())


def test_single_process_exposition_is_valid_text_without_worker_families(websock):
    series, types = scrape(websock)
    assert not [k for k in series if k.startswith("websock_worker_")]
    assert types["process_cpu_seconds_total"] == "counter"
    for family in ("process_resident_memory_bytes", "process_open_fds", "process_max_fds",
                   "process_start_time_seconds", "websock_build_info"):
        assert types[family] == "gauge"
    statuses = sorted(k for k in series if k.startswith("websock_handshake_rejections_total"))
    assert len(statuses) == len(STATUSES)


def test_process_metrics_cover_the_supervisor_and_every_worker(websock_factory):
    srv = websock_factory("--workers", "3")
    pids = wait_for("three workers", lambda: len(worker_pids(srv)) == 3 and worker_pids(srv))
    got, types = scrape(srv)
    everyone = [srv.pid, *pids.values()]
    fds = sum(len(os.listdir(f"/proc/{p}/fd")) for p in everyone)
    # Each worker holds every listening socket, the scrape's connection is one more: a
    # tolerance of a few descriptors for what opens and closes meanwhile.
    assert abs(got["process_open_fds"] - fds) <= 4, (got["process_open_fds"], fds)
    rss = 0
    for p in everyone:
        with open(f"/proc/{p}/statm") as f:
            rss += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    assert 0.8 * rss < got["process_resident_memory_bytes"] < 1.25 * rss
    assert got["process_max_fds"] >= 4 * 1024
    with open(f"/proc/{srv.pid}/stat") as f:
        ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22: start, ticks since boot
    with open("/proc/stat") as f:
        boot = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    start = boot + ticks / os.sysconf("SC_CLK_TCK")
    assert abs(got["process_start_time_seconds"] - start) < 2
    assert got["process_cpu_seconds_total"] >= 0
    build = [k for k in got if k.startswith("websock_build_info{")]
    assert len(build) == 1 and got[build[0]] == 1
    assert re.fullmatch(r'websock_build_info\{version="\d+\.\d+\.\d+[^"]*",'
                        r'compiler="(gcc|clang) \d+\.\d+\.\d+",'
                        r'openssl="[^"]+",zlib="[^"]+"\}', build[0]), build[0]


def test_sigusr1_to_the_supervisor_logs_the_server_totals(websock_factory):
    srv = websock_factory("--workers", "2")
    wait_for("two workers", lambda: len(worker_pids(srv)) == 2)
    for _ in range(5):
        s = srv.upgraded()
        send_frame(s, OP_TEXT, b"hi")
        assert recv_message(s)[:2] == (OP_TEXT, b"hi")
    got, _ = scrape(srv)
    accepted = int(got["websock_connections_accepted_total"])
    srv.proc.send_signal(signal.SIGUSR1)
    line = wait_for("the totals line", lambda: re.search(
        r"SIGUSR1: server totals: (\d+) WebSocket\(s\) open, (\d+) accepted, (\d+) upgraded, "
        r"(\d+) message\(s\) echoed, 2 of 2 worker\(s\) running", srv.stderr_text()))
    assert [int(g) for g in line.groups()] == [5, accepted, 5, 5]
