/*
 * chan.h - messages between the processes of mailgated.
 *
 * The master, the TLS engines and the session children talk over
 * SOCK_SEQPACKET socketpairs: one message per datagram, a type byte first,
 * then fields written and read through bounded helpers (big-endian numbers,
 * 16-bit length-prefixed byte strings), and up to CHAN_MAX_FDS descriptors
 * passed alongside (SCM_RIGHTS). A reader that finds a short, long or
 * malformed message marks itself bad, so a confused or compromised peer is
 * refused rather than believed. As with the PAM frames, nothing here knows
 * what a message means: the message types are listed here so that one
 * table names them all, their fields are documented where they are built.
 */
#ifndef MG_CHAN_H
#define MG_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Room for the largest message: a 16 KiB chunk of session bytes plus fields. */
#define CHAN_MSG_MAX	(16384 + 512)
#define CHAN_CHUNK_MAX	16384
#define CHAN_MAX_FDS	2
#define CHAN_REPLY_MAX	1024	/* a go-ahead line the engine writes for STARTTLS */

enum chan_type {
	/* engine -> master */
	CHAN_ENGINE_READY = 1,		/* certificates loaded, accepting */
	CHAN_ENGINE_FAILED,		/* could not start: reason */
	CHAN_ENGINE_RETIRED,		/* no longer accepting: a reload may go on */
	CHAN_SESSION_REQUEST,		/* id, listener, client address; fd: child's channel */
	CHAN_SESSION_END,		/* id: no longer counted */
	CHAN_PENALTY_ASK,		/* id, client address, user and password hashes: a failed login */
	CHAN_LOGIN_SUCCEEDED,		/* id, client address, user hash: logged in */
	CHAN_USERIP_ASK,		/* id, client address, user hash: may the user log in? */
	/* master -> engine */
	CHAN_TICKET_KEYS,		/* first message: the session ticket keys */
	CHAN_SESSION_GRANT,		/* id: a child runs the session */
	CHAN_SESSION_REFUSE,		/* id, verdict: over a limit */
	CHAN_ENGINE_RETIRE,		/* stop accepting, end when the last session ends */
	CHAN_ENGINE_STOP,		/* stop accepting, end sessions after grace seconds */
	CHAN_PENALTY,			/* id, delay ms, flags; to the child: delay ms, flags */
	CHAN_USERIP,			/* id, allowed; to the child: allowed */
	/* master -> spare session child */
	CHAN_SPARE_SESSION,		/* fd: the engine's channel of the session to run */
	/* engine -> session child */
	CHAN_HELLO,			/* listener, addresses; fd: cleartext client channel */
	CHAN_TLS_UP,			/* version, cipher, SNI name; fd: client channel in TLS */
	CHAN_BACKEND_UP,		/* address; fd: backend channel */
	CHAN_BACKEND_FAILED,		/* reason */
	CHAN_BACKEND_TLS_UP,		/* fd: backend channel inside TLS */
	CHAN_SHUTDOWN,			/* the daemon stops: say goodbye (client channel shut) */
	/* session child -> engine */
	CHAN_START_TLS,			/* reply to write first ("a OK Begin TLS ...") */
	CHAN_BACKEND_CONNECT,		/* backend index, preamble (PROXY header) */
	CHAN_BACKEND_START_TLS,		/* the backend agreed to STARTTLS/STLS */
	CHAN_HANDOFF,			/* logged in: session facts; the relay is yours */
	CHAN_TAIL_CLIENT,		/* client bytes read but not consumed */
	CHAN_TAIL_BACKEND,		/* backend bytes read but not consumed */
	CHAN_TAIL_END,			/* nothing more: the child exits */
	CHAN_CLOSE,			/* the session ends before login: session facts */
	CHAN_LOGIN_FAILED,		/* user and password hashes (session_penalty.h) */
	CHAN_USERIP_CHECK,		/* user hash: under max_sessions_per_user_ip? */
	CHAN_TYPE_COUNT
};

/* A message being built. Overflow is sticky: chan_send() refuses it. */
struct chan_msg {
	unsigned char data[CHAN_MSG_MAX];
	size_t len;
	bool overflow;
};

void chan_msg_init(struct chan_msg *m, enum chan_type type);
void chan_put_u8(struct chan_msg *m, uint8_t v);
void chan_put_u16(struct chan_msg *m, uint16_t v);
void chan_put_u32(struct chan_msg *m, uint32_t v);
void chan_put_u64(struct chan_msg *m, uint64_t v);
/* u16 length, then the bytes. */
void chan_put_bytes(struct chan_msg *m, const void *p, size_t len);
void chan_put_str(struct chan_msg *m, const char *s);

/* A message being read. */
struct chan_reader {
	const unsigned char *p;
	size_t len;
	size_t off;
	bool bad;
};

void chan_reader_init(struct chan_reader *r, const void *p, size_t len);
/* A socket address, IPv4 or IPv6, as long as its family says. */
void chan_put_sockaddr(struct chan_msg *m, const struct sockaddr_storage *sa);
/* false (and r bad) unless it is an IPv4 or IPv6 address of its family's length. */
bool chan_get_sockaddr(struct chan_reader *r, struct sockaddr_storage *sa);
uint8_t chan_get_u8(struct chan_reader *r);
uint16_t chan_get_u16(struct chan_reader *r);
uint32_t chan_get_u32(struct chan_reader *r);
uint64_t chan_get_u64(struct chan_reader *r);
/* Points *p into the message; more than max bytes makes the reader bad. */
void chan_get_bytes(struct chan_reader *r, const unsigned char **p, size_t *len, size_t max);
/* Copies a string of printable ASCII into dst (always terminated). */
void chan_get_str(struct chan_reader *r, char *dst, size_t dstsize);
/* True when every field was valid and nothing is left over. */
bool chan_reader_done(const struct chan_reader *r);

/*
 * Send one message with nfds descriptors (which stay open here). Never
 * blocks on a non-blocking socket. Returns 0, or -1 with errno (EAGAIN when
 * the peer's queue is full, EMSGSIZE after an overflow).
 */
int chan_send(int sock, const struct chan_msg *m, const int *fds, size_t nfds);

/*
 * Receive one message into buf (CHAN_MSG_MAX bytes). Descriptors arrive in
 * fds (close-on-exec), *nfds says how many; extra or truncated ones are
 * closed and make the message invalid. Returns the length (>= 1, the type
 * is buf[0]), 0 at EOF (an empty datagram looks the same: our peers never
 * send one, so it ends the channel too), or -1 with errno (EAGAIN when
 * nothing is waiting, EBADMSG for a truncated message or descriptors without
 * a message).
 */
long chan_recv(int sock, unsigned char *buf, int *fds, size_t *nfds);

/* Close the descriptors a message brought that nobody took. */
void chan_close_fds(int *fds, size_t nfds);

#define CHAN_KEEP_MAX 64

/*
 * Close every descriptor but 0-2 and those in keep (at most CHAN_KEEP_MAX), then
 * closelog(): a fresh child must not hold listening sockets, the master's
 * channels or a syslog socket number that is about to be reused.
 */
void chan_close_all_but(const int *keep, size_t n);

#endif
