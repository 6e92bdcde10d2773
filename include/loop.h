/* The event loop: the only code that sees epoll. A watched object embeds a struct io_watch;
 * its registered mask is kept here so ADD/MOD/DEL is decided without a syscall. */
#ifndef WEBSOCK_LOOP_H
#define WEBSOCK_LOOP_H

#include <stdint.h>

enum { IO_READ = 1, IO_WRITE = 2 };

struct io_watch {
    int fd;
    uint8_t mask; /* IO_READ | IO_WRITE currently registered */
};

struct io_event {
    struct io_watch *watch;
    unsigned events; /* IO_READ | IO_WRITE; errors and hang-ups are reported as both, so the
                        handler meets them through its normal read or write */
};

struct io_loop;

struct io_loop *loop_create(void);
void loop_destroy(struct io_loop *loop);

/* Sets the mask of a watch (0 removes it). Returns 0, or -1 with errno. */
int loop_set(struct io_loop *loop, struct io_watch *w, uint8_t mask);

/* Waits up to timeout_ms (-1: no limit); returns how many events were stored, or -1 (EINTR is 0). */
int loop_wait(struct io_loop *loop, struct io_event *events, int max, int timeout_ms);

#endif
