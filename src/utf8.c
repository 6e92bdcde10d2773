#include "utf8.h"

#include <stdbool.h>
#include <string.h>

#include "simd.h"

/* Byte classes: which bytes may follow depends only on these. */
enum {
    C_ASCII,    /* 00..7F */
    C_CONT_LO,  /* 80..8F */
    C_CONT_MID, /* 90..9F */
    C_CONT_HI,  /* A0..BF */
    C_BAD,      /* C0, C1, F5..FF: never valid */
    C_LEAD2,    /* C2..DF */
    C_E0,       /* E0: next must be A0..BF (no overlongs) */
    C_LEAD3,    /* E1..EC, EE, EF */
    C_ED,       /* ED: next must be 80..9F (no surrogates) */
    C_F0,       /* F0: next must be 90..BF (no overlongs) */
    C_LEAD4,    /* F1..F3 */
    C_F4,       /* F4: next must be 80..8F (nothing above U+10FFFF) */
    C_COUNT
};

static const uint8_t class_table[256] = {
    [0x00 ... 0x7F] = C_ASCII,
    [0x80 ... 0x8F] = C_CONT_LO,
    [0x90 ... 0x9F] = C_CONT_MID,
    [0xA0 ... 0xBF] = C_CONT_HI,
    [0xC0 ... 0xC1] = C_BAD,
    [0xC2 ... 0xDF] = C_LEAD2,
    [0xE0] = C_E0,
    [0xE1 ... 0xEC] = C_LEAD3,
    [0xED] = C_ED,
    [0xEE ... 0xEF] = C_LEAD3,
    [0xF0] = C_F0,
    [0xF1 ... 0xF3] = C_LEAD4,
    [0xF4] = C_F4,
    [0xF5 ... 0xFF] = C_BAD,
};

/* States: 0 accept; need 1..3 more continuation bytes; the constrained second byte after E0, ED,
 * F0, F4; reject. A state is stored as a bit offset (6 × its number) into a 64-bit row per byte
 * class that holds the next state for every current state: stepping is then one shift and one
 * mask, a dependency chain of two cycles per byte instead of two dependent table loads. */
enum { S_ACCEPT, S_NEED1, S_NEED2, S_NEED3, S_E0, S_ED, S_F0, S_F4, S_REJECT };
_Static_assert(UTF8_ACCEPT == 6 * S_ACCEPT && UTF8_REJECT == 6 * S_REJECT, "state encoding");

/* The next state from each of the 9 states, for one byte class. */
#define NEXT(acc, n1, n2, n3, e0, ed, f0, f4)                                                  \
    ((uint64_t)(acc) * 6 | (uint64_t)(n1) * 6 << 6 | (uint64_t)(n2) * 6 << 12 |                \
     (uint64_t)(n3) * 6 << 18 | (uint64_t)(e0) * 6 << 24 | (uint64_t)(ed) * 6 << 30 |          \
     (uint64_t)(f0) * 6 << 36 | (uint64_t)(f4) * 6 << 42 | (uint64_t)S_REJECT * 6 << 48)
#define R S_REJECT
static const uint64_t class_row[C_COUNT] = {
    /*                 from: ACCEPT    NEED1     NEED2   NEED3   E0      ED      F0      F4 */
    [C_ASCII]    = NEXT(S_ACCEPT, R,        R,      R,      R,      R,      R,      R),
    [C_CONT_LO]  = NEXT(R,        S_ACCEPT, S_NEED1, S_NEED2, R,    S_NEED1, R,     S_NEED2),
    [C_CONT_MID] = NEXT(R,        S_ACCEPT, S_NEED1, S_NEED2, R,    S_NEED1, S_NEED2, R),
    [C_CONT_HI]  = NEXT(R,        S_ACCEPT, S_NEED1, S_NEED2, S_NEED1, R,   S_NEED2, R),
    [C_BAD]      = NEXT(R,        R,        R,      R,      R,      R,      R,      R),
    [C_LEAD2]    = NEXT(S_NEED1,  R,        R,      R,      R,      R,      R,      R),
    [C_E0]       = NEXT(S_E0,     R,        R,      R,      R,      R,      R,      R),
    [C_LEAD3]    = NEXT(S_NEED2,  R,        R,      R,      R,      R,      R,      R),
    [C_ED]       = NEXT(S_ED,     R,        R,      R,      R,      R,      R,      R),
    [C_F0]       = NEXT(S_F0,     R,        R,      R,      R,      R,      R,      R),
    [C_LEAD4]    = NEXT(S_NEED3,  R,        R,      R,      R,      R,      R,      R),
    [C_F4]       = NEXT(S_F4,     R,        R,      R,      R,      R,      R,      R),
};
#undef R
#undef NEXT

static bool ascii8(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return !(w & 0x8080808080808080ull);
}

uint8_t utf8_validate(uint8_t state, const uint8_t *p, size_t n)
{
    enum simd_level simd = simd_best();
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, entered only after a cheap eight-byte test, so mixed-script text does
         * not pay a call per run of ASCII. */
        if (state == UTF8_ACCEPT && n - i >= 8 && ascii8(p + i)) {
            i += 8;
            if (n - i >= 32)
                i += simd_ascii_blocks(simd, p + i, n - i);
            continue;
        }
        /* Then the DFA over a block of 16 bytes without a branch per byte: reject is absorbing,
         * so checking once per block gives the same answer. */
        size_t end = n - i > 16 ? i + 16 : n;
        for (; i < end; i++)
            state = (uint8_t)(class_row[class_table[p[i]]] >> state & 63);
        if (state == UTF8_REJECT)
            break;
    }
    return state;
}

size_t utf8_incomplete_len(const uint8_t *tail, size_t n, uint8_t state)
{
    if (state == UTF8_ACCEPT || state == UTF8_REJECT)
        return 0;
    /* An incomplete sequence is at most 3 bytes, starting at its lead byte (>= 0xC0). */
    size_t look = n < 3 ? n : 3;
    for (size_t k = 1; k <= look; k++)
        if (tail[n - k] >= 0xC0)
            return k;
    return look;
}
