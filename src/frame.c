#include "frame.h"

#include <string.h>

#include "simd.h"

static bool opcode_is_known(uint8_t op)
{
    return op <= WS_OP_BINARY || (op >= WS_OP_CLOSE && op <= WS_OP_PONG);
}

/* Checks the first header byte alone, so a bad frame is refused before anything else arrives.
 * RSV1 marks the first frame of a compressed message (RFC 7692 §6): never a control frame or
 * a continuation. */
static const char *check_byte0(const struct frame_decoder *d, uint8_t b0)
{
    uint8_t op = b0 & 0x0F;
    if ((b0 & 0x30) || ((b0 & 0x40) && !d->rsv1_ok))
        return "reserved bits set without a negotiated extension";
    if (!opcode_is_known(op))
        return "reserved opcode";
    if ((b0 & 0x40) && ws_opcode_is_control(op))
        return "RSV1 on a control frame";
    if ((b0 & 0x40) && op == WS_OP_CONT)
        return "RSV1 on a continuation frame";
    if (ws_opcode_is_control(op) && !(b0 & 0x80))
        return "fragmented control frame";
    return NULL;
}

static const char *check_byte1(uint8_t b0, uint8_t b1)
{
    if (!(b1 & 0x80))
        return "unmasked client frame";
    if (ws_opcode_is_control(b0 & 0x0F) && (b1 & 0x7F) > WS_MAX_CONTROL_PAYLOAD)
        return "control frame payload over 125 bytes";
    return NULL;
}

static size_t header_size(uint8_t b1)
{
    uint8_t len7 = b1 & 0x7F;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
}

/* Parses a complete header; returns an error reason or NULL. */
static const char *parse_header(struct frame_decoder *d, const uint8_t *h, uint64_t *len_out)
{
    uint8_t len7 = h[1] & 0x7F;
    uint64_t len = len7;
    const uint8_t *p = h + 2;
    if (len7 == 126) {
        len = (uint64_t)p[0] << 8 | p[1];
        p += 2;
        if (len < 126)
            return "non-minimal 16-bit payload length";
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[i];
        p += 8;
        if (len >> 63)
            return "64-bit payload length with the most significant bit set";
        if (len <= 0xFFFF)
            return "non-minimal 64-bit payload length";
    }
    memcpy(d->mask, p, 4);
    d->mask_pos = 0;
    d->opcode = h[0] & 0x0F;
    d->fin = h[0] & 0x80;
    d->rsv1 = h[0] & 0x40;
    d->remaining = len;
    d->in_payload = true;
    *len_out = len;
    return NULL;
}

static size_t decode_header(struct frame_decoder *d, uint8_t *in, size_t n, struct frame_result *r)
{
    size_t used = 0;
    const uint8_t *h;
    if (d->hdr_len == 0 && n >= 2 && n >= header_size(in[1])) {
        h = in; /* fast path: the whole header is in this read */
        used = header_size(in[1]);
        if ((r->reason = check_byte0(d, h[0])) || (r->reason = check_byte1(h[0], h[1])))
            goto fail;
    } else {
        /* Carry header bytes between reads, checking each byte as early as it can be. */
        while (used < n) {
            d->hdr[d->hdr_len++] = in[used++];
            if (d->hdr_len == 1 && (r->reason = check_byte0(d, d->hdr[0])))
                goto fail;
            if (d->hdr_len == 2 && (r->reason = check_byte1(d->hdr[0], d->hdr[1])))
                goto fail;
            if (d->hdr_len >= 2 && d->hdr_len == header_size(d->hdr[1]))
                break;
        }
        if (d->hdr_len < 2 || d->hdr_len < header_size(d->hdr[1])) {
            r->event = FRAME_NEED_MORE;
            return used;
        }
        h = d->hdr;
        d->hdr_len = 0;
    }
    if ((r->reason = parse_header(d, h, &r->len)))
        goto fail;
    r->event = FRAME_HEADER;
    return used;
fail:
    r->event = FRAME_ERROR;
    return used;
}

size_t frame_decode(struct frame_decoder *d, uint8_t *in, size_t n, struct frame_result *r)
{
    r->end = false;
    r->mask_pos = 0;
    r->data = NULL;
    r->len = 0;
    r->reason = NULL;
    if (!d->in_payload) {
        if (n == 0) {
            r->event = FRAME_NEED_MORE;
            return 0;
        }
        return decode_header(d, in, n, r);
    }
    if (n == 0 && d->remaining > 0) {
        r->event = FRAME_NEED_MORE;
        return 0;
    }
    size_t take = d->remaining < n ? (size_t)d->remaining : n;
    r->mask_pos = d->mask_pos;
    d->mask_pos = (uint8_t)((d->mask_pos + take) & 3);
    if (!d->keep_masked)
        ws_unmask(in, take, d->mask, r->mask_pos);
    d->remaining -= take;
    r->event = FRAME_PAYLOAD;
    r->data = in;
    r->len = take;
    r->end = d->remaining == 0;
    if (r->end)
        d->in_payload = false;
    return take;
}

void frame_unconsume(struct frame_decoder *d, size_t n)
{
    if (!n)
        return;
    d->remaining += n;
    d->mask_pos = (uint8_t)((d->mask_pos - n) & 3);
    d->in_payload = true;
}

size_t frame_peek_whole(const struct frame_decoder *d, uint8_t *in, size_t n,
                        struct frame_whole *w)
{
    if (d->in_payload || d->hdr_len || n < 2)
        return 0;
    size_t hs = header_size(in[1]);
    if (n < hs || (in[0] & 0x40) || check_byte0(d, in[0]) || check_byte1(in[0], in[1]))
        return 0;
    struct frame_decoder h = *d; /* parse_header fills a decoder; d itself stays untouched */
    uint64_t len;
    if (parse_header(&h, in, &len) || len > n - hs)
        return 0;
    w->opcode = h.opcode;
    w->fin = h.fin;
    memcpy(w->mask, h.mask, 4);
    w->data = in + hs;
    w->len = (size_t)len;
    return hs + (size_t)len;
}

size_t frame_header_encode(uint8_t out[WS_MAX_SERVER_HEADER], bool fin, uint8_t opcode, uint64_t len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the unmask keys are built little-endian");

/* The mask rotated so that its first byte lines up with payload byte pos, twice over. */
static uint64_t key_at(const uint8_t mask[4], size_t pos)
{
    uint32_t m;
    memcpy(&m, mask, 4);
    unsigned r = (unsigned)(pos & 3) * 8;
    if (r) /* little-endian: mask[pos & 3] moves to the lowest byte */
        m = m >> r | m << (32 - r);
    return (uint64_t)m << 32 | m;
}

/* The short runs around the wide blocks (and all of a small message): eight bytes at a time,
 * then four, then byte by byte. ORs the plain bytes into *high. */
static void unmask_short(uint8_t *dst, const uint8_t *src, size_t n, uint64_t key,
                         uint8_t *high)
{
    uint64_t acc = 0;
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= key;
        acc |= w;
        memcpy(dst + i, &w, 8);
    }
    if (n - i >= 4) {
        uint32_t w;
        memcpy(&w, src + i, 4);
        w ^= (uint32_t)key;
        acc |= w;
        memcpy(dst + i, &w, 4);
        i += 4;
    }
    for (; i < n; i++) { /* i is a multiple of 8 plus the byte's place in the key */
        uint8_t b = src[i] ^ (uint8_t)(key >> 8 * (i & 7));
        dst[i] = b;
        acc |= b; /* in a local: a store through high could alias dst and cost a reload */
    }
    *high |= (acc & 0x8080808080808080ull) ? 0x80 : 0;
}

unsigned ws_unmask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4],
                        unsigned pos, bool *non_ascii)
{
    uint8_t high = 0;
    size_t i = 0;
    uint64_t key = key_at(mask, pos);
    if (n >= 128) {
        /* Up to a cache-line boundary of dst first: wide stores that straddle cache lines cost
         * about a third of the unmasking speed. */
        i = -(uintptr_t)dst & 63;
        unmask_short(dst, src, i, key, &high);
        key = key_at(mask, pos + i);
    }
    if (n - i >= 32) { /* a multiple of 32 done, so the key still lines up */
        uint8_t key8[8];
        memcpy(key8, &key, 8);
        i += simd_unmask_blocks(simd_best(), dst + i, src + i, n - i, key8, &high);
    }
    unmask_short(dst + i, src + i, n - i, key, &high);
    *non_ascii = high & 0x80;
    return (unsigned)((pos + n) & 3);
}

unsigned ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], unsigned pos)
{
    bool non_ascii;
    return ws_unmask_copy(p, p, n, mask, pos, &non_ascii);
}
