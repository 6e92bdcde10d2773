/* The wide unmask and ASCII-skip loops: every variant the CPU has must agree with the obvious
 * byte loop, at every length and alignment, and ws_unmask/utf8_validate must too. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"
#include "simd.h"
#include "utf8.h"

static void unmask_blocks_match_bytewise_xor_for_every_variant(void **state)
{
    (void)state;
    uint8_t src[200], dst[200], ref[200], key8[8] = { 0x11, 0x22, 0x33, 0x44, 0x11, 0x22, 0x33, 0x44 };
    for (int level = SIMD_SCALAR; level <= (int)simd_best(); level++) {
        for (size_t off = 0; off < 8; off++) {
            for (size_t n = 0; n <= 150; n++) {
                for (int in_place = 0; in_place < 2; in_place++) {
                    for (size_t i = 0; i < sizeof src; i++)
                        src[i] = ref[i] = dst[i] = (uint8_t)(i * 7 + n);
                    uint8_t *out = in_place ? src : dst, high = 0;
                    size_t done = simd_unmask_blocks((enum simd_level)level, out + off, src + off,
                                                     n, key8, &high);
                    assert_int_equal(done, n / 32 * 32);
                    uint8_t want_high = 0;
                    for (size_t i = 0; i < done; i++) {
                        ref[off + i] ^= key8[i % 8];
                        want_high |= ref[off + i] & 0x80;
                    }
                    assert_memory_equal(out, ref, sizeof ref); /* nothing else touched */
                    assert_int_equal(high, want_high);
                }
            }
        }
    }
}

static void unmask_copy_reports_non_ascii_plain_bytes(void **state)
{
    (void)state;
    const uint8_t mask[4] = { 0x80, 0x01, 0x02, 0x03 };
    uint8_t src[100], dst[100];
    for (size_t n = 1; n < sizeof src; n++) {
        for (size_t i = 0; i < n; i++)
            src[i] = (uint8_t)('a' ^ mask[i & 3]); /* plain text: all 'a' */
        bool non_ascii = true;
        ws_unmask_copy(dst, src, n, mask, 0, &non_ascii);
        assert_false(non_ascii);
        src[n - 1] ^= 0x80; /* the last plain byte becomes 0xE1 */
        ws_unmask_copy(dst, src, n, mask, 0, &non_ascii);
        assert_true(non_ascii);
        assert_int_equal(dst[n - 1], 'a' ^ 0x80);
    }
}

static void ascii_blocks_stop_at_the_block_with_a_high_byte(void **state)
{
    (void)state;
    uint8_t buf[160];
    for (int level = SIMD_SCALAR; level <= (int)simd_best(); level++) {
        memset(buf, 'a', sizeof buf);
        assert_int_equal(simd_ascii_blocks((enum simd_level)level, buf, sizeof buf), 160);
        assert_int_equal(simd_ascii_blocks((enum simd_level)level, buf, 31), 0);
        for (size_t pos = 0; pos < sizeof buf; pos++) {
            memset(buf, 'a', sizeof buf);
            buf[pos] = 0x80;
            assert_int_equal(simd_ascii_blocks((enum simd_level)level, buf, sizeof buf),
                             pos / 32 * 32);
        }
    }
}

static void unmask_long_buffers_at_every_mask_offset(void **state)
{
    (void)state;
    const uint8_t mask[4] = { 0xA1, 0xB2, 0xC3, 0xD4 };
    uint8_t buf[300], ref[300];
    for (unsigned pos = 0; pos < 4; pos++)
        for (size_t n = 0; n < sizeof buf; n += 13) {
            for (size_t i = 0; i < n; i++)
                buf[i] = ref[i] = (uint8_t)(i ^ 0x5A);
            unsigned next = ws_unmask(buf, n, mask, pos);
            for (size_t i = 0; i < n; i++)
                ref[i] ^= mask[(pos + i) & 3];
            assert_memory_equal(buf, ref, n);
            assert_int_equal(next, (pos + n) & 3);
        }
}

/* ws_unmask_copy aligns its wide stores to dst: every dst alignment, source offset, mask
 * position and a length on each side of the threshold must still give the byte loop's result,
 * and a high byte in the unaligned head must still count as non-ASCII. */
static void unmask_copy_at_every_alignment(void **state)
{
    (void)state;
    const uint8_t mask[4] = { 0x3A, 0x71, 0x9C, 0x05 };
    static uint8_t src[600] __attribute__((aligned(64))), dst[600] __attribute__((aligned(64)));
    static uint8_t ref[600];
    static const size_t lens[] = { 127, 128, 129, 200, 333, 511 };
    for (size_t d = 0; d < 64; d++)
        for (size_t so = 0; so < 3; so++)
            for (unsigned pos = 0; pos < 4; pos++)
                for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
                    size_t n = lens[li];
                    for (size_t i = 0; i < n; i++)
                        src[so + i] = (uint8_t)(('a' + i % 26) ^ mask[(pos + i) & 3]);
                    src[so + d % n] ^= 0x80; /* one high plain byte, often in the head */
                    for (size_t i = 0; i < n; i++)
                        ref[i] = src[so + i] ^ mask[(pos + i) & 3];
                    bool non_ascii = false;
                    unsigned next = ws_unmask_copy(dst + d, src + so, n, mask, pos, &non_ascii);
                    assert_int_equal(next, (pos + n) & 3);
                    assert_memory_equal(dst + d, ref, n);
                    assert_true(non_ascii);
                    src[so + d % n] ^= 0x80;
                    ws_unmask_copy(src + so, src + so, n, mask, pos, &non_ascii); /* in place */
                    assert_false(non_ascii);
                    ref[d % n] ^= 0x80;
                    assert_memory_equal(src + so, ref, n);
                }
}

static void utf8_fast_path_still_rejects_a_bad_byte_after_long_ascii(void **state)
{
    (void)state;
    uint8_t buf[256];
    for (size_t pos = 0; pos < sizeof buf; pos++) {
        memset(buf, 'x', sizeof buf);
        buf[pos] = 0xC0; /* never valid */
        assert_int_equal(utf8_validate(UTF8_ACCEPT, buf, sizeof buf), UTF8_REJECT);
        assert_int_not_equal(utf8_validate(UTF8_ACCEPT, buf, pos), UTF8_REJECT);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unmask_blocks_match_bytewise_xor_for_every_variant),
        cmocka_unit_test(unmask_copy_reports_non_ascii_plain_bytes),
        cmocka_unit_test(ascii_blocks_stop_at_the_block_with_a_high_byte),
        cmocka_unit_test(unmask_long_buffers_at_every_mask_offset),
        cmocka_unit_test(unmask_copy_at_every_alignment),
        cmocka_unit_test(utf8_fast_path_still_rejects_a_bad_byte_after_long_ascii),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
