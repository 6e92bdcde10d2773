/* --idle: what an idle upgraded connection costs the server in resident memory. */
#include <stdio.h>

#include "clock.h"
#include "conn.h"
#include "proc.h"
#include "run.h"

#define SETTLE_FIRST_NS (500 * NS_PER_MS)
#define SETTLE_STEP_NS (250 * NS_PER_MS)
#define SETTLE_STEPS 12 /* at most 3.5 s in all */

/* Lets the loop run (answering pings) until the server's RSS stops moving. */
static long settled_rss(struct bench *b)
{
    run_until(b, now_ns() + SETTLE_FIRST_NS, NULL);
    long prev = proc_rss_kib(b->opt.server_pid);
    for (int i = 0; i < SETTLE_STEPS; i++) {
        run_until(b, now_ns() + SETTLE_STEP_NS, NULL);
        long cur = proc_rss_kib(b->opt.server_pid);
        if (cur == prev)
            break;
        prev = cur;
    }
    return prev;
}

/* One message on every connection at once, and every echo waited for. */
static void one_each(struct bench *b, struct results *r, bool record)
{
    hist_reset(&b->hist);
    b->msgs = 0;
    b->recording = record;
    b->issuing = false;
    int64_t t = now_ns();
    for (unsigned i = 0; i < b->nconns; i++)
        conn_send(b, &b->conns[i], t);
    run_drain(b, 10 * NS_PER_S, r);
    b->recording = false;
    r->window_s = (double)(now_ns() - t) / NS_PER_S;
}

void run_idle(struct bench *b, struct results *r)
{
    pid_t pid = b->opt.server_pid;
    r->rss_before = proc_rss_kib(pid);
    r->kernel_before = proc_kernel_net_kib(&r->kernel_source);
    if (r->rss_before < 0) {
        fprintf(stderr, "wsload: cannot read /proc/%d/status\n", (int)pid);
        b->errors++;
        return;
    }
    int64_t t0 = now_ns();
    if (run_connect(b) < 0)
        return;
    int64_t t1 = now_ns();
    r->connected = true;
    r->connect_s = (double)(t1 - t0) / NS_PER_S;
    /* --idle-echo: the memory of a connection that was used once each way, then went idle
     * (what zlib state, buffers or history a server keeps after a message). */
    if (b->opt.idle_echo)
        one_each(b, r, false);
    r->rss_after = settled_rss(b);
    r->kernel_after = proc_kernel_net_kib(&r->kernel_source);

    run_until(b, t1 + (int64_t)(b->opt.hold * NS_PER_S), NULL);
    r->rss_end = proc_rss_kib(pid);

    /* Each must still be alive and echoing. */
    one_each(b, r, true);
    r->msgs = b->msgs;
    r->alive = (unsigned)b->msgs;
}
