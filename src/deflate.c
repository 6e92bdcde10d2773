#include "deflate.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "defaults.h"

/* Deflaters are kinds 9..15 (their window bits), or 25..31 for small messages: those take a
 * smaller hash, which each message's reset clears (64 KiB at memLevel 8, 4 KiB at 4). */
enum { KIND_INFLATE = 0, KIND_SMALL = 16 };

static int level(unsigned kind)
{
    return kind & KIND_SMALL ? DEFLATE_LEVEL : DEFLATE_LARGE_LEVEL;
}

static int mem_level(unsigned kind)
{
    return kind & KIND_SMALL ? DEFLATE_SMALL_MEM_LEVEL : DEFLATE_MEM_LEVEL;
}


static unsigned window_bits(unsigned kind) { return kind & 15; }

struct zstream {
    z_stream zs;
    struct zstream *next_free;
    uint8_t kind;
    uint8_t tail_fed;  /* inflate: bytes of the 4-byte tail taken so far */
    bool pending;      /* inflate: the last call filled the output, so more may be due */
    uint8_t held_len;  /* deflate: bytes held back from the output (the possible tail) */
    uint8_t held[4];
};

/* Idle streams are kept per kind, up to ZPOOL_KEEP of each: more would only hold memory that
 * a burst left behind. */
struct zpool {
    struct zstream *idle[32];
    unsigned idle_count[32];
    uint64_t in_use_bytes;
    uint64_t max_bytes;
};

/* zlib's memory per stream (zconf.h): inflate 7 KiB plus its window; deflate
 * 2^(wbits+2) + 2^(memLevel+9) plus about 6 KiB of state. */
static uint64_t cost(unsigned kind)
{
    if (kind == KIND_INFLATE)
        return (7u << 10) + (1u << 15);
    return (1u << (window_bits(kind) + 2)) + (1u << (mem_level(kind) + 9)) + (6u << 10);
}

struct zpool *zpool_new(uint64_t max_bytes)
{
    struct zpool *p = calloc(1, sizeof *p);
    if (p)
        p->max_bytes = max_bytes;
    return p;
}

static void end_stream(struct zstream *z)
{
    if (z->kind == KIND_INFLATE)
        inflateEnd(&z->zs);
    else
        deflateEnd(&z->zs);
    free(z);
}

void zpool_free(struct zpool *p)
{
    if (!p)
        return;
    for (unsigned k = 0; k < 32; k++)
        while (p->idle[k]) {
            struct zstream *z = p->idle[k];
            p->idle[k] = z->next_free;
            end_stream(z);
        }
    free(p);
}

bool zpool_full(const struct zpool *p) { return p->in_use_bytes >= p->max_bytes; }

uint64_t zpool_in_use_bytes(const struct zpool *p) { return p->in_use_bytes; }

/* An idle stream of this kind, reset, or a new one. */
static struct zstream *take(struct zpool *p, unsigned kind)
{
    struct zstream *z = p->idle[kind];
    if (z) {
        p->idle[kind] = z->next_free;
        p->idle_count[kind]--;
        if ((kind == KIND_INFLATE ? inflateReset(&z->zs) : deflateReset(&z->zs)) != Z_OK) {
            end_stream(z);
            z = NULL;
        }
    }
    if (!z) {
        z = calloc(1, sizeof *z);
        if (!z)
            return NULL;
        /* Raw deflate (negative window bits): permessage-deflate has no zlib header. */
        int rc = kind == KIND_INFLATE
                     ? inflateInit2(&z->zs, -15)
                     : deflateInit2(&z->zs, level(kind), Z_DEFLATED, -(int)window_bits(kind),
                                    mem_level(kind), Z_DEFAULT_STRATEGY);
        if (rc != Z_OK) {
            free(z);
            return NULL;
        }
        z->kind = (uint8_t)kind;
    }
    z->next_free = NULL;
    z->tail_fed = 0;
    z->pending = false;
    z->held_len = 0;
    p->in_use_bytes += cost(kind);
    return z;
}

void zstream_give(struct zpool *p, struct zstream *z)
{
    if (!z)
        return;
    p->in_use_bytes -= cost(z->kind);
    if (p->idle_count[z->kind] >= ZPOOL_KEEP)
        return end_stream(z);
    z->next_free = p->idle[z->kind];
    p->idle[z->kind] = z;
    p->idle_count[z->kind]++;
}

struct zstream *zin_begin(struct zpool *p, const uint8_t *dict, size_t dict_len)
{
    struct zstream *z = take(p, KIND_INFLATE);
    if (z && dict_len && inflateSetDictionary(&z->zs, dict, (uInt)dict_len) != Z_OK) {
        zstream_give(p, z);
        return NULL;
    }
    return z;
}

static const uint8_t empty_block_tail[4] = { 0x00, 0x00, 0xff, 0xff };

enum zin_status zin_run(struct zstream *z, const uint8_t **in, size_t *in_len, bool last,
                        uint8_t *out, size_t *out_len)
{
    z_stream *zs = &z->zs;
    zs->next_out = out;
    zs->avail_out = (uInt)*out_len;
    for (;;) {
        bool tail = *in_len == 0 && last && z->tail_fed < sizeof empty_block_tail;
        if (*in_len == 0 && !tail && !z->pending) {
            *out_len -= zs->avail_out;
            return zs->avail_out == 0 ? ZIN_FULL : last ? ZIN_DONE : ZIN_NEED_INPUT;
        }
        if (tail) {
            zs->next_in = (Bytef *)(uintptr_t)(empty_block_tail + z->tail_fed);
            zs->avail_in = (uInt)(sizeof empty_block_tail - z->tail_fed);
        } else {
            zs->next_in = (Bytef *)(uintptr_t)*in;
            zs->avail_in = *in_len > UINT32_MAX ? UINT32_MAX : (uInt)*in_len;
        }
        uInt before = zs->avail_in;
        int rc = inflate(zs, Z_SYNC_FLUSH);
        size_t taken = before - zs->avail_in;
        if (tail) {
            z->tail_fed = (uint8_t)(z->tail_fed + taken);
        } else {
            *in += taken;
            *in_len -= taken;
        }
        if (rc == Z_STREAM_END) /* a final block: what follows starts a new stream */
            rc = inflateReset(zs);
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            *out_len -= zs->avail_out;
            return ZIN_ERROR;
        }
        z->pending = zs->avail_out == 0;
        if (z->pending) {
            *out_len -= zs->avail_out;
            return ZIN_FULL;
        }
        if (before && !taken) { /* room and input, yet no progress: cannot happen, never spin */
            *out_len -= zs->avail_out;
            return ZIN_ERROR;
        }
    }
}

struct zstream *zout_begin(struct zpool *p, unsigned wbits, bool small, const uint8_t *dict,
                           size_t dict_len)
{
    unsigned bits = wbits < 9 ? 9 : wbits > 15 ? 15 : wbits;
    struct zstream *z = take(p, bits | (small ? KIND_SMALL : 0));
    if (z && dict_len && deflateSetDictionary(&z->zs, dict, (uInt)dict_len) != Z_OK) {
        zstream_give(p, z);
        return NULL;
    }
    return z;
}

size_t zout_run(struct zstream *z, const uint8_t *in, size_t n, size_t *used, bool last,
                uint8_t *out, size_t cap, bool *full)
{
    z_stream *zs = &z->zs;
    memcpy(out, z->held, z->held_len);
    zs->next_in = (Bytef *)(uintptr_t)in;
    zs->avail_in = n > UINT32_MAX ? UINT32_MAX : (uInt)n;
    zs->next_out = out + z->held_len;
    zs->avail_out = (uInt)(cap - z->held_len);
    /* Z_BUF_ERROR only says there was nothing to do; deflate cannot otherwise fail here. */
    deflate(zs, last ? Z_SYNC_FLUSH : Z_NO_FLUSH);
    *used = n - zs->avail_in;
    *full = zs->avail_out == 0;
    size_t len = cap - zs->avail_out;
    z->held_len = (uint8_t)(len < 4 ? len : 4);
    len -= z->held_len;
    memcpy(z->held, out + len, z->held_len);
    return len;
}

const char *deflate_zlib_version(void)
{
    return zlibVersion();
}
