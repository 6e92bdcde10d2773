/* Incremental UTF-8 validation (RFC 3629): the state carries across chunks and frames, and the
 * first byte that can no longer be part of valid UTF-8 moves it to UTF8_REJECT at once. */
#ifndef WEBSOCK_UTF8_H
#define WEBSOCK_UTF8_H

#include <stddef.h>
#include <stdint.h>

enum { UTF8_ACCEPT = 0, UTF8_REJECT = 48 }; /* other values: inside a code point */

/* Returns the state after p[0..n); stops early on rejection. */
uint8_t utf8_validate(uint8_t state, const uint8_t *p, size_t n);

/* Given the bytes `tail` that end a validated run (at most the last 3 are looked at) and the state
 * the run ended in, returns how many of those last bytes form an incomplete code point. */
size_t utf8_incomplete_len(const uint8_t *tail, size_t n, uint8_t state);

#endif
