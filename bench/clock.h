/* Monotonic nanoseconds and a small PRNG: the two things every part of wsload needs. */
#ifndef WSLOAD_CLOCK_H
#define WSLOAD_CLOCK_H

#include <stdint.h>
#include <time.h>

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* xorshift64*: masks and pool picks need to be unpredictable to a cache, not to an attacker,
 * and getrandom() per frame would cost a syscall. The state is seeded from getrandom(). */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

#endif
