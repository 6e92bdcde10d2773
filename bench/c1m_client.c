/* c1m_client: one process of the million-connection client (bench/c1m.py runs ~80 of them).
 *
 * Opens N upgraded WebSocket connections from one source address, holds them, echoes one
 * small message on one of them every --sample-ms to prove they are alive, and, when the
 * server stops, answers every Close and records how each TCP connection ended. A few bytes
 * of state per connection (indexed by descriptor), one level-triggered epoll loop.
 *
 * Commands on stdin, one per line; answers on stdout, one line each:
 *   stat  -> "stat open=N failed=N echoes=N bad=N lost=N lat_us=a,b,..." (latencies since
 *            the last stat)
 *   end   -> "end open=N close1001=N close_other=N fin_after_close=N rst_after_close=N
 *            bare_fin=N rst=N" and exit
 * Unprompted: "ready open=N failed=N ms=T" once every connection was tried, and "done ..."
 * (as "end") once every connection has ended after the server's Close. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { ST_FREE, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING };

#define MAX_INFLIGHT 256
#define MAX_LAT 4096

static uint8_t *state;  /* by descriptor */
static int nstate;
static int ep;
static struct sockaddr_in dst, src;
static const char *host_hdr;

static long opened, failed, tried, target, ended, inflight;
static long c1001, cother, fin_close, rst_close, bare_fin, rst;
static long echoes, bad, lost;
static uint32_t lat[MAX_LAT];
static int nlat;
static int sample_fd = -1, next_fd_hint;
static int64_t sample_sent_us;
static char sample_payload[32];
static size_t sample_len;
static int64_t t_start;
static int stopping_seen, reported_ready, reported_done;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void watch(int fd, uint32_t ev, int op)
{
    struct epoll_event e = { .events = ev, .data.fd = fd };
    epoll_ctl(ep, op, fd, &e);
}

static void finish(int fd, int how_rst)
{
    if (state[fd] == ST_CLOSING)
        how_rst ? rst_close++ : fin_close++;
    else if (state[fd] == ST_OPEN)
        how_rst ? rst++ : bare_fin++;
    else
        failed++;
    if (state[fd] == ST_OPEN || state[fd] == ST_CLOSING)
        ended++;
    if (state[fd] == ST_CONNECTING || state[fd] == ST_HANDSHAKE)
        inflight--;
    if (fd == sample_fd)
        sample_fd = -1;
    state[fd] = ST_FREE;
    close(fd);
}

static void open_more(void)
{
    while (tried < target && inflight < MAX_INFLIGHT) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || fd >= nstate) {
            if (fd >= 0)
                close(fd);
            failed += target - tried;
            tried = target;
            return;
        }
        tried++;
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0 ||
            (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS)) {
            close(fd);
            failed++;
            continue;
        }
        state[fd] = ST_CONNECTING;
        inflight++;
        watch(fd, EPOLLOUT, EPOLL_CTL_ADD);
    }
}

static void send_request(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n", host_hdr);
    if (err || write(fd, req, (size_t)n) != n)
        return finish(fd, 1);
    state[fd] = ST_HANDSHAKE;
    watch(fd, EPOLLIN, EPOLL_CTL_MOD);
}

static void send_frame(int fd, int opcode, const void *payload, size_t len)
{
    uint8_t f[2 + 4 + 125];
    const uint8_t key[4] = { 0x12, 0x34, 0x56, 0x78 };
    f[0] = (uint8_t)(0x80 | opcode);
    f[1] = (uint8_t)(0x80 | len);
    memcpy(f + 2, key, 4);
    for (size_t i = 0; i < len; i++)
        f[6 + i] = ((const uint8_t *)payload)[i] ^ key[i & 3];
    if (write(fd, f, 6 + len) != (ssize_t)(6 + len) && opcode != 8)
        bad++;
}

static void on_frames(int fd, uint8_t *p, size_t n)
{
    while (n >= 2) {
        int op = p[0] & 0x0f;
        size_t len = p[1] & 0x7f, hdr = 2;
        if (len == 126) {
            if (n < 4)
                break;
            len = (size_t)p[2] << 8 | p[3];
            hdr = 4;
        }
        if (n < hdr + len) {
            bad++; /* tiny frames come whole over loopback; say so if not */
            return;
        }
        uint8_t *pl = p + hdr;
        if (op == 8) {
            int code = len >= 2 ? pl[0] << 8 | pl[1] : 1005;
            code == 1001 ? c1001++ : cother++;
            stopping_seen = 1;
            if (state[fd] == ST_OPEN) {
                state[fd] = ST_CLOSING;
                send_frame(fd, 8, pl, len >= 2 ? 2 : 0);
            }
        } else if (op == 9) {
            send_frame(fd, 10, pl, len);
        } else if (op == 1 || op == 2) {
            if (fd == sample_fd && len == sample_len && !memcmp(pl, sample_payload, len)) {
                int64_t d = now_us() - sample_sent_us;
                if (nlat < MAX_LAT)
                    lat[nlat++] = (uint32_t)d;
                echoes++;
                sample_fd = -1;
            } else {
                bad++;
            }
        }
        p += hdr + len;
        n -= hdr + len;
    }
}

static void on_readable(int fd)
{
    uint8_t buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
        if (errno != EAGAIN)
            finish(fd, 1);
        return;
    }
    if (n == 0)
        return finish(fd, 0);
    if (state[fd] == ST_HANDSHAKE) {
        /* The whole 101 head comes in one segment over loopback. */
        static const char ok[] = "HTTP/1.1 101", acc[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
        char *end = memmem(buf, (size_t)n, "\r\n\r\n", 4);
        if (!end || memcmp(buf, ok, sizeof ok - 1) || !memmem(buf, (size_t)n, acc, sizeof acc - 1))
            return finish(fd, 1);
        state[fd] = ST_OPEN;
        inflight--;
        opened++;
        size_t used = (size_t)(end + 4 - (char *)buf);
        if ((size_t)n > used)
            on_frames(fd, buf + used, (size_t)n - used);
        return;
    }
    on_frames(fd, buf, (size_t)n);
}

static void sample(void)
{
    if (sample_fd >= 0) {
        if (now_us() - sample_sent_us < 5000000)
            return;
        lost++;
        sample_fd = -1;
    }
    if (stopping_seen)
        return;
    for (int i = 0; i < nstate; i++) {
        int fd = (next_fd_hint + i) % nstate;
        if (state[fd] == ST_OPEN) {
            next_fd_hint = fd + 1;
            sample_len = (size_t)snprintf(sample_payload, sizeof sample_payload, "c1m %d %lld",
                                          fd, (long long)now_us());
            sample_fd = fd;
            sample_sent_us = now_us();
            send_frame(fd, 1, sample_payload, sample_len);
            return;
        }
    }
}

static void tallies(const char *word)
{
    printf("%s open=%ld close1001=%ld close_other=%ld fin_after_close=%ld rst_after_close=%ld "
           "bare_fin=%ld rst=%ld\n", word, opened - ended, c1001, cother, fin_close, rst_close,
           bare_fin, rst);
    fflush(stdout);
}

static int on_command(void)
{
    static char line[64];
    static size_t have;
    ssize_t n = read(0, line + have, sizeof line - 1 - have);
    if (n <= 0)
        return -1;
    have += (size_t)n;
    char *nl;
    while ((nl = memchr(line, '\n', have))) {
        *nl = 0;
        if (!strcmp(line, "stat")) {
            printf("stat open=%ld failed=%ld echoes=%ld bad=%ld lost=%ld lat_us=", opened - ended,
                   failed, echoes, bad, lost);
            for (int i = 0; i < nlat; i++)
                printf("%s%u", i ? "," : "", lat[i]);
            printf("\n");
            fflush(stdout);
            nlat = 0;
        } else if (!strcmp(line, "end")) {
            tallies("end");
            return -1;
        }
        size_t used = (size_t)(nl + 1 - line);
        memmove(line, line + used, have - used);
        have -= used;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: c1m_client HOST PORT SRC_ADDR CONNECTIONS SAMPLE_MS\n");
        return 2;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    nstate = (int)rl.rlim_cur;
    state = calloc((size_t)nstate, 1);
    dst.sin_family = src.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1 ||
        inet_pton(AF_INET, argv[3], &src.sin_addr) != 1 || !state) {
        fprintf(stderr, "c1m_client: bad address\n");
        return 2;
    }
    static char host[64];
    snprintf(host, sizeof host, "%s:%s", argv[1], argv[2]);
    host_hdr = host;
    target = atol(argv[4]);
    int sample_ms = atoi(argv[5]);
    ep = epoll_create1(EPOLL_CLOEXEC);
    watch(0, EPOLLIN, EPOLL_CTL_ADD);
    t_start = now_us();
    int64_t next_sample = now_us() + (int64_t)sample_ms * 1000;
    struct epoll_event ev[256];
    for (;;) {
        open_more();
        if (!reported_ready && tried == target && inflight == 0) {
            reported_ready = 1;
            printf("ready open=%ld failed=%ld ms=%lld\n", opened, failed,
                   (long long)((now_us() - t_start) / 1000));
            fflush(stdout);
        }
        if (stopping_seen && !reported_done && opened == ended) {
            reported_done = 1;
            tallies("done");
        }
        int64_t wait = (next_sample - now_us()) / 1000;
        int n = epoll_wait(ep, ev, 256, wait < 0 ? 0 : (int)wait);
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd == 0) {
                if (on_command() < 0)
                    return 0;
            } else if (state[fd] == ST_CONNECTING) {
                send_request(fd);
            } else if (state[fd] != ST_FREE) {
                if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    on_readable(fd);
            }
        }
        if (reported_ready && now_us() >= next_sample) {
            sample();
            next_sample = now_us() + (int64_t)sample_ms * 1000;
        } else if (now_us() >= next_sample) {
            next_sample = now_us() + (int64_t)sample_ms * 1000;
        }
    }
}
