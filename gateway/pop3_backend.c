/*
 * pop3_backend.c - logging in to a POP3 backend on the client's behalf
 * (RFC 1939 USER/PASS, RFC 2595 STLS, RFC 2449/3206 response codes).
 *
 * An explicit state machine (pop3_backend_step.h): greeting, optional STLS,
 * USER, PASS (or, as the master user, AUTH PLAIN), done. The driver is a
 * loop over the state; each state does one exchange (send its command, read
 * its answer) and the step table, which sees only the state and what kind of
 * line came, chooses the next state or the end of the login. Every read has
 * the backend_timeout deadline; backend text is logged only sanitized and
 * truncated; the PASS command (which holds the password) is built in a
 * stack buffer that is wiped as soon as it is sent.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "pop3_backend_step.h"
#include "session.h"
#include "session_backend.h"
#include "session_sasl.h"

/* A state left out of the driver's switch is a warning (an error with -Werror). */
#pragma GCC diagnostic warning "-Wswitch-enum"

struct backend_pop3 {
	struct mg_session *session;
	struct mg_stream *stream;
	enum pop3_backend_state state;
	long long deadline;
	char who[128];
};

static const struct pop3_backend_step unavailable = {
	.move = POP3_BACKEND_END,
	.result = MG_LOGIN_UNAVAILABLE,
};

static void set_state(struct backend_pop3 *b, enum pop3_backend_state next)
{
	log_debug("backend_pop3 state=%s->%s backend=%s", pop3_backend_state_name(b->state),
		  pop3_backend_state_name(next), b->session->backend_addr);
	b->state = next;
}

/* "backend_pop3 state=... backend=..." for the shared helpers' log lines. */
static const char *who(struct backend_pop3 *b)
{
	snprintf(b->who, sizeof(b->who), "backend_pop3 state=%s backend=%s",
		 pop3_backend_state_name(b->state), b->session->backend_addr);
	return b->who;
}

static void log_line(struct backend_pop3 *b, enum pop3_backend_log log, const char *line,
		     size_t len)
{
	switch (log) {
	case POP3_BACKEND_LOG_NONE:
	case POP3_BACKEND_LOG_COUNT:
		break;
	case POP3_BACKEND_LOG_UNEXPECTED:
		backend_log_text(MG_LOG_WARNING, who(b), "unexpected", line, len);
		break;
	case POP3_BACKEND_LOG_UNAVAILABLE:
		backend_log_text(MG_LOG_WARNING, who(b), "unavailable", line, len);
		break;
	case POP3_BACKEND_LOG_REFUSED:
		/* Only the backend's words, never the command we sent. */
		backend_log_text(MG_LOG_INFO, who(b), "refused", line, len);
		break;
	}
}

/*
 * Read the answer to the current state's command and return what the step
 * table makes of it. On GO with a reply buffer, the answer is copied there
 * for the client. A failed read ends the login (logged).
 */
static struct pop3_backend_step await_answer(struct backend_pop3 *b, bool continuation,
					     char *reply, size_t replysize)
{
	const struct pop3_backend_options options = {
		.stls = b->session->backend_cfg->tls == MG_BACKEND_TLS_STARTTLS,
		.master = b->session->backend_cfg->login == MG_BACKEND_LOGIN_MASTER,
		.continuation = continuation,
	};
	const char *line;
	long len = backend_read_line(b->stream, b->deadline, who(b), &line);
	struct pop3_backend_step step;

	if (len < 0)
		return unavailable;
	step = pop3_backend_next(b->state, pop3_backend_classify(line, (size_t)len), &options);
	log_line(b, step.log, line, (size_t)len);
	if (step.move == POP3_BACKEND_GO && reply != NULL) {
		if ((size_t)len >= replysize) {
			backend_log_text(MG_LOG_WARNING, who(b), "overlong", line, (size_t)len);
			return unavailable;
		}
		memcpy(reply, line, (size_t)len);
		reply[len] = '\0';
	}
	backend_consume_line(b->stream);
	return step;
}

static struct pop3_backend_step stls(struct backend_pop3 *b)
{
	struct pop3_backend_step step;

	if (stream_write_all(b->stream, "STLS\r\n", 6, b->deadline) < 0)
		return unavailable;
	step = await_answer(b, false, NULL, 0);
	if (step.move == POP3_BACKEND_GO &&
	    backend_start_tls(b->stream, b->session->env->link, b->deadline, who(b)) < 0)
		return unavailable;
	return step;
}

/* A value that would end or split a command line must never reach the backend. */
static bool line_safe(const char *value, size_t len)
{
	return len > 0 && memchr(value, '\0', len) == NULL && memchr(value, '\r', len) == NULL &&
	       memchr(value, '\n', len) == NULL;
}

/* Send "VERB value\r\n" from a buffer that is wiped afterwards. */
static int send_command(struct backend_pop3 *b, const char *verb, const char *value, size_t len)
{
	char command[4 + 1 + MG_PASSWORD_MAX + 2];
	size_t vlen = strlen(verb);
	int rc = -1;

	if (vlen + 1 + len + 2 <= sizeof(command)) {
		memcpy(command, verb, vlen);
		command[vlen] = ' ';
		memcpy(command + vlen + 1, value, len);
		command[vlen + 1 + len] = '\r';
		command[vlen + 2 + len] = '\n';
		rc = stream_write_all(b->stream, command, vlen + len + 3, b->deadline) < 0 ? -1 : 0;
	}
	explicit_bzero(command, sizeof(command));
	return rc;
}

/*
 * Dovecot's master-user login (RFC 5034 AUTH PLAIN with the user as the
 * authorization identity), only after PAM checked the user's own password;
 * the password is the one the auth process sent with PAM's OK. Returns 0
 * once all of it is sent, or -1.
 */
static int send_master_login(struct backend_pop3 *b)
{
	const struct mg_backend_config *backend = b->session->backend_cfg;
	const struct mg_credentials *cred = &b->session->cred;
	const struct auth_secret *password = &b->session->master_password;
	char encoded[(MG_USER_MAX * 2 + MG_PASSWORD_MAX + 2) * 4 / 3 + 8];
	int rc = -1;
	size_t len = sasl_plain_encode(cred->user, cred->user_len, backend->master_user,
				       strlen(backend->master_user), password->value,
				       password->len, encoded, sizeof(encoded) - 2);

	if (len > 0 && stream_write_all(b->stream, "AUTH PLAIN\r\n", 12, b->deadline) == 0 &&
	    await_answer(b, true, NULL, 0).move == POP3_BACKEND_SEND_MORE) {
		encoded[len++] = '\r';
		encoded[len++] = '\n';
		if (stream_write_all(b->stream, encoded, len, b->deadline) == 0)
			rc = 0;
	}
	explicit_bzero(encoded, sizeof(encoded));
	return rc;
}

static struct pop3_backend_step user(struct backend_pop3 *b)
{
	const struct mg_credentials *cred = &b->session->cred;

	if (send_command(b, "USER", cred->user, cred->user_len) < 0)
		return unavailable;
	return await_answer(b, false, NULL, 0);
}

static struct pop3_backend_step pass(struct backend_pop3 *b, char *reply, size_t replysize)
{
	const struct mg_credentials *cred = &b->session->cred;

	if ((b->session->backend_cfg->login == MG_BACKEND_LOGIN_MASTER
		     ? send_master_login(b)
		     : send_command(b, "PASS", cred->password, cred->password_len)) < 0)
		return unavailable;
	return await_answer(b, false, reply, replysize);
}

/*
 * Before the first state that sends credentials: the front end's parsers
 * exclude bytes that would split a command line, so finding one is a broken
 * invariant, refused before anything of the credentials is sent.
 */
static bool credentials_line_safe(const struct backend_pop3 *b)
{
	const struct mg_credentials *cred = &b->session->cred;

	if (line_safe(cred->user, cred->user_len) && line_safe(cred->password, cred->password_len))
		return true;
	log_error("backend_pop3 backend=%s error=\"credentials not line-safe\"",
		  b->session->backend_addr);
	return false;
}

enum mg_login_result backend_pop3_login(struct mg_session *session, struct mg_stream *stream,
					char *reply, size_t replysize)
{
	struct backend_pop3 b = {
		.session = session,
		.stream = stream,
		.state = POP3_BACKEND_GREETING,
		.deadline = mg_now_ms() + (long long)session->cfg->backend_timeout * 1000,
	};

	for (;;) {
		struct pop3_backend_step step = unavailable;

		switch (b.state) {
		case POP3_BACKEND_GREETING:
			step = await_answer(&b, false, NULL, 0);
			break;
		case POP3_BACKEND_STLS:
			step = stls(&b);
			break;
		case POP3_BACKEND_USER:
			step = user(&b);
			break;
		case POP3_BACKEND_PASS:
			step = pass(&b, reply, replysize);
			break;
		case POP3_BACKEND_DONE:
			return MG_LOGIN_OK;
		case POP3_BACKEND_STATE_COUNT:
			return MG_LOGIN_UNAVAILABLE;	/* not a state: a broken invariant */
		}
		if (step.move != POP3_BACKEND_GO)
			return step.result;
		if (b.state != POP3_BACKEND_USER &&
		    (step.next == POP3_BACKEND_USER || step.next == POP3_BACKEND_PASS) &&
		    !credentials_line_safe(&b))
			return MG_LOGIN_FAILED;
		set_state(&b, step.next);
	}
}
