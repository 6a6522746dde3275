/*
 * check_session_sasl.c - hostile, table-driven tests for strict base64 and the SASL
 * PLAIN and LOGIN decoders, including that failures leave no secret behind.
 */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "credentials.h"
#include "session_sasl.h"
#include "check_run.h"

#define BYTES(lit) lit, sizeof(lit) - 1
#define TABLE_LEN(t) ((int)(sizeof(t) / sizeof((t)[0])))

static bool all_zero(const void *p, size_t len)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != 0)
			return false;
	return true;
}

/* Exact-size heap copy so over-reads are caught by AddressSanitizer. */
static char *copy(const char *s, size_t len)
{
	char *c = malloc(len > 0 ? len : 1);

	ck_assert_ptr_nonnull(c);
	memcpy(c, s, len);
	return c;
}

/* ---- base64 ------------------------------------------------------------------ */

struct b64_case {
	const char *plain;
	size_t plain_len;
	const char *encoded;
};

/* RFC 4648 section 10, plus bytes that exercise every bit of the alphabet. */
static const struct b64_case b64_cases[] = {
	{ BYTES(""), "" },
	{ BYTES("f"), "Zg==" },
	{ BYTES("fo"), "Zm8=" },
	{ BYTES("foo"), "Zm9v" },
	{ BYTES("foob"), "Zm9vYg==" },
	{ BYTES("fooba"), "Zm9vYmE=" },
	{ BYTES("foobar"), "Zm9vYmFy" },
	{ BYTES("\0"), "AA==" },
	{ BYTES("\0\0\0"), "AAAA" },
	{ BYTES("\xff\xff\xff"), "////" },
	{ BYTES("\xfb\xef\xbe"), "++++" },
	{ BYTES("\0alice\0secret"), "AGFsaWNlAHNlY3JldA==" },
};

START_TEST(test_b64_decode)
{
	const struct b64_case *c = &b64_cases[_i];
	size_t inlen = strlen(c->encoded);
	char *in = copy(c->encoded, inlen);
	unsigned char out[64];
	size_t outlen = 999;

	ck_assert_int_eq(base64_decode(in, inlen, out, sizeof(out), &outlen), 0);
	ck_assert_uint_eq(outlen, c->plain_len);
	ck_assert(memcmp(out, c->plain, outlen) == 0);
	free(in);
}
END_TEST

/* The output buffer may be exactly the decoded size, not one byte less. */
START_TEST(test_b64_decode_fit)
{
	const struct b64_case *c = &b64_cases[_i];
	size_t inlen = strlen(c->encoded);
	unsigned char *out = malloc(c->plain_len + 1);
	size_t outlen;

	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(base64_decode(c->encoded, inlen, out, c->plain_len, &outlen), 0);
	ck_assert_uint_eq(outlen, c->plain_len);
	if (c->plain_len > 0) {
		ck_assert_int_eq(base64_decode(c->encoded, inlen, out, c->plain_len - 1, &outlen), -1);
		ck_assert_uint_eq(outlen, 0);
	}
	free(out);
}
END_TEST

START_TEST(test_b64_encode)
{
	const struct b64_case *c = &b64_cases[_i];
	size_t enclen = strlen(c->encoded);
	char *out = malloc(enclen + 1);

	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(base64_encode((const unsigned char *)c->plain, c->plain_len, out,
					enclen + 1), enclen);
	ck_assert_str_eq(out, c->encoded);
	/* No room for the terminating NUL: refused. */
	if (enclen > 0)
		ck_assert_uint_eq(base64_encode((const unsigned char *)c->plain, c->plain_len, out,
						enclen), 0);
	free(out);
}
END_TEST

START_TEST(test_b64_encode_no_room)
{
	char out[1] = { 'x' };

	ck_assert_uint_eq(base64_encode((const unsigned char *)"f", 1, out, 0), 0);
	ck_assert_int_eq(out[0], 'x');
	/* Empty input: an empty string, if there is room for its NUL. */
	ck_assert_uint_eq(base64_encode((const unsigned char *)"", 0, out, 1), 0);
	ck_assert_int_eq(out[0], '\0');
}
END_TEST

/* Every byte value and every length 0..300 survive encode then decode. */
START_TEST(test_b64_round_trip)
{
	unsigned char plain[300], back[300];
	char enc[404];
	size_t len, n, outlen;

	for (len = 0; len < sizeof(plain); len++)
		plain[len] = (unsigned char)(len * 7 + 3);
	for (len = 0; len <= sizeof(plain); len++) {
		n = base64_encode(plain, len, enc, sizeof(enc));
		ck_assert_uint_eq(n, (len + 2) / 3 * 4);
		ck_assert_int_eq(base64_decode(enc, n, back, sizeof(back), &outlen), 0);
		ck_assert_uint_eq(outlen, len);
		ck_assert(memcmp(plain, back, len) == 0);
	}
}
END_TEST

struct b64_bad_case {
	const char *in;
	size_t len;
};

static const struct b64_bad_case b64_bad_cases[] = {
	/* length not a multiple of 4 (missing or extra padding) */
	{ BYTES("Z") },
	{ BYTES("Zg") },
	{ BYTES("Zg=") },
	{ BYTES("Zm8") },
	{ BYTES("Zm9vY") },
	{ BYTES("Zg===") },
	/* padding in the wrong place */
	{ BYTES("====") },
	{ BYTES("Z===") },
	{ BYTES("=Zm9") },
	{ BYTES("Zm=v") },
	{ BYTES("Z=g=") },
	{ BYTES("Zg=a") },
	{ BYTES("Zg==Zg==") },
	{ BYTES("Zm8=Zm9v") },
	{ BYTES("Zm9v====") },
	/* non-zero bits in the padding */
	{ BYTES("Zh==") },
	{ BYTES("Zv==") },
	{ BYTES("Zm9=") },
	{ BYTES("Zm/=") },
	{ BYTES("Zm9vYh==") },
	/* characters outside the alphabet */
	{ BYTES("Zm9-") },
	{ BYTES("Zm9_") },
	{ BYTES("Zm9.") },
	{ BYTES("Zm9\0") },
	{ BYTES("\0\0\0\0") },
	{ BYTES("Zm9\xc3") },
	{ BYTES("Zm9v\x80\x80\x80\x80") },
	/* whitespace, anywhere */
	{ BYTES("Zm9v\r\n") },
	{ BYTES("Zm9v Zm9v") },
	{ BYTES(" Zm9vZm9") },
	{ BYTES("Zm 9") },
	{ BYTES("Zm\t9") },
	{ BYTES("Zm9vYg==\n") },
};

START_TEST(test_b64_bad)
{
	const struct b64_bad_case *c = &b64_bad_cases[_i];
	char *in = copy(c->in, c->len);
	unsigned char out[64];
	size_t outlen = 999;

	memset(out, 0, sizeof(out));
	ck_assert_msg(base64_decode(in, c->len, out, sizeof(out), &outlen) == -1, "case %d", _i);
	ck_assert_uint_eq(outlen, 0);
	/* Whatever was decoded before the error is wiped. */
	ck_assert(all_zero(out, sizeof(out)));
	free(in);
}
END_TEST

/* ---- SASL PLAIN --------------------------------------------------------------- */

struct plain_case {
	const char *msg;
	size_t len;
	const char *user;	/* NULL: must be refused */
	const char *password;
};

static const struct plain_case plain_cases[] = {
	{ BYTES("\0alice\0secret"), "alice", "secret" },
	{ BYTES("alice\0alice\0secret"), "alice", "secret" },
	{ BYTES("\0a\0b"), "a", "b" },
	{ BYTES("\0al ice\0p\xc3\xa4ss word\t"), "al ice", "p\xc3\xa4ss word\t" },
	{ BYTES("\0alice@example.org\0\"secret\\"), "alice@example.org", "\"secret\\" },
	/* another identity, even one that differs only by case, is refused */
	{ BYTES("admin\0alice\0secret"), NULL, NULL },
	{ BYTES("Alice\0alice\0secret"), NULL, NULL },
	{ BYTES("alic\0alice\0secret"), NULL, NULL },
	{ BYTES("alicex\0alice\0secret"), NULL, NULL },
	/* empty fields */
	{ BYTES("\0\0secret"), NULL, NULL },
	{ BYTES("\0alice\0"), NULL, NULL },
	{ BYTES("\0\0"), NULL, NULL },
	{ BYTES(""), NULL, NULL },
	{ BYTES("alice\0\0secret"), NULL, NULL },
	/* missing or extra NULs */
	{ BYTES("alicesecret"), NULL, NULL },
	{ BYTES("\0alicesecret"), NULL, NULL },
	{ BYTES("alice\0secret"), NULL, NULL },
	{ BYTES("\0"), NULL, NULL },
	{ BYTES("\0alice\0sec\0ret"), NULL, NULL },
	{ BYTES("\0alice\0secret\0"), NULL, NULL },
	{ BYTES("\0alice\0\0secret"), NULL, NULL },
	/* line breaks that would split a command when replayed */
	{ BYTES("\0ali\rce\0secret"), NULL, NULL },
	{ BYTES("\0ali\nce\0secret"), NULL, NULL },
	{ BYTES("\0alice\0sec\r\nret"), NULL, NULL },
	{ BYTES("\0alice\0secret\n"), NULL, NULL },
	{ BYTES("ali\rce\0ali\rce\0secret"), NULL, NULL },
};

START_TEST(test_plain)
{
	const struct plain_case *c = &plain_cases[_i];
	unsigned char *msg = (unsigned char *)copy(c->msg, c->len);
	struct mg_credentials cred;
	const char *error = NULL;
	int rc;

	memset(&cred, 0xaa, sizeof(cred));
	rc = sasl_plain_decode(msg, c->len, &cred, &error);
	if (c->user == NULL) {
		ck_assert_msg(rc == -1, "case %d accepted", _i);
		ck_assert_ptr_nonnull(error);
		ck_assert(all_zero(&cred, sizeof(cred)));
	} else {
		ck_assert_msg(rc == 0, "case %d: %s", _i, error);
		ck_assert_str_eq(cred.user, c->user);
		ck_assert_uint_eq(cred.user_len, strlen(c->user));
		ck_assert_str_eq(cred.password, c->password);
		ck_assert_uint_eq(cred.password_len, strlen(c->password));
	}
	free(msg);
}
END_TEST

/* "\0" user "\0" password with the given lengths. */
static unsigned char *make_plain(size_t user_len, size_t password_len, size_t *len)
{
	unsigned char *msg;

	*len = 2 + user_len + password_len;
	msg = malloc(*len);
	ck_assert_ptr_nonnull(msg);
	msg[0] = '\0';
	memset(msg + 1, 'u', user_len);
	msg[1 + user_len] = '\0';
	memset(msg + 2 + user_len, 'p', password_len);
	return msg;
}

START_TEST(test_plain_limits)
{
	static const struct {
		size_t user_len, password_len;
		int rc;
	} cases[] = {
		{ MG_USER_MAX, 1, 0 },
		{ MG_USER_MAX + 1, 1, -1 },
		{ 1, MG_PASSWORD_MAX, 0 },
		{ 1, MG_PASSWORD_MAX + 1, -1 },
		{ MG_USER_MAX, MG_PASSWORD_MAX, 0 },
		{ 100000, 1, -1 },
		{ 1, 100000, -1 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mg_credentials cred;
		const char *error = NULL;
		size_t len;
		unsigned char *msg = make_plain(cases[i].user_len, cases[i].password_len, &len);

		memset(&cred, 0xaa, sizeof(cred));
		ck_assert_int_eq(sasl_plain_decode(msg, len, &cred, &error), cases[i].rc);
		if (cases[i].rc == 0) {
			ck_assert_uint_eq(cred.user_len, cases[i].user_len);
			ck_assert_uint_eq(strlen(cred.user), cases[i].user_len);
			ck_assert_uint_eq(cred.password_len, cases[i].password_len);
			ck_assert_uint_eq(strlen(cred.password), cases[i].password_len);
		} else {
			ck_assert_ptr_nonnull(error);
			ck_assert(all_zero(&cred, sizeof(cred)));
		}
		free(msg);
	}
}
END_TEST

/* The whole path a client uses: base64 from AUTHENTICATE, then PLAIN. */
START_TEST(test_plain_from_base64)
{
	static const char b64[] = "AGFsaWNlAHNlY3JldA==";
	unsigned char msg[64];
	size_t len;
	struct mg_credentials cred;
	const char *error;

	ck_assert_int_eq(base64_decode(b64, sizeof(b64) - 1, msg, sizeof(msg), &len), 0);
	ck_assert_int_eq(sasl_plain_decode(msg, len, &cred, &error), 0);
	ck_assert_str_eq(cred.user, "alice");
	ck_assert_str_eq(cred.password, "secret");
	credentials_wipe(&cred);
	ck_assert(all_zero(&cred, sizeof(cred)));
}
END_TEST

/* ---- SASL LOGIN ---------------------------------------------------------------- */

struct login_case {
	const char *b64;
	size_t len;
	const char *value;	/* NULL: must be refused */
};

static const struct login_case login_cases[] = {
	{ BYTES("dXNlcg=="), "user" },
	{ BYTES("Ym9iQGV4YW1wbGUub3Jn"), "bob@example.org" },
	{ BYTES("cORzcw=="), "p\xe4ss" },
	{ BYTES("MTIzNDU2Nzg5MDEyMzQ1"), "123456789012345" },	/* exactly fills dst */
	{ BYTES("MTIzNDU2Nzg5MDEyMzQ1Ng=="), NULL },		/* one byte too many */
	{ BYTES(""), NULL },				/* empty */
	{ BYTES("dXNlcg"), NULL },			/* missing padding */
	{ BYTES("dXNlcg==\r\n"), NULL },
	{ BYTES("dXNl cg=="), NULL },
	{ BYTES("dXNlcg=="" "), NULL },
	{ BYTES("dXNlch=="), NULL },			/* pad bits */
	{ BYTES("*"), NULL },				/* a cancel is not a value */
	{ BYTES("AHVzZXI="), NULL },			/* "\0user" */
	{ BYTES("dXNlcgA="), NULL },			/* "user\0" */
	{ BYTES("dXMNZXI="), NULL },			/* "us\rer" */
	{ BYTES("dXMKZXI="), NULL },			/* "us\ner" */
	{ BYTES("dXNlcg0K"), NULL },			/* "user\r\n" */
};

START_TEST(test_login)
{
	const struct login_case *c = &login_cases[_i];
	char *b64 = copy(c->b64, c->len);
	char dst[16];
	size_t dstlen = 999;
	const char *error = NULL;
	int rc;

	memset(dst, 0xaa, sizeof(dst));
	rc = sasl_login_decode(b64, c->len, dst, sizeof(dst), &dstlen, &error);
	if (c->value == NULL) {
		ck_assert_msg(rc == -1, "case %d accepted", _i);
		ck_assert_ptr_nonnull(error);
		ck_assert_uint_eq(dstlen, 0);
		ck_assert(all_zero(dst, sizeof(dst)));
	} else {
		ck_assert_msg(rc == 0, "case %d: %s", _i, error);
		ck_assert_str_eq(dst, c->value);
		ck_assert_uint_eq(dstlen, strlen(c->value));
	}
	free(b64);
}
END_TEST

START_TEST(test_login_into_credentials)
{
	struct mg_credentials cred;
	const char *error;

	memset(&cred, 0, sizeof(cred));
	ck_assert_int_eq(sasl_login_decode("YWxpY2U=", 8, cred.user, sizeof(cred.user),
					   &cred.user_len, &error), 0);
	ck_assert_int_eq(sasl_login_decode("c2VjcmV0", 8, cred.password, sizeof(cred.password),
					   &cred.password_len, &error), 0);
	ck_assert_str_eq(cred.user, "alice");
	ck_assert_uint_eq(cred.user_len, 5);
	ck_assert_str_eq(cred.password, "secret");
	ck_assert_uint_eq(cred.password_len, 6);
}
END_TEST

START_TEST(test_login_no_room)
{
	char dst[1] = { 'x' };
	size_t dstlen = 999;
	const char *error = NULL;

	ck_assert_int_eq(sasl_login_decode("dXNlcg==", 8, dst, 0, &dstlen, &error), -1);
	ck_assert_ptr_nonnull(error);
	ck_assert_uint_eq(dstlen, 0);
	ck_assert_int_eq(dst[0], 'x');
	/* Room for the NUL only: no value fits. */
	ck_assert_int_eq(sasl_login_decode("dXNlcg==", 8, dst, 1, &dstlen, &error), -1);
	ck_assert_int_eq(dst[0], '\0');
}
END_TEST

static Suite *sasl_suite(void)
{
	Suite *s = suite_create("sasl");
	TCase *tc;

	tc = tcase_create("base64");
	tcase_add_loop_test(tc, test_b64_decode, 0, TABLE_LEN(b64_cases));
	tcase_add_loop_test(tc, test_b64_decode_fit, 0, TABLE_LEN(b64_cases));
	tcase_add_loop_test(tc, test_b64_encode, 0, TABLE_LEN(b64_cases));
	tcase_add_test(tc, test_b64_encode_no_room);
	tcase_add_test(tc, test_b64_round_trip);
	tcase_add_loop_test(tc, test_b64_bad, 0, TABLE_LEN(b64_bad_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("plain");
	tcase_add_loop_test(tc, test_plain, 0, TABLE_LEN(plain_cases));
	tcase_add_test(tc, test_plain_limits);
	tcase_add_test(tc, test_plain_from_base64);
	suite_add_tcase(s, tc);

	tc = tcase_create("login");
	tcase_add_loop_test(tc, test_login, 0, TABLE_LEN(login_cases));
	tcase_add_test(tc, test_login_into_credentials);
	tcase_add_test(tc, test_login_no_room);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(sasl_suite());
}
