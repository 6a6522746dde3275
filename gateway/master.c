/*
 * master.c - the master process: bind, drop privileges, accept, fork, reap.
 *
 * Start-up is pre-init (configuration, TLS material, every listening socket),
 * then privileges are dropped in one call, then the loop. The master never
 * reads a byte a client sends: it only counts connections, refuses those over
 * a limit with one protocol line, and forks a child for each of the others.
 * Signals reach the loop through a self-pipe, so the handlers do nothing but
 * set a flag and write one byte.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "authd.h"
#include "connlimit.h"
#include "log.h"
#include "master.h"
#include "netaddr.h"
#include "privdrop.h"
#include "protocol.h"
#include "session.h"
#include "tls.h"

#define ACCEPT_BURST 32
#define KILL_WAIT_MS 2000

/* What a configuration needs at run time, built before any fork. */
struct runtime {
	struct mg_config *cfg;
	struct mg_tls_server *tls_server[MG_PROTO_COUNT];
	struct mg_tls_client **backend_tls;
};

struct listen_socket {
	int fd;
	size_t listener;	/* index into cfg->listeners */
	char addr[INET6_ADDRSTRLEN + 8];
};

struct master {
	const char *config_path;
	struct authd authd;		/* the PAM auth process, when any login uses PAM */
	char authd_service[AUTHD_SERVICE_MAX + 1];	/* what it was started with */
	unsigned authd_workers;
	unsigned authd_timeout;
	struct runtime *rt;
	struct listen_socket *sockets;
	size_t n_sockets;
	struct connlimit children;
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

static void runtime_free(struct runtime *rt)
{
	if (rt == NULL)
		return;
	for (size_t i = 0; i < MG_PROTO_COUNT; i++)
		tls_server_free(rt->tls_server[i]);
	if (rt->backend_tls != NULL) {
		for (size_t i = 0; i < rt->cfg->n_backends; i++)
			tls_client_free(rt->backend_tls[i]);
	}
	free(rt->backend_tls);
	config_free(rt->cfg);
	free(rt);
}

/* Takes ownership of cfg. */
static struct runtime *runtime_build(struct mg_config *cfg, char *err, size_t errlen)
{
	struct runtime *rt = calloc(1, sizeof(*rt));

	if (rt == NULL) {
		config_free(cfg);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rt->cfg = cfg;
	rt->backend_tls = calloc(cfg->n_backends, sizeof(*rt->backend_tls));
	if (rt->backend_tls == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		enum mg_protocol protocol = cfg->listeners[i].protocol;

		if (protocol_ops(protocol) == NULL) {
			snprintf(err, errlen, "listen %s: protocol %s is not supported yet",
				 cfg->listeners[i].name, config_protocol_name(protocol));
			goto fail;
		}
		if (rt->tls_server[protocol] != NULL)
			continue;
		rt->tls_server[protocol] = tls_server_new(&cfg->tls, protocol, err, errlen);
		if (rt->tls_server[protocol] == NULL)
			goto fail;
	}
	for (size_t i = 0; i < cfg->n_backends; i++) {
		char detail[256];

		if (cfg->backends[i].tls == MG_BACKEND_TLS_NONE)
			continue;
		rt->backend_tls[i] = tls_client_new(&cfg->backends[i], detail, sizeof(detail));
		if (rt->backend_tls[i] == NULL) {
			snprintf(err, errlen, "backend %s: %s", cfg->backends[i].name, detail);
			goto fail;
		}
	}
	return rt;
fail:
	runtime_free(rt);
	return NULL;
}

int master_check(struct mg_config *cfg, char *err, size_t errlen)
{
	struct runtime *rt = runtime_build(cfg, err, errlen);

	if (rt == NULL)
		return -1;
	runtime_free(rt);
	return 0;
}

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

static int open_listeners(struct master *m, char *err, size_t errlen)
{
	const struct mg_config *cfg = m->rt->cfg;
	size_t total = 0;

	for (size_t i = 0; i < cfg->n_listeners; i++)
		total += cfg->listeners[i].n_addresses;
	m->sockets = calloc(total, sizeof(*m->sockets));
	if (m->sockets == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct mg_listener_config *l = &cfg->listeners[i];

		for (size_t a = 0; a < l->n_addresses; a++) {
			struct listen_socket *s = &m->sockets[m->n_sockets];
			char detail[256];

			s->fd = open_listener(l->addresses[a], l->port, detail, sizeof(detail));
			if (s->fd < 0) {
				snprintf(err, errlen, "listen %s: %s", l->name, detail);
				return -1;
			}
			s->listener = i;
			snprintf(s->addr, sizeof(s->addr), "%s%s%s:%u",
				 strchr(l->addresses[a], ':') != NULL ? "[" : "", l->addresses[a],
				 strchr(l->addresses[a], ':') != NULL ? "]" : "", l->port);
			m->n_sockets++;
		}
	}
	return 0;
}

static void close_listeners(struct master *m)
{
	for (size_t i = 0; i < m->n_sockets; i++) {
		if (m->sockets[i].fd >= 0)
			close(m->sockets[i].fd);
		m->sockets[i].fd = -1;
	}
}

/* Sockets cannot be re-bound after the privilege drop: listeners must match. */
static int same_listeners(const struct mg_config *a, const struct mg_config *b, char *err,
			  size_t errlen)
{
	if (a->n_listeners != b->n_listeners) {
		snprintf(err, errlen, "the set of listeners changed; that needs a restart");
		return 0;
	}
	for (size_t i = 0; i < a->n_listeners; i++) {
		const struct mg_listener_config *x = &a->listeners[i], *y = &b->listeners[i];
		bool same = strcmp(x->name, y->name) == 0 && x->protocol == y->protocol &&
			    x->port == y->port && x->n_addresses == y->n_addresses;

		for (size_t k = 0; same && k < x->n_addresses; k++)
			same = strcmp(x->addresses[k], y->addresses[k]) == 0;
		if (!same) {
			snprintf(err, errlen,
				 "listener %s changed its protocol, addresses or port; that needs "
				 "a restart", x->name);
			return 0;
		}
	}
	return 1;
}

/* The auth process runs as root: it can only be started before the privilege drop. */
static int same_auth_process(const struct master *m, const struct mg_config *next, char *err,
			     size_t errlen)
{
	if (!config_uses_pam(next))
		return 1;
	if (!m->authd.running) {
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

static void log_warning_cb(const char *msg, void *arg)
{
	log_warning("config %s", msg);
}

static void reload(struct master *m)
{
	struct mg_config *cfg = NULL;
	struct runtime *rt;
	char err[512];

	log_info("reload requested config=%s", m->config_path);
	if (config_load(m->config_path, &cfg, err, sizeof(err)) < 0) {
		log_error("reload failed, keeping the running configuration: %s", err);
		return;
	}
	if (!same_listeners(m->rt->cfg, cfg, err, sizeof(err)) ||
	    !same_auth_process(m, cfg, err, sizeof(err))) {
		log_error("reload failed, keeping the running configuration: %s", err);
		config_free(cfg);
		return;
	}
	rt = runtime_build(cfg, err, sizeof(err));
	if (rt == NULL) {
		log_error("reload failed, keeping the running configuration: %s", err);
		return;
	}
	config_warnings(rt->cfg, log_warning_cb, NULL);
	/* Sessions already forked keep their own copy; only new ones see this. */
	runtime_free(m->rt);
	m->rt = rt;
	log_set_level(rt->cfg->log_level);
	log_info("reload done config=%s", m->config_path);
}

static void reap(struct master *m)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (m->authd.running && pid == m->authd.supervisor) {
			/* Every PAM login now fails temporarily; say so loudly. */
			log_error("auth process %ld ended; PAM logins fail until mailgated restarts",
				  (long)pid);
			m->authd.supervisor = 0;
			continue;
		}
		if (connlimit_remove(&m->children, pid) < 0)
			continue;
		if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM && WTERMSIG(status) != SIGKILL)
			log_error("session process %ld died of signal %d", (long)pid,
				  WTERMSIG(status));
		else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			log_warning("session process %ld exited with status %d", (long)pid,
				    WEXITSTATUS(status));
	}
}

static void refuse(const struct master *m, int fd, const struct mg_listener_config *l,
		   enum connlimit_verdict verdict, const struct sockaddr_storage *peer)
{
	const struct mg_protocol_ops *ops = protocol_ops(l->protocol);
	const char *text = verdict == CONNLIMIT_PER_IP ? ops->refusal_per_ip : ops->refusal_busy;
	char addr[INET6_ADDRSTRLEN + 8];

	log_warning("connection refused client=%s listener=%s reason=%s",
		    netaddr_format((const struct sockaddr *)peer, addr, sizeof(addr)), l->name,
		    verdict == CONNLIMIT_PER_IP ? "max-connections-per-ip" : "max-connections");
	/*
	 * One non-blocking send of the refusal line. On an implicit-TLS listener
	 * a cleartext line would be noise to the client's TLS stack, so the
	 * connection is just closed there.
	 */
	if (l->tls == MG_LISTEN_STARTTLS && send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("refusal not sent: %s", strerror(errno));
	close(fd);
}

static void child_main(struct master *m, const struct listen_socket *s, int fd,
		       const struct sockaddr_storage *peer)
{
	const struct runtime *rt = m->rt;
	struct mg_session_env env = {
		.cfg = rt->cfg,
		.listener = &rt->cfg->listeners[s->listener],
		.tls_server = rt->tls_server[rt->cfg->listeners[s->listener].protocol],
		.backend_tls = rt->backend_tls,
		.authd_fd = m->authd.running ? m->authd.request_fd : -1,
	};

	/* Keep only what this session needs: its socket and the config. */
	close_listeners(m);
	close(signal_pipe[0]);
	close(signal_pipe[1]);
	authd_session_init(&m->authd);
	signal(SIGHUP, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	log_set_prefix("session");
	session_run(&env, fd, peer);
	_exit(0);
}

static void accept_on(struct master *m, const struct listen_socket *s)
{
	const struct mg_config *cfg = m->rt->cfg;
	const struct mg_listener_config *l = &cfg->listeners[s->listener];

	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof(peer);
		struct mg_ipkey key;
		enum connlimit_verdict verdict;
		pid_t pid;
		int fd = accept4(s->fd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_error("accept on %s: %s", s->addr, strerror(errno));
			return;
		}
		if (netaddr_key((const struct sockaddr *)&peer, &key) < 0) {
			close(fd);
			continue;
		}
		verdict = connlimit_check(&m->children, &key, cfg->max_connections,
					  cfg->max_connections_per_ip);
		if (verdict != CONNLIMIT_OK) {
			refuse(m, fd, l, verdict, &peer);
			continue;
		}
		pid = fork();
		if (pid < 0) {
			log_error("fork: %s", strerror(errno));
			refuse(m, fd, l, CONNLIMIT_TOTAL, &peer);
			continue;
		}
		if (pid == 0)
			child_main(m, s, fd, &peer);
		close(fd);
		if (connlimit_add(&m->children, pid, &key) < 0)
			log_error("out of memory counting connections");
	}
}

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

static void wait_children(struct master *m, long long deadline)
{
	while (m->children.count > 0) {
		struct pollfd pfd = { .fd = signal_pipe[0], .events = POLLIN };
		long long left = deadline - stream_now_ms();

		reap(m);
		if (m->children.count == 0 || left <= 0)
			break;
		poll(&pfd, 1, (int)left);
		drain_signal_pipe();
	}
	reap(m);
}

static void signal_children(struct master *m, int sig)
{
	for (size_t i = 0; i < m->children.count; i++)
		kill(m->children.entries[i].pid, sig);
}

static void shutdown_sessions(struct master *m)
{
	unsigned grace = m->rt->cfg->shutdown_grace;

	close_listeners(m);
	log_info("shutting down sessions=%zu grace=%us", m->children.count, grace);
	wait_children(m, stream_now_ms() + (long long)grace * 1000);
	if (m->children.count > 0) {
		log_info("ending %zu sessions after the grace period", m->children.count);
		signal_children(m, SIGTERM);
		wait_children(m, stream_now_ms() + KILL_WAIT_MS);
	}
	if (m->children.count > 0) {
		signal_children(m, SIGKILL);
		wait_children(m, stream_now_ms() + KILL_WAIT_MS);
	}
}

static void loop(struct master *m)
{
	struct pollfd *pfds = calloc(m->n_sockets + 1, sizeof(*pfds));

	if (pfds == NULL) {
		log_error("out of memory");
		return;
	}
	pfds[0] = (struct pollfd){ .fd = signal_pipe[0], .events = POLLIN };
	for (size_t i = 0; i < m->n_sockets; i++)
		pfds[i + 1] = (struct pollfd){ .fd = m->sockets[i].fd, .events = POLLIN };

	while (!got_term) {
		int rc = poll(pfds, m->n_sockets + 1, -1);

		if (rc < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			break;
		}
		if (pfds[0].revents != 0)
			drain_signal_pipe();
		if (got_chld) {
			got_chld = 0;
			reap(m);
		}
		if (got_hup) {
			got_hup = 0;
			reload(m);
		}
		if (got_term)
			break;
		for (size_t i = 0; rc > 0 && i < m->n_sockets; i++) {
			if (pfds[i + 1].revents & POLLIN)
				accept_on(m, &m->sockets[i]);
		}
	}
	free(pfds);
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

int master_run(struct mg_config *cfg, const char *config_path, bool foreground)
{
	struct master m = { .config_path = config_path };
	char err[512];
	int rc;

	connlimit_init(&m.children);
	config_warnings(cfg, log_warning_cb, NULL);
	m.rt = runtime_build(cfg, err, sizeof(err));
	if (m.rt == NULL || open_listeners(&m, err, sizeof(err)) < 0 ||
	    install_signals(err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto fail;
	}
	if (!foreground) {
		if (daemonize(err, sizeof(err)) < 0 ||
		    write_pid_file(m.rt->cfg->pid_file, err, sizeof(err)) < 0) {
			log_error("%s", err);
			goto fail;
		}
	}
	/* After daemonize (the supervisor follows its parent), before the drop (PAM needs root). */
	if (config_uses_pam(m.rt->cfg)) {
		if (authd_start(m.rt->cfg->pam_service, m.rt->cfg->auth_workers,
				m.rt->cfg->auth_timeout, &m.authd, err, sizeof(err)) < 0) {
			log_error("auth process: %s", err);
			goto fail;
		}
		log_info("auth process started service=%s workers=%u", m.rt->cfg->pam_service,
			 m.rt->cfg->auth_workers);
		snprintf(m.authd_service, sizeof(m.authd_service), "%s", m.rt->cfg->pam_service);
		m.authd_workers = m.rt->cfg->auth_workers;
		m.authd_timeout = m.rt->cfg->auth_timeout;
	}
	rc = privdrop(m.rt->cfg->user, m.rt->cfg->group, err, sizeof(err));
	if (rc < 0) {
		log_error("privilege drop failed: %s", err);
		goto fail;
	}
	if (rc > 0)
		log_warning("not started as root: running as uid %ld, no privileges to drop",
			    (long)getuid());
	for (size_t i = 0; i < m.n_sockets; i++)
		log_info("listening listener=%s address=%s protocol=%s tls=%s",
			 m.rt->cfg->listeners[m.sockets[i].listener].name, m.sockets[i].addr,
			 config_protocol_name(m.rt->cfg->listeners[m.sockets[i].listener].protocol),
			 m.rt->cfg->listeners[m.sockets[i].listener].tls == MG_LISTEN_IMPLICIT
				 ? "implicit" : "starttls");
	log_info("mailgated %s ready", MG_VERSION);

	loop(&m);
	shutdown_sessions(&m);
	authd_stop(&m.authd);
	log_info("mailgated stopped");
	if (!foreground)
		unlink(m.rt->cfg->pid_file);
	runtime_free(m.rt);
	free(m.sockets);
	connlimit_free(&m.children);
	return 0;
fail:
	authd_stop(&m.authd);
	close_listeners(&m);
	free(m.sockets);
	runtime_free(m.rt);
	connlimit_free(&m.children);
	return -1;
}
