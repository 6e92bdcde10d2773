#include "simd.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static size_t xor_scalar(uint8_t *p, size_t n, const uint8_t key8[8])
{
    uint64_t key;
    memcpy(&key, key8, 8);
    size_t i = 0;
    for (; n - i >= 32; i += 32)
        for (size_t k = 0; k < 32; k += 8) {
            uint64_t w;
            memcpy(&w, p + i + k, 8);
            w ^= key;
            memcpy(p + i + k, &w, 8);
        }
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
static size_t xor_sse2(uint8_t *p, size_t n, const uint8_t key8[8])
{
    uint64_t k;
    memcpy(&k, key8, 8);
    const __m128i key = _mm_set1_epi64x((long long)k);
    size_t i = 0;
    for (; n - i >= 32; i += 32) {
        __m128i lo = _mm_loadu_si128((const __m128i *)(p + i));
        __m128i hi = _mm_loadu_si128((const __m128i *)(p + i + 16));
        _mm_storeu_si128((__m128i *)(p + i), _mm_xor_si128(lo, key));
        _mm_storeu_si128((__m128i *)(p + i + 16), _mm_xor_si128(hi, key));
    }
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

__attribute__((target("avx2"))) static size_t xor_avx2(uint8_t *p, size_t n, const uint8_t key8[8])
{
    uint64_t k;
    memcpy(&k, key8, 8);
    const __m256i key = _mm256_set1_epi64x((long long)k);
    size_t i = 0;
    for (; n - i >= 32; i += 32) {
        __m256i w = _mm256_loadu_si256((const __m256i *)(p + i));
        _mm256_storeu_si256((__m256i *)(p + i), _mm256_xor_si256(w, key));
    }
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
#endif

enum simd_level simd_best(void)
{
#if defined(__x86_64__)
    /* Reads a CPU-feature word libgcc fills in at start-up; no state of ours. */
    return __builtin_cpu_supports("avx2") ? SIMD_AVX2 : SIMD_SSE2;
#else
    return SIMD_SCALAR;
#endif
}

const char *simd_name(enum simd_level level)
{
    return level == SIMD_AVX2 ? "avx2" : level == SIMD_SSE2 ? "sse2" : "scalar";
}

size_t simd_xor_blocks(enum simd_level level, uint8_t *p, size_t n, const uint8_t key8[8])
{
#if defined(__x86_64__)
    if (level == SIMD_AVX2)
        return xor_avx2(p, n, key8);
    if (level == SIMD_SSE2)
        return xor_sse2(p, n, key8);
#endif
    (void)level;
    return xor_scalar(p, n, key8);
}

size_t simd_ascii_blocks(enum simd_level level, const uint8_t *p, size_t n)
{
#if defined(__x86_64__)
    if (level == SIMD_AVX2)
        return ascii_avx2(p, n);
    if (level == SIMD_SSE2)
        return ascii_sse2(p, n);
#endif
    (void)level;
    return ascii_scalar(p, n);
}
