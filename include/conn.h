/* One client connection: handshake -> open -> closing -> closed, with its output queue,
 * backpressure, deadlines and the single teardown path. */
#ifndef WEBSOCK_CONN_H
#define WEBSOCK_CONN_H

#include "ip_addr.h"
#include "server.h"

/* Takes ownership of an accepted socket; peer is the client's address (NULL over a Unix
 * socket), for the per-address limits; tls: it came on the --tls-port listener. */
void conn_accept(struct server *srv, int fd, const struct ip_addr *peer, bool tls);

/* Dispatches a readiness event for the connection owning w. */
void conn_on_event(struct server *srv, struct io_watch *w, unsigned events);

/* The deadline of the timer t (embedded in a connection) passed. */
void conn_on_timeout(struct server *srv, struct timer_link *t);

/* Graceful shutdown: ask an open connection to close with 1001. (One still in its handshake is
 * not passed here: it is answered, then closed with 1001, when its request is complete.) */
void conn_begin_shutdown(struct server *srv, struct timer_link *t);

/* Tears down every live connection at once (second signal, or the shutdown bound passed). */
void conn_abort(struct server *srv, struct timer_link *t);

/* Reading resumes for a connection paused by the global buffer cap, if the total allows. */
void conn_resume(struct server *srv, struct timer_link *t);

/* Feeds connections the input they left: a compressed message that used its inflate budget in
 * the last round goes on after everyone else had a turn. */
void conn_run_backlog(struct server *srv);

/* Frees connections closed during the last event batch. */
void conn_free_closed(struct server *srv);

#endif
