/* http_parse_request: a stateless request-head parser, called again with the whole buffer as
 * bytes arrive. Every truncation is HTTP_INCOMPLETE; a malformed byte is HTTP_BAD the moment it
 * is in the buffer. Each input sits right before an unmapped page, so an over-read crashes. */
#include "split.h"

#include "http_request.h"

#define UPGRADE_REQUEST                                    \
    "GET /ws?x=1 HTTP/1.1\r\n"                             \
    "Host: example.com:8888\r\n"                           \
    "Upgrade: websocket\r\n"                               \
    "Connection: keep-alive, Upgrade\r\n"                  \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"      \
    "Sec-WebSocket-Version: 13\r\n"                        \
    "\r\n"

static int parse(const char *s, size_t n, struct http_request *req)
{
    return http_parse_request((const char *)guard_copy(s, n), n, req);
}

static int parse_str(const char *s, struct http_request *req)
{
    return parse(s, strlen(s), req);
}

static void assert_slice(struct http_slice s, const char *want)
{
    if (s.len != strlen(want) || memcmp(s.p, want, s.len) != 0)
        fail_msg("slice \"%.*s\", expected \"%s\"", (int)s.len, s.p, want);
}

/* ---- the caller's view: append bytes, re-parse the whole buffer --------------------------------- */

struct reparse {
    char buf[4096];
    size_t len;
    int rc;
    size_t bad_chunk_start, bad_chunk_end; /* the chunk after which HTTP_BAD was first returned */
    struct http_request req;
};

static bool reparse_chunk(void *ctx, uint8_t *chunk, size_t n, size_t pos)
{
    struct reparse *r = ctx;
    assert_true(r->len + n <= sizeof r->buf);
    memcpy(r->buf + r->len, chunk, n);
    r->len += n;
    r->rc = parse(r->buf, r->len, &r->req);
    if (r->rc == HTTP_BAD) {
        r->bad_chunk_start = pos;
        r->bad_chunk_end = pos + n;
    }
    return r->rc == HTTP_INCOMPLETE; /* a real caller stops at the first verdict */
}

/* ---- complete requests -------------------------------------------------------------------------- */

static void upgrade_request_fields(void **state)
{
    (void)state;
    struct http_request req;
    const char *s = UPGRADE_REQUEST;
    assert_int_equal(parse_str(s, &req), (int)strlen(s));
    assert_slice(req.method, "GET");
    assert_slice(req.target, "/ws?x=1");
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.header_count, 5);
    assert_slice(req.headers[0].name, "Host");
    assert_slice(req.headers[0].value, "example.com:8888");
    assert_slice(req.headers[2].name, "Connection");
    assert_slice(req.headers[2].value, "keep-alive, Upgrade");
    assert_slice(req.headers[4].name, "Sec-WebSocket-Version");
    assert_slice(req.headers[4].value, "13");
}

/* Pipelined bytes after the head (a first frame) are not part of it. */
static void head_length_excludes_pipelined_bytes(void **state)
{
    (void)state;
    static const char s[] = UPGRADE_REQUEST "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    struct http_request req;
    assert_int_equal(parse(s, sizeof s - 1, &req), (int)strlen(UPGRADE_REQUEST));
}

/* Whatever way the bytes arrive, every verdict before the last byte is HTTP_INCOMPLETE. */
static void every_truncation_incomplete(void **state)
{
    (void)state;
    static const char *const requests[] = {
        UPGRADE_REQUEST,
        "GET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.1\nHost: a\n\n",
        "OPTIONS * HTTP/1.1\r\nX:\r\n\r\n",
        "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
        size_t n = strlen(requests[i]);
        for (size_t k = 0; k < n; k++) {
            struct http_request req;
            if (parse(requests[i], k, &req) != HTTP_INCOMPLETE)
                fail_msg("request %zu truncated to %zu bytes is not HTTP_INCOMPLETE", i, k);
        }
        for_each_split(sp, n) {
            struct reparse r = { .len = 0 };
            split_feed(&sp, requests[i], n, reparse_chunk, &r);
            split_assert_int(&sp, r.rc, n);
        }
    }
}

static void lf_only_line_endings_accepted(void **state)
{
    (void)state;
    struct http_request req;
    const char *s = "GET /ws HTTP/1.1\nHost: a\nUpgrade: websocket\n\n";
    assert_int_equal(parse_str(s, &req), (int)strlen(s));
    assert_int_equal(req.header_count, 2);
    assert_slice(req.headers[1].value, "websocket");
    s = "GET /ws HTTP/1.1\r\nHost: a\nX: y\r\n\n";
    assert_int_equal(parse_str(s, &req), (int)strlen(s));
    assert_slice(req.headers[1].value, "y");
}

static void values_trimmed(void **state)
{
    (void)state;
    struct http_request req;
    const char *s = "GET / HTTP/1.1\r\n"
                    "A:value\r\n"
                    "B:  \t spaced  out \t \r\n"
                    "C:\r\n"
                    "D:    \r\n"
                    "E: \xC3\xA9t\xC3\xA9\r\n" /* obs-text is allowed in values */
                    "\r\n";
    assert_int_equal(parse_str(s, &req), (int)strlen(s));
    assert_int_equal(req.header_count, 5);
    assert_slice(req.headers[0].value, "value");
    assert_slice(req.headers[1].value, "spaced  out");
    assert_slice(req.headers[2].value, "");
    assert_slice(req.headers[3].value, "");
    assert_slice(req.headers[4].value, "\xC3\xA9t\xC3\xA9");
}

static void max_header_count_accepted(void **state)
{
    (void)state;
    char s[4096];
    size_t n = (size_t)snprintf(s, sizeof s, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < MAX_HEADER_COUNT; i++)
        n += (size_t)snprintf(s + n, sizeof s - n, "X-%d: %d\r\n", i, i);
    n += (size_t)snprintf(s + n, sizeof s - n, "\r\n");
    struct http_request req;
    assert_int_equal(parse(s, n, &req), (int)n);
    assert_int_equal(req.header_count, MAX_HEADER_COUNT);
    assert_slice(req.headers[MAX_HEADER_COUNT - 1].name, "X-63");
}

static void one_header_too_many(void **state)
{
    (void)state;
    char s[4096];
    size_t n = (size_t)snprintf(s, sizeof s, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < MAX_HEADER_COUNT + 1; i++)
        n += (size_t)snprintf(s + n, sizeof s - n, "X-%d: %d\r\n", i, i);
    n += (size_t)snprintf(s + n, sizeof s - n, "\r\n");
    struct http_request req;
    assert_int_equal(parse(s, n, &req), HTTP_TOO_MANY_HEADERS);
}

/* ---- malformed requests ------------------------------------------------------------------------- */

struct bad_case {
    const char *name;
    const char *text;
    size_t bad_at; /* the first byte that makes the head malformed */
};

/* Every prefix shorter than bad_at + 1 is HTTP_INCOMPLETE, every longer one HTTP_BAD; and fed in
 * any chunks, the verdict comes with the chunk that holds the bad byte. */
static void check_bad(const struct bad_case *c)
{
    size_t n = strlen(c->text);
    assert_true(c->bad_at < n);
    for (size_t k = 0; k <= n; k++) {
        struct http_request req;
        int rc = parse(c->text, k, &req);
        int want = k <= c->bad_at ? HTTP_INCOMPLETE : HTTP_BAD;
        if (rc != want)
            fail_msg("%s: %zu-byte prefix gave %d, expected %d", c->name, k, rc, want);
    }
    for_each_split(sp, n) {
        struct reparse r = { .len = 0 };
        split_feed(&sp, c->text, n, reparse_chunk, &r);
        split_assert_int(&sp, r.rc, HTTP_BAD);
        split_assert(&sp, r.bad_chunk_start <= c->bad_at && c->bad_at < r.bad_chunk_end);
    }
}

static void check_bad_cases(const struct bad_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        check_bad(&c[i]);
}

#define CHECK_BAD(cases) check_bad_cases(cases, sizeof cases / sizeof cases[0])

static void bad_method_chars_rejected(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        { "paren in method", "GE(T / HTTP/1.1\r\n\r\n", 2 },
        { "slash in method", "G/ET / HTTP/1.1\r\n\r\n", 1 },
        { "tab after method", "GET\t/ HTTP/1.1\r\n\r\n", 3 },
        { "NUL in method", "G\x01T / HTTP/1.1\r\n\r\n", 1 },
        { "TLS client hello", "\x16\x03\x01\x02\x01\x01\xfc\x03\x03", 0 },
        { "leading space", " GET / HTTP/1.1\r\n\r\n", 0 },
    };
    CHECK_BAD(cases);
}

static void bad_request_target_rejected(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        { "empty target", "GET  HTTP/1.1\r\n\r\n", 4 },
        { "control byte in target", "GET /w\x01s HTTP/1.1\r\n\r\n", 6 },
        { "DEL in target", "GET /w\x7Fs HTTP/1.1\r\n\r\n", 6 },
        { "high byte in target", "GET /\xC3\xA9 HTTP/1.1\r\n\r\n", 5 },
    };
    CHECK_BAD(cases);
}

static void bad_version_rejected(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        { "missing version", "GET /ws\r\n\r\n", 7 },
        { "missing version after space", "GET /ws \r\n\r\n", 8 },
        { "HTTP/2.0", "GET /ws HTTP/2.0\r\n\r\n", 13 },
        { "HTTP/0.9", "GET /ws HTTP/0.9\r\n\r\n", 13 },
        { "lower-case protocol", "GET /ws http/1.1\r\n\r\n", 8 },
        { "minor version not a digit", "GET /ws HTTP/1.x\r\n\r\n", 15 },
        { "two-digit minor version", "GET /ws HTTP/1.10\r\n\r\n", 16 },
        { "space after version", "GET /ws HTTP/1.1 \r\n\r\n", 16 },
        { "extra word after version", "GET /ws HTTP/1.1 x\r\n\r\n", 16 },
    };
    CHECK_BAD(cases);
}

static void bad_header_lines_rejected(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        { "obs-fold (space)", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 22 },
        { "obs-fold (tab)", "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", 22 },
        { "header without colon", "GET / HTTP/1.1\r\nHost example.com\r\n\r\n", 20 },
        { "header name only", "GET / HTTP/1.1\r\nHost\r\n\r\n", 20 },
        { "space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 20 },
        { "empty header name", "GET / HTTP/1.1\r\n: a\r\n\r\n", 16 },
        { "bad char in name", "GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", 18 },
    };
    CHECK_BAD(cases);
}

static void bare_cr_rejected(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        { "bare CR in value", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 21 },
        { "bare CR after request line", "GET / HTTP/1.1\rX: a\r\n\r\n", 15 },
        { "bare CR at end of head", "GET / HTTP/1.1\r\nX: a\r\n\rX", 23 },
        { "CR CR LF", "GET / HTTP/1.1\r\r\n\r\n", 15 },
    };
    CHECK_BAD(cases);
}

static void control_bytes_in_values_rejected(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        { "0x01 in value", "GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n", 20 },
        { "ESC in value", "GET / HTTP/1.1\r\nX: \x1b[31m\r\n\r\n", 19 },
        { "DEL in value", "GET / HTTP/1.1\r\nX: a\x7F\r\n\r\n", 20 },
        { "vertical tab in value", "GET / HTTP/1.1\r\nX: a\vb\r\n\r\n", 20 },
    };
    CHECK_BAD(cases);
    /* NUL stops strlen, so this one is checked by its length. */
    static const char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    for (size_t k = 0; k < sizeof nul - 1; k++) {
        struct http_request req;
        assert_int_equal(parse(nul, k, &req), k <= 20 ? HTTP_INCOMPLETE : HTTP_BAD);
    }
}

/* A tab inside a value is allowed (it is not a control byte for HTTP's purposes). */
static void tab_inside_value_accepted(void **state)
{
    (void)state;
    struct http_request req;
    const char *s = "GET / HTTP/1.1\r\nX: a\tb\r\n\r\n";
    assert_int_equal(parse_str(s, &req), (int)strlen(s));
    assert_slice(req.headers[0].value, "a\tb");
}

/* ---- comma lists -------------------------------------------------------------------------------- */

static int has(const char *list, const char *token)
{
    size_t n = strlen(list);
    struct http_slice s = { (const char *)guard_copy(list, n), n };
    return http_list_has_token(s, token);
}

static void list_has_token_with_spaces_and_case(void **state)
{
    (void)state;
    assert_true(has("Upgrade", "upgrade"));
    assert_true(has("UPGRADE", "upgrade"));
    assert_true(has("keep-alive, Upgrade", "upgrade"));
    assert_true(has("keep-alive,Upgrade", "upgrade"));
    assert_true(has("Upgrade, keep-alive", "upgrade"));
    assert_true(has("  upgrade  ", "upgrade"));
    assert_true(has("keep-alive ,\tupgrade\t, close", "upgrade"));
    assert_true(has(",,upgrade,,", "upgrade"));
    assert_true(has("websocket", "websocket"));
    assert_true(has("WebSocket, h2c", "websocket"));
}

static void list_has_token_needs_whole_token(void **state)
{
    (void)state;
    assert_false(has("", "upgrade"));
    assert_false(has(",", "upgrade"));
    assert_false(has("keep-alive", "upgrade"));
    assert_false(has("upgrade2", "upgrade"));
    assert_false(has("upgrad", "upgrade"));
    assert_false(has("xupgrade", "upgrade"));
    assert_false(has("up grade", "upgrade"));
    assert_false(has("keep-alive upgrade", "upgrade"));
    assert_false(has("websocket/13", "websocket"));
}

static void slice_eq_is_case_insensitive(void **state)
{
    (void)state;
    struct http_slice s = { "Sec-WebSocket-Key", 17 };
    assert_true(http_slice_eq(s, "sec-websocket-key"));
    assert_false(http_slice_eq(s, "sec-websocket-ke"));
    assert_false(http_slice_eq(s, "sec-websocket-keys"));
    struct http_slice empty = { "", 0 };
    assert_true(http_slice_eq(empty, ""));
}

/* ---- request targets ---------------------------------------------------------------------------- */

/* Splits target (copied before an unmapped page) and checks the path and authority. */
static void check_split(const char *target, const char *want_path, const char *want_authority)
{
    size_t n = strlen(target);
    struct http_slice t = { (const char *)guard_copy(target, n), n }, path, authority;
    if (!http_target_split(t, &path, &authority))
        fail_msg("%s: not split", target);
    if (path.len != strlen(want_path) || memcmp(path.p, want_path, path.len) != 0)
        fail_msg("%s: path '%.*s', expected '%s'", target, (int)path.len, path.p, want_path);
    if (authority.len != strlen(want_authority) ||
        memcmp(authority.p, want_authority, authority.len) != 0)
        fail_msg("%s: authority '%.*s', expected '%s'", target, (int)authority.len, authority.p,
                 want_authority);
}

static int splits(const char *target)
{
    size_t n = strlen(target);
    struct http_slice t = { (const char *)guard_copy(target, n), n }, path, authority;
    return http_target_split(t, &path, &authority);
}

static void origin_form_path_is_before_the_query(void **state)
{
    (void)state;
    check_split("/ws", "/ws", "");
    check_split("/ws?x=1", "/ws", "");
    check_split("/", "/", "");
    check_split("/?", "/", "");
    check_split("//host/ws", "//host/ws", "");
}

/* RFC 9112 §3.2.2: a server must accept the absolute form; its authority overrides Host. */
static void absolute_form_routes_on_its_path(void **state)
{
    (void)state;
    check_split("http://example.com/ws", "/ws", "example.com");
    check_split("http://127.0.0.1:8888/ws?x=1", "/ws", "127.0.0.1:8888");
    check_split("https://example.com/healthz", "/healthz", "example.com");
    check_split("HTTP://Example.COM/ws", "/ws", "Example.COM");
    check_split("HtTpS://[::1]:8443/metrics", "/metrics", "[::1]:8443");
    check_split("http://example.com", "/", "example.com");
    check_split("http://example.com?x", "/", "example.com");
    check_split("http://example.com/", "/", "example.com");
    check_split("http://example.com/a/b?c=/d", "/a/b", "example.com");
}

static void other_target_forms_do_not_split(void **state)
{
    (void)state;
    assert_false(splits("*"));                        /* asterisk form (OPTIONS) */
    assert_false(splits("example.com:443"));          /* authority form (CONNECT) */
    assert_false(splits("ws"));
    assert_false(splits("ws://example.com/ws"));      /* not an http(s) URI */
    assert_false(splits("ftp://example.com/ws"));
    assert_false(splits("http:/ws"));
    assert_false(splits("http:"));
    assert_false(splits("http://"));                  /* no host */
    assert_false(splits("http:///ws"));
    assert_false(splits("http://?x"));
    assert_false(splits("http://user@example.com/ws")); /* userinfo (RFC 9110 §4.2.4) */
    assert_false(splits("http://u:p@example.com/ws"));
    assert_false(splits("httpx://example.com/ws"));
}

static int target_is(const char *target, const char *path)
{
    size_t n = strlen(target);
    struct http_slice t = { (const char *)guard_copy(target, n), n };
    return http_target_is(t, path);
}

static void target_is_matches_whole_paths_in_both_forms(void **state)
{
    (void)state;
    assert_true(target_is("/ws?x", "/ws"));
    assert_true(target_is("http://h/ws?x", "/ws"));
    assert_true(target_is("http://h", "/"));
    assert_false(target_is("http://h/wsx", "/ws"));
    assert_false(target_is("http://h/w", "/ws"));
    assert_false(target_is("/WS", "/ws"));
    assert_false(target_is("*", "/"));
    assert_false(target_is("h:80", "/"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(upgrade_request_fields),
        cmocka_unit_test(head_length_excludes_pipelined_bytes),
        cmocka_unit_test(every_truncation_incomplete),
        cmocka_unit_test(lf_only_line_endings_accepted),
        cmocka_unit_test(values_trimmed),
        cmocka_unit_test(max_header_count_accepted),
        cmocka_unit_test(one_header_too_many),
        cmocka_unit_test(bad_method_chars_rejected),
        cmocka_unit_test(bad_request_target_rejected),
        cmocka_unit_test(bad_version_rejected),
        cmocka_unit_test(bad_header_lines_rejected),
        cmocka_unit_test(bare_cr_rejected),
        cmocka_unit_test(control_bytes_in_values_rejected),
        cmocka_unit_test(tab_inside_value_accepted),
        cmocka_unit_test(list_has_token_with_spaces_and_case),
        cmocka_unit_test(list_has_token_needs_whole_token),
        cmocka_unit_test(slice_eq_is_case_insensitive),
        cmocka_unit_test(origin_form_path_is_before_the_query),
        cmocka_unit_test(absolute_form_routes_on_its_path),
        cmocka_unit_test(other_target_forms_do_not_split),
        cmocka_unit_test(target_is_matches_whole_paths_in_both_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
