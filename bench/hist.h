/* Latency histogram, HDR style: exact below 256 us, then 128 linear buckets per power of two
 * (under 0.8 % relative error), up to 2^40 us. Every sample is counted; nothing is sampled. */
#ifndef WSLOAD_HIST_H
#define WSLOAD_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_BITS 40
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
    uint64_t count;
    uint64_t min, max; /* exact, in microseconds */
    double sum;
    uint64_t bucket[HIST_BUCKETS];
};

void hist_reset(struct hist *h);
void hist_record(struct hist *h, uint64_t us);

/* The value at percentile p (0..100]: the highest value of the bucket that holds it, capped at
 * the exact maximum, so it never understates. 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double p);
double hist_mean(const struct hist *h);

/* Bucket arithmetic, exposed for the self-test. */
unsigned hist_index(uint64_t us);
uint64_t hist_highest(unsigned idx);

#endif
