"""make install: the binary, the man page and the systemd unit land under PREFIX (or
DESTDIR/PREFIX), naming the paths they were installed to; the man page renders with man(1) and
documents every flag of --help; the unit passes `systemd-analyze verify` where systemd is
installed. The build honours a packager's WERROR=, CFLAGS, CPPFLAGS and LDFLAGS, and every
place that states the version agrees."""

import os
import pathlib
import re
import shutil
import stat
import subprocess

import pytest

from conftest import REPO_ROOT, websock_bin

MAN = "share/man/man1/websock.1"
UNIT = "lib/systemd/system/websock.service"


def make(*args: str) -> None:
    # BUILD: the directory of the binary under test, so nothing is rebuilt elsewhere.
    build = os.path.dirname(websock_bin())
    r = subprocess.run(["make", "-s", f"BUILD={build}", *args], cwd=REPO_ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"make {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"


@pytest.fixture(scope="module")
def prefix(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("install") / "prefix"
    make("install", f"PREFIX={root}")
    return root


def help_flags(binary: str) -> list[str]:
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10).stdout
    flags = sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", out)))
    assert len(flags) > 10, out
    return flags


def unit_settings(path: pathlib.Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_install_puts_the_three_files_under_prefix(prefix, tmp_path):
    binary = prefix / "bin/websock"
    assert stat.S_IMODE(binary.stat().st_mode) == 0o755
    assert stat.S_IMODE((prefix / MAN).stat().st_mode) == 0o644
    assert stat.S_IMODE((prefix / UNIT).stat().st_mode) == 0o644
    r = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "websock" in r.stdout, r
    assert unit_settings(prefix / UNIT)["ExecStart"][0].startswith(f"{binary} "), \
        "the installed unit must start the installed binary"

    other = tmp_path / "other"
    make("install", f"PREFIX={other}")
    make("uninstall", f"PREFIX={other}")
    assert not [p for p in other.rglob("*") if p.is_file()], "uninstall left files behind"


def test_destdir_stages_the_tree_without_changing_paths(tmp_path):
    stage = tmp_path / "stage"
    make("install", "PREFIX=/usr", f"DESTDIR={stage}")
    for rel in ("usr/bin/websock", f"usr/{MAN}", f"usr/{UNIT}"):
        assert (stage / rel).is_file(), rel
    exec_start = unit_settings(stage / f"usr/{UNIT}")["ExecStart"][0]
    assert exec_start.startswith("/usr/bin/websock "), exec_start


def installed_texts(root: pathlib.Path) -> dict[str, str]:
    """The installed man page and units, by path relative to root."""
    files = [p for p in root.rglob("*") if p.is_file() and p.name != "websock"]
    return {str(p.relative_to(root)): p.read_text() for p in files}


def test_installed_files_name_the_prefix_not_usr_local(prefix):
    texts = installed_texts(prefix)
    assert f"{prefix}/{UNIT}" in texts[MAN], "the man page's FILES must name the installed unit"
    for rel, text in texts.items():
        for default in ("/usr/local/bin", "/usr/local/lib"):
            assert default not in text, f"{rel} still names {default}"


def test_unitdir_and_bindir_move_the_units_and_the_paths_they_name(tmp_path):
    # What debian/rules asks for: the binary in /usr/bin, the units where systemd looks.
    stage = tmp_path / "stage"
    make("install", "PREFIX=/usr", "UNITDIR=/lib/systemd/system", f"DESTDIR={stage}")
    unit = stage / "lib/systemd/system/websock.service"
    assert unit_settings(unit)["ExecStart"][0].startswith("/usr/bin/websock ")
    man = (stage / f"usr/{MAN}").read_text()
    assert "/lib/systemd/system/websock.service" in man
    assert "/usr/local/lib" not in man and "/usr/local/bin" not in man
    units = {p.name for p in (REPO_ROOT / "deploy").iterdir() if p.suffix in (".service", ".socket")}
    assert {p.name for p in unit.parent.iterdir()} == units, "every deploy/ unit is installed"


def dry_run(*args: str, env: dict[str, str] | None = None) -> list[str]:
    """The compile and link commands make would run for a fresh build (nothing is built); an
    outer make's command-line variables (MAKEFLAGS) are kept out."""
    out = subprocess.run(["make", "-n", "-B", f"BUILD={REPO_ROOT}/build/dry-run", *args, "all"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                         env={**{k: v for k, v in os.environ.items()
                                 if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}, **(env or {})})
    assert out.returncode == 0, out.stderr
    cmds = [line for line in out.stdout.splitlines() if " -o " in line]
    assert len(cmds) > 10, out.stdout
    return cmds


def test_werror_is_the_default_and_a_packager_can_drop_it():
    assert all("-Werror" in c.split() for c in dry_run() if " -c " in c)
    assert not any("-Werror" in c.split() for c in dry_run("WERROR="))
    assert all("-Wall" in c.split() for c in dry_run("WERROR=") if " -c " in c)


def test_build_honours_cflags_cppflags_and_ldflags_from_the_environment():
    flags = {"CFLAGS": "-O2 -g -fstack-protector-strong", "CPPFLAGS": "-D_FORTIFY_SOURCE=2",
             "LDFLAGS": "-Wl,-z,relro -Wl,-z,now"}
    for cmds in (dry_run(env=flags), dry_run(*(f"{k}={v}" for k, v in flags.items()))):
        compiles = [c for c in cmds if " -c " in c]
        link = next(c for c in cmds if c.rstrip().endswith("-lz") and " -c " not in c)
        for c in compiles:
            assert "-fstack-protector-strong" in c and "-D_FORTIFY_SOURCE=2" in c, c
            assert "-Iinclude" in c, "the project's own CPPFLAGS must be kept as well"
        assert "-Wl,-z,now" in link, link


def test_every_statement_of_the_version_agrees():
    version = subprocess.run([websock_bin(), "--version"], capture_output=True, text=True,
                             timeout=10).stdout.split()[-1]
    man = (REPO_ROOT / "doc/websock.1").read_text()
    assert re.search(rf'^\.TH WEBSOCK 1 "[^"]*" "websock {re.escape(version)}"', man, re.M)
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text()
    first = re.search(r"^## \[(\d+\.\d+\.\d+)\]", changelog, re.M)
    assert first and first.group(1) == version, "CHANGELOG.md's newest release is not --version"
    deb = (REPO_ROOT / "debian/changelog").read_text().splitlines()[0]
    assert deb.startswith(f"websock ({version}) "), deb


def test_installed_man_page_renders_and_documents_every_flag(prefix):
    if not shutil.which("man"):
        pytest.fail("man is missing: apt-get install man-db groff-base "
                    "(tests/install-deps.sh installs them as root)", pytrace=False)
    r = subprocess.run(["man", "-l", str(prefix / MAN)], capture_output=True, text=True,
                       timeout=30, env={**os.environ, "LC_ALL": "C.UTF-8", "MANWIDTH": "100"})
    assert r.returncode == 0, r.stderr
    # Plain text: drop any overstrike bold/underline and map typographic dashes to '-'.
    text = re.sub(r".\x08", "", r.stdout).replace("\u2010", "-").replace("\u2212", "-")
    assert len(text) > 2000, f"man rendered almost nothing:\n{text}"
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SIGNALS", "EXIT STATUS",
                    "FILES", "EXAMPLES", "SEE ALSO"):
        assert re.search(rf"^{section}$", text, re.M), f"no {section} section"
    options = text[text.index("\nOPTIONS\n"):]
    missing = [f for f in help_flags(str(prefix / "bin/websock"))
               if not re.search(rf"^\s+{re.escape(f)}(\s|$)", options, re.M)]
    assert not missing, f"flags of --help without an entry under OPTIONS: {missing}"
    version = subprocess.run([str(prefix / "bin/websock"), "--version"], capture_output=True,
                             text=True, timeout=10).stdout.split()[-1]
    assert f"websock {version}" in text, "the man page's footer names another version"


def test_unit_is_type_notify_with_mixed_kill_mode_and_sandboxing(prefix):
    s = unit_settings(prefix / UNIT)
    assert s["Type"] == ["notify"]
    assert s["KillMode"] == ["mixed"], "workers would get SIGTERM twice (see the unit)"
    assert s["Restart"] == ["on-failure"]
    for key in ("DynamicUser", "NoNewPrivileges", "ProtectHome", "PrivateTmp",
                "PrivateDevices", "MemoryDenyWriteExecute"):
        assert s.get(key) == ["yes"], key
    assert s["ProtectSystem"] == ["strict"]
    assert s["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert "@system-service" in s["SystemCallFilter"]
    assert int(s["LimitNOFILE"][0]) >= 4096


@pytest.mark.skipif(not shutil.which("systemd-analyze"),
                    reason="systemd-analyze is not installed (Debian package systemd)")
def test_installed_unit_passes_systemd_analyze_verify(prefix):
    # --man=no: the Documentation= page is not installed system-wide here.
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(prefix / UNIT)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), f"{r.stdout}\n{r.stderr}"
