/* permessage-deflate negotiation (RFC 7692 §5-§7): picks the client's first acceptable offer from
 * its Sec-WebSocket-Extensions header values and writes the server's answer. Pure: no zlib, no
 * allocation, no state. */
#ifndef WEBSOCK_DEFLATE_OFFER_H
#define WEBSOCK_DEFLATE_OFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_request.h"

/* --deflate: off declines every offer; on answers client_no_context_takeover, so the server never
 * keeps a client's inflate context between messages; takeover lets a client that offers
 * client_max_window_bits keep its context with a window of at most DEFLATE_TAKEOVER_BITS. */
enum deflate_mode { DEFLATE_OFF, DEFLATE_ON, DEFLATE_TAKEOVER };

#define DEFLATE_TAKEOVER_BITS 10
/* Room for the longest answer (128 characters) and its NUL; checked in deflate_offer.c. */
#define DEFLATE_RESPONSE_MAX 160

struct deflate_params {
    bool on;                 /* an offer was accepted */
    bool server_no_takeover; /* server resets its compressor after each message */
    bool client_no_takeover; /* client resets its compressor after each message */
    uint8_t server_bits;     /* LZ77 window of the server's compressor, 8..15 */
    uint8_t client_bits;     /* LZ77 window of the client's compressor, 8..15 */
};

/* values: every Sec-WebSocket-Extensions header value of the request, in order (n may be 0).
 * Offers are tried in order and the first valid permessage-deflate offer wins; an invalid one
 * (unknown, repeated or badly valued parameter) is skipped, other extensions are ignored. A value
 * that does not parse as RFC 6455 §9.1 extension-list (empty list elements allowed), including a
 * quoted value whose unescaped text is not a token, declines every offer.
 * Returns true with *p filled and resp the value of the response's Sec-WebSocket-Extensions;
 * otherwise false with p->on false, the other fields at their defaults and resp "". */
bool deflate_negotiate(const struct http_slice *values, size_t n, enum deflate_mode mode,
                       struct deflate_params *p, char resp[DEFLATE_RESPONSE_MAX]);

/* The same on every Sec-WebSocket-Extensions header of a parsed request. */
bool deflate_negotiate_request(const struct http_request *req, enum deflate_mode mode,
                               struct deflate_params *p, char resp[DEFLATE_RESPONSE_MAX]);

/* "off", "on", "takeover" (and "?" for a value outside the enum). */
const char *deflate_mode_name(enum deflate_mode mode);

/* Parses one of the names above (exactly, lower case). False leaves *out unchanged. */
bool deflate_mode_parse(const char *s, enum deflate_mode *out);

#endif
