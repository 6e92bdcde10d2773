"""The interop clients: which libraries and scenarios there are, how to run each client, and
the versions it was built with. Used by conftest.py and test_interop.py."""

from __future__ import annotations

import os
import pathlib
import platform
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]

LIBRARIES = ("python", "node", "go", "rust", "soketto")
SCENARIOS = ("text", "binary", "fragmented", "ping", "close", "deflate")
# Every scenario runs over both: wss:// against websock's --tls-port, the client trusting the
# test CA (tls_certs.py) with its library's usual certificate and host name checks.
TRANSPORTS = ("ws", "wss")
# Libraries whose client cannot run a scenario, and why (shown as "n/a" in the table).
UNSUPPORTED = {
    ("rust", "deflate"): "tungstenite has no permessage-deflate",
    **{("soketto", s): "the soketto client runs the deflate scenario only"
       for s in SCENARIOS if s != "deflate"},
}
LIBRARY_NAMES = {
    "python": "Python websockets",
    "node": "Node ws",
    "go": "Go gorilla/websocket",
    "rust": "Rust tungstenite",
    "soketto": "Rust soketto",
}


def interop_dir() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("INTEROP_DIR", "build/interop"))
    return path if path.is_absolute() else REPO_ROOT / path


def client_command(lib: str) -> list[str]:
    """The command line of one library's client, without --ca, URL and scenario."""
    out = interop_dir()
    if lib == "python":
        return [sys.executable, str(HERE / "python/client.py")]
    path = {"node": out / "node/client.js", "go": out / "go-client", "rust": out / "rust-client",
            "soketto": out / "soketto-client"}[lib]
    if not path.exists():
        pytest.fail(f"the {lib} client is not built ({path} missing): run tests/interop/build.sh",
                    pytrace=False)
    return ["node", str(path)] if lib == "node" else [str(path)]


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL).stdout
        return out.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def versions(lib: str) -> tuple[str, str]:
    """(library and version as the built client reports it, language runtime or compiler)."""
    out = interop_dir()
    try:
        library = _first_line([*client_command(lib), "--version"])
    except pytest.fail.Exception:
        library = "not built"
    if lib == "python":
        runtime = f"Python {platform.python_version()}"
    elif lib == "node":
        runtime = f"Node.js {_first_line(['node', '--version'])}"
    elif lib == "go":  # the Go release the binary was built with
        runtime = _first_line(["go", "version", str(out / "go-client")]).split(": ")[-1]
    else:
        runtime = " ".join(_first_line(["rustc", "--version"]).split()[:2])
    return library, runtime
