/* One line per event on stderr, with a timestamp and a level. */
#ifndef WEBSOCK_LOG_H
#define WEBSOCK_LOG_H

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

#endif
