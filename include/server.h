/* The server: one loop, its listener and signals, the shared buffers and every connection's
 * timer list. All mutable state of the process lives in this one struct. */
#ifndef WEBSOCK_SERVER_H
#define WEBSOCK_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "ip_limit.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "options.h"
#include "outq.h"
#include "session.h"
#include "timer_list.h"
#include "tls.h"

struct conn;
struct pollfd;

struct server {
    struct options opt;
    struct logger log;
    struct session_limits limits;
    struct io_loop *loop;
    struct io_watch listeners[MAX_LISTEN_FDS]; /* one, or those a service manager passed */
    int listener_count;
    struct io_watch tls_listener; /* --tls-port (fd -1: none) */
    struct tls_ctx *tls;       /* what new TLS connections get; SIGHUP replaces it */
    int tls_turn;              /* TLS handshake steps left in this loop turn */
    uint8_t *tls_wbuf;         /* gathers an event's output spans into whole TLS records */
    struct io_watch signals;
    int spare_fd;              /* kept open so an EMFILE can still be answered by accept+close */
    struct log_rate fd_refusals; /* those answers: one log line per interval, with a count */
    uint8_t *rbuf;             /* the one receive buffer shared by all connections */
    struct outq scratch;       /* output of one event, before it is known to block */
    /* Every live connection is in exactly one of these lists, by state. */
    struct timer_list handshaking; /* deadline from accept; trickled bytes do not extend it */
    struct timer_list open;        /* idle/keep-alive: re-armed by traffic from the peer */
    struct timer_list sending;     /* output pending: re-armed by write progress */
    struct timer_list closing;     /* Close sent, flushing or lingering */
    struct conn *graveyard;    /* closed during this batch; freed after it */
    struct conn *backlog;      /* with input left to feed in the next round */
    uint64_t conn_count;       /* every live connection, refused ones included */
    uint64_t refusing;         /* connections over the limit, being answered with 503 */
    uint64_t max_conns;
    uint64_t buffered;         /* bytes of connection buffers (capacity), all connections */
    uint64_t paused_by_cap;    /* connections not read because buffered > max_buffered */
    bool resume_scan;          /* buffered dropped: look for connections to read again */
    int64_t now_ms;
    bool stopping;
    int forced_by;             /* a second stop signal dropped the clients: exit 128 + it */
    int64_t stop_progress_ms;  /* stopping: when a connection last finished (or the stop began) */
    struct log_rate close_timeouts; /* peers that never answered our Close: counted lines */
    struct metrics *metrics;   /* this process's counters: its slot in shared */
    struct metrics_shared *shared; /* every process's slot: what /metrics shows */
    struct ip_limit per_ip;    /* --max-connections-per-ip, --handshake-rate-per-ip */
    bool per_ip_on;            /* either limit is set */
    int64_t per_ip_logged_ms;  /* last "refusing" line: at most one per IP_LIMIT_LOG_INTERVAL_MS */
    uint64_t per_ip_unlogged;  /* refusals since that line */
    /* --workers: the other workers' listening sockets. A connection still waiting on one at
     * two checks in a row (its worker is dead, stopped or was never forked) is accepted here. */
    int *peer_fds;
    struct pollfd *peer_poll;
    bool *peer_waiting;        /* that socket had connections waiting at the last check */
    int peers;
    int tls_peers;             /* the last tls_peers of peer_fds are --tls-port sockets */
    int64_t peer_check_ms;     /* the next check */
    struct log_rate takeovers; /* their log lines, like fd_refusals */
    int worker;                /* this process's worker index (1 without --workers) */
    uint32_t next_conn_id;     /* connection ids are "worker-serial" */
    /* Why connections end early (static texts), interned: a connection keeps an index. */
#define SERVER_REASONS 64
    const char *reasons[SERVER_REASONS];
    bool owns_unix_path;       /* created opt.unix_path, so removes it at exit */
    bool activated;            /* the listeners came from the service manager (LISTEN_FDS) */
};

/* What a worker process gets from the supervisor (--workers N > 1). */
struct worker_ctx {
    int listen_fds[MAX_LISTEN_FDS]; /* opened by the supervisor (or passed to it by the service */
    int listeners;             /*   manager), shared with it */
    bool activated;            /* passed by the service manager: shared by every worker */
    int tls_fd;                /* the worker's own --tls-port socket, or -1 */
    int *peer_fds;             /* the other workers' sockets, malloc'd (NULL: none); */
    int peers;                 /*   server_init takes the array and the descriptors */
    int tls_peers;             /* the last tls_peers of them are --tls-port sockets */
    int index;                 /* 1..N */
    struct metrics_shared *shared; /* mapped by the supervisor; the worker counts in slot
                                      index - 1 */
};

/* Opens the listener (or takes the worker's) and everything else; tells a service manager
 * that asked ($NOTIFY_SOCKET) that it is ready. On error logs why and returns -1 (1 = port
 * busy). worker is NULL for the single-process server. */
int server_init(struct server *srv, const struct options *opt, const struct worker_ctx *worker);
/* Runs until SIGTERM/SIGINT and a graceful drain. Returns the exit status: 0, or 128 + the
 * signal when a second one made it drop its clients. */
int server_run(struct server *srv);
void server_destroy(struct server *srv);

/* During a stop: a connection moved on in its close (its Close reply came, or it ended). The
 * stop bound counts from the last such moment; the supervisor sees it in the worker's slot. */
void server_stop_moved(struct server *srv);

#endif
