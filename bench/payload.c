#include "payload.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"

/* Enough distinct masks that a frame's mask cannot be guessed from the last one, without
 * holding gigabytes of pre-masked 16 MiB frames. --raw sends the same number of distinct
 * bodies (the template XORed with each key, and echoed as sent), so the generator reads the
 * same amount of memory per message in both modes: a smaller pool would make raw mode faster
 * on the client and so flatter the plain TCP echo it is compared with. */
#define POOL_BYTES (64u << 20)
#define POOL_MIN 2
#define POOL_MAX 64

static const char HEX[] = "0123456789abcdef";

int payload_init(struct payload *pl, size_t size, bool text, bool raw, uint64_t *rng)
{
    memset(pl, 0, sizeof *pl);
    pl->size = size;
    pl->id_len = size < ID_MAX ? size : ID_MAX;
    pl->opcode = text ? OP_TEXT : OP_BINARY;
    pl->raw = raw;
    pl->plain = malloc(size ? size : 1);
    if (!pl->plain)
        return -1;
    /* Text: printable ASCII whose period (94) is not a multiple of the mask's (4), so a mask
     * applied at the wrong offset shows. Binary: every byte value, 0x00 and 0xFF included. */
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < size; i++)
        pl->plain[i] = text ? (uint8_t)(0x21 + i % 94) : (uint8_t)(rng_next(&s) >> 56);

    pl->npool = size ? POOL_BYTES / size : POOL_MAX;
    if (pl->npool < POOL_MIN)
        pl->npool = POOL_MIN;
    if (pl->npool > POOL_MAX)
        pl->npool = POOL_MAX;
    pl->pool = calloc(pl->npool, sizeof *pl->pool);
    if (!pl->pool)
        return -1;
    for (unsigned k = 0; k < pl->npool; k++) {
        struct pool_frame *f = &pl->pool[k];
        uint64_t r = rng_next(rng);
        memcpy(f->mask, &r, 4);
        f->masked = malloc(size ? size : 1);
        if (!f->masked)
            return -1;
        memcpy(f->masked, pl->plain, size);
        frame_mask(f->masked, size, f->mask, 0);
    }
    return 0;
}

void payload_free(struct payload *pl)
{
    for (unsigned k = 0; pl->pool && k < pl->npool; k++)
        if (pl->pool[k].masked != pl->plain)
            free(pl->pool[k].masked);
    free(pl->pool);
    free(pl->plain);
    memset(pl, 0, sizeof *pl);
}

void payload_build(const struct payload *pl, uint32_t conn, uint64_t seq, uint64_t *rng,
                   struct msg *m)
{
    /* Least significant digit first, so a short message keeps the digits that change. */
    uint8_t id[ID_MAX];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)HEX[(seq >> (4 * i)) & 15];
    for (int i = 0; i < 8; i++)
        id[16 + i] = (uint8_t)HEX[(conn >> (4 * i)) & 15];
    memcpy(m->id, id, pl->id_len);
    m->seq = seq;

    const struct pool_frame *f = &pl->pool[pl->npool > 1 ? rng_next(rng) % pl->npool : 0];
    size_t h = pl->raw ? 0 : frame_client_header(m->prefix, pl->opcode, pl->size, f->mask);
    memcpy(m->prefix + h, id, pl->id_len);
    if (!pl->raw)
        frame_mask(m->prefix + h, pl->id_len, f->mask, 0);
    m->prefix_len = (uint8_t)(h + pl->id_len);
    m->body = f->masked + pl->id_len;
    m->expect = pl->raw ? f->masked : pl->plain; /* raw: the body comes back as sent */
    m->body_len = pl->size - pl->id_len;
}

uint8_t payload_expected(const struct payload *pl, const struct msg *m, size_t off)
{
    return off < pl->id_len ? m->id[off] : m->expect[off];
}

long payload_check(const struct payload *pl, const struct msg *m, size_t off, const uint8_t *p,
                   size_t n)
{
    size_t i = 0;
    for (; i < n && off + i < pl->id_len; i++)
        if (p[i] != m->id[off + i])
            return (long)i;
    if (i < n && memcmp(p + i, m->expect + off + i, n - i) != 0) {
        for (; i < n; i++)
            if (p[i] != m->expect[off + i])
                return (long)i;
    }
    return -1;
}
