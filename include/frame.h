/* RFC 6455 §5.2 framing: an incremental decoder for client frames and an encoder for server
 * frame headers. Frame syntax only; message rules live in session.c. */
#ifndef WEBSOCK_FRAME_H
#define WEBSOCK_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

static inline bool ws_opcode_is_control(uint8_t op) { return op & 0x8; }

#define WS_RSV1 0x40 /* in the first header byte: a compressed message (RFC 7692) */

#define WS_MAX_HEADER 14       /* 2 + 8 (64-bit length) + 4 (mask) */
#define WS_MAX_SERVER_HEADER 10
#define WS_MAX_CONTROL_PAYLOAD 125

struct frame_decoder {
    uint64_t remaining;      /* payload bytes of the current frame still to come */
    uint8_t mask[4];
    uint8_t mask_pos;        /* index into mask of the next payload byte */
    uint8_t hdr_len;         /* header bytes carried in hdr[] between reads */
    uint8_t opcode;
    bool fin;
    bool in_payload;
    bool keep_masked : 1;    /* report payload still masked (see frame_unmask_copy) */
    bool rsv1_ok : 1;        /* permessage-deflate was negotiated: RSV1 may start a message */
    bool rsv1 : 1;           /* the current frame has RSV1 set (its message is compressed) */
    uint8_t hdr[WS_MAX_HEADER];
};

enum frame_event {
    FRAME_NEED_MORE, /* all input consumed, nothing to report */
    FRAME_HEADER,    /* a header was decoded: opcode, fin in the decoder, payload length in len */
    FRAME_PAYLOAD,   /* data/len: payload bytes, unmasked in place unless keep_masked;
                        end: frame complete */
    FRAME_ERROR,     /* protocol error (close code 1002); reason says which */
};

struct frame_result {
    enum frame_event event;
    bool end;
    uint8_t mask_pos; /* mask position of data[0] */
    uint8_t *data;
    uint64_t len;
    const char *reason;
};

/* Consumes a prefix of in[0..n) and reports one event; returns the bytes consumed. Payload bytes
 * are unmasked in place, or left masked with keep_masked so that the caller can unmask them while
 * copying them where they go (one pass instead of two). An empty payload is reported as one FRAME_PAYLOAD with len 0 and end. */
size_t frame_decode(struct frame_decoder *d, uint8_t *in, size_t n, struct frame_result *r);

/* Gives back the last n payload bytes reported (not used after all): they are reported again,
 * at the same mask position, from the next input, which must start with them (still masked). */
void frame_unconsume(struct frame_decoder *d, size_t n);

/* A whole, valid frame found by frame_peek_whole. */
struct frame_whole {
    uint8_t opcode;
    bool fin;
    uint8_t mask[4];
    uint8_t *data; /* the payload, still masked */
    size_t len;
};

/* When the decoder is between frames and in[0..n) starts with a whole valid frame without RSV1,
 * describes it in w and returns its total length; else returns 0 (nothing is consumed: frame_decode then
 * takes the input, and reports any error). The decoder is not changed either way. */
size_t frame_peek_whole(const struct frame_decoder *d, uint8_t *in, size_t n,
                        struct frame_whole *w);

/* The length of a server frame header for a payload of len bytes: 2, 4 or 10. */
static inline size_t frame_header_len(uint64_t len) { return len < 126 ? 2 : len <= 0xFFFF ? 4 : 10; }

/* Writes a server (unmasked) frame header; returns its length (2, 4 or 10). */
size_t frame_header_encode(uint8_t out[WS_MAX_SERVER_HEADER], bool fin, uint8_t opcode, uint64_t len);

/* XORs p[0..n) with mask, starting at mask position pos; returns the next position. */
unsigned ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], unsigned pos);

/* dst = src unmasked (dst may be src); sets *non_ascii if any plain byte is >= 0x80. */
unsigned ws_unmask_copy(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4],
                        unsigned pos, bool *non_ascii);

#endif
