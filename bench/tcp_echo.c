/* tcp_echo: a minimal plain TCP echo server, the syscall floor that wsload --raw measures.
 * One thread, one edge-triggered epoll (as websock uses: the kernel does not poll each reported
 * socket a second time): one read into one shared buffer per event, written straight back. A
 * read that filled the buffer, or came with the peer's hang-up, asks epoll to look again. Only
 * bytes the socket refuses are kept, and only then is EPOLLOUT watched (and reading paused)
 * until they drain: that is all the backpressure an echo needs.
 *
 * With --xor it also makes one XOR pass over what it echoes, as a WebSocket server unmasks every
 * payload byte: fed frame-sized messages, it is the floor of any WebSocket echo (the kernel moves
 * the frames' bytes, the server touches each once) without the protocol's own work. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "simd.h"

#define BUF_SIZE (256 * 1024)
#define EVENTS_MAX 256
#define IN_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLET)
#define OUT_EVENTS (EPOLLOUT | EPOLLET)

struct peer {
    int fd;
    char *pending; /* what the socket did not take yet */
    size_t len, off;
};

static char buf[BUF_SIZE];

/* p[0..n) ^= key with websock's own unmasking loop, from the first 64-byte boundary on as
 * websock starts it (the few bytes around it cost nothing in comparison). */
static void xor_pass(char *p, size_t n, uint64_t key)
{
    uint8_t key8[8], high = 0;
    memcpy(key8, &key, 8);
    size_t i = -(uintptr_t)p & 63;
    if (i < n)
        simd_unmask_blocks(simd_best(), (uint8_t *)p + i, (uint8_t *)p + i, n - i, key8, &high);
}

static void peer_close(struct peer *p)
{
    close(p->fd); /* also leaves the epoll set */
    free(p->pending);
    free(p);
}

static int watch(int ep, struct peer *p, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = p };
    return epoll_ctl(ep, EPOLL_CTL_MOD, p->fd, &ev);
}

/* Returns -1 when the peer must go. xor_key is all zero bits, but known only at run time, so
 * the pass is made and the bytes come back as they came (wsload still verifies them). */
static int on_readable(int ep, struct peer *p, bool hangup, const uint64_t *xor_key)
{
    ssize_t n = recv(p->fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        return -1;
    if (n < 0)
        return 0;
    if (xor_key)
        xor_pass(buf, (size_t)n, *xor_key);
    ssize_t w = send(p->fd, buf, (size_t)n, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EINTR)
        return -1;
    if (w < 0)
        w = 0;
    if (w == n) /* MOD polls anew: input left behind is reported again */
        return (size_t)n == sizeof buf || hangup ? watch(ep, p, IN_EVENTS) : 0;
    p->len = (size_t)(n - w);
    p->off = 0;
    p->pending = malloc(p->len);
    if (!p->pending)
        return -1;
    memcpy(p->pending, buf + w, p->len);
    return watch(ep, p, OUT_EVENTS);
}

static int on_writable(int ep, struct peer *p)
{
    ssize_t w = send(p->fd, p->pending + p->off, p->len - p->off, MSG_NOSIGNAL);
    if (w < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    p->off += (size_t)w;
    if (p->off < p->len)
        return 0;
    free(p->pending);
    p->pending = NULL;
    return watch(ep, p, IN_EVENTS);
}

static void on_accept(int ep, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                perror("tcp_echo: accept");
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct peer *p = calloc(1, sizeof *p);
        struct epoll_event ev = { .events = IN_EVENTS, .data.ptr = p };
        if (!p || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(p);
            continue;
        }
        p->fd = fd;
    }
}

static int listen_on(const char *addr, int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "tcp_echo: --bind '%s' is not an IPv4 address\n", addr);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, SOMAXCONN) < 0) {
        fprintf(stderr, "tcp_echo: cannot listen on %s port %d: %s\n", addr, port,
                strerror(errno));
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    int port = 0;
    const char *addr = "127.0.0.1";
    volatile uint64_t opaque_zero = 0; /* read at run time: the pass cannot be optimised away */
    uint64_t zero = opaque_zero;
    const uint64_t *xor_key = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--xor") == 0)
            xor_key = &zero;
        else if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc)
            addr = argv[++i];
        else
            port = -1;
    }
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: tcp_echo --port N [--bind IPV4] [--xor]\n"
                        "  --bind defaults to 127.0.0.1; --xor: one XOR pass over every byte\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int lfd = listen_on(addr, port);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
    if (lfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
        return 1;

    struct epoll_event ev[EVENTS_MAX];
    for (;;) {
        int n = epoll_wait(ep, ev, EVENTS_MAX, -1);
        for (int i = 0; i < n; i++) {
            struct peer *p = ev[i].data.ptr;
            if (!p) {
                on_accept(ep, lfd);
                continue;
            }
            /* Errors and hang-ups are met through the next recv() or send(). */
            int rc = p->pending ? on_writable(ep, p)
                                : on_readable(ep, p, ev[i].events & (EPOLLRDHUP | EPOLLHUP),
                                              xor_key);
            if (rc < 0)
                peer_close(p);
        }
    }
}
