/* libFuzzer target: the incremental UTF-8 validator against a simple reference decoder, with the
 * input split where the first byte says. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Could the code point whose first bits are `cp`, with `rest` continuation bytes still to come,
 * end up valid (not overlong, not a surrogate, not above U+10FFFF)? */
static bool completable(uint32_t cp, unsigned rest, uint32_t min)
{
    uint32_t lo = cp << (6 * rest), hi = lo | ((1u << (6 * rest)) - 1);
    return hi >= min && lo <= 0x10FFFF && !(lo >= 0xD800 && hi <= 0xDFFF);
}

/* Reference: decode the long way, deciding after each byte whether any continuation could still
 * be valid. Returns whether the whole input is valid; *dead is the index of the first byte after
 * which no continuation can be valid (n if none). */
static bool reference_valid(const uint8_t *p, size_t n, size_t *dead)
{
    *dead = n;
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        size_t len;
        uint32_t cp, min;
        if (b < 0x80) { i++; continue; }
        else if ((b & 0xE0) == 0xC0) { len = 2; cp = b & 0x1F; min = 0x80; }
        else if ((b & 0xF0) == 0xE0) { len = 3; cp = b & 0x0F; min = 0x800; }
        else if ((b & 0xF8) == 0xF0) { len = 4; cp = b & 0x07; min = 0x10000; }
        else { *dead = i; return false; }
        if (!completable(cp, (unsigned)len - 1, min)) { *dead = i; return false; }
        for (size_t k = 1; k < len; k++) {
            if (i + k == n)
                return false; /* truncated, but a continuation could still complete it */
            if ((p[i + k] & 0xC0) != 0x80) { *dead = i + k; return false; }
            cp = cp << 6 | (p[i + k] & 0x3F);
            if (!completable(cp, (unsigned)(len - k - 1), min)) { *dead = i + k; return false; }
        }
        i += len;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t split = data[0] % (size);
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    if (split > n)
        split = n;
    uint8_t state = utf8_validate(UTF8_ACCEPT, p, split);
    if (state != UTF8_REJECT)
        state = utf8_validate(state, p + split, n - split);
    size_t dead;
    bool valid = reference_valid(p, n, &dead);
    if (valid != (state == UTF8_ACCEPT))
        abort();
    /* Fail fast: the validator must reject exactly when the reference sees a dead byte. */
    if ((state == UTF8_REJECT) != (dead < n))
        abort();
    if (dead < n && utf8_validate(UTF8_ACCEPT, p, dead + 1) != UTF8_REJECT)
        abort();
    if (dead < n && dead > 0 && utf8_validate(UTF8_ACCEPT, p, dead) == UTF8_REJECT)
        abort();
    return 0;
}
