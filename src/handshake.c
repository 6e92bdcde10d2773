#include "handshake.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "defaults.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void ws_accept_key(const char *key, size_t key_len, char out[WS_ACCEPT_LEN + 1])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) ||
        !EVP_DigestUpdate(ctx, key, key_len) ||
        !EVP_DigestUpdate(ctx, ws_guid, sizeof ws_guid - 1) ||
        !EVP_DigestFinal_ex(ctx, digest, &dlen)) {
        out[0] = '\0'; /* cannot happen with a working libcrypto; the handshake then fails */
        EVP_MD_CTX_free(ctx);
        return;
    }
    EVP_MD_CTX_free(ctx);
    EVP_EncodeBlock((unsigned char *)out, digest, (int)dlen);
}

static int is_b64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

int ws_key_is_valid(struct http_slice key)
{
    /* 16 bytes encode to 22 characters plus "==". */
    if (key.len != 24 || key.p[22] != '=' || key.p[23] != '=')
        return 0;
    for (size_t i = 0; i < 22; i++)
        if (!is_b64(key.p[i]))
            return 0;
    return 1;
}

void handshake_error(struct handshake *hs, int status, const char *why)
{
    hs->status = status;
    hs->why = why;
    hs->detail = (struct http_slice){ NULL, 0 };
    hs->retry_after = 0;
    hs->accept[0] = '\0';
    hs->extensions[0] = '\0';
}

/* The one header named `name`; sets *count to how many there were. */
static const struct http_slice *find_header(const struct http_request *req, const char *name,
                                            int *count)
{
    const struct http_slice *found = NULL;
    *count = 0;
    for (size_t i = 0; i < req->header_count; i++) {
        if (http_slice_eq(req->headers[i].name, name)) {
            if (!found)
                found = &req->headers[i].value;
            (*count)++;
        }
    }
    return found;
}

/* True if any header named `name` lists `token`. */
static int any_header_has_token(const struct http_request *req, const char *name, const char *token)
{
    for (size_t i = 0; i < req->header_count; i++)
        if (http_slice_eq(req->headers[i].name, name) &&
            http_list_has_token(req->headers[i].value, token))
            return 1;
    return 0;
}

void handshake_evaluate(const struct http_request *req, const char *ws_path, struct handshake *hs)
{
    int n;
    const struct http_slice *v;
    bool get = req->method.len == 3 && memcmp(req->method.p, "GET", 3) == 0;
    struct http_slice path, authority;
    /* The path decides first, whatever the version: an unknown path is 404 over HTTP/1.0 too.
     * OPTIONS * and CONNECT host:port are methods we do not serve; GET * is malformed. */
    if (!http_target_split(req->target, &path, &authority))
        return handshake_error(hs, get ? 400 : 405,
                               get ? "the request target must be a path or an http(s) URI"
                                   : "method not allowed");
    if (!http_target_is(req->target, ws_path))
        return handshake_error(hs, 404, "unknown path");
    if (req->minor_version < 1)
        return handshake_error(hs, 400, "WebSocket needs HTTP/1.1");
    if (!get)
        return handshake_error(hs, 405, "method not allowed");
    find_header(req, "host", &n);
    if (n != 1)
        return handshake_error(hs, 400, "exactly one Host header is required");
    if (!any_header_has_token(req, "upgrade", "websocket"))
        return handshake_error(hs, 426, "Upgrade: websocket is required");
    if (!any_header_has_token(req, "connection", "upgrade"))
        return handshake_error(hs, 400, "Connection must include the upgrade token");
    v = find_header(req, "sec-websocket-version", &n);
    if (n != 1 || !http_slice_eq(*v, "13"))
        return handshake_error(hs, 426, "Sec-WebSocket-Version must be 13");
    v = find_header(req, "sec-websocket-key", &n);
    if (n != 1 || !ws_key_is_valid(*v))
        return handshake_error(hs, 400, "Sec-WebSocket-Key must be one base64 16-byte nonce");
    /* A body would be taken for frames; an upgrade request has none. */
    const struct http_slice *cl = find_header(req, "content-length", &n);
    if ((cl && !http_slice_eq(*cl, "0")) || n > 1)
        return handshake_error(hs, 400, "an upgrade request has no body");
    find_header(req, "transfer-encoding", &n);
    if (n)
        return handshake_error(hs, 400, "an upgrade request has no body");

    hs->status = 101;
    hs->why = "switching protocols";
    hs->detail = (struct http_slice){ NULL, 0 };
    hs->retry_after = 0;
    hs->extensions[0] = '\0'; /* the caller negotiates extensions */
    ws_accept_key(v->p, v->len, hs->accept);
    if (!hs->accept[0])
        handshake_error(hs, 500, "could not compute Sec-WebSocket-Accept");
}

/* ---- the Origin policy (RFC 6455 §4.2.2 item 4, §10.2) ---- */

/* An origin's parts; port is the explicit one or the scheme's default (0: none known). */
struct origin {
    struct http_slice scheme, host;
    unsigned port;
};

static unsigned default_port(struct http_slice scheme)
{
    if (http_slice_eq(scheme, "http") || http_slice_eq(scheme, "ws"))
        return 80;
    if (http_slice_eq(scheme, "https") || http_slice_eq(scheme, "wss"))
        return 443;
    return 0;
}

/* Bytes that cannot be part of a host: delimiters of a URI's other parts, lists, spaces, and
 * the * of a wildcard, which --allow-origin does not offer. */
static bool is_host_char(unsigned char c)
{
    return c > 0x20 && c < 0x7F && !strchr("/?#@,*\"<>\\^`{|}", c);
}

/* host[:port] (Host, an absolute form's authority, an origin's tail): the host with its
 * brackets for an IPv6 literal; *port is 0 when there is none (an empty one counts as none,
 * RFC 3986 §3.2.3). Returns false if it is malformed. */
static bool split_authority(struct http_slice a, struct http_slice *host, unsigned *port)
{
    const char *p = a.p, *end = a.p + a.len;
    if (p < end && *p == '[') {
        const char *close = memchr(p, ']', a.len);
        if (!close)
            return false;
        p = close + 1;
    } else {
        while (p < end && *p != ':')
            p++;
    }
    *host = (struct http_slice){ a.p, (size_t)(p - a.p) };
    if (host->len == 0 || (p < end && *p != ':'))
        return false;
    for (size_t i = 0; i < host->len; i++)
        if (!is_host_char((unsigned char)host->p[i]) || (i && host->p[i] == '[') ||
            (host->p[0] != '[' && host->p[i] == ']'))
            return false;
    *port = 0;
    if (p < end) {
        p++; /* the ':' */
        if (end - p > 5)
            return false;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9')
                return false;
            *port = *port * 10 + (unsigned)(*p - '0');
        }
        if (*port > 65535)
            return false;
    }
    return true;
}

/* scheme "://" host [":" port], as a browser serializes an origin (RFC 6454 §6.2). */
static bool parse_origin(struct http_slice s, struct origin *o)
{
    const char *sep = s.len >= 3 ? memmem(s.p, s.len, "://", 3) : NULL;
    if (!sep || sep == s.p)
        return false;
    o->scheme = (struct http_slice){ s.p, (size_t)(sep - s.p) };
    for (size_t i = 0; i < o->scheme.len; i++) {
        unsigned char c = (unsigned char)o->scheme.p[i];
        if (!isalpha(c) && (i == 0 || (!isdigit(c) && !strchr("+-.", c))))
            return false;
    }
    struct http_slice rest = { sep + 3, s.len - o->scheme.len - 3 };
    if (!split_authority(rest, &o->host, &o->port))
        return false;
    if (!o->port)
        o->port = default_port(o->scheme);
    return true;
}

static bool slices_eq_nocase(struct http_slice a, struct http_slice b)
{
    return a.len == b.len && strncasecmp(a.p, b.p, a.len) == 0;
}

static bool origins_eq(const struct origin *a, const struct origin *b)
{
    return slices_eq_nocase(a->scheme, b->scheme) && slices_eq_nocase(a->host, b->host) &&
           a->port == b->port;
}

/* Calls fn on each comma-separated entry of list, blanks around it trimmed, until fn returns
 * true; returns whether one did. */
static bool any_entry(const char *list, bool (*fn)(struct http_slice entry, const void *arg),
                      const void *arg)
{
    for (const char *p = list;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = p + strcspn(p, ",");
        const char *stop = end;
        while (stop > p && (stop[-1] == ' ' || stop[-1] == '\t'))
            stop--;
        if (fn((struct http_slice){ p, (size_t)(stop - p) }, arg))
            return true;
        if (!*end)
            return false;
        p = end + 1;
    }
}

static bool entry_is_invalid(struct http_slice entry, const void *arg)
{
    (void)arg;
    struct origin o;
    return !http_slice_eq(entry, "*") && !http_slice_eq(entry, "null") && !parse_origin(entry, &o);
}

bool origin_list_is_valid(const char *list)
{
    return !any_entry(list, entry_is_invalid, NULL);
}

/* What an entry is compared with: the request's Origin as sent, and parsed if it parses. */
struct origin_seen {
    struct http_slice text;
    bool parsed;
    struct origin o;
};

static bool entry_is_any(struct http_slice entry, const void *arg)
{
    (void)arg;
    return http_slice_eq(entry, "*");
}

static bool entry_admits(struct http_slice entry, const void *arg)
{
    const struct origin_seen *seen = arg;
    struct origin o;
    if (http_slice_eq(entry, "*"))
        return true;
    if (http_slice_eq(entry, "null"))
        return http_slice_eq(seen->text, "null");
    return seen->parsed && parse_origin(entry, &o) && origins_eq(&o, &seen->o);
}

/* The page's own origin: the host (and port, the scheme's default if Host has none) the request
 * was sent to. A TLS proxy in front makes the page https: while Host stays the same. */
static bool same_origin(const struct origin *o, const struct http_request *req)
{
    struct http_slice path, authority, host;
    unsigned port;
    int n;
    if (!http_target_split(req->target, &path, &authority) || !authority.len) {
        const struct http_slice *h = find_header(req, "host", &n);
        if (!h)
            return false;
        authority = *h;
    }
    if (!http_slice_eq(o->scheme, "http") && !http_slice_eq(o->scheme, "https"))
        return false;
    return split_authority(authority, &host, &port) && slices_eq_nocase(host, o->host) &&
           (port ? port : default_port(o->scheme)) == o->port;
}

bool handshake_origin_allowed(const struct http_request *req, const char *const *allow,
                              size_t n_allow, struct http_slice *origin)
{
    int n;
    const struct http_slice *v = find_header(req, "origin", &n);
    *origin = v ? *v : (struct http_slice){ "", 0 };
    for (size_t i = 0; i < n_allow; i++)
        if (any_entry(allow[i], entry_is_any, NULL))
            return true;
    if (n == 0)
        return true; /* not a browser: it could send any Origin it liked anyway */
    if (n > 1)
        return false;
    struct origin_seen seen = { .text = *v };
    seen.parsed = parse_origin(*v, &seen.o);
    if (seen.parsed && same_origin(&seen.o, req))
        return true;
    for (size_t i = 0; i < n_allow; i++)
        if (any_entry(allow[i], entry_admits, &seen))
            return true;
    return false;
}

void handshake_check_origin(const struct http_request *req, const char *const *allow,
                            size_t n_allow, struct handshake *hs)
{
    struct http_slice origin;
    if (hs->status != 101 || handshake_origin_allowed(req, allow, n_allow, &origin))
        return;
    handshake_error(hs, 403, "Origin not allowed (see --allow-origin)");
    hs->detail = origin;
}

static const char *status_text(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

size_t handshake_response(const struct handshake *hs, char *out, size_t cap)
{
    int n;
    if (hs->status == 101) {
        n = snprintf(out, cap,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Server: websock/" WEBSOCK_VERSION "\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n"
                     "%s%s%s\r\n",
                     hs->accept, hs->extensions[0] ? "Sec-WebSocket-Extensions: " : "",
                     hs->extensions, hs->extensions[0] ? "\r\n" : "");
    } else {
        const char *extra = hs->status == 426 ? "Sec-WebSocket-Version: 13\r\n"
                          : hs->status == 405 ? "Allow: GET\r\n"
                          : "";
        char retry[32] = "";
        if (hs->retry_after)
            snprintf(retry, sizeof retry, "Retry-After: %u\r\n", hs->retry_after);
        n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\n"
                     "Server: websock/" WEBSOCK_VERSION "\r\n"
                     "%s%s"
                     "Content-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: close\r\n\r\n"
                     "%s\n",
                     hs->status, status_text(hs->status), extra, retry, strlen(hs->why) + 1,
                     hs->why);
    }
    if (n < 0)
        return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

const char *ws_crypto_version(void)
{
#ifdef OPENSSL_VERSION_STRING
    return OpenSSL_version(OPENSSL_VERSION_STRING); /* "3.0.15" */
#else
    return OpenSSL_version(OPENSSL_VERSION);
#endif
}
