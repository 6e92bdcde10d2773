#!/usr/bin/env python3
"""Judge an Autobahn fuzzingclient report (reports/servers/index.json) strictly.

index.json maps agent -> case id -> {behavior, behaviorClose, duration, remoteCloseCode,
reportfile}. Every case must have behavior OK and behaviorClose OK (NON-STRICT, UNCLEAN,
WRONG CODE, FAILED BY CLIENT, ... all fail), except the cases the suite itself always scores
INFORMATIONAL; exactly the suite's cases 1.* to 10.* must be present. Exit 0 only if all good.
"""
import argparse
import collections
import json
import os
import sys

# Case ids 1.* to 10.* of autobahntestsuite 25.10.1, as "prefix": N meaning prefix.1 .. prefix.N.
# Derived from autobahntestsuite/case/__init__.py (the `Cases` list, class CaseX_Y_Z -> "X.Y.Z",
# keeping X in 1..10; there is no group 8, and 12.*/13.* are permessage-deflate, not run).
SUITE_CASES = {
    "1.1": 8, "1.2": 8, "2": 11, "3": 7, "4.1": 5, "4.2": 5, "5": 20,
    "6.1": 3, "6.2": 4, "6.3": 2, "6.4": 4, "6.5": 5, "6.6": 11, "6.7": 4, "6.8": 2, "6.9": 4,
    "6.10": 3, "6.11": 5, "6.12": 8, "6.13": 5, "6.14": 10, "6.15": 1, "6.16": 3, "6.17": 5,
    "6.18": 5, "6.19": 5, "6.20": 7, "6.21": 8, "6.22": 34, "6.23": 7,
    "7.1": 6, "7.3": 6, "7.5": 1, "7.7": 13, "7.9": 9, "7.13": 2,
    "9.1": 6, "9.2": 6, "9.3": 9, "9.4": 9, "9.5": 6, "9.6": 6, "9.7": 6, "9.8": 6, "10.1": 1,
}
EXPECTED_IDS = {"%s.%d" % (p, i) for p, n in SUITE_CASES.items() for i in range(1, n + 1)}
DEFAULT_EXPECT = 301  # == len(EXPECTED_IDS): 517 suite cases minus 90 in 12.* and 126 in 13.*

# The only cases whose own code sets behavior = behaviorClose = Case.INFORMATIONAL
# (autobahntestsuite/case/case7_1_6.py, case7_13_1.py, case7_13_2.py): the spec leaves their
# outcome open, so INFORMATIONAL (or OK) is accepted there and nowhere else.
INFORMATIONAL_CASES = {"7.1.6", "7.13.1", "7.13.2"}


def case_key(case_id):
    return tuple(int(x) if x.isdigit() else x for x in case_id.split("."))


def verdict_ok(case_id, verdict):
    return verdict == "OK" or (verdict == "INFORMATIONAL" and case_id in INFORMATIONAL_CASES)


def close_frames_received(index_path, case):
    """Close frames the fuzzer got from websock, from the case's own report; None if unknown."""
    path = os.path.join(os.path.dirname(os.path.abspath(index_path)), case.get("reportfile") or "")
    try:
        with open(path) as f:
            return int(json.load(f).get("rxFrameStats", {}).get("8", 0))
    except (OSError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index", nargs="?", default="reports/servers/index.json",
                    help="path to index.json (default: %(default)s)")
    ap.add_argument("--agent", help="agent to check (default: the only agent in the report)")
    ap.add_argument("--expect", type=int, default=DEFAULT_EXPECT,
                    help="number of cases that must have run (default: %(default)s, all of 1.*-10.*)")
    ap.add_argument("--require-close-frame", action="store_true",
                    help="also fail cases where websock sent no Close frame (Autobahn accepts a bare "
                         "TCP drop when the server fails a connection; our design does not)")
    ap.add_argument("--slowest", type=int, default=10, help="how many slowest cases to list")
    args = ap.parse_args()

    try:
        with open(args.index) as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        print("check_report: cannot read %s: %s" % (args.index, e), file=sys.stderr)
        return 2
    agent = args.agent
    if agent is None:
        if len(index) != 1:
            print("check_report: report has agents %s; pick one with --agent" % sorted(index),
                  file=sys.stderr)
            return 2
        agent = next(iter(index))
    if agent not in index:
        print("check_report: agent %r not in report (has %s)" % (agent, sorted(index)), file=sys.stderr)
        return 2
    cases = index[agent]
    runner_file = os.path.join(os.path.dirname(os.path.abspath(args.index)), "runner.txt")
    runner = open(runner_file).read().strip() if os.path.exists(runner_file) else "unknown"

    problems = []
    print("Autobahn report %s" % args.index)
    print("runner: %s; agent: %s; cases: %d" % (runner, agent, len(cases)))
    for field in ("behavior", "behaviorClose"):
        counts = collections.Counter(c.get(field, "MISSING") for c in cases.values())
        print("%-14s %s" % (field + ":", ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
    groups = collections.Counter(case_id.split(".")[0] for case_id in cases)
    print("per group:     %s" % ", ".join(
        "%s.* %d" % (g, n) for g, n in sorted(groups.items(), key=lambda kv: case_key(kv[0]))))
    slow = sorted(cases.items(), key=lambda kv: -(kv[1].get("duration") or 0))[:args.slowest]
    print("slowest:       %s" % ", ".join("%s %d ms" % (k, v.get("duration") or 0) for k, v in slow))

    for case_id in sorted(cases, key=case_key):
        c = cases[case_id]
        b, bc = c.get("behavior"), c.get("behaviorClose")
        if not (verdict_ok(case_id, b) and verdict_ok(case_id, bc)):
            problems.append("case %-8s behavior %-13s behaviorClose %-13s remoteCloseCode %s  (%s)" % (
                case_id, b, bc, c.get("remoteCloseCode"), c.get("reportfile")))

    no_close = sorted((k for k, c in cases.items() if close_frames_received(args.index, c) == 0), key=case_key)
    if no_close:
        note = "cases where websock sent no Close frame (%d): %s" % (len(no_close), " ".join(no_close))
        if args.require_close_frame:
            problems.append(note)
        else:
            print("note: " + note)

    extra = sorted(set(cases) - EXPECTED_IDS, key=case_key)
    if extra:
        problems.append("cases not in the suite's 1.*-10.*: %s" % " ".join(extra))
    if args.expect == DEFAULT_EXPECT:  # a full run: every suite case must be there
        missing = sorted(EXPECTED_IDS - set(cases), key=case_key)
        if missing:
            more = " ... (+%d more)" % (len(missing) - 20) if len(missing) > 20 else ""
            problems.append("missing cases (%d): %s%s" % (len(missing), " ".join(missing[:20]), more))
    if len(cases) != args.expect:
        problems.append("expected %d cases, report has %d" % (args.expect, len(cases)))

    if problems:
        print("\nFAILURES (%d):" % len(problems))
        for p in problems:
            print("  " + p)
        print("\nAUTOBAHN FAIL: %d problem(s) in %d cases (runner %s)" % (len(problems), len(cases), runner))
        return 1
    info = sum(1 for c in cases.values() if c.get("behavior") == "INFORMATIONAL")
    print("\nAUTOBAHN OK: all %d cases OK, %d of them informational (runner %s)" % (len(cases), info, runner))
    return 0


if __name__ == "__main__":
    sys.exit(main())
