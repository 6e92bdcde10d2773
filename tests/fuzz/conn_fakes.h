/* What both connection fuzzers (fuzz_conn: ws://, fuzz_conn_tls: wss://) fake alike in place of
 * net.c and server.c; each keeps its own fake transport (the socket's bytes and readiness). */
#ifndef WEBSOCK_FUZZ_CONN_FAKES_H
#define WEBSOCK_FUZZ_CONN_FAKES_H

#include "server.h"

/* The connection whose timer is due first (the timer lists in order), or NULL. */
struct timer_link *first_due(struct server *srv);

#endif
