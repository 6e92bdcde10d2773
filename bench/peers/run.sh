#!/usr/bin/env bash
# Start one benchmark peer in the foreground, listening on 127.0.0.1:PORT (WebSocket at /ws).
#
#   bench/peers/run.sh NAME PORT [--deflate]
#
# NAME: lws (libwebsockets, poll loop), lws-ev (libwebsockets on libev/epoll), rust
# (tokio-tungstenite, current-thread runtime), go (gorilla/websocket, GOMAXPROCS=1), node (ws).
# The script execs the server, so its PID is the server's: pin it with
#   taskset -c 0 bench/peers/run.sh rust 9001 & pid=$!
# --deflate turns on the peer's permessage-deflate (node, go, lws, lws-ev; rust has none:
# tungstenite does not implement the extension). Build first with bench/peers/build.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ $# -ne 2 && ! ($# -eq 3 && $3 == --deflate) ]]; then
    echo "usage: $0 lws|lws-ev|rust|go|node PORT [--deflate]" >&2
    exit 2
fi
name=$1 port=$2
extra=("${@:3}")
if [[ ${#extra[@]} -gt 0 && $name == rust ]]; then
    echo "run.sh: rust: tokio-tungstenite has no permessage-deflate" >&2
    exit 2
fi
if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    echo "run.sh: bad port: $port" >&2
    exit 2
fi

need() {
    if [[ ! -e $1 ]]; then
        echo "run.sh: $name is not built ($1 missing): run $here/build.sh" >&2
        exit 1
    fi
}

case $name in
lws)
    need "$here/lws/lws-echo"
    exec "$here/lws/lws-echo" "$port" "${extra[@]}"
    ;;
lws-ev)
    need "$here/lws/lws-echo"
    exec "$here/lws/lws-echo" "$port" --ev "${extra[@]}"
    ;;
rust)
    need "$here/rust/target/release/rust-echo"
    exec "$here/rust/target/release/rust-echo" "$port"
    ;;
go)
    need "$here/go/go-echo"
    GOMAXPROCS=1 exec "$here/go/go-echo" "$port" "${extra[@]}"
    ;;
node)
    need "$here/node/node_modules/ws/package.json"
    exec node "$here/node/server.js" "$port" "${extra[@]}"
    ;;
*)
    echo "run.sh: unknown peer '$name' (lws, lws-ev, rust, go, node)" >&2
    exit 2
    ;;
esac
