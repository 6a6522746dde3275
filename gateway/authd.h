/*
 * authd.h - the privilege-separated PAM auth process, and how a session asks it.
 *
 * The master starts it before dropping root: a supervisor that stays
 * privileged, restarts its workers and never reads a client byte, and a small
 * fixed pool of worker processes that run PAM (auth_pam.c). Sessions reach
 * the workers through one shared SOCK_SEQPACKET socket inherited from the
 * master; the kernel hands each request to exactly one waiting worker. Each
 * request carries its own reply socket (SCM_RIGHTS), so a worker that dies
 * closes the only other end and the waiting session sees EOF at once: a
 * temporary failure, never a hang.
 */
#ifndef MG_AUTHD_H
#define MG_AUTHD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "auth_frame.h"
#include "credentials.h"

#define AUTHD_WORKERS_MAX	64
#define AUTHD_TIMEOUT_MAX	300	/* seconds per PAM call */
#define AUTHD_SERVICE_MAX	64	/* PAM service name length */

/*
 * The master's handle. A zeroed struct means "not running" and is safe to
 * pass to authd_stop() and authd_session_init().
 */
struct authd {
	bool running;
	int request_fd;		/* session side of the shared socket: sessions keep it */
	int lifeline_fd;	/* write end of a pipe; its EOF tells the supervisor to stop */
	pid_t supervisor;
};

/*
 * Fork the supervisor, which forks `workers` workers (1..AUTHD_WORKERS_MAX)
 * that check logins against the PAM service `service` (letters, digits,
 * '.', '_', '-'; at most AUTHD_SERVICE_MAX bytes), each PAM call bounded by
 * timeout_s seconds (1..AUTHD_TIMEOUT_MAX). Call it while still root and
 * after daemonising (the supervisor also stops when its parent dies). The
 * supervisor and workers keep the privileges of the caller.
 * Returns 0 with *out filled, or -1 with err (and *out not running).
 */
int authd_start(const char *service, unsigned workers, unsigned timeout_s, struct authd *out,
		char *err, size_t errlen);

/*
 * Stop the supervisor and its workers and wait for them (bounded: SIGTERM,
 * then SIGKILL after a few seconds). Closes both descriptors. Idempotent.
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
 * still needs it); wipes its own copy of the frame.
 *
 * Returns AUTH_STATUS_OK, _AUTH_FAILED, _ACCOUNT_REFUSED or _TEMP_FAILURE.
 * TEMP_FAILURE covers every way the auth process could not answer: not
 * running, worker died mid-request, timeout, malformed answer. reason gets a
 * short token without spaces for the session's log line (never secret).
 */
enum auth_status authd_check(int request_fd, const struct mg_credentials *cred,
			     const char *rhost, int timeout_ms, char *reason, size_t reasonlen);

#endif
