/* websock: a strictly conformant RFC 6455 WebSocket echo server on one epoll loop. */
#include <stdlib.h>

#include "options.h"
#include "server.h"
#include "supervisor.h"

int main(int argc, char **argv)
{
    struct options opt;
    switch (options_parse(argc, argv, &opt)) {
    case OPTIONS_EXIT_OK:
        return 0;
    case OPTIONS_EXIT_USAGE:
        return 2;
    default:
        break;
    }
    /* With --workers N the supervisor forks; each worker returns here to run the server. */
    struct worker_ctx worker, *in_worker = NULL;
    if (opt.workers > 1) {
        int rc = supervisor_run(&opt, &worker);
        if (rc != SUPERVISOR_IN_WORKER)
            return rc;
        in_worker = &worker;
    }
    struct server *srv = malloc(sizeof *srv);
    if (!srv)
        return 1;
    int rc = server_init(srv, &opt, in_worker);
    if (rc == 0)
        rc = server_run(srv);
    else
        rc = 1;
    server_destroy(srv);
    free(srv);
    return rc;
}
