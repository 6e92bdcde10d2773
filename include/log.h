/* One line per event on stderr, with a timestamp and a level. */
#ifndef WEBSOCK_LOG_H
#define WEBSOCK_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

struct logger {
    enum log_level level;
    int pid; /* non-zero with --workers: shown on every line, as several processes share stderr */
};

/* Parses "error|warn|info|debug"; returns -1 on anything else. */
int log_level_parse(const char *name);

void log_msg(const struct logger *lg, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The level is checked before the arguments are evaluated, so a disabled line costs nothing. */
#define log_at(lg, lvl, ...) \
    do { if ((lg)->level >= (lvl)) log_msg((lg), (lvl), __VA_ARGS__); } while (0)
#define log_error(lg, ...) log_at((lg), LOG_ERROR, __VA_ARGS__)
#define log_warn(lg, ...) log_at((lg), LOG_WARN, __VA_ARGS__)
#define log_info(lg, ...) log_at((lg), LOG_INFO, __VA_ARGS__)
#define log_debug(lg, ...) log_at((lg), LOG_DEBUG, __VA_ARGS__)

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
