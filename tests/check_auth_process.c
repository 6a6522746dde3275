/*
 * check_auth_process.c - the PAM auth process end to end, under pam_wrapper and
 * pam_matrix (no system account, no /etc/pam.d): right and wrong passwords,
 * accounts refused by the account step, 20 logins at once, a worker killed
 * mid-call, a PAM call that outlives its timeout, a session that gives up,
 * hostile datagrams on the shared socket, and no process left behind; the
 * master-user password handed out only with PAM's OK and read afresh each
 * time; the per-process request cap. (The PAM conversation function on its
 * own is check_auth_pam.c.)
 *
 * pam_wrapper must be preloaded before the process starts, so main() sets up
 * a private directory (service files, pam_matrix password file, a helper
 * script) and re-executes itself with LD_PRELOAD and the PAM_WRAPPER_*
 * variables; `make check` can therefore run the binary plainly. Where
 * pam_wrapper, pam_matrix and libpam's modules are comes from configure
 * (pkg-config, or the linker's search path): the test is skipped only when
 * pam_wrapper is not installed, and fails when it is but a file it needs is
 * not where configure found it.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth_process.h"
#include "clock.h"
#include "log.h"

#if !defined(PAM_WRAPPER_LIB) || !defined(PAM_MATRIX) || !defined(PAM_MODULE_DIR)
#error "PAM_WRAPPER_LIB, PAM_MATRIX and PAM_MODULE_DIR come from configure (see Makefile.am)"
#endif
#define DIR_ENV		"MG_AUTHD_TEST_DIR"

#define CHECK_MS	15000	/* a session's overall wait in these tests */
/* Tests that are not about the cap make many requests from one process. */
#define LARGE_CAP	10000
#define MASTER_BACKEND	"dovecot_master"
#define MASTER_FILE	"master.cred"
#define MASTER_PW_1	"Master-Secret-One-7"
#define MASTER_PW_2	"Master-Secret-Two-8"

static const char *test_dir(void)
{
	const char *dir = getenv(DIR_ENV);

	ck_assert_ptr_nonnull(dir);
	return dir;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static struct mg_credentials creds(const char *user, const char *password)
{
	struct mg_credentials c;

	memset(&c, 0, sizeof(c));
	c.user_len = strlen(user);
	c.password_len = strlen(password);
	memcpy(c.user, user, c.user_len);
	memcpy(c.password, password, c.password_len);
	return c;
}

static enum auth_status login(const struct authd *a, const char *user, const char *password,
			      int timeout_ms, char *reason, size_t reasonlen)
{
	struct mg_credentials c = creds(user, password);
	enum auth_status status = authd_check(a->request_fd, &c, "192.0.2.7", NULL, NULL,
					      timeout_ms, reason, reasonlen);

	credentials_wipe(&c);
	return status;
}

/* A login that asks for backend's master password, which lands in *master. */
static enum auth_status master_login(const struct authd *a, const char *user,
				     const char *password, const char *backend,
				     struct auth_secret *master, char *reason, size_t reasonlen)
{
	struct mg_credentials c = creds(user, password);
	enum auth_status status;

	memset(master, 0xaa, sizeof(*master));	/* whatever was there must go */
	status = authd_check(a->request_fd, &c, "192.0.2.7", backend, master, CHECK_MS, reason,
			     reasonlen);
	credentials_wipe(&c);
	return status;
}

static void assert_no_master_password(const struct auth_secret *master)
{
	ck_assert_uint_eq(master->len, 0);
	for (size_t i = 0; i < sizeof(master->value); i++)
		ck_assert_msg(master->value[i] == 0, "master password buffer not wiped at %zu", i);
}

/* (Re)write the master user's credentials file, as an operator rotating it would. */
static void write_master_file(const char *password, mode_t mode)
{
	char path[512], tmp[520];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", test_dir(), MASTER_FILE);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "username=mgmaster\npassword=%s\n", password);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(tmp, mode), 0);
	ck_assert_int_eq(rename(tmp, path), 0);
}

/* ---- /proc helpers: who is alive, who are whose children ----------------- */

struct proc_info {
	char state;
	pid_t ppid;
	pid_t pgrp;
};

static bool proc_read(pid_t pid, struct proc_info *info)
{
	char path[64], buf[512];
	const char *close_paren;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: parse after the last ')'. */
	close_paren = strrchr(buf, ')');
	if (close_paren == NULL)
		return false;
	return sscanf(close_paren + 1, " %c %d %d", &info->state, &info->ppid, &info->pgrp) == 3;
}

/* Alive: present and not a zombie waiting for some reaper. */
static bool proc_alive(pid_t pid)
{
	struct proc_info info;

	return proc_read(pid, &info) && info.state != 'Z';
}

/* Live processes matching parent (ppid) or group (pgrp); returns how many. */
static int proc_find(pid_t ppid, pid_t pgrp, pid_t *out, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL) {
		struct proc_info info;
		char *end;
		long pid = strtol(e->d_name, &end, 10);

		if (*end != '\0' || pid <= 0 || !proc_read((pid_t)pid, &info) || info.state == 'Z')
			continue;
		if ((ppid > 0 && info.ppid != ppid) || (pgrp > 0 && info.pgrp != pgrp))
			continue;
		if (n < max)
			out[n] = (pid_t)pid;
		n++;
	}
	closedir(d);
	return n;
}

static int workers_of(pid_t supervisor, pid_t *out, int max)
{
	return proc_find(supervisor, 0, out, max);
}

/* Wait until the supervisor has `want` workers running (they start asynchronously). */
static void wait_workers(const struct authd *a, int want)
{
	pid_t pids[AUTHD_WORKERS_MAX];
	long long deadline = mg_now_ms() + 5000;

	while (workers_of(a->supervisor, pids, AUTHD_WORKERS_MAX) != want) {
		ck_assert_msg(mg_now_ms() < deadline, "supervisor never had %d workers", want);
		sleep_ms(10);
	}
}

/* Every live descendant of root (breadth first), root excluded; returns how many. */
static int descendants(pid_t root, pid_t *out, int max)
{
	int n = 0;

	for (int i = -1; i < n && i < max; i++) {
		pid_t parent = i < 0 ? root : out[i];

		n += proc_find(parent, 0, out + n, max - n);
		if (n > max)
			n = max;
	}
	return n;
}

/*
 * Stop authd and prove that the supervisor, its workers and anything they
 * started are gone (pam_exec helpers run in sessions of their own, so they
 * are found as descendants, not by process group).
 */
static void stop_and_check_gone(struct authd *a)
{
	pid_t pids[128];
	int n = descendants(a->supervisor, pids, 127);
	long long deadline;

	pids[n++] = a->supervisor;
	authd_stop(a);
	ck_assert(!a->running);
	ck_assert_int_eq(a->request_fd, -1);
	deadline = mg_now_ms() + 3000;
	for (int i = 0; i < n; i++) {
		while (proc_alive(pids[i])) {
			ck_assert_msg(mg_now_ms() < deadline, "process %ld left behind",
				      (long)pids[i]);
			sleep_ms(10);
		}
	}
	authd_stop(a);		/* idempotent */
}

static void start_capped(struct authd *a, const char *service, unsigned workers,
			 unsigned timeout_s, unsigned cap)
{
	char err[256], file[512];
	struct authd_master_login logins[2];
	struct authd_options opt = {
		.service = service,
		.workers = workers,
		.timeout_s = timeout_s,
		.max_requests_per_session = cap,
		.master_logins = logins,
		.n_master_logins = 2,
	};

	snprintf(file, sizeof(file), "%s/%s", test_dir(), MASTER_FILE);
	logins[0] = (struct authd_master_login){ .backend = "other_master",
						 .file = "/nonexistent/master.cred" };
	logins[1] = (struct authd_master_login){ .backend = MASTER_BACKEND, .file = file };
	ck_assert_msg(authd_start(&opt, a, err, sizeof(err)) == 0, "%s", err);
	ck_assert(a->running);
	ck_assert_int_ge(a->request_fd, 0);
	ck_assert_int_gt(a->supervisor, 0);
	/* The supervisor has its own copy of the table: ours may go now. */
	memset(file, 0, sizeof(file));
	memset(logins, 0, sizeof(logins));
	ck_assert_uint_eq(a->max_requests, cap);
}

static void start(struct authd *a, const char *service, unsigned workers, unsigned timeout_s)
{
	start_capped(a, service, workers, timeout_s, LARGE_CAP);
}

/* ---- logins ------------------------------------------------------------- */

START_TEST(right_password_accepted)
{
	struct authd a;
	char reason[AUTH_REASON_MAX + 1];

	start(&a, "mgtest", 2, 10);
	ck_assert_int_eq(login(&a, "alice", "secret", CHECK_MS, reason, sizeof(reason)),
			 AUTH_STATUS_OK);
	ck_assert_str_eq(reason, "pam:PAM_SUCCESS");
	/* The same worker pool answers again. */
	ck_assert_int_eq(login(&a, "alice", "secret", CHECK_MS, reason, sizeof(reason)),
			 AUTH_STATUS_OK);
	stop_and_check_gone(&a);
}
END_TEST

START_TEST(wrong_password_refused)
{
	struct authd a;
	char reason[AUTH_REASON_MAX + 1];

	start(&a, "mgtest", 2, 10);
	ck_assert_int_eq(login(&a, "alice", "wrong", CHECK_MS, reason, sizeof(reason)),
			 AUTH_STATUS_AUTH_FAILED);
	ck_assert_str_eq(reason, "authenticate:PAM_AUTH_ERR");
	ck_assert_int_eq(login(&a, "nobody-here", "secret", CHECK_MS, reason, sizeof(reason)),
			 AUTH_STATUS_AUTH_FAILED);
	ck_assert_msg(strncmp(reason, "authenticate:", 13) == 0, "reason %s", reason);
	/* Never handed to PAM: a module with nullok would accept it. */
	ck_assert_int_eq(login(&a, "alice", "", CHECK_MS, reason, sizeof(reason)),
			 AUTH_STATUS_AUTH_FAILED);
	ck_assert_str_eq(reason, "empty-password");
	/* What PAM cannot carry is refused before anything is sent. */
	ck_assert_int_eq(login(&a, "alice\r\nx", "secret", CHECK_MS, reason, sizeof(reason)),
			 AUTH_STATUS_AUTH_FAILED);
	ck_assert_str_eq(reason, "unusable-credentials");
	stop_and_check_gone(&a);
}
END_TEST

START_TEST(account_refused_by_matrix)
{
	struct authd a;
	char reason[AUTH_REASON_MAX + 1];

	/* bob's password is right, but pam_matrix's account step allows him another service. */
	start(&a, "mgtest", 1, 10);
	ck_assert_int_eq(login(&a, "bob", "secret", CHECK_MS, reason, sizeof(reason)),
			 AUTH_STATUS_ACCOUNT_REFUSED);
	ck_assert_msg(strncmp(reason, "acct_mgmt:", 10) == 0, "reason %s", reason);
	stop_and_check_gone(&a);
}
END_TEST

START_TEST(account_refused_by_pam_deny)
{
	struct authd a;
	char reason[AUTH_REASON_MAX + 1];

	start(&a, "mgdeny", 1, 10);
	ck_assert_int_eq(login(&a, "alice", "secret", CHECK_MS, reason, sizeof(reason)),
			 AUTH_STATUS_ACCOUNT_REFUSED);
	ck_assert_msg(strncmp(reason, "acct_mgmt:", 10) == 0, "reason %s", reason);
	/* A wrong password still fails at the authentication step. */
	ck_assert_int_eq(login(&a, "alice", "nope", CHECK_MS, reason, sizeof(reason)),
			 AUTH_STATUS_AUTH_FAILED);
	stop_and_check_gone(&a);
}
END_TEST

START_TEST(rhost_reaches_pam)
{
	struct authd a;
	char reason[AUTH_REASON_MAX + 1];
	char path[512], got[128];
	FILE *f;
	size_t n;

	/* slow.sh writes $PAM_RHOST (exported by pam_exec) for user "rhostuser". */
	start(&a, "mgtest", 1, 10);
	ck_assert_int_eq(login(&a, "rhostuser", "secret", CHECK_MS, reason, sizeof(reason)),
			 AUTH_STATUS_OK);
	snprintf(path, sizeof(path), "%s/rhost.out", test_dir());
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(got, 1, sizeof(got) - 1, f);
	fclose(f);
	got[n] = '\0';
	ck_assert_str_eq(got, "192.0.2.7");
	unlink(path);
	stop_and_check_gone(&a);
}
END_TEST

START_TEST(twenty_logins_in_parallel)
{
	enum { CLIENTS = 20 };
	struct authd a;
	pid_t pids[CLIENTS];
	long long deadline;

	start(&a, "mgtest", 4, 10);
	for (int i = 0; i < CLIENTS; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			char reason[AUTH_REASON_MAX + 1];
			const char *user = i % 5 == 4 ? "bob" : "alice";
			const char *password = i % 2 == 0 ? "secret" : "wrong";

			/* The exit status carries the answer; _exit: no test-framework teardown. */
			_exit((int)login(&a, user, password, CHECK_MS, reason, sizeof(reason)));
		}
	}
	deadline = mg_now_ms() + CHECK_MS + 2000;
	for (int i = 0; i < CLIENTS; i++) {
		enum auth_status want = i % 2 != 0 ? AUTH_STATUS_AUTH_FAILED
				      : i % 5 == 4 ? AUTH_STATUS_ACCOUNT_REFUSED
						   : AUTH_STATUS_OK;
		int status;
		pid_t rc;

		while ((rc = waitpid(pids[i], &status, WNOHANG)) == 0) {
			ck_assert_msg(mg_now_ms() < deadline, "client %d got no answer", i);
			sleep_ms(5);
		}
		ck_assert_int_eq(rc, pids[i]);
		ck_assert(WIFEXITED(status));
		ck_assert_msg(WEXITSTATUS(status) == (int)want, "client %d: got %s, want %s", i,
			      auth_status_name((enum auth_status)WEXITSTATUS(status)),
			      auth_status_name(want));
	}
	stop_and_check_gone(&a);
}
END_TEST

/* Find the worker that is inside a PAM call (the one with a helper child), and the helper. */
static pid_t busy_worker(pid_t supervisor, pid_t *helper)
{
	pid_t workers[AUTHD_WORKERS_MAX];
	int n = workers_of(supervisor, workers, AUTHD_WORKERS_MAX);

	for (int i = 0; i < n && i < AUTHD_WORKERS_MAX; i++) {
		if (proc_find(workers[i], 0, helper, 1) > 0)
			return workers[i];
	}
	return 0;
}

START_TEST(worker_killed_mid_call)
{
	struct authd a;
	char reason[AUTH_REASON_MAX + 1];
	int report[2];
	pid_t killer, victim[2] = { 0, 0 };
	long long started, took, deadline;
	int status;

	/* The PAM timeout is far away: only the kill can end this call early. */
	start(&a, "mgtest", 1, 60);
	ck_assert_int_eq(pipe(report), 0);
	killer = fork();
	ck_assert_int_ge(killer, 0);
	if (killer == 0) {
		long long until = mg_now_ms() + 10000;
		pid_t found[2] = { 0, 0 };

		while (found[0] == 0 && mg_now_ms() < until) {
			found[0] = busy_worker(a.supervisor, &found[1]);
			if (found[0] == 0)
				sleep_ms(10);
		}
		if (found[0] != 0) {
			sleep_ms(200);	/* well inside the slow call */
			kill(found[0], SIGKILL);
		}
		if (write(report[1], found, sizeof(found)) != (ssize_t)sizeof(found))
			_exit(2);
		_exit(found[0] != 0 ? 0 : 1);
	}
	close(report[1]);
	started = mg_now_ms();
	ck_assert_int_eq(login(&a, "slowuser", "secret", CHECK_MS, reason, sizeof(reason)),
			 AUTH_STATUS_TEMP_FAILURE);
	took = mg_now_ms() - started;
	ck_assert_str_eq(reason, "auth-worker-died");
	ck_assert_msg(took < 5000, "temporary failure took %lld ms", took);
	ck_assert_int_eq(read(report[0], victim, sizeof(victim)), (ssize_t)sizeof(victim));
	close(report[0]);
	ck_assert_int_eq(waitpid(killer, &status, 0), killer);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_gt(victim[0], 0);
	ck_assert_int_gt(victim[1], 0);

	/* The supervisor killed the worker's helper (the sleep) too. */
	deadline = mg_now_ms() + 3000;
	while (proc_alive(victim[1])) {
		ck_assert_msg(mg_now_ms() < deadline, "helper of the killed worker left behind");
		sleep_ms(10);
	}
	/* A new worker took the slot: the next login works. */
	ck_assert_int_eq(login(&a, "alice", "secret", CHECK_MS, reason, sizeof(reason)),
			 AUTH_STATUS_OK);
	wait_workers(&a, 1);
	stop_and_check_gone(&a);
}
END_TEST

START_TEST(pam_call_timeout)
{
	struct authd a;
	char reason[AUTH_REASON_MAX + 1];
	long long started, took;

	start(&a, "mgtest", 1, 1);
	started = mg_now_ms();
	ck_assert_int_eq(login(&a, "slowuser", "secret", CHECK_MS, reason, sizeof(reason)),
			 AUTH_STATUS_TEMP_FAILURE);
	took = mg_now_ms() - started;
	ck_assert_str_eq(reason, "auth-worker-died");
	ck_assert_msg(took >= 900 && took < 4000, "timeout took %lld ms", took);
	ck_assert_int_eq(login(&a, "alice", "secret", CHECK_MS, reason, sizeof(reason)),
			 AUTH_STATUS_OK);
	stop_and_check_gone(&a);
}
END_TEST

START_TEST(session_deadline)
{
	struct authd a;
	char reason[AUTH_REASON_MAX + 1];
	long long started, took;

	start(&a, "mgtest", 1, 30);
	started = mg_now_ms();
	ck_assert_int_eq(login(&a, "slowuser", "secret", 300, reason, sizeof(reason)),
			 AUTH_STATUS_TEMP_FAILURE);
	took = mg_now_ms() - started;
	ck_assert_str_eq(reason, "auth-timeout");
	ck_assert_msg(took >= 250 && took < 2000, "session deadline took %lld ms", took);
	stop_and_check_gone(&a);
}
END_TEST

START_TEST(not_running_and_bad_arguments)
{
	struct authd a, zero;
	struct mg_credentials c = creds("alice", "secret");
	char reason[AUTH_REASON_MAX + 1];
	char err[256];

	struct authd_master_login logins[AUTHD_MASTER_LOGINS_MAX + 1];
	struct authd_options good = {
		.service = "mgtest", .workers = 1, .timeout_s = 5, .max_requests_per_session = 3,
	};
	struct authd_options opt;
	struct auth_secret master;
	char names[AUTHD_MASTER_LOGINS_MAX + 1][16];

	ck_assert_int_eq(authd_check(-1, &c, "192.0.2.1", NULL, NULL, 1000, reason,
				     sizeof(reason)), AUTH_STATUS_TEMP_FAILURE);
	ck_assert_str_eq(reason, "auth-unavailable");
	/* A master backend without room for its password is the caller's bug. */
	ck_assert_int_eq(authd_check(-1, &c, "192.0.2.1", MASTER_BACKEND, NULL, 1000, reason,
				     sizeof(reason)), AUTH_STATUS_TEMP_FAILURE);
	ck_assert_str_eq(reason, "auth-bad-request");
	memset(&master, 0xaa, sizeof(master));
	ck_assert_int_eq(authd_check(-1, &c, "192.0.2.1", MASTER_BACKEND, &master, 1000, reason,
				     sizeof(reason)), AUTH_STATUS_TEMP_FAILURE);
	assert_no_master_password(&master);

	opt = good;
	opt.service = "../etc/shadow";
	ck_assert_int_eq(authd_start(&opt, &a, err, sizeof(err)), -1);
	ck_assert(!a.running);
	opt.service = "";
	ck_assert_int_eq(authd_start(&opt, &a, err, sizeof(err)), -1);
	opt.service = ".hidden";
	ck_assert_int_eq(authd_start(&opt, &a, err, sizeof(err)), -1);
	opt = good;
	opt.workers = 0;
	ck_assert_int_eq(authd_start(&opt, &a, err, sizeof(err)), -1);
	opt.workers = AUTHD_WORKERS_MAX + 1;
	ck_assert_int_eq(authd_start(&opt, &a, err, sizeof(err)), -1);
	opt = good;
	opt.timeout_s = 0;
	ck_assert_int_eq(authd_start(&opt, &a, err, sizeof(err)), -1);
	opt.timeout_s = AUTHD_TIMEOUT_MAX + 1;
	ck_assert_int_eq(authd_start(&opt, &a, err, sizeof(err)), -1);
	/* No cap is not "unlimited": it is refused. */
	opt = good;
	opt.max_requests_per_session = 0;
	ck_assert_int_eq(authd_start(&opt, &a, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "requests per session 0"));
	opt.max_requests_per_session = AUTHD_REQUESTS_MAX + 1;
	ck_assert_int_eq(authd_start(&opt, &a, err, sizeof(err)), -1);
	/* Master-login tables: bad names, a missing file, a name twice, too many. */
	opt = good;
	opt.master_logins = logins;
	opt.n_master_logins = 1;
	logins[0] = (struct authd_master_login){ .backend = "bad/name", .file = "/x" };
	ck_assert_int_eq(authd_start(&opt, &a, err, sizeof(err)), -1);
	logins[0] = (struct authd_master_login){ .backend = "", .file = "/x" };
	ck_assert_int_eq(authd_start(&opt, &a, err, sizeof(err)), -1);
	logins[0] = (struct authd_master_login){ .backend = "ok", .file = NULL };
	ck_assert_int_eq(authd_start(&opt, &a, err, sizeof(err)), -1);
	logins[0] = (struct authd_master_login){ .backend = "ok", .file = "" };
	ck_assert_int_eq(authd_start(&opt, &a, err, sizeof(err)), -1);
	opt.n_master_logins = 2;
	logins[0] = (struct authd_master_login){ .backend = "twice", .file = "/x" };
	logins[1] = (struct authd_master_login){ .backend = "twice", .file = "/y" };
	ck_assert_int_eq(authd_start(&opt, &a, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "twice"));
	for (int i = 0; i <= AUTHD_MASTER_LOGINS_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "b%d", i);
		logins[i] = (struct authd_master_login){ .backend = names[i], .file = "/x" };
	}
	opt.n_master_logins = AUTHD_MASTER_LOGINS_MAX + 1;
	ck_assert_int_eq(authd_start(&opt, &a, err, sizeof(err)), -1);
	opt.n_master_logins = 1;
	opt.master_logins = NULL;
	ck_assert_int_eq(authd_start(&opt, &a, err, sizeof(err)), -1);
	ck_assert(!a.running);
	/* A zeroed handle is "not running": stopping it touches no descriptor. */
	memset(&zero, 0, sizeof(zero));
	authd_stop(&zero);
	authd_session_init(&zero);
	ck_assert_int_ge(fcntl(0, F_GETFD), 0);
}
END_TEST

/* ---- hostile datagrams on the shared socket ------------------------------ */

static int send_raw(int fd, const void *buf, size_t len, const int *fds, int nfds)
{
	union {
		struct cmsghdr align;
		char space[CMSG_SPACE(sizeof(int) * 4)];
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds > 0) {
		struct cmsghdr *cmsg;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.space;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cmsg = CMSG_FIRSTHDR(&mh);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * (size_t)nfds);
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* Wait for one datagram (or EOF) on fd; returns its length, 0 on EOF. */
static long read_reply(int fd, unsigned char *buf, size_t size)
{
	struct timeval tv = { .tv_sec = 10 };
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recv(fd, buf, size, 0);
	ck_assert_msg(n >= 0, "no reply: %s", strerror(errno));
	return (long)n;
}

START_TEST(hostile_datagrams_refused)
{
	static const unsigned char garbage[] = { 1, 0, 5, 'a', 'l' };	/* truncated */
	unsigned char request[AUTH_REQUEST_MAX], answer[AUTH_RESPONSE_MAX + 1];
	struct auth_response resp;
	struct authd a;
	char reason[AUTH_REASON_MAX + 1], err[128];
	pid_t before[1], after[1];
	int pair[2], two[2], other[2];
	size_t len;
	long n;

	start(&a, "mgtest", 1, 10);
	wait_workers(&a, 1);
	ck_assert_int_eq(workers_of(a.supervisor, before, 1), 1);

	/* A malformed request with a reply socket: a temporary failure comes back. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair), 0);
	ck_assert_int_eq(send_raw(a.request_fd, garbage, sizeof(garbage), &pair[1], 1), 0);
	close(pair[1]);
	n = read_reply(pair[0], answer, sizeof(answer));
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(auth_response_decode(answer, (size_t)n, &resp, err, sizeof(err)), 0);
	ck_assert_int_eq(resp.status, AUTH_STATUS_TEMP_FAILURE);
	ck_assert_str_eq(resp.reason, "malformed-request");
	close(pair[0]);

	/* No descriptor, an empty datagram: dropped, and the worker does not mistake it for EOF. */
	ck_assert_int_eq(send_raw(a.request_fd, garbage, sizeof(garbage), NULL, 0), 0);
	ck_assert_int_eq(send_raw(a.request_fd, "", 0, NULL, 0), 0);

	/* Two descriptors: dropped, both closed, so the sender sees EOF. */
	ck_assert_int_eq(auth_request_encode("alice", 5, "secret", 6, "", 0, "", 0, request,
					     sizeof(request), &len, err, sizeof(err)), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, other), 0);
	two[0] = pair[1];
	two[1] = other[1];
	ck_assert_int_eq(send_raw(a.request_fd, request, len, two, 2), 0);
	close(pair[1]);
	close(other[1]);
	ck_assert_int_eq(read_reply(pair[0], answer, sizeof(answer)), 0);
	ck_assert_int_eq(read_reply(other[0], answer, sizeof(answer)), 0);
	close(pair[0]);
	close(other[0]);

	/* A reply descriptor that is not a SEQPACKET socket: dropped. */
	ck_assert_int_eq(pipe(pair), 0);
	ck_assert_int_eq(send_raw(a.request_fd, request, len, &pair[1], 1), 0);
	close(pair[1]);
	{
		char byte;

		ck_assert_int_eq(read(pair[0], &byte, 1), 0);	/* EOF: the worker closed it */
	}
	close(pair[0]);

	/* A reply socket connected to a named service: dropped, nothing is sent to it. */
	{
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		socklen_t sunlen;
		int listener = socket(AF_UNIX, SOCK_SEQPACKET, 0), client, server;

		/* Abstract name: nothing on disk to clean up. */
		snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "mg-check-authd-%ld",
			 (long)getpid());
		sunlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
				     strlen(sun.sun_path + 1));
		ck_assert_int_ge(listener, 0);
		ck_assert_int_eq(bind(listener, (struct sockaddr *)&sun, sunlen), 0);
		ck_assert_int_eq(listen(listener, 1), 0);
		client = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		ck_assert_int_eq(connect(client, (struct sockaddr *)&sun, sunlen), 0);
		server = accept(listener, NULL, NULL);
		ck_assert_int_ge(server, 0);
		ck_assert_int_eq(send_raw(a.request_fd, request, len, &client, 1), 0);
		close(client);
		ck_assert_int_eq(read_reply(server, answer, sizeof(answer)), 0);
		close(server);
		close(listener);
	}

	/* An oversized datagram: refused as malformed. */
	{
		static unsigned char big[AUTH_REQUEST_MAX + 100];

		memset(big, 'x', sizeof(big));
		big[0] = AUTH_FRAME_VERSION;
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair), 0);
		ck_assert_int_eq(send_raw(a.request_fd, big, sizeof(big), &pair[1], 1), 0);
		close(pair[1]);
		n = read_reply(pair[0], answer, sizeof(answer));
		ck_assert_int_gt(n, 0);
		ck_assert_int_eq(auth_response_decode(answer, (size_t)n, &resp, err, sizeof(err)),
				 0);
		ck_assert_int_eq(resp.status, AUTH_STATUS_TEMP_FAILURE);
		close(pair[0]);
	}
	explicit_bzero(request, sizeof(request));

	/* The same worker is still there and still answers. */
	ck_assert_int_eq(login(&a, "alice", "secret", CHECK_MS, reason, sizeof(reason)),
			 AUTH_STATUS_OK);
	ck_assert_int_eq(workers_of(a.supervisor, after, 1), 1);
	ck_assert_int_eq(after[0], before[0]);
	stop_and_check_gone(&a);
}
END_TEST

/* ---- master-user passwords --------------------------------------------- */

/* Send one hand-made request and return the worker's raw answer (for byte searches). */
static long raw_exchange(const struct authd *a, const char *user, const char *password,
			 const char *backend, unsigned char *answer, size_t size)
{
	unsigned char request[AUTH_REQUEST_MAX];
	char err[128];
	size_t len;
	int pair[2];
	long n;

	ck_assert_int_eq(auth_request_encode(user, strlen(user), password, strlen(password), "", 0,
					     backend, strlen(backend), request, sizeof(request),
					     &len, err, sizeof(err)), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair), 0);
	ck_assert_int_eq(send_raw(a->request_fd, request, len, &pair[1], 1), 0);
	explicit_bzero(request, sizeof(request));
	close(pair[1]);
	n = read_reply(pair[0], answer, size);
	close(pair[0]);
	return n;
}

START_TEST(master_password_only_after_pam_ok)
{
	struct authd a;
	struct auth_secret master;
	struct auth_response resp;
	unsigned char answer[AUTH_RESPONSE_MAX + 1];
	char reason[AUTH_REASON_MAX + 1], err[128];
	long n;

	write_master_file(MASTER_PW_1, 0600);
	start(&a, "mgtest", 2, 10);
	ck_assert_int_eq(master_login(&a, "alice", "secret", MASTER_BACKEND, &master, reason,
				      sizeof(reason)), AUTH_STATUS_OK);
	ck_assert_str_eq(reason, "pam:PAM_SUCCESS");
	ck_assert_uint_eq(master.len, strlen(MASTER_PW_1));
	ck_assert_str_eq(master.value, MASTER_PW_1);
	auth_secret_wipe(&master);
	assert_no_master_password(&master);

	/* PAM says no, for whatever reason: no password. */
	ck_assert_int_eq(master_login(&a, "alice", "wrong", MASTER_BACKEND, &master, reason,
				      sizeof(reason)), AUTH_STATUS_AUTH_FAILED);
	assert_no_master_password(&master);
	ck_assert_int_eq(master_login(&a, "nobody-here", "secret", MASTER_BACKEND, &master, reason,
				      sizeof(reason)), AUTH_STATUS_AUTH_FAILED);
	assert_no_master_password(&master);
	ck_assert_int_eq(master_login(&a, "bob", "secret", MASTER_BACKEND, &master, reason,
				      sizeof(reason)), AUTH_STATUS_ACCOUNT_REFUSED);
	assert_no_master_password(&master);
	ck_assert_int_eq(master_login(&a, "alice", "", MASTER_BACKEND, &master, reason,
				      sizeof(reason)), AUTH_STATUS_AUTH_FAILED);
	assert_no_master_password(&master);
	/* An OK nobody asked a master password for carries none. */
	ck_assert_int_eq(master_login(&a, "alice", "secret", "", &master, reason, sizeof(reason)),
			 AUTH_STATUS_OK);
	assert_no_master_password(&master);

	/* On the wire: the answer to a wrong password holds no byte of it ... */
	n = raw_exchange(&a, "alice", "wrong", MASTER_BACKEND, answer, sizeof(answer));
	ck_assert_int_gt(n, 0);
	ck_assert_ptr_null(memmem(answer, (size_t)n, MASTER_PW_1, strlen(MASTER_PW_1)));
	ck_assert_int_eq(auth_response_decode(answer, (size_t)n, &resp, err, sizeof(err)), 0);
	ck_assert_int_eq(resp.status, AUTH_STATUS_AUTH_FAILED);
	ck_assert_uint_eq(resp.master_password.len, 0);
	/* ... and the same search finds it in the answer to the right one. */
	n = raw_exchange(&a, "alice", "secret", MASTER_BACKEND, answer, sizeof(answer));
	ck_assert_int_gt(n, 0);
	ck_assert_ptr_nonnull(memmem(answer, (size_t)n, MASTER_PW_1, strlen(MASTER_PW_1)));
	explicit_bzero(answer, sizeof(answer));
	stop_and_check_gone(&a);
}
END_TEST

START_TEST(unknown_master_backend_is_a_temporary_failure)
{
	struct authd a;
	struct auth_secret master;
	char reason[AUTH_REASON_MAX + 1];

	write_master_file(MASTER_PW_1, 0600);
	start(&a, "mgtest", 1, 10);
	ck_assert_int_eq(master_login(&a, "alice", "secret", "no_such_backend", &master, reason,
				      sizeof(reason)), AUTH_STATUS_TEMP_FAILURE);
	ck_assert_str_eq(reason, "unknown-master-backend");
	assert_no_master_password(&master);
	/* Known, but its file cannot be read: PAM's yes brings no password. */
	ck_assert_int_eq(master_login(&a, "alice", "secret", "other_master", &master, reason,
				      sizeof(reason)), AUTH_STATUS_TEMP_FAILURE);
	ck_assert_str_eq(reason, "master-user-file");
	assert_no_master_password(&master);
	/* A name the frame cannot carry never leaves the session. */
	ck_assert_int_eq(master_login(&a, "alice", "secret", "dovecot\nmaster", &master, reason,
				      sizeof(reason)), AUTH_STATUS_TEMP_FAILURE);
	ck_assert_str_eq(reason, "auth-bad-request");
	assert_no_master_password(&master);
	/* The worker is still there for the right name. */
	ck_assert_int_eq(master_login(&a, "alice", "secret", MASTER_BACKEND, &master, reason,
				      sizeof(reason)), AUTH_STATUS_OK);
	ck_assert_str_eq(master.value, MASTER_PW_1);
	auth_secret_wipe(&master);
	stop_and_check_gone(&a);
}
END_TEST

START_TEST(master_file_read_for_every_login)
{
	struct authd a;
	struct auth_secret master;
	char reason[AUTH_REASON_MAX + 1];

	write_master_file(MASTER_PW_1, 0600);
	start(&a, "mgtest", 1, 10);
	ck_assert_int_eq(master_login(&a, "alice", "secret", MASTER_BACKEND, &master, reason,
				      sizeof(reason)), AUTH_STATUS_OK);
	ck_assert_str_eq(master.value, MASTER_PW_1);
	/* Rotated between two logins: the next one gets the new password, no restart. */
	write_master_file(MASTER_PW_2, 0600);
	ck_assert_int_eq(master_login(&a, "alice", "secret", MASTER_BACKEND, &master, reason,
				      sizeof(reason)), AUTH_STATUS_OK);
	ck_assert_str_eq(master.value, MASTER_PW_2);
	/* Rewritten readable by others: refused as at start-up, no password. */
	write_master_file(MASTER_PW_2, 0644);
	ck_assert_int_eq(master_login(&a, "alice", "secret", MASTER_BACKEND, &master, reason,
				      sizeof(reason)), AUTH_STATUS_TEMP_FAILURE);
	ck_assert_str_eq(reason, "master-user-file");
	assert_no_master_password(&master);
	write_master_file(MASTER_PW_1, 0640);
	ck_assert_int_eq(master_login(&a, "alice", "secret", MASTER_BACKEND, &master, reason,
				      sizeof(reason)), AUTH_STATUS_OK);
	ck_assert_str_eq(master.value, MASTER_PW_1);
	auth_secret_wipe(&master);
	stop_and_check_gone(&a);
}
END_TEST

/* What a reload compares: kept from the start, through a stop, until the next start. */
START_TEST(started_limits_kept_for_reload)
{
	struct authd a;
	char file[512];
	struct authd_master_login same[2], other[3];
	struct authd_options want = {
		.service = "mgtest", .workers = 1, .timeout_s = 10,
		.max_requests_per_session = LARGE_CAP, .master_logins = same,
		.n_master_logins = 2,
	};

	snprintf(file, sizeof(file), "%s/%s", test_dir(), MASTER_FILE);
	start(&a, "mgtest", 1, 10);
	/* The same table in another order. */
	same[0] = (struct authd_master_login){ .backend = MASTER_BACKEND, .file = file };
	same[1] = (struct authd_master_login){ .backend = "other_master",
					       .file = "/nonexistent/master.cred" };
	ck_assert(authd_same_limits(&a, &want));
	want.max_requests_per_session = 3;
	ck_assert(!authd_same_limits(&a, &want));
	want.max_requests_per_session = LARGE_CAP;
	/* Another file for a backend, a backend more, one less, one twice. */
	other[0] = same[0];
	other[1] = (struct authd_master_login){ .backend = "other_master", .file = "/else" };
	want.master_logins = other;
	ck_assert(!authd_same_limits(&a, &want));
	other[1] = same[1];
	other[2] = (struct authd_master_login){ .backend = "third", .file = "/x" };
	want.n_master_logins = 3;
	ck_assert(!authd_same_limits(&a, &want));
	want.n_master_logins = 1;
	ck_assert(!authd_same_limits(&a, &want));
	other[1] = other[0];
	want.n_master_logins = 2;
	ck_assert(!authd_same_limits(&a, &want));
	/* A restart may be pending after the process died: the answer stays. */
	want.master_logins = same;
	stop_and_check_gone(&a);
	ck_assert(authd_same_limits(&a, &want));
}
END_TEST

/* ---- the per-process request cap ----------------------------------------- */

struct cap_report {
	enum auth_status status[5];
	char reason[5][AUTH_REASON_MAX + 1];
	size_t master_len;
};

START_TEST(request_cap_per_process)
{
	enum { CAP = 3 };
	struct authd a;
	struct cap_report got;
	char reason[AUTH_REASON_MAX + 1];
	int report[2], hold[2];
	pid_t child;
	int status;

	write_master_file(MASTER_PW_1, 0600);
	start_capped(&a, "mgtest", 2, 10, CAP);
	ck_assert_int_eq(pipe(report), 0);
	ck_assert_int_eq(pipe(hold), 0);
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		/* A session process: CAP answers of any kind, then nothing more. */
		struct cap_report r;
		struct auth_secret master;
		char byte;

		memset(&r, 0, sizeof(r));
		close(report[0]);
		close(hold[1]);
		r.status[0] = login(&a, "alice", "secret", CHECK_MS, r.reason[0],
				    sizeof(r.reason[0]));
		r.status[1] = login(&a, "alice", "wrong", CHECK_MS, r.reason[1],
				    sizeof(r.reason[1]));
		r.status[2] = master_login(&a, "alice", "secret", MASTER_BACKEND, &master,
					   r.reason[2], sizeof(r.reason[2]));
		auth_secret_wipe(&master);
		r.status[3] = master_login(&a, "alice", "secret", MASTER_BACKEND, &master,
					   r.reason[3], sizeof(r.reason[3]));
		r.master_len = master.len;
		r.status[4] = login(&a, "alice", "secret", CHECK_MS, r.reason[4],
				    sizeof(r.reason[4]));
		if (write(report[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(2);
		/* Stay alive: the other process below is served while this one is refused. */
		if (read(hold[0], &byte, 1) < 0)
			_exit(3);
		_exit(0);
	}
	close(report[1]);
	close(hold[0]);
	ck_assert_int_eq(read(report[0], &got, sizeof(got)), (ssize_t)sizeof(got));
	close(report[0]);
	ck_assert_int_eq(got.status[0], AUTH_STATUS_OK);
	ck_assert_int_eq(got.status[1], AUTH_STATUS_AUTH_FAILED);
	ck_assert_int_eq(got.status[2], AUTH_STATUS_OK);
	/* The cap+1-th request: refused before PAM, and without the master password. */
	ck_assert_int_eq(got.status[3], AUTH_STATUS_TEMP_FAILURE);
	ck_assert_str_eq(got.reason[3], "request-limit");
	ck_assert_uint_eq(got.master_len, 0);
	ck_assert_int_eq(got.status[4], AUTH_STATUS_TEMP_FAILURE);
	ck_assert_str_eq(got.reason[4], "request-limit");

	/* While that process lives, this one has an allowance of its own. */
	ck_assert(proc_alive(child));
	for (int i = 0; i < CAP; i++)
		ck_assert_int_eq(login(&a, "alice", "secret", CHECK_MS, reason, sizeof(reason)),
				 AUTH_STATUS_OK);
	ck_assert_int_eq(login(&a, "alice", "secret", CHECK_MS, reason, sizeof(reason)),
			 AUTH_STATUS_TEMP_FAILURE);
	ck_assert_str_eq(reason, "request-limit");
	ck_assert(proc_alive(child));
	close(hold[1]);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* A new process starts from zero (the counts live in the auth process, not here). */
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0)
		_exit((int)login(&a, "alice", "secret", CHECK_MS, reason, sizeof(reason)));
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == AUTH_STATUS_OK);
	stop_and_check_gone(&a);
}
END_TEST

/* ---- lifetime ----------------------------------------------------------- */

START_TEST(supervisor_killed)
{
	struct authd a;
	char reason[AUTH_REASON_MAX + 1];
	pid_t workers[2];
	long long started, took, deadline;
	int status;

	start(&a, "mgtest", 2, 10);
	wait_workers(&a, 2);
	ck_assert_int_eq(workers_of(a.supervisor, workers, 2), 2);
	ck_assert_int_eq(kill(a.supervisor, SIGKILL), 0);
	ck_assert_int_eq(waitpid(a.supervisor, &status, 0), a.supervisor);
	/* Sessions get a temporary failure at once, not a hang. */
	started = mg_now_ms();
	ck_assert_int_eq(login(&a, "alice", "secret", CHECK_MS, reason, sizeof(reason)),
			 AUTH_STATUS_TEMP_FAILURE);
	took = mg_now_ms() - started;
	ck_assert_msg(took < 3000, "temporary failure took %lld ms", took);
	/* The workers follow their supervisor (parent-death signal). */
	deadline = mg_now_ms() + 3000;
	for (int i = 0; i < 2; i++) {
		while (proc_alive(workers[i])) {
			ck_assert_msg(mg_now_ms() < deadline, "worker %ld outlived its supervisor",
				      (long)workers[i]);
			sleep_ms(10);
		}
	}
	authd_stop(&a);		/* the supervisor is reaped already: must not hang */
	ck_assert(!a.running);
}
END_TEST

START_TEST(supervisor_follows_master)
{
	int report[2];
	pid_t master, pids[AUTHD_WORKERS_MAX + 1];
	int n = 0, status;
	long long deadline;

	ck_assert_int_eq(pipe(report), 0);
	master = fork();
	ck_assert_int_ge(master, 0);
	if (master == 0) {
		struct authd a;
		struct authd_options opt = {
			.service = "mgtest", .workers = 3, .timeout_s = 10,
			.max_requests_per_session = LARGE_CAP,
		};
		char err[256];
		pid_t found[AUTHD_WORKERS_MAX];
		int k;
		long long until = mg_now_ms() + 5000;

		if (authd_start(&opt, &a, err, sizeof(err)) < 0)
			_exit(1);
		while ((k = workers_of(a.supervisor, found, AUTHD_WORKERS_MAX)) != 3 &&
		       mg_now_ms() < until)
			sleep_ms(10);
		if (k != 3)
			_exit(3);
		found[3] = a.supervisor;
		if (write(report[1], found, sizeof(pid_t) * 4) < 0)
			_exit(2);
		_exit(0);	/* a master that dies without authd_stop() */
	}
	close(report[1]);
	ck_assert_int_eq(waitpid(master, &status, 0), master);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	{
		ssize_t got = read(report[0], pids, sizeof(pids));

		ck_assert_int_gt(got, 0);
		n = (int)(got / (ssize_t)sizeof(pid_t));
	}
	close(report[0]);
	ck_assert_int_eq(n, 4);
	deadline = mg_now_ms() + 5000;
	for (int i = 0; i < n; i++) {
		while (proc_alive(pids[i])) {
			ck_assert_msg(mg_now_ms() < deadline, "pid %ld outlived the master",
				      (long)pids[i]);
			sleep_ms(10);
		}
	}
}
END_TEST

/* ---- set-up: private PAM configuration and the re-exec under pam_wrapper -- */

static int write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
	char path[1024];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	ok = fputs(text, f) >= 0;
	if (fclose(f) != 0 || !ok || chmod(path, mode) != 0)
		return -1;
	return 0;
}

static int setup_dir(char *dir, size_t dirsize)
{
	char services[1024], text[4096];

	snprintf(dir, dirsize, "/tmp/check_auth_process.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(services, sizeof(services), "%s/services", dir);
	if (mkdir(services, 0700) < 0)
		return -1;
	/* pam_matrix: user:password:the service its account step allows. */
	if (write_file(dir, "passdb",
		       "alice:secret:mgtest\n"
		       "bob:secret:elsewhere\n"
		       "slowuser:secret:mgtest\n"
		       "rhostuser:secret:mgtest\n", 0600) < 0)
		return -1;
	/* Slow for "slow*" users (a PAM call to time out or kill), a witness for PAM_RHOST. */
	snprintf(text, sizeof(text),
		 "#!/bin/sh\n"
		 "case \"$PAM_USER\" in\n"
		 "slow*) exec /bin/sleep 30 ;;\n"
		 "rhost*) printf '%%s' \"$PAM_RHOST\" > '%s/rhost.out' ;;\n"
		 "esac\n"
		 "exit 0\n", dir);
	if (write_file(dir, "slow.sh", text, 0755) < 0)
		return -1;
	/*
	 * pam_wrapper re-initialises itself in every forked child that uses
	 * PAM and drops the parent's strdup()ed paths: its leak, not ours, seen
	 * by LeakSanitizer when a worker exits cleanly.
	 */
	if (write_file(dir, "lsan.supp", "leak:libpam_wrapper.so\n", 0644) < 0)
		return -1;
	snprintf(text, sizeof(text),
		 "auth requisite %s/pam_exec.so quiet %s/slow.sh\n"
		 "auth required %s passdb=%s/passdb verbose\n"
		 "account required %s passdb=%s/passdb\n",
		 PAM_MODULE_DIR, dir, PAM_MATRIX, dir, PAM_MATRIX, dir);
	if (write_file(services, "mgtest", text, 0644) < 0)
		return -1;
	snprintf(text, sizeof(text),
		 "auth required %s passdb=%s/passdb\n"
		 "account requisite %s/pam_deny.so\n",
		 PAM_MATRIX, dir, PAM_MODULE_DIR);
	if (write_file(services, "mgdeny", text, 0644) < 0)
		return -1;
	/* libpam's fallback for unknown services: deny, as a real system does. */
	snprintf(text, sizeof(text),
		 "auth required %s/pam_deny.so\n"
		 "account required %s/pam_deny.so\n"
		 "password required %s/pam_deny.so\n"
		 "session required %s/pam_deny.so\n",
		 PAM_MODULE_DIR, PAM_MODULE_DIR, PAM_MODULE_DIR, PAM_MODULE_DIR);
	if (write_file(services, "other", text, 0644) < 0)
		return -1;
	return 0;
}

/*
 * pam_wrapper gives every process that uses PAM a /tmp/pam.? directory and
 * removes it at exit; workers killed on purpose here cannot. Remove those
 * whose owner is dead, exactly as pam_wrapper does itself when it next
 * stumbles on one, so the tests leave /tmp as they found it.
 */
static void remove_stale_pam_wrapper_dirs(void)
{
	DIR *d = opendir("/tmp");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[512], buf[32];
		const char *files[] = { "pid", "other", "mgtest", "mgdeny" };
		long pid;
		char *end;
		FILE *f;
		size_t n;

		if (strncmp(e->d_name, "pam.", 4) != 0 || strlen(e->d_name) != 5)
			continue;
		snprintf(path, sizeof(path), "/tmp/%s/pid", e->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		pid = strtol(buf, &end, 10);
		if (end == buf || pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			snprintf(path, sizeof(path), "/tmp/%s/%s", e->d_name, files[i]);
			unlink(path);
		}
		snprintf(path, sizeof(path), "/tmp/%s", e->d_name);
		rmdir(path);
	}
	closedir(d);
}

static void remove_dir(const char *dir)
{
	static const char *const files[] = {
		"services/mgtest", "services/mgdeny", "services/other", "passdb", "slow.sh",
		"rhost.out", "lsan.supp", MASTER_FILE, MASTER_FILE ".tmp",
	};
	char path[1024];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/services", dir);
	rmdir(path);
	rmdir(dir);
}

/*
 * 0 when every file the tests preload or name in a service file is readable;
 * otherwise the exit status: 77 (skip) when pam_wrapper is not installed at
 * all, EXIT_FAILURE when it is but something is not where configure found it.
 */
static int pam_files_present(void)
{
	const char *const files[] = { PAM_WRAPPER_LIB, PAM_MATRIX, PAM_MODULE_DIR "/pam_exec.so",
				      PAM_MODULE_DIR "/pam_deny.so" };
	int rc = 0;

	if (PAM_WRAPPER_LIB[0] == '\0') {
		fprintf(stderr, "check_auth_process: configure found no pam_wrapper (neither "
			"pkg-config nor the linker knows it; Debian: libpam-wrapper); skipped\n");
		return 77;
	}
	if (PAM_MODULE_DIR[0] == '\0') {
		fprintf(stderr, "check_auth_process: pam_wrapper is installed (%s) but configure "
			"found no PAM module directory (pkg-config pam, or libpam.so)\n",
			PAM_WRAPPER_LIB);
		return EXIT_FAILURE;
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (access(files[i], R_OK) != 0) {
			fprintf(stderr, "check_auth_process: pam_wrapper is installed (%s) but %s "
				"is missing: %s (Debian: libpam-wrapper, libpam-modules; "
				"re-run configure after installing)\n", PAM_WRAPPER_LIB, files[i],
				strerror(errno));
			rc = EXIT_FAILURE;
		}
	}
	return rc;
}

/* Re-run this binary with pam_wrapper preloaded; returns only on failure. */
static int reexec_under_pam_wrapper(char **argv)
{
	static char dir[256];
	char preload[2048], asan[2048], lsan[2048];
	const char *old;

	int rc = pam_files_present();

	if (rc != 0)
		return rc;
	if (setup_dir(dir, sizeof(dir)) < 0) {
		fprintf(stderr, "check_auth_process: cannot set up %s: %s\n", dir, strerror(errno));
		return 99;
	}
	old = getenv("LD_PRELOAD");
	snprintf(preload, sizeof(preload), "%s%s%s", PAM_WRAPPER_LIB,
		 old != NULL && old[0] != '\0' ? ":" : "", old != NULL ? old : "");
	/* ASan wants to be first in the link order; pam_wrapper is preloaded before it. */
	old = getenv("ASAN_OPTIONS");
	snprintf(asan, sizeof(asan), "%s%sverify_asan_link_order=0",
		 old != NULL ? old : "", old != NULL && old[0] != '\0' ? ":" : "");
	old = getenv("LSAN_OPTIONS");
	snprintf(lsan, sizeof(lsan), "%s%ssuppressions=%s/lsan.supp:print_suppressions=0",
		 old != NULL ? old : "", old != NULL && old[0] != '\0' ? ":" : "", dir);
	setenv("LSAN_OPTIONS", lsan, 1);
	setenv(DIR_ENV, dir, 1);
	setenv("LD_PRELOAD", preload, 1);
	setenv("ASAN_OPTIONS", asan, 1);
	setenv("PAM_WRAPPER", "1", 1);
	/*
	 * RTLD_DEEPBIND (pam_wrapper's default) and the sanitizers do not mix.
	 * pam_wrapper 1.1.4 (Debian 12) reads the variable under uid_wrapper's
	 * name; later releases under its own. Set both.
	 */
	setenv("PAM_WRAPPER_DISABLE_DEEPBIND", "1", 1);
	setenv("UID_WRAPPER_DISABLE_DEEPBIND", "1", 1);
	{
		char services[1024];

		snprintf(services, sizeof(services), "%s/services", dir);
		setenv("PAM_WRAPPER_SERVICE_DIR", services, 1);
	}
	execv("/proc/self/exe", argv);
	fprintf(stderr, "check_auth_process: re-exec: %s\n", strerror(errno));
	remove_dir(dir);
	return 99;
}

int main(int argc, char **argv)
{
	Suite *suite;
	TCase *pam;
	SRunner *runner;
	int failed;

	(void)argc;
	if (getenv(DIR_ENV) == NULL)
		return reexec_under_pam_wrapper(argv);

	log_open("check_auth_process", 1, MG_LOG_INFO);
	suite = suite_create("authd");
	pam = tcase_create("pam");
	tcase_set_timeout(pam, 60);
	tcase_add_test(pam, right_password_accepted);
	tcase_add_test(pam, wrong_password_refused);
	tcase_add_test(pam, account_refused_by_matrix);
	tcase_add_test(pam, account_refused_by_pam_deny);
	tcase_add_test(pam, rhost_reaches_pam);
	tcase_add_test(pam, twenty_logins_in_parallel);
	tcase_add_test(pam, worker_killed_mid_call);
	tcase_add_test(pam, pam_call_timeout);
	tcase_add_test(pam, session_deadline);
	tcase_add_test(pam, not_running_and_bad_arguments);
	tcase_add_test(pam, hostile_datagrams_refused);
	tcase_add_test(pam, master_password_only_after_pam_ok);
	tcase_add_test(pam, unknown_master_backend_is_a_temporary_failure);
	tcase_add_test(pam, master_file_read_for_every_login);
	tcase_add_test(pam, request_cap_per_process);
	tcase_add_test(pam, started_limits_kept_for_reload);
	tcase_add_test(pam, supervisor_killed);
	tcase_add_test(pam, supervisor_follows_master);
	suite_add_tcase(suite, pam);
	runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	remove_dir(getenv(DIR_ENV));
	remove_stale_pam_wrapper_dirs();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
