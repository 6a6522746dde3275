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
 * Response: u8 version | u8 status | u16 rlen | reason
 */
#ifndef MG_AUTH_FRAME_H
#define MG_AUTH_FRAME_H

#include <stdbool.h>
#include <stddef.h>

#include "credentials.h"

#define AUTH_FRAME_VERSION	1
#define AUTH_RHOST_MAX		64
#define AUTH_REASON_MAX		128

/* The largest valid frames; a receive buffer one byte larger detects oversize. */
#define AUTH_REQUEST_MAX	(1 + 2 + MG_USER_MAX + 2 + MG_PASSWORD_MAX + 2 + AUTH_RHOST_MAX)
#define AUTH_RESPONSE_MAX	(1 + 1 + 2 + AUTH_REASON_MAX)

/* Wire values: fixed, never renumbered. 0 is deliberately not a status. */
enum auth_status {
	AUTH_STATUS_OK = 1,
	AUTH_STATUS_AUTH_FAILED = 2,		/* wrong password or unknown user */
	AUTH_STATUS_ACCOUNT_REFUSED = 3,	/* password right, account step said no */
	AUTH_STATUS_TEMP_FAILURE = 4,		/* PAM or the auth process could not decide */
};
#define AUTH_STATUS_COUNT 5	/* one past the largest value, for name tables */

/* A decoded request: NUL-terminated copies plus their lengths. */
struct auth_request {
	char user[MG_USER_MAX + 1];
	size_t user_len;
	char password[MG_PASSWORD_MAX + 1];
	size_t password_len;
	char rhost[AUTH_RHOST_MAX + 1];
	size_t rhost_len;
};

struct auth_response {
	enum auth_status status;
	char reason[AUTH_REASON_MAX + 1];
	size_t reason_len;
};

/*
 * Whether len bytes may travel as a user name or password: no NUL (PAM takes
 * C strings), no CR or LF (they would split a line in any text protocol or log).
 */
bool auth_frame_secret_ok(const char *s, size_t len);

/*
 * Encode a request into buf. user must be 1..MG_USER_MAX bytes, password
 * 0..MG_PASSWORD_MAX, both auth_frame_secret_ok(); rhost 0..AUTH_RHOST_MAX
 * printable ASCII (rhost may be NULL when rhost_len is 0). Returns 0 with
 * *outlen set, or -1 with err (nothing secret is copied into err). The caller
 * wipes buf after sending: it holds the password.
 */
int auth_request_encode(const char *user, size_t user_len, const char *password,
			size_t password_len, const char *rhost, size_t rhost_len,
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
 * be NULL when reason_len is 0). Returns 0 with *outlen, or -1 with err.
 */
int auth_response_encode(enum auth_status status, const char *reason, size_t reason_len,
			 unsigned char *buf, size_t bufsize, size_t *outlen, char *err,
			 size_t errlen);

/* Decode exactly len bytes, as strictly as the request. Returns 0 or -1 with err. */
int auth_response_decode(const unsigned char *buf, size_t len, struct auth_response *out,
			 char *err, size_t errlen);

/* "ok", "auth-failed", "account-refused", "temp-failure"; "invalid" otherwise. */
const char *auth_status_name(enum auth_status status);

#endif
