/*
 * pop3_backend.c - logging in to a POP3 backend on the client's behalf
 * (RFC 1939 USER/PASS, RFC 2595 STLS, RFC 2449/3206 response codes).
 *
 * An explicit state machine: greeting, optional STLS, USER, PASS, done.
 * Every read has the backend_timeout deadline; backend text is logged only
 * sanitized and truncated; the PASS command (which holds the password) is
 * built in a stack buffer that is wiped as soon as it is sent.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "session_backend.h"
#include "log.h"
#include "session_sasl.h"
#include "session.h"

enum backend_pop3_state {
	BACKEND_POP3_GREETING,
	BACKEND_POP3_STLS,
	BACKEND_POP3_USER,
	BACKEND_POP3_PASS,
	BACKEND_POP3_DONE,
	BACKEND_POP3_STATE_COUNT
};

static const char *const state_names[] = {
	[BACKEND_POP3_GREETING] = "greeting",
	[BACKEND_POP3_STLS] = "stls",
	[BACKEND_POP3_USER] = "user",
	[BACKEND_POP3_PASS] = "pass",
	[BACKEND_POP3_DONE] = "done",
};
_Static_assert(sizeof(state_names) / sizeof(state_names[0]) == BACKEND_POP3_STATE_COUNT,
	       "every backend POP3 state has a name");

struct backend_pop3 {
	struct mg_session *session;
	struct mg_stream *stream;
	enum backend_pop3_state state;
	long long deadline;
	char who[128];
};

/* What a status line says. */
enum status {
	STATUS_OK,		/* +OK */
	STATUS_ERR,		/* -ERR: refused */
	STATUS_ERR_TEMP,	/* -ERR with a code saying "not now", not "wrong credentials" */
	STATUS_INVALID		/* neither */
};

static void set_state(struct backend_pop3 *b, enum backend_pop3_state next)
{
	log_debug("backend_pop3 state=%s->%s backend=%s", state_names[b->state],
		  state_names[next], b->session->backend_addr);
	b->state = next;
}

/* "backend_pop3 state=... backend=..." for the shared helpers' log lines. */
static const char *who(struct backend_pop3 *b)
{
	snprintf(b->who, sizeof(b->who), "backend_pop3 state=%s backend=%s",
		 state_names[b->state], b->session->backend_addr);
	return b->who;
}

static bool starts_with_word(const char *line, size_t len, const char *word)
{
	size_t wlen = strlen(word);

	return len >= wlen && memcmp(line, word, wlen) == 0 && (len == wlen || line[wlen] == ' ');
}

/* Does text (after "-ERR ") open with response code code, or a child of it? */
static bool has_code(const char *text, size_t len, const char *code)
{
	size_t clen = strlen(code);

	/* RFC 2449 codes are hierarchical: [SYS/TEMP] covers [SYS/TEMP/...]. */
	return len > clen + 1 && text[0] == '[' && memcmp(text + 1, code, clen) == 0 &&
	       (text[clen + 1] == ']' || text[clen + 1] == '/');
}

static enum status classify(const char *line, size_t len)
{
	if (starts_with_word(line, len, "+OK"))
		return STATUS_OK;
	if (!starts_with_word(line, len, "-ERR"))
		return STATUS_INVALID;
	if (len > 5) {
		const char *text = line + 5;
		size_t tlen = len - 5;

		/*
		 * The backend is busy or the mailbox is locked or the user must
		 * wait (RFC 2449, RFC 3206): nothing says the password is wrong,
		 * so the client must not be told it is.
		 */
		if (has_code(text, tlen, "SYS/TEMP") || has_code(text, tlen, "IN-USE") ||
		    has_code(text, tlen, "LOGIN-DELAY"))
			return STATUS_ERR_TEMP;
	}
	return STATUS_ERR;
}

/* Read the answer to the last command and turn it into a login result. */
static enum mg_login_result await_status(struct backend_pop3 *b, char *reply, size_t replysize)
{
	const char *line;
	long len = backend_read_line(b->stream, b->deadline, who(b), &line);

	if (len < 0)
		return MG_LOGIN_UNAVAILABLE;
	switch (classify(line, (size_t)len)) {
	case STATUS_OK:
		if (reply != NULL) {
			if ((size_t)len >= replysize) {
				backend_log_text(MG_LOG_WARNING, who(b), "overlong", line, (size_t)len);
				return MG_LOGIN_UNAVAILABLE;
			}
			memcpy(reply, line, (size_t)len);
			reply[len] = '\0';
		}
		backend_consume_line(b->stream);
		return MG_LOGIN_OK;
	case STATUS_ERR_TEMP:
		backend_log_text(MG_LOG_WARNING, who(b), "unavailable", line, (size_t)len);
		backend_consume_line(b->stream);
		return MG_LOGIN_UNAVAILABLE;
	case STATUS_ERR:
		/* Only the backend's words, never the command we sent. */
		backend_log_text(MG_LOG_INFO, who(b), "refused", line, (size_t)len);
		backend_consume_line(b->stream);
		return MG_LOGIN_FAILED;
	case STATUS_INVALID:
		break;
	}
	backend_log_text(MG_LOG_WARNING, who(b), "unexpected", line, (size_t)len);
	return MG_LOGIN_UNAVAILABLE;
}

static enum mg_login_result greeting(struct backend_pop3 *b)
{
	enum mg_login_result result = await_status(b, NULL, 0);

	/* A -ERR greeting means "go away" (RFC 1939 has none, some servers send it). */
	return result == MG_LOGIN_OK ? MG_LOGIN_OK : MG_LOGIN_UNAVAILABLE;
}

static enum mg_login_result stls(struct backend_pop3 *b)
{
	set_state(b, BACKEND_POP3_STLS);
	if (stream_write_all(b->stream, "STLS\r\n", 6, b->deadline) < 0 ||
	    await_status(b, NULL, 0) != MG_LOGIN_OK ||
	    backend_start_tls(b->stream, b->session->env->link, b->deadline, who(b)) < 0)
		return MG_LOGIN_UNAVAILABLE;
	return MG_LOGIN_OK;
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
 * the password is the one the auth process sent with PAM's OK.
 */
static enum mg_login_result master_login(struct backend_pop3 *b, char *reply, size_t replysize)
{
	const struct mg_backend_config *backend = b->session->backend_cfg;
	const struct mg_credentials *cred = &b->session->cred;
	const struct auth_secret *password = &b->session->master_password;
	char encoded[(MG_USER_MAX * 2 + MG_PASSWORD_MAX + 2) * 4 / 3 + 8];
	enum mg_login_result result = MG_LOGIN_UNAVAILABLE;
	const char *line;
	long linelen;
	size_t len;

	set_state(b, BACKEND_POP3_PASS);
	len = sasl_plain_encode(cred->user, cred->user_len, backend->master_user,
				strlen(backend->master_user), password->value, password->len,
				encoded, sizeof(encoded) - 2);
	if (len == 0 || stream_write_all(b->stream, "AUTH PLAIN\r\n", 12, b->deadline) < 0)
		goto out;
	linelen = backend_read_line(b->stream, b->deadline, who(b), &line);
	if (linelen < 1 || line[0] != '+') {
		if (linelen >= 0)
			backend_log_text(MG_LOG_WARNING, who(b), "unexpected", line, (size_t)linelen);
		goto out;
	}
	backend_consume_line(b->stream);
	encoded[len++] = '\r';
	encoded[len++] = '\n';
	if (stream_write_all(b->stream, encoded, len, b->deadline) == 0)
		result = await_status(b, reply, replysize);
out:
	explicit_bzero(encoded, sizeof(encoded));
	return result;
}

static enum mg_login_result login(struct backend_pop3 *b, char *reply, size_t replysize)
{
	const struct mg_credentials *cred = &b->session->cred;
	enum mg_login_result result;

	if (!line_safe(cred->user, cred->user_len) ||
	    !line_safe(cred->password, cred->password_len)) {
		/* The front end's parsers exclude these bytes: a broken invariant. */
		log_error("backend_pop3 backend=%s error=\"credentials not line-safe\"",
			  b->session->backend_addr);
		return MG_LOGIN_FAILED;
	}
	if (b->session->backend_cfg->login == MG_BACKEND_LOGIN_MASTER)
		return master_login(b, reply, replysize);
	set_state(b, BACKEND_POP3_USER);
	if (send_command(b, "USER", cred->user, cred->user_len) < 0)
		return MG_LOGIN_UNAVAILABLE;
	result = await_status(b, NULL, 0);
	if (result != MG_LOGIN_OK)
		return result;
	set_state(b, BACKEND_POP3_PASS);
	if (send_command(b, "PASS", cred->password, cred->password_len) < 0)
		return MG_LOGIN_UNAVAILABLE;
	return await_status(b, reply, replysize);
}

enum mg_login_result backend_pop3_login(struct mg_session *session, struct mg_stream *stream,
					char *reply, size_t replysize)
{
	struct backend_pop3 b = {
		.session = session,
		.stream = stream,
		.state = BACKEND_POP3_GREETING,
		.deadline = stream_now_ms() + (long long)session->cfg->backend_timeout * 1000,
	};
	enum mg_login_result result = greeting(&b);

	if (result == MG_LOGIN_OK && session->backend_cfg->tls == MG_BACKEND_TLS_STARTTLS)
		result = stls(&b);
	if (result == MG_LOGIN_OK)
		result = login(&b, reply, replysize);
	if (result == MG_LOGIN_OK)
		set_state(&b, BACKEND_POP3_DONE);
	return result;
}
