/*
 * session_link.h - a session child's channel to its TLS engine.
 *
 * The child never touches a network socket or OpenSSL. The engine hands it
 * the client's cleartext as a socketpair (HELLO), and a new one each time TLS
 * starts (TLS_UP), so bytes sent before a handshake die with the old pair;
 * the backend leg arrives the same way (BACKEND_UP, BACKEND_TLS_UP). Every
 * order the child gives is preceded by shutting down its writing side of the
 * data channel concerned, so the engine has forwarded all the child wrote
 * (it reads up to that EOF) before it acts on the order. Every wait has the
 * caller's deadline; a dead engine is EOF, never a hang.
 */
#ifndef MG_SESSION_LINK_H
#define MG_SESSION_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "dnsname.h"
#include "stream.h"

#define LINK_TEXT_MAX 96	/* TLS version and cipher names, end reasons, routes */

struct session_hello {
	unsigned listener;		/* index into the generation's cfg->listeners */
	struct sockaddr_storage client;	/* after any PROXY header the engine read */
	struct sockaddr_storage local;
	int client_fd;			/* cleartext client channel, -1 on implicit TLS */
};

/* What the engine reports once the client's TLS is up. */
struct link_tls {
	char version[LINK_TEXT_MAX];
	char cipher[LINK_TEXT_MAX];
	char sni[DNS_NAME_MAX + 1];	/* the name the client asked for, lower-case; "" for none */
};

/* What the engine's closing log line reports about the pre-login phase. */
struct session_facts {
	const char *user;		/* quoted (log_quote), or NULL */
	uint64_t user_key;		/* the user's hash (session_penalty.h), for the handoff */
	const char *route;		/* route reason, or NULL */
	int backend;			/* index into cfg->backends, or -1 */
	const char *end_reason;		/* before login; NULL at a handoff */
};

int link_wait_hello(int link, long long deadline, struct session_hello *out, char *err,
		    size_t errlen);

/*
 * After EOF on the client channel: did the engine shut it because the daemon
 * stops (CHAN_SHUTDOWN waiting on the link, sent before the channel was
 * shut)? Never waits.
 */
bool link_shutdown_ordered(int link);

/*
 * Order TLS on the client leg: the engine writes reply[0..len) (may be
 * empty) in the clear, then handshakes. Closes *client (everything sent
 * before the handshake goes with it) and opens it again on the channel the
 * engine hands over with TLS up. tls receives the TLS facts.
 * Returns 0, or -1 (the engine logs why; the child just ends).
 */
int link_start_tls(int link, const char *reply, size_t len, long long deadline,
		   struct mg_stream *client, struct link_tls *tls);
/* Implicit TLS: wait for the engine's handshake without ordering it. */
int link_wait_tls(int link, long long deadline, struct mg_stream *client, struct link_tls *tls);

/*
 * Ask the engine to connect to backend (index) for protocol, send preamble
 * first, and handshake when the backend says tls = implicit. On success
 * *backend is a stream on the backend channel and addr holds "host:port".
 */
int link_backend_connect(int link, unsigned backend, enum mg_protocol protocol,
			 const unsigned char *preamble, size_t len, long long deadline,
			 struct mg_stream *stream, size_t max_line, char *addr, size_t addrlen,
			 char *err, size_t errlen);
/*
 * A failed login, for the master's penalty (session_penalty.h): the user and
 * password hashes up, the delay to wait before answering and the flags back.
 * -1 with err when no answer came by deadline (the caller goes on without).
 */
int link_login_failed(int link, uint64_t user, uint64_t password, long long deadline,
		      unsigned *delay_ms, unsigned *flags, char *err, size_t errlen);

/*
 * May the user (its hash) log in from this address, under
 * max_sessions_per_user_ip? 1 yes, 0 no; -1 with err when no answer came
 * by deadline (the caller lets the login go on).
 */
int link_userip_check(int link, uint64_t user, long long deadline, char *err, size_t errlen);

/* After the backend accepted STARTTLS/STLS: as link_start_tls, towards it. */
int link_backend_start_tls(int link, long long deadline, struct mg_stream *stream, char *err,
			   size_t errlen);

/*
 * Logged in: give the session to the engine, with every byte read from
 * either side but not consumed. Closes both streams. Returns 0 or -1.
 */
int link_handoff(int link, const struct session_facts *facts, struct mg_stream *client,
		 struct mg_stream *backend, long long deadline);
/* The session ends before login; the engine flushes what we wrote. */
void link_close(int link, const struct session_facts *facts, struct mg_stream *client);

#endif
