/*
 * session_sasl.c - strict base64 and the SASL PLAIN (RFC 4616) and LOGIN decoders.
 *
 * These turn what a client typed after AUTHENTICATE into a user name and a
 * password. Strict means one spelling per value: base64 must be canonical
 * (padding present, unused bits zero, no whitespace), so that two different
 * client strings can never mean the same credentials and a decoder quirk
 * cannot be used to slip something past a log or a backend. Any decoded
 * password bytes are wiped on every failure path.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "session_sasl.h"

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The standard alphabet only: "-" and "_" (base64url) are errors, as is "=". */
static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Output size of an input whose length is a multiple of 4, judged by its padding. */
static size_t b64_decoded_len(const char *in, size_t inlen)
{
	size_t n = inlen / 4 * 3;

	if (inlen >= 4 && in[inlen - 1] == '=') {
		n--;
		if (in[inlen - 2] == '=')
			n--;
	}
	return n;
}

int base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outsize,
		  size_t *outlen)
{
	size_t i, o = 0;

	*outlen = 0;
	if (inlen % 4 != 0 || b64_decoded_len(in, inlen) > outsize)
		return -1;

	for (i = 0; i < inlen; i += 4) {
		bool last = i + 4 == inlen;
		int a, b, c, d;

		/* "=" is not in the alphabet, so it fails here anywhere but the end. */
		a = b64_value((unsigned char)in[i]);
		b = b64_value((unsigned char)in[i + 1]);
		if (a < 0 || b < 0)
			goto bad;
		out[o++] = (unsigned char)(a << 2 | b >> 4);

		if (last && in[i + 2] == '=') {
			/* "xx==": the 4 bits of b that did not make a byte must be zero. */
			if (in[i + 3] != '=' || (b & 0x0f) != 0)
				goto bad;
			break;
		}
		c = b64_value((unsigned char)in[i + 2]);
		if (c < 0)
			goto bad;
		out[o++] = (unsigned char)((b & 0x0f) << 4 | c >> 2);

		if (last && in[i + 3] == '=') {
			/* "xxx=": likewise the low 2 bits of c. */
			if ((c & 0x03) != 0)
				goto bad;
			break;
		}
		d = b64_value((unsigned char)in[i + 3]);
		if (d < 0)
			goto bad;
		out[o++] = (unsigned char)((c & 0x03) << 6 | d);
	}
	*outlen = o;
	return 0;

bad:
	/* What was decoded so far may be part of a password. */
	explicit_bzero(out, o);
	return -1;
}

size_t base64_encode(const unsigned char *in, size_t inlen, char *out, size_t outsize)
{
	size_t groups = inlen / 3 + (inlen % 3 != 0);
	size_t i, o = 0;

	if (groups > (SIZE_MAX - 1) / 4 || groups * 4 + 1 > outsize)
		return 0;
	for (i = 0; i + 3 <= inlen; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];

		out[o++] = b64_alphabet[v >> 18 & 0x3f];
		out[o++] = b64_alphabet[v >> 12 & 0x3f];
		out[o++] = b64_alphabet[v >> 6 & 0x3f];
		out[o++] = b64_alphabet[v & 0x3f];
	}
	if (inlen - i == 1) {
		unsigned v = (unsigned)in[i] << 16;

		out[o++] = b64_alphabet[v >> 18 & 0x3f];
		out[o++] = b64_alphabet[v >> 12 & 0x3f];
		out[o++] = '=';
		out[o++] = '=';
	} else if (inlen - i == 2) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;

		out[o++] = b64_alphabet[v >> 18 & 0x3f];
		out[o++] = b64_alphabet[v >> 12 & 0x3f];
		out[o++] = b64_alphabet[v >> 6 & 0x3f];
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

/*
 * The content rules for a user name or a password: non-empty, bounded, and
 * free of the bytes that would end or split a protocol line (or a C string)
 * when it is replayed to a backend.
 */
enum content_fault {
	CONTENT_OK,
	CONTENT_EMPTY,
	CONTENT_TOO_LONG,
	CONTENT_BAD_BYTE
};

static enum content_fault check_content(const unsigned char *s, size_t len, size_t max)
{
	size_t i;

	if (len == 0)
		return CONTENT_EMPTY;
	if (len > max)
		return CONTENT_TOO_LONG;
	for (i = 0; i < len; i++)
		if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n')
			return CONTENT_BAD_BYTE;
	return CONTENT_OK;
}

static const char *const user_fault[] = {
	[CONTENT_OK] = NULL,
	[CONTENT_EMPTY] = "empty user name",
	[CONTENT_TOO_LONG] = "user name too long",
	[CONTENT_BAD_BYTE] = "CR or LF in user name",
};

static const char *const password_fault[] = {
	[CONTENT_OK] = NULL,
	[CONTENT_EMPTY] = "empty password",
	[CONTENT_TOO_LONG] = "password too long",
	[CONTENT_BAD_BYTE] = "NUL, CR or LF in password",
};

static const char *const value_fault[] = {
	[CONTENT_OK] = NULL,
	[CONTENT_EMPTY] = "empty value",
	[CONTENT_TOO_LONG] = "value too long",
	[CONTENT_BAD_BYTE] = "NUL, CR or LF in value",
};

int sasl_plain_decode(const unsigned char *msg, size_t len, struct mg_credentials *cred,
		      const char **error)
{
	const unsigned char *authcid, *passwd, *nul;
	size_t authzid_len, authcid_len, passwd_len;
	enum content_fault fault;

	/*
	 * Start from nothing and copy only after every check has passed, so a
	 * failure leaves cred wiped rather than half filled.
	 */
	credentials_wipe(cred);

	/* Raw pointer arithmetic: split msg at its first two NULs. */
	nul = memchr(msg, '\0', len);
	if (nul == NULL) {
		*error = "missing NUL after authorization identity";
		return -1;
	}
	authzid_len = (size_t)(nul - msg);
	authcid = nul + 1;
	nul = memchr(authcid, '\0', len - authzid_len - 1);
	if (nul == NULL) {
		*error = "missing NUL after user name";
		return -1;
	}
	authcid_len = (size_t)(nul - authcid);
	passwd = nul + 1;
	passwd_len = len - authzid_len - 1 - authcid_len - 1;

	/* The gateway logs in as the user itself, never on behalf of someone else. */
	if (authzid_len != 0 &&
	    (authzid_len != authcid_len || memcmp(msg, authcid, authcid_len) != 0)) {
		*error = "authorization identity differs from user name";
		return -1;
	}
	fault = check_content(authcid, authcid_len, MG_USER_MAX);
	if (fault != CONTENT_OK) {
		*error = user_fault[fault];
		return -1;
	}
	/* A third NUL lands in the password and is refused there. */
	fault = check_content(passwd, passwd_len, MG_PASSWORD_MAX);
	if (fault != CONTENT_OK) {
		*error = password_fault[fault];
		return -1;
	}

	memcpy(cred->user, authcid, authcid_len);
	cred->user[authcid_len] = '\0';
	cred->user_len = authcid_len;
	memcpy(cred->password, passwd, passwd_len);
	cred->password[passwd_len] = '\0';
	cred->password_len = passwd_len;
	return 0;
}

int sasl_login_decode(const char *b64, size_t len, char *dst, size_t dstsize, size_t *dstlen,
		      const char **error)
{
	size_t n;
	enum content_fault fault;

	*dstlen = 0;
	if (dstsize == 0) {
		*error = "no room for value";
		return -1;
	}
	/* Decode straight into dst (keeping room for the NUL): no copy to wipe. */
	if (len % 4 == 0 && b64_decoded_len(b64, len) > dstsize - 1) {
		*error = value_fault[CONTENT_TOO_LONG];
		goto bad;
	}
	if (base64_decode(b64, len, (unsigned char *)dst, dstsize - 1, &n) < 0) {
		*error = "invalid base64";
		goto bad;
	}
	fault = check_content((const unsigned char *)dst, n, dstsize - 1);
	if (fault != CONTENT_OK) {
		*error = value_fault[fault];
		goto bad;
	}
	dst[n] = '\0';
	*dstlen = n;
	return 0;

bad:
	explicit_bzero(dst, dstsize);
	return -1;
}

size_t sasl_plain_encode(const char *authzid, size_t authzid_len, const char *authcid,
			 size_t authcid_len, const char *password, size_t password_len, char *out,
			 size_t outsize)
{
	unsigned char message[MG_USER_MAX + 1 + MG_USER_MAX + 1 + MG_PASSWORD_MAX];
	size_t len = 0, encoded;

	if (authzid_len > MG_USER_MAX || authcid_len > MG_USER_MAX ||
	    password_len > MG_PASSWORD_MAX)
		return 0;
	memcpy(message, authzid, authzid_len);
	len += authzid_len;
	message[len++] = '\0';
	memcpy(message + len, authcid, authcid_len);
	len += authcid_len;
	message[len++] = '\0';
	memcpy(message + len, password, password_len);
	len += password_len;
	encoded = base64_encode(message, len, out, outsize);
	explicit_bzero(message, sizeof(message));
	return encoded;
}
