/*
 * protocol.h - what a client-facing protocol module provides.
 *
 * The session (session.c) owns the connection, the route decision, the
 * backend connection and the relay; a protocol module owns the dialogue with
 * the client until login and the login exchange with the backend. IMAP lives
 * in imap_frontend.c + imap_backend.c, POP3 in pop3_frontend.c (with pop3_command.c) +
 * pop3_backend.c, each behind the same table.
 */
#ifndef MG_PROTOCOL_H
#define MG_PROTOCOL_H

#include <stddef.h>

#include "config.h"

struct mg_session;
struct mg_stream;

enum mg_login_result {
	MG_LOGIN_OK,		/* backend accepted; reply holds its answer */
	MG_LOGIN_FAILED,	/* backend refused the credentials */
	MG_LOGIN_UNAVAILABLE,	/* backend unreachable, timed out or broken */
	MG_LOGIN_LIMIT		/* the user has max_sessions_per_user_ip from this address */
};

enum mg_frontend_result {
	MG_FRONTEND_CLOSE,	/* the session ends (logout, limit, error) */
	MG_FRONTEND_RELAY	/* logged in: relay client <-> backend */
};

struct mg_protocol_ops {
	enum mg_protocol protocol;
	/*
	 * Greet the client and run the pre-login dialogue. When the client
	 * presents credentials over a secure connection, call session_login()
	 * and answer according to its result.
	 */
	enum mg_frontend_result (*frontend)(struct mg_session *session);
	/*
	 * On a connected backend stream: consume the greeting, run STARTTLS if
	 * configured, and log in with session->cred. On MG_LOGIN_OK, reply
	 * holds the backend's final answer without its tag (IMAP: "OK [...]
	 * text"), for the front end to hand to the client. IMAP puts the
	 * untagged lines the backend sent before it first, each ending in
	 * CRLF ("* OK [ALERT] ...\r\n* CAPABILITY ...\r\nOK ..."): the answer
	 * is what follows the last LF.
	 */
	enum mg_login_result (*backend_login)(struct mg_session *session, struct mg_stream *backend,
					      char *reply, size_t replysize);
	/* Starts a last line before the gateway closes: "* BYE" or "-ERR". */
	const char *goodbye;
	/* Sent by the master when it refuses a connection (limits, shutdown). */
	const char *refusal_busy;
	const char *refusal_per_ip;
};

extern const struct mg_protocol_ops imap_protocol;
extern const struct mg_protocol_ops pop3_protocol;

/* The backend halves, one per protocol (backend_<protocol>.c). */
enum mg_login_result backend_imap_login(struct mg_session *session, struct mg_stream *backend,
					char *reply, size_t replysize);
enum mg_login_result backend_pop3_login(struct mg_session *session, struct mg_stream *backend,
					char *reply, size_t replysize);

const struct mg_protocol_ops *protocol_ops(enum mg_protocol protocol);

#endif
