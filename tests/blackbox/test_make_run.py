"""`make run` needs only what building the server needs (issue 18, item 3).

A fresh copy of the tree is built and run by an unprivileged user (nobody, when the tests run
as root) whose PATH holds only make, sh, mkdir, cc, as and ld: no clang, nginx, cmocka, man,
groff, venv or Node.js. The server must answer an echo on the port `make run PORT=…` chose, and
Ctrl-C must stop it cleanly. Run as root (with a recording apt-get on PATH), it must not
install anything either."""

import os
import shutil
import signal

import pytest
from websockets.sync.client import connect

from conftest import free_port
from quickstart_helpers import (BUILD_TIMEOUT, Foreground, assert_stopped_cleanly, scratch_dir,
                                source_tree_copy, tool_dir, unprivileged_user)

pytestmark = pytest.mark.slow


@pytest.fixture
def long_build():
    """A build from scratch outlasts the suite's per-test limit; this test sets its own."""
    signal.alarm(BUILD_TIMEOUT + 120)
    yield


@pytest.fixture
def fresh_tree():
    root = scratch_dir()
    try:
        yield source_tree_copy(root / "websock"), tool_dir(root / "bin")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("who", ["unprivileged", "root"])
def test_make_run_builds_and_serves_with_only_the_build_tools(long_build, fresh_tree, who):
    tree, bindir = fresh_tree
    port = free_port()
    env = {"PATH": str(bindir), "HOME": str(tree), "LC_ALL": "C"}
    if who == "root":
        # As root make run installs what building needs and nothing else: here nothing, though
        # clang, nginx and the rest of make check's packages are missing from PATH.
        if os.geteuid() != 0:
            pytest.skip("needs root")
        apt_log = tree.parent / "apt-get.log"
        (bindir / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> {apt_log}\nexit 1\n')
        (bindir / "apt-get").chmod(0o755)
        (bindir / "id").symlink_to(shutil.which("id"))
        user = {}
    else:
        user = unprivileged_user(tree.parent)
    run = Foreground(f"make run PORT={port}", tree, env, **user)
    try:
        run.wait_listening(port)
        assert (tree / "build" / "websock").is_file()
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10, close_timeout=5) as ws:
            ws.send("hello from make run")
            assert ws.recv(timeout=10) == "hello from make run"
        status = run.ctrl_c()
    finally:
        run.kill()
    assert_stopped_cleanly(run, status, port)
    if who == "root":
        assert not apt_log.exists(), f"make run called apt-get {apt_log.read_text()}"
