/* Operator metrics: plain counters each process adds to in its own slot of a shared memory
 * region (the loop is single-threaded, so an increment is a plain add), and their Prometheus
 * text exposition (format 0.0.4), which sums every slot so that a scrape shows the whole
 * server whichever worker answers it. */
#ifndef WEBSOCK_METRICS_H
#define WEBSOCK_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session.h"

/* Application close codes (3000-4999) are counted one by one, up to this many distinct codes
 * per worker; further ones share the label code="other", so no client can grow the exposition
 * unbounded. */
#define METRICS_APP_CODES 32

/* The HTTP error statuses websock answers with: 400 403 404 405 426 429 431 500 503. */
#define METRICS_STATUS_COUNT 9

/* A slot starts on its own cache line: workers never write to a line another one writes. */
#define METRICS_SLOT_ALIGN 64

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
    uint64_t tls_handshakes;     /* TLS handshakes completed (--tls-port) */
    uint64_t tls_failures;       /* TLS connections that ended before their handshake completed */
    uint64_t tls_ktls;           /* handshakes after which the kernel (kTLS) does the sending */
};

enum { METRICS_IP_CONNECTIONS, METRICS_IP_RATE };

/* One process's counters. Its worker is the only writer of m while it runs; the supervisor
 * writes the rest, and zeroes the gauge m.open once the worker is dead. A restarted worker
 * takes the same slot over, so the counters carry on from where the dead one left them. */
struct metrics_slot {
    _Alignas(METRICS_SLOT_ALIGN) struct metrics m;
    int32_t pid;                 /* the worker running in this slot; 0: none */
    uint64_t restarts;           /* times its worker died and was started again */
    int64_t stop_progress_ms;    /* stopping: when the worker last saw a close move (monotonic
                                    ms), so the supervisor kills only a worker that stalled */
};

/* Mapped MAP_SHARED before the supervisor forks, so every worker sees every slot. */
struct metrics_shared {
    int workers;                 /* --workers N > 1: N slots, one per worker; 0: one process */
    int slots;
    int32_t main_pid;            /* the supervisor, or the single process */
    double start_seconds;        /* when the main process started, seconds since the epoch */
    struct metrics_slot slot[];
};

/* Process figures read from /proc, over the main process and every live worker. */
struct metrics_process {
    bool known;                  /* read at all (false: the process_* families are left out) */
    double cpu_seconds;          /* user + system, dead workers' included (the main process's
                                    children's times) */
    uint64_t resident_bytes;
    uint64_t open_fds;
    uint64_t max_fds;
};

/* One worker, for the families labelled worker="N". */
struct metrics_worker {
    uint64_t open, accepted, restarts;
};

/* What one exposition shows: a copy taken once, then formatted (measured, then written). */
struct metrics_snapshot {
    struct metrics total;        /* every slot summed; application codes are below instead */
    size_t apps;                 /* distinct application codes over all slots */
    uint16_t *app_code;
    uint64_t *app_closes;
    int workers;                 /* 0: one process, no per-worker families */
    struct metrics_worker *worker;
    struct metrics_process process;
    double start_seconds;        /* the main process's start, seconds since the epoch */
    const char *version, *compiler, *openssl, *zlib; /* websock_build_info labels */
};

/* A WebSocket connection ended; code is the Close websock sent, 0 if it sent none. */
void metrics_count_close(struct metrics *m, uint16_t code);

/* An HTTP request was answered with this error status instead of an upgrade or a page. */
void metrics_count_rejection(struct metrics *m, int status);

/* A zeroed region for workers (0 or 1: the single process, one slot), its main process the
 * caller; NULL with errno set if mmap fails. */
struct metrics_shared *metrics_shared_map(int workers);
void metrics_shared_unmap(struct metrics_shared *sh);

/* Sums every slot of sh (NULL: nothing) and reads the process figures; NULL if out of memory.
 * Free it with free(). */
struct metrics_snapshot *metrics_snapshot_take(const struct metrics_shared *sh);

/* The snapshot of one process's counters alone, without process figures (for tests). The
 * snapshot points into m. */
void metrics_snapshot_of(const struct metrics *m, struct metrics_snapshot *s);

/* Writes the exposition like snprintf: at most cap bytes including a NUL, and returns the length
 * of the whole text (so metrics_format(s, NULL, 0) measures it). */
size_t metrics_format(const struct metrics_snapshot *s, char *out, size_t cap);

#endif
