/* permessage-deflate codecs (RFC 7692) over zlib, the only file that includes zlib.h.
 *
 * The loop owns one pool of zlib streams. A connection takes a stream when one of its messages
 * starts and gives it back at the message's end, so an idle connection holds no zlib memory
 * and a message that arrives in one read reuses the stream the previous one left. What must
 * outlive a message (the LZ77 history a peer may refer to) is kept by the caller as plain
 * bytes, at most a window of them, and set as the next stream's dictionary. */
#ifndef WEBSOCK_DEFLATE_H
#define WEBSOCK_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct zpool;
struct zstream;

/* A pool whose streams in use may take about max_bytes (zpool_full says when they do). */
struct zpool *zpool_new(uint64_t max_bytes);
void zpool_free(struct zpool *p);

/* Streams in use reached the pool's budget: start no new compressed message (backpressure). */
bool zpool_full(const struct zpool *p);

/* Bytes of zlib memory the streams in use hold (estimated from zlib's documented formula). */
uint64_t zpool_in_use_bytes(const struct zpool *p);

/* ---- inflating a client's message -------------------------------------------------------- */

/* A reset inflater whose window starts with dict (the history a context-taking-over client may
 * refer to); NULL when out of memory. */
struct zstream *zin_begin(struct zpool *p, const uint8_t *dict, size_t dict_len);

enum zin_status {
    ZIN_FULL,       /* out is full: call again (more output may be pending) */
    ZIN_NEED_INPUT, /* all input taken and its output written */
    ZIN_DONE,       /* last: the message is complete, its 4-byte tail included */
    ZIN_ERROR,      /* not valid deflate data */
};

/* Inflates from *in (advanced past what was taken) into out[0..*out_len) (*out_len becomes the
 * bytes written). With last, the input ends the message: the empty block's tail that senders
 * leave off (RFC 7692 §7.2.2) is appended once the input is taken. */
enum zin_status zin_run(struct zstream *z, const uint8_t **in, size_t *in_len, bool last,
                        uint8_t *out, size_t *out_len);

/* ---- deflating our echo ------------------------------------------------------------------- */

/* A reset deflater for a peer whose window is 2^wbits bytes (8..15; zlib's smallest raw window
 * is 9, whose matches reach at most 250 bytes back, within a 256-byte window), primed with
 * dict (our earlier messages, which that peer still holds); small: for one message of at most
 * DEFLATE_SMALL bytes (a smaller hash is cheaper to reset). NULL when out of memory. */
struct zstream *zout_begin(struct zpool *p, unsigned wbits, bool small, const uint8_t *dict,
                           size_t dict_len);

/* Compresses in[0..n) into out[0..cap) (cap >= 8); *used is the input taken. With last, the
 * message ends: the output is flushed to a byte boundary and the empty block's 4-byte tail is
 * left off. Returns the bytes written; *full: out was filled, call again (with the rest of the
 * input, and last again if it was). The final 4 bytes are held back until the next call, so a
 * message may be cut into frames anywhere. */
size_t zout_run(struct zstream *z, const uint8_t *in, size_t n, size_t *used, bool last,
                uint8_t *out, size_t cap, bool *full);

/* Returns a stream taken with zin_begin or zout_begin (NULL is ignored). */
void zstream_give(struct zpool *p, struct zstream *z);

/* The version of the zlib linked in (for websock_build_info). */
const char *deflate_zlib_version(void);

#endif
