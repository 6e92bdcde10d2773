/* session_feed with permessage-deflate (RFC 7692): compressed client messages, built here with
 * zlib as a client would (raw deflate, sync flush, the 4-byte tail left off, RSV1 on the first
 * frame), fed whole, byte by byte and at split points; the echo read back through the client's
 * own inflater, which keeps its context across messages unless server_no_context_takeover.
 * After every run the session must have given its zlib streams back to the pool. */
#include <zlib.h>

#include "session_client.h"

#include "defaults.h"
#include "deflate.h"

static struct zpool *pool;
static uint8_t *inflate_buf;

static struct session_limits zlimits(uint64_t max_message, uint32_t inflate_turn)
{
    return (struct session_limits){ .max_message = max_message, .coalesce_max = 1024,
                                    .hold_budget = UINT64_MAX, .zpool = pool,
                                    .inflate_buf = inflate_buf, .inflate_turn = inflate_turn };
}

/* What the handshake agreed; the client's deflater and inflater follow it. */
struct pmd {
    bool server_no_takeover, client_no_takeover;
    unsigned server_bits, client_bits;
};

static const struct pmd pmd_default = { false, true, 15, 15 };           /* --deflate on */
static const struct pmd pmd_server_no_takeover = { true, true, 15, 15 };
static const struct pmd pmd_takeover = { false, false, 15, 10 };         /* --deflate takeover */

static const struct pmd *agreed; /* for the setup hook of run_and_read_z */

static void use_deflate(struct session *s)
{
    session_use_deflate(s, agreed->server_no_takeover, agreed->client_no_takeover,
                        agreed->server_bits, agreed->client_bits);
}

/* ---- the client's compressor ------------------------------------------------------------- */

struct zsender {
    z_stream zs;
    bool keep; /* the client takes its context over from message to message */
};

static void zsender_init(struct zsender *c, const struct pmd *p)
{
    memset(c, 0, sizeof *c);
    c->keep = !p->client_no_takeover;
    int bits = c->keep ? (int)p->client_bits : 15;
    assert_int_equal(deflateInit2(&c->zs, 6, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
}

/* Compresses p[0..n), the next piece of a message, into out (emptied first); fin ends the
 * message: its 4-byte sync-flush tail is left off. */
static void zsend(struct zsender *c, const void *p, size_t n, bool fin, struct buf *out)
{
    buf_clear(out);
    c->zs.next_in = (Bytef *)(uintptr_t)p;
    c->zs.avail_in = (uInt)n;
    do {
        uint8_t *dst = buf_reserve(out, 65536);
        assert_non_null(dst);
        c->zs.next_out = dst;
        c->zs.avail_out = 65536;
        int rc = deflate(&c->zs, Z_SYNC_FLUSH);
        assert_true(rc == Z_OK || rc == Z_BUF_ERROR);
        buf_commit(out, 65536 - c->zs.avail_out);
    } while (c->zs.avail_out == 0);
    if (fin) {
        assert_true(buf_len(out) >= 4);
        assert_memory_equal(buf_head(out) + buf_len(out) - 4, "\0\0\xff\xff", 4);
        out->end -= 4;
        if (!c->keep)
            assert_int_equal(deflateReset(&c->zs), Z_OK);
    }
}

/* Appends a frame whose payload is p[0..n) compressed as the next piece of the message (op:
 * the header's opcode and RSV bits as they are to be sent). */
static void put_z_piece(struct zsender *c, struct buf *w, bool fin, uint8_t op, const void *p,
                        size_t n)
{
    struct buf z = { 0 };
    zsend(c, p, n, fin, &z);
    put_frame(w, fin, op, buf_head(&z), buf_len(&z));
    buf_free(&z);
}

/* Appends a message compressed as one frame. */
static void put_z(struct zsender *c, struct buf *w, uint8_t op, const void *p, size_t n)
{
    put_z_piece(c, w, true, op | WS_RSV1, p, n);
}

/* Appends a message compressed as `frames` fragments, each piece flushed on its own. */
static void put_z_fragments(struct zsender *c, struct buf *w, uint8_t op, const void *p, size_t n,
                            size_t frames)
{
    for (size_t i = 0; i < frames; i++) {
        size_t from = n * i / frames, to = n * (i + 1) / frames;
        put_z_piece(c, w, i + 1 == frames, i ? WS_OP_CONT : op | WS_RSV1,
                    (const uint8_t *)p + from, to - from);
    }
}

/* One message compressed by a client of these parameters. */
static void put_z_once(struct buf *w, const struct pmd *p, uint8_t op, const void *data, size_t n)
{
    struct zsender c;
    zsender_init(&c, p);
    put_z(&c, w, op, data, n);
    deflateEnd(&c.zs);
}

/* ---- the client's inflater --------------------------------------------------------------- */

struct zreader {
    struct inflater base;
    z_stream zs;
    bool keep; /* the server takes its context over: keep ours */
};

static bool zreader_run(struct inflater *z, const uint8_t *p, size_t n, bool fin, struct buf *out)
{
    struct zreader *r = (struct zreader *)z;
    static const uint8_t tail[4] = { 0, 0, 0xff, 0xff };
    for (int part = 0; part < (fin ? 2 : 1); part++) {
        r->zs.next_in = (Bytef *)(uintptr_t)(part ? tail : p);
        r->zs.avail_in = (uInt)(part ? sizeof tail : n);
        do {
            uint8_t *dst = buf_reserve(out, 65536);
            assert_non_null(dst);
            r->zs.next_out = dst;
            r->zs.avail_out = 65536;
            int rc = inflate(&r->zs, Z_SYNC_FLUSH);
            if (rc != Z_OK && rc != Z_BUF_ERROR)
                return false;
            buf_commit(out, 65536 - r->zs.avail_out);
        } while (r->zs.avail_out == 0);
        if (r->zs.avail_in)
            return false;
    }
    if (fin && !r->keep)
        inflateReset(&r->zs);
    return true;
}

static void zreader_reset(struct inflater *z)
{
    inflateReset(&((struct zreader *)z)->zs);
}

static void zreader_init(struct zreader *r, const struct pmd *p)
{
    memset(r, 0, sizeof *r);
    r->base.run = zreader_run;
    r->base.reset = zreader_reset;
    r->keep = !p->server_no_takeover;
    /* The agreed window: a server reaching back further than it agreed fails to inflate. */
    assert_int_equal(inflateInit2(&r->zs, -(int)p->server_bits), Z_OK);
}

/* ---- running --------------------------------------------------------------------------- */

struct zrun {
    struct run r;
    struct peer pr;
    struct zreader reader;
};

static void zrun(struct zrun *z, const struct split *sp, const struct buf *wire,
                 const struct session_limits *lim, const struct pmd *p)
{
    agreed = p;
    zreader_init(&z->reader, p);
    run_and_read_z(&z->r, &z->pr, sp, wire, lim, use_deflate, &z->reader.base);
}

static void zrun_end(struct zrun *z)
{
    inflateEnd(&z->reader.zs);
    run_end(&z->r, &z->pr);
}

/* Every feeding of the wire (cut points near the ends only, for long wires) echoes the
 * messages want[0..n) intact, as messages the client reads, and nothing fails. Returns the
 * messages' wire sizes when fed whole in wire_len (when not NULL) for the caller's checks. */
struct want {
    uint8_t opcode;
    const void *data;
    size_t len;
    int compressed;     /* fed whole: 1 RSV1 expected, 0 plain expected, -1 either */
    size_t min_frames;  /* fed whole: the echo has at least this many frames */
};

static void check_z_echo_near_ends(const struct buf *wire, const struct session_limits *lim,
                                   const struct pmd *p, const struct want *want, size_t n,
                                   size_t *wire_len, size_t edge)
{
    for_each_split_near_ends(sp, buf_len(wire), edge) {
        struct zrun z;
        zrun(&z, &sp, wire, lim, p);
        split_assert(&sp, z.r.error == NULL);
        split_assert_int(&sp, z.r.s.state, SESSION_OPEN);
        split_assert_int(&sp, z.r.consumed, buf_len(wire));
        split_assert(&sp, !session_holds_streams(&z.r.s));
        split_assert_int(&sp, z.pr.messages, n);
        split_assert(&sp, !z.pr.in_message);
        split_assert_int(&sp, z.pr.closes, 0);
        for (size_t i = 0; i < n; i++) {
            const struct message *m = &z.pr.msg[i];
            assert_message(&sp, m, want[i].opcode, want[i].data, want[i].len);
            /* Compressed or plain is decided on the first inflate step: a message that
             * arrives in small pieces is measured on its first piece and may go back plain. */
            if (sp.mode != SPLIT_WHOLE)
                continue;
            if (want[i].compressed >= 0)
                split_assert_int(&sp, m->compressed, want[i].compressed);
            split_assert(&sp, m->fragments >= want[i].min_frames);
            if (wire_len)
                wire_len[i] = m->wire_len;
        }
        zrun_end(&z);
    }
}

static void check_z_echo(const struct buf *wire, const struct session_limits *lim,
                         const struct pmd *p, const struct want *want, size_t n,
                         size_t *wire_len)
{
    check_z_echo_near_ends(wire, lim, p, want, n, wire_len, 48);
}

/* Text that deflate shrinks about threefold: words drawn from a small vocabulary. */
static void make_text(char *out, size_t n, uint32_t seed)
{
    static const char *const words[] = { "echo ", "frame ", "deflate ", "window ", "κόσμε ",
                                          "socket ", "mask ", "inflate ", "message ", "zlib " };
    size_t i = 0;
    while (i < n) {
        seed = seed * 1103515245u + 12345u;
        const char *w = words[(seed >> 16) % 10];
        size_t len = strlen(w);
        if (i + len > n) { /* pad the end with ASCII, whole code points only */
            memset(out + i, '.', n - i);
            break;
        }
        memcpy(out + i, w, len);
        i += len;
    }
}

/* Letters a to h at random: deflate shrinks them by about half, mostly as literals, so its
 * output comes steadily (words compress so well that it would hold them all to the end). */
static void make_letters(char *out, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        out[i] = (char)('a' + (seed >> 29));
    }
}

/* Bytes deflate cannot shrink. */
static void make_noise(uint8_t *out, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        out[i] = (uint8_t)(seed >> 23);
    }
}

/* ---- echo --------------------------------------------------------------------------------- */

static void check_one_message(uint8_t op, const void *data, size_t len, int compressed)
{
    struct buf wire = { 0 };
    put_z_once(&wire, &pmd_default, op, data, len);
    struct session_limits lim = zlimits(1 << 20, 0);
    struct want w = { op, data, len, compressed, 1 };
    check_z_echo(&wire, &lim, &pmd_default, &w, 1, NULL);
    buf_free(&wire);
}

static void echo_text_compressed(void **state)
{
    (void)state;
    char text[600];
    make_text(text, sizeof text, 1);
    check_one_message(WS_OP_TEXT, text, sizeof text, 1);
}

static void echo_binary_compressed(void **state)
{
    (void)state;
    uint8_t data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i % 7 * 40);
    check_one_message(WS_OP_BINARY, data, sizeof data, 1);
}

static void small_message_echoed_plain(void **state)
{
    (void)state;
    static const char text[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; /* 30 < DEFLATE_MIN_SIZE */
    assert_true(sizeof text - 1 < DEFLATE_MIN_SIZE);
    check_one_message(WS_OP_TEXT, text, sizeof text - 1, 0);
}

static void incompressible_message_echoed_plain(void **state)
{
    (void)state;
    uint8_t data[2000];
    make_noise(data, sizeof data, 7);
    check_one_message(WS_OP_BINARY, data, sizeof data, 0);
}

static void plain_message_on_deflate_connection_echoed_plain(void **state)
{
    (void)state;
    char text[600];
    make_text(text, sizeof text, 3);
    struct buf wire = { 0 };
    put_frame(&wire, true, WS_OP_TEXT, text, sizeof text);
    struct session_limits lim = zlimits(1 << 20, 0);
    struct want w = { WS_OP_TEXT, text, sizeof text, 0, 1 };
    check_z_echo(&wire, &lim, &pmd_default, &w, 1, NULL);
    buf_free(&wire);
}

/* Larger than one inflate step: the echo streams out as compressed fragments. */
static void large_message_streams_compressed_fragments(void **state)
{
    (void)state;
    size_t n = 3 * DEFLATE_CHUNK + 1000;
    char *text = malloc(n);
    make_text(text, n, 5);
    struct buf wire = { 0 };
    put_z_once(&wire, &pmd_default, WS_OP_TEXT, text, n);
    struct session_limits lim = zlimits(1 << 20, 0);
    struct want w = { WS_OP_TEXT, text, n, 1, 2 };
    check_z_echo(&wire, &lim, &pmd_default, &w, 1, NULL);
    buf_free(&wire);
    free(text);
}

/* Four fragments of 40 KiB: the deflater's output goes out as it comes, in several frames. */
static void fragmented_compressed_message_streams_back(void **state)
{
    (void)state;
    size_t n = 4 * 40000;
    char *text = malloc(n);
    make_letters(text, n, 9);
    struct buf wire = { 0 };
    struct zsender c;
    zsender_init(&c, &pmd_default);
    put_z_fragments(&c, &wire, WS_OP_TEXT, text, n, 4);
    deflateEnd(&c.zs);
    struct session_limits lim = zlimits(1 << 20, 0);
    struct want w = { WS_OP_TEXT, text, n, 1, 2 };
    check_z_echo(&wire, &lim, &pmd_default, &w, 1, NULL);
    buf_free(&wire);
    free(text);
}

/* An empty compressed message: a lone empty stored block's first byte, or nothing at all. */
static void empty_compressed_messages_echoed_empty(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    put_frame(&wire, true, WS_OP_TEXT | WS_RSV1, "\x00", 1);
    put_frame(&wire, true, WS_OP_BINARY | WS_RSV1, "", 0);
    struct session_limits lim = zlimits(1 << 20, 0);
    struct want w[2] = { { WS_OP_TEXT, "", 0, -1, 1 }, { WS_OP_BINARY, "", 0, -1, 1 } };
    check_z_echo(&wire, &lim, &pmd_default, w, 2, NULL);
    buf_free(&wire);
}

/* ---- context takeover --------------------------------------------------------------------- */

/* Four equal compressed messages echoed intact under p; their replies' wire sizes. */
static void echo_four_equal(const struct pmd *p, size_t wire_len[4])
{
    char text[400];
    make_text(text, sizeof text, 11);
    struct buf wire = { 0 };
    struct want w[4];
    for (int i = 0; i < 4; i++) {
        put_z_once(&wire, p, WS_OP_TEXT, text, sizeof text);
        w[i] = (struct want){ WS_OP_TEXT, text, sizeof text, 1, 1 };
    }
    struct session_limits lim = zlimits(1 << 20, 0);
    check_z_echo(&wire, &lim, p, w, 4, wire_len);
    buf_free(&wire);
}

/* The server primes each reply with what it sent before, so the later replies are far
 * smaller, and the client's inflater (which keeps its window) reads them. */
static void history_makes_later_replies_smaller(void **state)
{
    (void)state;
    size_t wire_len[4];
    echo_four_equal(&pmd_default, wire_len);
    for (int i = 1; i < 4; i++)
        assert_true(wire_len[i] * 4 < wire_len[0]);
}

/* server_no_context_takeover: every reply inflates alone (the client resets its inflater), so
 * equal messages give equal replies. */
static void server_no_takeover_replies_inflate_alone(void **state)
{
    (void)state;
    size_t wire_len[4];
    echo_four_equal(&pmd_server_no_takeover, wire_len);
    for (int i = 1; i < 4; i++)
        assert_int_equal(wire_len[i], wire_len[0]);
}

/* --deflate takeover with client_max_window_bits=10: the client's later messages refer back
 * to its earlier ones (a 1 KiB window), which the server keeps for it. */
static void client_takeover_window_10(void **state)
{
    (void)state;
    char text[700];
    make_text(text, sizeof text, 13);
    struct buf wire = { 0 }, z = { 0 };
    struct zsender c;
    zsender_init(&c, &pmd_takeover);
    struct want w[5];
    size_t first = 0;
    for (int i = 0; i < 4; i++) {
        zsend(&c, text, sizeof text, true, &z);
        if (i == 0)
            first = buf_len(&z);
        else
            assert_true(buf_len(&z) * 4 < first); /* it does refer back */
        put_frame(&wire, true, WS_OP_TEXT | WS_RSV1, buf_head(&z), buf_len(&z));
        w[i] = (struct want){ WS_OP_TEXT, text, sizeof text, 1, 1 };
    }
    /* and a fragmented one whose pieces refer back too */
    put_z_fragments(&c, &wire, WS_OP_TEXT, text, sizeof text, 3);
    w[4] = (struct want){ WS_OP_TEXT, text, sizeof text, 1, 1 };
    deflateEnd(&c.zs);
    buf_free(&z);
    struct session_limits lim = zlimits(1 << 20, 0);
    check_z_echo(&wire, &lim, &pmd_takeover, w, 5, NULL);
    buf_free(&wire);
}

/* ---- failures ----------------------------------------------------------------------------- */

static void check_z_fails_between(const struct buf *wire, const struct session_limits *lim,
                                  uint16_t code, size_t first, size_t latest)
{
    struct zreader reader;
    agreed = &pmd_default;
    zreader_init(&reader, &pmd_default);
    check_fails_between_z(wire, lim, code, first, latest, use_deflate, &reader.base);
    inflateEnd(&reader.zs);
}

static void check_z_fails(const struct buf *wire, uint16_t code)
{
    struct session_limits lim = zlimits(1 << 20, 0);
    check_z_fails_between(wire, &lim, code, 0, buf_len(wire) - 1);
}

/* Inflated text is checked as it comes out: the Close goes before the final frame is read. */
static void invalid_utf8_in_compressed_text_1007_before_fin(void **state)
{
    (void)state;
    char bad[200];
    make_text(bad, sizeof bad, 17);
    bad[50] = (char)0xC0; /* never valid */
    struct buf wire = { 0 };
    struct zsender c;
    zsender_init(&c, &pmd_default);
    put_z_piece(&c, &wire, false, WS_OP_TEXT | WS_RSV1, bad, sizeof bad);
    size_t fin_at = buf_len(&wire);
    put_z_piece(&c, &wire, true, WS_OP_CONT, "tail", 4);
    deflateEnd(&c.zs);
    struct session_limits lim = zlimits(1 << 20, 0);
    check_z_fails_between(&wire, &lim, WS_CLOSE_INVALID_DATA, 0, fin_at - 1);
    buf_free(&wire);
}

static void truncated_code_point_at_end_of_compressed_text_1007(void **state)
{
    (void)state;
    char text[100];
    make_text(text, sizeof text, 19);
    memcpy(text + sizeof text - 2, "\xE2\x82", 2); /* a euro sign cut short */
    struct buf wire = { 0 };
    put_z_once(&wire, &pmd_default, WS_OP_TEXT, text, sizeof text);
    check_z_fails(&wire, WS_CLOSE_INVALID_DATA);
    buf_free(&wire);
}

static void corrupt_deflate_data_1007(void **state)
{
    (void)state;
    static const uint8_t reserved_block[] = { 0xFF, 0xFF, 0xFF, 0xFF }; /* BTYPE 11 */
    struct buf wire = { 0 };
    put_frame(&wire, true, WS_OP_BINARY | WS_RSV1, reserved_block, sizeof reserved_block);
    check_z_fails(&wire, WS_CLOSE_INVALID_DATA);
    buf_free(&wire);

    /* a client that refers back to a dictionary it agreed not to keep */
    static const char dict[] = "the context the client said it would not keep";
    struct zsender c;
    zsender_init(&c, &pmd_default);
    assert_int_equal(deflateSetDictionary(&c.zs, (const Bytef *)dict, sizeof dict - 1), Z_OK);
    put_z(&c, &wire, WS_OP_TEXT, dict, sizeof dict - 1);
    deflateEnd(&c.zs);
    check_z_fails(&wire, WS_CLOSE_INVALID_DATA);
    buf_free(&wire);
}

/* --max-message counts inflated bytes: 1009, having inflated at most one byte over. */
static void max_message_counts_inflated_bytes_1009(void **state)
{
    (void)state;
    enum { MAX = 1000 };
    static uint8_t zeros[50000];
    struct buf wire = { 0 };
    put_z_once(&wire, &pmd_default, WS_OP_BINARY, zeros, sizeof zeros);
    assert_true(buf_len(&wire) < MAX); /* small on the wire */
    struct session_limits lim = zlimits(MAX, 0);
    for_each_split_near_ends(sp, buf_len(&wire), 16) {
        memset(inflate_buf, 0xAA, DEFLATE_CHUNK);
        struct zrun z;
        zrun(&z, &sp, &wire, &lim, &pmd_default);
        split_assert_int(&sp, z.pr.close_code, WS_CLOSE_TOO_BIG);
        split_assert(&sp, z.pr.messages == 0 || z.pr.in_message); /* never a whole echo */
        size_t written = 0;
        while (written < DEFLATE_CHUNK && inflate_buf[written] != 0xAA)
            written++;
        split_assert(&sp, written <= MAX + 1);
        zrun_end(&z);
    }
    buf_free(&wire);
}

static void message_of_max_inflated_size_echoed(void **state)
{
    (void)state;
    enum { MAX = 1000 };
    char text[MAX];
    make_text(text, sizeof text, 23);
    struct buf wire = { 0 };
    put_z_once(&wire, &pmd_default, WS_OP_TEXT, text, sizeof text);
    struct session_limits lim = zlimits(MAX, 0);
    struct want w = { WS_OP_TEXT, text, sizeof text, 1, 1 };
    check_z_echo(&wire, &lim, &pmd_default, &w, 1, NULL);
    buf_free(&wire);
}

static void rsv1_without_deflate_1002(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    put_z_once(&wire, &pmd_default, WS_OP_TEXT, "hello hello hello hello hello hello", 35);
    struct session_limits lim = zlimits(1 << 20, 0);
    check_fails_between(&wire, &lim, WS_CLOSE_PROTOCOL_ERROR, 0, 0);
    buf_free(&wire);
}

static void rsv1_on_continuation_1002(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    put_str(&wire, false, WS_OP_TEXT, "plain start, ");
    size_t bad = buf_len(&wire);
    put_str(&wire, true, WS_OP_CONT | WS_RSV1, "then RSV1");
    struct session_limits lim = zlimits(1 << 20, 0);
    check_z_fails_between(&wire, &lim, WS_CLOSE_PROTOCOL_ERROR, bad, bad);
    buf_free(&wire);

    /* on the continuation of a compressed message as well */
    struct zsender c;
    zsender_init(&c, &pmd_default);
    put_z_piece(&c, &wire, false, WS_OP_TEXT | WS_RSV1, "compressed start, ", 18);
    bad = buf_len(&wire);
    put_z_piece(&c, &wire, true, WS_OP_CONT | WS_RSV1, "and its end", 11);
    deflateEnd(&c.zs);
    check_z_fails_between(&wire, &lim, WS_CLOSE_PROTOCOL_ERROR, bad, bad);
    buf_free(&wire);
}

static void rsv1_on_control_frames_1002(void **state)
{
    (void)state;
    static const uint8_t ops[] = { WS_OP_PING, WS_OP_PONG, WS_OP_CLOSE };
    for (size_t i = 0; i < sizeof ops; i++) {
        struct buf wire = { 0 };
        put_frame(&wire, true, ops[i] | WS_RSV1, "", 0);
        check_z_fails(&wire, WS_CLOSE_PROTOCOL_ERROR);
        buf_free(&wire);
    }
}

static void rsv2_and_rsv3_1002(void **state)
{
    (void)state;
    static const uint8_t rsv[] = { 0x20, 0x10, 0x60, 0x50 };
    for (size_t i = 0; i < sizeof rsv; i++) {
        struct buf wire = { 0 };
        put_frame(&wire, true, WS_OP_TEXT | rsv[i], "x", 1);
        check_z_fails(&wire, WS_CLOSE_PROTOCOL_ERROR);
        buf_free(&wire);
    }
}

/* ---- control frames inside a compressed message ------------------------------------------- */

static void interleaved_ping_in_compressed_message(void **state)
{
    (void)state;
    char text[2000];
    make_text(text, sizeof text, 29);
    struct buf wire = { 0 };
    struct zsender c;
    zsender_init(&c, &pmd_default);
    put_z_piece(&c, &wire, false, WS_OP_TEXT | WS_RSV1, text, 1000);
    put_str(&wire, true, WS_OP_PING, "are you there");
    put_z_piece(&c, &wire, true, WS_OP_CONT, text + 1000, 1000);
    deflateEnd(&c.zs);
    struct session_limits lim = zlimits(1 << 20, 0);
    for_each_split_near_ends(sp, buf_len(&wire), 48) {
        struct zrun zr;
        zrun(&zr, &sp, &wire, &lim, &pmd_default);
        split_assert(&sp, zr.r.error == NULL);
        split_assert_int(&sp, zr.pr.pongs, 1);
        split_assert_int(&sp, buf_len(&zr.pr.pong[0]), 13);
        split_assert_mem(&sp, buf_head(&zr.pr.pong[0]), "are you there", 13);
        split_assert_int(&sp, zr.pr.messages, 1);
        split_assert(&sp, zr.pr.msg[0].compressed || sp.mode != SPLIT_WHOLE);
        assert_message(&sp, &zr.pr.msg[0], WS_OP_TEXT, text, sizeof text);
        zrun_end(&zr);
    }
    buf_free(&wire);
}

/* ---- the inflate budget (fairness) -------------------------------------------------------- */

/* Four frames of 1 MiB of zeros each (a kilobyte each on the wire) with a 256 KiB budget per
 * call: a call stops early, the caller feeds what it left (or nothing) again, and the 4 MiB
 * echo comes out whole. */
static void build_bomb(struct buf *wire, size_t frames)
{
    uint8_t *zeros = calloc(1, 1 << 20);
    struct zsender c;
    zsender_init(&c, &pmd_default);
    for (size_t i = 0; i < frames; i++)
        put_z_piece(&c, wire, i + 1 == frames, i ? WS_OP_CONT : WS_OP_BINARY | WS_RSV1, zeros,
                    1 << 20);
    deflateEnd(&c.zs);
    free(zeros);
}

static void inflate_budget_defers_and_refeed_finishes(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    build_bomb(&wire, 4);
    uint8_t *zeros = calloc(1, 4 << 20);
    struct session_limits lim = zlimits(8 << 20, DEFLATE_TURN);
    struct want w = { WS_OP_BINARY, zeros, 4 << 20, 1, 1 }; /* zeros: deflate holds them */
    check_z_echo_near_ends(&wire, &lim, &pmd_default, &w, 1, NULL, 4);

    /* by hand, as conn.c: one call, then what it left (perhaps nothing) fed again first */
    struct zrun z;
    struct split whole = split_begin(buf_len(&wire), 0);
    agreed = &pmd_default;
    run_start(&z.r, &lim);
    use_deflate(&z.r.s);
    uint8_t *in = malloc(buf_len(&wire));
    memcpy(in, buf_head(&wire), buf_len(&wire));
    size_t n = buf_len(&wire);
    size_t used = feed_once(&z.r, in, n, 0);
    assert_true(used < n || session_has_backlog(&z.r.s));
    assert_memory_equal(in + used, buf_head(&wire) + used, n - used); /* given back as it came */
    unsigned turns = 1;
    while (used < n || session_has_backlog(&z.r.s)) {
        memmove(in, in + used, n - used);
        n -= used;
        used = feed_once(&z.r, in, n, 0);
        assert_true(++turns < 1000);
    }
    assert_true(turns >= (4 << 20) / DEFLATE_TURN); /* never more than the budget per call */
    assert_null(z.r.error);
    assert_int_equal(z.r.consumed, buf_len(&wire));
    zreader_init(&z.reader, &pmd_default);
    read_output_z(&whole, &z.r.out, &z.pr, &z.reader.base);
    assert_int_equal(z.pr.messages, 1);
    assert_message(&whole, &z.pr.msg[0], WS_OP_BINARY, zeros, 4 << 20);
    zrun_end(&z);
    free(in);
    free(zeros);
    buf_free(&wire);
}

/* What a call left, followed by the next read's bytes (another message), fed as one. */
static void leftover_then_new_bytes(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    build_bomb(&wire, 2);
    size_t first = buf_len(&wire);
    char text[500];
    make_text(text, sizeof text, 31);
    put_z_once(&wire, &pmd_default, WS_OP_TEXT, text, sizeof text);
    struct session_limits lim = zlimits(8 << 20, DEFLATE_TURN);
    struct zrun z;
    struct split whole = split_begin(buf_len(&wire), 0);
    agreed = &pmd_default;
    run_start(&z.r, &lim);
    use_deflate(&z.r.s);
    uint8_t *in = malloc(buf_len(&wire));
    memcpy(in, buf_head(&wire), first);
    size_t n = first, used = feed_once(&z.r, in, n, 0);
    assert_true(used < n || session_has_backlog(&z.r.s));
    memmove(in, in + used, n - used); /* the leftover, then the next read */
    n -= used;
    memcpy(in + n, buf_head(&wire) + first, buf_len(&wire) - first);
    n += buf_len(&wire) - first;
    unsigned turns = 0;
    do {
        used = feed_once(&z.r, in, n, 0);
        memmove(in, in + used, n - used);
        n -= used;
        assert_true(++turns < 1000 && z.r.s.state == SESSION_OPEN);
    } while (n || session_has_backlog(&z.r.s));
    assert_null(z.r.error);
    zreader_init(&z.reader, &pmd_default);
    read_output_z(&whole, &z.r.out, &z.pr, &z.reader.base);
    assert_int_equal(z.pr.messages, 2);
    assert_int_equal(buf_len(&z.pr.msg[0].data), 2 << 20);
    assert_message(&whole, &z.pr.msg[1], WS_OP_TEXT, text, sizeof text);
    zrun_end(&z);
    free(in);
    buf_free(&wire);
}

/* ---- streams and memory ------------------------------------------------------------------- */

/* Mid-message the session holds its streams; a failure or session_free gives them back. */
static void streams_held_only_while_a_message_is_in_flight(void **state)
{
    (void)state;
    char text[400];
    make_text(text, sizeof text, 37);
    struct buf wire = { 0 };
    struct zsender c;
    zsender_init(&c, &pmd_default);
    put_z_piece(&c, &wire, false, WS_OP_TEXT | WS_RSV1, text, sizeof text);
    deflateEnd(&c.zs);
    struct session_limits lim = zlimits(1 << 20, 0);
    struct zrun zr;
    struct split whole = split_begin(buf_len(&wire), 0);
    zrun(&zr, &whole, &wire, &lim, &pmd_default);
    assert_null(zr.r.error);
    assert_true(session_holds_streams(&zr.r.s));
    assert_true(zpool_in_use_bytes(pool) > 0);
    zrun_end(&zr); /* checks the pool is back to zero */
    buf_free(&wire);
}

static void counts_compressed_bytes(void **state)
{
    (void)state;
    char text[3000];
    make_text(text, sizeof text, 41);
    struct buf wire = { 0 };
    put_z_once(&wire, &pmd_default, WS_OP_TEXT, text, sizeof text);
    assert_true(buf_len(&wire) > 8 + 125 && buf_len(&wire) < 8 + 0xFFFF);
    size_t wire_payload = buf_len(&wire) - 8; /* a 16-bit length header with its mask */
    struct session_counts k = { 0 };
    struct session_limits lim = zlimits(1 << 20, 0);
    lim.counts = &k;
    struct zrun z;
    struct split whole = split_begin(buf_len(&wire), 0);
    zrun(&z, &whole, &wire, &lim, &pmd_default);
    assert_int_equal(z.pr.messages, 1);
    assert_int_equal(k.messages_in, 1);
    assert_int_equal(k.messages_out, 1);
    assert_int_equal(k.z_wire_in, wire_payload);
    assert_int_equal(k.z_plain_in, sizeof text);
    assert_int_equal(k.z_wire_out, z.pr.msg[0].wire_len);
    assert_int_equal(k.z_plain_out, sizeof text);
    assert_int_equal(k.bytes_out, z.pr.msg[0].wire_len);
    zrun_end(&z);
    buf_free(&wire);
}

static int setup(void **state)
{
    (void)state;
    pool = zpool_new(UINT64_MAX);
    inflate_buf = malloc(DEFLATE_CHUNK);
    return pool && inflate_buf ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    zpool_free(pool);
    free(inflate_buf);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(echo_text_compressed),
        cmocka_unit_test(echo_binary_compressed),
        cmocka_unit_test(small_message_echoed_plain),
        cmocka_unit_test(incompressible_message_echoed_plain),
        cmocka_unit_test(plain_message_on_deflate_connection_echoed_plain),
        cmocka_unit_test(large_message_streams_compressed_fragments),
        cmocka_unit_test(fragmented_compressed_message_streams_back),
        cmocka_unit_test(empty_compressed_messages_echoed_empty),
        cmocka_unit_test(history_makes_later_replies_smaller),
        cmocka_unit_test(server_no_takeover_replies_inflate_alone),
        cmocka_unit_test(client_takeover_window_10),
        cmocka_unit_test(invalid_utf8_in_compressed_text_1007_before_fin),
        cmocka_unit_test(truncated_code_point_at_end_of_compressed_text_1007),
        cmocka_unit_test(corrupt_deflate_data_1007),
        cmocka_unit_test(max_message_counts_inflated_bytes_1009),
        cmocka_unit_test(message_of_max_inflated_size_echoed),
        cmocka_unit_test(rsv1_without_deflate_1002),
        cmocka_unit_test(rsv1_on_continuation_1002),
        cmocka_unit_test(rsv1_on_control_frames_1002),
        cmocka_unit_test(rsv2_and_rsv3_1002),
        cmocka_unit_test(interleaved_ping_in_compressed_message),
        cmocka_unit_test(inflate_budget_defers_and_refeed_finishes),
        cmocka_unit_test(leftover_then_new_bytes),
        cmocka_unit_test(streams_held_only_while_a_message_is_in_flight),
        cmocka_unit_test(counts_compressed_bytes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
