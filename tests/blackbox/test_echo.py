"""Echo of whole messages: sizes around every length-encoding boundary, text and binary."""

import os

import pytest

from conftest import (OP_BINARY, OP_PING, OP_PONG, OP_TEXT, build_frame, recv_frame,
                      recv_message, send_frame, text_of_utf8_size)

MiB = 1024 * 1024
SIZES = [0, 1, 125, 126, 65535, 65536, 1 * MiB, 16 * MiB]


def binary_of_size(n: int) -> bytes:
    # Not all-zero and not periodic with the mask length, so a masking bug shows.
    return (os.urandom(4096) * (n // 4096 + 1))[:n] if n else b""


@pytest.mark.parametrize("size", SIZES, ids=[f"{s}B" for s in SIZES])
def test_echo_binary_message_of_size(websock, size):
    data = binary_of_size(size)
    (got,), close_code = websock.echo_async([data])
    assert isinstance(got, bytes), f"binary message echoed as {type(got).__name__}"
    assert len(got) == size
    assert got == data
    assert close_code == 1000


@pytest.mark.parametrize("size", SIZES, ids=[f"{s}B" for s in SIZES])
def test_echo_text_message_of_size(websock, size):
    text = text_of_utf8_size(size)
    assert len(text.encode()) == size
    (got,), close_code = websock.echo_async([text])
    assert isinstance(got, str), f"text message echoed as {type(got).__name__}"
    assert len(got.encode()) == size
    assert got == text
    assert close_code == 1000


def test_echo_many_messages_in_order_on_one_connection(websock):
    with websock.ws_connect() as ws:
        msgs = [f"msg {i} \u00e9" if i % 2 else os.urandom(i) for i in range(200)]
        for m in msgs:
            ws.send(m)
        for m in msgs:
            assert ws.recv(timeout=10) == m


def test_echo_message_fragmented_by_websockets_client(websock):
    """The client library sends one message as several frames; the echo is the whole message."""
    parts = ["frag-one ", "\u20acuro ", "\U0001F600 end"]
    with websock.ws_connect() as ws:
        ws.send(iter(parts))
        assert ws.recv(timeout=10) == "".join(parts)
        bparts = [b"\x00\x01", b"", b"\xff" * 1000]
        ws.send(iter(bparts))
        assert ws.recv(timeout=10) == b"".join(bparts)


COALESCED = [0, 1, 125, 126, 65535, 65536]


@pytest.mark.parametrize("size", COALESCED, ids=[f"{s}B" for s in COALESCED])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_small_unfragmented_message_is_echoed_as_one_frame(websock, size, opcode):
    """design.md §4: a single-frame message up to the coalescing threshold (64 KiB) comes
    back as one FIN frame of the same length, with the minimal length encoding."""
    payload = b"A" * size if opcode == OP_TEXT else binary_of_size(size)
    s = websock.upgraded()
    send_frame(s, opcode, payload)
    f = recv_frame(s)  # recv_frame also checks: unmasked, minimal length encoding
    assert (f.opcode, f.fin, f.rsv) == (opcode, True, 0), \
        f"got opcode={f.opcode} fin={f.fin} rsv={f.rsv} len={len(f.payload)}"
    assert f.payload == payload
    expected_len_byte = size if size < 126 else 126 if size < 65536 else 127
    assert f.header[1] == expected_len_byte


def test_several_frames_in_one_write_are_all_echoed(websock):
    """Many frames arriving in one read: each is processed, in order."""
    s = websock.upgraded()
    msgs = [(OP_TEXT, f"m{i}".encode()) for i in range(50)] + [(OP_BINARY, bytes(range(256)))]
    s.sendall(b"".join(build_frame(op, p) for op, p in msgs))
    for op, p in msgs:
        assert recv_message(s)[:2] == (op, p)


def test_unsolicited_pong_is_ignored(websock):
    s = websock.upgraded()
    send_frame(s, OP_PONG, b"unsolicited")
    send_frame(s, OP_TEXT, b"after pong")
    f = recv_frame(s)
    assert (f.opcode, f.payload) == (OP_TEXT, b"after pong")


@pytest.mark.parametrize("size", [0, 1, 125])
def test_ping_gets_pong_with_identical_payload(websock, size):
    s = websock.upgraded()
    payload = binary_of_size(size)
    send_frame(s, OP_PING, payload)
    f = recv_frame(s)
    assert (f.opcode, f.fin, f.payload) == (OP_PONG, True, payload)


def test_masking_key_changes_per_frame_are_honoured(websock):
    """Same payload, different masking keys (including the all-zero key) → same echo."""
    s = websock.upgraded()
    for key in (b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x12\x34\x56\x78"):
        s.sendall(build_frame(OP_BINARY, b"mask me please", mask_key=key))
        f = recv_frame(s)
        assert f.payload == b"mask me please"
