#include "run.h"

#include <stdio.h>

#include "clock.h"
#include "conn.h"
#include "loop.h"
#include "proc.h"

#define CONNECT_BATCH 256           /* connects and upgrades in progress at once */
#define SWEEP_NS (10 * NS_PER_MS)
#define CLOSE_WAIT_NS (6 * NS_PER_S) /* past the per-connection close timeout */

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t slot_time(const struct bench *b, uint64_t j)
{
    return b->t0 + (int64_t)((double)j * 1e9 / b->opt.rate);
}

/* The scheduled time of connection c's next message under --rate. */
static int64_t next_due(const struct bench *b, const struct conn *c)
{
    return slot_time(b, c->next_k * b->nconns + c->id);
}

/* Sends what is due at or before now; returns when the next slot is due. A connection still
 * waiting for its previous echo skips its slot and sends as soon as the echo is in, with the
 * missed slot's time as the start of its latency: a slow server cannot hide its stalls. */
static int64_t fire_slots(struct bench *b, int64_t now)
{
    int64_t t;
    while ((t = slot_time(b, b->slot)) <= now) {
        struct conn *c = &b->conns[b->slot % b->nconns];
        if (c->state == CS_OPEN && conn_inflight(c) == 0 && next_due(b, c) <= now) {
            int64_t due = next_due(b, c);
            if (b->recording)
                hist_record(&b->lag, (uint64_t)(now - due + 500) / 1000);
            conn_send(b, c, due);
            c->next_k++;
        }
        b->slot++;
    }
    return t;
}

static void echo_rate(struct bench *b, struct conn *c, int64_t now)
{
    if (b->issuing && next_due(b, c) <= now) {
        conn_send(b, c, next_due(b, c));
        c->next_k++;
    }
}

static void echo_closed(struct bench *b, struct conn *c, int64_t now)
{
    if (b->issuing)
        conn_send(b, c, now);
}

void run_until(struct bench *b, int64_t until, bool (*done)(const struct bench *))
{
    int64_t now = now_ns();
    while (now < until && !(done && done(b))) {
        int64_t wake = until;
        if (b->rate_on)
            wake = min64(wake, fire_slots(b, now));
        if (b->sweeping) {
            if (now >= b->next_sweep) {
                for (unsigned i = 0; i < b->nconns; i++)
                    conn_sweep(b, &b->conns[i], now);
                b->next_sweep = now + SWEEP_NS;
            }
            wake = min64(wake, b->next_sweep);
        }
        loop_once(b, wake);
        now = now_ns();
    }
}

static unsigned busy(const struct bench *b)
{
    return b->count[CS_RETRY] + b->count[CS_CONNECTING] + b->count[CS_HANDSHAKE];
}

static bool batch_has_room(const struct bench *b)
{
    return busy(b) < CONNECT_BATCH || b->count[CS_FAILED];
}

int run_connect(struct bench *b)
{
    unsigned next = 0;
    b->sweeping = true;
    for (;;) {
        int64_t now = now_ns();
        while (next < b->nconns && busy(b) < CONNECT_BATCH && !b->count[CS_FAILED])
            conn_start(b, &b->conns[next++], now);
        if (b->count[CS_FAILED] || b->count[CS_OPEN] == b->nconns)
            break;
        if (next < b->nconns)
            run_until(b, now + SWEEP_NS, batch_has_room);
        else
            run_until(b, now + SWEEP_NS, NULL);
    }
    b->sweeping = false;
    if (b->count[CS_FAILED]) {
        fprintf(stderr, "wsload: could not open all %u connections (%u open); first error: %s\n",
                b->nconns, b->count[CS_OPEN], b->first_error);
        return -1;
    }
    return 0;
}

/* The server's CPU seconds, and its proxy's when there is one; -1 when unreadable. */
static double server_cpu_seconds(const struct options *o)
{
    double s = proc_cpu_seconds(o->server_pid);
    double p = o->proxy_pid ? proc_cpu_seconds(o->proxy_pid) : 0;
    return s < 0 || p < 0 ? -1 : s + p;
}

static bool nothing_in_flight(const struct bench *b)
{
    return b->inflight == 0;
}

void run_drain(struct bench *b, int64_t timeout_ns, struct results *r)
{
    run_until(b, now_ns() + timeout_ns, nothing_in_flight);
    if (b->inflight == 0)
        return;
    /* A stall: say where, so it can be reproduced. */
    for (unsigned i = 0; i < b->nconns; i++) {
        const struct conn *c = &b->conns[i];
        if (c->state != CS_OPEN || conn_inflight(c) == 0)
            continue;
        fprintf(stderr,
                "wsload: stall: connection %u: %u message(s) of %zu bytes unanswered after %.0f s "
                "(%u fully sent, %zu bytes of the oldest echoed)\n",
                c->id, conn_inflight(c), b->pl.size, (double)timeout_ns / NS_PER_S,
                (unsigned)(c->sent - c->head), c->msg_off);
        break;
    }
    fprintf(stderr, "wsload: %llu message(s) never echoed\n", (unsigned long long)b->inflight);
    r->lost = b->inflight;
    b->errors++;
    if (!b->first_error[0])
        snprintf(b->first_error, sizeof b->first_error, "%llu messages never echoed",
                 (unsigned long long)b->inflight);
}

/* --churn: connections are opening most of the time; the run is over only if all failed. */
static bool all_failed(const struct bench *b)
{
    return b->count[CS_FAILED] == b->nconns;
}

static bool settled(const struct bench *b)
{
    return busy(b) == 0;
}

/* Every connection lost: the rest of the window would measure nothing. */
static bool none_open(const struct bench *b)
{
    return b->count[CS_OPEN] == 0;
}

void run_load(struct bench *b, struct results *r)
{
    const struct options *o = &b->opt;
    int64_t start = now_ns();
    b->issuing = true;
    if (o->rate > 0) {
        b->on_echo = echo_rate;
        b->t0 = start;
        b->slot = 0;
        b->rate_on = true;
    } else if (o->churn) {
        /* Every connection closes, and each close opens the next (conn.c). */
        b->sweeping = true;
        for (unsigned i = 0; i < b->nconns; i++)
            conn_close(b, &b->conns[i], start);
    } else {
        b->on_echo = echo_closed;
        for (unsigned i = 0; i < b->nconns; i++)
            for (unsigned d = 0; d < o->depth; d++)
                conn_send(b, &b->conns[i], start);
    }
    bool (*stop)(const struct bench *) = o->churn ? all_failed : none_open;
    run_until(b, start + (int64_t)(o->warmup * NS_PER_S), stop);

    hist_reset(&b->hist);
    hist_reset(&b->lag);
    b->msgs = 0;
    b->recording = true;
    double srv0 = o->server_pid ? server_cpu_seconds(o) : -1;
    double gen0 = self_cpu_seconds();
    int64_t t0 = now_ns();
    run_until(b, t0 + (int64_t)(o->duration * NS_PER_S), stop);
    int64_t t1 = now_ns();
    double srv1 = o->server_pid ? server_cpu_seconds(o) : -1;
    r->gen_cpu_s = self_cpu_seconds() - gen0;
    b->recording = false;
    r->window_s = (double)(t1 - t0) / NS_PER_S;
    r->msgs = b->msgs;
    r->server_cpu_s = srv0 >= 0 && srv1 >= 0 ? srv1 - srv0 : -1;

    b->issuing = false;
    b->rate_on = false;
    if (o->churn)
        run_until(b, now_ns() + 10 * NS_PER_S, settled); /* what was opening opens */
    run_drain(b, 10 * NS_PER_S, r);
}

static bool all_closed(const struct bench *b)
{
    return b->count[CS_CLOSING] == 0;
}

void run_close(struct bench *b)
{
    int64_t now = now_ns();
    for (unsigned i = 0; i < b->nconns; i++)
        conn_close(b, &b->conns[i], now);
    b->sweeping = true;
    run_until(b, now + CLOSE_WAIT_NS, all_closed);
    b->sweeping = false;
}
