/*
 * engine_pipe.h - bytes both ways between two libevent bufferevents.
 *
 * The engine moves bytes the same way in every phase: client <-> session
 * child before login, backend <-> session child during the backend login,
 * client <-> backend after it. A pipe owns the callbacks of its two ends,
 * moves whole evbuffer chains (no copy), and bounds what it holds: once a
 * destination has PIPE_HIGH bytes waiting, its source is not read until
 * they drain below PIPE_LOW, so a slow reader holds at most a couple of TLS
 * records per direction. Nothing is parsed; an end remembers the last few
 * bytes read from it (PIPE_TAIL), for the owner's closing log line (did
 * the client's last command end the session?). What an end reports (EOF,
 * error, a finished TLS handshake, a write timeout) and "everything queued
 * for this end was written" go to the owner's callback.
 */
#ifndef MG_ENGINE_PIPE_H
#define MG_ENGINE_PIPE_H

#include <stdbool.h>
#include <stdint.h>

struct bufferevent;
struct engine_pipe;

#define PIPE_HIGH 32768		/* two TLS records */
#define PIPE_LOW 16384
#define PIPE_RECORD 16384	/* the largest TLS record's payload */
#define PIPE_TAIL 16u		/* last bytes read kept per end */

enum pipe_event {
	PIPE_EOF,		/* the end's peer closed (its input is all delivered) */
	PIPE_ERROR,		/* socket or TLS error, or timeout */
	PIPE_WRITE_FAILED,	/* the end's peer stopped reading; what was queued is dropped */
	PIPE_CONNECTED,		/* TLS handshake done on this end */
	PIPE_DRAINED		/* the end's output ran empty while pipe_watch_drain() was set */
};

struct pipe_end {
	struct bufferevent *bev;
	struct engine_pipe *pipe;
	struct pipe_end *peer;
	bool eof;		/* nothing more will be read from this end */
	bool watch_drain;	/* report PIPE_DRAINED once the output is empty */
	bool hold;		/* do not read (the owner's choice, beside back-pressure) */
	bool write_failed;	/* nothing more can be written: bytes for it are dropped */
	uint64_t bytes_in;	/* read from this end and queued to the other */
	unsigned char tail[PIPE_TAIL];	/* the last tail_len bytes read from this end */
	unsigned char tail_len;	/* below PIPE_TAIL: all it read since pipe_init */
	unsigned long error;	/* first OpenSSL error on PIPE_ERROR, 0 for none */
	short what;		/* libevent's BEV_EVENT_* flags of the last event */
};

typedef void pipe_event_fn(struct engine_pipe *pipe, struct pipe_end *end, enum pipe_event event,
			   void *arg);

struct engine_pipe {
	struct pipe_end a, b;
	pipe_event_fn *on_event;
	void *arg;
	long long *activity;	/* owner's last-activity stamp (ms), updated on reads */
};

/*
 * Join a and b (either may be NULL for "not yet") and start reading both.
 * Bytes already in an end's input are moved over at once.
 */
void pipe_init(struct engine_pipe *pipe, struct bufferevent *a, struct bufferevent *b,
	       pipe_event_fn *on_event, void *arg, long long *activity);
/* Attach or replace one end (the other stays). */
void pipe_set(struct engine_pipe *pipe, struct pipe_end *end, struct bufferevent *bev);
/* Stop or resume reading an end (the owner's hold, e.g. while TLS is ordered). */
void pipe_hold(struct pipe_end *end, bool hold);
/* Report PIPE_DRAINED once the end's output is empty (at once if it is). */
void pipe_watch_drain(struct pipe_end *end);
/* Move what the end has read but not yet passed on (after a hold). */
void pipe_pump(struct pipe_end *end);
/*
 * Put data[0..len) before what the end's tail holds, as if read first (what
 * the owner passed on itself before the pipe was made).
 */
void pipe_prepend_tail(struct pipe_end *end, const unsigned char *data, size_t len);
/* Copy the last bytes of buf, at most max, to out; returns how many (0 on failure). */
struct evbuffer;
size_t pipe_copy_last(struct evbuffer *buf, unsigned char *out, size_t max);
/* Bytes waiting to be written to this end. */
size_t pipe_pending(const struct pipe_end *end);
/* Detach the end's bufferevent from the pipe (callbacks cleared) and return it. */
struct bufferevent *pipe_take(struct pipe_end *end);

#endif
