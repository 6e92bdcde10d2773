#include "activation.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* A decimal number with nothing around it, within [0, max]; -1 otherwise. */
static long parse_number(const char *s, long max)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    return errno || *end || v > max ? -1 : v;
}

const char *activation_describe(int fd, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        snprintf(out, len, "fd %d", fd);
    } else if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(out, len, "%s:%d", host, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(out, len, "[%s]:%d", host, ntohs(a->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        const struct sockaddr_un *a = (const struct sockaddr_un *)&ss;
        size_t n = sl > offsetof(struct sockaddr_un, sun_path)
                       ? sl - offsetof(struct sockaddr_un, sun_path) : 0;
        if (n && a->sun_path[0] == '\0') /* abstract: a leading NUL, no terminator */
            snprintf(out, len, "unix:@%.*s", (int)(n - 1), a->sun_path + 1);
        else
            snprintf(out, len, "unix:%.*s", (int)strnlen(a->sun_path, n), a->sun_path);
    } else {
        snprintf(out, len, "fd %d (address family %d)", fd, ss.ss_family);
    }
    return out;
}

/* Is fd what websock can serve on: a listening TCP or Unix stream socket? If not, says what it
 * is instead, with the unit setting that would have given one. */
static bool is_listening_stream(int fd, char *why, size_t len)
{
    struct stat st;
    int type = 0, domain = 0, listening = 0;
    socklen_t sl = sizeof type;
    if (fstat(fd, &st) < 0) {
        snprintf(why, len, "is not open (%s)", strerror(errno));
        return false;
    }
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(why, len, "is not a socket but a %s", S_ISREG(st.st_mode) ? "regular file"
                 : S_ISFIFO(st.st_mode) ? "pipe" : S_ISCHR(st.st_mode) ? "character device"
                 : S_ISDIR(st.st_mode) ? "directory" : "non-socket file");
        return false;
    }
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl);
    sl = sizeof domain;
    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &sl);
    sl = sizeof listening;
    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &sl);
    if (type != SOCK_STREAM)
        snprintf(why, len, "is not a stream socket (socket type %d; websock needs "
                 "ListenStream=, not ListenDatagram= or ListenSequentialPacket=)", type);
    else if (domain != AF_INET && domain != AF_INET6 && domain != AF_UNIX)
        snprintf(why, len, "is a stream socket of address family %d, not TCP or Unix", domain);
    else if (!listening)
        snprintf(why, len, "is a stream socket that is not listening (a connection: websock "
                 "needs Accept=no in the socket unit)");
    else
        return true;
    return false;
}

static void unset_variables(void)
{
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
}

/* The i-th name of LISTEN_FDNAMES ("a:b:c"), into out; "" if there is none. */
static void fd_name(const char *names, int i, char *out, size_t len)
{
    out[0] = '\0';
    for (const char *p = names; p; i--) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        if (i == 0) {
            snprintf(out, len, "%.*s", (int)n, p);
            return;
        }
        p = colon ? colon + 1 : NULL;
    }
}

/* The flags that name an address of their own, which the passed sockets override. */
static void warn_overridden(const struct logger *log, const struct options *opt)
{
    char flags[192] = "";
    size_t n = 0;
    if (opt->unix_path)
        n += (size_t)snprintf(flags + n, sizeof flags - n, " --unix %.100s", opt->unix_path);
    if (opt->bind && n < sizeof flags)
        n += (size_t)snprintf(flags + n, sizeof flags - n, " --bind %.46s", opt->bind);
    if (opt->port != DEFAULT_PORT && n < sizeof flags)
        snprintf(flags + n, sizeof flags - n, " --port %d", opt->port);
    if (flags[0])
        log_warn(log, "ignoring%s: the service manager passed the listening sockets, and the "
                 "socket unit (ListenStream=) decides the address", flags);
}

int activation_take(const struct logger *log, const struct options *opt, int *fds, int max)
{
    const char *pid_text = getenv("LISTEN_PID"), *count_text = getenv("LISTEN_FDS");
    if (!pid_text && !count_text)
        return 0;
    /* Copies: unsetenv may free what getenv returned. */
    char pid_s[24], count_s[24], names[1024];
    snprintf(pid_s, sizeof pid_s, "%s", pid_text ? pid_text : "");
    snprintf(count_s, sizeof count_s, "%s", count_text ? count_text : "");
    const char *names_text = getenv("LISTEN_FDNAMES");
    snprintf(names, sizeof names, "%s", names_text ? names_text : "");
    bool named = names_text != NULL;
    unset_variables();

    if (!pid_text || !count_text) {
        log_warn(log, "ignoring %s: it comes without %s (socket activation needs both)",
                 pid_text ? "LISTEN_PID" : "LISTEN_FDS", pid_text ? "LISTEN_FDS" : "LISTEN_PID");
        return 0;
    }
    long pid = parse_number(pid_s, 0x7fffffffL), count = parse_number(count_s, 0x7fffffffL);
    if (pid <= 0) {
        log_error(log, "socket activation: LISTEN_PID='%s' is not a process id", pid_s);
        return -1;
    }
    if (pid != (long)getpid()) {
        /* Meant for another process (a parent that did not unset it): not ours to take. */
        log_info(log, "ignoring LISTEN_FDS: LISTEN_PID %ld is not this process (%d); opening "
                 "the address from the command line", pid, (int)getpid());
        return 0;
    }
    if (count < 0) {
        log_error(log, "socket activation: LISTEN_FDS='%s' is not a number of sockets", count_s);
        return -1;
    }
    if (count > max) {
        log_error(log, "socket activation: %ld sockets passed, websock takes at most %d",
                  count, max);
        return -1;
    }
    for (int i = 0; i < (int)count; i++) {
        int fd = ACTIVATION_FIRST_FD + i;
        char why[192];
        if (!is_listening_stream(fd, why, sizeof why)) {
            char name[64];
            fd_name(named ? names : NULL, i, name, sizeof name);
            log_error(log, "socket activation: descriptor %d%s%s%s %s", fd, name[0] ? " (" : "",
                      name, name[0] ? ")" : "", why);
            return -1;
        }
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
            fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
            log_error(log, "socket activation: descriptor %d: %s", fd, strerror(errno));
            return -1;
        }
        fds[i] = fd;
    }
    if (count == 0)
        return 0;
    char list[512] = "";
    size_t n = 0;
    for (int i = 0; i < (int)count && n < sizeof list; i++) {
        char addr[ACTIVATION_ADDR_LEN], name[64];
        fd_name(named ? names : NULL, i, name, sizeof name);
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s%s%s%s", i ? ", " : "",
                              activation_describe(fds[i], addr, sizeof addr),
                              name[0] ? " (" : "", name, name[0] ? ")" : "");
    }
    log_info(log, "socket activation: serving %ld listening socket(s) passed by the service "
             "manager: %s", count, list);
    warn_overridden(log, opt);
    return (int)count;
}
