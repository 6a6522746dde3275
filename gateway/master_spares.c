/*
 * master_spares.c - session children forked ahead of need.
 *
 * Every connection gets a child of its own for the pre-login dialogue; the
 * master keeps a few of them forked in advance (SPARES_MAX), already in
 * their sandbox (chroot, session_user, no fork, not dumpable), each waiting
 * on a private control socket for the one channel it will serve. Granting a
 * session then costs one small message instead of a fork on the client's
 * path; the pool is topped up after the master has answered the engines,
 * so a burst of connections is granted first and forked for after.
 *
 * Under load the pool is refilled in batches: only once it is down to
 * SPARES_LOW, then to full. Every fork makes the master's own pages
 * copy-on-write again, so each page its loop writes (poll, the engine
 * messages, the session counts) costs a page fault per fork; on a
 * hypervisor with shadow page tables that is ~50 us each, about a quarter of
 * the master's CPU per session when it forked one spare per session. A
 * batch pays those faults once for SPARES_MAX - SPARES_LOW forks. A pool
 * above SPARES_LOW but not full is topped up once the master has been
 * quiet for SPARES_TOPUP_MS, so an idle gateway still always has the same
 * processes (what the benchmark's memory figures rely on).
 *
 * The pool belongs to one generation (its configuration and sandbox): when
 * a reload makes another generation current, the old spares are let go (they
 * exit when their control socket closes) and new ones are forked. The same
 * when the auth process restarts, since every child holds the auth
 * process's request socket from the moment it is forked. A spare that dies
 * unasked is only a missed slot: it is reaped and forgotten. When the pool
 * is empty the master forks as before.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan.h"
#include "clock.h"
#include "log.h"
#include "master_internal.h"
#include "session_sandbox.h"

static void let_go(struct spare *s)
{
	close(s->fd);
	s->fd = -1;
	s->pid = 0;
}

void spares_drop(struct master *m)
{
	for (size_t i = 0; i < m->n_spares; i++)
		let_go(&m->spares[i]);
	m->n_spares = 0;
}

static int fork_spare(struct master *m, struct generation *g)
{
	int pair[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
		log_error("spare session: socketpair: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid == 0)
		session_spare_main(&g->sandbox, g->cfg, pair[1],
				   m->authd.running ? m->authd.request_fd : -1);
	close(pair[1]);
	if (pid < 0) {
		log_error("spare session: fork: %s", strerror(errno));
		close(pair[0]);
		return -1;
	}
	/* The master never waits for a spare: a full queue means it is gone. */
	fcntl(pair[0], F_SETFL, fcntl(pair[0], F_GETFL) | O_NONBLOCK);
	remember_child(m, pid);
	m->spares[m->n_spares++] = (struct spare){ .pid = pid, .fd = pair[0] };
	return 0;
}

void spares_fill(struct master *m, bool quiet)
{
	struct generation *g = m->current;
	long long now;

	if (m->stopping || g == NULL) {
		spares_drop(m);
		m->spares_topup_at = 0;
		return;
	}
	if (m->spares_generation != g->number || m->spares_authd != m->authd_started_ms) {
		spares_drop(m);
		m->spares_generation = g->number;
		m->spares_authd = m->authd_started_ms;
	}
	if (m->n_spares == SPARES_MAX) {
		m->spares_topup_at = 0;
		return;
	}
	now = mg_now_ms();
	if (m->n_spares > SPARES_LOW && !(quiet && m->spares_topup_at != 0 &&
					  now >= m->spares_topup_at)) {
		/* Not low yet: top up later, once nothing else is going on. */
		if (!quiet || m->spares_topup_at == 0)
			m->spares_topup_at = now + SPARES_TOPUP_MS;
		return;
	}
	/* One flush for the batch: no child inherits a buffered line to write again. */
	fflush(NULL);
	while (m->n_spares < SPARES_MAX && fork_spare(m, g) == 0)
		;
	/* A fork that failed is tried again later, not in a loop. */
	m->spares_topup_at = m->n_spares == SPARES_MAX ? 0 : now + SPARES_TOPUP_MS;
}

pid_t spares_take(struct master *m, const struct generation *g, int link)
{
	if (g->number != m->spares_generation)
		return 0;
	while (m->n_spares > 0) {
		struct spare s = m->spares[--m->n_spares];
		struct chan_msg msg;

		chan_msg_init(&msg, CHAN_SPARE_SESSION);
		if (chan_send(s.fd, &msg, &link, 1) == 0) {
			close(s.fd);
			return s.pid;
		}
		log_warning("spare session %ld did not take its session: %s", (long)s.pid,
			    strerror(errno));
		let_go(&s);
	}
	return 0;
}

bool spares_forget(struct master *m, pid_t pid)
{
	for (size_t i = 0; i < m->n_spares; i++) {
		if (m->spares[i].pid == pid) {
			let_go(&m->spares[i]);
			m->spares[i] = m->spares[--m->n_spares];
			return true;
		}
	}
	return false;
}
