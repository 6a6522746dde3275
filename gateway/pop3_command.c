/*
 * pop3_command.c - splitting a POP3 command line and the front end's
 * decision table (see pop3_command.h). Pure functions only.
 *
 * The decision looks at the command name and never at its arguments: a
 * credential command on a connection that may not carry credentials is
 * refused whatever follows it, so a password is never parsed, checked or
 * forwarded there.
 */
#include <string.h>

#include "pop3_command.h"

static const char *const state_names[] = {
	[POP3_STATE_AUTHORIZATION] = "authorization",
	[POP3_STATE_USER] = "user",
	[POP3_STATE_TRANSACTION] = "transaction",
	[POP3_STATE_QUIT] = "quit",
};
_Static_assert(sizeof(state_names) / sizeof(state_names[0]) == POP3_STATE_COUNT,
	       "every POP3 state has a name");

struct command_info {
	const char *name;
	bool takes_credentials;		/* refused unless credentials are allowed */
	bool transaction_only;		/* RFC 1939 TRANSACTION state command */
};

static const struct command_info commands[] = {
	[POP3_CMD_UNKNOWN] = { "", false, false },
	[POP3_CMD_CAPA] = { "CAPA", false, false },
	[POP3_CMD_STLS] = { "STLS", false, false },
	[POP3_CMD_USER] = { "USER", true, false },
	[POP3_CMD_PASS] = { "PASS", true, false },
	[POP3_CMD_APOP] = { "APOP", true, false },
	[POP3_CMD_AUTH] = { "AUTH", true, false },
	[POP3_CMD_QUIT] = { "QUIT", false, false },
	[POP3_CMD_NOOP] = { "NOOP", false, true },
	[POP3_CMD_STAT] = { "STAT", false, true },
	[POP3_CMD_LIST] = { "LIST", false, true },
	[POP3_CMD_RETR] = { "RETR", false, true },
	[POP3_CMD_DELE] = { "DELE", false, true },
	[POP3_CMD_RSET] = { "RSET", false, true },
	[POP3_CMD_TOP] = { "TOP", false, true },
	[POP3_CMD_UIDL] = { "UIDL", false, true },
};
_Static_assert(sizeof(commands) / sizeof(commands[0]) == POP3_CMD_COUNT,
	       "every POP3 command has an entry");

static const char *const action_names[] = {
	[POP3_ACTION_RUN] = "run",
	[POP3_ACTION_REFUSE_CLEARTEXT] = "refuse-cleartext",
	[POP3_ACTION_NOT_IN_STATE] = "not-in-state",
	[POP3_ACTION_UNKNOWN] = "unknown",
};
_Static_assert(sizeof(action_names) / sizeof(action_names[0]) == POP3_ACTION_UNKNOWN + 1,
	       "every POP3 action has a name");

const char *pop3_state_name(enum pop3_state state)
{
	return (unsigned)state < POP3_STATE_COUNT ? state_names[state] : "invalid";
}

const char *pop3_command_name(enum pop3_command_id id)
{
	return (unsigned)id < POP3_CMD_COUNT ? commands[id].name : "";
}

const char *pop3_action_name(enum pop3_action action)
{
	return (unsigned)action <= POP3_ACTION_UNKNOWN ? action_names[action] : "invalid";
}

bool pop3_takes_credentials(enum pop3_command_id id)
{
	return (unsigned)id < POP3_CMD_COUNT && commands[id].takes_credentials;
}

static bool is_letter(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static unsigned char upper(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? (unsigned char)(c - 'a' + 'A') : c;
}

/* The id of a name of 1..POP3_NAME_MAX letters, compared case-insensitively. */
static enum pop3_command_id lookup(const char *name, size_t len)
{
	for (size_t id = POP3_CMD_UNKNOWN + 1; id < POP3_CMD_COUNT; id++) {
		const char *known = commands[id].name;
		size_t i;

		if (strlen(known) != len)
			continue;
		for (i = 0; i < len && upper((unsigned char)name[i]) == (unsigned char)known[i]; i++)
			;
		if (i == len)
			return (enum pop3_command_id)id;
	}
	return POP3_CMD_UNKNOWN;
}

enum pop3_parse_result pop3_command_parse(const char *line, size_t len, struct pop3_command *cmd,
					  const char **error)
{
	size_t name_len = 0;

	*cmd = (struct pop3_command){ .name = NULL, .id = POP3_CMD_UNKNOWN };

	/* The name alone first: it must be decidable whatever follows it. */
	while (name_len < len && name_len <= POP3_NAME_MAX && is_letter((unsigned char)line[name_len]))
		name_len++;
	if (name_len == 0) {
		*error = len == 0 ? "Empty command." : "Invalid command name.";
		return POP3_PARSE_BAD_NAME;
	}
	if (name_len > POP3_NAME_MAX || (name_len < len && line[name_len] != ' ')) {
		*error = "Invalid command name.";
		return POP3_PARSE_BAD_NAME;
	}
	cmd->name = line;
	cmd->name_len = name_len;
	cmd->id = lookup(line, name_len);

	/* Raw pointer arithmetic: the arguments start after the one space. */
	if (name_len < len) {
		cmd->args = line + name_len + 1;
		cmd->args_len = len - name_len - 1;
	} else {
		cmd->args = line + len;
		cmd->args_len = 0;
	}

	if (len > POP3_COMMAND_TEXT_MAX) {
		*error = "Command line too long.";
		return POP3_PARSE_BAD_LINE;
	}
	for (size_t i = 0; i < cmd->args_len; i++) {
		unsigned char c = (unsigned char)cmd->args[i];

		if (c == '\0') {
			*error = "NUL byte in command.";
			return POP3_PARSE_BAD_LINE;
		}
		if (c < 0x20 || c == 0x7f) {
			*error = "Control character in command.";
			return POP3_PARSE_BAD_LINE;
		}
	}
	return POP3_PARSE_OK;
}

int pop3_split_args(const char *args, size_t len, struct pop3_arg *argv, size_t max)
{
	size_t n = 0, start = 0;

	if (len == 0)
		return 0;
	/* Raw pointer arithmetic: each word is args[start .. next space or end). */
	for (;;) {
		const char *sp = memchr(args + start, ' ', len - start);
		size_t end = sp != NULL ? (size_t)(sp - args) : len;

		if (end == start || n == max)
			return -1;
		argv[n].value = args + start;
		argv[n].len = end - start;
		n++;
		if (sp == NULL)
			return (int)n;
		start = end + 1;
		if (start == len)
			return -1;	/* trailing space: an empty last word */
	}
}

enum pop3_action pop3_decide(enum pop3_state state, bool tls_active, bool credentials_allowed,
			     enum pop3_command_id id)
{
	switch (state) {
	case POP3_STATE_AUTHORIZATION:
	case POP3_STATE_USER:
		break;
	case POP3_STATE_TRANSACTION:
	case POP3_STATE_QUIT:
	case POP3_STATE_COUNT:
		return (unsigned)id < POP3_CMD_COUNT && id != POP3_CMD_UNKNOWN
			       ? POP3_ACTION_NOT_IN_STATE
			       : POP3_ACTION_UNKNOWN;
	}
	if ((unsigned)id >= POP3_CMD_COUNT || id == POP3_CMD_UNKNOWN)
		return POP3_ACTION_UNKNOWN;
	/* First, and from the name alone: no credentials where they may not go. */
	if (commands[id].takes_credentials && !credentials_allowed)
		return POP3_ACTION_REFUSE_CLEARTEXT;
	if (commands[id].transaction_only)
		return POP3_ACTION_NOT_IN_STATE;
	if (id == POP3_CMD_STLS && tls_active)
		return POP3_ACTION_NOT_IN_STATE;
	if (id == POP3_CMD_PASS && state != POP3_STATE_USER)
		return POP3_ACTION_NOT_IN_STATE;
	return POP3_ACTION_RUN;
}
