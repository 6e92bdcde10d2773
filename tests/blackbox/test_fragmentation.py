"""Client-fragmented messages, control frames interleaved with fragments, split reads."""

import time

import pytest

from conftest import (OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT, build_frame,
                      recv_frame, recv_message, send_frame, summarize)


def read_until_pong(sock, data_frames):
    """Read frames until a Pong arrives; data frames seen before it are appended."""
    while True:
        f = recv_frame(sock)
        if f.opcode == OP_PONG:
            return f
        assert f.opcode in (OP_TEXT, OP_BINARY, OP_CONT), \
            f"unexpected frame opcode={f.opcode} payload={f.payload[:32]!r}"
        data_frames.append(f)


def reassemble(frames, expected_opcode):
    assert frames, "no data frames"
    assert frames[0].opcode == expected_opcode, summarize(frames)
    for f in frames[1:]:
        assert f.opcode == OP_CONT, summarize(frames)
    for f in frames[:-1]:
        assert not f.fin, f"FIN before the end of the echoed message: {summarize(frames)}"
    assert frames[-1].fin
    return b"".join(f.payload for f in frames)


def read_rest_of_message(sock, frames):
    while not frames or not frames[-1].fin:
        f = recv_frame(sock)
        assert f.opcode in (OP_TEXT, OP_BINARY, OP_CONT), f"unexpected opcode {f.opcode}"
        frames.append(f)


@pytest.mark.parametrize("opcode,fragments", [
    (OP_TEXT, [b"Hel", "lo, w\u00f6".encode(), "rld \u20ac!".encode()]),
    (OP_BINARY, [b"\x00\x01\x02", b"\xff" * 300, b"\x80\x81"]),
], ids=["text", "binary"])
def test_fragmented_message_with_pings_between_fragments(websock, opcode, fragments):
    """Three fragments with a Ping after the first and second; each Ping is answered with a
    Pong of identical payload *while the message is still open* (before the next fragment is
    sent), and the reassembled echo equals the original message with the same type."""
    s = websock.upgraded()
    data_frames = []
    pings = [b"ping-1", b"\x00\xffping-2"]
    send_frame(s, opcode, fragments[0], fin=False)
    send_frame(s, OP_PING, pings[0])
    assert read_until_pong(s, data_frames).payload == pings[0]
    send_frame(s, OP_CONT, fragments[1], fin=False)
    send_frame(s, OP_PING, pings[1])
    assert read_until_pong(s, data_frames).payload == pings[1]
    send_frame(s, OP_CONT, fragments[2], fin=True)
    read_rest_of_message(s, data_frames)
    assert reassemble(data_frames, opcode) == b"".join(fragments)
    # The connection is still healthy afterwards.
    send_frame(s, OP_TEXT, b"next")
    assert recv_message(s)[:2] == (OP_TEXT, b"next")


def test_fragmented_message_with_empty_fragments(websock):
    s = websock.upgraded()
    send_frame(s, OP_TEXT, b"", fin=False)
    send_frame(s, OP_CONT, b"", fin=False)
    send_frame(s, OP_CONT, b"abc", fin=False)
    send_frame(s, OP_CONT, b"", fin=True)
    assert recv_message(s)[:2] == (OP_TEXT, b"abc")


def test_many_small_fragments(websock):
    s = websock.upgraded()
    parts = [bytes([65 + i % 26]) * (i % 7) for i in range(300)]
    frames = [build_frame(OP_BINARY, parts[0], fin=False)]
    frames += [build_frame(OP_CONT, p, fin=False) for p in parts[1:-1]]
    frames += [build_frame(OP_CONT, parts[-1], fin=True)]
    s.sendall(b"".join(frames))
    assert recv_message(s)[:2] == (OP_BINARY, b"".join(parts))


@pytest.mark.parametrize("char", ["\u00e9", "\u20ac", "\U0001F600"],
                         ids=["2-byte", "3-byte", "4-byte"])
def test_code_point_split_across_fragments_is_valid(websock, char):
    enc = char.encode()
    s = websock.upgraded()
    # Every way of splitting the sequence over consecutive fragments, one message each.
    for cut in range(1, len(enc)):
        send_frame(s, OP_TEXT, b"a" + enc[:cut], fin=False)
        send_frame(s, OP_CONT, enc[cut:] + b"b", fin=True)
        assert recv_message(s)[:2] == (OP_TEXT, b"a" + enc + b"b")
    # One byte per fragment.
    send_frame(s, OP_TEXT, enc[:1], fin=False)
    for i in range(1, len(enc)):
        send_frame(s, OP_CONT, enc[i:i + 1], fin=False)
    send_frame(s, OP_CONT, b"", fin=True)
    assert recv_message(s)[:2] == (OP_TEXT, enc)


def test_code_point_split_across_tcp_reads_is_valid(websock):
    """One text frame delivered in small pieces, each cut inside a multi-byte sequence."""
    s = websock.upgraded()
    text = "x\U0001F600y\u20acz".encode()
    frame = build_frame(OP_TEXT, text)
    for i in range(len(frame)):
        s.sendall(frame[i:i + 1])
        time.sleep(0.005)
    assert recv_message(s)[:2] == (OP_TEXT, text)


def test_frame_sent_one_byte_at_a_time_is_echoed(websock):
    s = websock.upgraded()
    payload = bytes(range(256)) * 2  # 16-bit length form
    frame = build_frame(OP_BINARY, payload)
    for i in range(len(frame)):
        s.sendall(frame[i:i + 1])
        if i < 12:
            time.sleep(0.005)  # header bytes in separate segments
    assert recv_message(s)[:2] == (OP_BINARY, payload)


def test_large_client_fragmented_binary_message(websock):
    """A client-fragmented message larger than the coalescing threshold (64 KiB)."""
    s = websock.upgraded()
    chunk = bytes(range(256)) * 256  # 64 KiB
    parts = [chunk] * 5
    send_frame(s, OP_BINARY, parts[0], fin=False)
    for p in parts[1:-1]:
        send_frame(s, OP_CONT, p, fin=False)
    send_frame(s, OP_CONT, parts[-1], fin=True)
    op, data, _ = recv_message(s)
    assert op == OP_BINARY and data == b"".join(parts)


def test_pings_between_large_streamed_fragments_get_pongs_between_frames(websock):
    """On the streaming path (fragments over 64 KiB) a Pong must be sent between outgoing
    frames, never inside one, and still carry the identical payload."""
    s = websock.upgraded()
    parts = [bytes([i]) * (100 * 1024) for i in range(1, 5)]
    data_frames = []
    send_frame(s, OP_BINARY, parts[0], fin=False)
    for i, p in enumerate(parts[1:], 1):
        ping = f"ping {i}".encode()
        send_frame(s, OP_PING, ping)
        assert read_until_pong(s, data_frames).payload == ping
        send_frame(s, OP_CONT, p, fin=(i == len(parts) - 1))
    read_rest_of_message(s, data_frames)
    assert reassemble(data_frames, OP_BINARY) == b"".join(parts)
