/*
 * imap_backend.c - logging in to an IMAP backend on the client's behalf.
 *
 * An explicit state machine (imap_backend_step.h): greeting, optional
 * STARTTLS, optional ID, LOGIN, done. The driver is a loop over the state;
 * each state does one exchange (send its command, read up to its answer)
 * and the step table, which sees only the state and what kind of line came,
 * chooses the next state or the end of the login. Every read has the
 * backend_timeout deadline; backend text is logged only sanitized and
 * truncated; the LOGIN command (which holds the password) is built in a
 * stack buffer that is wiped as soon as it is sent. What the backend says
 * untagged while the login is under way (an ALERT, new capabilities) goes
 * into the reply ahead of its answer, for the client.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "imap_backend_step.h"
#include "imap_token.h"
#include "clock.h"
#include "log.h"
#include "netaddr.h"
#include "session.h"
#include "session_backend.h"
#include "session_sasl.h"

/* A state left out of the driver's switch is a warning (an error with -Werror). */
#pragma GCC diagnostic warning "-Wswitch-enum"

struct backend_imap {
	struct mg_session *session;
	struct mg_stream *stream;
	enum imap_backend_state state;
	long long deadline;
	bool literal_plus;	/* backend announced LITERAL+ in its greeting */
	char *reply;		/* the caller's: untagged lines for the client, then the answer */
	size_t replysize;
	size_t relayed;		/* bytes of untagged lines (with CRLF) at the start of reply */
	char who[128];
};

/* The answer that ended a wait, still in the stream buffer. */
struct answer {
	const char *text;	/* the backend's words: after the tag when tagged */
	size_t len;
};

static const struct imap_backend_step unavailable = {
	.move = IMAP_BACKEND_END,
	.result = MG_LOGIN_UNAVAILABLE,
};

static void set_state(struct backend_imap *b, enum imap_backend_state next)
{
	log_debug("backend_imap state=%s->%s backend=%s", imap_backend_state_name(b->state),
		  imap_backend_state_name(next), b->session->backend_addr);
	b->state = next;
}

/* "backend_imap state=... backend=..." for the shared helpers' log lines. */
static const char *who(struct backend_imap *b)
{
	snprintf(b->who, sizeof(b->who), "backend_imap state=%s backend=%s",
		 imap_backend_state_name(b->state), b->session->backend_addr);
	return b->who;
}

static void log_unexpected(struct backend_imap *b, const char *text, size_t len)
{
	backend_log_text(MG_LOG_WARNING, who(b), "unexpected", text, len);
}

/*
 * Keep an untagged line of the login for the client, with its CRLF. At most
 * half the reply goes to them, the rest stays for the answer; a line that
 * does not fit, or that holds a NUL or a line break (the reply is a C string
 * of CRLF-separated lines), is dropped with a log line.
 */
static void relay_untagged(struct backend_imap *b, const char *line, size_t len)
{
	if (b->relayed + len + 2 > b->replysize / 2 || memchr(line, '\0', len) != NULL ||
	    memchr(line, '\r', len) != NULL || memchr(line, '\n', len) != NULL) {
		backend_log_text(MG_LOG_WARNING, who(b), "not-relayed", line, len);
		return;
	}
	memcpy(b->reply + b->relayed, line, len);
	memcpy(b->reply + b->relayed + len, "\r\n", 2);
	b->relayed += len + 2;
	b->reply[b->relayed] = '\0';
}

/*
 * Read lines until one answers the current state's command (untagged data is
 * skipped, or kept for the client), and return what the step table makes of
 * it: never READ_ON. A
 * GO answer stays in the buffer for the caller (*a), who consumes it; any
 * other line is consumed here. A failed read ends the login (logged).
 */
static struct imap_backend_step await_answer(struct backend_imap *b, bool continuation,
					     struct answer *a)
{
	const struct imap_backend_options options = {
		.starttls = b->session->backend_cfg->tls == MG_BACKEND_TLS_STARTTLS,
		.client_id = b->session->backend_cfg->client_address == MG_CLIENT_ADDRESS_IMAP_ID,
		.continuation = continuation,
	};

	for (;;) {
		const char *line;
		long len = backend_read_line(b->stream, b->deadline, who(b), &line);
		struct imap_backend_step step;
		size_t text;

		if (len < 0)
			return unavailable;
		step = imap_backend_next(b->state,
					 imap_backend_classify(b->state, line, (size_t)len, &text),
					 &options);
		a->text = line + text;
		a->len = (size_t)len - text;
		if (step.unexpected)
			log_unexpected(b, a->text, a->len);
		if (step.relay)
			relay_untagged(b, line, (size_t)len);
		if (step.move != IMAP_BACKEND_GO)
			backend_consume_line(b->stream);
		if (step.move != IMAP_BACKEND_READ_ON)
			return step;
	}
}

static struct imap_backend_step greeting(struct backend_imap *b)
{
	struct answer a;
	struct imap_backend_step step = await_answer(b, false, &a);

	if (step.move == IMAP_BACKEND_GO) {
		/* The greeting is an untagged line: a.text is all of it. */
		b->literal_plus = imap_backend_has_capability(a.text, a.len, "LITERAL+");
		backend_consume_line(b->stream);
	}
	return step;
}

static struct imap_backend_step starttls(struct backend_imap *b)
{
	struct answer a;
	struct imap_backend_step step;

	if (stream_write_all(b->stream, "M1 STARTTLS\r\n", 13, b->deadline) < 0)
		return unavailable;
	step = await_answer(b, false, &a);
	if (step.move != IMAP_BACKEND_GO)
		return step;
	/* Whatever followed the OK in the clear goes with the old channel. */
	if (backend_start_tls(b->stream, b->session->env->link, b->deadline, who(b)) < 0)
		return unavailable;
	/* Capabilities may change with TLS; only trust LITERAL+ from a fresh list. */
	b->literal_plus = false;
	return step;
}

/*
 * Tell the backend who the client is (RFC 2971 ID with the x-originating-*
 * fields Dovecot honours from its login_trusted_networks) and which name it
 * asked for in TLS (x-connected-name, Dovecot's field for its local_name
 * blocks; left out without SNI). The answer does not matter, as long as
 * there is one.
 */
static struct imap_backend_step send_client_id(struct backend_imap *b)
{
	const struct mg_session *session = b->session;
	char local[INET6_ADDRSTRLEN];
	char command[768];
	unsigned local_port = 0;
	struct imap_backend_step step;
	struct answer a;
	int len;

	if (netaddr_host_port((const struct sockaddr *)&session->local_sa, local, sizeof(local),
			      &local_port) < 0)
		snprintf(local, sizeof(local), "0.0.0.0");
	/* The name is a checked host name: nothing in it needs IMAP quoting. */
	len = snprintf(command, sizeof(command),
		       "M0 ID (\"x-originating-ip\" \"%s\" \"x-originating-port\" \"%u\" "
		       "\"x-connected-ip\" \"%s\" \"x-connected-port\" \"%u\"%s%s%s)\r\n",
		       session->client_addr, session->client_port, local, local_port,
		       session->sni[0] != '\0' ? " \"x-connected-name\" \"" : "", session->sni,
		       session->sni[0] != '\0' ? "\"" : "");
	if (len < 0 || (size_t)len >= sizeof(command) ||
	    stream_write_all(b->stream, command, (size_t)len, b->deadline) < 0)
		return unavailable;
	step = await_answer(b, false, &a);
	if (step.move == IMAP_BACKEND_GO)
		backend_consume_line(b->stream);
	return step;
}

/* Send command[0..len), then wait for the server's "+" to go on. */
static int send_and_await_continuation(struct backend_imap *b, const char *command, size_t len)
{
	struct answer a;

	if (stream_write_all(b->stream, command, len, b->deadline) < 0)
		return -1;
	return await_answer(b, true, &a).move == IMAP_BACKEND_SEND_MORE ? 0 : -1;
}

/*
 * Send "M2 LOGIN user password". A value that needs a synchronising literal is
 * sent in two parts around the server's "+" continuation. Returns 0 once all
 * of it is sent, or -1.
 */
static int send_login(struct backend_imap *b)
{
	const struct mg_credentials *cred = &b->session->cred;
	const char *values[2] = { cred->user, cred->password };
	size_t lens[2] = { cred->user_len, cred->password_len };
	char command[2 * (MG_PASSWORD_MAX + 32) + 32];
	int rc = -1;
	size_t used = 0;

	memcpy(command, "M2 LOGIN", 8);
	used = 8;
	for (size_t i = 0; i < 2; i++) {
		bool sync = false;
		size_t n;

		command[used++] = ' ';
		n = imap_quote(values[i], lens[i], b->literal_plus, command + used,
			       sizeof(command) - used - 2, &sync);
		if (n == 0)
			goto out;
		if (sync) {
			/* Flush up to and including "{N}\r\n", wait for "+", then go on. */
			const char *crlf = memchr(command + used, '\n', n);
			size_t head = (size_t)(crlf - command) + 1;

			if (send_and_await_continuation(b, command, head) < 0)
				goto out;
			memmove(command, command + head, used + n - head);
			used = used + n - head;
		} else {
			used += n;
		}
	}
	command[used++] = '\r';
	command[used++] = '\n';
	if (stream_write_all(b->stream, command, used, b->deadline) == 0)
		rc = 0;
out:
	explicit_bzero(command, sizeof(command));
	return rc;
}

/*
 * Dovecot's master-user login: AUTHENTICATE PLAIN with the user as the
 * authorization identity and the master user's credentials. Only used after
 * PAM has checked the user's own password (session.c enforces that); the
 * password is the one the auth process sent with PAM's OK. Returns 0 once
 * all of it is sent, or -1.
 */
static int send_master_login(struct backend_imap *b)
{
	const struct mg_backend_config *backend = b->session->backend_cfg;
	const struct mg_credentials *cred = &b->session->cred;
	char encoded[(MG_USER_MAX * 2 + MG_PASSWORD_MAX + 2) * 4 / 3 + 8];
	int rc = -1;
	const struct auth_secret *password = &b->session->master_password;
	size_t len = sasl_plain_encode(cred->user, cred->user_len, backend->master_user,
				       strlen(backend->master_user), password->value,
				       password->len, encoded, sizeof(encoded) - 2);

	if (len > 0 && send_and_await_continuation(b, "M2 AUTHENTICATE PLAIN\r\n", 23) == 0) {
		encoded[len++] = '\r';
		encoded[len++] = '\n';
		if (stream_write_all(b->stream, encoded, len, b->deadline) == 0)
			rc = 0;
	}
	explicit_bzero(encoded, sizeof(encoded));
	return rc;
}

static struct imap_backend_step login(struct backend_imap *b)
{
	struct imap_backend_step step;
	struct answer a;

	if ((b->session->backend_cfg->login == MG_BACKEND_LOGIN_MASTER ? send_master_login(b)
									: send_login(b)) < 0)
		return unavailable;
	step = await_answer(b, false, &a);
	if (step.move != IMAP_BACKEND_GO)
		return step;
	/* After the untagged lines kept while waiting for it. */
	if (a.len >= b->replysize - b->relayed) {
		log_unexpected(b, a.text, a.len);
		return unavailable;
	}
	memcpy(b->reply + b->relayed, a.text, a.len);
	b->reply[b->relayed + a.len] = '\0';
	backend_consume_line(b->stream);
	return step;
}

enum mg_login_result backend_imap_login(struct mg_session *session, struct mg_stream *stream,
					char *reply, size_t replysize)
{
	struct backend_imap b = {
		.session = session,
		.stream = stream,
		.state = IMAP_BACKEND_GREETING,
		.deadline = mg_now_ms() + (long long)session->cfg->backend_timeout * 1000,
		.reply = reply,
		.replysize = replysize,
	};

	for (;;) {
		struct imap_backend_step step = unavailable;

		switch (b.state) {
		case IMAP_BACKEND_GREETING:
			step = greeting(&b);
			break;
		case IMAP_BACKEND_STARTTLS:
			step = starttls(&b);
			break;
		case IMAP_BACKEND_ID:
			step = send_client_id(&b);
			break;
		case IMAP_BACKEND_LOGIN:
			step = login(&b);
			break;
		case IMAP_BACKEND_DONE:
			return MG_LOGIN_OK;
		case IMAP_BACKEND_STATE_COUNT:
			return MG_LOGIN_UNAVAILABLE;	/* not a state: a broken invariant */
		}
		if (step.move != IMAP_BACKEND_GO)
			return step.result;
		set_state(&b, step.next);
	}
}
