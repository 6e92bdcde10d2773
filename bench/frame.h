/* WebSocket framing as a client sees it: masked frames out, unmasked server frames in.
 * Pure functions on bytes, no sockets. */
#ifndef WSLOAD_FRAME_H
#define WSLOAD_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    OP_CONT = 0x0,
    OP_TEXT = 0x1,
    OP_BINARY = 0x2,
    OP_CLOSE = 0x8,
    OP_PING = 0x9,
    OP_PONG = 0xA,
};

/* ORed into the opcode given to frame_client_header(): RSV1, "this message is compressed"
 * (permessage-deflate; only on the first frame of a data message). */
#define FRAME_RSV1 0x40

#define FRAME_HDR_MAX 14   /* 2 + 8 length bytes + 4 mask bytes */
#define CONTROL_MAX 125

/* Writes a FIN, masked client frame header; returns its length. */
size_t frame_client_header(uint8_t *out, int opcode, uint64_t len, const uint8_t mask[4]);

/* XORs n bytes with the mask, as if they started at byte `offset` of the payload. */
void frame_mask(uint8_t *p, size_t n, const uint8_t mask[4], size_t offset);

/* A whole masked control frame (Pong, Close) into out (FRAME_HDR_MAX + CONTROL_MAX bytes). */
size_t frame_client_control(uint8_t *out, int opcode, const uint8_t *payload, size_t len,
                            const uint8_t mask[4]);

struct frame_hdr {
    int opcode;
    bool fin;
    bool rsv1;  /* the message starting here is compressed */
    uint64_t len;
};

/* Header size implied by the second byte, so a reader knows how much to collect. */
size_t frame_header_size(uint8_t byte1);

/* Decodes a complete server frame header (frame_header_size() bytes). Returns 0, or -1 with
 * *why naming the violation: a server that frames wrongly must not pass as an echo. RSV1 is
 * accepted only with `deflate` (permessage-deflate negotiated) and only on a text or binary
 * frame; RSV2 and RSV3 never. */
int frame_server_header(const uint8_t *p, bool deflate, struct frame_hdr *h, const char **why);

#endif
