/* libFuzzer target: the permessage-deflate path of the message layer (session.c, deflate.c).
 *
 * The input's first bytes choose what the handshake agreed (window bits, context takeover) and
 * the limits (a small per-call inflate budget among them); the rest is a script of client
 * frames that this harness builds: payloads compressed here with zlib, so the inflater is
 * reached deep, or raw fuzz bytes (corrupt deflate data, stray RSV bits), pings, an inflate
 * bomb. The wire is fed in fuzz-chosen chunks, and what session_feed leaves is fed again
 * first, as conn.c does. Checked: consumed <= n; bytes given back are the bytes received
 * (masked again); the pool's streams are held exactly while a message is in flight and all
 * returned by session_free; the output is a valid sequence of server frames whose compressed
 * messages inflate (as a client would: keeping context unless server_no_context_takeover); and
 * when the script held no raw bytes and nothing failed, every message came back intact. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "buf.h"
#include "defaults.h"
#include "deflate.h"
#include "frame.h"
#include "outq.h"
#include "session.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)      \
    do {                 \
        if (!(cond))     \
            abort();     \
    } while (0)

/* buf_head, for buffers that may never have had memory (NULL + 0 is undefined). */
static const uint8_t *head(const struct buf *b)
{
    return b->data ? buf_head(b) : (const uint8_t *)"";
}

/* ---- the script: the client's frames ----------------------------------------------------- */

struct script {
    const uint8_t *in;
    size_t len;
};

static uint8_t next_byte(struct script *s)
{
    if (!s->len)
        return 0;
    s->len--;
    return *s->in++;
}

static const uint8_t *next_bytes(struct script *s, size_t *n)
{
    if (*n > s->len)
        *n = s->len;
    const uint8_t *p = s->in;
    s->in += *n;
    s->len -= *n;
    return p;
}

struct client {
    struct buf wire;
    struct buf expect;   /* each message echoed: opcode, 4-byte length, bytes */
    struct buf msg;      /* the plain bytes of the message being built */
    z_stream def;
    bool takeover;       /* keep the deflate context across messages */
    bool in_msg, msg_z;  /* a data message is open; it is compressed */
    uint8_t msg_op;
    bool exact;          /* the script holds no raw bytes: the echo is known */
    uint32_t frames;
};

static void put_frame(struct client *c, uint8_t b0, const uint8_t *p, size_t n)
{
    uint8_t hdr[WS_MAX_HEADER];
    size_t h = 0;
    hdr[h++] = b0;
    if (n < 126) {
        hdr[h++] = (uint8_t)(0x80 | n);
    } else if (n <= 0xFFFF) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (uint8_t)(n >> 8);
        hdr[h++] = (uint8_t)n;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    uint8_t mask[4];
    for (int i = 0; i < 4; i++)
        mask[i] = (uint8_t)(c->frames * 37 + i * 101 + 11);
    c->frames++;
    memcpy(hdr + h, mask, 4);
    CHECK(buf_append(&c->wire, hdr, h + 4));
    uint8_t *dst = buf_reserve(&c->wire, n);
    CHECK(dst || !n);
    for (size_t i = 0; i < n; i++)
        dst[i] = p[i] ^ mask[i & 3];
    buf_commit(&c->wire, n);
}

/* Compresses p[0..n) as the next piece of the message; fin ends it (the 4-byte tail of a sync
 * flush left off, RFC 7692 §7.2.1). flush: 0 sync, 1 none, 2 a final block. */
static void compress_piece(struct client *c, const uint8_t *p, size_t n, bool fin, int flush,
                           struct buf *out)
{
    int mode = flush == 2 ? Z_FINISH : fin || flush == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    c->def.next_in = (Bytef *)(uintptr_t)p;
    c->def.avail_in = (uInt)n;
    int rc;
    do {
        uint8_t *dst = buf_reserve(out, 4096);
        CHECK(dst);
        c->def.next_out = dst;
        c->def.avail_out = 4096;
        rc = deflate(&c->def, mode);
        CHECK(rc == Z_OK || rc == Z_BUF_ERROR || rc == Z_STREAM_END);
        buf_commit(out, 4096 - c->def.avail_out);
    } while (c->def.avail_out == 0 || (mode == Z_FINISH && rc != Z_STREAM_END));
    if (mode == Z_FINISH) {
        deflateReset(&c->def); /* a final block ends the stream: the next starts afresh */
    } else if (fin && buf_len(out)) { /* (nothing new since the last flush: nothing at all) */
        CHECK(buf_len(out) >= 4 && !memcmp(head(out) + buf_len(out) - 4, "\0\0\xff\xff", 4));
        out->end -= 4;
    }
}

static void message_done(struct client *c)
{
    uint8_t h[5] = { c->msg_op, (uint8_t)(buf_len(&c->msg) >> 24),
                     (uint8_t)(buf_len(&c->msg) >> 16), (uint8_t)(buf_len(&c->msg) >> 8),
                     (uint8_t)buf_len(&c->msg) };
    CHECK(buf_append(&c->expect, h, 5));
    CHECK(buf_append(&c->expect, head(&c->msg), buf_len(&c->msg)));
    buf_clear(&c->msg);
    c->in_msg = false;
    if (!c->takeover)
        deflateReset(&c->def);
}

/* One data frame of the message (opening one when none is open): compressed or plain as the
 * message began; text payloads made ASCII when asked, so that text reaches the echo. */
static void data_frame(struct client *c, struct script *s, bool compressed)
{
    uint8_t f = next_byte(s);
    bool fin = f & 1;
    int flush = (f >> 2) & 3;
    uint8_t rsv_flip = (f & 0xE0) == 0xE0 ? next_byte(s) & 0x70 : 0;
    size_t n = next_byte(s);
    if (f & 2)
        n = n << 8 | next_byte(s);
    uint8_t piece[65536];
    const uint8_t *raw = next_bytes(s, &n);
    memcpy(piece, raw, n);
    uint8_t op = WS_OP_CONT;
    if (!c->in_msg) {
        c->in_msg = true;
        c->msg_z = compressed;
        c->msg_op = op = (f & 0x10) ? WS_OP_BINARY : WS_OP_TEXT;
    }
    if (c->msg_op == WS_OP_TEXT && !(f & 0x10))
        for (size_t i = 0; i < n; i++)
            piece[i] &= 0x7F;
    CHECK(buf_append(&c->msg, piece, n));
    uint8_t b0 = (uint8_t)((fin ? 0x80 : 0) | op | (c->msg_z && op ? WS_RSV1 : 0));
    if (rsv_flip) {
        b0 ^= rsv_flip;
        c->exact = false;
    }
    if (c->msg_z) {
        struct buf z = { 0 };
        compress_piece(c, piece, n, fin, flush, &z);
        put_frame(c, b0, head(&z), buf_len(&z));
        buf_free(&z);
    } else {
        put_frame(c, b0, piece, n);
    }
    if (fin)
        message_done(c);
}

/* A compressed message of zeros up to 1 MiB long in one frame: tiny on the wire, large
 * inflated, so the per-call budget and --max-message are met. */
static void bomb(struct client *c, struct script *s)
{
    if (c->in_msg)
        return;
    size_t n = ((size_t)(next_byte(s) & 63) + 1) * 16384;
    uint8_t *zeros = calloc(1, n);
    CHECK(zeros);
    struct buf z = { 0 };
    compress_piece(c, zeros, n, true, 0, &z);
    put_frame(c, 0x80 | WS_RSV1 | WS_OP_BINARY, head(&z), buf_len(&z));
    buf_free(&z);
    c->in_msg = true;
    c->msg_op = WS_OP_BINARY;
    CHECK(buf_append(&c->msg, zeros, n));
    free(zeros);
    message_done(c);
}

static void build(struct client *c, struct script *s)
{
    /* At most 1 MiB on the wire and 4 MiB of messages: an input runs in well under a second. */
    while (s->len && buf_len(&c->wire) < (1u << 20) && buf_len(&c->expect) < (4u << 20)) {
        uint8_t kind = next_byte(s);
        switch (kind % 6) {
        case 0:
        case 1:
            data_frame(c, s, kind % 6 == 0);
            break;
        case 2: { /* a ping or a pong, anywhere */
            size_t n = next_byte(s) % 126;
            const uint8_t *p = next_bytes(s, &n);
            put_frame(c, 0x80 | (kind & 8 ? WS_OP_PONG : WS_OP_PING), p, n);
            break;
        }
        case 3: { /* a raw frame: any first byte, any payload */
            uint8_t b0 = next_byte(s);
            size_t n = next_byte(s);
            const uint8_t *p = next_bytes(s, &n);
            put_frame(c, b0, p, n);
            c->exact = false;
            break;
        }
        case 4:
            bomb(c, s);
            break;
        case 5: { /* the client closes: nothing after it is read */
            static const uint8_t bye[2] = { 0x03, 0xE8 };
            put_frame(c, 0x80 | WS_OP_CLOSE, bye, 2);
            return;
        }
        }
    }
}

/* ---- the server's output, read as a client ----------------------------------------------- */

/* Parses the output frame by frame; every complete data message goes into got in the format
 * of client.expect, compressed ones inflated. */
static void read_output(const struct buf *out, bool server_no_takeover, struct buf *got)
{
    z_stream inf = { 0 };
    CHECK(inflateInit2(&inf, -15) == Z_OK);
    const uint8_t *p = head(out), *end = p + buf_len(out);
    bool in_msg = false, compressed = false, closed = false;
    uint8_t op_msg = 0;
    struct buf msg = { 0 };
    while (p < end) {
        CHECK(!closed && end - p >= 2);
        bool fin = p[0] & 0x80, rsv1 = p[0] & WS_RSV1;
        uint8_t op = p[0] & 0x0F;
        CHECK(!(p[0] & 0x30) && !(p[1] & 0x80));
        uint64_t len = p[1] & 0x7F;
        size_t h = 2;
        if (len == 126) {
            CHECK(end - p >= 4);
            len = (uint64_t)p[2] << 8 | p[3];
            h = 4;
            CHECK(len >= 126);
        } else if (len == 127) {
            CHECK(end - p >= 10);
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | p[2 + i];
            h = 10;
            CHECK(len > 0xFFFF && !(len >> 63));
        }
        CHECK((uint64_t)(end - p) - h >= len);
        const uint8_t *payload = p + h;
        p += h + len;
        if (ws_opcode_is_control(op)) {
            CHECK(fin && !rsv1 && len <= WS_MAX_CONTROL_PAYLOAD);
            CHECK(op == WS_OP_PING || op == WS_OP_PONG || op == WS_OP_CLOSE);
            closed = op == WS_OP_CLOSE;
            continue;
        }
        CHECK(op <= WS_OP_BINARY && (op == WS_OP_CONT) == in_msg);
        if (op != WS_OP_CONT) {
            op_msg = op;
            compressed = rsv1;
        } else {
            CHECK(!rsv1);
        }
        in_msg = !fin;
        if (!compressed) {
            CHECK(buf_append(&msg, payload, len));
        } else {
            static const uint8_t tail[4] = { 0, 0, 0xff, 0xff };
            struct { const uint8_t *p; size_t n; } parts[2] = { { payload, len }, { tail, 4 } };
            for (int i = 0; i < (fin ? 2 : 1); i++) {
                inf.next_in = (Bytef *)(uintptr_t)parts[i].p;
                inf.avail_in = (uInt)parts[i].n;
                do {
                    uint8_t *dst = buf_reserve(&msg, 65536);
                    CHECK(dst);
                    inf.next_out = dst;
                    inf.avail_out = 65536;
                    int rc = inflate(&inf, Z_SYNC_FLUSH);
                    CHECK(rc == Z_OK || rc == Z_BUF_ERROR);
                    buf_commit(&msg, 65536 - inf.avail_out);
                } while (inf.avail_out == 0);
                CHECK(inf.avail_in == 0);
            }
        }
        if (fin) {
            if (op_msg == WS_OP_TEXT)
                CHECK(utf8_validate(UTF8_ACCEPT, head(&msg), buf_len(&msg)) == UTF8_ACCEPT);
            uint8_t hdr[5] = { op_msg, (uint8_t)(buf_len(&msg) >> 24),
                               (uint8_t)(buf_len(&msg) >> 16), (uint8_t)(buf_len(&msg) >> 8),
                               (uint8_t)buf_len(&msg) };
            CHECK(buf_append(got, hdr, 5) && buf_append(got, head(&msg), buf_len(&msg)));
            buf_clear(&msg);
            if (compressed && server_no_takeover) /* each reply must inflate alone */
                inflateReset(&inf);
        }
    }
    buf_free(&msg);
    inflateEnd(&inf);
}

/* ---- feeding ------------------------------------------------------------------------------ */

struct feeder {
    struct session s;
    struct session_limits lim;
    struct outq q;
    struct buf out;
    struct buf left; /* what session_feed did not take, fed again first */
    bool failed;     /* an error was reported */
};

/* Feeds what was left plus chunk[0..n), and again while the session has a backlog. Returns
 * false once the session is done. */
static bool feed(struct feeder *f, const uint8_t *chunk, size_t n)
{
    CHECK(buf_append(&f->left, chunk, n));
    for (unsigned turns = 0;; turns++) {
        CHECK(turns < 100000); /* every call makes progress */
        size_t len = buf_len(&f->left);
        /* An exact copy, so that a read past the end is caught; the original checks that
         * the bytes given back are restored. */
        uint8_t *copy = malloc(len ? len : 1);
        CHECK(copy);
        memcpy(copy, head(&f->left), len);
        const char *error;
        size_t used = session_feed(&f->s, &f->lim, copy, len, &f->q, &error);
        CHECK(used <= len);
        CHECK(outq_move(&f->q, 0, &f->out));
        f->failed |= error != NULL;
        bool done = f->s.state == SESSION_DONE;
        if (!done) {
            CHECK(!memcmp(copy + used, head(&f->left) + used, len - used));
            CHECK(used == len || session_has_backlog(&f->s));
        }
        free(copy);
        buf_consume(&f->left, used);
        CHECK(session_holds_streams(&f->s) == (zpool_in_use_bytes(f->lim.zpool) > 0));
        if (done)
            return false;
        if (!session_has_backlog(&f->s))
            return true;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *inflate_buf;
    static struct zpool *pool;
    if (!inflate_buf) {
        inflate_buf = malloc(DEFLATE_CHUNK);
        pool = zpool_new(UINT64_MAX);
    }
    if (size < 5)
        return 0;
    /* The parameters: data[0] negotiation, data[1] window bits, data[2] limits, data[3] the
     * inflate budget, data[4] how many chunk sizes follow. */
    bool server_no_takeover = data[0] & 1, client_no_takeover = data[0] & 2;
    bool negotiated = (data[0] & 0x0C) != 0x0C;
    unsigned server_bits = 8 + (data[1] & 7), client_bits = 8 + (data[1] >> 3 & 7);
    static const uint64_t max_message[4] = { 256, 4096, 70000, 1 << 20 };
    static const uint32_t coalesce[4] = { 16, 1024, 65536, 0 };
    static const uint64_t hold[4] = { 0, 64, 4096, UINT64_MAX };
    static const uint32_t turn[8] = { 0, 1, 100, 4096, 65536, 65537, 262144, 1 << 20 };
    struct feeder f = { 0 };
    f.lim = (struct session_limits){ .max_message = max_message[data[2] & 3],
                                     .coalesce_max = coalesce[data[2] >> 2 & 3],
                                     .hold_budget = hold[data[2] >> 4 & 3],
                                     .zpool = pool, .inflate_buf = inflate_buf,
                                     .inflate_turn = turn[data[3] & 7] };
    size_t nsizes = data[4] % 8;
    if (5 + nsizes > size)
        return 0;
    const uint8_t *sizes = data + 5;

    struct client c = { .exact = true, .takeover = negotiated && !client_no_takeover };
    unsigned bits = c.takeover ? (client_bits < 9 ? 9 : client_bits) : 15;
    CHECK(deflateInit2(&c.def, (data[3] >> 3) % 10, Z_DEFLATED, -(int)bits, 8,
                       Z_DEFAULT_STRATEGY) == Z_OK);
    struct script s = { data + 5 + nsizes, size - 5 - nsizes };
    build(&c, &s);
    deflateEnd(&c.def);

    /* outq_iov takes buf_head of the byte buffer even when the output is all references:
     * NULL + 0 when it never had memory (conn.c's always has, the handshake went through it). */
    CHECK(buf_reserve(&f.q.bytes, 1));
    if (negotiated)
        session_use_deflate(&f.s, server_no_takeover, client_no_takeover, server_bits,
                            client_bits);
    const uint8_t *w = head(&c.wire);
    size_t n = buf_len(&c.wire), pos = 0, k = 0;
    while (pos < n) {
        /* Two sizes multiplied: chunks from 1 byte to 64 KiB. */
        size_t chunk = n;
        if (nsizes) {
            chunk = (size_t)sizes[k % nsizes] * sizes[(k + 1) % nsizes] + 1;
            k++;
        }
        if (chunk > n - pos)
            chunk = n - pos;
        bool go_on = feed(&f, w + pos, chunk);
        pos += chunk;
        if (!go_on)
            break;
    }
    session_free(&f.s);
    CHECK(zpool_in_use_bytes(pool) == 0);

    struct buf got = { 0 };
    read_output(&f.out, server_no_takeover, &got);
    if (c.exact && !f.failed)
        CHECK(buf_len(&got) == buf_len(&c.expect) &&
              !memcmp(head(&got), head(&c.expect), buf_len(&got)));
    buf_free(&got);
    buf_free(&f.out);
    buf_free(&f.left);
    buf_free(&f.q.bytes);
    buf_free(&c.wire);
    buf_free(&c.expect);
    buf_free(&c.msg);
    return 0;
}
