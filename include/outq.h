/* The output of one event: bytes built in a buffer, plus payloads echoed where they were received
 * (unmasked in place, referenced, not copied), in order. It lives only until the event's send:
 * the references point into the receive buffer, which the next read overwrites. */
#ifndef WEBSOCK_OUTQ_H
#define WEBSOCK_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "buf.h"

/* Frames at least this long are echoed by reference: below it a copy is cheaper than one more
 * iovec for the kernel to walk. */
#ifndef OUTQ_REF_MIN
#define OUTQ_REF_MIN 2048
#endif
/* A full 256 KiB read holds at most 128 such frames; past the limit frames are copied. */
#define OUTQ_MAX_REFS 128
#define OUTQ_MAX_IOV (2 * OUTQ_MAX_REFS + 1)

struct out_ref {
    uint32_t at; /* position in bytes before which the referenced span goes */
    uint32_t len;
    const uint8_t *p;
};

struct outq {
    struct buf bytes;
    unsigned nref;
    struct out_ref ref[OUTQ_MAX_REFS];
};

/* Appends a reference to p[0..len); false (nothing done) when the table is full. */
bool outq_ref(struct outq *q, const uint8_t *p, size_t len);

size_t outq_len(const struct outq *q);

/* Fills iov (OUTQ_MAX_IOV entries) with the whole output in order; returns the count. */
int outq_iov(const struct outq *q, struct iovec *iov);

/* Appends the output after its first skip bytes to dst, then empties q. False when out of
 * memory (q is emptied all the same). */
bool outq_move(struct outq *q, size_t skip, struct buf *dst);

void outq_clear(struct outq *q);

#endif
