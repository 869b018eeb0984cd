/* The TLS server context: certificate, key, protocol floor, cipher policy and ALPN.
 * Ownership: main creates one context before any worker starts and frees it after they end;
 * workers borrow it (OpenSSL contexts are safe to share between threads). */
#ifndef PUSHGATE_TLS_H
#define PUSHGATE_TLS_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stddef.h>

/* Returns a context, or NULL with a one-line reason in err (unreadable file, bad PEM, key not
 * matching the certificate). */
SSL_CTX *pg_tls_context_new(const char *cert_file, const char *key_file, char *err, size_t err_len);

/* The current context, replaced on SIGHUP while workers keep serving. Main owns the store and
 * one reference to its context; each worker holds a reference of its own, taken with
 * pg_tls_store_get on its thread, so replacing never frees a context a worker still uses
 * (open connections keep theirs through their SSL objects). */
struct pg_tls_store {
    pthread_mutex_t lock;
    SSL_CTX *current;
};

/* Takes ownership of ctx. */
void pg_tls_store_init(struct pg_tls_store *store, SSL_CTX *ctx);
/* Returns a new reference to the current context (the caller frees it), or NULL. */
SSL_CTX *pg_tls_store_get(struct pg_tls_store *store);
/* Replaces the current context (taking ownership of ctx); the store's old reference goes. */
void pg_tls_store_set(struct pg_tls_store *store, SSL_CTX *ctx);
void pg_tls_store_clear(struct pg_tls_store *store);

#endif
