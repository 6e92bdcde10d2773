/* One client connection: connect (with retries), the upgrade, pipelined masked messages out,
 * incremental parsing and byte-for-byte verification of the echoes, and the close.
 * conn.c is its life, output.c what it writes, echo.c what it reads. */
#ifndef WSLOAD_CONN_H
#define WSLOAD_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "bench.h"
#include "frame.h"
#include "handshake.h"
#include "payload.h"
#include "pmd.h"
#include "tlsc.h"
#include "zcodec.h"

struct conn {
    int fd;
    uint32_t id;
    uint8_t state;        /* enum conn_state */
    uint8_t attempts;
    bool writable;        /* edge-triggered: false from EAGAIN until EPOLLOUT */
    bool in_input;        /* sends made while parsing are flushed once, after it */
    bool close_received;
    int64_t deadline;     /* of the connect, handshake, retry wait or close */
    int64_t t_start;      /* --churn: when this attempt's connect began */

    /* --tls: the session; its handshake runs before the upgrade request goes out. A TLS
     * write that returned WANT_* is retried with the same bytes in front: tls_wctl says how
     * many of them were control-frame bytes. */
    struct tlsc *tls;
    bool tls_hs;          /* the TLS handshake is not done yet */
    bool tls_rw;          /* the last read wants the socket writable */
    bool tls_wr;          /* the last write wants the socket readable */
    bool tls_retry;       /* the last write returned WANT_*: the next one repeats it */
    uint16_t tls_wctl;

    char *hs;             /* the handshake answer as it arrives; freed once open */
    uint16_t hs_len;
    char accept[WS_ACCEPT_LEN + 1];

    /* Messages in flight, oldest first: [head, sent) fully written, [sent, tail) not yet;
     * 64-bit counters run free (no wrap in practice) and index the ring modulo its depth. */
    struct msg *ring;
    unsigned depth;
    uint64_t head, sent, tail;
    size_t out_off;       /* bytes of message `sent` already written */
    uint64_t next_seq;
    uint64_t next_k;      /* --rate: index of this connection's next scheduled message */

    /* Receive side: a partial frame header, the frame being read, the message it belongs to. */
    uint8_t hdr[FRAME_HDR_MAX];
    uint8_t hdr_len;
    bool in_frame, in_msg;
    struct frame_hdr frame;
    uint64_t remaining;   /* payload bytes of the current frame still to come */
    size_t msg_off;       /* bytes of the oldest message already echoed and checked */
    uint8_t ctl[CONTROL_MAX];
    uint8_t ctl_len;

    /* permessage-deflate: what the server agreed to, each direction's context when it is
     * taken over, the inflater of the echo being read, and the reference compressor. */
    struct pmd_params ext;
    bool rx_compressed;   /* the echo being read came with RSV1 */
    struct zinflater *rx_z;
    struct zhist tx_hist, rx_hist;
    z_stream *ref;
    uint64_t rx_wire;     /* wire bytes of the echo being read so far */

    /* Pongs and our Close wait here for a frame boundary in the output. */
    uint8_t ctl_out[2 * (FRAME_HDR_MAX + CONTROL_MAX)];
    uint16_t ctl_out_len, ctl_out_off;
};

int conn_init(struct conn *c, uint32_t id, unsigned depth);
void conn_free(struct conn *c);

static inline uint32_t conn_inflight(const struct conn *c)
{
    return (uint32_t)(c->tail - c->head);
}

/* Starts (or restarts) the TCP connect. */
void conn_start(struct bench *b, struct conn *c, int64_t now);

/* Handles what epoll reported for this connection. */
void conn_event(struct bench *b, struct conn *c, uint32_t events);

/* Acts on an expired deadline: retry, timeout or the end of a close. */
void conn_sweep(struct bench *b, struct conn *c, int64_t now);

/* Queues the connection's next message, due at t_sched, and writes it if it can. */
void conn_send(struct bench *b, struct conn *c, int64_t t_sched);

/* Starts the closing handshake (Close 1000, or a write shutdown in --raw). */
void conn_close(struct bench *b, struct conn *c, int64_t now);

/* ---- shared by conn.c, output.c and echo.c ---- */

static inline struct msg *conn_slot(struct conn *c, uint64_t i)
{
    return &c->ring[i % c->depth];
}

static inline bool conn_alive(const struct conn *c)
{
    return c->state >= CS_CONNECTING && c->state <= CS_CLOSING;
}

/* Counts an error, prints it (the first few), drops the socket: the connection is done. */
void conn_fail(struct bench *b, struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes what is queued until the socket is full. */
void conn_flush(struct bench *b, struct conn *c);

/* Queues a masked control frame (Pong, Close); written at the next frame boundary. */
void conn_queue_control(struct bench *b, struct conn *c, int opcode, const uint8_t *payload,
                        size_t len);

/* Bytes from the socket, once open: WebSocket frames, or the --raw byte stream. */
void conn_ws_input(struct bench *b, struct conn *c, const uint8_t *p, size_t n, int64_t now);
void conn_raw_input(struct bench *b, struct conn *c, const uint8_t *p, size_t n, int64_t now);

#endif
