/*
 * auth_pam.h - check one user name and password with PAM.
 *
 * The only module that talks to libpam. It runs inside an auth worker
 * (auth_worker.c), never in a session or the master: PAM modules may need root,
 * may block, may leak, and may crash, and none of that must reach a session.
 */
#ifndef MG_AUTH_PAM_H
#define MG_AUTH_PAM_H

#include <stddef.h>

#include "auth_frame.h"

/*
 * Run pam_start(service, user), PAM_RHOST (when rhost is not empty),
 * pam_authenticate and pam_acct_mgmt, then pam_end. user and password are
 * NUL-terminated with the given lengths; the conversation answers
 * PAM_PROMPT_ECHO_OFF with the password and PAM_PROMPT_ECHO_ON with the user
 * name.
 *
 * Every PAM call runs under alarm(timeout_s) (0: no alarm). The caller
 * installs a SIGALRM handler that ends the process: a module stuck in a call
 * cannot be unwound safely, so the process is the unit of recovery.
 *
 * Returns OK, AUTH_FAILED (pam_authenticate refused), ACCOUNT_REFUSED
 * (pam_acct_mgmt refused: expired, locked, password change required...) or
 * TEMP_FAILURE (PAM could not decide: module or system error, information
 * unavailable). reason gets a short printable token without spaces, e.g.
 * "authenticate:PAM_AUTH_ERR" or "acct_mgmt:PAM_ACCT_EXPIRED", for the log.
 * An empty password is refused without asking PAM (no nullok surprises).
 */
enum auth_status auth_pam_check(const char *service, const char *user, size_t user_len,
				const char *password, size_t password_len, const char *rhost,
				unsigned timeout_s, char *reason, size_t reasonlen);

/*
 * The conversation function, exported for the unit tests only. Its types are
 * PAM's (incomplete here, so nobody else needs <security/pam_appl.h>); appdata
 * is a struct auth_pam_conv_data.
 */
struct pam_message;
struct pam_response;

struct auth_pam_conv_data {
	const char *user;
	size_t user_len;
	const char *password;
	size_t password_len;
};

int auth_pam_conversation(int num_msg, const struct pam_message **msg,
			  struct pam_response **resp, void *appdata);

#endif
