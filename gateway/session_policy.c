/*
 * session_policy.c - the deadline, command, bad-command and failed-login limits of
 * session_policy.h, shared by imap_frontend.c and pop3_frontend.c.
 */
#include <stdarg.h>

#include "clock.h"
#include "session_policy.h"

/* Past a limit: the protocol's goodbye with why, and the reason for the log line. */
static int goodbye(struct mg_session *session, const char *text, const char *reason)
{
	session_reply(session, "%s %s", session->ops->goodbye, text);
	session->end_reason = reason;
	return -1;
}

int session_within_deadline(struct mg_session *session)
{
	/* Checked per line, not only when a read waits: pipelined lines never wait. */
	if (mg_now_ms() >= session->login_deadline) {
		session_read_failed(session, MG_IO_TIMEOUT);
		return -1;
	}
	return 0;
}

int session_command_allowed(struct mg_session *session)
{
	if (session_within_deadline(session) < 0)
		return -1;
	session->commands++;
	if (session->commands > session->cfg->max_commands_before_login)
		return goodbye(session, "Too many commands before login.", "too-many-commands");
	return 0;
}

int session_bad_command(struct mg_session *session, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = session_vreply(session, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -1;
	session->bad_commands++;
	if (session->bad_commands >= session->cfg->max_bad_commands)
		return goodbye(session, "Too many invalid commands.", "too-many-bad-commands");
	return 0;
}

int session_login_failed(struct mg_session *session, const char *fmt, ...)
{
	va_list ap;
	int rc;

	session_failure_delay(session);
	va_start(ap, fmt);
	rc = session_vreply(session, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -1;
	if (session->auth_failures >= session->cfg->max_auth_failures)
		return goodbye(session, "Too many failed logins.", "too-many-auth-failures");
	return 0;
}
