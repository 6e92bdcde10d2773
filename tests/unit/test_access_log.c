/* The access line's layout: every field in its place, "-" where a value is not known, the
 * proxy entry as configured, and a client's path and detail escaped like any other value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "access_log.h"

static const struct logger journal = { .level = LOG_DEBUG, .journal = true, .access = true };

static const char *line(struct log_line *l, const struct access_entry *e)
{
    access_line(l, &journal, e);
    size_t n = log_line_finish(l);
    l->buf[n] = '\0';
    return l->buf;
}

static struct ip_addr addr(const char *text)
{
    struct ip_addr a;
    assert_true(ip_addr_parse(text, strlen(text), &a));
    return a;
}

static void upgraded_connection_that_ended(void **state)
{
    (void)state;
    struct ip_addr client = addr("192.0.2.7");
    struct access_entry e = {
        .worker = 1, .id = 42, .client = &client, .port = 50123, .path = "/ws",
        .path_len = 3, .status = 101, .duration_ms = 1500, .msgs_in = 3, .msgs_out = 2,
        .bytes_known = true, .bytes_in = 300, .bytes_out = 250, .close = 1000,
        .close_by = "client",
    };
    struct log_line l;
    assert_string_equal(line(&l, &e),
                        "<6>info  access id=1-42 client=192.0.2.7 port=50123 path=/ws "
                        "status=101 duration_ms=1500 msgs_in=3 msgs_out=2 bytes_in=300 "
                        "bytes_out=250 close=1000 close_by=client\n");
}

static void unknown_values_are_dashes(void **state)
{
    (void)state;
    /* A Unix socket peer that sent a request head and vanished: no port, path, status,
     * counts or close. */
    struct access_entry e = { .worker = 0, .id = 7, .reason = "handshake timeout" };
    struct log_line l;
    assert_string_equal(line(&l, &e),
                        "<6>info  access id=0-7 client=unix port=- path=- status=- "
                        "duration_ms=0 msgs_in=0 msgs_out=0 bytes_in=- bytes_out=- close=- "
                        "close_by=- reason=\"handshake timeout\"\n");
}

static void proxy_entry_as_configured_and_client_bytes_escaped(void **state)
{
    (void)state;
    struct ip_addr client = addr("2001:db8::1");
    struct ip_cidr range, single;
    assert_true(ip_cidr_parse("10.0.0.0/8", 10, &range));
    assert_true(ip_cidr_parse("10.1.2.3", 8, &single));
    static const char target[] = "/x y\n";
    static const char origin[] = "http://evil\x01";
    struct access_entry e = {
        .worker = 2, .id = 9, .client = &client, .proxy = &range, .port = 443,
        .path = target, .path_len = sizeof target - 1, .status = 403, .bytes_known = true,
        .bytes_in = 120, .bytes_out = 90, .reason = "origin not allowed", .detail = origin,
        .detail_len = sizeof origin - 1,
    };
    struct log_line l;
    assert_string_equal(line(&l, &e),
                        "<6>info  access id=2-9 client=2001:db8::1 proxy=10.0.0.0/8 port=443 "
                        "path=\"/x y\\x0a\" status=403 duration_ms=0 msgs_in=0 msgs_out=0 "
                        "bytes_in=120 bytes_out=90 close=- close_by=- "
                        "reason=\"origin not allowed\" detail=http://evil\\x01\n");
    e.proxy = &single; /* one address: no prefix length */
    assert_non_null(strstr(line(&l, &e), " proxy=10.1.2.3 port=443 "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(upgraded_connection_that_ended),
        cmocka_unit_test(unknown_values_are_dashes),
        cmocka_unit_test(proxy_entry_as_configured_and_client_bytes_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
