/*
 * check_chan.c - the messages between master, engines and session children:
 * every field type there and back, every way a reader can be handed a short,
 * long, padded or poisoned message, sticky overflow, and the real thing over
 * SOCK_SEQPACKET socketpairs: descriptors passed and usable, too many or
 * truncated ones closed (no leak), EOF, nothing waiting, a full queue; and
 * chan_close_all_but() in a child of its own.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan.h"
#include "check_run.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define S(x) x, sizeof(x) - 1

/* ---- helpers ------------------------------------------------------------- */

/* Descriptors this process holds (the directory's own one is not counted). */
static int count_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(dir);
	while ((e = readdir(dir)) != NULL) {
		if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(dir))
			n++;
	}
	closedir(dir);
	return n;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

static void seqpacket_pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

/* One datagram, sent around chan_send(), with whatever descriptors the test wants. */
static void raw_send(int sock, const void *data, size_t len, const int *fds, size_t nfds,
		     size_t ncmsg)
{
	union {
		struct cmsghdr align;
		char buf[2 * CMSG_SPACE(sizeof(int) * 8)];
	} control;
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	ck_assert(nfds <= 8 && ncmsg <= 2);
	if (nfds > 0) {
		/* ncmsg == 2: the descriptors split over two SCM_RIGHTS headers. */
		size_t first = ncmsg == 2 ? nfds / 2 : nfds, second = nfds - first;
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * first) +
				     (second > 0 ? CMSG_SPACE(sizeof(int) * second) : 0);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * first);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * first);
		if (second > 0) {
			c = CMSG_NXTHDR(&msg, c);
			ck_assert_ptr_nonnull(c);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * second);
			memcpy(CMSG_DATA(c), fds + first, sizeof(int) * second);
		}
	}
	ck_assert_int_eq(sendmsg(sock, &msg, MSG_NOSIGNAL), (ssize_t)len);
}

/* chan_recv() must find nothing (and say so with EAGAIN, not block). */
static void assert_nothing_waiting(int sock)
{
	unsigned char buf[CHAN_MSG_MAX];
	int fds[CHAN_MAX_FDS];
	size_t nfds = 99;

	errno = 0;
	ck_assert_int_eq(chan_recv(sock, buf, fds, &nfds), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_eq(nfds, 0);
}

/* ---- fields ----------------------------------------------------------------- */

enum field_kind { F_U8, F_U16, F_U32, F_U64, F_BYTES, F_STR };

struct field {
	enum field_kind kind;
	uint64_t num;
	const char *data;	/* F_BYTES, F_STR */
	size_t len;
};

#define U8(v) { F_U8, (v), NULL, 0 }
#define U16(v) { F_U16, (v), NULL, 0 }
#define U32(v) { F_U32, (v), NULL, 0 }
#define U64(v) { F_U64, (v), NULL, 0 }
#define BYTES(x) { F_BYTES, 0, S(x) }
#define STR(x) { F_STR, 0, S(x) }

struct msg_case {
	const char *name;
	enum chan_type type;
	struct field fields[8];
	int nfields;
	size_t wire_len;	/* what the fields take on the wire, type byte included */
};

static const struct msg_case msg_cases[] = {
	{ "type only", CHAN_ENGINE_RETIRE, { U8(0) }, 0, 1 },
	{ "numbers at zero", CHAN_SESSION_END, { U8(0), U16(0), U32(0), U64(0) }, 4, 1 + 15 },
	{ "numbers at their maximum", CHAN_SESSION_GRANT,
	  { U8(0xff), U16(0xffff), U32(0xffffffffu), U64(UINT64_MAX) }, 4, 1 + 15 },
	{ "numbers with every byte distinct", CHAN_SESSION_REQUEST,
	  { U64(0x0102030405060708ull), U32(0x090a0b0cu), U16(0x0d0e), U8(0x0f) }, 4, 1 + 15 },
	{ "empty byte string and empty string", CHAN_CLOSE, { BYTES(""), STR("") }, 2, 1 + 4 },
	{ "bytes are not strings: NUL, CR LF, 0x7f and 0xff pass", CHAN_TAIL_CLIENT,
	  { BYTES("a\0b\r\n\x7f\xff\x80"), U8(7) }, 2, 1 + 2 + 8 + 1 },
	{ "every printable edge in a string", CHAN_HELLO,
	  { STR(" !~ printable ~! "), STR("192.0.2.1"), U16(993), STR("[2001:db8::1]:143") }, 4,
	  1 + 2 + 17 + 2 + 9 + 2 + 2 + 17 },
	{ "mixed, as a session request", CHAN_BACKEND_CONNECT,
	  { U64(42), U8(3), BYTES("PROXY TCP4 192.0.2.1 198.51.100.2 4711 143\r\n"), U32(7) }, 4,
	  1 + 8 + 1 + 2 + 44 + 4 },
};

static void put_fields(struct chan_msg *m, const struct field *f, int n)
{
	for (int i = 0; i < n; i++) {
		switch (f[i].kind) {
		case F_U8:
			chan_put_u8(m, (uint8_t)f[i].num);
			break;
		case F_U16:
			chan_put_u16(m, (uint16_t)f[i].num);
			break;
		case F_U32:
			chan_put_u32(m, (uint32_t)f[i].num);
			break;
		case F_U64:
			chan_put_u64(m, f[i].num);
			break;
		case F_BYTES:
			chan_put_bytes(m, f[i].data, f[i].len);
			break;
		case F_STR:
			chan_put_str(m, f[i].data);
			break;
		}
	}
}

/*
 * Read the fields back. A good message must give every value; a bad reader
 * (spoilt before the field) must give zeros and no pointer.
 */
static void get_fields(struct chan_reader *r, const struct field *f, int n, bool expect_good)
{
	for (int i = 0; i < n; i++) {
		const unsigned char *p;
		size_t len;
		char str[256];
		uint64_t v = 0;
		bool was_bad = r->bad;

		switch (f[i].kind) {
		case F_U8:
			v = chan_get_u8(r);
			break;
		case F_U16:
			v = chan_get_u16(r);
			break;
		case F_U32:
			v = chan_get_u32(r);
			break;
		case F_U64:
			v = chan_get_u64(r);
			break;
		case F_BYTES:
			chan_get_bytes(r, &p, &len, f[i].len);
			if (expect_good) {
				ck_assert_uint_eq(len, f[i].len);
				ck_assert_ptr_nonnull(p);
				ck_assert(memcmp(p, f[i].data, len) == 0);
			} else if (was_bad) {
				ck_assert_ptr_null(p);
				ck_assert_uint_eq(len, 0);
			}
			continue;
		case F_STR:
			chan_get_str(r, str, sizeof(str));
			if (expect_good)
				ck_assert_str_eq(str, f[i].data);
			else if (was_bad)
				ck_assert_str_eq(str, "");
			continue;
		}
		if (expect_good)
			ck_assert_msg(v == f[i].num, "field %d: %llu, wanted %llu", i,
				      (unsigned long long)v, (unsigned long long)f[i].num);
		else if (was_bad)
			ck_assert_msg(v == 0, "field %d of a bad reader gave %llu", i,
				      (unsigned long long)v);
	}
}

START_TEST(round_trip)
{
	const struct msg_case *c = &msg_cases[_i];
	struct chan_msg m;
	struct chan_reader r;

	chan_msg_init(&m, c->type);
	put_fields(&m, c->fields, c->nfields);
	ck_assert_msg(!m.overflow, "%s", c->name);
	ck_assert_uint_eq(m.len, c->wire_len);
	ck_assert_uint_eq(m.data[0], (unsigned)c->type);

	chan_reader_init(&r, m.data, m.len);
	ck_assert_uint_eq(chan_get_u8(&r), (unsigned)c->type);
	get_fields(&r, c->fields, c->nfields, true);
	ck_assert_msg(!r.bad, "%s", c->name);
	ck_assert_msg(chan_reader_done(&r), "%s", c->name);
}
END_TEST

/* The wire format the header promises: big-endian, 16-bit length prefixes. */
/* Socket addresses: both families round-trip; anything else is refused, the reader bad. */
START_TEST(sockaddr_round_trip_and_refusals)
{
	struct sockaddr_storage in4 = { 0 }, in6 = { 0 }, out;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&in4;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&in6;
	static const unsigned char unix_family[sizeof(struct sockaddr_in)] = { AF_UNIX };
	struct chan_reader r;
	struct chan_msg m;

	s4->sin_family = AF_INET;
	s4->sin_port = htons(143);
	s4->sin_addr.s_addr = htonl(0xc0000207);
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(993);
	s6->sin6_addr.s6_addr[0] = 0x20;
	s6->sin6_addr.s6_addr[15] = 0x01;
	chan_msg_init(&m, CHAN_HELLO);
	chan_put_sockaddr(&m, &in4);
	chan_put_sockaddr(&m, &in6);
	chan_reader_init(&r, m.data + 1, m.len - 1);
	ck_assert(chan_get_sockaddr(&r, &out));
	ck_assert(memcmp(&out, &in4, sizeof(struct sockaddr_in)) == 0);
	ck_assert(chan_get_sockaddr(&r, &out));
	ck_assert(memcmp(&out, &in6, sizeof(struct sockaddr_in6)) == 0);
	ck_assert(chan_reader_done(&r));
	/* A family of neither kind, and an IPv6 family at IPv4's length. */
	chan_msg_init(&m, CHAN_HELLO);
	chan_put_bytes(&m, unix_family, sizeof(unix_family));
	chan_reader_init(&r, m.data + 1, m.len - 1);
	ck_assert(!chan_get_sockaddr(&r, &out));
	ck_assert(!chan_reader_done(&r));
	s4->sin_family = AF_INET6;
	chan_msg_init(&m, CHAN_HELLO);
	chan_put_bytes(&m, &in4, sizeof(struct sockaddr_in));
	chan_reader_init(&r, m.data + 1, m.len - 1);
	ck_assert(!chan_get_sockaddr(&r, &out));
	/* Nothing there at all. */
	chan_reader_init(&r, m.data + 1, 0);
	ck_assert(!chan_get_sockaddr(&r, &out));
}
END_TEST

START_TEST(wire_format)
{
	static const unsigned char want[] = {
		CHAN_BACKEND_UP,
		0xab,
		0x12, 0x34,
		0xde, 0xad, 0xbe, 0xef,
		0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
		0x00, 0x03, 'a', 0x00, 'b',
		0x00, 0x02, 'o', 'k',
		0x00, 0x00,
	};
	struct chan_msg m;

	chan_msg_init(&m, CHAN_BACKEND_UP);
	chan_put_u8(&m, 0xab);
	chan_put_u16(&m, 0x1234);
	chan_put_u32(&m, 0xdeadbeefu);
	chan_put_u64(&m, 0x0123456789abcdefull);
	chan_put_bytes(&m, "a\0b", 3);
	chan_put_str(&m, "ok");
	chan_put_str(&m, NULL);
	ck_assert(!m.overflow);
	ck_assert_uint_eq(m.len, sizeof(want));
	ck_assert(memcmp(m.data, want, sizeof(want)) == 0);
}
END_TEST

/* The largest byte string that fits, there and back, and one byte more overflows. */
START_TEST(largest_message)
{
	static unsigned char chunk[CHAN_MSG_MAX];
	const size_t room = CHAN_MSG_MAX - 1 - 2;	/* type byte, length prefix */
	struct chan_msg m;
	struct chan_reader r;
	const unsigned char *p;
	size_t len;

	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (unsigned char)(i * 7 + 3);
	ck_assert_uint_ge(room, CHAN_CHUNK_MAX);

	chan_msg_init(&m, CHAN_TAIL_BACKEND);
	chan_put_bytes(&m, chunk, room);
	ck_assert(!m.overflow);
	ck_assert_uint_eq(m.len, CHAN_MSG_MAX);
	chan_reader_init(&r, m.data, m.len);
	ck_assert_uint_eq(chan_get_u8(&r), CHAN_TAIL_BACKEND);
	chan_get_bytes(&r, &p, &len, room);
	ck_assert_uint_eq(len, room);
	ck_assert(memcmp(p, chunk, room) == 0);
	ck_assert(chan_reader_done(&r));

	chan_msg_init(&m, CHAN_TAIL_BACKEND);
	chan_put_bytes(&m, chunk, room + 1);
	ck_assert(m.overflow);
}
END_TEST

/* Every cut of a valid message is refused by a reader expecting the whole. */
START_TEST(every_truncation_refused)
{
	const struct msg_case *c = &msg_cases[N(msg_cases) - 1];
	struct chan_msg m;

	chan_msg_init(&m, c->type);
	put_fields(&m, c->fields, c->nfields);
	for (size_t cut = 0; cut < m.len; cut++) {
		struct chan_reader r;

		chan_reader_init(&r, m.data, cut);
		chan_get_u8(&r);
		get_fields(&r, c->fields, c->nfields, false);
		ck_assert_msg(r.bad, "a message cut at %zu of %zu bytes read as good", cut, m.len);
		ck_assert_msg(!chan_reader_done(&r), "cut at %zu of %zu accepted", cut, m.len);
	}
}
END_TEST

/* A length prefix that claims more than the message holds. */
START_TEST(length_past_the_end_refused)
{
	static const unsigned char raw[] = { CHAN_HELLO, 0x00, 0x05, 'a', 'b', 'c', 'd' };
	struct chan_reader r;
	const unsigned char *p = (const unsigned char *)"x";
	size_t len = 99;

	chan_reader_init(&r, raw, sizeof(raw));
	chan_get_u8(&r);
	chan_get_bytes(&r, &p, &len, 100);
	ck_assert(r.bad);
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(len, 0);
	ck_assert(!chan_reader_done(&r));
}
END_TEST

struct long_case {
	size_t len;
	size_t max;
	bool good;
};

static const struct long_case long_cases[] = {
	{ 0, 0, true },
	{ 1, 0, false },
	{ 9, 10, true },
	{ 10, 10, true },
	{ 11, 10, false },
	{ 300, 255, false },
	{ 16384, 16383, false },
};

START_TEST(byte_string_over_max_refused)
{
	const struct long_case *c = &long_cases[_i];
	static unsigned char data[20000];
	struct chan_msg m;
	struct chan_reader r;
	const unsigned char *p;
	size_t len;

	memset(data, 'x', sizeof(data));
	chan_msg_init(&m, CHAN_TAIL_CLIENT);
	chan_put_bytes(&m, data, c->len);
	chan_put_u8(&m, 0x5a);	/* something after it, so a bad length is not the last word */
	ck_assert(!m.overflow);
	chan_reader_init(&r, m.data, m.len);
	chan_get_u8(&r);
	chan_get_bytes(&r, &p, &len, c->max);
	if (c->good) {
		ck_assert(!r.bad);
		ck_assert_uint_eq(len, c->len);
		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq(chan_get_u8(&r), 0x5a);
		ck_assert(chan_reader_done(&r));
	} else {
		ck_assert_msg(r.bad, "%zu bytes accepted under a max of %zu", c->len, c->max);
		ck_assert_ptr_null(p);
		ck_assert_uint_eq(len, 0);
		/* A bad reader stays bad: the byte after is not handed out. */
		ck_assert_uint_eq(chan_get_u8(&r), 0);
		ck_assert(!chan_reader_done(&r));
	}
}
END_TEST

/* A string just fits a buffer of its length + 1, and not one byte smaller. */
START_TEST(string_longer_than_buffer_refused)
{
	struct chan_msg m;
	struct chan_reader r;
	char dst[8];

	chan_msg_init(&m, CHAN_HELLO);
	chan_put_str(&m, "1234567");
	chan_put_str(&m, "12345678");
	chan_reader_init(&r, m.data, m.len);
	chan_get_u8(&r);
	chan_get_str(&r, dst, sizeof(dst));
	ck_assert(!r.bad);
	ck_assert_str_eq(dst, "1234567");
	memset(dst, 'z', sizeof(dst));
	chan_get_str(&r, dst, sizeof(dst));
	ck_assert(r.bad);
	ck_assert_str_eq(dst, "");
	ck_assert(!chan_reader_done(&r));
}
END_TEST

START_TEST(trailing_bytes_refused)
{
	struct chan_msg m;
	struct chan_reader r;

	chan_msg_init(&m, CHAN_SESSION_END);
	chan_put_u64(&m, 77);
	chan_put_u8(&m, 0);	/* one byte nobody asks for */
	chan_reader_init(&r, m.data, m.len);
	ck_assert_uint_eq(chan_get_u8(&r), CHAN_SESSION_END);
	ck_assert(chan_get_u64(&r) == 77);
	ck_assert(!r.bad);
	ck_assert_msg(!chan_reader_done(&r), "a message with a trailing byte was done");
	/* Reading it makes the reader done: "left over" is the only complaint. */
	ck_assert_uint_eq(chan_get_u8(&r), 0);
	ck_assert(chan_reader_done(&r));
	/* ... and reading past the end spoils it for good. */
	ck_assert_uint_eq(chan_get_u8(&r), 0);
	ck_assert(r.bad);
	ck_assert(!chan_reader_done(&r));
}
END_TEST

struct poison_case {
	const char *s;
	size_t len;
};

static const struct poison_case poison_strings[] = {
	{ S("\0") },
	{ S("user\0name") },
	{ S("a\x01") },
	{ S("tab\there") },
	{ S("line\n") },
	{ S("line\r\nINJECTED") },
	{ S("\x1b[31mred") },
	{ S("\x1f") },
	{ S("del\x7f") },
	{ S("\x80") },
	{ S("\xc3\xa9milie") },
	{ S("\xff") },
};

/* Strings in logs and addresses: anything but printable ASCII spoils the reader. */
START_TEST(string_with_poison_refused)
{
	const struct poison_case *c = &poison_strings[_i];
	struct chan_msg m;
	struct chan_reader r;
	char dst[64];

	chan_msg_init(&m, CHAN_CLOSE);
	chan_put_bytes(&m, c->s, c->len);	/* put_str would stop at a NUL */
	chan_reader_init(&r, m.data, m.len);
	chan_get_u8(&r);
	memset(dst, 'z', sizeof(dst));
	chan_get_str(&r, dst, sizeof(dst));
	ck_assert_msg(r.bad, "string %d accepted", _i);
	ck_assert_msg(dst[0] == '\0', "string %d left \"%s\" behind", _i, dst);
	ck_assert(!chan_reader_done(&r));
}
END_TEST

START_TEST(every_printable_string_accepted)
{
	char all[0x7f - 0x20 + 1], dst[sizeof(all)];
	struct chan_msg m;
	struct chan_reader r;

	for (int c = 0x20; c <= 0x7e; c++)
		all[c - 0x20] = (char)c;
	all[sizeof(all) - 1] = '\0';
	chan_msg_init(&m, CHAN_HELLO);
	chan_put_str(&m, all);
	chan_reader_init(&r, m.data, m.len);
	chan_get_u8(&r);
	chan_get_str(&r, dst, sizeof(dst));
	ck_assert(chan_reader_done(&r));
	ck_assert_str_eq(dst, all);
}
END_TEST

/* ---- overflow ---------------------------------------------------------------- */

START_TEST(overflow_is_sticky)
{
	static unsigned char big[CHAN_MSG_MAX];
	struct chan_msg m;
	size_t len;

	/* Nothing of a byte string too long for a u16 prefix is written. */
	chan_msg_init(&m, CHAN_TAIL_CLIENT);
	chan_put_bytes(&m, big, (size_t)UINT16_MAX + 1);
	ck_assert(m.overflow);
	ck_assert_uint_eq(m.len, 1);
	/* A small field that would fit does not slip in behind the overflow. */
	chan_put_u8(&m, 1);
	chan_put_str(&m, "x");
	ck_assert(m.overflow);
	ck_assert_uint_eq(m.len, 1);

	/* A message filled to the byte, then one more. */
	chan_msg_init(&m, CHAN_TAIL_CLIENT);
	chan_put_bytes(&m, big, CHAN_MSG_MAX - 3);
	ck_assert(!m.overflow);
	ck_assert_uint_eq(m.len, CHAN_MSG_MAX);
	chan_put_u8(&m, 1);
	ck_assert(m.overflow);
	ck_assert_uint_eq(m.len, CHAN_MSG_MAX);

	/* One byte of room: a u16 is refused whole, not half written. */
	chan_msg_init(&m, CHAN_TAIL_CLIENT);
	chan_put_bytes(&m, big, CHAN_MSG_MAX - 4);
	len = m.len;
	ck_assert_uint_eq(len, CHAN_MSG_MAX - 1);
	chan_put_u16(&m, 0x4142);
	ck_assert(m.overflow);
	ck_assert_uint_eq(m.len, len);
	chan_put_u8(&m, 1);	/* would fit, but the message is already spoilt */
	ck_assert(m.overflow);
	ck_assert_uint_eq(m.len, len);

	/* A fresh init forgets it. */
	chan_msg_init(&m, CHAN_SESSION_END);
	ck_assert(!m.overflow);
	ck_assert_uint_eq(m.len, 1);
}
END_TEST

START_TEST(send_refuses_overflow)
{
	static unsigned char big[CHAN_MSG_MAX];
	struct chan_msg m;
	int sv[2];

	seqpacket_pair(sv);
	chan_msg_init(&m, CHAN_TAIL_BACKEND);
	chan_put_bytes(&m, big, CHAN_MSG_MAX);
	ck_assert(m.overflow);
	errno = 0;
	ck_assert_int_eq(chan_send(sv[0], &m, NULL, 0), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	/* The part that fitted was not sent either. */
	assert_nothing_waiting(sv[1]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(send_refuses_too_many_fds)
{
	struct chan_msg m;
	int sv[2], fds[CHAN_MAX_FDS + 1];

	seqpacket_pair(sv);
	for (int i = 0; i < N(fds); i++)
		fds[i] = sv[0];
	chan_msg_init(&m, CHAN_HELLO);
	errno = 0;
	ck_assert_int_eq(chan_send(sv[0], &m, fds, CHAN_MAX_FDS + 1), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	assert_nothing_waiting(sv[1]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* ---- over a socketpair --------------------------------------------------------- */

/* A message with 0, 1 or 2 descriptors: bytes intact, each descriptor usable. */
START_TEST(send_recv_with_fds)
{
	const size_t nsend = (size_t)_i;
	unsigned char buf[CHAN_MSG_MAX];
	int sv[2], pipes[CHAN_MAX_FDS][2], send_fds[CHAN_MAX_FDS], got[CHAN_MAX_FDS];
	size_t nfds = 99;
	struct chan_msg m;
	int before = count_fds();
	long n;

	seqpacket_pair(sv);
	for (size_t i = 0; i < nsend; i++) {
		ck_assert_int_eq(pipe2(pipes[i], O_CLOEXEC), 0);
		send_fds[i] = pipes[i][1];
	}
	chan_msg_init(&m, CHAN_TLS_UP);
	chan_put_str(&m, "TLSv1.3");
	chan_put_u32(&m, (uint32_t)nsend);
	ck_assert_int_eq(chan_send(sv[0], &m, send_fds, nsend), 0);

	for (size_t i = 0; i < CHAN_MAX_FDS; i++)
		got[i] = -7;
	n = chan_recv(sv[1], buf, got, &nfds);
	ck_assert_int_eq(n, (long)m.len);
	ck_assert(memcmp(buf, m.data, m.len) == 0);
	ck_assert_uint_eq(nfds, nsend);
	for (size_t i = nsend; i < CHAN_MAX_FDS; i++)
		ck_assert_int_eq(got[i], -7);	/* nothing written past *nfds */

	for (size_t i = 0; i < nsend; i++) {
		char word[16], back[16];
		int len = snprintf(word, sizeof(word), "fd%zu", i);

		ck_assert_int_ge(got[i], 0);
		ck_assert_int_ne(got[i], send_fds[i]);
		ck_assert_msg(fcntl(got[i], F_GETFD) & FD_CLOEXEC, "fd %zu not close-on-exec", i);
		/* The new descriptor is the same pipe, and in the order sent. */
		ck_assert_int_eq(write(got[i], word, (size_t)len), len);
		ck_assert_int_eq(read(pipes[i][0], back, sizeof(back)), len);
		ck_assert(memcmp(back, word, (size_t)len) == 0);
	}
	chan_close_fds(got, nfds);
	for (size_t i = 0; i < nsend; i++) {
		ck_assert_int_eq(got[i], -1);
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
	assert_nothing_waiting(sv[1]);
	close(sv[0]);
	close(sv[1]);
	ck_assert_int_eq(count_fds(), before);
}
END_TEST

struct hostile_case {
	const char *name;
	size_t len;		/* datagram length */
	size_t nfds;		/* descriptors attached */
	size_t ncmsg;		/* split over this many SCM_RIGHTS headers */
};

static const struct hostile_case hostile_cases[] = {
	{ "three descriptors", 3, 3, 1 },
	{ "eight descriptors", 3, 8, 1 },
	{ "two headers of two", 3, 4, 2 },
	{ "two headers of one and two", 3, 3, 2 },
	{ "a datagram one byte over CHAN_MSG_MAX, no descriptor", CHAN_MSG_MAX + 1, 0, 1 },
	{ "a datagram one byte over CHAN_MSG_MAX, with a descriptor", CHAN_MSG_MAX + 1, 1, 1 },
	{ "a datagram far over CHAN_MSG_MAX, with two descriptors", 3 * CHAN_MSG_MAX, 2, 1 },
	{ "an empty datagram with a descriptor", 0, 1, 1 },
	{ "an empty datagram with two descriptors", 0, 2, 1 },
};

/*
 * What a confused or compromised peer sends around chan_send(): refused with
 * EBADMSG, every descriptor it carried closed, and the next message is read
 * normally (the channel is not out of step).
 */
START_TEST(hostile_datagram_refused)
{
	const struct hostile_case *c = &hostile_cases[_i];
	static unsigned char data[3 * CHAN_MSG_MAX];
	unsigned char buf[CHAN_MSG_MAX];
	int sv[2], pipes[8][2], send_fds[8], got[CHAN_MAX_FDS];
	size_t nfds = 99;
	struct chan_msg m;
	int before;

	memset(data, CHAN_HELLO, sizeof(data));
	seqpacket_pair(sv);
	/* Big enough for the oversized datagrams. */
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &(int){ 1 << 20 }, sizeof(int)),
			 0);
	before = count_fds();
	for (size_t i = 0; i < c->nfds; i++) {
		/* Non-blocking: a leaked write end shows as EAGAIN, not as a hang. */
		ck_assert_int_eq(pipe2(pipes[i], O_CLOEXEC | O_NONBLOCK), 0);
		send_fds[i] = pipes[i][1];
	}
	raw_send(sv[0], data, c->len, send_fds, c->nfds, c->ncmsg);
	/* Only the in-flight copies remain: the test's own ones go now. */
	for (size_t i = 0; i < c->nfds; i++) {
		close(pipes[i][1]);
		pipes[i][1] = -1;
	}

	errno = 0;
	ck_assert_msg(chan_recv(sv[1], buf, got, &nfds) == -1, "%s: accepted", c->name);
	ck_assert_msg(errno == EBADMSG, "%s: errno %d", c->name, errno);
	ck_assert_uint_eq(nfds, 0);
	/* Every descriptor that arrived is closed again: nobody holds a write end. */
	for (size_t i = 0; i < c->nfds; i++) {
		char ch;

		ck_assert_msg(read(pipes[i][0], &ch, 1) == 0, "%s: write end %zu still open",
			      c->name, i);
		close(pipes[i][0]);
	}
	ck_assert_msg(count_fds() == before, "%s: %d descriptors before, %d after", c->name, before,
		      count_fds());

	chan_msg_init(&m, CHAN_SESSION_END);
	chan_put_u64(&m, 12345);
	ck_assert_int_eq(chan_send(sv[0], &m, NULL, 0), 0);
	ck_assert_int_eq(chan_recv(sv[1], buf, got, &nfds), (long)m.len);
	ck_assert(memcmp(buf, m.data, m.len) == 0);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(recv_nothing_waiting)
{
	int sv[2];

	/* A blocking socket: chan_recv() must still not wait. */
	seqpacket_pair(sv);
	assert_nothing_waiting(sv[1]);
	assert_nothing_waiting(sv[0]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(recv_eof_after_last_message)
{
	unsigned char buf[CHAN_MSG_MAX];
	int sv[2], got[CHAN_MAX_FDS];
	size_t nfds = 99;
	struct chan_msg m;

	seqpacket_pair(sv);
	chan_msg_init(&m, CHAN_TAIL_END);
	ck_assert_int_eq(chan_send(sv[0], &m, NULL, 0), 0);
	close(sv[0]);
	/* The last message first, then EOF, and EOF again. */
	ck_assert_int_eq(chan_recv(sv[1], buf, got, &nfds), 1);
	ck_assert_uint_eq(buf[0], CHAN_TAIL_END);
	nfds = 99;
	ck_assert_int_eq(chan_recv(sv[1], buf, got, &nfds), 0);
	ck_assert_uint_eq(nfds, 0);
	ck_assert_int_eq(chan_recv(sv[1], buf, got, &nfds), 0);
	close(sv[1]);
}
END_TEST

/* A full queue: EAGAIN, even on a blocking socket; nothing sent is lost or torn. */
START_TEST(send_never_blocks)
{
	unsigned char buf[CHAN_MSG_MAX];
	int sv[2], got[CHAN_MAX_FDS];
	size_t nfds;
	struct chan_msg m;
	uint32_t sent = 0;

	memset(buf, 'q', sizeof(buf));
	seqpacket_pair(sv);
	for (;;) {
		chan_msg_init(&m, CHAN_TAIL_CLIENT);
		chan_put_u32(&m, sent);
		chan_put_bytes(&m, buf, 4000);
		errno = 0;
		if (chan_send(sv[0], &m, NULL, 0) != 0)
			break;
		sent++;
		ck_assert_uint_lt(sent, 100000);
	}
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_gt(sent, 0);
	for (uint32_t i = 0; i < sent; i++) {
		struct chan_reader r;
		const unsigned char *p;
		size_t len;
		long n = chan_recv(sv[1], buf, got, &nfds);

		ck_assert_int_eq(n, 1 + 4 + 2 + 4000);
		chan_reader_init(&r, buf, (size_t)n);
		ck_assert_uint_eq(chan_get_u8(&r), CHAN_TAIL_CLIENT);
		ck_assert_uint_eq(chan_get_u32(&r), i);
		chan_get_bytes(&r, &p, &len, 4000);
		ck_assert(chan_reader_done(&r));
	}
	assert_nothing_waiting(sv[1]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* An invalid descriptor is the sender's error, and nothing goes out. */
START_TEST(send_bad_fd_fails)
{
	struct chan_msg m;
	int sv[2], bad = -1;

	seqpacket_pair(sv);
	chan_msg_init(&m, CHAN_BACKEND_UP);
	errno = 0;
	ck_assert_int_eq(chan_send(sv[0], &m, &bad, 1), -1);
	ck_assert_int_eq(errno, EBADF);
	assert_nothing_waiting(sv[1]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* ---- chan_close_all_but() ------------------------------------------------------------ */

#define KEEP_SLOTS 8

struct keep_case {
	const char *name;
	int keep[KEEP_SLOTS];	/* descriptor numbers; -1 and 0-2 as given */
	size_t n;
	int survivors[KEEP_SLOTS];	/* >= 3 only, besides 0-2 */
	size_t nsurvivors;
};

/* The child opens exactly these before the call. */
static const int opened[] = { 3, 4, 5, 9, 10, 11, 40, 41, 200, 1000 };

static const struct keep_case keep_cases[] = {
	{ "nothing kept", { 0 }, 0, { 0 }, 0 },
	{ "one in the middle", { 10 }, 1, { 10 }, 1 },
	{ "unsorted", { 200, 4, 41 }, 3, { 4, 41, 200 }, 3 },
	{ "lowest and highest", { 1000, 3 }, 2, { 3, 1000 }, 2 },
	{ "a contiguous run", { 10, 9, 11 }, 3, { 9, 10, 11 }, 3 },
	{ "duplicates, stdio, negatives and closed numbers",
	  { 40, -1, 2, 40, 0, 7, 5, 1 }, 8, { 5, 40 }, 2 },
	{ "every one", { 3, 4, 5, 9, 10, 11, 40, 41 }, 8, { 3, 4, 5, 9, 10, 11, 40, 41 }, 8 },
};

/* Exit codes of the child, so the parent can tell what went wrong. */
enum { CHILD_OK, CHILD_SETUP, CHILD_STDIO_CLOSED, CHILD_KEPT_CLOSED, CHILD_EXTRA_OPEN };

static int close_all_but_child(const struct keep_case *c)
{
	int base = open("/dev/null", O_RDONLY);
	DIR *dir;
	struct dirent *e;

	if (base < 0)
		return CHILD_SETUP;
	for (int i = 0; i < N(opened); i++) {
		if (opened[i] != base && dup2(base, opened[i]) != opened[i])
			return CHILD_SETUP;
	}
	/* Whatever else the test runner had open is fair game too. */
	chan_close_all_but(c->keep, c->n);
	for (int fd = 0; fd <= 2; fd++) {
		if (!fd_open(fd))
			return CHILD_STDIO_CLOSED;
	}
	for (size_t i = 0; i < c->nsurvivors; i++) {
		if (!fd_open(c->survivors[i]))
			return CHILD_KEPT_CLOSED;
	}
	dir = opendir("/proc/self/fd");
	if (dir == NULL)
		return CHILD_SETUP;
	while ((e = readdir(dir)) != NULL) {
		int fd = atoi(e->d_name);
		bool expected = fd <= 2 || fd == dirfd(dir);

		if (e->d_name[0] == '.')
			continue;
		for (size_t i = 0; i < c->nsurvivors; i++)
			expected = expected || fd == c->survivors[i];
		if (!expected)
			return fd < 250 ? CHILD_EXTRA_OPEN + fd : 255;
	}
	closedir(dir);
	return CHILD_OK;
}

START_TEST(close_all_but_keeps_exactly)
{
	const struct keep_case *c = &keep_cases[_i];
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(close_all_but_child(c));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "%s: child died", c->name);
	ck_assert_msg(WEXITSTATUS(status) != CHILD_SETUP, "%s: child could not set up", c->name);
	ck_assert_msg(WEXITSTATUS(status) != CHILD_STDIO_CLOSED, "%s: stdio closed", c->name);
	ck_assert_msg(WEXITSTATUS(status) != CHILD_KEPT_CLOSED, "%s: a kept fd closed", c->name);
	ck_assert_msg(WEXITSTATUS(status) != 255, "%s: an fd >= 250 left open", c->name);
	ck_assert_msg(WEXITSTATUS(status) == CHILD_OK, "%s: fd %d left open", c->name,
		      WEXITSTATUS(status) - CHILD_EXTRA_OPEN);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("chan");
	TCase *fields = tcase_create("fields");
	TCase *sock = tcase_create("socket");
	TCase *close_tc = tcase_create("close_all_but");

	tcase_add_loop_test(fields, round_trip, 0, N(msg_cases));
	tcase_add_test(fields, sockaddr_round_trip_and_refusals);
	tcase_add_test(fields, wire_format);
	tcase_add_test(fields, largest_message);
	tcase_add_test(fields, every_truncation_refused);
	tcase_add_test(fields, length_past_the_end_refused);
	tcase_add_loop_test(fields, byte_string_over_max_refused, 0, N(long_cases));
	tcase_add_test(fields, string_longer_than_buffer_refused);
	tcase_add_test(fields, trailing_bytes_refused);
	tcase_add_loop_test(fields, string_with_poison_refused, 0, N(poison_strings));
	tcase_add_test(fields, every_printable_string_accepted);
	tcase_add_test(fields, overflow_is_sticky);
	suite_add_tcase(suite, fields);

	tcase_add_test(sock, send_refuses_overflow);
	tcase_add_test(sock, send_refuses_too_many_fds);
	tcase_add_loop_test(sock, send_recv_with_fds, 0, CHAN_MAX_FDS + 1);
	tcase_add_loop_test(sock, hostile_datagram_refused, 0, N(hostile_cases));
	tcase_add_test(sock, recv_nothing_waiting);
	tcase_add_test(sock, recv_eof_after_last_message);
	tcase_add_test(sock, send_never_blocks);
	tcase_add_test(sock, send_bad_fd_fails);
	suite_add_tcase(suite, sock);

	tcase_add_loop_test(close_tc, close_all_but_keeps_exactly, 0, N(keep_cases));
	suite_add_tcase(suite, close_tc);
	return check_run(suite);
}
