/*
 * authfile.c - the dummy user the plugin logs in with when no credentials
 * file is given (the file itself is read by lib/credfile.c).
 */
#include <string.h>
#include <sys/random.h>

#include "authfile.h"

int authfile_dummy(struct mg_credentials *cred)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char random[16];
	size_t len = 0;

	credentials_wipe(cred);
	if (getrandom(random, sizeof(random), 0) != (ssize_t)sizeof(random))
		return -1;
	cred->user_len = strlen(MON_DUMMY_USER);
	memcpy(cred->user, MON_DUMMY_USER, cred->user_len + 1);
	memcpy(cred->password, "ccl-", 4);
	len = 4;
	for (size_t i = 0; i < sizeof(random); i++) {
		cred->password[len++] = hex[random[i] >> 4];
		cred->password[len++] = hex[random[i] & 0x0f];
	}
	cred->password[len] = '\0';
	cred->password_len = len;
	explicit_bzero(random, sizeof(random));
	return 0;
}
