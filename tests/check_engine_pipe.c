/*
 * check_engine_pipe.c - the engine's byte mover, between two plain socket
 * bufferevents. The test plays the client and the backend on the far ends of
 * two AF_UNIX stream socketpairs; the pipe joins the near ends; one
 * event_base runs everything (EVLOOP_ONCE), always under a deadline timer.
 * Nothing sleeps: tests wait for what they expect to see, and where they must
 * show that nothing (more) happens, the loop runs until a short quiet window
 * passes without a wakeup, which is also how a spin would show.
 *
 * What is shown: bytes arrive intact and in order both ways (every byte is
 * checked against a position-dependent pattern, so a lost, doubled or
 * reordered chunk shows), through tiny socket buffers too; a half-closed
 * client still gets its answer; a reset or close on one side while the other
 * is held up by back-pressure ends in an event, not a spin; a reader that
 * stops holds the pipe's memory to PIPE_HIGH and one read, and blocks its
 * writer; hold, pump, drain watching and take do what engine_conn.c relies on;
 * each end remembers the last bytes read from it, also as pipe_prepend_tail()
 * puts bytes before them.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "clock.h"
#include "engine_pipe.h"
#include "check_run.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define MIB (1024u * 1024u)

/* The far ends, and the pipe's ends that face them: a is the client, b the backend. */
enum { CLIENT, BACKEND };

static const char *const side_names[] = { "client", "backend" };

/* ---- a position-dependent pattern --------------------------------------------- */

static unsigned char pattern_byte(uint32_t seed, uint64_t off)
{
	uint64_t x = (off + 1) * 0x9e3779b97f4a7c15ull ^ seed;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	return (unsigned char)x;
}

static void pattern_fill(uint32_t seed, uint64_t off, unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pattern_byte(seed, off + i);
}

/* ---- the far ends: what the test plays ------------------------------------------ */

struct actor {
	int fd;
	struct event *rev, *wev;
	size_t read_chunk;		/* at most this much per wakeup (0: 64 KiB) */
	/* writes the pattern from out_sent up to out_total */
	uint32_t out_seed;
	uint64_t out_sent, out_total;
	bool shut_when_sent, shut;
	unsigned long would_block;	/* writes refused because the socket was full */
	int write_errno;
	/* reads, checking every byte against the other side's pattern */
	uint32_t in_seed;
	uint64_t received, mismatches, first_mismatch;
	bool eof;
	int read_errno;
};

static void actor_write(evutil_socket_t fd, short what, void *arg)
{
	static unsigned char buf[65536];
	struct actor *a = arg;

	while (a->out_sent < a->out_total) {
		uint64_t left = a->out_total - a->out_sent;
		size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);
		ssize_t w;

		pattern_fill(a->out_seed, a->out_sent, buf, n);
		w = send(fd, buf, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			a->would_block++;
			return;
		}
		if (w < 0) {
			a->write_errno = errno;
			event_del(a->wev);
			return;
		}
		a->out_sent += (uint64_t)w;
	}
	event_del(a->wev);
	if (a->shut_when_sent && !a->shut) {
		ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
		a->shut = true;
	}
}

static void actor_read(evutil_socket_t fd, short what, void *arg)
{
	static unsigned char buf[65536];
	struct actor *a = arg;
	size_t want = a->read_chunk != 0 && a->read_chunk < sizeof(buf) ? a->read_chunk : sizeof(buf);
	ssize_t r = read(fd, buf, want);

	if (r > 0) {
		for (ssize_t i = 0; i < r; i++) {
			if (buf[i] != pattern_byte(a->in_seed, a->received + (uint64_t)i) &&
			    a->mismatches++ == 0)
				a->first_mismatch = a->received + (uint64_t)i;
		}
		a->received += (uint64_t)r;
		return;
	}
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r == 0)
		a->eof = true;
	else
		a->read_errno = errno;
	event_del(a->rev);
}

/* ---- the fixture ------------------------------------------------------------------- */

/* What passed through one near end's output: its high-water mark and its writes. */
struct out_watch {
	struct bufferevent *bev;
	size_t peak;
	unsigned long writes, partial_writes;
};

struct logged {
	int side;
	enum pipe_event event;
	size_t pending;		/* pipe_pending() of that end when it was reported */
	uint64_t bytes_in;	/* ... and its bytes_in */
};

static struct {
	struct event_base *base;
	struct actor actor[2];
	struct bufferevent *bev[2];	/* the near ends; NULL once the owner freed one */
	int near[2];
	struct out_watch out[2];
	struct engine_pipe pipe;
	long long activity;
	struct logged log[64];
	int nlog;
	unsigned count[2][PIPE_DRAINED + 1];
	bool detached[2];		/* taken from the pipe: no event may name it */
	void (*hook)(int side, enum pipe_event event);
} fx;

static struct pipe_end *end_of(int side)
{
	return side == CLIENT ? &fx.pipe.a : &fx.pipe.b;
}

static short reading(int side)
{
	return bufferevent_get_enabled(fx.bev[side]) & EV_READ;
}

static size_t input_len(int side)
{
	return evbuffer_get_length(bufferevent_get_input(fx.bev[side]));
}

static size_t kernel_unread(int side)
{
	int n = -1;

	ck_assert_int_eq(ioctl(fx.near[side], FIONREAD, &n), 0);
	return (size_t)n;
}

/* Bytes the pipe passed to the side that its actor has not read yet (written through). */
static size_t delivered_unread(int side)
{
	int n = -1;

	ck_assert_int_eq(ioctl(fx.actor[side].fd, FIONREAD, &n), 0);
	return (size_t)n;
}

/*
 * The most an end's output may hold while its source is read: the pipe stops
 * reading once PIPE_HIGH bytes wait, and decides after every read; a
 * bufferevent reads at most its max single read per wakeup (16384 by
 * default; libevent 2.1's evbuffer_read() also caps one read at 4096).
 */
static size_t output_bound(int side)
{
	ev_ssize_t chunk = bufferevent_get_max_single_read(fx.bev[1 - side]);

	ck_assert_int_gt(chunk, 0);
	return PIPE_HIGH + (size_t)chunk;
}

static void out_changed(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct out_watch *w = arg;
	size_t high = info->orig_size + info->n_added;

	if (high > w->peak)
		w->peak = high;
	if (info->n_deleted > 0) {
		size_t offered = (size_t)bufferevent_get_max_single_write(w->bev);

		if (info->orig_size < offered)
			offered = info->orig_size;
		w->writes++;
		if (info->n_deleted < offered)
			w->partial_writes++;	/* the kernel took less than it was offered */
	}
}

static void owner_event(struct engine_pipe *pipe, struct pipe_end *end, enum pipe_event event,
			void *arg)
{
	int side;

	ck_assert_ptr_eq(arg, &fx);
	ck_assert_ptr_eq(pipe, &fx.pipe);
	ck_assert(end == &pipe->a || end == &pipe->b);
	ck_assert_int_le((int)event, (int)PIPE_DRAINED);
	side = end == &pipe->a ? CLIENT : BACKEND;
	ck_assert_msg(!fx.detached[side], "event %d for the %s end after it was taken", (int)event,
		      side_names[side]);
	ck_assert_int_lt(fx.nlog, N(fx.log));
	fx.log[fx.nlog++] = (struct logged){ side, event, pipe_pending(end), end->bytes_in };
	fx.count[side][event]++;
	if (fx.hook != NULL)
		fx.hook(side, event);
}

/* The last report of event for side. */
static const struct logged *last_logged(int side, enum pipe_event event)
{
	for (int i = fx.nlog - 1; i >= 0; i--) {
		if (fx.log[i].side == side && fx.log[i].event == event)
			return &fx.log[i];
	}
	ck_abort_msg("no event %d for the %s end", (int)event, side_names[side]);
	return NULL;
}

static unsigned events_for(int side)
{
	unsigned n = 0;

	for (int e = 0; e <= PIPE_DRAINED; e++)
		n += fx.count[side][e];
	return n;
}

static void setup(void)
{
	memset(&fx, 0, sizeof(fx));
	/* As the engine does: libevent writes with writev(), which can raise SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	fx.base = event_base_new();
	ck_assert_ptr_nonnull(fx.base);
	for (int side = 0; side < 2; side++) {
		struct actor *a = &fx.actor[side];
		int sv[2];

		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
					    sv), 0);
		a->fd = sv[0];
		fx.near[side] = sv[1];
		a->out_seed = side == CLIENT ? 0xc11e47u : 0xbac4e4du;
		a->in_seed = side == CLIENT ? 0xbac4e4du : 0xc11e47u;
		a->rev = event_new(fx.base, a->fd, EV_READ | EV_PERSIST, actor_read, a);
		a->wev = event_new(fx.base, a->fd, EV_WRITE | EV_PERSIST, actor_write, a);
		ck_assert(a->rev != NULL && a->wev != NULL);
		/* Both sides read unless a test says otherwise. */
		ck_assert_int_eq(event_add(a->rev, NULL), 0);

		fx.bev[side] = bufferevent_socket_new(fx.base, sv[1], BEV_OPT_CLOSE_ON_FREE);
		ck_assert_ptr_nonnull(fx.bev[side]);
		fx.out[side].bev = fx.bev[side];
		ck_assert_ptr_nonnull(evbuffer_add_cb(bufferevent_get_output(fx.bev[side]),
						      out_changed, &fx.out[side]));
	}
}

static void teardown(void)
{
	for (int side = 0; side < 2; side++) {
		struct actor *a = &fx.actor[side];

		if (fx.bev[side] != NULL)
			bufferevent_free(fx.bev[side]);
		if (a->rev != NULL)
			event_free(a->rev);
		if (a->wev != NULL)
			event_free(a->wev);
		if (a->fd >= 0)
			close(a->fd);
	}
	event_base_free(fx.base);
}

static void start_pipe(void)
{
	pipe_init(&fx.pipe, fx.bev[CLIENT], fx.bev[BACKEND], owner_event, &fx, &fx.activity);
}

/* The side writes the pattern up to total bytes in all (then half-closes if shut). */
static void actor_send(int side, uint64_t total, bool shut)
{
	struct actor *a = &fx.actor[side];

	a->out_total = total;
	a->shut_when_sent = shut;
	ck_assert_int_eq(event_add(a->wev, NULL), 0);
}

static void actor_reading(int side, bool on)
{
	struct actor *a = &fx.actor[side];

	ck_assert_int_eq(on ? event_add(a->rev, NULL) : event_del(a->rev), 0);
}

/* The side goes away: close() (unread bytes make it a reset) or shutdown(SHUT_RDWR). */
static void actor_close(int side)
{
	struct actor *a = &fx.actor[side];

	event_free(a->rev);
	event_free(a->wev);
	a->rev = a->wev = NULL;
	ck_assert_int_eq(close(a->fd), 0);
	a->fd = -1;
}

static void assert_intact(int side, uint64_t total)
{
	const struct actor *a = &fx.actor[side];

	ck_assert_msg(a->mismatches == 0, "the %s got %llu wrong bytes, the first at %llu",
		      side_names[side], (unsigned long long)a->mismatches,
		      (unsigned long long)a->first_mismatch);
	ck_assert_msg(a->received == total, "the %s got %llu bytes, not %llu", side_names[side],
		      (unsigned long long)a->received, (unsigned long long)total);
}

/* The end facing side remembers the last bytes that side sent (total in all). */
static void assert_tail(int side, uint64_t total)
{
	const struct pipe_end *end = side == CLIENT ? &fx.pipe.a : &fx.pipe.b;
	size_t want = total < PIPE_TAIL ? (size_t)total : PIPE_TAIL;
	unsigned char expect[PIPE_TAIL];

	pattern_fill(fx.actor[side].out_seed, total - want, expect, want);
	ck_assert_uint_eq(end->tail_len, want);
	ck_assert_msg(memcmp(end->tail, expect, want) == 0, "the %s's tail is not its last %zu bytes",
		      side_names[side], want);
}

/* What engine_conn does to end a connection: take both ends and free them. */
static void owner_frees_both(void)
{
	for (int side = 0; side < 2; side++) {
		struct bufferevent *bev;

		if (fx.bev[side] == NULL)
			continue;
		bev = pipe_take(end_of(side));
		ck_assert_ptr_eq(bev, fx.bev[side]);
		fx.detached[side] = true;
		bufferevent_free(bev);
		fx.bev[side] = NULL;
	}
}

/* ---- driving the loop, always under a deadline -------------------------------------- */

static void timer_fired(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

struct loop_run {
	struct event *deadline;
	bool expired;
	unsigned long iterations;
};

static void run_begin(struct loop_run *run, long ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	run->expired = false;
	run->iterations = 0;
	run->deadline = evtimer_new(fx.base, timer_fired, &run->expired);
	ck_assert_ptr_nonnull(run->deadline);
	ck_assert_int_eq(evtimer_add(run->deadline, &tv), 0);
}

/* One pass of the loop (it waits for something to happen, at worst the deadline). */
static bool run_step(struct loop_run *run)
{
	if (run->expired)
		return false;
	ck_assert_int_ne(event_base_loop(fx.base, EVLOOP_ONCE), -1);
	run->iterations++;
	return true;
}

static unsigned long run_end(struct loop_run *run)
{
	event_free(run->deadline);
	return run->iterations;
}

static unsigned long last_iterations;

/* Drive the loop until cond holds; fail after ms. Leaves the passes in last_iterations. */
#define RUN_UNTIL(cond, ms)                                                                  \
	do {                                                                                 \
		struct loop_run run_;                                                        \
		run_begin(&run_, (ms));                                                      \
		while (!(cond) && run_step(&run_))                                           \
			;                                                                    \
		last_iterations = run_end(&run_);                                            \
		ck_assert_msg((cond), "not within %d ms: %s", (int)(ms), #cond);             \
	} while (0)

#define QUIET_MS 40

/*
 * Drive the loop until it has had nothing to do for QUIET_MS (woken by
 * nothing but a quiet timer that every other wakeup re-arms): whatever was
 * still moving has stopped. Fails when it is still busy after ms, which is
 * what a spinning loop looks like. Returns the passes it took.
 */
static unsigned long run_until_idle(long ms)
{
	struct timeval quiet_tv = { .tv_sec = 0, .tv_usec = QUIET_MS * 1000 };
	struct loop_run run;
	bool quiet = false;
	struct event *quiet_timer = evtimer_new(fx.base, timer_fired, &quiet);
	unsigned long n;

	ck_assert_ptr_nonnull(quiet_timer);
	run_begin(&run, ms);
	ck_assert_int_eq(evtimer_add(quiet_timer, &quiet_tv), 0);
	while (!quiet && run_step(&run)) {
		if (!quiet)
			ck_assert_int_eq(evtimer_add(quiet_timer, &quiet_tv), 0);
	}
	event_free(quiet_timer);
	n = run_end(&run);
	ck_assert_msg(quiet, "the loop was still busy after %ld ms (%lu passes)", ms, n);
	return n;
}

/* ---- (a) both ways, intact ------------------------------------------------------------ */

struct flow_case {
	uint64_t up;		/* client -> backend */
	uint64_t down;		/* backend -> client */
};

static const struct flow_case flow_cases[] = {
	{ 1, 1 },
	{ 100000, 7 },
	{ 0, 300000 },
	{ MIB, MIB },
	{ 3 * MIB, MIB / 2 },
};

START_TEST(bytes_flow_both_ways_intact)
{
	const struct flow_case *c = &flow_cases[_i];
	long long t0 = mg_now_ms();

	start_pipe();
	actor_send(CLIENT, c->up, false);
	actor_send(BACKEND, c->down, false);
	RUN_UNTIL(fx.actor[BACKEND].received == c->up && fx.actor[CLIENT].received == c->down,
		  20000);
	/* Nothing more arrives: no chunk is sent twice. */
	run_until_idle(5000);
	assert_intact(BACKEND, c->up);
	assert_intact(CLIENT, c->down);
	assert_tail(CLIENT, c->up);
	assert_tail(BACKEND, c->down);
	ck_assert_uint_eq(fx.pipe.a.bytes_in, c->up);
	ck_assert_uint_eq(fx.pipe.b.bytes_in, c->down);
	ck_assert_uint_eq(pipe_pending(&fx.pipe.a), 0);
	ck_assert_uint_eq(pipe_pending(&fx.pipe.b), 0);
	ck_assert_int_eq(fx.nlog, 0);
	for (int side = 0; side < 2; side++)
		ck_assert_uint_le(fx.out[side].peak, output_bound(side));
	/* Reads stamp the owner's activity clock. */
	ck_assert(fx.activity >= t0 && fx.activity <= mg_now_ms());
}
END_TEST

/* ---- (b) a half-closed client still gets its answer ------------------------------------- */

struct half_close_case {
	uint64_t request;	/* the client sends this, then shutdown(SHUT_WR) */
	uint64_t answer_early;	/* the backend sends this meanwhile */
	uint64_t answer_late;	/* ... and this once the client's EOF was reported */
};

static const struct half_close_case half_close_cases[] = {
	{ 0, 0, 1 },
	{ 11, 0, 300000 },
	{ 100000, 50000, 300000 },
	{ 2 * MIB, 0, 2 * MIB },
};

/* As relay_event(): once the backend is done, watch the client's output drain. */
static void relay_like(int side, enum pipe_event event)
{
	if (side == BACKEND && event == PIPE_EOF)
		pipe_watch_drain(&fx.pipe.a);
}

START_TEST(half_closed_client_still_answered)
{
	const struct half_close_case *c = &half_close_cases[_i];
	const uint64_t answer = c->answer_early + c->answer_late;
	const struct logged *eof, *drained;

	fx.hook = relay_like;
	start_pipe();
	actor_send(CLIENT, c->request, true);
	actor_send(BACKEND, c->answer_early, false);
	RUN_UNTIL(fx.count[CLIENT][PIPE_EOF] == 1, 20000);
	/* Reported once everything the client sent had been passed on. */
	eof = last_logged(CLIENT, PIPE_EOF);
	ck_assert_uint_eq(eof->bytes_in, c->request);
	RUN_UNTIL(fx.actor[BACKEND].received == c->request &&
		  fx.actor[CLIENT].received == c->answer_early, 20000);
	/* The half-close is the owner's to pass on (relay_event shuts the backend once drained). */
	ck_assert(!fx.actor[BACKEND].eof);

	actor_send(BACKEND, answer, true);
	RUN_UNTIL(fx.actor[CLIENT].received == answer && fx.count[CLIENT][PIPE_DRAINED] == 1, 20000);
	assert_intact(BACKEND, c->request);
	assert_intact(CLIENT, answer);
	ck_assert(!fx.actor[CLIENT].eof);	/* the owner closes, not the pipe */
	ck_assert_uint_eq(fx.count[BACKEND][PIPE_EOF], 1);
	drained = last_logged(CLIENT, PIPE_DRAINED);
	ck_assert_uint_eq(drained->pending, 0);
	ck_assert_uint_eq(fx.pipe.b.bytes_in, answer);
	/* Both ends at EOF and nothing queued: the loop goes quiet, nothing is reported twice. */
	ck_assert_uint_le(run_until_idle(5000), 3);
	ck_assert_uint_eq(fx.count[CLIENT][PIPE_EOF], 1);
	ck_assert_uint_eq(fx.count[CLIENT][PIPE_DRAINED], 1);
	ck_assert_int_eq(fx.nlog, 3);	/* client EOF, backend EOF, client drained */
	for (int side = 0; side < 2; side++)
		ck_assert_uint_le(fx.out[side].peak, output_bound(side));
}
END_TEST

/* ---- (c) a reset while the other side is held up ------------------------------------------ */

/*
 * How the side goes, and what its end must report: close() with bytes unread
 * is a reset (the read fails with ECONNRESET: PIPE_ERROR); shutdown(SHUT_RDWR)
 * is an EOF. Either way the pipe's queued bytes can no longer be written
 * (EPIPE: PIPE_WRITE_FAILED). The order of the two is libevent's business.
 */
enum how_gone { GONE_CLOSE, GONE_SHUTDOWN };

struct reset_case {
	int gone;		/* the side that goes away; it never read */
	enum how_gone how;
	bool owner_ends;	/* the owner frees both ends on the first bad news */
};

static const struct reset_case reset_cases[] = {
	{ BACKEND, GONE_CLOSE, false },
	{ BACKEND, GONE_CLOSE, true },
	{ BACKEND, GONE_SHUTDOWN, false },
	{ BACKEND, GONE_SHUTDOWN, true },
	{ CLIENT, GONE_CLOSE, false },
	{ CLIENT, GONE_CLOSE, true },
	{ CLIENT, GONE_SHUTDOWN, false },
	{ CLIENT, GONE_SHUTDOWN, true },
};

static void end_on_bad_news(int side, enum pipe_event event)
{
	if (event == PIPE_EOF || event == PIPE_ERROR || event == PIPE_WRITE_FAILED)
		owner_frees_both();
}

static unsigned bad_news(int side)
{
	return fx.count[side][PIPE_EOF] + fx.count[side][PIPE_ERROR] +
	       fx.count[side][PIPE_WRITE_FAILED];
}

START_TEST(reset_while_other_side_blocked)
{
	const struct reset_case *c = &reset_cases[_i];
	const int gone = c->gone, other = 1 - gone;
	const uint64_t total = 8 * MIB;
	const enum pipe_event read_news = c->how == GONE_CLOSE ? PIPE_ERROR : PIPE_EOF;
	const enum pipe_event not_news = c->how == GONE_CLOSE ? PIPE_EOF : PIPE_ERROR;

	if (c->owner_ends)
		fx.hook = end_on_bad_news;
	start_pipe();
	actor_reading(gone, false);
	actor_send(other, total, false);
	/* The other side is held up by back-pressure: the pipe no longer reads it. */
	RUN_UNTIL(fx.actor[other].would_block > 0 && pipe_pending(end_of(gone)) >= PIPE_HIGH &&
		  !reading(other), 20000);

	if (c->how == GONE_CLOSE)
		actor_close(gone);
	else
		ck_assert_int_eq(shutdown(fx.actor[gone].fd, SHUT_RDWR), 0);
	RUN_UNTIL(bad_news(gone) >= 1, 10000);
	/* A handful of wakeups, not a busy loop. */
	ck_assert_uint_le(last_iterations, 20);
	/* Whatever else happens ends in quiet; draining what is left is the most work allowed. */
	ck_assert_uint_le(run_until_idle(15000), 50000);

	ck_assert_msg(fx.count[gone][not_news] == 0, "event %d reported", (int)not_news);
	if (c->owner_ends) {
		/* Exactly one, either: nothing after the owner let go. */
		ck_assert_uint_eq(bad_news(gone), 1);
	} else {
		ck_assert_uint_eq(fx.count[gone][read_news], 1);
		ck_assert_uint_eq(fx.count[gone][PIPE_WRITE_FAILED], 1);
		ck_assert(end_of(gone)->eof && end_of(gone)->write_failed);
	}
	ck_assert_uint_eq(fx.count[gone][PIPE_CONNECTED], 0);
	ck_assert_uint_eq(fx.count[gone][PIPE_DRAINED], 0);
	/* Nothing is wrong with the side that stayed. */
	ck_assert_uint_eq(events_for(other), 0);

	if (c->owner_ends) {
		ck_assert(fx.bev[CLIENT] == NULL && fx.bev[BACKEND] == NULL);
		/* The side that stayed learns of the end. */
		RUN_UNTIL(fx.actor[other].eof || fx.actor[other].read_errno != 0 ||
			  fx.actor[other].write_errno != 0, 10000);
	}
	ck_assert_uint_eq(fx.actor[other].mismatches, 0);
}
END_TEST

/* ---- (d) partial writes through tiny socket buffers --------------------------------------- */

START_TEST(tiny_socket_buffers_partial_writes)
{
	const uint64_t up = 400000, down = 600000;
	int tiny = 1, got;
	socklen_t len = sizeof(got);

	for (int side = 0; side < 2; side++) {
		const int fds[2] = { fx.actor[side].fd, fx.near[side] };

		for (int i = 0; i < 2; i++) {
			ck_assert_int_eq(setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &tiny,
						    sizeof(tiny)), 0);
			ck_assert_int_eq(setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &tiny,
						    sizeof(tiny)), 0);
		}
		ck_assert_int_eq(getsockopt(fx.near[side], SOL_SOCKET, SO_SNDBUF, &got, &len), 0);
		ck_assert_int_le(got, 8192);	/* the kernel's minimum, far below a 16 KiB write */
		/* Slow, small reads, so the pipe's outputs back up. */
		fx.actor[side].read_chunk = 1000;
	}
	start_pipe();
	actor_send(CLIENT, up, true);
	actor_send(BACKEND, down, true);
	RUN_UNTIL(fx.actor[BACKEND].received == up && fx.actor[CLIENT].received == down, 30000);
	assert_intact(BACKEND, up);
	assert_intact(CLIENT, down);
	for (int side = 0; side < 2; side++) {
		/* The point of the test: the kernel took less than it was offered. */
		ck_assert_msg(fx.out[side].partial_writes > 0, "no partial write to the %s (%lu writes)",
			      side_names[side], fx.out[side].writes);
		ck_assert_uint_le(fx.out[side].peak, output_bound(side));
	}
	RUN_UNTIL(fx.count[CLIENT][PIPE_EOF] == 1 && fx.count[BACKEND][PIPE_EOF] == 1, 10000);
	ck_assert_uint_eq(fx.pipe.a.bytes_in, up);
	ck_assert_uint_eq(fx.pipe.b.bytes_in, down);
}
END_TEST

/* ---- (e) a reader that stops holds memory down and blocks its writer ----------------------- */

START_TEST(slow_reader_bounded)
{
	const int slow = _i, writer = 1 - _i;
	const uint64_t total = 8 * MIB;
	uint64_t sent_when_blocked;

	start_pipe();
	actor_reading(slow, false);
	actor_send(writer, total, false);
	RUN_UNTIL(fx.actor[writer].would_block > 0 && !reading(writer), 20000);
	/* Let whatever still moves settle (a spin would never settle). */
	ck_assert_uint_le(run_until_idle(10000), 50);

	/* Stopped for good: the writer's socket is full and the pipe reads no more of it. */
	sent_when_blocked = fx.actor[writer].out_sent;
	ck_assert_uint_lt(sent_when_blocked, total);
	ck_assert(!reading(writer));
	ck_assert_uint_gt(kernel_unread(writer), 0);
	ck_assert_uint_eq(input_len(writer), 0);	/* nothing parked in the pipe's input */
	/* It stopped because PIPE_HIGH bytes wait, and no more than one read beyond that. */
	ck_assert_uint_ge(pipe_pending(end_of(slow)), PIPE_HIGH);
	ck_assert_uint_le(pipe_pending(end_of(slow)), output_bound(slow));
	ck_assert_uint_le(fx.out[slow].peak, output_bound(slow));
	ck_assert_uint_eq(fx.actor[slow].received, 0);

	actor_reading(slow, true);
	RUN_UNTIL(fx.actor[slow].received == total, 30000);
	assert_intact(slow, total);
	ck_assert_uint_eq(fx.actor[writer].out_sent, total);
	ck_assert_uint_eq(end_of(writer)->bytes_in, total);
	/* The bound held all the way through, not only while blocked. */
	ck_assert_uint_le(fx.out[slow].peak, output_bound(slow));
	ck_assert_int_eq(fx.nlog, 0);
}
END_TEST

/* ---- (f) hold and pump ---------------------------------------------------------------------- */

START_TEST(hold_stops_reading_unhold_passes_buffered)
{
	const int held = _i, other = 1 - _i;
	const uint64_t buffered = 3000, unread = 5000, marker = 4000;
	unsigned char early[3000];
	const struct logged *eof;

	start_pipe();
	pipe_hold(end_of(held), true);
	ck_assert(!reading(held));
	/* Bytes the end had read but not passed on (as a TLS layer leaves them). */
	pattern_fill(fx.actor[held].out_seed, 0, early, sizeof(early));
	ck_assert_int_eq(evbuffer_prepend(bufferevent_get_input(fx.bev[held]), early, sizeof(early)),
			 0);
	/* The held side sends more and half-closes; the kernel keeps all of it. */
	fx.actor[held].out_sent = buffered;
	actor_send(held, buffered + unread, true);
	/* The other direction is not held: its bytes arrive while the held end waits. */
	actor_send(other, marker, false);
	RUN_UNTIL(fx.actor[held].received == marker && fx.actor[held].shut, 10000);
	run_until_idle(5000);

	ck_assert_uint_eq(fx.actor[other].received, 0);
	ck_assert_uint_eq(end_of(held)->bytes_in, 0);
	ck_assert_uint_eq(pipe_pending(end_of(other)), 0);
	ck_assert_uint_eq(input_len(held), buffered);
	ck_assert_uint_eq(kernel_unread(held), unread);
	ck_assert_uint_eq(fx.count[held][PIPE_EOF], 0);	/* not read, so not seen */
	/* Pumping a held end moves nothing. */
	pipe_pump(end_of(held));
	ck_assert_uint_eq(end_of(held)->bytes_in, 0);
	ck_assert_uint_eq(input_len(held), buffered);

	/* Unholding passes on what was buffered at once, and reading resumes. */
	pipe_hold(end_of(held), false);
	ck_assert_uint_eq(end_of(held)->bytes_in, buffered);
	ck_assert_uint_eq(input_len(held), 0);
	/* Passed on: written through to the idle socket, or queued behind it. */
	ck_assert_uint_eq(pipe_pending(end_of(other)) + delivered_unread(other), buffered);
	ck_assert(reading(held));
	pipe_pump(end_of(held));	/* again: nothing left, nothing doubled */
	ck_assert_uint_eq(end_of(held)->bytes_in, buffered);

	RUN_UNTIL(fx.actor[other].received == buffered + unread && fx.count[held][PIPE_EOF] == 1,
		  10000);
	assert_intact(other, buffered + unread);
	assert_intact(held, marker);
	eof = last_logged(held, PIPE_EOF);
	ck_assert_uint_eq(eof->bytes_in, buffered + unread);
	ck_assert_int_eq(fx.nlog, 1);
}
END_TEST

/* ---- (g) drain watching -------------------------------------------------------------------- */

START_TEST(watch_drain_once)
{
	const int watched = _i, writer = 1 - _i;
	const uint64_t first = 100000, second = MIB, third = 100000;
	const struct logged *drained;

	start_pipe();
	/* Already empty: reported at once, and nothing stays armed. */
	pipe_watch_drain(end_of(watched));
	ck_assert_uint_eq(fx.count[watched][PIPE_DRAINED], 1);
	ck_assert_int_eq(fx.nlog, 1);
	ck_assert(!end_of(watched)->watch_drain);
	actor_send(writer, first, false);
	RUN_UNTIL(fx.actor[watched].received == first, 10000);
	ck_assert_uint_eq(fx.count[watched][PIPE_DRAINED], 1);

	/* With bytes queued that nobody reads: not before they are written. */
	actor_reading(watched, false);
	actor_send(writer, first + second, false);
	RUN_UNTIL(fx.actor[writer].would_block > 0 && !reading(writer), 20000);
	ck_assert_uint_gt(pipe_pending(end_of(watched)), 0);
	pipe_watch_drain(end_of(watched));
	ck_assert_uint_eq(fx.count[watched][PIPE_DRAINED], 1);
	run_until_idle(5000);
	ck_assert_uint_eq(fx.count[watched][PIPE_DRAINED], 1);

	/* The reader comes back: reported exactly once, when the output is empty. */
	actor_reading(watched, true);
	RUN_UNTIL(fx.actor[watched].received == first + second, 20000);
	ck_assert_uint_eq(fx.count[watched][PIPE_DRAINED], 2);
	drained = last_logged(watched, PIPE_DRAINED);
	ck_assert_uint_eq(drained->pending, 0);

	/* More traffic, more times empty: no more reports. */
	actor_send(writer, first + second + third, false);
	RUN_UNTIL(fx.actor[watched].received == first + second + third, 10000);
	run_until_idle(5000);
	assert_intact(watched, first + second + third);
	ck_assert_uint_eq(fx.count[watched][PIPE_DRAINED], 2);
	ck_assert_uint_eq(events_for(writer), 0);
	ck_assert_int_eq(fx.nlog, 2);
}
END_TEST

/* ---- (h) take ----------------------------------------------------------------------------- */

/* Sentinels: bufferevent_getcb() must overwrite them with NULL. */
static void not_cleared_data(struct bufferevent *bev, void *arg)
{
}

static void not_cleared_event(struct bufferevent *bev, short what, void *arg)
{
}

START_TEST(take_detaches_an_end)
{
	const int taken = _i, other = 1 - _i;
	const uint64_t towards = MIB, from = 5000;
	bufferevent_data_cb rcb = not_cleared_data, wcb = not_cleared_data;
	bufferevent_event_cb ecb = not_cleared_event;
	void *cbarg = &fx;
	struct bufferevent *bev;

	start_pipe();
	/* Taken while both are read: the other end stops at once (its bytes would have nowhere to go). */
	ck_assert(reading(other) && reading(taken));
	bev = pipe_take(end_of(taken));
	ck_assert_ptr_eq(bev, fx.bev[taken]);
	ck_assert(!reading(other));
	/* Put back as taken (reading and writing off): the pipe turns both on again. */
	pipe_set(&fx.pipe, end_of(taken), bev);
	ck_assert_int_eq(bufferevent_get_enabled(bev), EV_READ | EV_WRITE);
	ck_assert(reading(other));

	actor_reading(taken, false);
	actor_send(other, towards, false);
	RUN_UNTIL(pipe_pending(end_of(taken)) >= PIPE_HIGH && !reading(other), 20000);
	/* Armed, but the end goes before it drains. */
	pipe_watch_drain(end_of(taken));

	bev = pipe_take(end_of(taken));
	fx.detached[taken] = true;
	ck_assert_ptr_eq(bev, fx.bev[taken]);
	ck_assert_ptr_null(end_of(taken)->bev);
	ck_assert_uint_eq(pipe_pending(end_of(taken)), 0);
	bufferevent_getcb(bev, &rcb, &wcb, &ecb, &cbarg);
	ck_assert(rcb == NULL && wcb == NULL && ecb == NULL && cbarg == NULL);
	ck_assert_int_eq(bufferevent_get_enabled(bev), 0);
	ck_assert_ptr_null(pipe_take(end_of(taken)));	/* nothing left to take */
	/* Bytes from the other side have nowhere to go: it is not read. */
	ck_assert(!reading(other));

	/* The owner uses the bufferevent on its own: nothing of it reaches the pipe's owner. */
	ck_assert_int_eq(bufferevent_enable(bev, EV_READ | EV_WRITE), 0);
	actor_reading(taken, true);
	actor_send(taken, from, true);
	RUN_UNTIL(evbuffer_get_length(bufferevent_get_output(bev)) == 0 && input_len(taken) == from,
		  10000);
	run_until_idle(5000);	/* its EOF is read too, by nobody's callback */
	ck_assert_int_eq(fx.nlog, 0);
	ck_assert_uint_eq(end_of(taken)->bytes_in, 0);
	ck_assert_uint_eq(fx.actor[other].received, 0);
	ck_assert_uint_gt(kernel_unread(other), 0);
	ck_assert(!reading(other));

	/* Put back as engine_conn does (set, then pump): everything flows, in order. */
	fx.detached[taken] = false;
	pipe_set(&fx.pipe, end_of(taken), bev);
	pipe_pump(end_of(taken));
	ck_assert_uint_eq(end_of(taken)->bytes_in, from);
	RUN_UNTIL(fx.actor[other].received == from && fx.actor[taken].received == towards &&
		  fx.count[taken][PIPE_EOF] == 1, 20000);
	assert_intact(other, from);
	assert_intact(taken, towards);
	ck_assert_int_eq(fx.nlog, 1);
}
END_TEST

/* ---- set-up details engine_conn relies on -------------------------------------------------- */

/* Bytes already read into an end's input when the pipe starts are moved at once. */
START_TEST(input_present_at_init_moved)
{
	const uint64_t early = 50000, later = 200000;

	ck_assert_int_eq(bufferevent_enable(fx.bev[CLIENT], EV_READ), 0);
	actor_send(CLIENT, early, false);
	RUN_UNTIL(input_len(CLIENT) == early, 10000);
	start_pipe();
	ck_assert_uint_eq(fx.pipe.a.bytes_in, early);
	ck_assert_uint_eq(input_len(CLIENT), 0);
	/* The idle backend socket takes what it can at once; the rest is queued. */
	ck_assert_uint_eq(pipe_pending(&fx.pipe.b) + delivered_unread(BACKEND), early);
	/* More than PIPE_HIGH queued: the client waits until it drains. */
	ck_assert(!reading(CLIENT) == (pipe_pending(&fx.pipe.b) >= PIPE_HIGH));
	actor_send(CLIENT, early + later, false);
	RUN_UNTIL(fx.actor[BACKEND].received == early + later, 10000);
	assert_intact(BACKEND, early + later);
	ck_assert_int_eq(fx.nlog, 0);
}
END_TEST

/* Bytes the owner passed on before the pipe come first in the tail. */
START_TEST(tail_prepended)
{
	unsigned char all[PIPE_TAIL + 8];

	start_pipe();
	actor_send(CLIENT, 5, false);
	RUN_UNTIL(fx.actor[BACKEND].received == 5, 10000);
	pipe_prepend_tail(&fx.pipe.a, (const unsigned char *)"0123456789abcdefXY", 18);
	/* Room for 11 of them, the last 11, before the 5 read. */
	memcpy(all, "789abcdefXY", 11);
	pattern_fill(fx.actor[CLIENT].out_seed, 0, all + 11, 5);
	ck_assert_uint_eq(fx.pipe.a.tail_len, PIPE_TAIL);
	ck_assert(memcmp(fx.pipe.a.tail, all, PIPE_TAIL) == 0);
	/* A full tail takes nothing more before it. */
	pipe_prepend_tail(&fx.pipe.a, (const unsigned char *)"zz", 2);
	ck_assert(memcmp(fx.pipe.a.tail, all, PIPE_TAIL) == 0);
}
END_TEST

/* An end with no peer yet is not read; attaching the peer starts it. */
START_TEST(late_peer_starts_reading)
{
	const uint64_t n = 1000;

	pipe_init(&fx.pipe, fx.bev[CLIENT], NULL, owner_event, &fx, NULL);
	ck_assert(!reading(CLIENT));
	actor_send(CLIENT, n, false);
	RUN_UNTIL(fx.actor[CLIENT].out_sent == n, 10000);
	run_until_idle(5000);
	ck_assert_uint_eq(kernel_unread(CLIENT), n);
	ck_assert_uint_eq(fx.pipe.a.bytes_in, 0);
	pipe_set(&fx.pipe, &fx.pipe.b, fx.bev[BACKEND]);
	ck_assert(reading(CLIENT));
	ck_assert(reading(BACKEND));
	RUN_UNTIL(fx.actor[BACKEND].received == n, 10000);
	assert_intact(BACKEND, n);
	ck_assert_int_eq(fx.nlog, 0);
}
END_TEST

/*
 * Towards an idle cleartext socket a pump writes at once (no round through
 * epoll): nothing waits in the output. With output already queued the bytes
 * go behind it, so order holds.
 */
START_TEST(idle_socket_written_through_busy_one_queued)
{
	unsigned char chunk[1000], first[500];

	start_pipe();
	pattern_fill(fx.actor[CLIENT].out_seed, 0, first, sizeof(first));
	pattern_fill(fx.actor[CLIENT].out_seed, sizeof(first), chunk, sizeof(chunk));
	ck_assert_int_eq(evbuffer_prepend(bufferevent_get_input(fx.bev[CLIENT]), first,
					  sizeof(first)), 0);
	pipe_pump(end_of(CLIENT));
	ck_assert_uint_eq(pipe_pending(end_of(BACKEND)), 0);
	ck_assert_uint_eq(delivered_unread(BACKEND), sizeof(first));
	/* Something queued (as libevent leaves a partial write): what follows waits behind it. */
	ck_assert_int_eq(evbuffer_add(bufferevent_get_output(fx.bev[BACKEND]), chunk, 10), 0);
	ck_assert_int_eq(evbuffer_prepend(bufferevent_get_input(fx.bev[CLIENT]), chunk + 10,
					  sizeof(chunk) - 10), 0);
	pipe_pump(end_of(CLIENT));
	ck_assert_uint_eq(pipe_pending(end_of(BACKEND)), sizeof(chunk));
	ck_assert_uint_eq(delivered_unread(BACKEND), sizeof(first));
	RUN_UNTIL(fx.actor[BACKEND].received == sizeof(first) + sizeof(chunk), 10000);
	assert_intact(BACKEND, sizeof(first) + sizeof(chunk));
	ck_assert_uint_eq(end_of(CLIENT)->bytes_in, sizeof(first) + sizeof(chunk) - 10);
}
END_TEST

/*
 * The backend stops reading (shutdown SHUT_RD) while little is queued for it:
 * PIPE_WRITE_FAILED once, and the client is still read, its bytes dropped,
 * its EOF reported. (What was queued when the write failed is not looked at
 * here: libevent keeps the start of a socket bufferevent's output frozen.)
 */
START_TEST(write_failed_keeps_reading_source)
{
	const uint64_t total = 2 * MIB;
	uint64_t queued;
	size_t pending;

	start_pipe();
	ck_assert_int_eq(shutdown(fx.actor[BACKEND].fd, SHUT_RD), 0);
	actor_send(CLIENT, total, true);
	RUN_UNTIL(fx.count[BACKEND][PIPE_WRITE_FAILED] == 1, 10000);
	ck_assert(fx.pipe.b.write_failed);
	queued = fx.pipe.a.bytes_in;
	pending = pipe_pending(&fx.pipe.b);
	ck_assert_uint_lt(queued, PIPE_HIGH);	/* the case this test is about */
	RUN_UNTIL(fx.actor[CLIENT].out_sent == total && fx.count[CLIENT][PIPE_EOF] == 1, 20000);
	/* Read, but dropped: nothing more is queued for the failed end. */
	ck_assert_uint_eq(fx.pipe.a.bytes_in, queued);
	ck_assert_uint_le(pipe_pending(&fx.pipe.b), pending);
	ck_assert_uint_le(run_until_idle(5000), 3);
	ck_assert_uint_eq(fx.count[BACKEND][PIPE_WRITE_FAILED], 1);
	ck_assert_int_eq(fx.nlog, 2);
}
END_TEST

/*
 * The backend stops reading (shutdown SHUT_RD) after the client has filled
 * everything: the pipe holds >= PIPE_HIGH for the backend and no longer reads
 * the client. The backend then drains its socket, so the pipe's next write
 * fails with EPIPE: PIPE_WRITE_FAILED for the backend end.
 */
static void write_fails_with_high_queued(void)
{
	start_pipe();
	actor_reading(BACKEND, false);
	actor_send(CLIENT, 8 * MIB, true);
	RUN_UNTIL(fx.actor[CLIENT].would_block > 0 && pipe_pending(&fx.pipe.b) >= PIPE_HIGH &&
		  !reading(CLIENT), 20000);
	ck_assert_int_eq(shutdown(fx.actor[BACKEND].fd, SHUT_RD), 0);
	actor_reading(BACKEND, true);	/* reads what its socket holds, then EOF */
	RUN_UNTIL(fx.count[BACKEND][PIPE_WRITE_FAILED] == 1, 10000);
}

/* engine_pipe.h: "PIPE_WRITE_FAILED: ... what was queued is dropped". */
START_TEST(write_failed_drops_what_was_queued)
{
	write_fails_with_high_queued();
	ck_assert_msg(last_logged(BACKEND, PIPE_WRITE_FAILED)->pending == 0,
		      "%zu bytes still queued for the failed end when PIPE_WRITE_FAILED was reported",
		      last_logged(BACKEND, PIPE_WRITE_FAILED)->pending);
	ck_assert_uint_eq(pipe_pending(&fx.pipe.b), 0);
}
END_TEST

/*
 * engine_pipe.h: write_failed "nothing more can be written: bytes for it are
 * dropped" (pipe_pump() drops them): the client must still be read, so its
 * remaining bytes are dropped and its EOF is reported, as happens when less
 * than PIPE_HIGH was queued (write_failed_keeps_reading_source).
 */
START_TEST(write_failed_does_not_stall_the_other_end)
{
	write_fails_with_high_queued();
	RUN_UNTIL(fx.actor[CLIENT].out_sent == 8 * MIB && fx.count[CLIENT][PIPE_EOF] == 1, 10000);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("engine_pipe");
	TCase *flow = tcase_create("flow");
	TCase *ends = tcase_create("ends");
	TCase *control = tcase_create("control");

	tcase_add_checked_fixture(flow, setup, teardown);
	tcase_set_timeout(flow, 60);
	tcase_add_loop_test(flow, bytes_flow_both_ways_intact, 0, N(flow_cases));
	tcase_add_test(flow, tiny_socket_buffers_partial_writes);
	tcase_add_loop_test(flow, slow_reader_bounded, CLIENT, BACKEND + 1);
	tcase_add_test(flow, input_present_at_init_moved);
	tcase_add_test(flow, late_peer_starts_reading);
	tcase_add_test(flow, tail_prepended);
	tcase_add_test(flow, idle_socket_written_through_busy_one_queued);
	suite_add_tcase(suite, flow);

	tcase_add_checked_fixture(ends, setup, teardown);
	tcase_set_timeout(ends, 60);
	tcase_add_loop_test(ends, half_closed_client_still_answered, 0, N(half_close_cases));
	tcase_add_loop_test(ends, reset_while_other_side_blocked, 0, N(reset_cases));
	tcase_add_test(ends, write_failed_keeps_reading_source);
	tcase_add_test(ends, write_failed_drops_what_was_queued);
	tcase_add_test(ends, write_failed_does_not_stall_the_other_end);
	suite_add_tcase(suite, ends);

	tcase_add_checked_fixture(control, setup, teardown);
	tcase_set_timeout(control, 60);
	tcase_add_loop_test(control, hold_stops_reading_unhold_passes_buffered, CLIENT, BACKEND + 1);
	tcase_add_loop_test(control, watch_drain_once, CLIENT, BACKEND + 1);
	tcase_add_loop_test(control, take_detaches_an_end, CLIENT, BACKEND + 1);
	suite_add_tcase(suite, control);
	return check_run(suite);
}
