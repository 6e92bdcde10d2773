"""Fixtures for the interop tests: the black-box suite's server fixtures, a test CA for the
wss:// runs, and a library × scenario results table, one row per library and transport,
printed at the end of the run (and written to build/interop/results.md).

The clients are built by tests/interop/build.sh into $INTEROP_DIR (default build/interop).
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

from .interop_clients import (LIBRARIES, LIBRARY_NAMES, SCENARIOS, TRANSPORTS, interop_dir,
                              versions)
from .tls_certs import CertFiles, make_test_ca

HERE = pathlib.Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]

# The server fixtures of tests/blackbox (free port, SIGTERM and log checks at teardown), loaded
# under their own module name so that this conftest does not shadow that one.
_spec = importlib.util.spec_from_file_location("blackbox_conftest",
                                               REPO_ROOT / "tests/blackbox/conftest.py")
_blackbox = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _blackbox  # dataclasses look their module up there
_spec.loader.exec_module(_blackbox)
websock_factory = _blackbox.websock_factory
websock = _blackbox.websock
_hard_test_timeout = _blackbox._hard_test_timeout


@pytest.fixture(scope="session")
def test_certs(tmp_path_factory) -> CertFiles:
    """One CA and server certificate for the whole run (three openssl commands)."""
    return make_test_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def start_server(websock_factory, test_certs):
    """start_server(transport) -> (server, WebSocket URL): ws:// on the plain port, or wss://
    on a --tls-port with the test CA's server certificate (the plain port stays, for
    /metrics)."""
    def start(transport: str):
        if transport == "ws":
            srv = websock_factory()
            return srv, srv.url()
        port = _blackbox.free_port("127.0.0.1")
        srv = websock_factory("--tls-port", str(port), "--tls-cert", str(test_certs.cert),
                              "--tls-key", str(test_certs.key))
        _blackbox.wait_accepting("127.0.0.1", port, srv.proc, srv.stderr_path)
        return srv, f"wss://127.0.0.1:{port}/ws"
    return start


# --------------------------------------------------------------------------------------------
# Results table
# --------------------------------------------------------------------------------------------

_results: dict[tuple[str, str, str], str] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "lib" not in params or "scenario" not in params or "transport" not in params:
        return
    key = (params["lib"], params["transport"], params["scenario"])
    # a failure in any phase (server start, the client, the server's teardown checks) counts
    if report.failed:
        _results[key] = "FAIL"
    elif report.skipped:
        _results[key] = "n/a"
    elif report.when == "call" and report.passed:
        _results.setdefault(key, "pass")


def results_table() -> str:
    libs = [lib for lib in LIBRARIES if any(k[0] == lib for k in _results)]
    head = "| library | version | runtime | over | " + " | ".join(SCENARIOS) + " |"
    rows = [head, "|" + "---|" * (4 + len(SCENARIOS))]
    for lib in libs:
        library, runtime = versions(lib)
        for transport in TRANSPORTS:
            if not any(k[:2] == (lib, transport) for k in _results):
                continue
            cells = [_results.get((lib, transport, s), "not run") for s in SCENARIOS]
            rows.append(f"| {LIBRARY_NAMES[lib]} | {library} | {runtime} | {transport}:// | "
                        + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def pytest_terminal_summary(terminalreporter):
    if not _results:
        return
    table = results_table()
    terminalreporter.write_sep("-", "interop results")
    terminalreporter.write(table)
    out = interop_dir()
    if out.is_dir():
        (out / "results.md").write_text(table)
