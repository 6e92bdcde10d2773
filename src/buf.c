#include "buf.h"

#include <stdlib.h>
#include <string.h>

uint8_t *buf_reserve(struct buf *b, size_t n)
{
    if (b->cap - b->end >= n)
        return b->data + b->end;
    size_t used = buf_len(b);
    /* Sliding the live bytes to the front is cheaper than growing when that is enough. */
    if (b->start > 0 && b->cap - used >= n) {
        memmove(b->data, b->data + b->start, used);
        b->start = 0;
        b->end = (uint32_t)used;
        return b->data + b->end;
    }
    size_t want = used + n;
    if (want > UINT32_MAX / 2)
        return NULL;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    uint8_t *p = malloc(cap);
    if (!p)
        return NULL;
    if (used)
        memcpy(p, b->data + b->start, used);
    free(b->data);
    b->data = p;
    b->start = 0;
    b->end = (uint32_t)used;
    b->cap = (uint32_t)cap;
    return p + used;
}

bool buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return true;
    uint8_t *dst = buf_reserve(b, n);
    if (!dst)
        return false;
    memcpy(dst, p, n);
    b->end += (uint32_t)n;
    return true;
}

void buf_consume(struct buf *b, size_t n)
{
    b->start += (uint32_t)n;
    if (b->start == b->end)
        b->start = b->end = 0;
}

void buf_clear(struct buf *b)
{
    b->start = b->end = 0;
}

void buf_free(struct buf *b)
{
    free(b->data);
    *b = (struct buf){ 0 };
}
