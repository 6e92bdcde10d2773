/* Wide byte loops for the hot path: XOR-unmasking and skipping ASCII. Each has a scalar, an SSE2,
 * an AVX2 and an AVX-512 variant; simd_best() picks the widest the CPU runs well, at run time.
 * The variants are public so tests and micro-benchmarks can check and time each one. */
#ifndef WEBSOCK_SIMD_H
#define WEBSOCK_SIMD_H

#include <stddef.h>
#include <stdint.h>

enum simd_level { SIMD_SCALAR, SIMD_SSE2, SIMD_AVX2, SIMD_AVX512 };

enum simd_level simd_best(void);
const char *simd_name(enum simd_level level);

/* dst = src XOR key8 (the mask repeated, lined up with src[0]) for whole 32-byte blocks; dst may
 * be src. ORs the high bits of the results into *high, so one pass also tells whether the
 * plain bytes were all ASCII. Returns the number of bytes done (n rounded down to 32). */
size_t simd_unmask_blocks(enum simd_level level, uint8_t *dst, const uint8_t *src, size_t n,
                          const uint8_t key8[8], uint8_t *high);

/* Length of the all-ASCII prefix of p, counted in whole 32-byte blocks. */
size_t simd_ascii_blocks(enum simd_level level, const uint8_t *p, size_t n);

#endif
