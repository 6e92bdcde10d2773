/* The figures of a run, printed as text or as one JSON object. */
#ifndef WSLOAD_REPORT_H
#define WSLOAD_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "bench.h"

struct results {
    bool connected;      /* every connection opened (and upgraded) */
    double connect_s;    /* how long opening them took */
    double window_s;     /* the measured window */
    uint64_t msgs;       /* echoes completed and verified in it */
    double server_cpu_s; /* < 0: not measured */
    double gen_cpu_s;
    uint64_t lost;       /* messages never echoed */
    /* --idle: the server's VmRSS in KiB before, once settled, and after --hold (-1: unknown) */
    long rss_before, rss_after, rss_end;
    /* --idle: proc_kernel_net_kib() at the same two points (-1: unknown): what the sockets of
     * both ends cost the kernel, which no process's RSS shows */
    long kernel_before, kernel_after;
    const char *kernel_source;
    unsigned alive;      /* --idle: connections that echoed after the hold */
};

void report_print(const struct bench *b, const struct results *r);

#endif
