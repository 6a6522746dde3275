/*
 * master_generation.c - configurations and the engines that run them. A
 * generation is one configuration with its listening sockets (kept across
 * reloads while a listener still uses them; new ones are bound as root). A
 * reload builds the next generation, starts its engines, and once they are
 * all ready retires the old ones, which end with their last session.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "master_internal.h"
#include "protocol.h"
#include "engine_tls.h"

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

void close_all_sockets(struct master *m)
{
	for (size_t i = 0; i < m->n_sockets; i++)
		close(m->sockets[i].fd);
	m->n_sockets = 0;
}

void generation_free(struct generation *g)
{
	if (g == NULL)
		return;
	free(g->listen);
	config_free(g->cfg);
	free(g);
}

/* Takes ownership of cfg. Binds what is new; marks the sockets it uses. */
struct generation *generation_new(struct master *m, struct mg_config *cfg, char *err,
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

void log_listeners(const struct generation *g)
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

void reload_failed(struct master *m, const char *why)
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

/*
 * The auth process runs as root and is started once; PAM settings need a
 * restart. So does what it enforces for the sessions: the per-session
 * request cap (max_auth_failures) and which master_user_file each
 * master-login backend has.
 */
static int same_auth_process(const struct master *m, const struct mg_config *next, char *err,
			     size_t errlen)
{
	struct authd_master_login logins[AUTHD_MASTER_LOGINS_MAX];
	struct authd_options want;

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
	if (authd_options_from_config(next, &want, logins, err, errlen) < 0)
		return 0;
	if (m->authd.max_requests != want.max_requests_per_session) {
		snprintf(err, errlen, "max_auth_failures changed while PAM is in use; that needs a "
			 "restart");
		return 0;
	}
	if (!authd_same_limits(&m->authd, &want)) {
		snprintf(err, errlen, "the backends with backend_login = master or their "
			 "master_user_file changed while PAM is in use; that needs a restart");
		return 0;
	}
	return 1;
}

void reload(struct master *m)
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
	/*
	 * Key files are read again now: every engine, old generation and new,
	 * gets the new set, so a ticket issued by either resumes on both.
	 */
	switch (tickets_reload(&m->tickets, cfg, mg_now_ms(), err, sizeof(err))) {
	case -1:
		log_error("reload failed, keeping the running configuration: %s", err);
		config_free(cfg);
		return;
	case 1:
		log_info("ticket keys replaced set=%u source=%s", (unsigned)m->tickets.set->serial,
			 m->tickets.from_files ? "ticket_key_file" : "made");
		broadcast_ticket_keys(m);
		break;
	default:
		break;
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
void reload_switch(struct master *m)
{
	struct generation *old = m->current;

	m->current = m->pending;
	m->pending = NULL;
	log_set_level(m->current->cfg->log_level);
	abuse_limits(m);
	retire_generation(m, old);
	m->reload_retiring = true;
}

void reload_finish(struct master *m)
{
	m->reload_retiring = false;
	close_unused_sockets(m);
	log_listeners(m->current);
	log_info("reload done config=%s generation=%u", m->config_path, m->current->number);
}
