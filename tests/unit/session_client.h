/* The client side of the session tests (test_session.c, test_session_deflate.c): masked client
 * frames built into a buffer, a session fed chunk by chunk (split.h's feeding modes), and the
 * server's frames read back the way a client would, checking what RFC 6455 requires of them.
 * A compressed reply (RSV1, RFC 7692) is handed to the test's own inflater. */
#ifndef WEBSOCK_TEST_SESSION_CLIENT_H
#define WEBSOCK_TEST_SESSION_CLIENT_H

#include "split.h"

#include "buf.h"
#include "close_code.h"
#include "deflate.h"
#include "frame.h"
#include "session.h"
#include "utf8.h"

/* ---- the client side: building masked frames -------------------------------------------------- */

/* Appends a masked client frame header declaring len bytes, with a minimal length encoding;
 * returns the mask (it changes with every frame). */
static inline const uint8_t *put_header(struct buf *w, bool fin, uint8_t op, uint64_t len)
{
    static uint8_t mask[4] = { 0x5A, 0x0F, 0xA5, 0xF0 };
    for (int i = 0; i < 4; i++)
        mask[i] = (uint8_t)(mask[i] * 7 + 13);
    uint8_t hdr[WS_MAX_HEADER];
    size_t n = 0;
    hdr[n++] = (uint8_t)((fin ? 0x80 : 0) | op);
    if (len < 126) {
        hdr[n++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xFFFF) {
        hdr[n++] = 0x80 | 126;
        hdr[n++] = (uint8_t)(len >> 8);
        hdr[n++] = (uint8_t)len;
    } else {
        hdr[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[n++] = (uint8_t)(len >> (8 * i));
    }
    memcpy(hdr + n, mask, 4);
    assert_true(buf_append(w, hdr, n + 4));
    return mask;
}

/* Appends a complete masked client frame. */
static inline void put_frame(struct buf *w, bool fin, uint8_t op, const void *payload, size_t len)
{
    const uint8_t *mask = put_header(w, fin, op, len);
    for (size_t i = 0; i < len; i++) {
        uint8_t b = ((const uint8_t *)payload)[i] ^ mask[i % 4];
        assert_true(buf_append(w, &b, 1));
    }
}

static inline void put_str(struct buf *w, bool fin, uint8_t op, const char *s)
{
    put_frame(w, fin, op, s, strlen(s));
}

static inline void put_close(struct buf *w, uint16_t code, const char *reason)
{
    uint8_t p[125] = { (uint8_t)(code >> 8), (uint8_t)code };
    size_t n = strlen(reason);
    assert_true(n <= 123);
    memcpy(p + 2, reason, n);
    put_frame(w, true, WS_OP_CLOSE, p, 2 + n);
}

/* ---- the server side: a session fed chunk by chunk ---------------------------------------------- */

struct run {
    struct session s;
    const struct session_limits *lim;
    struct buf out;                      /* everything the session sent, in order */
    struct outq q;                       /* one feed's output, moved to out at once (it may
                                            point into the chunk) */
    unsigned refs;                       /* payloads queued by reference, over all feeds */
    const char *error;                   /* the first error reported */
    size_t error_chunk_start, error_chunk_end;
    size_t consumed;
    unsigned deferred;                   /* calls that stopped at the inflate budget */
};

/* One session_feed call; returns the bytes it consumed. */
static inline size_t feed_once(struct run *r, uint8_t *chunk, size_t n, size_t pos)
{
    const char *err = "not set";
    size_t used = session_feed(&r->s, r->lim, chunk, n, &r->q, &err);
    r->refs += r->q.nref;
    assert_true(outq_move(&r->q, 0, &r->out));
    assert_true(used <= n);
    r->consumed += used;
    if (err && !r->error) {
        r->error = err;
        r->error_chunk_start = pos;
        r->error_chunk_end = pos + n;
    }
    return used;
}

/* Feeds a chunk; while the session has a backlog (a compressed message used its inflate
 * budget), what it left is fed again, first, from a copy of its own, as conn.c does. */
static inline bool feed_chunk(void *ctx, uint8_t *chunk, size_t n, size_t pos)
{
    struct run *r = ctx;
    size_t used = feed_once(r, chunk, n, pos);
    while (r->s.state != SESSION_DONE && (used < n || session_has_backlog(&r->s))) {
        assert_true(session_has_backlog(&r->s)); /* the only reason to leave bytes */
        assert_true(++r->deferred < 100000);
        uint8_t *left = malloc(n - used + 1);
        assert_non_null(left);
        memcpy(left, chunk + used, n - used);
        chunk = guard_copy(left, n - used);
        free(left);
        pos += used;
        n -= used;
        used = feed_once(r, chunk, n, pos);
    }
    return r->s.state != SESSION_DONE; /* the connection stops reading here */
}

static inline void run_start(struct run *r, const struct session_limits *lim)
{
    memset(r, 0, sizeof *r);
    r->lim = lim;
}

static inline void run_feed(struct run *r, const struct split *sp, const struct buf *wire)
{
    split_feed(sp, buf_head(wire), buf_len(wire), feed_chunk, r);
}

/* Feeds p[0..n) as one chunk. */
static inline void feed_whole(struct run *r, const uint8_t *p, size_t n)
{
    struct split whole = split_begin(n, 0);
    split_feed(&whole, p, n, feed_chunk, r);
}

static inline void run_free(struct run *r)
{
    session_free(&r->s);
    buf_free(&r->out);
    buf_free(&r->q.bytes);
}

/* ---- the client reading the server's frames ----------------------------------------------------- */

#define MAX_MESSAGES 16
#define MAX_PONGS 8

struct message {
    uint8_t opcode;
    struct buf data;     /* inflated, for a compressed message */
    size_t fragments;
    bool fragments_utf8; /* every fragment's payload is valid UTF-8 on its own */
    bool compressed;     /* RSV1 on its first frame */
    size_t wire_len;     /* payload bytes on the wire */
};

/* A client's inflater for compressed replies: appends what p[0..n) (a frame's payload, fin: the
 * message's last) inflates to, to out; false when it is not valid deflate data. */
struct inflater {
    bool (*run)(struct inflater *z, const uint8_t *p, size_t n, bool fin, struct buf *out);
    void (*reset)(struct inflater *z); /* a new connection: no context */
};

struct peer {
    size_t messages;
    struct message msg[MAX_MESSAGES];
    size_t pongs;
    struct buf pong[MAX_PONGS];
    size_t pings;
    int closes;
    int close_code;      /* -1: no Close; 0: a Close without a code */
    bool in_message;     /* the last data frame did not have FIN */
};

/* Parses every frame in out, checking what RFC 6455 requires of server frames: unmasked, no RSV
 * bits (but RSV1 on the first frame of a compressed message, when the client has an inflater z),
 * minimal lengths, control frames unfragmented and short, continuations only inside a message,
 * no frame at all after a Close. */
static inline void read_output_z(const struct split *sp, const struct buf *out, struct peer *pr,
                                 struct inflater *z)
{
    memset(pr, 0, sizeof *pr);
    pr->close_code = -1;
    if (z)
        z->reset(z);
    const uint8_t *p = buf_head(out), *end = p + buf_len(out);
    while (p < end) {
        split_assert(sp, end - p >= 2);
        if (pr->closes)
            fail_msg("[%s] a frame (opcode %u) follows our Close frame", sp->name, p[0] & 0x0Fu);
        bool fin = p[0] & 0x80;
        uint8_t op = p[0] & 0x0F;
        bool rsv1 = p[0] & WS_RSV1;
        split_assert_int(sp, p[0] & 0x30, 0);
        split_assert(sp, !rsv1 || (z && (op == WS_OP_TEXT || op == WS_OP_BINARY)));
        split_assert_int(sp, p[1] & 0x80, 0);
        uint64_t len = p[1] & 0x7F;
        size_t h = 2;
        if (len == 126) {
            split_assert(sp, end - p >= 4);
            len = (uint64_t)p[2] << 8 | p[3], h = 4;
            split_assert(sp, len >= 126);
        } else if (len == 127) {
            split_assert(sp, end - p >= 10);
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | p[2 + i];
            h = 10;
            split_assert(sp, len > 0xFFFF && len >> 63 == 0);
        }
        split_assert(sp, (uint64_t)(end - p) - h >= len);
        const uint8_t *payload = p + h;
        p += h + len;

        if (ws_opcode_is_control(op)) {
            split_assert(sp, fin && len <= WS_MAX_CONTROL_PAYLOAD);
            if (op == WS_OP_PONG) {
                split_assert(sp, pr->pongs < MAX_PONGS);
                assert_true(buf_append(&pr->pong[pr->pongs++], payload, len));
            } else if (op == WS_OP_PING) {
                pr->pings++;
            } else {
                split_assert_int(sp, op, WS_OP_CLOSE);
                split_assert(sp, len != 1);
                pr->closes++;
                pr->close_code = len >= 2 ? payload[0] << 8 | payload[1] : 0;
            }
            continue;
        }
        split_assert(sp, op <= WS_OP_BINARY);
        split_assert_int(sp, op == WS_OP_CONT, pr->in_message);
        if (op != WS_OP_CONT) {
            split_assert(sp, pr->messages < MAX_MESSAGES);
            struct message *m = &pr->msg[pr->messages++];
            m->opcode = op;
            m->fragments_utf8 = true;
            m->compressed = rsv1;
        }
        struct message *m = &pr->msg[pr->messages - 1];
        m->fragments++;
        m->wire_len += len;
        if (m->compressed) {
            if (!z->run(z, payload, len, fin, &m->data))
                fail_msg("[%s] message %zu does not inflate", sp->name, pr->messages - 1);
        } else {
            assert_true(buf_append(&m->data, payload, len));
        }
        if (utf8_validate(UTF8_ACCEPT, payload, len) != UTF8_ACCEPT)
            m->fragments_utf8 = false;
        pr->in_message = !fin;
    }
}

static inline void read_output(const struct split *sp, const struct buf *out, struct peer *pr)
{
    read_output_z(sp, out, pr, NULL);
}

static inline void peer_free(struct peer *pr)
{
    for (size_t i = 0; i < MAX_MESSAGES; i++)
        buf_free(&pr->msg[i].data);
    for (size_t i = 0; i < MAX_PONGS; i++)
        buf_free(&pr->pong[i]);
}

/* Feeds wire as sp says to a fresh session (after setup, if any: what the handshake agreed)
 * and reads what it sent (compressed replies through z). */
static inline void run_and_read_z(struct run *r, struct peer *pr, const struct split *sp,
                                  const struct buf *wire, const struct session_limits *lim,
                                  void (*setup)(struct session *s), struct inflater *z)
{
    run_start(r, lim);
    if (setup)
        setup(&r->s);
    run_feed(r, sp, wire);
    read_output_z(sp, &r->out, pr, z);
}

static inline void run_and_read(struct run *r, struct peer *pr, const struct split *sp,
                                const struct buf *wire, const struct session_limits *lim)
{
    run_and_read_z(r, pr, sp, wire, lim, NULL, NULL);
}

/* Frees both; the session must have given back every zlib stream it took. */
static inline void run_end(struct run *r, struct peer *pr)
{
    struct zpool *pool = r->lim->zpool;
    peer_free(pr);
    run_free(r);
    if (pool)
        assert_int_equal(zpool_in_use_bytes(pool), 0);
}

static inline void assert_message(const struct split *sp, const struct message *m, uint8_t opcode,
                           const void *data, size_t len)
{
    split_assert_int(sp, m->opcode, opcode);
    split_assert_int(sp, buf_len(&m->data), len);
    split_assert_mem(sp, buf_head(&m->data), data, len);
}

/* Runs wire under every split and checks the session failed with a Close carrying `code`, in
 * the chunk holding byte `first` or later but no later than the one holding byte `latest`. */
static inline void check_fails_between_z(const struct buf *wire, const struct session_limits *lim,
                                         uint16_t code, size_t first, size_t latest,
                                         void (*setup)(struct session *s), struct inflater *z)
{
    for_each_split(sp, buf_len(wire)) {
        struct run r;
        struct peer pr;
        run_and_read_z(&r, &pr, &sp, wire, lim, setup, z);
        split_assert_int(&sp, r.s.state, SESSION_DONE);
        split_assert(&sp, r.error != NULL);
        split_assert_int(&sp, pr.closes, 1);
        split_assert_int(&sp, pr.close_code, code);
        split_assert(&sp, r.error_chunk_end > first && r.error_chunk_start <= latest);
        run_end(&r, &pr);
    }
}

static inline void check_fails_between(const struct buf *wire, const struct session_limits *lim,
                                       uint16_t code, size_t first, size_t latest)
{
    check_fails_between_z(wire, lim, code, first, latest, NULL, NULL);
}

static inline void check_fails_with(const struct buf *wire, const struct session_limits *lim,
                             uint16_t code)
{
    check_fails_between(wire, lim, code, 0, buf_len(wire) - 1);
}

#endif
