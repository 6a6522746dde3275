/*
 * check_config.c - unit tests for config.c: every value of a full file lands
 * in the struct, defaults apply, and every way a file can be wrong fails with
 * the exact "FILE:LINE: ..." message. Files are written to a fresh mkdtemp()
 * directory per test.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

static char tmpdir[PATH_MAX];
static char conf_path[PATH_MAX];

static void setup(void)
{
	const char *base = getenv("TMPDIR");
	int n;

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	n = snprintf(tmpdir, sizeof(tmpdir), "%s/check_config.XXXXXX", base);
	ck_assert(n > 0 && (size_t)n < sizeof(tmpdir));
	ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
	n = snprintf(conf_path, sizeof(conf_path), "%s/mailgate.conf", tmpdir);
	ck_assert(n > 0 && (size_t)n < sizeof(conf_path));
}

static void teardown(void)
{
	char sub[PATH_MAX];

	unlink(conf_path);
	if (snprintf(sub, sizeof(sub), "%s/dir", tmpdir) < (int)sizeof(sub))
		rmdir(sub);
	rmdir(tmpdir);
}

/* Write len bytes to conf_path with exactly this mode (umask ignored). */
static const char *write_conf_len(const char *text, size_t len, mode_t mode)
{
	int fd = open(conf_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_msg(fd >= 0, "open %s: %s", conf_path, strerror(errno));
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(close(fd), 0);
	return conf_path;
}

static const char *write_conf(const char *text)
{
	return write_conf_len(text, strlen(text), 0600);
}

static struct mg_config *load_ok(const char *text)
{
	struct mg_config *cfg = NULL;
	char err[512] = "";

	write_conf(text);
	ck_assert_msg(config_load(conf_path, &cfg, err, sizeof(err)) == 0,
		      "unexpected error: %s", err);
	ck_assert_ptr_nonnull(cfg);
	return cfg;
}

/* The loaded path must fail with "PATH:LINE: ...needle..." ("PATH: " if line 0). */
static void expect_load_error(int line, const char *needle)
{
	struct mg_config *cfg = (struct mg_config *)1;
	char err[512] = "", prefix[PATH_MAX + 32];

	ck_assert_int_eq(config_load(conf_path, &cfg, err, sizeof(err)), -1);
	ck_assert_ptr_null(cfg);
	if (line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d: ", conf_path, line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", conf_path);
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
		      "expected prefix '%s', got '%s'", prefix, err);
	ck_assert_msg(strstr(err + strlen(prefix), needle) != NULL,
		      "expected '%s' in '%s'", needle, err);
	ck_assert_msg(strchr(err, '\n') == NULL, "message is not one line: '%s'", err);
}

/* Building blocks of a valid file, with their line counts. */
#define TLS_OK		"tls {\n certificate = \"/c.pem\"\n key = \"/k.pem\"\n}\n"	/* 4 */
#define BACKEND_OK	"backend b {\n host = \"127.0.0.1\"\n}\n"			/* 3 */
#define LISTEN_OK	"listen l {\n protocol = imap\n port = 143\n}\n"		/* 4 */
#define MINIMAL		TLS_OK BACKEND_OK LISTEN_OK

/* ---- a full file ------------------------------------------------------- */

static const char full_conf[] =
	"# every option, none left at its default\n"		/* 1 */
	"user = \"mail-gw\"\n"
	"group = \"mailgrp\"\n"
	"pid_file = \"/run/mg/mg.pid\"\n"
	"log_level = warning\n"					/* 5 */
	"max_connections = 5000\n"
	"max_connections_per_ip = 50\n"
	"shutdown_grace = 30\n"
	"login_timeout = 45\n"
	"session_timeout = 3600\n"				/* 10 */
	"backend_connect_timeout = 5\n"
	"backend_timeout = 20\n"
	"max_line_length = 16384\n"
	"max_literal_size = 0\n"
	"max_bad_commands = 5\n"				/* 15 */
	"max_auth_failures = 2\n"
	"auth_failure_delay = 1500\n"
	"default_backend = \"cyrus\"\n"
	"tls {\n"
	"  certificate = \"/etc/mailgate/cert.pem\"\n"		/* 20 */
	"  key = \"/etc/mailgate/key.pem\"\n"
	"  min_protocol = TLSv1.3\n"
	"  ciphers = \"ECDHE+AESGCM\"\n"
	"  ciphersuites = \"TLS_AES_256_GCM_SHA384\"\n"
	"  require_forward_secrecy = true\n"			/* 25 */
	"}\n"
	"backend dovecot {\n"
	"  host = \"10.1.2.3\"\n"
	"  imap_port = 1143\n"
	"  pop3_port = 1110\n"					/* 30 */
	"  tls = starttls\n"
	"  ca_file = \"/etc/ssl/ca.pem\"\n"
	"  verify = true\n"
	"  verify_name = \"mail.example.com\"\n"
	"}\n"							/* 35 */
	"/* the second backend\n"
	"   speaks implicit TLS */\n"
	"backend cyrus {\n"
	"  host = \"::1\"\n"
	"  tls = implicit\n"					/* 40 */
	"  verify = false\n"
	"}\n"
	"listen imap {\n"
	"  protocol = imap\n"
	"  address = { \"192.0.2.1\",  # comments inside a list work\n"	/* 45 */
	"              \"2001:db8::1\" }\n"
	"  port = 143\n"
	"  tls = starttls\n"
	"  backend = \"dovecot\"\n"
	"}\n"							/* 50 */
	"listen pop3s {\n"
	"  protocol = pop3\n"
	"  address = \"127.0.0.1\"\n"
	"  port = 995\n"
	"  tls = implicit\n"					/* 55 */
	"}\n";

START_TEST(test_full_file)
{
	struct mg_config *c = load_ok(full_conf);
	const struct mg_backend_config *dovecot, *cyrus;
	const struct mg_listener_config *imap, *pop3s;

	ck_assert_str_eq(c->path, conf_path);
	ck_assert_str_eq(c->user, "mail-gw");
	ck_assert_str_eq(c->group, "mailgrp");
	ck_assert_str_eq(c->pid_file, "/run/mg/mg.pid");
	ck_assert_int_eq(c->log_level, MG_LOG_WARNING);
	ck_assert_uint_eq(c->max_connections, 5000);
	ck_assert_uint_eq(c->max_connections_per_ip, 50);
	ck_assert_uint_eq(c->shutdown_grace, 30);
	ck_assert_uint_eq(c->login_timeout, 45);
	ck_assert_uint_eq(c->session_timeout, 3600);
	ck_assert_uint_eq(c->backend_connect_timeout, 5);
	ck_assert_uint_eq(c->backend_timeout, 20);
	ck_assert_uint_eq(c->max_line_length, 16384);
	ck_assert_uint_eq(c->max_literal_size, 0);
	ck_assert_uint_eq(c->max_bad_commands, 5);
	ck_assert_uint_eq(c->max_auth_failures, 2);
	ck_assert_uint_eq(c->auth_failure_delay_ms, 1500);

	ck_assert_str_eq(c->tls.certificate, "/etc/mailgate/cert.pem");
	ck_assert_str_eq(c->tls.key, "/etc/mailgate/key.pem");
	ck_assert_int_eq(c->tls.min_version, MG_TLS_1_3);
	ck_assert_str_eq(c->tls.ciphers, "ECDHE+AESGCM");
	ck_assert_str_eq(c->tls.ciphersuites, "TLS_AES_256_GCM_SHA384");
	ck_assert(c->tls.require_forward_secrecy);
	ck_assert_int_eq(c->tls.line, 19);

	ck_assert_uint_eq(c->n_backends, 2);
	dovecot = &c->backends[0];
	cyrus = &c->backends[1];
	ck_assert_str_eq(dovecot->name, "dovecot");
	ck_assert_str_eq(dovecot->host, "10.1.2.3");
	ck_assert_uint_eq(dovecot->imap_port, 1143);
	ck_assert_uint_eq(dovecot->pop3_port, 1110);
	ck_assert_int_eq(dovecot->tls, MG_BACKEND_TLS_STARTTLS);
	ck_assert_str_eq(dovecot->ca_file, "/etc/ssl/ca.pem");
	ck_assert(dovecot->verify);
	ck_assert_str_eq(dovecot->verify_name, "mail.example.com");
	ck_assert_int_eq(dovecot->line, 27);
	ck_assert_str_eq(cyrus->name, "cyrus");
	ck_assert_str_eq(cyrus->host, "::1");
	ck_assert_int_eq(cyrus->tls, MG_BACKEND_TLS_IMPLICIT);
	ck_assert_uint_eq(cyrus->imap_port, 993);	/* implicit defaults */
	ck_assert_uint_eq(cyrus->pop3_port, 995);
	ck_assert_ptr_null(cyrus->ca_file);
	ck_assert(!cyrus->verify);
	ck_assert_ptr_null(cyrus->verify_name);
	ck_assert_int_eq(cyrus->line, 38);
	ck_assert_ptr_eq(c->default_backend, cyrus);

	ck_assert_uint_eq(c->n_listeners, 2);
	imap = &c->listeners[0];
	pop3s = &c->listeners[1];
	ck_assert_str_eq(imap->name, "imap");
	ck_assert_int_eq(imap->protocol, MG_PROTO_IMAP);
	ck_assert_uint_eq(imap->n_addresses, 2);
	ck_assert_str_eq(imap->addresses[0], "192.0.2.1");
	ck_assert_str_eq(imap->addresses[1], "2001:db8::1");
	ck_assert_uint_eq(imap->port, 143);
	ck_assert_int_eq(imap->tls, MG_LISTEN_STARTTLS);
	ck_assert_ptr_eq(imap->backend, dovecot);
	ck_assert_int_eq(imap->line, 43);
	ck_assert_str_eq(pop3s->name, "pop3s");
	ck_assert_int_eq(pop3s->protocol, MG_PROTO_POP3);
	ck_assert_uint_eq(pop3s->n_addresses, 1);
	ck_assert_str_eq(pop3s->addresses[0], "127.0.0.1");
	ck_assert_uint_eq(pop3s->port, 995);
	ck_assert_int_eq(pop3s->tls, MG_LISTEN_IMPLICIT);
	ck_assert_ptr_null(pop3s->backend);
	ck_assert_int_eq(pop3s->line, 51);

	config_free(c);
}
END_TEST

/* The struct owns its strings: nothing points into libconfuse or the file. */
START_TEST(test_struct_is_self_contained)
{
	struct mg_config *a = load_ok(full_conf);
	struct mg_config *b;

	/* A second load reuses libconfuse's buffers; a's strings must survive. */
	b = load_ok(MINIMAL);
	ck_assert_str_eq(a->listeners[0].addresses[1], "2001:db8::1");
	ck_assert_str_eq(a->backends[0].verify_name, "mail.example.com");
	ck_assert_str_eq(b->backends[0].host, "127.0.0.1");
	config_free(b);
	config_free(a);
}
END_TEST

START_TEST(test_defaults)
{
	struct mg_config *c = load_ok(MINIMAL);
	const struct mg_listener_config *l;

	ck_assert_str_eq(c->user, "mailgate");
	ck_assert_ptr_null(c->group);
	ck_assert_str_eq(c->pid_file, "/run/mailgated.pid");
	ck_assert_int_eq(c->log_level, MG_LOG_INFO);
	ck_assert_uint_eq(c->max_connections, 1000);
	ck_assert_uint_eq(c->max_connections_per_ip, 20);
	ck_assert_uint_eq(c->shutdown_grace, 10);
	ck_assert_uint_eq(c->login_timeout, 60);
	ck_assert_uint_eq(c->session_timeout, 1800);
	ck_assert_uint_eq(c->backend_connect_timeout, 10);
	ck_assert_uint_eq(c->backend_timeout, 30);
	ck_assert_uint_eq(c->max_line_length, 8192);
	ck_assert_uint_eq(c->max_literal_size, 8192);
	ck_assert_uint_eq(c->max_bad_commands, 10);
	ck_assert_uint_eq(c->max_auth_failures, 3);
	ck_assert_uint_eq(c->auth_failure_delay_ms, 2000);

	ck_assert_int_eq(c->tls.min_version, MG_TLS_1_2);
	ck_assert_ptr_null(c->tls.ciphers);
	ck_assert_ptr_null(c->tls.ciphersuites);
	ck_assert(c->tls.require_forward_secrecy);
	ck_assert_int_eq(c->tls.line, 1);

	ck_assert_uint_eq(c->n_backends, 1);
	ck_assert_uint_eq(c->backends[0].imap_port, 143);
	ck_assert_uint_eq(c->backends[0].pop3_port, 110);
	ck_assert_int_eq(c->backends[0].tls, MG_BACKEND_TLS_NONE);
	ck_assert(c->backends[0].verify);
	ck_assert_ptr_null(c->backends[0].ca_file);
	ck_assert_ptr_null(c->backends[0].verify_name);
	ck_assert_int_eq(c->backends[0].line, 5);
	/* The only backend is the default. */
	ck_assert_ptr_eq(c->default_backend, &c->backends[0]);

	l = &c->listeners[0];
	ck_assert_uint_eq(l->n_addresses, 2);
	ck_assert_str_eq(l->addresses[0], "0.0.0.0");
	ck_assert_str_eq(l->addresses[1], "::");
	ck_assert_int_eq(l->tls, MG_LISTEN_STARTTLS);
	ck_assert_ptr_null(l->backend);
	ck_assert_int_eq(l->line, 8);
	config_free(c);
}
END_TEST

START_TEST(test_boundaries_accepted)
{
	struct mg_config *c = load_ok(
		"max_line_length = 512\nmax_literal_size = 65536\n"
		"auth_failure_delay = 0\nshutdown_grace = 0\n"
		TLS_OK BACKEND_OK
		"listen l {\n protocol = pop3\n port = 65535\n}\n"
		"listen m {\n protocol = imap\n port = 1\n}\n");

	ck_assert_uint_eq(c->max_line_length, 512);
	ck_assert_uint_eq(c->max_literal_size, 65536);
	ck_assert_uint_eq(c->auth_failure_delay_ms, 0);
	ck_assert_uint_eq(c->shutdown_grace, 0);
	ck_assert_uint_eq(c->listeners[0].port, 65535);
	ck_assert_uint_eq(c->listeners[1].port, 1);
	config_free(c);
}
END_TEST

/* Same port on different addresses, or on "::" and "0.0.0.0", is fine. */
START_TEST(test_listeners_may_share_port_on_other_addresses)
{
	struct mg_config *c = load_ok(TLS_OK BACKEND_OK
		"listen a {\n protocol = imap\n address = \"192.0.2.1\"\n port = 143\n}\n"
		"listen b {\n protocol = imap\n address = { \"192.0.2.2\", \"::\" }\n port = 143\n}\n"
		"listen c {\n protocol = imap\n address = \"0.0.0.0\"\n port = 993\n}\n"
		"listen d {\n protocol = imap\n address = \"::\"\n port = 993\n}\n");

	ck_assert_uint_eq(c->n_listeners, 4);
	config_free(c);
}
END_TEST

/* ---- ${VAR} is never expanded --------------------------------------------- */

START_TEST(test_env_single_quotes_are_literal)
{
	struct mg_config *c;

	ck_assert_int_eq(setenv("MG_TEST_VAR", "expanded", 1), 0);
	c = load_ok("user = '${MG_TEST_VAR}'\n"
		    "group = \"\\${MG_TEST_VAR}\"\n"
		    "pid_file = /run/$MG_TEST_VAR.pid\n"
		    "# a comment may say ${MG_TEST_VAR}\n" MINIMAL);
	ck_assert_str_eq(c->user, "${MG_TEST_VAR}");
	ck_assert_str_eq(c->group, "${MG_TEST_VAR}");
	ck_assert_str_eq(c->pid_file, "/run/$MG_TEST_VAR.pid");
	config_free(c);
}
END_TEST

START_TEST(test_other_quoting)
{
	struct mg_config *c = load_ok("user = mg_user\n"
				      "group = 'it\\'s'\n"
				      "pid_file = \"/run/a\\\"b\"\n" MINIMAL);

	ck_assert_str_eq(c->user, "mg_user");
	ck_assert_str_eq(c->group, "it's");
	ck_assert_str_eq(c->pid_file, "/run/a\"b");
	config_free(c);
}
END_TEST

/* ---- errors ------------------------------------------------------------------ */

struct error_case {
	const char *text;
	int line;		/* 0: the message has no line */
	const char *needle;
};

static const struct error_case error_cases[] = {
	/* unknown keys, wherever they are; comments do not skew lines */
	{ "bogus = 1\n" MINIMAL, 1, "no such option 'bogus'" },
	{ "# one\n# two\n\n// three\nbogus = 1\n" MINIMAL, 5, "no such option 'bogus'" },
	{ "/* one\n two */ bogus = 1\n" MINIMAL, 2, "no such option 'bogus'" },
	{ TLS_OK "backend b {\n host = \"x\"\n colour = red\n}\n" LISTEN_OK, 7,
	  "no such option 'colour'" },
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n port = 143\n\n backend_name = b\n}\n",
	  12, "no such option 'backend_name'" },
	{ "include(\"/etc/passwd\")\n" MINIMAL, 1, "no such option 'include'" },
	{ "server {\n}\n" MINIMAL, 1, "no such option 'server'" },

	/* unknown words */
	{ "log_level = loud\n" MINIMAL, 1, "log_level: unknown value 'loud'" },
	{ "log_level = INFO\n" MINIMAL, 1, "log_level: unknown value 'INFO'" },
	{ "tls {\n certificate = \"/c\"\n key = \"/k\"\n min_protocol = TLSv1.1\n}\n"
	  BACKEND_OK LISTEN_OK, 4, "min_protocol: unknown value 'TLSv1.1'" },
	{ TLS_OK "backend b {\n host = \"x\"\n tls = ssl\n}\n" LISTEN_OK, 7,
	  "tls: unknown value 'ssl' (expected none, starttls or implicit)" },
	{ TLS_OK BACKEND_OK "listen l {\n protocol = smtp\n port = 25\n}\n", 9,
	  "protocol: unknown value 'smtp'" },
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n port = 143\n tls = none\n}\n", 11,
	  "tls: unknown value 'none' (expected starttls or implicit)" },
	{ TLS_OK "backend b {\n host = \"x\"\n verify = maybe\n}\n" LISTEN_OK, 7,
	  "invalid boolean value for option 'verify'" },

	/* numbers */
	{ "max_line_length = 511\n" MINIMAL, 1, "max_line_length = 511 is out of range (512..65536)" },
	{ "max_line_length = 65537\n" MINIMAL, 1, "out of range (512..65536)" },
	{ "max_literal_size = 65537\n" MINIMAL, 1, "max_literal_size = 65537 is out of range (0..65536)" },
	{ "auth_failure_delay = 60001\n" MINIMAL, 1, "out of range (0..60000)" },
	{ "max_connections = 0\n" MINIMAL, 1, "max_connections = 0 is out of range" },
	{ "max_connections = -1\n" MINIMAL, 1, "max_connections: '-1' is not a decimal number" },
	{ "max_connections = +5\n" MINIMAL, 1, "unexpected character '+'" },
	{ "max_connections = 0x10\n" MINIMAL, 1, "'0x10' is not a decimal number" },
	{ "max_connections = 12abc\n" MINIMAL, 1, "'12abc' is not a decimal number" },
	{ "max_connections = \" 12\"\n" MINIMAL, 1, "' 12' is not a decimal number" },
	{ "max_connections = \"\"\n" MINIMAL, 1, "'' is not a decimal number" },
	{ "login_timeout = 99999999999999999999999999\n" MINIMAL, 1, "is out of range" },
	{ "\n\nsession_timeout = 86401\n" MINIMAL, 3, "session_timeout = 86401 is out of range" },
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n port = 0\n}\n", 10,
	  "port = 0 is out of range (1..65535)" },
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n port = 65536\n}\n", 10,
	  "port = 65536 is out of range" },
	{ TLS_OK "backend b {\n host = \"x\"\n imap_port = 70000\n}\n" LISTEN_OK, 7,
	  "imap_port = 70000 is out of range" },

	/* duplicates */
	{ MINIMAL "backend b {\n host = \"127.0.0.2\"\n}\n", 12, "duplicate title 'b'" },
	{ MINIMAL "listen l {\n protocol = imap\n port = 993\n}\n", 12, "duplicate title 'l'" },
	{ "user = a\nuser = b\n" MINIMAL, 2, "user is set twice (first on line 1)" },
	{ TLS_OK "backend b {\n host = \"x\"\n\n host = \"y\"\n}\n" LISTEN_OK, 8,
	  "host is set twice (first on line 6)" },
	{ MINIMAL "tls {\n min_protocol = TLSv1.3\n}\n", 12, "tls section given twice (first on line 1)" },

	/* missing pieces */
	{ BACKEND_OK LISTEN_OK, 0, "no tls section" },
	{ "tls {\n key = \"/k\"\n}\n" BACKEND_OK LISTEN_OK, 1, "tls: certificate is required" },
	{ "tls {\n certificate = \"/c\"\n}\n" BACKEND_OK LISTEN_OK, 1, "tls: key is required" },
	{ TLS_OK BACKEND_OK, 0, "no listen section" },
	{ TLS_OK LISTEN_OK, 0, "no backend section" },
	{ "", 0, "no backend section" },
	{ TLS_OK "\nbackend b {\n tls = none\n}\n" LISTEN_OK, 6, "backend 'b': host is required" },
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n}\n", 8, "listen 'l': port is required" },
	{ TLS_OK BACKEND_OK "listen l {\n port = 143\n}\n", 8, "listen 'l': protocol is required" },
	{ "user = \"\"\n" MINIMAL, 1, "user must not be empty" },

	/* section names are plain tokens (they go into key=value log lines) */
	{ TLS_OK "backend \"a b\" {\n host = \"x\"\n}\n" LISTEN_OK, 5,
	  "backend name 'a b' must be 1 to 64 letters, digits" },
	{ TLS_OK BACKEND_OK "listen 'x=y' {\n protocol = imap\n port = 143\n}\n", 8,
	  "listen name 'x=y' must be" },
	{ TLS_OK BACKEND_OK "listen \"\" {\n protocol = imap\n port = 143\n}\n", 8,
	  "listen name '' must be" },

	/* references to backends */
	{ "default_backend = nope\n" MINIMAL, 1, "default_backend: no backend section is called 'nope'" },
	{ TLS_OK BACKEND_OK "\nlisten l {\n protocol = imap\n port = 143\n backend = \"nope\"\n}\n",
	  9, "listen 'l': no backend section is called 'nope'" },
	{ MINIMAL "backend c {\n host = \"127.0.0.3\"\n}\n", 0,
	  "default_backend is required when there are 2 backends" },

	/* listen addresses */
	{ MINIMAL "listen m {\n protocol = pop3\n port = 143\n}\n", 12,
	  "listen 'm': address 0.0.0.0 port 143 conflicts with 0.0.0.0 port 143 of listen 'l' (line 8)" },
	{ TLS_OK BACKEND_OK
	  "listen a {\n protocol = imap\n address = \"::\"\n port = 143\n}\n"
	  "listen b {\n protocol = imap\n address = \"0::0\"\n port = 143\n}\n", 13,
	  "address 0::0 port 143 conflicts with :: port 143 of listen 'a' (line 8)" },
	{ MINIMAL "listen m {\n protocol = imap\n address = \"127.0.0.1\"\n port = 143\n}\n", 12,
	  "address 127.0.0.1 port 143 conflicts with 0.0.0.0 port 143" },
	{ TLS_OK BACKEND_OK
	  "listen a {\n protocol = imap\n address = { \"192.0.2.1\", \"192.0.2.1\" }\n port = 143\n}\n",
	  8, "listen 'a': address 192.0.2.1 port 143 conflicts with 192.0.2.1 port 143 of listen 'a'" },
	{ TLS_OK BACKEND_OK
	  "listen a {\n protocol = imap\n address = {\n \"192.0.2.1\",\n \"localhost\"\n }\n port = 143\n}\n",
	  12, "address 'localhost' is not an IPv4 or IPv6 address" },
	{ TLS_OK BACKEND_OK "listen a {\n protocol = imap\n address = {}\n port = 143\n}\n", 8,
	  "listen 'a': the address list is empty" },

	/* environment expansion is refused, wherever it would happen */
	{ "user = ${USER}\n" MINIMAL, 1, "'${' is not allowed" },
	{ "\nuser = \"mail-${USER}\"\n" MINIMAL, 2, "'${' is not allowed" },
	{ "pid_file = /run/${X:-y}.pid\n" MINIMAL, 1, "'${' is not allowed" },
	{ TLS_OK BACKEND_OK "listen ${L} {\n protocol = imap\n port = 143\n}\n", 8, "'${' is not allowed" },

	/* what libconfuse would quietly swallow */
	{ "user = \"abc\n" MINIMAL, 1, "unterminated string" },
	{ MINIMAL "user = 'abc\n", 12, "unterminated string" },
	{ MINIMAL "/* open\n", 12, "unterminated /* comment" },
	{ "user = *mg\n" MINIMAL, 1, "unexpected character '*'" },
	{ "user = a/*b*/\n" MINIMAL, 1, "unexpected character '*'" },
	{ "\nuser = \"a\001b\"\n" MINIMAL, 2, "control character 0x01" },

	{ "pid_file = \"/run/\\\nmg.pid\"\nbogus = 1\n" MINIMAL, 3, "no such option 'bogus'" },

	/* plain syntax errors still carry the right line */
	{ "# comment\n# comment\nuser = \n" MINIMAL, 4, "" },
	{ "}\n" MINIMAL, 1, "unexpected closing brace" },
};

START_TEST(test_error_table)
{
	const struct error_case *ec = &error_cases[_i];

	write_conf(ec->text);
	expect_load_error(ec->line, ec->needle);
}
END_TEST

START_TEST(test_missing_file)
{
	struct mg_config *cfg = (struct mg_config *)1;
	char err[512], want[PATH_MAX + 64];

	ck_assert_int_eq(config_load(conf_path, &cfg, err, sizeof(err)), -1);
	ck_assert_ptr_null(cfg);
	snprintf(want, sizeof(want), "%s: cannot open: %s", conf_path, strerror(ENOENT));
	ck_assert_str_eq(err, want);
}
END_TEST

static const mode_t bad_modes[] = { 0620, 0602, 0666, 0660 };

START_TEST(test_writable_by_others)
{
	struct mg_config *cfg = (struct mg_config *)1;
	char err[512], want[PATH_MAX + 64];

	write_conf_len(MINIMAL, strlen(MINIMAL), bad_modes[_i]);
	ck_assert_int_eq(config_load(conf_path, &cfg, err, sizeof(err)), -1);
	ck_assert_ptr_null(cfg);
	snprintf(want, sizeof(want), "%s: is writable by group or others; refusing", conf_path);
	ck_assert_str_eq(err, want);
}
END_TEST

/* Read-only for everyone, or readable by the group, is fine. */
START_TEST(test_readable_modes_accepted)
{
	struct mg_config *cfg = NULL;
	char err[512] = "";

	write_conf_len(MINIMAL, strlen(MINIMAL), 0644);
	ck_assert_msg(config_load(conf_path, &cfg, err, sizeof(err)) == 0, "%s", err);
	config_free(cfg);
	write_conf_len(MINIMAL, strlen(MINIMAL), 0440);
	ck_assert_msg(config_load(conf_path, &cfg, err, sizeof(err)) == 0, "%s", err);
	config_free(cfg);
}
END_TEST

START_TEST(test_not_a_regular_file)
{
	struct mg_config *cfg = (struct mg_config *)1;
	char err[512], dir[PATH_MAX], want[PATH_MAX + 64];

	ck_assert_int_lt(snprintf(dir, sizeof(dir), "%s/dir", tmpdir), (int)sizeof(dir));
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_int_eq(config_load(dir, &cfg, err, sizeof(err)), -1);
	ck_assert_int_lt(snprintf(want, sizeof(want), "%s: is not a regular file", dir),
			 (int)sizeof(want));
	ck_assert_str_eq(err, want);
}
END_TEST

/* libconfuse stops at a NUL; we must not silently ignore what follows. */
START_TEST(test_nul_byte)
{
	static const char text[] = "user = mg\n\0bogus = 1\n" MINIMAL;

	write_conf_len(text, sizeof(text) - 1, 0600);
	expect_load_error(2, "control character 0x00");
}
END_TEST

START_TEST(test_small_error_buffer)
{
	struct mg_config *cfg = (struct mg_config *)1;
	char err[20];

	memset(err, 'x', sizeof(err));
	write_conf("bogus = 1\n" MINIMAL);
	ck_assert_int_eq(config_load(conf_path, &cfg, err, 16), -1);
	ck_assert_uint_eq(strlen(err), 15);
	ck_assert_str_eq(err + 12, "...");
	ck_assert_int_eq(err[16], 'x');
	/* and no buffer at all */
	ck_assert_int_eq(config_load(conf_path, &cfg, NULL, 0), -1);
	ck_assert_ptr_null(cfg);
}
END_TEST

/* ---- warnings --------------------------------------------------------------- */

struct collected {
	int n;
	char msgs[4][512];
};

static void collect(const char *msg, void *arg)
{
	struct collected *c = arg;

	if (c->n < 4)
		snprintf(c->msgs[c->n], sizeof(c->msgs[0]), "%s", msg);
	c->n++;
}

START_TEST(test_warnings)
{
	struct mg_config *c = load_ok(
		"tls {\n certificate = \"/c\"\n key = \"/k\"\n require_forward_secrecy = false\n}\n"
		"backend remote {\n host = \"mail.example.com\"\n}\n"				/* 6 */
		"backend tls_noverify {\n host = \"10.0.0.2\"\n tls = starttls\n verify = false\n}\n"	/* 9 */
		"default_backend = remote\n" LISTEN_OK);
	struct collected got = { 0 };
	char want[PATH_MAX + 64];

	ck_assert_int_eq(config_warnings(c, collect, &got), 3);
	ck_assert_int_eq(got.n, 3);
	snprintf(want, sizeof(want), "%s:6: backend 'remote': tls = none towards mail.example.com", conf_path);
	ck_assert_msg(strncmp(got.msgs[0], want, strlen(want)) == 0, "%s", got.msgs[0]);
	snprintf(want, sizeof(want), "%s:9: backend 'tls_noverify': verify = false", conf_path);
	ck_assert_msg(strncmp(got.msgs[1], want, strlen(want)) == 0, "%s", got.msgs[1]);
	snprintf(want, sizeof(want), "%s:1: tls: require_forward_secrecy = false", conf_path);
	ck_assert_msg(strncmp(got.msgs[2], want, strlen(want)) == 0, "%s", got.msgs[2]);
	/* A NULL callback still counts. */
	ck_assert_int_eq(config_warnings(c, NULL, NULL), 3);
	config_free(c);
}
END_TEST

static const char *const loopback_hosts[] = {
	"127.0.0.1", "127.1.2.3", "::1", "localhost", "LocalHost", "::ffff:127.0.0.1",
};

START_TEST(test_no_warning_for_loopback)
{
	char text[1024];
	struct mg_config *c;
	struct collected got = { 0 };

	snprintf(text, sizeof(text), TLS_OK "backend b {\n host = \"%s\"\n verify = false\n}\n"
		 LISTEN_OK, loopback_hosts[_i]);
	c = load_ok(text);
	/* verify = false without TLS has nothing to verify: no warning either. */
	ck_assert_int_eq(config_warnings(c, collect, &got), 0);
	config_free(c);
}
END_TEST

START_TEST(test_warning_for_near_loopback)
{
	struct mg_config *c = load_ok(TLS_OK "backend b {\n host = \"128.0.0.1\"\n}\n" LISTEN_OK);

	ck_assert_int_eq(config_warnings(c, NULL, NULL), 1);
	config_free(c);
}
END_TEST

START_TEST(test_full_file_warnings)
{
	struct mg_config *c = load_ok(full_conf);
	struct collected got = { 0 };
	char want[PATH_MAX + 64];

	/* Only cyrus: implicit TLS with verify = false. */
	ck_assert_int_eq(config_warnings(c, collect, &got), 1);
	snprintf(want, sizeof(want), "%s:38: backend 'cyrus': verify = false", conf_path);
	ck_assert_msg(strncmp(got.msgs[0], want, strlen(want)) == 0, "%s", got.msgs[0]);
	config_free(c);
}
END_TEST

/* ---- small things ---------------------------------------------------------- */

START_TEST(test_protocol_names)
{
	ck_assert_str_eq(config_protocol_name(MG_PROTO_IMAP), "imap");
	ck_assert_str_eq(config_protocol_name(MG_PROTO_POP3), "pop3");
	ck_assert_str_eq(config_protocol_name(MG_PROTO_COUNT), "unknown");
	config_free(NULL);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("load");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_full_file);
	tcase_add_test(tc, test_struct_is_self_contained);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_boundaries_accepted);
	tcase_add_test(tc, test_listeners_may_share_port_on_other_addresses);
	tcase_add_test(tc, test_env_single_quotes_are_literal);
	tcase_add_test(tc, test_other_quoting);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_error_table, 0,
			    (int)(sizeof(error_cases) / sizeof(error_cases[0])));
	tcase_add_test(tc, test_missing_file);
	tcase_add_loop_test(tc, test_writable_by_others, 0,
			    (int)(sizeof(bad_modes) / sizeof(bad_modes[0])));
	tcase_add_test(tc, test_readable_modes_accepted);
	tcase_add_test(tc, test_not_a_regular_file);
	tcase_add_test(tc, test_nul_byte);
	tcase_add_test(tc, test_small_error_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("warnings");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_warnings);
	tcase_add_loop_test(tc, test_no_warning_for_loopback, 0,
			    (int)(sizeof(loopback_hosts) / sizeof(loopback_hosts[0])));
	tcase_add_test(tc, test_warning_for_near_loopback);
	tcase_add_test(tc, test_full_file_warnings);
	tcase_add_test(tc, test_protocol_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
