"""Failing the connection: 1002 protocol errors, 1007 invalid UTF-8, 1009 too big.

Each test sends the bad input by hand and requires a real Close frame with the right code,
followed by the server closing TCP.
"""

import struct
import time

import pytest

from conftest import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, build_frame,
                      expect_close, frame_header_len, recv_frame, recv_message, send_frame)

# ------------------------------------------------------------------------------------ 1002


def test_unmasked_client_frame_fails_with_1002(websock):
    s = websock.upgraded()
    send_frame(s, OP_TEXT, b"not masked", mask=False)
    expect_close(s, 1002)


@pytest.mark.parametrize("rsv", [4, 2, 1, 7], ids=["rsv1", "rsv2", "rsv3", "all"])
def test_rsv_bit_set_fails_with_1002(websock, rsv):
    s = websock.upgraded()
    send_frame(s, OP_TEXT, b"rsv", rsv=rsv)
    expect_close(s, 1002)


def test_rsv_bit_on_ping_fails_with_1002(websock):
    s = websock.upgraded()
    send_frame(s, OP_PING, b"p", rsv=4)
    expect_close(s, 1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_reserved_opcode_fails_with_1002(websock, opcode):
    s = websock.upgraded()
    send_frame(s, opcode, b"reserved")
    expect_close(s, 1002)


def test_reserved_opcode_after_valid_message_fails_with_1002(websock):
    s = websock.upgraded()
    send_frame(s, OP_TEXT, b"ok")
    assert recv_message(s)[:2] == (OP_TEXT, b"ok")
    send_frame(s, 0xB, b"")
    expect_close(s, 1002)


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE], ids=["ping", "pong", "close"])
def test_fragmented_control_frame_fails_with_1002(websock, opcode):
    s = websock.upgraded()
    send_frame(s, opcode, close_payload_for(opcode), fin=False)
    expect_close(s, 1002)


def close_payload_for(opcode):
    return struct.pack("!H", 1000) if opcode == OP_CLOSE else b"frag"


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG], ids=["ping", "pong"])
def test_control_frame_over_125_bytes_fails_with_1002(websock, opcode):
    s = websock.upgraded()
    send_frame(s, opcode, b"p" * 126)
    expect_close(s, 1002)


def test_ping_with_16bit_length_encoding_of_small_payload_fails_with_1002(websock):
    """A control frame using the 126 length form is > 125 bytes by construction."""
    s = websock.upgraded()
    send_frame(s, OP_PING, b"x" * 200)
    expect_close(s, 1002)


@pytest.mark.parametrize("fin", [True, False], ids=["fin", "nofin"])
def test_continuation_without_open_message_fails_with_1002(websock, fin):
    s = websock.upgraded()
    send_frame(s, OP_CONT, b"orphan", fin=fin)
    expect_close(s, 1002)


def test_continuation_after_finished_message_fails_with_1002(websock):
    s = websock.upgraded()
    send_frame(s, OP_TEXT, b"done")
    assert recv_message(s)[:2] == (OP_TEXT, b"done")
    send_frame(s, OP_CONT, b"late")
    expect_close(s, 1002)


@pytest.mark.parametrize("first,second", [
    (OP_TEXT, OP_TEXT), (OP_TEXT, OP_BINARY), (OP_BINARY, OP_BINARY), (OP_BINARY, OP_TEXT),
], ids=["text-text", "text-binary", "binary-binary", "binary-text"])
def test_new_data_frame_while_fragmented_message_open_fails_with_1002(websock, first, second):
    s = websock.upgraded()
    send_frame(s, first, b"first part", fin=False)
    send_frame(s, second, b"intruder", fin=True)
    expect_close(s, 1002)


def test_64bit_length_with_msb_set_fails_with_1002(websock):
    s = websock.upgraded()
    s.sendall(build_frame(OP_BINARY, b"", length_override=(1 << 63) | 5) + b"\x00" * 5)
    expect_close(s, 1002)


def test_64bit_length_with_msb_set_on_text_fails_with_1002_not_1009(websock):
    s = websock.upgraded()
    s.sendall(build_frame(OP_TEXT, b"", length_override=0xFFFFFFFFFFFFFFFF))
    expect_close(s, 1002)


# ------------------------------------------------------------------------------------ 1007

@pytest.mark.parametrize("payload", [
    b"\xff",
    b"\xfe",
    b"abc\x80",                  # lone continuation byte
    b"\xc0\xaf",                 # overlong '/'
    b"\xe0\x80\xaf",             # overlong 3-byte
    b"\xf0\x80\x80\xaf",         # overlong 4-byte
    b"\xed\xa0\x80",             # UTF-16 surrogate U+D800
    b"\xed\xbf\xbf",             # surrogate U+DFFF
    b"\xf4\x90\x80\x80",         # U+110000
    b"\xf5\x80\x80\x80",
    "\u03ba\u1f79\u03c3\u03bc\u03b5".encode() + b"\xed\xa0\x80edited",
    b"ok\xe2\x82",               # truncated at the end of the message
    b"\xc2",
], ids=["ff", "fe", "lone-cont", "overlong-2", "overlong-3", "overlong-4", "surrogate-lo",
        "surrogate-hi", "above-10ffff", "f5", "autobahn-6.3.1", "truncated-3", "truncated-2"])
def test_invalid_utf8_text_fails_with_1007(websock, payload):
    s = websock.upgraded()
    send_frame(s, OP_TEXT, payload)
    expect_close(s, 1007)


def test_invalid_utf8_in_last_fragment_fails_with_1007(websock):
    s = websock.upgraded()
    send_frame(s, OP_TEXT, b"valid ", fin=False)
    send_frame(s, OP_CONT, b"still valid ", fin=False)
    send_frame(s, OP_CONT, b"bad \xc3\x28", fin=True)
    expect_close(s, 1007)


def test_message_ending_inside_code_point_across_fragments_fails_with_1007(websock):
    s = websock.upgraded()
    send_frame(s, OP_TEXT, b"ab\xf0\x9f", fin=False)
    send_frame(s, OP_CONT, b"\x98", fin=True)  # 3 of 4 bytes, then the message ends
    expect_close(s, 1007)


def test_binary_message_is_not_utf8_checked(websock):
    s = websock.upgraded()
    send_frame(s, OP_BINARY, b"\xff\xfe\xed\xa0\x80")
    assert recv_message(s)[:2] == (OP_BINARY, b"\xff\xfe\xed\xa0\x80")


@pytest.mark.parametrize("prefix", [
    b"\xff",
    "\u03ba\u1f79\u03c3\u03bc\u03b5".encode() + b"\xf4\x90",   # Autobahn 6.4.1-style
    b"hello \xed\xa0",                                          # surrogate, 2nd byte
    b"x" * 100 + b"\xe0\x9f",                                   # overlong, 2nd byte
    b"\xc3\x28",
], ids=["ff", "f4-90", "ed-a0", "e0-9f", "c3-28"])
def test_invalid_utf8_fails_fast_before_frame_is_complete(websock, prefix):
    """design.md §3: the connection fails at the first byte that cannot continue a valid
    sequence, even before the frame is complete. We send the header of a 4000-byte text frame
    and only its first bytes, then wait for the Close without sending the rest."""
    s = websock.upgraded()
    payload = prefix + b"a" * (4000 - len(prefix))
    frame = build_frame(OP_TEXT, payload)
    s.sendall(frame[:frame_header_len(frame) + len(prefix)])
    expect_close(s, 1007, reply=False)


def test_invalid_utf8_fails_fast_in_unfinished_fragmented_message(websock):
    """The bad byte is in a non-final fragment; the message never completes."""
    s = websock.upgraded()
    send_frame(s, OP_TEXT, "\u03ba\u1f79".encode(), fin=False)
    send_frame(s, OP_CONT, b"\xf4\x90\x80\x80", fin=False)
    expect_close(s, 1007)


def test_invalid_utf8_fails_fast_in_half_sent_frame_after_valid_fragment(websock):
    s = websock.upgraded()
    send_frame(s, OP_TEXT, b"valid start ", fin=False)
    frame = build_frame(OP_CONT, b"\xe2\x82\x28" + b"z" * 2000, fin=True)
    s.sendall(frame[:frame_header_len(frame) + 3])
    expect_close(s, 1007, reply=False)


def test_invalid_utf8_split_over_tcp_reads_fails_with_1007(websock):
    s = websock.upgraded()
    frame = build_frame(OP_TEXT, b"ab\xe2\x82\xff")
    for i in range(len(frame)):
        s.sendall(frame[i:i + 1])
        time.sleep(0.003)
    expect_close(s, 1007)


# ------------------------------------------------------------------------------------ 1009

@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_message_at_max_message_is_echoed(websock_factory, opcode):
    srv = websock_factory("--max-message", "1000")
    s = srv.upgraded()
    send_frame(s, opcode, b"m" * 1000)
    assert recv_message(s)[:2] == (opcode, b"m" * 1000)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_message_over_max_message_fails_with_1009(websock_factory, opcode):
    srv = websock_factory("--max-message", "1000")
    s = srv.upgraded()
    send_frame(s, opcode, b"m" * 1001)
    expect_close(s, 1009)


def test_fragmented_message_over_max_message_fails_with_1009(websock_factory):
    srv = websock_factory("--max-message", "1000")
    s = srv.upgraded()
    send_frame(s, OP_BINARY, b"a" * 600, fin=False)
    send_frame(s, OP_CONT, b"b" * 600, fin=True)
    expect_close(s, 1009)


def test_fragmented_message_over_max_message_fails_before_it_ends(websock_factory):
    """Fragments add up past the limit while the message is still open → 1009 at once."""
    srv = websock_factory("--max-message", "1000")
    s = srv.upgraded()
    send_frame(s, OP_TEXT, b"a" * 600, fin=False)
    send_frame(s, OP_CONT, b"b" * 600, fin=False)
    expect_close(s, 1009)


def test_frame_header_announcing_huge_length_fails_with_1009(websock_factory):
    """Only the header of a 1 GiB frame is sent; the server must not wait for the payload."""
    srv = websock_factory("--max-message", "1000")
    s = srv.upgraded()
    frame = build_frame(OP_BINARY, b"", length_override=1 << 30)
    s.sendall(frame)
    expect_close(s, 1009, reply=False)


def test_control_frames_do_not_count_toward_max_message(websock_factory):
    srv = websock_factory("--max-message", "1000")
    s = srv.upgraded()
    send_frame(s, OP_BINARY, b"a" * 900, fin=False)
    for _ in range(5):
        send_frame(s, OP_PING, b"p" * 100)
    send_frame(s, OP_CONT, b"b" * 100, fin=True)
    op, data, pongs = recv_message(s)
    assert (op, data) == (OP_BINARY, b"a" * 900 + b"b" * 100)
    # pongs that arrived before the echo were collected; the rest follow it
    while len(pongs) < 5:
        f = recv_frame(s)
        assert f.opcode == OP_PONG, f"expected pong, got opcode {f.opcode}"
        pongs.append(f)
    assert [p.payload for p in pongs] == [b"p" * 100] * 5
