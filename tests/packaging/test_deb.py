"""The Debian package, as a packager and an operator meet it (make test-deb).

`dpkg-buildpackage -us -uc -b` runs on a copy of the tree under build/deb/ (it writes the .deb
beside the source directory, so nothing lands outside build/); lintian must report no error;
the .deb holds the binary, the man page and every unit of deploy/. Unpacked with `dpkg -x`,
its binary echoes a message. As root the package is also installed with `dpkg -i`, its
/usr/bin/websock echoes a message, and `dpkg --purge` leaves nothing behind.
"""

from __future__ import annotations

import gzip
import os
import pathlib
import re
import shutil
import socket
import subprocess
import time

import pytest
from websockets.sync.client import connect

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = pathlib.Path(os.environ.get("WEBSOCK_DEB_DIR", REPO_ROOT / "build/deb")).resolve()
UNITS = sorted(p.name for p in (REPO_ROOT / "deploy").iterdir()
               if p.suffix in (".service", ".socket"))
MAN = "usr/share/man/man1/websock.1.gz"


def run(*cmd: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def version() -> str:
    first = (REPO_ROOT / "debian/changelog").read_text().splitlines()[0]
    return re.match(r"websock \(([^)]+)\)", first).group(1)


@pytest.fixture(scope="module")
def built() -> dict[str, pathlib.Path]:
    """Builds the package from a copy of the tree; returns the .deb and the .changes."""
    for tool in ("dpkg-buildpackage", "dh", "lintian"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing: apt-get install dpkg-dev debhelper lintian "
                        "(tests/install-deps.sh installs them as root)", pytrace=False)
    shutil.rmtree(OUT, ignore_errors=True)
    src = OUT / f"websock-{version()}"
    # Everything but what builds and tests leave behind in the working tree.
    shutil.copytree(REPO_ROOT, src, symlinks=True, ignore=lambda d, names: [
        n for n in names
        if n in ("__pycache__", ".git") or (d == str(REPO_ROOT) and n in ("build", "reports"))])
    r = run("dpkg-buildpackage", "-us", "-uc", "-b", cwd=src, timeout=600)
    (OUT / "build.log").write_text(r.stdout + r.stderr)
    assert r.returncode == 0, f"dpkg-buildpackage failed:\n{(r.stdout + r.stderr)[-4000:]}"
    arch = run("dpkg", "--print-architecture").stdout.strip()
    files = {"deb": OUT / f"websock_{version()}_{arch}.deb",
             "changes": OUT / f"websock_{version()}_{arch}.changes"}
    for path in files.values():
        assert path.is_file(), f"dpkg-buildpackage made no {path.name}"
    return files


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def echo_once(binary: pathlib.Path) -> None:
    """Starts binary on a free loopback port, echoes one message, stops it with SIGTERM."""
    port = free_port()
    proc = subprocess.Popen([str(binary), "--bind", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, f"{binary} exited: {proc.stderr.read()}"
                assert time.monotonic() < deadline, f"{binary} did not listen on {port}"
                time.sleep(0.05)
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5) as ws:
            ws.send("hello from the package")
            assert ws.recv(timeout=5) == "hello from the package"
    finally:
        proc.terminate()
        rc = proc.wait(timeout=10)
    assert rc == 0, f"{binary} exited {rc} after SIGTERM: {proc.stderr.read()}"


def check_tree(root: pathlib.Path) -> None:
    """The files of the package under root (/ once installed): paths they name, man page."""
    man = gzip.decompress((root / MAN).read_bytes()).decode()
    texts = {unit: (root / "lib/systemd/system" / unit).read_text() for unit in UNITS}
    for name, text in {**texts, "the man page": man}.items():
        for default in ("/usr/local/bin", "/usr/local/lib"):
            assert default not in text, f"{name} names {default}, not the packaged path"
    assert re.search(r"^ExecStart=/usr/bin/websock ", texts["websock.service"], re.M), \
        "the packaged unit must start /usr/bin/websock"
    assert "/lib/systemd/system/websock.service" in man, "FILES names the packaged unit"
    r = run("man", "-l", str(root / MAN), env={**os.environ, "MANWIDTH": "80",
                                                  "LC_ALL": "C.UTF-8"})
    assert r.returncode == 0 and re.search(r"^NAME$", re.sub(r".\x08", "", r.stdout), re.M), \
        r.stderr


def test_lintian_reports_no_errors(built):
    r = run("lintian", "--fail-on", "error", str(built["changes"]), timeout=300)
    tags = [line for line in r.stdout.splitlines() if re.match(r"^[EWIPXO]: ", line)]
    print("\n".join(tags))
    assert r.returncode == 0 and not [t for t in tags if t.startswith("E: ")], \
        f"lintian:\n{r.stdout}\n{r.stderr}"


def test_deb_holds_the_binary_the_man_page_and_every_unit(built):
    listing = run("dpkg-deb", "-c", str(built["deb"])).stdout
    paths = {line.split()[-1].lstrip(".") for line in listing.splitlines()}
    for want in ["/usr/bin/websock", "/" + MAN,
                 "/usr/share/doc/websock/copyright"] + [f"/lib/systemd/system/{u}" for u in UNITS]:
        assert want in paths, f"{want} is not in the package:\n{listing}"
    assert not [p for p in paths if p.startswith("/usr/local")], listing
    depends = run("dpkg-deb", "-f", str(built["deb"]), "Depends").stdout
    assert "libssl" in depends and "zlib1g" in depends, depends


def test_unpacked_binary_is_hardened_and_echoes(built):
    root = OUT / "unpacked"
    shutil.rmtree(root, ignore_errors=True)
    r = run("dpkg", "-x", str(built["deb"]), str(root))
    assert r.returncode == 0, r.stderr
    binary = root / "usr/bin/websock"
    # dpkg-buildflags' LDFLAGS reached the link (hardening=+all: bindnow).
    dyn = run("readelf", "-d", str(binary)).stdout
    assert "BIND_NOW" in dyn or re.search(r"FLAGS_1.*\bNOW\b", dyn), dyn
    assert run(str(binary), "--version").stdout.strip() == f"websock {version()}"
    check_tree(root)
    echo_once(binary)


def installed() -> bool:
    r = run("dpkg-query", "-W", "-f=${Status}", "websock")
    return r.returncode == 0 and "installed" in r.stdout.split()


@pytest.mark.skipif(os.geteuid() != 0, reason="dpkg -i needs root (the unpacked test ran)")
def test_dpkg_install_runs_and_purge_leaves_nothing(built):
    if installed():
        pytest.skip("a websock package is already installed here; the test leaves it alone")
    r = run("dpkg", "-i", str(built["deb"]), timeout=120)
    try:
        assert r.returncode == 0, f"dpkg -i failed:\n{r.stdout}\n{r.stderr}"
        files = run("dpkg", "-L", "websock").stdout.splitlines()
        for want in ["/usr/bin/websock", "/" + MAN] + [f"/lib/systemd/system/{u}" for u in UNITS]:
            assert want in files, f"dpkg -L websock lacks {want}"
        check_tree(pathlib.Path("/"))
        echo_once(pathlib.Path("/usr/bin/websock"))
    finally:
        purge = run("dpkg", "--purge", "websock", timeout=120)
    assert purge.returncode == 0, purge.stderr
    assert not installed(), "dpkg --purge left the package installed"
    left = [p for p in ["/usr/bin/websock", "/" + MAN, "/usr/share/doc/websock"]
            + [f"/lib/systemd/system/{u}" for u in UNITS] if os.path.exists(p)]
    assert not left, f"purge left {left}"
