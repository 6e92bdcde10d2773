#!/usr/bin/env python3
"""make bench-c1m: a million concurrent WebSocket connections on one machine, measured.

Starts websock with enough workers (each process may hold ~19,000 descriptors here), opens
C1M_CONNS upgraded connections (default 1,000,000) from many bench/build/c1m_client processes,
each from its own 127.x.y.z source address, in steps of 100,000 (fewer when C1M_CONNS is
small), and reports at each step: connections open, time to open the step, websock's RSS
(supervisor plus workers) and per connection, the kernel's memory (/proc/net/sockstat TCP mem,
Slab growth in /proc/meminfo, both loopback ends) and the total per connection, and the
round trip of echoes sampled on live connections. Holds C1M_HOLD seconds (default 60) at the
top, then SIGTERMs websock and counts what every client saw: Close 1001, and how its TCP
connection ended (FIN or RST). Bounded in time; stops everything it started.

Python standard library only. Environment: C1M_CONNS, C1M_HOLD, C1M_WORKERS (default: enough
for 18,000 connections each), C1M_PORT (default 9101), C1M_PER_CLIENT (12,500), WEBSOCK (the
binary, default build/websock), C1M_ARGS (more websock flags).
"""
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENT = os.path.join(ROOT, "bench", "build", "c1m_client")
PAGE = 4096

# Sysctls a million loopback connections may need; applied only as root and only when the
# current value is short, restored at the end. An operator would set the same.
SYSCTLS = {
    "fs/file-max": 2_200_000,       # two descriptors per loopback connection
    "fs/nr_open": 1_048_576,
    "net/core/somaxconn": 4096,     # listen backlog (websock asks for SOMAXCONN)
}


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v else default


def read_int(path):
    with open(path) as f:
        return int(f.read().split()[0])


def apply_sysctls():
    changed = {}
    if os.geteuid() != 0:
        return changed
    for key, want in SYSCTLS.items():
        path = "/proc/sys/" + key
        try:
            have = read_int(path)
            if have < want:
                with open(path, "w") as f:
                    f.write(str(want))
                changed[path] = have
        except OSError as e:
            print(f"sysctl {key}: {e}")
    for path, old in changed.items():
        print(f"sysctl {path[10:]}: {old} -> {read_int(path)} (restored at the end)")
    return changed


def restore_sysctls(changed):
    for path, old in changed.items():
        with open(path, "w") as f:
            f.write(str(old))


def meminfo_kb(field):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def sockstat():
    """(TCP sockets in use, TCP mem in pages)."""
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                w = line.split()
                return int(w[w.index("inuse") + 1]), int(w[w.index("mem") + 1])
    return 0, 0


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def websock_rss_kb(pid):
    kids = children(pid)
    return rss_kb(pid) + sum(rss_kb(k) for k in kids), len(kids)


def pct(v, p):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100 * len(v)))]


class Client:
    def __init__(self, index, port, conns, sample_ms):
        self.src = f"127.1.{index // 250}.{index % 250 + 1}"
        self.proc = subprocess.Popen([CLIENT, "127.0.0.1", str(port), self.src, str(conns),
                                      str(sample_ms)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        self.ready = None
        self.final = None

    def line(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline().strip() if r else None

    def send(self, cmd):
        try:
            self.proc.stdin.write(cmd + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass


def fields(line):
    return dict(kv.split("=", 1) for kv in line.split()[1:])


def wait_word(clients, word, timeout):
    """Waits until each client printed a line starting with word; returns {client: fields}."""
    got = {}
    deadline = time.monotonic() + timeout
    while len(got) < len(clients) and time.monotonic() < deadline:
        pending = {c.proc.stdout: c for c in clients if c not in got}
        r, _, _ = select.select(list(pending), [], [], max(0.0, deadline - time.monotonic()))
        for f in r:
            c = pending[f]
            line = f.readline().strip()
            if not line:
                got[c] = {}  # exited
            elif line.startswith(word + " ") or line == word:
                got[c] = fields(line)
    return got


def stat(clients):
    """Asks every client for its counts and the echo round trips since the last ask."""
    for c in clients:
        c.send("stat")
    got = wait_word(clients, "stat", 30)
    lat, tot = [], {"open": 0, "failed": 0, "echoes": 0, "bad": 0, "lost": 0}
    for f in got.values():
        for k in tot:
            tot[k] += int(f.get(k, 0))
        if f.get("lat_us"):
            lat += [int(x) for x in f["lat_us"].split(",")]
    return tot, lat


def main():
    n = env_int("C1M_CONNS", 1_000_000)
    hold = env_int("C1M_HOLD", 60)
    per_client = min(env_int("C1M_PER_CLIENT", 12_500), n)
    workers = env_int("C1M_WORKERS", max(2, -(-n // 18_000)))
    port = env_int("C1M_PORT", 9101)
    step = 100_000 if n >= 200_000 else max(per_client, n // 4)
    binary = os.environ.get("WEBSOCK", os.path.join(ROOT, "build", "websock"))
    extra = os.environ.get("C1M_ARGS", "").split()
    sample_ms = 1000

    print(f"c1m: {n:,} connections, {workers} websock workers, {per_client:,} per client "
          f"process, hold {hold} s, steps of {step:,}")
    changed = apply_sysctls()
    log_path = os.path.join(ROOT, "build", "c1m-websock.log")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    log = open(log_path, "w")
    clients = []
    srv = None
    try:
        slab0, (_, mem0) = meminfo_kb("Slab"), sockstat()
        srv = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                                "--workers", str(workers), "--ping-interval", "0",
                                "--idle-timeout", "0", "--handshake-timeout", "60s",
                                "--log-level", "warn"] + extra, stderr=log)
        time.sleep(1.0 + workers * 0.02)
        rss0, nkids = websock_rss_kb(srv.pid)
        print(f"websock pid {srv.pid}: {nkids} workers, idle RSS {rss0 / 1024:.1f} MB; "
              f"kernel baseline slab {slab0 / 1024:.0f} MB")
        print()
        print("| open | step time | websock RSS | per conn | kernel (sockstat mem / slab growth)"
              " | kernel per conn | user+kernel per conn | echoes ok | p50 / p99 |")
        print("|---|---|---|---|---|---|---|---|---|")
        opened, t_all = 0, time.monotonic()
        while opened < n:
            t0 = time.monotonic()
            batch = []
            target = min(n, opened + step)
            while sum(1 for _ in clients) * per_client < target:
                left = n - len(clients) * per_client
                batch.append(Client(len(clients), port, min(per_client, left), sample_ms))
                clients.append(batch[-1])
            got = wait_word(batch, "ready", 600)
            failed = sum(int(f.get("failed", 0)) for f in got.values())
            dt = time.monotonic() - t0
            time.sleep(3)  # the sampled echoes run; RSS settles
            tot, lat = stat(clients)
            opened = tot["open"]
            rss, _ = websock_rss_kb(srv.pid)
            _, mem = sockstat()
            slab = meminfo_kb("Slab")
            kmem = max((mem - mem0) * PAGE / 1024, 0) + max(slab - slab0, 0)
            user_pc = (rss - rss0) / max(opened, 1)
            k_pc = kmem / max(opened, 1)
            print(f"| {opened:,} | {dt:.1f} s | {rss / 1024:.1f} MB | {user_pc:.3f} KB | "
                  f"{(mem - mem0) * PAGE / 1048576:.0f} MB / {(slab - slab0) / 1024:.0f} MB | "
                  f"{k_pc:.2f} KB | {user_pc + k_pc:.2f} KB | "
                  f"{tot['echoes']} ({tot['bad']} bad, {tot['lost']} lost) | "
                  f"{pct(lat, 50) / 1000:.2f} / {pct(lat, 99) / 1000:.2f} ms |", flush=True)
            if failed or opened < target:
                print(f"c1m: stopped at {opened:,}: {failed} connection(s) failed "
                      f"(see {log_path})")
                break
        print(f"\nopened {opened:,} in {time.monotonic() - t_all:.0f} s; holding {hold} s")
        t_hold = time.monotonic()
        try:
            t = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                body = r.read().decode()
            gauge = [l for l in body.splitlines() if l.startswith("websock_connections_open")
                     or l.startswith("websock_open_connections")]
            print(f"/metrics answered in {(time.monotonic() - t) * 1000:.0f} ms, "
                  f"{len(body)} bytes: {gauge[:1]}")
        except Exception as e:  # noqa: BLE001 - reported, not fatal
            print(f"/metrics: {e}")
        while time.monotonic() - t_hold < hold:
            time.sleep(min(10, hold - (time.monotonic() - t_hold)))
            tot, lat = stat(clients)
            print(f"  held {time.monotonic() - t_hold:.0f} s: {tot['open']:,} open, "
                  f"echoes {tot['echoes']} ({tot['bad']} bad, {tot['lost']} lost), "
                  f"p50 {pct(lat, 50) / 1000:.2f} ms p99 {pct(lat, 99) / 1000:.2f} ms",
                  flush=True)

        print(f"\nSIGTERM to websock with {tot['open']:,} open")
        t0 = time.monotonic()
        srv.send_signal(signal.SIGTERM)
        try:
            code = srv.wait(timeout=300)
        except subprocess.TimeoutExpired:
            code = None
        t_exit = time.monotonic() - t0
        done = wait_word(clients, "done", 30)
        t_done = time.monotonic() - t0
        for c in clients:
            c.send("end")
        ends = wait_word([c for c in clients if c not in done], "end", 30)
        tally = {}
        for f in list(done.values()) + list(ends.values()):
            for k, v in f.items():
                tally[k] = tally.get(k, 0) + int(v)
        print(f"websock exit status {code} after {t_exit:.2f} s; clients all ended after "
              f"{t_done:.2f} s")
        print(f"Close 1001 received: {tally.get('close1001', 0):,}; other Close: "
              f"{tally.get('close_other', 0):,}")
        print(f"TCP ends: FIN after the Close {tally.get('fin_after_close', 0):,}, RST after "
              f"the Close {tally.get('rst_after_close', 0):,}, FIN without a Close "
              f"{tally.get('bare_fin', 0):,}, RST without a Close {tally.get('rst', 0):,}, "
              f"still open {tally.get('open', 0):,}")
        log.flush()
        with open(log_path) as f:
            lines = f.read().splitlines()
        print(f"websock log: {len(lines)} line(s); last: "
              f"{lines[-1] if lines else ''}")
        return 0 if code == 0 and tally.get("close1001", 0) == opened else 1
    finally:
        for c in clients:
            if c.proc.poll() is None:
                c.proc.kill()
            c.proc.wait()
        if srv and srv.poll() is None:
            for k in children(srv.pid):
                os.kill(k, signal.SIGKILL)
            srv.kill()
            srv.wait()
        restore_sysctls(changed)


if __name__ == "__main__":
    sys.exit(main())
