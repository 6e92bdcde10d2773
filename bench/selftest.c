/* Self-test of wsload's pure parts: SHA-1/base64, the handshake check, framing, the histogram
 * and the payload scheme. `make -C bench check` runs it. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "frame.h"
#include "handshake.h"
#include "hist.h"
#include "jsongen.h"
#include "payload.h"
#include "pmd.h"
#include "sha1.h"
#include "zcodec.h"

static int passed, failed;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (cond) {                                                                     \
            passed++;                                                                   \
        } else {                                                                        \
            failed++;                                                                   \
            fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__,       \
                    __func__, #cond);                                                   \
        }                                                                               \
    } while (0)

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void sha1_vectors(void)
{
    static const struct {
        const char *in, *out;
    } v[] = {
        { "", "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
        { "abc", "a9993e364706816aba3e25717850c26c9cd0d89d" },
        /* 56 bytes: the length no longer fits in the first padding block */
        { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "84983e441c3bd26ebaae4aa1f95129e5e54670f1" },
    };
    uint8_t d[20];
    char h[41];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        sha1(v[i].in, strlen(v[i].in), d);
        hex(d, 20, h);
        CHECK(strcmp(h, v[i].out) == 0);
    }
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    sha1(a, 1000000, d);
    free(a);
    hex(d, 20, h);
    CHECK(strcmp(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f") == 0);
}

static void base64_vectors(void)
{
    char out[16];
    const char *in[] = { "", "f", "fo", "foo", "foobar" };
    const char *want[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYmFy" };
    for (int i = 0; i < 5; i++) {
        base64_encode((const uint8_t *)in[i], strlen(in[i]), out);
        CHECK(strcmp(out, want[i]) == 0);
    }
}

static void accept_rfc_example(void)
{
    char accept[WS_ACCEPT_LEN + 1];
    handshake_accept("dGhlIHNhbXBsZSBub25jZQ==", accept);
    CHECK(strcmp(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
}

static void handshake_answers(void)
{
    const char *acc = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
    char err[256];
    const char *ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n"
                     "Connection: keep-alive, Upgrade\r\n"
                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nXY";
    size_t len = strlen(ok);
    CHECK(handshake_response(ok, len, acc, NULL, err, sizeof err) == (long)len - 2);
    for (size_t cut = 0; cut < len - 2; cut++) /* every truncation is "incomplete" */
        CHECK(handshake_response(ok, cut, acc, NULL, err, sizeof err) == 0);

    const char *bad[] = {
        "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
        "HTTP/1.1 101 OK\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        "HTTP/1.1 1010 OK\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(handshake_response(bad[i], strlen(bad[i]), acc, NULL, err, sizeof err) == -1);
}

/* The server's answer to PMD_OFFER: what it may say, and what must fail the connection. */
static void deflate_answers(void)
{
    struct pmd_params p;
    char err[256];
#define ANSWER(v) pmd_parse_response(v, strlen(v), &p, err, sizeof err)
    CHECK(ANSWER("permessage-deflate") == 0 && p.on && !p.server_no_takeover &&
          !p.client_no_takeover && p.server_bits == 15 && p.client_bits == 15);
    CHECK(ANSWER("permessage-deflate; client_no_context_takeover") == 0 && p.client_no_takeover &&
          !p.server_no_takeover);
    CHECK(ANSWER("permessage-deflate;server_no_context_takeover ;client_no_context_takeover") == 0 &&
          p.server_no_takeover && p.client_no_takeover);
    CHECK(ANSWER("Permessage-Deflate; client_max_window_bits=10; server_max_window_bits=\"8\"") ==
              0 &&
          p.client_bits == 10 && p.server_bits == 8);
    CHECK(ANSWER("permessage-deflate; client_max_window_bits = 15") == 0 && p.client_bits == 15);
    const char *bad[] = {
        "x-webkit-deflate-frame",
        "permessage-deflate, permessage-deflate",
        "permessage-deflate; client_max_window_bits",       /* an answer needs the value */
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=010",
        "permessage-deflate; client_max_window_bits=+9",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; mux",
        "permessage-deflate; \"client_no_context_takeover\"",
        "permessage-deflate client_no_context_takeover",
        "permessage-deflate; server_max_window_bits=\"9",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(ANSWER(bad[i]) == -1 && err[0]);
        if (ANSWER(bad[i]) != -1)
            fprintf(stderr, "  accepted: %s\n", bad[i]);
    }
#undef ANSWER

    /* Through the handshake check: agreed, declined, unasked, or answered twice. */
    const char *acc = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
    const char *head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
    char r[512];
    snprintf(r, sizeof r, "%sSec-WebSocket-Extensions: permessage-deflate; "
                          "client_no_context_takeover\r\n\r\n", head);
    CHECK(handshake_response(r, strlen(r), acc, &p, err, sizeof err) == (long)strlen(r) && p.on &&
          p.client_no_takeover);
    CHECK(handshake_response(r, strlen(r), acc, NULL, err, sizeof err) == -1);
    snprintf(r, sizeof r, "%s\r\n", head);
    CHECK(handshake_response(r, strlen(r), acc, &p, err, sizeof err) > 0 && !p.on);
    snprintf(r, sizeof r, "%sSec-WebSocket-Extensions: permessage-deflate\r\n"
                          "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n", head);
    CHECK(handshake_response(r, strlen(r), acc, &p, err, sizeof err) == -1);

    uint8_t nonce[16] = { 0 };
    char accept[WS_ACCEPT_LEN + 1];
    size_t n = handshake_request(r, sizeof r, "h:1", "/ws", nonce, true, accept);
    CHECK(n && strstr(r, "\r\nSec-WebSocket-Extensions: " PMD_OFFER "\r\n\r\n"));
    n = handshake_request(r, sizeof r, "h:1", "/ws", nonce, false, accept);
    CHECK(n && !strstr(r, "Extensions"));
}

static void client_headers(void)
{
    const uint8_t mask[4] = { 1, 2, 3, 4 };
    uint8_t h[FRAME_HDR_MAX];
    CHECK(frame_client_header(h, OP_TEXT, 0, mask) == 6 && h[0] == 0x81 && h[1] == 0x80);
    CHECK(frame_client_header(h, OP_BINARY, 125, mask) == 6 && h[1] == (0x80 | 125));
    CHECK(frame_client_header(h, OP_BINARY, 126, mask) == 8 && h[1] == 0xFE && h[3] == 126);
    CHECK(frame_client_header(h, OP_BINARY, 65535, mask) == 8 && h[2] == 0xFF);
    CHECK(frame_client_header(h, OP_BINARY, 65536, mask) == 14 && h[1] == 0xFF && h[7] == 1);
    CHECK(memcmp(h + 10, mask, 4) == 0);

    uint8_t p[11] = "hello world", q[11];
    memcpy(q, p, sizeof q);
    frame_mask(q, sizeof q, mask, 0);
    CHECK(q[0] == ('h' ^ 1) && q[5] == (' ' ^ 2));
    frame_mask(q + 3, 8, mask, 3); /* unmasking from an offset must line up */
    frame_mask(q, 3, mask, 0);
    CHECK(memcmp(p, q, sizeof p) == 0);
}

static int decode(const uint8_t *p, struct frame_hdr *h)
{
    const char *why;
    return frame_server_header(p, false, h, &why);
}

static void server_headers(void)
{
    struct frame_hdr h;
    const uint8_t text5[] = { 0x81, 5 };
    CHECK(frame_header_size(text5[1]) == 2 && decode(text5, &h) == 0 && h.fin &&
          h.opcode == OP_TEXT && h.len == 5);
    const uint8_t cont16[] = { 0x00, 126, 0x01, 0x00 };
    CHECK(frame_header_size(cont16[1]) == 4 && decode(cont16, &h) == 0 && !h.fin &&
          h.len == 256);
    const uint8_t bin64[] = { 0x82, 127, 0, 0, 0, 0, 1, 0, 0, 0 };
    CHECK(frame_header_size(bin64[1]) == 10 && decode(bin64, &h) == 0 && h.len == 1u << 24);

    const uint8_t masked[] = { 0x82, 0x85, 1, 2, 3, 4 };
    const uint8_t rsv[] = { 0xC2, 1 };
    const uint8_t short16[] = { 0x82, 126, 0, 125 };
    const uint8_t short64[] = { 0x82, 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };
    const uint8_t big_ping[] = { 0x89, 126, 0, 126 };
    const uint8_t frag_ping[] = { 0x09, 0 };
    const uint8_t op3[] = { 0x83, 0 };
    CHECK(decode(masked, &h) < 0);
    CHECK(decode(rsv, &h) < 0);
    CHECK(decode(short16, &h) < 0);
    CHECK(decode(short64, &h) < 0);
    CHECK(decode(big_ping, &h) < 0);
    CHECK(decode(frag_ping, &h) < 0);
    CHECK(decode(op3, &h) < 0);
}

/* RSV1: only with the extension, only on the first frame of a data message. */
static void compressed_headers(void)
{
    const char *why;
    struct frame_hdr h;
    const uint8_t text[] = { 0xC1, 5 }, bin[] = { 0x42, 5 }, cont[] = { 0xC0, 5 };
    const uint8_t ping[] = { 0xC9, 0 }, rsv2[] = { 0xA1, 5 }, rsv3[] = { 0x91, 5 };
    CHECK(frame_server_header(text, true, &h, &why) == 0 && h.rsv1 && h.fin && h.opcode == OP_TEXT);
    CHECK(frame_server_header(bin, true, &h, &why) == 0 && h.rsv1 && !h.fin);
    CHECK(frame_server_header(text, false, &h, &why) == -1);
    CHECK(frame_server_header(cont, true, &h, &why) == -1);
    CHECK(frame_server_header(ping, true, &h, &why) == -1);
    CHECK(frame_server_header(rsv2, true, &h, &why) == -1);
    CHECK(frame_server_header(rsv3, true, &h, &why) == -1);
    const uint8_t plain[] = { 0x81, 5 };
    CHECK(frame_server_header(plain, true, &h, &why) == 0 && !h.rsv1);

    /* What zconn.c sends: the opcode with RSV1, masked as usual. */
    const uint8_t mask[4] = { 9, 8, 7, 6 };
    uint8_t out[FRAME_HDR_MAX];
    CHECK(frame_client_header(out, OP_TEXT | FRAME_RSV1, 300, mask) == 8 && out[0] == 0xC1 &&
          out[1] == 0xFE);
}

struct collect {
    uint8_t *p;
    size_t len, cap;
};

static void collect(void *ctx, const uint8_t *p, size_t n)
{
    struct collect *c = ctx;
    if (c->len + n <= c->cap)
        memcpy(c->p + c->len, p, n);
    c->len += n;
}

/* Inflates a message in pieces of `step` bytes (the way frames and reads split it). */
static bool inflates_to(struct zcodec *z, int bits, struct zhist *hist, const uint8_t *w, size_t wn,
                        size_t step, const uint8_t *want, size_t n)
{
    static uint8_t got[1 << 17];
    struct collect c = { got, 0, sizeof got };
    const char *why = NULL;
    struct zinflater *in = zcodec_inflate_begin(z, bits, hist);
    bool ok = in != NULL;
    for (size_t off = 0; ok && off < wn; off += step)
        ok = zcodec_inflate(z, in, w + off, off + step < wn ? step : wn - off, false, collect, &c,
                            &why) == 0;
    ok = ok && zcodec_inflate(z, in, NULL, 0, true, collect, &c, &why) == 0;
    if (in)
        zcodec_inflate_end(z, in, hist);
    return ok && c.len == n && memcmp(got, want, n) == 0;
}

/* Compressed messages: the tail stripped, context kept or not, any window, any split. */
static void codec(void)
{
    static struct zcodec z;
    static uint8_t msg[3][20000], w[3][20200];
    uint64_t rng = 11;
    CHECK(zcodec_init(&z, 6) == 0);
    for (int i = 0; i < 3; i++)
        json_fill(msg[i], sizeof msg[i], ID_MAX, &rng);

    /* No context takeover: each message alone; the tail is gone and put back by inflate. */
    long n0 = zcodec_compress(&z, 15, NULL, msg[0], 200, w[0]);
    CHECK(n0 > 0 && n0 < 200);
    CHECK(!(w[0][n0 - 2] == 0xff && w[0][n0 - 1] == 0xff && w[0][n0 - 4] == 0));
    CHECK(inflates_to(&z, 15, NULL, w[0], (size_t)n0, 1, msg[0], 200));
    CHECK(inflates_to(&z, 15, NULL, w[0], (size_t)n0, 7, msg[0], 200));
    long again = zcodec_compress(&z, 15, NULL, msg[0], 200, w[1]);
    CHECK(again == n0 && memcmp(w[0], w[1], (size_t)n0) == 0); /* nothing carried over */

    /* Context takeover: the second message refers back to the first, and inflates only with
     * the first one's window. */
    struct zhist tx = { 0 }, rx = { 0 };
    long a = zcodec_compress(&z, 15, &tx, msg[1], 2000, w[1]);
    long b = zcodec_compress(&z, 15, &tx, msg[1], 2000, w[2]); /* the same bytes again */
    CHECK(a > 0 && b > 0 && b < a / 4 && tx.len == 4000);
    CHECK(inflates_to(&z, 15, &rx, w[1], (size_t)a, 13, msg[1], 2000) && rx.len == 2000);
    CHECK(inflates_to(&z, 15, &rx, w[2], (size_t)b, 5, msg[1], 2000) && rx.len == 4000);
    struct zhist none = { 0 };
    CHECK(!inflates_to(&z, 15, &none, w[2], (size_t)b, 5, msg[1], 2000));
    zhist_free(&tx);
    zhist_free(&rx);

    /* Window 8: deflated with 9 and inflated with 8, as RFC 7692 peers do; the history is
     * capped at the window. */
    struct zhist t8 = { 0 }, r8 = { 0 };
    for (int i = 0; i < 3; i++) {
        long n = zcodec_compress(&z, 8, &t8, msg[i], sizeof msg[i], w[i]);
        CHECK(n > 0 && inflates_to(&z, 8, &r8, w[i], (size_t)n, 4096, msg[i], sizeof msg[i]));
    }
    CHECK(t8.len == 512 && r8.len == 256);
    zhist_free(&t8);
    zhist_free(&r8);

    /* A 20 KB message through the 64 KiB output buffer in one call, and an empty message. */
    long big = zcodec_compress(&z, 15, NULL, msg[2], sizeof msg[2], w[2]);
    CHECK(big > 0 && inflates_to(&z, 15, NULL, w[2], (size_t)big, sizeof w[2], msg[2],
                                 sizeof msg[2]));
    long empty = zcodec_compress(&z, 15, NULL, msg[0], 0, w[0]);
    CHECK(empty >= 1 && inflates_to(&z, 15, NULL, w[0], (size_t)empty, 1, msg[0], 0));

    /* A final (BFINAL) block is allowed; anything after it, or a corrupt stream, is not. */
    z_stream s = { 0 };
    CHECK(deflateInit2(&s, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    s.next_in = msg[0];
    s.avail_in = 300;
    s.next_out = w[0];
    s.avail_out = sizeof w[0];
    CHECK(deflate(&s, Z_FINISH) == Z_STREAM_END);
    size_t fin = sizeof w[0] - s.avail_out;
    deflateEnd(&s);
    CHECK(inflates_to(&z, 15, NULL, w[0], fin, 3, msg[0], 300));
    w[0][fin] = 0x00;
    CHECK(!inflates_to(&z, 15, NULL, w[0], fin + 1, fin + 1, msg[0], 300));
    const uint8_t corrupt[] = { 0xff, 0xff, 0xff, 0xff };
    CHECK(!inflates_to(&z, 15, NULL, corrupt, sizeof corrupt, 4, msg[0], 0));
    zcodec_free(&z);
}

static void hist_buckets(void)
{
    unsigned prev = 0;
    int gaps = 0, off = 0;
    for (uint64_t v = 1; v < (1u << 22); v++) {
        unsigned i = hist_index(v);
        gaps += i != prev && i != prev + 1; /* buckets are contiguous */
        prev = i;
        uint64_t hi = hist_highest(i);
        off += hi < v || (v >= 256 && (double)(hi - v) > (double)v / 128);
    }
    CHECK(gaps == 0);
    CHECK(off == 0);
    CHECK(hist_index(UINT64_MAX) < HIST_BUCKETS);
    CHECK(hist_index((1ULL << HIST_MAX_BITS) - 1) == HIST_BUCKETS - 1);

    static struct hist h;
    hist_reset(&h);
    for (uint64_t v = 1; v <= 1000; v++)
        hist_record(&h, v);
    CHECK(hist_percentile(&h, 50) >= 500 && hist_percentile(&h, 50) <= 504);
    CHECK(hist_percentile(&h, 100) == 1000 && h.max == 1000 && h.min == 1);
    CHECK(hist_percentile(&h, 10) == 100); /* exact below 256 */
}

/* Unmasks what payload_build() would put on the wire and compares it with what must return. */
static void payload_roundtrip(enum payload_kind kind, size_t size)
{
    uint64_t rng = 42;
    struct payload pl;
    bool text = kind != PAYLOAD_BINARY;
    CHECK(payload_init(&pl, size, kind, 0, &rng) == 0);
    struct msg m;
    payload_build(&pl, 7, 0x1234, &rng, &m);
    uint8_t *wire = malloc(m.prefix_len + m.body_len);
    memcpy(wire, m.prefix, m.prefix_len);
    memcpy(wire + m.prefix_len, m.body, m.body_len);
    struct frame_hdr h;
    size_t hs = frame_header_size(wire[1]);
    const char *why;
    wire[1] &= 0x7F; /* decode it as if unmasked, to read the length */
    CHECK(frame_server_header(wire, false, &h, &why) == 0 && h.len == size);
    uint8_t mask[4];
    memcpy(mask, wire + hs - 4, 4);
    frame_mask(wire + hs, size, mask, 0);
    CHECK(payload_check(&pl, &m, 0, wire + hs, size) == -1);
    for (size_t i = 0; text && i < size; i++)
        if (wire[hs + i] < (kind == PAYLOAD_JSON ? 0x20 : 0x21) || wire[hs + i] > 0x7E) {
            CHECK(!"text payload is not printable ASCII");
            break;
        }
    /* Split checks agree with the whole one, and a flipped byte is found where it is. */
    if (size > 30) {
        CHECK(payload_check(&pl, &m, 0, wire + hs, 10) == -1);
        CHECK(payload_check(&pl, &m, 10, wire + hs + 10, size - 10) == -1);
        wire[hs + size - 1] ^= 0x20;
        CHECK(payload_check(&pl, &m, 10, wire + hs + 10, size - 10) == (long)(size - 11));
        wire[hs + pl.id_off + 2] ^= 1; /* inside the sequence number */
        CHECK(payload_check(&pl, &m, 0, wire + hs, size) == (long)pl.id_off + 2);
    }
    /* A different sequence number must not pass as this one. */
    struct msg other;
    payload_build(&pl, 7, 0x1235, &rng, &other);
    if (size >= 1)
        CHECK(payload_check(&pl, &other, pl.id_off, wire + hs + pl.id_off, 1) == 0);
    free(wire);
    payload_free(&pl);
}

/* --raw: the bytes sent come back as they are, and bodies differ between messages as much as
 * masked ones do, so raw mode reads as much memory per message as WebSocket mode. */
static void raw_payloads(size_t size)
{
    uint64_t rng = 7;
    struct payload pl;
    CHECK(payload_init(&pl, size, PAYLOAD_BINARY, 1, &rng) == 0);
    CHECK(pl.npool > 1);
    struct msg a, b;
    payload_build(&pl, 3, 1, &rng, &a);
    do
        payload_build(&pl, 3, 2, &rng, &b);
    while (b.body == a.body);
    uint8_t *wire = malloc(size);
    memcpy(wire, a.prefix, a.prefix_len);
    memcpy(wire + a.prefix_len, a.body, a.body_len);
    CHECK(a.prefix_len == pl.id_len);
    CHECK(payload_check(&pl, &a, 0, wire, size) == -1);
    CHECK(memcmp(a.body, pl.plain + pl.id_len, a.body_len) != 0); /* not the bare template */
    CHECK(payload_check(&pl, &a, pl.id_len, b.body, b.body_len) >= 0); /* another body fails */
    free(wire);
    payload_free(&pl);
}

static void payloads(void)
{
    raw_payloads(16384);
    raw_payloads(100);
    payload_roundtrip(PAYLOAD_TEXT, 20);
    payload_roundtrip(PAYLOAD_BINARY, 20);
    payload_roundtrip(PAYLOAD_TEXT, 16384);
    payload_roundtrip(PAYLOAD_BINARY, 70000);
    payload_roundtrip(PAYLOAD_BINARY, 3);
    payload_roundtrip(PAYLOAD_JSON, 64);
    payload_roundtrip(PAYLOAD_JSON, 200);
    payload_roundtrip(PAYLOAD_JSON, 16384);
}

/* JSON-like text: exactly the size asked, the id's place where payload.c writes it, keys
 * that repeat and values that do not. */
static void json_text(void)
{
    static uint8_t a[4096], b[4096];
    uint64_t rng = 3;
    for (size_t size = JSON_MIN_SIZE; size <= sizeof a; size += 61) {
        memset(a, 0, sizeof a);
        json_fill(a, size, ID_MAX, &rng);
        CHECK(a[size] == 0 && memcmp(a, "{\"id\":\"", JSON_ID_OFF) == 0);
        CHECK(a[JSON_ID_OFF] == '0' && a[JSON_ID_OFF + ID_MAX - 1] == '0' &&
              a[JSON_ID_OFF + ID_MAX] == '"');
        CHECK(memcmp(a + size - 2, "]}", 2) == 0);
        size_t spaces = 0, bad = 0;
        for (size_t i = 0; i < size; i++) {
            spaces += a[i] == ' ';
            bad += a[i] < 0x20 || a[i] > 0x7E;
        }
        CHECK(bad == 0 && spaces < 48); /* padding only where no field fits */
    }
    json_fill(a, 4096, ID_MAX, &rng);
    json_fill(b, 4096, ID_MAX, &rng);
    CHECK(memcmp(a, b, 4096) != 0);
    CHECK(memmem(a, 4096, "\"user\":\"u", 9) && memmem(a + 2048, 2048, "\"user\":\"u", 9));
}

int main(void)
{
    sha1_vectors();
    base64_vectors();
    accept_rfc_example();
    handshake_answers();
    client_headers();
    server_headers();
    deflate_answers();
    compressed_headers();
    codec();
    hist_buckets();
    payloads();
    json_text();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
