/*
 * auth_frame.c - encode and decode the session <-> auth worker frames.
 *
 * Pure functions over caller buffers. The decoder reads through a cursor
 * (pointer plus bytes left) and checks every length against both the bytes
 * that remain and the field's hard maximum before copying, so no input can
 * make it read or write out of bounds. The encoder applies the same rules, so
 * a frame we send is always one the other side accepts.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "auth_frame.h"

static const char *const status_names[AUTH_STATUS_COUNT] = {
	[AUTH_STATUS_OK] = "ok",
	[AUTH_STATUS_AUTH_FAILED] = "auth-failed",
	[AUTH_STATUS_ACCOUNT_REFUSED] = "account-refused",
	[AUTH_STATUS_TEMP_FAILURE] = "temp-failure",
};
_Static_assert(sizeof(status_names) / sizeof(status_names[0]) == AUTH_STATUS_TEMP_FAILURE + 1,
	       "status_names must name every auth_status");

const char *auth_status_name(enum auth_status status)
{
	if ((int)status <= 0 || (int)status >= AUTH_STATUS_COUNT)
		return "invalid";
	return status_names[status];
}

static bool status_valid(int status)
{
	switch (status) {
	case AUTH_STATUS_OK:
	case AUTH_STATUS_AUTH_FAILED:
	case AUTH_STATUS_ACCOUNT_REFUSED:
	case AUTH_STATUS_TEMP_FAILURE:
		return true;
	}
	return false;
}

bool auth_frame_secret_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n')
			return false;
	}
	return true;
}

/* rhost, reason and the master backend name end up in logs verbatim: printable ASCII only. */
static bool printable_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c > 0x7e)
			return false;
	}
	return true;
}

/* ---- writing ------------------------------------------------------------ */

struct writer {
	unsigned char *buf;
	size_t size;
	size_t used;
	bool overflow;
};

static void put_u8(struct writer *w, unsigned v)
{
	if (w->size - w->used < 1) {
		w->overflow = true;
		return;
	}
	w->buf[w->used++] = (unsigned char)v;
}

/* A 16-bit big-endian length, then the bytes. */
static void put_field(struct writer *w, const char *data, size_t len)
{
	if (len > UINT16_MAX || w->size - w->used < 2 + len) {
		w->overflow = true;
		return;
	}
	w->buf[w->used] = (unsigned char)(len >> 8);
	w->buf[w->used + 1] = (unsigned char)(len & 0xff);
	if (len > 0)
		memcpy(w->buf + w->used + 2, data, len);
	w->used += 2 + len;
}

int auth_request_encode(const char *user, size_t user_len, const char *password,
			size_t password_len, const char *rhost, size_t rhost_len,
			const char *master_backend, size_t master_backend_len,
			unsigned char *buf, size_t bufsize, size_t *outlen, char *err,
			size_t errlen)
{
	struct writer w = { .buf = buf, .size = bufsize };

	if (user == NULL || user_len == 0 || user_len > MG_USER_MAX) {
		snprintf(err, errlen, "user name length %zu outside 1..%d", user_len, MG_USER_MAX);
		return -1;
	}
	if ((password == NULL && password_len > 0) || password_len > MG_PASSWORD_MAX) {
		snprintf(err, errlen, "password length %zu over %d", password_len, MG_PASSWORD_MAX);
		return -1;
	}
	if ((rhost == NULL && rhost_len > 0) || rhost_len > AUTH_RHOST_MAX) {
		snprintf(err, errlen, "rhost length %zu over %d", rhost_len, AUTH_RHOST_MAX);
		return -1;
	}
	if ((master_backend == NULL && master_backend_len > 0) ||
	    master_backend_len > AUTH_BACKEND_MAX) {
		snprintf(err, errlen, "master backend name length %zu over %d", master_backend_len,
			 AUTH_BACKEND_MAX);
		return -1;
	}
	if (!auth_frame_secret_ok(user, user_len) ||
	    !auth_frame_secret_ok(password, password_len)) {
		snprintf(err, errlen, "user name or password holds NUL, CR or LF");
		return -1;
	}
	if (!printable_ok(rhost, rhost_len)) {
		snprintf(err, errlen, "rhost is not printable ASCII");
		return -1;
	}
	if (!printable_ok(master_backend, master_backend_len)) {
		snprintf(err, errlen, "master backend name is not printable ASCII");
		return -1;
	}
	put_u8(&w, AUTH_FRAME_VERSION);
	put_field(&w, user, user_len);
	put_field(&w, password, password_len);
	put_field(&w, rhost, rhost_len);
	put_field(&w, master_backend, master_backend_len);
	if (w.overflow) {
		/* A part of the password may already sit in buf. */
		explicit_bzero(buf, bufsize);
		snprintf(err, errlen, "request buffer of %zu bytes too small", bufsize);
		return -1;
	}
	*outlen = w.used;
	return 0;
}

int auth_response_encode(enum auth_status status, const char *reason, size_t reason_len,
			 const char *master_password, size_t master_password_len,
			 unsigned char *buf, size_t bufsize, size_t *outlen, char *err,
			 size_t errlen)
{
	struct writer w = { .buf = buf, .size = bufsize };

	if (!status_valid((int)status)) {
		snprintf(err, errlen, "unknown status %d", (int)status);
		return -1;
	}
	if ((reason == NULL && reason_len > 0) || reason_len > AUTH_REASON_MAX) {
		snprintf(err, errlen, "reason length %zu over %d", reason_len, AUTH_REASON_MAX);
		return -1;
	}
	if (!printable_ok(reason, reason_len)) {
		snprintf(err, errlen, "reason is not printable ASCII");
		return -1;
	}
	if ((master_password == NULL && master_password_len > 0) ||
	    master_password_len > MG_PASSWORD_MAX) {
		snprintf(err, errlen, "master password length %zu over %d", master_password_len,
			 MG_PASSWORD_MAX);
		return -1;
	}
	if (master_password_len > 0 && status != AUTH_STATUS_OK) {
		/* Only a user PAM accepted may have it. */
		snprintf(err, errlen, "master password with status %s", auth_status_name(status));
		return -1;
	}
	if (!auth_frame_secret_ok(master_password, master_password_len)) {
		snprintf(err, errlen, "master password holds NUL, CR or LF");
		return -1;
	}
	put_u8(&w, AUTH_FRAME_VERSION);
	put_u8(&w, (unsigned)status);
	put_field(&w, reason, reason_len);
	put_field(&w, master_password, master_password_len);
	if (w.overflow) {
		explicit_bzero(buf, bufsize);
		snprintf(err, errlen, "response buffer of %zu bytes too small", bufsize);
		return -1;
	}
	*outlen = w.used;
	return 0;
}

/* ---- reading ------------------------------------------------------------ */

struct reader {
	const unsigned char *p;
	size_t left;
};

static int get_u8(struct reader *r, unsigned *v)
{
	if (r->left < 1)
		return -1;
	*v = r->p[0];
	r->p++;
	r->left--;
	return 0;
}

/*
 * Read one length-prefixed field into dst (dstsize > max), NUL-terminated.
 * Returns 0, or -1 with err naming the field.
 */
static int get_field(struct reader *r, const char *name, size_t max, char *dst,
		     size_t dstsize, size_t *len, char *err, size_t errlen)
{
	size_t n;

	if (r->left < 2) {
		snprintf(err, errlen, "truncated before the %s length", name);
		return -1;
	}
	n = ((size_t)r->p[0] << 8) | r->p[1];
	if (n > max || n >= dstsize) {
		snprintf(err, errlen, "%s length %zu over %zu", name, n, max);
		return -1;
	}
	if (r->left - 2 < n) {
		snprintf(err, errlen, "truncated inside the %s", name);
		return -1;
	}
	memcpy(dst, r->p + 2, n);
	dst[n] = '\0';
	*len = n;
	r->p += 2 + n;
	r->left -= 2 + n;
	return 0;
}

void auth_request_wipe(struct auth_request *req)
{
	/* Field by field, as credentials_wipe() does, for the fortify checker. */
	explicit_bzero(req->user, sizeof(req->user));
	explicit_bzero(req->password, sizeof(req->password));
	explicit_bzero(req->rhost, sizeof(req->rhost));
	explicit_bzero(req->master_backend, sizeof(req->master_backend));
	req->user_len = 0;
	req->password_len = 0;
	req->rhost_len = 0;
	req->master_backend_len = 0;
}

void auth_response_wipe(struct auth_response *resp)
{
	auth_secret_wipe(&resp->master_password);
	explicit_bzero(resp->reason, sizeof(resp->reason));
	resp->reason_len = 0;
	resp->status = (enum auth_status)0;
}

int auth_request_decode(const unsigned char *buf, size_t len, struct auth_request *out,
			char *err, size_t errlen)
{
	struct reader r = { .p = buf, .left = len };
	unsigned version;

	auth_request_wipe(out);
	if (len > AUTH_REQUEST_MAX) {
		snprintf(err, errlen, "request of %zu bytes over %d", len, AUTH_REQUEST_MAX);
		return -1;
	}
	if (get_u8(&r, &version) < 0) {
		snprintf(err, errlen, "empty request");
		return -1;
	}
	if (version != AUTH_FRAME_VERSION) {
		snprintf(err, errlen, "request version %u, expected %d", version,
			 AUTH_FRAME_VERSION);
		return -1;
	}
	if (get_field(&r, "user", MG_USER_MAX, out->user, sizeof(out->user), &out->user_len, err,
		      errlen) < 0 ||
	    get_field(&r, "password", MG_PASSWORD_MAX, out->password, sizeof(out->password),
		      &out->password_len, err, errlen) < 0 ||
	    get_field(&r, "rhost", AUTH_RHOST_MAX, out->rhost, sizeof(out->rhost), &out->rhost_len,
		      err, errlen) < 0 ||
	    get_field(&r, "master backend", AUTH_BACKEND_MAX, out->master_backend,
		      sizeof(out->master_backend), &out->master_backend_len, err, errlen) < 0)
		goto fail;
	if (r.left != 0) {
		snprintf(err, errlen, "%zu trailing bytes after the request", r.left);
		goto fail;
	}
	if (out->user_len == 0) {
		snprintf(err, errlen, "empty user name");
		goto fail;
	}
	if (!auth_frame_secret_ok(out->user, out->user_len)) {
		snprintf(err, errlen, "user name holds NUL, CR or LF");
		goto fail;
	}
	if (!auth_frame_secret_ok(out->password, out->password_len)) {
		snprintf(err, errlen, "password holds NUL, CR or LF");
		goto fail;
	}
	if (!printable_ok(out->rhost, out->rhost_len)) {
		snprintf(err, errlen, "rhost is not printable ASCII");
		goto fail;
	}
	if (!printable_ok(out->master_backend, out->master_backend_len)) {
		snprintf(err, errlen, "master backend name is not printable ASCII");
		goto fail;
	}
	return 0;
fail:
	auth_request_wipe(out);
	return -1;
}

int auth_response_decode(const unsigned char *buf, size_t len, struct auth_response *out,
			 char *err, size_t errlen)
{
	struct reader r = { .p = buf, .left = len };
	unsigned version, status;

	auth_response_wipe(out);
	if (len > AUTH_RESPONSE_MAX) {
		snprintf(err, errlen, "response of %zu bytes over %d", len, AUTH_RESPONSE_MAX);
		return -1;
	}
	if (get_u8(&r, &version) < 0) {
		snprintf(err, errlen, "empty response");
		return -1;
	}
	if (version != AUTH_FRAME_VERSION) {
		snprintf(err, errlen, "response version %u, expected %d", version,
			 AUTH_FRAME_VERSION);
		return -1;
	}
	if (get_u8(&r, &status) < 0) {
		snprintf(err, errlen, "truncated before the status");
		return -1;
	}
	if (!status_valid((int)status)) {
		snprintf(err, errlen, "unknown status %u", status);
		return -1;
	}
	if (get_field(&r, "reason", AUTH_REASON_MAX, out->reason, sizeof(out->reason),
		      &out->reason_len, err, errlen) < 0 ||
	    get_field(&r, "master password", MG_PASSWORD_MAX, out->master_password.value,
		      sizeof(out->master_password.value), &out->master_password.len, err,
		      errlen) < 0)
		goto fail;
	if (r.left != 0) {
		snprintf(err, errlen, "%zu trailing bytes after the response", r.left);
		goto fail;
	}
	if (!printable_ok(out->reason, out->reason_len)) {
		snprintf(err, errlen, "reason is not printable ASCII");
		goto fail;
	}
	if (out->master_password.len > 0 && status != AUTH_STATUS_OK) {
		snprintf(err, errlen, "master password with status %s",
			 auth_status_name((enum auth_status)status));
		goto fail;
	}
	if (!auth_frame_secret_ok(out->master_password.value, out->master_password.len)) {
		snprintf(err, errlen, "master password holds NUL, CR or LF");
		goto fail;
	}
	out->status = (enum auth_status)status;
	return 0;
fail:
	auth_response_wipe(out);
	return -1;
}
