#!/usr/bin/env python3
"""Judge an Autobahn fuzzingclient report (reports/servers/index.json) strictly.

index.json maps agent -> case id -> {behavior, behaviorClose, duration, remoteCloseCode,
reportfile}. Every case must have behavior OK and behaviorClose OK (NON-STRICT, UNCLEAN,
WRONG CODE, FAILED BY CLIENT, UNIMPLEMENTED, ... all fail), except the cases the suite itself
always scores INFORMATIONAL; exactly the cases of the chosen scope must be present. Exit 0 only
if all good. The scopes (case patterns) are defined here, and run.sh writes them into the spec.
"""
import argparse
import collections
import json
import os
import re
import sys

# Case ids of autobahntestsuite 25.10.1, as "prefix": N meaning prefix.1 .. prefix.N. Derived
# from autobahntestsuite/case/__init__.py (the `Cases` list, class CaseX_Y_Z -> "X.Y.Z"; there is
# no group 8 or 11) and case/case12_x_x.py (12.1-12.5: five test files, 13.1-13.7: seven
# permessage-deflate parameter sets, each with the same 18 message sizes).
SUITE_CASES = {
    "1.1": 8, "1.2": 8, "2": 11, "3": 7, "4.1": 5, "4.2": 5, "5": 20,
    "6.1": 3, "6.2": 4, "6.3": 2, "6.4": 4, "6.5": 5, "6.6": 11, "6.7": 4, "6.8": 2, "6.9": 4,
    "6.10": 3, "6.11": 5, "6.12": 8, "6.13": 5, "6.14": 10, "6.15": 1, "6.16": 3, "6.17": 5,
    "6.18": 5, "6.19": 5, "6.20": 7, "6.21": 8, "6.22": 34, "6.23": 7,
    "7.1": 6, "7.3": 6, "7.5": 1, "7.7": 13, "7.9": 9, "7.13": 2,
    "9.1": 6, "9.2": 6, "9.3": 9, "9.4": 9, "9.5": 6, "9.6": 6, "9.7": 6, "9.8": 6, "10.1": 1,
    "12.1": 18, "12.2": 18, "12.3": 18, "12.4": 18, "12.5": 18,
    "13.1": 18, "13.2": 18, "13.3": 18, "13.4": 18, "13.5": 18, "13.6": 18, "13.7": 18,
}
SUITE_IDS = {"%s.%d" % (p, i) for p, n in SUITE_CASES.items() for i in range(1, n + 1)}
assert len(SUITE_IDS) == 517

# What a run covers, as wstest case patterns. "full" is the whole suite. "nginx-sample" (the
# gate through nginx) is 1.*-10.* plus five of the 18 message sizes of every 12.x/13.x family
# (each test file, each deflate parameter set): .1 16 bytes, .4 1 KiB, .7 16 KiB, .11 8 KiB
# auto-fragmented into 256-byte frames, .16 128 KiB into 1 KiB frames; 1000 messages each. That
# is 60 of the 216 cases and about a fifth of their time.
DEFLATE_SAMPLE = ["%s.%d" % (family, i)
                  for family in ["12.%d" % j for j in range(1, 6)] + ["13.%d" % j for j in range(1, 8)]
                  for i in (1, 4, 7, 11, 16)]
SCOPES = {
    "full": ["*"],
    "nginx-sample": ["%d.*" % g for g in (1, 2, 3, 4, 5, 6, 7, 9, 10)] + DEFLATE_SAMPLE,
}

# The only cases whose own code sets behavior = behaviorClose = Case.INFORMATIONAL
# (autobahntestsuite/case/case7_1_6.py, case7_13_1.py, case7_13_2.py): the spec leaves their
# outcome open, so INFORMATIONAL (or OK) is accepted there and nowhere else.
INFORMATIONAL_CASES = {"7.1.6", "7.13.1", "7.13.2"}


def resolve(patterns):
    """Case ids matching wstest's patterns, as wstest resolves them (caseset.py): a pattern with
    '*' is a regex prefix match with '.' literal and '*' = '.*'; any other pattern is one id."""
    ids = set()
    for pat in patterns:
        if "*" in pat:
            rx = re.compile(pat.replace(".", r"\.").replace("*", ".*"))
            ids.update(i for i in SUITE_IDS if rx.match(i))
        else:
            ids.add(pat)
    return ids


def expected_ids(scope, exclude):
    return resolve(SCOPES[scope]) - resolve(exclude)


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
    ap.add_argument("--scope", choices=sorted(SCOPES), default="full",
                    help="which cases must have run, exactly (default: %(default)s, the whole suite)")
    ap.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                    help="leave these cases out of the scope (wstest pattern, repeatable; "
                         "e.g. 12.* and 13.* for a runner without permessage-deflate)")
    ap.add_argument("--expect", type=int,
                    help="only demand this many cases, of the scope's (for a partial run by hand)")
    ap.add_argument("--print-spec-cases", action="store_true",
                    help="print the scope's \"cases\" and \"exclude-cases\" for a wstest spec, and "
                         "its case \"count\", as JSON, and exit")
    ap.add_argument("--require-close-frame", action="store_true",
                    help="also fail cases where websock sent no Close frame (Autobahn accepts a bare "
                         "TCP drop when the server fails a connection; our design does not)")
    ap.add_argument("--slowest", type=int, default=10, help="how many slowest cases to list")
    args = ap.parse_args()
    want = expected_ids(args.scope, args.exclude)
    if args.print_spec_cases:
        print(json.dumps({"cases": SCOPES[args.scope], "exclude-cases": args.exclude, "count": len(want)}))
        return 0
    expect = len(want) if args.expect is None else args.expect

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
    print("runner: %s; agent: %s; scope: %s%s (%d cases); cases: %d" % (
        runner, agent, args.scope, "".join(" minus " + x for x in args.exclude), expect, len(cases)))
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

    extra = sorted(set(cases) - want, key=case_key)
    if extra:
        problems.append("cases outside scope %s: %s" % (args.scope, " ".join(extra)))
    if args.expect is None:  # the whole scope must be there
        missing = sorted(want - set(cases), key=case_key)
        if missing:
            more = " ... (+%d more)" % (len(missing) - 20) if len(missing) > 20 else ""
            problems.append("missing cases (%d): %s%s" % (len(missing), " ".join(missing[:20]), more))
    if len(cases) != expect:
        problems.append("expected %d cases (scope %s), report has %d" % (expect, args.scope, len(cases)))

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
