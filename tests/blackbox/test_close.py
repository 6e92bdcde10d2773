"""Closing handshake (RFC 6455 §5.5.1, §7.4): which codes are echoed, which fail with 1002."""

import pytest

from conftest import (OP_CLOSE, OP_TEXT, assert_eof, build_frame, close_payload,
                      expect_close, recv_frame, recv_message, send_frame)

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
               3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


def test_close_1000_with_reason_is_answered_with_1000_then_eof(websock):
    s = websock.upgraded()
    send_frame(s, OP_CLOSE, close_payload(1000, b"bye now"))
    f = recv_frame(s)
    assert f.opcode == OP_CLOSE and f.fin
    assert f.close_code == 1000, f"got Close payload {f.payload!r}"
    assert_eof(s)


@pytest.mark.parametrize("code", VALID_CODES)
def test_close_with_valid_code_is_echoed(websock, code):
    s = websock.upgraded()
    send_frame(s, OP_CLOSE, close_payload(code, "r\u00e9ason".encode()))
    expect_close(s, code, reply=False)


def test_close_with_empty_payload_is_answered_with_1000(websock):
    s = websock.upgraded()
    send_frame(s, OP_CLOSE, b"")
    expect_close(s, 1000, reply=False)


def test_close_with_1_byte_payload_fails_with_1002(websock):
    s = websock.upgraded()
    send_frame(s, OP_CLOSE, b"\x03")
    expect_close(s, 1002, reply=False)


@pytest.mark.parametrize("code", INVALID_CODES)
def test_close_with_invalid_code_fails_with_1002(websock, code):
    s = websock.upgraded()
    send_frame(s, OP_CLOSE, close_payload(code))
    expect_close(s, 1002, reply=False)


@pytest.mark.parametrize("reason", [b"\xff", b"ok\xc0\xaf", b"\xed\xa0\x80", b"abc\xe2\x82"],
                         ids=["ff", "overlong", "surrogate", "truncated"])
def test_close_reason_invalid_utf8_fails_with_1007(websock, reason):
    s = websock.upgraded()
    send_frame(s, OP_CLOSE, close_payload(1000, reason))
    expect_close(s, 1007, reply=False)


def test_close_with_max_length_reason_is_echoed(websock):
    s = websock.upgraded()
    send_frame(s, OP_CLOSE, close_payload(1000, "\u00e9".encode() * 61 + b"a"))  # 125 bytes
    expect_close(s, 1000, reply=False)


def test_close_payload_over_125_bytes_fails_with_1002(websock):
    s = websock.upgraded()
    send_frame(s, OP_CLOSE, close_payload(1000, b"x" * 124))  # 126 bytes
    expect_close(s, 1002, reply=False)


def test_close_in_middle_of_fragmented_message_is_answered(websock):
    """A Close may arrive between fragments; it is answered and the partial message dropped."""
    s = websock.upgraded()
    send_frame(s, OP_TEXT, b"partial", fin=False)
    send_frame(s, OP_CLOSE, close_payload(1000))
    expect_close(s, 1000, reply=False)


def test_data_after_close_is_not_echoed(websock):
    """After the client's Close, nothing more is processed (RFC 6455 §5.5.1)."""
    s = websock.upgraded()
    send_frame(s, OP_TEXT, b"before")
    assert recv_message(s)[:2] == (OP_TEXT, b"before")
    s.sendall(build_frame(OP_CLOSE, close_payload(1000)) + build_frame(OP_TEXT, b"after"))
    f = recv_frame(s)
    assert f.opcode == OP_CLOSE and f.close_code == 1000, f"got opcode {f.opcode} {f.payload!r}"
    assert_eof(s)


def test_server_closes_tcp_after_close_handshake_even_if_client_stays(websock):
    """The server replies and then closes TCP itself; the client never closes its side."""
    s = websock.upgraded()
    send_frame(s, OP_CLOSE, close_payload(1001, b"going"))
    f = recv_frame(s)
    assert f.opcode == OP_CLOSE and f.close_code == 1001
    s.settimeout(5)
    assert_eof(s)
