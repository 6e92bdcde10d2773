#include "loop.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/epoll.h>

#include "bench.h"
#include "clock.h"
#include "conn.h"

#define EVENTS_MAX 1024

int loop_create(void)
{
    return epoll_create1(EPOLL_CLOEXEC);
}

int loop_add(struct bench *b, int fd, void *ptr)
{
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                              .data.ptr = ptr };
    return epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev);
}

void loop_once(struct bench *b, int64_t until)
{
    static bool no_pwait2; /* kernels before 5.11: millisecond timeouts only */
    struct epoll_event ev[EVENTS_MAX];
    int64_t wait = until - now_ns();
    if (wait < 0)
        wait = 0;
    if (wait > NS_PER_S)
        wait = NS_PER_S;
    int n = -1;
    if (!no_pwait2) {
        /* Nanosecond timeouts: --rate slots are tens of microseconds apart. */
        struct timespec ts = { .tv_sec = wait / NS_PER_S, .tv_nsec = wait % NS_PER_S };
        n = epoll_pwait2(b->epfd, ev, EVENTS_MAX, &ts, NULL);
        if (n < 0 && errno == ENOSYS)
            no_pwait2 = true;
    }
    if (no_pwait2)
        n = epoll_wait(b->epfd, ev, EVENTS_MAX, (int)((wait + NS_PER_MS - 1) / NS_PER_MS));
    for (int i = 0; i < n; i++) {
        uint32_t e = ev[i].events;
        unsigned flags = (e & EPOLLIN ? EV_READ : 0) | (e & EPOLLOUT ? EV_WRITE : 0);
        if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            flags |= EV_HUP | EV_READ | EV_WRITE;
        conn_event(b, ev[i].data.ptr, flags);
    }
}
