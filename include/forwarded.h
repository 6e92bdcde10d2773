/* The client address a trusted reverse proxy names in the request (X-Forwarded-For, or the
 * RFC 7239 Forwarded header), for the per-address limits. Pure: parses a request head. */
#ifndef WEBSOCK_FORWARDED_H
#define WEBSOCK_FORWARDED_H

#include <stdbool.h>
#include <stddef.h>

#include "http_request.h"
#include "ip_addr.h"

/* Which header the proxy maintains. Only that one can be believed: a proxy passes the other on
 * as the client sent it, so reading it would let any client name its own address. */
enum proxy_header {
    PROXY_HEADER_X_FORWARDED_FOR, /* nginx $proxy_add_x_forwarded_for, HAProxy, most LBs */
    PROXY_HEADER_FORWARDED,       /* RFC 7239: for=... */
};

/* Walks the header's list (every instance, in order) from the right, skipping addresses in
 * trusted: the first other address is the client. If every entry is trusted, the left-most
 * is. Returns false - use the peer's address - when the header is missing or empty, or when
 * the walk meets an entry that is not an IP address (garbage, "unknown", an obfuscated
 * identifier) before it finds the client. */
bool forwarded_client(const struct http_request *req, enum proxy_header which,
                      const struct ip_cidr *trusted, size_t ntrusted, struct ip_addr *client);

/* One node of either header: "192.0.2.1", "192.0.2.1:443", "2001:db8::1",
 * "[2001:db8::1]" or "[2001:db8::1]:443", with optional surrounding spaces. */
bool forwarded_parse_node(const char *s, size_t len, struct ip_addr *out);

#endif
