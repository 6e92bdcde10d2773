#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int log_level_parse(const char *name)
{
    for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void log_msg(const struct logger *lg, enum log_level level, const char *fmt, ...)
{
    if (level > lg->level)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[512];
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level]);
    if (lg->pid)
        n += snprintf(line + n, sizeof line - (size_t)n, "[%d] ", lg->pid);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* One fputs per line so lines from one process never interleave mid-line. */
    size_t len = strlen(line);
    if (len < sizeof line - 1) {
        line[len] = '\n';
        line[len + 1] = '\0';
    } else {
        line[sizeof line - 2] = '\n';
    }
    fputs(line, stderr);
}

bool log_rate_hit(struct log_rate *r, int64_t now_ms, uint64_t n)
{
    if (now_ms >= r->quiet_until_ms && r->held == 0) {
        r->quiet_until_ms = now_ms + r->interval_ms;
        return true;
    }
    r->held += n;
    return false;
}

uint64_t log_rate_due(struct log_rate *r, int64_t now_ms)
{
    if (r->held == 0 || now_ms < r->quiet_until_ms)
        return 0;
    uint64_t n = r->held;
    r->held = 0;
    r->quiet_until_ms = now_ms + r->interval_ms;
    return n;
}

int64_t log_rate_wait_ms(const struct log_rate *r, int64_t now_ms)
{
    if (r->held == 0)
        return -1;
    return r->quiet_until_ms > now_ms ? r->quiet_until_ms - now_ms : 0;
}
