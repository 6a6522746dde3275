/*
 * master_engines.c - the master's side of the TLS engines: fork them, talk
 * to them over their channels without ever blocking (what an engine cannot
 * take now waits in its queue), and reap and restart them (at once, or
 * after a back-off when they keep dying young).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "master_internal.h"
#include "protocol.h"
#include "engine_tls.h"

unsigned engine_count(const struct mg_config *cfg)
{
	long cpus;

	if (cfg->engines > 0)
		return cfg->engines;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	return cpus < 1 ? 1 : cpus > 64 ? 64 : (unsigned)cpus;
}

static struct engine_proc *engine_slot(struct master *m)
{
	struct engine_proc *grown;

	for (size_t i = 0; i < m->n_engines; i++)
		if (m->engines[i].pid == 0)
			return &m->engines[i];
	grown = realloc(m->engines, (m->n_engines + 1) * sizeof(*grown));
	if (grown == NULL)
		return NULL;
	m->engines = grown;
	memset(&m->engines[m->n_engines], 0, sizeof(*grown));
	return &m->engines[m->n_engines++];
}

int spawn_engine(struct master *m, struct generation *g, unsigned index)
{
	struct engine_proc *e = engine_slot(m);
	sigset_t all, old;
	int sp[2];
	pid_t pid;

	if (e == NULL) {
		log_error("out of memory starting an engine");
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		log_error("engine socketpair: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	/* No handler of the master may run in the child before engine_main() resets them. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		struct engine_params params = {
			.cfg = g->cfg, .generation = g->number, .index = index,
			.first_start = !m->started,
			.master_fd = sp[1], .listen = g->listen, .n_listen = g->n_listen,
		};

		sigprocmask(SIG_SETMASK, &old, NULL);
		engine_main(&params);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(sp[1]);
	if (pid < 0) {
		log_error("engine fork: %s", strerror(errno));
		close(sp[0]);
		return -1;
	}
	fcntl(sp[0], F_SETFL, fcntl(sp[0], F_GETFL) | O_NONBLOCK);
	*e = (struct engine_proc){
		.pid = pid, .fd = sp[0], .group = ++m->next_group, .index = index, .gen = g,
		.state = ENGINE_STARTING, .started_ms = mg_now_ms(),
	};
	/* Its first message: a new channel always has room for it. */
	send_ticket_keys(m, e);
	g->alive++;
	log_debug("engine started pid=%ld generation=%u index=%u", (long)pid, g->number, index);
	return 0;
}

int spawn_generation(struct master *m, struct generation *g)
{
	for (unsigned i = 0; i < g->engines; i++)
		if (spawn_engine(m, g, i) < 0)
			return -1;
	return 0;
}

static void queue_to_engine(struct engine_proc *e, const struct chan_msg *msg)
{
	struct out_msg *grown;

	if (msg->len > OUT_MSG_MAX)
		return;
	if (e->n_out == e->cap_out) {
		size_t cap = e->cap_out == 0 ? 16 : e->cap_out * 2;

		grown = realloc(e->out, cap * sizeof(*grown));
		if (grown == NULL) {
			log_error("out of memory queueing for engine %ld", (long)e->pid);
			return;
		}
		e->out = grown;
		e->cap_out = cap;
	}
	e->out[e->n_out].len = msg->len;
	memcpy(e->out[e->n_out].data, msg->data, msg->len);
	e->n_out++;
}

/* Never blocks: what the engine cannot take now waits in its queue. */
void send_engine(struct engine_proc *e, const struct chan_msg *msg)
{
	if (e->n_out == 0 && chan_send(e->fd, msg, NULL, 0) == 0)
		return;
	if (errno != EAGAIN && errno != EWOULDBLOCK && e->n_out == 0) {
		log_debug("engine %ld channel: %s", (long)e->pid, strerror(errno));
		return;
	}
	queue_to_engine(e, msg);
}

void flush_engine(struct engine_proc *e)
{
	size_t done = 0;

	while (done < e->n_out) {
		struct chan_msg msg;

		msg.len = e->out[done].len;
		msg.overflow = false;
		memcpy(msg.data, e->out[done].data, msg.len);
		if (chan_send(e->fd, &msg, NULL, 0) < 0)
			break;
		done++;
	}
	if (done == 0)
		return;
	memmove(e->out, e->out + done, (e->n_out - done) * sizeof(*e->out));
	e->n_out -= done;
}

/*
 * Not through the engine's queue (its slots are small, and a copy of the
 * keys would wait there): a set that does not fit now is built and sent
 * again from the loop once the channel has room.
 */
void send_ticket_keys(struct master *m, struct engine_proc *e)
{
	struct chan_msg msg;

	if (e->pid == 0 || e->fd < 0)
		return;
	ticket_keys_message(m->tickets.set, &msg);
	if (chan_send(e->fd, &msg, NULL, 0) == 0)
		e->keys_due = false;
	else if (errno == EAGAIN || errno == EWOULDBLOCK)
		e->keys_due = true;
	else
		log_debug("engine %ld channel: %s", (long)e->pid, strerror(errno));
	explicit_bzero(msg.data, msg.len);
}

void broadcast_ticket_keys(struct master *m)
{
	for (size_t i = 0; i < m->n_engines; i++)
		send_ticket_keys(m, &m->engines[i]);
}

void rotate_ticket_keys(struct master *m)
{
	char err[256];

	if (tickets_rotate(&m->tickets, mg_now_ms(), err, sizeof(err)) < 0) {
		log_error("ticket keys not rotated: %s", err);
		return;
	}
	log_info("ticket keys rotated set=%u", (unsigned)m->tickets.set->serial);
	broadcast_ticket_keys(m);
}

void tell_engine(struct engine_proc *e, enum chan_type type, unsigned grace)
{
	struct chan_msg msg;

	chan_msg_init(&msg, type);
	if (type == CHAN_ENGINE_STOP)
		chan_put_u32(&msg, grace);
	send_engine(e, &msg);
}

void engine_gone(struct master *m, struct engine_proc *e)
{
	if (e->fd >= 0)
		close(e->fd);
	e->fd = -1;
	free(e->out);
	e->out = NULL;
	e->n_out = e->cap_out = 0;
}

void retire_generation(struct master *m, struct generation *g)
{
	for (size_t i = 0; i < m->n_engines; i++) {
		struct engine_proc *e = &m->engines[i];

		if (e->pid != 0 && e->gen == g && e->state != ENGINE_RETIRING &&
		    e->state != ENGINE_STOPPING) {
			e->state = ENGINE_RETIRING;
			tell_engine(e, CHAN_ENGINE_RETIRE, 0);
		}
	}
}

bool generation_ready(const struct master *m, const struct generation *g)
{
	unsigned ready = 0;

	for (size_t i = 0; i < m->n_engines; i++)
		if (m->engines[i].pid != 0 && m->engines[i].gen == g &&
		    m->engines[i].state == ENGINE_READY)
			ready++;
	return ready == g->engines;
}

/* Old engines still accepting (they have not confirmed RETIRE yet). */
bool old_engines_accepting(const struct master *m)
{
	for (size_t i = 0; i < m->n_engines; i++) {
		const struct engine_proc *e = &m->engines[i];

		if (e->pid != 0 && e->gen != m->current && e->state == ENGINE_RETIRING &&
		    e->fd >= 0 && !e->stopped_accepting)
			return true;
	}
	return false;
}

void kill_generation(struct master *m, struct generation *g)
{
	for (size_t i = 0; i < m->n_engines; i++)
		if (m->engines[i].pid != 0 && m->engines[i].gen == g) {
			m->engines[i].state = ENGINE_STOPPING;
			kill(m->engines[i].pid, SIGTERM);
		}
}

static void engine_message(struct master *m, struct engine_proc *e, const unsigned char *buf,
			   long n, int *fds, size_t nfds)
{
	struct chan_reader r;
	char reason[256];

	chan_reader_init(&r, buf + 1, (size_t)n - 1);
	switch ((enum chan_type)buf[0]) {
	case CHAN_SESSION_REQUEST:
		if (nfds == 1) {
			queue_request(m, e, &r, fds[0]);
			return;
		}
		break;
	case CHAN_SESSION_END: {
		uint64_t id = chan_get_u64(&r);

		if (chan_reader_done(&r) && nfds == 0) {
			connlimit_remove(&m->sessions, e->group, id);
			return;
		}
		break;
	}
	case CHAN_PENALTY_ASK:
		if (nfds == 0 && abuse_failed(m, e, &r) == 0)
			return;
		break;
	case CHAN_USERIP_ASK:
		if (nfds == 0 && abuse_userip(m, e, &r) == 0)
			return;
		break;
	case CHAN_LOGIN_SUCCEEDED:
		if (nfds == 0 && abuse_succeeded(m, e, &r) == 0)
			return;
		break;
	case CHAN_ENGINE_READY:
		if (e->state == ENGINE_STARTING)
			e->state = ENGINE_READY;
		if (m->pending != NULL && e->gen == m->pending && generation_ready(m, m->pending))
			reload_switch(m);
		return;
	case CHAN_ENGINE_RETIRED:
		/* Its listening sockets are closed: it takes no new connection. */
		e->stopped_accepting = true;
		return;
	case CHAN_ENGINE_FAILED:
		chan_get_str(&r, reason, sizeof(reason));
		if (m->pending != NULL && e->gen == m->pending)
			reload_failed(m, reason);
		return;
	default:
		break;
	}
	chan_close_fds(fds, nfds);
	log_error("engine %ld sent an unexpected message %u", (long)e->pid, buf[0]);
}

void read_engine(struct master *m, struct engine_proc *e)
{
	for (int i = 0; i < MSGS_PER_ROUND && e->fd >= 0; i++) {
		unsigned char buf[CHAN_MSG_MAX];
		int fds[CHAN_MAX_FDS];
		size_t nfds = 0;
		long n = chan_recv(e->fd, buf, fds, &nfds);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			/* It died, or retired and closed: reaping tells which. */
			engine_gone(m, e);
			return;
		}
		engine_message(m, e, buf, n, fds, nfds);
	}
}

void engine_reaped(struct master *m, struct engine_proc *e, int status)
{
	struct generation *g = e->gen;
	size_t lost = connlimit_remove_group(&m->sessions, e->group);
	bool expected = e->state == ENGINE_RETIRING || e->state == ENGINE_STOPPING || m->stopping;
	bool young = mg_now_ms() - e->started_ms < ENGINE_YOUNG_MS;
	unsigned index = e->index;

	engine_gone(m, e);
	e->pid = 0;
	g->alive--;
	if (!expected || (WIFEXITED(status) && WEXITSTATUS(status) != 0 && !m->stopping)) {
		if (WIFSIGNALED(status))
			log_error("engine %u of generation %u died of signal %d; %zu sessions lost",
				  index, g->number, WTERMSIG(status), lost);
		else
			log_error("engine %u of generation %u ended with status %d; %zu sessions "
				  "lost", index, g->number, WEXITSTATUS(status), lost);
	}
	if (g == m->pending && !expected) {
		reload_failed(m, "a new engine ended before it was ready");
	} else if (g == m->current && !m->stopping && !expected) {
		if (young) {
			m->restart_delay_ms = m->restart_delay_ms == 0 ? RESTART_DELAY_MIN_MS
				: m->restart_delay_ms * 2 > RESTART_DELAY_MAX_MS ? RESTART_DELAY_MAX_MS
				: m->restart_delay_ms * 2;
			m->restart_at = mg_now_ms() + m->restart_delay_ms;
			log_warning("engine %u keeps dying; restarting it in %u ms", index,
				    m->restart_delay_ms);
		} else {
			m->restart_delay_ms = 0;
			if (spawn_engine(m, g, index) == 0)
				log_info("engine %u of generation %u restarted", index, g->number);
		}
	}
	if (g->alive == 0 && g != m->current) {
		struct generation **p = &m->gens;

		while (*p != NULL && *p != g)
			p = &(*p)->next;
		if (*p == g)
			*p = g->next;
		generation_free(g);
	}
}

/* Restart engines of the current generation that a back-off delayed. */
void restart_missing_engines(struct master *m)
{
	struct generation *g = m->current;

	m->restart_at = 0;
	for (unsigned index = 0; index < g->engines; index++) {
		bool running = false;

		for (size_t i = 0; i < m->n_engines; i++)
			if (m->engines[i].pid != 0 && m->engines[i].gen == g &&
			    m->engines[i].index == index)
				running = true;
		if (!running && spawn_engine(m, g, index) == 0)
			log_info("engine %u of generation %u restarted", index, g->number);
	}
}
