/* SHA-1 and base64, just enough for Sec-WebSocket-Accept, so wsload needs no libcrypto. */
#ifndef WSLOAD_SHA1_H
#define WSLOAD_SHA1_H

#include <stddef.h>
#include <stdint.h>

void sha1(const void *data, size_t len, uint8_t digest[20]);

/* Writes 4 * ceil(len / 3) characters and a NUL; returns the number of characters. */
size_t base64_encode(const uint8_t *in, size_t len, char *out);

#endif
