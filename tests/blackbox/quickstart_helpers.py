"""A fresh copy of the source tree built and run with `make run` on a PATH that holds only what
building the server needs, the way a new user's machine would: no clang, nginx, cmocka, man,
groff, venv or Node.js. Used by test_make_run.py and test_readme_quickstart.py."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from conftest import REPO_ROOT

# What `make run` really calls: make, the shell of install-deps.sh, mkdir, the C compiler, and
# the assembler and linker gcc runs (found on PATH).
BUILD_TOOLS = ("make", "sh", "mkdir", "cc", "as", "ld")
# Tools of `make check` that must not be needed (absent from the PATH the tests build).
TEST_ONLY_TOOLS = ("clang", "nginx", "man", "nroff", "node", "npm", "chromium", "valgrind", "pip")
BUILD_TIMEOUT = 600  # a full build from scratch on a busy two-core machine
UNPRIVILEGED = 65534  # nobody / nogroup


def source_tree_copy(dest: pathlib.Path) -> pathlib.Path:
    """The files a clone would have (tracked plus new, not ignored), without build/."""
    listed = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files", "-z", "--cached",
                             "--others", "--exclude-standard"], capture_output=True)
    if listed.returncode == 0:
        for name in listed.stdout.decode().split("\0"):
            src = REPO_ROOT / name
            if name and src.is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / name)
    else:  # not a git checkout: the tree minus what builds produce
        shutil.copytree(REPO_ROOT, dest, dirs_exist_ok=True, symlinks=True,
                        ignore=shutil.ignore_patterns(".git", "build", "reports"))
    assert (dest / "Makefile").is_file()
    return dest


def tool_dir(dest: pathlib.Path, extra: dict[str, str] | None = None) -> pathlib.Path:
    """A directory of symlinks to the build tools (and `extra`: name -> path) only."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in BUILD_TOOLS:
        path = shutil.which(name)
        assert path, f"{name} is needed to build websock and is not on PATH"
        os.symlink(path, dest / name)
    for name, path in (extra or {}).items():
        os.symlink(path, dest / name)
    for name in TEST_ONLY_TOOLS:
        assert shutil.which(name, path=str(dest)) is None, name
    return dest


def unprivileged_user(tree: pathlib.Path) -> dict:
    """Popen arguments that run as nobody when the tests run as root (tree handed over)."""
    if os.geteuid() != 0:
        return {}
    for root, dirs, files in os.walk(tree):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.lchown(name, UNPRIVILEGED, UNPRIVILEGED)
    return {"user": UNPRIVILEGED, "group": UNPRIVILEGED, "extra_groups": []}


def scratch_dir() -> pathlib.Path:
    """A directory outside pytest's (which only root may enter), for the unprivileged user."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="websock-fresh-"))
    path.chmod(0o755)
    return path


class Foreground:
    """A command run as if typed in a terminal: its own process group, so Ctrl-C (SIGINT to
    the group) reaches make and the server as a terminal would deliver it."""

    def __init__(self, command: str, cwd: pathlib.Path, env: dict, **popen):
        self.proc = subprocess.Popen(["sh", "-c", command], cwd=cwd, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True, **popen)
        self.lines: list[str] = []
        self.left_behind = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace"))

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_listening(self, port: int, timeout: float = BUILD_TIMEOUT) -> None:
        """Until the server accepts on 127.0.0.1:port; fails if the command ends first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.reader.join(5)
                raise AssertionError(f"ended with status {self.proc.returncode} before serving "
                                     f"port {port}:\n{self.output}")
            other = re.search(r"listening on .* port (\d+)", self.output)
            if other and int(other.group(1)) != port:
                raise AssertionError(f"the server listens on port {other.group(1)}, not on "
                                     f"port {port}:\n{self.output}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"nothing listening on port {port} after {timeout}s:\n{self.output}")

    def ctrl_c(self, timeout: float = 20) -> int:
        """SIGINT to the group, then the exit status; everything in the group must be gone."""
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            status = self.proc.wait(timeout)
            self.left_behind = not group_gone(self.proc.pid)
        finally:
            self.kill()
        self.reader.join(5)
        return status

    def kill(self) -> None:
        """Leave nothing behind, whatever happened (SIGKILL to what is left of the group)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)


def group_gone(pgid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def assert_stopped_cleanly(run: Foreground, status: int, port: int) -> None:
    """What a user sees after Ctrl-C on `make run`: the server says it stopped, make reports
    no failed command (make itself then ends by the SIGINT it received, as it always does),
    nothing is left running and the port is free."""
    out = run.output
    assert status in (-signal.SIGINT, 128 + signal.SIGINT, 0), f"status {status}:\n{out}"
    assert "SIGINT" in out, out  # the server saw the Ctrl-C …
    assert re.search(r"\bstopped\s*$", out, re.MULTILINE), out  # … and said it stopped
    # A failed command shows as "make: *** [Makefile:N: run] Error 1"; make's own notes on the
    # signal race ("wait: No child processes", "Waiting for unfinished jobs") say nothing
    # about the server and appear now and then under load.
    assert not re.search(r"^make: \*\*\* \[.*\] Error", out, re.MULTILINE), out
    assert not run.left_behind, f"processes of the command left after Ctrl-C:\n{out}"
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still accepts after Ctrl-C"
