/*
 * check_auth_frame.c - the session <-> auth worker frames: round trips, and
 * every way a frame can be truncated, oversized, padded or poisoned.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "auth_frame.h"
#include "check_run.h"

#define RAW_MAX 4096

/* Build a request byte by byte, with whatever lengths the test wants. */
static size_t raw_request(unsigned char *buf, unsigned version, const char *user, size_t ulen,
			  const char *password, size_t plen, const char *rhost, size_t rlen)
{
	size_t n = 0;
	const char *data[3] = { user, password, rhost };
	size_t lens[3] = { ulen, plen, rlen };

	buf[n++] = (unsigned char)version;
	for (int i = 0; i < 3; i++) {
		buf[n++] = (unsigned char)(lens[i] >> 8);
		buf[n++] = (unsigned char)(lens[i] & 0xff);
		memcpy(buf + n, data[i], lens[i]);
		n += lens[i];
	}
	return n;
}

static size_t raw_response(unsigned char *buf, unsigned version, unsigned status,
			   const char *reason, size_t rlen)
{
	size_t n = 0;

	buf[n++] = (unsigned char)version;
	buf[n++] = (unsigned char)status;
	buf[n++] = (unsigned char)(rlen >> 8);
	buf[n++] = (unsigned char)(rlen & 0xff);
	memcpy(buf + n, reason, rlen);
	return n + rlen;
}

static char long_user[MG_USER_MAX + 2];
static char long_password[MG_PASSWORD_MAX + 2];
static char long_rhost[AUTH_RHOST_MAX + 2];
static char long_reason[AUTH_REASON_MAX + 2];

static void fill_long_strings(void)
{
	memset(long_user, 'u', sizeof(long_user) - 1);
	memset(long_password, 'p', sizeof(long_password) - 1);
	memset(long_rhost, '1', sizeof(long_rhost) - 1);
	memset(long_reason, 'r', sizeof(long_reason) - 1);
}

/* ---- requests ----------------------------------------------------------- */

struct request_case {
	const char *user;
	size_t ulen;
	const char *password;
	size_t plen;
	const char *rhost;
	size_t rlen;
};

#define S(x) x, sizeof(x) - 1

static const struct request_case good_requests[] = {
	{ S("alice"), S("secret"), S("192.0.2.1") },
	{ S("bob@example.org"), S("pass word with spaces"), S("2001:db8::1") },
	{ S("x"), S(""), S("") },				/* empty password, no rhost */
	{ S("\xc3\xa9milie"), S("\x01\x7f\xff tab\there"), S("::ffff:198.51.100.7") },
	{ S("quote\"and\\back"), S("\"{}*%"), S("h") },
};

START_TEST(request_round_trip)
{
	const struct request_case *c = &good_requests[_i];
	unsigned char buf[AUTH_REQUEST_MAX];
	struct auth_request req;
	size_t len = 0;
	char err[128];

	ck_assert_int_eq(auth_request_encode(c->user, c->ulen, c->password, c->plen, c->rhost,
					     c->rlen, buf, sizeof(buf), &len, err, sizeof(err)), 0);
	ck_assert_uint_eq(len, 1 + 2 + c->ulen + 2 + c->plen + 2 + c->rlen);
	ck_assert_int_eq(auth_request_decode(buf, len, &req, err, sizeof(err)), 0);
	ck_assert_uint_eq(req.user_len, c->ulen);
	ck_assert_uint_eq(req.password_len, c->plen);
	ck_assert_uint_eq(req.rhost_len, c->rlen);
	ck_assert(memcmp(req.user, c->user, c->ulen) == 0 && req.user[c->ulen] == '\0');
	ck_assert(memcmp(req.password, c->password, c->plen) == 0 &&
		  req.password[c->plen] == '\0');
	ck_assert(memcmp(req.rhost, c->rhost, c->rlen) == 0 && req.rhost[c->rlen] == '\0');
	auth_request_wipe(&req);
	ck_assert_uint_eq(req.password_len, 0);
	ck_assert_int_eq(req.password[0], 0);
}
END_TEST

START_TEST(request_at_every_maximum)
{
	unsigned char buf[AUTH_REQUEST_MAX];
	struct auth_request req;
	size_t len = 0;
	char err[128];

	fill_long_strings();
	ck_assert_int_eq(auth_request_encode(long_user, MG_USER_MAX, long_password,
					     MG_PASSWORD_MAX, long_rhost, AUTH_RHOST_MAX, buf,
					     sizeof(buf), &len, err, sizeof(err)), 0);
	ck_assert_uint_eq(len, AUTH_REQUEST_MAX);
	ck_assert_int_eq(auth_request_decode(buf, len, &req, err, sizeof(err)), 0);
	ck_assert_uint_eq(req.user_len, MG_USER_MAX);
	ck_assert_uint_eq(req.password_len, MG_PASSWORD_MAX);
	ck_assert_uint_eq(req.rhost_len, AUTH_RHOST_MAX);
}
END_TEST

START_TEST(request_every_truncation_refused)
{
	unsigned char buf[AUTH_REQUEST_MAX];
	struct auth_request req;
	size_t len = 0;
	char err[128];

	ck_assert_int_eq(auth_request_encode(S("alice"), S("secret"), S("192.0.2.1"), buf,
					     sizeof(buf), &len, err, sizeof(err)), 0);
	for (size_t cut = 0; cut < len; cut++) {
		ck_assert_msg(auth_request_decode(buf, cut, &req, err, sizeof(err)) == -1,
			      "a request cut at %zu of %zu bytes was accepted", cut, len);
		/* A refused decode leaves no part of the password behind. */
		ck_assert_uint_eq(req.password_len, 0);
		ck_assert_int_eq(req.password[0], 0);
	}
}
END_TEST

START_TEST(request_trailing_bytes_refused)
{
	unsigned char buf[AUTH_REQUEST_MAX + 8];
	struct auth_request req;
	size_t len = 0;
	char err[128];

	ck_assert_int_eq(auth_request_encode(S("alice"), S("secret"), S(""), buf, sizeof(buf),
					     &len, err, sizeof(err)), 0);
	for (size_t extra = 1; extra <= 3; extra++) {
		memset(buf + len, 0, extra);
		ck_assert_int_eq(auth_request_decode(buf, len + extra, &req, err, sizeof(err)), -1);
		ck_assert_ptr_nonnull(strstr(err, "trailing"));
	}
}
END_TEST

START_TEST(request_total_over_maximum_refused)
{
	static unsigned char buf[AUTH_REQUEST_MAX + 1];
	struct auth_request req;
	char err[128];

	memset(buf, 0, sizeof(buf));
	buf[0] = AUTH_FRAME_VERSION;
	ck_assert_int_eq(auth_request_decode(buf, sizeof(buf), &req, err, sizeof(err)), -1);
}
END_TEST

/* Hand-built requests that a strict decoder must refuse. */
struct raw_case {
	const char *name;
	unsigned version;
	const char *user;
	size_t ulen;
	const char *password;
	size_t plen;
	const char *rhost;
	size_t rlen;
};

static const struct raw_case bad_raw_requests[] = {
	{ "version 0", 0, S("alice"), S("secret"), S("") },
	{ "version 2", 2, S("alice"), S("secret"), S("") },
	{ "version 255", 255, S("alice"), S("secret"), S("") },
	{ "empty user", 1, S(""), S("secret"), S("") },
	{ "NUL in user", 1, S("al\0ice"), S("secret"), S("") },
	{ "CR in user", 1, S("al\rice"), S("secret"), S("") },
	{ "LF in user", 1, S("alice\n"), S("secret"), S("") },
	{ "NUL in password", 1, S("alice"), S("sec\0ret"), S("") },
	{ "CR in password", 1, S("alice"), S("\rsecret"), S("") },
	{ "LF in password", 1, S("alice"), S("secret\n"), S("") },
	{ "CRLF in password", 1, S("alice"), S("a\r\nb"), S("") },
	{ "NUL in rhost", 1, S("alice"), S("secret"), S("192.0.2.1\0") },
	{ "LF in rhost", 1, S("alice"), S("secret"), S("192.0.2.1\n") },
	{ "control in rhost", 1, S("alice"), S("secret"), S("192.0.\x1b.1") },
	{ "8-bit rhost", 1, S("alice"), S("secret"), S("h\xc3\xb4te") },
};

START_TEST(request_bad_raw_refused)
{
	const struct raw_case *c = &bad_raw_requests[_i];
	unsigned char buf[RAW_MAX];
	struct auth_request req;
	char err[128];
	size_t len = raw_request(buf, c->version, c->user, c->ulen, c->password, c->plen,
				 c->rhost, c->rlen);

	ck_assert_msg(auth_request_decode(buf, len, &req, err, sizeof(err)) == -1,
		      "decoder accepted: %s", c->name);
	ck_assert_uint_eq(req.password_len, 0);
	ck_assert_int_eq(req.password[0], 0);
	/* The encoder refuses the same input (the version is not its to choose). */
	if (c->version == AUTH_FRAME_VERSION) {
		unsigned char out[AUTH_REQUEST_MAX];
		size_t outlen;

		ck_assert_msg(auth_request_encode(c->user, c->ulen, c->password, c->plen, c->rhost,
						  c->rlen, out, sizeof(out), &outlen, err,
						  sizeof(err)) == -1,
			      "encoder accepted: %s", c->name);
	}
}
END_TEST

START_TEST(request_oversized_fields_refused)
{
	unsigned char buf[RAW_MAX];
	unsigned char out[AUTH_REQUEST_MAX];
	struct auth_request req;
	char err[128];
	size_t len, outlen;

	fill_long_strings();
	len = raw_request(buf, 1, long_user, MG_USER_MAX + 1, S("pw"), S(""));
	ck_assert_int_eq(auth_request_decode(buf, len, &req, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "user length"));
	len = raw_request(buf, 1, S("alice"), long_password, MG_PASSWORD_MAX + 1, S(""));
	ck_assert_int_eq(auth_request_decode(buf, len, &req, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "password length"));
	len = raw_request(buf, 1, S("alice"), S("pw"), long_rhost, AUTH_RHOST_MAX + 1);
	ck_assert_int_eq(auth_request_decode(buf, len, &req, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "rhost length"));

	/* A length field that claims more than the datagram holds. */
	len = raw_request(buf, 1, S("alice"), S("pw"), S("h"));
	buf[1] = 0xff;
	buf[2] = 0xff;
	ck_assert_int_eq(auth_request_decode(buf, len, &req, err, sizeof(err)), -1);
	len = raw_request(buf, 1, S("alice"), S("pw"), S("h"));
	buf[len - 2] = 0x02;	/* rhost: claims 2 bytes, holds 1 */
	ck_assert_int_eq(auth_request_decode(buf, len, &req, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "truncated inside the rhost"));

	ck_assert_int_eq(auth_request_encode(long_user, MG_USER_MAX + 1, S("pw"), S(""), out,
					     sizeof(out), &outlen, err, sizeof(err)), -1);
	ck_assert_int_eq(auth_request_encode(S("alice"), long_password, MG_PASSWORD_MAX + 1,
					     S(""), out, sizeof(out), &outlen, err,
					     sizeof(err)), -1);
	ck_assert_int_eq(auth_request_encode(S("alice"), S("pw"), long_rhost,
					     AUTH_RHOST_MAX + 1, out, sizeof(out), &outlen, err,
					     sizeof(err)), -1);
	ck_assert_int_eq(auth_request_encode(S(""), S("pw"), S(""), out, sizeof(out), &outlen,
					     err, sizeof(err)), -1);
}
END_TEST

START_TEST(request_small_buffer_refused_and_wiped)
{
	unsigned char buf[16];
	size_t len = 0;
	char err[128];

	memset(buf, 0xaa, sizeof(buf));
	ck_assert_int_eq(auth_request_encode(S("alice"), S("a-long-password"), S(""), buf,
					     sizeof(buf), &len, err, sizeof(err)), -1);
	for (size_t i = 0; i < sizeof(buf); i++)
		ck_assert_int_eq(buf[i], 0);
	ck_assert_ptr_null(strstr(err, "a-long-password"));
}
END_TEST

/* ---- responses ---------------------------------------------------------- */

START_TEST(response_round_trip)
{
	static const enum auth_status statuses[] = {
		AUTH_STATUS_OK, AUTH_STATUS_AUTH_FAILED, AUTH_STATUS_ACCOUNT_REFUSED,
		AUTH_STATUS_TEMP_FAILURE,
	};
	static const char *const reasons[] = { "", "authenticate:PAM_AUTH_ERR", "x y z" };
	unsigned char buf[AUTH_RESPONSE_MAX];
	struct auth_response resp;
	size_t len;
	char err[128];

	fill_long_strings();
	for (size_t s = 0; s < sizeof(statuses) / sizeof(statuses[0]); s++) {
		for (size_t r = 0; r <= sizeof(reasons) / sizeof(reasons[0]); r++) {
			const char *reason = r < 3 ? reasons[r] : long_reason;
			size_t rlen = r < 3 ? strlen(reason) : AUTH_REASON_MAX;

			ck_assert_int_eq(auth_response_encode(statuses[s], reason, rlen, buf,
							      sizeof(buf), &len, err,
							      sizeof(err)), 0);
			ck_assert_uint_eq(len, 4 + rlen);
			ck_assert_int_eq(auth_response_decode(buf, len, &resp, err, sizeof(err)),
					 0);
			ck_assert_int_eq(resp.status, statuses[s]);
			ck_assert_uint_eq(resp.reason_len, rlen);
			ck_assert(memcmp(resp.reason, reason, rlen) == 0);
			ck_assert_int_eq(resp.reason[rlen], 0);
		}
	}
}
END_TEST

START_TEST(response_every_truncation_refused)
{
	unsigned char buf[AUTH_RESPONSE_MAX + 4];
	struct auth_response resp;
	size_t len;
	char err[128];

	ck_assert_int_eq(auth_response_encode(AUTH_STATUS_OK, S("pam:PAM_SUCCESS"), buf,
					      sizeof(buf), &len, err, sizeof(err)), 0);
	for (size_t cut = 0; cut < len; cut++)
		ck_assert_msg(auth_response_decode(buf, cut, &resp, err, sizeof(err)) == -1,
			      "a response cut at %zu of %zu bytes was accepted", cut, len);
	buf[len] = 'x';
	ck_assert_int_eq(auth_response_decode(buf, len + 1, &resp, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "trailing"));
}
END_TEST

struct raw_response_case {
	const char *name;
	unsigned version;
	unsigned status;
	const char *reason;
	size_t rlen;
};

static const struct raw_response_case bad_raw_responses[] = {
	{ "version 0", 0, AUTH_STATUS_OK, S("") },
	{ "version 2", 2, AUTH_STATUS_OK, S("") },
	{ "status 0", 1, 0, S("") },
	{ "status 5", 1, 5, S("") },
	{ "status 255", 1, 255, S("") },
	{ "NUL in reason", 1, AUTH_STATUS_OK, S("a\0b") },
	{ "CR in reason", 1, AUTH_STATUS_OK, S("a\rb") },
	{ "LF in reason", 1, AUTH_STATUS_OK, S("a\nb") },
	{ "8-bit reason", 1, AUTH_STATUS_OK, S("\xc3\xa9") },
};

START_TEST(response_bad_raw_refused)
{
	const struct raw_response_case *c = &bad_raw_responses[_i];
	unsigned char buf[RAW_MAX];
	struct auth_response resp;
	char err[128];
	size_t len = raw_response(buf, c->version, c->status, c->reason, c->rlen);

	ck_assert_msg(auth_response_decode(buf, len, &resp, err, sizeof(err)) == -1,
		      "decoder accepted: %s", c->name);
	if (c->version == AUTH_FRAME_VERSION) {
		unsigned char out[AUTH_RESPONSE_MAX];
		size_t outlen;

		ck_assert_msg(auth_response_encode((enum auth_status)c->status, c->reason, c->rlen,
						   out, sizeof(out), &outlen, err,
						   sizeof(err)) == -1,
			      "encoder accepted: %s", c->name);
	}
}
END_TEST

START_TEST(response_oversized_refused)
{
	unsigned char buf[RAW_MAX];
	unsigned char out[AUTH_RESPONSE_MAX];
	struct auth_response resp;
	char err[128];
	size_t len, outlen;

	fill_long_strings();
	len = raw_response(buf, 1, AUTH_STATUS_OK, long_reason, AUTH_REASON_MAX + 1);
	ck_assert_int_eq(auth_response_decode(buf, len, &resp, err, sizeof(err)), -1);
	ck_assert_int_eq(auth_response_encode(AUTH_STATUS_OK, long_reason, AUTH_REASON_MAX + 1,
					      out, sizeof(out), &outlen, err, sizeof(err)), -1);
	ck_assert_int_eq(auth_response_encode(AUTH_STATUS_OK, S("ok"), out, 4, &outlen, err,
					      sizeof(err)), -1);
	/* Reason length claims more than the datagram holds. */
	len = raw_response(buf, 1, AUTH_STATUS_OK, S("abc"));
	buf[3] = 4;
	ck_assert_int_eq(auth_response_decode(buf, len, &resp, err, sizeof(err)), -1);
}
END_TEST

START_TEST(status_names)
{
	ck_assert_str_eq(auth_status_name(AUTH_STATUS_OK), "ok");
	ck_assert_str_eq(auth_status_name(AUTH_STATUS_AUTH_FAILED), "auth-failed");
	ck_assert_str_eq(auth_status_name(AUTH_STATUS_ACCOUNT_REFUSED), "account-refused");
	ck_assert_str_eq(auth_status_name(AUTH_STATUS_TEMP_FAILURE), "temp-failure");
	ck_assert_str_eq(auth_status_name((enum auth_status)0), "invalid");
	ck_assert_str_eq(auth_status_name((enum auth_status)AUTH_STATUS_COUNT), "invalid");
}
END_TEST

START_TEST(secret_ok)
{
	ck_assert(auth_frame_secret_ok("", 0));
	ck_assert(auth_frame_secret_ok("a b\t\x7f\xff", 6));
	ck_assert(!auth_frame_secret_ok("a\0b", 3));
	ck_assert(!auth_frame_secret_ok("a\r", 2));
	ck_assert(!auth_frame_secret_ok("\n", 1));
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(void)
{
	Suite *suite = suite_create("auth_frame");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, request_round_trip, 0, N(good_requests));
	tcase_add_test(tc, request_at_every_maximum);
	tcase_add_test(tc, request_every_truncation_refused);
	tcase_add_test(tc, request_trailing_bytes_refused);
	tcase_add_test(tc, request_total_over_maximum_refused);
	tcase_add_loop_test(tc, request_bad_raw_refused, 0, N(bad_raw_requests));
	tcase_add_test(tc, request_oversized_fields_refused);
	tcase_add_test(tc, request_small_buffer_refused_and_wiped);
	tcase_add_test(tc, response_round_trip);
	tcase_add_test(tc, response_every_truncation_refused);
	tcase_add_loop_test(tc, response_bad_raw_refused, 0, N(bad_raw_responses));
	tcase_add_test(tc, response_oversized_refused);
	tcase_add_test(tc, status_names);
	tcase_add_test(tc, secret_ok);
	suite_add_tcase(suite, tc);
	return check_run(suite);
}
