#!/usr/bin/env bash
# User-space instructions per echoed message, counted by callgrind: repeatable on a noisy
# machine, so it catches regressions that wall-clock figures hide. Counts everything the server
# does inside its event loop (server_run), handshakes included, divided by messages echoed.
#   bench/report/instr.sh [websock-binary]
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${1:-$top/build/websock}
wsload=$top/bench/build/wsload
command -v valgrind >/dev/null || { echo "valgrind missing: apt-get install valgrind" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

printf '%-28s %14s %12s %14s\n' workload instructions messages "instr/message"
for spec in "20 binary" "20 text" "16K binary" "16K text" "1M binary"; do
    read -r size type <<<"$spec"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    valgrind --tool=callgrind --callgrind-out-file="$tmp/out" --toggle-collect=server_run \
        "$bin" --port "$port" --bind 127.0.0.1 --log-level warn 2>"$tmp/vg.log" &
    pid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    msgs=$("$wsload" --port "$port" --connections 10 --size "$size" "--$type" --duration 3 \
        --warmup 0 --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["messages"])')
    kill -TERM "$pid"
    wait "$pid"
    instr=$(awk '/^(summary|totals):/ {print $2; exit}' "$tmp/out")
    printf '%-28s %14s %12s %14.0f\n' "10 conns x $size $type" "$instr" "$msgs" \
        "$(echo "$instr / $msgs" | bc -l)"
done
