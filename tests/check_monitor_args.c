/*
 * check_monitor_args.c - check_cleartext_login's command line (monitor/args.c):
 * every option in short and long form, defaults per protocol and -S, and a
 * table of bad command lines that must all be refused (UNKNOWN with usage),
 * including a password on the command line, which the plugin does not take.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "options.h"
#include "check_run.h"

#define TABLE_LEN(t) ((int)(sizeof(t) / sizeof((t)[0])))
#define MAX_ARGS 24

/* Split a command line on single spaces into argv (in a static copy). */
static int make_argv(const char *line, char **argv, char *storage, size_t storage_size)
{
	int argc = 0;
	char *p;

	ck_assert_uint_lt(strlen(line), storage_size);
	memcpy(storage, line, strlen(line) + 1);
	argv[argc++] = "check_cleartext_login";
	for (p = storage; *p != '\0' && argc < MAX_ARGS - 1;) {
		argv[argc++] = p;
		p = strchr(p, ' ');
		if (p == NULL)
			break;
		*p++ = '\0';
	}
	argv[argc] = NULL;
	return argc;
}

static enum mon_args_result parse(const char *line, struct mon_options *opt, char *err,
				  size_t errlen)
{
	static char storage[1024];
	static char *argv[MAX_ARGS];
	int argc = make_argv(line, argv, storage, sizeof(storage));

	return mon_args_parse(argc, argv, opt, err, errlen);
}

START_TEST(test_defaults_imap)
{
	struct mon_options opt;
	char err[256];

	ck_assert_int_eq(parse("-H mail.example.org", &opt, err, sizeof(err)), MON_ARGS_RUN);
	ck_assert_str_eq(opt.host, "mail.example.org");
	ck_assert_uint_eq(opt.port, 143);
	ck_assert_int_eq(opt.protocol, MON_PROTO_IMAP);
	ck_assert_ptr_null(opt.authfile);
	ck_assert_int_eq(opt.warn_days, MON_DEFAULT_WARN_DAYS);
	ck_assert_int_eq(opt.crit_days, MON_DEFAULT_CRIT_DAYS);
	ck_assert_uint_eq(opt.timeout_s, MON_DEFAULT_TIMEOUT);
	ck_assert_int_eq(opt.family, AF_UNSPEC);
	ck_assert(!opt.implicit_tls);
	ck_assert(!opt.injection);
	ck_assert_ptr_null(opt.sni);
	ck_assert_ptr_null(opt.ca_file);
	ck_assert_int_eq(opt.verbose, 0);
}
END_TEST

struct port_case {
	const char *line;
	unsigned port;
};

static const struct port_case port_cases[] = {
	{ "-H h", 143 },
	{ "-H h -P imap", 143 },
	{ "-H h -P pop3", 110 },
	{ "-H h -S", 993 },
	{ "-H h -P pop3 -S", 995 },
	{ "-H h -S -P pop3", 995 },		/* order does not matter */
	{ "-H h -P pop3 -p 1110", 1110 },
	{ "-H h -p 1", 1 },
	{ "-H h -p 65535", 65535 },
	{ "-H h -S -p 143", 143 },		/* -p always wins */
	{ "--hostname=h --protocol=pop3 --ssl", 995 },
};

START_TEST(test_ports)
{
	const struct port_case *tc = &port_cases[_i];
	struct mon_options opt;
	char err[256];

	ck_assert_msg(parse(tc->line, &opt, err, sizeof(err)) == MON_ARGS_RUN, "%s: %s", tc->line,
		      err);
	ck_assert_uint_eq(opt.port, tc->port);
}
END_TEST

START_TEST(test_every_option)
{
	struct mon_options opt;
	char err[256];

	ck_assert_int_eq(parse("-H 192.0.2.1 -p 1143 -P pop3 -a /etc/ccl.auth -w 20 -c 5 -t 7 -4 "
			       "--sni mail.example.org --ca-file /etc/ca.pem --injection -v -v",
			       &opt, err, sizeof(err)),
			 MON_ARGS_RUN);
	ck_assert_str_eq(opt.host, "192.0.2.1");
	ck_assert_uint_eq(opt.port, 1143);
	ck_assert_int_eq(opt.protocol, MON_PROTO_POP3);
	ck_assert_str_eq(opt.authfile, "/etc/ccl.auth");
	ck_assert_int_eq(opt.warn_days, 20);
	ck_assert_int_eq(opt.crit_days, 5);
	ck_assert_uint_eq(opt.timeout_s, 7);
	ck_assert_int_eq(opt.family, AF_INET);
	ck_assert_str_eq(opt.sni, "mail.example.org");
	ck_assert_str_eq(opt.ca_file, "/etc/ca.pem");
	ck_assert(opt.injection);
	ck_assert_int_eq(opt.verbose, 2);
}
END_TEST

START_TEST(test_long_options)
{
	struct mon_options opt;
	char err[256];

	ck_assert_int_eq(parse("--hostname ::1 --port=2000 --authfile=/a --warning=9 --critical=9 "
			       "--timeout=3 --use-ipv6 --ssl --sni=x.example --ca-file=/c --verbose",
			       &opt, err, sizeof(err)),
			 MON_ARGS_RUN);
	ck_assert_str_eq(opt.host, "::1");
	ck_assert_uint_eq(opt.port, 2000);
	ck_assert_str_eq(opt.authfile, "/a");
	ck_assert_int_eq(opt.warn_days, 9);
	ck_assert_int_eq(opt.crit_days, 9);
	ck_assert_uint_eq(opt.timeout_s, 3);
	ck_assert_int_eq(opt.family, AF_INET6);
	ck_assert(opt.implicit_tls);
	ck_assert_int_eq(opt.verbose, 1);
}
END_TEST

START_TEST(test_bracketed_ipv6)
{
	struct mon_options opt;
	char err[256];

	ck_assert_int_eq(parse("-H [2001:db8::1]", &opt, err, sizeof(err)), MON_ARGS_RUN);
	ck_assert_str_eq(opt.host, "2001:db8::1");
}
END_TEST

START_TEST(test_help_and_version)
{
	struct mon_options opt;
	char err[256];

	ck_assert_int_eq(parse("-h", &opt, err, sizeof(err)), MON_ARGS_HELP);
	ck_assert_int_eq(parse("--help", &opt, err, sizeof(err)), MON_ARGS_HELP);
	ck_assert_int_eq(parse("-V", &opt, err, sizeof(err)), MON_ARGS_VERSION);
	ck_assert_int_eq(parse("--version", &opt, err, sizeof(err)), MON_ARGS_VERSION);
	/* Help needs no host. */
	ck_assert_int_eq(parse("-p 5 -h", &opt, err, sizeof(err)), MON_ARGS_HELP);
}
END_TEST

struct bad_case {
	const char *line;
	const char *err_contains;
};

static const struct bad_case bad_cases[] = {
	{ "", "no host" },
	{ "-p 143", "no host" },
	{ "-H", "needs a value" },
	{ "-H h -p", "needs a value" },
	{ "-H h --sni", "needs a value" },
	{ "-H h -p 0", "port" },
	{ "-H h -p 65536", "port" },
	{ "-H h -p -1", "port" },
	{ "-H h -p +1", "port" },
	{ "-H h -p 1x", "port" },
	{ "-H h -p 0x10", "port" },
	{ "-H h -p 99999999999999999999", "port" },
	{ "-H h -P smtp", "protocol" },
	{ "-H h -P IMAP", "protocol" },
	{ "-H h -w -1", "warning" },
	{ "-H h -w 36501", "warning" },
	{ "-H h -w ten", "warning" },
	{ "-H h -c 1.5", "critical" },
	{ "-H h -w 5 -c 10", "exceeds" },
	{ "-H h -c 31", "exceeds" },		/* against the default -w 30 */
	{ "-H h -t 0", "timeout" },
	{ "-H h -t 3601", "timeout" },
	{ "-H h -t 5s", "timeout" },
	{ "-H h -4 -6", "exclude" },
	{ "-H h -S --injection", "injection" },
	{ "-H h extra", "unexpected argument" },
	{ "-H h -x", "unknown option -x" },
	{ "-H h --password=secret", "unknown option --password" },
	{ "-H h --user alice", "unknown option --user" },
	{ "-H h -a", "needs a value" },
	{ "-H h --ca-file=", "CA file" },
	{ "-H h --authfile=", "credentials file" },
	{ "-H h|x", "host" },
	{ "-H []", "host" },
	{ "-H [h", "host" },
	{ "-H h --sni=a|b", "server name" },
};

START_TEST(test_bad)
{
	const struct bad_case *tc = &bad_cases[_i];
	struct mon_options opt;
	char err[256];

	ck_assert_msg(parse(tc->line, &opt, err, sizeof(err)) == MON_ARGS_ERROR, "accepted: '%s'",
		      tc->line);
	ck_assert_msg(strstr(err, tc->err_contains) != NULL, "'%s': error '%s' lacks '%s'",
		      tc->line, err, tc->err_contains);
	/* The error text never echoes a secret-looking value back. */
	ck_assert_ptr_null(strstr(err, "secret"));
}
END_TEST

START_TEST(test_parse_twice)
{
	struct mon_options opt;
	char err[256];

	/* getopt state must not leak from one parse into the next. */
	ck_assert_int_eq(parse("-H a -x", &opt, err, sizeof(err)), MON_ARGS_ERROR);
	ck_assert_int_eq(parse("-H b -p 7", &opt, err, sizeof(err)), MON_ARGS_RUN);
	ck_assert_str_eq(opt.host, "b");
	ck_assert_uint_eq(opt.port, 7);
}
END_TEST

START_TEST(test_long_host)
{
	struct mon_options opt;
	char err[256], line[600];

	memset(line, 0, sizeof(line));
	memcpy(line, "-H ", 3);
	memset(line + 3, 'a', MON_HOST_MAX);
	ck_assert_int_eq(parse(line, &opt, err, sizeof(err)), MON_ARGS_RUN);
	ck_assert_uint_eq(strlen(opt.host), MON_HOST_MAX);
	line[3 + MON_HOST_MAX] = 'a';
	ck_assert_int_eq(parse(line, &opt, err, sizeof(err)), MON_ARGS_ERROR);
}
END_TEST

START_TEST(test_help_text)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	static const char *const mentioned[] = {
		"--hostname", "--port", "--protocol", "--authfile", "--warning", "--critical",
		"--timeout", "--use-ipv4", "--use-ipv6", "--ssl", "--sni", "--ca-file",
		"--injection", "--verbose", "--help", "--version", "username=", "password=",
	};

	ck_assert_ptr_nonnull(f);
	mon_print_help(f);
	fclose(f);
	for (size_t i = 0; i < sizeof(mentioned) / sizeof(mentioned[0]); i++)
		ck_assert_msg(strstr(text, mentioned[i]) != NULL, "--help lacks %s", mentioned[i]);
	free(text);
}
END_TEST

static Suite *args_suite(void)
{
	Suite *s = suite_create("monitor_args");
	TCase *tc = tcase_create("args");

	tcase_add_test(tc, test_defaults_imap);
	tcase_add_loop_test(tc, test_ports, 0, TABLE_LEN(port_cases));
	tcase_add_test(tc, test_every_option);
	tcase_add_test(tc, test_long_options);
	tcase_add_test(tc, test_bracketed_ipv6);
	tcase_add_test(tc, test_help_and_version);
	tcase_add_loop_test(tc, test_bad, 0, TABLE_LEN(bad_cases));
	tcase_add_test(tc, test_parse_twice);
	tcase_add_test(tc, test_long_host);
	tcase_add_test(tc, test_help_text);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(args_suite());
}
