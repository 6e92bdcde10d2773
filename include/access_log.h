/* The access line: one per connection, as nginx writes one per request. The connection code
 * gathers the facts (it owns the socket and the counters); this file only lays them out, so
 * the format lives in one place and is unit-tested apart from any socket. */
#ifndef WEBSOCK_ACCESS_LOG_H
#define WEBSOCK_ACCESS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ip_addr.h"
#include "log.h"

/* What one access line says: a request answered over HTTP, or a connection that ended. A NULL
 * or 0 field is written as no value ("-" in text, null in JSON), except where said. */
struct access_entry {
    int worker;
    uint32_t id;                  /* with worker: "W-N", the id on the connection's other lines */
    const struct ip_addr *client; /* the peer, or the client a trusted proxy named; NULL: "unix" */
    const struct ip_cidr *proxy;  /* the --trust-proxy entry the peer matched; NULL: no field */
    uint16_t port;                /* the peer's TCP port */
    const char *path;             /* the requested path (no query: it may carry secrets) */
    size_t path_len;
    int status;                   /* the HTTP status answered (101 for an upgrade) */
    uint32_t duration_ms;         /* always written, as are the two message counts */
    uint32_t msgs_in, msgs_out;
    bool bytes_known;             /* the kernel's byte counts were read */
    uint64_t bytes_in, bytes_out;
    uint16_t close;               /* the close code (1006: none was sent); 0 before an upgrade */
    const char *close_by;         /* "client", "server" or "none", beside close */
    const char *reason;           /* why it ended early or was refused; NULL: no field */
    const char *detail;           /* the offending value of a refusal; NULL: no field */
    size_t detail_len;
};

/* Builds the line in l at level info; log_line_end writes it. */
void access_line(struct log_line *l, const struct logger *lg, const struct access_entry *e);

#endif
