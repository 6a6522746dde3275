/*
 * log.h - operator logging: one key=value line per event, to syslog (facility
 * mail) or to stderr in the foreground. Untrusted text goes through
 * log_sanitize() first; passwords and SASL blobs never reach these functions.
 */
#ifndef MG_LOG_H
#define MG_LOG_H

#include <stddef.h>

enum mg_log_level {
	MG_LOG_OFF,
	MG_LOG_ERROR,
	MG_LOG_WARNING,
	MG_LOG_INFO,
	MG_LOG_DEBUG
};

void log_open(const char *ident, int to_stderr, enum mg_log_level level);
/* Open the syslog socket again (after closing every descriptor, before a chroot). */
void log_reopen(void);
void log_set_level(enum mg_log_level level);
enum mg_log_level log_get_level(void);

/* A prefix added to every line of this process, e.g. "session" or "master". */
void log_set_prefix(const char *prefix);

void log_msg(enum mg_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...)	 log_msg(MG_LOG_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(MG_LOG_WARNING, __VA_ARGS__)
#define log_info(...)	 log_msg(MG_LOG_INFO, __VA_ARGS__)
#define log_debug(...)	 log_msg(MG_LOG_DEBUG, __VA_ARGS__)

/* Parse "off", "error", "warning", "info", "debug". Returns 0 or -1. */
int log_level_parse(const char *name, enum mg_log_level *out);
const char *log_level_name(enum mg_log_level level);

/*
 * Copy at most srclen bytes of untrusted text into dst (always terminated),
 * replacing anything that is not printable ASCII with '?', and truncating with
 * "..." when it does not fit. Returns dst.
 */
char *log_sanitize(char *dst, size_t dstsize, const char *src, size_t srclen);

/*
 * A value a client chose, for a field of a log line: src[0..srclen) in
 * double quotes, with '"' and '\\' escaped by a backslash and every byte that
 * is not printable ASCII as \xNN, so no value can end its field or add one
 * (user="a\" rip=1.2.3.4" stays one field). Cut with "..." inside the
 * quotes when it does not fit; dstsize must be at least 6 ("\"...\""),
 * else dst is "". Returns dst.
 */
char *log_quote(char *dst, size_t dstsize, const char *src, size_t srclen);

#endif
