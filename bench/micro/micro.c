/* Micro-benchmarks of the per-byte work on the hot path, in GB/s, beside memcpy on the same
 * machine: unmasking and UTF-8 validation, for every SIMD variant this CPU has. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"
#include "simd.h"
#include "utf8.h"

/* Buffer sizes: a 16 KiB message stays in L1, a 64 KiB one in L2. */
static const size_t sizes[] = { 16u * 1024, 64u * 1024 };
#define TOTAL (2ull << 30) /* bytes processed per measurement */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Best of 5 runs, in GB/s. The volatile sink keeps the compiler from dropping the work. */
static volatile uint64_t sink;

#define MEASURE(label, body)                                                                   \
    do {                                                                                       \
        double best = 0;                                                                       \
        for (int rep = 0; rep < 5; rep++) {                                                    \
            double t0 = now_s();                                                               \
            for (uint64_t done = 0; done < TOTAL; done += size) {                              \
                body;                                                                          \
            }                                                                                  \
            double gbs = (double)TOTAL / (now_s() - t0) / 1e9;                                 \
            if (gbs > best)                                                                    \
                best = gbs;                                                                    \
        }                                                                                      \
        printf("  %-34s %6.2f GB/s\n", label, best);                                           \
    } while (0)

static void run(const uint8_t *mixed_src, size_t slen, size_t size)
{
    /* Cache-line aligned, as ws_unmask arranges for its wide stores: straddling stores would
     * measure the misalignment, not the loop. */
    uint8_t *a = aligned_alloc(64, size), *b = aligned_alloc(64, size), *mixed = malloc(size);
    if (!a || !b || !mixed)
        exit(1);
    for (size_t i = 0; i < size; i++) {
        a[i] = (uint8_t)('a' + i % 26);
        mixed[i] = mixed_src[i % slen];
    }
    /* Make the mixed buffer end on a code point boundary so it is valid. */
    size_t mixed_len = size - size % slen;
    const uint8_t mask[4] = { 0x12, 0x34, 0x56, 0x78 };
    uint8_t key8[8];
    for (int k = 0; k < 8; k++)
        key8[k] = mask[k & 3];

    printf("websock micro-benchmarks (%zu KiB buffer, best of 5); best SIMD here: %s\n",
           size / 1024, simd_name(simd_best()));
    MEASURE("memcpy", { memcpy(b, a, size); sink += b[done & (size - 1)]; });
    for (int level = SIMD_SCALAR; level <= (int)simd_best(); level++) {
        char label[64];
        snprintf(label, sizeof label, "unmask (%s)", simd_name((enum simd_level)level));
        uint8_t high = 0;
        MEASURE(label, { sink += simd_unmask_blocks((enum simd_level)level, a, a, size, key8, &high); });
        snprintf(label, sizeof label, "unmask+copy (%s)", simd_name((enum simd_level)level));
        MEASURE(label, { sink += simd_unmask_blocks((enum simd_level)level, b, a, size, key8, &high); });
        snprintf(label, sizeof label, "ASCII scan (%s)", simd_name((enum simd_level)level));
        MEASURE(label, { sink += simd_ascii_blocks((enum simd_level)level, a, size); });
    }
    MEASURE("ws_unmask (dispatched)", { sink += ws_unmask(a, size, mask, 1); });
    MEASURE("utf8_validate ASCII (dispatched)", { sink += utf8_validate(UTF8_ACCEPT, a, size); });
    MEASURE("utf8_validate mixed (scalar DFA)",
            { sink += utf8_validate(UTF8_ACCEPT, mixed, mixed_len); });
    if (utf8_validate(UTF8_ACCEPT, mixed, mixed_len) != UTF8_ACCEPT)
        exit(1);
    free(a);
    free(b);
    free(mixed);
}

int main(void)
{
    const char *sample = "h\xC3\xA9llo w\xC3\xB6rld \xE2\x82\xAC \xF0\x9F\x98\x80 ";
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        run((const uint8_t *)sample, strlen(sample), sizes[i]);
    return 0;
}
