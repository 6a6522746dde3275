/*
 * session_policy.h - the pre-login limits both front ends apply, in one
 * place: the login deadline, commands (max_commands_before_login), invalid
 * commands (max_bad_commands) and failed logins
 * (max_auth_failures, with the randomised delay before each answer).
 *
 * The front end words the answer in its protocol ("tag BAD ...", "-ERR
 * ..."); the counting, the goodbye at the limit (the protocol's goodbye,
 * "* BYE" or "-ERR", and the reason) and the session's end reason are here,
 * so IMAP and POP3 cannot drift apart.
 */
#ifndef MG_SESSION_POLICY_H
#define MG_SESSION_POLICY_H

#include "session.h"

/*
 * A line was read before login: past the login deadline say goodbye as for a
 * read that timed out (end_reason "login-timeout") and return -1; else 0.
 */
int session_within_deadline(struct mg_session *session);

/*
 * A command was read (not yet answered): past the login deadline say
 * goodbye as for a read that timed out (end_reason "login-timeout"); count
 * it, valid or not, and past max_commands_before_login say goodbye ("Too
 * many commands before login.") with end_reason "too-many-commands" instead
 * of answering it. Returns 0 when the command may run, -1 when the session
 * ends.
 */
int session_command_allowed(struct mg_session *session);

/*
 * A command was refused as invalid, not allowed or too large: send the
 * answer, count it, and at max_bad_commands say goodbye ("Too many invalid
 * commands.") with end_reason "too-many-bad-commands". A refused cleartext
 * login counts too. Returns 0 when the session goes on, -1 when it ends
 * (the limit, or the answer could not be sent).
 */
int session_bad_command(struct mg_session *session, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * session_login() said MG_LOGIN_FAILED (it counted the failure): wait the
 * failure delay, send the answer, and at max_auth_failures say goodbye
 * ("Too many failed logins.") with end_reason "too-many-auth-failures".
 * Returns 0 when the session goes on, -1 when it ends.
 */
int session_login_failed(struct mg_session *session, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
