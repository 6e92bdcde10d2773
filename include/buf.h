/* A growable byte queue: append at the end, consume from the front. Empty buffers own no memory,
 * so an idle connection pays only for the struct. */
#ifndef WEBSOCK_BUF_H
#define WEBSOCK_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
    uint8_t *data;
    uint32_t start; /* first unconsumed byte */
    uint32_t end;   /* one past the last byte */
    uint32_t cap;
};

static inline size_t buf_len(const struct buf *b) { return b->end - b->start; }
static inline const uint8_t *buf_head(const struct buf *b) { return b->data + b->start; }

/* Makes room for n more bytes and returns where they go; NULL when out of memory. */
uint8_t *buf_reserve(struct buf *b, size_t n);
static inline void buf_commit(struct buf *b, size_t n) { b->end += (uint32_t)n; }
bool buf_append(struct buf *b, const void *p, size_t n);

/* Drops n bytes from the front; an emptied buffer keeps its memory for reuse. */
void buf_consume(struct buf *b, size_t n);
void buf_clear(struct buf *b);
void buf_free(struct buf *b);

#endif
