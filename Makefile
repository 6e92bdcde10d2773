# websock — build, run and test. `make run` and `make check` are the two set-up commands.

CC      ?= cc
BUILD   ?= build
CFLAGS  ?= -O2 -g
WARN    := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-missing-field-initializers
CPPFLAGS += -Iinclude -D_GNU_SOURCE
LDLIBS  := -lcrypto

SERVER_SRCS := src/buf.c src/conn.c src/frame.c src/handshake.c src/http_request.c src/log.c \
               src/loop.c src/net.c src/options.c src/server.c src/session.c src/utf8.c
# The pure parts: no sockets, so unit tests and fuzzers link them directly.
CORE_SRCS   := src/buf.c src/frame.c src/handshake.c src/http_request.c src/session.c src/utf8.c

VENV    := $(BUILD)/venv
PY      := $(VENV)/bin/python

.PHONY: all run check deps test-unit test-blackbox autobahn clean

all: $(BUILD)/websock

$(BUILD)/%.o: %.c $(wildcard include/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -c -o $@ $<

$(BUILD)/websock: $(SERVER_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/src/main.o
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

run: deps $(BUILD)/websock
	$(BUILD)/websock --port 8888

# ---- tests ------------------------------------------------------------------------------------

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

$(BUILD)/tests/%: tests/unit/%.c $(CORE_SRCS:%.c=$(BUILD)/%.o) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WARN) $(CFLAGS) -o $@ $< $(CORE_SRCS:%.c=$(BUILD)/%.o) -lcmocka $(LDLIBS)

test-unit: deps $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; $$t; done

$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r tests/requirements.txt
	touch $@

test-blackbox: deps $(BUILD)/websock $(VENV)/.installed
	WEBSOCK_BIN=$(BUILD)/websock $(PY) -m pytest -q tests/blackbox

autobahn: deps $(BUILD)/websock
	WEBSOCK_BIN=$(BUILD)/websock autobahn/run.sh

check: all test-unit test-blackbox autobahn
	@echo "make check: all tests passed"

# Installs what a fresh Debian machine lacks (as root), or says exactly what is missing.
deps:
	@sh tests/install-deps.sh

clean:
	rm -rf $(BUILD) reports
