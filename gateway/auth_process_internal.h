/*
 * auth_process_internal.h - what the three sides of the PAM auth process
 * share, and nothing else may use: the master's side that starts and stops
 * it (auth_process.c), the supervisor (auth_supervisor.c) and the workers
 * it forks (auth_worker.c). Sessions use auth_process.h only.
 *
 * The supervisor's state is built once in the supervisor and inherited by
 * every worker at fork: the workers read it and never write it.
 */
#ifndef MG_AUTH_PROCESS_INTERNAL_H
#define MG_AUTH_PROCESS_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>

#include "auth_process.h"
#include "auth_quota.h"

/* How a worker ends, read by the supervisor to log it. */
#define WORKER_EXIT_ERROR	1
#define WORKER_EXIT_TIMEOUT	3	/* a PAM call outlived its alarm */

/* The supervisor's grace for its workers after SIGTERM; the master waits longer. */
#define AUTHD_STOP_WAIT_MS	2000

struct worker_slot {
	pid_t pid;		/* 0: not running */
	long long started_ms;
	long long restart_at;	/* when pid is 0: the earliest time to start it again */
	unsigned young_deaths;	/* consecutive deaths before YOUNG_DEATH_MS */
};

/* The supervisor's state; its workers inherit it (read-only to them). */
struct supervisor {
	char service[AUTHD_SERVICE_MAX + 1];
	unsigned timeout_s;
	unsigned n_workers;
	unsigned max_requests;
	int worker_fd;
	int lifeline_fd;
	pid_t self;
	struct auth_quota *quota;	/* shared with every worker */
	size_t login_table_len;
	char login_table[AUTHD_LOGIN_TABLE_MAX];	/* "backend\0file\0"... */
	struct worker_slot slots[AUTHD_WORKERS_MAX];
};

/*
 * The master_user_file of backend (len bytes), in a "backend\0file\0"
 * table, or NULL. The table was built by authd_start(), so every entry is
 * two NUL-terminated strings inside it. (auth_process.c)
 */
const char *authd_login_table_file(const char *table, size_t table_len, const char *backend,
				   size_t len);

/* sigaction() with an empty mask, for the supervisor and its workers. (auth_supervisor.c) */
void authd_set_handler(int sig, void (*handler)(int), int flags);

/*
 * The supervisor, in the child authd_start() forked: takes over worker_fd
 * and lifeline_fd, closes every other descriptor, and never returns.
 * (auth_supervisor.c)
 */
_Noreturn void authd_supervisor_main(const struct authd_options *opt, const struct authd *started,
				     int worker_fd, int lifeline_fd, pid_t master);

/*
 * A worker, in the child the supervisor forked, holding only s->worker_fd
 * and the log: answers requests until told to stop, never returns.
 * (auth_worker.c)
 */
_Noreturn void authd_worker_main(const struct supervisor *s);

#endif
