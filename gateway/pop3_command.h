/*
 * pop3_command.h - the pure half of the client-facing POP3 module: splitting
 * a command line (RFC 1939, RFC 2449) and deciding, from the state and the
 * command name alone, what the front end may do with it.
 *
 * Nothing here does I/O, allocates or keeps state, so the unit tests and the
 * fuzz target exercise exactly the code the daemon runs. pop3_frontend.c does the
 * talking.
 */
#ifndef MG_POP3_COMMAND_H
#define MG_POP3_COMMAND_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 2449 section 4: a command line is at most 255 octets, CRLF included. */
#define POP3_COMMAND_MAX	255
#define POP3_COMMAND_TEXT_MAX	(POP3_COMMAND_MAX - 2)
/* RFC 1939 keywords are 3 or 4 characters; we take 1 to 4 letters. */
#define POP3_NAME_MAX		4
/* The most space-separated arguments any command here takes (AUTH mech ir). */
#define POP3_MAX_ARGS		2

/* The states of the client-facing dialogue (RFC 1939 section 3, plus USER). */
enum pop3_state {
	POP3_STATE_AUTHORIZATION,	/* greeted, nobody named yet */
	POP3_STATE_USER,		/* USER accepted, PASS may follow */
	POP3_STATE_TRANSACTION,		/* logged in at the backend: the relay takes over */
	POP3_STATE_QUIT,		/* QUIT before login: closing */
	POP3_STATE_COUNT
};

const char *pop3_state_name(enum pop3_state state);

/* Every command the module knows by name (RFC 1939, 2449, 2595, 5034). */
enum pop3_command_id {
	POP3_CMD_UNKNOWN,	/* a well-formed name that is not a POP3 command */
	POP3_CMD_CAPA,
	POP3_CMD_STLS,
	POP3_CMD_USER,
	POP3_CMD_PASS,
	POP3_CMD_APOP,
	POP3_CMD_AUTH,
	POP3_CMD_QUIT,
	/* TRANSACTION-state commands: known, never allowed before login. */
	POP3_CMD_NOOP,
	POP3_CMD_STAT,
	POP3_CMD_LIST,
	POP3_CMD_RETR,
	POP3_CMD_DELE,
	POP3_CMD_RSET,
	POP3_CMD_TOP,
	POP3_CMD_UIDL,
	POP3_CMD_COUNT
};

/* The canonical (upper-case) name of a command; "" for UNKNOWN. */
const char *pop3_command_name(enum pop3_command_id id);

/* Does the command carry (or lead to) a user name or password? */
bool pop3_takes_credentials(enum pop3_command_id id);

struct pop3_command {
	const char *name;	/* points into the line; NULL when the name is invalid */
	size_t name_len;
	enum pop3_command_id id;
	const char *args;	/* everything after the first space, not terminated */
	size_t args_len;	/* 0 when there is no argument text */
};

enum pop3_parse_result {
	POP3_PARSE_OK,
	POP3_PARSE_BAD_NAME,	/* no usable command name: cmd->name is NULL */
	POP3_PARSE_BAD_LINE	/* the name is valid (cmd->name, cmd->id set), the rest is not */
};

/*
 * Split line[0..len) (without CRLF) into name and arguments. The name is
 * checked first and on its own: 1 to POP3_NAME_MAX ASCII letters, ended by
 * the end of the line or a single space. Then the whole line: at most
 * POP3_COMMAND_TEXT_MAX octets, no NUL and no other control byte (octets of
 * 0x80 and up are allowed in arguments, for UTF-8 user names and passwords).
 *
 * BAD_LINE leaves the name set so the caller can apply a decision that
 * depends on the name alone (refusing credentials before TLS) before it
 * reports the syntax error. *error is a short static text for the client.
 */
enum pop3_parse_result pop3_command_parse(const char *line, size_t len, struct pop3_command *cmd,
					  const char **error);

struct pop3_arg {
	const char *value;
	size_t len;
};

/*
 * Split argument text into at most max words separated by single spaces.
 * Returns the number of words (0 for empty text), or -1 for an empty word
 * (leading, trailing or doubled space) or more than max words.
 */
int pop3_split_args(const char *args, size_t len, struct pop3_arg *argv, size_t max);

/* What the front end does with a parsed command. */
enum pop3_action {
	POP3_ACTION_RUN,		/* allowed now: run it */
	POP3_ACTION_REFUSE_CLEARTEXT,	/* credentials on a connection not allowed them */
	POP3_ACTION_NOT_IN_STATE,	/* a POP3 command, but not in this state */
	POP3_ACTION_UNKNOWN		/* not a command we know */
};

const char *pop3_action_name(enum pop3_action action);

/*
 * The front end's rules, from the state and the command name only:
 * credential commands (USER, PASS, APOP, AUTH) are refused whenever
 * credentials_allowed is false, in any pre-login state and before anything
 * else is checked; STLS only while tls_active is false; PASS only after
 * USER; TRANSACTION commands never. After login (TRANSACTION, QUIT) the
 * front end reads no commands, so nothing is allowed there.
 *
 * tls_active: the client connection runs TLS (implicit or after STLS).
 * credentials_allowed: the connection is secure, or policy allows cleartext.
 */
enum pop3_action pop3_decide(enum pop3_state state, bool tls_active, bool credentials_allowed,
			     enum pop3_command_id id);

#endif
