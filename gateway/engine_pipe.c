/*
 * engine_pipe.c - bytes both ways between two bufferevents, bounded.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <string.h>
#include <sys/uio.h>

#include "clock.h"
#include "engine_pipe.h"

size_t pipe_pending(const struct pipe_end *end)
{
	/*
	 * What a failed end could not take counts as dropped: a socket
	 * bufferevent's output cannot be drained from outside its callbacks.
	 */
	return end->bev != NULL && !end->write_failed
		       ? evbuffer_get_length(bufferevent_get_output(end->bev)) : 0;
}

size_t pipe_copy_last(struct evbuffer *buf, unsigned char *out, size_t max)
{
	size_t len = evbuffer_get_length(buf);
	size_t take = len < max ? len : max, got = 0;
	struct evbuffer_iovec vec[4];
	struct evbuffer_ptr pos;
	int n;

	/*
	 * Peeked, not copied out: libevent refuses evbuffer_copyout_from() on a
	 * bufferevent's output (its start is frozen); a few bytes span a few chunks.
	 */
	if (evbuffer_ptr_set(buf, &pos, len - take, EVBUFFER_PTR_SET) < 0)
		return 0;
	n = evbuffer_peek(buf, (ev_ssize_t)take, &pos, vec, 4);
	for (int i = 0; i < n && i < 4 && got < take; i++) {
		size_t part = vec[i].iov_len < take - got ? vec[i].iov_len : take - got;

		memcpy(out + got, vec[i].iov_base, part);
		got += part;
	}
	return got == take ? take : 0;
}

/* Keep the last bytes of what end read: buf ends with the n bytes just read. */
static void note_tail(struct pipe_end *end, struct evbuffer *buf, size_t n)
{
	size_t take = n < PIPE_TAIL ? n : PIPE_TAIL;
	size_t keep = PIPE_TAIL - take < end->tail_len ? PIPE_TAIL - take : end->tail_len;

	memmove(end->tail, end->tail + end->tail_len - keep, keep);
	/* Nothing to go by rather than something wrong. */
	end->tail_len = pipe_copy_last(buf, end->tail + keep, take) == take
				? (unsigned char)(keep + take) : 0;
}

void pipe_prepend_tail(struct pipe_end *end, const unsigned char *data, size_t len)
{
	size_t take = PIPE_TAIL - end->tail_len < len ? PIPE_TAIL - end->tail_len : len;

	memmove(end->tail + take, end->tail, end->tail_len);
	memcpy(end->tail, data + len - take, take);
	end->tail_len = (unsigned char)(end->tail_len + take);
}

/* Read from end only while its bytes have somewhere to go. */
static void update_reading(struct pipe_end *end)
{
	bool read = end->bev != NULL && !end->eof && !end->hold && end->peer->bev != NULL &&
		    pipe_pending(end->peer) < PIPE_HIGH;

	if (end->bev == NULL)
		return;
	if (read)
		bufferevent_enable(end->bev, EV_READ);
	else
		bufferevent_disable(end->bev, EV_READ);
}

/* From a cleartext socket to TLS? */
static bool towards_tls(const struct pipe_end *end)
{
	return bufferevent_openssl_get_ssl(end->peer->bev) != NULL &&
	       bufferevent_openssl_get_ssl(end->bev) == NULL;
}

/*
 * libevent reads a cleartext socket 4 kB at a time, and an OpenSSL
 * bufferevent makes each chunk it is given a TLS record (and a write) of its
 * own. So towards TLS, read on until a full record's worth is there and hand
 * it over in one piece. The reading goes into a buffer of our own (libevent
 * keeps the end of a bufferevent's input frozen); an EOF seen here is seen
 * again by libevent's next read. Returns the bytes handed over.
 */
static size_t gather_record(struct pipe_end *end, struct evbuffer *in, struct evbuffer *out)
{
	static struct evbuffer *scratch;	/* an engine is one thread */
	evutil_socket_t fd = bufferevent_getfd(end->bev);
	size_t n;

	if (scratch == NULL && (scratch = evbuffer_new()) == NULL) {
		n = evbuffer_get_length(in);
		evbuffer_add_buffer(out, in);
		return n;
	}
	evbuffer_add_buffer(scratch, in);
	if (evbuffer_get_length(scratch) < PIPE_RECORD) {
		/* One read of the rest (libevent's own stop at 4 kB). */
		struct evbuffer_iovec vec[2];
		int nvec = evbuffer_reserve_space(scratch, (ev_ssize_t)(PIPE_RECORD -
								 evbuffer_get_length(scratch)), vec, 2);
		/* evbuffer_iovec has struct iovec's layout (libevent promises it). */
		ssize_t got = nvec > 0 ? readv(fd, (struct iovec *)vec, nvec) : -1;
		size_t left = got > 0 ? (size_t)got : 0;

		for (int i = 0; i < nvec; i++) {
			if (vec[i].iov_len > left)
				vec[i].iov_len = left;
			left -= vec[i].iov_len;
		}
		/* EOF or EAGAIN: nothing is committed, libevent's next read sees it. */
		evbuffer_commit_space(scratch, vec, got > 0 ? nvec : 0);
	}
	n = evbuffer_get_length(scratch);
	evbuffer_pullup(scratch, (ev_ssize_t)(n < PIPE_RECORD ? n : PIPE_RECORD));
	evbuffer_add_buffer(out, scratch);
	return n;
}

/*
 * Towards a cleartext socket with nothing queued: write at once. Queued
 * output is written by libevent only after a round trip through epoll
 * (EPOLLOUT added, a wakeup, the write, EPOLLOUT removed): three system
 * calls more per message, and the pre-login dialogue is many small
 * messages over a socket the child reads at once. What the socket does not
 * take (or refuses, with an error) is queued as before, and libevent's own
 * write reports the error. Never with output queued: order is kept.
 */
static void write_through(struct pipe_end *end, struct evbuffer *in)
{
	struct bufferevent *to = end->peer->bev;

	if (bufferevent_openssl_get_ssl(to) != NULL ||
	    !(bufferevent_get_enabled(to) & EV_WRITE) ||
	    evbuffer_get_length(bufferevent_get_output(to)) != 0)
		return;
	/* Drains what the socket took; on an error nothing, and libevent sees it again. */
	(void)evbuffer_write(in, bufferevent_getfd(to));
}

void pipe_pump(struct pipe_end *end)
{
	struct evbuffer *in;
	size_t n;

	if (end->bev == NULL || end->peer->bev == NULL || end->hold)
		return;
	in = bufferevent_get_input(end->bev);
	n = evbuffer_get_length(in);
	if (end->peer->write_failed) {
		evbuffer_drain(in, n);
		n = 0;
	}
	if (n > 0 && towards_tls(end)) {
		n = gather_record(end, in, bufferevent_get_output(end->peer->bev));
		note_tail(end, bufferevent_get_output(end->peer->bev), n);
		end->bytes_in += n;
	} else if (n > 0) {
		note_tail(end, in, n);
		write_through(end, in);
		/* Whole chains change hands; nothing is copied. */
		evbuffer_add_buffer(bufferevent_get_output(end->peer->bev), in);
		end->bytes_in += n;
	}
	update_reading(end);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct pipe_end *end = arg;

	if (end->pipe->activity != NULL)
		*end->pipe->activity = mg_now_ms();
	pipe_pump(end);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct pipe_end *end = arg;

	/* Room again: the other side may read, and pass on what it holds. */
	if (end->peer->bev != NULL && !end->peer->hold)
		pipe_pump(end->peer);
	if (end->watch_drain && pipe_pending(end) == 0) {
		end->watch_drain = false;
		end->pipe->on_event(end->pipe, end, PIPE_DRAINED, end->pipe->arg);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct pipe_end *end = arg;
	struct engine_pipe *pipe = end->pipe;

	end->what = what;
	if (what & BEV_EVENT_CONNECTED) {
		pipe->on_event(pipe, end, PIPE_CONNECTED, pipe->arg);
		return;
	}
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		pipe_pump(end);
		end->eof = true;
		bufferevent_disable(bev, EV_READ);
		pipe->on_event(pipe, end, PIPE_EOF, pipe->arg);
		return;
	}
	end->error = bufferevent_get_openssl_error(bev);
	if ((what & BEV_EVENT_WRITING) && !(what & BEV_EVENT_TIMEOUT) && !end->write_failed) {
		/* The reader went away; what it had not read yet may still be read from it. */
		struct evbuffer *out = bufferevent_get_output(bev);

		end->write_failed = true;
		evbuffer_drain(out, evbuffer_get_length(out));
		bufferevent_disable(bev, EV_WRITE);
		/* Its source may have been paused for it: read (and drop) again. */
		update_reading(end->peer);
		pipe->on_event(pipe, end, PIPE_WRITE_FAILED, pipe->arg);
		return;
	}
	end->eof = true;
	pipe->on_event(pipe, end, PIPE_ERROR, pipe->arg);
}

void pipe_set(struct engine_pipe *pipe, struct pipe_end *end, struct bufferevent *bev)
{
	end->bev = bev;
	end->eof = false;
	end->hold = false;
	end->write_failed = false;
	end->watch_drain = false;
	end->error = 0;
	if (bev == NULL)
		return;
	bufferevent_setcb(bev, on_read, on_write, on_event, end);
	/* Called whenever a write leaves at most PIPE_LOW queued. */
	bufferevent_setwatermark(bev, EV_WRITE, PIPE_LOW, 0);
	/*
	 * A new socket bufferevent is born with writing enabled and an empty
	 * output; enabling it again would arm EPOLLOUT for a wakeup with nothing
	 * to write. (A TLS one is always enabled: its handshake may need it.)
	 */
	if (!(bufferevent_get_enabled(bev) & EV_WRITE) || bufferevent_openssl_get_ssl(bev) != NULL)
		bufferevent_enable(bev, EV_WRITE);
	update_reading(end);
	update_reading(end->peer);
}

void pipe_init(struct engine_pipe *pipe, struct bufferevent *a, struct bufferevent *b,
	       pipe_event_fn *on_event_fn, void *arg, long long *activity)
{
	pipe->a = (struct pipe_end){ .pipe = pipe, .peer = &pipe->b };
	pipe->b = (struct pipe_end){ .pipe = pipe, .peer = &pipe->a };
	pipe->on_event = on_event_fn;
	pipe->arg = arg;
	pipe->activity = activity;
	pipe_set(pipe, &pipe->a, a);
	pipe_set(pipe, &pipe->b, b);
	pipe_pump(&pipe->a);
	pipe_pump(&pipe->b);
}

void pipe_hold(struct pipe_end *end, bool hold)
{
	end->hold = hold;
	if (hold)
		update_reading(end);
	else
		pipe_pump(end);
}

void pipe_watch_drain(struct pipe_end *end)
{
	if (pipe_pending(end) == 0) {
		end->pipe->on_event(end->pipe, end, PIPE_DRAINED, end->pipe->arg);
		return;
	}
	end->watch_drain = true;
}

struct bufferevent *pipe_take(struct pipe_end *end)
{
	struct bufferevent *bev = end->bev;

	if (bev != NULL) {
		bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		bufferevent_disable(bev, EV_READ | EV_WRITE);
	}
	end->bev = NULL;
	end->watch_drain = false;
	update_reading(end->peer);
	return bev;
}
