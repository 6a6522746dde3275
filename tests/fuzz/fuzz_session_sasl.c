/*
 * fuzz_session_sasl.c - libFuzzer target for strict base64 and SASL PLAIN / LOGIN.
 *
 * Checks the properties the strictness is for: accepted base64 is canonical
 * (it re-encodes to exactly the input), anything encoded decodes back, an
 * accepted PLAIN message is exactly "[user] NUL user NUL password", and every
 * refusal leaves the output wiped.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Ilib -Igateway \
 *        tests/fuzz/fuzz_session_sasl.c gateway/session_sasl.c
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "credentials.h"
#include "session_sasl.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool all_zero(const void *p, size_t len)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != 0)
			return false;
	return true;
}

static bool clean_value(const char *s, size_t len, size_t max)
{
	return len > 0 && len <= max && s[len] == '\0' && memchr(s, '\0', len) == NULL &&
	       memchr(s, '\r', len) == NULL && memchr(s, '\n', len) == NULL;
}

static void check_plain(const unsigned char *msg, size_t len)
{
	struct mg_credentials cred;
	const char *error = NULL;
	size_t u, p;

	memset(&cred, 0xaa, sizeof(cred));
	if (sasl_plain_decode(msg, len, &cred, &error) < 0) {
		CHECK(error != NULL);
		CHECK(all_zero(&cred, sizeof(cred)));
		return;
	}
	u = cred.user_len;
	p = cred.password_len;
	CHECK(clean_value(cred.user, u, MG_USER_MAX));
	CHECK(clean_value(cred.password, p, MG_PASSWORD_MAX));
	/* Rebuild the message from what was accepted: it must be the input. */
	CHECK(len == u + p + 2 || len == 2 * u + p + 2);
	if (len == u + p + 2) {
		CHECK(msg[0] == '\0');
	} else {
		CHECK(memcmp(msg, cred.user, u) == 0);
		msg += u;
	}
	CHECK(msg[0] == '\0' && memcmp(msg + 1, cred.user, u) == 0 && msg[u + 1] == '\0');
	CHECK(memcmp(msg + u + 2, cred.password, p) == 0);
}

static void check_login(const char *in, size_t size)
{
	char dst[64];
	size_t dstlen = 1;
	const char *error = NULL;

	memset(dst, 0xaa, sizeof(dst));
	if (sasl_login_decode(in, size, dst, sizeof(dst), &dstlen, &error) == 0) {
		CHECK(clean_value(dst, dstlen, sizeof(dst) - 1));
	} else {
		CHECK(error != NULL && dstlen == 0);
		CHECK(all_zero(dst, sizeof(dst)));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exact-size buffers, so any over-read or over-write is reported. */
	char *in = malloc(size > 0 ? size : 1);
	size_t outsize = size / 4 * 3;
	unsigned char *out = malloc(outsize > 0 ? outsize : 1);
	size_t enc_size = (size + 2) / 3 * 4 + 1;
	char *enc = malloc(enc_size);
	size_t outlen = 1, n;

	CHECK(in != NULL && out != NULL && enc != NULL);
	if (size > 0)
		memcpy(in, data, size);

	if (base64_decode(in, size, out, outsize, &outlen) == 0) {
		CHECK(outlen <= outsize);
		/* Strict means canonical: one spelling per value. */
		CHECK(base64_encode(out, outlen, enc, size + 1) == size);
		CHECK(memcmp(enc, in, size) == 0);
		check_plain(out, outlen);
	} else {
		CHECK(outlen == 0);
	}

	/* Arbitrary bytes always encode, and decode back to themselves. */
	n = base64_encode(data, size, enc, enc_size);
	CHECK(n == enc_size - 1 && enc[n] == '\0');
	free(out);
	out = malloc(size > 0 ? size : 1);
	CHECK(out != NULL);
	CHECK(base64_decode(enc, n, out, size, &outlen) == 0);
	CHECK(outlen == size && memcmp(out, data, size) == 0);

	check_plain(data, size);
	check_login(in, size);

	free(enc);
	free(out);
	free(in);
	return 0;
}
