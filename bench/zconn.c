/* A connection's side of permessage-deflate: what the server agreed to, our compressed
 * messages, and the reference compressor (echo.c inflates what comes back). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "conn.h"
#include "zconn.h"

/* The reference: a full 32 KiB-window zlib at its default level that keeps its context
 * across a connection's messages, run over what the first few connections send, to say how
 * far the server's echoes are from the best a deflate stream does on the same traffic. */
#define REF_CONNS 4
#define REF_BITS 15

int zconn_setup(struct bench *b)
{
    if (!b->opt.deflate)
        return 0;
    b->z = malloc(sizeof *b->z);
    b->zplain = malloc(b->pl.size ? b->pl.size : 1);
    b->zref = malloc(zcodec_bound(b->pl.size));
    if (!b->z || !b->zplain || !b->zref)
        return -1;
    return zcodec_init(b->z, b->opt.deflate_level);
}

void zconn_teardown(struct bench *b)
{
    if (b->z)
        zcodec_free(b->z);
    free(b->z);
    free(b->zplain);
    free(b->zref);
}

static void describe(char *out, size_t cap, const struct pmd_params *p)
{
    int n = snprintf(out, cap, "permessage-deflate");
    if (p->server_no_takeover)
        n += snprintf(out + n, cap - (size_t)n, "; server_no_context_takeover");
    if (p->client_no_takeover)
        n += snprintf(out + n, cap - (size_t)n, "; client_no_context_takeover");
    if (p->server_bits != 15)
        n += snprintf(out + n, cap - (size_t)n, "; server_max_window_bits=%u", p->server_bits);
    if (p->client_bits != 15)
        snprintf(out + n, cap - (size_t)n, "; client_max_window_bits=%u", p->client_bits);
}

void zconn_opened(struct bench *b, struct conn *c)
{
    if (!b->opt.deflate)
        return;
    if (!c->ext.on) {
        if (!b->opt.deflate_optional)
            bench_abort(b,
                        "connection %u: the server declined permessage-deflate (no "
                        "Sec-WebSocket-Extensions in its 101 to our offer '%s'); "
                        "--deflate-optional runs uncompressed instead",
                        c->id, PMD_OFFER);
        b->declined++;
        return;
    }
    if (!b->negotiated++)
        describe(b->ext_answer, sizeof b->ext_answer, &c->ext);
    if (c->id < REF_CONNS && !c->ref) {
        c->ref = calloc(1, sizeof *c->ref);
        if (!c->ref || deflateInit2(c->ref, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -REF_BITS, 8,
                                    Z_DEFAULT_STRATEGY) != Z_OK)
            bench_abort(b, "out of memory for the reference compressor");
    }
}

static size_t server_header_size(size_t len)
{
    return len < 126 ? 2 : len <= 0xFFFF ? 4 : 10;
}

void zconn_build(struct bench *b, struct conn *c, struct msg *m)
{
    size_t size = b->pl.size, bound = zcodec_bound(size);
    if (m->zcap < bound) {
        uint8_t *p = realloc(m->zbuf, bound);
        if (!p)
            bench_abort(b, "out of memory for compressed messages");
        m->zbuf = p;
        m->zcap = bound;
    }
    payload_plain(&b->pl, m, b->zplain);
    long len = zcodec_compress(b->z, c->ext.client_bits,
                               c->ext.client_no_takeover ? NULL : &c->tx_hist, b->zplain, size,
                               m->zbuf);
    if (len < 0)
        bench_abort(b, "zlib failed to compress a %zu-byte message", size);
    uint64_t r = rng_next(&b->rng);
    uint8_t mask[4];
    memcpy(mask, &r, 4);
    frame_mask(m->zbuf, (size_t)len, mask, 0);
    size_t h = frame_client_header(m->prefix, b->pl.opcode | FRAME_RSV1, (uint64_t)len, mask);
    m->prefix_len = (uint8_t)h;
    m->body = m->zbuf;
    m->body_len = (size_t)len;
    m->wire_out = (uint32_t)(h + (size_t)len);
    if (c->ref) {
        long rl = zcodec_stream(c->ref, b->zplain, size, b->zref);
        if (rl < 0)
            bench_abort(b, "zlib failed in the reference compressor");
        m->ref_len = (uint32_t)(server_header_size((size_t)rl) + (size_t)rl);
    }
}

void zconn_drop(struct bench *b, struct conn *c)
{
    if (c->rx_z)
        zcodec_inflate_end(b->z, c->rx_z, NULL);
    c->rx_z = NULL;
    c->rx_compressed = false;
    c->rx_wire = 0;
    c->tx_hist.len = c->rx_hist.len = 0; /* a new connection starts from empty windows */
    c->ext = (struct pmd_params){ .on = false };
    if (c->ref)
        deflateReset(c->ref);
}

void zconn_free(struct conn *c)
{
    if (c->rx_z) {
        inflateEnd(&c->rx_z->z);
        free(c->rx_z);
    }
    zhist_free(&c->tx_hist);
    zhist_free(&c->rx_hist);
    if (c->ref) {
        deflateEnd(c->ref);
        free(c->ref);
    }
    for (unsigned i = 0; c->ring && i < c->depth; i++)
        free(c->ring[i].zbuf);
}
