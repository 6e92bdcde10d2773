/* The server: one loop, its listener and signals, the shared buffers and every connection's
 * timer list. All mutable state of the process lives in this one struct. */
#ifndef WEBSOCK_SERVER_H
#define WEBSOCK_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "log.h"
#include "loop.h"
#include "options.h"
#include "session.h"
#include "timer_list.h"

struct conn;

struct server {
    struct options opt;
    struct logger log;
    struct session_limits limits;
    struct io_loop *loop;
    struct io_watch listener;
    struct io_watch signals;
    int spare_fd;              /* kept open so an EMFILE can still be answered by accept+close */
    uint8_t *rbuf;             /* the one receive buffer shared by all connections */
    struct buf scratch;        /* output built during one event, before it is known to block */
    /* Every live connection is in exactly one of these lists, by state. */
    struct timer_list handshaking;
    struct timer_list open;
    struct timer_list closing;
    struct conn *graveyard;    /* closed during this batch; freed after it */
    uint64_t conn_count;
    int64_t now_ms;
    bool stopping;
    int64_t stop_deadline_ms;
};

/* Opens the listener and everything else; on error logs why and returns -1 (1 = port busy). */
int server_init(struct server *srv, const struct options *opt);
/* Runs until SIGTERM/SIGINT and a graceful drain. Returns the exit status. */
int server_run(struct server *srv);
void server_destroy(struct server *srv);

#endif
