/* What wsload sends and what it must get back.
 *
 * Every message is a template except id_len bytes at id_off, the "id": hex digits of the
 * connection's sequence number and the connection number (at offset 0, or inside the "id"
 * string of a JSON message). Pattern payloads share one template; JSON payloads have one per
 * pool frame, so consecutive messages differ as an application's would. The template tail is masked once,
 * up front, into a pool of frames with different random masks; a message is then a tiny
 * per-message prefix (frame header + masked id) plus a pointer into the pool, so generating
 * a message costs ~40 bytes of work whatever its size. The echo is compared byte for byte
 * with the id and the template, so a stale, reordered, truncated or foreign echo is caught. */
#ifndef WSLOAD_PAYLOAD_H
#define WSLOAD_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

#define ID_MAX 24 /* 16 hex digits of sequence number, 8 of connection number */
#define PREFIX_MAX (FRAME_HDR_MAX + 7 + ID_MAX) /* 7: JSON_ID_OFF */

enum payload_kind {
    PAYLOAD_BINARY, /* every byte value */
    PAYLOAD_TEXT,   /* a printable ASCII pattern */
    PAYLOAD_JSON,   /* JSON-like text with varying values (text frames) */
};

struct msg {
    uint64_t seq;
    int64_t t_sched;      /* ns; latency counts from here (the scheduled time under --rate) */
    const uint8_t *body;  /* shared, read-only: payload bytes after the id, already masked */
    const uint8_t *expect; /* shared, read-only: the whole payload as it must come back */
    size_t body_len;
    uint8_t *zbuf;        /* owned by the ring slot: the compressed, masked payload */
    size_t zcap;
    uint32_t wire_out;    /* bytes this message took on the wire, frame header included */
    uint32_t ref_len;     /* the reference compressor's frame for it (0: not measured) */
    uint8_t prefix_len;
    uint8_t prefix[PREFIX_MAX]; /* frame header + masked id (the id alone in --raw) */
    uint8_t id[ID_MAX];         /* the id as it must come back */
};

struct pool_frame {
    uint8_t mask[4];
    uint8_t *masked; /* the whole template masked with mask */
    uint8_t *plain;  /* the template (JSON: this frame's own; else the shared one) */
};

struct payload {
    size_t size;
    size_t id_off;
    size_t id_len;
    enum payload_kind kind;
    int opcode;      /* OP_TEXT or OP_BINARY */
    bool raw;        /* plain TCP: no header, no mask */
    uint8_t *plain;  /* the (first) template as a WebSocket echo brings it back (the id's
                        bytes replaced) */
    struct pool_frame *pool;
    unsigned npool;
};

/* Returns 0, or -1 when memory runs out. */
int payload_init(struct payload *pl, size_t size, enum payload_kind kind, bool raw,
                 uint64_t *rng);
void payload_free(struct payload *pl);

/* Fills m for message `seq` of connection `conn` (t_sched is left to the caller). */
void payload_build(const struct payload *pl, uint32_t conn, uint64_t seq, uint64_t *rng,
                   struct msg *m);

/* Checks n echoed bytes that sit at offset off of message m: the index (within p) of the
 * first wrong byte, or -1 when all are right. */
long payload_check(const struct payload *pl, const struct msg *m, size_t off, const uint8_t *p,
                   size_t n);

/* The whole payload of m as it must come back, into out (pl->size bytes). */
void payload_plain(const struct payload *pl, const struct msg *m, uint8_t *out);

/* The byte that must come back at offset off of m. */
uint8_t payload_expected(const struct payload *pl, const struct msg *m, size_t off);

#endif
