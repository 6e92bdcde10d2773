/* Log lines with fields: client bytes are escaped so that no value can end a line or forge a
 * field, in text and in JSON; the journal gets a priority prefix and no timestamp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"

static const char *finish(struct log_line *l)
{
    size_t n = log_line_finish(l);
    l->buf[n] = '\0'; /* the builder keeps two bytes free, one is the newline */
    return l->buf;
}

/* Exactly one newline, at the end. */
static void assert_one_line(const char *s)
{
    const char *nl = strchr(s, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], '\0');
}

static void text_values_are_quoted_only_when_needed(void **state)
{
    (void)state;
    struct logger lg = { .level = LOG_DEBUG, .journal = true };
    struct log_line l;
    log_line_begin(&l, &lg, LOG_INFO, "access");
    log_line_cstr(&l, "path", "/ws");
    log_line_cstr(&l, "reason", "close timeout");
    log_line_cstr(&l, "empty", "");
    log_line_int(&l, "status", 101);
    log_line_null(&l, "close");
    assert_string_equal(finish(&l),
                        "<6>info  access path=/ws reason=\"close timeout\" empty=\"\" status=101 "
                        "close=-\n");
}

static void text_escapes_quotes_controls_and_high_bytes(void **state)
{
    (void)state;
    struct logger lg = { .level = LOG_DEBUG, .journal = true };
    struct log_line l;
    log_line_begin(&l, &lg, LOG_WARN, "bad\nmsg");
    static const char v[] = "a\"b\\c\n2024 error forged=1\x01\xff";
    log_line_str(&l, "v", v, sizeof v - 1);
    const char *s = finish(&l);
    assert_one_line(s);
    assert_string_equal(s, "<4>warn  bad\\x0amsg v=\"a\\\"b\\\\c\\x0a2024 error forged=1\\x01\\xff\"\n");
}

static void json_escapes_every_client_byte(void **state)
{
    (void)state;
    struct logger lg = { .level = LOG_DEBUG, .format = LOG_FORMAT_JSON, .journal = true };
    struct log_line l;
    log_line_begin(&l, &lg, LOG_DEBUG, "m\"\n");
    log_line_str(&l, "v", "q\"b\\\r\n\x7f\xc3\xa9", 9);
    log_line_int(&l, "n", -5);
    log_line_null(&l, "z");
    const char *s = finish(&l);
    assert_one_line(s);
    assert_memory_equal(s, "<7>{\"time\":\"", 12);
    assert_non_null(strstr(s, "\",\"level\":\"debug\",\"msg\":\"m\\\"\\u000a\",\"v\":"
                              "\"q\\\"b\\\\\\u000d\\u000a\\u007f\\u00c3\\u00a9\",\"n\":-5,"
                              "\"z\":null}\n"));
}

static void a_full_line_drops_whole_fields_and_keeps_its_shape(void **state)
{
    (void)state;
    struct logger lg = { .level = LOG_DEBUG, .format = LOG_FORMAT_JSON };
    struct log_line l;
    char big[LOG_VALUE_MAX];
    memset(big, '"', sizeof big); /* 512 bytes escaped: a handful fill the line */
    log_line_begin(&l, &lg, LOG_INFO, "access");
    for (int i = 0; i < 10; i++)
        log_line_str(&l, "k", big, sizeof big);
    log_line_int(&l, "last", 1);
    const char *s = finish(&l);
    assert_one_line(s);
    size_t n = strlen(s);
    assert_true(n <= LOG_LINE_MAX);
    assert_string_equal(s + n - 3, "\"}\n"); /* the last whole field, then the end */
}

static void journal_stream_must_name_the_file(void **state)
{
    (void)state;
    assert_false(log_fd_is_journal(2, NULL));
    assert_false(log_fd_is_journal(2, "garbage"));
    assert_false(log_fd_is_journal(2, "1:2x"));
    assert_false(log_fd_is_journal(-1, "1:2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_values_are_quoted_only_when_needed),
        cmocka_unit_test(text_escapes_quotes_controls_and_high_bytes),
        cmocka_unit_test(json_escapes_every_client_byte),
        cmocka_unit_test(a_full_line_drops_whole_fields_and_keeps_its_shape),
        cmocka_unit_test(journal_stream_must_name_the_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
