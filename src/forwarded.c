#include "forwarded.h"

#include <string.h>
#include <strings.h>

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

static bool all_digits(const char *p, const char *end)
{
    if (p == end || end - p > 5)
        return false;
    for (; p < end; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

bool forwarded_parse_node(const char *s, size_t len, struct ip_addr *out)
{
    const char *p = s, *end = s + len;
    while (p < end && is_space(*p))
        p++;
    while (end > p && is_space(end[-1]))
        end--;
    if (p == end)
        return false;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close || (close + 1 < end && (close[1] != ':' || !all_digits(close + 2, end))))
            return false;
        struct ip_addr a;
        /* Inside brackets only IPv6 is allowed (an IPv4-mapped one included). */
        if (!memchr(p + 1, ':', (size_t)(close - p - 1)) ||
            !ip_addr_parse(p + 1, (size_t)(close - p - 1), &a))
            return false;
        *out = a;
        return true;
    }
    const char *colon = memchr(p, ':', (size_t)(end - p));
    if (colon && !memchr(colon + 1, ':', (size_t)(end - colon - 1))) {
        /* One colon: IPv4 with a port. */
        if (!all_digits(colon + 1, end) || !memchr(p, '.', (size_t)(colon - p)))
            return false;
        end = colon;
    }
    return ip_addr_parse(p, (size_t)(end - p), out);
}

/* The right-to-left walk, done left to right: each entry decides what a walk starting at it
 * would find, given what the walk from its left neighbour found. */
struct walk {
    enum { WALK_NONE, WALK_FOUND, WALK_MALFORMED } state;
    struct ip_addr found;
    bool have_first;
    struct ip_addr first; /* the left-most entry, for when every entry is a trusted proxy */
    const struct ip_cidr *trusted;
    size_t ntrusted;
};

static void walk_entry(struct walk *w, bool valid, struct ip_addr a)
{
    if (!valid) {
        w->state = WALK_MALFORMED;
        return;
    }
    if (!w->have_first) {
        w->have_first = true;
        w->first = a;
    }
    if (!ip_cidr_list_contains(w->trusted, w->ntrusted, a)) {
        w->state = WALK_FOUND;
        w->found = a;
    }
}

/* True if [p, end) holds nothing but spaces: an empty list element, which lists may have. */
static bool blank(const char *p, const char *end)
{
    while (p < end && is_space(*p))
        p++;
    return p == end;
}

/* X-Forwarded-For: a comma list of nodes. */
static void walk_xff(struct walk *w, struct http_slice v)
{
    const char *p = v.p, *end = v.p + v.len;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        struct ip_addr a = { 0, 0 };
        if (!blank(p, stop))
            walk_entry(w, forwarded_parse_node(p, (size_t)(stop - p), &a), a);
        p = stop + 1;
    }
}

/* Scans one pair value (token or quoted-string) from p; copies it, unquoted, into out when out
 * is not NULL. Returns where the value ends, or NULL if it is malformed or does not fit. */
static const char *scan_value(const char *p, const char *end, char *out, size_t cap,
                              size_t *len)
{
    size_t n = 0;
    bool quoted = p < end && *p == '"';
    for (p += quoted; p < end && (quoted ? *p != '"' : *p != ';'); p++) {
        if (quoted && *p == '\\' && ++p == end)
            return NULL;
        if (out) {
            if (n == cap)
                return NULL;
            out[n++] = *p;
        }
    }
    if (quoted && p++ == end)
        return NULL; /* unterminated */
    *len = n;
    return p;
}

/* The for= value of one Forwarded element (name=value pairs separated by ';'), unquoted into
 * buf. Returns its length, or -1 if the element has no for=, two of them, or is malformed. */
static int element_for(const char *p, const char *end, char *buf, size_t cap)
{
    int found = -1;
    while (p < end) {
        while (p < end && (is_space(*p) || *p == ';'))
            p++;
        if (p == end)
            break;
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq)
            return -1;
        bool is_for = eq - p == 3 && strncasecmp(p, "for", 3) == 0;
        if (is_for && found >= 0)
            return -1;
        size_t n = 0;
        p = scan_value(eq + 1, end, is_for ? buf : NULL, cap, &n);
        if (!p)
            return -1;
        while (p < end && is_space(*p))
            p++;
        if (p < end && *p != ';')
            return -1;
        if (is_for)
            found = (int)n;
    }
    return found;
}

/* Forwarded: a comma list of elements; commas inside quoted strings do not split. */
static void walk_forwarded(struct walk *w, struct http_slice v)
{
    const char *p = v.p, *end = v.p + v.len;
    while (p <= end) {
        const char *stop = p;
        bool quoted = false;
        for (; stop < end && (quoted || *stop != ','); stop++) {
            if (*stop == '\\' && quoted && stop + 1 < end)
                stop++;
            else if (*stop == '"')
                quoted = !quoted;
        }
        char node[IP_ADDR_TEXT_LEN + 8];
        struct ip_addr a = { 0, 0 };
        if (!blank(p, stop)) {
            int n = element_for(p, stop, node, sizeof node);
            walk_entry(w, n >= 0 && forwarded_parse_node(node, (size_t)n, &a), a);
        }
        p = stop + 1;
    }
}

bool forwarded_client(const struct http_request *req, enum proxy_header which,
                      const struct ip_cidr *trusted, size_t ntrusted, struct ip_addr *client)
{
    const char *name = which == PROXY_HEADER_FORWARDED ? "forwarded" : "x-forwarded-for";
    struct walk w = { .trusted = trusted, .ntrusted = ntrusted };
    for (size_t i = 0; i < req->header_count; i++) {
        const struct http_header *h = &req->headers[i];
        if (!http_slice_eq(h->name, name))
            continue;
        if (which == PROXY_HEADER_FORWARDED)
            walk_forwarded(&w, h->value);
        else
            walk_xff(&w, h->value);
    }
    if (w.state == WALK_FOUND)
        *client = w.found;
    else if (w.state == WALK_NONE && w.have_first)
        *client = w.first;
    else
        return false;
    return true;
}
