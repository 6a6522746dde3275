/*
 * auth_quota.c - the per-process request counts of the PAM auth workers, in
 * memory the workers share (see auth_quota.h for why and how).
 *
 * The table is one anonymous MAP_SHARED mapping: a header with the robust
 * process-shared mutex, then a flat array of slots. A lookup scans every
 * slot (a few thousand, a PAM call costs far more) and only reads /proc for
 * the sender itself; the sweep that reclaims stale slots reads /proc for
 * every slot, and runs only when no slot is free. A slot is written so that
 * a writer killed half-way leaves at worst an entry that looks stale.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "auth_quota.h"
#include "log.h"

struct quota_slot {
	pid_t pid;			/* 0: free */
	unsigned count;
	unsigned long long start;	/* the process's start time, to tell incarnations apart */
};

struct auth_quota {
	pthread_mutex_t lock;
	size_t map_size;
	unsigned n_slots;
	unsigned cap;
	struct quota_slot slots[];
};

static const char *const result_names[AUTH_QUOTA_RESULT_COUNT] = {
	[AUTH_QUOTA_OK] = "ok",
	[AUTH_QUOTA_OVER] = "over",
	[AUTH_QUOTA_FULL] = "full",
	[AUTH_QUOTA_GONE] = "gone",
	[AUTH_QUOTA_ERROR] = "error",
};
_Static_assert(sizeof(result_names) / sizeof(result_names[0]) == AUTH_QUOTA_RESULT_COUNT,
	       "result_names must name every auth_quota_result");

const char *auth_quota_result_name(enum auth_quota_result result)
{
	if ((int)result < 0 || result >= AUTH_QUOTA_RESULT_COUNT)
		return "invalid";
	return result_names[result];
}

struct auth_quota *auth_quota_create(unsigned slots, unsigned cap, char *err, size_t errlen)
{
	pthread_mutexattr_t attr;
	struct auth_quota *q;
	size_t size;
	int rc;

	if (slots < 1 || slots > AUTH_QUOTA_SLOTS_MAX) {
		snprintf(err, errlen, "request table of %u slots outside 1..%d", slots,
			 AUTH_QUOTA_SLOTS_MAX);
		return NULL;
	}
	if (cap < 1 || cap > AUTH_QUOTA_CAP_MAX) {
		snprintf(err, errlen, "requests per session %u outside 1..%d", cap,
			 AUTH_QUOTA_CAP_MAX);
		return NULL;
	}
	size = sizeof(*q) + (size_t)slots * sizeof(q->slots[0]);
	/* Anonymous shared memory starts zeroed: every slot free. */
	q = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (q == MAP_FAILED) {
		snprintf(err, errlen, "request table mmap: %s", strerror(errno));
		return NULL;
	}
	q->map_size = size;
	q->n_slots = slots;
	q->cap = cap;
	if ((rc = pthread_mutexattr_init(&attr)) != 0 ||
	    (rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED)) != 0 ||
	    (rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST)) != 0 ||
	    (rc = pthread_mutex_init(&q->lock, &attr)) != 0) {
		snprintf(err, errlen, "request table lock: %s", strerror(rc));
		pthread_mutexattr_destroy(&attr);
		munmap(q, size);
		return NULL;
	}
	pthread_mutexattr_destroy(&attr);
	return q;
}

void auth_quota_destroy(struct auth_quota *quota)
{
	if (quota == NULL)
		return;
	/* Not pthread_mutex_destroy(): forked copies may still use the lock. */
	munmap(quota, quota->map_size);
}

int auth_quota_lock(struct auth_quota *quota)
{
	int rc = pthread_mutex_lock(&quota->lock);

	if (rc == EOWNERDEAD) {
		/*
		 * Its holder died (a worker killed by the supervisor). The slots
		 * stay usable: a half-written one looks stale at worst.
		 */
		log_warning("auth request table: a process died holding its lock; recovered");
		if (pthread_mutex_consistent(&quota->lock) != 0) {
			pthread_mutex_unlock(&quota->lock);
			return -1;
		}
		return 0;
	}
	if (rc != 0) {
		log_error("auth request table lock: %s", strerror(rc));
		return -1;
	}
	return 0;
}

void auth_quota_unlock(struct auth_quota *quota)
{
	pthread_mutex_unlock(&quota->lock);
}

/* Digits only, into *out; false on anything else or overflow. */
static bool parse_ull(const char *s, size_t len, unsigned long long *out)
{
	unsigned long long v = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return false;
		d = (unsigned)(s[i] - '0');
		if (v > (~0ULL - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

int auth_quota_start_time(pid_t pid, unsigned long long *start)
{
	char path[64], buf[1024];
	const char *p, *end;
	ssize_t n;
	int fd;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	end = buf + n;
	/*
	 * "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
	 * the fields start after the last ')'. Field 3 is the state, field 22
	 * the start time: the 20th word after the parenthesis.
	 */
	p = strrchr(buf, ')');
	if (p == NULL)
		return -1;
	p++;
	for (unsigned field = 3; field <= 22; field++) {
		const char *word;

		while (p < end && *p == ' ')
			p++;
		word = p;
		while (p < end && *p != ' ' && *p != '\n')
			p++;
		if (p == word)
			return -1;
		if (field == 3 && (*word == 'Z' || *word == 'X'))
			return -1;	/* ended, not yet reaped: gone for our purpose */
		if (field == 22)
			return parse_ull(word, (size_t)(p - word), start) ? 0 : -1;
	}
	return -1;
}

/* Whether the slot's process is gone or its pid now belongs to another one. */
static bool slot_stale(const struct quota_slot *slot)
{
	unsigned long long start;

	return auth_quota_start_time(slot->pid, &start) < 0 || start != slot->start;
}

/* Free every stale slot; returns the index of the first free slot, or -1. */
static long sweep(struct auth_quota *q)
{
	long first = -1;

	for (unsigned i = 0; i < q->n_slots; i++) {
		struct quota_slot *slot = &q->slots[i];

		if (slot->pid != 0 && slot_stale(slot))
			slot->pid = 0;
		if (slot->pid == 0 && first < 0)
			first = (long)i;
	}
	return first;
}

enum auth_quota_result auth_quota_charge(struct auth_quota *quota, pid_t pid,
					 unsigned long long start, unsigned *count)
{
	struct quota_slot *slot = NULL;
	enum auth_quota_result result;
	long free_slot = -1;

	*count = 0;
	if (pid <= 0)
		return AUTH_QUOTA_GONE;
	if (auth_quota_lock(quota) < 0)
		return AUTH_QUOTA_ERROR;
	/* A pid has at most one slot: it is only added after a scan missed it. */
	for (unsigned i = 0; i < quota->n_slots && slot == NULL; i++) {
		if (quota->slots[i].pid == pid)
			slot = &quota->slots[i];
		else if (quota->slots[i].pid == 0 && free_slot < 0)
			free_slot = (long)i;
	}
	if (slot != NULL && slot->start != start) {
		/* The pid was reused: a new process starts from zero. Count first. */
		slot->count = 0;
		slot->start = start;
	}
	if (slot == NULL) {
		if (free_slot < 0)
			free_slot = sweep(quota);
		if (free_slot < 0) {
			auth_quota_unlock(quota);
			return AUTH_QUOTA_FULL;
		}
		slot = &quota->slots[free_slot];
		/* pid last: a slot with a pid is always complete. */
		slot->count = 0;
		slot->start = start;
		slot->pid = pid;
	}
	if (slot->count >= quota->cap) {
		result = AUTH_QUOTA_OVER;
	} else {
		slot->count++;
		result = AUTH_QUOTA_OK;
	}
	*count = slot->count;
	auth_quota_unlock(quota);
	return result;
}

enum auth_quota_result auth_quota_take(struct auth_quota *quota, pid_t pid, unsigned *count)
{
	unsigned long long start;

	*count = 0;
	if (auth_quota_start_time(pid, &start) < 0)
		return AUTH_QUOTA_GONE;
	return auth_quota_charge(quota, pid, start, count);
}
