/* Wide byte loops for the hot path: XOR-unmasking and skipping ASCII. Each has a scalar, an SSE2
 * and an AVX2 variant; simd_best() picks the widest the CPU has at run time. The variants are
 * public so tests and micro-benchmarks can check and time each one. */
#ifndef WEBSOCK_SIMD_H
#define WEBSOCK_SIMD_H

#include <stddef.h>
#include <stdint.h>

enum simd_level { SIMD_SCALAR, SIMD_SSE2, SIMD_AVX2 };

enum simd_level simd_best(void);
const char *simd_name(enum simd_level level);

/* XORs whole 32-byte blocks of p with key8 (the mask repeated, lined up with p[0]); returns the
 * number of bytes done (n rounded down to 32). */
size_t simd_xor_blocks(enum simd_level level, uint8_t *p, size_t n, const uint8_t key8[8]);

/* Length of the all-ASCII prefix of p, counted in whole 32-byte blocks. */
size_t simd_ascii_blocks(enum simd_level level, const uint8_t *p, size_t n);

#endif
