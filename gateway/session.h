/*
 * session.h - one client connection, from accept to the last relayed byte.
 *
 * A session runs in its own child process. It holds the client stream, the
 * credentials while a login is in flight, the backend stream once connected,
 * and what the closing log line reports.
 */
#ifndef MG_SESSION_H
#define MG_SESSION_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "credentials.h"
#include "protocol.h"
#include "stream.h"

/* What the master hands a child: all built before the fork. */
struct mg_session_env {
	const struct mg_config *cfg;
	const struct mg_listener_config *listener;
	struct mg_tls_server *tls_server;		/* for the listener's protocol */
	struct mg_tls_client **backend_tls;		/* per cfg->backends[i], NULL if tls none */
};

struct mg_session {
	const struct mg_session_env *env;
	const struct mg_config *cfg;
	const struct mg_listener_config *listener;
	const struct mg_protocol_ops *ops;

	struct mg_stream client;
	struct mg_stream backend;

	char client_addr[INET6_ADDRSTRLEN];
	unsigned client_port;

	bool secure;		/* TLS is up, so credentials may be accepted */
	bool cleartext_allowed;	/* policy: credentials accepted without TLS */
	long long login_deadline;	/* the whole pre-login phase must end by then */

	struct mg_credentials cred;	/* only between command and backend answer */
	char user[128];			/* sanitized, for logs */
	unsigned auth_failures;
	unsigned bad_commands;

	const struct mg_backend_config *backend_cfg;
	char backend_addr[INET6_ADDRSTRLEN + 8];

	long long start_ms;
	uint64_t relayed_in;	/* client -> backend after login */
	uint64_t relayed_out;	/* backend -> client after login */
	const char *end_reason;
};

/* Run the whole session on the accepted socket; returns when it is over. */
void session_run(const struct mg_session_env *env, int fd, const struct sockaddr_storage *peer);

/*
 * Route, connect to the backend and log in with session->cred. Wipes the
 * credentials before returning, whatever the result. On MG_LOGIN_OK the
 * backend stream is connected and reply holds the backend's answer.
 */
enum mg_login_result session_login(struct mg_session *session, char *reply, size_t replysize);

/* Sleep the failed-login delay (randomised around auth_failure_delay). */
void session_failure_delay(struct mg_session *session);

/* Deadline for the next client read before login (the login_timeout bound). */
long long session_client_deadline(const struct mg_session *session);
/* Deadline for a write to the client (never blocks longer than this). */
long long session_write_deadline(const struct mg_session *session);

/*
 * A client read failed with an MG_IO_* code before login: record why, and
 * tell the client with the protocol's goodbye line where there is one to send.
 */
void session_read_failed(struct mg_session *session, long rc);

/* The TLS context for the routed backend (NULL when it speaks no TLS). */
struct mg_tls_client *session_backend_tls(const struct mg_session *session);

/* Turn on TLS on the client stream (implicit or after STARTTLS/STLS). */
int session_start_client_tls(struct mg_session *session);

#endif
