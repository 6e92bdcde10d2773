#include "proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

double proc_cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and ')', so fields are counted from the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long utime, stime;
    /* After ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime(14) stime(15). */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
               &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

long proc_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

/* The number after "key" on the first line of path that starts with it, or -1. */
static long field_after(const char *path, const char *key)
{
    char line[512];
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    long v = -1;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) != 0)
            continue;
        v = strtol(line + klen, NULL, 10);
        break;
    }
    fclose(f);
    return v;
}

/* TCP's buffer pages, in KiB: "TCP: inuse N orphan N tw N alloc N mem PAGES". */
static long tcp_buffer_kib(void)
{
    char line[256];
    long pages = -1;
    FILE *f = fopen("/proc/net/sockstat", "re");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        const char *m = strstr(line, " mem ");
        if (strncmp(line, "TCP:", 4) == 0 && m)
            pages = strtol(m + 5, NULL, 10);
    }
    fclose(f);
    return pages < 0 ? -1 : pages * (sysconf(_SC_PAGESIZE) / 1024);
}

/* The slab caches a connected, epoll-watched TCP socket takes objects from, in KiB of active
 * objects; -1 when /proc/slabinfo is not readable (it is root's only). dentry is left out:
 * every socket has one (192 B here), but a compile running alongside moves that cache by
 * megabytes. */
static long socket_slab_kib(void)
{
    static const char *const caches[] = { "TCP", "TCPv6", "sock_inode_cache", "eventpoll_epi",
                                          "filp" };
    char line[512];
    FILE *f = fopen("/proc/slabinfo", "re");
    if (!f)
        return -1;
    unsigned long long bytes = 0;
    while (fgets(line, sizeof line, f)) {
        char name[64];
        unsigned long long active, total, size;
        if (sscanf(line, "%63s %llu %llu %llu", name, &active, &total, &size) != 4)
            continue;
        for (size_t i = 0; i < sizeof caches / sizeof caches[0]; i++)
            if (strcmp(name, caches[i]) == 0)
                bytes += active * size;
    }
    fclose(f);
    return (long)(bytes / 1024);
}

long proc_kernel_net_kib(const char **source)
{
    long tcp = tcp_buffer_kib(), slab = socket_slab_kib();
    *source = "slabinfo";
    if (slab < 0) {
        slab = field_after("/proc/meminfo", "Slab:");
        *source = "meminfo";
    }
    return slab < 0 || tcp < 0 ? -1 : slab + tcp;
}

double self_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

uint64_t raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
}
