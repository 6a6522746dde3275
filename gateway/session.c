/*
 * session.c - one client connection in its own child process: TLS where the
 * listener demands it, the protocol module's pre-login dialogue, the route to
 * a backend and the login there, the relay, and the one closing log line.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "backend.h"
#include "log.h"
#include "netaddr.h"
#include "relay.h"
#include "session.h"

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

long long session_client_deadline(const struct mg_session *session)
{
	return session->login_deadline;
}

long long session_write_deadline(const struct mg_session *session)
{
	return stream_now_ms() + CLIENT_WRITE_TIMEOUT_MS;
}

int session_start_client_tls(struct mg_session *session)
{
	long long left = session->login_deadline - stream_now_ms();
	char err[256] = "";

	if (left <= 0 || stream_start_tls_server(&session->client, session->env->tls_server,
						 (int)left, err, sizeof(err)) < 0) {
		log_info("tls handshake failed client=%s:%u listener=%s error=\"%s\"",
			 session->client_addr, session->client_port, session->listener->name,
			 left <= 0 ? "login timeout" : err);
		session->end_reason = "tls-failed";
		return -1;
	}
	session->secure = true;
	log_debug("tls established client=%s:%u version=%s cipher=%s", session->client_addr,
		  session->client_port, tls_version(session->client.tls),
		  tls_cipher(session->client.tls));
	return 0;
}

void session_failure_delay(struct mg_session *session)
{
	unsigned base = session->cfg->auth_failure_delay_ms;
	unsigned jitter = 0;
	long long until;

	if (base == 0)
		return;
	/* Between half and one and a half times the base, so timing tells nothing. */
	if (getrandom(&jitter, sizeof(jitter), 0) != (ssize_t)sizeof(jitter))
		jitter = 0;
	until = stream_now_ms() + base / 2 + jitter % (base + 1);
	for (long long left; (left = until - stream_now_ms()) > 0;)
		poll(NULL, 0, (int)left);
}

/* The route decision: the listener's backend, else the default one. */
static const struct mg_backend_config *route_backend(const struct mg_session *session)
{
	return session->listener->backend != NULL ? session->listener->backend
						  : session->cfg->default_backend;
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

struct mg_tls_client *session_backend_tls(const struct mg_session *session)
{
	return session->env->backend_tls[session->backend_cfg - session->cfg->backends];
}

enum mg_login_result session_login(struct mg_session *session, char *reply, size_t replysize)
{
	const struct mg_config *cfg = session->cfg;
	enum mg_login_result result;
	char err[256] = "";

	log_sanitize(session->user, sizeof(session->user), session->cred.user,
		     session->cred.user_len);
	session->backend_cfg = route_backend(session);
	if (backend_connect(session->backend_cfg, session->listener->protocol,
			    session_backend_tls(session), cfg->backend_connect_timeout,
			    BACKEND_MAX_LINE, &session->backend, session->backend_addr,
			    sizeof(session->backend_addr), err, sizeof(err)) < 0) {
		log_warning("backend unavailable client=%s:%u user=%s backend=%s error=\"%s\"",
			    session->client_addr, session->client_port, session->user,
			    session->backend_cfg->name, err);
		credentials_wipe(&session->cred);
		return MG_LOGIN_UNAVAILABLE;
	}
	result = session->ops->backend_login(session, &session->backend, reply, replysize);
	credentials_wipe(&session->cred);
	switch (result) {
	case MG_LOGIN_OK:
		log_info("login ok client=%s:%u listener=%s user=%s backend=%s backend_addr=%s",
			 session->client_addr, session->client_port, session->listener->name,
			 session->user, session->backend_cfg->name, session->backend_addr);
		return result;
	case MG_LOGIN_FAILED:
		session->auth_failures++;
		log_info("login failed client=%s:%u listener=%s user=%s backend=%s failures=%u",
			 session->client_addr, session->client_port, session->listener->name,
			 session->user, session->backend_cfg->name, session->auth_failures);
		break;
	case MG_LOGIN_UNAVAILABLE:
		log_warning("backend unavailable client=%s:%u user=%s backend=%s backend_addr=%s",
			    session->client_addr, session->client_port, session->user,
			    session->backend_cfg->name, session->backend_addr);
		break;
	}
	stream_close(&session->backend);
	return result;
}

static void log_session_end(const struct mg_session *session)
{
	const struct mg_tls *tls = session->client.tls;
	long long duration = stream_now_ms() - session->start_ms;

	log_info("session end client=%s:%u listener=%s tls=%s cipher=%s user=%s backend=%s "
		 "bytes_in=%llu bytes_out=%llu relayed_in=%llu relayed_out=%llu "
		 "duration=%lld.%03lld reason=%s",
		 session->client_addr, session->client_port, session->listener->name,
		 tls != NULL ? tls_version(tls) : "none", tls != NULL ? tls_cipher(tls) : "none",
		 session->user[0] != '\0' ? session->user : "-",
		 session->backend_cfg != NULL ? session->backend_cfg->name : "-",
		 (unsigned long long)session->client.bytes_in,
		 (unsigned long long)session->client.bytes_out,
		 (unsigned long long)session->relayed_in, (unsigned long long)session->relayed_out,
		 duration / 1000, duration % 1000,
		 session->end_reason != NULL ? session->end_reason : "closed");
}

void session_run(const struct mg_session_env *env, int fd, const struct sockaddr_storage *peer)
{
	struct mg_session session;
	int one = 1;

	memset(&session, 0, sizeof(session));
	session.env = env;
	session.cfg = env->cfg;
	session.listener = env->listener;
	session.ops = protocol_ops(env->listener->protocol);
	session.start_ms = stream_now_ms();
	session.login_deadline = session.start_ms + (long long)env->cfg->login_timeout * 1000;
	stream_init(&session.client, fd, env->cfg->max_line_length);
	stream_init(&session.backend, -1, BACKEND_MAX_LINE);
	netaddr_host_port((const struct sockaddr *)peer, session.client_addr,
			  sizeof(session.client_addr), &session.client_port);

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		log_error("fcntl: %s", strerror(errno));
		stream_close(&session.client);
		return;
	}
	log_debug("session start client=%s:%u listener=%s", session.client_addr,
		  session.client_port, env->listener->name);

	if (env->listener->tls == MG_LISTEN_STARTTLS || session_start_client_tls(&session) == 0) {
		if (session.ops->frontend(&session) == MG_FRONTEND_RELAY) {
			struct mg_relay_result relayed;

			relay_run(&session.client, &session.backend, env->cfg->session_timeout,
				  &relayed);
			session.relayed_in = relayed.client_to_backend;
			session.relayed_out = relayed.backend_to_client;
			session.end_reason = relayed.end_reason;
		}
	}
	credentials_wipe(&session.cred);
	log_session_end(&session);
	stream_close(&session.backend);
	stream_close(&session.client);
}
