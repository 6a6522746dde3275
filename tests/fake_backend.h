/*
 * fake_backend.h - a scripted peer and engine for the unit tests of the
 * session child's dialogues: the backend logins (check_imap_backend.c,
 * check_pop3_backend.c), where the fake is the backend, and the front ends
 * (check_imap_frontend.c, check_pop3_frontend.c), where it is the client.
 *
 * The login driver runs in the test process against a session built here;
 * a forked process plays the backend on a stream socketpair, following a
 * script of lines to send and lines it must receive, and the engine on the
 * link (SOCK_SEQPACKET) when the script says STARTTLS/STLS goes ahead. The
 * backend ends well only when every expected line came exactly as written
 * and nothing more came after the script: so a test sees every byte the
 * driver put on the wire. Playing the client, the fake is the engine on the
 * client leg too: it takes the STARTTLS/STLS order, checks the go-ahead
 * line the engine would write, and hands over a fresh channel. Log lines are captured (stderr, debug level) with
 * their time stamp and pid cut off, for exact comparison.
 */
#ifndef MG_FAKE_BACKEND_H
#define MG_FAKE_BACKEND_H

#include <stddef.h>

#include "config.h"
#include "protocol.h"
#include "session.h"
#include "stream.h"

enum fake_op {
	FAKE_END,		/* end of the script: nothing more may arrive */
	FAKE_SEND,		/* write text to the driver */
	FAKE_SEND_LONG,		/* write text, then 'x' up to len bytes, then CRLF */
	FAKE_EXPECT,		/* the next line (LF included) must be exactly text */
	FAKE_EOF,		/* stop writing: the driver reads EOF */
	FAKE_TLS,		/* as the engine: the driver ordered TLS, hand over a new channel */
	FAKE_TLS_FAIL,		/* as the engine: the driver ordered TLS, and it fails */
	FAKE_CLIENT_TLS,	/* as the engine on the client leg: TLS ordered with reply text */
	FAKE_CLIENT_TLS_FAIL	/* the same, and the handshake fails */
};

struct fake_step {
	enum fake_op op;
	const char *text;
	size_t len;		/* 0: strlen(text) */
};

#define SEND(s)	  { FAKE_SEND, (s), 0 }
#define SEND_LONG(s) { FAKE_SEND_LONG, (s), 2000 }	/* longer than max_line */
#define EXPECT(s) { FAKE_EXPECT, (s), 0 }
#define SEND_EOF  { FAKE_EOF, NULL, 0 }
#define TLS	  { FAKE_TLS, NULL, 0 }
#define TLS_FAIL  { FAKE_TLS_FAIL, NULL, 0 }
#define CLIENT_TLS(s) { FAKE_CLIENT_TLS, (s), 0 }
#define CLIENT_TLS_FAIL(s) { FAKE_CLIENT_TLS_FAIL, (s), 0 }
#define END	  { FAKE_END, NULL, 0 }

typedef enum mg_login_result (*fake_login_fn)(struct mg_session *session,
					      struct mg_stream *stream, char *reply,
					      size_t replysize);

struct fake_login {
	/* What the driver sees; fake_login_init() fills in defaults to change. */
	struct mg_config cfg;
	struct mg_backend_config backend;
	struct mg_session_env env;
	struct mg_session session;
	size_t max_line;		/* the backend stream's longest line */
	size_t replysize;		/* room given for the backend's answer */

	/* What came out. */
	enum mg_login_result result;
	char reply[1024];
	char log[16384];		/* "level: message\n" lines */
	int backend_status;		/* the fake's exit status: 0 when the script held */
};

/*
 * Defaults: user "alice", password "secret", backend_addr "10.0.0.5:143",
 * client 192.0.2.7:40000 connected to 127.0.0.1:143, backend_timeout 2 s,
 * passthrough login, no TLS, no client address.
 */
void fake_login_init(struct fake_login *t);
void fake_login_set_credentials(struct fake_login *t, const char *user, size_t user_len,
				const char *password, size_t password_len);
/* A master-user login as "master" with password "mpw". */
void fake_login_set_master(struct fake_login *t);

/* Run login against the script; fills result, reply, log and backend_status. */
void fake_login_run(struct fake_login *t, const struct fake_step *script, fake_login_fn login);

/* One case of a table: options (flags each test file defines), script, what comes out. */
struct fake_case {
	const char *name;
	unsigned flags;
	struct fake_step script[12];
	enum mg_login_result result;
	const char *reply;	/* checked when result is OK */
	const char *log;	/* every line, exactly */
};

#define OK MG_LOGIN_OK
#define FAILED MG_LOGIN_FAILED
#define UNAVAILABLE MG_LOGIN_UNAVAILABLE
#define TABLE_LEN(t) ((int)(sizeof(t) / sizeof((t)[0])))

/* Assert that the script held and the result, reply and log were c's. */
void fake_login_check(const struct fake_login *t, const struct fake_case *c);

/* ---- the front ends: the fake is the client (and the engine on its leg) ---- */

struct fake_frontend {
	/* What the front end sees; fake_frontend_init() fills in defaults to change. */
	struct mg_config cfg;
	struct mg_listener_config listener;
	struct mg_session_env env;
	struct mg_session session;

	/* What came out. */
	enum mg_frontend_result result;
	char log[16384];		/* "level: message\n" lines */
	int client_status;		/* the fake's exit status: 0 when the script held */
};

/*
 * Defaults: a cleartext connection from 192.0.2.7:40000 on listener "test"
 * of ops' protocol, cleartext logins refused, max_line_length 256,
 * max_literal_size 64, max_bad_commands 3, max_auth_failures 2, no failure
 * delay, login_timeout 10 s.
 */
void fake_frontend_init(struct fake_frontend *t, const struct mg_protocol_ops *ops);

/* Run the front end against the script; fills result, log and client_status. */
void fake_frontend_run(struct fake_frontend *t, const struct fake_step *script);

/* One case of a front end's table: options, script, how the session ends. */
struct fake_frontend_case {
	const char *name;
	unsigned flags;			/* FAKE_FE_* */
	struct fake_step script[24];
	const char *end_reason;		/* the session's, at the end */
	const char *log;		/* a line the log must hold, or NULL */
};

#define FAKE_FE_TLS	1u	/* the connection runs TLS from the start */
#define FAKE_FE_ALLOWED 2u	/* cleartext logins allowed */
#define FAKE_FE_WIDE	4u	/* max_line_length 1024 */

/*
 * Run c against ops' front end and assert that the script held, the session
 * closed with c's end reason and log line, and no credential is left.
 */
void fake_frontend_case_run(const struct mg_protocol_ops *ops, const struct fake_frontend_case *c);

#endif
