#include "utf8.h"

#include <string.h>

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

/* States: 0 accept; 1..3 need that many continuation bytes; 4..7 the constrained second byte
 * after E0, ED, F0, F4; 8 reject. */
enum { S_NEED1 = 1, S_NEED2, S_NEED3, S_E0, S_ED, S_F0, S_F4 };

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

#define R UTF8_REJECT
static const uint8_t transition[9][C_COUNT] = {
    /*            ASCII LO      MID     HI      BAD LEAD2   E0    LEAD3   ED    F0    LEAD4   F4 */
    [0]       = { 0,    R,      R,      R,      R,  S_NEED1, S_E0, S_NEED2, S_ED, S_F0, S_NEED3, S_F4 },
    [S_NEED1] = { R,    0,      0,      0,      R,  R,      R,    R,      R,    R,    R,      R },
    [S_NEED2] = { R,    S_NEED1, S_NEED1, S_NEED1, R, R,    R,    R,      R,    R,    R,      R },
    [S_NEED3] = { R,    S_NEED2, S_NEED2, S_NEED2, R, R,    R,    R,      R,    R,    R,      R },
    [S_E0]    = { R,    R,      R,      S_NEED1, R, R,      R,    R,      R,    R,    R,      R },
    [S_ED]    = { R,    S_NEED1, S_NEED1, R,     R, R,      R,    R,      R,    R,    R,      R },
    [S_F0]    = { R,    R,      S_NEED2, S_NEED2, R, R,     R,    R,      R,    R,    R,      R },
    [S_F4]    = { R,    S_NEED2, R,     R,      R,  R,      R,    R,      R,    R,    R,      R },
    [R]       = { R,    R,      R,      R,      R,  R,      R,    R,      R,    R,    R,      R },
};
#undef R

uint8_t utf8_validate(uint8_t state, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (state == UTF8_ACCEPT) {
            /* ASCII fast path: eight bytes at a time while no high bit is set. */
            while (n - i >= 8) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080ull)
                    break;
                i += 8;
            }
            if (i == n)
                break;
        }
        state = transition[state][class_table[p[i++]]];
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
