"""The README's quick start, executed command by command (issue 18, item 4).

The fenced commands between `<!-- quickstart` and `<!-- /quickstart -->` in README.md run in
order in a fresh copy of the tree, on a PATH that holds only the build tools and a `python3`
with nothing but the standard library (a venv without pip: no `websockets`), as a new user's
machine would. Only the port is changed (8888 → a free one; `make run` gets it as PORT in the
environment). `make run` is started and waited for; every other command is a terminal client:
it is fed a line and must print it back and exit 0 at end of input. Each http:// URL the
section gives must serve the browser console (the console itself: tests/browser)."""

import pathlib
import re
import shutil
import signal
import subprocess
import sys
import urllib.request

import pytest

from conftest import REPO_ROOT, free_port
from quickstart_helpers import (BUILD_TIMEOUT, Foreground, assert_stopped_cleanly, scratch_dir,
                                source_tree_copy, tool_dir)

pytestmark = pytest.mark.slow

README_PORT = "8888"
SECTION = re.compile(r"<!-- quickstart\b.*?-->(.*?)<!-- /quickstart -->", re.DOTALL)
FENCE = re.compile(r"^```(?:sh|shell|bash|console)?\n(.*?)^```", re.DOTALL | re.MULTILINE)


def quickstart_section() -> str:
    found = SECTION.findall((REPO_ROOT / "README.md").read_text())
    assert len(found) == 1, "README.md must mark one quick-start section with " \
                            "<!-- quickstart … --> and <!-- /quickstart -->"
    return found[0]


def quickstart_commands(section: str) -> list[str]:
    commands = [line.strip() for block in FENCE.findall(section) for line in block.splitlines()]
    return [c for c in commands if c and not c.startswith("#")]


def test_the_quick_start_section_is_found_and_starts_the_server():
    commands = quickstart_commands(quickstart_section())
    assert commands and commands[0].split()[:2] == ["make", "run"], commands
    assert len(commands) >= 2, "the quick start must give a terminal client after make run"


@pytest.fixture
def long_build():
    """A build from scratch outlasts the suite's per-test limit; this test sets its own."""
    signal.alarm(BUILD_TIMEOUT + 180)
    yield


@pytest.fixture
def fresh_machine():
    """A tree as cloned, and a PATH of the build tools plus a stdlib-only python3."""
    root = scratch_dir()
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "python")],
                       check=True, timeout=120)
        python = root / "python" / "bin" / "python3"
        no_extras = subprocess.run([str(python), "-c", "import websockets"], capture_output=True)
        assert no_extras.returncode != 0, "the bare venv must not see the websockets package"
        bindir = tool_dir(root / "bin", {"python3": str(python)})
        yield source_tree_copy(root / "websock"), bindir
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_readme_quick_start_runs_as_written(long_build, fresh_machine):
    tree, bindir = fresh_machine
    section = quickstart_section()
    commands = quickstart_commands(section)
    port = free_port()
    env = {"PATH": str(bindir), "HOME": str(tree), "LC_ALL": "C.UTF-8", "PORT": str(port)}

    def for_test(text: str) -> str:
        return text.replace(f":{README_PORT}", f":{port}")

    server = None
    try:
        for command in commands:
            if command.split()[:2] == ["make", "run"]:
                assert server is None, "the quick start starts two servers"
                assert README_PORT not in command or f"PORT={README_PORT}" in command, command
                server = Foreground(command.replace(f"PORT={README_PORT}", f"PORT={port}"),
                                    tree, env)
                server.wait_listening(port)
                continue
            assert server is not None, f"{command!r} comes before make run"
            line = f"hello from the README's `{command.split()[0]}`"
            r = subprocess.run(["sh", "-c", for_test(command)], cwd=tree, env=env,
                               input=line + "\n", capture_output=True, text=True, timeout=60)
            assert r.returncode == 0 and line in r.stdout.splitlines(), \
                f"{command!r} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"

        urls = re.findall(r"http://[^\s`)<>]+", section)
        assert urls, "the quick start must give the console's URL"
        for url in urls:
            with urllib.request.urlopen(for_test(url).rstrip(".,:;"), timeout=10) as resp:
                page = resp.read().decode()
            assert resp.status == 200 and "<title>websock console</title>" in page, url

        status = server.ctrl_c()
    finally:
        if server:
            server.kill()
    assert_stopped_cleanly(server, status, port)
