/*
 * relay.c - the authenticated session: bytes both ways, nothing parsed.
 *
 * Each direction owns one buffer of a TLS record's size. It exists only while
 * bytes are in flight and is freed as soon as its source has nothing more to
 * read, so thousands of idle (IMAP IDLE) sessions pin no relay memory. Both
 * sockets are non-blocking; one poll() waits for whatever each direction is
 * stuck on, and a slow reader only slows its own direction.
 */
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

#define RELAY_CHUNK 16384

struct direction {
	struct mg_stream *src;
	struct mg_stream *dst;
	char *buf;
	size_t len;		/* bytes in buf */
	size_t off;		/* of those, already written */
	bool eof;		/* src closed */
	short read_wait;	/* poll events src needs before the next read, 0 = none */
	short write_wait;	/* poll events dst needs before the next write */
	uint64_t bytes;
};

enum pump_result { PUMP_IDLE, PUMP_PROGRESS, PUMP_FAILED };

static void drop_buffer(struct direction *d)
{
	free(d->buf);
	d->buf = NULL;
	d->len = 0;
	d->off = 0;
}

/*
 * A TLS source hands out one record per read (Dovecot writes 4 kB ones);
 * while more is already decrypted or buffered, top the chunk up so the other
 * side gets full 16 kB writes (and records) instead of many small ones. An
 * EOF or error here is left for the next read to report.
 */
static void fill_from_pending(struct direction *d)
{
	while (d->len < RELAY_CHUNK && stream_has_buffered(d->src)) {
		long n = stream_read_some(d->src, d->buf + d->len, RELAY_CHUNK - d->len);

		if (n <= 0)
			break;
		d->len += (size_t)n;
	}
}

/* Move as much as possible from src to dst without blocking. */
static enum pump_result pump(struct direction *d, const char **failure)
{
	enum pump_result result = PUMP_IDLE;

	d->read_wait = 0;
	d->write_wait = 0;
	for (;;) {
		long n;

		if (d->off < d->len) {
			n = stream_write_some(d->dst, d->buf + d->off, d->len - d->off);
			if (n > 0) {
				d->off += (size_t)n;
				d->bytes += (uint64_t)n;
				result = PUMP_PROGRESS;
				if (d->off == d->len)
					d->off = d->len = 0;
				continue;
			}
			if (n == MG_IO_AGAIN) {
				d->write_wait = (short)d->dst->want;
				return result;
			}
			*failure = "write-error";
			return PUMP_FAILED;
		}
		if (d->eof)
			return result;
		if (d->buf == NULL && (d->buf = malloc(RELAY_CHUNK)) == NULL) {
			*failure = "out-of-memory";
			return PUMP_FAILED;
		}
		n = stream_read_some(d->src, d->buf, RELAY_CHUNK);
		if (n > 0) {
			d->len = (size_t)n;
			d->off = 0;
			result = PUMP_PROGRESS;
			fill_from_pending(d);
			continue;
		}
		drop_buffer(d);
		if (n == MG_IO_AGAIN) {
			d->read_wait = (short)d->src->want;
			return result;
		}
		if (n == MG_IO_EOF) {
			d->eof = true;
			return PUMP_PROGRESS;
		}
		*failure = "read-error";
		return PUMP_FAILED;
	}
}

void relay_run(struct mg_stream *client, struct mg_stream *backend, unsigned idle_timeout_s,
	       struct mg_relay_result *result)
{
	struct direction up = { .src = client, .dst = backend };
	struct direction down = { .src = backend, .dst = client };
	long long idle_deadline = stream_now_ms() + (long long)idle_timeout_s * 1000;
	const char *failure = NULL;

	result->end_reason = NULL;
	while (result->end_reason == NULL) {
		struct pollfd pfd[2];
		enum pump_result r1 = pump(&up, &failure);
		enum pump_result r2 = r1 == PUMP_FAILED ? PUMP_FAILED : pump(&down, &failure);
		long long left;
		int rc;

		if (r1 == PUMP_FAILED || r2 == PUMP_FAILED) {
			result->end_reason = failure;
			break;
		}
		/* A closed side ends the session once what it sent is delivered. */
		if (up.eof && up.off == up.len) {
			result->end_reason = "client-closed";
			break;
		}
		if (down.eof && down.off == down.len) {
			result->end_reason = "backend-closed";
			break;
		}
		if (r1 == PUMP_PROGRESS || r2 == PUMP_PROGRESS) {
			idle_deadline = stream_now_ms() + (long long)idle_timeout_s * 1000;
			continue;
		}
		pfd[0] = (struct pollfd){ .fd = client->fd, .events = up.read_wait | down.write_wait };
		pfd[1] = (struct pollfd){ .fd = backend->fd, .events = down.read_wait | up.write_wait };
		left = idle_deadline - stream_now_ms();
		if (left <= 0) {
			result->end_reason = "idle-timeout";
			break;
		}
		rc = poll(pfd, 2, left > 1000000 ? 1000000 : (int)left);
		if (rc == 0 && stream_now_ms() >= idle_deadline)
			result->end_reason = "idle-timeout";
	}
	drop_buffer(&up);
	drop_buffer(&down);
	result->client_to_backend = up.bytes;
	result->backend_to_client = down.bytes;
}
