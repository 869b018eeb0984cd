#include "pushgate/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

/* TLS 1.2 suites allowed by RFC 9113 §9.2.2: ephemeral key exchange and AEAD only. */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    /* h2 is preferred wherever the client lists it; http/1.1 otherwise. */
    static const struct {
        const char *name;
        unsigned char len;
    } ours[] = {{"h2", 2}, {"http/1.1", 8}};
    for (size_t p = 0; p < sizeof(ours) / sizeof(ours[0]); p++) {
        for (unsigned i = 0; i < inlen; i += 1u + in[i]) {
            if (in[i] == ours[p].len && i + 1u + in[i] <= inlen &&
                memcmp(in + i + 1, ours[p].name, ours[p].len) == 0) {
                *out = in + i + 1;
                *outlen = ours[p].len;
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    /* A client offering only protocols we do not speak: no_application_protocol. */
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static void describe_error(const char *what, const char *file, char *err, size_t err_len)
{
    unsigned long code = ERR_peek_last_error();
    char reason[256] = "unknown reason";
    if (code)
        ERR_error_string_n(code, reason, sizeof(reason));
    snprintf(err, err_len, "%s '%s': %s", what, file, reason);
    ERR_clear_error();
}

SSL_CTX *pg_tls_context_new(const char *cert_file, const char *key_file, char *err, size_t err_len)
{
    FILE *probe;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, err_len, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_cipher_list(ctx, tls12_ciphers);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    /* Open the files ourselves first: "cannot read" is clearer than OpenSSL's wording. */
    if (!(probe = fopen(cert_file, "r"))) {
        snprintf(err, err_len, "--tls-cert '%s': cannot read: %s", cert_file, strerror(errno));
        goto fail;
    }
    fclose(probe);
    if (!(probe = fopen(key_file, "r"))) {
        snprintf(err, err_len, "--tls-key '%s': cannot read: %s", key_file, strerror(errno));
        goto fail;
    }
    fclose(probe);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        describe_error("--tls-cert", cert_file, err, err_len);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 &&
        ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
        describe_error("--tls-key", key_file, err, err_len);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, err_len, "--tls-key '%s' does not match the certificate in '%s'", key_file,
                 cert_file);
        ERR_clear_error();
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

void pg_tls_store_init(struct pg_tls_store *store, SSL_CTX *ctx)
{
    pthread_mutex_init(&store->lock, NULL);
    store->current = ctx;
}

SSL_CTX *pg_tls_store_get(struct pg_tls_store *store)
{
    pthread_mutex_lock(&store->lock);
    SSL_CTX *ctx = store->current;
    if (ctx)
        SSL_CTX_up_ref(ctx);
    pthread_mutex_unlock(&store->lock);
    return ctx;
}

void pg_tls_store_set(struct pg_tls_store *store, SSL_CTX *ctx)
{
    pthread_mutex_lock(&store->lock);
    SSL_CTX *old = store->current;
    store->current = ctx;
    pthread_mutex_unlock(&store->lock);
    SSL_CTX_free(old);
}

void pg_tls_store_clear(struct pg_tls_store *store)
{
    SSL_CTX_free(store->current);
    store->current = NULL;
    pthread_mutex_destroy(&store->lock);
}
