#include "conn_fakes.h"

#include <stdio.h>

#include "net.h"

/* The peer's identity: the same fixed one for every input, no kernel counts (as a Unix
 * socket). */
void net_reset_on_close(int fd)
{
    (void)fd;
}

const char *net_peer_name(int fd, char *out, size_t len)
{
    snprintf(out, len, "fd=%d", fd);
    return out;
}

uint16_t net_peer_port(int fd)
{
    (void)fd;
    return 4242;
}

bool net_byte_counts(int fd, uint64_t *received, uint64_t *sent)
{
    (void)fd;
    *received = *sent = 0;
    return false;
}

bool net_peer_addr(int fd, struct ip_addr *out)
{
    (void)fd, (void)out;
    return false;
}

/* src/server.c is not linked: the stop's progress mark, on the fuzzer's own clock. */
void server_stop_moved(struct server *srv)
{
    srv->stop_progress_ms = srv->now_ms;
}

struct timer_link *first_due(struct server *srv)
{
    struct timer_list *lists[] = { &srv->handshaking, &srv->open, &srv->sending, &srv->closing };
    for (size_t i = 0; i < 4; i++)
        if (lists[i]->head.next != &lists[i]->head && lists[i]->duration_ms)
            return lists[i]->head.next;
    return NULL;
}
