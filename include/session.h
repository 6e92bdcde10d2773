/* The message layer of one open WebSocket: fragmentation rules, control frames, UTF-8, size
 * limits, the close handshake and the echo itself. It takes bytes and appends the frames to send
 * to an output buffer; it never touches a socket, so tests and fuzzers drive it directly. */
#ifndef WEBSOCK_SESSION_H
#define WEBSOCK_SESSION_H

#include <stdint.h>

#include "buf.h"
#include "frame.h"
#include "outq.h"

/* What the echo did, summed over every session that shares the limits (the server's metrics). */
struct session_counts {
    uint64_t messages_in;  /* data messages received whole and valid */
    uint64_t messages_out; /* data messages echoed: their final frame queued */
    uint64_t bytes_in;     /* payload bytes of data frames received while open */
    uint64_t bytes_out;    /* payload bytes of data frames queued */
};

struct session_limits {
    uint64_t max_message;  /* bytes; larger messages fail with 1009 */
    uint32_t coalesce_max; /* single-frame messages up to this size are echoed as one frame */
    uint64_t hold_budget;  /* bytes a partial frame may be held in, to echo it as one frame;
                              a frame larger than that streams back as fragments instead */
    struct session_counts *counts; /* where every session adds what it echoed; NULL: nowhere */
};

enum session_state {
    SESSION_OPEN,
    SESSION_CLOSE_SENT, /* we started the close handshake; waiting for the peer's Close */
    SESSION_DONE,       /* Close exchanged or connection failed: flush output, then close TCP */
};

struct session {
    struct frame_decoder dec;
    struct buf hold;       /* a frame echoed whole, or a control frame, split across reads */
    uint64_t msg_len;      /* bytes of the current message so far, including the frame in flight */
    uint16_t close_code;   /* the code we sent, once we sent a Close */
    uint8_t state;         /* enum session_state */
    uint8_t msg_opcode;    /* TEXT or BINARY while a message is open, else 0 */
    uint8_t utf8_state;
    uint8_t held_len;      /* bytes of an incomplete code point not yet streamed out */
    uint8_t held[3];
    bool whole;            /* the current data frame is echoed as one frame */
    bool streamed;         /* a fragment of the current message was already sent */
};

/* Feeds received bytes; returns how many were consumed (all of them unless the session reached
 * SESSION_DONE). On failure *error says why (for the log) and a Close with the code is queued.
 * Large payloads are unmasked in place and queued by reference to in[], so in[] must stay
 * untouched until q is sent or moved. */
size_t session_feed(struct session *s, const struct session_limits *lim, uint8_t *in, size_t n,
                    struct outq *q, const char **error);

/* Starts the close handshake from our side (e.g. 1001 on shutdown). */
void session_close(struct session *s, uint16_t code, struct buf *out);

/* Sends a keep-alive Ping (only while open). */
void session_ping(struct session *s, struct buf *out);

void session_free(struct session *s);

#endif
