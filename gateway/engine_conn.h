/*
 * engine_conn.h - one connection inside a TLS engine, from accept to the
 * closing log line. The engine (engine.c) owns the process, the listening
 * sockets and the master channel; engine_conn.c owns each connection's
 * phases (an explicit state machine) and its sockets.
 */
#ifndef MG_ENGINE_CONN_H
#define MG_ENGINE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "netaddr.h"

struct event_base;
struct engine_servers;
struct mg_tls_client;
struct engine_conn;

/* A backend's addresses, resolved when the engine starts (never per login). */
struct engine_backend {
	struct sockaddr_storage addr[MG_PROTO_COUNT][4];
	socklen_t addrlen[MG_PROTO_COUNT][4];
	size_t n_addr[MG_PROTO_COUNT];
	struct mg_tls_client *tls;	/* NULL for tls = none */
};

/* A message for the master that its channel could not take yet. */
struct engine_out {
	unsigned char data[64];
	size_t len;
	int fd;				/* passed along, closed once sent; -1 for none */
};

/* What every connection of an engine shares. */
struct engine_ctx {
	struct event_base *base;
	const struct mg_config *cfg;
	struct engine_servers *servers;	/* each listener's TLS server side */
	struct engine_backend *backends;	/* per cfg->backends[i] */
	int master_fd;
	struct engine_out *out;		/* in order; never blocks the loop */
	size_t n_out, cap_out;
	struct event *out_ev;		/* armed while out holds anything */
	uint64_t next_id;
	struct engine_conn *conns;	/* every live connection */
	struct engine_conn *waiting;	/* those awaiting the master's verdict */
	size_t n_conns;
	/* Called when the last connection ended (a retiring engine exits then). */
	void (*on_idle)(struct engine_ctx *ctx);
};

/* Take over an accepted socket. */
void conn_accept(struct engine_ctx *ctx, int fd, size_t listener,
		 const struct sockaddr_storage *peer);

/* The master's verdict on a session request. */
void conn_granted(struct engine_ctx *ctx, uint64_t id);
void conn_refused(struct engine_ctx *ctx, uint64_t id, unsigned verdict);
/* The master's answer to a failed login the child reported: passed to the child. */
void conn_penalty(struct engine_ctx *ctx, uint64_t id, uint32_t delay_ms, uint8_t flags);
/* The master's answer to max_sessions_per_user_ip: passed to the child. */
void conn_userip(struct engine_ctx *ctx, uint64_t id, uint8_t allowed);

/* End every connection (shutdown after the grace period). */
void conn_end_all(struct engine_ctx *ctx, const char *reason);

/*
 * The grace period is over: a session child in the pre-login dialogue (not
 * waiting for a TLS handshake or a backend connection) is told the daemon
 * stops and that its client channel is shut; it answers its client with
 * the protocol's goodbye and closes the session itself. Every other
 * connection ends now. Returns how many children were told: the caller
 * gives them a moment before conn_end_all().
 */
size_t conn_goodbye_all(struct engine_ctx *ctx);

#endif
