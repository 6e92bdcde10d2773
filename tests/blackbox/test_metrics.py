"""GET /metrics: the Prometheus text exposition (format 0.0.4), read with prometheus_client's
own parser, and counters that match a scripted session exactly.

Definitions (README, Behaviour): messages are data messages (text or binary); bytes are their
payload bytes, without frame headers and without control frames; a close is counted when the
connection ends, under the code of the Close websock sent (1006 when it sent none)."""

import time

from prometheus_client.parser import text_string_to_metric_families

from conftest import (OP_BINARY, OP_CLOSE, OP_TEXT, build_frame, close_payload, expect_close,
                      read_http_response_until_eof, recv_close, recv_message, send_frame,
                      text_of_utf8_size, upgrade_request)
from deflate_helpers import (CHROME, FIREFOX, Peer, deflate_upgrade, json_like,
                             recv_deflate_message)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

FAMILIES = {  # family name as the parser reports it (counters without _total) -> type
    "websock_connections_open": "gauge",
    "websock_connections_accepted": "counter",
    "websock_upgrades": "counter",
    "websock_messages_received": "counter",
    "websock_messages_sent": "counter",
    "websock_payload_received_bytes": "counter",
    "websock_payload_sent_bytes": "counter",
    "websock_closes": "counter",
    "websock_handshake_rejections": "counter",
    "websock_ip_limited": "counter",
    "websock_deflate_negotiated": "counter",
    "websock_deflate_bytes": "counter",
    "websock_tls_handshakes": "counter",  # 0 without --tls-port (test_tls.py counts them)
    "websock_tls_handshake_failures": "counter",
    "websock_tls_ktls": "counter",
    "process_cpu_seconds": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "process_start_time_seconds": "gauge",
    "websock_build_info": "gauge",
}
DEFLATE_LABELS = [("in", "compressed"), ("in", "plain"), ("out", "compressed"),
                  ("out", "plain")]
STATUSES = ["400", "403", "404", "405", "426", "429", "431", "500", "503"]


class Scraper:
    """Scrapes /metrics and counts its own scrapes (each one is an accepted connection)."""

    def __init__(self, srv):
        self.srv = srv
        self.scrapes = 0

    def families(self):
        s = self.srv.connect()
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        resp = read_http_response_until_eof(s)
        self.scrapes += 1
        assert resp.status == 200, resp.raw_head
        assert resp.header("Content-Type") == CONTENT_TYPE, resp.raw_head
        assert int(resp.header("Content-Length")) == len(resp.body)
        return list(text_string_to_metric_families(resp.body.decode("utf-8")))

    def samples(self):
        """{(sample name, frozenset of labels): value} of one scrape."""
        return {(s.name, frozenset(s.labels.items())): s.value
                for f in self.families() for s in f.samples}

    def settled(self):
        """Samples once no WebSocket connection is open (closes are counted as they end)."""
        deadline = time.monotonic() + 5
        while True:
            got = self.samples()
            if got[("websock_connections_open", frozenset())] == 0:
                return got
            assert time.monotonic() < deadline, f"connections still open: {got}"
            time.sleep(0.02)


def by_label(samples, name, label):
    return {dict(labels)[label]: value for (n, labels), value in samples.items() if n == name}


def plain(samples, name):
    return samples[(name, frozenset())]


def test_exposition_parses_with_help_and_type_for_every_family(websock):
    families = {f.name: f for f in Scraper(websock).families()}
    assert {name: f.type for name, f in families.items()} == FAMILIES
    for f in families.values():
        assert f.documentation, f"{f.name} has no HELP text"
    assert [s.name for s in families["websock_connections_accepted"].samples] == \
        ["websock_connections_accepted_total"]
    assert sorted(s.labels["status"] for s in families["websock_handshake_rejections"].samples) \
        == sorted(STATUSES)
    assert sorted((s.labels["reason"], s.value) for s in families["websock_ip_limited"].samples) \
        == [("connections", 0), ("rate", 0)]
    assert sorted((s.labels["direction"], s.labels["form"], s.value)
                  for s in families["websock_deflate_bytes"].samples) == \
        [(d, f, 0) for d, f in DEFLATE_LABELS]


def test_counters_match_a_scripted_session_exactly(websock):
    texts = [text_of_utf8_size(n).encode() for n in (1, 300, 70000)]  # 70000: streamed back
    binaries = [b"", bytes(range(256)) * 256]                           # 0 and 65536 bytes
    scraper = Scraper(websock)
    # Connections before this point: the fixture's start-up probe and this scrape.
    accepted_before = plain(scraper.samples(), "websock_connections_accepted_total")
    s = websock.upgraded()
    for payload in texts:
        send_frame(s, OP_TEXT, payload)
        assert recv_message(s)[:2] == (OP_TEXT, payload)
    for payload in binaries:
        send_frame(s, OP_BINARY, payload)
        assert recv_message(s)[:2] == (OP_BINARY, payload)

    during = scraper.samples()
    assert plain(during, "websock_connections_open") == 1
    assert plain(during, "websock_messages_received_total") == 5

    send_frame(s, OP_CLOSE, close_payload(4001, b"done"))
    close, before = recv_close(s)
    assert close.close_code == 4001 and before == []
    s.close()

    not_found = websock.connect()
    not_found.sendall(b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert read_http_response_until_eof(not_found).status == 404
    bad = websock.connect()
    bad.sendall(upgrade_request(key="not-a-key"))
    assert read_http_response_until_eof(bad).status == 400

    got = scraper.settled()
    payload_bytes = sum(map(len, texts)) + sum(map(len, binaries))
    assert plain(got, "websock_connections_open") == 0
    assert plain(got, "websock_connections_accepted_total") == \
        accepted_before + 3 + (scraper.scrapes - 1)
    assert plain(got, "websock_upgrades_total") == 1
    assert plain(got, "websock_messages_received_total") == 5
    assert plain(got, "websock_messages_sent_total") == 5
    assert plain(got, "websock_payload_received_bytes_total") == payload_bytes == 135837
    assert plain(got, "websock_payload_sent_bytes_total") == payload_bytes
    assert by_label(got, "websock_closes_total", "code") == {"4001": 1}
    assert by_label(got, "websock_handshake_rejections_total", "status") == \
        {status: {"404": 1, "400": 1}.get(status, 0) for status in STATUSES}


def test_closes_are_counted_by_the_code_websock_sent(websock_factory):
    srv = websock_factory("--max-message", "100", "--idle-timeout", "300", "--ping-interval", "0")
    cases = [
        (1000, lambda s: send_frame(s, OP_CLOSE)),                        # no code: 1000
        (1002, lambda s: s.sendall(build_frame(OP_TEXT, b"x", mask=False))),
        (1007, lambda s: send_frame(s, OP_TEXT, b"ok \xff")),
        (1009, lambda s: send_frame(s, OP_BINARY, b"x" * 101)),
        (1001, lambda s: None),                                           # silent: idle timeout
    ]
    for code, act in cases:
        s = srv.upgraded()
        act(s)
        expect_close(s, code, reply=code != 1000)
    s = srv.upgraded()
    s.close()  # TCP closed without a Close frame: 1006
    post = srv.connect()
    post.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert read_http_response_until_eof(post).status == 405

    got = Scraper(srv).settled()
    assert by_label(got, "websock_closes_total", "code") == \
        {"1000": 1, "1001": 1, "1002": 1, "1006": 1, "1007": 1, "1009": 1}
    assert plain(got, "websock_upgrades_total") == 6
    assert plain(got, "websock_messages_received_total") == 0
    assert plain(got, "websock_payload_received_bytes_total") == 4  # the 1007 frame's bytes
    assert by_label(got, "websock_handshake_rejections_total", "status")["405"] == 1


def test_deflate_counters_match_a_scripted_session_exactly(websock):
    """Two connections negotiate the extension, one is declined, one offers nothing. The
    compressed messages' wire and inflated sizes are counted in, their echoes' wire and
    plain sizes out (an echo that came back plain is not a compressed message); a plain
    message on a deflate connection counts in neither."""
    scraper = Scraper(websock)
    wire_in = plain_in = wire_out = plain_out = 0
    peers = []
    for offer in (FIREFOX, CHROME):
        s, got = deflate_upgrade(websock, offer)
        peers.append(Peer(s, got))
    deflate_upgrade(websock, "permessage-deflate; foo")[0].close()
    deflate_upgrade(websock)[0].close()
    for i, peer in enumerate(peers):
        for opcode, data in ((OP_TEXT, json_like(5000, i)), (OP_BINARY, json_like(300000, i)),
                             (OP_TEXT, text_of_utf8_size(70000).encode())):
            payload = peer.send(opcode, data)
            wire_in += len(payload)
            plain_in += len(data)
            frames = []
            got_op, echo, compressed = recv_deflate_message(peer.sock, peer.inflater,
                                                            frames.append)
            assert (got_op, echo) == (opcode, data)
            assert compressed, "a compressible echo came back plain"
            wire_out += sum(len(f.payload) for f in frames)
            plain_out += len(data)
        send_frame(peer.sock, OP_TEXT, b"plain on a deflate connection")
        assert recv_message(peer.sock)[:2] == (OP_TEXT, b"plain on a deflate connection")
    during = scraper.samples()
    assert plain(during, "websock_deflate_negotiated_total") == 2
    assert plain(during, "websock_messages_received_total") == 8
    got = {(d, f): during[("websock_deflate_bytes_total",
                           frozenset({("direction", d), ("form", f)}))]
           for d, f in DEFLATE_LABELS}
    assert got == {("in", "compressed"): wire_in, ("in", "plain"): plain_in,
                   ("out", "compressed"): wire_out, ("out", "plain"): plain_out}
    assert wire_in * 10 < plain_in and wire_out * 10 < plain_out  # it did compress
    for peer in peers:
        peer.sock.close()
