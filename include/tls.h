/* TLS for wss://: the only file that speaks to libssl. A server context (certificate, key and
 * policy) and, per TLS connection, a session over the connection's socket; both are opaque. */
#ifndef WEBSOCK_TLS_H
#define WEBSOCK_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tls_ctx;  /* an SSL_CTX: what new connections get */
struct tls_conn; /* an SSL: holds a reference to the context it was made from */

/* Loads a PEM certificate chain and its key into a new context: TLS 1.2 minimum, AEAD ciphers,
 * no compression, no renegotiation, ALPN http/1.1, session tickets, kTLS where offered. On
 * failure returns NULL with a one-line reason in err. */
struct tls_ctx *tls_ctx_new(const char *cert_file, const char *key_file, char *err,
                            size_t errlen);
/* Drops the caller's reference: connections made from it keep it alive until they end. */
void tls_ctx_free(struct tls_ctx *ctx);
/* The certificate's serial number in hex (for the log line of a load or reload). */
void tls_ctx_describe(const struct tls_ctx *ctx, char *out, size_t len);

/* Whether the kernel offers the tls ULP (kTLS can then be active). */
bool tls_kernel_offers_ktls(void);

/* A server-side session on the connected socket fd (NULL: out of memory). */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd);
void tls_conn_free(struct tls_conn *t);

/* What tls_read and tls_write return besides a byte count (> 0) and the end of input (0). */
enum {
    TLS_ERROR = -1,      /* the connection is unusable: *why says why (a static text) */
    TLS_WANT_READ = -2,  /* retry once the socket is readable */
    TLS_WANT_WRITE = -3, /* retry once the socket is writable */
};

/* Decrypted application data, at most len bytes. The handshake runs inside it while not done.
 * Bytes may stay decrypted in the session that no readiness event announces: see
 * tls_pending. The end of input (0) is a close_notify or the peer's FIN. */
ssize_t tls_read(struct tls_conn *t, void *buf, size_t len, const char **why);
/* Encrypts and sends up to len bytes; a retry after TLS_WANT_* must pass the same bytes again
 * (from wherever they now lie) and at least as many. */
ssize_t tls_write(struct tls_conn *t, const void *buf, size_t len, const char **why);
/* Input already inside the session (decrypted, or a whole record read): read it on. */
bool tls_pending(const struct tls_conn *t);
/* The last read from the socket came back short and the session holds no input: the socket
 * was emptied, so an edge-triggered watch announces what arrives next (its end of input too,
 * unless that had arrived already: a hangup seen means read on until WANT_READ). */
bool tls_input_drained(const struct tls_conn *t);
/* The handshake completed. */
bool tls_handshake_done(const struct tls_conn *t);
/* Whether kTLS carries this connection's sending (after the handshake). */
bool tls_ktls_send(const struct tls_conn *t);
/* "TLSv1.3 TLS_AES_128_GCM_SHA256" of an established connection, for a debug line. */
const char *tls_describe(const struct tls_conn *t, char *out, size_t len);
/* Sends our close_notify if the socket takes it now (best effort: the FIN follows anyway). */
void tls_close_notify(struct tls_conn *t);

#endif
