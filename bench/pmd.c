#include "pmd.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 7230 tchar. */
static bool is_tchar(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

struct cursor {
    const char *p, *end;
};

static void skip_ows(struct cursor *c)
{
    while (c->p < c->end && is_ows(*c->p))
        c->p++;
}

/* A token at the cursor: its start and length, 0 when there is none. */
static size_t token(struct cursor *c, const char **s)
{
    *s = c->p;
    while (c->p < c->end && is_tchar(*c->p))
        c->p++;
    return (size_t)(c->p - *s);
}

static bool named(const char *s, size_t n, const char *name)
{
    return n == strlen(name) && strncasecmp(s, name, n) == 0;
}

/* A window-bits value: 8..15, plain decimal (a quoted one is unquoted first). */
static int bits_value(struct cursor *c)
{
    bool quoted = c->p < c->end && *c->p == '"';
    if (quoted)
        c->p++;
    const char *s;
    size_t n = token(c, &s);
    if (quoted && (c->p == c->end || *c->p++ != '"'))
        return -1;
    if (n == 1 && s[0] >= '8' && s[0] <= '9')
        return s[0] - '0';
    if (n == 2 && s[0] == '1' && s[1] >= '0' && s[1] <= '5')
        return 10 + s[1] - '0';
    return -1;
}

int pmd_parse_response(const char *v, size_t len, struct pmd_params *p, char *err,
                       size_t errlen)
{
    *p = (struct pmd_params){ .server_bits = 15, .client_bits = 15 };
    struct cursor c = { v, v + len };
    const char *s;
    skip_ows(&c);
    size_t n = token(&c, &s);
    if (!named(s, n, "permessage-deflate")) {
        snprintf(err, errlen, "server chose extension '%.*s', not the permessage-deflate offered",
                 (int)len, v);
        return -1;
    }
    bool seen[4] = { false };
    static const char *const names[4] = { "server_no_context_takeover",
                                          "client_no_context_takeover", "server_max_window_bits",
                                          "client_max_window_bits" };
    for (;;) {
        skip_ows(&c);
        if (c.p == c.end)
            break;
        if (*c.p == ',') {
            snprintf(err, errlen, "server answered more than one extension: '%.*s'", (int)len, v);
            return -1;
        }
        if (*c.p++ != ';')
            goto malformed;
        skip_ows(&c);
        n = token(&c, &s);
        int k = 0;
        while (k < 4 && !named(s, n, names[k]))
            k++;
        if (k == 4) {
            snprintf(err, errlen, "server answered an unknown parameter '%.*s'", (int)n, s);
            return -1;
        }
        if (seen[k]) {
            snprintf(err, errlen, "server answered '%s' twice", names[k]);
            return -1;
        }
        seen[k] = true;
        skip_ows(&c);
        bool has_value = c.p < c.end && *c.p == '=';
        if (k < 2) {
            if (has_value) {
                snprintf(err, errlen, "'%s' takes no value", names[k]);
                return -1;
            }
            if (k == 0)
                p->server_no_takeover = true;
            else
                p->client_no_takeover = true;
            continue;
        }
        /* Both window sizes need a value in an answer (RFC 7692 7.1.2). */
        int bits = -1;
        if (has_value) {
            c.p++;
            skip_ows(&c);
            bits = bits_value(&c);
        }
        if (bits < 0) {
            snprintf(err, errlen, "'%s' needs a value from 8 to 15: '%.*s'", names[k], (int)len, v);
            return -1;
        }
        if (k == 2)
            p->server_bits = (uint8_t)bits;
        else
            p->client_bits = (uint8_t)bits;
    }
    p->on = true;
    return 0;
malformed:
    snprintf(err, errlen, "malformed Sec-WebSocket-Extensions answer '%.*s'", (int)len, v);
    return -1;
}
