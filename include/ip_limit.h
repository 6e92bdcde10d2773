/* Per-client-address limits: concurrent connections and the rate of handshake attempts, kept
 * in one fixed-size table keyed by ip_addr_limit_key(). Pure (the caller passes the time), so
 * unit tests drive it without sockets.
 *
 * Memory is bounded whatever the number of distinct addresses: the table has a fixed number
 * of entries, an entry is freed as soon as its address has no connection and a full rate
 * bucket, and when every entry is taken the one idle longest is reused (forgetting its rate
 * history); when all hold live connections, a new address is let in untracked rather than
 * refused - an attacker with that many addresses must not lock everyone else out. */
#ifndef WEBSOCK_IP_LIMIT_H
#define WEBSOCK_IP_LIMIT_H

#include <stdint.h>

#include "ip_addr.h"

struct ip_limit_entry;

struct ip_limit {
    struct ip_limit_entry *entries; /* the pool; handed out from index 0 up, then reused */
    uint32_t *buckets;    /* hash buckets: index + 1 of the first entry of a chain, 0: empty */
    uint32_t bucket_mask;
    uint32_t capacity;    /* entries in the pool */
    uint32_t used;        /* entries handed out so far (the rest were never touched) */
    uint32_t free_list;   /* index + 1 of a freed entry, chained through next */
    uint32_t idle_head;   /* index + 1: entries with no connection, least recently idle first */
    uint32_t idle_tail;
    uint32_t live;        /* entries in use */
    uint32_t open;        /* connections counted, all addresses together */
    uint32_t max_conns;   /* per address; 0: no limit */
    int64_t interval_us;  /* one handshake per interval on average; 0: no rate limit */
    int64_t tolerance_us; /* burst: (burst - 1) intervals may be taken at once */
    uint64_t seed[2];     /* keyed hash: chains cannot be lengthened by chosen addresses */
};

enum ip_verdict {
    IP_ALLOWED,           /* counted: keep the handle and release it when the connection ends */
    IP_UNTRACKED,         /* allowed, but the table is full of live addresses: handle is 0 */
    IP_OVER_CONNECTIONS,  /* refuse: the address has max_conns connections already */
    IP_OVER_RATE,         /* refuse: the address has no handshake left in its bucket */
};

/* A table of capacity entries; max_conns 0 and rate 0 disable the respective limit. Returns
 * 0, or -1 when out of memory. */
int ip_limit_init(struct ip_limit *t, uint32_t capacity, uint32_t max_conns, uint32_t rate,
                  uint32_t burst, const uint64_t seed[2]);
void ip_limit_destroy(struct ip_limit *t);

/* One new connection (one handshake attempt) from key at now_ms. On IP_ALLOWED *handle names
 * its entry until ip_limit_release; on IP_OVER_RATE *retry_after_s says when the next attempt
 * would pass (at least 1). */
enum ip_verdict ip_limit_admit(struct ip_limit *t, struct ip_addr key, int64_t now_ms,
                               uint32_t *handle, uint32_t *retry_after_s);

/* The connection admitted with handle ended. */
void ip_limit_release(struct ip_limit *t, uint32_t handle, int64_t now_ms);

/* Connections counted for key now (0 if it has no entry). */
uint32_t ip_limit_count(const struct ip_limit *t, struct ip_addr key);

#endif
