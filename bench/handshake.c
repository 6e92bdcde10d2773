#include "handshake.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sha1.h"

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void handshake_accept(const char *key, char accept[WS_ACCEPT_LEN + 1])
{
    char buf[64 + sizeof GUID];
    int n = snprintf(buf, sizeof buf, "%s%s", key, GUID);
    uint8_t digest[20];
    sha1(buf, (size_t)n, digest);
    base64_encode(digest, sizeof digest, accept);
}

size_t handshake_request(char *out, size_t cap, const char *host_header, const char *path,
                         const uint8_t nonce[16], bool deflate, char accept[WS_ACCEPT_LEN + 1])
{
    char key[25];
    base64_encode(nonce, 16, key);
    handshake_accept(key, accept);
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "%s"
                     "\r\n",
                     path, host_header, key,
                     deflate ? "Sec-WebSocket-Extensions: " PMD_OFFER "\r\n" : "");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Is `token` one of the comma-separated values in [v, end), ignoring case? */
static bool has_token(const char *v, const char *end, const char *token)
{
    size_t tlen = strlen(token);
    while (v < end) {
        while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
            v++;
        const char *s = v;
        while (v < end && *v != ',')
            v++;
        const char *e = v;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == tlen && strncasecmp(s, token, tlen) == 0)
            return true;
    }
    return false;
}

static bool value_is(const char *v, const char *end, const char *want, bool nocase)
{
    size_t n = strlen(want);
    if ((size_t)(end - v) != n)
        return false;
    return nocase ? strncasecmp(v, want, n) == 0 : memcmp(v, want, n) == 0;
}

long handshake_response(const char *buf, size_t len, const char *accept,
                        struct pmd_params *ext, char *err, size_t errlen)
{
    if (ext)
        *ext = (struct pmd_params){ .on = false };
    const char *head_end = memmem(buf, len, "\r\n\r\n", 4);
    if (!head_end) {
        if (len >= HANDSHAKE_HEAD_MAX) {
            snprintf(err, errlen, "response head longer than %d bytes", HANDSHAKE_HEAD_MAX);
            return -1;
        }
        return 0;
    }
    const char *line_end = memmem(buf, (size_t)(head_end - buf) + 2, "\r\n", 2);
    int status_len = (int)(line_end - buf);
    if (status_len < 12 || memcmp(buf, "HTTP/1.1 101", 12) != 0 ||
        (status_len > 12 && buf[12] != ' ')) {
        snprintf(err, errlen, "expected 101 Switching Protocols, got '%.*s'", status_len, buf);
        return -1;
    }

    bool upgrade = false, connection = false, accepted = false;
    for (const char *p = line_end + 2; p < head_end + 2;) {
        const char *eol = memmem(p, (size_t)(head_end + 2 - p), "\r\n", 2);
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon) {
            snprintf(err, errlen, "malformed header line '%.*s'", (int)(eol - p), p);
            return -1;
        }
        const char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t nlen = (size_t)(colon - p);
        if (nlen == 7 && strncasecmp(p, "Upgrade", 7) == 0)
            upgrade = value_is(v, ve, "websocket", true);
        else if (nlen == 10 && strncasecmp(p, "Connection", 10) == 0)
            connection = has_token(v, ve, "upgrade");
        else if (nlen == 20 && strncasecmp(p, "Sec-WebSocket-Accept", 20) == 0) {
            accepted = value_is(v, ve, accept, false);
            if (!accepted) {
                snprintf(err, errlen, "Sec-WebSocket-Accept is '%.*s', expected '%s'",
                         (int)(ve - v), v, accept);
                return -1;
            }
        } else if (nlen == 24 && strncasecmp(p, "Sec-WebSocket-Extensions", 24) == 0 && ext) {
            if (ext->on) {
                snprintf(err, errlen, "Sec-WebSocket-Extensions answered twice");
                return -1;
            }
            if (pmd_parse_response(v, (size_t)(ve - v), ext, err, errlen) < 0)
                return -1;
        } else if ((nlen == 24 && strncasecmp(p, "Sec-WebSocket-Extensions", 24) == 0) ||
                   (nlen == 22 && strncasecmp(p, "Sec-WebSocket-Protocol", 22) == 0)) {
            snprintf(err, errlen, "server chose '%.*s' that was not offered", (int)nlen, p);
            return -1;
        }
        p = eol + 2;
    }
    if (!upgrade || !connection || !accepted) {
        snprintf(err, errlen, "101 without %s", !upgrade      ? "'Upgrade: websocket'"
                                               : !connection ? "'Connection: Upgrade'"
                                                              : "Sec-WebSocket-Accept");
        return -1;
    }
    return (long)(head_end + 4 - buf);
}
