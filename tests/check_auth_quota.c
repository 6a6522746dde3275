/*
 * check_auth_quota.c - the per-process request counts of the PAM workers,
 * with real processes: each child's allowance is its own, the cap holds
 * across several "worker" processes sharing the table, a dead (or zombie)
 * child's slot is reclaimed, a reused pid starts from zero, a table full of
 * live processes refuses, and a process that dies holding the lock does not
 * wedge the others.
 */
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth_quota.h"
#include "log.h"
#include "check_run.h"

/* A child that does nothing until it is killed: a live session process. */
static pid_t sleeper(void)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* Never outlive a test that failed half-way. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	return pid;
}

static void kill_and_reap(pid_t pid)
{
	int status;

	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
}

/* Kill without reaping, and wait until the kernel shows it as a zombie. */
static void kill_leave_zombie(pid_t pid)
{
	siginfo_t si;

	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	memset(&si, 0, sizeof(si));
	ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	ck_assert_int_eq(si.si_pid, pid);
}

static struct auth_quota *make(unsigned slots, unsigned cap)
{
	char err[128] = "";
	struct auth_quota *q = auth_quota_create(slots, cap, err, sizeof(err));

	ck_assert_msg(q != NULL, "%s", err);
	return q;
}

static void expect(struct auth_quota *q, pid_t pid, enum auth_quota_result want,
		   unsigned want_count)
{
	unsigned count = 99;
	enum auth_quota_result got = auth_quota_take(q, pid, &count);

	ck_assert_msg(got == want, "pid %ld: %s, want %s", (long)pid, auth_quota_result_name(got),
		      auth_quota_result_name(want));
	ck_assert_uint_eq(count, want_count);
}

START_TEST(start_time_from_proc)
{
	unsigned long long mine = 0, child = 0, again = 0;
	pid_t pid = sleeper();

	ck_assert_int_eq(auth_quota_start_time(getpid(), &mine), 0);
	ck_assert_int_eq(auth_quota_start_time(pid, &child), 0);
	ck_assert(child >= mine);
	ck_assert_int_eq(auth_quota_start_time(pid, &again), 0);
	ck_assert(again == child);
	/* A zombie has ended: no start time. */
	kill_leave_zombie(pid);
	ck_assert_int_eq(auth_quota_start_time(pid, &again), -1);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	ck_assert_int_eq(auth_quota_start_time(pid, &again), -1);
	ck_assert_int_eq(auth_quota_start_time(0, &again), -1);
	ck_assert_int_eq(auth_quota_start_time(-1, &again), -1);
}
END_TEST

START_TEST(cap_per_process)
{
	struct auth_quota *q = make(8, 3);
	pid_t a = sleeper(), b = sleeper();

	expect(q, a, AUTH_QUOTA_OK, 1);
	expect(q, a, AUTH_QUOTA_OK, 2);
	expect(q, b, AUTH_QUOTA_OK, 1);
	expect(q, a, AUTH_QUOTA_OK, 3);
	/* The cap+1-th is refused, and so is every one after it. */
	expect(q, a, AUTH_QUOTA_OVER, 3);
	expect(q, a, AUTH_QUOTA_OVER, 3);
	/* Another process is still served, up to its own cap. */
	expect(q, b, AUTH_QUOTA_OK, 2);
	expect(q, b, AUTH_QUOTA_OK, 3);
	expect(q, b, AUTH_QUOTA_OVER, 3);
	expect(q, getpid(), AUTH_QUOTA_OK, 1);
	kill_and_reap(a);
	kill_and_reap(b);
	auth_quota_destroy(q);
}
END_TEST

START_TEST(cap_holds_across_worker_processes)
{
	enum { WORKERS = 4, EACH = 3, CAP = 5 };
	struct auth_quota *q = make(8, CAP);
	pid_t session = sleeper(), workers[WORKERS];
	int ok = 0;

	/* Like the auth workers: separate processes, forked after the table was made. */
	for (int i = 0; i < WORKERS; i++) {
		workers[i] = fork();
		ck_assert_int_ge(workers[i], 0);
		if (workers[i] == 0) {
			int served = 0;

			for (int k = 0; k < EACH; k++) {
				unsigned count;

				if (auth_quota_take(q, session, &count) == AUTH_QUOTA_OK)
					served++;
			}
			_exit(served);
		}
	}
	for (int i = 0; i < WORKERS; i++) {
		int status;

		ck_assert_int_eq(waitpid(workers[i], &status, 0), workers[i]);
		ck_assert(WIFEXITED(status));
		ok += WEXITSTATUS(status);
	}
	ck_assert_int_eq(ok, CAP);
	expect(q, session, AUTH_QUOTA_OVER, CAP);
	kill_and_reap(session);
	auth_quota_destroy(q);
}
END_TEST

START_TEST(full_table_refuses_and_dead_slots_are_reclaimed)
{
	struct auth_quota *q = make(2, 1);
	pid_t a = sleeper(), b = sleeper(), c = sleeper(), d = sleeper();

	expect(q, a, AUTH_QUOTA_OK, 1);
	expect(q, b, AUTH_QUOTA_OK, 1);
	/* Two live processes hold both slots: a third is refused, not let in uncounted. */
	expect(q, c, AUTH_QUOTA_FULL, 0);
	expect(q, c, AUTH_QUOTA_FULL, 0);
	/* The known ones still get their answers. */
	expect(q, a, AUTH_QUOTA_OVER, 1);
	/* a ends: its slot goes to c. */
	kill_and_reap(a);
	expect(q, c, AUTH_QUOTA_OK, 1);
	expect(q, d, AUTH_QUOTA_FULL, 0);
	/* A zombie (ended, not yet reaped) counts as gone too. */
	kill_leave_zombie(b);
	expect(q, d, AUTH_QUOTA_OK, 1);
	ck_assert_int_eq(waitpid(b, NULL, 0), b);
	kill_and_reap(c);
	kill_and_reap(d);
	auth_quota_destroy(q);
}
END_TEST

START_TEST(reused_pid_starts_from_zero)
{
	struct auth_quota *q = make(4, 2);
	pid_t a = sleeper();
	unsigned long long start;
	unsigned count;

	ck_assert_int_eq(auth_quota_start_time(a, &start), 0);
	ck_assert_int_eq(auth_quota_charge(q, a, start, &count), AUTH_QUOTA_OK);
	ck_assert_int_eq(auth_quota_charge(q, a, start, &count), AUTH_QUOTA_OK);
	ck_assert_int_eq(auth_quota_charge(q, a, start, &count), AUTH_QUOTA_OVER);
	/* The same pid, started later: a new process with its own allowance. */
	ck_assert_int_eq(auth_quota_charge(q, a, start + 1, &count), AUTH_QUOTA_OK);
	ck_assert_uint_eq(count, 1);
	ck_assert_int_eq(auth_quota_charge(q, a, start + 1, &count), AUTH_QUOTA_OK);
	ck_assert_int_eq(auth_quota_charge(q, a, start + 1, &count), AUTH_QUOTA_OVER);
	ck_assert_uint_eq(count, 2);
	kill_and_reap(a);
	auth_quota_destroy(q);
}
END_TEST

START_TEST(gone_sender)
{
	struct auth_quota *q = make(4, 2);
	pid_t a = sleeper();

	kill_and_reap(a);
	expect(q, a, AUTH_QUOTA_GONE, 0);
	expect(q, 0, AUTH_QUOTA_GONE, 0);
	expect(q, -5, AUTH_QUOTA_GONE, 0);
	auth_quota_destroy(q);
}
END_TEST

START_TEST(lock_holder_dies)
{
	struct auth_quota *q = make(4, 10);
	pid_t holder;
	int status;

	holder = fork();
	ck_assert_int_ge(holder, 0);
	if (holder == 0) {
		/* A worker killed while it holds the lock. */
		if (auth_quota_lock(q) < 0)
			_exit(1);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(holder, &status, 0), holder);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The robust mutex hands the lock on: the table keeps working. */
	expect(q, getpid(), AUTH_QUOTA_OK, 1);
	expect(q, getpid(), AUTH_QUOTA_OK, 2);
	auth_quota_destroy(q);
}
END_TEST

START_TEST(bad_arguments)
{
	char err[128];

	ck_assert_ptr_null(auth_quota_create(0, 3, err, sizeof(err)));
	ck_assert_ptr_null(auth_quota_create(AUTH_QUOTA_SLOTS_MAX + 1, 3, err, sizeof(err)));
	/* 0 is not "unlimited": it is refused. */
	ck_assert_ptr_null(auth_quota_create(4, 0, err, sizeof(err)));
	ck_assert_msg(strstr(err, "outside 1..") != NULL, "%s", err);
	ck_assert_ptr_null(auth_quota_create(4, AUTH_QUOTA_CAP_MAX + 1, err, sizeof(err)));
	auth_quota_destroy(NULL);
	ck_assert_str_eq(auth_quota_result_name(AUTH_QUOTA_OVER), "over");
	ck_assert_str_eq(auth_quota_result_name(AUTH_QUOTA_FULL), "full");
	ck_assert_str_eq(auth_quota_result_name(AUTH_QUOTA_RESULT_COUNT), "invalid");
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("auth_quota");
	TCase *tc = tcase_create("core");

	log_open("check_auth_quota", 1, MG_LOG_INFO);
	tcase_add_test(tc, start_time_from_proc);
	tcase_add_test(tc, cap_per_process);
	tcase_add_test(tc, cap_holds_across_worker_processes);
	tcase_add_test(tc, full_table_refuses_and_dead_slots_are_reclaimed);
	tcase_add_test(tc, reused_pid_starts_from_zero);
	tcase_add_test(tc, gone_sender);
	tcase_add_test(tc, lock_holder_dies);
	tcase_add_test(tc, bad_arguments);
	suite_add_tcase(suite, tc);
	return check_run(suite);
}
