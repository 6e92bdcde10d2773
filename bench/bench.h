/* The state one wsload run shares between its parts: options, payload, connections, the
 * histogram and the counters. */
#ifndef WSLOAD_BENCH_H
#define WSLOAD_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "hist.h"
#include "options.h"
#include "payload.h"

struct conn;
struct zcodec;

#define RECV_BUFFER_SIZE (256u * 1024)
#define TLS_GATHER_SIZE (64u * 1024)

enum conn_state {
    CS_NEW,        /* not started yet */
    CS_RETRY,      /* refused or timed out; tries again at its deadline */
    CS_CONNECTING, /* TCP connect in progress */
    CS_HANDSHAKE,  /* upgrade request sent, waiting for 101 */
    CS_OPEN,
    CS_CLOSING,    /* Close sent (write side shut in --raw), waiting for the peer */
    CS_CLOSED,     /* closed cleanly */
    CS_FAILED,
    CS_COUNT
};

struct bench {
    struct options opt;
    struct payload pl;
    struct hist hist;
    struct hist lag;      /* --rate: how late wsload itself sent against the schedule */
    struct conn *conns;
    unsigned nconns;
    int epfd;
    uint8_t *rbuf; /* one receive buffer for every connection */
    uint64_t rng;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char host_header[80];

    bool recording;       /* echoes count towards the results */
    bool issuing;         /* an echo may be followed by a new message */
    uint64_t msgs;        /* echoes completed while recording */
    uint64_t inflight;    /* messages queued or sent and not yet fully echoed */
    uint64_t errors;      /* connections lost or refused, protocol violations */
    uint64_t retries;     /* connect attempts repeated after a refusal or timeout */
    unsigned count[CS_COUNT];
    char first_error[256];

    /* --tls: the client context, what the first handshake agreed, and where a TLS write
     * gathers the queued frames (one SSL_write for many). */
    struct tlsc_ctx *tls;
    char tls_agreed[96];
    uint8_t *tls_wbuf;

    /* --deflate */
    struct zcodec *z;     /* NULL without --deflate */
    uint8_t *zplain;      /* one message's plain bytes, being compressed */
    uint8_t *zref;        /* the reference compressor's output (only its length is kept) */
    unsigned negotiated;  /* connections that agreed to permessage-deflate */
    unsigned declined;
    char ext_answer[160]; /* the first agreeing connection's answer, as parsed */

    /* Per echo completed while recording: wire bytes (frame headers included, control frames
     * not), echoes that came back compressed, and the reference compressor's frames. */
    uint64_t wire_out, wire_in, echoes_z;
    uint64_t ref_bytes, ref_msgs;

    /* Called after each complete, verified echo: the mode decides what to send next. */
    void (*on_echo)(struct bench *b, struct conn *c, int64_t now);

    /* --rate: slot j is due at t0 + j / rate and belongs to connection j % nconns. */
    bool rate_on;
    int64_t t0;
    uint64_t slot;

    bool sweeping;        /* connect and close phases: deadlines are checked */
    int64_t next_sweep;
};

/* Prints the reason (and a JSON error object under --json) and exits 1: used when an echo
 * is wrong, because every figure after that would be meaningless. */
void bench_abort(struct bench *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

#endif
