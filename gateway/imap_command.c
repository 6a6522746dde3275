/*
 * imap_command.c - the IMAP front end's command table and decision rules
 * (see imap_command.h). Pure functions only.
 *
 * The decision looks at the command name and never at its arguments: a
 * credential command on a connection that may not carry credentials is
 * refused whatever follows it, so a password is never parsed, checked or
 * forwarded there.
 */
#include "imap_command.h"
#include "imap_token.h"

static const char *const state_names[] = {
	[IMAP_STATE_NOT_AUTHENTICATED] = "not-authenticated",
	[IMAP_STATE_AUTHENTICATED] = "authenticated",
	[IMAP_STATE_LOGOUT] = "logout",
};
_Static_assert(sizeof(state_names) / sizeof(state_names[0]) == IMAP_STATE_COUNT,
	       "every IMAP state has a name");

struct command_info {
	const char *name;
	bool takes_credentials;		/* refused unless credentials are allowed */
	bool after_login;		/* a command of the authenticated or selected state */
};

static const struct command_info commands[] = {
	[IMAP_CMD_UNKNOWN] = { "", false, false },
	[IMAP_CMD_CAPABILITY] = { "CAPABILITY", false, false },
	[IMAP_CMD_NOOP] = { "NOOP", false, false },
	[IMAP_CMD_LOGOUT] = { "LOGOUT", false, false },
	[IMAP_CMD_ID] = { "ID", false, false },
	[IMAP_CMD_STARTTLS] = { "STARTTLS", false, false },
	[IMAP_CMD_LOGIN] = { "LOGIN", true, false },
	[IMAP_CMD_AUTHENTICATE] = { "AUTHENTICATE", true, false },
	[IMAP_CMD_SELECT] = { "SELECT", false, true },
	[IMAP_CMD_EXAMINE] = { "EXAMINE", false, true },
	[IMAP_CMD_CREATE] = { "CREATE", false, true },
	[IMAP_CMD_DELETE] = { "DELETE", false, true },
	[IMAP_CMD_RENAME] = { "RENAME", false, true },
	[IMAP_CMD_SUBSCRIBE] = { "SUBSCRIBE", false, true },
	[IMAP_CMD_UNSUBSCRIBE] = { "UNSUBSCRIBE", false, true },
	[IMAP_CMD_LIST] = { "LIST", false, true },
	[IMAP_CMD_LSUB] = { "LSUB", false, true },
	[IMAP_CMD_NAMESPACE] = { "NAMESPACE", false, true },
	[IMAP_CMD_STATUS] = { "STATUS", false, true },
	[IMAP_CMD_APPEND] = { "APPEND", false, true },
	[IMAP_CMD_IDLE] = { "IDLE", false, true },
	[IMAP_CMD_ENABLE] = { "ENABLE", false, true },
	[IMAP_CMD_CLOSE] = { "CLOSE", false, true },
	[IMAP_CMD_UNSELECT] = { "UNSELECT", false, true },
	[IMAP_CMD_EXPUNGE] = { "EXPUNGE", false, true },
	[IMAP_CMD_SEARCH] = { "SEARCH", false, true },
	[IMAP_CMD_FETCH] = { "FETCH", false, true },
	[IMAP_CMD_STORE] = { "STORE", false, true },
	[IMAP_CMD_COPY] = { "COPY", false, true },
	[IMAP_CMD_MOVE] = { "MOVE", false, true },
	[IMAP_CMD_UID] = { "UID", false, true },
	[IMAP_CMD_CHECK] = { "CHECK", false, true },
};
_Static_assert(sizeof(commands) / sizeof(commands[0]) == IMAP_CMD_COUNT,
	       "every IMAP command has an entry");

static const char *const action_names[] = {
	[IMAP_ACTION_RUN] = "run",
	[IMAP_ACTION_REFUSE_CLEARTEXT] = "refuse-cleartext",
	[IMAP_ACTION_NOT_IN_STATE] = "not-in-state",
	[IMAP_ACTION_ALREADY_TLS] = "already-tls",
	[IMAP_ACTION_UNKNOWN] = "unknown",
};
_Static_assert(sizeof(action_names) / sizeof(action_names[0]) == IMAP_ACTION_COUNT,
	       "every IMAP action has a name");

const char *imap_state_name(enum imap_state state)
{
	return (unsigned)state < IMAP_STATE_COUNT ? state_names[state] : "invalid";
}

const char *imap_command_name(enum imap_command_id id)
{
	return (unsigned)id < IMAP_CMD_COUNT ? commands[id].name : "";
}

const char *imap_action_name(enum imap_action action)
{
	return (unsigned)action < IMAP_ACTION_COUNT ? action_names[action] : "invalid";
}

bool imap_takes_credentials(enum imap_command_id id)
{
	return (unsigned)id < IMAP_CMD_COUNT && commands[id].takes_credentials;
}

enum imap_command_id imap_command_lookup(const char *name, size_t len)
{
	if (name == NULL || len == 0)
		return IMAP_CMD_UNKNOWN;
	for (unsigned id = IMAP_CMD_UNKNOWN + 1; id < IMAP_CMD_COUNT; id++) {
		if (imap_word_equals(name, len, commands[id].name))
			return (enum imap_command_id)id;
	}
	return IMAP_CMD_UNKNOWN;
}

enum imap_action imap_decide(enum imap_state state, bool tls_active, bool credentials_allowed,
			     enum imap_command_id id)
{
	bool known = (unsigned)id < IMAP_CMD_COUNT && id != IMAP_CMD_UNKNOWN;

	if (!known)
		return IMAP_ACTION_UNKNOWN;
	switch (state) {
	case IMAP_STATE_NOT_AUTHENTICATED:
		/* First, and from the name alone: no credentials where they may not go. */
		if (commands[id].takes_credentials && !credentials_allowed)
			return IMAP_ACTION_REFUSE_CLEARTEXT;
		if (commands[id].after_login)
			return IMAP_ACTION_NOT_IN_STATE;
		if (id == IMAP_CMD_STARTTLS && tls_active)
			return IMAP_ACTION_ALREADY_TLS;
		return IMAP_ACTION_RUN;
	case IMAP_STATE_AUTHENTICATED:
	case IMAP_STATE_LOGOUT:
	case IMAP_STATE_COUNT:
		break;
	}
	/* Later states, and any value out of range: the front end runs nothing. */
	return IMAP_ACTION_NOT_IN_STATE;
}
