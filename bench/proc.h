/* What the kernel says about a process: the server's CPU time and resident memory from
 * /proc, our own CPU time, and our descriptor limit. */
#ifndef WSLOAD_PROC_H
#define WSLOAD_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* utime + stime of pid in seconds (clock-tick resolution), or -1 when unreadable. */
double proc_cpu_seconds(pid_t pid);

/* VmRSS of pid in KiB, or -1 when unreadable. */
long proc_rss_kib(pid_t pid);

/* What the kernel holds for sockets, machine-wide, in KiB: the active objects of the slab
 * caches a TCP socket uses (TCP, sock_inode_cache, eventpoll_epi, filp; *source =
 * "slabinfo"), or when /proc/slabinfo cannot be read (it is root's only) the whole Slab line
 * of /proc/meminfo ("meminfo"), plus TCP's buffer pages from /proc/net/sockstat. -1 when
 * unreadable. */
long proc_kernel_net_kib(const char **source);

/* Our own user + system CPU seconds (getrusage). */
double self_cpu_seconds(void);

/* Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force. */
uint64_t raise_nofile(void);

#endif
