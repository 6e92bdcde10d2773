/* wss://: the TLS client side of wsload, the only file that includes libssl. No certificate
 * verification (a benchmark against a throwaway certificate); every handshake is a full one
 * (no session is ever reused). */
#ifndef WSLOAD_TLSC_H
#define WSLOAD_TLSC_H

#include <stddef.h>
#include <sys/types.h>

struct tlsc_ctx; /* an SSL_CTX */
struct tlsc;     /* an SSL on one socket */

/* What the calls below return besides a byte count (> 0), a finished handshake (1) or the
 * end of input (0). */
enum { TLSC_ERROR = -1, TLSC_WANT_READ = -2, TLSC_WANT_WRITE = -3 };

/* TLS 1.3 only (TLS 1.2 too with tls12), key exchange X25519. suites: a TLS 1.3
 * ciphersuite list, NULL for OpenSSL's default. NULL with a reason in err on failure. */
struct tlsc_ctx *tlsc_ctx_new(const char *suites, int tls12, char *err, size_t errlen);
void tlsc_ctx_free(struct tlsc_ctx *ctx);

/* A client session on the connected socket fd (NULL: out of memory). */
struct tlsc *tlsc_new(struct tlsc_ctx *ctx, int fd, const char *sni);
void tlsc_free(struct tlsc *t);

/* Advances the handshake: 1 once done, TLSC_WANT_* or TLSC_ERROR (reason in err). */
int tlsc_handshake(struct tlsc *t, char *err, size_t errlen);
/* Decrypted bytes (> 0), 0 at the end of input, TLSC_WANT_* or TLSC_ERROR. Decrypted bytes
 * can wait inside the session unannounced by epoll: read until TLSC_WANT_READ. */
ssize_t tlsc_read(struct tlsc *t, void *buf, size_t len, char *err, size_t errlen);
/* Encrypts and sends up to len bytes (a partial count when the socket fills); a retry after
 * TLSC_WANT_* passes the same bytes again, maybe more. */
ssize_t tlsc_write(struct tlsc *t, const void *buf, size_t len, char *err, size_t errlen);
/* The last socket read came back short and the session holds nothing: the socket is empty
 * (what arrives next raises a new edge), so reading on would only meet WANT_READ. */
int tlsc_drained(const struct tlsc *t);
/* "TLSv1.3 TLS_AES_128_GCM_SHA256 X25519" of a finished handshake. */
void tlsc_describe(const struct tlsc *t, char *out, size_t len);

#endif
