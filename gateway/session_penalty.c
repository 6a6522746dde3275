/*
 * session_penalty.c - the keyed hashes a failed login is reported with
 * (see session_penalty.h).
 */
#include <ctype.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/evp.h>
#include <openssl/crypto.h>

#include "session_penalty.h"

static unsigned char penalty_key[32];

int session_penalty_key_init(void)
{
	if (getrandom(penalty_key, sizeof(penalty_key), 0) != (ssize_t)sizeof(penalty_key))
		return -1;
	return 0;
}

/* HMAC-SHA256 of the parts (each ended by a NUL, so they cannot slide), first 8 bytes. */
static uint64_t keyed_hash(const char *label, const char *a, size_t alen, const char *b,
			   size_t blen)
{
	unsigned char in[1 + MG_USER_MAX + 1 + MG_PASSWORD_MAX + 1];
	unsigned char out[32];
	size_t n = 0, outlen = 0;
	uint64_t h = 0;

	in[n++] = (unsigned char)label[0];
	for (size_t i = 0; i < alen; i++)
		in[n++] = (unsigned char)tolower((unsigned char)a[i]);
	in[n++] = '\0';
	if (b != NULL) {
		memcpy(in + n, b, blen);
		n += blen;
		in[n++] = '\0';
	}
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, penalty_key, sizeof(penalty_key), in, n,
		      out, sizeof(out), &outlen) != NULL && outlen >= sizeof(h))
		memcpy(&h, out, sizeof(h));
	OPENSSL_cleanse(in, sizeof(in));
	OPENSSL_cleanse(out, sizeof(out));
	return h;
}

void session_penalty_keys(const struct mg_credentials *cred, uint64_t *user, uint64_t *password)
{
	size_t ulen = cred->user_len <= MG_USER_MAX ? cred->user_len : MG_USER_MAX;
	size_t plen = cred->password_len <= MG_PASSWORD_MAX ? cred->password_len : MG_PASSWORD_MAX;

	*user = keyed_hash("u", cred->user, ulen, NULL, 0);
	*password = keyed_hash("p", cred->user, ulen, cred->password, plen);
}
