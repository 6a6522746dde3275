/*
 * tls_openssl.h - what lib/tls.c and gateway/engine_tls.c share that
 * speaks OpenSSL's types; nobody else includes it.
 */
#ifndef MG_TLS_OPENSSL_H
#define MG_TLS_OPENSSL_H

#include <stddef.h>

#include <openssl/ssl.h>

/* err = "what: OpenSSL's first queued error" (or "no detail"); clears the queue. */
void tls_openssl_error(char *err, size_t errlen, const char *what);
/*
 * Settings every context shares (no compression or renegotiation, released
 * buffers, decrypted plaintext wiped once read).
 */
void tls_common_options(SSL_CTX *ctx);

#endif
