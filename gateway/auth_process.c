/*
 * auth_process.c - the master's side of the PAM auth process: check the
 * options, fork the supervisor (auth_supervisor.c) while still root, and
 * stop it; the session's side of the exchange is auth_client.c, the workers
 * that run PAM are auth_worker.c.
 *
 * Descriptors the master makes at the start:
 *  - one SOCK_SEQPACKET socketpair. The master keeps the session end and
 *    every session child inherits it; all workers share the other end and
 *    block in recvmsg() on it, so each request datagram reaches exactly one
 *    idle worker. No queue of our own, no dispatcher to stall.
 *  - SO_PASSCRED on the workers' end: the kernel attaches the sending
 *    process's pid to every request, which the session cannot choose.
 *  - a lifeline pipe: the master keeps the write end (and closes it in every
 *    session child, authd_session_init()); its EOF stops the supervisor.
 * Per request, the session adds a fresh socketpair of its own (auth_client.c).
 *
 * Master-user logins: the master serialises the backend -> master_user_file
 * table into its own handle (authd_start()), so a reload that frees the
 * configuration cannot pull it away; the supervisor copies it at fork, and
 * authd_same_limits() compares a new configuration against it to decide
 * whether a reload must restart the auth process.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth_process.h"
#include "auth_process_internal.h"
#include "clock.h"
#include "config.h"
#include "log.h"

/* The supervisor's own grace for its workers, then a second to exit. */
#define MASTER_STOP_WAIT_MS	(AUTHD_STOP_WAIT_MS + 1000)

_Static_assert(MG_MASTER_BACKENDS_MAX <= AUTHD_MASTER_LOGINS_MAX,
	       "config.c allows no more master-login backends than authd takes");
_Static_assert(MG_MASTER_BACKENDS_MAX * (AUTH_BACKEND_MAX + 1 + MG_MASTER_USER_FILE_MAX + 1) <=
	       AUTHD_LOGIN_TABLE_MAX, "every master-login table config.c allows fits");

/* The table's format is ours (build_login_table() below); the worker reads it too. */
const char *authd_login_table_file(const char *table, size_t table_len, const char *backend,
				   size_t len)
{
	size_t pos = 0;

	while (pos < table_len) {
		const char *name = table + pos;
		size_t name_len = strlen(name);
		const char *file = name + name_len + 1;

		if (name_len == len && memcmp(name, backend, len) == 0)
			return file;
		pos += name_len + 1 + strlen(file) + 1;
	}
	return NULL;
}

/* A PAM service names a file under /etc/pam.d, a backend a config section. */
static bool name_ok(const char *name, size_t max)
{
	size_t len = name != NULL ? strnlen(name, max + 1) : 0;

	if (len == 0 || len > max)
		return false;
	/* No '/', nothing odd. */
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Serialise the master-login table into out's own storage. */
static int build_login_table(const struct authd_options *opt, struct authd *out, char *err,
			     size_t errlen)
{
	size_t used = 0;

	if (opt->n_master_logins > AUTHD_MASTER_LOGINS_MAX ||
	    (opt->n_master_logins > 0 && opt->master_logins == NULL)) {
		snprintf(err, errlen, "master-login backends %zu over %d", opt->n_master_logins,
			 AUTHD_MASTER_LOGINS_MAX);
		return -1;
	}
	for (size_t i = 0; i < opt->n_master_logins; i++) {
		const struct authd_master_login *m = &opt->master_logins[i];
		size_t name_len, file_len;

		if (!name_ok(m->backend, AUTH_BACKEND_MAX)) {
			snprintf(err, errlen, "master-login backend name must be 1..%d letters, "
				 "digits, '.', '_' or '-'", AUTH_BACKEND_MAX);
			return -1;
		}
		if (authd_login_table_file(out->login_table, used, m->backend,
					   strlen(m->backend)) != NULL) {
			snprintf(err, errlen, "master-login backend %s given twice", m->backend);
			return -1;
		}
		name_len = strlen(m->backend);
		file_len = m->file != NULL ? strlen(m->file) : 0;
		if (file_len == 0) {
			snprintf(err, errlen, "master-login backend %s has no master_user_file",
				 m->backend);
			return -1;
		}
		if (AUTHD_LOGIN_TABLE_MAX - used < name_len + 1 + file_len + 1) {
			snprintf(err, errlen, "master-login table over %d bytes",
				 AUTHD_LOGIN_TABLE_MAX);
			return -1;
		}
		memcpy(out->login_table + used, m->backend, name_len + 1);
		used += name_len + 1;
		memcpy(out->login_table + used, m->file, file_len + 1);
		used += file_len + 1;
	}
	out->login_table_len = used;
	return 0;
}

int authd_start(const struct authd_options *opt, struct authd *out, char *err, size_t errlen)
{
	int sp[2], lifeline[2];
	int one = 1;
	sigset_t all, old;
	pid_t master = getpid();
	pid_t pid;

	memset(out, 0, sizeof(*out));
	out->request_fd = -1;
	out->lifeline_fd = -1;
	if (!name_ok(opt->service, AUTHD_SERVICE_MAX) || opt->service[0] == '.') {
		snprintf(err, errlen, "PAM service name must be 1..%d letters, digits, '.', '_' "
			 "or '-'", AUTHD_SERVICE_MAX);
		return -1;
	}
	if (opt->workers < 1 || opt->workers > AUTHD_WORKERS_MAX) {
		snprintf(err, errlen, "auth workers %u outside 1..%d", opt->workers,
			 AUTHD_WORKERS_MAX);
		return -1;
	}
	if (opt->timeout_s < 1 || opt->timeout_s > AUTHD_TIMEOUT_MAX) {
		snprintf(err, errlen, "auth timeout %us outside 1..%d", opt->timeout_s,
			 AUTHD_TIMEOUT_MAX);
		return -1;
	}
	/* 0 is refused, not read as "unlimited". */
	if (opt->max_requests_per_session < 1 ||
	    opt->max_requests_per_session > AUTHD_REQUESTS_MAX) {
		snprintf(err, errlen, "auth requests per session %u outside 1..%d",
			 opt->max_requests_per_session, AUTHD_REQUESTS_MAX);
		return -1;
	}
	if (build_login_table(opt, out, err, errlen) < 0) {
		memset(out->login_table, 0, sizeof(out->login_table));
		out->login_table_len = 0;
		return -1;
	}
	out->max_requests = opt->max_requests_per_session;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		snprintf(err, errlen, "auth socketpair: %s", strerror(errno));
		return -1;
	}
	/* Every request then arrives with its sender's pid, as the kernel knows it. */
	if (setsockopt(sp[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
		snprintf(err, errlen, "auth socket SO_PASSCRED: %s", strerror(errno));
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	if (pipe2(lifeline, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "auth lifeline pipe: %s", strerror(errno));
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	/* Unwritten stdio output would otherwise be written again by the children. */
	fflush(NULL);
	/* No handler of the master may run in the child before it installs its own. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		authd_supervisor_main(opt, out, sp[1], lifeline[0], master);
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(sp[1]);
	close(lifeline[0]);
	if (pid < 0) {
		snprintf(err, errlen, "auth supervisor fork: %s", strerror(errno));
		close(sp[0]);
		close(lifeline[1]);
		return -1;
	}
	out->running = true;
	out->request_fd = sp[0];
	out->lifeline_fd = lifeline[1];
	out->supervisor = pid;
	return 0;
}

int authd_options_from_config(const struct mg_config *cfg, struct authd_options *opt,
			      struct authd_master_login *table, char *err, size_t errlen)
{
	size_t n = 0;

	memset(opt, 0, sizeof(*opt));
	opt->service = cfg->pam_service;
	opt->workers = cfg->auth_workers;
	opt->timeout_s = cfg->auth_timeout;
	/* A session makes at most max_auth_failures failed logins, then closes. */
	opt->max_requests_per_session = cfg->max_auth_failures;
	for (size_t i = 0; i < cfg->n_backends; i++) {
		const struct mg_backend_config *b = &cfg->backends[i];

		if (b->login != MG_BACKEND_LOGIN_MASTER)
			continue;
		if (n == AUTHD_MASTER_LOGINS_MAX) {
			snprintf(err, errlen, "more than %d backends with backend_login = master",
				 AUTHD_MASTER_LOGINS_MAX);
			return -1;
		}
		table[n].backend = b->name;
		table[n].file = b->master_user_file;
		n++;
	}
	opt->master_logins = table;
	opt->n_master_logins = n;
	return 0;
}

bool authd_same_limits(const struct authd *authd, const struct authd_options *opt)
{
	size_t entries = 0;

	if (authd->max_requests != opt->max_requests_per_session)
		return false;
	for (size_t pos = 0; pos < authd->login_table_len; entries++) {
		const char *name = authd->login_table + pos;
		const char *file = name + strlen(name) + 1;

		pos += strlen(name) + 1 + strlen(file) + 1;
	}
	if (entries != opt->n_master_logins)
		return false;
	for (size_t i = 0; i < opt->n_master_logins; i++) {
		const struct authd_master_login *m = &opt->master_logins[i];
		const char *file;

		if (m->backend == NULL || m->file == NULL)
			return false;
		/* A name twice could stand in for one that is missing. */
		for (size_t k = 0; k < i; k++) {
			if (strcmp(opt->master_logins[k].backend, m->backend) == 0)
				return false;
		}
		file = authd_login_table_file(authd->login_table, authd->login_table_len,
					      m->backend, strlen(m->backend));
		if (file == NULL || strcmp(file, m->file) != 0)
			return false;
	}
	return true;
}

void authd_session_init(struct authd *authd)
{
	if (!authd->running || authd->lifeline_fd < 0)
		return;
	close(authd->lifeline_fd);
	authd->lifeline_fd = -1;
}

void authd_stop(struct authd *authd)
{
	long long deadline = mg_now_ms() + MASTER_STOP_WAIT_MS;
	pid_t pid = authd->supervisor;

	if (!authd->running)
		return;
	authd->running = false;
	if (authd->request_fd >= 0)
		close(authd->request_fd);
	if (authd->lifeline_fd >= 0)
		close(authd->lifeline_fd);
	authd->request_fd = -1;
	authd->lifeline_fd = -1;
	authd->supervisor = 0;
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (;;) {
		int status;
		pid_t rc = waitpid(pid, &status, WNOHANG);
		struct timespec pause = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };

		/* ECHILD: the caller's own SIGCHLD handling reaped it already. */
		if (rc == pid || (rc < 0 && errno != EINTR))
			return;
		if (mg_ms_left(deadline) == 0)
			break;
		nanosleep(&pause, NULL);
	}
	log_warning("auth supervisor pid=%ld did not stop, killing it", (long)pid);
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}
