/*
 * imap_backend_step.h - the pure half of the login to an IMAP backend: the
 * states of the exchange, what a line from the backend is in each of them,
 * and what follows from it.
 *
 * Nothing here does I/O, allocates or keeps state, so the unit tests cover
 * exactly the rules the daemon runs. imap_backend.c does the reading and
 * writing: one exchange per state, this table choosing the next one.
 */
#ifndef MG_IMAP_BACKEND_STEP_H
#define MG_IMAP_BACKEND_STEP_H

#include <stdbool.h>
#include <stddef.h>

#include "protocol.h"

/* Each state names the exchange under way: the command sent, the answer awaited. */
enum imap_backend_state {
	IMAP_BACKEND_GREETING,	/* connected: "* OK" expected */
	IMAP_BACKEND_STARTTLS,	/* "M1 STARTTLS" (tls = starttls) */
	IMAP_BACKEND_ID,	/* "M0 ID (...)" (client_address = imap-id) */
	IMAP_BACKEND_LOGIN,	/* "M2 LOGIN" or, as the master user, "M2 AUTHENTICATE PLAIN" */
	IMAP_BACKEND_DONE,	/* logged in: nothing more is read */
	IMAP_BACKEND_STATE_COUNT
};

const char *imap_backend_state_name(enum imap_backend_state state);

/* The tag of the state's command, or NULL (the greeting, DONE). */
const char *imap_backend_tag(enum imap_backend_state state);

/* What a line from the backend is, in a given state. */
enum imap_backend_reply {
	IMAP_BACKEND_REPLY_OK,		/* tagged OK; in GREETING, "* OK" */
	IMAP_BACKEND_REPLY_NO,		/* tagged NO */
	IMAP_BACKEND_REPLY_UNAVAILABLE,	/* tagged, not OK, naming [UNAVAILABLE] */
	IMAP_BACKEND_REPLY_TAGGED,	/* any other tagged answer: BAD, junk after the tag */
	IMAP_BACKEND_REPLY_UNTAGGED,	/* "* ...": data before the answer */
	IMAP_BACKEND_REPLY_CONTINUATION,	/* "+...": the server waits for more */
	IMAP_BACKEND_REPLY_INVALID,	/* none of these: another tag, an empty line, junk */
	IMAP_BACKEND_REPLY_COUNT
};

const char *imap_backend_reply_name(enum imap_backend_reply reply);

/*
 * Classify line[0..len) (without CRLF) in state. *text is set to where the
 * backend's own words start: after "tag " for a tagged answer, 0 otherwise
 * (what a log line shows, and for OK what the client is given).
 */
enum imap_backend_reply imap_backend_classify(enum imap_backend_state state, const char *line,
					      size_t len, size_t *text);

/* What the driver does with a line. */
enum imap_backend_move {
	IMAP_BACKEND_READ_ON,	/* untagged data: read the next line */
	IMAP_BACKEND_SEND_MORE,	/* the continuation came: send the rest of the command */
	IMAP_BACKEND_GO,	/* the state's answer: go on to next */
	IMAP_BACKEND_END,	/* the login ends with result */
	IMAP_BACKEND_MOVE_COUNT
};

const char *imap_backend_move_name(enum imap_backend_move move);

struct imap_backend_step {
	enum imap_backend_move move;
	enum imap_backend_state next;	/* for GO */
	enum mg_login_result result;	/* for END */
	bool unexpected;	/* log the line (from *text on) as unexpected */
	bool relay;		/* READ_ON: the client gets the line before the login's answer */
};

struct imap_backend_options {
	bool starttls;		/* the backend's tls = starttls */
	bool client_id;		/* the backend's client_address = imap-id */
	/*
	 * LOGIN only: the command is half sent (a synchronising literal, or
	 * AUTHENTICATE PLAIN before its credentials) and waits for "+".
	 */
	bool continuation;
};

/*
 * The rules: the greeting must be "* OK"; STARTTLS must be answered OK;
 * any tagged answer to ID will do; a LOGIN answered OK is the login, NO is
 * a refusal, [UNAVAILABLE] means the backend cannot check now, anything else
 * tagged is a refusal worth a log line. Untagged data before an answer is
 * skipped, except while the login is under way: what the backend says there
 * (an "* OK [ALERT]", a "* CAPABILITY" update) is the client's, relayed with
 * the answer. While a continuation is awaited any tagged answer ends the
 * login as unavailable. Anything else ends it as unavailable, logged.
 */
struct imap_backend_step imap_backend_next(enum imap_backend_state state,
					   enum imap_backend_reply reply,
					   const struct imap_backend_options *options);

/* Does line (a greeting) announce cap in a [CAPABILITY ...] response code? */
bool imap_backend_has_capability(const char *line, size_t len, const char *cap);

#endif
