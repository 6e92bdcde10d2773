/* An HTTP/1.x request-head parser. Like picohttpparser it keeps no state between calls: call it
 * again with the whole buffer when more bytes arrive. Outputs are slices of the caller's buffer. */
#ifndef WEBSOCK_HTTP_REQUEST_H
#define WEBSOCK_HTTP_REQUEST_H

#include <stddef.h>

#include "defaults.h"

struct http_slice {
    const char *p;
    size_t len;
};

struct http_header {
    struct http_slice name;
    struct http_slice value; /* without surrounding whitespace */
};

struct http_request {
    struct http_slice method;
    struct http_slice target;
    int minor_version; /* HTTP/1.x */
    size_t header_count;
    struct http_header headers[MAX_HEADER_COUNT];
};

enum {
    HTTP_INCOMPLETE = -2,    /* valid so far; need more bytes */
    HTTP_BAD = -1,           /* malformed: 400 */
    HTTP_TOO_MANY_HEADERS = -3, /* 431 */
};

/* Returns the length of the request head (> 0) once it is complete, or one of the codes above.
 * A malformed byte is reported as soon as it is seen, even before the head is complete. */
int http_parse_request(const char *buf, size_t len, struct http_request *req);

/* Case-insensitive comparison of a slice with a NUL-terminated lower-case string. */
int http_slice_eq(struct http_slice s, const char *lower);

/* The path of a request target without its query, for the two forms a server of paths takes
 * (RFC 9112 §3.2): the origin form (/ws?x) and the absolute form (http://host:8888/ws?x, http or
 * https in any case), where no path means "/". *authority is the absolute form's host[:port],
 * which overrides Host (§3.2.2); empty for the origin form. Returns 0 for the other forms (*,
 * host:443), other schemes and an absolute form with userinfo or without a host. */
int http_target_split(struct http_slice target, struct http_slice *path,
                      struct http_slice *authority);

/* True if the path of a request target (see http_target_split) is exactly path. */
int http_target_is(struct http_slice target, const char *path);

/* True if the comma-separated list in s contains token (case-insensitive). */
int http_list_has_token(struct http_slice s, const char *lower_token);

#endif
