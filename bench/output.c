/* A connection's output: messages in flight and control frames, written with one sendmsg()
 * for as many of them as the socket takes. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "clock.h"
#include "conn.h"
#include "zconn.h"

#define IOV_BATCH 64

/* Drops `n` written bytes from the front of the output: control frames first, then messages. */
static void consume(struct conn *c, size_t n, size_t ctl)
{
    size_t t = n < ctl ? n : ctl;
    c->ctl_out_off += (uint16_t)t;
    n -= t;
    if (c->ctl_out_off == c->ctl_out_len)
        c->ctl_out_off = c->ctl_out_len = 0;
    while (n > 0) {
        struct msg *m = conn_slot(c, c->sent);
        size_t left = m->prefix_len + m->body_len - c->out_off;
        if (n < left) {
            c->out_off += n;
            return;
        }
        n -= left;
        c->sent++;
        c->out_off = 0;
    }
}

/* --tls: the gathered frames, copied into one buffer, go out in one SSL_write. False once
 * the socket is full (or the connection failed). */
static bool tls_flush(struct bench *b, struct conn *c, const struct iovec *iov, int k,
                      size_t ctl)
{
    size_t len = 0;
    for (int i = 0; i < k && len < TLS_GATHER_SIZE; i++) {
        size_t take = iov[i].iov_len < TLS_GATHER_SIZE - len ? iov[i].iov_len
                                                              : TLS_GATHER_SIZE - len;
        memcpy(b->tls_wbuf + len, iov[i].iov_base, take);
        len += take;
    }
    char err[256];
    ssize_t n = tlsc_write(c->tls, b->tls_wbuf, len, err, sizeof err);
    if (n == TLSC_WANT_WRITE || n == TLSC_WANT_READ) {
        c->writable = false;
        c->tls_wr = n == TLSC_WANT_READ;
        c->tls_retry = true;
        c->tls_wctl = (uint16_t)ctl;
        return false;
    }
    if (n <= 0) {
        conn_fail(b, c, "%s (in flight: %u)", err, conn_inflight(c));
        return false;
    }
    c->tls_retry = false;
    consume(c, (size_t)n, ctl);
    return true;
}

/* Writes as much queued output as the socket takes, many messages per sendmsg(). */
void conn_flush(struct bench *b, struct conn *c)
{
    while (c->writable) {
        struct iovec iov[IOV_BATCH];
        int k = 0;
        size_t total = 0, ctl = 0;
        bool ctl_waiting = c->ctl_out_len > c->ctl_out_off;
        if (c->tls_retry) {
            /* Repeat the TLS write that could not finish with the same bytes in front: the
             * same control bytes (maybe none), then the messages. */
            ctl_waiting = c->tls_wctl > 0;
        }
        /* A control frame may only go between frames, never inside one. */
        if (ctl_waiting && c->out_off == 0) {
            ctl = c->tls_retry ? c->tls_wctl : (size_t)(c->ctl_out_len - c->ctl_out_off);
            iov[k++] = (struct iovec){ c->ctl_out + c->ctl_out_off, ctl };
            total += ctl;
            ctl_waiting = false;
        }
        size_t off = c->out_off;
        for (uint64_t i = c->sent; i != c->tail && k + 2 <= IOV_BATCH; i++, off = 0) {
            struct msg *m = conn_slot(c, i);
            if (off < m->prefix_len) {
                iov[k++] = (struct iovec){ m->prefix + off, m->prefix_len - off };
                total += m->prefix_len - off;
                off = m->prefix_len;
            }
            size_t boff = off - m->prefix_len;
            if (boff < m->body_len) {
                iov[k++] = (struct iovec){ (void *)(m->body + boff), m->body_len - boff };
                total += m->body_len - boff;
            }
            if (ctl_waiting && !c->tls_retry)
                break; /* finish this frame; the control frame goes next */
        }
        if (k == 0)
            return;
        if (c->tls) {
            if (!tls_flush(b, c, iov, k, ctl))
                return;
            continue;
        }
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)k };
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                c->writable = false;
                return;
            }
            conn_fail(b, c, "send: %s (in flight: %u)", strerror(errno), conn_inflight(c));
            return;
        }
        consume(c, (size_t)n, ctl);
        if ((size_t)n < total)
            c->writable = false; /* the socket is full: EPOLLOUT will say when it drains */
    }
}

void conn_queue_control(struct bench *b, struct conn *c, int opcode, const uint8_t *payload,
                        size_t len)
{
    /* No room means a Pong is still queued; answering only the latest Ping is allowed. */
    if (c->ctl_out_len + FRAME_HDR_MAX + len > sizeof c->ctl_out)
        return;
    uint64_t r = rng_next(&b->rng);
    uint8_t mask[4];
    memcpy(mask, &r, 4);
    c->ctl_out_len += (uint16_t)frame_client_control(c->ctl_out + c->ctl_out_len, opcode,
                                                     payload, len, mask);
    if (!c->in_input)
        conn_flush(b, c);
}

void conn_send(struct bench *b, struct conn *c, int64_t t_sched)
{
    if (c->state != CS_OPEN || conn_inflight(c) >= c->depth)
        return;
    struct msg *m = conn_slot(c, c->tail);
    payload_build(&b->pl, c->id, c->next_seq++, &b->rng, m);
    if (c->ext.on)
        zconn_build(b, c, m);
    m->t_sched = t_sched;
    c->tail++;
    b->inflight++;
    if (!c->in_input)
        conn_flush(b, c);
}
