/* Test helpers shared by the unit tests.
 *
 * Feeding modes: an incremental parser must give the same answer however its input is cut, so
 * every vector is fed whole, one byte at a time, and as two chunks cut at every split point:
 *
 *     for_each_split(sp, n) {
 *         ...reset the parser...
 *         split_feed(&sp, input, n, feed_one_chunk, &ctx);
 *         split_assert(&sp, ...);      // failures name the feeding mode
 *     }
 *
 * Guard page: split_feed hands each chunk to the parser in a copy that ends right before an
 * unmapped page (as picohttpparser's tests do), so reading one byte past a chunk crashes. */
#ifndef WEBSOCK_TEST_SPLIT_H
#define WEBSOCK_TEST_SPLIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- guard page ------------------------------------------------------------------------------ */

/* Copies p[0..n) so that it ends exactly where an unmapped page begins and returns the copy.
 * The copy stays valid until the next call. */
static inline uint8_t *guard_copy(const void *p, size_t n)
{
    static uint8_t *map;
    static size_t map_data; /* bytes usable before the guard page */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (n > map_data) {
        if (map)
            munmap(map, map_data + page);
        map_data = (n + page - 1) / page * page;
        if (map_data == 0)
            map_data = page;
        map = mmap(NULL, map_data + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
        if (map == MAP_FAILED || mprotect(map + map_data, page, PROT_NONE) != 0)
            fail_msg("guard page: mmap/mprotect failed");
    }
    uint8_t *dst = map + map_data - n;
    if (n)
        memcpy(dst, p, n);
    return dst;
}

/* ---- feeding modes --------------------------------------------------------------------------- */

enum split_mode { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_AT, SPLIT_END };

struct split {
    enum split_mode mode;
    size_t at;   /* SPLIT_AT: the first chunk is [0, at) */
    size_t len;  /* total input length */
    size_t edge; /* 0: cut everywhere; else only within `edge` bytes of either end (long inputs) */
    char name[40];
};

static inline void split_name_update(struct split *sp)
{
    switch (sp->mode) {
    case SPLIT_WHOLE: snprintf(sp->name, sizeof sp->name, "fed whole"); break;
    case SPLIT_BYTES: snprintf(sp->name, sizeof sp->name, "fed byte by byte"); break;
    default: snprintf(sp->name, sizeof sp->name, "split at %zu", sp->at); break;
    }
}

static inline struct split split_begin(size_t len, size_t edge)
{
    struct split sp = { .mode = SPLIT_WHOLE, .len = len, .edge = edge };
    split_name_update(&sp);
    return sp;
}

static inline void split_advance(struct split *sp)
{
    if (sp->mode == SPLIT_WHOLE) {
        sp->mode = sp->len > 1 ? SPLIT_BYTES : SPLIT_END;
    } else if (sp->mode == SPLIT_BYTES) {
        sp->mode = sp->len > 1 ? SPLIT_AT : SPLIT_END;
        sp->at = 1;
    } else {
        sp->at++;
        if (sp->edge && sp->at > sp->edge && sp->at + sp->edge < sp->len)
            sp->at = sp->len - sp->edge;
        if (sp->at >= sp->len)
            sp->mode = SPLIT_END;
    }
    split_name_update(sp);
}

/* Every feeding of an n-byte input. */
#define for_each_split(sp, n) for_each_split_near_ends(sp, n, 0)
/* The same with cut points only within `edge` bytes of either end (for long inputs). */
#define for_each_split_near_ends(sp, n, edge) \
    for (struct split sp = split_begin((n), (edge)); sp.mode != SPLIT_END; split_advance(&sp))

/* Length of the chunk that starts at pos. */
static inline size_t split_chunk(const struct split *sp, size_t pos)
{
    switch (sp->mode) {
    case SPLIT_BYTES: return 1;
    case SPLIT_AT: return pos < sp->at ? sp->at - pos : sp->len - pos;
    default: return sp->len - pos;
    }
}

/* Called once per chunk with a guarded copy of it; `pos` is the chunk's offset in the input.
 * Returns false to stop feeding (e.g. the parser failed or finished). */
typedef bool (*split_feed_fn)(void *ctx, uint8_t *chunk, size_t len, size_t pos);

/* Feeds in[0..n) chunk by chunk as sp says; returns how many bytes were offered. */
static inline size_t split_feed(const struct split *sp, const void *in, size_t n, split_feed_fn fn,
                                void *ctx)
{
    const uint8_t *p = in;
    size_t pos = 0;
    while (pos < n) {
        size_t len = split_chunk(sp, pos);
        bool go_on = fn(ctx, guard_copy(p + pos, len), len, pos);
        pos += len;
        if (!go_on)
            break;
    }
    return pos;
}

/* Assertions that name the feeding mode when they fail. */
#define split_assert(sp, cond)                                                \
    do {                                                                      \
        if (!(cond))                                                          \
            fail_msg("[%s] assertion failed: %s", (sp)->name, #cond);         \
    } while (0)

#define split_assert_int(sp, actual, expected)                                          \
    do {                                                                                \
        long long a_ = (long long)(actual), e_ = (long long)(expected);                 \
        if (a_ != e_)                                                                   \
            fail_msg("[%s] %s is %lld, expected %lld", (sp)->name, #actual, a_, e_);    \
    } while (0)

#define split_assert_mem(sp, actual, expected, n)                                       \
    do {                                                                                \
        if ((n) > 0 && memcmp((actual), (expected), (n)) != 0)                          \
            fail_msg("[%s] %s differs from %s", (sp)->name, #actual, #expected);        \
    } while (0)

#endif
