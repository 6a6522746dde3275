/*
 * auth_frame.h - the wire format between sessions and the PAM auth workers.
 *
 * One request or one response per SOCK_SEQPACKET datagram. Every field is
 * length-prefixed (16-bit big-endian) with a hard maximum, and a frame must
 * end exactly where its last field ends. Nothing here does I/O: encode into a
 * caller's buffer, decode from one. Both directions are validated on both
 * sides, so a confused or compromised peer is refused rather than believed.
 *
 * Request:  u8 version | u16 ulen | user | u16 plen | password | u16 rlen | rhost
 *           | u16 blen | master_backend
 * Response: u8 version | u8 status | u16 rlen | reason | u16 mlen | master_password
 *
 * master_backend names the backend whose Dovecot master-user password the
 * session needs after PAM has accepted the user (empty: none). The worker
 * answers with that password only together with AUTH_STATUS_OK; every other
 * status carries an empty one, and a decoder refuses anything else.
 */
#ifndef MG_AUTH_FRAME_H
#define MG_AUTH_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "credentials.h"

#define AUTH_FRAME_VERSION	2	/* 2: master_backend and master_password */
#define AUTH_RHOST_MAX		64
#define AUTH_REASON_MAX		128
#define AUTH_BACKEND_MAX	64	/* a backend name, as config.c allows it */

/* The largest valid frames; a receive buffer one byte larger detects oversize. */
#define AUTH_REQUEST_MAX	(1 + 2 + MG_USER_MAX + 2 + MG_PASSWORD_MAX + 2 + AUTH_RHOST_MAX + \
				 2 + AUTH_BACKEND_MAX)
#define AUTH_RESPONSE_MAX	(1 + 1 + 2 + AUTH_REASON_MAX + 2 + MG_PASSWORD_MAX)

/* Wire values: fixed, never renumbered. 0 is deliberately not a status. */
enum auth_status {
	AUTH_STATUS_OK = 1,
	AUTH_STATUS_AUTH_FAILED = 2,		/* wrong password or unknown user */
	AUTH_STATUS_ACCOUNT_REFUSED = 3,	/* password right, account step said no */
	AUTH_STATUS_TEMP_FAILURE = 4,		/* PAM or the auth process could not decide */
};
#define AUTH_STATUS_COUNT 5	/* one past the largest value, for name tables */

/*
 * A password handed over by the auth process (the master user's), in fixed
 * storage like struct mg_credentials: NUL-terminated, wiped with
 * auth_secret_wipe() as soon as it has been used.
 */
struct auth_secret {
	char value[MG_PASSWORD_MAX + 1];
	size_t len;
};

static inline void auth_secret_wipe(struct auth_secret *secret)
{
	explicit_bzero(secret->value, sizeof(secret->value));
	secret->len = 0;
}

/* A decoded request: NUL-terminated copies plus their lengths. */
struct auth_request {
	char user[MG_USER_MAX + 1];
	size_t user_len;
	char password[MG_PASSWORD_MAX + 1];
	size_t password_len;
	char rhost[AUTH_RHOST_MAX + 1];
	size_t rhost_len;
	char master_backend[AUTH_BACKEND_MAX + 1];	/* "" when no master login follows */
	size_t master_backend_len;
};

struct auth_response {
	enum auth_status status;
	char reason[AUTH_REASON_MAX + 1];
	size_t reason_len;
	struct auth_secret master_password;	/* empty unless status is OK and one was asked */
};

/*
 * Whether len bytes may travel as a user name or password: no NUL (PAM takes
 * C strings), no CR or LF (they would split a line in any text protocol or log).
 */
bool auth_frame_secret_ok(const char *s, size_t len);

/*
 * Encode a request into buf. user must be 1..MG_USER_MAX bytes, password
 * 0..MG_PASSWORD_MAX, both auth_frame_secret_ok(); rhost 0..AUTH_RHOST_MAX
 * and master_backend 0..AUTH_BACKEND_MAX printable ASCII (either may be NULL
 * when its length is 0). Returns 0 with *outlen set, or -1 with err (nothing
 * secret is copied into err). The caller wipes buf after sending: it holds
 * the password.
 */
int auth_request_encode(const char *user, size_t user_len, const char *password,
			size_t password_len, const char *rhost, size_t rhost_len,
			const char *master_backend, size_t master_backend_len,
			unsigned char *buf, size_t bufsize, size_t *outlen, char *err,
			size_t errlen);

/*
 * Decode exactly len bytes. Refuses an unknown version, a truncated or
 * oversized field, an empty user, forbidden bytes and trailing bytes.
 * Returns 0, or -1 with err and *out wiped.
 */
int auth_request_decode(const unsigned char *buf, size_t len, struct auth_request *out,
			char *err, size_t errlen);

/* Clear a decoded request (it holds a password) with explicit_bzero. */
void auth_request_wipe(struct auth_request *req);

/*
 * Encode a response. reason is 0..AUTH_REASON_MAX printable ASCII bytes (may
 * be NULL when reason_len is 0). master_password is 0..MG_PASSWORD_MAX bytes,
 * auth_frame_secret_ok(), and must be empty unless status is
 * AUTH_STATUS_OK (may be NULL when its length is 0). Returns 0 with *outlen,
 * or -1 with err. When a master password went in, the caller wipes buf after
 * sending.
 */
int auth_response_encode(enum auth_status status, const char *reason, size_t reason_len,
			 const char *master_password, size_t master_password_len,
			 unsigned char *buf, size_t bufsize, size_t *outlen, char *err,
			 size_t errlen);

/*
 * Decode exactly len bytes, as strictly as the request (a master password
 * with any status but OK is refused). Returns 0, or -1 with err and *out
 * wiped. The caller wipes *out (auth_response_wipe) once the password, if
 * any, has been taken.
 */
int auth_response_decode(const unsigned char *buf, size_t len, struct auth_response *out,
			 char *err, size_t errlen);

/* Clear a decoded response (it may hold a master password) with explicit_bzero. */
void auth_response_wipe(struct auth_response *resp);

/* "ok", "auth-failed", "account-refused", "temp-failure"; "invalid" otherwise. */
const char *auth_status_name(enum auth_status status);

#endif
