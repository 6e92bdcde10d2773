/* One line per event on stderr, with a timestamp and a level: plain text (key=value fields
 * after the message) or one JSON object per line; under journald with the syslog priority
 * instead of our timestamp. */
#ifndef WEBSOCK_LOG_H
#define WEBSOCK_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

struct logger {
    enum log_level level;
    int pid; /* non-zero with --workers: shown on every line, as several processes share stderr */
    uint8_t format;   /* enum log_format */
    bool journal;     /* stderr is the journal: "<N>" priority first, no timestamp (it adds one) */
    bool access;      /* one access line per connection (--access-log on) */
};

/* Parses "error|warn|info|debug"; returns -1 on anything else. */
int log_level_parse(const char *name);
/* Parses "text|json"; returns -1 on anything else. */
int log_format_parse(const char *name);

/* Sets up a logger from the options; looks whether stderr is the journal ($JOURNAL_STREAM
 * names the device and inode of stderr, as systemd sets it). */
void log_setup(struct logger *lg, int level, int format, bool access);

/* Whether the journal_stream value ("DEV:INO") names the file open as fd. */
bool log_fd_is_journal(int fd, const char *journal_stream);

void log_msg(const struct logger *lg, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The level is checked before the arguments are evaluated, so a disabled line costs nothing. */
#define log_at(lg, lvl, ...) \
    do { if ((lg)->level >= (lvl)) log_msg((lg), (lvl), __VA_ARGS__); } while (0)
#define log_error(lg, ...) log_at((lg), LOG_ERROR, __VA_ARGS__)
#define log_warn(lg, ...) log_at((lg), LOG_WARN, __VA_ARGS__)
#define log_info(lg, ...) log_at((lg), LOG_INFO, __VA_ARGS__)
#define log_debug(lg, ...) log_at((lg), LOG_DEBUG, __VA_ARGS__)

/* A line with fields, built on the stack and written with one write: begin, add fields, end.
 * Values are escaped (text: quoted when they hold a space, a quote, '=' or nothing, with
 * control and non-ASCII bytes as \xNN; JSON: as JSON strings, bytes >= 0x80 as \u00NN), so a
 * client-supplied value can never start a line of its own. A line that would pass
 * LOG_LINE_MAX loses its last fields, never its shape. */
#define LOG_LINE_MAX 2048
struct log_line {
    const struct logger *lg;
    size_t len;
    bool full;
    char buf[LOG_LINE_MAX];
};

void log_line_begin(struct log_line *l, const struct logger *lg, enum log_level level,
                    const char *msg);
/* A string field of n bytes (at most LOG_VALUE_MAX of them are shown). */
#define LOG_VALUE_MAX 256
void log_line_str(struct log_line *l, const char *key, const char *s, size_t n);
void log_line_cstr(struct log_line *l, const char *key, const char *s);
void log_line_int(struct log_line *l, const char *key, long long v);
/* A field with no value: "-" in text, null in JSON. */
void log_line_null(struct log_line *l, const char *key);
/* Closes the line in buf (adds the newline) and returns its length, without writing it. */
size_t log_line_finish(struct log_line *l);
/* Closes the line and writes it to stderr. */
void log_line_end(struct log_line *l);

/* Rate limit for a warning that can repeat once per event (a refused connection): the first
 * occurrence is logged at once, later ones within interval_ms are only counted, and the count
 * is logged when the interval ends. State lives with its owner (struct server), not here. */
struct log_rate {
    int64_t interval_ms;
    int64_t quiet_until_ms; /* occurrences before this are held, not logged */
    uint64_t held;          /* occurrences counted since the last line */
};

/* n occurrences at now_ms: true if the caller logs them now, false if they were counted. */
bool log_rate_hit(struct log_rate *r, int64_t now_ms, uint64_t n);

/* Once the interval is over with occurrences held: returns their count (the caller logs one
 * summary line) and starts a new interval. Otherwise 0. */
uint64_t log_rate_due(struct log_rate *r, int64_t now_ms);

/* Milliseconds until log_rate_due has a count to give; -1 if nothing is held. */
int64_t log_rate_wait_ms(const struct log_rate *r, int64_t now_ms);

#endif
