/* wsload: a WebSocket (or plain TCP) echo load generator that verifies every echoed byte. */
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "clock.h"
#include "conn.h"
#include "loop.h"
#include "options.h"
#include "proc.h"
#include "report.h"
#include "run.h"
#include "tlsc.h"
#include "zconn.h"

#define FD_SPARE 16 /* stdio, epoll, /proc reads */

static int resolve(struct bench *b)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai;
    char port[8];
    snprintf(port, sizeof port, "%d", b->opt.port);
    int rc = getaddrinfo(b->opt.host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "wsload: --host '%s': %s\n", b->opt.host, gai_strerror(rc));
        return -1;
    }
    memcpy(&b->addr, ai->ai_addr, ai->ai_addrlen);
    b->addrlen = ai->ai_addrlen;
    bool v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    snprintf(b->host_header, sizeof b->host_header, v6 ? "[%s]:%d" : "%s:%d", b->opt.host,
             b->opt.port);
    return 0;
}

static int setup(struct bench *b)
{
    uint64_t fds = raise_nofile();
    if ((uint64_t)b->opt.connections + FD_SPARE > fds) {
        fprintf(stderr, "wsload: %u connections need %u descriptors; the limit is %llu\n",
                b->opt.connections, b->opt.connections + FD_SPARE, (unsigned long long)fds);
        return -1;
    }
    if (resolve(b) < 0)
        return -1;
    if (getrandom(&b->rng, sizeof b->rng, 0) != sizeof b->rng || b->rng == 0)
        b->rng = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid();
    enum payload_kind kind = b->opt.json_payload ? PAYLOAD_JSON
                             : b->opt.text       ? PAYLOAD_TEXT
                                                 : PAYLOAD_BINARY;
    if (payload_init(&b->pl, b->opt.size, kind, b->opt.raw, &b->rng) < 0 || zconn_setup(b) < 0) {
        fprintf(stderr, "wsload: out of memory for the message pool\n");
        return -1;
    }
    /* Page-aligned, not malloc's 16 bytes into a mapping: on some CPUs the kernel copies into
     * a misaligned buffer much more slowly (an AMD EPYC here: 3% more CPU per 16 KiB echo at
     * 16 bytes off, a third more at 4 or 8), and the generator should not be the slow side. */
    b->rbuf = aligned_alloc(4096, RECV_BUFFER_SIZE);
    if (b->opt.tls) {
        char err[256];
        b->tls = tlsc_ctx_new(b->opt.tls_suites, 0, err, sizeof err);
        b->tls_wbuf = malloc(TLS_GATHER_SIZE);
        if (!b->tls || !b->tls_wbuf) {
            fprintf(stderr, "wsload: %s\n", b->tls ? "out of memory" : err);
            return -1;
        }
    }
    b->epfd = loop_create();
    b->nconns = b->opt.connections;
    b->conns = calloc(b->nconns, sizeof *b->conns);
    if (!b->rbuf || b->epfd < 0 || !b->conns) {
        fprintf(stderr, "wsload: cannot set up: out of memory or descriptors\n");
        return -1;
    }
    for (unsigned i = 0; i < b->nconns; i++)
        if (conn_init(&b->conns[i], i, b->opt.depth) < 0) {
            fprintf(stderr, "wsload: out of memory for %u connections\n", b->nconns);
            return -1;
        }
    b->count[CS_NEW] = b->nconns;
    return 0;
}

int main(int argc, char **argv)
{
    static struct bench b; /* the histogram alone is 34 KiB */
    switch (options_parse(argc, argv, &b.opt)) {
    case OPTIONS_EXIT_OK:
        return 0;
    case OPTIONS_EXIT_USAGE:
        return 2;
    default:
        break;
    }
    signal(SIGPIPE, SIG_IGN);
    /* --rate wakes every few tens of microseconds; the default 50 us slack would skew it. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    if (setup(&b) < 0)
        return 1;

    struct results r = { .server_cpu_s = -1, .rss_before = -1, .rss_after = -1, .rss_end = -1,
                          .kernel_before = -1, .kernel_after = -1 };
    if (b.opt.idle) {
        run_idle(&b, &r);
    } else {
        int64_t t0 = now_ns();
        r.connected = run_connect(&b) == 0;
        r.connect_s = (double)(now_ns() - t0) / NS_PER_S;
        if (r.connected)
            run_load(&b, &r);
    }
    run_close(&b);
    report_print(&b, &r);

    for (unsigned i = 0; i < b.nconns; i++)
        conn_free(&b.conns[i]);
    free(b.conns);
    free(b.rbuf);
    free(b.tls_wbuf);
    tlsc_ctx_free(b.tls);
    zconn_teardown(&b);
    payload_free(&b.pl);
    close(b.epfd);
    return b.errors || !r.connected ? 1 : 0;
}
