#!/usr/bin/env bash
# Shows that --workers N spreads a load over its workers: runs bench/build/wsload against
# websock --workers N and prints, per worker, the connections it held and the CPU time it
# spent (from /proc), beside the supervisor's. A demonstration with figures, not a benchmark
# of scaling: on a 2-core machine the generator needs a core of its own.
#   bench/workers.sh [websock-binary]      (WORKERS=2 CONNS=64 SIZE=1K DURATION=5)
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${1:-$top/build/websock}
workers=${WORKERS:-2} conns=${CONNS:-64} size=${SIZE:-1K} duration=${DURATION:-5}
make -s -C "$top" all
make -s -C "$top/bench"
wsload=$top/bench/build/wsload

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" --port "$port" --bind 127.0.0.1 --workers "$workers" --log-level warn &
pid=$!
tmp=$(mktemp -d)
trap 'kill -TERM $pid 2>/dev/null; wait $pid; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
for _ in $(seq 100); do
    [ "$(pgrep -P "$pid" | wc -l)" -eq "$workers" ] && break
    sleep 0.05
done
worker_pids=$(pgrep -P "$pid" | sort -n)

# CPU seconds (user + system) of a process, from fields 14 and 15 of /proc/PID/stat.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"; }
# Established connections on $port among the process's sockets.
conns_of() {
    python3 - "$1" "$port" <<'PY'
import os, sys
pid, port = sys.argv[1], int(sys.argv[2])
mine = {int(os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1]) for fd in os.listdir(f"/proc/{pid}/fd")
        if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")}
n = 0
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(table).readlines()[1:]:
        c = line.split()
        if c[3] == "01" and int(c[1].rsplit(":", 1)[1], 16) == port and int(c[9]) in mine:
            n += 1
print(n)
PY
}

# "pid cpu" lines before the load, "pid cpu connections" lines after it.
for p in $pid $worker_pids; do echo "$p $(cpu "$p")"; done > "$tmp/before"
"$wsload" --port "$port" --connections "$conns" --size "$size" --duration "$duration" \
    --warmup 1 --json > "$tmp/load.json" &
load=$!
sleep $((duration / 2 + 1))
for p in $worker_pids; do echo "$p $(conns_of "$p")"; done > "$tmp/held"
wait "$load"
for p in $pid $worker_pids; do echo "$p $(cpu "$p")"; done > "$tmp/after"

echo "websock --workers $workers; wsload: $conns connections x $size binary, ${duration} s"
python3 - "$tmp" "$pid" <<'PY'
import json, sys
tmp, sup = sys.argv[1], sys.argv[2]
r = json.load(open(f"{tmp}/load.json"))
read = lambda name: dict(line.split() for line in open(f"{tmp}/{name}"))
before, after, held = read("before"), read("after"), read("held")
used = {p: float(after[p]) - float(before[p]) for p in before}
total = sum(v for p, v in used.items() if p != sup) or 1
print(f"  {r['msgs_per_s']:.0f} messages/s, latency p50 {r['latency_us']['p50']} us, "
      f"p99 {r['latency_us']['p99']} us, lost {r['lost']}, errors {r['errors']}")
print(f"  {'process':<24}{'connections':>12}{'CPU seconds':>13}{'share':>8}")
for p in held:
    print(f"  {'worker (pid ' + p + ')':<24}{held[p]:>12}{used[p]:>13.2f}{100 * used[p] / total:>7.0f}%")
print(f"  {'supervisor (pid ' + sup + ')':<24}{'-':>12}{used[sup]:>13.2f}")
PY
