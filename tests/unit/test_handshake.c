/* The opening handshake (RFC 6455 §4.2, design §3): the accept key, key validation, the status
 * chosen for each kind of request, and the response written for it. */
#include "split.h"

#include "handshake.h"

#define WS_PATH "/ws"

#define GET_WS "GET /ws HTTP/1.1\r\n"
#define HOST "Host: example.com\r\n"
#define UPGRADE "Upgrade: websocket\r\n"
#define CONNECTION "Connection: Upgrade\r\n"
#define KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define VERSION "Sec-WebSocket-Version: 13\r\n"
#define END "\r\n"
#define UPGRADE_HEADERS HOST UPGRADE CONNECTION KEY VERSION

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
/* RFC 6455 §1.3: SHA-1 b37a4f2c c0624f16 90f64606 cf385945 b2bec4ea, base64-encoded. */
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* ---- Sec-WebSocket-Accept and the key ----------------------------------------------------------- */

static void rfc6455_example_accept_key(void **state)
{
    (void)state;
    char out[WS_ACCEPT_LEN + 1];
    memset(out, 'x', sizeof out);
    ws_accept_key(RFC_KEY, strlen(RFC_KEY), out);
    assert_string_equal(out, RFC_ACCEPT);
}

/* The example of the hybi drafts (and of most tutorials). */
static void hybi_example_accept_key(void **state)
{
    (void)state;
    char out[WS_ACCEPT_LEN + 1];
    ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", 24, out);
    assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

/* Only key_len bytes are hashed: the key is a slice of the request buffer, not a C string. */
static void accept_key_reads_only_key_len_bytes(void **state)
{
    (void)state;
    char out[WS_ACCEPT_LEN + 1];
    ws_accept_key(RFC_KEY "\r\nSec-WebSocket-Version: 13", strlen(RFC_KEY), out);
    assert_string_equal(out, RFC_ACCEPT);
}

static int key_ok(const char *key)
{
    size_t n = strlen(key);
    struct http_slice s = { (const char *)guard_copy(key, n), n };
    return ws_key_is_valid(s);
}

static void key_valid_when_16_bytes_of_base64(void **state)
{
    (void)state;
    assert_true(key_ok(RFC_KEY));
    assert_true(key_ok("AAAAAAAAAAAAAAAAAAAAAA=="));
    assert_true(key_ok("/////////////////////w=="));
    assert_true(key_ok("+++++++++++++++++++++Q=="));
    assert_true(key_ok("x3JJHMbDL1EzLkh9GBhXDw=="));
}

static void key_invalid_edge_cases(void **state)
{
    (void)state;
    assert_false(key_ok(""));
    assert_false(key_ok("dGhlIHNhbXBsZSBub25jZQ="));    /* 23 chars */
    assert_false(key_ok("dGhlIHNhbXBsZSBub25jZQ"));     /* no padding */
    assert_false(key_ok("dGhlIHNhbXBsZSBub25jZQ==="));  /* 25 chars */
    assert_false(key_ok("dGhlIHNhbXBsZSBub25jZQ==A"));  /* data after padding */
    assert_false(key_ok("dGhlIHNhbXBsZSBub25jZQA="));   /* 17 bytes */
    assert_false(key_ok("dGhlIHNhbXBsZSBub25jZQAA"));   /* 18 bytes */
    assert_false(key_ok("dGhlIHNhbXBsZSBub25j===="));   /* 15 bytes and too much padding */
    assert_false(key_ok("dGhlIHNhbXBsZSB=b25jZQ=="));   /* padding in the middle */
    assert_false(key_ok("dGhlIHNhbXBsZSBub25jZ-=="));   /* URL-safe alphabet */
    assert_false(key_ok("dGhlIHNhbXBsZSBub25jZ_=="));
    assert_false(key_ok("dGhlIHNhbXBsZSBub25 ZQ=="));   /* space inside */
    assert_false(key_ok("dGhlIHNhbXBsZSBub25jZ*=="));
    assert_false(key_ok("dGhlIHNhbXBsZSBub25jZ\x80=="));
    assert_false(key_ok("dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==")); /* two keys */
}

/* ---- handshake_evaluate ------------------------------------------------------------------------- */

/* Parses text (which must be a complete head) and evaluates it. */
static void evaluate(const char *text, struct handshake *hs)
{
    static struct http_request req;
    size_t n = strlen(text);
    int rc = http_parse_request((const char *)guard_copy(text, n), n, &req);
    if (rc != (int)n)
        fail_msg("test request does not parse (%d): %s", rc, text);
    memset(hs, 0, sizeof *hs);
    handshake_evaluate(&req, WS_PATH, hs);
    assert_non_null(hs->why);
}

struct status_case {
    const char *name;
    const char *request;
    int status;
};

static void check_statuses(const struct status_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct handshake hs;
        evaluate(c[i].request, &hs);
        if (hs.status != c[i].status)
            fail_msg("%s: status %d (%s), expected %d", c[i].name, hs.status, hs.why,
                     c[i].status);
    }
}

#define CHECK_STATUSES(cases) check_statuses(cases, sizeof cases / sizeof cases[0])

static void valid_upgrade_101(void **state)
{
    (void)state;
    static const struct status_case cases[] = {
        { "canonical", GET_WS UPGRADE_HEADERS END, 101 },
        { "query string on the path", "GET /ws?token=abc HTTP/1.1\r\n" UPGRADE_HEADERS END, 101 },
        { "header names and tokens in any case",
          GET_WS "host: a\r\nUPGRADE: WebSocket\r\nconnection: UPGRADE\r\n"
                 "sec-websocket-key: " RFC_KEY "\r\nSEC-WEBSOCKET-VERSION: 13\r\n" END, 101 },
        { "Connection is a list", GET_WS HOST UPGRADE "Connection: keep-alive, Upgrade\r\n" KEY
          VERSION END, 101 },
        { "Connection split over two headers", GET_WS HOST UPGRADE "Connection: keep-alive\r\n"
          CONNECTION KEY VERSION END, 101 },
        { "Content-Length: 0 is no body", GET_WS UPGRADE_HEADERS "Content-Length: 0\r\n" END, 101 },
        { "extensions and subprotocols offered", GET_WS UPGRADE_HEADERS
          "Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Protocol: chat\r\n" END,
          101 },
        { "absolute form", "GET http://example.com/ws HTTP/1.1\r\n" UPGRADE_HEADERS END, 101 },
        { "absolute form with port, query, upper-case scheme",
          "GET HTTPS://other.example:8443/ws?x=1 HTTP/1.1\r\n" UPGRADE_HEADERS END, 101 },
        { "LF-only line endings", "GET /ws HTTP/1.1\nHost: a\nUpgrade: websocket\n"
          "Connection: Upgrade\nSec-WebSocket-Key: " RFC_KEY "\nSec-WebSocket-Version: 13\n\n",
          101 },
    };
    CHECK_STATUSES(cases);
    struct handshake hs;
    evaluate(GET_WS UPGRADE_HEADERS END, &hs);
    assert_string_equal(hs.accept, RFC_ACCEPT);
}

/* handshake_evaluate knows only the WebSocket path: the server routes the operator pages (/,
 * /healthz, /metrics) before it asks (see test_pages.c), so here they are unknown paths too. */
static void wrong_path_404(void **state)
{
    (void)state;
    static const struct status_case cases[] = {
        { "root", "GET / HTTP/1.1\r\n" UPGRADE_HEADERS END, 404 },
        { "healthz", "GET /healthz HTTP/1.1\r\n" UPGRADE_HEADERS END, 404 },
        { "trailing slash", "GET /ws/ HTTP/1.1\r\n" UPGRADE_HEADERS END, 404 },
        { "longer name", "GET /wss HTTP/1.1\r\n" UPGRADE_HEADERS END, 404 },
        { "prefix only", "GET /w HTTP/1.1\r\n" UPGRADE_HEADERS END, 404 },
        { "case differs", "GET /WS HTTP/1.1\r\n" UPGRADE_HEADERS END, 404 },
        { "absolute form, other path", "GET http://example.com/wsx HTTP/1.1\r\n"
          UPGRADE_HEADERS END, 404 },
        { "absolute form without a path is /", "GET http://example.com HTTP/1.1\r\n"
          UPGRADE_HEADERS END, 404 },
        /* The path decides before the version: README promises 404 for unknown paths. */
        { "HTTP/1.0, unknown path", "GET /nope HTTP/1.0\r\n\r\n", 404 },
        { "HTTP/1.0, unknown path, upgrade headers", "GET /nope HTTP/1.0\r\n" UPGRADE_HEADERS
          END, 404 },
    };
    CHECK_STATUSES(cases);
}

static void method_not_get_405(void **state)
{
    (void)state;
    static const struct status_case cases[] = {
        { "POST", "POST /ws HTTP/1.1\r\n" UPGRADE_HEADERS END, 405 },
        { "HEAD", "HEAD /ws HTTP/1.1\r\n" UPGRADE_HEADERS END, 405 },
        { "methods are case-sensitive", "get /ws HTTP/1.1\r\n" UPGRADE_HEADERS END, 405 },
        { "GETX", "GETX /ws HTTP/1.1\r\n" UPGRADE_HEADERS END, 405 },
        { "OPTIONS * (asterisk form)", "OPTIONS * HTTP/1.1\r\n" HOST END, 405 },
        { "CONNECT (authority form)", "CONNECT example.com:443 HTTP/1.1\r\n" HOST END, 405 },
    };
    CHECK_STATUSES(cases);
}

static void malformed_upgrade_400(void **state)
{
    (void)state;
    static const struct status_case cases[] = {
        { "missing Host", GET_WS UPGRADE CONNECTION KEY VERSION END, 400 },
        { "duplicate Host", GET_WS HOST HOST UPGRADE CONNECTION KEY VERSION END, 400 },
        { "missing Connection", GET_WS HOST UPGRADE KEY VERSION END, 400 },
        { "Connection without upgrade", GET_WS HOST UPGRADE "Connection: keep-alive\r\n" KEY
          VERSION END, 400 },
        { "Connection: upgrades is not upgrade", GET_WS HOST UPGRADE "Connection: upgrades\r\n"
          KEY VERSION END, 400 },
        { "missing key", GET_WS HOST UPGRADE CONNECTION VERSION END, 400 },
        { "key too short", GET_WS HOST UPGRADE CONNECTION "Sec-WebSocket-Key: abc\r\n" VERSION
          END, 400 },
        { "key of 17 bytes", GET_WS HOST UPGRADE CONNECTION
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQA=\r\n" VERSION END, 400 },
        { "duplicate key", GET_WS HOST UPGRADE CONNECTION KEY KEY VERSION END, 400 },
        { "Content-Length non-zero", GET_WS UPGRADE_HEADERS "Content-Length: 5\r\n" END, 400 },
        { "Transfer-Encoding", GET_WS UPGRADE_HEADERS "Transfer-Encoding: chunked\r\n" END, 400 },
        { "HTTP/1.0", "GET /ws HTTP/1.0\r\n" UPGRADE_HEADERS END, 400 },
        { "HTTP/1.0, plain GET of the WebSocket path", "GET /ws HTTP/1.0\r\n\r\n", 400 },
        { "GET of the asterisk form", "GET * HTTP/1.1\r\n" UPGRADE_HEADERS END, 400 },
        { "GET of the authority form", "GET example.com:80 HTTP/1.1\r\n" UPGRADE_HEADERS END,
          400 },
        { "absolute form of another scheme", "GET ws://example.com/ws HTTP/1.1\r\n"
          UPGRADE_HEADERS END, 400 },
        { "absolute form with userinfo", "GET http://u@example.com/ws HTTP/1.1\r\n"
          UPGRADE_HEADERS END, 400 },
        { "absolute form still needs Host", "GET http://example.com/ws HTTP/1.1\r\n"
          UPGRADE CONNECTION KEY VERSION END, 400 },
    };
    CHECK_STATUSES(cases);
}

static void not_a_websocket_upgrade_426(void **state)
{
    (void)state;
    static const struct status_case cases[] = {
        { "plain GET of the WebSocket path", GET_WS HOST END, 426 },
        { "missing Upgrade", GET_WS HOST CONNECTION KEY VERSION END, 426 },
        { "Upgrade: h2c", GET_WS HOST "Upgrade: h2c\r\n" CONNECTION KEY VERSION END, 426 },
        { "missing version", GET_WS HOST UPGRADE CONNECTION KEY END, 426 },
        { "version 8", GET_WS HOST UPGRADE CONNECTION KEY "Sec-WebSocket-Version: 8\r\n" END,
          426 },
        { "version 14", GET_WS HOST UPGRADE CONNECTION KEY "Sec-WebSocket-Version: 14\r\n" END,
          426 },
        { "version 130", GET_WS HOST UPGRADE CONNECTION KEY "Sec-WebSocket-Version: 130\r\n"
          END, 426 },
    };
    CHECK_STATUSES(cases);
}

/* ---- the Origin policy --------------------------------------------------------------------------- */

#define NO_ALLOW ((const char *const[]){ NULL })

/* evaluate, then the Origin policy with the --allow-origin values in allow. */
static int origin_status(const char *text, const char *const *allow, size_t n_allow,
                         struct handshake *hs)
{
    static struct http_request req;
    size_t n = strlen(text);
    int rc = http_parse_request((const char *)guard_copy(text, n), n, &req);
    if (rc != (int)n)
        fail_msg("test request does not parse (%d): %s", rc, text);
    handshake_evaluate(&req, WS_PATH, hs);
    handshake_check_origin(&req, allow, n_allow, hs);
    return hs->status;
}

struct origin_case {
    const char *host;    /* the Host header's value */
    const char *origin;  /* Origin header's value; NULL: no Origin header */
    int status;
};

static void check_origins(const struct origin_case *c, size_t n, const char *const *allow,
                          size_t n_allow)
{
    for (size_t i = 0; i < n; i++) {
        char text[512];
        snprintf(text, sizeof text, "GET /ws HTTP/1.1\r\nHost: %s\r\n%s%s%s" UPGRADE CONNECTION
                 KEY VERSION END, c[i].host, c[i].origin ? "Origin: " : "",
                 c[i].origin ? c[i].origin : "", c[i].origin ? "\r\n" : "");
        struct handshake hs;
        int status = origin_status(text, allow, n_allow, &hs);
        if (status != c[i].status)
            fail_msg("Host %s, Origin %s, %zu --allow-origin: status %d (%s), expected %d",
                     c[i].host, c[i].origin ? c[i].origin : "(none)", n_allow, status, hs.why,
                     c[i].status);
        if (status == 403 && (hs.detail.len != strlen(c[i].origin) ||
                              memcmp(hs.detail.p, c[i].origin, hs.detail.len) != 0))
            fail_msg("Origin %s: the refusal names '%.*s'", c[i].origin, (int)hs.detail.len,
                     hs.detail.p);
    }
}

#define CHECK_ORIGINS(cases, allow) \
    check_origins(cases, sizeof cases / sizeof cases[0], allow, \
                  sizeof allow / sizeof allow[0] - 1)

/* The default: not a browser (no Origin), or the page's own origin, which the console at / is. */
static void default_admits_no_origin_and_the_same_origin(void **state)
{
    (void)state;
    static const struct origin_case cases[] = {
        { "example.com", NULL, 101 },
        { "127.0.0.1:8888", NULL, 101 },
        { "example.com", "http://example.com", 101 },
        { "127.0.0.1:8888", "http://127.0.0.1:8888", 101 },
        { "[::1]:8888", "http://[::1]:8888", 101 },
        { "Example.COM", "http://example.com", 101 },          /* hosts without case */
        { "example.com", "HTTP://EXAMPLE.COM", 101 },
        { "example.com", "https://example.com", 101 },         /* behind a TLS proxy */
        { "example.com", "http://example.com:80", 101 },       /* default ports filled in */
        { "example.com:80", "http://example.com", 101 },
        { "example.com", "https://example.com:443", 101 },
        { "example.com:443", "https://example.com", 101 },
        { "example.com:8443", "https://example.com:8443", 101 },
    };
    CHECK_ORIGINS(cases, NO_ALLOW);
}

/* Cross-site WebSocket hijacking: a page elsewhere must not use the visitor's browser. */
static void default_refuses_other_origins_403(void **state)
{
    (void)state;
    static const struct origin_case cases[] = {
        { "example.com", "http://evil.test", 403 },
        { "example.com", "http://example.com.evil.test", 403 },
        { "example.com", "http://evil.test.example.com", 403 },
        { "example.com", "http://example.co", 403 },
        { "example.com", "http://example.com:8080", 403 },     /* another port, another origin */
        { "example.com:8080", "http://example.com", 403 },
        { "example.com:80", "https://example.com", 403 },
        { "example.com", "null", 403 },                       /* sandboxed frames, file: pages */
        { "example.com", "", 403 },
        { "example.com", "example.com", 403 },
        { "example.com", "http://example.com/", 403 },
        { "example.com", "http://user@example.com", 403 },
        { "example.com", "ws://example.com", 403 },            /* not a page's origin */
        { "example.com", "file://example.com", 403 },
        { "example.com", "http://example.com http://evil.test", 403 },
        { "[::1]:8888", "http://[::2]:8888", 403 },
        { "[::1]:8888", "http://::1:8888", 403 },
    };
    CHECK_ORIGINS(cases, NO_ALLOW);
}

/* RFC 9112 §3.2.2: the absolute form's authority is the host the request went to, not Host. */
static void absolute_form_authority_is_the_same_origin(void **state)
{
    (void)state;
    struct handshake hs;
    assert_int_equal(origin_status("GET http://app.test:9/ws HTTP/1.1\r\nHost: other.test\r\n"
                                   "Origin: http://app.test:9\r\n" UPGRADE CONNECTION KEY VERSION
                                   END, NO_ALLOW, 0, &hs), 101);
    assert_int_equal(origin_status("GET http://app.test:9/ws HTTP/1.1\r\nHost: other.test\r\n"
                                   "Origin: http://other.test\r\n" UPGRADE CONNECTION KEY VERSION
                                   END, NO_ALLOW, 0, &hs), 403);
}

static void more_than_one_origin_403(void **state)
{
    (void)state;
    struct handshake hs;
    const char *twice = "GET /ws HTTP/1.1\r\nHost: a.test\r\nOrigin: http://a.test\r\n"
                        "Origin: http://a.test\r\n" UPGRADE CONNECTION KEY VERSION END;
    assert_int_equal(origin_status(twice, NO_ALLOW, 0, &hs), 403);
    const char *const any[] = { "*" };
    assert_int_equal(origin_status(twice, any, 1, &hs), 101);
}

static void allow_origin_admits_listed_origins_exactly(void **state)
{
    (void)state;
    static const char *const allow[] = { "https://app.example.org, http://tools.test:8080",
                                         "HTTP://Other.TEST", NULL };
    static const struct origin_case cases[] = {
        { "ws.example.org", "https://app.example.org", 101 },
        { "ws.example.org", "https://APP.example.org:443", 101 },
        { "ws.example.org", "http://tools.test:8080", 101 },
        { "ws.example.org", "http://other.test", 101 },       /* from the second flag */
        { "ws.example.org", "http://other.test:80", 101 },
        { "ws.example.org", "http://ws.example.org", 101 },   /* still the same origin */
        { "ws.example.org", NULL, 101 },                      /* still no Origin */
        { "ws.example.org", "http://app.example.org", 403 },  /* scheme differs */
        { "ws.example.org", "https://app.example.org:8443", 403 },
        { "ws.example.org", "https://example.org", 403 },
        { "ws.example.org", "http://tools.test", 403 },
        { "ws.example.org", "null", 403 },
        { "ws.example.org", "https://evil.test", 403 },
    };
    CHECK_ORIGINS(cases, allow);
}

static void allow_origin_null_and_any(void **state)
{
    (void)state;
    static const char *const null_listed[] = { "https://a.test,null", NULL };
    static const struct origin_case with_null[] = {
        { "ws.test", "null", 101 },
        { "ws.test", "https://a.test", 101 },
        { "ws.test", "https://b.test", 403 },
    };
    CHECK_ORIGINS(with_null, null_listed);
    static const char *const star[] = { "https://a.test, *", NULL };
    static const struct origin_case any[] = {
        { "ws.test", "https://evil.test", 101 },
        { "ws.test", "null", 101 },
        { "ws.test", "", 101 },
        { "ws.test", NULL, 101 },
    };
    CHECK_ORIGINS(any, star);
}

/* Only an otherwise valid upgrade meets the Origin policy: other errors keep their status. */
static void origin_is_checked_after_the_upgrade_is_valid(void **state)
{
    (void)state;
    struct handshake hs;
    assert_int_equal(origin_status("GET /nope HTTP/1.1\r\nOrigin: http://evil.test\r\n"
                                   UPGRADE_HEADERS END, NO_ALLOW, 0, &hs), 404);
    assert_int_equal(origin_status(GET_WS HOST "Origin: http://evil.test\r\n" END, NO_ALLOW, 0,
                                   &hs), 426);
}

static void allow_origin_values_are_checked(void **state)
{
    (void)state;
    static const char *const valid[] = {
        "*", "null", "https://a.test", "http://a.test:8080", "HTTPS://A.TEST",
        "https://a.test,http://b.test", " https://a.test , null ", "http://[::1]:8888",
        "http://127.0.0.1:8888", "chrome-extension://abcdefghijklmnop", "http://a.test:",
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        if (!origin_list_is_valid(valid[i]))
            fail_msg("'%s' refused", valid[i]);
    static const char *const invalid[] = {
        "", " ", ",", "https://a.test,", ",https://a.test", "https://a.test,,null", "a.test",
        "https://", "https://a.test/", "https://a.test/app", "https://a.test?x",
        "https://a.test:99999", "https://a.test:8o", "https://a.test:123456",
        "https://user@a.test", "*.example.org", "https://*.example.org", "://a.test",
        "1http://a.test", "http://[::1", "http://[::1]x", "http://a.test:80:80",
        "https://a.test https://b.test", "nul",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        if (origin_list_is_valid(invalid[i]))
            fail_msg("'%s' accepted", invalid[i]);
}

/* ---- handshake_response ------------------------------------------------------------------------- */

/* Writes the response for hs and checks what every response has: one status line, a Server
 * header, a blank line ending the head, and (for errors) a body of exactly Content-Length. */
static const char *respond(const struct handshake *hs, int status, const char *reason)
{
    static char out[512];
    memset(out, 0, sizeof out);
    size_t n = handshake_response(hs, out, sizeof out);
    assert_true(n > 0 && n < sizeof out);
    assert_int_equal(strlen(out), n);
    char line[64];
    snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, reason);
    if (strncmp(out, line, strlen(line)) != 0)
        fail_msg("status line of:\n%s\nexpected: %s", out, line);
    assert_non_null(strstr(out, "\r\nServer: websock/"));
    const char *end = strstr(out, "\r\n\r\n");
    assert_non_null(end);
    const char *body = end + 4;
    if (status == 101) {
        assert_int_equal(*body, '\0');
    } else {
        const char *cl = strstr(out, "\r\nContent-Length: ");
        assert_non_null(cl);
        assert_true(cl < end);
        assert_int_equal(strtoul(cl + 18, NULL, 10), strlen(body));
        assert_true(strlen(body) > 0);
    }
    return out;
}

/* The header block of a response, without the status line and the body. */
static int has_header(const char *response, const char *line)
{
    const char *end = strstr(response, "\r\n\r\n");
    const char *at = strstr(response, line);
    return at && at < end + 2 && at > response && at[-1] == '\n';
}

static void response_101(void **state)
{
    (void)state;
    struct handshake hs;
    evaluate(GET_WS UPGRADE_HEADERS
             "Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Protocol: chat\r\n" END,
             &hs);
    const char *out = respond(&hs, 101, "Switching Protocols");
    assert_true(has_header(out, "Upgrade: websocket\r\n"));
    assert_true(has_header(out, "Connection: Upgrade\r\n"));
    assert_true(has_header(out, "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"));
    assert_false(has_header(out, "Connection: close\r\n"));
    assert_null(strstr(out, "Content-Length"));
    /* What we do not implement is not echoed. */
    assert_null(strstr(out, "Sec-WebSocket-Extensions"));
    assert_null(strstr(out, "Sec-WebSocket-Protocol"));
}

static void response_400_closes(void **state)
{
    (void)state;
    struct handshake hs;
    evaluate(GET_WS UPGRADE CONNECTION KEY VERSION END, &hs);
    const char *out = respond(&hs, 400, "Bad Request");
    assert_true(has_header(out, "Connection: close\r\n"));
    assert_null(strstr(out, "Sec-WebSocket-Accept"));
}

static void response_404_closes(void **state)
{
    (void)state;
    struct handshake hs;
    evaluate("GET /nope HTTP/1.1\r\n" UPGRADE_HEADERS END, &hs);
    const char *out = respond(&hs, 404, "Not Found");
    assert_true(has_header(out, "Connection: close\r\n"));
}

static void response_405_allows_get(void **state)
{
    (void)state;
    struct handshake hs;
    evaluate("POST /ws HTTP/1.1\r\n" UPGRADE_HEADERS END, &hs);
    const char *out = respond(&hs, 405, "Method Not Allowed");
    assert_true(has_header(out, "Allow: GET\r\n"));
    assert_true(has_header(out, "Connection: close\r\n"));
}

static void response_403_closes(void **state)
{
    (void)state;
    struct handshake hs;
    origin_status(GET_WS UPGRADE_HEADERS "Origin: http://evil.test\r\n" END, NO_ALLOW, 0, &hs);
    const char *out = respond(&hs, 403, "Forbidden");
    assert_true(has_header(out, "Connection: close\r\n"));
    assert_null(strstr(out, "evil.test")); /* the refused value goes to the log only */
}

static void response_426_names_version_13(void **state)
{
    (void)state;
    struct handshake hs;
    evaluate(GET_WS HOST UPGRADE CONNECTION KEY "Sec-WebSocket-Version: 8\r\n" END, &hs);
    const char *out = respond(&hs, 426, "Upgrade Required");
    assert_true(has_header(out, "Sec-WebSocket-Version: 13\r\n"));
    assert_true(has_header(out, "Connection: close\r\n"));
}

/* Statuses decided before a request could be parsed. */
static void response_for_early_errors(void **state)
{
    (void)state;
    static const struct { int status; const char *reason; } cases[] = {
        { 400, "Bad Request" },
        { 408, "Request Timeout" },
        { 431, "Request Header Fields Too Large" },
        { 503, "Service Unavailable" },
        { 500, "Internal Server Error" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct handshake hs;
        handshake_error(&hs, cases[i].status, "request head too large");
        assert_int_equal(hs.status, cases[i].status);
        const char *out = respond(&hs, cases[i].status, cases[i].reason);
        assert_true(has_header(out, "Connection: close\r\n"));
        assert_false(has_header(out, "Sec-WebSocket-Version: 13\r\n"));
        assert_false(has_header(out, "Allow: GET\r\n"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc6455_example_accept_key),
        cmocka_unit_test(hybi_example_accept_key),
        cmocka_unit_test(accept_key_reads_only_key_len_bytes),
        cmocka_unit_test(key_valid_when_16_bytes_of_base64),
        cmocka_unit_test(key_invalid_edge_cases),
        cmocka_unit_test(valid_upgrade_101),
        cmocka_unit_test(wrong_path_404),
        cmocka_unit_test(method_not_get_405),
        cmocka_unit_test(malformed_upgrade_400),
        cmocka_unit_test(not_a_websocket_upgrade_426),
        cmocka_unit_test(default_admits_no_origin_and_the_same_origin),
        cmocka_unit_test(default_refuses_other_origins_403),
        cmocka_unit_test(absolute_form_authority_is_the_same_origin),
        cmocka_unit_test(more_than_one_origin_403),
        cmocka_unit_test(allow_origin_admits_listed_origins_exactly),
        cmocka_unit_test(allow_origin_null_and_any),
        cmocka_unit_test(origin_is_checked_after_the_upgrade_is_valid),
        cmocka_unit_test(allow_origin_values_are_checked),
        cmocka_unit_test(response_101),
        cmocka_unit_test(response_400_closes),
        cmocka_unit_test(response_404_closes),
        cmocka_unit_test(response_405_allows_get),
        cmocka_unit_test(response_403_closes),
        cmocka_unit_test(response_426_names_version_13),
        cmocka_unit_test(response_for_early_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
