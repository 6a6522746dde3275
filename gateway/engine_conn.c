/*
 * engine_conn.c - one connection inside a TLS engine.
 *
 * A connection goes through these phases (every change through set_phase(),
 * which traces it):
 *
 *   new        accepted
 *   proxy      reading a PROXY header (only from the listener's proxy_networks)
 *   grant      the master decides on the limits and forks a session child
 *   client-tls handshake with the client (implicit TLS, or ordered by the child)
 *   prelogin   client <-> child; the child may ask for the backend leg
 *   starttls   the child ordered TLS: its last bytes, then the go-ahead line,
 *              go out in the clear, everything else the client sent is dropped
 *   handoff    the child logged in and hands over the bytes it holds
 *   relay      client <-> backend until either side ends or the idle timeout
 *   closing    the child ended the session: its last words are flushed
 *
 * The backend leg has its own small machine (none, connecting, tls, up,
 * starttls). The child talks to the engine only through chan.h messages on
 * its link; client and backend bytes travel on socketpairs that are replaced
 * whenever TLS starts, so nothing sent before a handshake survives it.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/sockios.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "chan.h"
#include "client_address.h"
#include "clock.h"
#include "dnsname.h"
#include "master_connlimit.h"
#include "engine_conn.h"
#include "engine_pipe.h"
#include "line_word.h"
#include "log.h"
#include "protocol.h"
#include "proxy_protocol.h"
#include "engine_servers.h"
#include "engine_tls.h"

#define CLOSING_FLUSH_MS 30000
#define CLOSING_GRACE_MS 1000	/* flushing a goodbye after the login deadline */

enum conn_phase {
	PHASE_NEW,
	PHASE_PROXY,
	PHASE_GRANT,
	PHASE_CLIENT_TLS,
	PHASE_PRELOGIN,
	PHASE_STARTTLS,
	PHASE_HANDOFF,
	PHASE_RELAY,
	PHASE_CLOSING,
	PHASE_COUNT
};

static const char *const phase_names[] = {
	[PHASE_NEW] = "new",
	[PHASE_PROXY] = "proxy",
	[PHASE_GRANT] = "grant",
	[PHASE_CLIENT_TLS] = "client-tls",
	[PHASE_PRELOGIN] = "prelogin",
	[PHASE_STARTTLS] = "starttls",
	[PHASE_HANDOFF] = "handoff",
	[PHASE_RELAY] = "relay",
	[PHASE_CLOSING] = "closing",
};
_Static_assert(sizeof(phase_names) / sizeof(phase_names[0]) == PHASE_COUNT,
	       "phase_names must name every conn_phase");

enum backend_leg {
	LEG_NONE,
	LEG_CONNECTING,
	LEG_TLS,
	LEG_UP,
	LEG_STARTTLS,
	LEG_COUNT
};

static const char *const leg_names[] = {
	[LEG_NONE] = "none",
	[LEG_CONNECTING] = "connecting",
	[LEG_TLS] = "tls",
	[LEG_UP] = "up",
	[LEG_STARTTLS] = "starttls",
};
_Static_assert(sizeof(leg_names) / sizeof(leg_names[0]) == LEG_COUNT,
	       "leg_names must name every backend_leg");

struct engine_conn {
	struct engine_ctx *ctx;
	struct engine_conn *next, *prev;
	struct engine_conn *wait_next, *wait_prev;	/* in ctx->waiting while waiting */
	bool waiting;
	uint64_t id;
	enum conn_phase phase;
	enum backend_leg leg;
	const struct mg_listener_config *listener;
	size_t listener_index;

	int client_fd;			/* until a bufferevent owns it */
	struct sockaddr_storage client_sa, local_sa;
	char client_addr[INET6_ADDRSTRLEN];
	unsigned client_port;
	unsigned char *proxy;		/* PROXY header bytes, only in that phase */
	size_t proxy_len;

	struct event *wait;		/* a raw socket wait: PROXY bytes, backend connect */
	struct event *timer;		/* the phase's deadline, or the idle check */
	int link;			/* to the session child, -1 once it is gone */
	struct event *link_ev;

	/* Before login: client (a) <-> child (b); after it: client (a) <-> backend (b). */
	struct engine_pipe front;
	/* During the backend login: backend (a) <-> child (b). */
	struct engine_pipe back;

	int backend_fd;			/* while connecting */
	unsigned backend_index;
	enum mg_protocol backend_protocol;
	size_t backend_try;		/* which resolved address */
	unsigned char *preamble;	/* PROXY header for the backend, while connecting */
	size_t preamble_len;
	char backend_addr[INET6_ADDRSTRLEN + 8];

	char *tls_reply;		/* the child's go-ahead line for STARTTLS */
	size_t tls_reply_len;
	bool tls_ordered;		/* client STARTTLS ordered: waiting for the child's EOF */
	bool backend_tls_ordered;
	bool tail_end;			/* handoff: the child sent all it held */
	struct evbuffer *tail_client;	/* handoff: the child's unread client bytes */
	struct evbuffer *tail_backend;	/* handoff: the child's unread backend bytes */
	struct evbuffer *held_client;	/* handoff: client bytes we had not passed on */
	struct evbuffer *held_backend;	/* handoff: backend bytes we had not passed on */

	bool counted;			/* the master counts it: SESSION_END is owed */
	bool client_eof;		/* relay: the client half-closed */
	char tls_version[16];
	char tls_cipher[64];
	char sni[DNS_NAME_MAX + 1];	/* the client's SNI name, checked; "" for none */
	char user[130];
	uint64_t user_key;		/* the user's hash, from the handoff */
	char route[32];
	int backend_cfg;
	char end_reason[40];

	long long start_ms;
	long long activity;		/* last byte read from either side */
	uint64_t client_in, client_out;	/* every phase */
	uint64_t relayed_in, relayed_out;
};

static void conn_end(struct engine_conn *conn, const char *reason);
static void front_event(struct engine_pipe *pipe, struct pipe_end *end, enum pipe_event event,
			void *arg);
static void back_event(struct engine_pipe *pipe, struct pipe_end *end, enum pipe_event event,
		       void *arg);
static void maybe_start_relay(struct engine_conn *conn);
static struct engine_conn *take_waiting(struct engine_ctx *ctx, uint64_t id);

static void set_phase(struct engine_conn *conn, enum conn_phase next)
{
	log_debug("conn=%llu phase=%s->%s client=%s:%u", (unsigned long long)conn->id,
		  phase_names[conn->phase], phase_names[next], conn->client_addr, conn->client_port);
	conn->phase = next;
}

static void set_leg(struct engine_conn *conn, enum backend_leg next)
{
	log_debug("conn=%llu backend=%s->%s", (unsigned long long)conn->id,
		  leg_names[conn->leg], leg_names[next]);
	conn->leg = next;
}

static void arm_timer(struct engine_conn *conn, long long ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	evtimer_add(conn->timer, &tv);
}

/* The engine's backstop for the whole pre-login phase; the child keeps the exact one. */
static long long prelogin_budget_ms(const struct mg_config *cfg)
{
	return ((long long)cfg->login_timeout + cfg->backend_connect_timeout +
		2LL * cfg->backend_timeout + cfg->auth_timeout + 5) * 1000;
}

static void set_reason(struct engine_conn *conn, const char *reason)
{
	if (conn->end_reason[0] == '\0' && reason != NULL)
		snprintf(conn->end_reason, sizeof(conn->end_reason), "%s", reason);
}

/* ---- the end ------------------------------------------------------------- */

static void free_bev(struct pipe_end *end)
{
	struct bufferevent *bev = pipe_take(end);

	if (bev != NULL)
		bufferevent_free(bev);
}

static void close_link(struct engine_conn *conn)
{
	if (conn->link_ev != NULL)
		event_free(conn->link_ev);
	conn->link_ev = NULL;
	if (conn->link >= 0)
		close(conn->link);
	conn->link = -1;
}

static void log_end(const struct engine_conn *conn)
{
	long long duration = mg_now_ms() - conn->start_ms;
	const struct mg_config *cfg = conn->ctx->cfg;

	log_info("session end client=%s:%u listener=%s tls=%s cipher=%s%s%s user=%s route=%s "
		 "backend=%s bytes_in=%llu bytes_out=%llu relayed_in=%llu relayed_out=%llu "
		 "duration=%lld.%03lld reason=%s",
		 conn->client_addr, conn->client_port, conn->listener->name,
		 conn->tls_version[0] != '\0' ? conn->tls_version : "none",
		 conn->tls_cipher[0] != '\0' ? conn->tls_cipher : "none",
		 conn->sni[0] != '\0' ? " sni=" : "", conn->sni,
		 conn->user[0] != '\0' ? conn->user : "-", conn->route[0] != '\0' ? conn->route : "-",
		 conn->backend_cfg >= 0 ? cfg->backends[conn->backend_cfg].name : "-",
		 (unsigned long long)conn->client_in, (unsigned long long)conn->client_out,
		 (unsigned long long)conn->relayed_in, (unsigned long long)conn->relayed_out,
		 duration / 1000, duration % 1000,
		 conn->end_reason[0] != '\0' ? conn->end_reason : "closed");
}

static void flush_master(evutil_socket_t fd, short what, void *arg);

/*
 * Send to the master without ever blocking the loop: what its channel cannot
 * take now waits, in order, for the channel to become writable. The master
 * reads every engine's channel before it judges requests, so a queue here
 * drains within a round. fd (or -1) is passed along and closed once sent.
 */
static int send_master(struct engine_ctx *ctx, const struct chan_msg *m, int fd)
{
	struct engine_out *o;

	if (ctx->n_out == 0 && chan_send(ctx->master_fd, m, fd >= 0 ? &fd : NULL,
					 fd >= 0 ? 1 : 0) == 0) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (ctx->n_out == 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		log_error("master channel: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (m->len > sizeof(o->data)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (ctx->n_out == ctx->cap_out) {
		size_t cap = ctx->cap_out == 0 ? 16 : ctx->cap_out * 2;
		struct engine_out *grown = realloc(ctx->out, cap * sizeof(*grown));

		if (grown == NULL) {
			if (fd >= 0)
				close(fd);
			return -1;
		}
		ctx->out = grown;
		ctx->cap_out = cap;
	}
	if (ctx->out_ev == NULL)
		ctx->out_ev = event_new(ctx->base, ctx->master_fd, EV_WRITE | EV_PERSIST,
					flush_master, ctx);
	if (ctx->out_ev == NULL || event_add(ctx->out_ev, NULL) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	o = &ctx->out[ctx->n_out++];
	memcpy(o->data, m->data, m->len);
	o->len = m->len;
	o->fd = fd;
	return 0;
}

static void flush_master(evutil_socket_t fd, short what, void *arg)
{
	struct engine_ctx *ctx = arg;
	size_t done = 0;

	while (done < ctx->n_out) {
		struct engine_out *o = &ctx->out[done];
		struct chan_msg m;

		memcpy(m.data, o->data, o->len);
		m.len = o->len;
		m.overflow = false;
		if (chan_send(fd, &m, o->fd >= 0 ? &o->fd : NULL, o->fd >= 0 ? 1 : 0) < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			log_error("master channel: %s", strerror(errno));
		}
		if (o->fd >= 0)
			close(o->fd);
		done++;
	}
	memmove(ctx->out, ctx->out + done, (ctx->n_out - done) * sizeof(*ctx->out));
	ctx->n_out -= done;
	if (ctx->n_out == 0)
		event_del(ctx->out_ev);
}

static void tell_master_end(struct engine_conn *conn)
{
	struct chan_msg m;

	if (!conn->counted)
		return;
	conn->counted = false;
	chan_msg_init(&m, CHAN_SESSION_END);
	chan_put_u64(&m, conn->id);
	send_master(conn->ctx, &m, -1);
}

/* Bytes of the pre-login pipe, before it is taken apart. */
static void count_front(struct engine_conn *conn)
{
	if (conn->phase == PHASE_RELAY) {
		conn->relayed_in += conn->front.a.bytes_in;
		conn->relayed_out += conn->front.b.bytes_in;
	}
	conn->client_in += conn->front.a.bytes_in;
	conn->client_out += conn->front.b.bytes_in;
	conn->front.a.bytes_in = 0;
	conn->front.b.bytes_in = 0;
}

/*
 * Connections awaiting the master's verdict have a list of their own, so a
 * verdict never scans the thousands of relayed (idle) sessions.
 */
static void wait_for_verdict(struct engine_conn *conn)
{
	struct engine_ctx *ctx = conn->ctx;

	conn->waiting = true;
	conn->wait_prev = NULL;
	conn->wait_next = ctx->waiting;
	if (ctx->waiting != NULL)
		ctx->waiting->wait_prev = conn;
	ctx->waiting = conn;
}

static void verdict_arrived(struct engine_conn *conn)
{
	if (!conn->waiting)
		return;
	conn->waiting = false;
	if (conn->wait_prev != NULL)
		conn->wait_prev->wait_next = conn->wait_next;
	else
		conn->ctx->waiting = conn->wait_next;
	if (conn->wait_next != NULL)
		conn->wait_next->wait_prev = conn->wait_prev;
	conn->wait_next = conn->wait_prev = NULL;
}

/* Release everything the connection holds, quietly. */
static void conn_free(struct engine_conn *conn)
{
	struct engine_ctx *ctx = conn->ctx;

	verdict_arrived(conn);
	free_bev(&conn->front.a);
	free_bev(&conn->front.b);
	free_bev(&conn->back.a);
	free_bev(&conn->back.b);
	if (conn->wait != NULL)
		event_free(conn->wait);
	if (conn->timer != NULL)
		event_free(conn->timer);
	close_link(conn);
	if (conn->client_fd >= 0)
		close(conn->client_fd);
	if (conn->backend_fd >= 0)
		close(conn->backend_fd);
	if (conn->tail_client != NULL)
		evbuffer_free(conn->tail_client);
	if (conn->tail_backend != NULL)
		evbuffer_free(conn->tail_backend);
	if (conn->held_client != NULL)
		evbuffer_free(conn->held_client);
	if (conn->held_backend != NULL)
		evbuffer_free(conn->held_backend);
	free(conn->proxy);
	free(conn->preamble);
	free(conn->tls_reply);
	if (conn->prev != NULL)
		conn->prev->next = conn->next;
	else
		ctx->conns = conn->next;
	if (conn->next != NULL)
		conn->next->prev = conn->prev;
	ctx->n_conns--;
	free(conn);
	if (ctx->n_conns == 0 && ctx->on_idle != NULL)
		ctx->on_idle(ctx);
}

/*
 * Past the login deadline without a login, answers the client has not taken
 * (still unsent in the kernel: it does not read) are dropped with a reset,
 * not sent after the deadline. A goodbye that went out is not touched.
 */
static void abort_unread_prelogin(const struct engine_conn *conn)
{
	struct linger reset = { .l_onoff = 1, .l_linger = 0 };
	int fd, unsent = 0;

	if (conn->phase == PHASE_RELAY || conn->phase == PHASE_HANDOFF ||
	    conn->front.a.bev == NULL ||
	    mg_now_ms() < conn->start_ms + (long long)conn->ctx->cfg->login_timeout * 1000)
		return;
	fd = bufferevent_getfd(conn->front.a.bev);
	if (fd >= 0 && ioctl(fd, SIOCOUTQNSD, &unsent) == 0 && unsent > 0)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
}

static void conn_end(struct engine_conn *conn, const char *reason)
{
	abort_unread_prelogin(conn);
	set_reason(conn, reason);
	count_front(conn);
	/*
	 * The master hears first: a client that sees the close and connects
	 * again must find its slot free.
	 */
	tell_master_end(conn);
	log_end(conn);
	conn_free(conn);
}

void conn_end_all(struct engine_ctx *ctx, const char *reason)
{
	while (ctx->conns != NULL)
		conn_end(ctx->conns, reason);
}

/* ---- talking to the child -------------------------------------------------- */

static int send_child(struct engine_conn *conn, struct chan_msg *m, int fd);

/* Is the child in the dialogue with its client (and would read its EOF)? */
static bool child_in_dialogue(const struct engine_conn *conn)
{
	return conn->phase == PHASE_PRELOGIN && !conn->tls_ordered && conn->link >= 0 &&
	       conn->front.b.bev != NULL && (conn->leg == LEG_NONE || conn->leg == LEG_UP);
}

size_t conn_goodbye_all(struct engine_ctx *ctx)
{
	struct engine_conn *conn = ctx->conns, *next;
	size_t told = 0;
	struct chan_msg m;

	chan_msg_init(&m, CHAN_SHUTDOWN);
	for (; conn != NULL; conn = next) {
		next = conn->next;
		/* The message first: the child finds it once it reads the EOF. */
		if (child_in_dialogue(conn) && send_child(conn, &m, -1) == 0) {
			pipe_hold(&conn->front.a, true);
			shutdown(bufferevent_getfd(conn->front.b.bev), SHUT_WR);
			told++;
			continue;
		}
		conn_end(conn, "shutdown");
	}
	return told;
}

static int send_child(struct engine_conn *conn, struct chan_msg *m, int fd)
{
	if (conn->link < 0)
		return -1;
	if (chan_send(conn->link, m, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0) < 0) {
		log_warning("engine conn=%llu: session channel: %s", (unsigned long long)conn->id,
			    strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * A new channel for one side's cleartext: our end as a bufferevent, the
 * child's end returned for a message (the caller closes it after sending).
 */
static struct bufferevent *new_channel(struct engine_conn *conn, int *theirs)
{
	int sp[2];
	struct bufferevent *bev;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp) < 0) {
		log_error("socketpair: %s", strerror(errno));
		return NULL;
	}
	bev = bufferevent_socket_new(conn->ctx->base, sp[0], BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(sp[0]);
		close(sp[1]);
		return NULL;
	}
	*theirs = sp[1];
	return bev;
}

/* Hand the child a fresh channel for one side, in a message of type. */
static int give_channel(struct engine_conn *conn, struct chan_msg *m, struct engine_pipe *pipe)
{
	int theirs = -1;
	struct bufferevent *bev = new_channel(conn, &theirs);
	int rc;

	if (bev == NULL)
		return -1;
	rc = send_child(conn, m, theirs);
	close(theirs);
	if (rc < 0) {
		bufferevent_free(bev);
		return -1;
	}
	pipe_set(pipe, &pipe->b, bev);
	pipe_pump(&pipe->a);
	return 0;
}

/* ---- client TLS ------------------------------------------------------------ */

static struct bufferevent *client_tls_bev(struct engine_conn *conn)
{
	struct ssl_st *ssl;
	struct bufferevent *bev;
	char err[256];

	ssl = tls_server_ssl(servers_get(conn->ctx->servers, conn->listener_index), err,
			     sizeof(err));
	if (ssl == NULL) {
		log_error("%s", err);
		return NULL;
	}
	bev = bufferevent_openssl_socket_new(conn->ctx->base, conn->client_fd, ssl,
					     BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		tls_ssl_free(ssl);
		log_error("cannot create a TLS bufferevent");
		return NULL;
	}
	conn->client_fd = -1;
	/* Mail clients close without close_notify; that is an end, not an error. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static void start_client_tls(struct engine_conn *conn)
{
	struct bufferevent *bev = client_tls_bev(conn);

	if (bev == NULL) {
		conn_end(conn, "tls-failed");
		return;
	}
	set_phase(conn, PHASE_CLIENT_TLS);
	/* Its own bound: a stalled handshake must not hold the connection until the login one. */
	arm_timer(conn, (long long)conn->ctx->cfg->tls_handshake_timeout * 1000);
	/* The child end stays empty until TLS is up: nothing is read before that. */
	pipe_set(&conn->front, &conn->front.a, bev);
}

static void client_tls_up(struct engine_conn *conn)
{
	struct ssl_st *ssl = bufferevent_openssl_get_ssl(conn->front.a.bev);
	struct chan_msg m;
	long long left;

	snprintf(conn->tls_version, sizeof(conn->tls_version), "%s", tls_ssl_version(ssl));
	snprintf(conn->tls_cipher, sizeof(conn->tls_cipher), "%s", tls_ssl_cipher(ssl));
	/* Checked here, so the child routes and logs nothing but a host name. */
	tls_ssl_server_name(ssl, conn->sni);
	/* Back to what is left of the pre-login backstop. */
	left = conn->start_ms + prelogin_budget_ms(conn->ctx->cfg) - mg_now_ms();
	arm_timer(conn, left > 0 ? left : 1);
	chan_msg_init(&m, CHAN_TLS_UP);
	chan_put_str(&m, conn->tls_version);
	chan_put_str(&m, conn->tls_cipher);
	chan_put_str(&m, conn->sni);
	set_phase(conn, PHASE_PRELOGIN);
	if (give_channel(conn, &m, &conn->front) < 0)
		conn_end(conn, "session-failed");
}

static void client_tls_failed(struct engine_conn *conn, struct pipe_end *end)
{
	char err[256];

	tls_ssl_failure(bufferevent_openssl_get_ssl(end->bev), false, end->error, err,
			sizeof(err));
	log_info("tls handshake failed client=%s:%u listener=%s error=\"%s\"", conn->client_addr,
		 conn->client_port, conn->listener->name, err);
	conn_end(conn, "tls-failed");
}

/*
 * STARTTLS ordered and the child's last bytes forwarded: send the go-ahead,
 * drop whatever the client pipelined, and handshake once the line is out.
 */
static void starttls_flush(struct engine_conn *conn)
{
	struct bufferevent *client = conn->front.a.bev;

	conn->tls_ordered = false;
	free_bev(&conn->front.b);
	evbuffer_drain(bufferevent_get_input(client), evbuffer_get_length(bufferevent_get_input(client)));
	bufferevent_write(client, conn->tls_reply, conn->tls_reply_len);
	conn->client_out += conn->tls_reply_len;
	free(conn->tls_reply);
	conn->tls_reply = NULL;
	set_phase(conn, PHASE_STARTTLS);
	pipe_watch_drain(&conn->front.a);
}

static void starttls_switch(struct engine_conn *conn)
{
	struct bufferevent *plain;

	count_front(conn);
	plain = pipe_take(&conn->front.a);
	/* The socket stays: only the cleartext bufferevent (and what it read) goes. */
	conn->client_fd = bufferevent_getfd(plain);
	bufferevent_setfd(plain, -1);
	bufferevent_free(plain);
	start_client_tls(conn);
}

/* ---- the backend leg ------------------------------------------------------- */

static void backend_failed(struct engine_conn *conn, const char *why)
{
	struct chan_msg m;

	log_debug("conn=%llu backend failed: %s", (unsigned long long)conn->id, why);
	free_bev(&conn->back.a);
	free_bev(&conn->back.b);
	if (conn->backend_fd >= 0)
		close(conn->backend_fd);
	conn->backend_fd = -1;
	if (conn->wait != NULL)
		event_del(conn->wait);
	free(conn->preamble);
	conn->preamble = NULL;
	set_leg(conn, LEG_NONE);
	chan_msg_init(&m, CHAN_BACKEND_FAILED);
	chan_put_str(&m, why);
	if (send_child(conn, &m, -1) < 0)
		conn_end(conn, "session-failed");
}

static void backend_up(struct engine_conn *conn, struct bufferevent *bev)
{
	struct chan_msg m;

	set_leg(conn, LEG_UP);
	pipe_set(&conn->back, &conn->back.a, bev);
	chan_msg_init(&m, CHAN_BACKEND_UP);
	chan_put_str(&m, conn->backend_addr);
	if (give_channel(conn, &m, &conn->back) < 0)
		conn_end(conn, "session-failed");
}

static struct bufferevent *backend_tls_bev(struct engine_conn *conn, int fd)
{
	struct mg_tls_client *tls = conn->ctx->backends[conn->backend_index].tls;
	struct bufferevent *bev;
	struct ssl_st *ssl;
	char err[256];
	struct timeval tv = { .tv_sec = conn->ctx->cfg->backend_timeout };

	ssl = tls != NULL ? tls_client_ssl(tls, err, sizeof(err)) : NULL;
	if (ssl == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(conn->ctx->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		tls_ssl_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_set_timeouts(bev, &tv, &tv);
	return bev;
}

static void backend_start_tls_leg(struct engine_conn *conn, int fd)
{
	struct bufferevent *bev = backend_tls_bev(conn, fd);

	if (bev == NULL) {
		close(fd);
		backend_failed(conn, "cannot start TLS towards the backend");
		return;
	}
	set_leg(conn, LEG_TLS);
	pipe_set(&conn->back, &conn->back.a, bev);
}

static void backend_connected(struct engine_conn *conn)
{
	const struct mg_backend_config *b = &conn->ctx->cfg->backends[conn->backend_index];
	int fd = conn->backend_fd;
	int one = 1;

	conn->backend_fd = -1;
	/* Without it the first reply after a TLS 1.3 handshake waits for a delayed ACK. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* An empty socket takes a PROXY header whole. */
	if (conn->preamble_len > 0 &&
	    send(fd, conn->preamble, conn->preamble_len, MSG_NOSIGNAL) != (ssize_t)conn->preamble_len) {
		close(fd);
		backend_failed(conn, "cannot send the client address header");
		return;
	}
	free(conn->preamble);
	conn->preamble = NULL;
	if (b->tls == MG_BACKEND_TLS_IMPLICIT) {
		backend_start_tls_leg(conn, fd);
		return;
	}
	{
		struct bufferevent *bev = bufferevent_socket_new(conn->ctx->base, fd,
								 BEV_OPT_CLOSE_ON_FREE);

		if (bev == NULL) {
			close(fd);
			backend_failed(conn, "out of memory");
			return;
		}
		backend_up(conn, bev);
	}
}

static void try_backend_address(struct engine_conn *conn, const char *last_error);

static void on_backend_connect(evutil_socket_t fd, short what, void *arg)
{
	struct engine_conn *conn = arg;
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	char why[128];

	if (what & EV_TIMEOUT) {
		snprintf(why, sizeof(why), "connect %s: timed out", conn->backend_addr);
	} else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr != 0) {
		snprintf(why, sizeof(why), "connect %s: %s", conn->backend_addr,
			 strerror(soerr != 0 ? soerr : errno));
	} else {
		event_free(conn->wait);
		conn->wait = NULL;
		backend_connected(conn);
		return;
	}
	event_free(conn->wait);
	conn->wait = NULL;
	close(conn->backend_fd);
	conn->backend_fd = -1;
	conn->backend_try++;
	try_backend_address(conn, why);
}

/* Each resolved address in turn, each within the connect timeout. */
static void try_backend_address(struct engine_conn *conn, const char *last_error)
{
	const struct engine_backend *eb = &conn->ctx->backends[conn->backend_index];
	enum mg_protocol proto = conn->backend_protocol;
	struct timeval tv = { .tv_sec = conn->ctx->cfg->backend_connect_timeout };

	while (conn->backend_try < eb->n_addr[proto]) {
		const struct sockaddr *sa =
			(const struct sockaddr *)&eb->addr[proto][conn->backend_try];
		int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		netaddr_format(sa, conn->backend_addr, sizeof(conn->backend_addr));
		if (fd >= 0 && (connect(fd, sa, eb->addrlen[proto][conn->backend_try]) == 0 ||
				errno == EINPROGRESS)) {
			conn->backend_fd = fd;
			conn->wait = event_new(conn->ctx->base, fd, EV_WRITE, on_backend_connect, conn);
			if (conn->wait != NULL && event_add(conn->wait, &tv) == 0)
				return;
			backend_failed(conn, "out of memory");
			return;
		}
		if (fd >= 0)
			close(fd);
		conn->backend_try++;
	}
	backend_failed(conn, last_error != NULL ? last_error : "no address to connect to");
}

static void child_backend_connect(struct engine_conn *conn, struct chan_reader *r)
{
	const struct mg_config *cfg = conn->ctx->cfg;
	unsigned index = chan_get_u16(r);
	unsigned protocol = chan_get_u8(r);
	const unsigned char *preamble;
	size_t len;

	chan_get_bytes(r, &preamble, &len, PROXY_HEADER_MAX);
	if (!chan_reader_done(r) || index >= cfg->n_backends || protocol >= MG_PROTO_COUNT ||
	    conn->leg == LEG_CONNECTING || conn->leg == LEG_TLS || conn->phase != PHASE_PRELOGIN) {
		conn_end(conn, "session-protocol-error");
		return;
	}
	/* A login that failed leaves its backend connection: the next one starts afresh. */
	free_bev(&conn->back.a);
	free_bev(&conn->back.b);
	conn->backend_tls_ordered = false;
	set_leg(conn, LEG_NONE);
	conn->backend_index = index;
	conn->backend_protocol = (enum mg_protocol)protocol;
	conn->backend_try = 0;
	conn->preamble_len = len;
	if (len > 0) {
		conn->preamble = malloc(len);
		if (conn->preamble == NULL) {
			backend_failed(conn, "out of memory");
			return;
		}
		memcpy(conn->preamble, preamble, len);
	}
	set_leg(conn, LEG_CONNECTING);
	try_backend_address(conn, NULL);
}

/* The backend agreed to STARTTLS and the child's last bytes are out: handshake. */
static void backend_starttls_switch(struct engine_conn *conn)
{
	struct bufferevent *plain = pipe_take(&conn->back.a);
	int fd;

	free_bev(&conn->back.b);
	fd = bufferevent_getfd(plain);
	bufferevent_setfd(plain, -1);
	/* What the backend sent in the clear goes with the old bufferevent. */
	bufferevent_free(plain);
	backend_start_tls_leg(conn, fd);
}

static void backend_tls_up(struct engine_conn *conn)
{
	struct chan_msg m;

	log_debug("conn=%llu backend tls up version=%s resumed=%s", (unsigned long long)conn->id,
		  tls_ssl_version(bufferevent_openssl_get_ssl(conn->back.a.bev)),
		  tls_ssl_resumed(bufferevent_openssl_get_ssl(conn->back.a.bev)) ? "yes" : "no");
	if (conn->leg == LEG_TLS && conn->backend_tls_ordered) {
		conn->backend_tls_ordered = false;
		set_leg(conn, LEG_UP);
		chan_msg_init(&m, CHAN_BACKEND_TLS_UP);
		if (give_channel(conn, &m, &conn->back) < 0)
			conn_end(conn, "session-failed");
		return;
	}
	backend_up(conn, pipe_take(&conn->back.a));
}

/* The backend's output drained after the child's order: now the handshake. */
static void back_drained(struct engine_conn *conn)
{
	if (conn->leg == LEG_STARTTLS && conn->back.b.eof)
		backend_starttls_switch(conn);
}

static void back_event(struct engine_pipe *pipe, struct pipe_end *end, enum pipe_event event,
		       void *arg)
{
	struct engine_conn *conn = arg;
	char err[256];

	if (end == &pipe->a) {
		switch (event) {
		case PIPE_CONNECTED:
			backend_tls_up(conn);
			return;
		case PIPE_ERROR:
		case PIPE_WRITE_FAILED:
		case PIPE_EOF:
			/*
			 * During the backend handshake any of the three ends it: a
			 * backend that refuses with an alert shows up to libevent as
			 * a failed write (or an EOF), and the child waits for the
			 * handshake's outcome, not for bytes.
			 */
			if (conn->leg == LEG_TLS) {
				tls_ssl_failure(bufferevent_openssl_get_ssl(end->bev), true, end->error,
						err, sizeof(err));
				backend_failed(conn, err);
				return;
			}
			/* Otherwise each ends the backend's side as an EOF does. */
			if (conn->phase == PHASE_HANDOFF)
				return;	/* the relay will see it */
			/* The child reads EOF on its backend channel and answers its client. */
			if (pipe->b.bev != NULL)
				shutdown(bufferevent_getfd(pipe->b.bev), SHUT_WR);
			return;
		case PIPE_DRAINED:
			back_drained(conn);
			return;
		}
		return;
	}
	/* the child's end of the backend channel (an error is an end, as above) */
	switch (event) {
	case PIPE_ERROR:
	case PIPE_EOF:
		if (conn->leg == LEG_STARTTLS) {
			pipe_watch_drain(&pipe->a);
			return;
		}
		if (conn->phase == PHASE_HANDOFF) {
			free_bev(&pipe->b);
			maybe_start_relay(conn);
			return;
		}
		return;
	case PIPE_DRAINED:
	case PIPE_WRITE_FAILED:		/* the child is done with the backend */
		return;
	case PIPE_CONNECTED:
		conn_end(conn, "session-failed");
		return;
	}
}

/* ---- handoff and relay ------------------------------------------------------ */

/* Does p[0..strlen(word)) spell word, in any case (IMAP's rule; POP3 clients vary too)? */
static bool spells(const unsigned char *p, const char *word)
{
	return starts_with_word((const char *)p, strlen(word), word, WORD_ANY_CASE);
}

/*
 * Was the last line the client sent after login its goodbye: "tag LOGOUT"
 * (IMAP) or "QUIT" (POP3)? Then a backend that closes is answering it, and
 * the session ended with a logout. Only the last bytes are looked at (the
 * pipe's tail), never parsed as commands: a line that merely ends in
 * " LOGOUT" counts too, which is harmless for a log line.
 */
static bool client_said_goodbye(const struct engine_conn *conn)
{
	const struct pipe_end *client = &conn->front.a;
	const unsigned char *t = client->tail;
	size_t len = client->tail_len;
	bool whole = client->tail_len < PIPE_TAIL;	/* everything it sent after login */

	if (len == 0 || t[len - 1] != '\n')
		return false;
	len -= len >= 2 && t[len - 2] == '\r' ? 2 : 1;
	if (conn->listener->protocol == MG_PROTO_POP3)
		return len >= 4 && spells(t + len - 4, "QUIT") &&
		       (len == 4 ? whole : t[len - 5] == '\n');
	/* IMAP: a tag, a space, LOGOUT. */
	return len >= 8 && t[len - 7] == ' ' && spells(t + len - 6, "LOGOUT") &&
	       t[len - 8] != ' ' && t[len - 8] != '\n';
}

/* The backend closed the relay: why the session ends. */
static const char *backend_close_reason(const struct engine_conn *conn)
{
	if (client_said_goodbye(conn))
		return "logout";
	return conn->client_eof ? "client-closed" : "backend-closed";
}

static void relay_event(struct engine_conn *conn, struct pipe_end *end, enum pipe_event event)
{
	struct pipe_end *client = &conn->front.a, *backend = &conn->front.b;

	switch (event) {
	case PIPE_EOF:
		if (end == client) {
			/* The backend still gets what the client sent, and may answer it. */
			conn->client_eof = true;
			pipe_watch_drain(backend);
			arm_timer(conn, (long long)conn->ctx->cfg->backend_timeout * 1000);
			return;
		}
		/* The backend is done: deliver its last words, then end. */
		set_reason(conn, backend_close_reason(conn));
		pipe_watch_drain(client);
		return;
	case PIPE_DRAINED:
		if (end == backend && conn->client_eof) {
			/* A cleartext backend learns at once; a TLS one answers and closes itself. */
			if (conn->ctx->backends[conn->backend_index].tls == NULL && backend->bev != NULL)
				shutdown(bufferevent_getfd(backend->bev), SHUT_WR);
			return;
		}
		if (end == client && backend->eof) {
			conn_end(conn, backend_close_reason(conn));
			return;
		}
		return;
	case PIPE_ERROR:
	case PIPE_WRITE_FAILED:
		if (end == client)
			conn_end(conn, conn->client_eof ? "client-closed" : "client-error");
		else
			conn_end(conn, "backend-error");
		return;
	case PIPE_CONNECTED:
		return;
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg);

/* Everything the child held is here and its writes are forwarded: relay. */
static void maybe_start_relay(struct engine_conn *conn)
{
	struct bufferevent *client, *backend;
	unsigned char said[PIPE_TAIL];	/* the last bytes of the client's the child held */
	size_t said_len;

	if (conn->phase != PHASE_HANDOFF || !conn->tail_end || conn->front.b.bev != NULL ||
	    conn->back.b.bev != NULL)
		return;
	close_link(conn);
	count_front(conn);
	client = pipe_take(&conn->front.a);
	backend = pipe_take(&conn->back.a);
	log_debug("conn=%llu relay starts: held for the backend %zu+%zu, for the client %zu+%zu",
		  (unsigned long long)conn->id, evbuffer_get_length(conn->tail_client),
		  evbuffer_get_length(conn->held_client), evbuffer_get_length(conn->tail_backend),
		  evbuffer_get_length(conn->held_backend));
	/* Order: what the child held, what we had not passed to it, what we read since. */
	evbuffer_add_buffer(bufferevent_get_output(backend), conn->tail_client);
	evbuffer_add_buffer(bufferevent_get_output(backend), conn->held_client);
	evbuffer_add_buffer(bufferevent_get_output(client), conn->tail_backend);
	evbuffer_add_buffer(bufferevent_get_output(client), conn->held_backend);
	conn->relayed_in += evbuffer_get_length(bufferevent_get_output(backend));
	conn->relayed_out += evbuffer_get_length(bufferevent_get_output(client));
	/* The client's tail starts with them (a pipelined LOGOUT counts too). */
	said_len = pipe_copy_last(bufferevent_get_output(backend), said, sizeof(said));
	evbuffer_free(conn->tail_client);
	evbuffer_free(conn->tail_backend);
	evbuffer_free(conn->held_client);
	evbuffer_free(conn->held_backend);
	conn->tail_client = conn->tail_backend = NULL;
	conn->held_client = conn->held_backend = NULL;
	set_phase(conn, PHASE_RELAY);
	conn->activity = mg_now_ms();
	pipe_init(&conn->front, client, backend, front_event, conn, &conn->activity);
	pipe_prepend_tail(&conn->front.a, said, said_len);
	pipe_init(&conn->back, NULL, NULL, back_event, conn, NULL);
	arm_timer(conn, (long long)conn->ctx->cfg->session_timeout * 1000);
}

/*
 * Copy what a channel's bufferevent has queued but not written. (Its output
 * cannot be moved from outside: libevent keeps the start of an output
 * buffer frozen.) The copy replaces it: the caller shuts the channel.
 */
static int take_unsent(struct bufferevent *bev, struct evbuffer *into)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	struct evbuffer_iovec vec[16];
	struct evbuffer_ptr pos;
	size_t left = evbuffer_get_length(out);

	evbuffer_ptr_set(out, &pos, 0, EVBUFFER_PTR_SET);
	while (left > 0) {
		int n = evbuffer_peek(out, (ev_ssize_t)left, &pos, vec, 16);

		if (n <= 0)
			return -1;
		if (n > 16)
			n = 16;
		for (int i = 0; i < n && left > 0; i++) {
			size_t len = vec[i].iov_len < left ? vec[i].iov_len : left;

			if (evbuffer_add(into, vec[i].iov_base, len) < 0)
				return -1;
			left -= len;
			evbuffer_ptr_set(out, &pos, len, EVBUFFER_PTR_ADD);
		}
	}
	return 0;
}

/* ---- the login penalty (master_penalty.h): reports up, delays down ----------- */

static void login_succeeded(struct engine_conn *conn)
{
	struct chan_msg m;

	chan_msg_init(&m, CHAN_LOGIN_SUCCEEDED);
	chan_put_u64(&m, conn->id);
	chan_put_sockaddr(&m, &conn->client_sa);
	chan_put_u64(&m, conn->user_key);
	send_master(conn->ctx, &m, -1);
}

/*
 * A question of the child's for the master (ask: its message, with the id
 * and the client's address in it), answered through conn_penalty or
 * conn_userip. With an earlier one still in flight (the child gave up
 * waiting for it), the child gets busy at once instead: never two
 * questions at a time, and the late answer is dropped by the child.
 */
static void ask_master(struct engine_conn *conn, struct chan_msg *ask, struct chan_msg *busy)
{
	if (conn->waiting) {
		if (send_child(conn, busy, -1) < 0)
			conn_end(conn, "session-failed");
		return;
	}
	wait_for_verdict(conn);
	/* Unsent, the child gives up waiting and goes on without the answer. */
	if (send_master(conn->ctx, ask, -1) < 0)
		verdict_arrived(conn);
}

/* The child's failed login, for the penalty: busy means no delay this time. */
static void child_login_failed(struct engine_conn *conn, struct chan_reader *r)
{
	uint64_t user = chan_get_u64(r), password = chan_get_u64(r);
	struct chan_msg ask, busy;

	if (!chan_reader_done(r) || conn->phase != PHASE_PRELOGIN) {
		conn_end(conn, "session-protocol-error");
		return;
	}
	chan_msg_init(&ask, CHAN_PENALTY_ASK);
	chan_put_u64(&ask, conn->id);
	chan_put_sockaddr(&ask, &conn->client_sa);
	chan_put_u64(&ask, user);
	chan_put_u64(&ask, password);
	chan_msg_init(&busy, CHAN_PENALTY);
	chan_put_u32(&busy, 0);
	chan_put_u8(&busy, 0);
	ask_master(conn, &ask, &busy);
}

/* May this user log in from here (max_sessions_per_user_ip)? Busy lets the login try. */
static void child_userip_check(struct engine_conn *conn, struct chan_reader *r)
{
	uint64_t user = chan_get_u64(r);
	struct chan_msg ask, busy;

	if (!chan_reader_done(r) || conn->phase != PHASE_PRELOGIN) {
		conn_end(conn, "session-protocol-error");
		return;
	}
	chan_msg_init(&ask, CHAN_USERIP_ASK);
	chan_put_u64(&ask, conn->id);
	chan_put_sockaddr(&ask, &conn->client_sa);
	chan_put_u64(&ask, user);
	chan_msg_init(&busy, CHAN_USERIP);
	chan_put_u8(&busy, 1);
	ask_master(conn, &ask, &busy);
}

void conn_userip(struct engine_ctx *ctx, uint64_t id, uint8_t allowed)
{
	struct engine_conn *conn = take_waiting(ctx, id);
	struct chan_msg m;

	if (conn == NULL || conn->phase != PHASE_PRELOGIN)
		return;
	chan_msg_init(&m, CHAN_USERIP);
	chan_put_u8(&m, allowed);
	if (send_child(conn, &m, -1) < 0)
		conn_end(conn, "session-failed");
}

void conn_penalty(struct engine_ctx *ctx, uint64_t id, uint32_t delay_ms, uint8_t flags)
{
	struct engine_conn *conn = take_waiting(ctx, id);
	struct chan_msg m;

	if (conn == NULL || conn->phase != PHASE_PRELOGIN)
		return;
	chan_msg_init(&m, CHAN_PENALTY);
	chan_put_u32(&m, delay_ms);
	chan_put_u8(&m, flags);
	if (send_child(conn, &m, -1) < 0)
		conn_end(conn, "session-failed");
}

static void child_handoff(struct engine_conn *conn, struct chan_reader *r)
{
	struct bufferevent *cdata = conn->front.b.bev, *bdata = conn->back.b.bev;
	unsigned backend;

	chan_get_str(r, conn->user, sizeof(conn->user));
	chan_get_str(r, conn->route, sizeof(conn->route));
	backend = chan_get_u16(r);
	conn->user_key = chan_get_u64(r);
	if (!chan_reader_done(r) || conn->phase != PHASE_PRELOGIN || conn->leg != LEG_UP ||
	    backend >= conn->ctx->cfg->n_backends || cdata == NULL || bdata == NULL) {
		conn_end(conn, "session-protocol-error");
		return;
	}
	conn->backend_cfg = (int)backend;
	set_phase(conn, PHASE_HANDOFF);
	login_succeeded(conn);
	conn->tail_client = evbuffer_new();
	conn->tail_backend = evbuffer_new();
	conn->held_client = evbuffer_new();
	conn->held_backend = evbuffer_new();
	if (conn->tail_client == NULL || conn->tail_backend == NULL ||
	    conn->held_client == NULL || conn->held_backend == NULL ||
	    take_unsent(cdata, conn->held_client) < 0 || take_unsent(bdata, conn->held_backend) < 0) {
		conn_end(conn, "out-of-memory");
		return;
	}
	/* Stop feeding the child; what it was not given yet goes straight on later. */
	pipe_hold(&conn->front.a, true);
	pipe_hold(&conn->back.a, true);
	/*
	 * The child drains its channels up to our EOF and sends what it read as
	 * TAILs; with our side shut, nothing we still queued for it can reach it.
	 */
	shutdown(bufferevent_getfd(cdata), SHUT_WR);
	shutdown(bufferevent_getfd(bdata), SHUT_WR);
	if (conn->front.b.eof)
		free_bev(&conn->front.b);
	if (conn->back.b.eof)
		free_bev(&conn->back.b);
}

static void child_tail(struct engine_conn *conn, struct chan_reader *r, struct evbuffer *to)
{
	const unsigned char *p;
	size_t len;

	chan_get_bytes(r, &p, &len, CHAN_CHUNK_MAX);
	if (!chan_reader_done(r) || conn->phase != PHASE_HANDOFF || conn->tail_end ||
	    evbuffer_get_length(to) + len > 4 * 1024 * 1024) {
		conn_end(conn, "session-protocol-error");
		return;
	}
	evbuffer_add(to, p, len);
}

/* ---- the child's last word before login ----------------------------------- */

static void closing_flushed(struct engine_conn *conn)
{
	conn_end(conn, NULL);
}

/*
 * How long the child's last lines may take to reach the client: never past
 * the login deadline (and a grace), so a client that does not read cannot
 * keep its connection by leaving our answers queued.
 */
static long long closing_flush_ms(const struct engine_conn *conn)
{
	long long left = conn->start_ms + (long long)conn->ctx->cfg->login_timeout * 1000 +
			 CLOSING_GRACE_MS - mg_now_ms();

	if (left < CLOSING_GRACE_MS)
		left = CLOSING_GRACE_MS;
	return left < CLOSING_FLUSH_MS ? left : CLOSING_FLUSH_MS;
}

static void child_close(struct engine_conn *conn, struct chan_reader *r)
{
	unsigned backend;

	chan_get_str(r, conn->user, sizeof(conn->user));
	chan_get_str(r, conn->route, sizeof(conn->route));
	backend = chan_get_u16(r);
	chan_get_str(r, conn->end_reason, sizeof(conn->end_reason));
	if (!chan_reader_done(r)) {
		conn_end(conn, "session-protocol-error");
		return;
	}
	conn->backend_cfg = backend < conn->ctx->cfg->n_backends ? (int)backend : -1;
	close_link(conn);
	free_bev(&conn->back.a);
	free_bev(&conn->back.b);
	set_phase(conn, PHASE_CLOSING);
	arm_timer(conn, closing_flush_ms(conn));
	if (conn->front.a.bev == NULL) {
		conn_end(conn, NULL);
		return;
	}
	pipe_hold(&conn->front.a, true);
	/* The child shut its side down first: its last line is in the channel. */
	if (conn->front.b.bev == NULL || conn->front.b.eof)
		pipe_watch_drain(&conn->front.a);
}

static void child_start_tls(struct engine_conn *conn, struct chan_reader *r)
{
	const unsigned char *reply;
	size_t len;

	chan_get_bytes(r, &reply, &len, CHAN_REPLY_MAX);
	if (!chan_reader_done(r) || conn->phase != PHASE_PRELOGIN || conn->tls_version[0] != '\0' ||
	    conn->listener->tls != MG_LISTEN_STARTTLS || conn->front.b.bev == NULL) {
		conn_end(conn, "session-protocol-error");
		return;
	}
	conn->tls_reply = malloc(len > 0 ? len : 1);
	if (conn->tls_reply == NULL) {
		conn_end(conn, "out-of-memory");
		return;
	}
	memcpy(conn->tls_reply, reply, len);
	conn->tls_reply_len = len;
	conn->tls_ordered = true;
	/* Nothing more from the client goes to the child; what arrives now is dropped. */
	pipe_hold(&conn->front.a, true);
	if (conn->front.b.eof)
		starttls_flush(conn);
}

static void child_backend_start_tls(struct engine_conn *conn, struct chan_reader *r)
{
	if (!chan_reader_done(r) || conn->leg != LEG_UP || conn->back.b.bev == NULL ||
	    conn->ctx->backends[conn->backend_index].tls == NULL) {
		conn_end(conn, "session-protocol-error");
		return;
	}
	conn->backend_tls_ordered = true;
	set_leg(conn, LEG_STARTTLS);
	pipe_hold(&conn->back.a, true);
	if (conn->back.b.eof)
		pipe_watch_drain(&conn->back.a);
}

static void on_link(evutil_socket_t fd, short what, void *arg)
{
	struct engine_conn *conn = arg;
	unsigned char buf[CHAN_MSG_MAX];
	int fds[CHAN_MAX_FDS];
	size_t nfds = 0;
	struct chan_reader r;
	long n = chan_recv(fd, buf, fds, &nfds);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		/* The child is gone without a last word: it crashed or was killed. */
		conn_end(conn, conn->phase == PHASE_CLIENT_TLS ? "login-timeout" : "session-failed");
		return;
	}
	if (nfds > 0) {
		chan_close_fds(fds, nfds);
		conn_end(conn, "session-protocol-error");
		return;
	}
	chan_reader_init(&r, buf + 1, (size_t)n - 1);
	switch ((enum chan_type)buf[0]) {
	case CHAN_START_TLS:
		child_start_tls(conn, &r);
		return;
	case CHAN_BACKEND_CONNECT:
		child_backend_connect(conn, &r);
		return;
	case CHAN_BACKEND_START_TLS:
		child_backend_start_tls(conn, &r);
		return;
	case CHAN_HANDOFF:
		child_handoff(conn, &r);
		return;
	case CHAN_TAIL_CLIENT:
		child_tail(conn, &r, conn->tail_client);
		return;
	case CHAN_TAIL_BACKEND:
		child_tail(conn, &r, conn->tail_backend);
		return;
	case CHAN_TAIL_END:
		if (!chan_reader_done(&r) || conn->phase != PHASE_HANDOFF) {
			conn_end(conn, "session-protocol-error");
			return;
		}
		conn->tail_end = true;
		maybe_start_relay(conn);
		return;
	case CHAN_CLOSE:
		child_close(conn, &r);
		return;
	case CHAN_LOGIN_FAILED:
		child_login_failed(conn, &r);
		return;
	case CHAN_USERIP_CHECK:
		child_userip_check(conn, &r);
		return;
	default:
		break;
	}
	conn_end(conn, "session-protocol-error");
}

/* ---- the client's pipe ------------------------------------------------------ */

static void front_event(struct engine_pipe *pipe, struct pipe_end *end, enum pipe_event event,
			void *arg)
{
	struct engine_conn *conn = arg;

	if (conn->phase == PHASE_RELAY) {
		relay_event(conn, end, event);
		return;
	}
	if (end == &pipe->a) {
		/* the client */
		switch (event) {
		case PIPE_CONNECTED:
			client_tls_up(conn);
			return;
		case PIPE_DRAINED:
			if (conn->phase == PHASE_STARTTLS)
				starttls_switch(conn);
			else if (conn->phase == PHASE_CLOSING)
				closing_flushed(conn);
			return;
		case PIPE_ERROR:
		case PIPE_WRITE_FAILED:
			if (conn->phase == PHASE_CLIENT_TLS) {
				client_tls_failed(conn, end);
				return;
			}
			conn_end(conn, "client-error");
			return;
		case PIPE_EOF:
			if (conn->phase == PHASE_CLIENT_TLS) {
				client_tls_failed(conn, end);
				return;
			}
			if (conn->phase == PHASE_HANDOFF)
				return;	/* the relay sees it */
			if (conn->phase == PHASE_CLOSING || conn->phase == PHASE_STARTTLS) {
				conn_end(conn, "client-closed");
				return;
			}
			/* The child reads EOF and ends the session. */
			if (pipe->b.bev != NULL)
				shutdown(bufferevent_getfd(pipe->b.bev), SHUT_WR);
			return;
		}
		return;
	}
	/*
	 * The child's end of the client channel. A child that closes with bytes
	 * unread gives ECONNRESET after its last bytes: an end like any other
	 * (a child that dies shows on its link).
	 */
	switch (event) {
	case PIPE_ERROR:
	case PIPE_EOF:
		if (conn->tls_ordered && conn->phase == PHASE_PRELOGIN) {
			starttls_flush(conn);
			return;
		}
		if (conn->phase == PHASE_HANDOFF) {
			free_bev(&pipe->b);
			maybe_start_relay(conn);
			return;
		}
		if (conn->phase == PHASE_CLOSING)
			pipe_watch_drain(&pipe->a);
		return;
	case PIPE_WRITE_FAILED:		/* the child stopped reading: its EOF follows */
	case PIPE_DRAINED:
	case PIPE_CONNECTED:
		return;
	}
}

/* ---- deadlines ---------------------------------------------------------------- */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct engine_conn *conn = arg;
	long long idle_ms = (long long)conn->ctx->cfg->session_timeout * 1000;

	if (conn->phase == PHASE_CLIENT_TLS) {
		log_info("tls handshake timed out client=%s:%u listener=%s", conn->client_addr,
			 conn->client_port, conn->listener->name);
		conn_end(conn, "tls-timeout");
		return;
	}
	if (conn->phase != PHASE_RELAY) {
		conn_end(conn, conn->phase == PHASE_CLOSING ? "write-timeout" : "login-timeout");
		return;
	}
	if (conn->client_eof) {
		conn_end(conn, "client-closed");
		return;
	}
	/* One timer per session, re-armed lazily: reads only stamp the time. */
	if (mg_now_ms() - conn->activity >= idle_ms) {
		conn_end(conn, "idle-timeout");
		return;
	}
	arm_timer(conn, conn->activity + idle_ms - mg_now_ms());
}

/* ---- accept, PROXY, grant ------------------------------------------------------ */

static void request_session(struct engine_conn *conn)
{
	struct chan_msg m;
	int sp[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp) < 0) {
		log_error("socketpair: %s", strerror(errno));
		conn_end(conn, "out-of-resources");
		return;
	}
	conn->link = sp[0];
	chan_msg_init(&m, CHAN_SESSION_REQUEST);
	chan_put_u64(&m, conn->id);
	chan_put_u16(&m, (uint16_t)conn->listener_index);
	chan_put_sockaddr(&m, &conn->client_sa);
	set_phase(conn, PHASE_GRANT);
	wait_for_verdict(conn);
	/* The child's end of the link travels with the request (and is closed here once sent). */
	if (send_master(conn->ctx, &m, sp[1]) < 0)
		conn_end(conn, "master-gone");
}

/* The connection awaiting this verdict, now off the waiting list. */
static struct engine_conn *take_waiting(struct engine_ctx *ctx, uint64_t id)
{
	for (struct engine_conn *c = ctx->waiting; c != NULL; c = c->wait_next) {
		if (c->id == id) {
			verdict_arrived(c);
			return c;
		}
	}
	return NULL;
}

void conn_granted(struct engine_ctx *ctx, uint64_t id)
{
	struct engine_conn *conn = take_waiting(ctx, id);
	struct chan_msg m;
	bool implicit;

	if (conn == NULL || conn->phase != PHASE_GRANT)
		return;
	conn->counted = true;
	implicit = conn->listener->tls == MG_LISTEN_IMPLICIT;
	conn->link_ev = event_new(ctx->base, conn->link, EV_READ | EV_PERSIST, on_link, conn);
	if (conn->link_ev == NULL || event_add(conn->link_ev, NULL) < 0) {
		conn_end(conn, "out-of-memory");
		return;
	}
	chan_msg_init(&m, CHAN_HELLO);
	chan_put_u16(&m, (uint16_t)conn->listener_index);
	chan_put_sockaddr(&m, &conn->client_sa);
	chan_put_sockaddr(&m, &conn->local_sa);
	chan_put_u8(&m, implicit ? 0 : 1);
	if (implicit) {
		if (send_child(conn, &m, -1) < 0) {
			conn_end(conn, "session-failed");
			return;
		}
		start_client_tls(conn);
		return;
	}
	{
		struct bufferevent *bev = bufferevent_socket_new(ctx->base, conn->client_fd,
								 BEV_OPT_CLOSE_ON_FREE);

		if (bev == NULL) {
			conn_end(conn, "out-of-memory");
			return;
		}
		conn->client_fd = -1;
		pipe_set(&conn->front, &conn->front.a, bev);
	}
	set_phase(conn, PHASE_PRELOGIN);
	if (give_channel(conn, &m, &conn->front) < 0)
		conn_end(conn, "session-failed");
}

void conn_refused(struct engine_ctx *ctx, uint64_t id, unsigned verdict)
{
	struct engine_conn *conn = take_waiting(ctx, id);
	const struct mg_protocol_ops *ops;
	const char *text;

	if (conn == NULL || conn->phase != PHASE_GRANT)
		return;
	if (verdict == CONNLIMIT_BANNED) {
		/* A guesser's address: no reply, no TLS work, nothing for it to learn. */
		log_info("connection refused client=%s listener=%s reason=banned", conn->client_addr,
			 conn->listener->name);
		conn_free(conn);
		return;
	}
	ops = protocol_ops(conn->listener->protocol);
	text = verdict == CONNLIMIT_TOTAL ? ops->refusal_busy : ops->refusal_per_ip;
	log_warning("connection refused client=%s listener=%s reason=%s", conn->client_addr,
		    conn->listener->name,
		    verdict == CONNLIMIT_PER_IP ? "max-connections-per-ip"
		    : verdict == CONNLIMIT_PRELOGIN_PER_IP ? "max-prelogin-per-ip"
							: "max-connections");
	/*
	 * One non-blocking send of the refusal line. On an implicit-TLS listener
	 * a cleartext line would be noise to the client's TLS stack, so the
	 * connection is just closed there.
	 */
	if (conn->listener->tls == MG_LISTEN_STARTTLS &&
	    send(conn->client_fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("refusal not sent: %s", strerror(errno));
	/* Never counted, never logged as a session. */
	conn_free(conn);
}

static void proxy_refused(struct engine_conn *conn, const char *why)
{
	char from[INET6_ADDRSTRLEN + 8];

	snprintf(from, sizeof(from), "%s:%u", conn->client_addr, conn->client_port);
	log_warning("proxy header refused from=%s listener=%s error=\"%s\"", from,
		    conn->listener->name, why);
	conn_end(conn, "bad-proxy-header");
}

static void on_proxy_bytes(evutil_socket_t fd, short what, void *arg)
{
	struct engine_conn *conn = arg;
	size_t want = client_address_proxy_want(conn->proxy, conn->proxy_len);
	struct proxy_info info;
	const char *error = "malformed";
	size_t consumed;
	ssize_t n;

	if (conn->proxy_len + want > PROXY_HEADER_MAX) {
		proxy_refused(conn, "invalid PROXY header: too long");
		return;
	}
	/* Never past the header: a TLS handshake may follow it. */
	n = recv(fd, conn->proxy + conn->proxy_len, want, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		proxy_refused(conn, "no PROXY header: connection closed");
		return;
	}
	conn->proxy_len += (size_t)n;
	switch (proxy_parse(conn->proxy, conn->proxy_len, &consumed, &info, &error)) {
	case PROXY_PARSE_INCOMPLETE:
		return;
	case PROXY_PARSE_INVALID: {
		char msg[128];

		snprintf(msg, sizeof(msg), "invalid PROXY header: %s", error);
		proxy_refused(conn, msg);
		return;
	}
	case PROXY_PARSE_OK:
		break;
	}
	event_free(conn->wait);
	conn->wait = NULL;
	free(conn->proxy);
	conn->proxy = NULL;
	if (info.has_addresses) {
		conn->client_sa = info.source;
		conn->local_sa = info.destination;
		netaddr_host_port((const struct sockaddr *)&conn->client_sa, conn->client_addr,
				  sizeof(conn->client_addr), &conn->client_port);
	}
	request_session(conn);
}

void conn_accept(struct engine_ctx *ctx, int fd, size_t listener,
		 const struct sockaddr_storage *peer)
{
	const struct mg_listener_config *l = &ctx->cfg->listeners[listener];
	struct engine_conn *conn = calloc(1, sizeof(*conn));
	socklen_t len = sizeof(conn->local_sa);
	struct mg_ipkey key;
	int one = 1;

	if (conn == NULL) {
		close(fd);
		return;
	}
	conn->ctx = ctx;
	conn->id = ++ctx->next_id;
	conn->listener = l;
	conn->listener_index = listener;
	conn->client_fd = fd;
	conn->backend_fd = -1;
	conn->link = -1;
	conn->backend_cfg = -1;
	conn->start_ms = mg_now_ms();
	conn->client_sa = *peer;
	if (getsockname(fd, (struct sockaddr *)&conn->local_sa, &len) < 0)
		memset(&conn->local_sa, 0, sizeof(conn->local_sa));
	netaddr_host_port((const struct sockaddr *)peer, conn->client_addr,
			  sizeof(conn->client_addr), &conn->client_port);
	pipe_init(&conn->front, NULL, NULL, front_event, conn, NULL);
	pipe_init(&conn->back, NULL, NULL, back_event, conn, NULL);
	conn->next = ctx->conns;
	if (ctx->conns != NULL)
		ctx->conns->prev = conn;
	ctx->conns = conn;
	ctx->n_conns++;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	conn->timer = evtimer_new(ctx->base, on_timer, conn);
	if (conn->timer == NULL) {
		conn_end(conn, "out-of-memory");
		return;
	}
	arm_timer(conn, prelogin_budget_ms(ctx->cfg));
	if (l->n_proxy_networks > 0 && netaddr_key((const struct sockaddr *)peer, &key) == 0 &&
	    cidr_match_any(l->proxy_networks, l->n_proxy_networks, &key)) {
		conn->proxy = malloc(PROXY_HEADER_MAX);
		conn->wait = event_new(ctx->base, fd, EV_READ | EV_PERSIST, on_proxy_bytes, conn);
		if (conn->proxy == NULL || conn->wait == NULL || event_add(conn->wait, NULL) < 0) {
			conn_end(conn, "out-of-memory");
			return;
		}
		/* A load balancer that sends nothing is cut off within the login timeout. */
		arm_timer(conn, (long long)ctx->cfg->login_timeout * 1000);
		set_phase(conn, PHASE_PROXY);
		return;
	}
	request_session(conn);
}
