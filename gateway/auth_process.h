/*
 * auth_process.h - the privilege-separated PAM auth process, and how a session asks it.
 *
 * The master starts it before dropping root: a supervisor that stays
 * privileged, restarts its workers and never reads a client byte, and a small
 * fixed pool of worker processes that run PAM (auth_pam.c). Sessions reach
 * the workers through one shared SOCK_SEQPACKET socket inherited from the
 * master; the kernel hands each request to exactly one waiting worker. Each
 * request carries its own reply socket (SCM_RIGHTS), so a worker that dies
 * closes the only other end and the waiting session sees EOF at once: a
 * temporary failure, never a hang.
 *
 * Two things a session only gets from here, and only within limits:
 *  - the Dovecot master-user password of a backend with backend_login =
 *    master. The master process never keeps it (config.c wipes it after
 *    checking the file), so no session child holds it at fork; a worker
 *    reads the backend's master_user_file afresh after PAM has accepted the
 *    user and puts the password in that OK answer only.
 *  - answers at all: at most max_requests_per_session per session process
 *    (auth_quota.h), the sender known by the pid the kernel attaches.
 */
#ifndef MG_AUTH_PROCESS_H
#define MG_AUTH_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "auth_frame.h"
#include "auth_quota.h"
#include "credentials.h"

#define AUTHD_WORKERS_MAX	64
#define AUTHD_TIMEOUT_MAX	300	/* seconds per PAM call */
#define AUTHD_SERVICE_MAX	64	/* PAM service name length */
#define AUTHD_REQUESTS_MAX	AUTH_QUOTA_CAP_MAX	/* per session process */
#define AUTHD_MASTER_LOGINS_MAX	64	/* backends with backend_login = master */
#define AUTHD_LOGIN_TABLE_MAX	16384	/* bytes: every name and path, NUL-terminated */
#define AUTHD_QUOTA_SLOTS	8192	/* session processes counted at once */

struct mg_config;

/* A backend that logs in as the Dovecot master user, and its credentials file. */
struct authd_master_login {
	const char *backend;	/* 1..AUTH_BACKEND_MAX letters, digits, '_', '-', '.' */
	const char *file;	/* its master_user_file, read by the workers (as root) */
};

struct authd_options {
	const char *service;		/* PAM service: letters, digits, '.', '_', '-' */
	unsigned workers;		/* 1..AUTHD_WORKERS_MAX */
	unsigned timeout_s;		/* per PAM call, 1..AUTHD_TIMEOUT_MAX */
	unsigned max_requests_per_session;	/* 1..AUTHD_REQUESTS_MAX: no "unlimited" */
	const struct authd_master_login *master_logins;	/* names unique */
	size_t n_master_logins;		/* 0..AUTHD_MASTER_LOGINS_MAX */
};

/*
 * The master's handle. A zeroed struct means "not running" and is safe to
 * pass to authd_stop() and authd_session_init().
 */
struct authd {
	bool running;
	int request_fd;		/* session side of the shared socket: sessions keep it */
	int lifeline_fd;	/* write end of a pipe; its EOF tells the supervisor to stop */
	pid_t supervisor;
	/*
	 * What it was (last) started with, for authd_same_limits(): kept by
	 * authd_stop(), so that it still answers while a restart is pending.
	 * The table is "backend\0file\0" per master-login backend, in our own
	 * memory: the configuration it came from may be freed by a reload.
	 */
	unsigned max_requests;
	size_t login_table_len;
	char login_table[AUTHD_LOGIN_TABLE_MAX];
};

/*
 * Fork the supervisor, which forks opt->workers workers that check logins
 * against the PAM service opt->service, each PAM call bounded by
 * opt->timeout_s seconds, each session process answered at most
 * opt->max_requests_per_session times, and that hand out the master-user
 * password of the backends in opt->master_logins (copied: opt may go after
 * the call). Call it while still root and after daemonising (the supervisor
 * also stops when its parent dies). The supervisor and workers keep the
 * privileges of the caller. Returns 0 with *out filled, or -1 with err (and
 * *out not running).
 */
int authd_start(const struct authd_options *opt, struct authd *out, char *err, size_t errlen);

/*
 * The options for cfg: pam_service, auth_workers, auth_timeout,
 * max_auth_failures as the per-session cap, and every backend with
 * backend_login = master. opt points into cfg and into table (room for
 * AUTHD_MASTER_LOGINS_MAX entries); both must outlive opt's use. Returns 0,
 * or -1 with err when cfg has more master-login backends than that.
 */
int authd_options_from_config(const struct mg_config *cfg, struct authd_options *opt,
			      struct authd_master_login *table, char *err, size_t errlen);

/*
 * Whether a running (or restarting) auth process started by authd_start()
 * already serves opt's per-session cap and master-login table (in any
 * order). The service, workers and timeout are the caller's to compare.
 */
bool authd_same_limits(const struct authd *authd, const struct authd_options *opt);

/*
 * Stop the supervisor and its workers and wait for them (bounded: SIGTERM,
 * then SIGKILL after a few seconds). Closes both descriptors; keeps what it
 * was started with, for authd_same_limits(). Idempotent.
 */
void authd_stop(struct authd *authd);

/*
 * In a session child, right after fork: close the lifeline, which only the
 * master may hold (otherwise the supervisor would outlive a dead master for
 * as long as any session lasts). request_fd stays open for authd_check().
 */
void authd_session_init(struct authd *authd);

/*
 * Ask a worker whether cred (user and password) may log in, from a client at
 * rhost (printable, at most AUTH_RHOST_MAX bytes; NULL or "" when unknown).
 * Waits at most timeout_ms in all. Does not wipe cred (the backend login
 * still needs it); wipes its own copies of both frames.
 *
 * master_backend (NULL or "" for none) names the backend the session will
 * log in to as the master user: then an OK answer carries that backend's
 * master password, which lands in *master_password (may be NULL only
 * without master_backend); the caller wipes it (auth_secret_wipe) as soon as
 * the backend has answered. *master_password is empty on every other path.
 *
 * Returns AUTH_STATUS_OK, _AUTH_FAILED, _ACCOUNT_REFUSED or _TEMP_FAILURE.
 * TEMP_FAILURE covers every way the auth process could not answer: not
 * running, worker died mid-request, timeout, malformed answer, too many
 * requests from this process, an unknown master backend or its unreadable
 * file. reason gets a short token without spaces for the session's log
 * line (never secret).
 */
enum auth_status authd_check(int request_fd, const struct mg_credentials *cred,
			     const char *rhost, const char *master_backend,
			     struct auth_secret *master_password, int timeout_ms, char *reason,
			     size_t reasonlen);

#endif
