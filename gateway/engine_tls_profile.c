/*
 * engine_tls_profile.c - a TLS profile on an OpenSSL context (see
 * engine_tls_profile.h).
 *
 * forward_secrecy = required keeps, of the TLS 1.2 suites the cipher
 * string selects, only those with an ephemeral (EC)DHE key exchange and a
 * real signature: the list is filtered by each suite's key exchange, not
 * by subtracting the families known today, so a suite OpenSSL adds later
 * cannot slip in. TLS 1.3 suites always have it.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/ssl.h>

#include "engine_tls_profile.h"
#include "tls_openssl.h"

/* TLS 1.2 suites with forward secrecy and AEAD only. */
static const char default_ciphers[] =
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";

/* Longest TLS 1.3 suite name we look at ("TLS_CHACHA20_POLY1305_SHA256" is 28). */
#define SUITE_NAME_MAX 64

/*
 * err = "which: OpenSSL's reason (its detail)": these end up in
 * "FILE:LINE: ..." messages, where OpenSSL's error codes mean nothing.
 */
static int fail(const char **option, const char *which, char *err, size_t errlen)
{
	const char *data = NULL;
	int flags = 0;
	unsigned long code = ERR_get_error_all(NULL, NULL, NULL, &data, &flags);
	const char *reason = code != 0 ? ERR_reason_error_string(code) : NULL;
	bool detail = data != NULL && (flags & ERR_TXT_STRING) != 0 && data[0] != '\0';

	if (option != NULL)
		*option = which;
	snprintf(err, errlen, "%s: %s%s%s%s", which, reason != NULL ? reason : "not accepted",
		 detail ? " (" : "", detail ? data : "", detail ? ")" : "");
	ERR_clear_error();
	return -1;
}

static bool is_tls13(const SSL_CIPHER *c)
{
	return SSL_CIPHER_get_kx_nid(c) == NID_kx_any;
}

static bool forward_secret(const SSL_CIPHER *c)
{
	int kx = SSL_CIPHER_get_kx_nid(c);

	return (kx == NID_kx_ecdhe || kx == NID_kx_dhe) && SSL_CIPHER_get_auth_nid(c) != NID_auth_null;
}

/*
 * Keep only the forward-secret TLS 1.2 suites of ctx's list, in their
 * order. Returns 0, or -1 with err when none is left.
 */
static int keep_forward_secret(SSL_CTX *ctx, const char **option, char *err, size_t errlen)
{
	STACK_OF(SSL_CIPHER) *list = SSL_CTX_get_ciphers(ctx);
	size_t cap = 1, len = 0;
	char *names;
	int ok;

	for (int i = 0; i < sk_SSL_CIPHER_num(list); i++)
		cap += strlen(SSL_CIPHER_get_name(sk_SSL_CIPHER_value(list, i))) + 1;
	names = malloc(cap);
	if (names == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	names[0] = '\0';
	for (int i = 0; i < sk_SSL_CIPHER_num(list); i++) {
		const SSL_CIPHER *c = sk_SSL_CIPHER_value(list, i);
		const char *name = SSL_CIPHER_get_name(c);
		size_t n = strlen(name);

		if (is_tls13(c) || !forward_secret(c))
			continue;
		if (len > 0)
			names[len++] = ':';
		memcpy(names + len, name, n + 1);	/* cap counted every name and separator */
		len += n;
	}
	ok = len > 0 && SSL_CTX_set_cipher_list(ctx, names) == 1;
	free(names);
	if (!ok) {
		ERR_clear_error();
		if (option != NULL)
			*option = "ciphers";
		snprintf(err, errlen, "ciphers: no suite with forward secrecy "
			 "(forward_secrecy = required)");
		return -1;
	}
	return 0;
}

/*
 * OpenSSL skips the names it does not know in a TLS 1.3 suite list; a
 * typing mistake would silently leave a weaker list. Each name must be
 * one OpenSSL knows.
 */
static int set_suites(SSL_CTX *ctx, const char *suites, const char **option, char *err,
		      size_t errlen)
{
	const char *p = suites;

	while (*p != '\0') {
		size_t n = strcspn(p, ":");
		char name[SUITE_NAME_MAX + 1];

		if (n == 0 || n > SUITE_NAME_MAX) {
			if (option != NULL)
				*option = "ciphersuites";
			snprintf(err, errlen, "ciphersuites: %s", n == 0 ? "empty name in the list"
									: "unknown suite");
			return -1;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		if (SSL_CTX_set_ciphersuites(ctx, name) != 1) {
			ERR_clear_error();
			if (option != NULL)
				*option = "ciphersuites";
			snprintf(err, errlen, "ciphersuites: unknown suite '%.*s'", (int)n, p);
			return -1;
		}
		p += n + (p[n] == ':');
	}
	return SSL_CTX_set_ciphersuites(ctx, suites) == 1
		       ? 0
		       : fail(option, "ciphersuites", err, errlen);
}

int tls_profile_apply(struct ssl_ctx_st *ctx, const struct mg_tls_profile *p,
		      const char **option, char *err, size_t errlen)
{
	int version = p->min_version == MG_TLS_1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;

	ERR_clear_error();
	if (SSL_CTX_set_min_proto_version(ctx, version) != 1)
		return fail(option, "min_protocol", err, errlen);
	if (SSL_CTX_set_cipher_list(ctx, p->ciphers != NULL ? p->ciphers : default_ciphers) != 1)
		return fail(option, "ciphers", err, errlen);
	if (p->require_forward_secrecy && keep_forward_secret(ctx, option, err, errlen) < 0)
		return -1;
	if (p->ciphersuites != NULL && set_suites(ctx, p->ciphersuites, option, err, errlen) < 0)
		return -1;
	if (p->groups != NULL && SSL_CTX_set1_groups_list(ctx, p->groups) != 1)
		return fail(option, "groups", err, errlen);
	return 0;
}

int tls_profile_check(const struct mg_tls_profile *p, const char **option, char *err,
		      size_t errlen)
{
	SSL_CTX *scratch = SSL_CTX_new(TLS_method());
	int rc;

	if (scratch == NULL) {
		tls_openssl_error(err, errlen, "cannot create TLS context");
		return -1;
	}
	rc = tls_profile_apply(scratch, p, option, err, errlen);
	SSL_CTX_free(scratch);
	return rc;
}
