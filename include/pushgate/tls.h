/* The TLS server context: certificate, key, protocol floor, cipher policy and ALPN.
 * Ownership: main creates one context before any worker starts and frees it after they end;
 * workers borrow it (OpenSSL contexts are safe to share between threads). */
#ifndef PUSHGATE_TLS_H
#define PUSHGATE_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

/* Returns a context, or NULL with a one-line reason in err (unreadable file, bad PEM, key not
 * matching the certificate). */
SSL_CTX *pg_tls_context_new(const char *cert_file, const char *key_file, char *err, size_t err_len);

#endif
