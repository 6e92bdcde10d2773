#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_BATCH 256

struct io_loop {
    int epfd;
    struct epoll_event batch[MAX_BATCH];
};

struct io_loop *loop_create(void)
{
    struct io_loop *loop = malloc(sizeof *loop);
    if (!loop)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        free(loop);
        return NULL;
    }
    return loop;
}

void loop_destroy(struct io_loop *loop)
{
    if (!loop)
        return;
    close(loop->epfd);
    free(loop);
}

static int control(struct io_loop *loop, struct io_watch *w, int op, uint8_t mask)
{
    struct epoll_event ev = { 0 };
    ev.events = (mask & IO_READ ? EPOLLIN : 0u) | (mask & IO_WRITE ? EPOLLOUT : 0u) |
                (mask & IO_EDGE ? EPOLLET | EPOLLRDHUP : 0u);
    ev.data.ptr = w;
    if (epoll_ctl(loop->epfd, op, w->fd, &ev) < 0)
        return -1;
    w->mask = mask;
    return 0;
}

int loop_set(struct io_loop *loop, struct io_watch *w, uint8_t mask)
{
    if (mask == w->mask)
        return 0;
    int op = w->mask == 0 ? EPOLL_CTL_ADD : mask == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    return control(loop, w, op, mask);
}

int loop_rearm(struct io_loop *loop, struct io_watch *w)
{
    return w->mask ? control(loop, w, EPOLL_CTL_MOD, w->mask) : 0; /* MOD polls the fd anew */
}

int loop_wait(struct io_loop *loop, struct io_event *events, int max, int timeout_ms)
{
    if (max > MAX_BATCH)
        max = MAX_BATCH;
    int n = epoll_wait(loop->epfd, loop->batch, max, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) {
        uint32_t e = loop->batch[i].events;
        unsigned out = 0;
        if (e & (EPOLLIN | EPOLLERR | EPOLLHUP))
            out |= IO_READ;
        if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            out |= IO_WRITE;
        if (e & EPOLLRDHUP)
            out |= IO_READ | IO_HANGUP;
        events[i].watch = loop->batch[i].data.ptr;
        events[i].events = out;
    }
    return n;
}
