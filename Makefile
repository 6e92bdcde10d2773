# websock — build, run and test. `make run` and `make check` are the two set-up commands.

CC      ?= cc
BUILD   ?= build
CFLAGS  ?= -O2 -g
# -Werror for development and CI; packagers building with another compiler drop it: make WERROR=
WERROR  ?= -Werror
WARN    := -std=gnu11 -Wall -Wextra $(WERROR) -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-missing-field-initializers
# CFLAGS, CPPFLAGS and LDFLAGS from the environment or the command line are honoured (a
# distribution's hardening flags); these two are added to them.
override CPPFLAGS += -Iinclude -D_GNU_SOURCE
LDLIBS  := -lssl -lcrypto -lz

SERVER_SRCS := src/access_log.c src/activation.c src/buf.c src/conn.c src/deflate.c src/deflate_offer.c src/forwarded.c src/frame.c src/handshake.c src/http_request.c \
               src/ip_addr.c src/ip_limit.c src/log.c \
               src/loop.c src/metrics.c src/net.c src/notify.c src/options.c src/outq.c \
               src/pages.c src/proc_stats.c src/server.c src/session.c src/simd.c src/supervisor.c src/tls.c src/utf8.c
# The pure parts: no sockets, so unit tests and fuzzers link them directly.
CORE_SRCS   := src/access_log.c src/buf.c src/deflate.c src/deflate_offer.c src/forwarded.c src/frame.c src/handshake.c src/http_request.c src/ip_addr.c \
               src/ip_limit.c src/log.c src/outq.c src/session.c src/simd.c \
               src/utf8.c src/metrics.c src/pages.c src/proc_stats.c

SHELL   := /bin/bash
VENV    := build/venv
PY      := $(VENV)/bin/python

.PHONY: all run check deps build-deps install uninstall build-clang bench bench-deflate bench-micro \
        bench-instr bench-report bench-c1m bench-tls test-unit \
        test-blackbox autobahn autobahn-nginx autobahn-tls autobahn-asan autobahn-tls-asan autobahn-asan-sample autobahn-all test-asan test-asan-unit \
        test-valgrind fuzz fuzz-check clean \
        test-browser browser-deps

all: $(BUILD)/websock

$(BUILD)/%.o: %.c $(wildcard include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -c -o $@ $<

# The browser console is assembled into pages.o as it is (.incbin).
$(BUILD)/src/pages.o: src/console.html

$(BUILD)/websock: $(SERVER_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/src/main.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# make run PORT=9000 ARGS='--workers 2' picks another port and adds flags; Ctrl-C stops it.
PORT ?= 8888
ARGS ?=
run: build-deps $(BUILD)/websock
	$(BUILD)/websock --port $(PORT) $(ARGS)

# ---- tests ------------------------------------------------------------------------------------

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

$(BUILD)/tests/%: tests/unit/%.c $(CORE_SRCS:%.c=$(BUILD)/%.o) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CORE_SRCS:%.c=$(BUILD)/%.o) -lcmocka $(LDLIBS)

test-unit: deps $(UNIT_TESTS)
	@rc=0; for t in $(UNIT_TESTS); do echo "== $$t"; $$t || rc=1; done; exit $$rc

$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r tests/requirements.txt
	touch $@

test-blackbox: deps $(BUILD)/websock $(VENV)/.installed
	WEBSOCK_BIN=$(BUILD)/websock $(PY) -m pytest -q tests/blackbox

# Widely used client libraries (Python websockets, Node ws, Go gorilla/websocket, Rust
# tungstenite and soketto) against the real binary: echo, fragments, ping, close codes, and
# permessage-deflate, over ws:// and over wss:// (each client trusting a throwaway test CA).
# The clients are built from the package registries by tests/interop/build.sh.
.PHONY: test-interop
test-interop: deps $(BUILD)/websock $(VENV)/.installed
	tests/interop/build.sh $(BUILD)/interop
	WEBSOCK_BIN=$(BUILD)/websock INTEROP_DIR=$(BUILD)/interop $(PY) -m pytest -q tests/interop

# The browser console in a real headless Chromium (Debian's), driven by playwright-core from npm
# (pinned by tests/browser/package-lock.json, installed under build/): over http:// and ws://,
# and over https:// and wss:// from --tls-port (a throwaway test CA; Chromium trusts only that
# server key, by --ignore-certificate-errors-spki-list). Writes screenshots to
# $(BUILD)/artifacts/console.png and console-wss.png.
BROWSER_DIR := $(BUILD)/browser
$(BROWSER_DIR)/.installed: tests/browser/package.json tests/browser/package-lock.json | browser-deps
	@mkdir -p $(BROWSER_DIR)
	cp tests/browser/package.json tests/browser/package-lock.json $(BROWSER_DIR)/
	cd $(BROWSER_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

browser-deps:
	@sh tests/install-deps.sh browser

test-browser: deps browser-deps $(BUILD)/websock $(BROWSER_DIR)/.installed
	@mkdir -p $(BUILD)/artifacts
	WEBSOCK_BIN=$(BUILD)/websock PLAYWRIGHT_DIR=$(BROWSER_DIR) ARTIFACT_DIR=$(BUILD)/artifacts \
	  node --test --test-reporter=spec tests/browser/console.test.mjs

# The whole suite, 1.* to 13.* (517 cases).
AUTOBAHN_REPORTS ?= reports
autobahn: deps $(BUILD)/websock
	WEBSOCK_BIN=$(BUILD)/websock autobahn/run.sh --report-dir $(AUTOBAHN_REPORTS)

# The whole suite over wss:// against websock's own TLS (a throwaway self-signed certificate).
autobahn-tls: deps $(BUILD)/websock
	WEBSOCK_BIN=$(BUILD)/websock autobahn/run.sh --tls --report-dir $(AUTOBAHN_REPORTS)/tls

# The gate through nginx running deploy/nginx.conf: the documented proxy set-up must keep every
# case OK. Cases 1.*-10.* and a sample of 12.*/13.* (autobahn/README.md, "Scopes").
autobahn-nginx: deps $(BUILD)/websock
	WEBSOCK_BIN=$(BUILD)/websock autobahn/run.sh --via-nginx --scope nginx-sample \
	  --report-dir $(AUTOBAHN_REPORTS)/via-nginx

# make check's Autobahn. Three full runs at once: over ws:// and over wss:// against the plain
# build, and over wss:// against the ASan+UBSan build (the same session code as ws://, plus the
# TLS transport); the time goes to wstest compressing and encrypting in Python, one core each.
# Then the ASan+UBSan build over ws:// on the nginx sample (every framing case, a sample of the
# compression sizes: the plain transport under the sanitizers) and the nginx gate. The full
# ASan+UBSan run over ws:// stays available as `make autobahn-asan`. -O prints each run's output
# whole when it ends; any run failing fails make, after all have ended.
autobahn-all:
	@echo "autobahn-all: full suite over ws:// and wss:// and over wss:// under ASan+UBSan, at" \
	  "once (~25 min; each run's output appears when it ends), then two samples"
	$(MAKE) -j3 -O --no-print-directory autobahn autobahn-tls autobahn-tls-asan
	$(MAKE) --no-print-directory autobahn-asan-sample
	$(MAKE) autobahn-nginx

# ---- sanitizers, valgrind, fuzzing ------------------------------------------------------------

SAN_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
export ASAN_OPTIONS  := detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS := halt_on_error=1:print_stacktrace=1

# Unit tests and the whole Autobahn gate against an ASan+UBSan build: any report fails them.
test-asan:
	$(MAKE) test-asan-unit
	$(MAKE) autobahn-asan

test-asan-unit:
	$(MAKE) BUILD=$(BUILD)/asan CFLAGS="$(SAN_CFLAGS)" test-unit

autobahn-asan:
	$(MAKE) BUILD=$(BUILD)/asan CFLAGS="$(SAN_CFLAGS)" AUTOBAHN_REPORTS=$(BUILD)/asan/reports autobahn

autobahn-tls-asan:
	$(MAKE) BUILD=$(BUILD)/asan CFLAGS="$(SAN_CFLAGS)" AUTOBAHN_REPORTS=$(BUILD)/asan/reports autobahn-tls

autobahn-asan-sample: deps
	$(MAKE) BUILD=$(BUILD)/asan CFLAGS="$(SAN_CFLAGS)" $(BUILD)/asan/websock
	WEBSOCK_BIN=$(BUILD)/asan/websock autobahn/run.sh --scope nginx-sample \
	  --report-dir $(BUILD)/asan/reports/sample

# The black-box tests with the server under valgrind (no leaks, no invalid accesses).
test-valgrind: deps $(BUILD)/websock $(VENV)/.installed
	@command -v valgrind >/dev/null || { echo "valgrind missing: apt-get install valgrind" >&2; exit 1; }
	WEBSOCK_BIN=$(BUILD)/websock WEBSOCK_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full \
	  --errors-for-leak-kinds=definite,indirect --track-fds=no" \
	  $(PY) -m pytest -q -m "not slow" tests/blackbox

FUZZ_TARGETS := http frame utf8 conn conn_tls deflate_offer session_deflate
FUZZ_SECONDS ?= 60
# OUTQ_REF_MIN=8: small fuzzed frames take the in-place echo path too.
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -DOUTQ_REF_MIN=8
# The whole-connection target links conn.c with its own fake transport in place of loop.c and
# net.c; the others need only the pure parts.
FUZZ_SRCS_conn := src/conn.c src/options.c src/tls.c tests/fuzz/conn_fakes.c
# conn_tls: a wss:// connection, with a fake of the tls.h API in place of src/tls.c.
FUZZ_SRCS_conn_tls := src/conn.c src/options.c tests/fuzz/conn_fakes.c

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(CORE_SRCS) $(FUZZ_SRCS_conn) $(wildcard include/*.h tests/fuzz/*.h) \
                      src/console.html
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) $(WARN) $(FUZZ_CFLAGS) -o $@ $< $(CORE_SRCS) $(FUZZ_SRCS_$*) $(LDLIBS)

FUZZ_BINS := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)

# Runs each target for FUZZ_SECONDS, growing a work corpus seeded from tests/fuzz/corpus.
# Crashes land in build/fuzz/; add the input to tests/fuzz/regressions/<target>/ once fixed.
fuzz: deps $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(BUILD)/fuzz/work/$$t tests/fuzz/regressions/$$t; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	  $(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -artifact_prefix=$(BUILD)/fuzz/$$t- -print_final_stats=1 \
	    $(BUILD)/fuzz/work/$$t tests/fuzz/corpus/$$t tests/fuzz/regressions/$$t 2>&1 \
	    | grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==|SUMMARY)" ; \
	  test $${PIPESTATUS[0]} -eq 0; \
	done

# CI: replay the seed and regression corpora, then fuzz each target briefly.
fuzz-check: deps $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p tests/fuzz/regressions/$$t; \
	  echo "== replay fuzz_$$t"; \
	  $(BUILD)/fuzz/fuzz_$$t -runs=0 tests/fuzz/corpus/$$t tests/fuzz/regressions/$$t 2>&1 | tail -1; \
	  test $${PIPESTATUS[0]} -eq 0; \
	done
	$(MAKE) fuzz FUZZ_SECONDS=$${FUZZ_CHECK_SECONDS:-30}

# The same -Werror build with the other compiler.
build-clang:
	$(MAKE) CC=clang BUILD=$(BUILD)/clang all

# ---- benchmarks -------------------------------------------------------------------------------

$(BUILD)/bench/micro: bench/micro/micro.c $(CORE_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CORE_SRCS:%.c=$(BUILD)/%.o) $(LDLIBS)

# GB/s of unmasking and UTF-8 validation beside memcpy.
bench-micro: $(BUILD)/bench/micro
	$(BUILD)/bench/micro

BENCH_VENV := build/bench-venv
$(BENCH_VENV)/.installed: bench/requirements.txt
	python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q -r bench/requirements.txt
	touch $@

# websock, a plain TCP echo and every peer through one generator, pinned and alternating;
# writes BENCHMARKS.md, bench/benchmarks.json and bench/benchmarks.png. Takes about 40 minutes on
# 2 cores; downloads the peers' libraries (apt, crates.io, Go proxy, npm) and matplotlib (PyPI).
# A quick look that checks the machinery (figures not worth keeping, ~3 minutes):
#   make bench BENCH_ARGS="--reps 1 --duration 0.5 --warmup 0.2 --idle 500"
bench: deps $(BUILD)/websock $(BUILD)/bench/micro $(BENCH_VENV)/.installed
	$(MAKE) -C bench
	bench/peers/build.sh
	$(BENCH_VENV)/bin/python bench/report/matrix.py --micro "$$($(BUILD)/bench/micro)" $(BENCH_ARGS)
	$(MAKE) bench-tls

# wss:// side by side (wss against ws, CPU per full TLS handshake, websock against nginx
# terminating TLS): bench/benchmarks-tls.json and the wss section of BENCHMARKS.md. About
# 5 minutes; nginx is optional (its figures are skipped without it). BENCH_TLS_ARGS="--windows 3".
bench-tls: $(BUILD)/websock
	$(MAKE) -C bench
	python3 bench/report/tls.py $(BENCH_TLS_ARGS)

# Rewrites BENCHMARKS.md and bench/benchmarks.png from bench/benchmarks.json: runs nothing.
bench-report: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/report/matrix.py --from-json

# Only the compressed workloads (permessage-deflate, JSON-like text) side by side with the peers
# that compress (ws, gorilla, libwebsockets); writes bench/benchmarks-deflate.json and its section
# of BENCHMARKS.md. About 5 minutes on 2 cores.
bench-deflate: deps $(BUILD)/websock $(BENCH_VENV)/.installed
	$(MAKE) -C bench
	bench/peers/build.sh lws go node
	$(BENCH_VENV)/bin/python bench/report/matrix.py --deflate-only --reps 3 $(BENCH_ARGS)

# User-space instructions per echoed message under callgrind (repeatable on a busy machine).
bench-instr: deps $(BUILD)/websock
	$(MAKE) -C bench
	bench/report/instr.sh $(BUILD)/websock

# One million concurrent WebSocket connections (C1M_CONNS=N for fewer), held 60 s, then a
# SIGTERM with all of them open: see bench/README.md. A few minutes and ~11 GB on 2 cores.
bench-c1m: $(BUILD)/websock
	$(MAKE) -C bench
	python3 bench/c1m.py

# ---- install ----------------------------------------------------------------------------------

# bin/websock, share/man/man1/websock.1 and lib/systemd/system/websock.service (and any
# deploy/*.socket) under PREFIX (for /usr/local, a directory systemd searches); DESTDIR stages
# the tree elsewhere without changing those paths. The man page and the units name the default
# paths (/usr/local/...), rewritten here to the real BINDIR and UNITDIR.
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
UNITS   := $(notdir $(wildcard deploy/*.service deploy/*.socket))
SUBST_PATHS := sed -e 's|/usr/local/lib/systemd/system|$(UNITDIR)|g' -e 's|/usr/local/bin/|$(BINDIR)/|g'

install: $(BUILD)/websock
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR) $(BUILD)/install
	install -m 755 $(BUILD)/websock $(DESTDIR)$(BINDIR)/websock
	$(SUBST_PATHS) doc/websock.1 > $(BUILD)/install/websock.1
	install -m 644 $(BUILD)/install/websock.1 $(DESTDIR)$(MANDIR)/man1/websock.1
	for u in $(UNITS); do $(SUBST_PATHS) deploy/$$u > $(BUILD)/install/$$u || exit 1; \
	  install -m 644 $(BUILD)/install/$$u $(DESTDIR)$(UNITDIR)/$$u || exit 1; done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/websock $(DESTDIR)$(MANDIR)/man1/websock.1 \
	  $(UNITS:%=$(DESTDIR)$(UNITDIR)/%)

# The Debian package (debian/): built from a copy of the tree under $(BUILD)/deb, where
# dpkg-buildpackage also writes its .deb; lintian must find no error; then installed, run and
# purged as root (unpacked and run otherwise). 30 s alone, up to 100 s on a busy 2-core machine.
.PHONY: test-deb
test-deb: deps $(VENV)/.installed
	WEBSOCK_DEB_DIR=$(BUILD)/deb $(PY) -m pytest -q tests/packaging

check: all build-clang test-unit test-blackbox test-browser test-interop test-deb test-asan-unit \
       autobahn-all test-valgrind fuzz-check
	@echo "make check: all tests passed"

# Installs what a fresh Debian machine lacks (as root), or says exactly what is missing.
deps:
	@sh tests/install-deps.sh

# Only what building the server needs (make run): a C compiler, libssl-dev, zlib1g-dev.
build-deps:
	@sh tests/install-deps.sh build

clean:
	rm -rf $(BUILD) reports
