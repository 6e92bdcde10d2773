#include "handshake.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

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
    hs->retry_after = 0;
    hs->accept[0] = '\0';
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
    if (req->minor_version < 1)
        return handshake_error(hs, 400, "WebSocket needs HTTP/1.1");
    if (!http_target_is(req->target, ws_path))
        return handshake_error(hs, 404, "unknown path");
    if (req->method.len != 3 || memcmp(req->method.p, "GET", 3) != 0)
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
    ws_accept_key(v->p, v->len, hs->accept);
    if (!hs->accept[0])
        handshake_error(hs, 500, "could not compute Sec-WebSocket-Accept");
}

static const char *status_text(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 400: return "Bad Request";
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
                     "Sec-WebSocket-Accept: %s\r\n\r\n",
                     hs->accept);
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
