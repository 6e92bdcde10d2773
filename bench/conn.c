#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "loop.h"
#include "zconn.h"

#define CONNECT_TIMEOUT_NS (10 * NS_PER_S) /* per attempt, the upgrade included */
#define CLOSE_TIMEOUT_NS (5 * NS_PER_S)
#define RETRY_BASE_NS (50 * NS_PER_MS)     /* doubled per attempt: 50 .. 800 ms */
#define MAX_ATTEMPTS 6
#define ERRORS_PRINTED 10                  /* 10,000 identical lines help nobody */

static void set_state(struct bench *b, struct conn *c, enum conn_state s)
{
    b->count[c->state]--;
    b->count[s]++;
    c->state = (uint8_t)s;
}

int conn_init(struct conn *c, uint32_t id, unsigned depth)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->id = id;
    c->depth = depth;
    c->state = CS_NEW;
    c->deadline = INT64_MAX;
    c->ring = calloc(depth, sizeof *c->ring);
    return c->ring ? 0 : -1;
}

void conn_free(struct conn *c)
{
    tlsc_free(c->tls);
    if (c->fd >= 0)
        close(c->fd);
    free(c->hs);
    zconn_free(c);
    free(c->ring);
}

/* Forgets the socket and everything in flight on it; the caller picks the next state. */
static void drop(struct bench *b, struct conn *c)
{
    tlsc_free(c->tls);
    c->tls = NULL;
    c->tls_hs = c->tls_rw = c->tls_wr = c->tls_retry = false;
    c->tls_wctl = 0;
    if (c->fd >= 0)
        close(c->fd); /* also removes it from epoll */
    c->fd = -1;
    free(c->hs);
    c->hs = NULL;
    c->hs_len = 0;
    b->inflight -= conn_inflight(c);
    c->head = c->sent = c->tail = 0;
    c->out_off = 0;
    c->hdr_len = 0;
    c->in_frame = c->in_msg = false;
    c->msg_off = 0;
    c->ctl_out_len = c->ctl_out_off = 0;
    c->writable = c->close_received = false;
    c->deadline = INT64_MAX;
    zconn_drop(b, c);
}

void conn_fail(struct bench *b, struct conn *c, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (b->errors < ERRORS_PRINTED)
        fprintf(stderr, "wsload: connection %u: %s\n", c->id, why);
    else if (b->errors == ERRORS_PRINTED)
        fprintf(stderr, "wsload: (further connection errors are only counted)\n");
    if (!b->errors)
        snprintf(b->first_error, sizeof b->first_error, "connection %u: %s", c->id, why);
    b->errors++;
    drop(b, c);
    set_state(b, c, CS_FAILED);
}

static bool retryable(int err)
{
    return err == ECONNREFUSED || err == EAGAIN || err == ECONNRESET || err == ETIMEDOUT ||
           err == EADDRNOTAVAIL;
}

/* A refused or stalled connect is what a full listen backlog looks like: back off and try
 * again a few times before calling it a failure. */
static void retry(struct bench *b, struct conn *c, int64_t now, const char *why)
{
    if (c->attempts >= MAX_ATTEMPTS) {
        conn_fail(b, c, "%s (after %u attempts)", why, c->attempts);
        return;
    }
    drop(b, c);
    set_state(b, c, CS_RETRY);
    c->deadline = now + (RETRY_BASE_NS << (c->attempts - 1));
    b->retries++;
}

/* Prints what was expected and what came back around the first wrong byte, then exits. */
static void finish_close(struct bench *b, struct conn *c)
{
    drop(b, c);
    set_state(b, c, CS_CLOSED);
}

/* --churn: a closed connection opens the next at once (once its event is handled, so the
 * handler never meets the new socket). */
static void churn_next(struct bench *b, struct conn *c)
{
    if (c->state == CS_CLOSED && b->opt.churn && b->issuing) {
        c->attempts = 0;
        conn_start(b, c, now_ns());
    }
}

/* Sends the upgrade request (over TLS once its handshake is done). */
static void upgrade(struct bench *b, struct conn *c, int64_t now)
{
    if (b->opt.raw) {
        set_state(b, c, CS_OPEN);
        c->deadline = INT64_MAX;
        return;
    }
    char req[512];
    uint8_t nonce[16];
    uint64_t r[2] = { rng_next(&b->rng), rng_next(&b->rng) };
    memcpy(nonce, r, sizeof nonce);
    size_t len = handshake_request(req, sizeof req, b->host_header, b->opt.path, nonce,
                                   b->opt.deflate, c->accept);
    char err[256] = "short write";
    ssize_t n = c->tls ? tlsc_write(c->tls, req, len, err, sizeof err)
                       : send(c->fd, req, len, MSG_NOSIGNAL);
    if (n < 0 && !c->tls && retryable(errno)) {
        retry(b, c, now, strerror(errno));
        return;
    }
    /* A fresh socket takes a few hundred bytes at once; anything else is not worth handling. */
    if (n != (ssize_t)len) {
        conn_fail(b, c, "could not write the upgrade request: %s",
                  n < 0 && !c->tls ? strerror(errno) : err);
        return;
    }
    c->hs = malloc(HANDSHAKE_HEAD_MAX + 1);
    if (!c->hs) {
        conn_fail(b, c, "out of memory");
        return;
    }
    c->hs_len = 0;
}

/* Advances the TLS handshake; the upgrade request follows it. */
static void tls_step(struct bench *b, struct conn *c, int64_t now)
{
    char err[256];
    int rc = tlsc_handshake(c->tls, err, sizeof err);
    if (rc == TLSC_WANT_READ || rc == TLSC_WANT_WRITE)
        return;
    if (rc != 1) {
        retry(b, c, now, err);
        return;
    }
    c->tls_hs = false;
    if (!b->tls_agreed[0])
        tlsc_describe(c->tls, b->tls_agreed, sizeof b->tls_agreed);
    upgrade(b, c, now);
}

static void connected(struct bench *b, struct conn *c, int64_t now)
{
    c->writable = true;
    set_state(b, c, CS_HANDSHAKE);
    c->deadline = now + CONNECT_TIMEOUT_NS;
    if (!b->tls) {
        upgrade(b, c, now);
        return;
    }
    c->tls = tlsc_new(b->tls, c->fd, b->opt.host);
    if (!c->tls) {
        conn_fail(b, c, "out of memory for a TLS session");
        return;
    }
    c->tls_hs = true;
    tls_step(b, c, now);
}

void conn_start(struct bench *b, struct conn *c, int64_t now)
{
    c->attempts++;
    c->t_start = now;
    int fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        conn_fail(b, c, "socket: %s", strerror(errno));
        return;
    }
    c->fd = fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (loop_add(b, fd, c) < 0) {
        conn_fail(b, c, "epoll_ctl: %s", strerror(errno));
        return;
    }
    set_state(b, c, CS_CONNECTING);
    c->deadline = now + CONNECT_TIMEOUT_NS;
    if (connect(fd, (const struct sockaddr *)&b->addr, b->addrlen) == 0)
        connected(b, c, now);
    else if (errno != EINPROGRESS && retryable(errno))
        retry(b, c, now, strerror(errno));
    else if (errno != EINPROGRESS)
        conn_fail(b, c, "connect: %s", strerror(errno));
}

static void handshake_input(struct bench *b, struct conn *c, size_t n, int64_t now)
{
    c->hs_len = (uint16_t)(c->hs_len + n);
    c->hs[c->hs_len] = '\0';
    char err[256];
    long head = handshake_response(c->hs, c->hs_len, c->accept,
                                   b->opt.deflate ? &c->ext : NULL, err, sizeof err);
    if (head == 0)
        return;
    if (head < 0) {
        conn_fail(b, c, "handshake: %s", err);
        return;
    }
    /* Frames that came with the 101 (there should be none) go through the normal parser. */
    size_t extra = c->hs_len - (size_t)head;
    memcpy(b->rbuf, c->hs + head, extra);
    free(c->hs);
    c->hs = NULL;
    c->hs_len = 0;
    set_state(b, c, CS_OPEN);
    c->deadline = INT64_MAX;
    zconn_opened(b, c);
    if (b->opt.churn && b->issuing) {
        /* --churn: a connection is one full handshake (TCP, TLS, upgrade), then Close. */
        if (b->recording) {
            hist_record(&b->hist, (uint64_t)(now - c->t_start + 500) / 1000);
            b->msgs++;
        }
        conn_close(b, c, now);
        return;
    }
    if (extra)
        conn_ws_input(b, c, b->rbuf, extra, now);
}

static void eof(struct bench *b, struct conn *c, int64_t now, const char *why)
{
    if (c->state == CS_HANDSHAKE) {
        retry(b, c, now, why ? why : "server closed the connection during the handshake");
    } else if (c->state == CS_CLOSING && !why && (b->opt.raw || c->close_received)) {
        finish_close(b, c);
    } else if (c->state == CS_CLOSING) {
        conn_fail(b, c, "%s before answering our Close",
                  why ? why : "server closed the connection");
    } else {
        conn_fail(b, c, "%s (in flight: %u, %zu bytes of the oldest echoed)",
                  why ? why : "server closed the connection", conn_inflight(c), c->msg_off);
    }
}

static void readable(struct bench *b, struct conn *c, bool hangup)
{
    c->in_input = true;
    while (conn_alive(c)) {
        bool hs = c->state == CS_HANDSHAKE;
        uint8_t *buf = hs ? (uint8_t *)c->hs + c->hs_len : b->rbuf;
        size_t cap = hs ? (size_t)HANDSHAKE_HEAD_MAX - c->hs_len : RECV_BUFFER_SIZE;
        char err[256];
        ssize_t n = c->tls ? tlsc_read(c->tls, buf, cap, err, sizeof err)
                           : recv(c->fd, buf, cap, 0);
        if (c->tls && n < 0) {
            /* Read until WANT_READ: decrypted bytes can wait in the session unannounced. */
            c->tls_rw = n == TLSC_WANT_WRITE;
            if (n == TLSC_ERROR)
                eof(b, c, now_ns(), err);
            break;
        }
        if (n > 0) {
            int64_t now = now_ns();
            if (hs)
                handshake_input(b, c, (size_t)n, now);
            else if (b->opt.raw)
                conn_raw_input(b, c, buf, (size_t)n, now);
            else
                conn_ws_input(b, c, buf, (size_t)n, now);
            /* A short read emptied the socket; the next arrival raises a new edge. */
            if (!hangup && (c->tls ? tlsc_drained(c->tls) : (size_t)n < cap))
                break;
        } else if (n == 0) {
            eof(b, c, now_ns(), NULL);
        } else if (errno == EAGAIN) {
            break;
        } else if (errno != EINTR) {
            eof(b, c, now_ns(), strerror(errno));
        }
    }
    c->in_input = false;
    if (c->state == CS_OPEN || c->state == CS_CLOSING)
        conn_flush(b, c);
}

void conn_event(struct bench *b, struct conn *c, uint32_t events)
{
    if (c->state == CS_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err && retryable(err))
            retry(b, c, now_ns(), strerror(err));
        else if (err)
            conn_fail(b, c, "connect: %s", strerror(err));
        else if (events & EV_WRITE)
            connected(b, c, now_ns());
        return;
    }
    if (!conn_alive(c))
        return; /* a stale event for a socket already dropped in this batch */
    if (c->tls_hs) {
        tls_step(b, c, now_ns());
        return;
    }
    /* TLS may need the other direction's readiness to go on. */
    if (c->tls_rw && (events & EV_WRITE))
        events |= EV_READ;
    if (c->tls_wr && (events & EV_READ)) {
        events |= EV_WRITE;
        c->tls_wr = false;
    }
    if (events & EV_WRITE) {
        c->writable = true;
        if (c->state != CS_HANDSHAKE)
            conn_flush(b, c);
    }
    if (conn_alive(c) && (events & EV_READ))
        readable(b, c, events & EV_HUP);
    churn_next(b, c);
}

void conn_sweep(struct bench *b, struct conn *c, int64_t now)
{
    if (now < c->deadline)
        return;
    switch (c->state) {
    case CS_RETRY:
        conn_start(b, c, now);
        break;
    case CS_CONNECTING:
        retry(b, c, now, "connect timed out");
        break;
    case CS_HANDSHAKE:
        retry(b, c, now, "no answer to the upgrade request within 10 s");
        break;
    case CS_CLOSING:
        if (c->close_received) {
            finish_close(b, c); /* the server answered; its FIN is late, not wrong */
            churn_next(b, c);
        }
        else
            conn_fail(b, c, "no answer to our %s within 5 s", b->opt.raw ? "FIN" : "Close");
        break;
    default:
        c->deadline = INT64_MAX;
        break;
    }
}

void conn_close(struct bench *b, struct conn *c, int64_t now)
{
    if (c->state != CS_OPEN)
        return;
    set_state(b, c, CS_CLOSING);
    c->deadline = now + CLOSE_TIMEOUT_NS;
    if (b->opt.raw) {
        shutdown(c->fd, SHUT_WR);
        return;
    }
    static const uint8_t normal[2] = { 0x03, 0xE8 }; /* 1000 */
    conn_queue_control(b, c, OP_CLOSE, normal, sizeof normal);
}
