/* permessage-deflate negotiation: an RFC 6455 §9.1 extension-list scanner and the RFC 7692 §7
 * parameter rules, answered the way the server's codec wants them (see deflate_offer.h). */
#include "deflate_offer.h"

#include <string.h>

/* The longest answer: every parameter, two-digit server bits. */
_Static_assert(sizeof("permessage-deflate; server_no_context_takeover; client_no_context_takeover"
                      "; server_max_window_bits=15; client_max_window_bits=10")
                   <= DEFLATE_RESPONSE_MAX,
               "DEFLATE_RESPONSE_MAX too small");
_Static_assert(DEFLATE_TAKEOVER_BITS >= 8 && DEFLATE_TAKEOVER_BITS <= 15, "window bits are 8..15");

struct scan {
    const char *p, *end;
};

/* RFC 9110 §5.6.2 tchar. */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static void skip_ows(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t'))
        s->p++;
}

static bool take(struct scan *s, char c)
{
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

/* A token; false if there is none here. */
static bool token(struct scan *s, struct http_slice *out)
{
    const char *start = s->p;
    while (s->p < s->end && is_tchar((unsigned char)*s->p))
        s->p++;
    *out = (struct http_slice){ start, (size_t)(s->p - start) };
    return out->len > 0;
}

/* A parameter's value, unquoted. Only window bits are ever read, so the text keeps the first few
 * characters and len counts them all. */
struct param_value {
    bool present;
    size_t len;
    char text[3];
};

static void value_add(struct param_value *v, char c)
{
    if (v->len < sizeof v->text)
        v->text[v->len] = c;
    v->len++;
}

/* token / quoted-string whose unescaped text is a token (RFC 6455 §9.1). Since that text may hold
 * only tchars, any other character inside the quotes is an error, escaped or not. */
static bool param_value(struct scan *s, struct param_value *v)
{
    *v = (struct param_value){ .present = true };
    if (take(s, '"')) {
        for (;;) {
            if (s->p == s->end)
                return false;
            char c = *s->p++;
            if (c == '"')
                break;
            if (c == '\\') {
                if (s->p == s->end)
                    return false;
                c = *s->p++;
            }
            if (!is_tchar((unsigned char)c))
                return false;
            value_add(v, c);
        }
        return v->len > 0;
    }
    struct http_slice t;
    if (!token(s, &t))
        return false;
    for (size_t i = 0; i < t.len; i++)
        value_add(v, t.p[i]);
    return true;
}

/* 8..15 in decimal without a sign or leading zero (RFC 7692 §7.1.2), else 0. */
static uint8_t window_bits(const struct param_value *v)
{
    if (v->len == 1 && (v->text[0] == '8' || v->text[0] == '9'))
        return (uint8_t)(v->text[0] - '0');
    if (v->len == 2 && v->text[0] == '1' && v->text[1] >= '0' && v->text[1] <= '5')
        return (uint8_t)(10 + v->text[1] - '0');
    return 0;
}

/* One permessage-deflate offer as read so far. */
struct offer {
    bool valid;
    bool server_no_takeover, client_no_takeover;
    bool has_server_bits, has_client_bits;
    uint8_t server_bits, client_bits; /* client_max_window_bits without a value: 15 */
};

/* RFC 7692 §7: each known parameter at most once; the no_context_takeover ones without a value,
 * server_max_window_bits with one, client_max_window_bits with one or none. */
static void offer_param(struct offer *o, struct http_slice name, const struct param_value *v)
{
    if (http_slice_eq(name, "server_no_context_takeover")) {
        if (o->server_no_takeover || v->present)
            o->valid = false;
        o->server_no_takeover = true;
    } else if (http_slice_eq(name, "client_no_context_takeover")) {
        if (o->client_no_takeover || v->present)
            o->valid = false;
        o->client_no_takeover = true;
    } else if (http_slice_eq(name, "server_max_window_bits")) {
        o->server_bits = v->present ? window_bits(v) : 0;
        if (o->has_server_bits || o->server_bits == 0)
            o->valid = false;
        o->has_server_bits = true;
    } else if (http_slice_eq(name, "client_max_window_bits")) {
        o->client_bits = v->present ? window_bits(v) : 15;
        if (o->has_client_bits || o->client_bits == 0)
            o->valid = false;
        o->has_client_bits = true;
    } else {
        o->valid = false;
    }
}

/* One list element: an extension name and its parameters. False if malformed; *is_offer says
 * whether it was permessage-deflate, and then *o describes it. */
static bool element(struct scan *s, bool *is_offer, struct offer *o)
{
    struct http_slice name;
    if (!token(s, &name))
        return false;
    *is_offer = http_slice_eq(name, "permessage-deflate");
    *o = (struct offer){ .valid = true };
    for (;;) {
        skip_ows(s);
        if (!take(s, ';'))
            return true;
        skip_ows(s);
        struct http_slice param;
        if (!token(s, &param))
            return false;
        skip_ows(s);
        struct param_value v = { .present = false };
        if (take(s, '=')) {
            skip_ows(s);
            if (!param_value(s, &v))
                return false;
        }
        if (*is_offer)
            offer_param(o, param, &v);
    }
}

/* Scans one header value to its end (a later malformed element still declines everything) and
 * keeps the first valid offer in *first unless *found already. False if malformed. */
static bool scan_value(struct http_slice value, struct offer *first, bool *found)
{
    if (value.len == 0)
        return true;
    struct scan s = { value.p, value.p + value.len };
    for (;;) {
        skip_ows(&s);
        if (s.p == s.end)
            return true;
        if (take(&s, ',')) /* an empty list element (RFC 9110 §5.6.1) */
            continue;
        bool is_offer;
        struct offer o;
        if (!element(&s, &is_offer, &o))
            return false;
        if (is_offer && o.valid && !*found) {
            *first = o;
            *found = true;
        }
        skip_ows(&s);
        if (s.p != s.end && !take(&s, ','))
            return false;
    }
}

static size_t put(char *dst, size_t at, const char *s)
{
    size_t n = strlen(s);
    memcpy(dst + at, s, n);
    return at + n;
}

static size_t put_bits(char *dst, size_t at, const char *param, unsigned bits)
{
    at = put(dst, at, param);
    if (bits >= 10)
        dst[at++] = '1';
    dst[at++] = (char)('0' + bits % 10);
    return at;
}

static void accept_offer(const struct offer *o, enum deflate_mode mode, struct deflate_params *p,
                         char resp[DEFLATE_RESPONSE_MAX])
{
    /* Only a client that bounds its window may keep its context: the server then holds at most
     * 2^DEFLATE_TAKEOVER_BITS bytes of its inflate history. */
    bool takeover = mode == DEFLATE_TAKEOVER && o->has_client_bits;
    p->on = true;
    p->server_no_takeover = o->server_no_takeover;
    p->client_no_takeover = !takeover || o->client_no_takeover;
    p->server_bits = o->has_server_bits ? o->server_bits : 15;
    p->client_bits = 15;
    if (takeover)
        p->client_bits = o->client_bits < DEFLATE_TAKEOVER_BITS ? o->client_bits
                                                                  : DEFLATE_TAKEOVER_BITS;

    size_t n = put(resp, 0, "permessage-deflate");
    if (p->server_no_takeover)
        n = put(resp, n, "; server_no_context_takeover");
    if (p->client_no_takeover)
        n = put(resp, n, "; client_no_context_takeover");
    if (o->has_server_bits)
        n = put_bits(resp, n, "; server_max_window_bits=", p->server_bits);
    if (takeover)
        n = put_bits(resp, n, "; client_max_window_bits=", p->client_bits);
    resp[n] = '\0';
}

bool deflate_negotiate(const struct http_slice *values, size_t n, enum deflate_mode mode,
                       struct deflate_params *p, char resp[DEFLATE_RESPONSE_MAX])
{
    *p = (struct deflate_params){ .server_bits = 15, .client_bits = 15 };
    resp[0] = '\0';
    if (mode != DEFLATE_ON && mode != DEFLATE_TAKEOVER)
        return false;
    struct offer first;
    bool found = false;
    for (size_t i = 0; i < n; i++)
        if (!scan_value(values[i], &first, &found))
            return false;
    if (!found)
        return false;
    accept_offer(&first, mode, p, resp);
    return true;
}

bool deflate_negotiate_request(const struct http_request *req, enum deflate_mode mode,
                               struct deflate_params *p, char resp[DEFLATE_RESPONSE_MAX])
{
    struct http_slice values[MAX_HEADER_COUNT];
    size_t n = 0;
    for (size_t i = 0; i < req->header_count && n < MAX_HEADER_COUNT; i++)
        if (http_slice_eq(req->headers[i].name, "sec-websocket-extensions"))
            values[n++] = req->headers[i].value;
    return deflate_negotiate(values, n, mode, p, resp);
}

static const char *const mode_names[] = {
    [DEFLATE_OFF] = "off",
    [DEFLATE_ON] = "on",
    [DEFLATE_TAKEOVER] = "takeover",
};

const char *deflate_mode_name(enum deflate_mode mode)
{
    if ((unsigned)mode >= sizeof mode_names / sizeof mode_names[0])
        return "?";
    return mode_names[mode];
}

bool deflate_mode_parse(const char *s, enum deflate_mode *out)
{
    for (size_t i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++)
        if (strcmp(s, mode_names[i]) == 0) {
            *out = (enum deflate_mode)i;
            return true;
        }
    return false;
}
