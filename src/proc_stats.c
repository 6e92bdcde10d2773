#include "proc_stats.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* /proc/PID/stat: utime stime cutime cstime are fields 14-17, in clock ticks; rss is field 24,
 * in pages. The command name (field 2) may hold spaces and parentheses: count from its last ')'. */
static bool read_stat(pid_t pid, struct proc_sample *s)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *p = strrchr(text, ')');
    if (!p)
        return false;
    unsigned long long ticks[4] = { 0 }, start = 0, rss_pages = 0;
    /* from field 3 (state) on: skip 11 fields to utime; starttime is field 22, rss 24 */
    int got = sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu "
                            "%*d %*d %*d %*d %llu %*u %llu",
                     &ticks[0], &ticks[1], &ticks[2], &ticks[3], &start, &rss_pages);
    if (got != 6)
        return false;
    s->start_ticks = start;
    long page = sysconf(_SC_PAGESIZE);
    s->cpu_self = ticks[0] + ticks[1];
    s->cpu_children = ticks[2] + ticks[3];
    s->resident_bytes = rss_pages * (unsigned long long)(page > 0 ? page : 4096);
    return true;
}

double proc_ticks_per_second(void)
{
    long hz = sysconf(_SC_CLK_TCK);
    return hz > 0 ? (double)hz : 100.0;
}

/* /proc/stat's "btime": the boot time, seconds since the epoch; 0 if unknown. */
static unsigned long long boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return 0;
    char line[256];
    unsigned long long t = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &t) == 1)
            break;
    fclose(f);
    return t;
}

double proc_start_time(pid_t pid)
{
    struct proc_sample s;
    unsigned long long boot = boot_time();
    if (!boot || !read_stat(pid, &s))
        return 0;
    return (double)boot + (double)s.start_ticks / proc_ticks_per_second();
}

static unsigned long long count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    /* Linux 6.2 on gives the count as the directory's size: no walk over 10k entries. */
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > 0)
        return (unsigned long long)st.st_size;
    DIR *d = opendir(path);
    if (!d)
        return 0;
    unsigned long long n = 0;
    const struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return pid == getpid() && n ? n - 1 : n; /* not the descriptor reading the directory */
}

/* "Max open files            1024                 1048576              files" */
static unsigned long long max_fds(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/limits", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    unsigned long long v = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Max open files", 14) == 0) {
            v = strtoull(line + 14, NULL, 10); /* the soft limit ("unlimited" reads as 0) */
            break;
        }
    fclose(f);
    return v;
}

bool proc_sample_read(pid_t pid, struct proc_sample *s)
{
    *s = (struct proc_sample){ 0 };
    if (!read_stat(pid, s))
        return false;
    s->open_fds = count_fds(pid);
    s->max_fds = max_fds(pid);
    return true;
}
