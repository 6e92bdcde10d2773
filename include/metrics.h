/* Operator metrics: plain counters kept in struct server (the loop is single-threaded, so an
 * increment is a plain add) and their Prometheus text exposition (format 0.0.4). */
#ifndef WEBSOCK_METRICS_H
#define WEBSOCK_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "session.h"

/* Application close codes (3000-4999) are counted one by one, up to this many distinct codes;
 * further ones share the label code="other", so no client can grow the exposition unbounded. */
#define METRICS_APP_CODES 32

/* The HTTP error statuses websock answers with: 400 403 404 405 426 429 431 500 503. */
#define METRICS_STATUS_COUNT 9

struct metrics {
    struct session_counts echo;  /* messages and payload bytes, added by every session */
    uint64_t open;               /* WebSocket connections open now (upgraded, TCP not closed) */
    uint64_t accepted;           /* TCP connections accepted */
    uint64_t upgrades;           /* opening handshakes answered with 101 */
    uint64_t closes[16];         /* ended connections by close code 1000-1015 (1006: no Close) */
    uint16_t app_code[METRICS_APP_CODES]; /* distinct codes 3000-4999 in order seen; 0: free */
    uint64_t app_closes[METRICS_APP_CODES];
    uint64_t other_closes;       /* application codes beyond METRICS_APP_CODES */
    uint64_t rejected[METRICS_STATUS_COUNT]; /* error responses, by status as listed above */
    uint64_t ip_limited[2];      /* refused per client address: over connections, over rate */
    uint64_t deflate_negotiated; /* upgrades that agreed permessage-deflate */
};

enum { METRICS_IP_CONNECTIONS, METRICS_IP_RATE };

/* A WebSocket connection ended; code is the Close websock sent, 0 if it sent none. */
void metrics_count_close(struct metrics *m, uint16_t code);

/* An HTTP request was answered with this error status instead of an upgrade or a page. */
void metrics_count_rejection(struct metrics *m, int status);

/* Writes the exposition like snprintf: at most cap bytes including a NUL, and returns the length
 * of the whole text (so metrics_format(m, NULL, 0) measures it). */
size_t metrics_format(const struct metrics *m, char *out, size_t cap);

#endif
