/* frame_decode / frame_header_encode / ws_unmask: RFC 6455 §5.2 framing of client frames,
 * incremental across reads, refusing a bad frame at the earliest byte that shows it is bad. */
#include "split.h"

#include "frame.h"

/* ---- building client frames ------------------------------------------------------------------- */

enum len_form { LEN_MINIMAL, LEN_16, LEN_64 };

static const uint8_t test_mask[4] = { 0x37, 0xFA, 0x21, 0x3D }; /* RFC 6455 §5.7's example */

/* Writes a masked client frame header with the given length encoding; returns its size. */
static size_t put_header(uint8_t *out, uint8_t b0, uint64_t len, enum len_form form,
                         const uint8_t mask[4])
{
    size_t n = 0;
    out[n++] = b0;
    if (form == LEN_MINIMAL && len < 126) {
        out[n++] = (uint8_t)(0x80 | len);
    } else if (form == LEN_16 || (form == LEN_MINIMAL && len <= 0xFFFF)) {
        out[n++] = 0x80 | 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            out[n++] = (uint8_t)(len >> (8 * i));
    }
    memcpy(out + n, mask, 4);
    return n + 4;
}

/* Appends a complete masked frame; returns its size. */
static size_t put_frame(uint8_t *out, bool fin, uint8_t op, const void *payload, size_t len,
                        const uint8_t mask[4])
{
    size_t h = put_header(out, (uint8_t)((fin ? 0x80 : 0) | op), len, LEN_MINIMAL, mask);
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++)
        out[h + i] = p[i] ^ mask[i % 4];
    return h + len;
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* ---- decoding into a record of events --------------------------------------------------------- */

#define MAX_FRAMES 4

struct decoded {
    struct frame_decoder dec;
    size_t frames;             /* FRAME_HEADER events */
    uint8_t opcode[MAX_FRAMES];
    bool fin[MAX_FRAMES];
    uint64_t len[MAX_FRAMES];
    size_t ends[MAX_FRAMES];   /* FRAME_PAYLOAD events with end */
    size_t got[MAX_FRAMES];    /* payload bytes received */
    uint8_t *payload;          /* the payloads back to back, unmasked */
    size_t payload_len;
    const char *error;
    size_t error_chunk_start, error_chunk_end;
};

static bool decode_chunk(void *ctx, uint8_t *chunk, size_t n, size_t pos)
{
    struct decoded *d = ctx;
    size_t used = 0;
    for (;;) {
        struct frame_result r;
        size_t step = frame_decode(&d->dec, chunk + used, n - used, &r);
        assert_true(step <= n - used);
        used += step;
        switch (r.event) {
        case FRAME_NEED_MORE:
            assert_int_equal(used, n); /* "all input consumed" */
            return true;
        case FRAME_ERROR:
            assert_non_null(r.reason);
            d->error = r.reason;
            d->error_chunk_start = pos;
            d->error_chunk_end = pos + n;
            return false;
        case FRAME_HEADER:
            assert_true(d->frames < MAX_FRAMES);
            d->opcode[d->frames] = d->dec.opcode;
            d->fin[d->frames] = d->dec.fin;
            d->len[d->frames] = r.len;
            d->frames++;
            break;
        case FRAME_PAYLOAD: {
            assert_true(d->frames > 0);
            size_t f = d->frames - 1;
            assert_int_equal(d->ends[f], 0); /* nothing after a frame's end */
            assert_true(r.len > 0 || r.end); /* no empty progress reports */
            assert_true(d->got[f] + r.len <= d->len[f]);
            if (r.len)
                memcpy(d->payload + d->payload_len, r.data, r.len);
            d->payload_len += r.len;
            d->got[f] += r.len;
            d->ends[f] += r.end;
            assert_int_equal(r.end, d->got[f] == d->len[f]);
            break;
        }
        }
    }
}

/* Decodes wire[0..n) as sp says into a fresh record whose payload space is `space`. */
static void decode(struct decoded *d, const struct split *sp, const uint8_t *wire, size_t n,
                   uint8_t *space)
{
    memset(d, 0, sizeof *d);
    d->payload = space;
    split_feed(sp, wire, n, decode_chunk, d);
}

/* ---- headers and payloads ---------------------------------------------------------------------- */

/* One frame of each payload size decodes to the right header and unmasked payload, however the
 * bytes are cut (header split points included). */
static void check_one_frame(uint8_t op, bool fin, size_t len, enum len_form form)
{
    uint8_t *payload = malloc(len + 1), *wire = malloc(len + WS_MAX_HEADER),
            *space = malloc(len + 1);
    assert_non_null(payload), assert_non_null(wire), assert_non_null(space);
    fill_pattern(payload, len, (uint32_t)len);
    size_t h = put_header(wire, (uint8_t)((fin ? 0x80 : 0) | op), len, form, test_mask);
    for (size_t i = 0; i < len; i++)
        wire[h + i] = payload[i] ^ test_mask[i % 4]; /* bytewise reference masking */
    size_t n = h + len;
    for_each_split_near_ends(sp, n, len > 300 ? 40 : 0) {
        struct decoded d;
        decode(&d, &sp, wire, n, space);
        split_assert(&sp, d.error == NULL);
        split_assert_int(&sp, d.frames, 1);
        split_assert_int(&sp, d.opcode[0], op);
        split_assert_int(&sp, d.fin[0], fin);
        split_assert_int(&sp, d.len[0], len);
        split_assert_int(&sp, d.ends[0], 1);
        split_assert_int(&sp, d.payload_len, len);
        split_assert_mem(&sp, space, payload, len);
    }
    free(payload), free(wire), free(space);
}

static void len7_header_and_payload(void **state)
{
    (void)state;
    check_one_frame(WS_OP_TEXT, true, 1, LEN_MINIMAL);
    check_one_frame(WS_OP_BINARY, true, 5, LEN_MINIMAL);
    check_one_frame(WS_OP_BINARY, false, 37, LEN_MINIMAL);
    check_one_frame(WS_OP_CONT, true, 125, LEN_MINIMAL);
    check_one_frame(WS_OP_PING, true, 125, LEN_MINIMAL);
    check_one_frame(WS_OP_CLOSE, true, 2, LEN_MINIMAL);
}

static void len16_header_and_payload(void **state)
{
    (void)state;
    check_one_frame(WS_OP_BINARY, true, 126, LEN_16);
    check_one_frame(WS_OP_TEXT, false, 127, LEN_16);
    check_one_frame(WS_OP_BINARY, true, 1000, LEN_16);
    check_one_frame(WS_OP_BINARY, true, 65535, LEN_16);
}

static void len64_header_and_payload(void **state)
{
    (void)state;
    check_one_frame(WS_OP_BINARY, true, 65536, LEN_64);
    check_one_frame(WS_OP_CONT, false, 70001, LEN_64);
}

/* Huge lengths are reported from the header alone; the payload never needs to be buffered. */
static void len64_huge_header_only(void **state)
{
    (void)state;
    static const uint64_t lens[] = { 1ull << 32, (1ull << 63) - 1 };
    for (size_t i = 0; i < 2; i++) {
        uint8_t wire[WS_MAX_HEADER + 3];
        size_t n = put_header(wire, 0x82, lens[i], LEN_64, test_mask);
        memcpy(wire + n, "\x01\x02\x03", 3);
        for_each_split(sp, n + 3) {
            uint8_t space[3];
            struct decoded d;
            decode(&d, &sp, wire, n + 3, space);
            split_assert(&sp, d.error == NULL);
            split_assert_int(&sp, d.frames, 1);
            split_assert(&sp, d.len[0] == lens[i]);
            split_assert_int(&sp, d.got[0], 3);
            split_assert_int(&sp, d.ends[0], 0);
        }
    }
}

/* An empty payload is one FRAME_PAYLOAD with len 0 and end, for data and control frames. */
static void empty_payload_one_end_event(void **state)
{
    (void)state;
    static const uint8_t ops[] = { WS_OP_TEXT, WS_OP_BINARY, WS_OP_CONT, WS_OP_PING, WS_OP_PONG,
                                   WS_OP_CLOSE };
    for (size_t i = 0; i < sizeof ops; i++) {
        uint8_t wire[WS_MAX_HEADER];
        size_t n = put_frame(wire, true, ops[i], NULL, 0, test_mask);
        for_each_split(sp, n) {
            uint8_t space[1];
            struct decoded d;
            decode(&d, &sp, wire, n, space);
            split_assert(&sp, d.error == NULL);
            split_assert_int(&sp, d.frames, 1);
            split_assert_int(&sp, d.len[0], 0);
            split_assert_int(&sp, d.ends[0], 1);
        }
    }
}

static void two_frames_in_one_buffer(void **state)
{
    (void)state;
    static const uint8_t mask2[4] = { 0xFF, 0x00, 0x80, 0x01 };
    uint8_t wire[2 * WS_MAX_HEADER + 300];
    size_t n = put_frame(wire, false, WS_OP_TEXT, "Hello, ", 7, test_mask);
    uint8_t second[200];
    fill_pattern(second, sizeof second, 7);
    n += put_frame(wire + n, true, WS_OP_CONT, second, sizeof second, mask2);
    n += put_frame(wire + n, true, WS_OP_PING, NULL, 0, mask2);
    uint8_t expect[7 + sizeof second];
    memcpy(expect, "Hello, ", 7);
    memcpy(expect + 7, second, sizeof second);
    for_each_split(sp, n) {
        uint8_t space[sizeof expect];
        struct decoded d;
        decode(&d, &sp, wire, n, space);
        split_assert(&sp, d.error == NULL);
        split_assert_int(&sp, d.frames, 3);
        split_assert_int(&sp, d.opcode[0], WS_OP_TEXT);
        split_assert_int(&sp, d.fin[0], false);
        split_assert_int(&sp, d.opcode[1], WS_OP_CONT);
        split_assert_int(&sp, d.fin[1], true);
        split_assert_int(&sp, d.len[1], sizeof second);
        split_assert_int(&sp, d.opcode[2], WS_OP_PING);
        split_assert_int(&sp, d.ends[0] + d.ends[1] + d.ends[2], 3);
        split_assert_int(&sp, d.payload_len, sizeof expect);
        split_assert_mem(&sp, space, expect, sizeof expect);
    }
}

/* ---- errors ------------------------------------------------------------------------------------ */

/* wire must fail with a FRAME_ERROR reported in the chunk that holds byte `first` or a later
 * one, and no later than the chunk that holds byte `latest` (first == latest: exactly there). */
static void check_error_between(const uint8_t *wire, size_t n, size_t first, size_t latest,
                                const char *what)
{
    for_each_split(sp, n) {
        uint8_t space[256];
        struct decoded d;
        assert_true(n <= sizeof space);
        decode(&d, &sp, wire, n, space);
        if (!d.error)
            fail_msg("[%s] %s: no error", sp.name, what);
        if (d.error_chunk_end <= first || d.error_chunk_start > latest)
            fail_msg("[%s] %s: error in chunk [%zu,%zu), expected at byte %zu..%zu", sp.name,
                     what, d.error_chunk_start, d.error_chunk_end, first, latest);
    }
}

static void check_error_at(const uint8_t *wire, size_t n, size_t at, const char *what)
{
    check_error_between(wire, n, at, at, what);
}

static void rsv_bits_rejected_on_first_byte(void **state)
{
    (void)state;
    static const uint8_t rsv[] = { 0x40, 0x20, 0x10, 0x70 };
    for (size_t i = 0; i < sizeof rsv; i++) {
        uint8_t wire[32];
        size_t n = put_frame(wire, true, WS_OP_TEXT, "Hello", 5, test_mask);
        wire[0] |= rsv[i];
        check_error_at(wire, n, 0, "RSV bit set");
        wire[0] = 0x80 | rsv[i] | WS_OP_PING; /* on control frames too */
        check_error_at(wire, n, 0, "RSV bit set on ping");
    }
}

static void reserved_opcodes_rejected_on_first_byte(void **state)
{
    (void)state;
    static const uint8_t reserved[] = { 3, 4, 5, 6, 7, 11, 12, 13, 14, 15 };
    for (size_t i = 0; i < sizeof reserved; i++) {
        uint8_t wire[32];
        size_t n = put_frame(wire, true, reserved[i], "x", 1, test_mask);
        check_error_at(wire, n, 0, "reserved opcode");
        wire[0] &= 0x7F; /* not FIN */
        check_error_at(wire, n, 0, "reserved opcode without FIN");
    }
}

static void fragmented_control_frame_rejected_on_first_byte(void **state)
{
    (void)state;
    static const uint8_t ops[] = { WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG };
    for (size_t i = 0; i < sizeof ops; i++) {
        uint8_t wire[32];
        size_t n = put_frame(wire, false, ops[i], "ab", 2, test_mask);
        check_error_at(wire, n, 0, "control frame without FIN");
    }
}

static void unmasked_frame_rejected_on_second_byte(void **state)
{
    (void)state;
    static const uint8_t text[] = { 0x81, 0x05, 'H', 'e', 'l', 'l', 'o' };
    check_error_at(text, sizeof text, 1, "unmasked text");
    static const uint8_t ping[] = { 0x89, 0x00 };
    check_error_at(ping, sizeof ping, 1, "unmasked empty ping");
    static const uint8_t len16[] = { 0x82, 0x7E, 0x00, 0x80 };
    check_error_at(len16, sizeof len16, 1, "unmasked 16-bit length");
}

static void control_len_over_125_rejected_on_second_byte(void **state)
{
    (void)state;
    static const uint8_t ops[] = { WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG };
    for (size_t i = 0; i < sizeof ops; i++) {
        uint8_t wire[WS_MAX_HEADER + 130];
        uint8_t payload[126] = { 0 };
        size_t n = put_frame(wire, true, ops[i], payload, 126, test_mask);
        assert_int_equal(wire[1], 0x80 | 126);
        check_error_at(wire, n, 1, "control frame with 16-bit length");
        n = put_header(wire, (uint8_t)(0x80 | ops[i]), 200, LEN_64, test_mask);
        check_error_at(wire, n, 1, "control frame with 64-bit length");
        /* even a 16-bit form that declares only 5 bytes */
        n = put_header(wire, (uint8_t)(0x80 | ops[i]), 5, LEN_16, test_mask);
        check_error_at(wire, n, 1, "control frame with 16-bit form");
    }
}

static void len64_msb_set_rejected(void **state)
{
    (void)state;
    uint8_t wire[WS_MAX_HEADER];
    size_t n = put_header(wire, 0x82, 1ull << 63, LEN_64, test_mask);
    check_error_between(wire, n, 2, n - 1, "64-bit length with MSB set");
    n = put_header(wire, 0x82, UINT64_MAX, LEN_64, test_mask);
    check_error_between(wire, n, 2, n - 1, "64-bit length of all ones");
}

static void minimal_16bit_length_required(void **state)
{
    (void)state;
    static const uint64_t lens[] = { 0, 1, 125 };
    for (size_t i = 0; i < 3; i++) {
        uint8_t wire[WS_MAX_HEADER];
        size_t n = put_header(wire, 0x82, lens[i], LEN_16, test_mask);
        check_error_between(wire, n, 3, n - 1, "non-minimal 16-bit length");
    }
}

static void minimal_64bit_length_required(void **state)
{
    (void)state;
    static const uint64_t lens[] = { 0, 125, 126, 65535 };
    for (size_t i = 0; i < 4; i++) {
        uint8_t wire[WS_MAX_HEADER];
        size_t n = put_header(wire, 0x82, lens[i], LEN_64, test_mask);
        check_error_between(wire, n, 9, n - 1, "non-minimal 64-bit length");
    }
}

/* A bad second frame fails after the first was delivered intact. */
static void error_in_second_frame_after_good_one(void **state)
{
    (void)state;
    uint8_t wire[64];
    size_t first = put_frame(wire, true, WS_OP_TEXT, "ok", 2, test_mask);
    size_t n = first + put_frame(wire + first, true, WS_OP_BINARY, "zz", 2, test_mask);
    wire[first] |= 0x40;
    for_each_split(sp, n) {
        uint8_t space[64];
        struct decoded d;
        decode(&d, &sp, wire, n, space);
        split_assert(&sp, d.error != NULL);
        split_assert_int(&sp, d.frames, 1);
        split_assert_int(&sp, d.ends[0], 1);
        split_assert_mem(&sp, space, "ok", 2);
    }
}

/* ---- encoder ------------------------------------------------------------------------------------ */

static void header_encode_round_trips(void **state)
{
    (void)state;
    static const struct { uint64_t len; size_t size; } cases[] = {
        { 0, 2 }, { 1, 2 }, { 125, 2 }, { 126, 4 }, { 127, 4 }, { 65535, 4 }, { 65536, 10 },
        { 1ull << 32, 10 }, { (1ull << 63) - 1, 10 },
    };
    static const uint8_t ops[] = { WS_OP_CONT, WS_OP_TEXT, WS_OP_BINARY };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t o = 0; o < sizeof ops; o++) {
            for (int fin = 0; fin <= 1; fin++) {
                uint8_t out[WS_MAX_SERVER_HEADER + 4];
                size_t h = frame_header_encode(out, fin, ops[o], cases[i].len);
                assert_int_equal(h, cases[i].size);
                assert_int_equal(out[0], (fin ? 0x80 : 0) | ops[o]);
                assert_int_equal(out[1] & 0x80, 0); /* server frames are not masked */
                /* Turn it into a client header and decode it. */
                out[1] |= 0x80;
                memcpy(out + h, test_mask, 4);
                struct frame_decoder dec = { 0 };
                struct frame_result r;
                uint8_t *p = guard_copy(out, h + 4);
                assert_int_equal(frame_decode(&dec, p, h + 4, &r), h + 4);
                assert_int_equal(r.event, FRAME_HEADER);
                assert_true(r.len == cases[i].len);
                assert_int_equal(dec.opcode, ops[o]);
                assert_int_equal(dec.fin, fin);
            }
        }
    }
    /* Control frames: the encoder is also used for Pong and Close. */
    uint8_t out[WS_MAX_SERVER_HEADER];
    assert_int_equal(frame_header_encode(out, true, WS_OP_CLOSE, 2), 2);
    assert_memory_equal(out, "\x88\x02", 2);
    assert_int_equal(frame_header_encode(out, true, WS_OP_PONG, 125), 2);
    assert_memory_equal(out, "\x8A\x7D", 2);
}

/* ---- unmasking ---------------------------------------------------------------------------------- */

static void unmask_every_offset_and_length(void **state)
{
    (void)state;
    static const uint8_t mask[4] = { 0xA5, 0x3C, 0x0F, 0xF0 };
    uint8_t src[48], expect[48];
    fill_pattern(src, sizeof src, 99);
    for (size_t len = 0; len <= 40; len++) {
        for (unsigned pos = 0; pos < 4; pos++) {
            for (size_t align = 0; align < 8; align++) {
                for (size_t i = 0; i < len; i++)
                    expect[i] = src[align + i] ^ mask[(pos + i) % 4];
                /* the data ends right before the guard page, starting at any alignment */
                uint8_t *p = guard_copy(src + align, len);
                unsigned next = ws_unmask(p, len, mask, pos);
                assert_int_equal(next, (pos + len) % 4);
                if (memcmp(p, expect, len) != 0)
                    fail_msg("ws_unmask wrong for len %zu pos %u align %zu", len, pos, align);
            }
        }
    }
}

/* Unmasking in two pieces, continuing at the returned position, equals one pass. */
static void unmask_in_two_pieces_equals_one(void **state)
{
    (void)state;
    uint8_t src[100], once[100], twice[100];
    fill_pattern(src, sizeof src, 5);
    memcpy(once, src, sizeof src);
    ws_unmask(once, sizeof once, test_mask, 0);
    for (size_t cut = 0; cut <= sizeof src; cut++) {
        memcpy(twice, src, sizeof src);
        unsigned pos = ws_unmask(twice, cut, test_mask, 0);
        ws_unmask(twice + cut, sizeof src - cut, test_mask, pos);
        assert_memory_equal(twice, once, sizeof src);
    }
}

/* RFC 6455 §5.7: a single-frame masked text message containing "Hello". */
static void rfc6455_masked_hello(void **state)
{
    (void)state;
    static const uint8_t wire[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                    0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    for_each_split(sp, sizeof wire) {
        uint8_t space[5];
        struct decoded d;
        decode(&d, &sp, wire, sizeof wire, space);
        split_assert(&sp, d.error == NULL);
        split_assert_int(&sp, d.frames, 1);
        split_assert_int(&sp, d.opcode[0], WS_OP_TEXT);
        split_assert_mem(&sp, space, "Hello", 5);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc6455_masked_hello),
        cmocka_unit_test(len7_header_and_payload),
        cmocka_unit_test(len16_header_and_payload),
        cmocka_unit_test(len64_header_and_payload),
        cmocka_unit_test(len64_huge_header_only),
        cmocka_unit_test(empty_payload_one_end_event),
        cmocka_unit_test(two_frames_in_one_buffer),
        cmocka_unit_test(rsv_bits_rejected_on_first_byte),
        cmocka_unit_test(reserved_opcodes_rejected_on_first_byte),
        cmocka_unit_test(fragmented_control_frame_rejected_on_first_byte),
        cmocka_unit_test(unmasked_frame_rejected_on_second_byte),
        cmocka_unit_test(control_len_over_125_rejected_on_second_byte),
        cmocka_unit_test(len64_msb_set_rejected),
        cmocka_unit_test(minimal_16bit_length_required),
        cmocka_unit_test(minimal_64bit_length_required),
        cmocka_unit_test(error_in_second_frame_after_good_one),
        cmocka_unit_test(header_encode_round_trips),
        cmocka_unit_test(unmask_every_offset_and_length),
        cmocka_unit_test(unmask_in_two_pieces_equals_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
