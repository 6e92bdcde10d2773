"""tools/wsclient.py, the README's terminal client (standard library only): echoes lines of
every length encoding, ends cleanly on end of input, on Ctrl-C and when the server shuts down,
and fails with a readable line when it cannot connect."""

import signal
import subprocess
import sys
import time

from conftest import REPO_ROOT, free_port

# -I -S: no site packages at all, as on a machine with nothing installed
CLIENT = [sys.executable, "-I", "-S", str(REPO_ROOT / "tools" / "wsclient.py")]


def test_lines_come_back_and_end_of_input_closes_with_1000(websock):
    lines = ["hello", "grüße, 世界", "x" * 300, "y" * 70000, ""]
    r = subprocess.run([*CLIENT, websock.url()], input="\n".join(lines) + "\n",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:-1] == lines
    assert "closed: 1000" in r.stderr


def start_waiting_client(url):
    """A client whose stdin stays open, as when a person sits at it."""
    proc = subprocess.Popen([*CLIENT, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdin.write("ready\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == "ready\n"
    return proc


def test_server_shutdown_ends_the_client_at_once_with_1001(websock):
    proc = start_waiting_client(websock.url())
    try:
        assert websock.terminate() == 0
        assert proc.wait(10) == 0
        assert "closed by the server: 1001" in proc.stderr.read()
    finally:
        proc.kill()


def test_ctrl_c_closes_with_1000(websock):
    proc = start_waiting_client(websock.url())
    try:
        time.sleep(0.3)  # the main thread is waiting, as at a prompt
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert "closed: 1000" in proc.stderr.read()
    finally:
        proc.kill()


def test_cannot_connect_says_why_and_exits_1(websock):
    for url, why in [(f"ws://127.0.0.1:{free_port()}/ws", "Connection refused"),
                     (websock.url("/nope"), "handshake refused: HTTP/1.1 404"),
                     ("http://127.0.0.1/", "expected ws://")]:
        r = subprocess.run([*CLIENT, url], input="", capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and why in r.stderr, (url, r.stderr)
