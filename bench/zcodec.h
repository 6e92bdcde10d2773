/* zlib for permessage-deflate, as a client needs it: whole messages compressed with one
 * shared deflater, echoes inflated piece by piece with pooled inflaters. A direction with
 * context takeover keeps its context between messages as a `zhist` (the last window of
 * bytes, used as the next message's dictionary), so a connection costs only its history
 * and no zlib state while no message of its is in flight. No sockets: the self-test links it. */
#ifndef WSLOAD_ZCODEC_H
#define WSLOAD_ZCODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

/* One direction's context: up to 2^bits bytes of what went through it last. */
struct zhist {
    uint8_t *p;
    uint32_t len;
};

void zhist_free(struct zhist *h);

struct zinflater {
    z_stream z;
    int bits;
    bool ended;  /* a BFINAL block came: only the 00 00 ff ff tail may follow */
};

struct zcodec {
    int level;           /* for our messages */
    z_stream tx;         /* one deflater: messages are compressed whole, one at a time */
    int tx_bits;         /* its window; 0 while not initialised */
    struct zinflater **free_rx;
    unsigned nfree, cap;
    uint8_t out[64 * 1024]; /* inflated bytes, handed to the sink a chunk at a time */
};

int zcodec_init(struct zcodec *z, int level);
void zcodec_free(struct zcodec *z);

/* Room for the compressed form of an n-byte message (before the tail is stripped). */
size_t zcodec_bound(size_t n);

/* Compresses one message: raw deflate with a window of 2^bits (9 for 8: zlib refuses 8, and
 * a 9-bit deflater never reaches further back than 256 bytes), Z_SYNC_FLUSH, the 00 00 ff ff
 * tail stripped (RFC 7692 7.2.1). hist NULL: no context takeover; else the previous
 * messages' window is the dictionary and is updated. The compressed length, or -1. */
long zcodec_compress(struct zcodec *z, int bits, struct zhist *hist, const uint8_t *in, size_t n,
                     uint8_t *out);

/* Compresses a message into a stream that keeps its context (the reference compressor):
 * Z_SYNC_FLUSH, tail stripped; the length, or -1. out holds zcodec_bound(n). */
long zcodec_stream(z_stream *s, const uint8_t *in, size_t n, uint8_t *out);

/* An inflater for one message of a 2^bits window, primed with hist when given; NULL when
 * out of memory. */
struct zinflater *zcodec_inflate_begin(struct zcodec *z, int bits, const struct zhist *hist);

typedef void zsink(void *ctx, const uint8_t *p, size_t n);

/* Inflates n compressed bytes, handing the output to sink; `last` also feeds the stripped
 * tail (the message is complete). 0, or -1 with the reason in why. */
int zcodec_inflate(struct zcodec *z, struct zinflater *in, const uint8_t *p, size_t n, bool last,
                   zsink *sink, void *ctx, const char **why);

/* Returns the inflater to the pool; with hist, first saves its window there (context
 * takeover). */
void zcodec_inflate_end(struct zcodec *z, struct zinflater *in, struct zhist *hist);

#endif
