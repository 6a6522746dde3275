/*
 * engine_tls_profile.h - a TLS profile (config.h's struct mg_tls_profile:
 * a tls_profile section, or the tls section's own settings) put on an
 * OpenSSL context: lowest version, TLS 1.2 ciphers (without the suites
 * that lack forward secrecy when it is required), TLS 1.3 suites, key
 * exchange groups. The same code checks a profile when the configuration
 * is loaded, on a scratch context, so what -t accepts an engine can apply.
 */
#ifndef MG_ENGINE_TLS_PROFILE_H
#define MG_ENGINE_TLS_PROFILE_H

#include <stddef.h>

#include "config.h"

struct ssl_ctx_st;	/* OpenSSL's SSL_CTX */

/*
 * Apply p to ctx (server or client). Returns 0, or -1 with err saying what
 * is wrong and *option naming the setting at fault ("ciphers",
 * "ciphersuites", "groups", "min_protocol"); option may be NULL.
 */
int tls_profile_apply(struct ssl_ctx_st *ctx, const struct mg_tls_profile *p,
		      const char **option, char *err, size_t errlen);

/* Check p on a scratch context: tls_profile_apply() without a context. */
int tls_profile_check(const struct mg_tls_profile *p, const char **option, char *err,
		      size_t errlen);

#endif
