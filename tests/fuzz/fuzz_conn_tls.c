/* libFuzzer target: a wss:// connection through conn.c's TLS transport, with a fake of the
 * tls.h API in place of src/tls.c and a fake of epoll in place of loop.c.
 *
 * The fake session sits on a model of the socket: a kernel receive queue of the peer's records
 * (handshake messages, application data, close_notify, garbage, then a FIN or a reset) and a
 * send buffer with so many bytes of space. Like OpenSSL it takes one record at a time off the
 * socket, hands decrypted data out in reads of any size while no readiness event announces the
 * rest, runs a handshake of several messages whose answers wait for socket space (a read that
 * wants write), commits a record's bytes when it cannot send them all (partial writes, the
 * retry rule) and, when told, makes a write wait for a record from the peer (a write that wants
 * read). The fake epoll reports edges as Linux does: an arrival wakes a watch that asks for it,
 * a changed mask (or a rearm) polls the socket anew.
 *
 * It enforces the contract conn.c must keep with OpenSSL: a write retried after TLS_WANT_*
 * passes the same bytes and at least as many; no I/O after TLS_ERROR; no write after
 * close_notify; the session freed exactly once. At the end of an input the peer takes all the
 * output: a connection still open that leaves input unread, or output unsent, with nothing left
 * to wake it is a hang, and aborts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "conn_fakes.h"
#include "defaults.h"
#include "deflate.h"
#include "loop.h"
#include "net.h"
#include "server.h"
#include "tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum record_kind { REC_HANDSHAKE, REC_DATA, REC_CLOSE_NOTIFY, REC_GARBAGE };

struct record {
    uint8_t kind;
    const uint8_t *data; /* REC_DATA: the plaintext, data[0..period) over and over */
    size_t len;          /* REC_HANDSHAKE: the bytes of our answer (a flight, a ticket) */
    size_t period;
};

#define MAX_RECORDS 512
#define RECORD_OVERHEAD 22           /* header, type and tag of a TLS 1.3 record */
#define RETRY_COPY_MAX (256 * 1024)  /* what a retry is compared on */

struct tls_conn {
    int handshake_left;   /* the peer's handshake messages still to read */
    bool done;            /* tls_handshake_done */
    size_t owed;          /* protocol bytes to send before anything else goes on */
    size_t owe_next;      /* bytes the next call makes the session owe (say, a KeyUpdate) */
    struct record plain;  /* a record decrypted ... */
    size_t plain_off;     /* ... and handed out up to here */
    size_t plain_len;     /* what is left of it: tls_pending */
    bool eof;             /* close_notify or FIN read: reads return 0 */
    bool failed;          /* TLS_ERROR returned: OpenSSL allows no more I/O */
    bool notified;        /* our close_notify went: no more writes */
    bool write_wants_read; /* the next write needs a record from the peer first */
    size_t wire_left;     /* ciphertext of a record half sent ... */
    size_t committed;     /* ... and the plaintext bytes it holds */
    uint8_t *retry;       /* a write that returned TLS_WANT_*: what its retry must start with */
    size_t retry_len;
};

static struct {
    struct record q[MAX_RECORDS]; /* the socket's receive queue */
    size_t head, tail;
    bool fin, reset;
    bool reset_in_write;  /* the peer resets once the next record is written */
    size_t space;         /* ciphertext bytes the socket takes now */
    size_t chunk;         /* most bytes a read hands out (0: a whole record) */
    size_t record_max;    /* most plaintext bytes per record written */
    int handshake_msgs;   /* for the session made next */
    bool ktls, fail_new;
    int budget;           /* srv->tls_turn at each loop turn */
    struct tls_conn *session;
    struct io_watch *watch;
    bool queued;          /* the watch is on epoll's ready list */
    uint8_t sink;
} fake;

/* ---- the socket and epoll ----------------------------------------------------------------- */

static bool readable(void)
{
    return fake.head != fake.tail || fake.fin || fake.reset;
}

/* What epoll reports for a watch on the ready list: what the socket is ready for now, among
 * what the watch asks (an error is reported whatever it asks). */
static unsigned poll_socket(uint8_t mask)
{
    if (fake.reset && (mask & (IO_READ | IO_WRITE)))
        return IO_READ | IO_WRITE;
    return ((mask & IO_READ) && readable() ? IO_READ : 0u) |
           ((mask & IO_READ) && fake.fin ? IO_HANGUP : 0u) |
           ((mask & IO_WRITE) && fake.space ? IO_WRITE : 0u);
}

int loop_set(struct io_loop *loop, struct io_watch *w, uint8_t mask)
{
    (void)loop;
    if (mask == w->mask) /* as loop.c: no epoll_ctl, so no new poll */
        return 0;
    w->mask = mask;
    fake.watch = w;
    fake.queued = mask && poll_socket(mask);
    return 0;
}

int loop_rearm(struct io_loop *loop, struct io_watch *w)
{
    (void)loop;
    if (w->mask && poll_socket(w->mask))
        fake.queued = true;
    return 0;
}

/* The socket became ready for what: the watch is queued if it asks for that. */
static void wake(uint8_t what)
{
    if (fake.watch && (fake.watch->mask & what))
        fake.queued = true;
}

static void arrive(uint8_t kind, const uint8_t *p, size_t len, size_t period)
{
    if (fake.fin || fake.reset || fake.tail - fake.head == MAX_RECORDS)
        return;
    fake.q[fake.tail++ % MAX_RECORDS] = (struct record){ kind, p, len, period };
    wake(IO_READ);
}

static void peer_reads(size_t n)
{
    fake.space += n;
    if (n)
        wake(IO_WRITE);
}

/* Sends what the socket takes of n ciphertext bytes; returns what is left. */
static size_t push(size_t n)
{
    size_t k = n < fake.space ? n : fake.space;
    fake.space -= k;
    return n - k;
}

/* A TLS connection never reads or writes its socket past the session. */
ssize_t net_recv(int fd, void *buf, size_t len)
{
    (void)fd, (void)buf, (void)len;
    abort();
}

ssize_t net_send(int fd, const void *buf, size_t len)
{
    (void)fd, (void)buf, (void)len;
    abort();
}

ssize_t net_sendv(int fd, const struct iovec *iov, int iovcnt)
{
    (void)fd, (void)iov, (void)iovcnt;
    abort();
}

int64_t net_bytes_acked(int fd)
{
    (void)fd;
    return -1;
}

int64_t net_unsent_bytes(int fd)
{
    (void)fd;
    return fake.space == 0;
}

void net_discard_input(int fd, void *buf, size_t len)
{
    (void)fd, (void)buf, (void)len;
    fake.head = fake.tail;
}

/* ---- the session ---------------------------------------------------------------------------- */

/* The call is on the live session and OpenSSL still allows it. */
static void check(const struct tls_conn *t)
{
    if (t != fake.session || t->failed)
        abort();
}

static ssize_t fail(struct tls_conn *t, const char **why, const char *text)
{
    t->failed = true;
    *why = text;
    return TLS_ERROR;
}

/* Protocol bytes the session owes go first; TLS_WANT_WRITE while the socket cannot take them. */
static ssize_t send_owed(struct tls_conn *t, const char **why)
{
    t->owed += t->owe_next;
    t->owe_next = 0;
    if (!t->owed)
        return 1;
    if (fake.reset)
        return fail(t, why, "TLS: socket error");
    t->owed = push(t->owed);
    return t->owed ? TLS_WANT_WRITE : 1;
}

/* Takes one record off the socket. Returns 1 to go on, or what the call returns. */
static ssize_t take_record(struct tls_conn *t, const char **why)
{
    if (fake.head == fake.tail) {
        if (fake.reset)
            return fail(t, why, "TLS: socket error");
        if (fake.fin) {
            t->eof = true;
            return 0;
        }
        return TLS_WANT_READ;
    }
    struct record r = fake.q[fake.head++ % MAX_RECORDS];
    switch (r.kind) {
    case REC_HANDSHAKE: /* after the handshake: a KeyUpdate or the like, answered all the same */
        t->owed += r.len;
        if (!t->done && --t->handshake_left == 0)
            t->done = true;
        break;
    case REC_DATA:
        if (!t->done)
            return fail(t, why, "TLS handshake failed: not TLS");
        t->plain = r;
        t->plain_off = 0;
        t->plain_len = r.len;
        break;
    case REC_CLOSE_NOTIFY:
        t->eof = true;
        return 0;
    default:
        return fail(t, why, t->done ? "TLS error: bad record MAC" : "TLS handshake failed");
    }
    return send_owed(t, why);
}

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd)
{
    (void)ctx, (void)fd;
    if (fake.fail_new || fake.session)
        return NULL;
    struct tls_conn *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->handshake_left = fake.handshake_msgs;
    fake.session = t;
    return t;
}

void tls_conn_free(struct tls_conn *t)
{
    if (t != fake.session)
        abort();
    free(t->retry);
    free(t);
    fake.session = NULL;
}

ssize_t tls_read(struct tls_conn *t, void *buf, size_t len, const char **why)
{
    check(t);
    if (len == 0)
        abort();
    ssize_t rc = send_owed(t, why);
    while (rc == 1) {
        if (t->plain_len) {
            size_t n = len < t->plain_len ? len : t->plain_len;
            if (fake.chunk && n > fake.chunk)
                n = fake.chunk;
            for (size_t done = 0, k; done < n; done += k) {
                size_t at = (t->plain_off + done) % t->plain.period;
                k = t->plain.period - at < n - done ? t->plain.period - at : n - done;
                memcpy((uint8_t *)buf + done, t->plain.data + at, k);
            }
            t->plain_off += n;
            t->plain_len -= n;
            return (ssize_t)n;
        }
        if (t->eof)
            return 0;
        rc = take_record(t, why);
    }
    return rc;
}

static ssize_t write_on(struct tls_conn *t, size_t len, const char **why)
{
    ssize_t rc = send_owed(t, why);
    if (rc != 1)
        return rc;
    /* The handshake first (a write runs it too); or one record from the peer when told. */
    while (!t->done || (t->write_wants_read && !t->plain_len)) {
        bool was_done = t->done;
        rc = take_record(t, why);
        if (rc == 0)
            return fail(t, why, "TLS: peer gone while writing");
        if (rc != 1)
            return rc;
        if (was_done)
            break;
    }
    t->write_wants_read = false;
    if (fake.reset)
        return fail(t, why, "TLS: socket error");
    if (t->wire_left) { /* a record half sent: its bytes were taken, its rest goes first */
        t->wire_left = push(t->wire_left);
        return t->wire_left ? TLS_WANT_WRITE : (ssize_t)t->committed;
    }
    size_t n = len < fake.record_max ? len : fake.record_max;
    t->committed = n;
    t->wire_left = push(n + RECORD_OVERHEAD);
    if (t->wire_left)
        return TLS_WANT_WRITE;
    if (fake.reset_in_write) { /* between this record and the next */
        fake.reset_in_write = false;
        fake.reset = true;
        wake(IO_READ | IO_WRITE);
    }
    return (ssize_t)n; /* partial: one record per call */
}

ssize_t tls_write(struct tls_conn *t, const void *buf, size_t len, const char **why)
{
    check(t);
    if (t->notified || len == 0)
        abort();
    /* The bytes of a record and the last one offered are read, so that ASan sees output that
     * points at freed memory (all of them would make small records quadratic). */
    const volatile uint8_t *p = buf;
    for (size_t i = 0; i < len && i < fake.record_max; i++)
        fake.sink ^= p[i];
    fake.sink ^= p[len - 1];
    if (t->retry_len) {
        size_t cmp = t->retry_len < RETRY_COPY_MAX ? t->retry_len : RETRY_COPY_MAX;
        if (len < t->retry_len || memcmp(buf, t->retry, cmp) != 0)
            abort(); /* OpenSSL would send other bytes than the ones it took, or fail */
        t->retry_len = 0;
    }
    ssize_t rc = write_on(t, len, why);
    if (rc == TLS_WANT_READ || rc == TLS_WANT_WRITE) {
        size_t cmp = len < RETRY_COPY_MAX ? len : RETRY_COPY_MAX;
        if (!t->retry)
            t->retry = malloc(RETRY_COPY_MAX);
        if (!t->retry)
            abort();
        memcpy(t->retry, buf, cmp);
        t->retry_len = len;
    }
    return rc;
}

bool tls_pending(const struct tls_conn *t)
{
    if (t != fake.session)
        abort();
    return t->plain_len > 0;
}

/* The socket held nothing more at the last read: a real short recv. */
bool tls_input_drained(const struct tls_conn *t)
{
    if (t != fake.session)
        abort();
    return fake.head == fake.tail && !fake.fin && !fake.reset;
}

bool tls_handshake_done(const struct tls_conn *t)
{
    if (t != fake.session)
        abort();
    return t->done;
}

bool tls_ktls_send(const struct tls_conn *t)
{
    return tls_handshake_done(t) && fake.ktls;
}

const char *tls_describe(const struct tls_conn *t, char *out, size_t len)
{
    (void)t;
    snprintf(out, len, "TLSv1.3 FAKE");
    return out;
}

void tls_close_notify(struct tls_conn *t)
{
    check(t);
    if (!t->done)
        return;
    t->notified = true;
    push(RECORD_OVERHEAD + 2); /* best effort, as SSL_shutdown */
}

/* ---- the loop -------------------------------------------------------------------------------- */

static const uint8_t request[] =
    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
static const uint8_t request_deflate[] =
    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

enum { TURN_PLAIN, TURN_TIMER, TURN_SIGTERM };

/* One turn of server_run: the events, the timers, a resume scan, the backlog. */
static void turn(struct server *srv, int what)
{
    srv->tls_turn = fake.budget;
    if (fake.queued && fake.watch) {
        fake.queued = false;
        unsigned events = poll_socket(fake.watch->mask);
        if (events)
            conn_on_event(srv, fake.watch, events);
    }
    struct timer_link *t = srv->conn_count ? first_due(srv) : NULL;
    if (t && what == TURN_SIGTERM) {
        srv->stopping = true;
        conn_begin_shutdown(srv, t);
    } else if (t && what == TURN_TIMER) {
        conn_on_timeout(srv, t);
    }
    if (srv->resume_scan) {
        srv->resume_scan = false;
        if ((t = srv->conn_count ? first_due(srv) : NULL))
            conn_resume(srv, t);
    }
    conn_run_backlog(srv);
    conn_free_closed(srv);
    if (!srv->conn_count)
        fake.watch = NULL;
}

/* The socket holds input the session has not taken, or the session holds some undelivered. */
static bool input_left(void)
{
    const struct tls_conn *t = fake.session;
    return fake.head != fake.tail || t->plain_len || ((fake.fin || fake.reset) && !t->eof);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *rbuf, *inflate_buf, *wbuf;
    if (!rbuf) {
        rbuf = malloc(READ_BUFFER_SIZE);
        inflate_buf = malloc(DEFLATE_CHUNK);
        wbuf = malloc(TLS_RECORD_SIZE);
    }
    static struct metrics_shared *counts;
    if (!counts)
        counts = metrics_shared_map(0);
    if (size < 2)
        return 0;
    /* data[0]: bit 0 the handshake and an upgrade request arrive with the connection, bit 1
     * the request offers permessage-deflate, bit 2 over --max-connections (a 503 written
     * before the TLS handshake), bit 3 context takeover, bit 4 kTLS, bits 6-7 the peer's
     * handshake messages (1-4); 0x20 alone: no memory for the session. data[1]: read chunk and
     * record size. */
    uint8_t mode = data[0];
    struct server srv;
    memset(&srv, 0, sizeof srv);
    srv.shared = counts;
    srv.metrics = &counts->slot[0].m;
    char *argv[] = { "websock", NULL };
    options_parse(1, argv, &srv.opt);
    srv.opt.output_high_water = 2048;
    srv.opt.max_buffered = 64 * 1024;
    srv.log.level = LOG_ERROR;
    srv.limits.max_message = 4096;
    srv.limits.coalesce_max = 512;
    srv.limits.zpool = zpool_new(128 * 1024);
    srv.limits.inflate_buf = inflate_buf;
    srv.limits.inflate_turn = 2048;
    srv.opt.deflate = mode & 8 ? DEFLATE_TAKEOVER : DEFLATE_ON;
    srv.rbuf = rbuf;
    srv.tls_wbuf = wbuf;
    srv.max_conns = mode & 4 ? 0 : 8;
    timer_list_init(&srv.handshaking, 1000);
    timer_list_init(&srv.open, 1000);
    timer_list_init(&srv.sending, 1000);
    timer_list_init(&srv.closing, 1000);
    srv.opt.ping_interval_ms = 1000;
    srv.opt.idle_timeout_ms = 3000;

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return 0;
    memset(&fake, 0, sizeof fake);
    fake.handshake_msgs = 1 + (mode >> 6);
    fake.ktls = mode & 16;
    fake.fail_new = mode == 0x20;
    fake.chunk = (data[1] & 15) * (data[1] & 15) * 7u;
    fake.record_max = data[1] >> 4 ? (size_t)1 << (data[1] >> 4) : TLS_RECORD_SIZE;
    if (fake.record_max > TLS_RECORD_SIZE)
        fake.record_max = 7;
    fake.space = 4096;
    fake.budget = TLS_HANDSHAKES_PER_TURN;
    if (mode & 1) {
        for (int i = 0; i < fake.handshake_msgs; i++)
            arrive(REC_HANDSHAKE, NULL, 300, 0);
        const uint8_t *req = mode & 2 ? request_deflate : request;
        size_t len = mode & 2 ? sizeof request_deflate - 1 : sizeof request - 1;
        arrive(REC_DATA, req, len, len);
    }
    conn_accept(&srv, sv[0], NULL, true);
    if (!srv.conn_count)
        fake.watch = NULL;
    turn(&srv, TURN_PLAIN);

    /* The script: each byte says what happens next (its low 3 bits) and how much (the rest).
     * The loop turns only when the script says so, so records can pile up in the socket. */
    size_t pos = 2;
    while (pos < size && srv.conn_count) {
        uint8_t op = data[pos++];
        size_t arg = op >> 3, n;
        int what = -1;
        switch (op & 7) {
        case 0: /* a small record of data, or a large one */
        case 1:
            if (op & 1 && arg >= 16 && pos < size) {
                /* or one of (arg - 15) * 17 KiB (the largest over READ_BUFFER_SIZE), the next
                 * byte's count of bytes over and over: the read buffer fills with input left */
                size_t period = data[pos++] + 1u;
                if (period > size - pos)
                    period = size - pos;
                if (period)
                    arrive(REC_DATA, data + pos, (arg - 15) * 17 * 1024, period);
                pos += period;
                break;
            }
            n = op & 1 ? (arg + 1) * 97 : arg + 1;
            if (n > size - pos)
                n = size - pos;
            if (n)
                arrive(REC_DATA, data + pos, n, n);
            pos += n;
            break;
        case 2: /* a handshake message (after the handshake, a KeyUpdate), answered in arg*61 */
            arrive(REC_HANDSHAKE, NULL, arg * 61, 0);
            break;
        case 3: /* the peer reads some of our output */
            peer_reads(arg * arg * 17);
            break;
        case 4:
            switch (arg & 7) {
            case 0:
                arrive(REC_CLOSE_NOTIFY, NULL, 0, 0);
                break;
            case 1:
                if (!fake.fin && !fake.reset) {
                    fake.fin = true;
                    wake(IO_READ);
                }
                break;
            case 2:
                arrive(REC_GARBAGE, NULL, 0, 0);
                break;
            case 3:
                if (!fake.reset) {
                    fake.reset = true;
                    wake(IO_READ | IO_WRITE);
                }
                break;
            case 4:
                if (fake.session)
                    fake.session->write_wants_read = true;
                break;
            case 5:
                what = TURN_SIGTERM;
                break;
            case 6:
                fake.reset_in_write = !fake.reset;
                break;
            default:
                what = TURN_TIMER;
                break;
            }
            break;
        case 5: /* reads hand out at most so many bytes; records hold at most so many */
            if (arg < 16)
                fake.chunk = arg * arg;
            else if ((fake.record_max = (size_t)1 << (arg - 16)) > TLS_RECORD_SIZE)
                fake.record_max = TLS_RECORD_SIZE;
            break;
        case 6:
            if (arg >= 24 && fake.session) /* the next call gives the session a message to send */
                fake.session->owe_next += (arg - 23) * 50;
            else /* other connections spent the handshake budget of the next turns */
                fake.budget = arg < 4 ? (int)arg : TLS_HANDSHAKES_PER_TURN;
            break;
        default: /* a turn of the loop */
            what = TURN_PLAIN;
            break;
        }
        if (what >= 0)
            turn(&srv, what);
    }

    /* The end: the peer takes everything, and the loop runs until nothing is left to do. */
    fake.budget = TLS_HANDSHAKES_PER_TURN;
    if (srv.conn_count)
        peer_reads(SIZE_MAX / 4);
    for (int turns = 0; srv.conn_count && (fake.queued || srv.backlog); turns++) {
        if (turns == 10000)
            abort(); /* a livelock */
        turn(&srv, TURN_PLAIN);
    }
    /* Nothing wakes the connection now: input it did not take, or output it did not send, is a
     * hang (a real peer would wait for the echo for ever). A write waiting for the peer's
     * record is the peer's turn. */
    const struct tls_conn *s = fake.session;
    if (srv.conn_count && s && !s->failed &&
        (input_left() || (!s->write_wants_read && (s->owed || s->wire_left))))
        abort();

    struct timer_link *t;
    while ((t = first_due(&srv)))
        conn_abort(&srv, t);
    conn_run_backlog(&srv);
    conn_free_closed(&srv);
    /* The session freed, every byte of accounting and every connection returned. */
    if (fake.session || srv.conn_count != 0 || srv.buffered != 0 || srv.refusing != 0 ||
        srv.paused_by_cap != 0 || zpool_in_use_bytes(srv.limits.zpool) != 0)
        abort();
    zpool_free(srv.limits.zpool);
    buf_free(&srv.scratch.bytes);
    close(sv[1]);
    return 0;
}
