/* The operator pages: the browser console at /, /healthz and /metrics. Plain HTTP answered
 * whole, then the connection closes; nothing here touches a socket. */
#ifndef WEBSOCK_PAGES_H
#define WEBSOCK_PAGES_H

#include <stdbool.h>

#include "buf.h"
#include "http_request.h"
#include "metrics.h"

enum page { PAGE_NONE, PAGE_CONSOLE, PAGE_HEALTHZ, PAGE_METRICS };

/* The page a request's path names (any query is ignored), whatever its method and headers.
 * PAGE_NONE for every other path and for the WebSocket path, which wins if they coincide;
 * console says whether / serves the browser console. */
enum page page_route(const struct http_request *req, const char *ws_path, bool console);

/* Appends the whole response for a routed request to out: 200 for GET, the same head without
 * the body for HEAD, 405 for other methods. The console connects to ws_path. Returns the status,
 * or -1 when out of memory (nothing appended). /metrics shows the sum of every slot of m. */
int page_respond(enum page page, const struct http_request *req, const char *ws_path,
                 const struct metrics_shared *m, struct buf *out);

#endif
