#!/usr/bin/env bash
# Build the interop clients (tests/interop/<lib>) into OUT (default build/interop):
#
#   OUT/go-client            go build, modules pinned by go/go.sum (Go module proxy on first use)
#   OUT/rust-client          cargo build --release --locked, CARGO_TARGET_DIR=OUT/rust-target
#                            (native-tls for wss://: needs pkg-config and libssl-dev)
#   OUT/soketto-client       the same for soketto/ (the deflate column), in the same target
#                            directory: the crates both use (native-tls, openssl...) build once
#   OUT/node/client.js       npm ci from node/package-lock.json into OUT/node
#
# The Python client needs no build: it runs in build/venv, where the Makefile installs
# tests/requirements.txt. Quiet on success apart from one line per client. A missing or too
# old toolchain is named with the version needed; a failing step's output is shown. Every
# client is attempted; the exit status is 1 when any failed, and the last line names them.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/../../build/interop}
mkdir -p "$out" && out=$(cd "$out" && pwd)
logdir=$(mktemp -d "${TMPDIR:-/tmp}/interop-build.XXXXXX")
trap 'rm -rf "$logdir"' EXIT

failed=()

fail() {
    echo "interop build: $1: $2" >&2
    failed+=("$1")
}

# run NAME CMD...: run CMD with its output in a log; on failure show the log's tail.
run() {
    local name=$1
    shift
    "$@" >"$logdir/$name.log" 2>&1 && return 0
    echo "interop build: $name: failed: $*" >&2
    tail -n 40 "$logdir/$name.log" | sed 's/^/    /' >&2
    return 1
}

have() { command -v "$1" >/dev/null 2>&1; }

# at_least FOUND NEEDED: dotted version comparison
at_least() { [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1) == "$2" ]]; }

build_go() {
    local need=1.22 v
    have go || { fail go "go not found: install Go $need or newer (the go command on PATH)"; return; }
    v=$(go env GOVERSION 2>/dev/null) && v=${v#go} && v=${v%%[-+ ]*}
    at_least "$v" "$need" || { fail go "go $v found, Go $need or newer is needed"; return; }
    # -mod=readonly: go.mod and go.sum are used as they are, never rewritten
    run go env -C "$here/go" go build -mod=readonly -buildvcs=false -trimpath -o "$out/go-client" . ||
        { fail go "go build failed"; return; }
    echo "go $out/go-client"
}

# build_cargo NAME DIR: cargo build --release of DIR/Cargo.toml into OUT/NAME
build_cargo() {
    local name=$1 dir=$2 need=1.85 v # tungstenite 0.30's rust-version
    have cargo || { fail "$dir" "cargo not found: install a Rust toolchain $need or newer (cargo and rustc on PATH)"; return; }
    v=$(rustc --version 2>/dev/null | awk '{print $2}')
    at_least "${v:-0}" "$need" || { fail "$dir" "rustc ${v:-(none)} found, Rust $need or newer is needed"; return; }
    # wss:// goes through native-tls, which links the system's libssl (openssl-sys finds it
    # with pkg-config)
    pkg-config --exists openssl 2>/dev/null ||
        { fail "$dir" "pkg-config and OpenSSL's headers are needed (Debian: apt-get install pkgconf libssl-dev)"; return; }
    local manifest=$here/$dir/Cargo.toml
    export CARGO_TARGET_DIR=$out/rust-target
    # Offline first: no network when the crates are already in cargo's cache. Otherwise fetch
    # the versions pinned in Cargo.lock, then build offline.
    if ! cargo build --release --locked --offline -q --manifest-path "$manifest" >"$logdir/$dir.log" 2>&1; then
        run "$dir" cargo fetch --locked -q --manifest-path "$manifest" || { fail "$dir" "fetching crates failed"; return; }
        run "$dir" cargo build --release --locked --offline -q --manifest-path "$manifest" ||
            { fail "$dir" "cargo build failed"; return; }
    fi
    cp "$CARGO_TARGET_DIR/release/$name" "$out/$name" || { fail "$dir" "copying the binary failed"; return; }
    echo "$dir $out/$name"
}

build_node() {
    local need=18 v dir=$out/node
    have node || { fail node "node not found: install Node.js $need or newer with npm (Debian: apt-get install nodejs npm)"; return; }
    have npm || { fail node "npm not found: install npm (Debian: apt-get install npm)"; return; }
    v=$(node --version) && v=${v#v}
    at_least "$v" "$need" || { fail node "node $v found, Node.js $need or newer is needed"; return; }
    mkdir -p "$dir" && cp -p "$here/node/package.json" "$here/node/package-lock.json" "$here/node/client.js" "$dir/" ||
        { fail node "copying the client failed"; return; }
    # npm writes node_modules/.package-lock.json on install; if it is older than the lock file
    # (or absent), install again from package-lock.json exactly
    if [[ ! -e $dir/node_modules/.package-lock.json || $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]]; then
        run node env -C "$dir" npm ci --no-audit --no-fund --loglevel=error || { fail node "npm ci failed"; return; }
    fi
    echo "node $dir/client.js"
}

build_go
build_cargo rust-client rust
build_cargo soketto-client soketto
build_node

if ((${#failed[@]})); then
    echo "interop build: FAILED: ${failed[*]}" >&2
    exit 1
fi
exit 0
