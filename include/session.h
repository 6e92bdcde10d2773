/* The message layer of one open WebSocket: fragmentation rules, control frames, UTF-8, size
 * limits, the close handshake and the echo itself. It takes bytes and appends the frames to send
 * to an output buffer; it never touches a socket, so tests and fuzzers drive it directly. */
#ifndef WEBSOCK_SESSION_H
#define WEBSOCK_SESSION_H

#include <stdint.h>

#include "buf.h"
#include "frame.h"
#include "outq.h"

struct zpool;
struct session_z;

/* What the echo did, summed over every session that shares the limits (the server's metrics). */
struct session_counts {
    uint64_t messages_in;  /* data messages received whole and valid */
    uint64_t messages_out; /* data messages echoed: their final frame queued */
    uint64_t bytes_in;     /* payload bytes of data frames received while open */
    uint64_t bytes_out;    /* payload bytes of data frames queued */
    /* permessage-deflate: payload bytes of compressed messages on the wire, and their size
     * inflated (in) or before compression (out) */
    uint64_t z_wire_in, z_plain_in, z_wire_out, z_plain_out;
};

struct session_limits {
    uint64_t max_message;  /* bytes; larger messages fail with 1009 */
    uint32_t coalesce_max; /* single-frame messages up to this size are echoed as one frame */
    uint64_t hold_budget;  /* bytes a partial frame may be held in, to echo it as one frame;
                              a frame larger than that streams back as fragments instead */
    struct session_counts *counts; /* where every session adds what it echoed; NULL: nowhere */
    struct zpool *zpool;   /* zlib streams for compressed messages in flight */
    uint8_t *inflate_buf;  /* DEFLATE_CHUNK bytes: where one step of inflating goes */
    uint32_t inflate_turn; /* bytes one session_feed call inflates at most (the rest waits);
                              0: no limit */
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
    uint8_t pmd;           /* permessage-deflate as negotiated: PMD_* flags, 0 if not */
    uint8_t pmd_bits;      /* its window bits: ours (server) << 4 | the client's */
    bool whole : 1;        /* the current data frame is echoed as one frame */
    bool streamed : 1;     /* a fragment of the current message was already sent */
    bool z_msg : 1;        /* the current message is compressed */
    bool z_more : 1;       /* its inflater may hold output it had no room for */
    bool z_last : 1;       /* all of its input was taken: only that output is left */
    bool z_echoing : 1;    /* its echo began (a fragment is out) */
    bool z_plain_echo : 1; /* its echo goes back plain: compressing did not shrink it */
    uint32_t z_turn;       /* bytes inflated during this session_feed call */
    struct session_z *z;   /* compressed messages' streams and history, from the first one on */
};

enum { PMD_ON = 1, PMD_SERVER_NO_TAKEOVER = 2, PMD_CLIENT_NO_TAKEOVER = 4 };

/* Turns on permessage-deflate as the handshake agreed it: the no_context_takeover parameters
 * and the window bits (8..15) of our messages and of the client's. */
void session_use_deflate(struct session *s, bool server_no_takeover, bool client_no_takeover,
                         unsigned server_bits, unsigned client_bits);

/* The inflater of a message holds output it had no room for within this call's budget: call
 * session_feed again (with no input, or with what it left) after the other connections. */
static inline bool session_has_backlog(const struct session *s) { return s->z_more; }

/* A compressed message is in flight: the session holds zlib streams from the pool. */
bool session_holds_streams(const struct session *s);

/* Memory the session holds beyond its struct (held bytes, deflate state and history). */
uint64_t session_memory(const struct session *s);

/* Feeds received bytes; returns how many were consumed: all of them unless the session reached
 * SESSION_DONE, or a compressed message used this call's inflate budget (see
 * session_has_backlog; the rest must be fed again, first). On failure *error says why (for the log) and a Close with the code is queued.
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
