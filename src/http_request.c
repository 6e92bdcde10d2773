#include "http_request.h"

#include <ctype.h>
#include <string.h>

/* RFC 9110 tchar: the characters of methods and header names. */
static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Field value bytes: visible ASCII, space, tab and obs-text; never other control bytes. */
static int is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7F);
}

struct cursor {
    const char *p;
    const char *end;
};

/* Each helper returns 1 on success, HTTP_INCOMPLETE when input ran out, HTTP_BAD on a bad byte. */
#define NEED(c) do { if ((c)->p == (c)->end) return HTTP_INCOMPLETE; } while (0)

static int expect_eol(struct cursor *c)
{
    NEED(c);
    if (*c->p == '\r') {
        c->p++;
        NEED(c);
    }
    if (*c->p != '\n')
        return HTTP_BAD;
    c->p++;
    return 1;
}

static int parse_request_line(struct cursor *c, struct http_request *req)
{
    /* Tolerate empty lines before the request line (RFC 9112 §2.2). */
    for (;;) {
        NEED(c);
        if (*c->p == '\r' || *c->p == '\n') {
            int rc = expect_eol(c);
            if (rc != 1)
                return rc;
        } else {
            break;
        }
    }
    req->method.p = c->p;
    for (;;) {
        NEED(c);
        if (*c->p == ' ')
            break;
        if (!is_tchar((unsigned char)*c->p))
            return HTTP_BAD;
        c->p++;
    }
    req->method.len = (size_t)(c->p - req->method.p);
    if (req->method.len == 0)
        return HTTP_BAD;
    c->p++;
    req->target.p = c->p;
    for (;;) {
        NEED(c);
        unsigned char ch = (unsigned char)*c->p;
        if (ch == ' ')
            break;
        if (ch <= 0x20 || ch >= 0x7F)
            return HTTP_BAD;
        c->p++;
    }
    req->target.len = (size_t)(c->p - req->target.p);
    if (req->target.len == 0)
        return HTTP_BAD;
    c->p++;
    static const char proto[] = "HTTP/1.";
    for (size_t i = 0; i < sizeof proto - 1; i++, c->p++) {
        NEED(c);
        if (*c->p != proto[i])
            return HTTP_BAD;
    }
    NEED(c);
    if (!isdigit((unsigned char)*c->p))
        return HTTP_BAD;
    req->minor_version = *c->p++ - '0';
    return expect_eol(c);
}

static int parse_header_line(struct cursor *c, struct http_header *h)
{
    h->name.p = c->p;
    for (;;) {
        NEED(c);
        if (*c->p == ':')
            break;
        if (!is_tchar((unsigned char)*c->p))
            return HTTP_BAD; /* includes obs-fold (a line starting with whitespace) */
        c->p++;
    }
    h->name.len = (size_t)(c->p - h->name.p);
    if (h->name.len == 0)
        return HTTP_BAD;
    c->p++;
    for (;;) {
        NEED(c);
        if (*c->p != ' ' && *c->p != '\t')
            break;
        c->p++;
    }
    h->value.p = c->p;
    for (;;) {
        NEED(c);
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '\r' || ch == '\n')
            break;
        if (!is_value_char(ch))
            return HTTP_BAD;
        c->p++;
    }
    const char *v_end = c->p;
    while (v_end > h->value.p && (v_end[-1] == ' ' || v_end[-1] == '\t'))
        v_end--;
    h->value.len = (size_t)(v_end - h->value.p);
    return expect_eol(c);
}

int http_parse_request(const char *buf, size_t len, struct http_request *req)
{
    struct cursor c = { buf, buf + len };
    req->header_count = 0;
    int rc = parse_request_line(&c, req);
    if (rc != 1)
        return rc;
    for (;;) {
        if (c.p == c.end)
            return HTTP_INCOMPLETE;
        if (*c.p == '\r' || *c.p == '\n') {
            rc = expect_eol(&c);
            if (rc != 1)
                return rc;
            return (int)(c.p - buf);
        }
        if (req->header_count == MAX_HEADER_COUNT)
            return HTTP_TOO_MANY_HEADERS;
        rc = parse_header_line(&c, &req->headers[req->header_count]);
        if (rc != 1)
            return rc;
        req->header_count++;
    }
}

int http_slice_eq(struct http_slice s, const char *lower)
{
    size_t n = strlen(lower);
    if (s.len != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)s.p[i]) != lower[i])
            return 0;
    return 1;
}

/* "http://" or "https://", in any case: the length of the prefix, or 0. */
static size_t http_scheme_len(struct http_slice t)
{
    for (size_t n = 4; n <= 5; n++) {
        struct http_slice scheme = { t.p, n };
        if (t.len >= n + 3 && http_slice_eq(scheme, n == 4 ? "http" : "https") &&
            memcmp(t.p + n, "://", 3) == 0)
            return n + 3;
    }
    return 0;
}

int http_target_split(struct http_slice target, struct http_slice *path,
                      struct http_slice *authority)
{
    const char *p = target.p, *end = target.p + target.len;
    *authority = (struct http_slice){ p, 0 };
    if (p < end && *p != '/') {
        size_t skip = http_scheme_len(target);
        if (!skip)
            return 0; /* asterisk form, authority form, another scheme, junk */
        p += skip;
        const char *a = p;
        while (p < end && *p != '/' && *p != '?')
            p++;
        *authority = (struct http_slice){ a, (size_t)(p - a) };
        /* RFC 9110 §4.2.4: userinfo in an http(s) URI is an error; the host is required. */
        if (authority->len == 0 || memchr(a, '@', authority->len))
            return 0;
    }
    const char *q = memchr(p, '?', (size_t)(end - p));
    *path = (struct http_slice){ p, (size_t)((q ? q : end) - p) };
    if (path->len == 0)
        *path = (struct http_slice){ "/", 1 }; /* http://host and http://host?x mean / */
    return 1;
}

int http_target_is(struct http_slice target, const char *path)
{
    struct http_slice have, authority;
    return http_target_split(target, &have, &authority) && have.len == strlen(path) &&
           memcmp(have.p, path, have.len) == 0;
}

int http_list_has_token(struct http_slice s, const char *lower_token)
{
    const char *p = s.p, *end = s.p + s.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *start = p;
        while (p < end && *p != ',')
            p++;
        const char *stop = p;
        while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t'))
            stop--;
        struct http_slice item = { start, (size_t)(stop - start) };
        if (item.len && http_slice_eq(item, lower_token))
            return 1;
    }
    return 0;
}
