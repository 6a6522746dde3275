/*
 * session.c - one client connection's pre-login phase in its own child
 * process: the protocol module's dialogue, TLS ordered from the engine, the
 * route to a backend and the login there, then the handoff to the engine
 * (which relays and writes the closing log line).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "auth_process.h"
#include "clock.h"
#include "session_backend.h"
#include "client_address.h"
#include "log.h"
#include "netaddr.h"
#include "proxy_protocol.h"
#include "session_route.h"
#include "session.h"
#include "session_link.h"
#include "session_penalty.h"

/* How long a child waits for the master's penalty before answering without it. */
#define PENALTY_ANSWER_MS 2000

#define BACKEND_MAX_LINE 16384
#define CLIENT_WRITE_TIMEOUT_MS 30000

const struct mg_protocol_ops *protocol_ops(enum mg_protocol protocol)
{
	switch (protocol) {
	case MG_PROTO_IMAP:
		return &imap_protocol;
	case MG_PROTO_POP3:
		return &pop3_protocol;
	case MG_PROTO_COUNT:
		break;
	}
	return NULL;
}

int session_send(struct mg_session *session, const char *text, size_t len)
{
	int rc = stream_write_all(&session->client, text, len, session_write_deadline(session));

	if (rc < 0) {
		/* Before login the write deadline is the login deadline. */
		session->end_reason = rc == MG_IO_TIMEOUT && !session->logged_in ? "login-timeout"
										  : "write-error";
		return -1;
	}
	return 0;
}

int session_vreply(struct mg_session *session, const char *fmt, va_list ap)
{
	char line[5120];
	int len = vsnprintf(line, sizeof(line) - 2, fmt, ap);

	if (len < 0 || (size_t)len >= sizeof(line) - 2)
		return -1;
	line[len++] = '\r';
	line[len++] = '\n';
	return session_send(session, line, (size_t)len);
}

int session_reply(struct mg_session *session, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = session_vreply(session, fmt, ap);
	va_end(ap);
	return rc;
}

long long session_client_deadline(const struct mg_session *session)
{
	return session->login_deadline;
}

long long session_write_deadline(const struct mg_session *session)
{
	/* A login may end after the deadline (a slow backend): its answer still goes out. */
	return session->logged_in ? mg_now_ms() + CLIENT_WRITE_TIMEOUT_MS : session->login_deadline;
}

/*
 * The client set: the first whose networks (if it has any) hold the client
 * and whose local_names (if it has any) match the name asked for in TLS.
 */
static void select_client_set(struct mg_session *session)
{
	struct mg_ipkey key;

	session->client_set = NULL;
	if (netaddr_key((const struct sockaddr *)&session->client_sa, &key) == 0)
		session->client_set = route_client_set(session->cfg, &key,
						       session->sni[0] != '\0' ? session->sni : NULL);
}

/*
 * TLS is up: the engine's facts. The name the client asked for may put it
 * in a client set with local_names, which decides its route and auth from
 * now on (cleartext policy no longer matters: the connection is secure).
 */
static void client_tls_up(struct mg_session *session, const struct link_tls *tls)
{
	const struct mg_client_set_config *before = session->client_set;

	session->client_tls = true;
	session->secure = true;
	snprintf(session->sni, sizeof(session->sni), "%s", tls->sni);
	select_client_set(session);
	log_debug("tls established client=%s:%u version=%s cipher=%s sni=%s set=%s%s",
		  session->client_addr, session->client_port, tls->version, tls->cipher,
		  session->sni[0] != '\0' ? session->sni : "-",
		  session->client_set != NULL ? session->client_set->name : "-",
		  session->client_set != before ? " (changed)" : "");
}

int session_start_client_tls(struct mg_session *session, const char *reply, size_t len)
{
	struct link_tls tls;

	if (link_start_tls(session->env->link, reply, len, session->login_deadline,
			   &session->client, &tls) < 0) {
		session->end_reason = "tls-failed";
		return -1;
	}
	client_tls_up(session, &tls);
	return 0;
}

void session_failure_delay(struct mg_session *session)
{
	unsigned base = session->cfg->auth_failure_delay_ms;
	unsigned jitter = 0;
	long long until = mg_now_ms();

	/* Between half and one and a half times the base, so timing tells nothing. */
	if (base > 0) {
		if (getrandom(&jitter, sizeof(jitter), 0) != (ssize_t)sizeof(jitter))
			jitter = 0;
		until += base / 2 + jitter % (base + 1);
	}
	/* The master's penalty for this address or user, when it asks for longer. */
	if (mg_now_ms() + session->penalty_ms > until)
		until = mg_now_ms() + session->penalty_ms;
	session->penalty_ms = 0;
	for (long long left; (left = until - mg_now_ms()) > 0;)
		poll(NULL, 0, (int)left);
}

void session_read_failed(struct mg_session *session, long rc)
{
	const char *text = NULL;

	switch (rc) {
	case MG_IO_TIMEOUT:
		text = "Disconnected for inactivity.";
		session->end_reason = "login-timeout";
		break;
	case MG_IO_TOO_LONG:
		text = "Line too long.";
		session->end_reason = "line-too-long";
		break;
	case MG_IO_EOF:
		/* The gateway's own dialogue: at shutdown the client hears so from us. */
		if (link_shutdown_ordered(session->env->link)) {
			text = "Server shutting down.";
			session->end_reason = "shutdown";
			break;
		}
		session->end_reason = "client-closed";
		break;
	default:
		session->end_reason = "read-error";
		break;
	}
	if (text != NULL)
		stream_printf(&session->client, session_write_deadline(session), "%s %s\r\n",
			      session->ops->goodbye, text);
}

/*
 * Ask the PAM workers. A refusal is answered like a backend's, so the client
 * cannot tell who said no; the backend never sees credentials PAM refused.
 * With master_backend (a route that logs in as the master user) an OK
 * brings that backend's master password into session->master_password.
 */
/*
 * The event a failed login is logged as: fail2ban's filter matches "login
 * failed" and must pass over the monitoring host, whose logins fail on
 * purpose.
 */
static const char *login_failed_event(const struct mg_session *session)
{
	return session->client_set != NULL && session->client_set->monitoring
		       ? "monitoring login failed" : "login failed";
}

static enum mg_login_result pam_check(struct mg_session *session,
				      const struct mg_backend_config *master_backend)
{
	long long left = session->login_deadline - mg_now_ms();
	char reason[AUTH_REASON_MAX + 1] = "";
	enum auth_status status;

	if (session->env->authd_fd < 0) {
		log_error("login unavailable: %s user=%s reason=no-auth-process",
			  session->log_head, session->user);
		return MG_LOGIN_UNAVAILABLE;
	}
	status = authd_check(session->env->authd_fd, &session->cred, session->client_addr,
			     master_backend != NULL ? master_backend->name : NULL,
			     &session->master_password, left > 1000 ? (int)left : 1000, reason,
			     sizeof(reason));
	switch (status) {
	case AUTH_STATUS_OK:
		session->pam_verified = true;
		log_debug("pam ok: %s user=%s", session->log_head, session->user);
		return MG_LOGIN_OK;
	case AUTH_STATUS_AUTH_FAILED:
	case AUTH_STATUS_ACCOUNT_REFUSED:
		session->auth_failures++;
		log_info("%s: %s user=%s auth=pam result=%s reason=%s failures=%u",
			 login_failed_event(session), session->log_head, session->user,
			 auth_status_name(status), reason, session->auth_failures);
		return MG_LOGIN_FAILED;
	case AUTH_STATUS_TEMP_FAILURE:
		break;
	}
	log_warning("login unavailable: %s user=%s auth=pam reason=%s", session->log_head,
		    session->user, reason);
	return MG_LOGIN_UNAVAILABLE;
}

/* Every login path ends here: nothing secret outlives the backend's answer. */
static void wipe_secrets(struct mg_session *session)
{
	credentials_wipe(&session->cred);
	auth_secret_wipe(&session->master_password);
}

/*
 * A failed login goes to the master's penalty (master_penalty.h), unless
 * the client is in a trusted set; its answer is the delay before the
 * failure is told, and whether the user is being guessed from many places.
 */
static void report_failure(struct mg_session *session)
{
	unsigned delay_ms, flags;
	char err[128];

	/* A trusted set, or the monitoring host whose logins fail on purpose. */
	if (session->client_set != NULL &&
	    (session->client_set->trusted || session->client_set->monitoring))
		return;
	if (link_login_failed(session->env->link, session->user_key, session->password_key,
			      mg_now_ms() + PENALTY_ANSWER_MS, &delay_ms, &flags, err,
			      sizeof(err)) < 0) {
		log_debug("penalty: no answer (%s)", err);
		return;
	}
	session->penalty_ms = delay_ms;
	if (flags & PENALTY_FLAG_USER_WARNING)
		log_warning("login failures for one user from many addresses: %s user=%s "
			    "window=%us", session->log_head, session->user, session->cfg->ban_window);
	if (flags & PENALTY_FLAG_BANNED)
		log_info("address banned after this failure: %s user=%s", session->log_head,
			 session->user);
}

static enum mg_login_result login_once(struct mg_session *session, char *reply,
				       size_t replysize);

/*
 * Under max_sessions_per_user_ip (the master counts logged-in sessions by
 * user and address)? Without an answer in time, the login goes on: a limit
 * must not turn a busy master into an outage.
 */
static bool user_may_log_in(struct mg_session *session)
{
	char err[128];
	int rc = link_userip_check(session->env->link, session->user_key,
				   mg_now_ms() + PENALTY_ANSWER_MS, err, sizeof(err));

	if (rc < 0)
		log_debug("user+address limit: no answer (%s)", err);
	return rc != 0;
}

enum mg_login_result session_login(struct mg_session *session, char *reply, size_t replysize)
{
	enum mg_login_result result;

	log_quote(session->user, sizeof(session->user), session->cred.user, session->cred.user_len);
	/* Now, while the password is here: the attempt's keys for the penalty. */
	session_penalty_keys(&session->cred, &session->user_key, &session->password_key);
	if (!credentials_clean(&session->cred)) {
		session->auth_failures++;
		log_info("%s: %s user=%s reason=invalid-characters", login_failed_event(session),
			 session->log_head, session->user);
		wipe_secrets(session);
		result = MG_LOGIN_FAILED;
	} else if (!user_may_log_in(session)) {
		log_info("login refused: %s user=%s reason=max-sessions-per-user-ip",
			 session->log_head, session->user);
		wipe_secrets(session);
		result = MG_LOGIN_LIMIT;
	} else {
		result = login_once(session, reply, replysize);
	}
	if (result == MG_LOGIN_FAILED)
		report_failure(session);
	session->logged_in = result == MG_LOGIN_OK;
	return result;
}

static enum mg_login_result login_once(struct mg_session *session, char *reply,
				       size_t replysize)
{
	const struct mg_config *cfg = session->cfg;
	enum mg_login_result result;
	struct mg_route route;
	bool master_login;
	unsigned char preamble[PROXY_HEADER_MAX];
	size_t preamble_len;
	char err[256] = "";

	session->pam_verified = false;
	auth_secret_wipe(&session->master_password);
	/* The route first: PAM hands out a master password only for the backend it names. */
	route_select(cfg, session->client_set, session->listener, session->cred.user,
		     session->cred.user_len, &route);
	master_login = route.backend->login == MG_BACKEND_LOGIN_MASTER;
	if (route_auth_method(cfg, session->client_set, session->listener) == MG_AUTH_PAM) {
		result = pam_check(session, master_login ? route.backend : NULL);
		if (result != MG_LOGIN_OK) {
			wipe_secrets(session);
			return result;
		}
	}
	session->backend_cfg = route.backend;
	session->route_reason = route.reason;
	if (master_login && (!session->pam_verified || session->master_password.len == 0)) {
		/* A master-user login checks no password: only after PAM did. */
		log_error("login refused: %s user=%s backend=%s reason=master-login-without-pam",
			  session->log_head, session->user, route.backend->name);
		wipe_secrets(session);
		return MG_LOGIN_UNAVAILABLE;
	}
	preamble_len = client_address_preamble(route.backend->client_address, &session->client_sa,
					       &session->local_sa, preamble, sizeof(preamble));
	if (link_backend_connect(session->env->link,
				 (unsigned)(session->backend_cfg - cfg->backends),
				 session->listener->protocol, preamble, preamble_len,
				 mg_now_ms() + (long long)(cfg->backend_connect_timeout +
							       cfg->backend_timeout) * 1000,
				 &session->backend, BACKEND_MAX_LINE, session->backend_addr,
				 sizeof(session->backend_addr), err, sizeof(err)) < 0) {
		log_warning("backend unavailable: %s user=%s backend=%s error=\"%s\"",
			    session->log_head, session->user, session->backend_cfg->name, err);
		wipe_secrets(session);
		return MG_LOGIN_UNAVAILABLE;
	}
	result = session->ops->backend_login(session, &session->backend, reply, replysize);
	wipe_secrets(session);
	switch (result) {
	case MG_LOGIN_OK:
		log_info("login ok: %s user=%s backend=%s route=%s backend_addr=%s%s%s",
			 session->log_head, session->user, session->backend_cfg->name,
			 session->route_reason, session->backend_addr,
			 session->sni[0] != '\0' ? " sni=" : "", session->sni);
		if (!session->client_tls && !session->secure) {
			/* The operator's list of who still logs in without TLS. */
			session->cleartext_login = true;
			log_warning("cleartext login: %s user=%s set=%s policy=%s", session->log_head,
				    session->user,
				    session->client_set != NULL ? session->client_set->name : "-",
				    config_cleartext_name(route_cleartext_policy(cfg,
										 session->client_set)));
		}
		return result;
	case MG_LOGIN_FAILED:
		session->auth_failures++;
		log_info("%s: %s user=%s backend=%s failures=%u", login_failed_event(session),
			 session->log_head, session->user, session->backend_cfg->name,
			 session->auth_failures);
		break;
	case MG_LOGIN_UNAVAILABLE:
		log_warning("backend unavailable: %s user=%s backend=%s backend_addr=%s",
			    session->log_head, session->user, session->backend_cfg->name,
			    session->backend_addr);
		break;
	case MG_LOGIN_LIMIT:		/* decided before the backend is asked */
		break;
	}
	stream_close(&session->backend);
	return result;
}

static void session_facts(const struct mg_session *session, struct session_facts *facts)
{
	facts->user = session->user[0] != '\0' ? session->user : NULL;
	facts->user_key = session->user_key;
	facts->route = session->route_reason;
	facts->backend = session->backend_cfg != NULL
				 ? (int)(session->backend_cfg - session->cfg->backends) : -1;
	facts->end_reason = session->end_reason != NULL ? session->end_reason : "closed";
}

/* The first implicit-TLS listener of the session's protocol, or NULL. */
static const struct mg_listener_config *implicit_tls_listener(const struct mg_session *session)
{
	for (size_t i = 0; i < session->cfg->n_listeners; i++) {
		const struct mg_listener_config *l = &session->cfg->listeners[i];

		if (l->protocol == session->listener->protocol && l->tls == MG_LISTEN_IMPLICIT)
			return l;
	}
	return NULL;
}

const char *session_cleartext_warning(const struct mg_session *session, char *buf, size_t size)
{
	const struct mg_listener_config *tls = implicit_tls_listener(session);
	char alternative[40] = "";
	int len;

	if (!session->cleartext_login || !session->cleartext_warn)
		return NULL;
	/* The ports this gateway listens on: the client's own, with STARTTLS, and its TLS one. */
	if (tls != NULL)
		snprintf(alternative, sizeof(alternative), " or to TLS on port %u", tls->port);
	len = snprintf(buf, size, "WARNING: your password was sent unencrypted. Switch your mail "
		       "program to %s on port %u%s.",
		       session->listener->protocol == MG_PROTO_POP3 ? "STLS" : "STARTTLS",
		       session->listener->port, alternative);
	return len > 0 && (size_t)len < size ? buf : NULL;
}

/* Who is connecting (the engine read any PROXY header): the client set and its policy. */
static void identify_client(struct mg_session *session, const struct session_hello *hello)
{
	enum mg_cleartext_policy policy;

	session->client_sa = hello->client;
	session->local_sa = hello->local;
	netaddr_host_port((const struct sockaddr *)&session->client_sa, session->client_addr,
			  sizeof(session->client_addr), &session->client_port);
	snprintf(session->log_head, sizeof(session->log_head), "rip=%s rport=%u listener=%s",
		 session->client_addr, session->client_port, session->listener->name);
	/* No name yet: a set with local_names waits for TLS. */
	select_client_set(session);
	policy = route_cleartext_policy(session->cfg, session->client_set);
	session->cleartext_allowed = policy != MG_CLEARTEXT_REFUSE;
	session->cleartext_warn = policy == MG_CLEARTEXT_WARN;
	session->secure = session->client_set != NULL && session->client_set->trusted;
}

void session_run(const struct mg_session_env *env)
{
	struct mg_session session;
	struct session_hello hello;
	struct session_facts facts;
	char err[128];

	memset(&session, 0, sizeof(session));
	session.env = env;
	session.cfg = env->cfg;
	session.start_ms = mg_now_ms();
	session.login_deadline = session.start_ms + (long long)env->cfg->login_timeout * 1000;
	if (link_wait_hello(env->link, session.login_deadline, &hello, err, sizeof(err)) < 0 ||
	    hello.listener >= env->cfg->n_listeners) {
		log_error("no session from the engine: %s", err);
		return;
	}
	session.listener = &env->cfg->listeners[hello.listener];
	session.ops = protocol_ops(session.listener->protocol);
	stream_init(&session.client, -1, env->cfg->max_line_length);
	stream_init(&session.backend, -1, BACKEND_MAX_LINE);
	if (hello.client_fd >= 0) {
		fcntl(hello.client_fd, F_SETFL, fcntl(hello.client_fd, F_GETFL) | O_NONBLOCK);
		session.client.fd = hello.client_fd;
	}
	identify_client(&session, &hello);
	log_debug("session start client=%s:%u listener=%s set=%s", session.client_addr,
		  session.client_port, session.listener->name,
		  session.client_set != NULL ? session.client_set->name : "-");

	if (session.listener->tls == MG_LISTEN_IMPLICIT) {
		struct link_tls tls;

		if (link_wait_tls(env->link, session.login_deadline, &session.client, &tls) < 0) {
			/* The engine logged the failed handshake and ends the session. */
			stream_close(&session.client);
			return;
		}
		client_tls_up(&session, &tls);
	}
	if (session.ops->frontend(&session) == MG_FRONTEND_RELAY) {
		session_facts(&session, &facts);
		facts.end_reason = NULL;
		if (link_handoff(env->link, &facts, &session.client, &session.backend,
				 mg_now_ms() + (long long)env->cfg->backend_timeout * 1000) < 0)
			log_warning("handoff to the engine failed client=%s:%u user=%s",
				    session.client_addr, session.client_port, session.user);
	} else {
		session_facts(&session, &facts);
		link_close(env->link, &facts, &session.client);
	}
	wipe_secrets(&session);
	stream_close(&session.backend);
	stream_close(&session.client);
}
