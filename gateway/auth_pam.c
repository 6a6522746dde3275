/*
 * auth_pam.c - one PAM transaction per login: start, authenticate, account
 * check, end. The only file in mailgate that includes <security/pam_appl.h>.
 *
 * The conversation function answers prompts from the credentials the client
 * sent and never asks anyone anything: a password prompt gets the password,
 * a visible prompt gets the user name, messages are logged (sanitized), and
 * any other style fails the conversation. Responses are allocated with
 * malloc because libpam frees them with free(); on a failure part-way, the
 * ones already made are wiped and freed here and PAM gets none.
 */
#include <security/pam_appl.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_pam.h"
#include "log.h"

/* PAM result codes by name, for reasons an operator can grep for. */
static const char *pam_code_name(int rc)
{
	switch (rc) {
	case PAM_SUCCESS: return "PAM_SUCCESS";
	case PAM_OPEN_ERR: return "PAM_OPEN_ERR";
	case PAM_SYMBOL_ERR: return "PAM_SYMBOL_ERR";
	case PAM_SERVICE_ERR: return "PAM_SERVICE_ERR";
	case PAM_SYSTEM_ERR: return "PAM_SYSTEM_ERR";
	case PAM_BUF_ERR: return "PAM_BUF_ERR";
	case PAM_PERM_DENIED: return "PAM_PERM_DENIED";
	case PAM_AUTH_ERR: return "PAM_AUTH_ERR";
	case PAM_CRED_INSUFFICIENT: return "PAM_CRED_INSUFFICIENT";
	case PAM_AUTHINFO_UNAVAIL: return "PAM_AUTHINFO_UNAVAIL";
	case PAM_USER_UNKNOWN: return "PAM_USER_UNKNOWN";
	case PAM_MAXTRIES: return "PAM_MAXTRIES";
	case PAM_NEW_AUTHTOK_REQD: return "PAM_NEW_AUTHTOK_REQD";
	case PAM_ACCT_EXPIRED: return "PAM_ACCT_EXPIRED";
	case PAM_SESSION_ERR: return "PAM_SESSION_ERR";
	case PAM_CRED_UNAVAIL: return "PAM_CRED_UNAVAIL";
	case PAM_CRED_EXPIRED: return "PAM_CRED_EXPIRED";
	case PAM_CRED_ERR: return "PAM_CRED_ERR";
	case PAM_NO_MODULE_DATA: return "PAM_NO_MODULE_DATA";
	case PAM_CONV_ERR: return "PAM_CONV_ERR";
	case PAM_AUTHTOK_ERR: return "PAM_AUTHTOK_ERR";
	case PAM_AUTHTOK_RECOVERY_ERR: return "PAM_AUTHTOK_RECOVERY_ERR";
	case PAM_AUTHTOK_LOCK_BUSY: return "PAM_AUTHTOK_LOCK_BUSY";
	case PAM_AUTHTOK_DISABLE_AGING: return "PAM_AUTHTOK_DISABLE_AGING";
	case PAM_TRY_AGAIN: return "PAM_TRY_AGAIN";
	case PAM_IGNORE: return "PAM_IGNORE";
	case PAM_ABORT: return "PAM_ABORT";
	case PAM_AUTHTOK_EXPIRED: return "PAM_AUTHTOK_EXPIRED";
#ifdef PAM_MODULE_UNKNOWN
	case PAM_MODULE_UNKNOWN: return "PAM_MODULE_UNKNOWN";
#endif
#ifdef PAM_BAD_ITEM
	case PAM_BAD_ITEM: return "PAM_BAD_ITEM";
#endif
#ifdef PAM_CONV_AGAIN
	case PAM_CONV_AGAIN: return "PAM_CONV_AGAIN";
#endif
#ifdef PAM_INCOMPLETE
	case PAM_INCOMPLETE: return "PAM_INCOMPLETE";
#endif
	}
	return "PAM_UNKNOWN_CODE";
}

/*
 * Codes that mean "PAM could not decide" rather than "no": a module that
 * failed to load, a directory that is down, memory, a conversation we could
 * not hold. The client is told to try later instead of "wrong password".
 */
static bool pam_code_is_temporary(int rc)
{
	switch (rc) {
	case PAM_OPEN_ERR:
	case PAM_SYMBOL_ERR:
	case PAM_SERVICE_ERR:
	case PAM_SYSTEM_ERR:
	case PAM_BUF_ERR:
	case PAM_AUTHINFO_UNAVAIL:
	case PAM_CONV_ERR:
	case PAM_TRY_AGAIN:
	case PAM_ABORT:
#ifdef PAM_MODULE_UNKNOWN
	case PAM_MODULE_UNKNOWN:
#endif
#ifdef PAM_BAD_ITEM
	case PAM_BAD_ITEM:
#endif
#ifdef PAM_CONV_AGAIN
	case PAM_CONV_AGAIN:
#endif
#ifdef PAM_INCOMPLETE
	case PAM_INCOMPLETE:
#endif
		return true;
	}
	return false;
}

/* A malloc'd copy for libpam to free; libpam overwrites replies before free(). */
static char *copy_for_pam(const char *s, size_t len)
{
	char *copy = malloc(len + 1);

	if (copy == NULL)
		return NULL;
	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

static void free_replies(struct pam_response *replies, int n)
{
	for (int i = 0; i < n; i++) {
		if (replies[i].resp != NULL) {
			explicit_bzero(replies[i].resp, strlen(replies[i].resp));
			free(replies[i].resp);
		}
	}
	free(replies);
}

static void log_pam_message(int style, const char *text)
{
	char clean[256];

	if (text == NULL)
		text = "";
	log_sanitize(clean, sizeof(clean), text, strnlen(text, PAM_MAX_MSG_SIZE));
	if (style == PAM_ERROR_MSG)
		log_warning("auth pam message style=error text=\"%s\"", clean);
	else
		log_info("auth pam message style=info text=\"%s\"", clean);
}

int auth_pam_conversation(int num_msg, const struct pam_message **msg,
			  struct pam_response **resp, void *appdata)
{
	const struct auth_pam_conv_data *data = appdata;
	struct pam_response *replies;
	int i;
	int rc = PAM_CONV_ERR;

	if (resp == NULL)
		return PAM_CONV_ERR;
	*resp = NULL;
	if (num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG || msg == NULL || data == NULL)
		return PAM_CONV_ERR;
	replies = calloc((size_t)num_msg, sizeof(*replies));
	if (replies == NULL)
		return PAM_BUF_ERR;
	/*
	 * Linux-PAM passes an array of pointers (msg[i]); Solaris a pointer to
	 * an array. We build on Linux-PAM, which defines the former.
	 */
	for (i = 0; i < num_msg; i++) {
		const struct pam_message *m = msg[i];

		if (m == NULL)
			goto fail;
		switch (m->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
			replies[i].resp = copy_for_pam(data->password, data->password_len);
			if (replies[i].resp == NULL) {
				rc = PAM_BUF_ERR;
				goto fail;
			}
			break;
		case PAM_PROMPT_ECHO_ON:
			replies[i].resp = copy_for_pam(data->user, data->user_len);
			if (replies[i].resp == NULL) {
				rc = PAM_BUF_ERR;
				goto fail;
			}
			break;
		case PAM_ERROR_MSG:
		case PAM_TEXT_INFO:
			log_pam_message(m->msg_style, m->msg);
			break;
		default:
			/* Radio buttons, binary prompts: nothing we could answer truthfully. */
			log_warning("auth pam conversation refused style=%d", m->msg_style);
			rc = PAM_CONV_ERR;
			goto fail;
		}
		replies[i].resp_retcode = 0;
	}
	*resp = replies;
	return PAM_SUCCESS;
fail:
	/* calloc'd: the entries not reached are NULL. */
	free_replies(replies, num_msg);
	return rc;
}

/*
 * Linux-PAM sleeps in the worker after a failure unless the application
 * takes over the delay. The session applies its own randomised failure delay
 * to the client, so the worker stays free for the next login.
 */
static void no_fail_delay(int retval, unsigned usec_delay, void *appdata)
{
	(void)retval;
	(void)usec_delay;
	(void)appdata;
}

static void set_reason(char *reason, size_t reasonlen, const char *step, int rc)
{
	snprintf(reason, reasonlen, "%s:%s", step, pam_code_name(rc));
}

enum auth_status auth_pam_check(const char *service, const char *user, size_t user_len,
				const char *password, size_t password_len, const char *rhost,
				unsigned timeout_s, char *reason, size_t reasonlen)
{
	struct auth_pam_conv_data data = {
		.user = user,
		.user_len = user_len,
		.password = password,
		.password_len = password_len,
	};
	const struct pam_conv conv = { .conv = auth_pam_conversation, .appdata_ptr = &data };
	pam_handle_t *pamh = NULL;
	enum auth_status status;
	int rc;

	if (password_len == 0) {
		/* A module configured with nullok would let an empty password in. */
		snprintf(reason, reasonlen, "empty-password");
		return AUTH_STATUS_AUTH_FAILED;
	}

	alarm(timeout_s);
	rc = pam_start(service, user, &conv, &pamh);
	alarm(0);
	if (rc != PAM_SUCCESS || pamh == NULL) {
		set_reason(reason, reasonlen, "start", rc);
		return AUTH_STATUS_TEMP_FAILURE;
	}
	if (rhost != NULL && rhost[0] != '\0') {
		rc = pam_set_item(pamh, PAM_RHOST, rhost);
		if (rc != PAM_SUCCESS) {
			set_reason(reason, reasonlen, "set_item", rc);
			status = AUTH_STATUS_TEMP_FAILURE;
			goto end;
		}
	}
#ifdef PAM_FAIL_DELAY
	/* Best effort: without it a module's delay only costs worker time. */
	(void)pam_set_item(pamh, PAM_FAIL_DELAY, (const void *)no_fail_delay);
#else
	(void)no_fail_delay;
#endif

	/*
	 * Not PAM_SILENT: what modules have to say (an expiry warning, say)
	 * reaches the log through the conversation.
	 */
	alarm(timeout_s);
	rc = pam_authenticate(pamh, PAM_DISALLOW_NULL_AUTHTOK);
	alarm(0);
	if (rc != PAM_SUCCESS) {
		set_reason(reason, reasonlen, "authenticate", rc);
		status = pam_code_is_temporary(rc) ? AUTH_STATUS_TEMP_FAILURE
						   : AUTH_STATUS_AUTH_FAILED;
		goto end;
	}

	alarm(timeout_s);
	rc = pam_acct_mgmt(pamh, PAM_DISALLOW_NULL_AUTHTOK);
	alarm(0);
	if (rc != PAM_SUCCESS) {
		/* Expired, locked, password change required: each keeps its own code. */
		set_reason(reason, reasonlen, "acct_mgmt", rc);
		status = pam_code_is_temporary(rc) ? AUTH_STATUS_TEMP_FAILURE
						   : AUTH_STATUS_ACCOUNT_REFUSED;
		goto end;
	}
	snprintf(reason, reasonlen, "pam:PAM_SUCCESS");
	status = AUTH_STATUS_OK;
end:
	alarm(timeout_s);
	pam_end(pamh, rc);
	alarm(0);
	return status;
}
