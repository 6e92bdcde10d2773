"""permessage-deflate (RFC 7692), issue 17: what the server answers to each offer, how it
echoes compressed messages, and how it fails bad ones. Raw sockets and Python's zlib, so that
every bit on the wire is the test's choice.

The contract is issue 17's: the first valid offer wins and is answered in one exact spelling
(client_no_context_takeover by default; client_max_window_bits=10 at most in --deflate
takeover); an invalid offer is declined, never a failed handshake; RSV1 only on the first
frame of a data message of a connection that negotiated; UTF-8 and --max-message are judged on
inflated bytes, as they arrive.
"""

import os
import zlib

import pytest

from conftest import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                      expect_close, recv_frame, send_frame, text_of_utf8_size)
from deflate_helpers import (CHROME, DEFAULT_ANSWER, FIREFOX, RSV1, Peer, answer_params,
                             compressed_frames, compressor, deflate, deflate_upgrade,
                             json_like, split_frames)

KiB = 1024
MiB = 1024 * KiB

# Autobahn's fuzzingclient offers (12.* and 13.*), as its PerMessageDeflateOffer writes them.
AUTOBAHN_OFFERS = [
    ("permessage-deflate; client_max_window_bits", DEFAULT_ANSWER),
    ("permessage-deflate; client_no_context_takeover; client_max_window_bits", DEFAULT_ANSWER),
    ("permessage-deflate; client_max_window_bits; server_max_window_bits=9",
     "permessage-deflate; client_no_context_takeover; server_max_window_bits=9"),
    ("permessage-deflate; client_max_window_bits; server_no_context_takeover",
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
    ("permessage-deflate; client_no_context_takeover; client_max_window_bits; "
     "server_no_context_takeover; server_max_window_bits=15",
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
     "server_max_window_bits=15"),
    # 13.*'s multi-offer headers: the first acceptable offer wins
    ("permessage-deflate; client_max_window_bits; server_max_window_bits=9, "
     "permessage-deflate; client_max_window_bits",
     "permessage-deflate; client_no_context_takeover; server_max_window_bits=9"),
    ("permessage-deflate; client_no_context_takeover; client_max_window_bits; "
     "server_no_context_takeover, permessage-deflate; client_max_window_bits",
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
]

ACCEPTED = [
    (FIREFOX, DEFAULT_ANSWER),
    (CHROME, DEFAULT_ANSWER),
    *AUTOBAHN_OFFERS,
    ("permessage-deflate; server_max_window_bits=8",
     "permessage-deflate; client_no_context_takeover; server_max_window_bits=8"),
    ("permessage-deflate; client_max_window_bits=12", DEFAULT_ANSWER),
    ('permessage-deflate; server_max_window_bits="10"',
     "permessage-deflate; client_no_context_takeover; server_max_window_bits=10"),
    ("permessage-deflate; Server_No_Context_Takeover",
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
    ("permessage-deflate ;server_max_window_bits = 11 , x-other",
     "permessage-deflate; client_no_context_takeover; server_max_window_bits=11"),
    ("x-webkit-deflate-frame, permessage-deflate", DEFAULT_ANSWER),
    ("permessage-deflate; server_max_window_bits=16, permessage-deflate; "
     "server_max_window_bits=12",
     "permessage-deflate; client_no_context_takeover; server_max_window_bits=12"),
    ("permessage-deflate; foo, permessage-deflate", DEFAULT_ANSWER),
]

# Each is declined; none is a failed handshake.
DECLINED = [
    "permessage-deflate; foo",
    "permessage-deflate; foo=1",
    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
    "permessage-deflate; server_no_context_takeover=1",
    "permessage-deflate; client_no_context_takeover=true",
    "permessage-deflate; server_max_window_bits",
    "permessage-deflate; server_max_window_bits=7",
    "permessage-deflate; server_max_window_bits=16",
    "permessage-deflate; server_max_window_bits=08",
    "permessage-deflate; server_max_window_bits=+9",
    "permessage-deflate; server_max_window_bits=-9",
    "permessage-deflate; client_max_window_bits=0",
    "permessage-deflate; client_max_window_bits=1O",
    'permessage-deflate; server_max_window_bits="1 0"',
    'permessage-deflate; server_max_window_bits=""',
    "x-webkit-deflate-frame",
    "deflate-frame; no_context_takeover",
    # syntactically malformed: everything is declined, the valid offer after it too
    "permessage-deflate; x=a@b, permessage-deflate",
    'permessage-deflate; server_max_window_bits="10, permessage-deflate',
]

TAKEOVER = [
    (CHROME, "permessage-deflate; client_max_window_bits=10"),
    ("permessage-deflate; client_max_window_bits=9",
     "permessage-deflate; client_max_window_bits=9"),
    ("permessage-deflate; client_max_window_bits=15",
     "permessage-deflate; client_max_window_bits=10"),
    (FIREFOX, DEFAULT_ANSWER),
    ("permessage-deflate; client_no_context_takeover; client_max_window_bits",
     "permessage-deflate; client_no_context_takeover; client_max_window_bits=10"),
    ("permessage-deflate; server_no_context_takeover; server_max_window_bits=10; "
     "client_max_window_bits=12",
     "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; "
     "client_max_window_bits=10"),
]


# ---------------------------------------------------------------------------- negotiation


@pytest.mark.parametrize("offer,answer", ACCEPTED, ids=[o for o, _ in ACCEPTED])
def test_offer_is_answered_exactly_and_the_connection_echoes(websock, offer, answer):
    s, got = deflate_upgrade(websock, offer)
    assert got == answer
    peer = Peer(s, got)
    for i in range(3):  # later messages may use earlier ones as their dictionary
        assert peer.echo(OP_TEXT, json_like(3000, i)), "a compressible echo came uncompressed"


@pytest.mark.parametrize("offer", DECLINED)
def test_invalid_offer_gives_101_without_the_extension(websock, offer):
    s, got = deflate_upgrade(websock, offer)
    assert got is None
    send_frame(s, OP_TEXT, b"plain after a declined offer")
    f = recv_frame(s)
    assert (f.opcode, f.rsv, f.fin, f.payload) == (OP_TEXT, 0, True,
                                                   b"plain after a declined offer")


def test_repeated_header_lines_are_one_list(websock):
    """The first line's offer is invalid; the second line's is taken."""
    s, got = deflate_upgrade(websock, "permessage-deflate; foo",
                             "permessage-deflate; server_no_context_takeover")
    assert got == "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    assert Peer(s, got).echo(OP_TEXT, json_like(2000))


def test_no_offer_no_extension(websock):
    s, got = deflate_upgrade(websock)
    assert got is None


@pytest.mark.parametrize("offer", [FIREFOX, CHROME])
def test_deflate_off_answers_no_extension(websock_factory, offer):
    srv = websock_factory("--deflate", "off")
    s, got = deflate_upgrade(srv, offer)
    assert got is None
    send_frame(s, OP_TEXT, deflate(b"compressed anyway"), rsv=RSV1)
    expect_close(s, 1002)


@pytest.mark.parametrize("offer,answer", TAKEOVER, ids=[o for o, _ in TAKEOVER])
def test_takeover_mode_answers_client_max_window_bits(websock_factory, offer, answer):
    srv = websock_factory("--deflate", "takeover")
    s, got = deflate_upgrade(srv, offer)
    assert got == answer
    peer = Peer(s, got)
    for i in range(4):
        assert peer.echo(OP_TEXT, json_like(2500, i))


def test_takeover_mode_inflates_messages_that_refer_to_earlier_ones(websock_factory):
    """With client_max_window_bits=10 the client keeps one deflate stream: each message here
    repeats most of the one before it, within 1 KiB, so it is mostly back-references into
    the previous message. The server must keep that window between messages."""
    srv = websock_factory("--deflate", "takeover")
    s, got = deflate_upgrade(srv, CHROME)
    peer = Peer(s, got)
    assert not peer.fresh and peer.client_bits == 10
    base = os.urandom(600)
    for i in range(6):
        msg = base[i * 50:] + os.urandom(50)
        payload = peer.send(OP_BINARY, msg)
        if i:
            assert len(payload) < 300, "the test meant this message to refer to the last one"
        op, echo, _ = peer.recv()
        assert (op, echo) == (OP_BINARY, msg)
        base = msg


def test_server_max_window_bits_8_is_honoured_across_messages(websock):
    """Answered 8, the server's stream must inflate with a 256-byte window. zlib cannot
    deflate raw with 8 but it can inflate with it; the Inflater takes output in small steps
    so that every back-reference is checked against that window (a stream deflated with a
    larger window fails with "invalid distance too far back"). The data repeats at a
    1,000-byte period (random 400-byte runs between JSON-like text), and each message equals
    the last: both tempt a larger window."""
    s, got = deflate_upgrade(websock, "permessage-deflate; server_max_window_bits=8")
    assert answer_params(got)["server_max_window_bits"] == "8"
    peer = Peer(s, got)
    assert peer.inflater.wbits == 8
    msg = (json_like(600) + os.urandom(400)) * 8  # shrinks even with a 256-byte window
    for _ in range(3):
        assert peer.echo(OP_BINARY, msg), "a compressible echo came uncompressed"


# --------------------------------------------------------------------------------- echo


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
@pytest.mark.parametrize("size", [1, 125, 4 * KiB, 300 * KiB, 3 * MiB])
def test_compressed_message_echoes_compressed_and_intact(websock, opcode, size):
    s, got = deflate_upgrade(websock, CHROME)
    peer = Peer(s, got)
    data = text_of_utf8_size(size).encode() if opcode == OP_TEXT else json_like(size)
    compressed = peer.echo(opcode, data)
    if size >= 4 * KiB:  # small ones may be echoed plain below a documented threshold
        assert compressed, "a compressible message that arrived compressed came back plain"


@pytest.mark.parametrize("chunk", [1, 1000, 64 * KiB])
def test_fragmented_compressed_message_echoes_intact(websock, chunk):
    """Each fragment is sync-flushed, so the server can inflate it as it arrives; a one-byte
    chunk puts a fragment boundary inside every multi-byte code point."""
    s, got = deflate_upgrade(websock, FIREFOX)
    peer = Peer(s, got)
    data = text_of_utf8_size(200 * KiB if chunk > 1 else 3000).encode()
    s.sendall(b"".join(compressed_frames(OP_TEXT, data, chunk)))
    op, echo, compressed = peer.recv()
    assert (op, echo) == (OP_TEXT, data)
    assert compressed


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_compressed_stream_cut_anywhere_echoes_intact(websock, size):
    """The compressed payload is cut into frames of size wire bytes, in the middle of deflate
    codes: the server's inflater must carry its state across frames."""
    s, got = deflate_upgrade(websock, FIREFOX)
    peer = Peer(s, got)
    data = json_like(100 * KiB)
    s.sendall(b"".join(split_frames(OP_BINARY, deflate(data), size)))
    assert peer.recv()[:2] == (OP_BINARY, data)


def test_incompressible_message_echoes_intact(websock):
    """Random bytes do not shrink: the echo may be plain or compressed, but it is intact."""
    s, got = deflate_upgrade(websock, FIREFOX)
    peer = Peer(s, got)
    for size in (100, 10 * KiB, 1 * MiB):
        peer.echo(OP_BINARY, os.urandom(size))


def test_uncompressed_message_on_a_deflate_connection_echoes_plain(websock):
    s, got = deflate_upgrade(websock, FIREFOX)
    peer = Peer(s, got)
    for data in (b"plain text on a deflate connection", json_like(50 * KiB)):
        send_frame(s, OP_TEXT, data)
        assert peer.recv() == (OP_TEXT, data, False)
    assert peer.echo(OP_TEXT, json_like(50 * KiB))  # and compressed still works after


def test_control_frames_inside_a_compressed_message(websock):
    """A ping between two compressed fragments is answered at once; the message goes on."""
    s, got = deflate_upgrade(websock, FIREFOX)
    peer = Peer(s, got)
    data = json_like(20 * KiB)
    frames = compressed_frames(OP_TEXT, data, 10 * KiB)
    s.sendall(frames[0])
    send_frame(s, OP_PING, b"mid-message")
    early = []  # the echo may start streaming before the pong
    f = recv_frame(s)
    while f.opcode != OP_PONG:
        assert f.opcode in (OP_TEXT, OP_CONT) and not f.fin, f
        early.append(f)
        f = recv_frame(s)
    assert (f.rsv, f.payload) == (0, b"mid-message")
    s.sendall(b"".join(frames[1:]))
    while not early or not early[-1].fin:
        early.append(recv_frame(s))
    assert early[0].opcode == OP_TEXT and all(f.opcode == OP_CONT for f in early[1:])
    if early[0].rsv == RSV1:
        echo = b"".join(peer.inflater.feed(f.payload) for f in early) + peer.inflater.end()
    else:
        echo = b"".join(f.payload for f in early)
    assert echo == data


def test_empty_compressed_message_echoes_empty(websock):
    s, got = deflate_upgrade(websock, FIREFOX)
    peer = Peer(s, got)
    for payload in (b"", deflate(b""), b"\x00"):  # three spellings of an empty message
        send_frame(s, OP_TEXT, payload, rsv=RSV1)
        assert peer.recv()[:2] == (OP_TEXT, b"")


def test_invalid_utf8_in_compressed_binary_is_fine(websock):
    s, got = deflate_upgrade(websock, FIREFOX)
    peer = Peer(s, got)
    peer.echo(OP_BINARY, b"\xff\xfe\xc0\x80" * 1000)


# ------------------------------------------------------------------------------- RSV bits


def test_rsv1_on_a_continuation_frame_fails_with_1002(websock):
    s, _ = deflate_upgrade(websock, FIREFOX)
    first = deflate(b"first half, ")
    send_frame(s, OP_TEXT, first, fin=False, rsv=RSV1)
    send_frame(s, OP_CONT, b"", fin=True, rsv=RSV1)
    expect_close(s, 1002)


def test_rsv1_on_a_continuation_of_a_plain_message_fails_with_1002(websock):
    s, _ = deflate_upgrade(websock, FIREFOX)
    send_frame(s, OP_TEXT, b"plain start", fin=False)
    send_frame(s, OP_CONT, deflate(b" compressed end"), fin=True, rsv=RSV1)
    expect_close(s, 1002)


@pytest.mark.parametrize("opcode,payload", [(OP_PING, b"p"), (OP_PONG, b"p"),
                                            (OP_CLOSE, b"\x03\xe8")],
                         ids=["ping", "pong", "close"])
def test_rsv1_on_a_control_frame_fails_with_1002(websock, opcode, payload):
    s, _ = deflate_upgrade(websock, FIREFOX)
    send_frame(s, opcode, payload, rsv=RSV1)
    expect_close(s, 1002)


def test_rsv1_without_negotiation_fails_with_1002(websock):
    s, got = deflate_upgrade(websock)
    assert got is None
    send_frame(s, OP_TEXT, deflate(b"never negotiated"), rsv=RSV1)
    expect_close(s, 1002)


@pytest.mark.parametrize("rsv", [2, 1, RSV1 | 2, RSV1 | 1], ids=["rsv2", "rsv3", "rsv12",
                                                                 "rsv13"])
def test_rsv2_rsv3_fail_with_1002_on_a_deflate_connection(websock, rsv):
    s, _ = deflate_upgrade(websock, FIREFOX)
    send_frame(s, OP_TEXT, deflate(b"reserved bits"), rsv=rsv)
    expect_close(s, 1002)


# ------------------------------------------------------------------ bad compressed payloads


def test_invalid_utf8_in_a_first_fragment_fails_with_1007_before_the_message_ends(websock):
    """No FIN is ever sent: the server must judge the inflated bytes it has."""
    s, _ = deflate_upgrade(websock, FIREFOX)
    comp = compressor()
    bad = comp.compress(b"valid start, then \xff and more") + comp.flush(zlib.Z_SYNC_FLUSH)
    send_frame(s, OP_TEXT, bad, fin=False, rsv=RSV1)
    expect_close(s, 1007)


def test_invalid_utf8_deep_in_a_large_inflated_fragment_fails_with_1007(websock):
    """The bad byte comes after 1 MiB of valid inflated text (several inflate turns), from
    a few KiB on the wire; still no FIN."""
    s, _ = deflate_upgrade(websock, FIREFOX)
    comp = compressor()
    body = text_of_utf8_size(MiB).encode() + b"\xed\xa0\x80"  # a UTF-16 surrogate
    send_frame(s, OP_TEXT, comp.compress(body) + comp.flush(zlib.Z_SYNC_FLUSH), fin=False,
               rsv=RSV1)
    expect_close(s, 1007)


def test_code_point_split_across_fragments_then_broken_fails_with_1007(websock):
    s, _ = deflate_upgrade(websock, FIREFOX)
    comp = compressor()
    send_frame(s, OP_TEXT, comp.compress(b"euro \xe2\x82") + comp.flush(zlib.Z_SYNC_FLUSH),
               fin=False, rsv=RSV1)
    send_frame(s, OP_CONT, comp.compress(b"A") + comp.flush(zlib.Z_SYNC_FLUSH), fin=False)
    expect_close(s, 1007)


def test_truncated_code_point_at_the_end_of_a_compressed_message_fails_with_1007(websock):
    s, _ = deflate_upgrade(websock, FIREFOX)
    send_frame(s, OP_TEXT, deflate(b"ends inside a code point \xf0\x9f\x98"), rsv=RSV1)
    expect_close(s, 1007)


@pytest.mark.parametrize("payload", [b"\xff\xff\xff\xff", b"\x07", b"\xff" * 100],
                         ids=["reserved-block-type", "bad-block", "garbage"])
def test_corrupt_deflate_data_fails_with_1007(websock, payload):
    s, _ = deflate_upgrade(websock, FIREFOX)
    send_frame(s, OP_BINARY, payload, rsv=RSV1)
    expect_close(s, 1007)


def test_back_reference_before_the_start_fails_with_1007(websock):
    """Deflated against a preset dictionary the server does not have: the first match points
    before the start of the stream (zlib: invalid distance too far back)."""
    s, _ = deflate_upgrade(websock, FIREFOX)
    words = b"the quick brown fox jumps over the lazy dog " * 4
    comp = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=words)
    send_frame(s, OP_TEXT, deflate(words, comp), rsv=RSV1)
    expect_close(s, 1007)


def test_corrupt_second_fragment_fails_with_1007(websock):
    s, _ = deflate_upgrade(websock, FIREFOX)
    comp = compressor()
    send_frame(s, OP_BINARY, comp.compress(b"fine so far") + comp.flush(zlib.Z_SYNC_FLUSH),
               fin=False, rsv=RSV1)
    send_frame(s, OP_CONT, b"\xff\xff\xff\xff", fin=False)
    expect_close(s, 1007)


def test_no_dictionary_between_messages_when_client_no_context_takeover(websock):
    """The default answer includes client_no_context_takeover: the server's inflater must
    start each message empty, so a message that refers to the previous one is corrupt."""
    s, got = deflate_upgrade(websock, FIREFOX)
    assert "client_no_context_takeover" in answer_params(got)
    peer = Peer(s, got)
    comp = compressor()
    msg = json_like(500)
    send_frame(s, OP_TEXT, deflate(msg, comp), rsv=RSV1)
    assert peer.recv()[:2] == (OP_TEXT, msg)
    send_frame(s, OP_TEXT, deflate(msg, comp), rsv=RSV1)  # all back-references now
    expect_close(s, 1007)


# ------------------------------------------------------------------------- --max-message


def test_max_message_counts_inflated_bytes(websock_factory):
    srv = websock_factory("--max-message", "1000")
    s, got = deflate_upgrade(srv, FIREFOX)
    peer = Peer(s, got)
    peer.echo(OP_TEXT, b"a" * 1000)  # exactly the limit: fine (a 10-byte wire payload)
    payload = peer.send(OP_TEXT, b"a" * 1001)
    assert len(payload) < 20
    expect_close(s, 1009)


def test_max_message_fails_a_compressed_fragment_before_the_message_ends(websock_factory):
    srv = websock_factory("--max-message", "64K")
    s, _ = deflate_upgrade(srv, FIREFOX)
    comp = compressor()
    first = comp.compress(bytes(MiB)) + comp.flush(zlib.Z_SYNC_FLUSH)  # ~1 KiB on the wire
    send_frame(s, OP_BINARY, first, fin=False, rsv=RSV1)
    expect_close(s, 1009)


def test_max_message_counts_inflated_bytes_across_fragments(websock_factory):
    srv = websock_factory("--max-message", "100K")
    s, _ = deflate_upgrade(srv, FIREFOX)
    frames = compressed_frames(OP_BINARY, bytes(200 * KiB), 10 * KiB)
    s.sendall(b"".join(frames[:-1]))  # 190 KiB inflated, no FIN
    expect_close(s, 1009)
