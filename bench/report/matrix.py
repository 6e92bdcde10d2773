#!/usr/bin/env python3
"""Runs websock, a plain TCP echo and every peer through the same load generator, pinned and
alternating, and writes BENCHMARKS.md plus a chart. Used by `make bench`.

`--from-json` (`make bench-report`) runs nothing: it rewrites BENCHMARKS.md and the chart from
bench/benchmarks.json (and bench/latency-pairs.json, the side-by-side tail latency of
bench/report/latency_pair.py, when present).

`--deflate-only` (`make bench-deflate`) runs just the compressed workloads (permessage-deflate,
JSON-like text) side by side with the peers that compress, writes bench/benchmarks-deflate.json
and puts its section into BENCHMARKS.md; a full run includes that section when the file exists.

Each workload runs REPS times; within a repetition the servers take turns (starting with a
different one each time), so drift in the machine hits all of them alike. Figures are medians. The fair throughput figure on a 2-core
machine is messages echoed per second of *server* CPU time (the client is on the other core).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import platform
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import time

TOP = pathlib.Path(__file__).resolve().parents[2]
WSLOAD = TOP / "bench/build/wsload"
TCP_ECHO = TOP / "bench/build/tcp_echo"
PEERS_RUN = TOP / "bench/peers/run.sh"

# (label, connections, size); depth 1, binary
WORKLOADS = [("20 B x 100", 100, "20"), ("16 KiB x 100", 100, "16K"),
             ("20 B x 1000", 1000, "20"), ("16 KiB x 1000", 1000, "16K")]
# The same messages framed as the client sends them (a masked header: 6 bytes up to 125, 8 up to
# 64 KiB): a plain TCP echo of that size moves the bytes websock's kernel side moves.
FRAMED = {"20": "26", "16K": "16392"}
FRAMED_NAME = "plain TCP echo, frame-sized"
# The frame-sized TCP echo that also makes one XOR pass over every byte, as unmasking does: the
# floor of any WebSocket echo on this machine, before a single header is parsed.
FLOOR_NAME = "TCP echo floor: frame-sized, one XOR pass"
LAG_LIMIT_US = 1000
BIG_CONNS = 4
# Compressed workloads: JSON-like text, every message compressed by wsload (--deflate), against
# the peers that implement permessage-deflate (tokio-tungstenite does not).
DEFLATE_WORKLOADS = [("200 B JSON x 100", 100, "200"), ("16 KiB JSON x 100", 100, "16K")]
DEFLATE_PEERS = [("ws (Node.js)", "node"), ("gorilla/websocket", "go"), ("libwebsockets", "lws")]
DEFLATE_JSON = TOP / "bench/benchmarks-deflate.json"
SECTION_BEGIN, SECTION_END = "<!-- deflate: make bench-deflate -->", "<!-- /deflate -->"
C1M_BEGIN, C1M_END = "<!-- c1m: from make bench-c1m -->", "<!-- /c1m -->"
TLS_BEGIN, TLS_END = "<!-- tls: make bench-tls -->", "<!-- /tls -->"
PEERS = [("libwebsockets", "lws"), ("libwebsockets (libev)", "lws-ev"), ("tokio-tungstenite", "rust"),
         ("gorilla/websocket", "go"), ("ws (Node.js)", "node")]
# Side-by-side tail latency (bench/report/latency_pair.py), summarised when present.
LATENCY_PAIRS_JSON = TOP / "bench/latency-pairs.json"


def shown(workload: str) -> str:
    """A workload's name in tables and the chart: "20 B x 100" is 20-byte messages on 100
    connections."""
    size, conns = workload.split(" x ")
    return f"{size} msgs, {conns} conns"


def machine() -> dict:
    """What the figures depend on, recorded with them."""
    cpu = "unknown"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def first_line(cmd):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=TOP)
            return out.stdout.splitlines()[0].strip() if out.returncode == 0 and out.stdout else None
        except (OSError, subprocess.TimeoutExpired):
            return None
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu,
            "cores": os.cpu_count(), "kernel": platform.release(),
            "compiler": first_line([os.environ.get("CC", "cc"), "--version"]),
            "websock_commit": first_line(["git", "rev-parse", "--short", "HEAD"])}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening")


class Server:
    """One server process pinned to CPU 0."""

    def __init__(self, name: str, kind: str, extra: tuple[str, ...] = ()):
        self.name, self.kind, self.extra = name, kind, list(extra)
        self.proc = None
        self.port = 0

    def command(self, port: int) -> list[str]:
        if self.kind == "websock":
            return [str(TOP / "build/websock"), "--port", str(port), "--bind", "127.0.0.1",
                    "--log-level", "warn", *self.extra]
        if self.kind == "tcp":
            return [str(TCP_ECHO), "--port", str(port)]
        if self.kind == "tcp-xor":
            return [str(TCP_ECHO), "--port", str(port), "--xor"]
        return [str(PEERS_RUN), self.kind, str(port), *self.extra]

    def start(self) -> None:
        self.port = free_port()
        env = dict(os.environ, GOMAXPROCS="1")
        self.proc = subprocess.Popen(["taskset", "-c", "0", *self.command(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=env)
        wait_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def rss_kib(self) -> tuple[int, int]:
        status = pathlib.Path(f"/proc/{self.proc.pid}/status").read_text()
        vals = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines()
                if line.startswith(("VmRSS", "VmHWM"))}
        return vals["VmRSS"], vals["VmHWM"]


def wsload_start(server: Server, *args: str) -> subprocess.Popen:
    cmd = ["taskset", "-c", "1", str(WSLOAD), "--port", str(server.port),
           "--server-pid", str(server.proc.pid), "--json", *args]
    if server.kind.startswith("tcp"):
        cmd.append("--raw")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wsload_result(server: Server, gen: subprocess.Popen, args, timeout: float = 120) -> dict:
    try:
        stdout, stderr = gen.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        gen.kill()
        stdout, stderr = gen.communicate()
    try:
        result = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        result = {"ok": False, "first_error": (stderr or stdout)[-300:]}
    if not result.get("ok", False):
        print(f"  ! {server.name} {' '.join(args)}: {result.get('first_error')}", file=sys.stderr)
    return result


def wsload(server: Server, *args: str, timeout: float = 120) -> dict:
    return wsload_result(server, wsload_start(server, *args), args, timeout)


def side_by_side_results(a: Server, b: Server, args_a: list[str], args_b: list[str]):
    """Both servers loaded in the same window (servers sharing CPU 0, generators CPU 1): the
    two results, and b's messages per server CPU-second over a's (None unless both ran
    clean). Drift in the machine cancels out of the ratio."""
    a.start()
    try:
        b.start()
    except RuntimeError:
        a.stop()
        raise
    gens = [wsload_start(a, *args_a), wsload_start(b, *args_b)]
    ra, rb = (wsload_result(s, g, args) for s, g, args in zip((a, b), gens, (args_a, args_b)))
    a.stop()
    b.stop()
    va, vb = ra.get("msgs_per_server_cpu_s"), rb.get("msgs_per_server_cpu_s")
    return ra, rb, (vb / va if ra.get("ok") and rb.get("ok") and va and vb else None)


def side_by_side(a: Server, b: Server, args_a: list[str], args_b: list[str]) -> float | None:
    """b's messages per server CPU-second over a's, loaded in the same windows."""
    return side_by_side_results(a, b, args_a, args_b)[2]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def run(args) -> dict:
    servers = [Server("websock", "websock"), Server("plain TCP echo", "tcp")]
    framed = Server(FRAMED_NAME, "tcp")
    floor = Server(FLOOR_NAME, "tcp-xor")
    for label, kind in PEERS:
        peer = Server(label, kind)
        try:  # a peer that is not built (or fails to start) is left out, and said so
            peer.start()
            peer.stop()
            servers.append(peer)
        except RuntimeError as e:
            print(f"skipping {label}: {e} (build with bench/peers/build.sh)", file=sys.stderr)
    results: dict = {"machine": machine(),
                     "settings": {"reps": args.reps, "duration": args.duration,
                                  "warmup": args.warmup, "rate": args.rate, "idle": args.idle},
                     "throughput": {}, "latency": {}, "idle": {}, "big": {}, "big_side_by_side": [],
                     "side_by_side": {},
                     "floor_side_by_side": {}, "peer_side_by_side": {}}
    dur = ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    for rep in range(args.reps):
        # Each repetition starts with a different server, so none always runs first after a
        # phase change (when the kernel is still reaping the last phase's sockets).
        turn = servers[rep % len(servers):] + servers[:rep % len(servers)]
        for wl, conns, size in WORKLOADS:
            for srv in turn + [framed, floor]:
                srv.start()
                load = ["--connections", str(conns), "--size", FRAMED[size]
                        if srv in (framed, floor) else size, *dur]
                r = wsload(srv, *load)
                srv.stop()
                results["throughput"].setdefault(wl, {}).setdefault(srv.name, []).append(r)
                print(f"rep {rep + 1} {wl:14} {srv.name:18} "
                      f"{r.get('msgs_per_server_cpu_s', 0) or 0:10.0f} msg/server-CPU-s",
                      flush=True)
            plain = ["--connections", str(conns), "--size", size, *dur]
            ratio = side_by_side(servers[1], servers[0], plain, plain)
            results["side_by_side"].setdefault(wl, []).append(ratio)
            print(f"rep {rep + 1} {wl:14} websock / TCP echo side by side: {ratio}", flush=True)
            ratio = side_by_side(servers[1], floor, plain,
                                 ["--connections", str(conns), "--size", FRAMED[size], *dur])
            results["floor_side_by_side"].setdefault(wl, []).append(ratio)
            print(f"rep {rep + 1} {wl:14} floor / TCP echo side by side: {ratio}", flush=True)
        time.sleep(2)  # let the kernel finish with the 1000-connection runs
        rate = ["--connections", "100", "--size", "20", "--rate", str(args.rate), *dur]
        # One window thrown away first: in the landed run the first latency window after the
        # 1000-connection runs had the highest p99.9 of its repetition, whoever ran in it.
        servers[0].start()
        wsload(servers[0], *rate)
        servers[0].stop()
        for srv in turn:
            if srv.kind == "tcp":
                continue
            srv.start()
            r = wsload(srv, *rate)
            srv.stop()
            results["latency"].setdefault(srv.name, []).append(r)
        for srv in servers:  # 16 MiB echo: websock against the plain TCP floor
            if srv.kind not in ("websock", "tcp"):
                continue
            srv.start()
            idle_rss, _ = srv.rss_kib()
            r = wsload(srv, "--connections", "1", "--size", "16M", *dur)
            _, hwm = srv.rss_kib()
            srv.stop()
            r["rss_growth_kib"] = hwm - idle_rss
            results["big"].setdefault(srv.name, []).append(r)
        # The same side by side, 4 connections (with 1, two identical TCP echoes disagree by
        # 5%; with 4 they agree within 1%).
        big = ["--connections", str(BIG_CONNS), "--size", "16M", *dur]
        ratio = side_by_side(servers[1], servers[0], big, big)
        results["big_side_by_side"].append(ratio)
        print(f"rep {rep + 1} 16 MiB x {BIG_CONNS}   websock / TCP echo side by side: {ratio}",
              flush=True)
    # Alternating windows move by 10-20% on a noisy machine, enough to reorder close servers, so
    # websock is also loaded side by side with the two fastest peers of each workload.
    for wl, conns, size in WORKLOADS:
        ranked = sorted(servers[2:], key=lambda p: -(median(
            r.get("msgs_per_server_cpu_s") for r in results["throughput"][wl][p.name]
            if r.get("ok")) or 0))
        load = ["--connections", str(conns), "--size", size, *dur]
        for peer in ranked[:2]:
            for rep in range(args.reps):
                ratio = side_by_side(peer, servers[0], load, load)
                results["peer_side_by_side"].setdefault(wl, {}).setdefault(peer.name, []).append(
                    ratio)
                print(f"rep {rep + 1} {wl:14} websock / {peer.name} side by side: {ratio}",
                      flush=True)
    for srv in servers:  # RSS per idle connection, once per server, fresh process
        if srv.kind == "tcp":
            continue
        srv.start()
        r = wsload(srv, "--idle", str(args.idle), "--hold", "3", timeout=300)
        srv.stop()
        results["idle"][srv.name] = r
        print(f"idle {srv.name:18} {r.get('rss_per_conn_bytes')} B/conn", flush=True)
    results["servers"] = [s.name for s in servers]
    results["micro"] = args.micro
    return results


def run_deflate(args) -> dict:
    """The compressed workloads: websock side by side with each compressing peer (ratio of
    messages per server CPU-second per window, medians over --reps), wire bytes per message
    each way with the 32 KiB-window zlib reference, and RSS per idle connection after one
    compressed message each way."""
    websock = Server("websock", "websock")
    peers = []
    for label, kind in DEFLATE_PEERS:
        peer = Server(label, kind, ("--deflate",))
        try:
            peer.start()
            peer.stop()
            peers.append(peer)
        except RuntimeError as e:
            print(f"skipping {label}: {e} (build with bench/peers/build.sh)", file=sys.stderr)
    dur = ["--duration", str(args.duration), "--warmup", str(args.warmup)]
    res: dict = {"machine": machine(), "workloads": {}, "idle": {},
                 "servers": ["websock"] + [p.name for p in peers],
                 "reps": args.reps, "duration": args.duration, "idle_conns": args.deflate_idle}
    for wl, conns, size in DEFLATE_WORKLOADS:
        load = ["--connections", str(conns), "--size", size, "--payload", "json", "--deflate", *dur]
        out = res["workloads"].setdefault(wl, {"runs": {}, "ratios": {}})
        for rep in range(args.reps):
            for peer in peers:
                rp, rw, ratio = side_by_side_results(peer, websock, load, load)
                out["ratios"].setdefault(peer.name, []).append(ratio)
                out["runs"].setdefault(peer.name, []).append(rp)
                out["runs"].setdefault("websock", []).append(rw)
                print(f"rep {rep + 1} {wl:18} websock / {peer.name} side by side: {ratio}",
                      flush=True)
    for srv in [websock] + peers:  # a fresh process each: freed memory would hide the cost
        srv.start()
        r = wsload(srv, "--idle", str(args.deflate_idle), "--idle-echo", "--hold", "3",
                   "--deflate", "--payload", "json", "--size", "200", timeout=300)
        srv.stop()
        res["idle"][srv.name] = r
        print(f"idle {srv.name:18} {r.get('rss_per_conn_bytes')} B/conn after one echo",
              flush=True)
    return res


def deflate_section(res: dict) -> list[str]:
    m = res.get("machine", {})
    when = (f"`make bench-deflate` on {m['date']}: {m['cpu']}, {m['cores']} cores, Linux"
            f" {m['kernel']}, {m.get('compiler') or 'compiler unknown'}."
            if m.get("cpu") else "`make bench-deflate` (this run predates the machine record).")
    lines = [SECTION_BEGIN, "## Compressed: permessage-deflate, JSON-like text", "",
             when + " wsload offers `permessage-deflate; client_no_context_takeover;"
             " client_max_window_bits` and sends every message compressed (zlib level 6, as"
             " browsers); the text is JSON-like (`{\"id\":…,\"events\":[{\"user\":\"u4821\","
             "\"event\":\"click\",…}]}`: repeated keys, varying values). websock runs with its"
             " defaults, each peer with its own defaults for the extension (bench/peers/README.md)."
             f" Each peer is loaded side by side with websock (both servers on CPU 0, both"
             f" generators on CPU 1, {res['duration']} s windows, {res['reps']} windows per peer);"
             " *websock / peer* is the median of the per-window ratios of messages per server"
             " CPU-second. *Wire* is bytes per message on the wire, frame headers included:"
             " client to server is the same for every server (wsload's compression), server to"
             " client is each server's own. *Reference*: the same messages through one zlib"
             " stream with a 32 KiB window and context takeover (level 6), what a server keeping"
             " a full window per connection would send.", ""]
    for wl, out in res["workloads"].items():
        lines += [f"### {wl}", "",
                  "| server | msg per server CPU-s | websock / server, side by side | client→server B/msg |"
                  " server→client B/msg | echoes compressed | reference B/msg | server→client / reference |",
                  "|---|---|---|---|---|---|---|---|"]
        for name in res["servers"]:
            runs = [r for r in out["runs"].get(name, []) if r.get("ok")]
            if not runs:
                lines.append(f"| {name} | failed: {(out['runs'].get(name) or [{}])[0].get('first_error') or (out['runs'].get(name) or [{}])[0].get('error')} | | | | | | |")
                continue
            cpu = median(r.get("msgs_per_server_cpu_s") for r in runs)
            w_out = median(r["wire_bytes_per_msg"]["out"] for r in runs)
            w_in = median(r["wire_bytes_per_msg"]["in"] for r in runs)
            zfrac = sum(r["deflate"]["echoes_compressed"] for r in runs) / max(1, sum(r["messages"] for r in runs))
            ref = median(r["deflate"]["reference_bytes_per_msg"] for r in runs)
            ratio = median(out["ratios"].get(name, [])) if name != "websock" else None
            lines.append(f"| {name} | {'—' if cpu is None else f'{cpu:,.0f}'} | "
                         f"{fmt(ratio * 100 if ratio else None, '%')} | {fmt(w_out, '', 1)} | "
                         f"{fmt(w_in, '', 1)} | {zfrac * 100:.0f}% | {fmt(ref, '', 1)} | "
                         f"{fmt(w_in / ref * 100 if ref else None, '%')} |")
        lines.append("")
    lines += [f"RSS per idle connection after one 200 B JSON message echoed compressed each way"
              f" ({res['idle_conns']} connections, `wsload --idle {res['idle_conns']} --idle-echo"
              " --deflate --payload json --size 200`, fresh server):", "",
              "| server | RSS per connection | alive |", "|---|---|---|"]
    for name in res["servers"]:
        r = res["idle"].get(name, {})
        per = r.get("rss_per_conn_bytes")
        lines.append(f"| {name} | {'—' if per is None or not r.get('ok') else f'{per / 1000:.2f} KB'}"
                     f" | {r.get('alive', '—')} |")
    return lines + ["", SECTION_END]


def splice_deflate_section(lines: list[str]) -> None:
    """Replaces (or appends) the compressed section of BENCHMARKS.md."""
    path = TOP / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = "\n".join(lines)
    if SECTION_BEGIN in text and SECTION_END in text:
        head, rest = text.split(SECTION_BEGIN, 1)
        text = head + block + rest.split(SECTION_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def fmt(v, unit="", digits=0):
    if v is None:
        return "—"
    if unit == "k":
        return f"{v / 1000:.0f}k"
    return f"{v:.{digits}f}{unit}"


def settings(res: dict, args) -> dict:
    """The run's settings; a results file written before they were recorded gets them from
    its own figures (repetitions and windows) and the defaults it was run with."""
    if "settings" in res:
        return res["settings"]
    wl = res["throughput"][WORKLOADS[0][0]]["websock"]
    idle = res["idle"].get("websock", {})
    return {"reps": len(wl), "duration": round(wl[0].get("window_s", args.duration)),
            "warmup": wl[0].get("warmup_s", args.warmup), "rate": args.rate,
            "idle": idle.get("connections", args.idle)}


def header(res: dict, st: dict) -> list[str]:
    m = res.get("machine", {})
    if m.get("cpu"):
        where = (f"Generated by `make bench` on {m['date']}: {m['cpu']}, {m['cores']} cores,"
                 f" Linux {m['kernel']}, {m.get('compiler') or 'compiler unknown'}"
                 f"{', websock ' + m['websock_commit'] if m.get('websock_commit') else ''}.")
    else:
        where = (f"Generated by `make bench` on {m.get('date', 'a date not recorded')}. The"
                 " machine (CPU model, kernel, compiler) was not recorded by that run, which"
                 " predates the record; runs since record it here and in"
                 " bench/benchmarks.json.")
    return ["# Benchmarks", "", where + " Server pinned to CPU 0, `bench/build/wsload` to CPU 1;"
            f" {st['reps']} repetitions alternating between servers, medians; {st['duration']} s"
            f" windows after {st['warmup']:g} s warm-up; binary messages, one in flight per"
            " connection. A workload such as *20 B msgs, 100 conns* (written `20 B x 100` in"
            " bench/benchmarks.json) is 20-byte messages on 100 connections open at once, each"
            " sending its next message when the echo of the last one is back. Every echoed byte"
            " is verified by the generator.", "",
            "`make bench` takes about 40 minutes on 2 cores (`make bench-report` rewrites this"
            " page and the chart from bench/benchmarks.json without running anything)."]


def ranged(values, unit="k") -> str:
    values = [v for v in values if v]
    if not values:
        return "—"
    low = fmt(min(values), unit)
    return f"{low[:-1] if unit == '%' else low}–{fmt(max(values), unit)}"


def drift_note(res: dict, notes: list[str]) -> list[str]:
    """Why websock can top the plain TCP echo in the alternating figures: one paragraph for
    the cells marked (1), (2)..., with each one's figures."""
    if not notes:
        return []
    marks = ", ".join(f"({i})" for i in range(1, len(notes) + 1))
    text = (f"{marks} websock above the plain TCP echo is drift between windows, not a faster"
            " echo. The TCP echo (bench/tcp_echo.c) makes the same system calls per message as"
            " websock (edge-triggered epoll, one recv and one send per readiness event,"
            " TCP_NODELAY) and no protocol work, so it is the floor, not a competitor. But each"
            " server's alternating windows spread widely on this machine, and the medians"
            " landed in different places. Loaded side by side in the same windows, where drift"
            " hits both, the ratio is the measurement.")
    for i, wl in enumerate(notes, 1):
        cpu = {n: [r.get("msgs_per_server_cpu_s") for r in res["throughput"][wl][n] if r.get("ok")]
               for n in ("websock", "plain TCP echo")}
        paired = [v for v in res.get("side_by_side", {}).get(wl, []) if v]
        text += (f" ({i}) {shown(wl)}: windows of websock {ranged(cpu['websock'])}, of the TCP"
                 f" echo {ranged(cpu['plain TCP echo'])} msg per server CPU-s; side by side"
                 f" {fmt(median(paired) * 100 if paired else None, '%')}"
                 f" ({ranged([v * 100 for v in paired], '%')} in {len(paired)} windows).")
    return [text]


def sign_test(worse: int, n: int) -> float:
    """Two-sided sign test: how likely a split at least this uneven is by chance."""
    k = max(worse, n - worse)
    tail = sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def latency_pairs_section() -> list[str]:
    if not LATENCY_PAIRS_JSON.exists():
        return []
    data = json.loads(LATENCY_PAIRS_JSON.read_text())
    lines = ["", "### Is the tail the server's or the machine's? Side by side",
             "", data["method"], "",
             "| pair (a / b) | windows | a p99.9 µs, median | b p99.9 µs, median"
             " | a − b, median µs | a worse in | sign test p |", "|---|---|---|---|---|---|---|"]
    for pair in data["pairs"]:
        ws = [w for w in pair["windows"] if w["a"].get("ok") and w["b"].get("ok")]
        if not ws:
            continue
        a = [w["a"]["latency_us"]["p99_9"] for w in ws]
        b = [w["b"]["latency_us"]["p99_9"] for w in ws]
        diffs = [x - y for x, y in zip(a, b)]
        worse = sum(d > 0 for d in diffs)
        how = (f"one after the other, each alone at {pair['rate']} msg/s"
               if pair.get("mode") == "alternate" else f"side by side, {pair['rate']} msg/s each")
        lines.append(f"| {pair['a']} / {pair['b']} ({how}) | {len(ws)} | {median(a):.0f} | {median(b):.0f}"
                     f" | {median(diffs):+.0f} | {worse} of {len(ws)} |"
                     f" {sign_test(worse, len(ws)):.2f} |")
    if data.get("conclusion"):
        lines += ["", data["conclusion"]]
    return lines


def write_report(res: dict, args) -> None:
    servers = res["servers"]
    st = settings(res, args)
    kernel = any(r.get("kernel_per_conn_both_ends_bytes") is not None for r in res["idle"].values())
    lines = header(res, st) + ["",
             "## Messages echoed per second of server CPU time", "",
             "The client saturates the other core, so wall-clock throughput is client-bound;"
             " this figure is not.", "",
             "| server | " + " | ".join(shown(w) for w, _, _ in WORKLOADS)
             + f" | server RSS per idle conn ({st['idle']} conns) |"
             + (" kernel per conn, both ends |" if kernel else ""),
             "|---" * (len(WORKLOADS) + 2 + kernel) + "|"]
    table, notes = {}, []
    for name in servers[:2] + [FRAMED_NAME, FLOOR_NAME] + servers[2:]:
        if name not in res["throughput"][WORKLOADS[0][0]]:
            continue
        row = []
        for wl, _, _ in WORKLOADS:
            v = median(r.get("msgs_per_server_cpu_s") for r in res["throughput"][wl][name]
                       if r.get("ok"))
            table[(name, wl)] = v
            tcp = median(r.get("msgs_per_server_cpu_s") for r in res["throughput"][wl]
                         ["plain TCP echo"] if r.get("ok"))
            cell = fmt(v, "k")
            if name == "websock" and v and tcp and v > tcp:
                notes.append(wl)
                cell += f" ({len(notes)})"
            row.append(cell)
        idle = res["idle"].get(name, {})
        per = idle.get("rss_per_conn_bytes")
        row.append("—" if per is None else f"{per / 1000:.2f} KB")
        if kernel:
            k = idle.get("kernel_per_conn_both_ends_bytes")
            row.append("—" if k is None else f"{k / 1000:.2f} KB")
        label = f"{name} (26 B / 16392 B)" if name in (FRAMED_NAME, FLOOR_NAME) else name
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    lines.append("")
    lines += drift_note(res, notes)
    lines += ["", "*Server RSS per idle connection*: how much the server's resident memory grows"
              f" with {st['idle']} idle upgraded connections open (`wsload --idle`, a freshly"
              " started server), divided by the number of connections. It counts the server"
              " process's own memory only. The kernel's memory for each connection (the TCP"
              " socket, its file and epoll entry, in slab; socket buffers) is in no process's"
              " RSS and is about the same whatever the server: "
              + ("the last column is the growth of the kernel's socket slab caches and TCP"
                 " buffer pages (/proc/slabinfo, /proc/net/sockstat) over the same interval,"
                 " machine-wide, for both ends of each connection (the client's socket and the"
                 " server's), so about half of it is the server's."
                 if kernel else
                 "**it is not counted in this run**. `wsload --idle` now also reports it"
                 " (`kernel_per_conn_both_ends_bytes`: slab and TCP buffer pages, both ends of"
                 " each connection), and the next `make bench` puts it in a column here;"
                 " measured apart from this run (bench/README.md, --idle), it was 6.4 to 7.5 KB"
                 " per connection for both ends together, about 3.5 KB per end, with websock"
                 " and with gorilla/websocket alike.")]
    lines += ["", "websock relative to the plain TCP echo and to the best WebSocket peer. *Side by"
              " side*: websock and the TCP echo loaded in the same windows (both servers on CPU 0,"
              " both generators on CPU 1), the median of the per-window ratios; drift in the"
              " machine, which moves the alternating figures by several percent, cancels out of"
              " it. *Frame-sized*: against a TCP echo of messages as large as the client's"
              " frames. *Floor*: the frame-sized TCP echo that also makes one XOR pass over every"
              " byte, as unmasking does, side by side with the plain TCP echo: the most any"
              " WebSocket echo can reach here before it parses a single header. *Best peer, side by"
              " side*: websock loaded in the same windows as each of the two fastest peers of the"
              " workload; the lower of the two medians, and which peer it was. Where the"
              " alternating and the side-by-side figures disagree, the side-by-side one is the"
              " measurement.", "",
              "| workload | websock / TCP echo, alternating | side by side | websock / TCP echo,"
              " frame-sized | floor / TCP echo, side by side | websock / best peer (which) |"
              " websock / best peer, side by side (which) |",
              "|---|---|---|---|---|---|---|"]
    for wl, _, _ in WORKLOADS:
        ws, tcp = table.get(("websock", wl)), table.get(("plain TCP echo", wl))
        framed = table.get((FRAMED_NAME, wl))
        paired = median(res.get("side_by_side", {}).get(wl, []))
        floor = median(res.get("floor_side_by_side", {}).get(wl, []))
        peers = [(table.get((n, wl)), n) for n in servers if n not in ("websock", "plain TCP echo")
                 and table.get((n, wl))]
        best = max(peers) if peers else (None, "—")
        pairs = [(median(v), n) for n, v in res.get("peer_side_by_side", {}).get(wl, {}).items()
                 if median(v)]
        closest = min(pairs) if pairs else (None, "—")
        mark = f" ({notes.index(wl) + 1})" if wl in notes else ""
        lines.append(f"| {shown(wl)} | {fmt(ws / tcp * 100 if ws and tcp else None, '%')}{mark} | "
                     f"{fmt(paired * 100 if paired else None, '%')} | "
                     f"{fmt(ws / framed * 100 if ws and framed else None, '%')} | "
                     f"{fmt(floor * 100 if floor else None, '%')} | "
                     f"{fmt(ws / best[0] * 100 if ws and best[0] else None, '%')} ({best[1]}) | "
                     f"{fmt(closest[0] * 100 if closest[0] else None, '%')} ({closest[1]}) |")
    lines += ["", f"## Latency at a fixed rate ({st['rate']} msg/s over 100 connections, 20 B)", "",
              "Measured from each message's scheduled send time (no coordinated omission). A"
              f" window in which the generator itself sent late (its p99 send lag over"
              f" {LAG_LIMIT_US} µs: the machine stalled, not the server) is left out; *windows*"
              " says how many were kept. The last column is every window's p99.9, repetition by"
              " repetition: a p99.9 is set by about 100 of a window's 100,000 messages, so one stall of"
              " the machine of a few milliseconds (another process on the core, the hypervisor)"
              " decides it, and one server's windows spread further apart than the servers'"
              " medians. The p99.9 medians of this table do not rank the servers; the side-by-side"
              " measurement below does.", "",
              "| server | p50 µs | p90 µs | p99 µs | p99.9 µs | windows | p99.9 of each window µs |",
              "|---|---|---|---|---|---|---|"]
    # The note on websock's p99.9 belongs to the run it was written about, not to later ones.
    pairs = json.loads(LATENCY_PAIRS_JSON.read_text()) if LATENCY_PAIRS_JSON.exists() else {}
    table_note = (pairs.get("table_note") if pairs.get("about_run")
                  == res.get("machine", {}).get("date") else None)
    for name, runs in res["latency"].items():
        ok = [r for r in runs if r.get("ok")]
        clean = [r for r in ok if (r.get("send_lag_us") or {}).get("p99", 0) <= LAG_LIMIT_US]
        pct = {k: median(r["latency_us"][k] for r in clean) for k in ("p50", "p90", "p99", "p99_9")}
        each = ", ".join(str(r["latency_us"]["p99_9"]) for r in clean)
        cells = [fmt(pct[k]) for k in ("p50", "p90", "p99", "p99_9")]
        if name == "websock" and table_note:
            cells[-1] += " (\\*)"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {len(clean)} of {len(runs)} | {each} |")
    if table_note:
        lines += ["", "(\\*) " + table_note]
    lines += latency_pairs_section()
    lines += ["", "## 16 MiB messages (one connection)", "",
              "| server | MB/s | msgs per server CPU-s | server peak RSS growth |", "|---|---|---|---|"]
    for name, runs in res["big"].items():
        ok = [r for r in runs if r.get("ok")]
        lines.append(f"| {name} | {fmt(median(r['mb_per_s'] for r in ok))} | "
                     f"{fmt(median(r['msgs_per_server_cpu_s'] for r in ok), '', 1)} | "
                     f"{fmt(median(r['rss_growth_kib'] for r in ok) / 1024 if ok else None, ' MiB', 2)} |")
    big = [r for r in res.get("big_side_by_side", []) if r]
    if big:
        lines += ["", f"Side by side, {BIG_CONNS} connections (both servers on CPU 0 in the same "
                  "windows, messages per server CPU-second): websock / plain TCP echo = "
                  f"{fmt(median(big) * 100, '%')} (median of {len(big)}; "
                  f"{', '.join(f'{r * 100:.0f}%' for r in big)})."]
    if DEFLATE_JSON.exists():  # the compressed section, from the last `make bench-deflate`
        lines += [""] + deflate_section(json.loads(DEFLATE_JSON.read_text()))
    lines += ["", "## Micro-benchmarks (`make bench-micro`)", "", "```", res.get("micro", "").strip(),
              "```", "", "![messages per server CPU-second and RSS per connection](bench/benchmarks.png)",
              ""]
    # The million-connection section is written by hand from `make bench-c1m`: kept as it is.
    old = (TOP / "BENCHMARKS.md").read_text() if (TOP / "BENCHMARKS.md").exists() else ""
    # The wss section is bench/report/tls.py's (make bench-tls, which make bench runs next).
    if TLS_BEGIN in old and TLS_END in old:
        lines += [TLS_BEGIN + old.split(TLS_BEGIN, 1)[1].split(TLS_END, 1)[0] + TLS_END, ""]
    if C1M_BEGIN in old and C1M_END in old:
        lines += [C1M_BEGIN + old.split(C1M_BEGIN, 1)[1].split(C1M_END, 1)[0] + C1M_END, ""]
    (TOP / "BENCHMARKS.md").write_text("\n".join(lines))
    (TOP / "bench/benchmarks.json").write_text(json.dumps(res, indent=1))
    chart(res, table, servers)


def chart(res, table, servers) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no chart", file=sys.stderr)
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 5.6), gridspec_kw={"width_ratios": [3, 1]})
    width = 0.8 / len(servers)
    for i, name in enumerate(servers):
        vals = [(table.get((name, wl)) or 0) / 1000 for wl, _, _ in WORKLOADS]
        ax1.bar([x + i * width for x in range(len(WORKLOADS))], vals, width, label=name)
    for x, (wl, _, _) in enumerate(WORKLOADS):  # where the alternating medians mislead
        ws, tcp = table.get(("websock", wl)), table.get(("plain TCP echo", wl))
        if ws and tcp and ws > tcp:
            ax1.annotate("above the TCP echo:\ndrift between windows\n(see below)",
                         (x, ws / 1000), xytext=(0, 6), textcoords="offset points",
                         ha="left", va="bottom", fontsize=7)
    ax1.margins(y=0.15)
    ax1.set_xticks([x + width * (len(servers) - 1) / 2 for x in range(len(WORKLOADS))])
    labels = []
    for wl, _, _ in WORKLOADS:
        paired = median(res.get("side_by_side", {}).get(wl, []))
        labels.append(shown(wl) + (f"\nside by side: websock = {paired * 100:.0f}%\nof the TCP echo"
                                   if paired else ""))
    ax1.set_xticklabels(labels, fontsize=8)
    ax1.set_ylabel("thousand messages per server CPU-second")
    ax1.legend(fontsize=8)
    ax1.set_title("Echo throughput per server CPU-second (higher is better)")
    names = [n for n in servers if res["idle"].get(n, {}).get("rss_per_conn_bytes") is not None]
    bars = ax2.bar(range(len(names)), [res["idle"][n]["rss_per_conn_bytes"] / 1000 for n in names])
    ax2.bar_label(bars, fmt="%.2f", fontsize=8)
    ax2.set_xticks(range(len(names)))
    ax2.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax2.set_ylabel("KB of server RSS per idle connection")
    ax2.set_title("Memory (lower is better)")
    ax2.margins(y=0.12)
    drift = max((abs(v / m - 1) for wl, _, _ in WORKLOADS for n in ("websock", "plain TCP echo")
                 for vs in [[r.get("msgs_per_server_cpu_s") for r in res["throughput"][wl][n]
                             if r.get("ok") and r.get("msgs_per_server_cpu_s")]]
                 for m in [median(vs)] if m for v in vs), default=0)
    below = all(v < 1 for wl, _, _ in WORKLOADS for v in res.get("side_by_side", {}).get(wl, [])
                if v)
    note = ("Bars: medians of windows that alternate between servers. A server's windows land up"
            f" to {drift * 100:.0f}% from its median on this machine, which is how websock's bar"
            " can top the plain TCP echo's, a floor that makes the same system calls and no"
            " protocol work. Loaded side by side in the same windows (the ratio under each"
            f" group){', websock is below it in every window' if below else ''}. Memory: growth"
            " of the server process's RSS per idle upgraded connection; the kernel's memory for"
            " each socket (slab, buffers: several KB, about the same for every server) is not"
            " included. Details and per-window figures: BENCHMARKS.md.")
    fig.text(0.01, 0.01, textwrap.fill(note, 190), fontsize=8, va="bottom")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(TOP / "bench/benchmarks.png", dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--rate", type=int, default=20000)
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--micro", default="")
    ap.add_argument("--from-json", action="store_true",
                    help="run nothing: rewrite BENCHMARKS.md and the chart from"
                         " bench/benchmarks.json (make bench-report)")
    ap.add_argument("--deflate-only", action="store_true",
                    help="only the compressed workloads (make bench-deflate)")
    ap.add_argument("--deflate-idle", type=int, default=5000,
                    help="connections for RSS per idle connection after one compressed echo")
    args = ap.parse_args()
    if args.deflate_only:
        res = run_deflate(args)
        DEFLATE_JSON.write_text(json.dumps(res, indent=1))
        section = deflate_section(res)
        splice_deflate_section(section)
        print("\n".join(section))
        return
    if args.from_json:
        res = json.loads((TOP / "bench/benchmarks.json").read_text())
        if args.micro:
            res["micro"] = args.micro
        elif "micro" not in res:  # a results file from before it kept them: take the report's
            md = (TOP / "BENCHMARKS.md").read_text()
            block = md.split("## Micro-benchmarks", 1)[1].split("```", 2)[1] if \
                "## Micro-benchmarks" in md else ""
            res["micro"] = block.strip()
        write_report(res, args)
        return
    write_report(run(args), args)
    print((TOP / "BENCHMARKS.md").read_text())


if __name__ == "__main__":
    main()
