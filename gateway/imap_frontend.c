/*
 * imap_frontend.c - the client-facing IMAP state machine before login (RFC 3501,
 * RFC 9051, RFC 2595 STARTTLS, RFC 4959 SASL-IR, RFC 5530 response codes).
 *
 * Its one promise: on a connection that is not secure, no password is ever
 * solicited, parsed, checked or forwarded. LOGIN and AUTHENTICATE are refused
 * with NO [PRIVACYREQUIRED] before their arguments are looked at, and
 * AUTHENTICATE never sends a continuation there. After STARTTLS, whatever the
 * client sent before the handshake is thrown away (CVE-2011-0411 class).
 *
 * A command is assembled whole (line plus any literals, within
 * max_line_length and max_literal_size) before it is parsed, so nothing
 * half-parsed ever reaches a backend.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "imap_command.h"
#include "imap_token.h"
#include "log.h"
#include "session_policy.h"
#include "session_sasl_exchange.h"
#include "session.h"

struct imap_client {
	struct mg_session *session;
	enum imap_state state;
	char *command;		/* the assembled command, wiped and freed after each */
	size_t command_len;
	size_t command_cap;
	size_t literal_total;
};

enum command_result {
	COMMAND_CONTINUE,
	COMMAND_CLOSE,
	COMMAND_RELAY
};

typedef enum command_result command_fn(struct imap_client *client, const struct imap_command *cmd);

/* Every state change goes through here, so a debug log traces the dialogue. */
static void set_state(struct imap_client *client, enum imap_state next)
{
	log_debug("imap state=%s->%s client=%s:%u", imap_state_name(client->state),
		  imap_state_name(next), client->session->client_addr,
		  client->session->client_port);
	client->state = next;
}

static bool cleartext_refused(const struct imap_client *client)
{
	return !client->session->secure && !client->session->cleartext_allowed;
}

static const char *capabilities(const struct imap_client *client)
{
	if (client->session->client_tls)
		return "IMAP4rev1 SASL-IR LITERAL+ ID AUTH=PLAIN AUTH=LOGIN";
	if (cleartext_refused(client))
		return "IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS LOGINDISABLED";
	return "IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS AUTH=PLAIN AUTH=LOGIN";
}

/* What a session_policy.h verdict means for the dialogue. */
static enum command_result go_on_unless(int policy)
{
	return policy < 0 ? COMMAND_CLOSE : COMMAND_CONTINUE;
}

/* A protocol error, counted against max_bad_commands (session_policy.c). */
static enum command_result bad_command(struct imap_client *client, const char *tag,
				       size_t taglen, const char *text)
{
	return go_on_unless(session_bad_command(client->session, "%.*s BAD %s", (int)taglen, tag,
						text));
}

/* Counted like a bad command: a client that keeps trying is dropped as soon. */
static enum command_result refuse_cleartext(struct imap_client *client, const char *tag,
					    size_t taglen)
{
	struct mg_session *session = client->session;

	log_info("cleartext login refused: %s", session->log_head);
	return go_on_unless(session_bad_command(session, "%.*s NO [PRIVACYREQUIRED] Cleartext "
						"logins are disabled; use STARTTLS first.",
						(int)taglen, tag));
}

/* ---- reading a whole command ---------------------------------------------- */

static void command_reset(struct imap_client *client)
{
	if (client->command != NULL)
		explicit_bzero(client->command, client->command_cap);
	client->command_len = 0;
	client->literal_total = 0;
}

/*
 * data may be NULL when len is 0: an empty literal ({0}, {0+}) is "read" from
 * a stream whose buffer was released when it ran empty. memcpy must never see
 * a null pointer, even for no bytes.
 */
static int command_append(struct imap_client *client, const char *data, size_t len)
{
	if (len > client->command_cap - client->command_len)
		return -1;
	if (len == 0)
		return 0;
	memcpy(client->command + client->command_len, data, len);
	client->command_len += len;
	return 0;
}

/*
 * The tag and command name of a command not yet parsed, for answering before
 * it is complete. A tag with characters that could not be echoed safely is
 * replaced by "*".
 */
static void peek_tag_name(const char *cmd, size_t len, const char **tag, size_t *taglen,
			  const char **name, size_t *namelen)
{
	const char *sp = memchr(cmd, ' ', len);
	const char *name_end;

	*tag = "*";
	*taglen = 1;
	*name = "";
	*namelen = 0;
	if (sp == NULL || sp == cmd)
		return;
	for (const char *p = cmd; p < sp; p++) {
		if (*p <= ' ' || *p >= 0x7f || strchr("(){%*\"\\+]", *p) != NULL)
			return;
	}
	*tag = cmd;
	*taglen = (size_t)(sp - cmd);
	name_end = memchr(sp + 1, ' ', len - *taglen - 1);
	*name = sp + 1;
	*namelen = (size_t)((name_end != NULL ? name_end : cmd + len) - *name);
}

/* The decision from the command name alone, before its arguments are parsed. */
static enum imap_action decide_by_name(const struct imap_client *client, const char *name,
				       size_t namelen)
{
	return imap_decide(client->state, client->session->client_tls,
			   !cleartext_refused(client), imap_command_lookup(name, namelen));
}

enum read_result { READ_COMMAND, READ_ANSWERED, READ_CLOSE };

static enum read_result read_failed(struct imap_client *client, long rc)
{
	session_read_failed(client->session, rc);
	return READ_CLOSE;
}

/*
 * Read one complete command into client->command. Literals are accepted up
 * to max_literal_size in all; a synchronising literal gets "+ " only when it
 * is within the limit and does not carry credentials we would refuse anyway.
 */
static enum read_result read_command(struct imap_client *client)
{
	struct mg_session *session = client->session;
	const struct mg_config *cfg = session->cfg;
	long long deadline = session_client_deadline(session);

	command_reset(client);
	for (;;) {
		long n = stream_read_line(&session->client, deadline);
		const char *line;
		size_t len;
		uint64_t literal = 0;
		enum imap_literal_result kind;
		const char *tag, *name;
		size_t taglen, namelen;

		if (n < 0)
			return read_failed(client, n);
		line = session->client.in;
		len = stream_strip_eol(line, (size_t)n);
		if (command_append(client, line, len) < 0) {
			stream_consume(&session->client, (size_t)n);
			return read_failed(client, MG_IO_TOO_LONG);
		}
		kind = imap_line_literal(line, len, &literal);
		stream_consume(&session->client, (size_t)n);
		if (kind == IMAP_LITERAL_NONE || kind == IMAP_LITERAL_INVALID)
			return READ_COMMAND;	/* the parser reports an invalid literal */

		peek_tag_name(client->command, client->command_len, &tag, &taglen, &name,
			      &namelen);
		if (literal > cfg->max_literal_size - client->literal_total) {
			if (kind == IMAP_LITERAL_NONSYNC) {
				/* The bytes are on their way; we cannot stay in sync. */
				session_reply(client->session, "* BYE Literal too large.");
				session->end_reason = "literal-too-large";
				return READ_CLOSE;
			}
			if (session_bad_command(session, "%.*s NO [TOOBIG] Literal too large.",
						(int)taglen, tag) < 0)
				return READ_CLOSE;
			return READ_ANSWERED;
		}
		if (kind == IMAP_LITERAL_SYNC) {
			/* Never ask for the bytes of a login we are going to refuse. */
			if (decide_by_name(client, name, namelen) == IMAP_ACTION_REFUSE_CLEARTEXT)
				return refuse_cleartext(client, tag, taglen) == COMMAND_CLOSE
					       ? READ_CLOSE
					       : READ_ANSWERED;
			if (session_reply(client->session, "+ Ready for literal data") < 0)
				return READ_CLOSE;
		}
		client->literal_total += (size_t)literal;
		if (command_append(client, "\r\n", 2) < 0)
			return read_failed(client, MG_IO_TOO_LONG);
		n = stream_read_exact(&session->client, (size_t)literal,
				      (size_t)literal + cfg->max_line_length, deadline);
		if (n < 0)
			return read_failed(client, n);
		if (command_append(client, session->client.in, (size_t)literal) < 0)
			return read_failed(client, MG_IO_TOO_LONG);
		stream_consume(&session->client, (size_t)literal);
	}
}

/* ---- credentials and login ------------------------------------------------ */

static bool valid_credential(const char *value, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (value[i] == '\0' || value[i] == '\r' || value[i] == '\n')
			return false;
	}
	return true;
}

/* Credentials are in session->cred; ask the backend and answer the client. */
static enum command_result try_login(struct imap_client *client, const char *tag,
				     size_t taglen)
{
	struct mg_session *session = client->session;
	char answer[4096], warning[SESSION_WARNING_MAX];
	const char *tagged;

	switch (session_login(session, answer, sizeof(answer))) {
	case MG_LOGIN_OK:
		/* The backend's untagged lines first (they end in CRLF), then its answer. */
		tagged = strrchr(answer, '\n');
		tagged = tagged != NULL ? tagged + 1 : answer;
		if (tagged > answer && session_send(session, answer, (size_t)(tagged - answer)) < 0)
			return COMMAND_CLOSE;
		if (session_cleartext_warning(session, warning, sizeof(warning)) != NULL &&
		    session_reply(client->session, "* OK [ALERT] %s", warning) < 0)
			return COMMAND_CLOSE;
		if (session_reply(client->session, "%.*s %s", (int)taglen, tag, tagged) < 0)
			return COMMAND_CLOSE;
		return COMMAND_RELAY;
	case MG_LOGIN_UNAVAILABLE:
		if (session_reply(client->session, "%.*s NO [UNAVAILABLE] Backend server unavailable, "
				  "try again later.", (int)taglen, tag) < 0)
			return COMMAND_CLOSE;
		return COMMAND_CONTINUE;
	case MG_LOGIN_LIMIT:
		if (session_reply(client->session, "%.*s NO [LIMIT] Maximum number of connections "
				  "from user+IP exceeded.", (int)taglen, tag) < 0)
			return COMMAND_CLOSE;
		return COMMAND_CONTINUE;
	case MG_LOGIN_FAILED:
		break;
	}
	return go_on_unless(session_login_failed(session, "%.*s NO [AUTHENTICATIONFAILED] "
						 "Authentication failed.", (int)taglen, tag));
}

static bool is_astring(const struct imap_token *token)
{
	return token->type == IMAP_TOKEN_ATOM || token->type == IMAP_TOKEN_STRING;
}

static enum command_result cmd_login(struct imap_client *client, const struct imap_command *cmd)
{
	struct mg_credentials *cred = &client->session->cred;
	const struct imap_token *user = &cmd->args[0];
	const struct imap_token *password = &cmd->args[1];

	if (cmd->nargs != 2 || !is_astring(user) || !is_astring(password))
		return bad_command(client, cmd->tag, cmd->tag_len, "LOGIN expects user and password.");
	if (!valid_credential(user->value, user->len, MG_USER_MAX) ||
	    !valid_credential(password->value, password->len, MG_PASSWORD_MAX))
		return bad_command(client, cmd->tag, cmd->tag_len, "Invalid user name or password.");
	memcpy(cred->user, user->value, user->len);
	cred->user[user->len] = '\0';
	cred->user_len = user->len;
	memcpy(cred->password, password->value, password->len);
	cred->password[password->len] = '\0';
	cred->password_len = password->len;
	return try_login(client, cmd->tag, cmd->tag_len);
}

static enum command_result cmd_authenticate(struct imap_client *client,
					    const struct imap_command *cmd)
{
	const struct imap_token *mechanism = &cmd->args[0];
	const struct imap_token *ir = cmd->nargs == 2 ? &cmd->args[1] : NULL;
	long io = 0;

	if (cmd->nargs < 1 || cmd->nargs > 2 || mechanism->type != IMAP_TOKEN_ATOM ||
	    (ir != NULL && ir->type != IMAP_TOKEN_ATOM))
		return bad_command(client, cmd->tag, cmd->tag_len,
				   "AUTHENTICATE expects a mechanism and an optional response.");
	switch (sasl_exchange(client->session, mechanism->value, mechanism->len,
			      ir != NULL ? ir->value : NULL, ir != NULL ? ir->len : 0, &io)) {
	case SASL_EXCHANGE_OK:
		return try_login(client, cmd->tag, cmd->tag_len);
	case SASL_EXCHANGE_CANCELLED:
		return bad_command(client, cmd->tag, cmd->tag_len, "Authentication cancelled.");
	case SASL_EXCHANGE_INVALID:
		return bad_command(client, cmd->tag, cmd->tag_len, "Invalid SASL response.");
	case SASL_EXCHANGE_UNSUPPORTED:
		break;
	case SASL_EXCHANGE_IO:
		read_failed(client, io);
		return COMMAND_CLOSE;
	}
	if (session_reply(client->session, "%.*s NO Unsupported authentication mechanism.", (int)cmd->tag_len,
		  cmd->tag) < 0)
		return COMMAND_CLOSE;
	return COMMAND_CONTINUE;
}

/* ---- the other commands allowed before login ------------------------------ */

static enum command_result ok(struct imap_client *client, const struct imap_command *cmd,
			      const char *text)
{
	return session_reply(client->session, "%.*s OK %s", (int)cmd->tag_len, cmd->tag, text) < 0
		       ? COMMAND_CLOSE
		       : COMMAND_CONTINUE;
}

static enum command_result cmd_capability(struct imap_client *client,
					  const struct imap_command *cmd)
{
	if (cmd->nargs != 0)
		return bad_command(client, cmd->tag, cmd->tag_len, "CAPABILITY takes no arguments.");
	if (session_reply(client->session, "* CAPABILITY %s", capabilities(client)) < 0)
		return COMMAND_CLOSE;
	return ok(client, cmd, "Capability completed.");
}

static enum command_result cmd_noop(struct imap_client *client, const struct imap_command *cmd)
{
	if (cmd->nargs != 0)
		return bad_command(client, cmd->tag, cmd->tag_len, "NOOP takes no arguments.");
	return ok(client, cmd, "NOOP completed.");
}

static enum command_result cmd_logout(struct imap_client *client, const struct imap_command *cmd)
{
	if (cmd->nargs != 0)
		return bad_command(client, cmd->tag, cmd->tag_len, "LOGOUT takes no arguments.");
	set_state(client, IMAP_STATE_LOGOUT);
	client->session->end_reason = "logout";
	if (session_reply(client->session, "* BYE Logging out.") == 0)
		ok(client, cmd, "Logout completed.");
	return COMMAND_CLOSE;
}

static enum command_result cmd_id(struct imap_client *client, const struct imap_command *cmd)
{
	const struct imap_token *first = &cmd->args[0];
	bool is_nil = cmd->nargs == 1 && first->type == IMAP_TOKEN_ATOM &&
		      imap_word_equals(first->value, first->len, "NIL");
	bool is_list = cmd->nargs >= 2 && first->type == IMAP_TOKEN_LIST_BEGIN &&
		       cmd->args[cmd->nargs - 1].type == IMAP_TOKEN_LIST_END;

	/* RFC 2971: NIL or a flat list of field/value string pairs. */
	if (is_list) {
		for (size_t i = 1; i + 1 < cmd->nargs; i++) {
			if (!is_astring(&cmd->args[i]))
				is_list = false;
		}
		is_list = is_list && (cmd->nargs - 2) % 2 == 0;
	}
	if (!is_nil && !is_list)
		return bad_command(client, cmd->tag, cmd->tag_len, "ID expects NIL or a list.");
	if (session_reply(client->session, "* ID (\"name\" \"mailgate\")") < 0)
		return COMMAND_CLOSE;
	return ok(client, cmd, "ID completed.");
}

static enum command_result cmd_starttls(struct imap_client *client,
					const struct imap_command *cmd)
{
	struct mg_session *session = client->session;
	char reply[CHAN_REPLY_MAX];	/* the longest go-ahead line the engine takes */
	int len;

	if (cmd->nargs != 0)
		return bad_command(client, cmd->tag, cmd->tag_len, "STARTTLS takes no arguments.");
	len = snprintf(reply, sizeof(reply), "%.*s OK Begin TLS negotiation now.\r\n",
		       (int)cmd->tag_len, cmd->tag);
	if (len < 0 || (size_t)len >= sizeof(reply))
		return bad_command(client, cmd->tag, cmd->tag_len, "Tag too long.");
	/*
	 * The engine sends the OK and handshakes; anything pipelined after
	 * STARTTLS was sent in the clear and dies with the cleartext channel.
	 */
	if (session_start_client_tls(session, reply, (size_t)len) < 0)
		return COMMAND_CLOSE;
	/* RFC 2595: the client speaks first after the handshake; we send nothing. */
	return COMMAND_CONTINUE;
}

/* What runs each command allowed before login; the others have no entry. */
static command_fn *const runners[IMAP_CMD_COUNT] = {
	[IMAP_CMD_CAPABILITY] = cmd_capability,
	[IMAP_CMD_NOOP] = cmd_noop,
	[IMAP_CMD_LOGOUT] = cmd_logout,
	[IMAP_CMD_ID] = cmd_id,
	[IMAP_CMD_STARTTLS] = cmd_starttls,
	[IMAP_CMD_LOGIN] = cmd_login,
	[IMAP_CMD_AUTHENTICATE] = cmd_authenticate,
};

static enum command_result run(struct imap_client *client, const struct imap_command *cmd)
{
	enum imap_command_id id = imap_command_lookup(cmd->name, cmd->name_len);

	switch (imap_decide(client->state, client->session->client_tls, !cleartext_refused(client),
			    id)) {
	case IMAP_ACTION_RUN:
		if (runners[id] != NULL)
			return runners[id](client, cmd);
		break;
	case IMAP_ACTION_REFUSE_CLEARTEXT:
		return refuse_cleartext(client, cmd->tag, cmd->tag_len);
	case IMAP_ACTION_ALREADY_TLS:
		return bad_command(client, cmd->tag, cmd->tag_len, "TLS is already active.");
	case IMAP_ACTION_NOT_IN_STATE:
	case IMAP_ACTION_UNKNOWN:
	case IMAP_ACTION_COUNT:
		break;
	}
	return bad_command(client, cmd->tag, cmd->tag_len, "Unknown command or not allowed before login.");
}

static enum command_result dispatch(struct imap_client *client)
{
	struct imap_command cmd;
	const char *error = NULL;
	const char *tag, *name;
	size_t taglen, namelen;

	if (client->command_len == 0)
		return COMMAND_CONTINUE;	/* empty lines are ignored, as servers do */

	/*
	 * Decide on credentials before parsing them: a cleartext LOGIN is refused
	 * from its name alone, so its arguments are never looked at.
	 */
	peek_tag_name(client->command, client->command_len, &tag, &taglen, &name, &namelen);
	if (taglen > 0 && tag[0] != '*' &&
	    decide_by_name(client, name, namelen) == IMAP_ACTION_REFUSE_CLEARTEXT)
		return refuse_cleartext(client, tag, taglen);

	if (imap_command_parse(client->command, client->command_len, &cmd, &error) < 0) {
		if (cmd.tag == NULL)
			return bad_command(client, "*", 1, "Invalid tag.");
		return bad_command(client, cmd.tag, cmd.tag_len, error);
	}
	return run(client, &cmd);
}

/* Read and answer one command; the result moves the dialogue on. */
static void step(struct imap_client *client)
{
	enum command_result result = COMMAND_CONTINUE;

	switch (read_command(client)) {
	case READ_CLOSE:
		result = COMMAND_CLOSE;
		break;
	case READ_ANSWERED:
		break;
	case READ_COMMAND:
		/* Empty lines are ignored, not counted; the deadline bounds them. */
		if ((client->command_len > 0 ? session_command_allowed(client->session)
					     : session_within_deadline(client->session)) < 0)
			result = COMMAND_CLOSE;
		else
			result = dispatch(client);
		break;
	}
	switch (result) {
	case COMMAND_CONTINUE:
		break;
	case COMMAND_RELAY:
		set_state(client, IMAP_STATE_AUTHENTICATED);
		break;
	case COMMAND_CLOSE:
		if (client->state != IMAP_STATE_LOGOUT)
			set_state(client, IMAP_STATE_LOGOUT);
		break;
	}
}

static enum mg_frontend_result imap_frontend(struct mg_session *session)
{
	const struct mg_config *cfg = session->cfg;
	struct imap_client client = {
		.session = session,
		.state = IMAP_STATE_NOT_AUTHENTICATED,
	};
	enum mg_frontend_result result = MG_FRONTEND_CLOSE;
	bool done = false;

	/* Room for the longest line plus every literal the limits allow. */
	client.command_cap = cfg->max_line_length + cfg->max_literal_size + 2 * IMAP_MAX_ARGS;
	client.command = malloc(client.command_cap);
	if (client.command == NULL) {
		session->end_reason = "out-of-memory";
		return MG_FRONTEND_CLOSE;
	}
	if (session_reply(client.session, "* OK [CAPABILITY %s] mailgate ready.",
			  capabilities(&client)) < 0)
		set_state(&client, IMAP_STATE_LOGOUT);
	while (!done) {
		switch (client.state) {
		case IMAP_STATE_NOT_AUTHENTICATED:
			step(&client);
			break;
		case IMAP_STATE_AUTHENTICATED:
			result = MG_FRONTEND_RELAY;
			done = true;
			break;
		case IMAP_STATE_LOGOUT:
		case IMAP_STATE_COUNT:
			result = MG_FRONTEND_CLOSE;
			done = true;
			break;
		}
	}
	command_reset(&client);
	free(client.command);
	return result;
}

const struct mg_protocol_ops imap_protocol = {
	.protocol = MG_PROTO_IMAP,
	.frontend = imap_frontend,
	.backend_login = backend_imap_login,
	.goodbye = "* BYE",
	.refusal_busy = "* BYE Server too busy, try again later.\r\n",
	.refusal_per_ip = "* BYE Too many connections from your address.\r\n",
};
