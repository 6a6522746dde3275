/*
 * pop3_backend_step.h - the pure half of the login to a POP3 backend
 * (RFC 1939 USER/PASS, RFC 2595 STLS, RFC 5034 AUTH PLAIN as the master
 * user, RFC 2449/3206 response codes): the states of the exchange, what a
 * status line is, and what follows from it.
 *
 * Nothing here does I/O, allocates or keeps state, so the unit tests cover
 * exactly the rules the daemon runs. pop3_backend.c does the reading and
 * writing: one exchange per state, this table choosing the next one.
 */
#ifndef MG_POP3_BACKEND_STEP_H
#define MG_POP3_BACKEND_STEP_H

#include <stdbool.h>
#include <stddef.h>

#include "protocol.h"

/* Each state names the exchange under way: the command sent, the answer awaited. */
enum pop3_backend_state {
	POP3_BACKEND_GREETING,	/* connected: "+OK" expected */
	POP3_BACKEND_STLS,	/* "STLS" (tls = starttls) */
	POP3_BACKEND_USER,	/* "USER name" */
	POP3_BACKEND_PASS,	/* "PASS password" or, as the master user, "AUTH PLAIN" */
	POP3_BACKEND_DONE,	/* logged in: nothing more is read */
	POP3_BACKEND_STATE_COUNT
};

const char *pop3_backend_state_name(enum pop3_backend_state state);

/* What a line from the backend is. */
enum pop3_backend_reply {
	POP3_BACKEND_REPLY_OK,		/* "+OK" */
	POP3_BACKEND_REPLY_ERR,		/* "-ERR": refused */
	POP3_BACKEND_REPLY_ERR_TEMP,	/* "-ERR" with a code saying "not now", not "wrong" */
	POP3_BACKEND_REPLY_CONTINUATION,	/* "+" but not "+OK": the server waits for more */
	POP3_BACKEND_REPLY_INVALID,	/* none of these */
	POP3_BACKEND_REPLY_COUNT
};

const char *pop3_backend_reply_name(enum pop3_backend_reply reply);

enum pop3_backend_reply pop3_backend_classify(const char *line, size_t len);

/* What the driver does with a line. */
enum pop3_backend_move {
	POP3_BACKEND_SEND_MORE,	/* the continuation came: send the credentials */
	POP3_BACKEND_GO,	/* the state's answer: go on to next */
	POP3_BACKEND_END,	/* the login ends with result */
	POP3_BACKEND_MOVE_COUNT
};

const char *pop3_backend_move_name(enum pop3_backend_move move);

/* How the line is logged (sanitized and truncated, as what="..."). */
enum pop3_backend_log {
	POP3_BACKEND_LOG_NONE,
	POP3_BACKEND_LOG_UNEXPECTED,	/* warning: unexpected="..." */
	POP3_BACKEND_LOG_UNAVAILABLE,	/* warning: unavailable="..." */
	POP3_BACKEND_LOG_REFUSED,	/* info: refused="..." (only the backend's words) */
	POP3_BACKEND_LOG_COUNT
};

struct pop3_backend_step {
	enum pop3_backend_move move;
	enum pop3_backend_state next;	/* for GO */
	enum mg_login_result result;	/* for END */
	enum pop3_backend_log log;
};

struct pop3_backend_options {
	bool stls;		/* the backend's tls = starttls */
	bool master;		/* the backend's login = master: PASS is AUTH PLAIN */
	/* PASS only: AUTH PLAIN was sent, the server's "+" is awaited. */
	bool continuation;
};

/*
 * The rules: the greeting and STLS must be answered +OK, and any -ERR there
 * means the backend cannot serve now; USER and PASS answered -ERR are a
 * refusal of the credentials, unless a response code says "not now"
 * ([SYS/TEMP], [IN-USE], [LOGIN-DELAY] and their children). After AUTH
 * PLAIN any line starting with "+" is the continuation. Anything else ends
 * the login as unavailable, logged as unexpected.
 */
struct pop3_backend_step pop3_backend_next(enum pop3_backend_state state,
					   enum pop3_backend_reply reply,
					   const struct pop3_backend_options *options);

#endif
