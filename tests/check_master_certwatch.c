/*
 * check_master_certwatch.c - the certificate watch: the debounce (a quiet
 * second, at most five after the first change) on made-up clocks, which
 * names in a certificate_dir matter, and a real inotify watch over a
 * temporary directory (a rename over a file, an unrelated file, the watch
 * switched off).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_run.h"
#include "config.h"
#include "master_certwatch.h"

START_TEST(test_debounce_quiet_second)
{
	struct debounce d = { 0 };

	ck_assert(debounce_due_at(&d) == 0);
	ck_assert(!debounce_fire(&d, 1000));
	debounce_note(&d, 1000);
	ck_assert(debounce_due_at(&d) == 1000 + CERTWATCH_QUIET_MS);
	ck_assert(!debounce_fire(&d, 1999));
	/* Another change restarts the quiet second. */
	debounce_note(&d, 1500);
	ck_assert(debounce_due_at(&d) == 2500);
	ck_assert(!debounce_fire(&d, 2000));
	ck_assert(debounce_fire(&d, 2500));
	/* Fired once: nothing pending any more. */
	ck_assert(!debounce_fire(&d, 9999));
	ck_assert(debounce_due_at(&d) == 0);
}
END_TEST

START_TEST(test_debounce_never_later_than_five_seconds)
{
	struct debounce d = { 0 };
	long long t;

	/* A change every half second (a slow copy of many files). */
	for (t = 10000; t < 10000 + CERTWATCH_MAX_MS; t += 500) {
		ck_assert(!debounce_fire(&d, t));
		debounce_note(&d, t);
	}
	ck_assert(debounce_due_at(&d) == 10000 + CERTWATCH_MAX_MS);
	ck_assert(debounce_fire(&d, 10000 + CERTWATCH_MAX_MS));
	/* The next change starts a new window. */
	debounce_note(&d, 20000);
	ck_assert(debounce_due_at(&d) == 20000 + CERTWATCH_QUIET_MS);
}
END_TEST

START_TEST(test_certificate_names)
{
	static const struct {
		const char *name;
		bool matters;
	} cases[] = {
		{ "imap.example.org.pem", true }, { "a.key", true }, { "x.pem", true },
		{ "a.ocsp", true }, { ".ocsp", false }, { ".a.ocsp", false }, { "a.ocsp~", false },
		{ ".a.pem", false },		/* certbot's and editors' temporary files */
		{ ".pem", false }, { "pem", false }, { "a.pem.tmp", false }, { "a.crt", false },
		{ "a.PEM", false }, { "readme", false }, { "", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(certwatch_cert_name(cases[i].name) == cases[i].matters, "%s",
			      cases[i].name);
}
END_TEST

static char dir[64];

static void write_file(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* One listener serving dir/default.pem (stapling dir/default.ocsp) and dir/d/. */
static struct mg_config *config(bool watch)
{
	static struct mg_listener_config listener;
	static char cert[128], key[128], ocsp[128], certs[128];
	static struct mg_config cfg;

	snprintf(cert, sizeof(cert), "%s/default.pem", dir);
	snprintf(key, sizeof(key), "%s/default.key", dir);
	snprintf(ocsp, sizeof(ocsp), "%s/default.ocsp", dir);
	snprintf(certs, sizeof(certs), "%s/d", dir);
	listener = (struct mg_listener_config){ .certificate = cert, .key = key, .ocsp_file = ocsp,
						.certificate_dir = certs };
	cfg = (struct mg_config){ .listeners = &listener, .n_listeners = 1 };
	cfg.tls.certificate_watch = watch;
	return &cfg;
}

/* Writing name (under dir) at ms is the change that fires a second later. */
static void write_changed(struct certwatch *w, const char *name, long long ms)
{
	char path[600], expect[128];

	write_file(name, "z");
	certwatch_read(w, ms);
	ck_assert(certwatch_fire(w, ms + CERTWATCH_QUIET_MS, path, sizeof(path)));
	snprintf(expect, sizeof(expect), "%s/%s", dir, name);
	ck_assert_str_eq(path, expect);
}

START_TEST(test_inotify_rename_and_unrelated_files)
{
	struct certwatch *w = certwatch_new();
	char path[600], expect[128], sub[128];

	snprintf(dir, sizeof(dir), "/tmp/check_certwatch.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/d", dir);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	write_file("default.pem", "x");
	write_file("default.key", "x");
	certwatch_set(w, config(true));
	ck_assert_int_ge(certwatch_fd(w), 0);

	/* Files nobody serves: nothing. */
	write_file("mailgate.conf", "x");
	write_file("d/.new.pem", "x");
	write_file("d/notes.txt", "x");
	certwatch_read(w, 100);
	ck_assert(certwatch_due_at(w) == 0);

	/* A rename over a served file (certbot, acme.sh). */
	write_file("default.pem.tmp", "y");
	snprintf(path, sizeof(path), "%s/default.pem.tmp", dir);
	snprintf(expect, sizeof(expect), "%s/default.pem", dir);
	ck_assert_int_eq(rename(path, expect), 0);
	certwatch_read(w, 200);
	ck_assert(certwatch_due_at(w) == 200 + CERTWATCH_QUIET_MS);
	ck_assert(!certwatch_fire(w, 1199, path, sizeof(path)));
	ck_assert(certwatch_fire(w, 1200, path, sizeof(path)));
	ck_assert_str_eq(path, expect);

	/* A new pair in the directory; a new OCSP response there and in ocsp_file. */
	write_changed(w, "d/new.pem", 5000);
	write_changed(w, "d/new.ocsp", 10000);
	write_changed(w, "default.ocsp", 20000);

	/* Switched off: no descriptor, nothing due. */
	certwatch_set(w, config(false));
	ck_assert_int_eq(certwatch_fd(w), -1);
	ck_assert(certwatch_due_at(w) == 0);
	certwatch_free(w);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(path), 0);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("certwatch");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_debounce_quiet_second);
	tcase_add_test(tc, test_debounce_never_later_than_five_seconds);
	tcase_add_test(tc, test_certificate_names);
	tcase_add_test(tc, test_inotify_rename_and_unrelated_files);
	suite_add_tcase(suite, tc);
	return check_run(suite);
}
