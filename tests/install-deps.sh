#!/bin/sh
# Checks the build and test prerequisites (with "browser": also those of make test-browser;
# with "build": only what building the server needs, for make run) and installs missing Debian
# packages when run as root.
missing=""
have_header() { printf '#include <%s>\n' "$1" | ${CC:-cc} -E -x c - >/dev/null 2>&1; }
command -v cc >/dev/null 2>&1 || missing="$missing build-essential"
command -v make >/dev/null 2>&1 || missing="$missing make"
have_header openssl/evp.h || missing="$missing libssl-dev"
have_header zlib.h || missing="$missing zlib1g-dev"
[ "$1" = build ] || {
have_header cmocka.h 2>/dev/null || printf '#include <stdarg.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <setjmp.h>\n#include <cmocka.h>\n' | ${CC:-cc} -E -x c - >/dev/null 2>&1 || missing="$missing libcmocka-dev"
command -v clang >/dev/null 2>&1 || missing="$missing clang"
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$missing python3-venv"
# nginx for the reverse-proxy tests (make autobahn-nginx, test_nginx.py); Debian keeps it in /usr/sbin.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
if [ "$1" = browser ]; then # make test-browser: Debian's Chromium driven from Node.js
    command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
    command -v node >/dev/null 2>&1 || missing="$missing nodejs"
    command -v npm >/dev/null 2>&1 || missing="$missing npm"
fi
# make test-interop: the Rust clients' wss:// (native-tls) links libssl, found with pkg-config.
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkgconf"
# make test-valgrind: the black-box tests with the server under valgrind.
command -v valgrind >/dev/null 2>&1 || missing="$missing valgrind"
# make test-deb builds the Debian package and checks it with lintian.
command -v dpkg-buildpackage >/dev/null 2>&1 || missing="$missing dpkg-dev"
command -v dh >/dev/null 2>&1 || missing="$missing debhelper"
command -v lintian >/dev/null 2>&1 || missing="$missing lintian"
# The man page test renders doc/websock.1 with man(1), which runs groff's nroff.
command -v man >/dev/null 2>&1 || missing="$missing man-db"
command -v nroff >/dev/null 2>&1 || missing="$missing groff-base"
}
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing:$missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    exit $?
fi
echo "missing Debian packages:$missing — install them with: sudo apt-get install$missing" >&2
exit 1
