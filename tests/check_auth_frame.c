/*
 * check_auth_frame.c - the session <-> auth worker frames: round trips, and
 * every way a frame can be truncated, oversized, padded or poisoned,
 * including the master backend name of a request and the master password of
 * a response (which only an OK may carry).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "auth_frame.h"
#include "check_run.h"

#define RAW_MAX 4096

#define V AUTH_FRAME_VERSION

/* Build a request byte by byte, with whatever lengths the test wants. */
static size_t raw_request(unsigned char *buf, unsigned version, const char *user, size_t ulen,
			  const char *password, size_t plen, const char *rhost, size_t rlen,
			  const char *backend, size_t blen)
{
	size_t n = 0;
	const char *data[4] = { user, password, rhost, backend };
	size_t lens[4] = { ulen, plen, rlen, blen };

	buf[n++] = (unsigned char)version;
	for (int i = 0; i < 4; i++) {
		buf[n++] = (unsigned char)(lens[i] >> 8);
		buf[n++] = (unsigned char)(lens[i] & 0xff);
		memcpy(buf + n, data[i], lens[i]);
		n += lens[i];
	}
	return n;
}

static size_t raw_response(unsigned char *buf, unsigned version, unsigned status,
			   const char *reason, size_t rlen, const char *master, size_t mlen)
{
	size_t n = 0;

	buf[n++] = (unsigned char)version;
	buf[n++] = (unsigned char)status;
	buf[n++] = (unsigned char)(rlen >> 8);
	buf[n++] = (unsigned char)(rlen & 0xff);
	memcpy(buf + n, reason, rlen);
	n += rlen;
	buf[n++] = (unsigned char)(mlen >> 8);
	buf[n++] = (unsigned char)(mlen & 0xff);
	memcpy(buf + n, master, mlen);
	return n + mlen;
}

static char long_user[MG_USER_MAX + 2];
static char long_password[MG_PASSWORD_MAX + 2];
static char long_rhost[AUTH_RHOST_MAX + 2];
static char long_reason[AUTH_REASON_MAX + 2];
static char long_backend[AUTH_BACKEND_MAX + 2];

static void fill_long_strings(void)
{
	memset(long_user, 'u', sizeof(long_user) - 1);
	memset(long_password, 'p', sizeof(long_password) - 1);
	memset(long_rhost, '1', sizeof(long_rhost) - 1);
	memset(long_reason, 'r', sizeof(long_reason) - 1);
	memset(long_backend, 'b', sizeof(long_backend) - 1);
}

/* Nothing of a secret is left in a decoded frame that was refused or wiped. */
static void assert_all_zero(const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++)
		ck_assert_msg(b[i] == 0, "byte %zu of %zu not wiped", i, len);
}

/* Field by field: padding between the fields is nobody's secret. */
static void assert_request_wiped(const struct auth_request *req)
{
	assert_all_zero(req->user, sizeof(req->user));
	assert_all_zero(req->password, sizeof(req->password));
	assert_all_zero(req->rhost, sizeof(req->rhost));
	assert_all_zero(req->master_backend, sizeof(req->master_backend));
	ck_assert(req->user_len == 0 && req->password_len == 0 && req->rhost_len == 0 &&
		  req->master_backend_len == 0);
}

static void assert_response_wiped(const struct auth_response *resp)
{
	assert_all_zero(resp->reason, sizeof(resp->reason));
	assert_all_zero(resp->master_password.value, sizeof(resp->master_password.value));
	ck_assert(resp->reason_len == 0 && resp->master_password.len == 0);
}

/* ---- requests ----------------------------------------------------------- */

struct request_case {
	const char *user;
	size_t ulen;
	const char *password;
	size_t plen;
	const char *rhost;
	size_t rlen;
	const char *backend;
	size_t blen;
};

#define S(x) x, sizeof(x) - 1

static const struct request_case good_requests[] = {
	{ S("alice"), S("secret"), S("192.0.2.1"), S("") },
	{ S("bob@example.org"), S("pass word with spaces"), S("2001:db8::1"), S("dovecot_master") },
	{ S("x"), S(""), S(""), S("") },			/* empty password, no rhost */
	{ S("\xc3\xa9milie"), S("\x01\x7f\xff tab\there"), S("::ffff:198.51.100.7"),
	  S("b-1.x") },
	{ S("quote\"and\\back"), S("\"{}*%"), S("h"), S("m") },
};

START_TEST(request_round_trip)
{
	const struct request_case *c = &good_requests[_i];
	unsigned char buf[AUTH_REQUEST_MAX];
	struct auth_request req;
	size_t len = 0;
	char err[128];

	ck_assert_int_eq(auth_request_encode(c->user, c->ulen, c->password, c->plen, c->rhost,
					     c->rlen, c->backend, c->blen, buf, sizeof(buf), &len,
					     err, sizeof(err)), 0);
	ck_assert_uint_eq(len, 1 + 2 + c->ulen + 2 + c->plen + 2 + c->rlen + 2 + c->blen);
	ck_assert_int_eq(auth_request_decode(buf, len, &req, err, sizeof(err)), 0);
	ck_assert_uint_eq(req.user_len, c->ulen);
	ck_assert_uint_eq(req.password_len, c->plen);
	ck_assert_uint_eq(req.rhost_len, c->rlen);
	ck_assert(memcmp(req.user, c->user, c->ulen) == 0 && req.user[c->ulen] == '\0');
	ck_assert(memcmp(req.password, c->password, c->plen) == 0 &&
		  req.password[c->plen] == '\0');
	ck_assert(memcmp(req.rhost, c->rhost, c->rlen) == 0 && req.rhost[c->rlen] == '\0');
	ck_assert_uint_eq(req.master_backend_len, c->blen);
	ck_assert(memcmp(req.master_backend, c->backend, c->blen) == 0 &&
		  req.master_backend[c->blen] == '\0');
	auth_request_wipe(&req);
	assert_request_wiped(&req);
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
					     MG_PASSWORD_MAX, long_rhost, AUTH_RHOST_MAX,
					     long_backend, AUTH_BACKEND_MAX, buf, sizeof(buf), &len,
					     err, sizeof(err)), 0);
	ck_assert_uint_eq(len, AUTH_REQUEST_MAX);
	ck_assert_int_eq(auth_request_decode(buf, len, &req, err, sizeof(err)), 0);
	ck_assert_uint_eq(req.user_len, MG_USER_MAX);
	ck_assert_uint_eq(req.password_len, MG_PASSWORD_MAX);
	ck_assert_uint_eq(req.rhost_len, AUTH_RHOST_MAX);
	ck_assert_uint_eq(req.master_backend_len, AUTH_BACKEND_MAX);
}
END_TEST

START_TEST(request_every_truncation_refused)
{
	unsigned char buf[AUTH_REQUEST_MAX];
	struct auth_request req;
	size_t len = 0;
	char err[128];

	ck_assert_int_eq(auth_request_encode(S("alice"), S("secret"), S("192.0.2.1"),
					     S("dovecot_master"), buf, sizeof(buf), &len, err,
					     sizeof(err)), 0);
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

	ck_assert_int_eq(auth_request_encode(S("alice"), S("secret"), S(""), S(""), buf,
					     sizeof(buf), &len, err, sizeof(err)), 0);
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
	const char *backend;
	size_t blen;
};

static const struct raw_case bad_raw_requests[] = {
	{ "version 0", 0, S("alice"), S("secret"), S(""), S("") },
	{ "version 1 (no master logins)", 1, S("alice"), S("secret"), S(""), S("") },
	{ "version 3", 3, S("alice"), S("secret"), S(""), S("") },
	{ "version 255", 255, S("alice"), S("secret"), S(""), S("") },
	{ "empty user", V, S(""), S("secret"), S(""), S("") },
	{ "NUL in user", V, S("al\0ice"), S("secret"), S(""), S("") },
	{ "CR in user", V, S("al\rice"), S("secret"), S(""), S("") },
	{ "LF in user", V, S("alice\n"), S("secret"), S(""), S("") },
	{ "NUL in password", V, S("alice"), S("sec\0ret"), S(""), S("") },
	{ "CR in password", V, S("alice"), S("\rsecret"), S(""), S("") },
	{ "LF in password", V, S("alice"), S("secret\n"), S(""), S("") },
	{ "CRLF in password", V, S("alice"), S("a\r\nb"), S(""), S("") },
	{ "NUL in rhost", V, S("alice"), S("secret"), S("192.0.2.1\0"), S("") },
	{ "LF in rhost", V, S("alice"), S("secret"), S("192.0.2.1\n"), S("") },
	{ "control in rhost", V, S("alice"), S("secret"), S("192.0.\x1b.1"), S("") },
	{ "8-bit rhost", V, S("alice"), S("secret"), S("h\xc3\xb4te"), S("") },
	{ "NUL in master backend", V, S("alice"), S("secret"), S(""), S("dove\0cot") },
	{ "LF in master backend", V, S("alice"), S("secret"), S(""), S("dovecot\n") },
	{ "CR in master backend", V, S("alice"), S("secret"), S(""), S("\rdovecot") },
	{ "control in master backend", V, S("alice"), S("secret"), S(""), S("dove\x1b[0m") },
	{ "DEL in master backend", V, S("alice"), S("secret"), S(""), S("dove\x7f") },
	{ "8-bit master backend", V, S("alice"), S("secret"), S(""), S("dov\xc3\xa9" "cot") },
};

START_TEST(request_bad_raw_refused)
{
	const struct raw_case *c = &bad_raw_requests[_i];
	unsigned char buf[RAW_MAX];
	struct auth_request req;
	char err[128];
	size_t len = raw_request(buf, c->version, c->user, c->ulen, c->password, c->plen,
				 c->rhost, c->rlen, c->backend, c->blen);

	ck_assert_msg(auth_request_decode(buf, len, &req, err, sizeof(err)) == -1,
		      "decoder accepted: %s", c->name);
	assert_request_wiped(&req);
	/* The encoder refuses the same input (the version is not its to choose). */
	if (c->version == AUTH_FRAME_VERSION) {
		unsigned char out[AUTH_REQUEST_MAX];
		size_t outlen;

		ck_assert_msg(auth_request_encode(c->user, c->ulen, c->password, c->plen, c->rhost,
						  c->rlen, c->backend, c->blen, out, sizeof(out),
						  &outlen, err, sizeof(err)) == -1,
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
	len = raw_request(buf, V, long_user, MG_USER_MAX + 1, S("pw"), S(""), S(""));
	ck_assert_int_eq(auth_request_decode(buf, len, &req, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "user length"));
	len = raw_request(buf, V, S("alice"), long_password, MG_PASSWORD_MAX + 1, S(""), S(""));
	ck_assert_int_eq(auth_request_decode(buf, len, &req, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "password length"));
	len = raw_request(buf, V, S("alice"), S("pw"), long_rhost, AUTH_RHOST_MAX + 1, S(""));
	ck_assert_int_eq(auth_request_decode(buf, len, &req, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "rhost length"));
	len = raw_request(buf, V, S("alice"), S("pw"), S(""), long_backend, AUTH_BACKEND_MAX + 1);
	ck_assert_int_eq(auth_request_decode(buf, len, &req, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "master backend length"));
	assert_request_wiped(&req);

	/* A length field that claims more than the datagram holds. */
	len = raw_request(buf, V, S("alice"), S("pw"), S("h"), S("b"));
	buf[1] = 0xff;
	buf[2] = 0xff;
	ck_assert_int_eq(auth_request_decode(buf, len, &req, err, sizeof(err)), -1);
	len = raw_request(buf, V, S("alice"), S("pw"), S("h"), S(""));
	buf[len - 4] = 0x02;	/* rhost: claims 2 bytes, holds 1 (then the backend's length) */
	ck_assert_int_eq(auth_request_decode(buf, len, &req, err, sizeof(err)), -1);
	len = raw_request(buf, V, S("alice"), S("pw"), S("h"), S("b"));
	buf[len - 2] = 0x02;	/* master backend: claims 2 bytes, holds 1 */
	ck_assert_int_eq(auth_request_decode(buf, len, &req, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "truncated inside the master backend"));
	/* A version 1 frame (no master backend field) is refused whatever its version byte. */
	len = raw_request(buf, V, S("alice"), S("pw"), S("h"), S(""));
	ck_assert_int_eq(auth_request_decode(buf, len - 2, &req, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "truncated before the master backend length"));

	ck_assert_int_eq(auth_request_encode(long_user, MG_USER_MAX + 1, S("pw"), S(""), S(""),
					     out, sizeof(out), &outlen, err, sizeof(err)), -1);
	ck_assert_int_eq(auth_request_encode(S("alice"), long_password, MG_PASSWORD_MAX + 1,
					     S(""), S(""), out, sizeof(out), &outlen, err,
					     sizeof(err)), -1);
	ck_assert_int_eq(auth_request_encode(S("alice"), S("pw"), long_rhost,
					     AUTH_RHOST_MAX + 1, S(""), out, sizeof(out), &outlen,
					     err, sizeof(err)), -1);
	ck_assert_int_eq(auth_request_encode(S("alice"), S("pw"), S(""), long_backend,
					     AUTH_BACKEND_MAX + 1, out, sizeof(out), &outlen, err,
					     sizeof(err)), -1);
	ck_assert_int_eq(auth_request_encode(S(""), S("pw"), S(""), S(""), out, sizeof(out),
					     &outlen, err, sizeof(err)), -1);
	ck_assert_int_eq(auth_request_encode(S("alice"), S("pw"), S(""), NULL, 3, out,
					     sizeof(out), &outlen, err, sizeof(err)), -1);
}
END_TEST

START_TEST(request_small_buffer_refused_and_wiped)
{
	unsigned char buf[16];
	size_t len = 0;
	char err[128];

	memset(buf, 0xaa, sizeof(buf));
	ck_assert_int_eq(auth_request_encode(S("alice"), S("a-long-password"), S(""), S(""), buf,
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

			ck_assert_int_eq(auth_response_encode(statuses[s], reason, rlen, NULL, 0,
							      buf, sizeof(buf), &len, err,
							      sizeof(err)), 0);
			ck_assert_uint_eq(len, 4 + rlen + 2);
			ck_assert_int_eq(auth_response_decode(buf, len, &resp, err, sizeof(err)),
					 0);
			ck_assert_int_eq(resp.status, statuses[s]);
			ck_assert_uint_eq(resp.reason_len, rlen);
			ck_assert(memcmp(resp.reason, reason, rlen) == 0);
			ck_assert_int_eq(resp.reason[rlen], 0);
			ck_assert_uint_eq(resp.master_password.len, 0);
		}
	}
}
END_TEST

static const struct {
	const char *password;
	size_t len;
} good_master_passwords[] = {
	{ S("Master-Secret-9") },
	{ S("x") },
	{ S("with spaces and \"quotes\" and \\") },
	{ S("\x01\x7f\xff\ttabs and 8-bit") },
};

START_TEST(response_master_password_round_trip)
{
	unsigned char buf[AUTH_RESPONSE_MAX];
	struct auth_response resp;
	const char *pw = good_master_passwords[_i].password;
	size_t pwlen = good_master_passwords[_i].len, len;
	char err[128];

	ck_assert_int_eq(auth_response_encode(AUTH_STATUS_OK, S("pam:PAM_SUCCESS"), pw, pwlen,
					      buf, sizeof(buf), &len, err, sizeof(err)), 0);
	ck_assert_uint_eq(len, 4 + 15 + 2 + pwlen);
	ck_assert_int_eq(auth_response_decode(buf, len, &resp, err, sizeof(err)), 0);
	ck_assert_int_eq(resp.status, AUTH_STATUS_OK);
	ck_assert_str_eq(resp.reason, "pam:PAM_SUCCESS");
	ck_assert_uint_eq(resp.master_password.len, pwlen);
	ck_assert(memcmp(resp.master_password.value, pw, pwlen) == 0);
	ck_assert_int_eq(resp.master_password.value[pwlen], 0);
	auth_response_wipe(&resp);
	assert_response_wiped(&resp);
}
END_TEST

START_TEST(response_at_every_maximum)
{
	unsigned char buf[AUTH_RESPONSE_MAX];
	struct auth_response resp;
	size_t len;
	char err[128];

	fill_long_strings();
	ck_assert_int_eq(auth_response_encode(AUTH_STATUS_OK, long_reason, AUTH_REASON_MAX,
					      long_password, MG_PASSWORD_MAX, buf, sizeof(buf),
					      &len, err, sizeof(err)), 0);
	ck_assert_uint_eq(len, AUTH_RESPONSE_MAX);
	ck_assert_int_eq(auth_response_decode(buf, len, &resp, err, sizeof(err)), 0);
	ck_assert_uint_eq(resp.reason_len, AUTH_REASON_MAX);
	ck_assert_uint_eq(resp.master_password.len, MG_PASSWORD_MAX);
	auth_response_wipe(&resp);
}
END_TEST

/* Only an OK may carry the master password: neither side builds or believes anything else. */
START_TEST(response_master_password_only_with_ok)
{
	static const enum auth_status refusals[] = {
		AUTH_STATUS_AUTH_FAILED, AUTH_STATUS_ACCOUNT_REFUSED, AUTH_STATUS_TEMP_FAILURE,
	};
	unsigned char buf[RAW_MAX];
	unsigned char out[AUTH_RESPONSE_MAX];
	struct auth_response resp;
	size_t len, outlen;
	char err[128];

	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		memset(out, 0xaa, sizeof(out));
		ck_assert_int_eq(auth_response_encode(refusals[i], S("authenticate:PAM_AUTH_ERR"),
						      S("Master-Secret-9"), out, sizeof(out),
						      &outlen, err, sizeof(err)), -1);
		ck_assert_ptr_null(strstr(err, "Master-Secret-9"));
		len = raw_response(buf, V, refusals[i], S("authenticate:PAM_AUTH_ERR"),
				   S("Master-Secret-9"));
		ck_assert_int_eq(auth_response_decode(buf, len, &resp, err, sizeof(err)), -1);
		ck_assert_ptr_nonnull(strstr(err, "master password with status"));
		ck_assert_ptr_null(strstr(err, "Master-Secret-9"));
		assert_response_wiped(&resp);
	}
}
END_TEST

START_TEST(response_small_buffer_refused_and_wiped)
{
	unsigned char buf[24];
	size_t len = 0;
	char err[128];

	memset(buf, 0xaa, sizeof(buf));
	ck_assert_int_eq(auth_response_encode(AUTH_STATUS_OK, S("ok"), S("a-long-master-password"),
					      buf, sizeof(buf), &len, err, sizeof(err)), -1);
	assert_all_zero(buf, sizeof(buf));
	ck_assert_ptr_null(strstr(err, "a-long-master-password"));
}
END_TEST

START_TEST(response_every_truncation_refused)
{
	unsigned char buf[AUTH_RESPONSE_MAX + 4];
	struct auth_response resp;
	size_t len;
	char err[128];

	ck_assert_int_eq(auth_response_encode(AUTH_STATUS_OK, S("pam:PAM_SUCCESS"),
					      S("Master-Secret-9"), buf, sizeof(buf), &len, err,
					      sizeof(err)), 0);
	for (size_t cut = 0; cut < len; cut++) {
		ck_assert_msg(auth_response_decode(buf, cut, &resp, err, sizeof(err)) == -1,
			      "a response cut at %zu of %zu bytes was accepted", cut, len);
		/* A refused decode leaves no part of the master password behind. */
		assert_response_wiped(&resp);
	}
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
	const char *master;
	size_t mlen;
};

static const struct raw_response_case bad_raw_responses[] = {
	{ "version 0", 0, AUTH_STATUS_OK, S(""), S("") },
	{ "version 1 (no master password)", 1, AUTH_STATUS_OK, S(""), S("") },
	{ "version 3", 3, AUTH_STATUS_OK, S(""), S("") },
	{ "status 0", V, 0, S(""), S("") },
	{ "status 5", V, 5, S(""), S("") },
	{ "status 255", V, 255, S(""), S("") },
	{ "NUL in reason", V, AUTH_STATUS_OK, S("a\0b"), S("") },
	{ "CR in reason", V, AUTH_STATUS_OK, S("a\rb"), S("") },
	{ "LF in reason", V, AUTH_STATUS_OK, S("a\nb"), S("") },
	{ "8-bit reason", V, AUTH_STATUS_OK, S("\xc3\xa9"), S("") },
	{ "NUL in master password", V, AUTH_STATUS_OK, S(""), S("Master\0Secret") },
	{ "CR in master password", V, AUTH_STATUS_OK, S(""), S("Master\rSecret") },
	{ "LF in master password", V, AUTH_STATUS_OK, S(""), S("MasterSecret\n") },
	{ "master password, auth failed", V, AUTH_STATUS_AUTH_FAILED, S(""), S("MasterSecret") },
	{ "master password, account refused", V, AUTH_STATUS_ACCOUNT_REFUSED, S(""),
	  S("MasterSecret") },
	{ "master password, temp failure", V, AUTH_STATUS_TEMP_FAILURE, S(""), S("MasterSecret") },
};

START_TEST(response_bad_raw_refused)
{
	const struct raw_response_case *c = &bad_raw_responses[_i];
	unsigned char buf[RAW_MAX];
	struct auth_response resp;
	char err[128];
	size_t len = raw_response(buf, c->version, c->status, c->reason, c->rlen, c->master,
				  c->mlen);

	ck_assert_msg(auth_response_decode(buf, len, &resp, err, sizeof(err)) == -1,
		      "decoder accepted: %s", c->name);
	assert_response_wiped(&resp);
	if (c->version == AUTH_FRAME_VERSION) {
		unsigned char out[AUTH_RESPONSE_MAX];
		size_t outlen;

		ck_assert_msg(auth_response_encode((enum auth_status)c->status, c->reason, c->rlen,
						   c->master, c->mlen, out, sizeof(out), &outlen,
						   err, sizeof(err)) == -1,
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
	len = raw_response(buf, V, AUTH_STATUS_OK, long_reason, AUTH_REASON_MAX + 1, S(""));
	ck_assert_int_eq(auth_response_decode(buf, len, &resp, err, sizeof(err)), -1);
	len = raw_response(buf, V, AUTH_STATUS_OK, S(""), long_password, MG_PASSWORD_MAX + 1);
	ck_assert_int_eq(auth_response_decode(buf, len, &resp, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "master password length"));
	assert_response_wiped(&resp);
	ck_assert_int_eq(auth_response_encode(AUTH_STATUS_OK, long_reason, AUTH_REASON_MAX + 1,
					      NULL, 0, out, sizeof(out), &outlen, err,
					      sizeof(err)), -1);
	ck_assert_int_eq(auth_response_encode(AUTH_STATUS_OK, S(""), long_password,
					      MG_PASSWORD_MAX + 1, out, sizeof(out), &outlen, err,
					      sizeof(err)), -1);
	ck_assert_int_eq(auth_response_encode(AUTH_STATUS_OK, S(""), NULL, 4, out, sizeof(out),
					      &outlen, err, sizeof(err)), -1);
	ck_assert_int_eq(auth_response_encode(AUTH_STATUS_OK, S("ok"), NULL, 0, out, 4, &outlen,
					      err, sizeof(err)), -1);
	/* Reason length claims more than the datagram holds. */
	len = raw_response(buf, V, AUTH_STATUS_OK, S("abc"), S(""));
	buf[3] = 6;
	ck_assert_int_eq(auth_response_decode(buf, len, &resp, err, sizeof(err)), -1);
	/* So does the master password's. */
	len = raw_response(buf, V, AUTH_STATUS_OK, S("abc"), S("pw"));
	buf[len - 3] = 3;
	ck_assert_int_eq(auth_response_decode(buf, len, &resp, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "truncated inside the master password"));
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
	tcase_add_loop_test(tc, response_master_password_round_trip, 0,
			    N(good_master_passwords));
	tcase_add_test(tc, response_at_every_maximum);
	tcase_add_test(tc, response_master_password_only_with_ok);
	tcase_add_test(tc, response_small_buffer_refused_and_wiped);
	tcase_add_test(tc, response_every_truncation_refused);
	tcase_add_loop_test(tc, response_bad_raw_refused, 0, N(bad_raw_responses));
	tcase_add_test(tc, response_oversized_refused);
	tcase_add_test(tc, status_names);
	tcase_add_test(tc, secret_ok);
	suite_add_tcase(suite, tc);
	return check_run(suite);
}
