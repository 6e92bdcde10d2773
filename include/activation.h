/* systemd socket activation (sd_listen_fds(3)) without libsystemd: the service manager opens
 * the listening sockets itself and passes them at descriptors 3, 4, ... ($LISTEN_FDS of them,
 * for the process $LISTEN_PID names). It keeps them open while websock restarts, so the kernel
 * queues new connections for the next process instead of refusing them. */
#ifndef WEBSOCK_ACTIVATION_H
#define WEBSOCK_ACTIVATION_H

#include <stddef.h>

#include "log.h"
#include "options.h"

#define ACTIVATION_FIRST_FD 3 /* SD_LISTEN_FDS_START */

/* Takes the sockets passed to this process into fds (at most max): each must be a listening
 * TCP or Unix stream socket; each is made non-blocking and close-on-exec. Unsets LISTEN_PID,
 * LISTEN_FDS and LISTEN_FDNAMES in any case, so nothing started later takes them again.
 * Returns how many (0: none are for this process, the caller binds its own), or -1 after
 * logging why (a passed descriptor that is not a listening stream socket, a malformed
 * variable). Logs the addresses, and which of --port, --bind, --unix they override. */
int activation_take(const struct logger *log, const struct options *opt, int *fds, int max);

#define ACTIVATION_ADDR_LEN 128
/* The local address of a listening socket for log lines: "127.0.0.1:8888", "[::1]:8888",
 * "unix:/run/websock.sock" (abstract: "unix:@name"). Returns out. */
const char *activation_describe(int fd, char *out, size_t len);

#endif
