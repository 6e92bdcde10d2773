#!/usr/bin/env bash
# Build the benchmark peers that are missing or out of date.
#
#   bench/peers/build.sh [lws] [rust] [go] [node]      (default: all four)
#
# lws:  libwebsockets-dev from Debian (apt-get install when absent and running as root), make
# rust: cargo build --release --locked, offline when the crates are already in cargo's cache
# go:   go build (modules from go.sum; the Go module proxy on first use)
# node: npm ci when node_modules does not match package-lock.json
#
# Quiet on success apart from one line per peer: NAME PATH-OF-SERVER. Each step's output goes
# to a log that is shown when the step fails. Every requested peer is attempted; the exit
# status is non-zero when any failed, and the last line names those that did.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
logdir=$(mktemp -d "${TMPDIR:-/tmp}/peers-build.XXXXXX")
trap 'rm -rf "$logdir"' EXIT

failed=()

# run NAME STEP CMD...: run CMD with its output in a log; on failure show the log's tail.
run() {
    local name=$1 step=$2
    shift 2
    local log="$logdir/$name.log"
    if "$@" >"$log" 2>&1; then
        return 0
    fi
    {
        echo "build.sh: $name: $step failed: $*"
        tail -n 40 "$log" | sed 's/^/    /'
    } >&2
    return 1
}

fail() {
    echo "build.sh: $1: $2" >&2
    failed+=("$1")
}

have() { command -v "$1" >/dev/null 2>&1; }

lws_present() {
    have pkg-config && pkg-config --exists libwebsockets && [[ -e /usr/include/libwebsockets.h ]]
}

apt_install_lws() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q libwebsockets-dev pkg-config || {
        apt-get update -q && apt-get install -y -q libwebsockets-dev pkg-config
    }
}

build_lws() {
    if ! lws_present; then
        if [[ $(id -u) -ne 0 ]]; then
            fail lws "libwebsockets-dev is not installed and we are not root: apt-get install libwebsockets-dev pkg-config"
            return
        fi
        run lws "apt-get install libwebsockets-dev" apt_install_lws || { fail lws "could not install libwebsockets-dev"; return; }
        lws_present || { fail lws "libwebsockets-dev installed but pkg-config does not find libwebsockets"; return; }
    fi
    have make || { fail lws "make not found"; return; }
    run lws "make" make -C "$here/lws" lws-echo || { fail lws "compiling lws/lws-echo.c failed"; return; }
    echo "lws $here/lws/lws-echo"
}

build_rust() {
    have cargo || { fail rust "cargo not found (install a Rust toolchain)"; return; }
    local manifest="$here/rust/Cargo.toml"
    # Offline first: no network when the crates are already cached. Otherwise fetch the
    # versions pinned in Cargo.lock, then build offline.
    if ! cargo build --release --locked --offline -q --manifest-path "$manifest" >"$logdir/rust.log" 2>&1; then
        run rust "cargo fetch" cargo fetch --locked -q --manifest-path "$manifest" || { fail rust "fetching crates failed"; return; }
        run rust "cargo build" cargo build --release --locked --offline -q --manifest-path "$manifest" || { fail rust "cargo build failed"; return; }
    fi
    echo "rust $here/rust/target/release/rust-echo"
}

build_go() {
    have go || { fail go "go not found (install a Go toolchain)"; return; }
    # -mod=readonly: go.mod and go.sum are used as they are, never rewritten
    run go "go build" env -C "$here/go" go build -mod=readonly -buildvcs=false -trimpath -o go-echo . \
        || { fail go "go build failed"; return; }
    echo "go $here/go/go-echo"
}

build_node() {
    have node || { fail node "node not found"; return; }
    have npm || { fail node "npm not found"; return; }
    local dir="$here/node"
    # npm writes node_modules/.package-lock.json on install; if it is older than the lock
    # file (or absent), install again from package-lock.json exactly
    if [[ ! -e $dir/node_modules/ws/package.json || ! -e $dir/node_modules/.package-lock.json ||
        $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]]; then
        run node "npm ci" env -C "$dir" npm ci --no-audit --no-fund --loglevel=error \
            || { fail node "npm ci failed"; return; }
    fi
    echo "node $dir/server.js"
}

names=("$@")
((${#names[@]})) || names=(lws rust go node)
for n in "${names[@]}"; do
    case $n in
    lws) build_lws ;;
    rust) build_rust ;;
    go) build_go ;;
    node) build_node ;;
    *)
        echo "build.sh: unknown peer '$n' (lws, rust, go, node)" >&2
        exit 2
        ;;
    esac
done

if ((${#failed[@]})); then
    echo "build.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
exit 0
