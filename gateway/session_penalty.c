/*
 * session_penalty.c - the keyed hashes a failed login is reported with
 * (see session_penalty.h).
 */
#include <ctype.h>
#include <string.h>
#include <sys/random.h>

#include "session_penalty.h"
#include "siphash.h"

static unsigned char penalty_key[SIPHASH_KEY_LEN];

int session_penalty_key_init(void)
{
	if (getrandom(penalty_key, sizeof(penalty_key), 0) != (ssize_t)sizeof(penalty_key))
		return -1;
	return 0;
}

/* SipHash of the parts, each ended by a NUL so that they cannot slide into each other. */
static uint64_t keyed_hash(const char *label, const char *a, size_t alen, const char *b,
			   size_t blen)
{
	unsigned char in[1 + MG_USER_MAX + 1 + MG_PASSWORD_MAX + 1];
	size_t n = 0;
	uint64_t h;

	in[n++] = (unsigned char)label[0];
	for (size_t i = 0; i < alen; i++)
		in[n++] = (unsigned char)tolower((unsigned char)a[i]);
	in[n++] = '\0';
	if (b != NULL) {
		memcpy(in + n, b, blen);
		n += blen;
		in[n++] = '\0';
	}
	h = siphash24(penalty_key, in, n);
	explicit_bzero(in, sizeof(in));
	return h;
}

void session_penalty_keys(const struct mg_credentials *cred, uint64_t *user, uint64_t *password)
{
	size_t ulen = cred->user_len <= MG_USER_MAX ? cred->user_len : MG_USER_MAX;
	size_t plen = cred->password_len <= MG_PASSWORD_MAX ? cred->password_len : MG_PASSWORD_MAX;

	*user = keyed_hash("u", cred->user, ulen, NULL, 0);
	*password = keyed_hash("p", cred->user, ulen, cred->password, plen);
}
