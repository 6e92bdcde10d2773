#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* TLS 1.3 suites in the server's order: AES-128-GCM first, the cheapest per record on OpenSSL
 * 3.0 (side by side at 1 KiB, AES-256-GCM costs the server 1% more, ChaCha20-Poly1305 2-5%;
 * OpenSSL's own order puts AES-256-GCM first). */
static const char tls13_suites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

/* TLS 1.2 suites: forward secrecy and AEAD only (TLS 1.3's are all AEAD). */
static const char tls12_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/* The first OpenSSL error of the queue as text, then an empty queue (SSL_get_error needs one
 * before each call). */
static void take_error(char *out, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, out, len);
    else
        snprintf(out, len, "%s", errno ? strerror(errno) : "unknown error");
    ERR_clear_error();
}

/* ALPN: http/1.1 when the client offers it; a client offering only something else goes on
 * without ALPN (a WebSocket handshake is HTTP/1.1 whatever it announced). */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char want[] = "\x08http/1.1";
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, want, sizeof want - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

struct tls_ctx *tls_ctx_new(const char *cert_file, const char *key_file, char *err,
                            size_t errlen)
{
    char why[256];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        take_error(why, sizeof why);
        snprintf(err, errlen, "cannot create a TLS context: %s", why);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_ENABLE_KTLS |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Release idle buffers (~34 KB per idle connection); partial writes of output that moves
     * from the shared scratch into the connection's own buffer when the socket is full. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read ahead: one recv() takes a record's header, its body and whatever follows, instead
     * of one for the header and one for the body; the buffer is still released once empty. */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* Resumption by stateless tickets: no server-side cache growing with the clients. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    const char *what = "the cipher list";
    if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, tls13_suites) != 1)
        goto fail;
    what = cert_file;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
        goto fail;
    what = key_file;
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)
        goto fail;
    what = "the key";
    if (SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    return (struct tls_ctx *)ctx;
fail:
    take_error(why, sizeof why);
    snprintf(err, errlen, "%s: %s", what, why);
    SSL_CTX_free(ctx);
    return NULL;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
    SSL_CTX_free((SSL_CTX *)ctx);
}

void tls_ctx_describe(const struct tls_ctx *ctx, char *out, size_t len)
{
    snprintf(out, len, "?");
    X509 *x = SSL_CTX_get0_certificate((const SSL_CTX *)ctx);
    BIGNUM *bn = x ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL) : NULL;
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    if (hex)
        snprintf(out, len, "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
}

bool tls_kernel_offers_ktls(void)
{
    char ulps[256] = "";
    int fd = open("/proc/sys/net/ipv4/tcp_available_ulp", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, ulps, sizeof ulps - 1);
    close(fd);
    if (n <= 0)
        return false;
    ulps[n] = '\0';
    for (char *w = strtok(ulps, " \n"); w; w = strtok(NULL, " \n"))
        if (strcmp(w, "tls") == 0)
            return true;
    return false;
}

/* Watches the socket BIO's reads (the BIO stays the socket one: kTLS needs it): a read that
 * came back shorter than asked emptied the socket. Kept in the callback argument, a flag and
 * not a pointer, so a session costs no extra allocation. */
static long note_short_read(BIO *bio, int oper, const char *argp, size_t len, int argi,
                            long argl, int ret, size_t *processed)
{
    (void)argp;
    (void)argi;
    (void)argl;
    if (oper == (BIO_CB_READ | BIO_CB_RETURN))
        BIO_set_callback_arg(bio, (char *)(uintptr_t)(ret > 0 && processed && *processed < len));
    return ret;
}

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd)
{
    SSL *ssl = SSL_new((SSL_CTX *)ctx);
    if (!ssl)
        return NULL;
    /* The socket BIO (not a memory one): kTLS needs it, and it reads and writes the socket
     * directly, without a copy. */
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_callback_ex(SSL_get_rbio(ssl), note_short_read);
    SSL_set_accept_state(ssl);
    return (struct tls_conn *)ssl;
}

void tls_conn_free(struct tls_conn *t)
{
    SSL_free((SSL *)t);
}

/* A failure's reason as a static text (the access line interns reasons by address). */
static const char *failure(SSL *ssl, int err)
{
    bool done = SSL_is_init_finished(ssl);
    unsigned long e = ERR_peek_error();
    int reason = ERR_GET_REASON(e);
    const char *why = done ? "TLS error" : "TLS handshake failed";
    if (err == SSL_ERROR_SYSCALL)
        why = done ? "TLS: socket error" : "TLS handshake failed: socket error";
    else if (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST)
        why = "TLS handshake failed: plain HTTP on the TLS port";
    else if (reason == SSL_R_UNSUPPORTED_PROTOCOL || reason == SSL_R_VERSION_TOO_LOW)
        why = "TLS handshake failed: protocol version below TLS 1.2";
    else if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
             reason == SSL_R_RECORD_LENGTH_MISMATCH || reason == SSL_R_UNKNOWN_PROTOCOL)
        why = done ? "TLS error: not a TLS record" : "TLS handshake failed: not TLS";
    else if (reason == SSL_R_NO_SHARED_CIPHER)
        why = "TLS handshake failed: no cipher in common";
    else if (reason == SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC)
        why = "TLS error: bad record MAC";
    else if (ERR_GET_LIB(e) == ERR_LIB_SSL && reason >= SSL_AD_REASON_OFFSET)
        why = done ? "TLS error: alert from the peer" : "TLS handshake failed: alert from the peer";
    ERR_clear_error();
    return why;
}

/* Maps a failed SSL_read/SSL_write. */
static ssize_t outcome(SSL *ssl, int rc, const char **why)
{
    int err = SSL_get_error(ssl, rc);
    switch (err) {
    case SSL_ERROR_WANT_READ:
        return TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return TLS_WANT_READ;
        if (ERR_peek_error() == 0 && errno == 0)
            return 0; /* the peer's FIN without close_notify (IGNORE_UNEXPECTED_EOF) */
        /* fall through */
    default:
        *why = failure(ssl, err);
        return TLS_ERROR;
    }
}

ssize_t tls_read(struct tls_conn *t, void *buf, size_t len, const char **why)
{
    SSL *ssl = (SSL *)t;
    errno = 0;
    int rc = SSL_read(ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    return rc > 0 ? rc : outcome(ssl, rc, why);
}

ssize_t tls_write(struct tls_conn *t, const void *buf, size_t len, const char **why)
{
    SSL *ssl = (SSL *)t;
    errno = 0;
    int rc = SSL_write(ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (rc > 0)
        return rc;
    ssize_t r = outcome(ssl, rc, why);
    if (r == 0) { /* a write cannot end input: the peer is gone */
        *why = "TLS: peer gone while writing";
        return TLS_ERROR;
    }
    return r;
}

bool tls_pending(const struct tls_conn *t)
{
    return SSL_has_pending((const SSL *)t);
}

bool tls_input_drained(const struct tls_conn *t)
{
    const SSL *ssl = (const SSL *)t;
    BIO *rbio = SSL_get_rbio(ssl);
    /* Under kTLS a read returns one record at a time, short or not: no conclusion then. */
    return !SSL_has_pending(ssl) && BIO_get_callback_arg(rbio) != NULL &&
           BIO_get_ktls_recv(rbio) <= 0;
}

bool tls_handshake_done(const struct tls_conn *t)
{
    return SSL_is_init_finished((const SSL *)t);
}

bool tls_ktls_send(const struct tls_conn *t)
{
    return BIO_get_ktls_send(SSL_get_wbio((const SSL *)t)) > 0;
}

const char *tls_describe(const struct tls_conn *t, char *out, size_t len)
{
    const SSL *ssl = (const SSL *)t;
    snprintf(out, len, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
    return out;
}

void tls_close_notify(struct tls_conn *t)
{
    SSL *ssl = (SSL *)t;
    if (SSL_is_init_finished(ssl) && SSL_shutdown(ssl) < 0)
        ERR_clear_error();
}
