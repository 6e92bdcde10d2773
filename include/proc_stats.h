/* The figures of the usual process_* metrics, read from /proc/PID. */
#ifndef WEBSOCK_PROC_STATS_H
#define WEBSOCK_PROC_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct proc_sample {
    uint64_t cpu_self;         /* user + system time of the process, in clock ticks */
    uint64_t cpu_children;     /* that of its children it has waited for */
    uint64_t resident_bytes;
    uint64_t open_fds;
    uint64_t max_fds;          /* the soft limit; 0 if unlimited or unknown */
    uint64_t start_ticks;      /* when it started, clock ticks after boot */
};

/* Clock ticks per second (sysconf(_SC_CLK_TCK)). */
double proc_ticks_per_second(void);

/* When process pid started, seconds since the epoch; 0 if unknown. */
double proc_start_time(pid_t pid);

/* Reads process pid's figures. Returns false if pid is gone (or /proc is not there). */
bool proc_sample_read(pid_t pid, struct proc_sample *s);

#endif
