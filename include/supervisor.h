/* --workers N (N > 1): a supervisor process opens the listeners, forks N workers, restarts
 * those that die and passes signals on to them. Each worker is the ordinary single-process
 * server on its own SO_REUSEPORT socket (or on the shared Unix socket), and also holds the
 * others' sockets, to serve what waits on one whose worker is down or stuck. */
#ifndef WEBSOCK_SUPERVISOR_H
#define WEBSOCK_SUPERVISOR_H

#include "options.h"
#include "server.h"

enum { SUPERVISOR_IN_WORKER = -1 };

/* Supervises until every worker has stopped and returns the exit status: 0 if all of them
 * exited cleanly after SIGTERM/SIGINT, 128 + the signal if a second one made them drop their
 * clients, 1 otherwise. In a freshly forked worker it returns
 * SUPERVISOR_IN_WORKER with *worker filled in instead; the caller then runs the server. */
int supervisor_run(const struct options *opt, struct worker_ctx *worker);

#endif
