#!/usr/bin/env python3
"""Tail latency of two servers loaded side by side: is a p99.9 the server's or the machine's?

    bench/report/latency_pair.py websock lws-ev [--windows 10] [--rate 20000]

Both servers run on CPU 0 and both generators (`wsload --rate`, 100 connections, 20 B) on
CPU 1, in the same windows, so a stall of the machine lands in both windows at once. Prints
p50/p99/p99.9 per window for each, and the median over the windows of A's p99.9 minus B's.
A server name is `websock`, `tcp` (tcp_echo; `--raw` load) or a bench/peers/run.sh name (lws,
lws-ev, rust, go, node). Extra websock flags go after `--websock-args`. `--json FILE` keeps
every window's wsload result.

Two generators at 20000 msg/s each need more than the one core they share (wsload's sleeps
and wake-ups under --rate cost about 2/3 of a core at 20000 msg/s here), so side by side at
the bench's 20000 msg/s means `--rate 10000` each: the server core then carries 20000 msg/s
in all, as in make bench. `--alternate` runs each pair of windows one after the other
instead, each server alone at the full --rate: closer to make bench, but a stall of the
machine lands in one window of the pair only.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys

import matrix


def server(kind: str, extra: list[str]) -> matrix.Server:
    return matrix.Server(kind, kind, tuple(extra) if kind == "websock" else ())


def alone(srv: matrix.Server, load: list[str]) -> dict:
    srv.start()
    try:
        return matrix.wsload(srv, *load)
    finally:
        srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--windows", type=int, default=10)
    ap.add_argument("--rate", type=int, default=20000)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--alternate", action="store_true",
                    help="each window alone, a then b, instead of both at once")
    ap.add_argument("--websock-args", nargs=argparse.REMAINDER, default=[])
    ap.add_argument("--json", help="write every window's results here")
    args = ap.parse_args()
    load = ["--connections", "100", "--size", "20", "--rate", str(args.rate),
            "--duration", str(args.duration), "--warmup", str(args.warmup)]
    a, b = server(args.a, args.websock_args), server(args.b, args.websock_args)
    if args.a == args.b:
        a.name, b.name = args.a + " (1)", args.b + " (2)"
    keys = ("p50", "p99", "p99_9")
    rows, diffs = [], []
    print(f"{'window':>6} | {a.name + ' p50/p99/p99.9 us':>34} | {b.name + ' p50/p99/p99.9 us':>34}"
          f" | lag p99 a/b")
    for w in range(args.windows):
        # Swap which one starts first every other window: start-up order is not a factor.
        first, second = (a, b) if w % 2 == 0 else (b, a)
        if args.alternate:
            r1, r2 = alone(first, load), alone(second, load)
        else:
            r1, r2, _ = matrix.side_by_side_results(first, second, load, load)
        ra, rb = (r1, r2) if first is a else (r2, r1)
        rows.append({"a": ra, "b": rb})
        if not (ra.get("ok") and rb.get("ok")):
            print(f"{w + 1:>6} | failed: {ra.get('first_error')} / {rb.get('first_error')}")
            continue
        la, lb = ra["latency_us"], rb["latency_us"]
        diffs.append(la["p99_9"] - lb["p99_9"])
        print(f"{w + 1:>6} | {'/'.join(str(la[k]) for k in keys):>34} | "
              f"{'/'.join(str(lb[k]) for k in keys):>34} | "
              f"{ra['send_lag_us']['p99']}/{rb['send_lag_us']['p99']}", flush=True)
    ok = [r for r in rows if r["a"].get("ok") and r["b"].get("ok")]
    if ok:
        for name, side in ((a.name, "a"), (b.name, "b")):
            med = {k: statistics.median(r[side]["latency_us"][k] for r in ok) for k in keys}
            print(f"median {name}: " + "  ".join(f"{k} {med[k]:.0f}" for k in keys))
        worse = sum(d > 0 for d in diffs)
        print(f"{a.name} p99.9 - {b.name} p99.9: median {statistics.median(diffs):+.0f} us; "
              f"{a.name} worse in {worse} of {len(diffs)} windows")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"a": a.name, "b": b.name, "rate": args.rate,
                       "mode": "alternate" if args.alternate else "side by side",
                       "windows": rows}, f, indent=1)
    sys.exit(0 if len(ok) == args.windows else 1)


if __name__ == "__main__":
    main()
