/*
 * pop3_frontend.c - the client-facing POP3 state machine before login (RFC 1939,
 * RFC 2449 CAPA and response codes, RFC 2595 STLS, RFC 3206 [SYS]/[AUTH],
 * RFC 5034 SASL AUTH).
 *
 * Its one promise, as in imap_frontend.c: on a connection that may not carry
 * credentials, no password is ever solicited, parsed, checked or forwarded.
 * USER, PASS, APOP and AUTH are refused with -ERR [AUTH] from their name
 * alone (pop3_decide() in pop3_command.c), and AUTH never sends a "+ "
 * continuation there. After STLS, whatever the client sent before the
 * handshake is thrown away (CVE-2011-0411 class).
 *
 * Each command line is copied out of the stream (at most the RFC 2449 255
 * octets are kept; a longer one is answered as too long) and the stream's
 * copy is released at once, so AUTH can read its continuation lines and the
 * password never lingers in the input buffer. The copy is wiped after use.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "pop3_command.h"
#include "session_policy.h"
#include "session_sasl_exchange.h"
#include "session.h"

struct pop3_client {
	struct mg_session *session;
	enum pop3_state state;
};

enum command_result {
	COMMAND_CONTINUE,
	COMMAND_CLOSE,
	COMMAND_RELAY
};

typedef enum command_result command_fn(struct pop3_client *client, const struct pop3_command *cmd);

struct command_def {
	enum pop3_command_id id;
	command_fn *run;
};

/* RFC 2449: responses are at most 512 octets; a backend's +OK must fit here. */
#define POP3_ANSWER_MAX	 1024

static void set_state(struct pop3_client *client, enum pop3_state next)
{
	log_debug("pop3 state=%s->%s client=%s:%u", pop3_state_name(client->state),
		  pop3_state_name(next), client->session->client_addr,
		  client->session->client_port);
	client->state = next;
}

static bool tls_active(const struct pop3_client *client)
{
	return client->session->client_tls;
}

static bool credentials_allowed(const struct pop3_client *client)
{
	return client->session->secure || client->session->cleartext_allowed;
}

/* Forget a USER name given earlier and go back to the start of AUTHORIZATION. */
static void restart_authorization(struct pop3_client *client)
{
	credentials_wipe(&client->session->cred);
	if (client->state != POP3_STATE_AUTHORIZATION)
		set_state(client, POP3_STATE_AUTHORIZATION);
}

/* What a session_policy.h verdict means for the dialogue. */
static enum command_result go_on_unless(int policy)
{
	return policy < 0 ? COMMAND_CLOSE : COMMAND_CONTINUE;
}

/* A protocol error, counted against max_bad_commands (session_policy.c). */
static enum command_result bad_command(struct pop3_client *client, const char *text)
{
	return go_on_unless(session_bad_command(client->session, "-ERR %s", text));
}

static enum command_result refuse_cleartext(struct pop3_client *client, enum pop3_command_id id)
{
	struct mg_session *session = client->session;

	log_info("cleartext login refused: %s command=%s", session->log_head,
		 pop3_command_name(id));
	return bad_command(client, "[AUTH] Cleartext logins are disabled; use STLS first.");
}

static void read_failed(struct pop3_client *client, long rc)
{
	session_read_failed(client->session, rc);
}

/* ---- credentials and login ------------------------------------------------ */

/* Credentials are in session->cred; ask the backend and answer the client. */
static enum command_result try_login(struct pop3_client *client)
{
	struct mg_session *session = client->session;
	char answer[POP3_ANSWER_MAX], warning[SESSION_WARNING_MAX];
	const char *warn;

	switch (session_login(session, answer, sizeof(answer))) {
	case MG_LOGIN_OK:
		/*
		 * The backend's own +OK line, so the client sees its real text;
		 * POP3 has no ALERT, so a cleartext warning is added to that
		 * text, which mail programs show when they report the login.
		 */
		warn = session_cleartext_warning(session, warning, sizeof(warning));
		if (session_reply(client->session, "%s%s%s", answer, warn != NULL ? " " : "",
				  warn != NULL ? warn : "") < 0)
			return COMMAND_CLOSE;
		set_state(client, POP3_STATE_TRANSACTION);
		return COMMAND_RELAY;
	case MG_LOGIN_UNAVAILABLE:
		restart_authorization(client);
		if (session_reply(client->session, "-ERR [SYS/TEMP] Backend server unavailable, try again later.") < 0)
			return COMMAND_CLOSE;
		return COMMAND_CONTINUE;
	case MG_LOGIN_LIMIT:
		restart_authorization(client);
		if (session_reply(client->session, "-ERR [IN-USE] Maximum number of connections "
				  "from user+IP exceeded.") < 0)
			return COMMAND_CLOSE;
		return COMMAND_CONTINUE;
	case MG_LOGIN_FAILED:
		break;
	}
	restart_authorization(client);
	return go_on_unless(session_login_failed(session, "-ERR [AUTH] Authentication failed."));
}

static enum command_result cmd_user(struct pop3_client *client, const struct pop3_command *cmd)
{
	struct mg_credentials *cred = &client->session->cred;

	/* The whole argument text is the name (RFC 1939 has exactly one argument). */
	restart_authorization(client);
	if (cmd->args_len == 0 || cmd->args_len > MG_USER_MAX)
		return bad_command(client, "USER expects a user name.");
	memcpy(cred->user, cmd->args, cmd->args_len);
	cred->user[cmd->args_len] = '\0';
	cred->user_len = cmd->args_len;
	set_state(client, POP3_STATE_USER);
	/* Every common server answers +OK here and gives the verdict at PASS. */
	return session_reply(client->session, "+OK") < 0 ? COMMAND_CLOSE : COMMAND_CONTINUE;
}

static enum command_result cmd_pass(struct pop3_client *client, const struct pop3_command *cmd)
{
	struct mg_credentials *cred = &client->session->cred;

	/*
	 * RFC 1939 section 7: spaces belong to the password, so the whole
	 * argument text is taken as it is.
	 */
	if (cmd->args_len == 0 || cmd->args_len > MG_PASSWORD_MAX)
		return bad_command(client, "PASS expects a password.");
	memcpy(cred->password, cmd->args, cmd->args_len);
	cred->password[cmd->args_len] = '\0';
	cred->password_len = cmd->args_len;
	return try_login(client);
}

static enum command_result cmd_apop(struct pop3_client *client, const struct pop3_command *cmd)
{
	(void)cmd;
	return bad_command(client, "APOP is not supported; use USER/PASS or AUTH.");
}

static enum command_result cmd_auth(struct pop3_client *client, const struct pop3_command *cmd)
{
	struct pop3_arg argv[POP3_MAX_ARGS];
	int nargs = pop3_split_args(cmd->args, cmd->args_len, argv, POP3_MAX_ARGS);
	const struct pop3_arg *ir;
	long io = 0;

	restart_authorization(client);
	if (nargs < 0)
		return bad_command(client, "AUTH expects a mechanism and an optional response.");
	if (nargs == 0) {
		/* The pre-RFC 5034 listing that older clients still ask for. */
		static const char list[] = "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n";

		return session_send(client->session, list, sizeof(list) - 1) < 0 ? COMMAND_CLOSE
								      : COMMAND_CONTINUE;
	}
	ir = nargs == 2 ? &argv[1] : NULL;
	switch (sasl_exchange(client->session, argv[0].value, argv[0].len,
			      ir != NULL ? ir->value : NULL, ir != NULL ? ir->len : 0, &io)) {
	case SASL_EXCHANGE_OK:
		return try_login(client);
	case SASL_EXCHANGE_CANCELLED:
		return bad_command(client, "Authentication cancelled.");
	case SASL_EXCHANGE_INVALID:
		return bad_command(client, "Invalid SASL response.");
	case SASL_EXCHANGE_UNSUPPORTED:
		break;
	case SASL_EXCHANGE_IO:
		read_failed(client, io);
		return COMMAND_CLOSE;
	}
	return bad_command(client, "Unsupported authentication mechanism.");
}

/* ---- the other commands allowed before login ------------------------------ */

static enum command_result cmd_capa(struct pop3_client *client, const struct pop3_command *cmd)
{
	char text[512];
	int len;

	if (cmd->args_len != 0)
		return bad_command(client, "CAPA takes no arguments.");
	/*
	 * Backend-independent capabilities only (any server we front has TOP and
	 * UIDL). No USER and no SASL line where credentials would be refused.
	 */
	len = snprintf(text, sizeof(text),
		       "+OK Capability list follows.\r\n"
		       "TOP\r\n"
		       "UIDL\r\n"
		       "RESP-CODES\r\n"
		       "AUTH-RESP-CODE\r\n"
		       "PIPELINING\r\n"
		       "%s%s"
		       "IMPLEMENTATION mailgate\r\n"
		       ".\r\n",
		       tls_active(client) ? "" : "STLS\r\n",
		       credentials_allowed(client) ? "USER\r\nSASL PLAIN LOGIN\r\n" : "");
	if (len < 0 || (size_t)len >= sizeof(text))
		return COMMAND_CLOSE;
	return session_send(client->session, text, (size_t)len) < 0 ? COMMAND_CLOSE : COMMAND_CONTINUE;
}

static enum command_result cmd_quit(struct pop3_client *client, const struct pop3_command *cmd)
{
	if (cmd->args_len != 0)
		return bad_command(client, "QUIT takes no arguments.");
	set_state(client, POP3_STATE_QUIT);
	client->session->end_reason = "logout";
	session_reply(client->session, "+OK Logging out.");
	return COMMAND_CLOSE;
}

static enum command_result cmd_stls(struct pop3_client *client, const struct pop3_command *cmd)
{
	struct mg_session *session = client->session;

	if (cmd->args_len != 0)
		return bad_command(client, "STLS takes no arguments.");
	/* A USER given in the clear (when policy allowed it) must not carry over. */
	restart_authorization(client);
	/*
	 * The engine sends the +OK and handshakes; anything pipelined after
	 * STLS was sent in the clear and dies with the cleartext channel.
	 */
	if (session_start_client_tls(session, "+OK Begin TLS negotiation now.\r\n", 32) < 0)
		return COMMAND_CLOSE;
	/* RFC 2595: the client speaks first after the handshake; we send nothing. */
	return COMMAND_CONTINUE;
}

static const struct command_def commands[] = {
	{ POP3_CMD_CAPA, cmd_capa },
	{ POP3_CMD_STLS, cmd_stls },
	{ POP3_CMD_USER, cmd_user },
	{ POP3_CMD_PASS, cmd_pass },
	{ POP3_CMD_APOP, cmd_apop },
	{ POP3_CMD_AUTH, cmd_auth },
	{ POP3_CMD_QUIT, cmd_quit },
};

static enum command_result not_in_state(struct pop3_client *client, enum pop3_command_id id)
{
	if (id == POP3_CMD_STLS)
		return bad_command(client, "TLS is already active.");
	if (id == POP3_CMD_PASS)
		return bad_command(client, "No user name given; send USER first.");
	return bad_command(client, "Command not allowed before login.");
}

/* Decide on line[0..len) (a copy, without CRLF) and run it. */
static enum command_result dispatch(struct pop3_client *client, const char *line, size_t len)
{
	struct pop3_command cmd;
	const char *error = NULL;
	enum pop3_parse_result parsed = pop3_command_parse(line, len, &cmd, &error);

	if (parsed == POP3_PARSE_BAD_NAME)
		return bad_command(client, error);
	/*
	 * The name alone decides; a cleartext credential command is refused
	 * before its arguments are checked or used (even when malformed).
	 */
	switch (pop3_decide(client->state, tls_active(client), credentials_allowed(client), cmd.id)) {
	case POP3_ACTION_REFUSE_CLEARTEXT:
		return refuse_cleartext(client, cmd.id);
	case POP3_ACTION_UNKNOWN:
		return bad_command(client, parsed == POP3_PARSE_OK ? "Unknown command." : error);
	case POP3_ACTION_NOT_IN_STATE:
		if (parsed != POP3_PARSE_OK)
			return bad_command(client, error);
		return not_in_state(client, cmd.id);
	case POP3_ACTION_RUN:
		break;
	}
	if (parsed != POP3_PARSE_OK)
		return bad_command(client, error);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (commands[i].id == cmd.id)
			return commands[i].run(client, &cmd);
	}
	/* A command the decision allows must have a handler: a broken invariant. */
	log_error("pop3: no handler for command %s", pop3_command_name(cmd.id));
	return COMMAND_CLOSE;
}

/* Read one command line, answer it; the line copy is wiped whatever happens. */
static enum command_result next_command(struct pop3_client *client)
{
	struct mg_session *session = client->session;
	/* One more than a command may hold, so an overlong one is recognised. */
	char line[POP3_COMMAND_TEXT_MAX + 1];
	enum command_result result;
	size_t len, kept;
	long n = stream_read_line(&session->client, session_client_deadline(session));

	if (n < 0) {
		read_failed(client, n);
		return COMMAND_CLOSE;
	}
	len = stream_strip_eol(session->client.in, (size_t)n);
	kept = len < sizeof(line) ? len : sizeof(line);
	memcpy(line, session->client.in, kept);
	stream_consume(&session->client, (size_t)n);
	result = session_command_allowed(session) < 0 ? COMMAND_CLOSE
						       : dispatch(client, line, kept);
	explicit_bzero(line, sizeof(line));
	return result;
}

static enum mg_frontend_result pop3_frontend(struct mg_session *session)
{
	struct pop3_client client = {
		.session = session,
		.state = POP3_STATE_AUTHORIZATION,
	};
	enum command_result result = COMMAND_CONTINUE;

	if (session_reply(client.session, "+OK mailgate ready.") < 0)
		result = COMMAND_CLOSE;
	while (result == COMMAND_CONTINUE)
		result = next_command(&client);
	if (result != COMMAND_RELAY)
		credentials_wipe(&session->cred);
	return result == COMMAND_RELAY ? MG_FRONTEND_RELAY : MG_FRONTEND_CLOSE;
}

const struct mg_protocol_ops pop3_protocol = {
	.protocol = MG_PROTO_POP3,
	.frontend = pop3_frontend,
	.backend_login = backend_pop3_login,
	.goodbye = "-ERR",
	.refusal_busy = "-ERR [SYS/TEMP] Server too busy, try again later.\r\n",
	.refusal_per_ip = "-ERR [SYS/TEMP] Too many connections from your address.\r\n",
};
