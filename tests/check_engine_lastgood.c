/*
 * check_engine_lastgood.c - the last-good copies of certificate pairs:
 * their names (SHA-256 of the source path), the framing (a table of
 * hostile headers), a copy refused for another file, saving (0600, atomic,
 * unchanged copies not rewritten), loading, the directory's checks and the
 * prune of copies no longer wanted.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_run.h"
#include "engine_lastgood.h"

static const char CERT[] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
static const char KEY[] = "-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n";

static struct tls_pem pem_of(const char *path, const char *cert, const char *key)
{
	return (struct tls_pem){ .cert_path = path, .key_path = key != NULL ? "k.key" : NULL,
				 .cert = (char *)cert, .cert_len = strlen(cert),
				 .key = (char *)key, .key_len = key != NULL ? strlen(key) : 0 };
}

START_TEST(test_names)
{
	char name[LASTGOOD_NAME_LEN + 1], other[LASTGOOD_NAME_LEN + 1];

	lastgood_name("/etc/mailgate/certs/imap.example.org.pem", name);
	ck_assert_str_eq(name, "4ed7bcddf492302112d8d6da93169107d2217c81db66a8f8f57c04a0033a252e");
	lastgood_name("", name);
	ck_assert_str_eq(name, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* Names a customer controls cannot reach outside the directory or collide cheaply. */
	lastgood_name("/d/../../etc/passwd\n.pem", name);
	lastgood_name("/d/../../etc/passwd\n.pen", other);
	ck_assert_uint_eq(strspn(name, "0123456789abcdef"), LASTGOOD_NAME_LEN);
	ck_assert_str_ne(name, other);
}
END_TEST

START_TEST(test_round_trip)
{
	struct tls_pem in = pem_of("/c/a.pem", CERT, KEY), out;
	char err[256];
	size_t len;
	char *buf = lastgood_format(&in, &len);

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(lastgood_parse(buf, len, "/c/a.pem", "/c/a.key", &out, err, sizeof(err)), 0);
	ck_assert_str_eq(out.cert_path, "/c/a.pem");
	ck_assert_str_eq(out.key_path, "/c/a.key");
	ck_assert_uint_eq(out.cert_len, strlen(CERT));
	ck_assert(memcmp(out.cert, CERT, out.cert_len) == 0);
	ck_assert_uint_eq(out.key_len, strlen(KEY));
	ck_assert(memcmp(out.key, KEY, out.key_len) == 0);
	tls_pem_wipe(&out);
	ck_assert_ptr_null(out.cert);
	/* Another file's copy (a hash collision, or a copy moved by hand) is refused. */
	ck_assert_int_eq(lastgood_parse(buf, len, "/c/b.pem", NULL, &out, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "last-good copy is of another file");
	free(buf);

	/* The key inside the .pem: no separate key. */
	in = pem_of("/c/x.pem", CERT, NULL);
	buf = lastgood_format(&in, &len);
	ck_assert_int_eq(lastgood_parse(buf, len, "/c/x.pem", "/c/x.key", &out, err, sizeof(err)), 0);
	ck_assert_ptr_null(out.key);
	ck_assert_ptr_null(out.key_path);
	tls_pem_wipe(&out);
	free(buf);
}
END_TEST

START_TEST(test_hostile_headers)
{
	static const char *const bad[] = {
		"",
		"mailgate-last-good 2 1 1 0\nab",		/* another version */
		"mailgate-last-good 1 1 1 0ab",		/* no newline */
		"mailgate-last-good 1 1 1 0\na",		/* short */
		"mailgate-last-good 1 1 1 0\nabc",		/* long */
		"mailgate-last-good 1 1 0 0\na",		/* no certificate */
		"mailgate-last-good 1 01 1 0\nab",		/* leading zero */
		"mailgate-last-good 1 -1 1 0\nab",
		"mailgate-last-good 1 +1 1 0\nab",
		"mailgate-last-good 1 1  1 0\nab",		/* two spaces */
		"mailgate-last-good 1 1 1\nab",		/* a length missing */
		"mailgate-last-good 1 1 99999999999999999999999 0\nab",	/* overflow */
		"mailgate-last-good 1 1 1048577 0\nab",	/* over the 1 MB a file may have */
		"mailgate-last-good 1 1 18446744073709551615 2\nab",	/* sum wraps */
	};
	struct tls_pem out;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(lastgood_parse(bad[i], strlen(bad[i]), "a", NULL, &out, err,
					     sizeof(err)) == -1, "accepted %zu: %s", i, bad[i]);
	/* The smallest good one, for contrast. */
	ck_assert_int_eq(lastgood_parse("mailgate-last-good 1 1 1 0\nab", 29, "a", NULL, &out,
					err, sizeof(err)), 0);
	tls_pem_wipe(&out);
}
END_TEST

static char dir[64];

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/check_lastgood.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_save_load_prune)
{
	struct tls_pem a = pem_of("/c/a.pem", CERT, KEY), out;
	char keep[128], path[256], err[256];
	char names[2][LASTGOOD_NAME_LEN + 1];
	struct stat st;

	make_dir();
	snprintf(keep, sizeof(keep), "%s/run/last-good", dir);
	ck_assert_int_eq(lastgood_dir_ready(keep, false, err, sizeof(err)), -1);
	ck_assert_int_eq(lastgood_dir_ready(keep, true, err, sizeof(err)), 0);
	ck_assert_int_eq(stat(keep, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);

	ck_assert_int_eq(lastgood_load(keep, "/c/a.pem", NULL, &out, err, sizeof(err)), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(lastgood_save(keep, &a, err, sizeof(err)), 1);
	ck_assert_int_eq(lastgood_save(keep, &a, err, sizeof(err)), 0);	/* unchanged */
	lastgood_name("/c/a.pem", names[0]);
	snprintf(path, sizeof(path), "%s/%s", keep, names[0]);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	a.key = (char *)CERT;		/* changed: rewritten */
	a.key_len = strlen(CERT);
	ck_assert_int_eq(lastgood_save(keep, &a, err, sizeof(err)), 1);
	ck_assert_int_eq(lastgood_load(keep, "/c/a.pem", "/c/a.key", &out, err, sizeof(err)), 0);
	ck_assert(memcmp(out.key, CERT, strlen(CERT)) == 0);
	tls_pem_wipe(&out);

	/* Prune: b's copy and a leftover temporary go, a's stays, other files are not ours. */
	a = pem_of("/c/b.pem", CERT, NULL);
	ck_assert_int_eq(lastgood_save(keep, &a, err, sizeof(err)), 1);
	lastgood_name("/c/b.pem", names[1]);
	snprintf(path, sizeof(path), "%s/.%s", keep, names[1]);
	fclose(fopen(path, "w"));
	snprintf(path, sizeof(path), "%s/README", keep);
	fclose(fopen(path, "w"));
	ck_assert_int_eq(lastgood_prune(keep, names, 1), 2);
	ck_assert_int_eq(access(path, F_OK), 0);
	ck_assert_int_eq(lastgood_load(keep, "/c/a.pem", NULL, &out, err, sizeof(err)), 0);
	tls_pem_wipe(&out);
	ck_assert_int_eq(lastgood_load(keep, "/c/b.pem", NULL, &out, err, sizeof(err)), -1);

	/* One flush for the whole load; a directory that is not there says so. */
	ck_assert_int_eq(lastgood_sync(keep), 0);
	snprintf(path, sizeof(path), "%s/run/no-such-dir", dir);
	ck_assert_int_eq(lastgood_sync(path), -1);
	ck_assert_int_eq(errno, ENOENT);

	/* A directory others may enter is not used. */
	ck_assert_int_eq(chmod(keep, 0755), 0);
	ck_assert_int_eq(lastgood_dir_ready(keep, true, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "mode 0700"));
	/* Nor a symlink to one. */
	ck_assert_int_eq(chmod(keep, 0700), 0);
	snprintf(path, sizeof(path), "%s/link", dir);
	ck_assert_int_eq(symlink(keep, path), 0);
	ck_assert_int_eq(lastgood_dir_ready(path, true, err, sizeof(err)), -1);
	remove_dir();
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("lastgood");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_hostile_headers);
	tcase_add_test(tc, test_save_load_prune);
	suite_add_tcase(suite, tc);
	return check_run(suite);
}
