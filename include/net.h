/* Socket system calls with the flags we always want (non-blocking, close-on-exec, no SIGPIPE,
 * no Nagle delay), in one place. */
#ifndef WEBSOCK_NET_H
#define WEBSOCK_NET_H

#include <stdbool.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "ip_addr.h"

/* Room for the one-line reasons below (a bind failure comes with advice). */
#define NET_ERR_LEN 448

/* A listening socket on bind_addr (NULL: all interfaces, dual-stack) and port. On failure
 * returns -1 and writes a one-line reason into err. */
int net_listen(const char *bind_addr, int port, char *err, size_t errlen);

/* n listening sockets on the same address with SO_REUSEPORT, one per worker process; the
 * kernel spreads new connections over them. Fails, like net_listen, if anything else listens
 * there. Returns 0, or -1 with a reason in err and nothing left open. */
int net_listen_shared(const char *bind_addr, int port, int n, int *fds, char *err,
                      size_t errlen);

/* A listening Unix stream socket at path. A socket file nobody accepts on (left by a server
 * that died) is replaced; a live one, or a file that is not a socket, is an error (errno
 * EADDRINUSE for "in use"). The caller unlinks path when it stops. */
int net_listen_unix(const char *path, char *err, size_t errlen);

/* Accepts one connection, non-blocking (TCP ones with TCP_NODELAY); -1 with errno when none.
 * *has_peer says whether *peer holds the client's IP address (not for a Unix socket). */
int net_accept(int listen_fd, struct ip_addr *peer, bool *has_peer);

/* The IP address of a connection's peer (false for a Unix socket or a peer already gone). */
bool net_peer_addr(int fd, struct ip_addr *out);

ssize_t net_recv(int fd, void *buf, size_t len);
ssize_t net_send(int fd, const void *buf, size_t len);
/* One gathered send: the frames of one event, wherever they lie, in one system call. */
ssize_t net_sendv(int fd, const struct iovec *iov, int iovcnt);

/* Bytes of our output the peer has acknowledged so far (TCP_INFO), or -1 for sockets that keep
 * no such count (Unix). Unlike writability, it moves whenever the peer takes anything. */
int64_t net_bytes_acked(int fd);

/* Bytes the kernel holds for the socket but has not put on the wire yet (the peer's window is
 * full), or -1 where it does not say (Unix sockets). */
int64_t net_unsent_bytes(int fd);

/* Drops input still queued on the socket (bounded: a few reads of len), so that a close()
 * sends a FIN after our last bytes instead of a reset that destroys them. */
void net_discard_input(int fd, void *buf, size_t len);

/* Makes the next close() send a reset (SO_LINGER 0): for a peer that takes nothing, so that
 * what it never read does not linger in kernel memory. */
void net_reset_on_close(int fd);

#define NET_PEER_NAME_LEN 72
/* Writes "address:port fd=N" (or "fd=N" once the peer is gone) into out; returns out. */
const char *net_peer_name(int fd, char *out, size_t len);

/* The signals websock takes itself instead of letting them kill it: TERM, INT, QUIT (stop),
 * HUP (reload), USR1 (status), USR2 and ALRM (ignored, with a log line). */
void net_handled_signals(sigset_t *set);
/* "SIGHUP" for SIGHUP and the other handled signals. */
const char *net_signal_name(int sig);

/* Blocks the handled signals and returns a signalfd that reports them; ignores SIGPIPE. */
int net_signalfd(void);

#endif
