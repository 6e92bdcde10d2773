/* The client address behind a trusted proxy: X-Forwarded-For and RFC 7239 Forwarded, the
 * right-most entry that is not a trusted proxy, and a fall-back (false) - never a crash or an
 * over-read - for anything malformed. */
#include "split.h"

#include "forwarded.h"
#include "http_request.h"
#include "ip_addr.h"

static struct ip_cidr trusted[2];

static int setup(void **state)
{
    (void)state;
    ip_cidr_parse("127.0.0.1", 9, &trusted[0]);
    ip_cidr_parse("10.0.0.0/8", 10, &trusted[1]);
    return 0;
}

/* Parses a request head with the given extra header lines (in a guarded copy) and returns the
 * client the header names, as text, or "peer" when the caller must use the peer address. */
static const char *client(enum proxy_header which, const char *headers)
{
    static char text[IP_ADDR_TEXT_LEN];
    char head[4096];
    int n = snprintf(head, sizeof head, "GET /ws HTTP/1.1\r\nHost: x\r\n%s\r\n", headers);
    assert_true(n > 0 && (size_t)n < sizeof head);
    struct http_request req;
    int rc = http_parse_request((const char *)guard_copy(head, (size_t)n), (size_t)n, &req);
    assert_int_equal(rc, n);
    struct ip_addr a;
    if (!forwarded_client(&req, which, trusted, 2, &a))
        return "peer";
    ip_addr_format(a, false, text);
    return text;
}

#define XFF PROXY_HEADER_X_FORWARDED_FOR
#define FWD PROXY_HEADER_FORWARDED

static void xff_rightmost_untrusted_entry_is_the_client(void **state)
{
    (void)state;
    assert_string_equal(client(XFF, "X-Forwarded-For: 192.0.2.1\r\n"), "192.0.2.1");
    /* A client may send its own header; the proxy appends what it saw. */
    assert_string_equal(client(XFF, "X-Forwarded-For: 6.6.6.6, 192.0.2.1\r\n"), "192.0.2.1");
    /* Trusted proxies on the way are skipped. */
    assert_string_equal(client(XFF, "X-Forwarded-For: 6.6.6.6, 192.0.2.1, 10.1.1.1, 127.0.0.1\r\n"),
                        "192.0.2.1");
    /* Several header lines are one list, in order. */
    assert_string_equal(client(XFF, "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 192.0.2.9\r\n"),
                        "192.0.2.9");
    assert_string_equal(client(XFF, "x-forwarded-for: 2001:db8::5\r\n"), "2001:db8::5");
    assert_string_equal(client(XFF, "X-Forwarded-For: [2001:db8::5]:4711\r\n"), "2001:db8::5");
    assert_string_equal(client(XFF, "X-Forwarded-For: 192.0.2.1:5555\r\n"), "192.0.2.1");
    assert_string_equal(client(XFF, "X-Forwarded-For: ::ffff:192.0.2.1\r\n"), "192.0.2.1");
    /* Empty list elements are allowed by the list syntax. */
    assert_string_equal(client(XFF, "X-Forwarded-For: , 192.0.2.1 ,\r\n"), "192.0.2.1");
    /* Everything trusted: the left-most. */
    assert_string_equal(client(XFF, "X-Forwarded-For: 10.0.0.5, 127.0.0.1\r\n"), "10.0.0.5");
    /* Garbage left of the client is the client's own business. */
    assert_string_equal(client(XFF, "X-Forwarded-For: not-an-ip, 192.0.2.1\r\n"), "192.0.2.1");
    /* The other header is not read. */
    assert_string_equal(client(XFF, "Forwarded: for=192.0.2.1\r\n"), "peer");
}

static void xff_malformed_falls_back_to_the_peer(void **state)
{
    (void)state;
    const char *bad[] = {
        "",                                        /* no header */
        "X-Forwarded-For: \r\n",                   /* empty */
        "X-Forwarded-For: ,\r\n",
        "X-Forwarded-For: unknown\r\n",
        "X-Forwarded-For: 192.0.2.1, garbage\r\n", /* right of the client: cannot be skipped */
        "X-Forwarded-For: 192.0.2.1, garbage, 127.0.0.1\r\n",
        "X-Forwarded-For: 192.0.2.1:\r\n",
        "X-Forwarded-For: 192.0.2.1:123456\r\n",
        "X-Forwarded-For: 192.0.2.1:80:80\r\n",
        "X-Forwarded-For: [192.0.2.1]\r\n",
        "X-Forwarded-For: [2001:db8::1\r\n",
        "X-Forwarded-For: [2001:db8::1]x\r\n",
        "X-Forwarded-For: 2001:db8::1%eth0\r\n",
        "X-Forwarded-For: 1.2.3.4.5\r\n",
        "X-Forwarded-For: 11111111111111111111111111111111111111111111111111111111111111\r\n",
        "X-Forwarded-For: 192.0.2.1 192.0.2.2\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (strcmp(client(XFF, bad[i]), "peer") != 0)
            fail_msg("\"%s\" gave %s", bad[i], client(XFF, bad[i]));
}

static void forwarded_for_parameter(void **state)
{
    (void)state;
    assert_string_equal(client(FWD, "Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43\r\n"),
                        "192.0.2.60");
    assert_string_equal(client(FWD, "Forwarded: For=\"[2001:db8:cafe::17]:4711\"\r\n"),
                        "2001:db8:cafe::17");
    assert_string_equal(client(FWD, "Forwarded: for=6.6.6.6, for=192.0.2.43\r\n"), "192.0.2.43");
    assert_string_equal(client(FWD, "Forwarded: for=192.0.2.43, for=127.0.0.1;proto=https\r\n"),
                        "192.0.2.43");
    assert_string_equal(client(FWD, "Forwarded: proto=http; for=\"192.0.2.7:80\"\r\n"),
                        "192.0.2.7");
    /* A comma inside a quoted value does not split the element. */
    assert_string_equal(client(FWD, "Forwarded: for=192.0.2.1;ext=\"a,b\"\r\n"), "192.0.2.1");
    assert_string_equal(client(FWD, "Forwarded: for=1.1.1.1\r\nForwarded: for=192.0.2.2\r\n"),
                        "192.0.2.2");
    assert_string_equal(client(FWD, "X-Forwarded-For: 192.0.2.1\r\n"), "peer");
}

static void forwarded_malformed_falls_back_to_the_peer(void **state)
{
    (void)state;
    const char *bad[] = {
        "Forwarded: for=unknown\r\n",
        "Forwarded: for=_hidden\r\n",
        "Forwarded: proto=http\r\n",                /* no for= */
        "Forwarded: for=192.0.2.1;for=192.0.2.2\r\n",
        "Forwarded: for=\"192.0.2.1\r\n",           /* unterminated quote */
        "Forwarded: for=\"\\\r\n",
        "Forwarded: for\r\n",
        "Forwarded: for=\"192.0.2.1\"x\r\n",
        "Forwarded: for=192.0.2.1, by=10.0.0.1\r\n", /* the right-most element names no client */
        "Forwarded: for=\"0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0001\"\r\n",
        "Forwarded: =\r\n",
        "Forwarded: ;;;\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (strcmp(client(FWD, bad[i]), "peer") != 0)
            fail_msg("\"%s\" gave %s", bad[i], client(FWD, bad[i]));
}

/* Every prefix of a header value, cut anywhere, gives an answer without reading past it. */
static void every_truncation_is_safe(void **state)
{
    (void)state;
    const char *values[] = {
        "for=\"[2001:db8:cafe::17]:4711\";proto=https, for=192.0.2.1;ext=\"a,\\\"b\"",
        "6.6.6.6, [2001:db8::5]:4711, 192.0.2.1:80, 127.0.0.1",
    };
    for (size_t v = 0; v < 2; v++) {
        size_t n = strlen(values[v]);
        for (size_t cut = 0; cut <= n; cut++) {
            struct http_request req = { .header_count = 1 };
            req.headers[0].name = (struct http_slice){ v ? "X-Forwarded-For" : "Forwarded",
                                                       v ? 15 : 9 };
            req.headers[0].value = (struct http_slice){ (const char *)guard_copy(values[v], cut),
                                                        cut };
            struct ip_addr a;
            forwarded_client(&req, v ? XFF : FWD, trusted, 2, &a);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(xff_rightmost_untrusted_entry_is_the_client),
        cmocka_unit_test(xff_malformed_falls_back_to_the_peer),
        cmocka_unit_test(forwarded_for_parameter),
        cmocka_unit_test(forwarded_malformed_falls_back_to_the_peer),
        cmocka_unit_test(every_truncation_is_safe),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
