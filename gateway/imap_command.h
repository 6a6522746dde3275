/*
 * imap_command.h - the pure half of the client-facing IMAP module: the states
 * of the pre-login dialogue, the commands it knows by name, and the decision,
 * from the state and the command name alone, of what the front end may do.
 *
 * Nothing here does I/O, allocates or keeps state, so the unit tests exercise
 * exactly the rules the daemon runs. imap_frontend.c does the reading and talking;
 * lib/imap_token.c tokenizes.
 */
#ifndef MG_IMAP_COMMAND_H
#define MG_IMAP_COMMAND_H

#include <stdbool.h>
#include <stddef.h>

/* The states of the client-facing dialogue (RFC 9051 section 3). */
enum imap_state {
	IMAP_STATE_NOT_AUTHENTICATED,	/* greeted: commands are read and answered */
	IMAP_STATE_AUTHENTICATED,	/* logged in at the backend: the relay takes over */
	IMAP_STATE_LOGOUT,		/* LOGOUT, or the connection is being dropped */
	IMAP_STATE_COUNT
};

const char *imap_state_name(enum imap_state state);

/* Every command the front end knows by name. */
enum imap_command_id {
	IMAP_CMD_UNKNOWN,	/* a name that is no IMAP command */
	IMAP_CMD_CAPABILITY,
	IMAP_CMD_NOOP,
	IMAP_CMD_LOGOUT,
	IMAP_CMD_ID,
	IMAP_CMD_STARTTLS,
	IMAP_CMD_LOGIN,
	IMAP_CMD_AUTHENTICATE,
	/* Commands of the authenticated and selected states: known, never run here. */
	IMAP_CMD_SELECT,
	IMAP_CMD_EXAMINE,
	IMAP_CMD_CREATE,
	IMAP_CMD_DELETE,
	IMAP_CMD_RENAME,
	IMAP_CMD_SUBSCRIBE,
	IMAP_CMD_UNSUBSCRIBE,
	IMAP_CMD_LIST,
	IMAP_CMD_LSUB,
	IMAP_CMD_NAMESPACE,
	IMAP_CMD_STATUS,
	IMAP_CMD_APPEND,
	IMAP_CMD_IDLE,
	IMAP_CMD_ENABLE,
	IMAP_CMD_CLOSE,
	IMAP_CMD_UNSELECT,
	IMAP_CMD_EXPUNGE,
	IMAP_CMD_SEARCH,
	IMAP_CMD_FETCH,
	IMAP_CMD_STORE,
	IMAP_CMD_COPY,
	IMAP_CMD_MOVE,
	IMAP_CMD_UID,
	IMAP_CMD_CHECK,
	IMAP_CMD_COUNT
};

/* The command a name (any case) stands for; IMAP_CMD_UNKNOWN if none. */
enum imap_command_id imap_command_lookup(const char *name, size_t len);

/* The canonical (upper-case) name of a command; "" for UNKNOWN. */
const char *imap_command_name(enum imap_command_id id);

/* Does the command carry (or lead to) a user name or password? */
bool imap_takes_credentials(enum imap_command_id id);

/* What the front end does with a command. */
enum imap_action {
	IMAP_ACTION_RUN,		/* allowed now: run it */
	IMAP_ACTION_REFUSE_CLEARTEXT,	/* credentials on a connection not allowed them */
	IMAP_ACTION_NOT_IN_STATE,	/* an IMAP command, but not before login */
	IMAP_ACTION_ALREADY_TLS,	/* STARTTLS on a connection that runs TLS */
	IMAP_ACTION_UNKNOWN,		/* not a command we know */
	IMAP_ACTION_COUNT
};

const char *imap_action_name(enum imap_action action);

/*
 * The front end's rules, from the state and the command name only:
 * LOGIN and AUTHENTICATE are refused whenever credentials_allowed is false,
 * before anything else is checked (so their arguments are never looked at);
 * STARTTLS only while tls_active is false; commands of the later states
 * never. Outside NOT_AUTHENTICATED the front end reads no commands, so
 * nothing runs there.
 *
 * tls_active: the client connection runs TLS (implicit or after STARTTLS).
 * credentials_allowed: the connection is secure, or policy allows cleartext.
 */
enum imap_action imap_decide(enum imap_state state, bool tls_active, bool credentials_allowed,
			     enum imap_command_id id);

#endif
