/*
 * imap_backend.c - logging in to an IMAP backend on the client's behalf.
 *
 * An explicit state machine: greeting, optional STARTTLS, LOGIN, done. Every
 * read has the backend_timeout deadline; backend text is logged only
 * sanitized and truncated; the LOGIN command (which holds the password) is
 * built in a stack buffer that is wiped as soon as it is sent.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "session_backend.h"
#include "imap_token.h"
#include "log.h"
#include "netaddr.h"
#include "session_sasl.h"
#include "session.h"

enum backend_imap_state {
	BACKEND_IMAP_GREETING,
	BACKEND_IMAP_STARTTLS,
	BACKEND_IMAP_ID,
	BACKEND_IMAP_LOGIN,
	BACKEND_IMAP_DONE,
	BACKEND_IMAP_STATE_COUNT
};

static const char *const state_names[] = {
	[BACKEND_IMAP_GREETING] = "greeting",
	[BACKEND_IMAP_STARTTLS] = "starttls",
	[BACKEND_IMAP_ID] = "id",
	[BACKEND_IMAP_LOGIN] = "login",
	[BACKEND_IMAP_DONE] = "done",
};
_Static_assert(sizeof(state_names) / sizeof(state_names[0]) == BACKEND_IMAP_STATE_COUNT,
	       "every backend IMAP state has a name");

struct backend_imap {
	struct mg_session *session;
	struct mg_stream *stream;
	enum backend_imap_state state;
	long long deadline;
	bool literal_plus;	/* backend announced LITERAL+ in its greeting */
	char who[128];
};

static void set_state(struct backend_imap *b, enum backend_imap_state next)
{
	log_debug("backend_imap state=%s->%s backend=%s", state_names[b->state], state_names[next],
		  b->session->backend_addr);
	b->state = next;
}

/* "backend_imap state=... backend=..." for the shared helpers' log lines. */
static const char *who(struct backend_imap *b)
{
	snprintf(b->who, sizeof(b->who), "backend_imap state=%s backend=%s",
		 state_names[b->state], b->session->backend_addr);
	return b->who;
}

static void log_unexpected(struct backend_imap *b, const char *line, size_t len)
{
	backend_log_text(MG_LOG_WARNING, who(b), "unexpected", line, len);
}

static bool starts_with_word(const char *line, size_t len, const char *word)
{
	size_t wlen = strlen(word);

	return len >= wlen && imap_word_equals(line, wlen, word) &&
	       (len == wlen || line[wlen] == ' ');
}

/* Does text (a greeting) carry the capability cap in a [CAPABILITY ...] code? */
static bool has_capability(const char *line, size_t len, const char *cap)
{
	size_t caplen = strlen(cap);
	const char *code = memmem(line, len, "[CAPABILITY ", 12);
	const char *end;

	if (code == NULL)
		return false;
	end = memchr(code, ']', len - (size_t)(code - line));
	if (end == NULL)
		return false;
	for (const char *p = code + 12; p < end;) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		size_t wlen = (size_t)((sp != NULL ? sp : end) - p);

		if (wlen == caplen && imap_word_equals(p, wlen, cap))
			return true;
		p += wlen + 1;
	}
	return false;
}

/*
 * Wait for the tagged answer to tag. Untagged lines are skipped (the final
 * answer carries what the client needs). Returns the length of the text after
 * "tag " with *text set, or -1; a "+" continuation sets *continuation.
 */
static long await_tagged(struct backend_imap *b, const char *tag, const char **text,
			 bool *continuation)
{
	size_t taglen = strlen(tag);

	if (continuation != NULL)
		*continuation = false;
	for (;;) {
		const char *line;
		long len = backend_read_line(b->stream, b->deadline, who(b), &line);

		if (len < 0)
			return -1;
		if (len >= 1 && line[0] == '+' && continuation != NULL) {
			*continuation = true;
			backend_consume_line(b->stream);
			return 0;
		}
		if ((size_t)len > taglen && memcmp(line, tag, taglen) == 0 && line[taglen] == ' ') {
			*text = line + taglen + 1;
			return len - (long)taglen - 1;
		}
		if (len < 2 || line[0] != '*' || line[1] != ' ') {
			log_unexpected(b, line, (size_t)len);
			return -1;
		}
		backend_consume_line(b->stream);
	}
}

static enum mg_login_result greeting(struct backend_imap *b)
{
	const char *line;
	long len = backend_read_line(b->stream, b->deadline, who(b), &line);

	if (len < 0)
		return MG_LOGIN_UNAVAILABLE;
	if (!starts_with_word(line, (size_t)len, "* OK")) {
		log_unexpected(b, line, (size_t)len);
		return MG_LOGIN_UNAVAILABLE;
	}
	b->literal_plus = has_capability(line, (size_t)len, "LITERAL+");
	backend_consume_line(b->stream);
	return MG_LOGIN_OK;
}

static enum mg_login_result starttls(struct backend_imap *b)
{
	const char *text;
	long len;

	set_state(b, BACKEND_IMAP_STARTTLS);
	if (stream_write_all(b->stream, "M1 STARTTLS\r\n", 13, b->deadline) < 0)
		return MG_LOGIN_UNAVAILABLE;
	len = await_tagged(b, "M1", &text, NULL);
	if (len < 0)
		return MG_LOGIN_UNAVAILABLE;
	if (!starts_with_word(text, (size_t)len, "OK")) {
		log_unexpected(b, text, (size_t)len);
		return MG_LOGIN_UNAVAILABLE;
	}
	if (backend_start_tls(b->stream, b->session->env->link, b->deadline, who(b)) < 0)
		return MG_LOGIN_UNAVAILABLE;
	/* Capabilities may change with TLS; only trust LITERAL+ from a fresh list. */
	b->literal_plus = false;
	return MG_LOGIN_OK;
}

/*
 * Tell the backend who the client is (RFC 2971 ID with the x-originating-*
 * fields Dovecot honours from its login_trusted_networks). The answer does
 * not matter, as long as there is one.
 */
static enum mg_login_result send_client_id(struct backend_imap *b)
{
	const struct mg_session *session = b->session;
	char local[INET6_ADDRSTRLEN];
	char command[512];
	unsigned local_port = 0;
	const char *text;
	int len;

	set_state(b, BACKEND_IMAP_ID);
	if (netaddr_host_port((const struct sockaddr *)&session->local_sa, local, sizeof(local),
			      &local_port) < 0)
		snprintf(local, sizeof(local), "0.0.0.0");
	len = snprintf(command, sizeof(command),
		       "M0 ID (\"x-originating-ip\" \"%s\" \"x-originating-port\" \"%u\" "
		       "\"x-connected-ip\" \"%s\" \"x-connected-port\" \"%u\")\r\n",
		       session->client_addr, session->client_port, local, local_port);
	if (len < 0 || (size_t)len >= sizeof(command) ||
	    stream_write_all(b->stream, command, (size_t)len, b->deadline) < 0 ||
	    await_tagged(b, "M0", &text, NULL) < 0)
		return MG_LOGIN_UNAVAILABLE;
	backend_consume_line(b->stream);
	return MG_LOGIN_OK;
}

/*
 * Send "M2 LOGIN user password". A value that needs a synchronising literal is
 * sent in two parts around the server's "+" continuation.
 */
static enum mg_login_result send_login(struct backend_imap *b)
{
	const struct mg_credentials *cred = &b->session->cred;
	const char *values[2] = { cred->user, cred->password };
	size_t lens[2] = { cred->user_len, cred->password_len };
	char command[2 * (MG_PASSWORD_MAX + 32) + 32];
	enum mg_login_result result = MG_LOGIN_UNAVAILABLE;
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
			bool continuation;
			const char *text;

			if (stream_write_all(b->stream, command, head, b->deadline) < 0 ||
			    await_tagged(b, "M2", &text, &continuation) < 0 || !continuation)
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
		result = MG_LOGIN_OK;
out:
	explicit_bzero(command, sizeof(command));
	return result;
}

/*
 * Dovecot's master-user login: AUTHENTICATE PLAIN with the user as the
 * authorization identity and the master user's credentials. Only used after
 * PAM has checked the user's own password (session.c enforces that); the
 * password is the one the auth process sent with PAM's OK.
 */
static enum mg_login_result send_master_login(struct backend_imap *b)
{
	const struct mg_backend_config *backend = b->session->backend_cfg;
	const struct mg_credentials *cred = &b->session->cred;
	char encoded[(MG_USER_MAX * 2 + MG_PASSWORD_MAX + 2) * 4 / 3 + 8];
	enum mg_login_result result = MG_LOGIN_UNAVAILABLE;
	bool continuation = false;
	const char *text;
	const struct auth_secret *password = &b->session->master_password;
	size_t len = sasl_plain_encode(cred->user, cred->user_len, backend->master_user,
				       strlen(backend->master_user), password->value,
				       password->len, encoded, sizeof(encoded) - 2);

	if (len > 0 &&
	    stream_write_all(b->stream, "M2 AUTHENTICATE PLAIN\r\n", 23, b->deadline) == 0 &&
	    await_tagged(b, "M2", &text, &continuation) >= 0 && continuation) {
		encoded[len++] = '\r';
		encoded[len++] = '\n';
		if (stream_write_all(b->stream, encoded, len, b->deadline) == 0)
			result = MG_LOGIN_OK;
	}
	explicit_bzero(encoded, sizeof(encoded));
	return result;
}

static enum mg_login_result login(struct backend_imap *b, char *reply, size_t replysize)
{
	const char *text;
	long len;

	set_state(b, BACKEND_IMAP_LOGIN);
	if ((b->session->backend_cfg->login == MG_BACKEND_LOGIN_MASTER ? send_master_login(b)
									: send_login(b)) !=
	    MG_LOGIN_OK)
		return MG_LOGIN_UNAVAILABLE;
	len = await_tagged(b, "M2", &text, NULL);
	if (len < 0)
		return MG_LOGIN_UNAVAILABLE;
	if (starts_with_word(text, (size_t)len, "OK")) {
		if ((size_t)len >= replysize) {
			log_unexpected(b, text, (size_t)len);
			return MG_LOGIN_UNAVAILABLE;
		}
		memcpy(reply, text, (size_t)len);
		reply[len] = '\0';
		backend_consume_line(b->stream);
		return MG_LOGIN_OK;
	}
	if (len >= 16 && memmem(text, (size_t)len, "[UNAVAILABLE]", 13) != NULL) {
		log_unexpected(b, text, (size_t)len);
		return MG_LOGIN_UNAVAILABLE;
	}
	if (!starts_with_word(text, (size_t)len, "NO"))
		log_unexpected(b, text, (size_t)len);
	backend_consume_line(b->stream);
	return MG_LOGIN_FAILED;
}

enum mg_login_result backend_imap_login(struct mg_session *session, struct mg_stream *stream,
					char *reply, size_t replysize)
{
	struct backend_imap b = {
		.session = session,
		.stream = stream,
		.state = BACKEND_IMAP_GREETING,
		.deadline = stream_now_ms() + (long long)session->cfg->backend_timeout * 1000,
	};
	enum mg_login_result result = greeting(&b);

	if (result == MG_LOGIN_OK && session->backend_cfg->tls == MG_BACKEND_TLS_STARTTLS)
		result = starttls(&b);
	if (result == MG_LOGIN_OK && session->backend_cfg->client_address == MG_CLIENT_ADDRESS_IMAP_ID)
		result = send_client_id(&b);
	if (result == MG_LOGIN_OK)
		result = login(&b, reply, replysize);
	if (result == MG_LOGIN_OK)
		set_state(&b, BACKEND_IMAP_DONE);
	return result;
}
