/* libFuzzer target: a whole connection (handshake, session, output queue, closing, timers)
 * behind a fake transport. The input is a script: each step's first byte picks the event (data
 * arrives, the socket takes some output or none, a deadline passes, shutdown starts) and its
 * size, so one input explores every split point, short write and EAGAIN.
 * Links conn.c with this file in place of loop.c and net.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "conn_fakes.h"
#include "defaults.h"
#include "deflate.h"
#include "loop.h"
#include "net.h"
#include "server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fake transport: what the next recv may return, and how much the next sends may take. */
static struct {
    const uint8_t *in;
    size_t in_len;
    bool eof;
    size_t send_budget;
    uint64_t acked;        /* bytes the peer "took": what the send timeout calls progress */
    uint8_t sink;
    struct io_watch *watch;
} fake;

int loop_set(struct io_loop *loop, struct io_watch *w, uint8_t mask)
{
    (void)loop;
    w->mask = mask;
    if (mask)
        fake.watch = w;
    return 0;
}

int loop_rearm(struct io_loop *loop, struct io_watch *w)
{
    (void)loop;
    (void)w;
    return 0;
}

ssize_t net_recv(int fd, void *buf, size_t len)
{
    (void)fd;
    if (fake.in_len == 0) {
        if (fake.eof)
            return 0;
        errno = EAGAIN;
        return -1;
    }
    size_t n = len < fake.in_len ? len : fake.in_len;
    memcpy(buf, fake.in, n);
    fake.in += n;
    fake.in_len -= n;
    return (ssize_t)n;
}

/* Takes up to the budget, reading every byte it takes so that ASan sees output that points at
 * memory no longer valid. */
static size_t take(const struct iovec *iov, int cnt)
{
    size_t taken = 0;
    for (int i = 0; i < cnt && fake.send_budget; i++) {
        size_t n = iov[i].iov_len < fake.send_budget ? iov[i].iov_len : fake.send_budget;
        const volatile uint8_t *p = iov[i].iov_base;
        for (size_t k = 0; k < n; k++)
            fake.sink ^= p[k];
        fake.send_budget -= n;
        fake.acked += n;
        taken += n;
    }
    return taken;
}

ssize_t net_sendv(int fd, const struct iovec *iov, int iovcnt)
{
    (void)fd;
    if (fake.send_budget == 0) {
        errno = EAGAIN;
        return -1;
    }
    return (ssize_t)take(iov, iovcnt);
}

ssize_t net_send(int fd, const void *buf, size_t len)
{
    struct iovec iov = { (void *)buf, len };
    return net_sendv(fd, &iov, 1);
}

int64_t net_bytes_acked(int fd)
{
    (void)fd;
    return (int64_t)fake.acked;
}

/* A socket that takes nothing now also has bytes it cannot put on the wire. */
int64_t net_unsent_bytes(int fd)
{
    (void)fd;
    return fake.send_budget == 0;
}

void net_discard_input(int fd, void *buf, size_t len)
{
    (void)fd;
    (void)buf;
    (void)len;
    fake.in_len = 0;
}

static const uint8_t handshake[] =
    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
/* The same, offering permessage-deflate: frames with RSV1 reach the inflate path. */
static const uint8_t handshake_deflate[] =
    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

static bool alive(struct server *srv)
{
    return srv->conn_count > 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *rbuf, *inflate_buf;
    if (!rbuf) {
        rbuf = malloc(READ_BUFFER_SIZE);
        inflate_buf = malloc(DEFLATE_CHUNK);
    }
    static struct metrics_shared *counts;
    if (!counts)
        counts = metrics_shared_map(0);
    struct server srv;
    memset(&srv, 0, sizeof srv);
    srv.shared = counts;
    srv.metrics = &counts->slot[0].m;
    char *argv[] = { "websock", NULL };
    options_parse(1, argv, &srv.opt);
    /* Small limits so that backpressure, 1009 and the buffer cap are reachable. */
    srv.opt.output_high_water = 2048;
    srv.opt.max_buffered = 64 * 1024;
    srv.log.level = LOG_ERROR;
    srv.limits.max_message = 4096;
    srv.limits.coalesce_max = 512;
    /* A small inflate budget, so that input waits in the backlog; a pool that fills up. */
    srv.limits.zpool = zpool_new(128 * 1024);
    srv.limits.inflate_buf = inflate_buf;
    srv.limits.inflate_turn = 2048;
    srv.opt.deflate = size > 0 && (data[0] & 8) ? DEFLATE_TAKEOVER : DEFLATE_ON;
    srv.rbuf = rbuf;
    srv.max_conns = 8;
    timer_list_init(&srv.handshaking, 1000);
    timer_list_init(&srv.open, 1000);
    timer_list_init(&srv.sending, 1000);
    timer_list_init(&srv.closing, 1000);
    srv.opt.ping_interval_ms = 1000;
    srv.opt.idle_timeout_ms = 3000;

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return 0;
    memset(&fake, 0, sizeof fake);
    /* The client comes through a trusted proxy: the request's X-Forwarded-For (or, for odd
     * first bytes, Forwarded) is parsed and charged to a table with a limit of one. */
    static const uint64_t seed[2] = { 1, 2 };
    struct ip_addr proxy;
    ip_addr_parse("127.0.0.1", 9, &proxy);
    ip_cidr_parse("127.0.0.0/8", 11, &srv.opt.trusted_proxies[0]);
    srv.opt.trusted_proxy_count = 1;
    srv.opt.proxy_header = size > 0 && (data[0] & 2) ? PROXY_HEADER_FORWARDED
                                                     : PROXY_HEADER_X_FORWARDED_FOR;
    srv.per_ip_on = ip_limit_init(&srv.per_ip, 4, 1, 1, 1, seed) == 0;
    conn_accept(&srv, sv[0], srv.per_ip_on ? &proxy : NULL, false);

    /* Half the inputs start with a valid upgrade so the fuzzer reaches frames quickly. */
    bool upgrade = size > 0 && (data[0] & 1);
    if (upgrade) {
        bool offer = data[0] & 4;
        fake.in = offer ? handshake_deflate : handshake;
        fake.in_len = offer ? sizeof handshake_deflate - 1 : sizeof handshake - 1;
        fake.send_budget = 4096;
        conn_on_event(&srv, fake.watch, IO_READ);
        conn_free_closed(&srv);
    }
    size_t pos = size > 0 ? 1 : 0;
    while (pos < size && alive(&srv)) {
        uint8_t op = data[pos++];
        size_t arg = op >> 2;
        switch (op & 3) {
        case 0: /* 1..64 bytes arrive */
        case 1: {
            size_t n = arg + 1 + (op & 1) * 64;
            if (n > size - pos)
                n = size - pos;
            fake.in = data + pos;
            fake.in_len = n;
            pos += n;
            if (fake.watch->mask & IO_READ)
                conn_on_event(&srv, fake.watch, IO_READ);
            break;
        }
        case 2: /* the socket takes arg*37 bytes (0: EAGAIN) */
            fake.send_budget = arg * 37;
            if (fake.watch->mask & IO_WRITE)
                conn_on_event(&srv, fake.watch, IO_WRITE);
            break;
        case 3:
            if (arg == 0) {
                fake.eof = true;
                if (fake.watch->mask & IO_READ)
                    conn_on_event(&srv, fake.watch, IO_READ);
            } else if (arg == 1) {
                /* SIGTERM: from now on a completed handshake is answered, then closed. */
                srv.stopping = true;
                struct timer_link *t = first_due(&srv);
                if (t)
                    conn_begin_shutdown(&srv, t);
            } else {
                struct timer_link *t = first_due(&srv);
                if (t)
                    conn_on_timeout(&srv, t);
            }
            break;
        }
        conn_run_backlog(&srv);
        conn_free_closed(&srv);
    }
    struct timer_link *t;
    while ((t = first_due(&srv)))
        conn_abort(&srv, t);
    conn_run_backlog(&srv);
    conn_free_closed(&srv);
    /* Every byte of accounting and every connection must be returned. */
    if (srv.conn_count != 0 || srv.buffered != 0 || srv.refusing != 0 || srv.paused_by_cap != 0)
        abort();
    /* ... and every per-address count: the table's entries are only rate history now. */
    if (srv.per_ip.open != 0)
        abort();
    /* ... and every zlib stream. */
    if (zpool_in_use_bytes(srv.limits.zpool) != 0)
        abort();
    zpool_free(srv.limits.zpool);
    ip_limit_destroy(&srv.per_ip);
    buf_free(&srv.scratch.bytes);
    close(sv[1]);
    return 0;
}
