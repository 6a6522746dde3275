/*
 * master.c - the master process: listening sockets, engines, session
 * children, limits, reloads, shutdown.
 *
 * The master reads the configuration, binds every listener and forks the TLS
 * engines (engine.c), which accept and own every connection. For each
 * connection an engine asks for a session: the master counts it against the
 * global and per-address limits (it is the one authority, for every phase of
 * a session) and either refuses or forks a session child (session.c) that
 * runs the pre-login dialogue with the engine over the channel the engine
 * sent along. The master never reads a byte a client sends and never loads a
 * key, so it may keep root: it restarts engines and the PAM auth process that
 * die, and binds new listeners on reload.
 *
 * SIGHUP starts a new generation of engines on the new configuration; once
 * they are ready the old ones stop accepting and end with their last
 * session. Signals reach the loop through a self-pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "authd.h"
#include "chan.h"
#include "connlimit.h"
#include "engine.h"
#include "log.h"
#include "master.h"
#include "netaddr.h"
#include "privdrop.h"
#include "protocol.h"
#include "session_sandbox.h"
#include "stream.h"
#include "tls.h"

#define KILL_WAIT_MS 2000
#define ENGINE_YOUNG_MS 1000		/* an engine dying younger than this backs off */
#define RESTART_DELAY_MIN_MS 100
#define RESTART_DELAY_MAX_MS 10000
#define MSGS_PER_ROUND 256		/* per engine, so one busy engine cannot starve */
#define OUT_MSG_MAX 32

/* A bound listening socket; kept across reloads while a listener uses it. */
struct listen_socket {
	int fd;
	char address[INET6_ADDRSTRLEN];
	unsigned port;
	bool in_use;		/* by the current (or pending) generation */
};

/* One configuration and the engines that run it. */
struct generation {
	unsigned number;
	struct mg_config *cfg;
	struct engine_listen *listen;
	size_t n_listen;
	unsigned engines;	/* how many it should run */
	unsigned alive;		/* engine processes not yet reaped */
	struct session_sandbox sandbox;
	struct generation *next;
};

enum engine_state { ENGINE_STARTING, ENGINE_READY, ENGINE_RETIRING, ENGINE_STOPPING };

struct out_msg {
	size_t len;
	unsigned char data[OUT_MSG_MAX];
};

struct engine_proc {
	pid_t pid;		/* 0: the slot is free */
	int fd;
	unsigned group;		/* connlimit group: unique for the master's lifetime */
	unsigned index;
	struct generation *gen;
	enum engine_state state;
	bool stopped_accepting;	/* it confirmed RETIRE */
	long long started_ms;
	struct out_msg *out;	/* messages the engine was too busy to take */
	size_t n_out, cap_out;
};

/* A session request read from an engine, judged after every END of the round. */
struct request {
	struct engine_proc *engine;
	uint64_t id;
	unsigned listener;
	struct sockaddr_storage client;
	int link;
};

struct master {
	const char *config_path;
	struct authd authd;		/* the PAM auth process, when any login uses PAM */
	char authd_service[AUTHD_SERVICE_MAX + 1];	/* what it was started with */
	unsigned authd_workers;
	unsigned authd_timeout;
	long long authd_started_ms;
	long long authd_restart_at;	/* 0: no restart pending */
	unsigned authd_delay_ms;

	struct generation *current;
	struct generation *pending;	/* a reload waiting for its engines */
	struct generation *gens;	/* every generation still holding engines */
	unsigned next_generation;

	struct listen_socket *sockets;
	size_t n_sockets, cap_sockets;

	struct engine_proc *engines;
	size_t n_engines;
	unsigned next_group;
	unsigned restart_delay_ms;
	long long restart_at;		/* 0: no engine waits for a restart */
	bool reload_retiring;		/* reload: waiting for old engines to stop accepting */

	struct connlimit sessions;
	pid_t *children;		/* session children, for reaping */
	size_t n_children, cap_children;

	struct request *requests;
	size_t n_requests, cap_requests;
	bool stopping;
	/*
	 * Session ticket keys for every engine, in a page the kernel zeroes in
	 * every child: engines get them over their channel, session children
	 * and the auth process never have them.
	 */
	unsigned char *ticket_keys;
};

static int signal_pipe[2] = { -1, -1 };
static volatile sig_atomic_t got_hup, got_term, got_chld;

static void on_signal(int sig)
{
	int saved = errno;
	char byte = (char)sig;

	if (sig == SIGHUP)
		got_hup = 1;
	else if (sig == SIGCHLD)
		got_chld = 1;
	else
		got_term = 1;
	if (write(signal_pipe[1], &byte, 1) < 0) {
		/* The pipe is full: the loop is already awake. */
	}
	errno = saved;
}

static void log_warning_cb(const char *msg, void *arg)
{
	log_warning("config %s", msg);
}

static unsigned engine_count(const struct mg_config *cfg)
{
	long cpus;

	if (cfg->engines > 0)
		return cfg->engines;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	return cpus < 1 ? 1 : cpus > 64 ? 64 : (unsigned)cpus;
}

/* ---- listening sockets ----------------------------------------------------- */

static int open_listener(const char *address, unsigned port, char *err, size_t errlen)
{
	struct addrinfo hints = {
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
	};
	struct addrinfo *ai = NULL;
	char service[8];
	int one = 1;
	int fd;
	int rc;

	snprintf(service, sizeof(service), "%u", port);
	rc = getaddrinfo(address, service, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", address, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "%s port %u: socket: %s", address, port, strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* "::" must not also claim IPv4: "0.0.0.0" is its own listener. */
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
		snprintf(err, errlen, "%s port %u: %s", address, port, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* The socket for address:port, bound now unless an earlier generation has it. */
static int socket_for(struct master *m, const char *address, unsigned port, char *err,
		      size_t errlen)
{
	struct listen_socket *s;
	int fd;

	for (size_t i = 0; i < m->n_sockets; i++) {
		s = &m->sockets[i];
		if (s->fd >= 0 && s->port == port && strcmp(s->address, address) == 0) {
			s->in_use = true;
			return s->fd;
		}
	}
	if (m->n_sockets == m->cap_sockets) {
		size_t cap = m->cap_sockets == 0 ? 8 : m->cap_sockets * 2;
		struct listen_socket *grown = realloc(m->sockets, cap * sizeof(*grown));

		if (grown == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		m->sockets = grown;
		m->cap_sockets = cap;
	}
	fd = open_listener(address, port, err, errlen);
	if (fd < 0)
		return -1;
	s = &m->sockets[m->n_sockets++];
	s->fd = fd;
	s->port = port;
	s->in_use = true;
	snprintf(s->address, sizeof(s->address), "%s", address);
	return fd;
}

/* Close the sockets the current generation does not use (old engines hold copies). */
static void close_unused_sockets(struct master *m)
{
	size_t kept = 0;

	for (size_t i = 0; i < m->n_sockets; i++) {
		if (m->sockets[i].in_use) {
			m->sockets[kept++] = m->sockets[i];
			continue;
		}
		close(m->sockets[i].fd);
	}
	m->n_sockets = kept;
}

static void close_all_sockets(struct master *m)
{
	for (size_t i = 0; i < m->n_sockets; i++)
		close(m->sockets[i].fd);
	m->n_sockets = 0;
}

/* ---- generations -------------------------------------------------------------- */

static void generation_free(struct generation *g)
{
	if (g == NULL)
		return;
	free(g->listen);
	config_free(g->cfg);
	free(g);
}

/* Takes ownership of cfg. Binds what is new; marks the sockets it uses. */
static struct generation *generation_new(struct master *m, struct mg_config *cfg, char *err,
					 size_t errlen)
{
	struct generation *g = calloc(1, sizeof(*g));
	size_t total = 0;

	if (g == NULL) {
		config_free(cfg);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	g->cfg = cfg;
	g->number = ++m->next_generation;
	g->engines = engine_count(cfg);
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		if (protocol_ops(cfg->listeners[i].protocol) == NULL) {
			snprintf(err, errlen, "listen %s: protocol %s is not supported yet",
				 cfg->listeners[i].name,
				 config_protocol_name(cfg->listeners[i].protocol));
			goto fail;
		}
		total += cfg->listeners[i].n_addresses;
	}
	if (session_sandbox_prepare(cfg, &g->sandbox, err, errlen) < 0)
		goto fail;
	g->listen = calloc(total > 0 ? total : 1, sizeof(*g->listen));
	if (g->listen == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < m->n_sockets; i++)
		m->sockets[i].in_use = false;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct mg_listener_config *l = &cfg->listeners[i];

		for (size_t a = 0; a < l->n_addresses; a++) {
			char detail[256];
			int fd = socket_for(m, l->addresses[a], l->port, detail, sizeof(detail));

			if (fd < 0) {
				snprintf(err, errlen, "listen %s: %s", l->name, detail);
				goto fail;
			}
			g->listen[g->n_listen++] = (struct engine_listen){ .fd = fd, .listener = i };
		}
	}
	return g;
fail:
	generation_free(g);
	return NULL;
}

static void log_listeners(const struct generation *g)
{
	const struct mg_config *cfg = g->cfg;

	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct mg_listener_config *l = &cfg->listeners[i];

		for (size_t a = 0; a < l->n_addresses; a++) {
			bool v6 = strchr(l->addresses[a], ':') != NULL;

			log_info("listening listener=%s address=%s%s%s:%u protocol=%s tls=%s",
				 l->name, v6 ? "[" : "", l->addresses[a], v6 ? "]" : "", l->port,
				 config_protocol_name(l->protocol),
				 l->tls == MG_LISTEN_IMPLICIT ? "implicit" : "starttls");
		}
	}
}

/* ---- engines ------------------------------------------------------------------ */

static struct engine_proc *engine_slot(struct master *m)
{
	struct engine_proc *grown;

	for (size_t i = 0; i < m->n_engines; i++)
		if (m->engines[i].pid == 0)
			return &m->engines[i];
	grown = realloc(m->engines, (m->n_engines + 1) * sizeof(*grown));
	if (grown == NULL)
		return NULL;
	m->engines = grown;
	memset(&m->engines[m->n_engines], 0, sizeof(*grown));
	return &m->engines[m->n_engines++];
}

static int spawn_engine(struct master *m, struct generation *g, unsigned index)
{
	struct engine_proc *e = engine_slot(m);
	sigset_t all, old;
	int sp[2];
	pid_t pid;

	if (e == NULL) {
		log_error("out of memory starting an engine");
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		log_error("engine socketpair: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	/* No handler of the master may run in the child before engine_main() resets them. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		struct engine_params params = {
			.cfg = g->cfg, .generation = g->number, .index = index,
			.master_fd = sp[1], .listen = g->listen, .n_listen = g->n_listen,
		};

		sigprocmask(SIG_SETMASK, &old, NULL);
		engine_main(&params);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(sp[1]);
	if (pid < 0) {
		log_error("engine fork: %s", strerror(errno));
		close(sp[0]);
		return -1;
	}
	{
		struct chan_msg keys;

		chan_msg_init(&keys, CHAN_TICKET_KEYS);
		chan_put_bytes(&keys, m->ticket_keys, TLS_TICKET_KEYS_LEN);
		if (chan_send(sp[0], &keys, NULL, 0) < 0)
			log_error("engine channel: %s", strerror(errno));
		explicit_bzero(keys.data, keys.len);
	}
	fcntl(sp[0], F_SETFL, fcntl(sp[0], F_GETFL) | O_NONBLOCK);
	*e = (struct engine_proc){
		.pid = pid, .fd = sp[0], .group = ++m->next_group, .index = index, .gen = g,
		.state = ENGINE_STARTING, .started_ms = stream_now_ms(),
	};
	g->alive++;
	log_debug("engine started pid=%ld generation=%u index=%u", (long)pid, g->number, index);
	return 0;
}

static int spawn_generation(struct master *m, struct generation *g)
{
	for (unsigned i = 0; i < g->engines; i++)
		if (spawn_engine(m, g, i) < 0)
			return -1;
	return 0;
}

static void queue_to_engine(struct engine_proc *e, const struct chan_msg *msg)
{
	struct out_msg *grown;

	if (msg->len > OUT_MSG_MAX)
		return;
	if (e->n_out == e->cap_out) {
		size_t cap = e->cap_out == 0 ? 16 : e->cap_out * 2;

		grown = realloc(e->out, cap * sizeof(*grown));
		if (grown == NULL) {
			log_error("out of memory queueing for engine %ld", (long)e->pid);
			return;
		}
		e->out = grown;
		e->cap_out = cap;
	}
	e->out[e->n_out].len = msg->len;
	memcpy(e->out[e->n_out].data, msg->data, msg->len);
	e->n_out++;
}

/* Never blocks: what the engine cannot take now waits in its queue. */
static void send_engine(struct engine_proc *e, const struct chan_msg *msg)
{
	if (e->n_out == 0 && chan_send(e->fd, msg, NULL, 0) == 0)
		return;
	if (errno != EAGAIN && errno != EWOULDBLOCK && e->n_out == 0) {
		log_debug("engine %ld channel: %s", (long)e->pid, strerror(errno));
		return;
	}
	queue_to_engine(e, msg);
}

static void flush_engine(struct engine_proc *e)
{
	size_t done = 0;

	while (done < e->n_out) {
		struct chan_msg msg;

		msg.len = e->out[done].len;
		msg.overflow = false;
		memcpy(msg.data, e->out[done].data, msg.len);
		if (chan_send(e->fd, &msg, NULL, 0) < 0)
			break;
		done++;
	}
	if (done == 0)
		return;
	memmove(e->out, e->out + done, (e->n_out - done) * sizeof(*e->out));
	e->n_out -= done;
}

static void tell_engine(struct engine_proc *e, enum chan_type type, unsigned grace)
{
	struct chan_msg msg;

	chan_msg_init(&msg, type);
	if (type == CHAN_ENGINE_STOP)
		chan_put_u32(&msg, grace);
	send_engine(e, &msg);
}

static void engine_gone(struct master *m, struct engine_proc *e)
{
	if (e->fd >= 0)
		close(e->fd);
	e->fd = -1;
	free(e->out);
	e->out = NULL;
	e->n_out = e->cap_out = 0;
}

/* ---- sessions ----------------------------------------------------------------- */

static void remember_child(struct master *m, pid_t pid)
{
	if (m->n_children == m->cap_children) {
		size_t cap = m->cap_children == 0 ? 64 : m->cap_children * 2;
		pid_t *grown = realloc(m->children, cap * sizeof(*grown));

		if (grown == NULL) {
			log_error("out of memory counting session children");
			return;
		}
		m->children = grown;
		m->cap_children = cap;
	}
	m->children[m->n_children++] = pid;
}

static bool forget_child(struct master *m, pid_t pid)
{
	for (size_t i = 0; i < m->n_children; i++) {
		if (m->children[i] == pid) {
			m->children[i] = m->children[--m->n_children];
			return true;
		}
	}
	return false;
}

static void answer(struct engine_proc *e, enum chan_type type, uint64_t id, unsigned verdict)
{
	struct chan_msg msg;

	chan_msg_init(&msg, type);
	chan_put_u64(&msg, id);
	if (type == CHAN_SESSION_REFUSE)
		chan_put_u8(&msg, (uint8_t)verdict);
	send_engine(e, &msg);
}

static void judge(struct master *m, struct request *r)
{
	const struct mg_config *limits = m->current->cfg;
	struct generation *g = r->engine->gen;
	enum connlimit_verdict verdict;
	struct mg_ipkey key;
	pid_t pid;

	if (r->engine->pid == 0 || m->stopping || netaddr_key((const struct sockaddr *)&r->client,
							       &key) < 0) {
		close(r->link);
		return;
	}
	verdict = connlimit_check(&m->sessions, &key, limits->max_connections,
				  limits->max_connections_per_ip);
	if (verdict != CONNLIMIT_OK) {
		close(r->link);
		answer(r->engine, CHAN_SESSION_REFUSE, r->id, verdict);
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		session_child_main(&g->sandbox, g->cfg, r->link,
				   m->authd.running ? m->authd.request_fd : -1);
	close(r->link);
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		answer(r->engine, CHAN_SESSION_REFUSE, r->id, CONNLIMIT_TOTAL);
		return;
	}
	remember_child(m, pid);
	if (connlimit_add(&m->sessions, r->engine->group, r->id, &key) < 0)
		log_error("out of memory counting sessions");
	answer(r->engine, CHAN_SESSION_GRANT, r->id, 0);
}

static void queue_request(struct master *m, struct engine_proc *e, struct chan_reader *rd,
			  int link)
{
	struct request r = { .engine = e, .link = link };
	const unsigned char *sa;
	size_t len;

	r.id = chan_get_u64(rd);
	r.listener = chan_get_u16(rd);
	chan_get_bytes(rd, &sa, &len, sizeof(r.client));
	if (!chan_reader_done(rd) || r.listener >= e->gen->cfg->n_listeners) {
		log_error("engine %ld sent a malformed session request", (long)e->pid);
		close(link);
		return;
	}
	memcpy(&r.client, sa, len);
	if (m->n_requests == m->cap_requests) {
		size_t cap = m->cap_requests == 0 ? 64 : m->cap_requests * 2;
		struct request *grown = realloc(m->requests, cap * sizeof(*grown));

		if (grown == NULL) {
			close(link);
			return;
		}
		m->requests = grown;
		m->cap_requests = cap;
	}
	m->requests[m->n_requests++] = r;
}

/* ---- reload ------------------------------------------------------------------- */

static void retire_generation(struct master *m, struct generation *g)
{
	for (size_t i = 0; i < m->n_engines; i++) {
		struct engine_proc *e = &m->engines[i];

		if (e->pid != 0 && e->gen == g && e->state != ENGINE_RETIRING &&
		    e->state != ENGINE_STOPPING) {
			e->state = ENGINE_RETIRING;
			tell_engine(e, CHAN_ENGINE_RETIRE, 0);
		}
	}
}

static bool generation_ready(const struct master *m, const struct generation *g)
{
	unsigned ready = 0;

	for (size_t i = 0; i < m->n_engines; i++)
		if (m->engines[i].pid != 0 && m->engines[i].gen == g &&
		    m->engines[i].state == ENGINE_READY)
			ready++;
	return ready == g->engines;
}

/* Old engines still accepting (they have not confirmed RETIRE yet). */
static bool old_engines_accepting(const struct master *m)
{
	for (size_t i = 0; i < m->n_engines; i++) {
		const struct engine_proc *e = &m->engines[i];

		if (e->pid != 0 && e->gen != m->current && e->state == ENGINE_RETIRING &&
		    e->fd >= 0 && !e->stopped_accepting)
			return true;
	}
	return false;
}

static void kill_generation(struct master *m, struct generation *g)
{
	for (size_t i = 0; i < m->n_engines; i++)
		if (m->engines[i].pid != 0 && m->engines[i].gen == g) {
			m->engines[i].state = ENGINE_STOPPING;
			kill(m->engines[i].pid, SIGTERM);
		}
}

static void reload_failed(struct master *m, const char *why)
{
	log_error("reload failed, keeping the running configuration: %s", why);
	if (m->pending != NULL) {
		kill_generation(m, m->pending);
		/* It is freed once its engines are reaped. */
		m->pending = NULL;
	}
	/* The sockets the running generation needs are still the same ones. */
	for (size_t i = 0; i < m->n_sockets; i++) {
		m->sockets[i].in_use = false;
		for (size_t k = 0; k < m->current->n_listen; k++)
			if (m->current->listen[k].fd == m->sockets[i].fd)
				m->sockets[i].in_use = true;
	}
	close_unused_sockets(m);
}

/* The auth process runs as root and is started once; PAM settings need a restart. */
static int same_auth_process(const struct master *m, const struct mg_config *next, char *err,
			     size_t errlen)
{
	if (!config_uses_pam(next))
		return 1;
	if (m->authd_service[0] == '\0') {
		snprintf(err, errlen, "auth = pam needs the auth process, which only starts with "
			 "the daemon; that needs a restart");
		return 0;
	}
	if (strcmp(m->authd_service, next->pam_service) != 0 ||
	    m->authd_workers != next->auth_workers || m->authd_timeout != next->auth_timeout) {
		snprintf(err, errlen, "pam_service, auth_workers or auth_timeout changed; that "
			 "needs a restart");
		return 0;
	}
	return 1;
}

static void reload(struct master *m)
{
	struct mg_config *cfg = NULL;
	struct generation *g;
	char err[512];

	log_info("reload requested config=%s", m->config_path);
	if (m->pending != NULL || m->reload_retiring) {
		log_warning("reload already in progress; try again when it is done");
		return;
	}
	if (config_load(m->config_path, &cfg, err, sizeof(err)) < 0) {
		log_error("reload failed, keeping the running configuration: %s", err);
		return;
	}
	if (!same_auth_process(m, cfg, err, sizeof(err))) {
		log_error("reload failed, keeping the running configuration: %s", err);
		config_free(cfg);
		return;
	}
	g = generation_new(m, cfg, err, sizeof(err));
	if (g == NULL) {
		reload_failed(m, err);
		return;
	}
	config_warnings(g->cfg, log_warning_cb, NULL);
	g->next = m->gens;
	m->gens = g;
	m->pending = g;
	if (spawn_generation(m, g) < 0)
		reload_failed(m, "cannot start the new engines");
}

/* The new engines are ready: switch, and let the old ones wind down. */
static void reload_switch(struct master *m)
{
	struct generation *old = m->current;

	m->current = m->pending;
	m->pending = NULL;
	log_set_level(m->current->cfg->log_level);
	retire_generation(m, old);
	m->reload_retiring = true;
}

static void reload_finish(struct master *m)
{
	m->reload_retiring = false;
	close_unused_sockets(m);
	log_listeners(m->current);
	log_info("reload done config=%s generation=%u", m->config_path, m->current->number);
}

/* ---- the engine channel -------------------------------------------------------- */

static void engine_message(struct master *m, struct engine_proc *e, const unsigned char *buf,
			   long n, int *fds, size_t nfds)
{
	struct chan_reader r;
	char reason[256];

	chan_reader_init(&r, buf + 1, (size_t)n - 1);
	switch ((enum chan_type)buf[0]) {
	case CHAN_SESSION_REQUEST:
		if (nfds == 1) {
			queue_request(m, e, &r, fds[0]);
			return;
		}
		break;
	case CHAN_SESSION_END: {
		uint64_t id = chan_get_u64(&r);

		if (chan_reader_done(&r) && nfds == 0) {
			connlimit_remove(&m->sessions, e->group, id);
			return;
		}
		break;
	}
	case CHAN_ENGINE_READY:
		if (e->state == ENGINE_STARTING)
			e->state = ENGINE_READY;
		if (m->pending != NULL && e->gen == m->pending && generation_ready(m, m->pending))
			reload_switch(m);
		return;
	case CHAN_ENGINE_RETIRED:
		/* Its listening sockets are closed: it takes no new connection. */
		e->stopped_accepting = true;
		return;
	case CHAN_ENGINE_FAILED:
		chan_get_str(&r, reason, sizeof(reason));
		if (m->pending != NULL && e->gen == m->pending)
			reload_failed(m, reason);
		return;
	default:
		break;
	}
	chan_close_fds(fds, nfds);
	log_error("engine %ld sent an unexpected message %u", (long)e->pid, buf[0]);
}

static void read_engine(struct master *m, struct engine_proc *e)
{
	for (int i = 0; i < MSGS_PER_ROUND && e->fd >= 0; i++) {
		unsigned char buf[CHAN_MSG_MAX];
		int fds[CHAN_MAX_FDS];
		size_t nfds = 0;
		long n = chan_recv(e->fd, buf, fds, &nfds);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			/* It died, or retired and closed: reaping tells which. */
			engine_gone(m, e);
			return;
		}
		engine_message(m, e, buf, n, fds, nfds);
	}
}

/* ---- reaping -------------------------------------------------------------------- */

static void engine_reaped(struct master *m, struct engine_proc *e, int status)
{
	struct generation *g = e->gen;
	size_t lost = connlimit_remove_group(&m->sessions, e->group);
	bool expected = e->state == ENGINE_RETIRING || e->state == ENGINE_STOPPING || m->stopping;
	bool young = stream_now_ms() - e->started_ms < ENGINE_YOUNG_MS;
	unsigned index = e->index;

	engine_gone(m, e);
	e->pid = 0;
	g->alive--;
	if (!expected || (WIFEXITED(status) && WEXITSTATUS(status) != 0 && !m->stopping)) {
		if (WIFSIGNALED(status))
			log_error("engine %u of generation %u died of signal %d; %zu sessions lost",
				  index, g->number, WTERMSIG(status), lost);
		else
			log_error("engine %u of generation %u ended with status %d; %zu sessions "
				  "lost", index, g->number, WEXITSTATUS(status), lost);
	}
	if (g == m->pending && !expected) {
		reload_failed(m, "a new engine ended before it was ready");
	} else if (g == m->current && !m->stopping && !expected) {
		if (young) {
			m->restart_delay_ms = m->restart_delay_ms == 0 ? RESTART_DELAY_MIN_MS
				: m->restart_delay_ms * 2 > RESTART_DELAY_MAX_MS ? RESTART_DELAY_MAX_MS
				: m->restart_delay_ms * 2;
			m->restart_at = stream_now_ms() + m->restart_delay_ms;
			log_warning("engine %u keeps dying; restarting it in %u ms", index,
				    m->restart_delay_ms);
		} else {
			m->restart_delay_ms = 0;
			if (spawn_engine(m, g, index) == 0)
				log_info("engine %u of generation %u restarted", index, g->number);
		}
	}
	if (g->alive == 0 && g != m->current) {
		struct generation **p = &m->gens;

		while (*p != NULL && *p != g)
			p = &(*p)->next;
		if (*p == g)
			*p = g->next;
		generation_free(g);
	}
}

/* Restart engines of the current generation that a back-off delayed. */
static void restart_missing_engines(struct master *m)
{
	struct generation *g = m->current;

	m->restart_at = 0;
	for (unsigned index = 0; index < g->engines; index++) {
		bool running = false;

		for (size_t i = 0; i < m->n_engines; i++)
			if (m->engines[i].pid != 0 && m->engines[i].gen == g &&
			    m->engines[i].index == index)
				running = true;
		if (!running && spawn_engine(m, g, index) == 0)
			log_info("engine %u of generation %u restarted", index, g->number);
	}
}

static void authd_reaped(struct master *m, int status)
{
	bool young = stream_now_ms() - m->authd_started_ms < ENGINE_YOUNG_MS;

	m->authd.supervisor = 0;
	authd_stop(&m->authd);
	if (m->stopping)
		return;
	/* PAM logins fail (temporarily) until it is back: say so loudly. */
	m->authd_delay_ms = young ? (m->authd_delay_ms == 0 ? RESTART_DELAY_MIN_MS
				     : m->authd_delay_ms * 2 > RESTART_DELAY_MAX_MS
				     ? RESTART_DELAY_MAX_MS : m->authd_delay_ms * 2)
				  : 0;
	m->authd_restart_at = stream_now_ms() + m->authd_delay_ms;
	log_error("auth process ended (%s %d); restarting it in %u ms",
		  WIFSIGNALED(status) ? "signal" : "status",
		  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), m->authd_delay_ms);
}

static int start_authd(struct master *m, char *err, size_t errlen)
{
	const struct mg_config *cfg = m->current->cfg;

	if (authd_start(cfg->pam_service, cfg->auth_workers, cfg->auth_timeout, &m->authd, err,
			errlen) < 0)
		return -1;
	m->authd_started_ms = stream_now_ms();
	snprintf(m->authd_service, sizeof(m->authd_service), "%s", cfg->pam_service);
	m->authd_workers = cfg->auth_workers;
	m->authd_timeout = cfg->auth_timeout;
	log_info("auth process started service=%s workers=%u", cfg->pam_service,
		 cfg->auth_workers);
	return 0;
}

static void reap(struct master *m)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (m->authd.running && pid == m->authd.supervisor) {
			authd_reaped(m, status);
			continue;
		}
		if (forget_child(m, pid)) {
			if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM &&
			    WTERMSIG(status) != SIGKILL)
				log_error("session process %ld died of signal %d", (long)pid,
					  WTERMSIG(status));
			else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
				log_warning("session process %ld exited with status %d", (long)pid,
					    WEXITSTATUS(status));
			continue;
		}
		for (size_t i = 0; i < m->n_engines; i++) {
			if (m->engines[i].pid == pid) {
				engine_reaped(m, &m->engines[i], status);
				break;
			}
		}
	}
}

/* ---- the loop ------------------------------------------------------------------- */

static void drain_signal_pipe(void)
{
	char buf[64];

	while (read(signal_pipe[0], buf, sizeof(buf)) > 0)
		;
}

static int install_signals(char *err, size_t errlen)
{
	struct sigaction sa;

	if (pipe2(signal_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static int poll_timeout(const struct master *m)
{
	long long next = 0;

	if (m->restart_at != 0)
		next = m->restart_at;
	if (m->authd_restart_at != 0 && (next == 0 || m->authd_restart_at < next))
		next = m->authd_restart_at;
	return next == 0 ? -1 : stream_ms_left(next);
}

static void timers(struct master *m)
{
	long long now = stream_now_ms();
	char err[256];

	if (m->restart_at != 0 && now >= m->restart_at)
		restart_missing_engines(m);
	if (m->authd_restart_at != 0 && now >= m->authd_restart_at) {
		m->authd_restart_at = 0;
		if (start_authd(m, err, sizeof(err)) < 0) {
			log_error("auth process: %s", err);
			m->authd_delay_ms = RESTART_DELAY_MAX_MS;
			m->authd_restart_at = now + m->authd_delay_ms;
		}
	}
}

/* One round: every engine's messages (ENDs count at once), then the requests. */
static void serve_engines(struct master *m, const struct pollfd *pfds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct engine_proc *e = &m->engines[i];

		if (e->pid == 0 || e->fd < 0 || pfds[i].fd != e->fd)
			continue;
		if (pfds[i].revents & POLLOUT)
			flush_engine(e);
		if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR))
			read_engine(m, e);
	}
	for (size_t i = 0; i < m->n_requests; i++)
		judge(m, &m->requests[i]);
	m->n_requests = 0;
}

static void loop(struct master *m)
{
	struct pollfd *pfds = NULL;
	size_t cap = 0;

	while (!got_term) {
		size_t n = m->n_engines;
		int rc;

		if (n + 1 > cap) {
			struct pollfd *grown = realloc(pfds, (n + 1) * sizeof(*grown));

			if (grown == NULL) {
				log_error("out of memory");
				break;
			}
			pfds = grown;
			cap = n + 1;
		}
		for (size_t i = 0; i < n; i++) {
			const struct engine_proc *e = &m->engines[i];

			pfds[i] = (struct pollfd){ .fd = e->pid != 0 ? e->fd : -1, .events = POLLIN };
			if (e->n_out > 0)
				pfds[i].events |= POLLOUT;
		}
		pfds[n] = (struct pollfd){ .fd = signal_pipe[0], .events = POLLIN };
		rc = poll(pfds, n + 1, poll_timeout(m));
		if (rc < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			break;
		}
		if (pfds[n].revents != 0)
			drain_signal_pipe();
		if (rc > 0)
			serve_engines(m, pfds, n);
		if (got_chld) {
			got_chld = 0;
			reap(m);
		}
		timers(m);
		if (m->reload_retiring && !old_engines_accepting(m))
			reload_finish(m);
		if (got_hup) {
			got_hup = 0;
			reload(m);
		}
	}
	free(pfds);
}

static size_t engines_alive(const struct master *m)
{
	size_t alive = 0;

	for (size_t i = 0; i < m->n_engines; i++)
		if (m->engines[i].pid != 0)
			alive++;
	return alive;
}

static void wait_all(struct master *m, long long deadline)
{
	while (engines_alive(m) > 0 || m->n_children > 0) {
		struct pollfd pfd = { .fd = signal_pipe[0], .events = POLLIN };

		reap(m);
		if ((engines_alive(m) == 0 && m->n_children == 0) || stream_ms_left(deadline) == 0)
			break;
		poll(&pfd, 1, stream_ms_left(deadline));
		drain_signal_pipe();
	}
	reap(m);
}

static void signal_all(struct master *m, int sig)
{
	for (size_t i = 0; i < m->n_engines; i++)
		if (m->engines[i].pid != 0)
			kill(m->engines[i].pid, sig);
	for (size_t i = 0; i < m->n_children; i++)
		kill(m->children[i], sig);
}

static void shutdown_all(struct master *m)
{
	unsigned grace = m->current->cfg->shutdown_grace;

	m->stopping = true;
	close_all_sockets(m);
	log_info("shutting down sessions=%zu grace=%us", m->sessions.count, grace);
	for (size_t i = 0; i < m->n_engines; i++) {
		struct engine_proc *e = &m->engines[i];

		if (e->pid == 0)
			continue;
		if (e->fd >= 0) {
			e->state = ENGINE_STOPPING;
			tell_engine(e, CHAN_ENGINE_STOP, grace);
			flush_engine(e);
		} else {
			kill(e->pid, SIGTERM);
		}
	}
	wait_all(m, stream_now_ms() + (long long)grace * 1000 + 1000);
	if (engines_alive(m) > 0 || m->n_children > 0) {
		log_info("ending what is left after the grace period");
		signal_all(m, SIGTERM);
		wait_all(m, stream_now_ms() + KILL_WAIT_MS);
	}
	if (engines_alive(m) > 0 || m->n_children > 0) {
		signal_all(m, SIGKILL);
		wait_all(m, stream_now_ms() + KILL_WAIT_MS);
	}
}

/* ---- start-up -------------------------------------------------------------------- */

int master_check(struct mg_config *cfg, char *err, size_t errlen)
{
	struct mg_tls_server *server[MG_PROTO_COUNT] = { NULL };
	int rc = 0;

	/* What each engine loads at start, loaded once here to prove it loads. */
	for (size_t i = 0; rc == 0 && i < cfg->n_listeners; i++) {
		enum mg_protocol protocol = cfg->listeners[i].protocol;

		if (server[protocol] == NULL &&
		    (server[protocol] = tls_server_new(&cfg->tls, protocol, err, errlen)) == NULL)
			rc = -1;
	}
	for (size_t i = 0; rc == 0 && i < cfg->n_backends; i++) {
		struct mg_tls_client *client;
		char detail[256];

		if (cfg->backends[i].tls == MG_BACKEND_TLS_NONE)
			continue;
		client = tls_client_new(&cfg->backends[i], detail, sizeof(detail));
		if (client == NULL) {
			snprintf(err, errlen, "backend %s: %s", cfg->backends[i].name, detail);
			rc = -1;
		}
		tls_client_free(client);
	}
	for (size_t i = 0; i < MG_PROTO_COUNT; i++)
		tls_server_free(server[i]);
	config_free(cfg);
	return rc;
}

static int write_pid_file(const char *path, char *err, size_t errlen)
{
	char line[32];
	int len = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0 || write(fd, line, (size_t)len) != len) {
		snprintf(err, errlen, "pid file %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int daemonize(char *err, size_t errlen)
{
	pid_t pid = fork();
	int null;

	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0)
		_exit(0);
	setsid();
	if (chdir("/") < 0) {
		snprintf(err, errlen, "chdir /: %s", strerror(errno));
		return -1;
	}
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	return 0;
}

/* Wait (bounded) for the first generation's engines: certificates load there. */
static int wait_first_generation(struct master *m, char *err, size_t errlen)
{
	long long deadline = stream_now_ms() + 30000;

	while (!generation_ready(m, m->current)) {
		struct pollfd pfds[64 + 1];
		size_t n = m->n_engines < 64 ? m->n_engines : 64;

		/* READY is an engine's first message; what follows is the loop's. */
		for (size_t i = 0; i < n; i++)
			pfds[i] = (struct pollfd){
				.fd = m->engines[i].pid != 0 && m->engines[i].state == ENGINE_STARTING
					      ? m->engines[i].fd : -1,
				.events = POLLIN };
		if (stream_ms_left(deadline) == 0 || poll(pfds, n, stream_ms_left(deadline)) <= 0) {
			snprintf(err, errlen, "the TLS engines did not start in time");
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			unsigned char buf[CHAN_MSG_MAX];
			int fds[CHAN_MAX_FDS];
			size_t nfds = 0;
			long len;
			struct chan_reader r;

			if (!(pfds[i].revents & (POLLIN | POLLHUP)))
				continue;
			len = chan_recv(m->engines[i].fd, buf, fds, &nfds);
			chan_close_fds(fds, nfds);
			if (len <= 0) {
				snprintf(err, errlen, "a TLS engine ended during start-up");
				return -1;
			}
			if (buf[0] == CHAN_ENGINE_FAILED) {
				chan_reader_init(&r, buf + 1, (size_t)len - 1);
				chan_get_str(&r, err, errlen);
				return -1;
			}
			if (buf[0] == CHAN_ENGINE_READY)
				m->engines[i].state = ENGINE_READY;
		}
	}
	return 0;
}

static int make_ticket_keys(struct master *m, char *err, size_t errlen)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	if (p == MAP_FAILED) {
		snprintf(err, errlen, "mmap: %s", strerror(errno));
		return -1;
	}
	if (madvise(p, (size_t)page, MADV_WIPEONFORK) < 0 || madvise(p, (size_t)page,
								       MADV_DONTDUMP) < 0) {
		snprintf(err, errlen, "madvise: %s", strerror(errno));
		munmap(p, (size_t)page);
		return -1;
	}
	if (getrandom(p, TLS_TICKET_KEYS_LEN, 0) != TLS_TICKET_KEYS_LEN) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		munmap(p, (size_t)page);
		return -1;
	}
	m->ticket_keys = p;
	return 0;
}

static void master_free(struct master *m)
{
	while (m->gens != NULL) {
		struct generation *g = m->gens;

		m->gens = g->next;
		generation_free(g);
	}
	for (size_t i = 0; i < m->n_engines; i++)
		engine_gone(m, &m->engines[i]);
	free(m->engines);
	free(m->sockets);
	free(m->children);
	free(m->requests);
	connlimit_free(&m->sessions);
	if (m->ticket_keys != NULL) {
		explicit_bzero(m->ticket_keys, TLS_TICKET_KEYS_LEN);
		munmap(m->ticket_keys, (size_t)sysconf(_SC_PAGESIZE));
	}
}

int master_run(struct mg_config *cfg, const char *config_path, bool foreground)
{
	struct master m = { .config_path = config_path };
	char err[512];

	connlimit_init(&m.sessions);
	config_warnings(cfg, log_warning_cb, NULL);
	m.current = generation_new(&m, cfg, err, sizeof(err));
	if (m.current == NULL || install_signals(err, sizeof(err)) < 0 ||
	    make_ticket_keys(&m, err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto fail;
	}
	m.gens = m.current;
	if (!foreground) {
		if (daemonize(err, sizeof(err)) < 0 ||
		    write_pid_file(m.current->cfg->pid_file, err, sizeof(err)) < 0) {
			log_error("%s", err);
			goto fail;
		}
	}
	prctl(PR_SET_NAME, "mailgated");
	/* After daemonize (the supervisor follows its parent); it needs root for PAM. */
	if (config_uses_pam(m.current->cfg) && start_authd(&m, err, sizeof(err)) < 0) {
		log_error("auth process: %s", err);
		goto fail;
	}
	if (geteuid() != 0)
		log_warning("not started as root: running as uid %ld, no privileges to drop, "
			    "session children are not sandboxed", (long)getuid());
	if (spawn_generation(&m, m.current) < 0 ||
	    wait_first_generation(&m, err, sizeof(err)) < 0) {
		log_error("%s", err);
		m.stopping = true;
		signal_all(&m, SIGTERM);
		wait_all(&m, stream_now_ms() + KILL_WAIT_MS);
		goto fail;
	}
	log_listeners(m.current);
	log_info("mailgated %s ready engines=%u", MG_VERSION, m.current->engines);

	loop(&m);
	shutdown_all(&m);
	authd_stop(&m.authd);
	log_info("mailgated stopped");
	if (!foreground)
		unlink(m.current->cfg->pid_file);
	master_free(&m);
	return 0;
fail:
	authd_stop(&m.authd);
	close_all_sockets(&m);
	if (m.gens == NULL)
		generation_free(m.current);
	master_free(&m);
	return -1;
}
