#include "frame.h"

#include <string.h>

size_t frame_client_header(uint8_t *out, int opcode, uint64_t len, const uint8_t mask[4])
{
    size_t n = 0;
    out[n++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        out[n++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xFFFF) {
        out[n++] = 0x80 | 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            out[n++] = (uint8_t)(len >> (8 * i));
    }
    memcpy(out + n, mask, 4);
    return n + 4;
}

void frame_mask(uint8_t *p, size_t n, const uint8_t mask[4], size_t offset)
{
    uint8_t m[4];
    for (int i = 0; i < 4; i++)
        m[i] = mask[(offset + i) & 3];
    size_t i = 0;
    /* Eight bytes at a time: masking megabyte pools byte by byte is needlessly slow. */
    uint64_t m8;
    uint8_t mb[8] = { m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3] };
    memcpy(&m8, mb, 8);
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= m8;
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++)
        p[i] ^= m[i & 3];
}

size_t frame_client_control(uint8_t *out, int opcode, const uint8_t *payload, size_t len,
                            const uint8_t mask[4])
{
    if (len > CONTROL_MAX)
        len = CONTROL_MAX;
    size_t h = frame_client_header(out, opcode, len, mask);
    memcpy(out + h, payload, len);
    frame_mask(out + h, len, mask, 0);
    return h + len;
}

size_t frame_header_size(uint8_t byte1)
{
    size_t len7 = byte1 & 0x7F;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (byte1 & 0x80 ? 4 : 0);
}

int frame_server_header(const uint8_t *p, bool deflate, struct frame_hdr *h, const char **why)
{
    h->fin = p[0] & 0x80;
    h->rsv1 = p[0] & FRAME_RSV1;
    h->opcode = p[0] & 0x0F;
    uint64_t len = p[1] & 0x7F;
    if (len == 126) {
        len = (uint64_t)p[2] << 8 | p[3];
        if (len < 126) {
            *why = "non-minimal 16-bit length";
            return -1;
        }
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        if (len >> 63) {
            *why = "64-bit length with the top bit set";
            return -1;
        }
        if (len <= 0xFFFF) {
            *why = "non-minimal 64-bit length";
            return -1;
        }
    }
    h->len = len;
    if (p[0] & 0x30) {
        *why = "RSV2 or RSV3 set (no extension defines them)";
        return -1;
    }
    if (h->rsv1 && !deflate) {
        *why = "RSV1 set (permessage-deflate was not negotiated)";
        return -1;
    }
    if (h->rsv1 && h->opcode != OP_TEXT && h->opcode != OP_BINARY) {
        *why = "RSV1 set on a continuation or control frame";
        return -1;
    }
    if (p[1] & 0x80) {
        *why = "masked frame from the server";
        return -1;
    }
    switch (h->opcode) {
    case OP_CONT:
    case OP_TEXT:
    case OP_BINARY:
        return 0;
    case OP_CLOSE:
    case OP_PING:
    case OP_PONG:
        if (!h->fin) {
            *why = "fragmented control frame";
            return -1;
        }
        if (len > CONTROL_MAX) {
            *why = "control frame longer than 125 bytes";
            return -1;
        }
        return 0;
    default:
        *why = "reserved opcode";
        return -1;
    }
}
