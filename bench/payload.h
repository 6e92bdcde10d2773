/* What wsload sends and what it must get back.
 *
 * Every message is the same template except its first id_len bytes, the "id": hex digits of
 * the connection's sequence number and the connection number. The template tail is masked once,
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
#define PREFIX_MAX (FRAME_HDR_MAX + ID_MAX)

struct msg {
    uint64_t seq;
    int64_t t_sched;      /* ns; latency counts from here (the scheduled time under --rate) */
    const uint8_t *body;  /* shared, read-only: payload bytes after the id, already masked */
    const uint8_t *expect; /* shared, read-only: the whole payload as it must come back */
    size_t body_len;
    uint8_t prefix_len;
    uint8_t prefix[PREFIX_MAX]; /* frame header + masked id (the id alone in --raw) */
    uint8_t id[ID_MAX];         /* the id as it must come back */
};

struct pool_frame {
    uint8_t mask[4];
    uint8_t *masked; /* the whole template masked with mask */
};

struct payload {
    size_t size;
    size_t id_len;
    int opcode;      /* OP_TEXT or OP_BINARY */
    bool raw;        /* plain TCP: no header, no mask */
    uint8_t *plain;  /* the template as a WebSocket echo brings it back (bytes below id_len are
                        replaced by the id) */
    struct pool_frame *pool;
    unsigned npool;
};

/* Returns 0, or -1 when memory runs out. */
int payload_init(struct payload *pl, size_t size, bool text, bool raw, uint64_t *rng);
void payload_free(struct payload *pl);

/* Fills m for message `seq` of connection `conn` (t_sched is left to the caller). */
void payload_build(const struct payload *pl, uint32_t conn, uint64_t seq, uint64_t *rng,
                   struct msg *m);

/* Checks n echoed bytes that sit at offset off of message m: the index (within p) of the
 * first wrong byte, or -1 when all are right. */
long payload_check(const struct payload *pl, const struct msg *m, size_t off, const uint8_t *p,
                   size_t n);

/* The byte that must come back at offset off of m. */
uint8_t payload_expected(const struct payload *pl, const struct msg *m, size_t off);

#endif
