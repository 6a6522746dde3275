/*
 * check_log.c - unit tests for log.c: log_sanitize() (control bytes, 8-bit,
 * NUL, truncation with "...", exact fit, tiny buffers), log_quote() (values
 * that try to end their field or add one, escapes never cut in half), the
 * level names, and
 * the shape and filtering of stderr lines.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "check_run.h"

struct sanitize_case {
	const char *src;
	size_t srclen;
	size_t dstsize;
	const char *want;
};

static const struct sanitize_case sanitize_cases[] = {
	{ "hello", 5, 16, "hello" },
	{ "", 0, 16, "" },
	{ "a b~", 4, 16, "a b~" },			/* space and '~' are printable */
	{ "a\r\nb", 4, 16, "a??b" },
	{ "\tx\x7f", 3, 16, "?x?" },
	{ "\x1b[31mred", 8, 16, "?[31mred" },		/* no terminal escapes */
	{ "caf\xc3\xa9", 5, 16, "caf??" },		/* 8-bit bytes */
	{ "\x80\xff", 2, 16, "??" },
	{ "a\0b", 3, 16, "a?b" },			/* srclen rules, NUL is data */
	{ "abcdef", 3, 16, "abc" },			/* only srclen bytes */
	{ "abcdefgh", 8, 9, "abcdefgh" },		/* exact fit: no dots */
	{ "abcdefghi", 9, 9, "abcde..." },		/* one over */
	{ "abcdefghijklmnopqrstuvwxyz", 26, 10, "abcdef..." },
	{ "a\nbcdefghij", 11, 8, "a?bc..." },		/* sanitized and cut */
	{ "abc", 3, 4, "abc" },
	{ "abcd", 4, 4, "..." },			/* room only for the mark */
	{ "abcd", 4, 3, ".." },				/* tiny buffers still say "cut" */
	{ "abcd", 4, 2, "." },
	{ "abcd", 4, 1, "" },
	{ NULL, 0, 8, "" },
};

START_TEST(test_sanitize)
{
	const struct sanitize_case *tc = &sanitize_cases[_i];
	char dst[64];

	memset(dst, 'Z', sizeof(dst));
	ck_assert_ptr_eq(log_sanitize(dst, tc->dstsize, tc->src, tc->srclen), dst);
	ck_assert_str_eq(dst, tc->want);
	/* Never a byte past dstsize. */
	ck_assert_int_eq(dst[tc->dstsize], 'Z');
}
END_TEST

static const struct sanitize_case quote_cases[] = {
	{ "alice", 5, 16, "\"alice\"" },
	{ "", 0, 16, "\"\"" },
	{ NULL, 0, 16, "\"\"" },
	{ "a\" rip=1.2.3.4", 14, 64, "\"a\\\" rip=1.2.3.4\"" },	/* one field, whatever it says */
	{ "back\\slash", 10, 64, "\"back\\\\slash\"" },
	{ "a\r\nb", 4, 64, "\"a\\x0d\\x0ab\"" },
	{ "caf\xc3\xa9", 5, 64, "\"caf\\xc3\\xa9\"" },
	{ "a\0b", 3, 64, "\"a\\x00b\"" },			/* srclen rules, NUL is data */
	{ "abcdefghij", 10, 13, "\"abcdefghij\"" },		/* exact fit: no dots */
	{ "abcdefghij", 10, 12, "\"abcdef...\"" },
	{ "abcdefghij", 10, 11, "\"abcde...\"" },
	{ "abcdefghij", 10, 10, "\"abcd...\"" },
	{ "ab\"cdefgh", 9, 10, "\"ab\\\"...\"" },
	{ "ab\"cdefgh", 9, 9, "\"ab...\"" },		/* an escape is never cut in half */
	{ "\x01\x02\x03", 3, 12, "\"\\x01...\"" },
	{ "abc", 3, 6, "\"abc\"" },
	{ "abcd", 4, 6, "\"...\"" },
	{ "a", 1, 6, "\"a\"" },
	{ "abc", 3, 5, "" },				/* too small for any value */
};

START_TEST(test_quote)
{
	const struct sanitize_case *tc = &quote_cases[_i];
	char dst[80];

	memset(dst, 'Z', sizeof(dst));
	ck_assert_ptr_eq(log_quote(dst, tc->dstsize, tc->src, tc->srclen), dst);
	ck_assert_str_eq(dst, tc->want);
	ck_assert_int_eq(dst[tc->dstsize], 'Z');
}
END_TEST

/* Every byte value: one field, parsed back to the same bytes. */
START_TEST(test_quote_every_byte)
{
	char src[256], dst[1100], back[256];
	size_t n = 0;

	for (int c = 0; c < 256; c++)
		src[c] = (char)c;
	log_quote(dst, sizeof(dst), src, sizeof(src));
	ck_assert_int_eq(dst[0], '"');
	for (const char *p = dst + 1; *p != '"'; p++) {
		ck_assert(*p >= 0x20 && *p < 0x7f);
		if (*p == '\\' && p[1] == 'x') {
			unsigned v;

			ck_assert_int_eq(sscanf(p + 2, "%2x", &v), 1);
			back[n++] = (char)v;
			p += 3;
		} else if (*p == '\\') {
			back[n++] = *++p;
		} else {
			back[n++] = *p;
		}
		ck_assert_uint_le(n, sizeof(back));
	}
	ck_assert_uint_eq(n, sizeof(src));
	ck_assert(memcmp(back, src, sizeof(src)) == 0);
}
END_TEST

START_TEST(test_sanitize_zero_size)
{
	char dst[4] = "ZZZ";

	ck_assert_ptr_eq(log_sanitize(dst, 0, "abc", 3), dst);
	ck_assert_str_eq(dst, "ZZZ");
}
END_TEST

/* Every byte value: printable ASCII passes, everything else becomes '?'. */
START_TEST(test_sanitize_every_byte)
{
	char src[256], dst[257];
	int c;

	for (c = 0; c < 256; c++)
		src[c] = (char)c;
	log_sanitize(dst, sizeof(dst), src, sizeof(src));
	ck_assert_uint_eq(strlen(dst), 256);
	for (c = 0; c < 256; c++) {
		if (c >= 0x20 && c <= 0x7e)
			ck_assert_int_eq(dst[c], c);
		else
			ck_assert_int_eq(dst[c], '?');
	}
}
END_TEST

static const struct {
	const char *name;
	enum mg_log_level level;
} level_table[] = {
	{ "off", MG_LOG_OFF },
	{ "error", MG_LOG_ERROR },
	{ "warning", MG_LOG_WARNING },
	{ "info", MG_LOG_INFO },
	{ "debug", MG_LOG_DEBUG },
};

START_TEST(test_level_parse_good)
{
	enum mg_log_level level = (enum mg_log_level)-1;

	ck_assert_int_eq(log_level_parse(level_table[_i].name, &level), 0);
	ck_assert_int_eq(level, level_table[_i].level);
	ck_assert_str_eq(log_level_name(level_table[_i].level), level_table[_i].name);
}
END_TEST

static const char *const bad_level_names[] = {
	"", "INFO", "Info", "inf", "infos", "warn", "err", " info", "info ", "5",
};

START_TEST(test_level_parse_bad)
{
	enum mg_log_level level = MG_LOG_DEBUG;

	ck_assert_int_eq(log_level_parse(bad_level_names[_i], &level), -1);
	ck_assert_int_eq(level, MG_LOG_DEBUG);		/* untouched */
}
END_TEST

START_TEST(test_level_parse_null_and_unknown_name)
{
	enum mg_log_level level = MG_LOG_ERROR;

	ck_assert_int_eq(log_level_parse(NULL, &level), -1);
	ck_assert_int_eq(level, MG_LOG_ERROR);
	ck_assert_str_eq(log_level_name((enum mg_log_level)42), "unknown");
}
END_TEST

/*
 * Run fn with stderr sent to a temporary file; return what was written
 * (caller frees). Each check test runs in its own process, so borrowing
 * fd 2 is safe.
 */
static char *capture_stderr(void (*fn)(void))
{
	char path[] = "/tmp/check_log.XXXXXX";
	int fd = mkstemp(path), saved;
	char *buf = calloc(1, 8192);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	ck_assert_ptr_nonnull(buf);
	unlink(path);
	saved = dup(STDERR_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
	fn();
	ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
	close(saved);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	n = read(fd, buf, 8191);
	ck_assert_int_ge(n, 0);
	close(fd);
	return buf;
}

static void log_some_lines(void)
{
	log_open("mailgated", 1, MG_LOG_INFO);
	log_set_prefix("master");
	errno = EAGAIN;
	log_info("event=start port=%d", 143);
	ck_assert_int_eq(errno, EAGAIN);	/* logging keeps errno */
	log_debug("hidden at info");
	log_error("user=%s", "a\nfake line");
	log_set_prefix(NULL);
	log_warning("no prefix");
	log_set_level(MG_LOG_OFF);
	ck_assert_int_eq(log_get_level(), MG_LOG_OFF);
	log_error("hidden when off");
	log_set_level(MG_LOG_DEBUG);
	log_debug("shown at debug");
	log_msg(MG_LOG_OFF, "never a level of its own");
}

START_TEST(test_stderr_lines)
{
	char *out = capture_stderr(log_some_lines);
	char pattern[512];
	regex_t re;
	int rc;

	rc = snprintf(pattern, sizeof(pattern),
		 "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2} mailgated\\[%ld\\]: "
		 "info: master: event=start port=143\n"
		 "[0-9T:-]{19} mailgated\\[%ld\\]: error: master: user=a\\?fake line\n"
		 "[0-9T:-]{19} mailgated\\[%ld\\]: warning: no prefix\n"
		 "[0-9T:-]{19} mailgated\\[%ld\\]: debug: shown at debug\n$",
		 (long)getpid(), (long)getpid(), (long)getpid(), (long)getpid());
	ck_assert(rc > 0 && (size_t)rc < sizeof(pattern));
	ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	rc = regexec(&re, out, 0, NULL, 0);
	ck_assert_msg(rc == 0, "unexpected log output:\n%s", out);
	regfree(&re);
	free(out);
}
END_TEST

static void log_long_line(void)
{
	static char big[5000];

	memset(big, 'x', sizeof(big) - 1);
	log_open("mailgated", 1, MG_LOG_INFO);
	log_set_prefix("");
	log_info("%s", big);
}

START_TEST(test_stderr_long_line_is_cut)
{
	char *out = capture_stderr(log_long_line);
	size_t len = strlen(out);

	ck_assert_uint_gt(len, 1000);
	ck_assert_uint_lt(len, 2200);
	ck_assert_str_eq(out + len - 4, "...\n");
	ck_assert_ptr_eq(strchr(out, '\n'), out + len - 1);	/* one line */
	free(out);
}
END_TEST

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("sanitize");

	tcase_add_loop_test(tc, test_sanitize, 0,
			    (int)(sizeof(sanitize_cases) / sizeof(sanitize_cases[0])));
	tcase_add_test(tc, test_sanitize_zero_size);
	tcase_add_loop_test(tc, test_quote, 0, sizeof(quote_cases) / sizeof(quote_cases[0]));
	tcase_add_test(tc, test_quote_every_byte);
	tcase_add_test(tc, test_sanitize_every_byte);
	suite_add_tcase(s, tc);

	tc = tcase_create("levels");
	tcase_add_loop_test(tc, test_level_parse_good, 0,
			    (int)(sizeof(level_table) / sizeof(level_table[0])));
	tcase_add_loop_test(tc, test_level_parse_bad, 0,
			    (int)(sizeof(bad_level_names) / sizeof(bad_level_names[0])));
	tcase_add_test(tc, test_level_parse_null_and_unknown_name);
	suite_add_tcase(s, tc);

	tc = tcase_create("stderr");
	tcase_add_test(tc, test_stderr_lines);
	tcase_add_test(tc, test_stderr_long_line_is_cut);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(log_suite());
}
