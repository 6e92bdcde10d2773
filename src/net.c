#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* not netinet/tcp.h: its tcp_info lacks tcpi_bytes_acked */
#include <signal.h>
#include <stdio.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "defaults.h"

enum {
    LISTEN_DUAL_STACK = 1, /* an IPv6 wildcard that takes IPv4 too, whatever the sysctl says */
    LISTEN_REUSEPORT = 2,  /* one of a group of sockets sharing the address (--workers) */
    LISTEN_BIND_ONLY = 4,  /* a probe: bind to see whether the address is free, no listen */
};

/* The lowest port an unprivileged process may bind (a sysctl since Linux 4.11; 1024 before). */
static int unprivileged_port_start(void)
{
    int port = 1024;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "re");
    if (f) {
        if (fscanf(f, "%d", &port) != 1)
            port = 1024;
        fclose(f);
    }
    return port;
}

/* What an operator can do about a failed bind, beyond strerror: who holds the port, or how to
 * get the right to a low one. Empty when there is nothing useful to add. */
static void bind_advice(int e, int port, char *out, size_t len)
{
    out[0] = '\0';
    if (e == EADDRINUSE) {
        snprintf(out, len, ": another process holds this port (find it with: ss -ltnp "
                 "'sport = :%d')", port);
    } else if (e == EACCES && port < unprivileged_port_start()) {
        char exe[256];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = '\0';
        snprintf(out, len, ": ports below %d need privilege; use --port %d or above (behind a "
                 "proxy), or grant the capability: setcap cap_net_bind_service=+ep %.160s, or "
                 "AmbientCapabilities=CAP_NET_BIND_SERVICE in a systemd unit",
                 unprivileged_port_start(), unprivileged_port_start(), n > 0 ? exe : "websock");
    }
}

static int listen_on(const struct addrinfo *ai, int flags, char *err, size_t errlen,
                     const char *shown, int port)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a socket for %s: %s", shown, strerror(errno));
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (flags & LISTEN_REUSEPORT)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if ((flags & LISTEN_DUAL_STACK) && ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
        (!(flags & LISTEN_BIND_ONLY) && listen(fd, SOMAXCONN) < 0)) {
        int e = errno;
        char advice[NET_ERR_LEN];
        bind_advice(e, port, advice, sizeof advice);
        snprintf(err, errlen, "cannot listen on %s port %d: %s%s", shown, port, strerror(e),
                 advice);
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int open_tcp(const char *bind_addr, int port, int flags, char *err, size_t errlen)
{
    struct addrinfo hints = { 0 }, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", port);
    /* Without --bind, listen dual-stack on ::, or on 0.0.0.0 where IPv6 is unavailable. */
    const char *addrs[2] = { bind_addr ? bind_addr : "::", bind_addr ? NULL : "0.0.0.0" };
    if (!bind_addr)
        flags |= LISTEN_DUAL_STACK;
    for (int i = 0; i < 2 && addrs[i]; i++) {
        int rc = getaddrinfo(addrs[i], portstr, &hints, &ai);
        if (rc != 0) {
            snprintf(err, errlen, "--bind: '%s' is not an IPv4 or IPv6 address", addrs[i]);
            return -1;
        }
        int fd = listen_on(ai, flags, err, errlen, addrs[i], port);
        freeaddrinfo(ai);
        if (fd >= 0 || bind_addr || errno != EAFNOSUPPORT)
            return fd;
    }
    return -1;
}

int net_listen(const char *bind_addr, int port, char *err, size_t errlen)
{
    return open_tcp(bind_addr, port, 0, err, errlen);
}

int net_listen_shared(const char *bind_addr, int port, int n, int *fds, char *err,
                      size_t errlen)
{
    /* SO_REUSEPORT would let this group join another process's group on the same port (of the
     * same user) and silently split its traffic; a plain bind first fails on any listener. */
    int probe = open_tcp(bind_addr, port, LISTEN_BIND_ONLY, err, errlen);
    if (probe < 0)
        return -1;
    close(probe);
    for (int i = 0; i < n; i++) {
        fds[i] = open_tcp(bind_addr, port, LISTEN_REUSEPORT, err, errlen);
        if (fds[i] < 0) {
            int e = errno;
            while (i-- > 0)
                close(fds[i]);
            errno = e;
            return -1;
        }
    }
    return 0;
}

/* A socket file left by a server that is gone: nothing accepts a connection on it. */
static bool unix_socket_is_stale(const struct sockaddr_un *sa, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(sa->sun_path, &st) < 0)
        return errno == ENOENT;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "cannot listen on %s: it exists and is not a socket", sa->sun_path);
        return false;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return false;
    int rc = connect(probe, (const struct sockaddr *)sa, sizeof *sa);
    int e = errno;
    close(probe);
    if (rc == 0 || e == EAGAIN) /* accepted, or a listener with a full backlog */
        snprintf(err, errlen, "cannot listen on %s: address in use (is another server "
                 "running?)", sa->sun_path);
    else if (e != ECONNREFUSED)
        snprintf(err, errlen, "cannot listen on %s: %s", sa->sun_path, strerror(e));
    return rc != 0 && e == ECONNREFUSED;
}

int net_listen_unix(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "--unix: path longer than %zu bytes", sizeof sa.sun_path - 1);
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a Unix socket: %s", strerror(errno));
        return -1;
    }
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    if (rc < 0 && errno == EADDRINUSE) {
        snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
        if (!unix_socket_is_stale(&sa, err, errlen)) {
            close(fd);
            errno = EADDRINUSE;
            return -1;
        }
        unlink(path);
        rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    }
    if (rc < 0 || listen(fd, SOMAXCONN) < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(e));
        if (rc == 0)
            unlink(path);
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int net_accept(int listen_fd, struct ip_addr *peer, bool *has_peer)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    *has_peer = fd >= 0 && ip_addr_from_sockaddr(&ss, sl, peer);
    if (fd >= 0 && ss.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* Bounds what the kernel holds unsent for a client that stops reading (else up to
         * the whole autotuned send buffer, 4 MiB, each). Eight reads' worth: the send timeout
         * reads progress from the peer's acks, not from writability, so the mark only needs to
         * leave room for large writes; at 512 KiB a 16 MiB echo cost ~14% more server CPU. */
        int lowat = 8 * READ_BUFFER_SIZE;
        setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
    }
    return fd;
}

/* TCP_INFO, if the kernel fills it at least up to the end of field (offset + size). */
static bool tcp_info_upto(int fd, struct tcp_info *ti, size_t end)
{
    socklen_t len = sizeof *ti;
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len) == 0 && len >= end;
}
#define TCP_INFO_END(field) (offsetof(struct tcp_info, field) + sizeof(((struct tcp_info *)0)->field))

int64_t net_bytes_acked(int fd)
{
    struct tcp_info ti;
    return tcp_info_upto(fd, &ti, TCP_INFO_END(tcpi_bytes_acked)) ? (int64_t)ti.tcpi_bytes_acked
                                                                  : -1;
}

int64_t net_unsent_bytes(int fd)
{
    struct tcp_info ti;
    return tcp_info_upto(fd, &ti, TCP_INFO_END(tcpi_notsent_bytes)) ? (int64_t)ti.tcpi_notsent_bytes
                                                                    : -1;
}

void net_discard_input(int fd, void *buf, size_t len)
{
    /* TCP drops the bytes without copying them (MSG_TRUNC); other sockets copy into buf. */
    for (int i = 0; i < 16; i++)
        if (recv(fd, buf, len, MSG_DONTWAIT | MSG_TRUNC) <= 0)
            return;
}

void net_reset_on_close(int fd)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

ssize_t net_recv(int fd, void *buf, size_t len)
{
    ssize_t n;
    do
        n = recv(fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n;
}

ssize_t net_sendv(int fd, const struct iovec *iov, int iovcnt)
{
    struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
    ssize_t n;
    do
        n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
}

ssize_t net_send(int fd, const void *buf, size_t len)
{
    ssize_t n;
    do
        n = send(fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
}

bool net_peer_addr(int fd, struct ip_addr *out)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    return getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 && ip_addr_from_sockaddr(&ss, sl, out);
}

const char *net_peer_name(int fd, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
            port = ntohs(a->sin6_port);
        } else if (ss.ss_family == AF_UNIX) {
            snprintf(host, sizeof host, "unix");
            port = -1;
        }
    }
    if (port < 0)
        snprintf(out, len, "%s fd=%d", host, fd);
    else if (host[0])
        snprintf(out, len, "%s:%d fd=%d", host, port, fd);
    else
        snprintf(out, len, "fd=%d", fd); /* the peer is already gone */
    return out;
}

static const struct {
    int sig;
    const char *name;
} handled_signals[] = {
    { SIGTERM, "SIGTERM" }, { SIGINT, "SIGINT" }, { SIGQUIT, "SIGQUIT" }, { SIGHUP, "SIGHUP" },
    { SIGUSR1, "SIGUSR1" }, { SIGUSR2, "SIGUSR2" }, { SIGALRM, "SIGALRM" },
};

void net_handled_signals(sigset_t *set)
{
    /* Each of these would otherwise end the process without a Close to anyone. */
    sigemptyset(set);
    for (size_t i = 0; i < sizeof handled_signals / sizeof handled_signals[0]; i++)
        sigaddset(set, handled_signals[i].sig);
}

const char *net_signal_name(int sig)
{
    for (size_t i = 0; i < sizeof handled_signals / sizeof handled_signals[0]; i++)
        if (handled_signals[i].sig == sig)
            return handled_signals[i].name;
    return "signal";
}

int net_signalfd(void)
{
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    net_handled_signals(&set);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}
