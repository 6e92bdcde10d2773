/* session_feed: the message layer of an open WebSocket (RFC 6455 §5-7, design §3-4). Tests build
 * masked client frames, feed them whole, byte by byte and at every split point, then read the
 * server frames back the way a client would and check what that client sees. */
#include "session_client.h"

static const struct session_limits lim_default = { .max_message = 1 << 20, .coalesce_max = 1024,
                                               .hold_budget = UINT64_MAX };

#define KOSME "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5" /* "κόσμε", 11 bytes */

/* ---- echo --------------------------------------------------------------------------------------- */

/* A message up to coalesce_max comes back as one frame with the same opcode and bytes, however
 * the client's bytes were cut. */
static void check_single_frame_echo(uint8_t op, const void *data, size_t len,
                                    const struct session_limits *lim)
{
    struct buf wire = { 0 };
    put_frame(&wire, true, op, data, len);
    for_each_split(sp, buf_len(&wire)) {
        struct run r;
        struct peer pr;
        run_and_read(&r, &pr, &sp, &wire, lim);
        split_assert(&sp, r.error == NULL);
        split_assert_int(&sp, r.s.state, SESSION_OPEN);
        split_assert_int(&sp, r.consumed, buf_len(&wire));
        split_assert_int(&sp, pr.messages, 1);
        split_assert_int(&sp, pr.msg[0].fragments, 1);
        split_assert(&sp, !pr.in_message);
        assert_message(&sp, &pr.msg[0], op, data, len);
        split_assert_int(&sp, pr.closes, 0);
        run_end(&r, &pr);
    }
    buf_free(&wire);
}

static void echo_text_one_frame(void **state)
{
    (void)state;
    static const char text[] = "Hello, " KOSME " \xE2\x82\xAC \xF0\x9F\x98\x80!";
    check_single_frame_echo(WS_OP_TEXT, text, sizeof text - 1, &lim_default);
}

static void echo_binary_one_frame(void **state)
{
    (void)state;
    uint8_t bytes[300]; /* 16-bit length form; includes bytes that are not UTF-8 */
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(255 - i);
    check_single_frame_echo(WS_OP_BINARY, bytes, sizeof bytes, &lim_default);
}

static void echo_empty_messages(void **state)
{
    (void)state;
    check_single_frame_echo(WS_OP_TEXT, "", 0, &lim_default);
    check_single_frame_echo(WS_OP_BINARY, "", 0, &lim_default);
}

/* Exactly coalesce_max bytes is still one frame, even fed one byte at a time. */
static void coalesce_max_bytes_one_frame(void **state)
{
    (void)state;
    static const struct session_limits lim = { .max_message = 1 << 20, .coalesce_max = 200,
                                               .hold_budget = UINT64_MAX };
    uint8_t text[200];
    memset(text, 'a', sizeof text);
    check_single_frame_echo(WS_OP_TEXT, text, sizeof text, &lim);
}

/* Without budget to hold a partial frame (the global buffer cap is reached), a frame that would
 * be echoed whole streams back instead: split across reads it comes back in fragments, text cut
 * at code points, the message intact; a frame that arrives whole is still one frame. */
static void no_hold_budget_streams_partial_frames(void **state)
{
    (void)state;
    static const struct session_limits lim = { .max_message = 1 << 20, .coalesce_max = 4096,
                                               .hold_budget = 100 };
    char text[1101] = "";
    while (strlen(text) + 11 <= 1100)
        strcat(text, KOSME);
    struct buf wire = { 0 };
    put_str(&wire, true, WS_OP_TEXT, text);
    bool fragmented = false;
    for_each_split(sp, buf_len(&wire)) {
        struct run r;
        struct peer pr;
        run_and_read(&r, &pr, &sp, &wire, &lim);
        split_assert(&sp, r.error == NULL);
        split_assert_int(&sp, pr.messages, 1);
        assert_message(&sp, &pr.msg[0], WS_OP_TEXT, text, strlen(text));
        split_assert(&sp, buf_len(&r.s.hold) == 0);
        if (sp.mode == SPLIT_WHOLE)
            split_assert_int(&sp, pr.msg[0].fragments, 1);
        fragmented |= pr.msg[0].fragments > 1;
        run_end(&r, &pr);
    }
    assert_true(fragmented);
    buf_free(&wire);
}

/* Several messages in one read, each echoed in order. */
static void several_messages_in_one_read(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    put_str(&wire, true, WS_OP_TEXT, "first");
    put_frame(&wire, true, WS_OP_BINARY, "\x00\xFF", 2);
    put_str(&wire, true, WS_OP_TEXT, "");
    put_str(&wire, true, WS_OP_TEXT, KOSME);
    for_each_split(sp, buf_len(&wire)) {
        struct run r;
        struct peer pr;
        run_and_read(&r, &pr, &sp, &wire, &lim_default);
        split_assert(&sp, r.error == NULL);
        split_assert_int(&sp, pr.messages, 4);
        assert_message(&sp, &pr.msg[0], WS_OP_TEXT, "first", 5);
        assert_message(&sp, &pr.msg[1], WS_OP_BINARY, "\x00\xFF", 2);
        assert_message(&sp, &pr.msg[2], WS_OP_TEXT, "", 0);
        assert_message(&sp, &pr.msg[3], WS_OP_TEXT, KOSME, 11);
        for (size_t i = 0; i < 4; i++)
            split_assert_int(&sp, pr.msg[i].fragments, 1);
        run_end(&r, &pr);
    }
    buf_free(&wire);
}

/* Large whole frames are echoed in place (by reference into the chunk); mixed with small ones,
 * control frames and a frame with a 64-bit length in one read, the order and bytes must hold. */
static void large_frames_in_one_read_echoed_in_place(void **state)
{
    (void)state;
    static const struct session_limits lim = { .max_message = 1 << 20, .coalesce_max = 1 << 17,
                                               .hold_budget = UINT64_MAX };
    size_t big = 70000;
    uint8_t *bin = malloc(big);
    char *text = malloc(5001);
    assert_non_null(bin);
    assert_non_null(text);
    for (size_t i = 0; i < big; i++)
        bin[i] = (uint8_t)(i * 131 + (i >> 9));
    text[0] = 0;
    while (strlen(text) + 11 <= 5000)
        strcat(text, KOSME);
    size_t tlen = strlen(text);
    struct buf wire = { 0 };
    put_frame(&wire, true, WS_OP_BINARY, bin, 3000);
    put_str(&wire, true, WS_OP_TEXT, "small");
    put_frame(&wire, true, WS_OP_PING, "p", 1);
    put_str(&wire, true, WS_OP_TEXT, text);
    put_frame(&wire, true, WS_OP_BINARY, bin, big);
    put_frame(&wire, true, WS_OP_BINARY, bin + 7, OUTQ_REF_MIN);
    for_each_split_near_ends(sp, buf_len(&wire), 16) {
        struct run r;
        struct peer pr;
        run_and_read(&r, &pr, &sp, &wire, &lim);
        split_assert(&sp, r.error == NULL);
        split_assert_int(&sp, pr.messages, 5);
        assert_message(&sp, &pr.msg[0], WS_OP_BINARY, bin, 3000);
        assert_message(&sp, &pr.msg[1], WS_OP_TEXT, "small", 5);
        assert_message(&sp, &pr.msg[2], WS_OP_TEXT, text, tlen);
        assert_message(&sp, &pr.msg[3], WS_OP_BINARY, bin, big);
        assert_message(&sp, &pr.msg[4], WS_OP_BINARY, bin + 7, OUTQ_REF_MIN);
        for (size_t i = 0; i < 5; i++)
            split_assert_int(&sp, pr.msg[i].fragments, 1);
        split_assert_int(&sp, pr.pongs, 1);
        run_end(&r, &pr);
    }
    buf_free(&wire);
    free(bin);
    free(text);
}

/* The in-place path really sends from the chunk, and past the reference table's size frames are
 * copied instead: every frame still comes back, in order. */
static void more_large_frames_than_references(void **state)
{
    (void)state;
    static const struct session_limits lim = { .max_message = 1 << 20, .coalesce_max = 1 << 16,
                                               .hold_budget = UINT64_MAX };
    size_t count = OUTQ_MAX_REFS + 3, len = OUTQ_REF_MIN;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    struct buf wire = { 0 };
    for (size_t f = 0; f < count; f++) {
        memset(data, (int)f, len);
        data[0] = (uint8_t)(f >> 8);
        put_frame(&wire, true, WS_OP_BINARY, data, len);
    }
    struct session s = { 0 };
    struct outq q = { 0 };
    const char *err;
    uint8_t *chunk = (uint8_t *)buf_head(&wire);
    assert_int_equal(session_feed(&s, &lim, chunk, buf_len(&wire), &q, &err), buf_len(&wire));
    assert_null(err);
    assert_int_equal(q.nref, OUTQ_MAX_REFS);
    assert_true(q.ref[0].p > chunk && q.ref[0].p < chunk + buf_len(&wire));
    assert_int_equal(outq_len(&q), count * (4 + len));
    struct buf out = { 0 };
    assert_true(outq_move(&q, 0, &out));
    assert_int_equal(q.nref, 0);
    const uint8_t *o = buf_head(&out);
    for (size_t f = 0; f < count; f++, o += 4 + len) {
        assert_int_equal(o[0], 0x80 | WS_OP_BINARY);
        assert_int_equal(o[1], 126);
        assert_int_equal(o[2] << 8 | o[3], len);
        assert_int_equal(o[4], (uint8_t)(f >> 8));
        assert_int_equal(o[5], (uint8_t)f);
        assert_int_equal(o[4 + len - 1], (uint8_t)f);
    }
    buf_free(&out);
    buf_free(&q.bytes);
    buf_free(&wire);
    session_free(&s);
    free(data);
}

/* A large whole text frame checked in place still fails with 1007 and echoes nothing. */
static void large_whole_text_frame_invalid_utf8_1007(void **state)
{
    (void)state;
    static const struct session_limits lim = { .max_message = 1 << 20, .coalesce_max = 1 << 16,
                                               .hold_budget = UINT64_MAX };
    char text[4000];
    memset(text, 'x', sizeof text);
    text[3000] = (char)0xC0; /* never valid */
    struct buf wire = { 0 };
    put_frame(&wire, true, WS_OP_TEXT, text, sizeof text);
    struct run r;
    struct peer pr;
    struct split whole = split_begin(buf_len(&wire), 0);
    run_and_read(&r, &pr, &whole, &wire, &lim);
    assert_non_null(r.error);
    assert_int_equal(pr.messages, 0);
    assert_int_equal(pr.closes, 1);
    assert_int_equal(pr.close_code, WS_CLOSE_INVALID_DATA);
    run_end(&r, &pr);
    buf_free(&wire);
}

/* ---- counting what the echo did (the server's metrics) ----------------------------------------- */

/* Runs wire under every split with counts attached; every feeding must count the same. */
static void check_counts(const struct buf *wire, uint32_t coalesce_max,
                         const struct session_counts *want)
{
    for_each_split(sp, buf_len(wire)) {
        struct session_counts got = { 0 };
        const struct session_limits lim = { .max_message = 1 << 20, .coalesce_max = coalesce_max,
                                            .counts = &got, .hold_budget = UINT64_MAX };
        struct run r;
        struct peer pr;
        run_and_read(&r, &pr, &sp, wire, &lim);
        split_assert_int(&sp, got.messages_in, want->messages_in);
        split_assert_int(&sp, got.messages_out, want->messages_out);
        split_assert_int(&sp, got.bytes_in, want->bytes_in);
        split_assert_int(&sp, got.bytes_out, want->bytes_out);
        run_end(&r, &pr);
    }
}

/* A whole text frame, a streamed binary frame, a client-fragmented text message with a ping in
 * the middle: three messages each way, payload bytes only (no headers, no control frames). */
static void counts_messages_and_payload_bytes(void **state)
{
    (void)state;
    uint8_t data[300];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7);
    struct buf wire = { 0 };
    put_str(&wire, true, WS_OP_TEXT, "first");
    put_frame(&wire, true, WS_OP_BINARY, data, sizeof data); /* over coalesce_max: streamed */
    put_frame(&wire, false, WS_OP_TEXT, KOSME, 4);
    put_str(&wire, true, WS_OP_PING, "ping");
    put_frame(&wire, true, WS_OP_CONT, KOSME + 4, 7);
    const struct session_counts want = { .messages_in = 3, .messages_out = 3,
                                         .bytes_in = 5 + 300 + 11, .bytes_out = 5 + 300 + 11 };
    check_counts(&wire, 200, &want);
    buf_free(&wire);
}

/* Whole frames fed in one read are echoed in place (by reference into the chunk); fed in pieces
 * they are held or streamed. Every way counts the same. */
static void counts_frames_echoed_in_place(void **state)
{
    (void)state;
    static uint8_t data[OUTQ_REF_MIN + 1000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 13);
    struct buf wire = { 0 };
    put_frame(&wire, true, WS_OP_BINARY, data, sizeof data);
    put_frame(&wire, true, WS_OP_TEXT, "x", 1);
    put_frame(&wire, true, WS_OP_BINARY, data, OUTQ_REF_MIN);
    const struct session_counts want = {
        .messages_in = 3, .messages_out = 3,
        .bytes_in = sizeof data + 1 + OUTQ_REF_MIN, .bytes_out = sizeof data + 1 + OUTQ_REF_MIN };
    check_counts(&wire, 1 << 16, &want);
    buf_free(&wire);
}

/* A message that fails UTF-8 was received but not echoed; a Close is not a data message. */
static void counts_failed_message_as_received_only(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    put_str(&wire, true, WS_OP_TEXT, "ok");
    put_str(&wire, true, WS_OP_TEXT, "ab\xFF");
    const struct session_counts want = { .messages_in = 1, .messages_out = 1,
                                         .bytes_in = 2 + 3, .bytes_out = 2 };
    check_counts(&wire, 1024, &want);
    buf_free(&wire);
    put_close(&wire, 1000, "bye");
    check_counts(&wire, 1024, &(const struct session_counts){ 0 });
    buf_free(&wire);
}

/* ---- streaming ---------------------------------------------------------------------------------- */

/* A message the session streams: it must reach the client as one well-formed fragmented message
 * (first frame with the message's opcode, then continuations, FIN only on the last) equal to
 * the input; text fragments must each end on a code-point boundary. */
static void check_streamed_echo(const struct buf *wire, uint8_t op, const void *data, size_t len,
                                const struct session_limits *lim, size_t edge)
{
    for_each_split_near_ends(sp, buf_len(wire), edge) {
        struct run r;
        struct peer pr;
        run_and_read(&r, &pr, &sp, wire, lim);
        split_assert(&sp, r.error == NULL);
        split_assert_int(&sp, r.s.state, SESSION_OPEN);
        split_assert_int(&sp, pr.messages, 1);
        split_assert(&sp, !pr.in_message);
        assert_message(&sp, &pr.msg[0], op, data, len);
        if (op == WS_OP_TEXT)
            split_assert(&sp, pr.msg[0].fragments_utf8);
        if (sp.mode == SPLIT_BYTES && len > 1)
            split_assert(&sp, pr.msg[0].fragments > 1); /* streamed, not held whole */
        run_end(&r, &pr);
    }
}

static void large_binary_frame_streams_as_fragments(void **state)
{
    (void)state;
    static const struct session_limits lim = { .max_message = 1 << 20, .coalesce_max = 200,
                                               .hold_budget = UINT64_MAX };
    uint8_t data[201];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 37);
    struct buf wire = { 0 };
    put_frame(&wire, true, WS_OP_BINARY, data, sizeof data);
    check_streamed_echo(&wire, WS_OP_BINARY, data, sizeof data, &lim, 0);
    buf_free(&wire);
}

/* 70000 bytes: a 64-bit length, streamed in pieces that never hold the whole message. */
static void large_64bit_frame_streams(void **state)
{
    (void)state;
    static const struct session_limits lim = { .max_message = 1 << 20, .coalesce_max = 4096,
                                               .hold_budget = UINT64_MAX };
    size_t len = 70000;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i ^ (i >> 8));
    struct buf wire = { 0 };
    put_frame(&wire, true, WS_OP_BINARY, data, len);
    check_streamed_echo(&wire, WS_OP_BINARY, data, len, &lim, 20);
    buf_free(&wire);
    free(data);
}

static void large_text_frame_fragments_end_on_code_points(void **state)
{
    (void)state;
    static const struct session_limits lim = { .max_message = 1 << 20, .coalesce_max = 16,
                                               .hold_budget = UINT64_MAX };
    char text[200] = "";
    while (strlen(text) + 10 < sizeof text)
        strcat(text, "a\xCE\xBA\xE2\x82\xAC\xF0\x9F\x98\x80"); /* 1 + 2 + 3 + 4 bytes */
    struct buf wire = { 0 };
    put_str(&wire, true, WS_OP_TEXT, text);
    check_streamed_echo(&wire, WS_OP_TEXT, text, strlen(text), &lim, 0);
    buf_free(&wire);
}

/* Reads of a fixed size through a long text message of 3-byte code points and a long binary one:
 * pieces of OUTQ_REF_MIN bytes or more go out by reference (their header in front of them or
 * apart), a text piece cut inside a code point holds those bytes back, and the next piece goes
 * out by reference behind them. */
static void large_streamed_pieces_sent_by_reference(void **state)
{
    (void)state;
    static const struct session_limits lim = { .max_message = 1 << 20, .coalesce_max = 4096,
                                               .hold_budget = UINT64_MAX };
    size_t tlen = 3 * (3 * OUTQ_REF_MIN + 7), blen = 5 * OUTQ_REF_MIN + 5;
    char *text = malloc(tlen + 1);
    uint8_t *bin = malloc(blen);
    assert_non_null(text);
    assert_non_null(bin);
    for (size_t i = 0; i < tlen; i += 3)
        memcpy(text + i, "\xE2\x82\xAC", 3); /* € */
    text[tlen] = 0;
    for (size_t i = 0; i < blen; i++)
        bin[i] = (uint8_t)(i * 7 + (i >> 10));
    struct buf wire = { 0 };
    put_str(&wire, true, WS_OP_TEXT, text);
    put_frame(&wire, true, WS_OP_BINARY, bin, blen);
    for (size_t step = OUTQ_REF_MIN + 1; step <= OUTQ_REF_MIN + 16; step++) {
        struct run r;
        struct peer pr;
        struct split sp = split_begin(buf_len(&wire), 0);
        snprintf(sp.name, sizeof sp.name, "reads of %zu bytes", step);
        run_start(&r, &lim);
        for (size_t pos = 0; pos < buf_len(&wire); pos += step) {
            size_t n = buf_len(&wire) - pos < step ? buf_len(&wire) - pos : step;
            feed_chunk(&r, guard_copy(buf_head(&wire) + pos, n), n, pos);
        }
        read_output(&sp, &r.out, &pr);
        split_assert(&sp, r.error == NULL);
        split_assert(&sp, r.refs >= 6);
        split_assert_int(&sp, pr.messages, 2);
        assert_message(&sp, &pr.msg[0], WS_OP_TEXT, text, tlen);
        split_assert(&sp, pr.msg[0].fragments_utf8);
        split_assert(&sp, pr.msg[0].fragments > 3);
        assert_message(&sp, &pr.msg[1], WS_OP_BINARY, bin, blen);
        run_end(&r, &pr);
    }
    buf_free(&wire);
    free(text);
    free(bin);
}

/* The client cuts "aκ€😀z" into two fragments at every byte, splitting code points across
 * fragments; the echo's fragments must each be valid UTF-8 and join up to the message. */
static void client_fragmented_text_code_point_split_across_fragments(void **state)
{
    (void)state;
    static const char text[] = "a\xCE\xBA\xE2\x82\xAC\xF0\x9F\x98\x80z";
    size_t len = sizeof text - 1;
    for (size_t cut = 0; cut <= len; cut++) {
        struct buf wire = { 0 };
        put_frame(&wire, false, WS_OP_TEXT, text, cut);
        put_frame(&wire, true, WS_OP_CONT, text + cut, len - cut);
        check_streamed_echo(&wire, WS_OP_TEXT, text, len, &lim_default, 0);
        buf_free(&wire);
    }
    /* one byte per fragment */
    struct buf wire = { 0 };
    for (size_t i = 0; i < len; i++)
        put_frame(&wire, i + 1 == len, i == 0 ? WS_OP_TEXT : WS_OP_CONT, text + i, 1);
    check_streamed_echo(&wire, WS_OP_TEXT, text, len, &lim_default, 0);
    buf_free(&wire);
}

static void client_fragmented_with_empty_fragments(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    put_str(&wire, false, WS_OP_BINARY, "");
    put_str(&wire, false, WS_OP_CONT, "ab");
    put_str(&wire, false, WS_OP_CONT, "");
    put_str(&wire, true, WS_OP_CONT, "");
    check_streamed_echo(&wire, WS_OP_BINARY, "ab", 2, &lim_default, 0);
    buf_free(&wire);
    put_str(&wire, false, WS_OP_TEXT, "");
    put_str(&wire, true, WS_OP_CONT, "");
    check_streamed_echo(&wire, WS_OP_TEXT, "", 0, &lim_default, 0);
    buf_free(&wire);
}

/* ---- control frames ----------------------------------------------------------------------------- */

static void interleaved_ping_in_fragmented_text(void **state)
{
    (void)state;
    uint8_t ping125[125];
    for (size_t i = 0; i < sizeof ping125; i++)
        ping125[i] = (uint8_t)(i * 3);
    struct buf wire = { 0 };
    put_str(&wire, false, WS_OP_TEXT, "Hel\xCE");
    put_str(&wire, true, WS_OP_PING, "ping!");
    put_str(&wire, false, WS_OP_CONT, "\xBAl");
    put_str(&wire, true, WS_OP_PONG, "unsolicited");
    put_frame(&wire, true, WS_OP_PING, ping125, sizeof ping125);
    put_str(&wire, true, WS_OP_PING, "");
    put_str(&wire, true, WS_OP_CONT, "o");
    for_each_split(sp, buf_len(&wire)) {
        struct run r;
        struct peer pr;
        run_and_read(&r, &pr, &sp, &wire, &lim_default);
        split_assert(&sp, r.error == NULL);
        split_assert_int(&sp, pr.messages, 1);
        assert_message(&sp, &pr.msg[0], WS_OP_TEXT, "Hel\xCE\xBAlo", 7);
        split_assert(&sp, pr.msg[0].fragments_utf8);
        split_assert_int(&sp, pr.pongs, 3);
        split_assert_int(&sp, buf_len(&pr.pong[0]), 5);
        split_assert_mem(&sp, buf_head(&pr.pong[0]), "ping!", 5);
        split_assert_int(&sp, buf_len(&pr.pong[1]), sizeof ping125);
        split_assert_mem(&sp, buf_head(&pr.pong[1]), ping125, sizeof ping125);
        split_assert_int(&sp, buf_len(&pr.pong[2]), 0);
        run_end(&r, &pr);
    }
    buf_free(&wire);
}

static void pong_ignored(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    put_str(&wire, true, WS_OP_PONG, "hello?");
    put_str(&wire, true, WS_OP_PONG, "");
    for_each_split(sp, buf_len(&wire)) {
        struct run r;
        run_start(&r, &lim_default);
        run_feed(&r, &sp, &wire);
        split_assert(&sp, r.error == NULL);
        split_assert_int(&sp, r.s.state, SESSION_OPEN);
        split_assert_int(&sp, buf_len(&r.out), 0);
        run_free(&r);
    }
    buf_free(&wire);
}

/* ---- the close handshake ------------------------------------------------------------------------ */

/* wire ends the session cleanly (no error) with one Close carrying `code`. */
static void check_clean_close(const struct buf *wire, int code)
{
    for_each_split(sp, buf_len(wire)) {
        struct run r;
        struct peer pr;
        run_and_read(&r, &pr, &sp, wire, &lim_default);
        split_assert(&sp, r.error == NULL);
        split_assert_int(&sp, r.s.state, SESSION_DONE);
        split_assert_int(&sp, pr.closes, 1);
        split_assert_int(&sp, pr.close_code, code);
        split_assert_int(&sp, r.s.close_code, code);
        run_end(&r, &pr);
    }
}

static void close_1000_with_reason_answered_1000(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    put_close(&wire, 1000, "bye " KOSME);
    check_clean_close(&wire, 1000);
    buf_free(&wire);
}

static void empty_close_answered_1000(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    put_frame(&wire, true, WS_OP_CLOSE, NULL, 0);
    check_clean_close(&wire, 1000);
    buf_free(&wire);
}

static void valid_close_codes_echoed(void **state)
{
    (void)state;
    static const uint16_t codes[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                                      1012, 1013, 1014, 3000, 3999, 4000, 4999 };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        struct buf wire = { 0 };
        put_close(&wire, codes[i], "");
        check_clean_close(&wire, codes[i]);
        buf_free(&wire);
    }
}

/* A close in the middle of a fragmented message is answered at once. */
static void close_between_fragments_answered(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    put_str(&wire, false, WS_OP_TEXT, "half");
    put_close(&wire, 1001, "going");
    check_clean_close(&wire, 1001);
    buf_free(&wire);
}

static void close_1byte_payload_1002(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    put_frame(&wire, true, WS_OP_CLOSE, "\x03", 1);
    check_fails_with(&wire, &lim_default, WS_CLOSE_PROTOCOL_ERROR);
    buf_free(&wire);
}

static void close_invalid_codes_1002(void **state)
{
    (void)state;
    static const uint16_t codes[] = { 0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999,
                                      5000, 65535 };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        struct buf wire = { 0 };
        put_close(&wire, codes[i], "");
        check_fails_with(&wire, &lim_default, WS_CLOSE_PROTOCOL_ERROR);
        buf_free(&wire);
    }
}

static void close_reason_invalid_utf8_1007(void **state)
{
    (void)state;
    static const char *const reasons[] = { "\xFF", "ok \xED\xA0\x80", "cut \xCE", "\xC0\xAF" };
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        struct buf wire = { 0 };
        put_close(&wire, 1000, reasons[i]);
        check_fails_with(&wire, &lim_default, WS_CLOSE_INVALID_DATA);
        buf_free(&wire);
    }
}

/* After the Close is answered nothing else is echoed, not even what was already read. */
static void nothing_echoed_after_close(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    put_str(&wire, true, WS_OP_TEXT, "before");
    put_close(&wire, 1000, "");
    size_t close_end = buf_len(&wire);
    put_str(&wire, true, WS_OP_TEXT, "after");
    put_str(&wire, true, WS_OP_PING, "after");
    put_close(&wire, 1000, "again");
    for_each_split(sp, buf_len(&wire)) {
        struct run r;
        struct peer pr;
        run_start(&r, &lim_default);
        run_feed(&r, &sp, &wire);
        read_output(&sp, &r.out, &pr); /* also checks that no frame follows the Close */
        split_assert_int(&sp, r.s.state, SESSION_DONE);
        split_assert_int(&sp, pr.messages, 1);
        assert_message(&sp, &pr.msg[0], WS_OP_TEXT, "before", 6);
        split_assert_int(&sp, pr.pongs, 0);
        split_assert_int(&sp, pr.closes, 1);
        split_assert(&sp, r.consumed >= close_end);
        /* More input after DONE is not processed either. */
        uint8_t more[64];
        size_t n = buf_len(&wire) - close_end;
        memcpy(more, buf_head(&wire) + close_end, n);
        const char *err;
        session_feed(&r.s, r.lim, more, n, &r.q, &err);
        split_assert_int(&sp, outq_len(&r.q), 0);
        run_end(&r, &pr);
    }
    buf_free(&wire);
}

/* We close first (e.g. 1001 on shutdown); the client's Close completes the handshake and is not
 * answered with a second Close. Data arriving meanwhile is not echoed. */
static void session_close_then_client_close(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    put_str(&wire, true, WS_OP_TEXT, "in flight");
    put_close(&wire, 1001, "");
    for_each_split(sp, buf_len(&wire)) {
        struct run r;
        struct peer pr;
        run_start(&r, &lim_default);
        session_close(&r.s, WS_CLOSE_GOING_AWAY, &r.out);
        split_assert_int(&sp, r.s.state, SESSION_CLOSE_SENT);
        session_close(&r.s, WS_CLOSE_GOING_AWAY, &r.out); /* idempotent */
        run_feed(&r, &sp, &wire);
        read_output(&sp, &r.out, &pr);
        split_assert(&sp, r.error == NULL);
        split_assert_int(&sp, r.s.state, SESSION_DONE);
        split_assert_int(&sp, pr.closes, 1);
        split_assert_int(&sp, pr.close_code, WS_CLOSE_GOING_AWAY);
        split_assert_int(&sp, pr.messages, 0);
        run_end(&r, &pr);
    }
    buf_free(&wire);
}

/* We close (shutdown) while a coalesced message is half received; the rest of it is dropped and
 * the client's valid Close must be read as exactly that Close: no error, no second Close. */
static void session_close_mid_frame_then_client_close(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    put_str(&wire, true, WS_OP_TEXT, "hello world");
    size_t first = 6 + 5; /* header and "hello" */
    put_close(&wire, 1001, "bye");
    struct buf rest = { 0 };
    assert_true(buf_append(&rest, buf_head(&wire) + first, buf_len(&wire) - first));
    for_each_split(sp, buf_len(&rest)) {
        struct run r;
        struct peer pr;
        run_start(&r, &lim_default);
        feed_whole(&r, buf_head(&wire), first);
        split_assert_int(&sp, buf_len(&r.out), 0); /* the message is held, not streamed */
        session_close(&r.s, WS_CLOSE_GOING_AWAY, &r.out);
        run_feed(&r, &sp, &rest);
        if (r.error)
            fail_msg("[%s] the client's Close 1001 was misread: %s", sp.name, r.error);
        read_output(&sp, &r.out, &pr);
        split_assert_int(&sp, r.s.state, SESSION_DONE);
        split_assert_int(&sp, pr.closes, 1);
        split_assert_int(&sp, pr.close_code, WS_CLOSE_GOING_AWAY);
        run_end(&r, &pr);
    }
    buf_free(&rest);
    buf_free(&wire);
}

/* Both sides close at once: ours goes out while the client's Close is half received. */
static void session_close_while_client_close_half_received(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    put_close(&wire, 1000, "done");
    for_each_split(sp, buf_len(&wire)) {
        if (sp.mode != SPLIT_AT)
            continue;
        struct run r;
        struct peer pr;
        run_start(&r, &lim_default);
        feed_whole(&r, buf_head(&wire), sp.at);
        session_close(&r.s, WS_CLOSE_GOING_AWAY, &r.out); /* between the two chunks */
        feed_whole(&r, buf_head(&wire) + sp.at, buf_len(&wire) - sp.at);
        split_assert(&sp, r.error == NULL);
        read_output(&sp, &r.out, &pr);
        split_assert_int(&sp, r.s.state, SESSION_DONE);
        split_assert_int(&sp, pr.closes, 1);
        split_assert_int(&sp, pr.close_code, WS_CLOSE_GOING_AWAY);
        run_end(&r, &pr);
    }
    buf_free(&wire);
}

/* Once our Close is sent it is the last frame we send: a client that then misbehaves is dropped
 * without a second Close (RFC 6455 §5.5.1: a Close is sent only "if it hasn't already sent
 * one"; design §3: after sending a Close, wait for the peer's Close, then drop). */
static void no_second_close_after_error_in_closing_state(void **state)
{
    (void)state;
    struct buf bad[3] = { { 0 } };
    put_frame(&bad[0], true, WS_OP_CLOSE, "\x03", 1);       /* 1-byte close payload */
    put_close(&bad[1], 1005, "");                          /* invalid code */
    static const uint8_t unmasked[] = { 0x81, 0x01, 'x' };
    assert_true(buf_append(&bad[2], unmasked, sizeof unmasked));
    for (size_t i = 0; i < 3; i++) {
        for_each_split(sp, buf_len(&bad[i])) {
            struct run r;
            struct peer pr;
            run_start(&r, &lim_default);
            session_close(&r.s, WS_CLOSE_GOING_AWAY, &r.out);
            run_feed(&r, &sp, &bad[i]);
            read_output(&sp, &r.out, &pr);
            split_assert_int(&sp, r.s.state, SESSION_DONE);
            if (pr.closes != 1)
                fail_msg("[%s] case %zu: %d Close frames sent, expected only our 1001", sp.name,
                         i, pr.closes);
            run_end(&r, &pr);
        }
        buf_free(&bad[i]);
    }
}

static void keepalive_ping_only_while_open(void **state)
{
    (void)state;
    struct run r;
    struct peer pr;
    struct split whole = split_begin(0, 0);
    run_start(&r, &lim_default);
    session_ping(&r.s, &r.out);
    read_output(&whole, &r.out, &pr);
    assert_int_equal(pr.pings, 1);
    peer_free(&pr);
    session_close(&r.s, WS_CLOSE_GOING_AWAY, &r.out);
    size_t before = buf_len(&r.out);
    session_ping(&r.s, &r.out);
    assert_int_equal(buf_len(&r.out), before);
    run_free(&r);
}

/* ---- failing the connection --------------------------------------------------------------------- */

/* Each frame-level or message-level protocol error: Close 1002, SESSION_DONE, *error set. */
static void protocol_errors_close_1002(void **state)
{
    (void)state;
    for (int c = 0; c < 10; c++) {
        struct buf wire = { 0 };
        size_t at = 0;
        switch (c) {
        case 0: { /* unmasked frame */
            static const uint8_t f[] = { 0x81, 0x02, 'h', 'i' };
            assert_true(buf_append(&wire, f, sizeof f));
            at = 1;
            break;
        }
        case 1: /* RSV1 without an extension */
            put_str(&wire, true, WS_OP_TEXT, "hi");
            wire.data[wire.start] |= 0x40;
            break;
        case 2: /* reserved data opcode */
            put_str(&wire, true, 3, "hi");
            break;
        case 3: /* reserved control opcode */
            put_str(&wire, true, 11, "");
            break;
        case 4: /* continuation without a message */
            put_str(&wire, true, WS_OP_CONT, "hi");
            at = 5; /* known once the header is complete */
            break;
        case 5: /* new data frame while a fragmented message is open */
            put_str(&wire, false, WS_OP_TEXT, "a");
            at = buf_len(&wire);
            put_str(&wire, true, WS_OP_BINARY, "b");
            at += 5;
            break;
        case 6: /* fragmented ping */
            put_str(&wire, false, WS_OP_PING, "p");
            break;
        case 7: { /* ping with 126 bytes */
            uint8_t p[126] = { 0 };
            put_frame(&wire, true, WS_OP_PING, p, sizeof p);
            at = 1;
            break;
        }
        case 8: { /* non-minimal 16-bit length, after a good message */
            put_str(&wire, true, WS_OP_TEXT, "ok");
            at = buf_len(&wire);
            static const uint8_t f[] = { 0x82, 0xFE, 0x00, 0x05, 1, 2, 3, 4 };
            assert_true(buf_append(&wire, f, sizeof f));
            at += 3;
            break;
        }
        case 9: { /* close with a 126-byte payload */
            uint8_t p[126] = { 0x03, 0xE8 };
            put_frame(&wire, true, WS_OP_CLOSE, p, sizeof p);
            at = 1;
            break;
        }
        }
        size_t latest = c == 8 ? at + 4 : at;
        check_fails_between(&wire, &lim_default, WS_CLOSE_PROTOCOL_ERROR, at, latest);
        buf_free(&wire);
    }
}

/* A message that was echoed before the error stays echoed; the Close comes after it. */
static void protocol_error_after_good_message_keeps_echo(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    put_str(&wire, true, WS_OP_TEXT, "ok");
    put_str(&wire, true, WS_OP_CONT, "x");
    for_each_split(sp, buf_len(&wire)) {
        struct run r;
        struct peer pr;
        run_and_read(&r, &pr, &sp, &wire, &lim_default);
        split_assert_int(&sp, pr.messages, 1);
        assert_message(&sp, &pr.msg[0], WS_OP_TEXT, "ok", 2);
        split_assert_int(&sp, pr.close_code, WS_CLOSE_PROTOCOL_ERROR);
        run_end(&r, &pr);
    }
    buf_free(&wire);
}

/* Autobahn 6.4.3: invalid UTF-8 fails with 1007 at the bad byte, while the rest of the frame is
 * still to come, and nothing of the held message is echoed. */
static void invalid_utf8_fails_before_frame_complete(void **state)
{
    (void)state;
    static const char text[] = KOSME "\xED\xA0\x80" "edited";
    struct buf wire = { 0 };
    put_str(&wire, true, WS_OP_TEXT, text);
    size_t bad = 6 + 11 + 1; /* header, κόσμε, ED; then A0 is impossible */
    check_fails_between(&wire, &lim_default, WS_CLOSE_INVALID_DATA, bad, bad);
    for_each_split(sp, buf_len(&wire)) {
        struct run r;
        struct peer pr;
        run_and_read(&r, &pr, &sp, &wire, &lim_default);
        split_assert_int(&sp, pr.messages, 0);
        run_end(&r, &pr);
    }
    buf_free(&wire);
}

/* The same on the streaming path: what was sent before the bad byte is valid text. */
static void invalid_utf8_in_streamed_frame_fails_at_bad_byte(void **state)
{
    (void)state;
    static const struct session_limits lim = { .max_message = 1 << 20, .coalesce_max = 4,
                                               .hold_budget = UINT64_MAX };
    static const char text[] = KOSME "\xF4\x90\x80\x80" "edited";
    struct buf wire = { 0 };
    put_str(&wire, true, WS_OP_TEXT, text);
    size_t bad = 6 + 11 + 1; /* F4 90 is above U+10FFFF */
    check_fails_between(&wire, &lim, WS_CLOSE_INVALID_DATA, bad, bad);
    for_each_split(sp, buf_len(&wire)) {
        struct run r;
        struct peer pr;
        run_and_read(&r, &pr, &sp, &wire, &lim);
        if (pr.messages) {
            split_assert(&sp, pr.msg[0].fragments_utf8);
            split_assert(&sp, buf_len(&pr.msg[0].data) <= 11);
            split_assert_mem(&sp, buf_head(&pr.msg[0].data), KOSME, buf_len(&pr.msg[0].data));
        }
        run_end(&r, &pr);
    }
    buf_free(&wire);
}

static void invalid_utf8_in_continuation_1007(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    put_str(&wire, false, WS_OP_TEXT, "ab\xCE");
    size_t bad = buf_len(&wire) + 6; /* the CONT's first payload byte cannot continue CE */
    put_str(&wire, true, WS_OP_CONT, "xyz");
    check_fails_between(&wire, &lim_default, WS_CLOSE_INVALID_DATA, bad, bad);
    buf_free(&wire);
}

/* A message that ends inside a code point is invalid once FIN arrives. */
static void truncated_code_point_at_fin_1007(void **state)
{
    (void)state;
    struct buf wire = { 0 };
    put_str(&wire, true, WS_OP_TEXT, "abc\xE2\x82");
    check_fails_with(&wire, &lim_default, WS_CLOSE_INVALID_DATA);
    buf_free(&wire);
    put_str(&wire, false, WS_OP_TEXT, "abc\xF0\x9F");
    put_str(&wire, true, WS_OP_CONT, "");
    check_fails_with(&wire, &lim_default, WS_CLOSE_INVALID_DATA);
    buf_free(&wire);
}

static void invalid_utf8_in_binary_is_echoed(void **state)
{
    (void)state;
    check_single_frame_echo(WS_OP_BINARY, "\xED\xA0\x80\xFF", 4, &lim_default);
}

/* ---- limits -------------------------------------------------------------------------------------- */

static const struct session_limits lim_small = { .max_message = 100, .coalesce_max = 1024,
                                               .hold_budget = UINT64_MAX };

/* A single frame over max_message fails with 1009 from its header alone: no payload is sent. */
static void message_over_max_1009_on_header(void **state)
{
    (void)state;
    static const uint64_t lens[] = { 101, 65536, 1ull << 40 };
    for (size_t i = 0; i < 3; i++) {
        struct buf wire = { 0 };
        put_header(&wire, true, WS_OP_BINARY, lens[i]);
        size_t last = buf_len(&wire) - 1; /* no payload byte is needed to decide */
        check_fails_between(&wire, &lim_small, WS_CLOSE_TOO_BIG, last, last);
        buf_free(&wire);
    }
}

static void message_of_max_size_echoed(void **state)
{
    (void)state;
    uint8_t data[100];
    memset(data, 'm', sizeof data);
    check_single_frame_echo(WS_OP_TEXT, data, sizeof data, &lim_small);
}

/* The limit is on the message, so fragments add up; control frames in between do not count. */
static void fragmented_message_over_max_1009(void **state)
{
    (void)state;
    uint8_t data[100];
    memset(data, 'f', sizeof data);
    struct buf wire = { 0 };
    put_frame(&wire, false, WS_OP_TEXT, data, 60);
    put_frame(&wire, false, WS_OP_CONT, data, 40);
    size_t last_hdr = buf_len(&wire) + 5;
    put_frame(&wire, true, WS_OP_CONT, data, 1);
    check_fails_between(&wire, &lim_small, WS_CLOSE_TOO_BIG, last_hdr, last_hdr);
    buf_free(&wire);

    put_frame(&wire, false, WS_OP_TEXT, data, 60);
    put_frame(&wire, true, WS_OP_PING, data, 60);
    put_frame(&wire, true, WS_OP_CONT, data, 40);
    check_streamed_echo(&wire, WS_OP_TEXT, data, 100, &lim_small, 0);
    buf_free(&wire);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(echo_text_one_frame),
        cmocka_unit_test(echo_binary_one_frame),
        cmocka_unit_test(echo_empty_messages),
        cmocka_unit_test(coalesce_max_bytes_one_frame),
        cmocka_unit_test(several_messages_in_one_read),
        cmocka_unit_test(large_frames_in_one_read_echoed_in_place),
        cmocka_unit_test(more_large_frames_than_references),
        cmocka_unit_test(large_whole_text_frame_invalid_utf8_1007),
        cmocka_unit_test(counts_messages_and_payload_bytes),
        cmocka_unit_test(counts_frames_echoed_in_place),
        cmocka_unit_test(counts_failed_message_as_received_only),
        cmocka_unit_test(large_binary_frame_streams_as_fragments),
        cmocka_unit_test(large_64bit_frame_streams),
        cmocka_unit_test(large_text_frame_fragments_end_on_code_points),
        cmocka_unit_test(large_streamed_pieces_sent_by_reference),
        cmocka_unit_test(client_fragmented_text_code_point_split_across_fragments),
        cmocka_unit_test(client_fragmented_with_empty_fragments),
        cmocka_unit_test(interleaved_ping_in_fragmented_text),
        cmocka_unit_test(pong_ignored),
        cmocka_unit_test(close_1000_with_reason_answered_1000),
        cmocka_unit_test(empty_close_answered_1000),
        cmocka_unit_test(valid_close_codes_echoed),
        cmocka_unit_test(close_between_fragments_answered),
        cmocka_unit_test(close_1byte_payload_1002),
        cmocka_unit_test(close_invalid_codes_1002),
        cmocka_unit_test(close_reason_invalid_utf8_1007),
        cmocka_unit_test(nothing_echoed_after_close),
        cmocka_unit_test(session_close_then_client_close),
        cmocka_unit_test(session_close_mid_frame_then_client_close),
        cmocka_unit_test(session_close_while_client_close_half_received),
        cmocka_unit_test(no_second_close_after_error_in_closing_state),
        cmocka_unit_test(keepalive_ping_only_while_open),
        cmocka_unit_test(protocol_errors_close_1002),
        cmocka_unit_test(protocol_error_after_good_message_keeps_echo),
        cmocka_unit_test(invalid_utf8_fails_before_frame_complete),
        cmocka_unit_test(invalid_utf8_in_streamed_frame_fails_at_bad_byte),
        cmocka_unit_test(invalid_utf8_in_continuation_1007),
        cmocka_unit_test(truncated_code_point_at_fin_1007),
        cmocka_unit_test(invalid_utf8_in_binary_is_echoed),
        cmocka_unit_test(message_over_max_1009_on_header),
        cmocka_unit_test(message_of_max_size_echoed),
        cmocka_unit_test(no_hold_budget_streams_partial_frames),
        cmocka_unit_test(fragmented_message_over_max_1009),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
