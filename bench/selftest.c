/* Self-test of wsload's pure parts: SHA-1/base64, the handshake check, framing, the histogram
 * and the payload scheme. `make -C bench check` runs it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "frame.h"
#include "handshake.h"
#include "hist.h"
#include "payload.h"
#include "sha1.h"

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
static void payload_roundtrip(int text, size_t size)
{
    uint64_t rng = 42;
    struct payload pl;
    CHECK(payload_init(&pl, size, text ? PAYLOAD_TEXT : PAYLOAD_BINARY, 0, &rng) == 0);
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
        if (wire[hs + i] < 0x21 || wire[hs + i] > 0x7E) {
            CHECK(!"text payload is not printable ASCII");
            break;
        }
    /* Split checks agree with the whole one, and a flipped byte is found where it is. */
    if (size > 30) {
        CHECK(payload_check(&pl, &m, 0, wire + hs, 10) == -1);
        CHECK(payload_check(&pl, &m, 10, wire + hs + 10, size - 10) == -1);
        wire[hs + size - 1] ^= 0x20;
        CHECK(payload_check(&pl, &m, 10, wire + hs + 10, size - 10) == (long)(size - 11));
        wire[hs + 2] ^= 1; /* inside the sequence number */
        CHECK(payload_check(&pl, &m, 0, wire + hs, size) == 2);
    }
    /* A different sequence number must not pass as this one. */
    struct msg other;
    payload_build(&pl, 7, 0x1235, &rng, &other);
    if (size >= 1)
        CHECK(payload_check(&pl, &other, 0, wire + hs, 1) == 0);
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
    payload_roundtrip(1, 20);
    payload_roundtrip(0, 20);
    payload_roundtrip(1, 16384);
    payload_roundtrip(0, 70000);
    payload_roundtrip(0, 3);
}

int main(void)
{
    sha1_vectors();
    base64_vectors();
    accept_rfc_example();
    handshake_answers();
    client_headers();
    server_headers();
    hist_buckets();
    payloads();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
