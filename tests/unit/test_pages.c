/* The operator pages: which path routes where (the WebSocket path always wins, --no-page turns
 * the console off) and the complete responses for GET, HEAD and other methods. */
#include "split.h"

#include "metrics.h"
#include "pages.h"

/* Parses a complete request head (kept until the next call). */
static const struct http_request *parse(const char *head)
{
    static struct http_request req;
    size_t n = strlen(head);
    int rc = http_parse_request((const char *)guard_copy(head, n), n, &req);
    if (rc != (int)n)
        fail_msg("test request does not parse (%d): %s", rc, head);
    return &req;
}

static enum page route(const char *method, const char *target, const char *ws_path, bool console)
{
    char head[256];
    snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: a\r\n\r\n", method, target);
    return page_route(parse(head), ws_path, console);
}

static void routes_by_path(void **state)
{
    (void)state;
    static const struct {
        const char *target;
        bool console;
        enum page want;
    } cases[] = {
        { "/", true, PAGE_CONSOLE },
        { "/?tab=log", true, PAGE_CONSOLE },
        { "/", false, PAGE_NONE },
        { "/healthz", true, PAGE_HEALTHZ },
        { "/healthz", false, PAGE_HEALTHZ },
        { "/healthz?probe=lb", true, PAGE_HEALTHZ },
        { "/metrics", true, PAGE_METRICS },
        { "/metrics", false, PAGE_METRICS },
        { "/ws", true, PAGE_NONE },
        { "/healthz/", true, PAGE_NONE },
        { "/HEALTHZ", true, PAGE_NONE },
        { "/metricsx", true, PAGE_NONE },
        { "/metric", true, PAGE_NONE },
        { "//", true, PAGE_NONE },
        { "/index.html", true, PAGE_NONE },
        /* The absolute form (RFC 9112 §3.2.2) routes on its path; no path means /. */
        { "http://127.0.0.1:8888/", true, PAGE_CONSOLE },
        { "http://127.0.0.1:8888", true, PAGE_CONSOLE },
        { "HTTPS://example.com?tab=log", true, PAGE_CONSOLE },
        { "http://example.com/healthz?probe=lb", true, PAGE_HEALTHZ },
        { "https://example.com/metrics", false, PAGE_METRICS },
        { "http://example.com/ws", true, PAGE_NONE },
        { "http://example.com/nope", true, PAGE_NONE },
        { "*", true, PAGE_NONE },
        { "example.com:80", true, PAGE_NONE },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum page got = route("GET", cases[i].target, "/ws", cases[i].console);
        if (got != cases[i].want)
            fail_msg("%s (console %d): page %d, expected %d", cases[i].target, cases[i].console,
                     got, cases[i].want);
    }
    /* The method does not route: the page answers 405 itself. */
    assert_int_equal(route("POST", "/metrics", "/ws", true), PAGE_METRICS);
    assert_int_equal(route("HEAD", "/", "/ws", true), PAGE_CONSOLE);
}

/* A --path that names a page path keeps it for the WebSocket. */
static void websocket_path_wins(void **state)
{
    (void)state;
    assert_int_equal(route("GET", "/", "/", true), PAGE_NONE);
    assert_int_equal(route("GET", "/healthz", "/healthz", true), PAGE_NONE);
    assert_int_equal(route("GET", "/metrics?x", "/metrics", true), PAGE_NONE);
    assert_int_equal(route("GET", "/metrics", "/healthz", true), PAGE_METRICS);
}

/* ---- responses ---------------------------------------------------------------------------------- */

struct response {
    struct buf out;
    int status;
    char head[512];
    const char *body;
    size_t body_len;
};

/* A one-process metrics region holding m, without process figures (they would change between
 * two reads): its main process is one that does not exist. */
static struct metrics_shared *region(const struct metrics *m)
{
    struct metrics_shared *sh = metrics_shared_map(0);
    assert_non_null(sh);
    sh->slot[0].m = *m;
    sh->main_pid = -1;
    return sh;
}

static void respond(struct response *r, enum page page, const char *method, const char *ws_path,
                    const struct metrics_shared *m)
{
    char req[128];
    snprintf(req, sizeof req, "%s /any HTTP/1.1\r\nHost: a\r\n\r\n", method);
    memset(r, 0, sizeof *r);
    assert_true(buf_append(&r->out, "before", 6)); /* appends after what is already queued */
    r->status = page_respond(page, parse(req), ws_path, m, &r->out);
    const char *all = (const char *)buf_head(&r->out);
    size_t len = buf_len(&r->out);
    assert_true(len > 6);
    assert_memory_equal(all, "before", 6);
    all += 6, len -= 6;
    const char *end = memmem(all, len, "\r\n\r\n", 4);
    assert_non_null(end);
    size_t head_len = (size_t)(end - all) + 4;
    assert_true(head_len < sizeof r->head);
    memcpy(r->head, all, head_len);
    r->body = all + head_len;
    r->body_len = len - head_len;
}

static bool has_header(const struct response *r, const char *line)
{
    return strstr(r->head, line) != NULL;
}

#define assert_header(r, line)                                                       \
    do {                                                                             \
        if (!has_header((r), (line)))                                                \
            fail_msg("missing \"%s\" in:\n%s", (line), (r)->head);                   \
    } while (0)

static size_t content_length(const struct response *r)
{
    const char *p = strstr(r->head, "\r\nContent-Length: ");
    assert_non_null(p);
    return (size_t)strtoull(p + 18, NULL, 10);
}

static void healthz_get_is_ok(void **state)
{
    (void)state;
    struct response r;
    respond(&r, PAGE_HEALTHZ, "GET", "/ws", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.head, "HTTP/1.1 200 OK\r\n"
                                "Server: websock/" WEBSOCK_VERSION "\r\n"
                                "Content-Type: text/plain; charset=utf-8\r\n"
                                "Content-Length: 3\r\n"
                                "Cache-Control: no-store\r\n"
                                "X-Content-Type-Options: nosniff\r\n"
                                "Connection: close\r\n\r\n");
    assert_int_equal(r.body_len, 3);
    assert_memory_equal(r.body, "ok\n", 3);
    buf_free(&r.out);
}

/* HEAD: the head GET would get, Content-Length included, and no body. */
static void head_is_get_without_body(void **state)
{
    (void)state;
    struct metrics_shared *m = region(&(struct metrics){ .accepted = 12 });
    for (enum page p = PAGE_CONSOLE; p <= PAGE_METRICS; p++) {
        struct response get, head;
        respond(&get, p, "GET", "/ws", m);
        respond(&head, p, "HEAD", "/ws", m);
        assert_int_equal(head.status, 200);
        assert_string_equal(head.head, get.head);
        assert_int_equal(head.body_len, 0);
        assert_int_equal(content_length(&head), get.body_len);
        buf_free(&get.out);
        buf_free(&head.out);
    }
    metrics_shared_unmap(m);
}

static void other_methods_405_allow_get_and_head(void **state)
{
    (void)state;
    static const char *const methods[] = { "POST", "PUT", "DELETE", "OPTIONS", "get", "Head" };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        struct response r;
        respond(&r, PAGE_METRICS, methods[i], "/ws", NULL);
        assert_int_equal(r.status, 405);
        assert_true(strncmp(r.head, "HTTP/1.1 405 Method Not Allowed\r\n", 33) == 0);
        assert_header(&r, "\r\nAllow: GET, HEAD\r\n");
        assert_header(&r, "\r\nConnection: close\r\n");
        assert_int_equal(content_length(&r), r.body_len);
        buf_free(&r.out);
    }
}

static void metrics_page_is_the_exposition(void **state)
{
    (void)state;
    struct metrics counts = { .open = 1, .upgrades = 4 };
    metrics_count_close(&counts, 4001);
    struct metrics_shared *m = region(&counts);
    struct response r;
    respond(&r, PAGE_METRICS, "GET", "/ws", m);
    assert_int_equal(r.status, 200);
    assert_header(&r, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n");
    assert_header(&r, "\r\nConnection: close\r\n");
    char want[16384];
    struct metrics_snapshot *s = metrics_snapshot_take(m);
    assert_non_null(s);
    size_t n = metrics_format(s, want, sizeof want);
    assert_int_equal(r.body_len, n);
    assert_int_equal(content_length(&r), n);
    assert_memory_equal(r.body, want, n);
    static const char line[] = "\nwebsock_closes_total{code=\"4001\"} 1\n";
    assert_non_null(memmem(r.body, r.body_len, line, sizeof line - 1));
    free(s);
    buf_free(&r.out);
    metrics_shared_unmap(m);
}

/* The console is the whole HTML page with --path in its meta tag, escaped for an attribute. */
static void console_carries_the_websocket_path(void **state)
{
    (void)state;
    static const struct { const char *path, *attr; } cases[] = {
        { "/ws", "<meta name=\"websock-path\" content=\"/ws\">" },
        { "/a\"<&'>b", "<meta name=\"websock-path\" content=\"/a&quot;&lt;&amp;&#39;&gt;b\">" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct response r;
        respond(&r, PAGE_CONSOLE, "GET", cases[i].path, NULL);
        assert_int_equal(r.status, 200);
        assert_header(&r, "\r\nContent-Type: text/html; charset=utf-8\r\n");
        assert_int_equal(content_length(&r), r.body_len);
        char *body = strndup(r.body, r.body_len);
        assert_non_null(body);
        assert_int_equal(strlen(body), r.body_len);
        assert_true(strncmp(body, "<!DOCTYPE html>", 15) == 0);
        assert_non_null(strstr(body, "</html>"));
        assert_non_null(strstr(body, cases[i].attr));
        assert_null(strstr(body, "{{"));
        assert_non_null(strstr(body, "new WebSocket("));
        free(body);
        buf_free(&r.out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routes_by_path),
        cmocka_unit_test(websocket_path_wins),
        cmocka_unit_test(healthz_get_is_ok),
        cmocka_unit_test(head_is_get_without_body),
        cmocka_unit_test(other_methods_405_allow_get_and_head),
        cmocka_unit_test(metrics_page_is_the_exposition),
        cmocka_unit_test(console_carries_the_websocket_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
