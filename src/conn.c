#include "conn.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access_log.h"
#include "close_code.h"
#include "defaults.h"
#include "deflate.h"
#include "deflate_offer.h"
#include "forwarded.h"
#include "handshake.h"
#include "http_request.h"
#include "net.h"
#include "pages.h"
#include "tls.h"

enum conn_state {
    CONN_HANDSHAKE, /* reading the HTTP upgrade request */
    CONN_OPEN,      /* WebSocket open (the session may have sent its Close already) */
    CONN_DRAINING,  /* the peer ended its input (FIN) with our output still queued: send all of
                       it, whole frames only, then close */
    CONN_FLUSHING,  /* final bytes queued: write them, then shut down our side */
    CONN_LINGER,    /* our FIN is sent: discard input until the peer's FIN, so no RST eats our
                       last bytes */
    CONN_CLOSED,    /* socket closed; freed after the current event batch */
};

/* Who sent the first Close of a WebSocket connection. */
enum { CLOSE_BY_NONE, CLOSE_BY_CLIENT, CLOSE_BY_SERVER };

/* Laid out to stay small (memory per idle connection is a headline figure): the small fields
 * fill the padding after state and the flags share bytes. The access log's fields take 36
 * bytes at the end (232 in all, 240 with malloc's header). */
struct conn {
    struct io_watch watch;
    uint8_t state;
    bool upgraded : 1;       /* answered 101: counted as open until teardown */
    uint8_t close_by : 2;    /* who sent the first Close: CLOSE_BY_* */
    bool peer_fin : 1;       /* read the end of the peer's input (its FIN) */
    bool tls : 1;            /* a wss:// connection: a struct conn_tls (see tls_of) */
    bool tls_rw : 1;         /* its last read needs the socket writable to go on */
    bool tls_wr : 1;         /* its last write needs the socket readable to go on */
    uint8_t pings;           /* keep-alive pings sent since the peer was last heard */
    bool sending : 1;        /* output pending: the timer is in the sending list */
    bool refused : 1;        /* over --max-connections: being answered with 503 */
    bool paused_by_cap : 1;  /* not read because of the global buffer cap */
    bool wrote : 1;          /* the socket took some output since the last progress check */
    uint8_t stalls : 3;      /* send-progress checks in a row that found none (< SEND_CHECKS) */
    bool backlogged : 1;     /* in srv->backlog: input left to feed (see conn_run_backlog) */
    uint32_t acked;          /* the peer's acknowledged byte count at the last check (low bits) */
    struct timer_link timer; /* in the server list that matches the state */
    struct buf out;          /* output the socket did not take yet */
    struct buf in;           /* an incomplete request head; once open, input left to feed */
    struct session session;
    struct conn *next_closed; /* in the graveyard, or in the backlog */
    uint32_t accounted;      /* buffer capacity counted in srv->buffered */
    uint32_t per_ip;         /* handle in srv->per_ip, released at teardown; 0: not counted */
    /* For the access line, written when the connection ends: */
    struct ip_addr client;   /* the peer's address, or the client a trusted proxy names */
    uint32_t id;             /* serial within this worker; logged as "worker-id" */
    uint32_t start_ms;       /* srv->now_ms at accept, low 32 bits: durations up to 49 days */
    uint32_t msgs_in;        /* data messages received whole (the count wraps at 2^32) */
    uint32_t msgs_out;       /* data messages echoed */
    uint16_t port;           /* the peer's TCP port (the proxy's, when one forwards the client) */
    uint8_t proxy;           /* 0: a direct client; else 1 + the --trust-proxy entry of the peer */
    uint8_t reason;          /* why it ends early, as an index in srv->reasons; 0: not known yet */
};

/* glibc's malloc serves 232 bytes from a 240-byte chunk: the measured idle cost per connection
 * (test_deflate_memory.py) is that chunk. */
_Static_assert(sizeof(struct conn) <= 232, "memory per idle connection is a headline figure");

/* A TLS connection carries its session after the struct, so plain ones pay nothing for it. */
struct conn_tls {
    struct conn c;
    struct tls_conn *session;
};

static struct tls_conn *tls_of(struct conn *c)
{
    return ((struct conn_tls *)c)->session;
}

/* conn.per_ip of a connection from a trusted proxy: charged to the client its request names. */
#define PER_IP_AT_REQUEST UINT32_MAX

#define conn_of(ptr, member) ((struct conn *)(void *)((char *)(ptr) - offsetof(struct conn, member)))

/* "id=W-N address:port fd=N" of a connection, for log lines only (it costs a system call):
 * the id ties every line about one connection together, across workers too. */
#define CONN_TAG_LEN (NET_PEER_NAME_LEN + IP_ADDR_TEXT_LEN + 32)
#define PEER(c) conn_tag(srv, (c), (char[CONN_TAG_LEN]){ 0 })

static const char *conn_tag(const struct server *srv, const struct conn *c, char *out)
{
    char peer[NET_PEER_NAME_LEN], addr[IP_ADDR_TEXT_LEN] = "";
    net_peer_name(c->watch.fd, peer, sizeof peer);
    /* A peer already gone (after a clean close too) is named by the address kept at accept,
     * or the client its proxy named. */
    if (strncmp(peer, "fd=", 3) == 0 && !srv->opt.unix_path) {
        ip_addr_format(c->client, false, addr);
        strcat(addr, " ");
    }
    snprintf(out, CONN_TAG_LEN, "id=%d-%u %s%s", srv->worker, c->id, addr, peer);
    return out;
}

/* The teardown reason of a connection that ended as it should. */
static const char closed_cleanly[] = "closed cleanly";

/* Keeps the first reason a connection is ending for, as an index into srv->reasons. Reasons are
 * the program's own string constants, so the table stays small; were it ever full, the reason
 * shown would be the teardown's. */
static void note_reason(struct server *srv, struct conn *c, const char *why)
{
    if (c->reason || !why)
        return;
    for (uint8_t i = 1; i < SERVER_REASONS; i++) {
        if (!srv->reasons[i])
            srv->reasons[i] = why;
        if (srv->reasons[i] == why) {
            c->reason = i;
            return;
        }
    }
}

static bool access_on(const struct server *srv)
{
    return srv->log.access && srv->log.level >= LOG_INFO;
}

/* The fields every access line takes from the connection itself. */
static struct access_entry access_of(const struct server *srv, const struct conn *c)
{
    return (struct access_entry){
        .worker = srv->worker,
        .id = c->id,
        .client = srv->opt.unix_path ? NULL : &c->client,
        .proxy = c->proxy ? &srv->opt.trusted_proxies[c->proxy - 1] : NULL,
        .port = c->port,
        .duration_ms = (uint32_t)srv->now_ms - c->start_ms,
    };
}

/* The access line of a request answered over HTTP (a page or an error): written when the answer
 * is queued, as nginx does when it finishes a request. */
static void access_http(struct server *srv, struct conn *c, const struct http_request *req,
                        int status, size_t bytes_in, size_t bytes_out, const struct handshake *hs)
{
    struct access_entry e = access_of(srv, c);
    if (req) { /* the target up to any query (which may carry secrets) */
        const char *q = memchr(req->target.p, '?', req->target.len);
        e.path = req->target.p;
        e.path_len = q ? (size_t)(q - req->target.p) : req->target.len;
    }
    e.status = status;
    e.bytes_known = true;
    e.bytes_in = bytes_in;
    e.bytes_out = bytes_out;
    if (hs) {
        e.reason = hs->why;
        e.detail = hs->detail.p;
        e.detail_len = hs->detail.len;
    }
    struct log_line l;
    access_line(&l, &srv->log, &e);
    log_line_end(&l);
}

/* The access line of a connection that ends: a WebSocket, or one that got no answer. */
static void access_end(struct server *srv, struct conn *c, const char *why)
{
    static const char *const by[] = { "none", "client", "server" };
    struct access_entry e = access_of(srv, c);
    e.bytes_known = net_byte_counts(c->watch.fd, &e.bytes_in, &e.bytes_out);
    if (e.bytes_known) /* the FIN counts one in the kernel's count, and is no byte */
        e.bytes_in -= e.bytes_in && c->peer_fin;
    /* Like nginx, no line for a connection that sent nothing (a port probe, a load balancer's
     * TCP check); its debug line remains. */
    if (!c->upgraded && e.bytes_known && e.bytes_in == 0)
        return;
    if (c->upgraded) {
        uint16_t code = c->session.close_code;
        e.path = srv->opt.path;
        e.path_len = strlen(srv->opt.path);
        e.status = 101;
        e.close = code ? code : 1006; /* 1006: no Close was sent */
        e.close_by = by[code ? c->close_by : CLOSE_BY_NONE];
    }
    e.msgs_in = c->msgs_in;
    e.msgs_out = c->msgs_out;
    e.reason = c->reason ? srv->reasons[c->reason] : why != closed_cleanly ? why : NULL;
    struct log_line l;
    access_line(&l, &srv->log, &e);
    log_line_end(&l);
}

/* The single teardown path: every way a connection ends comes here. */
static void teardown(struct server *srv, struct conn *c, const char *why)
{
    if (c->state == CONN_CLOSED)
        return;
    log_debug(&srv->log, "%s closed: %s", PEER(c), why);
    if ((c->upgraded || c->state == CONN_HANDSHAKE) && access_on(srv))
        access_end(srv, c, why); /* an HTTP answer had its line when it was queued */
    loop_set(srv->loop, &c->watch, 0);
    /* Input we never read would turn our close into a reset, destroying the output still on
     * its way (a Close frame, the end of an echo): drop it first. */
    net_discard_input(c->watch.fd, srv->rbuf, READ_BUFFER_SIZE);
    if (c->tls) {
        uint64_t in, out; /* a port probe that sent nothing is no failed handshake */
        if (!tls_handshake_done(tls_of(c)) &&
            (!net_byte_counts(c->watch.fd, &in, &out) || in > c->peer_fin))
            srv->metrics->tls_failures++;
        tls_conn_free(tls_of(c));
    }
    close(c->watch.fd);
    timer_unlink(&c->timer);
    session_free(&c->session);
    buf_free(&c->in);
    buf_free(&c->out);
    c->state = CONN_CLOSED;
    if (!c->backlogged) { /* else the backlog run moves it to the graveyard */
        c->next_closed = srv->graveyard;
        srv->graveyard = c;
    }
    srv->conn_count--;
    if (srv->stopping)
        server_stop_moved(srv);
    if (c->refused)
        srv->refusing--;
    srv->buffered -= c->accounted;
    if (c->paused_by_cap)
        srv->paused_by_cap--;
    if (srv->paused_by_cap)
        srv->resume_scan = true;
    if (c->upgraded) {
        srv->metrics->open--;
        metrics_count_close(srv->metrics, c->session.close_code);
    }
    if (c->per_ip && c->per_ip != PER_IP_AT_REQUEST)
        ip_limit_release(&srv->per_ip, c->per_ip, srv->now_ms);
}

void conn_free_closed(struct server *srv)
{
    while (srv->graveyard) {
        struct conn *c = srv->graveyard;
        srv->graveyard = c->next_closed;
        free(c);
    }
}

/* The TLS transport, shaped like the socket calls: bytes, or -1 with errno EAGAIN (retry on
 * readiness; tls_wr/tls_rw say which) or another errno, with *why a reason when TLS gave one. */
static ssize_t tls_send(struct conn *c, const void *p, size_t len, const char **why)
{
    ssize_t n = tls_write(tls_of(c), p, len, why);
    c->tls_wr = n == TLS_WANT_READ;
    if (n > 0)
        return n;
    if (n != TLS_ERROR)
        errno = EAGAIN;
    else if (*why)
        errno = EPROTO;
    return -1;
}

/* An event's output spans over TLS: small spans (a frame header beside its payload) are
 * gathered into whole records, large ones go as they are. Returns the bytes taken, or -1. */
static ssize_t tls_sendv(struct server *srv, struct conn *c, const struct iovec *iov, int cnt,
                         const char **why)
{
    size_t total = 0, off = 0;
    int i = 0;
    while (i < cnt) {
        const uint8_t *p = (const uint8_t *)iov[i].iov_base + off;
        size_t len = iov[i].iov_len - off;
        if (len < TLS_RECORD_SIZE && i < cnt - 1) {
            len = 0;
            for (int j = i; j < cnt && len < TLS_RECORD_SIZE; j++) {
                size_t from = j == i ? off : 0, take = iov[j].iov_len - from;
                if (take > TLS_RECORD_SIZE - len)
                    take = TLS_RECORD_SIZE - len;
                memcpy(srv->tls_wbuf + len, (const uint8_t *)iov[j].iov_base + from, take);
                len += take;
            }
            p = srv->tls_wbuf;
        }
        ssize_t n = len ? tls_send(c, p, len, why) : 0;
        if (n < 0) /* the rest waits in c->out, same bytes; an error ends it (no more I/O) */
            return total && errno == EAGAIN ? (ssize_t)total : -1;
        total += (size_t)n;
        size_t adv = (size_t)n;
        while (i < cnt && adv >= iov[i].iov_len - off) {
            adv -= iov[i].iov_len - off;
            i++;
            off = 0;
        }
        off += adv;
    }
    return (ssize_t)total;
}

/* Writes queued output. Returns false if the connection was torn down. */
static bool flush(struct server *srv, struct conn *c)
{
    while (buf_len(&c->out)) {
        const char *why = NULL;
        ssize_t n = c->tls ? tls_send(c, buf_head(&c->out), buf_len(&c->out), &why)
                           : net_send(c->watch.fd, buf_head(&c->out), buf_len(&c->out));
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return true;
            teardown(srv, c, why ? why : strerror(errno));
            return false;
        }
        buf_consume(&c->out, (size_t)n);
        c->wrote = true;
    }
    buf_free(&c->out); /* drained: an idle connection keeps no output memory */
    return true;
}

/* Sends what one event produced (the shared scratch output, which may point into the receive
 * buffer); what the socket does not take is copied to the connection. Returns false if the
 * connection was torn down. */
static bool send_scratch(struct server *srv, struct conn *c)
{
    struct outq *q = &srv->scratch;
    size_t total = outq_len(q), sent = 0;
    if (!total)
        return true;
    if (!buf_len(&c->out)) { /* else keep order behind output that is already waiting */
        struct iovec iov[OUTQ_MAX_IOV];
        int cnt = outq_iov(q, iov);
        /* send() for one span (the usual echo): the kernel's sendmsg path costs more. */
        const char *why = NULL;
        ssize_t n = c->tls      ? tls_sendv(srv, c, iov, cnt, &why)
                    : cnt == 1 ? net_send(c->watch.fd, iov[0].iov_base, iov[0].iov_len)
                               : net_sendv(c->watch.fd, iov, cnt);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            outq_clear(q);
            teardown(srv, c, why ? why : strerror(errno));
            return false;
        }
        sent = n > 0 ? (size_t)n : 0;
    }
    if (sent == total) {
        outq_clear(q);
        return true;
    }
    if (!outq_move(q, sent, &c->out)) {
        teardown(srv, c, "out of memory");
        return false;
    }
    return true;
}

/* Keeps srv->buffered equal to the buffer capacity all connections hold. */
static void account(struct server *srv, struct conn *c)
{
    uint32_t now = c->out.cap + c->in.cap + (uint32_t)session_memory(&c->session);
    srv->buffered += now;
    srv->buffered -= c->accounted;
    if (now < c->accounted && srv->paused_by_cap)
        srv->resume_scan = true;
    c->accounted = now;
}

/* Over the global cap, connections whose output waits are not read until the total drops: only
 * their reading can make the server hold more. Anyone else is read on: a partial frame is held
 * only while the cap allows (see hold_budget), else streamed, so a client parking bytes cannot
 * stop the server from reading its neighbours. */
static uint64_t buffered_total(const struct server *srv)
{
    return srv->buffered + zpool_in_use_bytes(srv->limits.zpool);
}

/* The zlib streams of compressed messages in flight count in the cap too; while the pool is
 * at its share of the cap, no connection starts a compressed message (it may finish one). */
static bool paused_by_cap(struct server *srv, struct conn *c)
{
    bool pause = (buf_len(&c->out) > 0 &&
                  buffered_total(srv) > (c->paused_by_cap ? srv->opt.max_buffered / 4 * 3
                                                          : srv->opt.max_buffered)) ||
                 (c->session.pmd && !session_holds_streams(&c->session) &&
                  zpool_full(srv->limits.zpool));
    if (pause != c->paused_by_cap) {
        c->paused_by_cap = pause;
        if (pause) {
            srv->paused_by_cap++;
            log_warn(&srv->log, "%s not read: %llu bytes buffered, over --max-buffered", PEER(c),
                     (unsigned long long)buffered_total(srv));
        } else {
            srv->paused_by_cap--;
        }
    }
    return pause;
}

static void queue_backlog(struct server *srv, struct conn *c);

/* Brings the timer list, the registered events and the closing steps in line with the state.
 * Every handler ends here, so the rules live in one place. */
static void settle(struct server *srv, struct conn *c)
{
    if (c->state == CONN_DRAINING && !buf_len(&c->out))
        return teardown(srv, c, "peer ended its input; all output sent");
    if (c->state == CONN_FLUSHING && !buf_len(&c->out)) {
        if (c->tls)
            tls_close_notify(tls_of(c));
        shutdown(c->watch.fd, SHUT_WR);
        c->state = CONN_LINGER;
        if (srv->stopping)
            server_stop_moved(srv); /* a close exchanged */
        timer_arm(&srv->closing, &c->timer, srv->now_ms);
    }
    if (c->state == CONN_OPEN && c->session.state == SESSION_OPEN) {
        bool pending = buf_len(&c->out) > 0;
        if (pending != c->sending) {
            c->sending = pending;
            c->stalls = 0;
            timer_arm(pending ? &srv->sending : &srv->open, &c->timer, srv->now_ms);
        }
    }
    account(srv, c);
    uint8_t mask = 0;
    switch (c->state) {
    case CONN_HANDSHAKE:
    case CONN_LINGER:
        mask = IO_READ;
        break;
    case CONN_OPEN:
        /* Backpressure: a client that does not read stops being read. Input left to feed
         * goes first. */
        if (buf_len(&c->out) < srv->opt.output_high_water && !paused_by_cap(srv, c) &&
            !c->backlogged)
            mask = IO_READ;
        break;
    default:
        break;
    }
    if (buf_len(&c->out))
        mask |= IO_WRITE;
    if (c->tls) {
        /* TLS may need the other direction to go on (a key update, a handshake message). */
        mask |= (c->tls_rw ? IO_WRITE : 0) | (c->tls_wr ? IO_READ : 0);
        /* Input decrypted ahead, that no readiness event will announce, once reading
         * resumes: the backlog run reads it. */
        if ((mask & IO_READ) && !(c->watch.mask & IO_READ) && c->state != CONN_CLOSED &&
            tls_pending(tls_of(c)))
            queue_backlog(srv, c);
    }
    if (mask)
        mask |= IO_EDGE;
    if (loop_set(srv->loop, &c->watch, mask) < 0)
        teardown(srv, c, "epoll_ctl failed");
}

void conn_resume(struct server *srv, struct timer_link *t)
{
    struct conn *c = conn_of(t, timer);
    if (c->paused_by_cap)
        settle(srv, c);
}

/* Failing or finishing: write what is queued, then close our side. */
static void finish(struct server *srv, struct conn *c)
{
    c->state = CONN_FLUSHING;
    timer_arm(&srv->closing, &c->timer, srv->now_ms);
}

static void queue_backlog(struct server *srv, struct conn *c)
{
    if (c->backlogged)
        return;
    c->backlogged = true;
    c->next_closed = srv->backlog;
    srv->backlog = c;
}

/* Runs received WebSocket bytes through the session and sends what it produced. Input the
 * session left (a compressed message used its inflate budget for this turn) is kept, and fed
 * after the other connections had their turn. data must not be c->in's. */
static void feed(struct server *srv, struct conn *c, uint8_t *data, size_t n)
{
    const char *error;
    enum session_state before = c->session.state;
    uint64_t total = buffered_total(srv);
    srv->limits.hold_budget = total < srv->opt.max_buffered ? srv->opt.max_buffered - total : 0;
    /* This connection's messages: what the session adds to the shared counts (one loop, so
     * nothing else adds in between). */
    struct session_counts *k = srv->limits.counts;
    uint64_t in0 = k ? k->messages_in : 0, out0 = k ? k->messages_out : 0;
    size_t used = session_feed(&c->session, &srv->limits, data, n, &srv->scratch, &error);
    if (k) {
        c->msgs_in += (uint32_t)(k->messages_in - in0);
        c->msgs_out += (uint32_t)(k->messages_out - out0);
    }
    if (before == SESSION_OPEN && c->session.state != SESSION_OPEN && !c->close_by)
        c->close_by = error ? CLOSE_BY_SERVER : CLOSE_BY_CLIENT;
    note_reason(srv, c, error);
    if (error)
        log_info(&srv->log, "%s failing the connection with %u: %s", PEER(c),
                 c->session.close_code, error);
    if (srv->paused_by_cap && !zpool_full(srv->limits.zpool))
        srv->resume_scan = true; /* streams may have come back */
    if (!send_scratch(srv, c))
        return;
    if (c->session.state != SESSION_DONE &&
        (used < n || session_has_backlog(&c->session))) {
        if (!buf_append(&c->in, data + used, n - used))
            return teardown(srv, c, "out of memory");
        queue_backlog(srv, c);
    }
    if (c->session.state == SESSION_DONE) {
        if (before == SESSION_OPEN && !error)
            log_debug(&srv->log, "%s close handshake answered with %u", PEER(c),
                      c->session.close_code);
        finish(srv, c);
    }
}

/* Queues the HTTP response for a handshake decision (it always fits in 512 bytes). */
static bool queue_response(struct server *srv, const struct handshake *hs)
{
    uint8_t *resp = buf_reserve(&srv->scratch.bytes, 512);
    if (resp)
        buf_commit(&srv->scratch.bytes, handshake_response(hs, (char *)resp, 512));
    return resp != NULL;
}

/* Queues an HTTP error response; the connection closes once it is written. req is the
 * request (NULL when none was read), read the bytes read for it. */
static void reject(struct server *srv, struct conn *c, struct handshake *hs,
                   const struct http_request *req, size_t read)
{
    bool detail = hs->detail.p != NULL;
    int len = hs->detail.len > 200 ? 200 : (int)hs->detail.len; /* bounded log lines */
    log_debug(&srv->log, "%s rejected with %d: %s%s%.*s%s", PEER(c), hs->status, hs->why,
              detail ? " '" : "", len, detail ? hs->detail.p : "", detail ? "'" : "");
    metrics_count_rejection(srv->metrics, hs->status);
    size_t before = outq_len(&srv->scratch);
    queue_response(srv, hs);
    if (access_on(srv))
        access_http(srv, c, req, hs->status, read, outq_len(&srv->scratch) - before, hs);
    buf_free(&c->in);
    finish(srv, c);
}

/* Counts a client refused by the per-address limits, and logs it - but a flood must not flood
 * the log: one line per interval at most, with the number refused since the previous one. */
static void note_per_ip_refusal(struct server *srv, struct ip_addr key, enum ip_verdict v)
{
    bool rate = v == IP_OVER_RATE;
    srv->metrics->ip_limited[rate ? METRICS_IP_RATE : METRICS_IP_CONNECTIONS]++;
    srv->per_ip_unlogged++;
    if (srv->per_ip_logged_ms && srv->now_ms - srv->per_ip_logged_ms < IP_LIMIT_LOG_INTERVAL_MS)
        return;
    char text[IP_ADDR_TEXT_LEN];
    ip_addr_format(key, true, text);
    log_warn(&srv->log, "%s: over --%s %u, refusing with 429 (%llu refused over per-address "
             "limits since the last such line, at most one per %d s)", text,
             rate ? "handshake-rate-per-ip" : "max-connections-per-ip",
             rate ? srv->opt.handshake_rate_per_ip : srv->opt.max_connections_per_ip,
             (unsigned long long)srv->per_ip_unlogged, IP_LIMIT_LOG_INTERVAL_MS / 1000);
    srv->per_ip_logged_ms = srv->now_ms;
    srv->per_ip_unlogged = 0;
}

/* The 429 for a verdict of the per-address limits. */
static void per_ip_response(struct handshake *hs, enum ip_verdict v, uint32_t retry_after)
{
    if (v == IP_OVER_RATE) {
        handshake_error(hs, 429, "too many handshakes from your address");
        hs->retry_after = retry_after;
    } else {
        handshake_error(hs, 429, "too many connections from your address");
    }
}

/* A connection from a trusted proxy is charged to the client its request names (or to the
 * proxy, when the request names none). Returns false if that client is over its limits: the
 * 429 is then queued. */
static bool charge_forwarded_client(struct server *srv, struct conn *c,
                                    const struct http_request *req, size_t read)
{
    const struct options *o = &srv->opt;
    struct ip_addr client;
    c->per_ip = 0;
    if (!forwarded_client(req, o->proxy_header, o->trusted_proxies, o->trusted_proxy_count,
                          &client) &&
        !net_peer_addr(c->watch.fd, &client))
        return true;
    if (ip_cidr_list_contains(o->per_ip_exempt, o->per_ip_exempt_count, client))
        return true;
    struct ip_addr key = ip_addr_limit_key(client);
    uint32_t retry;
    enum ip_verdict v = ip_limit_admit(&srv->per_ip, key, srv->now_ms, &c->per_ip, &retry);
    if (v != IP_OVER_CONNECTIONS && v != IP_OVER_RATE)
        return true;
    note_per_ip_refusal(srv, key, v);
    struct handshake hs;
    per_ip_response(&hs, v, retry);
    reject(srv, c, &hs, req, read);
    return false;
}

/* Answers a request for an operator page (console, /healthz, /metrics); then it closes. */
static void serve_page(struct server *srv, struct conn *c, const struct http_request *req,
                       enum page page, size_t read)
{
    size_t before = outq_len(&srv->scratch);
    int status = page_respond(page, req, srv->opt.path, srv->shared, &srv->scratch.bytes);
    if (status < 0)
        return teardown(srv, c, "out of memory");
    if (access_on(srv))
        access_http(srv, c, req, status, read, outq_len(&srv->scratch) - before, NULL);
    if (status != 200)
        metrics_count_rejection(srv->metrics, status);
    log_debug(&srv->log, "%s %.*s %.*s: %d", PEER(c), (int)req->method.len, req->method.p,
              (int)req->target.len, req->target.p, status);
    buf_free(&c->in);
    finish(srv, c);
    send_scratch(srv, c);
}

static void on_handshake_bytes(struct server *srv, struct conn *c, size_t n)
{
    char *data = (char *)srv->rbuf;
    size_t len = n;
    if (buf_len(&c->in)) {
        if (!buf_append(&c->in, srv->rbuf, n))
            return teardown(srv, c, "out of memory");
        data = (char *)c->in.data + c->in.start;
        len = buf_len(&c->in);
    }
    struct http_request req;
    struct handshake hs;
    enum page page;
    int rc = http_parse_request(data, len, &req);
    if (rc == HTTP_INCOMPLETE && len < srv->opt.max_header_bytes) {
        if (data == (char *)srv->rbuf && !buf_append(&c->in, srv->rbuf, n))
            teardown(srv, c, "out of memory");
        return;
    }
    bool parsed = rc >= 0 && (size_t)rc <= srv->opt.max_header_bytes;
    if (parsed && c->proxy)
        forwarded_client(&req, srv->opt.proxy_header, srv->opt.trusted_proxies,
                         srv->opt.trusted_proxy_count, &c->client); /* for the access line */
    if (rc == HTTP_BAD)
        handshake_error(&hs, 400, "malformed HTTP request");
    else if (!parsed)
        handshake_error(&hs, 431, "request header fields too large");
    else if (c->per_ip == PER_IP_AT_REQUEST && !charge_forwarded_client(srv, c, &req, len))
        return (void)send_scratch(srv, c); /* the 429 is queued */
    else if ((page = page_route(&req, srv->opt.path, srv->opt.console)) != PAGE_NONE)
        return serve_page(srv, c, &req, page, len);
    else {
        handshake_evaluate(&req, srv->opt.path, &hs);
        handshake_check_origin(&req, srv->opt.allow_origin, srv->opt.allow_origin_count, &hs);
    }

    if (hs.status != 101) {
        reject(srv, c, &hs, parsed ? &req : NULL, len);
        send_scratch(srv, c);
        return;
    }
    struct deflate_params pmd;
    if (deflate_negotiate_request(&req, srv->opt.deflate, &pmd, hs.extensions)) {
        session_use_deflate(&c->session, pmd.server_no_takeover, pmd.client_no_takeover,
                            pmd.server_bits, pmd.client_bits);
        srv->metrics->deflate_negotiated++;
    }
    if (!queue_response(srv, &hs))
        return teardown(srv, c, "out of memory");
    log_debug(&srv->log, "%s upgraded%s%s", PEER(c), hs.extensions[0] ? " with " : "",
              hs.extensions);
    c->upgraded = true;
    srv->metrics->open++;
    srv->metrics->upgrades++;
    c->state = CONN_OPEN;
    timer_arm(&srv->open, &c->timer, srv->now_ms);
    /* Frames pipelined behind the request are not lost: the session takes them from wherever
     * they are (the shared buffer or this connection's request buffer, which it may refill). */
    struct buf head = c->in;
    c->in = (struct buf){ 0 };
    feed(srv, c, (uint8_t *)data + rc, len - (size_t)rc);
    buf_free(&head);
    /* Accepted before a SIGTERM: it gets its answer rather than a dropped connection, and
     * then the same Close 1001 as every open client. */
    if (srv->stopping && c->state == CONN_OPEN && c->session.state == SESSION_OPEN)
        conn_begin_shutdown(srv, &c->timer);
}

static bool on_readable(struct server *srv, struct conn *c, bool hangup);

/* The TLS handshake of c completed. */
static void tls_established(struct server *srv, struct conn *c)
{
    srv->metrics->tls_handshakes++;
    if (tls_ktls_send(tls_of(c)))
        srv->metrics->tls_ktls++;
    if (srv->log.level >= LOG_DEBUG) {
        char what[96];
        log_debug(&srv->log, "%s TLS established: %s, kTLS %s", PEER(c),
                  tls_describe(tls_of(c), what, sizeof what),
                  tls_ktls_send(tls_of(c)) ? "on" : "off");
    }
}

void conn_run_backlog(struct server *srv)
{
    struct conn *list = srv->backlog;
    srv->backlog = NULL;
    while (list) {
        struct conn *c = list;
        list = c->next_closed;
        c->backlogged = false;
        if (c->state == CONN_CLOSED) {
            c->next_closed = srv->graveyard;
            srv->graveyard = c;
            continue;
        }
        struct buf left = c->in;
        c->in = (struct buf){ 0 };
        if (c->state == CONN_OPEN && (buf_len(&left) || session_has_backlog(&c->session)))
            feed(srv, c, left.data ? left.data + left.start : srv->rbuf, buf_len(&left));
        buf_free(&left);
        if (c->state != CONN_CLOSED)
            settle(srv, c);
        /* TLS: input the session holds, or a handshake the last turn had no budget for. */
        if (c->tls && c->state != CONN_CLOSED && (c->watch.mask & IO_READ)) {
            on_readable(srv, c, false);
            if (c->state != CONN_CLOSED)
                settle(srv, c);
        }
    }
}

/* The TLS side of the read path: records decrypted into the shared buffer until the socket has
 * no more (WANT_READ) or the buffer is full. *more: input may be left inside the session (or a
 * handshake waits for the next turn's budget), that no readiness event will announce. */
static ssize_t tls_receive(struct server *srv, struct conn *c, bool hangup, bool *more,
                           const char **why)
{
    struct tls_conn *t = tls_of(c);
    size_t got = 0;
    bool was_done = tls_handshake_done(t);
    c->tls_rw = false;
    while (got < READ_BUFFER_SIZE) {
        if (!tls_handshake_done(t)) {
            if (srv->tls_turn <= 0) {
                *more = true;
                break;
            }
            srv->tls_turn--;
        }
        ssize_t n = tls_read(t, srv->rbuf + got, READ_BUFFER_SIZE - got, why);
        if (n > 0) {
            got += (size_t)n;
            /* The socket and the session are empty: the read that would say WANT_READ is a
             * wasted syscall. (Records the session holds are read on now, not a turn later.) */
            if (!hangup && tls_handshake_done(t) && tls_input_drained(t) && !tls_pending(t))
                break;
            continue;
        }
        if (n == TLS_WANT_WRITE) { /* a handshake flight or a TLS message the socket refused */
            c->tls_rw = true;
            log_debug(&srv->log, "%s TLS read waits for the socket to be writable", PEER(c));
        }
        if (n == TLS_WANT_READ || n == TLS_WANT_WRITE)
            break;
        if (got && n == 0) { /* the end behind data: the data first, the end next turn */
            *more = true;
            break;
        }
        if (n == 0)
            return 0;
        /* An error ends it now, behind data too: OpenSSL allows no more I/O on the session,
         * so nothing could answer that data, and a later call would misreport the error. */
        if (*why)
            errno = EPROTO;
        return -1;
    }
    if (!was_done && tls_handshake_done(t))
        tls_established(srv, c);
    if (got == READ_BUFFER_SIZE || tls_pending(t))
        *more = true;
    if (!got)
        errno = EAGAIN;
    return got ? (ssize_t)got : -1;
}

/* One read per readiness event. Returns true when input may be left: the read filled the buffer,
 * or the peer's end of input (hangup) is still to be read behind the data. */
static bool on_readable(struct server *srv, struct conn *c, bool hangup)
{
    bool more = false;
    const char *why = NULL;
    ssize_t n = c->tls ? tls_receive(srv, c, hangup, &more, &why)
                       : net_recv(c->watch.fd, srv->rbuf, READ_BUFFER_SIZE);
    if (more) { /* TLS: read on in the backlog run, after the others had their turn */
        queue_backlog(srv, c);
        hangup = false;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            if (c->tls)
                log_debug(&srv->log, "%s %s", PEER(c), why ? why : strerror(errno));
            teardown(srv, c, why ? why : strerror(errno));
        }
        return false;
    }
    if (n == 0)
        c->peer_fin = true;
    if (n == 0 && c->state == CONN_OPEN && buf_len(&c->out)) {
        /* A half-close: the peer may still be reading what we owe it. */
        c->state = CONN_DRAINING;
        c->stalls = 0;
        timer_arm(&srv->sending, &c->timer, srv->now_ms);
        return false;
    }
    if (n == 0) {
        teardown(srv, c, c->state == CONN_LINGER ? closed_cleanly
                         : c->state == CONN_OPEN ? "peer closed TCP without a Close frame"
                                                 : "peer closed TCP during the handshake");
        return false;
    }
    switch (c->state) {
    case CONN_HANDSHAKE:
        on_handshake_bytes(srv, c, (size_t)n);
        break;
    case CONN_OPEN:
        c->pings = 0;
        if (c->session.state == SESSION_OPEN && !c->sending)
            timer_arm(&srv->open, &c->timer, srv->now_ms); /* the peer is alive: idle anew */
        feed(srv, c, srv->rbuf, (size_t)n);
        break;
    default:
        break; /* lingering: input is discarded */
    }
    return !c->tls && ((size_t)n == READ_BUFFER_SIZE || hangup);
}

void conn_on_event(struct server *srv, struct io_watch *w, unsigned events)
{
    struct conn *c = conn_of(w, watch);
    /* An earlier event of this batch may have closed it, or stopped reading it. TLS may
     * need one direction for the other. */
    bool writable = (events & IO_WRITE) || (c->tls_wr && (events & IO_READ));
    bool readable = (events & IO_READ) || (c->tls_rw && (events & IO_WRITE));
    if (writable && c->state != CONN_CLOSED && buf_len(&c->out))
        flush(srv, c);
    bool unread = false;
    if (readable && c->state != CONN_CLOSED && (c->watch.mask & IO_READ))
        unread = on_readable(srv, c, events & IO_HANGUP);
    if (c->state == CONN_CLOSED)
        return;
    settle(srv, c);
    /* Edge-triggered: input left behind (a full buffer, or the end of input after the data
     * read) is not reported again by itself. Asking now, not reading on, keeps one read per
     * connection per round, so a fast sender cannot starve the others. A watch that stopped
     * reading is polled anew when reading resumes. */
    if (unread && c->state != CONN_CLOSED && (c->watch.mask & IO_READ) &&
        loop_rearm(srv->loop, &c->watch) < 0)
        teardown(srv, c, "epoll_ctl failed");
}

void conn_accept(struct server *srv, int fd, const struct ip_addr *peer, bool tls)
{
    bool refuse = srv->conn_count - srv->refusing >= srv->max_conns;
    /* Per address: a trusted proxy is not a client, the request it forwards names one. */
    uint32_t per_ip = 0, retry = 0;
    enum ip_verdict verdict = IP_ALLOWED;
    struct ip_addr key = { 0, 0 };
    const struct options *o = &srv->opt;
    if (!refuse && peer && srv->per_ip_on) {
        if (ip_cidr_list_contains(o->trusted_proxies, o->trusted_proxy_count, *peer)) {
            per_ip = PER_IP_AT_REQUEST;
        } else if (!ip_cidr_list_contains(o->per_ip_exempt, o->per_ip_exempt_count, *peer)) {
            key = ip_addr_limit_key(*peer);
            verdict = ip_limit_admit(&srv->per_ip, key, srv->now_ms, &per_ip, &retry);
        }
    }
    bool over_ip = verdict == IP_OVER_CONNECTIONS || verdict == IP_OVER_RATE;
    if (over_ip)
        note_per_ip_refusal(srv, key, verdict);
    /* Refusals are answered too, but only so many at once: past that, close at once. */
    if ((refuse || over_ip) && srv->refusing >= 64 + srv->max_conns / 16) {
        close(fd);
        return;
    }
    struct conn *c = calloc(1, tls ? sizeof(struct conn_tls) : sizeof *c);
    if (c && tls) {
        c->tls = true;
        ((struct conn_tls *)c)->session = tls_conn_new(srv->tls, fd);
        if (!tls_of(c)) {
            free(c);
            c = NULL;
        }
    }
    if (!c) {
        log_error(&srv->log, "out of memory accepting a connection");
        if (per_ip != PER_IP_AT_REQUEST)
            ip_limit_release(&srv->per_ip, per_ip, srv->now_ms);
        close(fd);
        return;
    }
    c->watch.fd = fd;
    c->per_ip = per_ip;
    c->state = CONN_HANDSHAKE;
    c->id = ++srv->next_conn_id;
    c->start_ms = (uint32_t)srv->now_ms;
    if (peer) {
        c->client = *peer;
        for (size_t i = 0; i < o->trusted_proxy_count && !c->proxy; i++)
            if (ip_cidr_contains(&o->trusted_proxies[i], *peer))
                c->proxy = (uint8_t)(i + 1);
    }
    if (access_on(srv))
        c->port = net_peer_port(fd);
    srv->conn_count++;
    timer_arm(&srv->handshaking, &c->timer, srv->now_ms);
    log_debug(&srv->log, "%s accepted", PEER(c));
    if (refuse || over_ip) {
        c->refused = true;
        srv->refusing++;
        struct handshake hs;
        if (refuse)
            handshake_error(&hs, 503, "too many connections");
        else
            per_ip_response(&hs, verdict, retry);
        reject(srv, c, &hs, NULL, 0);
        if (!send_scratch(srv, c))
            return;
    }
    settle(srv, c);
}

/* We start the close handshake, with 1001, for the reason given (if not noted already). */
static void server_closes(struct server *srv, struct conn *c, const char *why)
{
    if (c->session.state == SESSION_OPEN) {
        c->close_by = CLOSE_BY_SERVER;
        note_reason(srv, c, why);
    }
    session_close(&c->session, WS_CLOSE_GOING_AWAY, &srv->scratch.bytes);
}

/* The open-list deadline passed: the peer has been silent for (pings + 1) periods. */
static void on_silence(struct server *srv, struct conn *c)
{
    if (c->pings < UINT8_MAX)
        c->pings++;
    int64_t silence = (int64_t)c->pings * srv->open.duration_ms;
    int64_t idle = srv->opt.idle_timeout_ms;
    if (srv->opt.ping_interval_ms && !(idle && silence >= idle)) {
        session_ping(&c->session, &srv->scratch.bytes);
        timer_arm(&srv->open, &c->timer, srv->now_ms);
    } else {
        log_info(&srv->log, "%s silent for %lld ms: closing with 1001", PEER(c),
                 (long long)silence);
        server_closes(srv, c, "idle timeout");
        timer_arm(&srv->closing, &c->timer, srv->now_ms);
    }
    if (send_scratch(srv, c))
        settle(srv, c);
}

/* Whether the peer took any of our output since the last check: the kernel's count of bytes it
 * acknowledged moved, or the socket took more from us. Writability alone would not tell: with
 * a deep send queue it comes long after a slow reader started taking bytes again. */
static bool took_output(struct conn *c)
{
    int64_t acked = net_bytes_acked(c->watch.fd);
    bool moved = c->wrote || (acked >= 0 && (uint32_t)acked != c->acked);
    c->wrote = false;
    if (acked >= 0)
        c->acked = (uint32_t)acked;
    return moved;
}

/* The peer took none of its output for the whole send timeout. A Close goes behind what is
 * queued if it can still reach the wire: the socket takes all our output now and the peer's
 * window lets the kernel send it. Else nothing we send can reach the peer (a FIN would wait
 * behind unread bytes for ever), and a reset both tells it and frees the kernel memory its
 * unread output holds. */
static void close_stalled(struct server *srv, struct conn *c)
{
    log_info(&srv->log, "%s took none of %zu pending bytes for %lld ms: closing", PEER(c),
             buf_len(&c->out), (long long)srv->opt.send_timeout_ms);
    note_reason(srv, c, "send timeout");
    if (c->state == CONN_OPEN)
        server_closes(srv, c, NULL);
    if (!send_scratch(srv, c) || !flush(srv, c))
        return;
    if (buf_len(&c->out) || net_unsent_bytes(c->watch.fd) > 0) {
        net_reset_on_close(c->watch.fd);
        return teardown(srv, c, "send timeout: reset");
    }
    if (c->state == CONN_OPEN)
        finish(srv, c);
    settle(srv, c);
}

/* A send-progress check, SEND_CHECKS of them per send timeout: a peer that took nothing for a
 * whole timeout is closed (between 1 and 1 + 1/SEND_CHECKS timeouts after it last took
 * anything), one that took anything is checked again. */
static void on_send_check(struct server *srv, struct conn *c)
{
    if (took_output(c))
        c->stalls = 0;
    else if (++c->stalls >= SEND_CHECKS)
        return close_stalled(srv, c);
    timer_arm(&srv->sending, &c->timer, srv->now_ms);
}

void conn_on_timeout(struct server *srv, struct timer_link *t)
{
    struct conn *c = conn_of(t, timer);
    switch (c->state) {
    case CONN_HANDSHAKE:
        log_info(&srv->log, "%s handshake not completed within %lld ms", PEER(c),
                 (long long)srv->opt.handshake_timeout_ms);
        teardown(srv, c, "handshake timeout");
        break;
    case CONN_OPEN:
        if (c->session.state == SESSION_OPEN && !c->sending) {
            on_silence(srv, c);
        } else if (c->session.state == SESSION_OPEN) {
            on_send_check(srv, c);
        } else {
            /* Thousands may expire at once (a network gone): one line, then a count. */
            if (log_rate_hit(&srv->close_timeouts, srv->now_ms, 1))
                log_info(&srv->log, "%s no Close from the peer within %lld ms", PEER(c),
                         (long long)srv->opt.close_timeout_ms);
            teardown(srv, c, "close timeout");
        }
        break;
    case CONN_DRAINING:
        on_send_check(srv, c);
        break;
    default:
        teardown(srv, c, "close timeout");
        break;
    }
}

void conn_begin_shutdown(struct server *srv, struct timer_link *t)
{
    struct conn *c = conn_of(t, timer);
    if (c->state == CONN_HANDSHAKE)
        return; /* answered, then closed with 1001, once its request is complete */
    timer_arm(&srv->closing, &c->timer, srv->now_ms);
    if (c->state != CONN_OPEN || c->session.state != SESSION_OPEN)
        return;
    server_closes(srv, c, "server shutting down");
    if (send_scratch(srv, c))
        settle(srv, c);
}

void conn_abort(struct server *srv, struct timer_link *t)
{
    teardown(srv, conn_of(t, timer), "shutting down now");
}
