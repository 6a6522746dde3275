/*
 * session_sasl.h - strict base64 and the SASL PLAIN (RFC 4616) and LOGIN decoders.
 */
#ifndef MG_SESSION_SASL_H
#define MG_SESSION_SASL_H

#include <stddef.h>

#include "credentials.h"

/*
 * Strict RFC 4648 base64: no whitespace, correct padding, no bits set in the
 * padding. Returns 0 and *outlen, or -1 on bad input or when out is too small.
 * An empty input decodes to an empty output.
 */
int base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outsize,
		  size_t *outlen);

/* Returns the encoded length (NUL-terminated in out), or 0 when it does not fit. */
size_t base64_encode(const unsigned char *in, size_t inlen, char *out, size_t outsize);

/*
 * Decode a SASL PLAIN message "authzid NUL authcid NUL passwd" (already
 * base64-decoded) into cred. The authzid must be empty or equal to authcid
 * (the gateway does not act for other users); user and password must be
 * non-empty, within the credential limits and contain no NUL, CR or LF.
 * Returns 0, or -1 with *error set to a short static reason.
 */
int sasl_plain_decode(const unsigned char *msg, size_t len, struct mg_credentials *cred,
		      const char **error);

/*
 * Decode one base64 line of SASL LOGIN (user name or password) into dst of
 * size dstsize (NUL-terminated, *dstlen set). Same content rules as PLAIN.
 * Returns 0 or -1 with *error set.
 */
int sasl_login_decode(const char *b64, size_t len, char *dst, size_t dstsize, size_t *dstlen,
		      const char **error);

/*
 * Encode a SASL PLAIN message "authzid NUL authcid NUL password" in base64
 * into out (NUL-terminated), for logging in to a backend as a master user
 * on behalf of authzid. Returns the encoded length, or 0 when a part is too
 * long or out is too small. The plain message is wiped before returning.
 */
size_t sasl_plain_encode(const char *authzid, size_t authzid_len, const char *authcid,
			 size_t authcid_len, const char *password, size_t password_len, char *out,
			 size_t outsize);

#endif
