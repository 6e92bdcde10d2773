/* The operator counters and their Prometheus text exposition (format 0.0.4): which label each
 * close code and status lands under, and the exact lines written. */
#include "split.h"

#include <time.h>

#include "defaults.h"
#include "metrics.h"

static char text[16384];

static const char *format(const struct metrics *m)
{
    struct metrics_snapshot s;
    metrics_snapshot_of(m, &s);
    size_t n = metrics_format(&s, text, sizeof text);
    assert_true(n < sizeof text);
    assert_int_equal(strlen(text), n);
    return text;
}

/* True if the exposition has this exact line. */
static bool has_line(const char *exposition, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = exposition; (p = strstr(p, line)); p++)
        if ((p == exposition || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

#define assert_line(exposition, line)                                                \
    do {                                                                             \
        if (!has_line((exposition), (line)))                                         \
            fail_msg("missing line \"%s\" in:\n%s", (line), (exposition));           \
    } while (0)

static size_t count_lines_starting(const char *exposition, const char *prefix)
{
    size_t n = 0;
    for (const char *p = exposition; *p; p = strchr(p, '\n') + 1)
        if (strncmp(p, prefix, strlen(prefix)) == 0)
            n++;
    return n;
}

/* Every family has its HELP and TYPE line, counters end in _total, zeros are written. */
static void empty_metrics_name_every_family(void **state)
{
    (void)state;
    struct metrics m = { 0 };
    const char *t = format(&m);
    static const char *const families[][2] = {
        { "websock_connections_open", "gauge" },
        { "websock_connections_accepted_total", "counter" },
        { "websock_upgrades_total", "counter" },
        { "websock_messages_received_total", "counter" },
        { "websock_messages_sent_total", "counter" },
        { "websock_payload_received_bytes_total", "counter" },
        { "websock_payload_sent_bytes_total", "counter" },
        { "websock_closes_total", "counter" },
        { "websock_handshake_rejections_total", "counter" },
        { "websock_ip_limited_total", "counter" },
    };
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        char line[160];
        snprintf(line, sizeof line, "# TYPE %s %s", families[i][0], families[i][1]);
        assert_line(t, line);
        snprintf(line, sizeof line, "# HELP %s ", families[i][0]);
        assert_int_equal(count_lines_starting(t, line), 1);
    }
    assert_line(t, "websock_connections_open 0");
    assert_line(t, "websock_payload_sent_bytes_total 0");
    assert_int_equal(count_lines_starting(t, "websock_closes_total{"), 0);
    assert_int_equal(count_lines_starting(t, "websock_handshake_rejections_total{"),
                     METRICS_STATUS_COUNT);
    assert_line(t, "websock_handshake_rejections_total{status=\"404\"} 0");
    assert_line(t, "websock_ip_limited_total{reason=\"connections\"} 0");
    assert_line(t, "websock_ip_limited_total{reason=\"rate\"} 0");
    assert_int_equal(t[strlen(t) - 1], '\n');
}

static void values_are_written_exactly(void **state)
{
    (void)state;
    struct metrics m = { .open = 2, .accepted = 17, .upgrades = 9,
                         .echo = { .messages_in = 5, .messages_out = 4, .bytes_in = 1ull << 40,
                                   .bytes_out = 18446744073709551615ull } };
    const char *t = format(&m);
    assert_line(t, "websock_connections_open 2");
    assert_line(t, "websock_connections_accepted_total 17");
    assert_line(t, "websock_upgrades_total 9");
    assert_line(t, "websock_messages_received_total 5");
    assert_line(t, "websock_messages_sent_total 4");
    assert_line(t, "websock_payload_received_bytes_total 1099511627776");
    assert_line(t, "websock_payload_sent_bytes_total 18446744073709551615");
}

static void close_codes_by_label(void **state)
{
    (void)state;
    struct metrics m = { 0 };
    metrics_count_close(&m, 1000);
    metrics_count_close(&m, 1000);
    metrics_count_close(&m, 1002);
    metrics_count_close(&m, 0); /* websock sent no Close */
    metrics_count_close(&m, 4001);
    metrics_count_close(&m, 3000);
    metrics_count_close(&m, 4001);
    const char *t = format(&m);
    assert_line(t, "websock_closes_total{code=\"1000\"} 2");
    assert_line(t, "websock_closes_total{code=\"1002\"} 1");
    assert_line(t, "websock_closes_total{code=\"1006\"} 1");
    assert_line(t, "websock_closes_total{code=\"4001\"} 2");
    assert_line(t, "websock_closes_total{code=\"3000\"} 1");
    assert_int_equal(count_lines_starting(t, "websock_closes_total{"), 5);
    /* application codes in the order first seen */
    assert_true(strstr(t, "{code=\"4001\"}") < strstr(t, "{code=\"3000\"}"));
}

/* Past METRICS_APP_CODES distinct application codes, new ones share code="other"; the codes
 * already labelled keep counting. */
static void application_codes_are_bounded(void **state)
{
    (void)state;
    struct metrics m = { 0 };
    for (uint16_t i = 0; i < METRICS_APP_CODES + 5; i++)
        metrics_count_close(&m, (uint16_t)(3000 + i));
    metrics_count_close(&m, 3000);
    const char *t = format(&m);
    assert_int_equal(count_lines_starting(t, "websock_closes_total{"), METRICS_APP_CODES + 1);
    assert_line(t, "websock_closes_total{code=\"3000\"} 2");
    assert_line(t, "websock_closes_total{code=\"other\"} 5");
    char line[80];
    int last = 3000 + METRICS_APP_CODES - 1;
    snprintf(line, sizeof line, "websock_closes_total{code=\"%d\"} 1", last);
    assert_line(t, line);
    snprintf(line, sizeof line, "{code=\"%d\"}", 3000 + METRICS_APP_CODES);
    assert_null(strstr(t, line));
}

static void rejections_by_status(void **state)
{
    (void)state;
    struct metrics m = { 0 };
    static const int statuses[] = { 400, 403, 404, 404, 405, 426, 429, 431, 503, 500, 599 };
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        metrics_count_rejection(&m, statuses[i]);
    const char *t = format(&m);
    assert_line(t, "websock_handshake_rejections_total{status=\"400\"} 1");
    assert_line(t, "websock_handshake_rejections_total{status=\"403\"} 1");
    assert_line(t, "websock_handshake_rejections_total{status=\"404\"} 2");
    assert_line(t, "websock_handshake_rejections_total{status=\"405\"} 1");
    assert_line(t, "websock_handshake_rejections_total{status=\"426\"} 1");
    assert_line(t, "websock_handshake_rejections_total{status=\"429\"} 1");
    assert_line(t, "websock_handshake_rejections_total{status=\"431\"} 1");
    assert_line(t, "websock_handshake_rejections_total{status=\"503\"} 1");
    /* a status websock does not list is its own mistake: counted as 500 */
    assert_line(t, "websock_handshake_rejections_total{status=\"500\"} 2");
}

/* Like snprintf: NULL/0 measures, a short buffer gets a NUL-terminated prefix. */
static void format_measures_and_truncates_like_snprintf(void **state)
{
    (void)state;
    struct metrics m = { .accepted = 3 };
    metrics_count_close(&m, 4999);
    struct metrics_snapshot s;
    metrics_snapshot_of(&m, &s);
    size_t full = metrics_format(&s, NULL, 0);
    assert_int_equal(full, strlen(format(&m)));
    char whole[16384];
    memcpy(whole, text, full + 1);
    for (size_t cap = 1; cap < full + 2; cap += 97) {
        char small[16384];
        memset(small, 'x', sizeof small);
        assert_int_equal(metrics_format(&s, small, cap), full);
        size_t kept = cap - 1 < full ? cap - 1 : full;
        assert_int_equal(strlen(small), kept);
        assert_memory_equal(small, whole, kept);
        assert_int_equal(small[cap], 'x'); /* nothing written past cap */
    }
}

/* --workers 3: every slot summed, application codes merged by code (the union of the slots'
 * codes), and each worker's own figures labelled worker="N". */
static void slots_are_summed_and_labelled_by_worker(void **state)
{
    (void)state;
    struct metrics_shared *sh = metrics_shared_map(3);
    assert_non_null(sh);
    assert_int_equal(sh->workers, 3);
    assert_int_equal(sh->slots, 3);
    assert_int_equal((uintptr_t)&sh->slot[1] % METRICS_SLOT_ALIGN, 0);
    sh->main_pid = -1; /* no process figures */
    struct metrics *a = &sh->slot[0].m, *b = &sh->slot[1].m, *c = &sh->slot[2].m;
    a->accepted = 5, b->accepted = 7, c->accepted = 1;
    a->open = 2, c->open = 3;
    a->echo.messages_out = 10, b->echo.messages_out = 32;
    metrics_count_close(a, 4001);
    metrics_count_close(a, 1000);
    metrics_count_close(b, 3001);
    metrics_count_close(b, 4001);
    metrics_count_close(c, 4001);
    metrics_count_rejection(c, 404);
    sh->slot[1].restarts = 2;
    struct metrics_snapshot *s = metrics_snapshot_take(sh);
    assert_non_null(s);
    size_t n = metrics_format(s, text, sizeof text);
    assert_true(n < sizeof text);
    free(s);
    const char *t = text;
    assert_line(t, "websock_connections_accepted_total 13");
    assert_line(t, "websock_connections_open 5");
    assert_line(t, "websock_messages_sent_total 42");
    assert_line(t, "websock_closes_total{code=\"4001\"} 3");
    assert_line(t, "websock_closes_total{code=\"3001\"} 1");
    assert_line(t, "websock_closes_total{code=\"1000\"} 1");
    assert_int_equal(count_lines_starting(t, "websock_closes_total{"), 3);
    assert_line(t, "websock_handshake_rejections_total{status=\"404\"} 1");
    assert_line(t, "# TYPE websock_worker_connections_open gauge");
    assert_line(t, "websock_worker_connections_open{worker=\"1\"} 2");
    assert_line(t, "websock_worker_connections_open{worker=\"2\"} 0");
    assert_line(t, "websock_worker_connections_open{worker=\"3\"} 3");
    assert_line(t, "websock_worker_connections_accepted_total{worker=\"2\"} 7");
    assert_line(t, "websock_worker_restarts_total{worker=\"2\"} 2");
    assert_int_equal(count_lines_starting(t, "process_"), 0);
    metrics_shared_unmap(sh);
}

/* One process: no per-worker families; the process_* families read this very process. */
static void process_families_describe_this_process(void **state)
{
    (void)state;
    struct metrics_shared *sh = metrics_shared_map(0);
    assert_non_null(sh);
    assert_int_equal(sh->workers, 0);
    assert_int_equal(sh->main_pid, getpid());
    struct metrics_snapshot *s = metrics_snapshot_take(sh);
    assert_non_null(s);
    assert_true(s->process.known);
    assert_true(s->process.open_fds >= 3);
    assert_true(s->process.max_fds >= s->process.open_fds);
    assert_true(s->process.resident_bytes > 1024 * 1024);
    metrics_format(s, text, sizeof text);
    free(s);
    const char *t = text;
    assert_int_equal(count_lines_starting(t, "websock_worker_"), 0);
    static const char *const families[][2] = {
        { "process_cpu_seconds_total", "counter" },
        { "process_resident_memory_bytes", "gauge" },
        { "process_open_fds", "gauge" },
        { "process_max_fds", "gauge" },
        { "process_start_time_seconds", "gauge" },
        { "websock_build_info", "gauge" },
    };
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        char line[160];
        snprintf(line, sizeof line, "# TYPE %s %s", families[i][0], families[i][1]);
        assert_line(t, line);
        assert_int_equal(count_lines_starting(t, families[i][0]), 1); /* one sample */
    }
    static const char start_line[] = "\nprocess_start_time_seconds ";
    const char *start = strstr(t, start_line);
    assert_non_null(start);
    double started = strtod(start + sizeof start_line - 1, NULL);
    assert_true(started > (double)time(NULL) - 60 && started <= (double)time(NULL) + 1);
    assert_non_null(strstr(t, "\nwebsock_build_info{version=\"" WEBSOCK_VERSION "\",compiler=\""));
    metrics_shared_unmap(sh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_metrics_name_every_family),
        cmocka_unit_test(values_are_written_exactly),
        cmocka_unit_test(close_codes_by_label),
        cmocka_unit_test(application_codes_are_bounded),
        cmocka_unit_test(rejections_by_status),
        cmocka_unit_test(format_measures_and_truncates_like_snprintf),
        cmocka_unit_test(slots_are_summed_and_labelled_by_worker),
        cmocka_unit_test(process_families_describe_this_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
