"""design.md §4: echoing a 16 MiB message must not hold it whole in the server's memory."""

import os

import pytest

from conftest import OP_TEXT, WRAPPER, recv_message, send_frame, text_of_utf8_size, websock_bin

MiB = 1024 * 1024


def binary_is_sanitized() -> bool:
    try:
        with open(websock_bin(), "rb") as f:
            data = f.read()
    except OSError:
        return False
    if WRAPPER:  # e.g. valgrind: the process's RSS is the tool's
        return True
    return b"__asan_init" in data or b"__msan_init" in data or b"__tsan_init" in data


@pytest.mark.skipif(binary_is_sanitized(), reason="RSS is meaningless under a sanitizer")
def test_peak_memory_of_16mib_echo_stays_under_4mib_above_idle(websock):
    idle = websock.status()
    assert "VmRSS" in idle and "VmHWM" in idle, idle
    binary = os.urandom(MiB) * 16
    text = text_of_utf8_size(16 * MiB)
    assert len(text.encode()) == 16 * MiB
    (got_binary, got_text), _ = websock.echo_async([binary, text])
    assert got_binary == binary
    assert isinstance(got_text, str) and got_text == text
    after = websock.status()
    growth_kib = after["VmHWM"] - idle["VmRSS"]
    assert growth_kib < 4 * 1024, (
        f"server peak RSS grew by {growth_kib} KiB while echoing 16 MiB messages "
        f"(idle VmRSS {idle['VmRSS']} KiB, idle VmHWM {idle['VmHWM']} KiB, "
        f"peak VmHWM {after['VmHWM']} KiB, VmRSS after {after['VmRSS']} KiB)")


@pytest.mark.skipif(binary_is_sanitized(), reason="RSS is meaningless under a sanitizer")
def test_idle_connections_cost_little_memory(websock):
    """design.md §4: an idle open connection costs little more than its struct. After one
    warm-up connection (one-time allocations: shared read buffer, libcrypto state), 200 more
    idle upgraded connections must not add more than 1 MiB (~5 KiB each, a generous bound)."""
    warm = websock.upgraded()
    send_frame(warm, OP_TEXT, b"warm-up")
    assert recv_message(warm)[:2] == (OP_TEXT, b"warm-up")
    before = websock.status()["VmRSS"]
    socks = [websock.upgraded() for _ in range(200)]
    after = websock.status()["VmRSS"]
    assert len(socks) == 200
    assert after - before < 1024, f"200 idle connections added {after - before} KiB of RSS"
