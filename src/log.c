#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const char *const format_names[] = { "text", "json" };
/* syslog priorities: err, warning, info, debug */
static const char level_priority[] = { '3', '4', '6', '7' };

static int name_index(const char *name, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

int log_level_parse(const char *name) { return name_index(name, level_names, 4); }
int log_format_parse(const char *name) { return name_index(name, format_names, 2); }

bool log_fd_is_journal(int fd, const char *journal_stream)
{
    unsigned long long dev, ino;
    char end;
    struct stat st;
    if (!journal_stream || sscanf(journal_stream, "%llu:%llu%c", &dev, &ino, &end) != 2)
        return false;
    return fstat(fd, &st) == 0 && (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
}

void log_setup(struct logger *lg, int level, int format, bool access)
{
    lg->level = (enum log_level)level;
    lg->format = (uint8_t)format;
    lg->access = access;
    /* Only when stderr itself is the journal: a service whose stderr was redirected to a file
     * inherits the variable too. */
    lg->journal = log_fd_is_journal(STDERR_FILENO, getenv("JOURNAL_STREAM"));
}

static void put(struct log_line *l, const char *s, size_t n)
{
    /* Two bytes stay free for the JSON "}" and the newline. */
    if (l->full || l->len + n > sizeof l->buf - 2) {
        l->full = true;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(struct log_line *l, const char *s) { put(l, s, strlen(s)); }

static bool json(const struct log_line *l) { return l->lg->format == LOG_FORMAT_JSON; }

/* s escaped for a JSON string or a text value, into tmp (6 bytes per input byte at most). */
static size_t escape(const struct log_line *l, const unsigned char *s, size_t n, char *tmp,
                     bool text_free_form)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (json(l)) {
            if (c == '"' || c == '\\') {
                tmp[o++] = '\\';
                tmp[o++] = (char)c;
            } else if (c < 0x20 || c >= 0x7f) {
                memcpy(tmp + o, "\\u00", 4);
                tmp[o + 4] = hex[c >> 4];
                tmp[o + 5] = hex[c & 15];
                o += 6;
            } else {
                tmp[o++] = (char)c;
            }
        } else if (c < 0x20 || c >= 0x7f || (!text_free_form && (c == '"' || c == '\\'))) {
            tmp[o++] = '\\';
            if (c == '"' || c == '\\') {
                tmp[o++] = (char)c;
            } else {
                tmp[o++] = 'x';
                tmp[o++] = hex[c >> 4];
                tmp[o++] = hex[c & 15];
            }
        } else {
            tmp[o++] = (char)c;
        }
    }
    return o;
}

/* A text value needs quotes when it is empty or holds a space, a quote or '='. */
static bool needs_quotes(const char *s, size_t n)
{
    if (!n)
        return true;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ' ' || s[i] == '"' || s[i] == '=' || s[i] == '\\')
            return true;
    return false;
}

static void key(struct log_line *l, const char *k)
{
    if (json(l)) {
        puts_(l, ",\"");
        puts_(l, k);
        puts_(l, "\":");
    } else {
        puts_(l, " ");
        puts_(l, k);
        puts_(l, "=");
    }
}

void log_line_str(struct log_line *l, const char *k, const char *s, size_t n)
{
    char tmp[LOG_VALUE_MAX * 6];
    if (n > LOG_VALUE_MAX)
        n = LOG_VALUE_MAX;
    size_t len = escape(l, (const unsigned char *)s, n, tmp, false);
    bool quote = json(l) || needs_quotes(s, n);
    size_t mark = l->len;
    key(l, k);
    if (quote)
        puts_(l, "\"");
    put(l, tmp, len);
    if (quote)
        puts_(l, "\"");
    if (l->full)
        l->len = mark; /* no half field: the line keeps its shape */
}

void log_line_cstr(struct log_line *l, const char *k, const char *s)
{
    log_line_str(l, k, s, strlen(s));
}

void log_line_int(struct log_line *l, const char *k, long long v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", v);
    size_t mark = l->len;
    key(l, k);
    put(l, num, (size_t)n);
    if (l->full)
        l->len = mark;
}

void log_line_null(struct log_line *l, const char *k)
{
    size_t mark = l->len;
    key(l, k);
    puts_(l, json(l) ? "null" : "-");
    if (l->full)
        l->len = mark;
}

void log_line_begin(struct log_line *l, const struct logger *lg, enum log_level level,
                    const char *msg)
{
    l->lg = lg;
    l->len = 0;
    l->full = false;
    char head[96];
    int n = 0;
    if (lg->journal) {
        head[n++] = '<';
        head[n++] = level_priority[level];
        head[n++] = '>';
    }
    char stamp[64] = "";
    if (!lg->journal || json(l)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, ts.tv_nsec / 1000000);
    }
    put(l, head, (size_t)n);
    char tmp[512 * 6];
    size_t mlen = strlen(msg);
    if (mlen > 512)
        mlen = 512;
    size_t elen = escape(l, (const unsigned char *)msg, mlen, tmp, true);
    if (json(l)) {
        /* The journal adds its own time, but a JSON consumer expects the field. */
        puts_(l, "{\"time\":\"");
        puts_(l, stamp);
        puts_(l, "\",\"level\":\"");
        puts_(l, level_names[level]);
        puts_(l, "\"");
        if (lg->pid) {
            char pid[32];
            put(l, pid, (size_t)snprintf(pid, sizeof pid, ",\"pid\":%d", lg->pid));
        }
        puts_(l, ",\"msg\":\"");
        put(l, tmp, elen);
        puts_(l, "\"");
    } else {
        if (stamp[0]) {
            puts_(l, stamp);
            puts_(l, " ");
        }
        char lvl[16];
        put(l, lvl, (size_t)snprintf(lvl, sizeof lvl, "%-5s ", level_names[level]));
        if (lg->pid) {
            char pid[32];
            put(l, pid, (size_t)snprintf(pid, sizeof pid, "[%d] ", lg->pid));
        }
        put(l, tmp, elen);
    }
}

size_t log_line_finish(struct log_line *l)
{
    if (json(l))
        l->buf[l->len++] = '}'; /* room kept by put() */
    l->buf[l->len++] = '\n';
    return l->len;
}

void log_line_end(struct log_line *l)
{
    log_line_finish(l);
    /* One write per line so lines from several processes never interleave mid-line. */
    ssize_t w = write(STDERR_FILENO, l->buf, l->len);
    (void)w; /* nowhere to report a failed log write */
}

void log_msg(const struct logger *lg, enum log_level level, const char *fmt, ...)
{
    if (level > lg->level)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct log_line l;
    log_line_begin(&l, lg, level, msg);
    log_line_end(&l);
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
