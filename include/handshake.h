/* The opening handshake (RFC 6455 §4.2): decides 101 or an HTTP error for a parsed request and
 * writes the response. */
#ifndef WEBSOCK_HANDSHAKE_H
#define WEBSOCK_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>

#include "deflate_offer.h"
#include "http_request.h"

#define WS_ACCEPT_LEN 28

struct handshake {
    int status;          /* 101, or the HTTP error status */
    const char *why;     /* for the log and the error body */
    struct http_slice detail; /* the offending value, for the log only; p is NULL if none */
    unsigned retry_after; /* seconds, sent as Retry-After when not 0 */
    char accept[WS_ACCEPT_LEN + 1];
    char extensions[DEFLATE_RESPONSE_MAX]; /* the Sec-WebSocket-Extensions value of a 101; "" for none */
};

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + RFC 6455 GUID)). */
void ws_accept_key(const char *key, size_t key_len, char out[WS_ACCEPT_LEN + 1]);

/* True if the key is 24 base64 characters that decode to exactly 16 bytes. */
int ws_key_is_valid(struct http_slice key);

void handshake_evaluate(const struct http_request *req, const char *ws_path, struct handshake *hs);

/* The Origin policy, --allow-origin: allow holds the flag's values, each a comma-separated list
 * of origins (scheme://host[:port], compared without case and with default ports filled in),
 * "null" or "*" (any). An upgrade is admitted without an Origin header (not a browser), with
 * its own origin (Origin's host and port are the request's Host, or the absolute form's
 * authority; http or https), or with a listed one. Sets *origin to the Origin header's value. */
bool handshake_origin_allowed(const struct http_request *req, const char *const *allow,
                              size_t n_allow, struct http_slice *origin);

/* Turns an upgrade handshake_evaluate accepted (101) into 403 if its Origin is not admitted;
 * hs->detail is then the refused Origin. */
void handshake_check_origin(const struct http_request *req, const char *const *allow,
                            size_t n_allow, struct handshake *hs);

/* True if list is a valid --allow-origin value. */
bool origin_list_is_valid(const char *list);

/* An error response for a status decided before a request could be parsed (400, 431, ...). */
void handshake_error(struct handshake *hs, int status, const char *why);

/* Writes the complete response head (and a short body for errors); returns its length, which is
 * always below 512 bytes. */
size_t handshake_response(const struct handshake *hs, char *out, size_t cap);

/* The version of the OpenSSL library linked in (for websock_build_info). */
const char *ws_crypto_version(void);

#endif
