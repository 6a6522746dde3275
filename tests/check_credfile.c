/*
 * check_credfile.c - credentials files (lib/credfile.c, read by
 * check_cleartext_login -a and for mailgated's master_user_file): the
 * format (comments, spaces, CRLF, repeated, unknown, empty and missing keys,
 * NUL bytes), the file's type, size and permissions, and errors that name
 * the file and line but never contain the password.
 */
#include <check.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "credfile.h"
#include "check_run.h"

#define TABLE_LEN(t) ((int)(sizeof(t) / sizeof((t)[0])))

/* ---- parsing --------------------------------------------------------------- */

struct auth_case {
	const char *text;
	const char *user, *password;	/* NULL: must be refused */
	const char *err_contains;
};

static const struct auth_case auth_cases[] = {
	{ "username=alice\npassword=s3cret\n", "alice", "s3cret", NULL },
	{ "password=s3cret\nusername=alice", "alice", "s3cret", NULL },		/* no final LF */
	{ "username=alice\r\npassword=s3cret\r\n", "alice", "s3cret", NULL },
	{ "# monitoring account\n\nusername = alice\n  password =  two words \n", "alice",
	  "two words ", NULL },						/* trailing spaces kept */
	{ "username=a@example.org\npassword=p=a=s=s\n", "a@example.org", "p=a=s=s", NULL },
	{ "username=alice\npassword=\"quoted\\\"\n", "alice", "\"quoted\\\"", NULL },
	{ "\tusername\t=\talice\npassword=x\n", "alice", "x", NULL },
	{ "", NULL, NULL, "no username" },
	{ "username=alice\n", NULL, NULL, "no password" },
	{ "password=x\n", NULL, NULL, "no username" },
	{ "username=alice\npassword=\n", NULL, NULL, "line 2: password empty" },
	{ "username=\npassword=x\n", NULL, NULL, "line 1: username empty" },
	{ "username=a\nusername=b\npassword=x\n", NULL, NULL, "line 2: username given twice" },
	{ "username=a\npassword=x\npassword=y\n", NULL, NULL, "line 3: password given twice" },
	{ "user=a\npassword=x\n", NULL, NULL, "line 1: unknown key" },
	{ "username=a\npass=x\n", NULL, NULL, "line 2: unknown key" },
	{ "username=a\nPASSWORD=x\n", NULL, NULL, "unknown key" },
	{ "username a\npassword=x\n", NULL, NULL, "line 1: expected" },
	{ "username=a\npassword=x\0y\n", NULL, NULL, "NUL" },
};

START_TEST(test_parse)
{
	const struct auth_case *tc = &auth_cases[_i];
	size_t len = strlen(tc->text);
	struct mg_credentials cred;
	char err[256] = "";
	char *s;
	int rc;

	/* The NUL case: count the bytes up to the final LF. */
	if (strstr(tc->err_contains != NULL ? tc->err_contains : "", "NUL") != NULL)
		len = strlen(tc->text) + 3;
	s = malloc(len > 0 ? len : 1);
	ck_assert_ptr_nonnull(s);
	memcpy(s, tc->text, len);
	rc = credfile_parse(s, len, &cred, err, sizeof(err));
	if (tc->user != NULL) {
		ck_assert_msg(rc == 0, "refused: %s", err);
		ck_assert_str_eq(cred.user, tc->user);
		ck_assert_uint_eq(cred.user_len, strlen(tc->user));
		ck_assert_str_eq(cred.password, tc->password);
		ck_assert_uint_eq(cred.password_len, strlen(tc->password));
	} else {
		ck_assert_int_eq(rc, -1);
		ck_assert_msg(strstr(err, tc->err_contains) != NULL, "error '%s' lacks '%s'", err,
			      tc->err_contains);
		/* Refused: nothing half-read is left behind. */
		ck_assert_uint_eq(cred.password_len, 0);
		ck_assert_str_eq(cred.password, "");
		ck_assert_ptr_null(strstr(err, "s3cret"));
	}
	free(s);
}
END_TEST

static char *write_file(const char *text, mode_t mode)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/check_credfileXXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

struct mode_case {
	mode_t mode;
	bool ok;
};

static const struct mode_case mode_cases[] = {
	{ 0600, true }, { 0400, true }, { 0640, true }, { 0440, true },
	{ 0644, false }, { 0604, false }, { 0602, false }, { 0660, false }, { 0666, false },
};

START_TEST(test_modes)
{
	const struct mode_case *tc = &mode_cases[_i];
	char *path = write_file("username=alice\npassword=s3cret\n", tc->mode);
	struct mg_credentials cred;
	char err[512] = "";
	int rc = credfile_read(path, &cred, err, sizeof(err));

	if (tc->ok) {
		ck_assert_msg(rc == 0, "mode %03o refused: %s", (unsigned)tc->mode, err);
		ck_assert_str_eq(cred.password, "s3cret");
	} else {
		ck_assert_msg(rc == -1, "mode %03o accepted", (unsigned)tc->mode);
		ck_assert_ptr_nonnull(strstr(err, "readable or writable by others"));
		ck_assert_ptr_nonnull(strstr(err, path));
	}
	unlink(path);
}
END_TEST

START_TEST(test_errors)
{
	struct mg_credentials cred;
	char err[512];
	char *path;

	ck_assert_int_eq(credfile_read("/nonexistent/ccl.auth", &cred, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/ccl.auth: "));
	ck_assert_int_eq(credfile_read("/tmp", &cred, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
	path = write_file("username=alice\nsecret=s3cret\n", 0600);
	ck_assert_int_eq(credfile_read(path, &cred, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, ": line 2: unknown key"));
	ck_assert_ptr_null(strstr(err, "s3cret"));
	unlink(path);
}
END_TEST

START_TEST(test_too_big)
{
	char *big = malloc(CREDFILE_MAX + 100);
	struct mg_credentials cred;
	char err[512];
	char *path;

	ck_assert_ptr_nonnull(big);
	memset(big, '#', CREDFILE_MAX + 99);
	big[CREDFILE_MAX + 99] = '\0';
	path = write_file(big, 0600);
	ck_assert_int_eq(credfile_read(path, &cred, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "larger than"));
	unlink(path);
	free(big);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("credfile");
	TCase *tc = tcase_create("credfile");

	tcase_add_loop_test(tc, test_parse, 0, TABLE_LEN(auth_cases));
	tcase_add_loop_test(tc, test_modes, 0, TABLE_LEN(mode_cases));
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_too_big);
	suite_add_tcase(s, tc);
	return check_run(s);
}
