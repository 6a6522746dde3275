/*
 * master.c - the master process: its loop, the limits and the session
 * children, the auth process, signals, start-up and shutdown (the engines
 * are master_engines.c's, configurations and reloads master_generation.c's).
 *
 * The master reads the configuration, binds every listener and forks the TLS
 * engines (engine.c), which accept and own every connection. For each
 * connection an engine asks for a session: the master counts it against the
 * global and per-address limits (it is the one authority, for every phase of
 * a session) and either refuses or forks a session child (session.c) that
 * runs the pre-login dialogue with the engine over the channel the engine
 * sent along. The master never reads a byte a client sends and never loads a
 * certificate's key (only the session ticket keys it hands the engines:
 * master_tickets.c), so it may keep root: it restarts engines and the PAM
 * auth process that die, and binds new listeners on reload.
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth_process.h"
#include "chan.h"
#include "clock.h"
#include "master_certwatch.h"
#include "master_connlimit.h"
#include "engine.h"
#include "log.h"
#include "master.h"
#include "master_internal.h"
#include "master_penalty.h"
#include "netaddr.h"
#include "protocol.h"
#include "session_sandbox.h"
#include "engine_tls.h"

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

void log_warning_cb(const char *msg, void *arg)
{
	log_warning("config %s", msg);
}

/* ---- listening sockets ----------------------------------------------------- */

/* ---- generations -------------------------------------------------------------- */

/* ---- engines ------------------------------------------------------------------ */

/* ---- sessions ----------------------------------------------------------------- */

void remember_child(struct master *m, pid_t pid)
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
	const struct mg_config *cfg = m->current->cfg;
	const struct connlimit_limits limits = {
		.max_total = cfg->max_connections,
		.max_per_ip = cfg->max_connections_per_ip,
		.max_prelogin_per_ip = cfg->max_prelogin_per_ip,
	};
	struct generation *g = r->engine->gen;
	enum connlimit_verdict verdict;
	struct mg_ipkey key;
	pid_t pid;

	/* Counted as the penalty counts: an IPv6 client by its network. */
	if (r->engine->pid == 0 || m->stopping ||
	    penalty_address((const struct sockaddr *)&r->client, cfg->ipv6_prefix, &key) < 0) {
		close(r->link);
		return;
	}
	verdict = abuse_banned(m, &r->client)
			  ? CONNLIMIT_BANNED
			  : connlimit_check(&m->sessions, &key, &limits);
	if (verdict != CONNLIMIT_OK) {
		close(r->link);
		answer(r->engine, CHAN_SESSION_REFUSE, r->id, verdict);
		return;
	}
	pid = spares_take(m, g, r->link);
	if (pid == 0) {
		fflush(NULL);
		pid = fork();
		if (pid == 0)
			session_child_main(&g->sandbox, g->cfg, r->link,
					   m->authd.running ? m->authd.request_fd : -1);
		if (pid > 0)
			remember_child(m, pid);
	}
	close(r->link);
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		answer(r->engine, CHAN_SESSION_REFUSE, r->id, CONNLIMIT_TOTAL);
		return;
	}
	if (connlimit_add(&m->sessions, r->engine->group, r->id, &key) < 0)
		log_error("out of memory counting sessions");
	answer(r->engine, CHAN_SESSION_GRANT, r->id, 0);
}

void queue_request(struct master *m, struct engine_proc *e, struct chan_reader *rd,
			  int link)
{
	struct request r = { .engine = e, .link = link };

	r.id = chan_get_u64(rd);
	r.listener = chan_get_u16(rd);
	chan_get_sockaddr(rd, &r.client);
	if (!chan_reader_done(rd) || r.listener >= e->gen->cfg->n_listeners) {
		log_error("engine %ld sent a malformed session request", (long)e->pid);
		close(link);
		return;
	}
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

/* ---- the engine channel -------------------------------------------------------- */

/* ---- reaping -------------------------------------------------------------------- */

static void authd_reaped(struct master *m, int status)
{
	bool young = mg_now_ms() - m->authd_started_ms < ENGINE_YOUNG_MS;

	m->authd.supervisor = 0;
	authd_stop(&m->authd);
	if (m->stopping)
		return;
	/* PAM logins fail (temporarily) until it is back: say so loudly. */
	m->authd_delay_ms = young ? (m->authd_delay_ms == 0 ? RESTART_DELAY_MIN_MS
				     : m->authd_delay_ms * 2 > RESTART_DELAY_MAX_MS
				     ? RESTART_DELAY_MAX_MS : m->authd_delay_ms * 2)
				  : 0;
	m->authd_restart_at = mg_now_ms() + m->authd_delay_ms;
	log_error("auth process ended (%s %d); restarting it in %u ms",
		  WIFSIGNALED(status) ? "signal" : "status",
		  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), m->authd_delay_ms);
}

static int start_authd(struct master *m, char *err, size_t errlen)
{
	const struct mg_config *cfg = m->current->cfg;
	struct authd_master_login logins[AUTHD_MASTER_LOGINS_MAX];
	struct authd_options opt;

	if (authd_options_from_config(cfg, &opt, logins, err, errlen) < 0 ||
	    authd_start(&opt, &m->authd, err, errlen) < 0)
		return -1;
	m->authd_started_ms = mg_now_ms();
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
			spares_forget(m, pid);
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
	if (m->spares_topup_at != 0 && (next == 0 || m->spares_topup_at < next))
		next = m->spares_topup_at;
	if (master_certwatch_due(m) != 0 && (next == 0 || master_certwatch_due(m) < next))
		next = master_certwatch_due(m);
	if (m->tickets.rotate_at != 0 && (next == 0 || m->tickets.rotate_at < next))
		next = m->tickets.rotate_at;
	return next == 0 ? -1 : mg_ms_left(next);
}

static void timers(struct master *m)
{
	long long now = mg_now_ms();
	char err[256];

	if (m->restart_at != 0 && now >= m->restart_at)
		restart_missing_engines(m);
	if (tickets_due(&m->tickets, now))
		rotate_ticket_keys(m);
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
		if (pfds[i].revents & POLLOUT) {
			flush_engine(e);
			if (e->keys_due)
				send_ticket_keys(m, e);
		}
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

		if (n + 2 > cap) {
			struct pollfd *grown = realloc(pfds, (n + 2) * sizeof(*grown));

			if (grown == NULL) {
				log_error("out of memory");
				break;
			}
			pfds = grown;
			cap = n + 2;
		}
		for (size_t i = 0; i < n; i++) {
			const struct engine_proc *e = &m->engines[i];

			pfds[i] = (struct pollfd){ .fd = e->pid != 0 ? e->fd : -1, .events = POLLIN };
			if (e->n_out > 0 || e->keys_due)
				pfds[i].events |= POLLOUT;
		}
		pfds[n] = (struct pollfd){ .fd = signal_pipe[0], .events = POLLIN };
		pfds[n + 1] = (struct pollfd){ .fd = certwatch_fd(m->certwatch), .events = POLLIN };
		rc = poll(pfds, n + 2, poll_timeout(m));
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
		spares_fill(m, rc == 0);
		if (m->reload_retiring && !old_engines_accepting(m))
			reload_finish(m);
		if (got_hup) {
			got_hup = 0;
			reload(m);
		}
		master_certwatch_step(m, rc > 0 && pfds[n + 1].revents != 0);
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
		if ((engines_alive(m) == 0 && m->n_children == 0) || mg_ms_left(deadline) == 0)
			break;
		poll(&pfd, 1, mg_ms_left(deadline));
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
	spares_drop(m);
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
	wait_all(m, mg_now_ms() + (long long)grace * 1000 + 1000);
	if (engines_alive(m) > 0 || m->n_children > 0) {
		log_info("ending what is left after the grace period");
		signal_all(m, SIGTERM);
		wait_all(m, mg_now_ms() + KILL_WAIT_MS);
	}
	if (engines_alive(m) > 0 || m->n_children > 0) {
		signal_all(m, SIGKILL);
		wait_all(m, mg_now_ms() + KILL_WAIT_MS);
	}
}

/* ---- start-up -------------------------------------------------------------------- */

int master_check(struct mg_config *cfg, servers_note_fn *note, void *arg, char *err,
		 size_t errlen)
{
	/* What each engine loads at start, loaded once here to prove it loads. */
	struct engine_servers *servers = servers_load(cfg, true, note, arg, err, errlen);
	int rc = servers != NULL ? tickets_check(cfg, err, errlen) : -1;

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
	servers_free(servers);
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

/*
 * The master keeps root, so it can remove the file wherever root wrote it
 * (the default /run belongs to root). Frees path; NULL (foreground) is none.
 */
static void remove_pid_file(char *path)
{
	if (path == NULL)
		return;
	if (unlink(path) < 0 && errno != ENOENT)
		log_warning("pid file %s not removed: %s", path, strerror(errno));
	free(path);
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
	long long deadline = mg_now_ms() + 30000;

	while (!generation_ready(m, m->current)) {
		struct pollfd pfds[64 + 1];
		size_t n = m->n_engines < 64 ? m->n_engines : 64;

		/* READY is an engine's first message; what follows is the loop's. */
		for (size_t i = 0; i < n; i++)
			pfds[i] = (struct pollfd){
				.fd = m->engines[i].pid != 0 && m->engines[i].state == ENGINE_STARTING
					      ? m->engines[i].fd : -1,
				.events = POLLIN };
		if (mg_ms_left(deadline) == 0 || poll(pfds, n, mg_ms_left(deadline)) <= 0) {
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

static void master_free(struct master *m)
{
	while (m->gens != NULL) {
		struct generation *g = m->gens;

		m->gens = g->next;
		generation_free(g);
	}
	for (size_t i = 0; i < m->n_engines; i++)
		engine_gone(m, &m->engines[i]);
	certwatch_free(m->certwatch);
	free(m->engines);
	free(m->sockets);
	free(m->children);
	free(m->requests);
	connlimit_free(&m->sessions);
	tickets_stop(&m->tickets);
	penalty_free(m->penalty);
}

int master_run(struct mg_config *cfg, const char *config_path, bool foreground)
{
	struct master m = { .config_path = config_path };
	char *pid_file = NULL;	/* the one written, whatever a reload names later */
	char err[512];

	connlimit_init(&m.sessions);
	config_warnings(cfg, log_warning_cb, NULL);
	/*
	 * The key files are read for real after the fork into the background
	 * (below); a bad one fails the start here, before any port is bound and
	 * while a terminal still sees the error.
	 */
	if (tickets_check(cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		config_free(cfg);	/* what generation_new() would have owned */
		goto fail;
	}
	m.current = generation_new(&m, cfg, err, sizeof(err));
	if (m.current == NULL || install_signals(err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto fail;
	}
	m.gens = m.current;
	if (!foreground) {
		if (daemonize(err, sizeof(err)) < 0) {
			log_error("%s", err);
			goto fail;
		}
		pid_file = strdup(m.current->cfg->pid_file);
		if (pid_file == NULL || write_pid_file(pid_file, err, sizeof(err)) < 0) {
			log_error("%s", pid_file != NULL ? err : "out of memory");
			free(pid_file);
			pid_file = NULL;
			goto fail;
		}
	}
	/*
	 * After daemonize: the keys live in a page that a fork wipes
	 * (MADV_WIPEONFORK), so a set made before it would reach the engines
	 * empty, and they would refuse to start.
	 */
	if (tickets_start(&m.tickets, m.current->cfg, mg_now_ms(), err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto fail;
	}
	/* Before anything is forked: every session child inherits the penalty's key. */
	if (abuse_start(&m) < 0) {
		log_error("cannot set up the login penalty: out of memory or randomness");
		goto fail;
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
		wait_all(&m, mg_now_ms() + KILL_WAIT_MS);
		goto fail;
	}
	log_listeners(m.current);
	log_info("mailgated %s ready engines=%u", MG_VERSION, m.current->engines);
	m.started = true;
	m.certwatch = certwatch_new();
	master_certwatch_step(&m, false);

	loop(&m);
	shutdown_all(&m);
	authd_stop(&m.authd);
	log_info("mailgated stopped");
	remove_pid_file(pid_file);
	master_free(&m);
	return 0;
fail:
	authd_stop(&m.authd);
	close_all_sockets(&m);
	remove_pid_file(pid_file);
	if (m.gens == NULL)
		generation_free(m.current);
	master_free(&m);
	return -1;
}
