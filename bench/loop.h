/* The event loop: the only code that sees epoll. Sockets are watched edge-triggered for both
 * directions from the start, so a message never costs an epoll_ctl. */
#ifndef WSLOAD_LOOP_H
#define WSLOAD_LOOP_H

#include <stdint.h>

struct bench;

/* Events as connections see them; errors and hang-ups come with READ and WRITE set too, so
 * the handler meets them through its normal recv() or send(). */
enum { EV_READ = 1, EV_WRITE = 2, EV_HUP = 4 };

int loop_create(void);

/* Watches fd for both directions; events go to conn_event(b, ptr, ...). 0, or -1 with errno. */
int loop_add(struct bench *b, int fd, void *ptr);

/* Waits until `until` (monotonic ns) at the latest and dispatches what arrived. */
void loop_once(struct bench *b, int64_t until);

#endif
