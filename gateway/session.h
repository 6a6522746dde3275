/*
 * session.h - one client connection's pre-login phase, in a child process.
 *
 * The child speaks cleartext with its TLS engine (session_link.h): the
 * client's bytes and, once connected, the backend's. It holds the
 * credentials while a login is in flight and ends by handing the logged-in
 * session to the engine, which relays it and writes the closing log line.
 * A backend's master-user password is not in the configuration it was
 * forked with: the auth process hands it over only after PAM accepted the
 * user, and it is wiped as soon as the backend has answered.
 */
#ifndef MG_SESSION_H
#define MG_SESSION_H

#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "auth_frame.h"
#include "config.h"
#include "credentials.h"
#include "dnsname.h"
#include "protocol.h"
#include "stream.h"

/* What a child has: the configuration of its engine's generation, two channels. */
struct mg_session_env {
	const struct mg_config *cfg;
	int link;					/* to the engine (session_link.h) */
	int authd_fd;					/* requests to the PAM workers, or -1 */
};

struct mg_session {
	const struct mg_session_env *env;
	const struct mg_config *cfg;
	const struct mg_listener_config *listener;
	const struct mg_protocol_ops *ops;

	struct mg_stream client;
	struct mg_stream backend;

	struct sockaddr_storage client_sa;	/* the real client (after a PROXY header) */
	struct sockaddr_storage local_sa;	/* the address it connected to */
	char client_addr[INET6_ADDRSTRLEN];
	unsigned client_port;
	/*
	 * "rip=ADDR rport=PORT listener=NAME": what every line about a login
	 * starts with, right after its event name, before any value the client
	 * chose (fail2ban's filter relies on that order).
	 */
	char log_head[INET6_ADDRSTRLEN + 128];
	const struct mg_client_set_config *client_set;	/* NULL: in no set */
	char sni[DNS_NAME_MAX + 1];	/* the name asked for in TLS (SNI), checked; "" for none */

	bool client_tls;	/* the engine runs TLS with the client */
	bool secure;		/* TLS is up, or a trusted network: credentials may be accepted */
	bool cleartext_allowed;	/* policy: credentials accepted without TLS */
	bool cleartext_warn;	/* policy warn: tell the user after a cleartext login */
	bool cleartext_login;	/* the login that succeeded came without TLS */
	long long login_deadline;	/* the whole pre-login phase must end by then */

	struct mg_credentials cred;	/* only between command and backend answer */
	bool pam_verified;		/* PAM accepted cred: a master-user login may follow */
	struct auth_secret master_password;	/* from the auth process, for backend_cfg's
						   master login; wiped with cred */
	char user[128];			/* quoted and escaped (log_quote), for logs */
	unsigned auth_failures;
	unsigned bad_commands;
	unsigned commands;		/* every command before login, valid or not */
	bool logged_in;			/* the backend said yes: login_deadline is over */
	/* The login being tried, for the master's penalty (session_penalty.h). */
	uint64_t user_key, password_key;
	unsigned penalty_ms;		/* the master's delay before the next failure reply */

	const struct mg_backend_config *backend_cfg;
	const char *route_reason;
	char backend_addr[INET6_ADDRSTRLEN + 8];

	long long start_ms;
	const char *end_reason;
};

/*
 * Run the pre-login phase of the connection the engine announces on
 * env->link; returns when the session was handed over or has ended.
 */
void session_run(const struct mg_session_env *env);

/*
 * The warning a user on a "warn" client set gets after a cleartext login
 * (IMAP as an [ALERT], POP3 added to the backend's +OK text), naming the
 * ports this gateway offers TLS on: the listener's own with STARTTLS/STLS and
 * the protocol's implicit-TLS listener, if there is one. Written into buf
 * (SESSION_WARNING_MAX is enough) and returned, or NULL when none is due.
 */
#define SESSION_WARNING_MAX 160
const char *session_cleartext_warning(const struct mg_session *session, char *buf, size_t size);

/*
 * Route, ask PAM where the login uses it (with the master backend's name when
 * the route logs in as the master user), connect to the backend and log in
 * with session->cred. Wipes the credentials and any master password before
 * returning, whatever the result. On MG_LOGIN_OK the backend stream is
 * connected and reply holds the backend's answer.
 */
enum mg_login_result session_login(struct mg_session *session, char *reply, size_t replysize);

/* Sleep the failed-login delay (randomised around auth_failure_delay). */
void session_failure_delay(struct mg_session *session);

/* Deadline for the next client read before login (the login_timeout bound). */
long long session_client_deadline(const struct mg_session *session);
/*
 * Deadline for a write to the client (never blocks longer than this): before
 * login the login deadline itself, so a client that does not read our
 * answers cannot stretch it.
 */
long long session_write_deadline(const struct mg_session *session);

/*
 * A client read failed with an MG_IO_* code before login: record why, and
 * tell the client with the protocol's goodbye line where there is one to send.
 */
void session_read_failed(struct mg_session *session, long rc);


/*
 * Send one response line to the client (CRLF added; at most 5 kB, enough for
 * a backend's login answer) or raw protocol text. A client that does not
 * read within the write deadline is given up: returns -1 with end_reason set.
 */
int session_reply(struct mg_session *session, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int session_vreply(struct mg_session *session, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
int session_send(struct mg_session *session, const char *text, size_t len);

/*
 * STARTTLS/STLS: have the engine send reply (the protocol's go-ahead line,
 * CRLF included) and run the handshake. Everything the client sent after the
 * command is dropped. Returns 0 once TLS is up, -1 when the session ends.
 */
int session_start_client_tls(struct mg_session *session, const char *reply, size_t len);

#endif
