#include "tlsc.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>

static void reason(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[200];
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    else
        snprintf(buf, sizeof buf, "%s", errno ? strerror(errno) : "connection closed");
    snprintf(err, errlen, "%s: %s", what, buf);
    ERR_clear_error();
}

struct tlsc_ctx *tlsc_ctx_new(const char *suites, int tls12, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        reason(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_min_proto_version(ctx, tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    /* Never resumed: every connection pays a full handshake, which is what is measured. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* One recv() per record (not one for its header and one for its body): the generator
     * should not be the slow side. */
    SSL_CTX_set_read_ahead(ctx, 1);
    static const unsigned char alpn[] = "\x08http/1.1";
    if (SSL_CTX_set1_groups_list(ctx, "X25519") != 1 ||
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1) != 0 ||
        (suites && SSL_CTX_set_ciphersuites(ctx, suites) != 1)) {
        reason(err, errlen, suites ? "--tls-suites" : "TLS client settings");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return (struct tlsc_ctx *)ctx;
}

void tlsc_ctx_free(struct tlsc_ctx *ctx)
{
    SSL_CTX_free((SSL_CTX *)ctx);
}

/* Notes in the socket BIO's callback argument (a flag, not a pointer) whether its last read
 * came back shorter than asked: the socket was emptied. */
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

struct tlsc *tlsc_new(struct tlsc_ctx *ctx, int fd, const char *sni)
{
    SSL *ssl = SSL_new((SSL_CTX *)ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1 || (sni && SSL_set_tlsext_host_name(ssl, sni) != 1)) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_callback_ex(SSL_get_rbio(ssl), note_short_read);
    SSL_set_connect_state(ssl);
    return (struct tlsc *)ssl;
}

void tlsc_free(struct tlsc *t)
{
    SSL_free((SSL *)t);
}

static int outcome(SSL *ssl, int rc, const char *what, char *err, size_t errlen)
{
    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return TLSC_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return TLSC_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0 && (errno == EAGAIN || errno == EINTR))
            return TLSC_WANT_READ;
        if (ERR_peek_error() == 0 && errno == 0)
            return 0; /* a FIN without close_notify */
        /* fall through */
    default:
        reason(err, errlen, what);
        return TLSC_ERROR;
    }
}

int tlsc_handshake(struct tlsc *t, char *err, size_t errlen)
{
    SSL *ssl = (SSL *)t;
    errno = 0;
    int rc = SSL_do_handshake(ssl);
    if (rc == 1)
        return 1;
    int r = outcome(ssl, rc, "TLS handshake", err, errlen);
    if (r == 0) {
        snprintf(err, errlen, "TLS handshake: the server closed the connection");
        return TLSC_ERROR;
    }
    return r;
}

ssize_t tlsc_read(struct tlsc *t, void *buf, size_t len, char *err, size_t errlen)
{
    SSL *ssl = (SSL *)t;
    errno = 0;
    int rc = SSL_read(ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    return rc > 0 ? rc : outcome(ssl, rc, "TLS read", err, errlen);
}

ssize_t tlsc_write(struct tlsc *t, const void *buf, size_t len, char *err, size_t errlen)
{
    SSL *ssl = (SSL *)t;
    errno = 0;
    int rc = SSL_write(ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (rc > 0)
        return rc;
    int r = outcome(ssl, rc, "TLS write", err, errlen);
    if (r == 0) {
        snprintf(err, errlen, "TLS write: the server closed the connection");
        return TLSC_ERROR;
    }
    return r;
}

int tlsc_drained(const struct tlsc *t)
{
    const SSL *ssl = (const SSL *)t;
    return !SSL_has_pending(ssl) && BIO_get_callback_arg(SSL_get_rbio(ssl)) != NULL;
}

void tlsc_describe(const struct tlsc *t, char *out, size_t len)
{
    const SSL *ssl = (const SSL *)t;
    int nid = (int)SSL_get_negotiated_group((SSL *)ssl);
    const char *group = nid > 0 ? OBJ_nid2sn(nid) : "?";
    snprintf(out, len, "%s %s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl), group);
}
