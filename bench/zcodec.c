#include "zcodec.h"

#include <stdlib.h>
#include <string.h>

#define MEM_LEVEL 8 /* zlib's default; the one deflater is shared, so its size hardly matters */

static const uint8_t TAIL[4] = { 0x00, 0x00, 0xff, 0xff };

void zhist_free(struct zhist *h)
{
    free(h->p);
    h->p = NULL;
    h->len = 0;
}

int zcodec_init(struct zcodec *z, int level)
{
    memset(z, 0, sizeof *z);
    z->level = level;
    return 0;
}

void zcodec_free(struct zcodec *z)
{
    if (z->tx_bits)
        deflateEnd(&z->tx);
    for (unsigned i = 0; i < z->nfree; i++) {
        inflateEnd(&z->free_rx[i]->z);
        free(z->free_rx[i]);
    }
    free(z->free_rx);
    memset(z, 0, sizeof *z);
}

size_t zcodec_bound(size_t n)
{
    /* deflateBound() without a stream: zlib's documented worst case for stored blocks, plus
     * the sync flush's empty block and some slack. */
    return n + (n >> 12) + (n >> 14) + (n >> 25) + 13 + 6 + 16;
}

static int tx_window(int bits)
{
    return bits < 9 ? 9 : bits;
}

/* Saves the window a stream has seen into hist (at most its size). */
static int save_window(z_stream *s, bool deflater, struct zhist *hist)
{
    uInt len = 0;
    int rc = deflater ? deflateGetDictionary(s, NULL, &len) : inflateGetDictionary(s, NULL, &len);
    if (rc != Z_OK)
        return -1;
    if (len > hist->len || !hist->p) {
        uint8_t *p = realloc(hist->p, len ? len : 1);
        if (!p)
            return -1;
        hist->p = p;
    }
    rc = deflater ? deflateGetDictionary(s, hist->p, &len) : inflateGetDictionary(s, hist->p, &len);
    hist->len = len;
    return rc == Z_OK ? 0 : -1;
}

/* Runs a deflater over one message with Z_SYNC_FLUSH and strips the tail. */
static long deflate_message(z_stream *s, const uint8_t *in, size_t n, uint8_t *out)
{
    size_t cap = zcodec_bound(n);
    s->next_in = (Bytef *)in;
    s->avail_in = (uInt)n;
    s->next_out = out;
    s->avail_out = (uInt)cap;
    int rc = deflate(s, Z_SYNC_FLUSH);
    if ((rc != Z_OK && rc != Z_BUF_ERROR) || s->avail_in || s->avail_out == 0)
        return -1;
    size_t len = cap - s->avail_out;
    if (len == 0 && n == 0) {
        /* A stream already flushed has nothing to add for an empty message: send the one
         * byte an empty message compresses to (with the tail, an empty stored block). */
        out[0] = 0x00;
        return 1;
    }
    if (len < 4 || memcmp(out + len - 4, TAIL, 4) != 0)
        return -1;
    return (long)(len - 4);
}

long zcodec_compress(struct zcodec *z, int bits, struct zhist *hist, const uint8_t *in, size_t n,
                     uint8_t *out)
{
    int w = tx_window(bits);
    if (z->tx_bits != w) {
        if (z->tx_bits)
            deflateEnd(&z->tx);
        z->tx_bits = 0;
        memset(&z->tx, 0, sizeof z->tx);
        if (deflateInit2(&z->tx, z->level, Z_DEFLATED, -w, MEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK)
            return -1;
        z->tx_bits = w;
    } else if (deflateReset(&z->tx) != Z_OK) {
        return -1;
    }
    if (hist && hist->len && deflateSetDictionary(&z->tx, hist->p, hist->len) != Z_OK)
        return -1;
    long len = deflate_message(&z->tx, in, n, out);
    if (len >= 0 && hist && save_window(&z->tx, true, hist) < 0)
        return -1;
    return len;
}

long zcodec_stream(z_stream *s, const uint8_t *in, size_t n, uint8_t *out)
{
    return deflate_message(s, in, n, out);
}

struct zinflater *zcodec_inflate_begin(struct zcodec *z, int bits, const struct zhist *hist)
{
    struct zinflater *in;
    if (z->nfree) {
        in = z->free_rx[--z->nfree];
        if (inflateReset2(&in->z, -bits) != Z_OK)
            goto fail;
    } else {
        in = calloc(1, sizeof *in);
        if (!in)
            return NULL;
        if (inflateInit2(&in->z, -bits) != Z_OK) {
            free(in);
            return NULL;
        }
    }
    in->bits = bits;
    in->ended = false;
    if (hist && hist->len && inflateSetDictionary(&in->z, hist->p, hist->len) != Z_OK)
        goto fail;
    return in;
fail:
    inflateEnd(&in->z);
    free(in);
    return NULL;
}

static int run(struct zcodec *z, struct zinflater *in, const uint8_t *p, size_t n, zsink *sink,
               void *ctx, const char **why)
{
    z_stream *s = &in->z;
    s->next_in = (Bytef *)p;
    s->avail_in = (uInt)n;
    for (;;) {
        if (in->ended) {
            if (!s->avail_in)
                return 0;
            *why = "compressed data after the final deflate block";
            return -1;
        }
        s->next_out = z->out;
        s->avail_out = sizeof z->out;
        int rc = inflate(s, Z_SYNC_FLUSH);
        size_t got = sizeof z->out - s->avail_out;
        if (got)
            sink(ctx, z->out, got);
        if (rc == Z_STREAM_END) {
            in->ended = true;
            continue;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            *why = s->msg ? s->msg : "zlib error";
            return -1;
        }
        /* Done once the input is used up and the output was not cut short by its room. */
        if ((!s->avail_in && s->avail_out) || (rc == Z_BUF_ERROR && !got))
            return 0;
    }
}

int zcodec_inflate(struct zcodec *z, struct zinflater *in, const uint8_t *p, size_t n, bool last,
                   zsink *sink, void *ctx, const char **why)
{
    if (n && run(z, in, p, n, sink, ctx, why) < 0)
        return -1;
    if (!last || in->ended)
        return 0;
    return run(z, in, TAIL, sizeof TAIL, sink, ctx, why);
}

void zcodec_inflate_end(struct zcodec *z, struct zinflater *in, struct zhist *hist)
{
    if (hist && save_window(&in->z, false, hist) < 0)
        hist->len = 0; /* out of memory: the next echo will not inflate, and say so */
    if (z->nfree == z->cap) {
        unsigned cap = z->cap ? 2 * z->cap : 16;
        struct zinflater **p = realloc(z->free_rx, cap * sizeof *p);
        if (!p) {
            inflateEnd(&in->z);
            free(in);
            return;
        }
        z->free_rx = p;
        z->cap = cap;
    }
    z->free_rx[z->nfree++] = in;
}
