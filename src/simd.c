#include "simd.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static size_t unmask_scalar(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key8[8],
                            uint8_t *high)
{
    uint64_t key, acc = 0;
    memcpy(&key, key8, 8);
    size_t i = 0;
    for (; n - i >= 32; i += 32)
        for (size_t k = 0; k < 32; k += 8) {
            uint64_t w;
            memcpy(&w, src + i + k, 8);
            w ^= key;
            acc |= w;
            memcpy(dst + i + k, &w, 8);
        }
    *high |= (acc & 0x8080808080808080ull) ? 0x80 : 0;
    return i;
}

static size_t ascii_scalar(const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; n - i >= 32; i += 32) {
        uint64_t w[4];
        memcpy(w, p + i, 32);
        if ((w[0] | w[1] | w[2] | w[3]) & 0x8080808080808080ull)
            break;
    }
    return i;
}

#if defined(__x86_64__)
/* SSE2 is part of x86-64 itself; AVX2 needs the run-time check in simd_best(). */
static size_t unmask_sse2(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key8[8],
                          uint8_t *high)
{
    uint64_t k;
    memcpy(&k, key8, 8);
    const __m128i key = _mm_set1_epi64x((long long)k);
    __m128i acc = _mm_setzero_si128();
    size_t i = 0;
    for (; n - i >= 32; i += 32) {
        __m128i lo = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i)), key);
        __m128i hi = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + i + 16)), key);
        acc = _mm_or_si128(acc, _mm_or_si128(lo, hi));
        _mm_storeu_si128((__m128i *)(dst + i), lo);
        _mm_storeu_si128((__m128i *)(dst + i + 16), hi);
    }
    *high |= _mm_movemask_epi8(acc) ? 0x80 : 0;
    return i;
}

static size_t ascii_sse2(const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; n - i >= 32; i += 32) {
        __m128i lo = _mm_loadu_si128((const __m128i *)(p + i));
        __m128i hi = _mm_loadu_si128((const __m128i *)(p + i + 16));
        if (_mm_movemask_epi8(_mm_or_si128(lo, hi)))
            break;
    }
    return i;
}

__attribute__((target("avx2"))) static size_t unmask_avx2(uint8_t *dst, const uint8_t *src,
                                                           size_t n, const uint8_t key8[8],
                                                           uint8_t *high)
{
    uint64_t k;
    memcpy(&k, key8, 8);
    const __m256i key = _mm256_set1_epi64x((long long)k);
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0;
    for (; n - i >= 128; i += 128) { /* four blocks a step, loads before stores (dst may be src) */
        __m256i a = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + i)), key);
        __m256i b = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + i + 32)), key);
        __m256i c = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + i + 64)), key);
        __m256i d = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + i + 96)), key);
        acc = _mm256_or_si256(acc, _mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d)));
        _mm256_storeu_si256((__m256i *)(dst + i), a);
        _mm256_storeu_si256((__m256i *)(dst + i + 32), b);
        _mm256_storeu_si256((__m256i *)(dst + i + 64), c);
        _mm256_storeu_si256((__m256i *)(dst + i + 96), d);
    }
    for (; n - i >= 32; i += 32) {
        __m256i w = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + i)), key);
        acc = _mm256_or_si256(acc, w);
        _mm256_storeu_si256((__m256i *)(dst + i), w);
    }
    *high |= _mm256_movemask_epi8(acc) ? 0x80 : 0;
    return i;
}

__attribute__((target("avx2"))) static size_t ascii_avx2(const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; n - i >= 32; i += 32)
        if (_mm256_movemask_epi8(_mm256_loadu_si256((const __m256i *)(p + i))))
            break;
    return i;
}

/* AVX-512 does 64 bytes a vector (twice the AVX2 rate on L1-resident data), then at most one
 * 32-byte block with the 256-bit form, so the contract stays "whole 32-byte blocks". Each step
 * loads before it stores, so dst may be src. */
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2")))
AVX512 static size_t unmask_avx512(uint8_t *dst, const uint8_t *src, size_t n,
                                   const uint8_t key8[8], uint8_t *high)
{
    uint64_t k;
    memcpy(&k, key8, 8);
    const __m512i key = _mm512_set1_epi64((long long)k);
    __m512i acc = _mm512_setzero_si512();
    size_t i = 0;
    for (; n - i >= 256; i += 256) { /* four lines a step: the loop itself costs a quarter */
        __m512i a = _mm512_xor_si512(_mm512_loadu_si512((const void *)(src + i)), key);
        __m512i b = _mm512_xor_si512(_mm512_loadu_si512((const void *)(src + i + 64)), key);
        __m512i c = _mm512_xor_si512(_mm512_loadu_si512((const void *)(src + i + 128)), key);
        __m512i d = _mm512_xor_si512(_mm512_loadu_si512((const void *)(src + i + 192)), key);
        acc = _mm512_or_si512(acc, _mm512_or_si512(_mm512_or_si512(a, b), _mm512_or_si512(c, d)));
        _mm512_storeu_si512((void *)(dst + i), a);
        _mm512_storeu_si512((void *)(dst + i + 64), b);
        _mm512_storeu_si512((void *)(dst + i + 128), c);
        _mm512_storeu_si512((void *)(dst + i + 192), d);
    }
    for (; n - i >= 64; i += 64) {
        __m512i w = _mm512_xor_si512(_mm512_loadu_si512((const void *)(src + i)), key);
        acc = _mm512_or_si512(acc, w);
        _mm512_storeu_si512((void *)(dst + i), w);
    }
    if (n - i >= 32) {
        __m256i w = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + i)),
                                     _mm512_castsi512_si256(key));
        acc = _mm512_or_si512(acc, _mm512_castsi256_si512(w));
        _mm256_storeu_si256((__m256i *)(dst + i), w);
        i += 32;
    }
    *high |= _mm512_movepi8_mask(acc) ? 0x80 : 0;
    return i;
}

AVX512 static size_t ascii_avx512(const uint8_t *p, size_t n)
{
    size_t i = 0;
    for (; n - i >= 64; i += 64)
        if (_mm512_movepi8_mask(_mm512_loadu_si512((const void *)(p + i))))
            break;
    return i + ascii_avx2(p + i, n - i < 64 ? n - i : 32);
}
#endif

enum simd_level simd_best(void)
{
#if defined(__x86_64__)
    /* Reads a CPU-feature word libgcc fills in at start-up; no state of ours. AVX-512 only
     * where VBMI2 is too (Ice Lake, Zen 4 and later): the first AVX-512 cores (Skylake-SP) slow
     * their clock for 512-bit work, which would cost more than it saves here. */
    if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi2"))
        return SIMD_AVX512;
    return __builtin_cpu_supports("avx2") ? SIMD_AVX2 : SIMD_SSE2;
#else
    return SIMD_SCALAR;
#endif
}

const char *simd_name(enum simd_level level)
{
    static const char *const names[] = { "scalar", "sse2", "avx2", "avx512" };
    return names[level];
}

size_t simd_unmask_blocks(enum simd_level level, uint8_t *dst, const uint8_t *src, size_t n,
                          const uint8_t key8[8], uint8_t *high)
{
#if defined(__x86_64__)
    if (level == SIMD_AVX512)
        return unmask_avx512(dst, src, n, key8, high);
    if (level == SIMD_AVX2)
        return unmask_avx2(dst, src, n, key8, high);
    if (level == SIMD_SSE2)
        return unmask_sse2(dst, src, n, key8, high);
#endif
    (void)level;
    return unmask_scalar(dst, src, n, key8, high);
}

size_t simd_ascii_blocks(enum simd_level level, const uint8_t *p, size_t n)
{
#if defined(__x86_64__)
    if (level == SIMD_AVX512)
        return ascii_avx512(p, n);
    if (level == SIMD_AVX2)
        return ascii_avx2(p, n);
    if (level == SIMD_SSE2)
        return ascii_sse2(p, n);
#endif
    (void)level;
    return ascii_scalar(p, n);
}
