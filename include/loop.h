/* The event loop: the only code that sees epoll. A watched object embeds a struct io_watch;
 * its registered mask is kept here so ADD/MOD/DEL is decided without a syscall. */
#ifndef WEBSOCK_LOOP_H
#define WEBSOCK_LOOP_H

#include <stdint.h>

/* IO_EDGE (with IO_READ or IO_WRITE) registers the watch edge-triggered: it is reported when
 * its state changes, not again on every wait while it stays readable, which spares the kernel a
 * second poll of every socket it reported. Its owner must then ask again (loop_rearm) when it
 * stops reading with input possibly left, and watch for IO_HANGUP. */
enum { IO_READ = 1, IO_WRITE = 2, IO_EDGE = 4 };

/* In events only: the peer shut down its sending side; there is an end of input to read. */
enum { IO_HANGUP = 8 };

struct io_watch {
    int fd;
    uint8_t mask; /* IO_READ | IO_WRITE | IO_EDGE currently registered */
};

struct io_event {
    struct io_watch *watch;
    unsigned events; /* IO_READ | IO_WRITE | IO_HANGUP; errors and hang-ups are reported as read
                        and write, so the handler meets them through its normal read or write */
};

struct io_loop;

struct io_loop *loop_create(void);
void loop_destroy(struct io_loop *loop);

/* Sets the mask of a watch (0 removes it). Returns 0, or -1 with errno. */
int loop_set(struct io_loop *loop, struct io_watch *w, uint8_t mask);

/* Has the kernel check a registered watch again and report it if it is ready: for an
 * edge-triggered watch whose owner left input unread. Returns 0, or -1 with errno. */
int loop_rearm(struct io_loop *loop, struct io_watch *w);

/* Waits up to timeout_ms (-1: no limit); returns how many events were stored, or -1 (EINTR is 0). */
int loop_wait(struct io_loop *loop, struct io_event *events, int max, int timeout_ms);

#endif
