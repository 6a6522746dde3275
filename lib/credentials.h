/*
 * credentials.h - a user name and password as the client sent them.
 *
 * Fixed-size storage so the secret never lives in a heap block that could be
 * reallocated (and left behind) or logged by accident; credentials_wipe()
 * clears it with explicit_bzero as soon as the backend has answered.
 */
#ifndef MG_CREDENTIALS_H
#define MG_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define MG_USER_MAX	 255
#define MG_PASSWORD_MAX	 1023

struct mg_credentials {
	char user[MG_USER_MAX + 1];
	size_t user_len;
	char password[MG_PASSWORD_MAX + 1];
	size_t password_len;
};

static inline void credentials_wipe(struct mg_credentials *cred)
{
	/* Field by field: GCC's fortify check misreads a whole-struct wipe here. */
	explicit_bzero(cred->user, sizeof(cred->user));
	explicit_bzero(cred->password, sizeof(cred->password));
	cred->user_len = 0;
	cred->password_len = 0;
}

/*
 * Free of NUL, CR and LF, in the name and the password. Decoded SASL and
 * IMAP literals can carry them; no backend protocol can take them (a CR LF
 * would end the backend's command early), so such a login never reaches a
 * backend.
 */
static inline bool credentials_clean(const struct mg_credentials *cred)
{
	const char *fields[2] = { cred->user, cred->password };
	size_t lens[2] = { cred->user_len, cred->password_len };

	for (size_t f = 0; f < 2; f++)
		for (size_t i = 0; i < lens[f]; i++)
			if (fields[f][i] == '\0' || fields[f][i] == '\r' || fields[f][i] == '\n')
				return false;
	return true;
}

#endif
