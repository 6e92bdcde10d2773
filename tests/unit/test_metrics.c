/* The operator counters and their Prometheus text exposition (format 0.0.4): which label each
 * close code and status lands under, and the exact lines written. */
#include "split.h"

#include "metrics.h"

static char text[16384];

static const char *format(const struct metrics *m)
{
    size_t n = metrics_format(m, text, sizeof text);
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
    size_t full = metrics_format(&m, NULL, 0);
    assert_int_equal(full, strlen(format(&m)));
    char whole[16384];
    memcpy(whole, text, full + 1);
    for (size_t cap = 1; cap < full + 2; cap += 97) {
        char small[16384];
        memset(small, 'x', sizeof small);
        assert_int_equal(metrics_format(&m, small, cap), full);
        size_t kept = cap - 1 < full ? cap - 1 : full;
        assert_int_equal(strlen(small), kept);
        assert_memory_equal(small, whole, kept);
        assert_int_equal(small[cap], 'x'); /* nothing written past cap */
    }
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
