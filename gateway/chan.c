/*
 * chan.c - bounded messages with descriptors over SOCK_SEQPACKET.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "chan.h"

void chan_msg_init(struct chan_msg *m, enum chan_type type)
{
	m->len = 0;
	m->overflow = false;
	chan_put_u8(m, (uint8_t)type);
}

static void put(struct chan_msg *m, const void *p, size_t len)
{
	if (m->overflow || len > sizeof(m->data) - m->len) {
		m->overflow = true;
		return;
	}
	memcpy(m->data + m->len, p, len);
	m->len += len;
}

void chan_put_u8(struct chan_msg *m, uint8_t v)
{
	put(m, &v, 1);
}

void chan_put_u16(struct chan_msg *m, uint16_t v)
{
	unsigned char b[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	put(m, b, sizeof(b));
}

void chan_put_u32(struct chan_msg *m, uint32_t v)
{
	chan_put_u16(m, (uint16_t)(v >> 16));
	chan_put_u16(m, (uint16_t)v);
}

void chan_put_u64(struct chan_msg *m, uint64_t v)
{
	chan_put_u32(m, (uint32_t)(v >> 32));
	chan_put_u32(m, (uint32_t)v);
}

void chan_put_bytes(struct chan_msg *m, const void *p, size_t len)
{
	if (len > UINT16_MAX) {
		m->overflow = true;
		return;
	}
	chan_put_u16(m, (uint16_t)len);
	if (len > 0)
		put(m, p, len);
}

void chan_put_str(struct chan_msg *m, const char *s)
{
	chan_put_bytes(m, s, s != NULL ? strlen(s) : 0);
}

void chan_reader_init(struct chan_reader *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->bad = false;
}

/* The next n bytes, or NULL (and bad) when the message is shorter. */
static const unsigned char *take(struct chan_reader *r, size_t n)
{
	const unsigned char *p;

	if (r->bad || n > r->len - r->off) {
		r->bad = true;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t chan_get_u8(struct chan_reader *r)
{
	const unsigned char *p = take(r, 1);

	return p != NULL ? p[0] : 0;
}

uint16_t chan_get_u16(struct chan_reader *r)
{
	const unsigned char *p = take(r, 2);

	return p != NULL ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

uint32_t chan_get_u32(struct chan_reader *r)
{
	uint32_t hi = chan_get_u16(r);

	return hi << 16 | chan_get_u16(r);
}

uint64_t chan_get_u64(struct chan_reader *r)
{
	uint64_t hi = chan_get_u32(r);

	return hi << 32 | chan_get_u32(r);
}

void chan_get_bytes(struct chan_reader *r, const unsigned char **p, size_t *len, size_t max)
{
	size_t n = chan_get_u16(r);

	*p = NULL;
	*len = 0;
	if (n > max) {
		r->bad = true;
		return;
	}
	*p = take(r, n);
	if (*p != NULL)
		*len = n;
}

void chan_get_str(struct chan_reader *r, char *dst, size_t dstsize)
{
	const unsigned char *p;
	size_t len;

	dst[0] = '\0';
	chan_get_bytes(r, &p, &len, dstsize - 1);
	for (size_t i = 0; i < len; i++) {
		if (p[i] < 0x20 || p[i] > 0x7e) {
			r->bad = true;
			return;
		}
	}
	if (p != NULL)
		memcpy(dst, p, len);
	dst[len] = '\0';
}

bool chan_reader_done(const struct chan_reader *r)
{
	return !r->bad && r->off == r->len;
}

int chan_send(int sock, const struct chan_msg *m, const int *fds, size_t nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * CHAN_MAX_FDS)];
	} control;
	struct iovec iov = { .iov_base = (void *)m->data, .iov_len = m->len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (m->overflow || nfds > CHAN_MAX_FDS) {
		errno = EMSGSIZE;
		return -1;
	}
	if (nfds > 0) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	return 0;
}

void chan_close_fds(int *fds, size_t nfds)
{
	for (size_t i = 0; i < nfds; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

long chan_recv(int sock, unsigned char *buf, int *fds, size_t *nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * CHAN_MAX_FDS)];
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = CHAN_MSG_MAX };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.buf, .msg_controllen = sizeof(control.buf),
	};
	bool bad = false;
	ssize_t n;

	*nfds = 0;
	do {
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		size_t count;
		int got[CHAN_MAX_FDS * 2];

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (count > sizeof(got) / sizeof(got[0]))
			count = sizeof(got) / sizeof(got[0]);
		memcpy(got, CMSG_DATA(c), count * sizeof(int));
		for (size_t i = 0; i < count; i++) {
			if (*nfds < CHAN_MAX_FDS) {
				fds[(*nfds)++] = got[i];
			} else {
				close(got[i]);
				bad = true;
			}
		}
	}
	if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || (n == 0 && *nfds > 0))
		bad = true;
	if (bad) {
		chan_close_fds(fds, *nfds);
		*nfds = 0;
		errno = EBADMSG;
		return -1;
	}
	return (long)n;
}

static void close_range_fallback(unsigned lo, unsigned hi)
{
	long max;

	if (close_range(lo, hi, 0) == 0)
		return;
	/* Kernels before 5.9: one by one, up to the descriptor limit. */
	max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (unsigned long fd = lo; fd <= hi && fd < (unsigned long)max; fd++)
		close((int)fd);
}

void chan_close_all_but(const int *keep, size_t n)
{
	int sorted[CHAN_KEEP_MAX];
	unsigned lo = 3;

	if (n > sizeof(sorted) / sizeof(sorted[0]))
		n = sizeof(sorted) / sizeof(sorted[0]);
	for (size_t i = 0; i < n; i++) {
		size_t j = i;

		while (j > 0 && sorted[j - 1] > keep[i]) {
			sorted[j] = sorted[j - 1];
			j--;
		}
		sorted[j] = keep[i];
	}
	for (size_t i = 0; i < n; i++) {
		if (sorted[i] < (int)lo)
			continue;
		if ((unsigned)sorted[i] > lo)
			close_range_fallback(lo, (unsigned)sorted[i] - 1);
		lo = (unsigned)sorted[i] + 1;
	}
	close_range_fallback(lo, ~0U);
	closelog();
}

void chan_put_sockaddr(struct chan_msg *m, const struct sockaddr_storage *sa)
{
	size_t len = sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					       : sizeof(struct sockaddr_in);

	chan_put_bytes(m, sa, len);
}

bool chan_get_sockaddr(struct chan_reader *r, struct sockaddr_storage *sa)
{
	const unsigned char *p;
	size_t len;

	memset(sa, 0, sizeof(*sa));
	chan_get_bytes(r, &p, &len, sizeof(*sa));
	if (p == NULL)
		return false;
	memcpy(sa, p, len);
	if ((sa->ss_family == AF_INET && len == sizeof(struct sockaddr_in)) ||
	    (sa->ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6)))
		return true;
	r->bad = true;
	return false;
}
