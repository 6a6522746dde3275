/*
 * check_engine_servers.c - the listeners' TLS server contexts: which
 * listeners share one, what a certificate_dir load reports (skipped pairs
 * with their path, the count, certificates about to expire), and that the
 * check (-t) fails on a pair that start-up would skip. Certificates are
 * made here, at test time, with the openssl command.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_run.h"
#include "config.h"
#include "engine_servers.h"

static char dir[64];
static char conf[128];

/* openssl req -x509: a self-signed pair for name at PATH.pem / PATH.key. */
static void make_pair(const char *stem, const char *name, int days)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout '%s/%s.key' -out '%s/%s.pem' -subj '/CN=%s' -days %d "
		 "-addext 'subjectAltName=DNS:%s' 2>/dev/null",
		 dir, stem, dir, stem, name, days, name);
	ck_assert_int_eq(system(cmd), 0);
}

static void setup(void)
{
	char cmd[256];

	snprintf(dir, sizeof(dir), "/tmp/check_engine_servers.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/mailgate.conf", dir);
	snprintf(cmd, sizeof(cmd), "mkdir '%s/d' '%s/own'", dir, dir);
	ck_assert_int_eq(system(cmd), 0);
	make_pair("default", "default.test", 30);
	make_pair("d/a", "a.test", 30);
	make_pair("d/soon", "soon.test", 3);
	make_pair("own/o", "o.test", 30);
	/* A pair whose key belongs to another certificate. */
	make_pair("d/b", "b.test", 30);
	snprintf(cmd, sizeof(cmd), "cp '%s/d/a.key' '%s/d/b.key'", dir, dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Four listeners: two alike, one of the other protocol, one with its own directory. */
static struct mg_config *load(const char *tls_dir)
{
	struct mg_config *cfg = NULL;
	char err[512] = "";
	FILE *f = fopen(conf, "w");

	ck_assert_ptr_nonnull(f);
	fprintf(f, "tls {\n certificate = \"%s/default.pem\"\n key = \"%s/default.key\"\n"
		" certificate_dir = \"%s\"\n}\n"
		"backend b {\n host = \"127.0.0.1\"\n}\n"
		"listen imap {\n protocol = imap\n port = 143\n}\n"
		"listen imaps {\n protocol = imap\n port = 993\n tls = implicit\n}\n"
		"listen pop3 {\n protocol = pop3\n port = 110\n}\n"
		"listen own {\n protocol = imap\n port = 1993\n certificate_dir = \"%s/own\"\n}\n",
		dir, dir, tls_dir, dir);
	fclose(f);
	ck_assert_msg(config_load(conf, &cfg, err, sizeof(err)) == 0, "%s", err);
	return cfg;
}

struct notes {
	char text[16][600];
	bool warning[16];
	int n;
};

static void collect(bool warning, const char *msg, void *arg)
{
	struct notes *n = arg;

	ck_assert_int_lt(n->n, 16);
	snprintf(n->text[n->n], sizeof(n->text[0]), "%s", msg);
	n->warning[n->n++] = warning;
}

/* The index of the note containing needle, or -1. */
static int find(const struct notes *n, const char *needle)
{
	for (int i = 0; i < n->n; i++)
		if (strstr(n->text[i], needle) != NULL)
			return i;
	return -1;
}

START_TEST(test_shared_contexts_and_notes)
{
	char d[128], want[512], err[512] = "";
	struct notes notes = { .n = 0 };
	struct mg_config *cfg;
	struct engine_servers *s;
	int i;

	snprintf(d, sizeof(d), "%s/d", dir);
	cfg = load(d);
	s = servers_load(cfg, false, collect, &notes, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	/* imap and imaps serve alike; pop3 has its own ALPN, own its own names. */
	ck_assert_ptr_eq(servers_get(s, 0), servers_get(s, 1));
	ck_assert_ptr_ne(servers_get(s, 0), servers_get(s, 2));
	ck_assert_ptr_ne(servers_get(s, 0), servers_get(s, 3));
	ck_assert_ptr_ne(servers_get(s, 2), servers_get(s, 3));
	ck_assert_ptr_null(servers_get(s, 4));

	snprintf(want, sizeof(want), "certificate skipped path=%s/d/b.pem error=\"the key %s/d/b.key "
		 "does not match", dir, dir);
	i = find(&notes, want);
	ck_assert_msg(i >= 0 && notes.warning[i], "no '%s' in %d notes", want, notes.n);
	/* The directory is loaded once, though two contexts use it. */
	snprintf(want, sizeof(want), "certificate_dir loaded dir=%s pairs=2 names=2", d);
	i = find(&notes, want);
	ck_assert_msg(i >= 0 && !notes.warning[i], "no '%s'", want);
	ck_assert_int_eq(find(&notes, "certificate_dir loaded dir=") , i);
	snprintf(want, sizeof(want), "certificate expires soon path=%s/d/soon.pem not_after=", dir);
	i = find(&notes, want);
	ck_assert_msg(i >= 0 && notes.warning[i], "no '%s'", want);
	/* Made 3 days before expiry, a moment ago. */
	ck_assert_msg(strstr(notes.text[i], " days_left=3") != NULL ||
		      strstr(notes.text[i], " days_left=2") != NULL, "%s", notes.text[i]);
	/* Exactly: skipped b, loaded d, loaded own, soon. */
	ck_assert_int_eq(notes.n, 4);

	/* The hook for a later re-check: a deadline past every certificate's. */
	notes.n = 0;
	servers_warn_expiring(s, time(NULL) + 60 * 24 * 60 * 60, collect, &notes);
	ck_assert_ptr_nonnull(strstr(notes.text[0], "certificate expired path="));
	ck_assert_int_eq(notes.n, 4);	/* default once (not per context), a, soon, o */
	servers_free(s);
	config_free(cfg);
}
END_TEST

/* A load with certificate_dir = DIR/sub that must fail; err gets why. */
static void load_fails(const char *sub, bool strict, char *err, size_t errlen)
{
	char d[128];
	struct mg_config *cfg;

	snprintf(d, sizeof(d), "%s/%s", dir, sub);
	cfg = load(d);
	ck_assert_ptr_null(servers_load(cfg, strict, NULL, NULL, err, errlen));
	config_free(cfg);
}

START_TEST(test_check_fails_on_a_skipped_pair)
{
	char want[512], err[512] = "";

	load_fails("d", true, err, sizeof(err));
	snprintf(want, sizeof(want), "certificate_dir (line 4): %s/d/b.pem: the key", dir);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "'%s' is not '%s...'", err, want);
}
END_TEST

START_TEST(test_unreadable_directory_fails)
{
	char want[512], err[512] = "";

	load_fails("missing", false, err, sizeof(err));
	snprintf(want, sizeof(want), "certificate_dir (line 4): %s/missing: ", dir);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "'%s' is not '%s...'", err, want);
}
END_TEST

START_TEST(test_bad_default_pair_fails)
{
	char cmd[256], err[512] = "";

	snprintf(cmd, sizeof(cmd), "cp '%s/d/a.key' '%s/default.key'", dir, dir);
	ck_assert_int_eq(system(cmd), 0);
	load_fails("own", false, err, sizeof(err));
	ck_assert_msg(strstr(err, "/default.key: ") != NULL && strstr(err, "mismatch") != NULL,
		      "%s", err);
}
END_TEST

static Suite *servers_suite(void)
{
	Suite *s = suite_create("engine_servers");
	TCase *tc = tcase_create("load");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_shared_contexts_and_notes);
	tcase_add_test(tc, test_check_fails_on_a_skipped_pair);
	tcase_add_test(tc, test_unreadable_directory_fails);
	tcase_add_test(tc, test_bad_default_pair_fails);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(servers_suite());
}
