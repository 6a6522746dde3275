/*
 * auth_quota.h - how many requests each session process may make of the PAM
 * auth workers, counted across every worker.
 *
 * A session child asks for at most max_auth_failures logins, so a child that
 * asks for more is broken or compromised and is refused before PAM sees it.
 * The workers are separate processes, so the counts live in a table in
 * anonymous MAP_SHARED memory that the supervisor makes before it forks
 * them, guarded by a process-shared robust mutex: a worker killed while it
 * holds the lock does not wedge the others.
 *
 * A sender is known by its pid (the kernel attaches it to each request,
 * SO_PASSCRED) and its start time (field 22 of /proc/PID/stat): a pid the
 * kernel hands to a new process starts from zero. An entry whose process
 * has ended (a zombie counts as ended) or whose pid now belongs to a later
 * process is stale, and is reclaimed when a new sender needs a slot. The
 * table has a fixed number of slots: when every one belongs to a live
 * process, a new sender is refused rather than served uncounted.
 */
#ifndef MG_AUTH_QUOTA_H
#define MG_AUTH_QUOTA_H

#include <stddef.h>
#include <sys/types.h>

#define AUTH_QUOTA_SLOTS_MAX	65536
#define AUTH_QUOTA_CAP_MAX	100000	/* requests per process */

enum auth_quota_result {
	AUTH_QUOTA_OK,		/* counted, within the cap */
	AUTH_QUOTA_OVER,	/* the process has had its cap of requests already */
	AUTH_QUOTA_FULL,	/* every slot belongs to another live process */
	AUTH_QUOTA_GONE,	/* the process is not running (any more) */
	AUTH_QUOTA_ERROR,	/* the lock is unusable */
	AUTH_QUOTA_RESULT_COUNT
};

struct auth_quota;

/*
 * Make a table of `slots` entries (1..AUTH_QUOTA_SLOTS_MAX), each process
 * allowed `cap` requests (1..AUTH_QUOTA_CAP_MAX; there is no "unlimited").
 * Processes forked afterwards share it. Returns NULL with err on failure.
 */
struct auth_quota *auth_quota_create(unsigned slots, unsigned cap, char *err, size_t errlen);

/* Unmap the table (in this process; forked copies keep theirs). NULL is fine. */
void auth_quota_destroy(struct auth_quota *quota);

/*
 * Count one request of process pid: OK while it has made at most `cap`,
 * OVER from the cap+1-th on (not counted further), FULL, GONE or ERROR.
 * *count gets the requests counted for it, this one included when OK.
 */
enum auth_quota_result auth_quota_take(struct auth_quota *quota, pid_t pid, unsigned *count);

/*
 * The same for a given incarnation: auth_quota_take() is
 * auth_quota_start_time() and then this. Exported so the tests can stand in
 * for a pid the kernel reused.
 */
enum auth_quota_result auth_quota_charge(struct auth_quota *quota, pid_t pid,
					 unsigned long long start, unsigned *count);

/*
 * The start time of process pid (clock ticks after boot, field 22 of
 * /proc/PID/stat). Returns 0, or -1 when there is no such process or it is a
 * zombie.
 */
int auth_quota_start_time(pid_t pid, unsigned long long *start);

/* "ok", "over", "full", "gone", "error". */
const char *auth_quota_result_name(enum auth_quota_result result);

/*
 * Take and release the table's lock, for the unit tests only (to show that
 * a process dying while it holds it does not wedge the table). Returns 0, or
 * -1 when the lock is unusable.
 */
int auth_quota_lock(struct auth_quota *quota);
void auth_quota_unlock(struct auth_quota *quota);

#endif
