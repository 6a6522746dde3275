/*
 * engine.c - the TLS engine process: start-up (certificates and backend
 * addresses while root, then the privilege drop), the accept loop on the
 * inherited listening sockets, and the channel to the master. Connections
 * themselves are engine_conn.c's.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "chan.h"
#include "engine.h"
#include "engine_conn.h"
#include "log.h"
#include "engine_privdrop.h"
#include "engine_servers.h"
#include "engine_tls.h"
#include "env_period.h"
#include "ticket_keys.h"

#define ACCEPT_BURST 32
#define GOODBYE_MS 500

/* Engine 0 warns of certificates about to expire this often (a test may shorten it). */
#define EXPIRY_CHECK_S		(24 * 60 * 60)
#define EXPIRY_CHECK_ENV	"MAILGATED_TEST_EXPIRY_CHECK"

struct engine;

struct accept_slot {
	struct engine *engine;
	const struct engine_listen *listen;
	struct event *ev;
};

struct engine {
	struct engine_ctx ctx;		/* first: on_idle gets it back */
	const struct engine_params *params;
	struct accept_slot *slots;
	struct event *master_ev;
	struct event *stop_ev;		/* the grace period of a shutdown */
	struct event *goodbye_ev;	/* after it, the children's goodbyes */
	struct event *expiry_ev;	/* engine 0: the daily expiry re-check */
	struct ticket_keys *tickets;	/* every server's, replaced in place by the master */
	bool accepting;
	bool retiring;			/* exit once the last session has ended */
};

static _Noreturn void engine_exit(struct engine *e, int status)
{
	log_debug("engine generation=%u index=%u exits", e->params->generation, e->params->index);
	_exit(status);
}

static void stop_accepting(struct engine *e)
{
	if (!e->accepting)
		return;
	e->accepting = false;
	for (size_t i = 0; i < e->params->n_listen; i++) {
		if (e->slots[i].ev != NULL)
			event_free(e->slots[i].ev);
		e->slots[i].ev = NULL;
		/* Our copy only: the port closes once no process holds it. */
		close(e->params->listen[i].fd);
	}
}

static void on_idle(struct engine_ctx *ctx)
{
	struct engine *e = (struct engine *)ctx;

	if (e->retiring)
		engine_exit(e, 0);
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct accept_slot *slot = arg;

	for (int i = 0; i < ACCEPT_BURST && slot->engine->accepting; i++) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		int cfd = accept4(fd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (cfd < 0) {
			/* EAGAIN: another engine took it. */
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_error("accept: %s", strerror(errno));
			return;
		}
		if (peer.ss_family != AF_INET && peer.ss_family != AF_INET6) {
			close(cfd);
			continue;
		}
		conn_accept(&slot->engine->ctx, cfd, slot->listen->listener, &peer);
	}
}

static void on_goodbye_over(evutil_socket_t fd, short what, void *arg)
{
	struct engine *e = arg;

	conn_end_all(&e->ctx, "shutdown");
	engine_exit(e, 0);
}

/*
 * Sessions before login say goodbye themselves (their children own that
 * dialogue); the rest end now. The children answer at once: GOODBYE_MS is
 * a backstop well within the second the master waits after the grace period.
 */
static void on_grace_over(evutil_socket_t fd, short what, void *arg)
{
	struct engine *e = arg;
	struct timeval tv = { .tv_sec = 0, .tv_usec = GOODBYE_MS * 1000 };

	if (conn_goodbye_all(&e->ctx) == 0)
		on_goodbye_over(-1, 0, e);
	/* The last connection to end exits through on_idle; this is the backstop. */
	e->goodbye_ev = evtimer_new(e->ctx.base, on_goodbye_over, e);
	if (e->goodbye_ev == NULL || evtimer_add(e->goodbye_ev, &tv) < 0)
		on_goodbye_over(-1, 0, e);
}

static void send_master(struct engine *e, enum chan_type type, const char *text)
{
	struct chan_msg m;

	chan_msg_init(&m, type);
	if (text != NULL)
		chan_put_str(&m, text);
	if (chan_send(e->ctx.master_fd, &m, NULL, 0) < 0)
		log_error("master channel: %s", strerror(errno));
}

static void retire(struct engine *e)
{
	/* The new generation's first engine warns from now on. */
	if (e->expiry_ev != NULL)
		event_del(e->expiry_ev);
	stop_accepting(e);
	send_master(e, CHAN_ENGINE_RETIRED, NULL);
	e->retiring = true;
	if (e->ctx.n_conns == 0)
		engine_exit(e, 0);
}

static void stop(struct engine *e, unsigned grace_s)
{
	struct timeval tv = { .tv_sec = grace_s };

	if (e->expiry_ev != NULL)
		event_del(e->expiry_ev);
	stop_accepting(e);
	e->retiring = true;
	if (e->ctx.n_conns == 0)
		engine_exit(e, 0);
	e->stop_ev = evtimer_new(e->ctx.base, on_grace_over, e);
	if (e->stop_ev == NULL || evtimer_add(e->stop_ev, &tv) < 0)
		on_grace_over(-1, 0, e);
}

/*
 * A set of session ticket keys from the master (ticket_keys.h): at start,
 * and after every rotation or reload that changed them. Read whole before
 * it replaces the set in use, so a bad message leaves the old keys.
 */
static int install_ticket_keys(struct engine *e, const unsigned char *buf, size_t len)
{
	struct ticket_keys *fresh = ticket_keys_page(NULL, 0);
	struct chan_reader r;
	int rc;

	if (fresh == NULL)
		return -1;
	chan_reader_init(&r, buf + 1, len - 1);
	rc = ticket_keys_read(&r, fresh);
	if (rc == 0) {
		*e->tickets = *fresh;
		log_debug("ticket keys installed set=%u keys=%zu", (unsigned)e->tickets->serial,
			  e->tickets->n);
	}
	ticket_keys_page_free(fresh);
	return rc;
}

static void on_master(evutil_socket_t fd, short what, void *arg)
{
	struct engine *e = arg;
	unsigned char buf[CHAN_MSG_MAX];
	int fds[CHAN_MAX_FDS];
	size_t nfds = 0;
	struct chan_reader r;
	long n = chan_recv(fd, buf, fds, &nfds);
	uint64_t id;

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		/* Nobody grants sessions any more, and the ports must be freed. */
		log_error("the master is gone; ending %zu sessions", e->ctx.n_conns);
		conn_end_all(&e->ctx, "master-gone");
		engine_exit(e, 1);
	}
	chan_close_fds(fds, nfds);
	chan_reader_init(&r, buf + 1, (size_t)n - 1);
	switch ((enum chan_type)buf[0]) {
	case CHAN_SESSION_GRANT:
		id = chan_get_u64(&r);
		if (chan_reader_done(&r))
			conn_granted(&e->ctx, id);
		return;
	case CHAN_PENALTY: {
		uint32_t delay_ms;
		uint8_t flags;

		id = chan_get_u64(&r);
		delay_ms = chan_get_u32(&r);
		flags = chan_get_u8(&r);
		if (chan_reader_done(&r))
			conn_penalty(&e->ctx, id, delay_ms, flags);
		return;
	}
	case CHAN_USERIP: {
		uint8_t allowed;

		id = chan_get_u64(&r);
		allowed = chan_get_u8(&r);
		if (chan_reader_done(&r))
			conn_userip(&e->ctx, id, allowed);
		return;
	}
	case CHAN_SESSION_REFUSE: {
		unsigned verdict;

		id = chan_get_u64(&r);
		verdict = chan_get_u8(&r);
		if (chan_reader_done(&r))
			conn_refused(&e->ctx, id, verdict);
		return;
	}
	case CHAN_TICKET_KEYS:
		if (nfds > 0 || install_ticket_keys(e, buf, (size_t)n) < 0)
			log_error("the master sent a malformed ticket key set; keeping the old one");
		explicit_bzero(buf, (size_t)n);
		return;
	case CHAN_ENGINE_RETIRE:
		retire(e);
		return;
	case CHAN_ENGINE_STOP: {
		unsigned grace = chan_get_u32(&r);

		if (chan_reader_done(&r))
			stop(e, grace);
		return;
	}
	default:
		log_error("unexpected message %u from the master", buf[0]);
		return;
	}
}

/* Resolve every backend's ports now: a login never waits for DNS. */
static int resolve_backends(struct engine *e, char *err, size_t errlen)
{
	const struct mg_config *cfg = e->ctx.cfg;

	for (size_t i = 0; i < cfg->n_backends; i++) {
		const struct mg_backend_config *b = &cfg->backends[i];
		struct engine_backend *eb = &e->ctx.backends[i];

		for (int p = 0; p < MG_PROTO_COUNT; p++) {
			struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
						  .ai_flags = AI_ADDRCONFIG };
			struct addrinfo *list = NULL;
			char service[8];
			int rc;

			snprintf(service, sizeof(service), "%u",
				 p == MG_PROTO_POP3 ? b->pop3_port : b->imap_port);
			rc = getaddrinfo(b->host, service, &hints, &list);
			if (rc != 0) {
				snprintf(err, errlen, "backend %s: cannot resolve %s: %s", b->name,
					 b->host, gai_strerror(rc));
				return -1;
			}
			for (struct addrinfo *ai = list; ai != NULL && eb->n_addr[p] < 4;
			     ai = ai->ai_next) {
				if (ai->ai_addrlen > sizeof(eb->addr[p][0]))
					continue;
				memcpy(&eb->addr[p][eb->n_addr[p]], ai->ai_addr, ai->ai_addrlen);
				eb->addrlen[p][eb->n_addr[p]] = ai->ai_addrlen;
				eb->n_addr[p]++;
			}
			freeaddrinfo(list);
		}
	}
	return 0;
}

/* The master's first message: the ticket keys every engine shares. */
static int receive_ticket_keys(struct engine *e, char *err, size_t errlen)
{
	unsigned char buf[CHAN_MSG_MAX];
	struct pollfd pfd = { .fd = e->ctx.master_fd, .events = POLLIN };
	int fds[CHAN_MAX_FDS];
	size_t nfds = 0;
	long n = -1;
	int rc = -1;

	e->tickets = ticket_keys_page(err, errlen);
	if (e->tickets == NULL)
		return -1;
	if (poll(&pfd, 1, 10000) == 1)
		n = chan_recv(e->ctx.master_fd, buf, fds, &nfds);
	if (n > 0 && nfds == 0 && buf[0] == CHAN_TICKET_KEYS)
		rc = install_ticket_keys(e, buf, (size_t)n);
	chan_close_fds(fds, nfds);
	if (n > 0)
		explicit_bzero(buf, (size_t)n);
	if (rc < 0)
		snprintf(err, errlen, "no session ticket keys from the master");
	return rc;
}

static void log_note(bool warning, const char *msg, void *arg)
{
	if (warning)
		log_warning("%s", msg);
	else
		log_info("%s", msg);
}

/* Everything that needs root or may fail: certificates, keys, backend addresses. */
static int engine_prepare(struct engine *e, char *err, size_t errlen)
{
	const struct mg_config *cfg = e->ctx.cfg;

	e->ctx.backends = calloc(cfg->n_backends, sizeof(*e->ctx.backends));
	if (e->ctx.backends == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (receive_ticket_keys(e, err, errlen) < 0)
		return -1;
	/*
	 * Every engine loads the same files: only the first says what it found
	 * (pairs skipped or kept from their last-good copy, certificates about
	 * to expire) and keeps the last-good copies (engine_lastgood.h).
	 */
	e->ctx.servers = servers_load_with(cfg, &(struct servers_options){
		.keep_dir = cfg->tls.last_good_dir, .refresh = e->params->index == 0,
		.keep_default = !e->params->first_start,
		.note = e->params->index == 0 ? log_note : NULL }, err, errlen);
	if (e->ctx.servers == NULL)
		return -1;
	servers_set_ticket_keys(e->ctx.servers, e->tickets);
	for (size_t i = 0; i < cfg->n_backends; i++) {
		char detail[256];

		if (cfg->backends[i].tls == MG_BACKEND_TLS_NONE)
			continue;
		e->ctx.backends[i].tls = tls_client_new(&cfg->backends[i], detail, sizeof(detail));
		if (e->ctx.backends[i].tls == NULL) {
			snprintf(err, errlen, "backend %s: %s", cfg->backends[i].name, detail);
			return -1;
		}
	}
	return resolve_backends(e, err, errlen);
}

/* A gateway that runs for weeks keeps warning before a certificate expires. */
static void on_expiry_check(evutil_socket_t fd, short what, void *arg)
{
	struct engine *e = arg;

	servers_warn_expiring(e->ctx.servers, time(NULL), log_note, NULL);
}

static int start_expiry_check(struct engine *e, char *err, size_t errlen)
{
	struct timeval every = { 0 };
	unsigned period_s;

	if (env_period(EXPIRY_CHECK_ENV, getenv(EXPIRY_CHECK_ENV), EXPIRY_CHECK_S, &period_s, err,
		       errlen) < 0)
		return -1;
	every.tv_sec = period_s;
	e->expiry_ev = event_new(e->ctx.base, -1, EV_PERSIST, on_expiry_check, e);
	if (e->expiry_ev == NULL || event_add(e->expiry_ev, &every) < 0) {
		snprintf(err, errlen, "cannot set up the expiry check");
		return -1;
	}
	return 0;
}

static int engine_listen(struct engine *e)
{
	const struct engine_params *p = e->params;

	e->slots = calloc(p->n_listen, sizeof(*e->slots));
	if (e->slots == NULL)
		return -1;
	for (size_t i = 0; i < p->n_listen; i++) {
		struct accept_slot *slot = &e->slots[i];

		slot->engine = e;
		slot->listen = &p->listen[i];
		slot->ev = event_new(e->ctx.base, p->listen[i].fd, EV_READ | EV_PERSIST, on_accept,
				     slot);
		if (slot->ev == NULL || event_add(slot->ev, NULL) < 0)
			return -1;
	}
	e->accepting = true;
	return 0;
}

_Noreturn void engine_main(const struct engine_params *params)
{
	static struct engine engine;
	struct engine *e = &engine;
	int keep[CHAN_KEEP_MAX];
	size_t nkeep = 0;
	char err[512];
	int rc;

	e->params = params;
	e->ctx.cfg = params->cfg;
	e->ctx.master_fd = params->master_fd;
	e->ctx.on_idle = on_idle;
	prctl(PR_SET_NAME, "mailgated-tls");
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	log_set_prefix("engine");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);

	/* Nothing of the master's but our channel and the listening sockets. */
	keep[nkeep++] = params->master_fd;
	for (size_t i = 0; i < params->n_listen && nkeep < CHAN_KEEP_MAX; i++)
		keep[nkeep++] = params->listen[i].fd;
	chan_close_all_but(keep, nkeep);
	log_reopen();

	if (engine_prepare(e, err, sizeof(err)) < 0) {
		log_error("%s", err);
		send_master(e, CHAN_ENGINE_FAILED, err);
		_exit(2);
	}
	rc = privdrop(params->cfg->user, params->cfg->group, err, sizeof(err));
	if (rc < 0) {
		log_error("privilege drop failed: %s", err);
		send_master(e, CHAN_ENGINE_FAILED, err);
		_exit(2);
	}
	e->ctx.base = event_base_new();
	if (e->ctx.base == NULL || engine_listen(e) < 0 ||
	    (e->master_ev = event_new(e->ctx.base, params->master_fd, EV_READ | EV_PERSIST,
				      on_master, e)) == NULL ||
	    event_add(e->master_ev, NULL) < 0) {
		log_error("cannot set up the event loop");
		send_master(e, CHAN_ENGINE_FAILED, "cannot set up the event loop");
		_exit(2);
	}
	if (params->index == 0 && start_expiry_check(e, err, sizeof(err)) < 0) {
		log_error("%s", err);
		send_master(e, CHAN_ENGINE_FAILED, err);
		_exit(2);
	}
	send_master(e, CHAN_ENGINE_READY, NULL);
	log_debug("engine generation=%u index=%u ready (libevent %s, %s)", params->generation,
		  params->index, event_get_version(), event_base_get_method(e->ctx.base));
	if (params->index == 0)
		log_info("tls records built in %s", tls_kernel_offload());
	event_base_dispatch(e->ctx.base);
	engine_exit(e, 0);
}
