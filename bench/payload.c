#include "payload.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "jsongen.h"

/* Enough distinct masks that a frame's mask cannot be guessed from the last one, without
 * holding gigabytes of pre-masked 16 MiB frames. --raw sends the same number of distinct
 * bodies (the template XORed with each key, and echoed as sent), so the generator reads the
 * same amount of memory per message in both modes: a smaller pool would make raw mode faster
 * on the client and so flatter the plain TCP echo it is compared with. */
#define POOL_BYTES (64u << 20)
#define POOL_MIN 2
#define POOL_MAX 64
/* JSON: every frame a different message, and enough of them that a 32 KiB window (a
 * context-takeover compressor's) holds no earlier copy of the one being sent. */
#define JSON_POOL_BYTES (16u << 20)
#define JSON_POOL_MAX 16384

static const char HEX[] = "0123456789abcdef";

int payload_init(struct payload *pl, size_t size, enum payload_kind kind, bool raw,
                 uint64_t *rng)
{
    memset(pl, 0, sizeof *pl);
    pl->size = size;
    pl->kind = kind;
    pl->id_off = kind == PAYLOAD_JSON ? JSON_ID_OFF : 0;
    pl->id_len = size < ID_MAX ? size : ID_MAX;
    pl->opcode = kind == PAYLOAD_BINARY ? OP_BINARY : OP_TEXT;
    pl->raw = raw;
    pl->plain = malloc(size ? size : 1);
    if (!pl->plain)
        return -1;
    /* Text: printable ASCII whose period (94) is not a multiple of the mask's (4), so a mask
     * applied at the wrong offset shows. Binary: every byte value, 0x00 and 0xFF included. */
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < size; i++)
        pl->plain[i] = kind != PAYLOAD_BINARY ? (uint8_t)(0x21 + i % 94)
                                              : (uint8_t)(rng_next(&s) >> 56);

    size_t pool_bytes = kind == PAYLOAD_JSON ? JSON_POOL_BYTES : POOL_BYTES;
    unsigned pool_max = kind == PAYLOAD_JSON ? JSON_POOL_MAX : POOL_MAX;
    pl->npool = size && pool_bytes / size < pool_max ? (unsigned)(pool_bytes / size) : pool_max;
    if (pl->npool < POOL_MIN)
        pl->npool = POOL_MIN;
    pl->pool = calloc(pl->npool, sizeof *pl->pool);
    if (!pl->pool)
        return -1;
    for (unsigned k = 0; k < pl->npool; k++) {
        struct pool_frame *f = &pl->pool[k];
        uint64_t r = rng_next(rng);
        memcpy(f->mask, &r, 4);
        f->plain = pl->plain;
        if (kind == PAYLOAD_JSON) {
            f->plain = k ? malloc(size) : pl->plain;
            if (!f->plain)
                return -1;
            json_fill(f->plain, size, pl->id_len, &s);
        }
        f->masked = malloc(size ? size : 1);
        if (!f->masked)
            return -1;
        memcpy(f->masked, f->plain, size);
        frame_mask(f->masked, size, f->mask, 0);
    }
    return 0;
}

void payload_free(struct payload *pl)
{
    for (unsigned k = 0; pl->pool && k < pl->npool; k++) {
        free(pl->pool[k].masked);
        if (pl->pool[k].plain != pl->plain)
            free(pl->pool[k].plain);
    }
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
    /* The bytes before the id come from the frame as they are (masked, or raw as sent). */
    memcpy(m->prefix + h, f->masked, pl->id_off);
    memcpy(m->prefix + h + pl->id_off, id, pl->id_len);
    if (!pl->raw)
        frame_mask(m->prefix + h + pl->id_off, pl->id_len, f->mask, pl->id_off);
    size_t head = pl->id_off + pl->id_len;
    m->prefix_len = (uint8_t)(h + head);
    m->body = f->masked + head;
    m->expect = pl->raw ? f->masked : f->plain; /* raw: the body comes back as sent */
    m->body_len = pl->size - head;
    m->wire_out = (uint32_t)(h + pl->size);
    m->ref_len = 0;
}

static bool in_id(const struct payload *pl, size_t off)
{
    return off >= pl->id_off && off - pl->id_off < pl->id_len;
}

void payload_plain(const struct payload *pl, const struct msg *m, uint8_t *out)
{
    memcpy(out, m->expect, pl->size);
    memcpy(out + pl->id_off, m->id, pl->id_len);
}

uint8_t payload_expected(const struct payload *pl, const struct msg *m, size_t off)
{
    return in_id(pl, off) ? m->id[off - pl->id_off] : m->expect[off];
}

long payload_check(const struct payload *pl, const struct msg *m, size_t off, const uint8_t *p,
                   size_t n)
{
    /* The id's bytes byte by byte, the template's (nearly all) with memcmp first. */
    size_t head = pl->id_off + pl->id_len;
    size_t i = 0;
    for (; i < n && off + i < head; i++)
        if (p[i] != payload_expected(pl, m, off + i))
            return (long)i;
    if (i < n && memcmp(p + i, m->expect + off + i, n - i) != 0) {
        for (; i < n; i++)
            if (p[i] != m->expect[off + i])
                return (long)i;
    }
    return -1;
}
