/*
 * log.c - operator logging for mailgated.
 *
 * One line per event, either to syslog (facility mail, with the pid) or, in
 * the foreground, to stderr as
 *
 *	YYYY-mm-ddTHH:MM:SS mailgated[pid]: level: prefix: message
 *
 * Lines below the configured level are dropped before they are formatted.
 * Untrusted text is the caller's job (log_sanitize()); as a second line of
 * defence every control character in a finished line becomes '?', so a
 * forgotten sanitize can never forge a second log line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Long enough for any event line; longer ones are cut and marked "...". */
#define LOG_LINE_MAX	2048
#define LOG_IDENT_MAX	32
#define LOG_PREFIX_MAX	32

static struct {
	char ident[LOG_IDENT_MAX];	/* openlog() keeps the pointer: must be static */
	char prefix[LOG_PREFIX_MAX];
	int to_stderr;
	enum mg_log_level level;
} log_state = {
	.ident = "mailgated",
	.prefix = "",
	/* Before log_open() (argument errors, -t) messages must still be seen. */
	.to_stderr = 1,
	.level = MG_LOG_INFO,
};

static const char *const level_names[] = {
	[MG_LOG_OFF] = "off",
	[MG_LOG_ERROR] = "error",
	[MG_LOG_WARNING] = "warning",
	[MG_LOG_INFO] = "info",
	[MG_LOG_DEBUG] = "debug",
};
_Static_assert(sizeof(level_names) / sizeof(level_names[0]) == MG_LOG_DEBUG + 1,
	       "level_names must name every mg_log_level");

/* Copy src into a fixed buffer, cutting it if needed (names are ours, short). */
static void copy_name(char *dst, size_t dstsize, const char *src)
{
	int n = snprintf(dst, dstsize, "%s", src != NULL ? src : "");

	if (n < 0)
		dst[0] = '\0';
	/* n >= dstsize: a cut ident or prefix is still a usable label. */
}

void log_open(const char *ident, int to_stderr, enum mg_log_level level)
{
	if (ident != NULL && ident[0] != '\0')
		copy_name(log_state.ident, sizeof(log_state.ident), ident);
	log_state.to_stderr = to_stderr;
	log_state.level = level;
	if (!to_stderr) {
		/*
		 * LOG_NDELAY opens the socket now, while /dev/log is still
		 * reachable, before a chroot or privilege drop could hide it.
		 */
		openlog(log_state.ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	}
}

void log_reopen(void)
{
	/* After closing every descriptor: back to syslog while /dev/log is reachable. */
	if (!log_state.to_stderr)
		openlog(log_state.ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_set_level(enum mg_log_level level)
{
	log_state.level = level;
}

enum mg_log_level log_get_level(void)
{
	return log_state.level;
}

void log_set_prefix(const char *prefix)
{
	copy_name(log_state.prefix, sizeof(log_state.prefix), prefix);
}

static int syslog_priority(enum mg_log_level level)
{
	switch (level) {
	case MG_LOG_ERROR:
		return LOG_ERR;
	case MG_LOG_WARNING:
		return LOG_WARNING;
	case MG_LOG_INFO:
		return LOG_INFO;
	case MG_LOG_DEBUG:
	case MG_LOG_OFF:
		break;
	}
	return LOG_DEBUG;
}

/* Replace every control byte so that one call is always exactly one line. */
static void neutralize_controls(char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f)
			*s = '?';
	}
}

/* Mark a cut line with "..." so nobody mistakes it for the whole event. */
static void mark_truncated(char *buf, size_t size)
{
	if (size >= 4)
		memcpy(buf + size - 4, "...", 4);
}

/* One write(2) per line, so lines of concurrent children never interleave. */
static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;		/* nowhere left to report a logging failure */
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void emit_stderr(enum mg_log_level level, const char *msg)
{
	char stamp[32];
	char line[LOG_LINE_MAX + 128];
	struct tm tm;
	time_t now = time(NULL);
	int n;

	if (localtime_r(&now, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		copy_name(stamp, sizeof(stamp), "0000-00-00T00:00:00");

	n = snprintf(line, sizeof(line), "%s %s[%ld]: %s: %s%s%s\n",
		     stamp, log_state.ident, (long)getpid(), log_level_name(level),
		     log_state.prefix, log_state.prefix[0] != '\0' ? ": " : "", msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		/* Keep the newline: cut the text before it. */
		n = (int)sizeof(line) - 1;
		mark_truncated(line, sizeof(line) - 1);
		line[n - 1] = '\n';
	}
	write_all(STDERR_FILENO, line, (size_t)n);
}

void log_msg(enum mg_log_level level, const char *fmt, ...)
{
	char msg[LOG_LINE_MAX];
	int saved_errno = errno;	/* callers log and then look at errno */
	va_list ap;
	int n;

	if (level == MG_LOG_OFF || level > log_state.level)
		return;

	va_start(ap, fmt);
	errno = saved_errno;		/* for %m */
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		copy_name(msg, sizeof(msg), "(unformattable log message)");
	else if ((size_t)n >= sizeof(msg))
		mark_truncated(msg, sizeof(msg));
	neutralize_controls(msg);

	if (log_state.to_stderr)
		emit_stderr(level, msg);
	else if (log_state.prefix[0] != '\0')
		syslog(syslog_priority(level), "%s: %s", log_state.prefix, msg);
	else
		syslog(syslog_priority(level), "%s", msg);

	errno = saved_errno;
}

int log_level_parse(const char *name, enum mg_log_level *out)
{
	size_t i;

	if (name == NULL)
		return -1;
	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum mg_log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *log_level_name(enum mg_log_level level)
{
	if ((unsigned)level < sizeof(level_names) / sizeof(level_names[0]))
		return level_names[level];
	return "unknown";
}

char *log_sanitize(char *dst, size_t dstsize, const char *src, size_t srclen)
{
	size_t room, keep, i;

	if (dstsize == 0)
		return dst;
	room = dstsize - 1;
	if (src == NULL)
		srclen = 0;

	/*
	 * srclen is authoritative: a NUL inside the text is data (a client
	 * can send one) and shows as '?', it does not end the copy.
	 */
	if (srclen <= room) {
		keep = srclen;
	} else if (room >= 3) {
		keep = room - 3;
	} else {
		/* Too small for any text: show only that something was cut. */
		memset(dst, '.', room);
		dst[room] = '\0';
		return dst;
	}

	for (i = 0; i < keep; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (keep < srclen) {
		memcpy(dst + keep, "...", 3);
		keep += 3;
	}
	dst[keep] = '\0';
	return dst;
}

/* How many bytes log_quote() writes for c. */
static size_t quoted_len(unsigned char c)
{
	if (c == '"' || c == '\\')
		return 2;
	return c >= 0x20 && c < 0x7f ? 1 : 4;
}

char *log_quote(char *dst, size_t dstsize, const char *src, size_t srclen)
{
	static const char hex[] = "0123456789abcdef";
	size_t out = 0, need = 2, i, room;

	if (dstsize < 6) {
		if (dstsize > 0)
			dst[0] = '\0';
		return dst;
	}
	if (src == NULL)
		srclen = 0;
	for (i = 0; i < srclen; i++)
		need += quoted_len((unsigned char)src[i]);
	/* What the value may take: all of it when it fits, else room for "..." too. */
	room = need < dstsize ? dstsize - 2 : dstsize - 5;
	dst[out++] = '"';
	for (i = 0; i < srclen; i++) {
		unsigned char c = (unsigned char)src[i];
		size_t n = quoted_len(c);

		if (out + n > room)
			break;
		if (n == 1) {
			dst[out++] = (char)c;
		} else if (n == 2) {
			dst[out++] = '\\';
			dst[out++] = (char)c;
		} else {
			dst[out++] = '\\';
			dst[out++] = 'x';
			dst[out++] = hex[c >> 4];
			dst[out++] = hex[c & 0xf];
		}
	}
	if (i < srclen) {
		memcpy(dst + out, "...", 3);
		out += 3;
	}
	dst[out++] = '"';
	dst[out] = '\0';
	return dst;
}
