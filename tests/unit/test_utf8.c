/* utf8_validate / utf8_incomplete_len: strict RFC 3629 UTF-8, incremental across chunks, failing
 * at the first byte that can no longer be part of valid UTF-8 (design §3, Autobahn 6.*). */
#include "split.h"

#include "utf8.h"

#define NONE ((size_t)-1)

/* A byte string and the index of the first byte after which it can no longer be valid
 * (NONE: the string is valid UTF-8 as a whole). */
struct vec {
    const char *name;
    const char *bytes;
    size_t len;
    size_t bad_at;
};

#define VALID(name, s) { name, s, sizeof s - 1, NONE }
#define BAD(name, s, at) { name, s, sizeof s - 1, at }

/* "κόσμε", Markus Kuhn's UTF-8 test word used by Autobahn 6.*. */
#define KOSME "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"
#define KOSME_LEN 11

struct feed_ctx {
    uint8_t state;
    size_t rejected_in_chunk_at; /* offset of the chunk that first produced UTF8_REJECT */
    size_t rejected_chunk_end;
};

static bool feed_chunk(void *ctx, uint8_t *chunk, size_t len, size_t pos)
{
    struct feed_ctx *c = ctx;
    c->state = utf8_validate(c->state, chunk, len);
    if (c->state == UTF8_REJECT) {
        c->rejected_in_chunk_at = pos;
        c->rejected_chunk_end = pos + len;
        return false;
    }
    return true;
}

/* Feeds v under every split. A valid vector must end in ACCEPT; an invalid one must be rejected
 * in exactly the chunk that holds its first impossible byte, and not before. */
static void check_vec(const struct vec *v)
{
    for_each_split(sp, v->len) {
        struct feed_ctx c = { .state = UTF8_ACCEPT };
        split_feed(&sp, v->bytes, v->len, feed_chunk, &c);
        if (v->bad_at == NONE) {
            if (c.state != UTF8_ACCEPT)
                fail_msg("[%s] %s: valid input ended in state %u", sp.name, v->name, c.state);
        } else if (c.state != UTF8_REJECT) {
            fail_msg("[%s] %s: not rejected (state %u)", sp.name, v->name, c.state);
        } else if (!(c.rejected_in_chunk_at <= v->bad_at && v->bad_at < c.rejected_chunk_end)) {
            fail_msg("[%s] %s: rejected in chunk [%zu,%zu), first bad byte is %zu", sp.name,
                     v->name, c.rejected_in_chunk_at, c.rejected_chunk_end, v->bad_at);
        }
    }
}

static void check_vecs(const struct vec *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_vec(&v[i]);
}

#define CHECK_VECS(v) check_vecs(v, sizeof v / sizeof v[0])

/* ---- valid input ------------------------------------------------------------------------------ */

static void valid_samples_at_every_split(void **state)
{
    (void)state;
    static const struct vec v[] = {
        VALID("empty", ""),
        VALID("ascii", "Hello, world! 0123456789 ~"),
        VALID("nul and del", "\x00\x7F"),
        VALID("2-byte U+0080", "\xC2\x80"),
        VALID("2-byte U+07FF", "\xDF\xBF"),
        VALID("kosme", KOSME),
        VALID("3-byte U+0800", "\xE0\xA0\x80"),
        VALID("euro sign", "\xE2\x82\xAC"),
        VALID("U+D7FF below surrogates", "\xED\x9F\xBF"),
        VALID("U+E000 above surrogates", "\xEE\x80\x80"),
        VALID("U+FFFF", "\xEF\xBF\xBF"),
        VALID("BOM", "\xEF\xBB\xBF" "text"),
        VALID("4-byte U+10000", "\xF0\x90\x80\x80"),
        VALID("emoji U+1F600", "\xF0\x9F\x98\x80"),
        VALID("U+10FFFF", "\xF4\x8F\xBF\xBF"),
        VALID("mixed", "a\xC3\xA9" "b\xE2\x82\xAC" "c\xF0\x9F\x98\x80" "d" KOSME "\xF4\x8F\xBF\xBF"),
    };
    CHECK_VECS(v);
}

/* The ASCII fast path reads eight bytes at a time; a multi-byte character at any alignment in
 * a long ASCII run must still be decoded, and a bad byte at any alignment still caught. */
static void multibyte_at_every_alignment_in_ascii_run(void **state)
{
    (void)state;
    static const char *const chars[] = { "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80" };
    uint8_t text[64];
    for (size_t c = 0; c < 3; c++) {
        size_t clen = strlen(chars[c]);
        for (size_t at = 0; at + clen <= sizeof text; at++) {
            memset(text, 'a', sizeof text);
            memcpy(text + at, chars[c], clen);
            uint8_t *p = guard_copy(text, sizeof text);
            assert_int_equal(utf8_validate(UTF8_ACCEPT, p, sizeof text), UTF8_ACCEPT);
        }
    }
    for (size_t at = 0; at < sizeof text; at++) {
        memset(text, 'a', sizeof text);
        text[at] = 0x80;
        uint8_t *p = guard_copy(text, sizeof text);
        assert_int_equal(utf8_validate(UTF8_ACCEPT, p, sizeof text), UTF8_REJECT);
        /* and not one byte earlier */
        p = guard_copy(text, at);
        assert_int_equal(utf8_validate(UTF8_ACCEPT, p, at), UTF8_ACCEPT);
    }
}

/* Every code point, encoded and fed as one chunk after another, is accepted. */
static void every_code_point_split_across_chunks(void **state)
{
    (void)state;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        uint8_t b[4];
        size_t n;
        if (cp < 0x80) {
            b[0] = (uint8_t)cp, n = 1;
        } else if (cp < 0x800) {
            b[0] = (uint8_t)(0xC0 | cp >> 6), b[1] = (uint8_t)(0x80 | (cp & 0x3F)), n = 2;
        } else if (cp < 0x10000) {
            b[0] = (uint8_t)(0xE0 | cp >> 12), b[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
            b[2] = (uint8_t)(0x80 | (cp & 0x3F)), n = 3;
        } else {
            b[0] = (uint8_t)(0xF0 | cp >> 18), b[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
            b[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F)), b[3] = (uint8_t)(0x80 | (cp & 0x3F));
            n = 4;
        }
        for (size_t cut = 0; cut <= n; cut++) {
            uint8_t s = utf8_validate(UTF8_ACCEPT, b, cut);
            if (cut < n && (s == UTF8_ACCEPT) != (cut == 0))
                fail_msg("U+%04X: state %u after %zu of %zu bytes", cp, s, cut, n);
            if (s == UTF8_REJECT || utf8_validate(s, b + cut, n - cut) != UTF8_ACCEPT)
                fail_msg("U+%04X rejected when cut after byte %zu", cp, cut);
        }
    }
}

/* ---- rejected input ----------------------------------------------------------------------------- */

static void overlong_encodings_rejected(void **state)
{
    (void)state;
    static const struct vec v[] = {
        BAD("C0 80 (overlong NUL)", "\xC0\x80", 0),
        BAD("C1 BF (overlong U+007F)", "\xC1\xBF", 0),
        BAD("E0 80 80 (overlong U+0000)", "\xE0\x80\x80", 1),
        BAD("E0 9F BF (overlong U+07FF)", "\xE0\x9F\xBF", 1),
        BAD("F0 80 80 80 (overlong U+0000)", "\xF0\x80\x80\x80", 1),
        BAD("F0 8F BF BF (overlong U+FFFF)", "\xF0\x8F\xBF\xBF", 1),
        BAD("overlong '/' after text", "abc\xC0\xAF", 3),
    };
    CHECK_VECS(v);
}

static void surrogate_d800_rejected(void **state)
{
    (void)state;
    static const struct vec v[] = {
        BAD("ED A0 80 (U+D800)", "\xED\xA0\x80", 1),
        BAD("ED AD BF (U+DB7F)", "\xED\xAD\xBF", 1),
        BAD("ED B0 80 (U+DC00)", "\xED\xB0\x80", 1),
        BAD("ED BF BF (U+DFFF)", "\xED\xBF\xBF", 1),
        BAD("surrogate pair U+D800 U+DC00", "\xED\xA0\x80\xED\xB0\x80", 1),
    };
    CHECK_VECS(v);
    for (uint32_t cp = 0xD800; cp <= 0xDFFF; cp++) {
        uint8_t b[3] = { 0xED, (uint8_t)(0x80 | (cp >> 6 & 0x3F)), (uint8_t)(0x80 | (cp & 0x3F)) };
        assert_int_equal(utf8_validate(UTF8_ACCEPT, b, 2), UTF8_REJECT);
    }
}

static void above_10ffff_rejected(void **state)
{
    (void)state;
    static const struct vec v[] = {
        BAD("F4 90 80 80 (U+110000)", "\xF4\x90\x80\x80", 1),
        BAD("F4 BF BF BF", "\xF4\xBF\xBF\xBF", 1),
        BAD("F5 lead", "\xF5\x80\x80\x80", 0),
        BAD("F7 BF BF BF (U+1FFFFF)", "\xF7\xBF\xBF\xBF", 0),
        BAD("F8 5-byte lead", "\xF8\x88\x80\x80\x80", 0),
        BAD("FC 6-byte lead", "\xFC\x84\x80\x80\x80\x80", 0),
        BAD("FE", "a\xFE", 1),
        BAD("FF", "a\xFF", 1),
    };
    CHECK_VECS(v);
    for (unsigned lead = 0xF5; lead <= 0xFF; lead++) {
        uint8_t b = (uint8_t)lead;
        assert_int_equal(utf8_validate(UTF8_ACCEPT, &b, 1), UTF8_REJECT);
    }
}

static void lone_continuation_rejected(void **state)
{
    (void)state;
    static const struct vec v[] = {
        BAD("80 first", "\x80", 0),
        BAD("BF first", "\xBF", 0),
        BAD("80 after ascii", "a\x80", 1),
        BAD("extra continuation after 2-byte", "\xC3\xA9\x80", 2),
        BAD("extra continuation after 4-byte", "\xF0\x9F\x98\x80\xBF", 4),
    };
    CHECK_VECS(v);
}

static void interrupted_sequence_rejected(void **state)
{
    (void)state;
    static const struct vec v[] = {
        BAD("2-byte lead then ascii", "\xC3" "a", 1),
        BAD("3-byte lead, 1 cont, then ascii", "\xE2\x82" "a", 2),
        BAD("4-byte lead, 2 cont, then new lead", "\xF0\x9F\x98\xC3\xA9", 3),
    };
    CHECK_VECS(v);
}

/* A truncated sequence is neither accepted nor rejected: more bytes may complete it. */
static void truncated_sequence_not_accept(void **state)
{
    (void)state;
    static const char *const tails[] = {
        "\xC3", "\xE2", "\xE2\x82", "\xF0", "\xF0\x9F", "\xF0\x9F\x98", "\xE0\xA0", "\xED\x9F",
        "\xF4\x8F\xBF", "abc" KOSME "\xCE",
    };
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        size_t n = strlen(tails[i]);
        uint8_t s = utf8_validate(UTF8_ACCEPT, guard_copy(tails[i], n), n);
        if (s == UTF8_ACCEPT || s == UTF8_REJECT)
            fail_msg("truncated sample %zu ended in state %u", i, s);
    }
}

/* Autobahn 6.4.x: the validator must fail at the first impossible byte of a frame, not at its
 * end; "κόσμε" followed by ED A0 is already hopeless with bytes still to come. */
static void fail_fast_after_kosme_then_ed_a0(void **state)
{
    (void)state;
    static const uint8_t head[] = KOSME "\xED\xA0";
    uint8_t s = utf8_validate(UTF8_ACCEPT, guard_copy(head, sizeof head - 1), sizeof head - 1);
    assert_int_equal(s, UTF8_REJECT);
    s = utf8_validate(UTF8_ACCEPT, guard_copy(head, KOSME_LEN + 1), KOSME_LEN + 1);
    assert_int_not_equal(s, UTF8_REJECT);

    static const struct vec v[] = {
        BAD("6.4.1 kosme F4 90 80 80 edited", KOSME "\xF4\x90\x80\x80" "edited", KOSME_LEN + 1),
        BAD("6.4.3 kosme ED A0 80 edited", KOSME "\xED\xA0\x80" "edited", KOSME_LEN + 1),
        BAD("kosme F8", KOSME "\xF8\x88\x80\x80\x80" "edited", KOSME_LEN),
    };
    CHECK_VECS(v);
}

static void reject_state_is_sticky(void **state)
{
    (void)state;
    uint8_t *p = guard_copy("abc", 3);
    assert_int_equal(utf8_validate(UTF8_REJECT, p, 3), UTF8_REJECT);
    assert_int_equal(utf8_validate(UTF8_REJECT, p, 0), UTF8_REJECT);
    assert_int_equal(utf8_validate(UTF8_ACCEPT, p, 0), UTF8_ACCEPT);
}

/* ---- utf8_incomplete_len ------------------------------------------------------------------------ */

static size_t incomplete_len_of(const char *run)
{
    size_t n = strlen(run);
    const uint8_t *p = guard_copy(run, n);
    return utf8_incomplete_len(p, n, utf8_validate(UTF8_ACCEPT, p, n));
}

static void incomplete_len_of_tails(void **state)
{
    (void)state;
    assert_int_equal(incomplete_len_of(""), 0);
    assert_int_equal(incomplete_len_of("abc"), 0);
    assert_int_equal(incomplete_len_of("abc\xC3\xA9"), 0);
    assert_int_equal(incomplete_len_of("\xF0\x9F\x98\x80"), 0);
    assert_int_equal(incomplete_len_of("ab\xC2"), 1); /* the lowest lead byte */
    assert_int_equal(incomplete_len_of("\xC3"), 1);
    assert_int_equal(incomplete_len_of("abc\xC3"), 1);
    assert_int_equal(incomplete_len_of("\xE2"), 1);
    assert_int_equal(incomplete_len_of("abc\xE2\x82"), 2);
    assert_int_equal(incomplete_len_of("\xF0\x9F"), 2);
    assert_int_equal(incomplete_len_of("\xF0\x9F\x98"), 3);
    assert_int_equal(incomplete_len_of(KOSME "\xF0\x9F\x98"), 3);
    assert_int_equal(incomplete_len_of("\xE2\x82\xAC\xE2\x82"), 2);
    /* Only the tail matters: the run may be longer than what is passed. */
    static const uint8_t run[] = "abcdef\xF4\x8F\xBF";
    uint8_t s = utf8_validate(UTF8_ACCEPT, run, sizeof run - 1);
    assert_int_equal(utf8_incomplete_len(run + 6, 3, s), 3);
}

/* ---- against an independent reference ---------------------------------------------------------- */

enum ref_class { REF_ACCEPT, REF_INCOMPLETE, REF_REJECT };

/* Decodes p[0..n) the slow, obvious way. A truncated final sequence is INCOMPLETE if some
 * continuation bytes could still complete it into a valid scalar value, else REJECT. */
static enum ref_class ref_classify(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        uint32_t cp, min;
        size_t len;
        if (b < 0x80) {
            i++;
            continue;
        } else if (b >= 0xC0 && b < 0xE0) {
            len = 2, cp = b & 0x1F, min = 0x80;
        } else if (b >= 0xE0 && b < 0xF0) {
            len = 3, cp = b & 0x0F, min = 0x800;
        } else if (b >= 0xF0 && b < 0xF8) {
            len = 4, cp = b & 0x07, min = 0x10000;
        } else {
            return REF_REJECT;
        }
        size_t have = 1;
        for (; have < len && i + have < n; have++) {
            if ((p[i + have] & 0xC0) != 0x80)
                return REF_REJECT;
            cp = cp << 6 | (p[i + have] & 0x3F);
        }
        unsigned missing_bits = 6 * (unsigned)(len - have);
        uint32_t lo = cp << missing_bits, hi = lo | ((1u << missing_bits) - 1);
        if (lo < min)
            lo = min;
        if (hi > 0x10FFFF)
            hi = 0x10FFFF;
        if (lo > hi || (lo >= 0xD800 && hi <= 0xDFFF))
            return REF_REJECT; /* no completion is a valid scalar value */
        if (have < len)
            return REF_INCOMPLETE;
        i += len;
    }
    return REF_ACCEPT;
}

static enum ref_class state_class(uint8_t s)
{
    return s == UTF8_ACCEPT ? REF_ACCEPT : s == UTF8_REJECT ? REF_REJECT : REF_INCOMPLETE;
}

static void compare_with_reference(const uint8_t *p, size_t n, uint8_t state)
{
    enum ref_class want = ref_classify(p, n);
    if (state_class(state) != want) {
        char hex[3 * 8 + 1] = "";
        for (size_t i = 0; i < n && i < 8; i++)
            snprintf(hex + 3 * i, 4, "%02X ", p[i]);
        fail_msg("%s: validator state %u, reference says %s", hex, state,
                 want == REF_ACCEPT ? "accept" : want == REF_REJECT ? "reject" : "incomplete");
    }
}

/* Every 1-, 2- and 3-byte string, each byte fed as its own chunk: since every prefix is also
 * compared, this pins fail-fast behaviour exactly, not just the final verdict. */
static void matches_reference_all_1_2_3_byte_strings(void **state)
{
    (void)state;
    uint8_t b[3];
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (uint8_t)x;
        uint8_t s1 = utf8_validate(UTF8_ACCEPT, b, 1);
        compare_with_reference(b, 1, s1);
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (uint8_t)y;
            uint8_t s2 = utf8_validate(s1, b + 1, 1);
            compare_with_reference(b, 2, s2);
            assert_int_equal(utf8_validate(UTF8_ACCEPT, b, 2), s2);
            for (unsigned z = 0; z < 256; z++) {
                b[2] = (uint8_t)z;
                compare_with_reference(b, 3, utf8_validate(s2, b + 2, 1));
            }
        }
    }
}

static uint32_t xorshift32(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* Random bytes rarely form 4-byte sequences, so draw mostly leads F0..F4 and continuations. */
static uint8_t biased_byte(uint32_t *rng)
{
    uint32_t r = xorshift32(rng);
    switch (r & 3) {
    case 0: return (uint8_t)(0xEE + (r >> 8) % 8);   /* EE..F5 */
    case 1: case 2: return (uint8_t)(0x80 + (r >> 8) % 64);
    default: return (uint8_t)(r >> 8);
    }
}

static void matches_reference_random_4_byte_strings(void **state)
{
    (void)state;
    uint32_t rng = 0x9E3779B9u;
    uint8_t b[4];
    for (int iter = 0; iter < 2000000; iter++) {
        for (int i = 0; i < 4; i++)
            b[i] = biased_byte(&rng);
        uint8_t s = UTF8_ACCEPT;
        for (size_t i = 0; i < 4; i++) {
            s = utf8_validate(s, b + i, 1);
            compare_with_reference(b, i + 1, s);
        }
        assert_int_equal(utf8_validate(UTF8_ACCEPT, b, 4), s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_samples_at_every_split),
        cmocka_unit_test(multibyte_at_every_alignment_in_ascii_run),
        cmocka_unit_test(every_code_point_split_across_chunks),
        cmocka_unit_test(overlong_encodings_rejected),
        cmocka_unit_test(surrogate_d800_rejected),
        cmocka_unit_test(above_10ffff_rejected),
        cmocka_unit_test(lone_continuation_rejected),
        cmocka_unit_test(interrupted_sequence_rejected),
        cmocka_unit_test(truncated_sequence_not_accept),
        cmocka_unit_test(fail_fast_after_kosme_then_ed_a0),
        cmocka_unit_test(reject_state_is_sticky),
        cmocka_unit_test(incomplete_len_of_tails),
        cmocka_unit_test(matches_reference_all_1_2_3_byte_strings),
        cmocka_unit_test(matches_reference_random_4_byte_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
