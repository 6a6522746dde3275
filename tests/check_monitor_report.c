/*
 * check_monitor_report.c - what the plugin prints and decides from numbers
 * (monitor/state.c, report.c, transcript.c, authfile.c): state ordering,
 * the expiry thresholds at and around their edges, the exact status line
 * with performance data, long and hostile finding texts, password masking
 * in the -v transcript, and the dummy credentials used without a file (the
 * file itself is lib/credfile.c, tested in check_credfile.c).
 */
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authfile.h"
#include "report.h"
#include "state.h"
#include "transcript.h"
#include "check_run.h"

#define TABLE_LEN(t) ((int)(sizeof(t) / sizeof((t)[0])))

/* ---- states and thresholds ------------------------------------------------------- */

START_TEST(test_state_names)
{
	ck_assert_str_eq(mon_state_name(MON_OK), "OK");
	ck_assert_str_eq(mon_state_name(MON_WARNING), "WARNING");
	ck_assert_str_eq(mon_state_name(MON_CRITICAL), "CRITICAL");
	ck_assert_str_eq(mon_state_name(MON_UNKNOWN), "UNKNOWN");
	/* The exit codes of the guidelines. */
	ck_assert_int_eq(MON_OK, 0);
	ck_assert_int_eq(MON_WARNING, 1);
	ck_assert_int_eq(MON_CRITICAL, 2);
	ck_assert_int_eq(MON_UNKNOWN, 3);
}
END_TEST

START_TEST(test_state_worse)
{
	static const enum mon_state order[] = { MON_OK, MON_UNKNOWN, MON_WARNING, MON_CRITICAL };

	for (int a = 0; a < 4; a++)
		for (int b = 0; b < 4; b++)
			ck_assert_int_eq(mon_state_worse(order[a], order[b]), order[a > b ? a : b]);
}
END_TEST

struct days_case {
	long days;
	int warn, crit;
	enum mon_state want;
};

static const struct days_case days_cases[] = {
	{ 365, 30, 14, MON_OK },
	{ 30, 30, 14, MON_OK },		/* "fewer than 30 days" */
	{ 29, 30, 14, MON_WARNING },
	{ 14, 30, 14, MON_WARNING },
	{ 13, 30, 14, MON_CRITICAL },
	{ 0, 30, 14, MON_CRITICAL },
	{ -1, 30, 14, MON_CRITICAL },		/* expired */
	{ -400, 30, 14, MON_CRITICAL },
	{ 0, 0, 0, MON_OK },			/* thresholds 0: only expiry counts */
	{ -1, 0, 0, MON_CRITICAL },
	{ 5, 10, 10, MON_CRITICAL },		/* equal thresholds: CRITICAL wins */
	{ 10, 10, 10, MON_OK },
	{ 4, 10, 2, MON_WARNING },		/* the integration test's short-lived certificate */
	{ 4, 10, 8, MON_CRITICAL },
};

START_TEST(test_days)
{
	const struct days_case *tc = &days_cases[_i];

	ck_assert_msg(mon_days_state(tc->days, tc->warn, tc->crit) == tc->want,
		      "%ld days, -w %d -c %d: want %s", tc->days, tc->warn, tc->crit,
		      mon_state_name(tc->want));
}
END_TEST

/* ---- the status line ---------------------------------------------------------------- */

START_TEST(test_format_ok)
{
	struct mon_report r;
	char line[MON_STATUS_MAX];

	report_init(&r, 30, 14);
	snprintf(r.subject, sizeof(r.subject), "IMAP mail.example.org:143");
	report_add(&r, MON_OK, "cleartext LOGIN refused by policy (%s)", "NO [PRIVACYREQUIRED] x");
	report_add(&r, MON_OK, "TLSv1.3");
	r.have_connect_time = true;
	r.connect_time = 0.0015;
	r.total_time = 0.25;
	r.have_cert_days = true;
	r.cert_days = 364;
	ck_assert_int_eq(report_state(&r), MON_OK);
	report_format(&r, line, sizeof(line));
	ck_assert_str_eq(line, "CLEARTEXT OK - IMAP mail.example.org:143: cleartext LOGIN refused "
			       "by policy (NO [PRIVACYREQUIRED] x); TLSv1.3 | "
			       "connect_time=0.001500s;;;0 time=0.250000s;;;0 cert_days=364;30:;14:");
}
END_TEST

START_TEST(test_format_worst_first)
{
	struct mon_report r;
	char line[MON_STATUS_MAX];

	report_init(&r, 30, 14);
	report_add(&r, MON_OK, "ok one");
	report_add(&r, MON_WARNING, "warn one");
	report_add(&r, MON_UNKNOWN, "unknown one");
	report_add(&r, MON_CRITICAL, "crit one");
	report_add(&r, MON_WARNING, "warn two");
	report_add(&r, MON_CRITICAL, "crit two");
	ck_assert_int_eq(report_state(&r), MON_CRITICAL);
	report_format(&r, line, sizeof(line));
	/* No subject, no connect time, no certificate: only what is known. */
	ck_assert_str_eq(line, "CLEARTEXT CRITICAL - crit one; crit two; warn one; warn two; "
			       "unknown one; ok one | time=0.000000s;;;0");
}
END_TEST

START_TEST(test_format_empty)
{
	struct mon_report r;
	char line[MON_STATUS_MAX];

	report_init(&r, 30, 14);
	ck_assert_int_eq(report_state(&r), MON_UNKNOWN);
	report_format(&r, line, sizeof(line));
	ck_assert_str_eq(line, "CLEARTEXT UNKNOWN - no result | time=0.000000s;;;0");
}
END_TEST

START_TEST(test_format_expired_perfdata)
{
	struct mon_report r;
	char line[MON_STATUS_MAX];

	report_init(&r, 10, 0);
	r.have_cert_days = true;
	r.cert_days = -3;
	report_add(&r, MON_CRITICAL, "certificate expired 3 days ago");
	report_format(&r, line, sizeof(line));
	ck_assert_ptr_nonnull(strstr(line, " cert_days=-3;10:;0:"));
}
END_TEST

START_TEST(test_hostile_text)
{
	struct mon_report r;
	char line[MON_STATUS_MAX];

	report_init(&r, 30, 14);
	/* A server's answer could try to fake performance data or a second line. */
	report_add(&r, MON_OK, "answer '%s'", "x | time=99s\r\nCLEARTEXT OK\x1b[0m\xff");
	report_format(&r, line, sizeof(line));
	ck_assert_str_eq(line, "CLEARTEXT OK - answer 'x / time=99s??CLEARTEXT OK?[0m?' | "
			       "time=0.000000s;;;0");
	ck_assert_ptr_null(strchr(line, '\n'));
	ck_assert_ptr_eq(strchr(line, '|'), strrchr(line, '|'));
}
END_TEST

START_TEST(test_long_finding_cut)
{
	struct mon_report r;
	char big[1000];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	report_init(&r, 30, 14);
	report_add(&r, MON_WARNING, "%s", big);
	ck_assert_uint_eq(strlen(r.findings[0].text), MON_FINDING_MAX - 1);
	ck_assert_str_eq(r.findings[0].text + MON_FINDING_MAX - 4, "...");
}
END_TEST

START_TEST(test_small_buffer_keeps_perfdata)
{
	struct mon_report r;
	char line[96];
	size_t len;

	report_init(&r, 30, 14);
	r.have_cert_days = true;
	r.cert_days = 5;
	for (int i = 0; i < 10; i++)
		report_add(&r, MON_CRITICAL, "a rather long finding number %d", i);
	len = report_format(&r, line, sizeof(line));
	ck_assert_uint_eq(len, strlen(line));
	ck_assert_uint_lt(len, sizeof(line));
	ck_assert_msg(strstr(line, "...") != NULL, "%s", line);
	ck_assert_msg(strstr(line, "| time=0.000000s;;;0 cert_days=5;30:;14:") != NULL, "%s", line);
}
END_TEST

START_TEST(test_full_table_keeps_worst)
{
	struct mon_report r;
	char line[MON_STATUS_MAX];

	report_init(&r, 30, 14);
	for (int i = 0; i < MON_MAX_FINDINGS; i++)
		report_add(&r, MON_OK, "ok %d", i);
	report_add(&r, MON_CRITICAL, "the one that matters");
	report_add(&r, MON_OK, "one too many");
	ck_assert_uint_eq(r.nfindings, MON_MAX_FINDINGS);
	ck_assert_int_eq(report_state(&r), MON_CRITICAL);
	report_format(&r, line, sizeof(line));
	ck_assert_ptr_nonnull(strstr(line, "CLEARTEXT CRITICAL - the one that matters; ok "));
	ck_assert_ptr_nonnull(strstr(line, "(2 more)"));
}
END_TEST

START_TEST(test_status_line_shape)
{
	/* The guidelines' grammar: 'label'=value[UOM];[warn];[crit];[min];[max], space-separated. */
	static const char pattern[] =
		"^CLEARTEXT (OK|WARNING|CRITICAL|UNKNOWN) - [^|]+ \\| "
		"([a-z_]+=-?[0-9.]+(s|)(;[0-9:]*){0,4})( [a-z_]+=-?[0-9.]+(s|)(;[0-9:]*){0,4})*$";
	struct mon_report r;
	char line[MON_STATUS_MAX];
	regex_t rx;

	ck_assert_int_eq(regcomp(&rx, pattern, REG_EXTENDED | REG_NOSUB), 0);
	report_init(&r, 30, 14);
	report_add(&r, MON_WARNING, "LOGINDISABLED not advertised before STARTTLS");
	r.have_connect_time = true;
	r.connect_time = 0.01;
	r.total_time = 1.5;
	r.have_cert_days = true;
	r.cert_days = 100;
	report_format(&r, line, sizeof(line));
	ck_assert_msg(regexec(&rx, line, 0, NULL, 0) == 0, "%s", line);
	regfree(&rx);
}
END_TEST

/* ---- transcript masking ---------------------------------------------------------------- */

struct mask_case {
	const char *text, *secret;
	size_t outsize;
	const char *want;
};

static const struct mask_case mask_cases[] = {
	{ "CCL2 LOGIN \"alice\" \"s3cret\"", "\"s3cret\"", 100, "CCL2 LOGIN \"alice\" ******" },
	{ "PASS s3cret", "s3cret", 100, "PASS ******" },
	{ "s3crets3cret", "s3cret", 100, "************" },
	{ "no secret here", "s3cret", 100, "no secret here" },
	{ "PASS s3cre", "s3cret", 100, "PASS s3cre" },	/* a prefix is all the line holds */
	{ "anything", "", 100, "anything" },
	/* Cut in the middle of the mask, never in the middle of the secret. */
	{ "PASS s3cret", "s3cret", 9, "PASS ***" },
	{ "PASS s3cret", "s3cret", 6, "PASS " },
	{ "PASS s3cret", "s3cret", 1, "" },
	{ "abc", "abcd", 100, "abc" },
};

START_TEST(test_mask)
{
	const struct mask_case *tc = &mask_cases[_i];
	char out[128];
	size_t len;

	memset(out, 'Z', sizeof(out));
	len = mon_mask_secret(tc->text, strlen(tc->text), tc->secret, strlen(tc->secret), out,
			      tc->outsize);
	ck_assert_str_eq(out, tc->want);
	ck_assert_uint_eq(len, strlen(tc->want));
	ck_assert_int_eq(out[tc->outsize], 'Z');
}
END_TEST

START_TEST(test_transcript)
{
	static struct mon_transcript t;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	transcript_init(&t, true);
	transcript_add(&t, "S: ", "* OK ready\x1b", 11);
	transcript_add_masked(&t, "C: ", "CCL1 LOGIN \"u\" \"pw\\\"x\"", 22, "\"pw\\\"x\"", 7);
	transcript_note(&t, "TLS established: %s", "TLSv1.3");
	for (int i = 0; i < MON_TRANSCRIPT_LINES + 5; i++)
		transcript_add(&t, "S: ", "x", 1);
	f = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(f);
	transcript_print(&t, f);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(text, "S: * OK ready?\nC: CCL1 LOGIN \"u\" ******\n"
					   "-- TLS established: TLSv1.3\n"));
	ck_assert_ptr_null(strstr(text, "pw"));
	ck_assert_ptr_nonnull(strstr(text, "-- (8 more transcript lines not shown)\n"));
	free(text);
}
END_TEST

START_TEST(test_transcript_disabled)
{
	static struct mon_transcript t;

	transcript_init(&t, false);
	transcript_add(&t, "S: ", "x", 1);
	transcript_note(&t, "y");
	ck_assert_uint_eq(t.n, 0);
}
END_TEST

/* ---- the dummy credentials (the credentials file is check_credfile.c's) ---------- */

START_TEST(test_dummy)
{
	struct mg_credentials a, b;

	ck_assert_int_eq(authfile_dummy(&a), 0);
	ck_assert_int_eq(authfile_dummy(&b), 0);
	ck_assert_str_eq(a.user, MON_DUMMY_USER);
	ck_assert_uint_eq(a.user_len, strlen(MON_DUMMY_USER));
	ck_assert_uint_eq(a.password_len, 36);
	ck_assert_uint_eq(strlen(a.password), 36);
	/* Fresh each time: nobody can set up an account that matches it. */
	ck_assert_str_ne(a.password, b.password);
}
END_TEST

static Suite *report_suite(void)
{
	Suite *s = suite_create("monitor_report");
	TCase *tc = tcase_create("report");

	tcase_add_test(tc, test_state_names);
	tcase_add_test(tc, test_state_worse);
	tcase_add_loop_test(tc, test_days, 0, TABLE_LEN(days_cases));
	tcase_add_test(tc, test_format_ok);
	tcase_add_test(tc, test_format_worst_first);
	tcase_add_test(tc, test_format_empty);
	tcase_add_test(tc, test_format_expired_perfdata);
	tcase_add_test(tc, test_hostile_text);
	tcase_add_test(tc, test_long_finding_cut);
	tcase_add_test(tc, test_small_buffer_keeps_perfdata);
	tcase_add_test(tc, test_full_table_keeps_worst);
	tcase_add_test(tc, test_status_line_shape);
	tcase_add_loop_test(tc, test_mask, 0, TABLE_LEN(mask_cases));
	tcase_add_test(tc, test_transcript);
	tcase_add_test(tc, test_transcript_disabled);
	tcase_add_test(tc, test_dummy);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(report_suite());
}
