/* The client side of the opening handshake: the request, and a strict check of the answer. */
#ifndef WSLOAD_HANDSHAKE_H
#define WSLOAD_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pmd.h"

#define WS_ACCEPT_LEN 28
#define HANDSHAKE_HEAD_MAX 4096 /* a longer answer is not one we would accept anyway */

/* Base64 of SHA-1(key + GUID), RFC 6455 section 4.2.2. */
void handshake_accept(const char *key, char accept[WS_ACCEPT_LEN + 1]);

/* Writes the upgrade request for a fresh 16-byte nonce and the Sec-WebSocket-Accept the
 * server must send back; with `deflate`, it offers PMD_OFFER. Returns the request length,
 * or 0 when it does not fit. */
size_t handshake_request(char *out, size_t cap, const char *host_header, const char *path,
                         const uint8_t nonce[16], bool deflate, char accept[WS_ACCEPT_LEN + 1]);

/* Checks a response: the head's length once it is complete and valid (bytes after it are
 * already frames), 0 while incomplete, -1 with a reason in err otherwise. ext is NULL when no
 * extension was offered (any Sec-WebSocket-Extensions is then an error); else it receives
 * what the server agreed to (ext->on false when it declined). */
long handshake_response(const char *buf, size_t len, const char *accept,
                        struct pmd_params *ext, char *err, size_t errlen);

#endif
