/*
 * check_config.c - unit tests for config.c: every value of a full file lands
 * in the struct, defaults apply, and every way a file can be wrong fails with
 * the exact "FILE:LINE: ..." message. Files are written to a fresh mkdtemp()
 * directory per test. Client sets, the user map (session_usermap.c, loaded with the
 * configuration), client_address and proxy_networks are covered here as
 * configuration; the routing decisions themselves are in check_session_route.c.
 * The typed options' table is walked here through real loads (each bound,
 * each default, into the right field); its entries alone are checked in
 * check_config_options.c.
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

#include "config_cidr.h"
#include "config.h"
#include "config_internal.h"
#include "check_config_table.h"
#include "session_route.h"
#include "session_usermap.h"
#include "check_run.h"

static char tmpdir[PATH_MAX];
static char conf_path[PATH_MAX];
static char map_path[PATH_MAX];
static char master_path[PATH_MAX];

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
	n = snprintf(map_path, sizeof(map_path), "%s/users.map", tmpdir);
	ck_assert(n > 0 && (size_t)n < sizeof(map_path));
	n = snprintf(master_path, sizeof(master_path), "%s/master.cred", tmpdir);
	ck_assert(n > 0 && (size_t)n < sizeof(master_path));
}

static void teardown(void)
{
	char sub[PATH_MAX];

	unlink(conf_path);
	unlink(map_path);
	unlink(master_path);
	rmdir(map_path);	/* one test makes it a directory */
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

/* Write the user map at map_path with exactly this mode. */
static void write_map(const char *text, mode_t mode)
{
	int fd = open(map_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	size_t len = strlen(text);

	ck_assert_msg(fd >= 0, "open %s: %s", map_path, strerror(errno));
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(close(fd), 0);
}

/*
 * A configuration text with every "@MAP@" replaced by map_path (the map
 * lives in the per-test directory, so the text is made at run time).
 */
static const char *with_map(const char *text)
{
	static char buf[8192];
	size_t out = 0;

	while (*text != '\0') {
		const char *piece = "@MAP@";
		size_t plen = strlen(piece);

		if (strncmp(text, piece, plen) == 0) {
			size_t mlen = strlen(map_path);

			ck_assert(out + mlen < sizeof(buf));
			memcpy(buf + out, map_path, mlen);
			out += mlen;
			text += plen;
		} else {
			ck_assert(out + 1 < sizeof(buf));
			buf[out++] = *text++;
		}
	}
	buf[out] = '\0';
	return buf;
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
/* Passing the client's address on, as config_warn.c asks of every backend. */
#define BACKEND_OK	"backend b {\n host = \"127.0.0.1\" client_address = proxy-v2\n}\n"	/* 3 */
#define BACKEND_BARE	"backend b {\n host = \"127.0.0.1\"\n}\n"			/* 3 */
#define LISTEN_OK	"listen l {\n protocol = imap\n port = 143\n}\n"		/* 4 */
#define MINIMAL		TLS_OK BACKEND_OK LISTEN_OK
/* Every option of the backend at its default. */
#define MINIMAL_BARE	TLS_OK BACKEND_BARE LISTEN_OK

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
	"  host = \"10.1.2.3\"  client_address = proxy-v2\n"
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
	"  host = \"::1\"  client_address = imap-id\n"
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
	ck_assert_int_eq(c->tls.profile.min_version, MG_TLS_1_3);
	ck_assert_str_eq(c->tls.profile.ciphers, "ECDHE+AESGCM");
	ck_assert_str_eq(c->tls.profile.ciphersuites, "TLS_AES_256_GCM_SHA384");
	ck_assert(c->tls.profile.require_forward_secrecy);
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
	struct mg_config *c = load_ok(MINIMAL_BARE);
	const struct mg_listener_config *l;

	ck_assert_str_eq(c->user, "mailgate");
	ck_assert_ptr_null(c->group);
	ck_assert_str_eq(c->pid_file, "/run/mailgated.pid");
	ck_assert_str_eq(c->session_user, "mailgate-session");
	ck_assert_str_eq(c->session_chroot, "/run/mailgate/empty");
	ck_assert_uint_eq(c->engines, 0);	/* auto: one per CPU */
	ck_assert_int_eq(c->log_level, MG_LOG_INFO);
	ck_assert_uint_eq(c->max_connections, 1000);
	ck_assert_uint_eq(c->max_connections_per_ip, 0);
	ck_assert_uint_eq(c->max_prelogin_per_ip, 50);
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

	ck_assert_int_eq(c->tls.profile.min_version, MG_TLS_1_2);
	ck_assert_ptr_null(c->tls.profile.ciphers);
	ck_assert_ptr_null(c->tls.profile.ciphersuites);
	ck_assert(c->tls.profile.require_forward_secrecy);
	ck_assert_int_eq(c->tls.line, 1);
	ck_assert_ptr_null(c->tls.certificate_dir);
	ck_assert(!c->tls.sni_strict);
	ck_assert(c->tls.certificate_watch);
	ck_assert_str_eq(c->tls.last_good_dir, "/run/mailgate/last-good");

	ck_assert_uint_eq(c->n_backends, 1);
	ck_assert_uint_eq(c->backends[0].imap_port, 143);
	ck_assert_uint_eq(c->backends[0].pop3_port, 110);
	ck_assert_int_eq(c->backends[0].tls, MG_BACKEND_TLS_NONE);
	ck_assert(c->backends[0].verify);
	ck_assert_ptr_null(c->backends[0].ca_file);
	ck_assert_ptr_null(c->backends[0].verify_name);
	ck_assert_int_eq(c->backends[0].line, 5);
	ck_assert_int_eq(c->backends[0].client_address, MG_CLIENT_ADDRESS_NONE);
	/* The only backend is the default. */
	ck_assert_ptr_eq(c->default_backend, &c->backends[0]);

	l = &c->listeners[0];
	ck_assert_uint_eq(l->n_addresses, 2);
	ck_assert_str_eq(l->addresses[0], "0.0.0.0");
	ck_assert_str_eq(l->addresses[1], "::");
	ck_assert_int_eq(l->tls, MG_LISTEN_STARTTLS);
	ck_assert_ptr_null(l->backend);
	ck_assert_int_eq(l->line, 8);
	ck_assert_uint_eq(l->n_proxy_networks, 0);
	ck_assert_ptr_null(l->proxy_networks);
	/* A listener serves the tls section's pair, and no certificates by name. */
	ck_assert_str_eq(l->certificate, "/c.pem");
	ck_assert_str_eq(l->key, "/k.pem");
	ck_assert_ptr_null(l->certificate_dir);

	/* No client sets, no user map: everybody must use TLS. */
	ck_assert_int_eq(c->cleartext_default, MG_CLEARTEXT_REFUSE);
	ck_assert_uint_eq(c->n_client_sets, 0);
	ck_assert_ptr_null(c->client_sets);
	ck_assert_ptr_null(c->user_map);
	ck_assert_uint_eq(c->n_user_routes, 0);
	ck_assert_ptr_null(c->user_routes);
	config_free(c);
}
END_TEST

START_TEST(test_engines_number)
{
	struct mg_config *c;

	c = load_ok("engines = 3\nsession_user = \"nobody\"\n"
		    "session_chroot = \"/var/empty\"\n" MINIMAL);
	ck_assert_uint_eq(c->engines, 3);
	ck_assert_str_eq(c->session_user, "nobody");
	ck_assert_str_eq(c->session_chroot, "/var/empty");
	config_free(c);
	c = load_ok("engines = auto\n" MINIMAL);
	ck_assert_uint_eq(c->engines, 0);
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

/* ---- the typed options' table, through real loads ---------------------- */

/* The struct a section's table fills, in a config loaded from typed_all_conf. */
static const void *typed_struct(const struct mg_config *c, const char *section)
{
	if (strcmp(section, "root") == 0)
		return c;
	if (strcmp(section, "tls") == 0)
		return &c->tls;
	if (strcmp(section, "tls_profile") == 0 && c->n_tls_profiles > 0)
		return &c->tls_profiles[0];
	if (strcmp(section, "backend") == 0 && c->n_backends > 0)
		return &c->backends[0];
	if (strcmp(section, "listen") == 0 && c->n_listeners > 0)
		return &c->listeners[0];
	if (strcmp(section, "client") == 0 && c->n_client_sets > 0)
		return &c->client_sets[0];
	ck_abort_msg("no struct for section '%s' (a new table needs a case here)", section);
	return NULL;
}

/* What a load put into the field o describes. */
static long typed_field(const struct config_option *o, const void *base)
{
	const unsigned char *field = (const unsigned char *)base + o->offset;

	switch (o->type) {
	case CONFIG_UNSIGNED: {
		unsigned v;

		memcpy(&v, field, sizeof(v));
		return (long)v;
	}
	case CONFIG_SIZE: {
		size_t v;

		memcpy(&v, field, sizeof(v));
		return (long)v;
	}
	case CONFIG_ENUM: {
		int v;

		memcpy(&v, field, sizeof(v));
		return v;
	}
	case CONFIG_BOOL: {
		bool v;

		memcpy(&v, field, sizeof(v));
		return v;
	}
	}
	ck_abort_msg("%s: unknown type", o->name);
	return -1;
}

/*
 * A valid file with "NAME = VALUE" in the given section; *line is where
 * that line is. Only the sections with numbers need it.
 */
static const char *typed_conf(const char *section, const char *name, const char *value, int *line)
{
	static char buf[1024];
	int n;

	if (strcmp(section, "root") == 0) {
		n = snprintf(buf, sizeof(buf), "%s = %s\n" MINIMAL, name, value);
		*line = 1;
	} else if (strcmp(section, "backend") == 0) {
		n = snprintf(buf, sizeof(buf), TLS_OK "backend b {\n host = \"127.0.0.1\"\n"
			     " %s = %s\n}\n" LISTEN_OK, name, value);
		*line = 7;
	} else if (strcmp(section, "listen") == 0) {
		/* The listener needs a port, unless port is the option tried. */
		int port = strcmp(name, "port") == 0;

		n = snprintf(buf, sizeof(buf), TLS_OK BACKEND_OK "listen l {\n protocol = imap\n"
			     "%s %s = %s\n}\n", port ? "" : " port = 143\n", name, value);
		*line = port ? 10 : 11;
	} else {
		ck_abort_msg("no file for a number in section '%s' (add one here)", section);
		return NULL;
	}
	ck_assert(n > 0 && (size_t)n < sizeof(buf));
	return buf;
}

/* Every number: both bounds land in its field; one past each is refused at its line. */
START_TEST(test_typed_number_bounds)
{
	const struct config_table *t = NULL;
	const struct config_option *o = typed_option((size_t)_i, &t);
	const char *section = t != NULL ? t->section : NULL;
	unsigned long bounds[2], outside[2];
	char value[32], want[160];
	int line;

	ck_assert_ptr_nonnull(o);
	if (o->type != CONFIG_UNSIGNED && o->type != CONFIG_SIZE)
		return;
	bounds[0] = o->min;
	bounds[1] = o->max;
	for (int b = 0; b < 2; b++) {
		struct mg_config *c;

		snprintf(value, sizeof(value), "%lu", bounds[b]);
		c = load_ok(typed_conf(section, o->name, value, &line));
		ck_assert_msg(typed_field(o, typed_struct(c, section)) == (long)bounds[b],
			      "%s = %s did not reach its field", o->name, value);
		config_free(c);
	}
	outside[0] = o->min - 1;	/* skipped below when min is 0 */
	outside[1] = o->max + 1;
	for (int b = o->min == 0 ? 1 : 0; b < 2; b++) {
		snprintf(value, sizeof(value), "%lu", outside[b]);
		write_conf(typed_conf(section, o->name, value, &line));
		snprintf(want, sizeof(want), "%s = %s is out of range (%lu..%lu)", o->name, value,
			 o->min, o->max);
		expect_load_error(line, want);
	}
}
END_TEST

/* One of each section, saying nothing it need not say. */
static const char typed_all_conf[] =
	MINIMAL_BARE
	"tls_profile p {\n}\n"
	"client c {\n networks = { \"192.0.2.0/24\" }\n}\n";

/* Every option with a default: a file that omits it gets the table's default. */
START_TEST(test_typed_defaults)
{
	struct mg_config *c = load_ok(typed_all_conf);
	int n = n_typed_options();

	for (int i = 0; i < n; i++) {
		const struct config_table *t = NULL;
		const struct config_option *o = typed_option((size_t)i, &t);
		const char *section = t->section;

		if (o->no_default)
			continue;
		ck_assert_msg(typed_field(o, typed_struct(c, section)) == o->def,
			      "%s %s: %ld, not the default %ld", section, o->name,
			      typed_field(o, typed_struct(c, section)), o->def);
	}
	/* Left alone: the caller's defaults for what has none in the table. */
	ck_assert_int_eq(c->listeners[0].auth, MG_AUTH_DEFAULT);
	ck_assert_int_eq(c->client_sets[0].auth, MG_AUTH_DEFAULT);
	ck_assert_uint_eq(c->backends[0].imap_port, 143);
	ck_assert_uint_eq(c->backends[0].pop3_port, 110);
	config_free(c);
}
END_TEST

/* Every word of every option lands in its field as the value it stands for. */
START_TEST(test_typed_words)
{
	const struct config_table *t = NULL;
	const struct config_option *o = typed_option((size_t)_i, &t);
	const char *section = t->section;

	for (size_t w = 0; w < o->n_words; w++) {
		char text[2048];
		struct mg_config *c;
		int n;

		/* Each section's option in a file that is otherwise typed_all_conf. */
		if (strcmp(section, "root") == 0)
			n = snprintf(text, sizeof(text), "%s = %s\n%s", o->name, o->words[w].word,
				     typed_all_conf);
		else if (strcmp(section, "tls") == 0)
			n = snprintf(text, sizeof(text), "tls {\n certificate = \"/c.pem\"\n"
				     " key = \"/k.pem\"\n %s = %s\n}\n" BACKEND_OK LISTEN_OK
				     "tls_profile p {\n}\nclient c {\n networks = { \"192.0.2.0/24\" }\n}\n",
				     o->name, o->words[w].word);
		else if (strcmp(section, "tls_profile") == 0)
			n = snprintf(text, sizeof(text), MINIMAL "tls_profile p {\n %s = %s\n}\n"
				     "client c {\n networks = { \"192.0.2.0/24\" }\n}\n",
				     o->name, o->words[w].word);
		else if (strcmp(section, "backend") == 0)
			n = snprintf(text, sizeof(text), TLS_OK "backend b {\n host = \"127.0.0.1\"\n"
				     " %s = %s\n}\n" LISTEN_OK "tls_profile p {\n}\n"
				     "client c {\n networks = { \"192.0.2.0/24\" }\n}\n",
				     o->name, o->words[w].word);
		else if (strcmp(section, "listen") == 0)
			n = snprintf(text, sizeof(text), TLS_OK BACKEND_OK "listen l {\n"
				     "%s port = 143\n %s = %s\n}\ntls_profile p {\n}\n"
				     "client c {\n networks = { \"192.0.2.0/24\" }\n}\n",
				     strcmp(o->name, "protocol") == 0 ? "" : " protocol = imap\n",
				     o->name, o->words[w].word);
		else if (strcmp(section, "client") == 0)
			n = snprintf(text, sizeof(text), MINIMAL "tls_profile p {\n}\n"
				     "client c {\n networks = { \"192.0.2.0/24\" }\n %s = %s\n}\n",
				     o->name, o->words[w].word);
		else
			ck_abort_msg("no file for section '%s' (add one here)", section);
		ck_assert(n > 0 && (size_t)n < sizeof(text));
		/* Words valid alone but refused in this small file (master without its file). */
		if (strcmp(o->name, "backend_login") == 0 && o->words[w].value == MG_BACKEND_LOGIN_MASTER)
			continue;
		c = load_ok(text);
		ck_assert_msg(typed_field(o, typed_struct(c, section)) == o->words[w].value,
			      "%s %s = %s did not reach its field", section, o->name, o->words[w].word);
		config_free(c);
	}
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

/* ---- client sets, the user map, client addresses -------------------------- */

static const char routing_conf[] =
	"cleartext_auth = warn\n"				/* 1 */
	"user_map = \"@MAP@\"\n"
	"default_backend = \"main\"\n"
	TLS_OK							/* 4..7 */
	"backend main {\n"					/* 8 */
	"  host = \"10.0.0.25\"\n"
	"  tls = starttls\n"					/* 10 */
	"  client_address = proxy-v2\n"
	"}\n"
	"backend legacy {\n"					/* 13 */
	"  host = \"127.0.0.1\"\n"
	"  client_address = imap-id\n"				/* 15 */
	"}\n"
	"backend store2 {\n"					/* 17 */
	"  host = \"::1\"\n"
	"  client_address = proxy-v1\n"
	"}\n"							/* 20 */
	"backend plain {\n"					/* 21 */
	"  host = \"127.0.0.2\"\n"
	"  client_address = none\n"
	"}\n"
	"client printers {\n"					/* 25 */
	"  networks = { \"192.0.2.0/24\",  # comments in lists work\n"
	"               \"2001:db8:50::/64\" }\n"
	"  cleartext_auth = allow\n"
	"  backend = \"legacy\"\n"
	"}\n"							/* 30 */
	"client migrating {\n"					/* 31 */
	"  networks = { \"198.51.100.7\" }\n"
	"  cleartext_auth = warn\n"
	"}\n"
	"client webmail {\n"					/* 35 */
	"  networks = \"10.0.0.20\"\n"
	"  trusted = true\n"
	"}\n"
	"client inside {\n"					/* 39 */
	"  networks = { \"10.0.0.0/8\", \"::ffff:172.16.0.0/108\" }\n"	/* 40 */
	"  cleartext_auth = refuse\n"
	"  trusted = false\n"
	"}\n"
	"listen imaps_lb {\n"					/* 44 */
	"  protocol = imap\n"					/* 45 */
	"  address = \"10.0.0.10\"\n"
	"  port = 993\n"
	"  tls = implicit\n"
	"  proxy_networks = { \"10.0.0.2\", \"10.0.0.3/32\", \"2001:db8:ff::/48\" }\n"
	"}\n"							/* 50 */
	"listen imap {\n"					/* 51 */
	"  protocol = imap\n"
	"  port = 143\n"
	"  backend = \"store2\"\n"
	"}\n";							/* 55 */

/* Keys in any case, comments, blank lines, tabs and CRLF. */
static const char routing_map[] =
	"# user or @domain      backend\n"			/* 1 */
	"Alice@Example.COM      legacy\n"
	"\n"
	"@example.org\tstore2   # a whole domain\r\n"
	"   bob main\n"						/* 5 */
	"@EXAMPLE.net plain";					/* no final newline */

static struct mg_ipkey ipkey(const char *text)
{
	struct mg_cidr host;
	const char *error = NULL;

	ck_assert_msg(cidr_parse(text, &host, &error) == 0, "%s: %s", text, error);
	return host.network;
}

static void assert_network(const struct mg_cidr *net, const char *want)
{
	char buf[64];

	ck_assert_str_eq(cidr_format(net, buf, sizeof(buf)), want);
}

START_TEST(test_routing_file)
{
	struct mg_config *c;
	const struct mg_backend_config *main_b, *legacy, *store2, *plain;
	const struct mg_client_set_config *printers, *migrating, *webmail, *inside;
	const struct mg_listener_config *lb, *imap;
	const char *matched = NULL;
	struct mg_ipkey k;

	write_map(routing_map, 0644);
	c = load_ok(with_map(routing_conf));

	ck_assert_int_eq(c->cleartext_default, MG_CLEARTEXT_WARN);
	ck_assert_str_eq(c->user_map, map_path);

	ck_assert_uint_eq(c->n_backends, 4);
	main_b = &c->backends[0];
	legacy = &c->backends[1];
	store2 = &c->backends[2];
	plain = &c->backends[3];
	ck_assert_ptr_eq(c->default_backend, main_b);
	ck_assert_int_eq(main_b->client_address, MG_CLIENT_ADDRESS_PROXY_V2);
	ck_assert_int_eq(legacy->client_address, MG_CLIENT_ADDRESS_IMAP_ID);
	ck_assert_int_eq(store2->client_address, MG_CLIENT_ADDRESS_PROXY_V1);
	ck_assert_int_eq(plain->client_address, MG_CLIENT_ADDRESS_NONE);

	/* Client sets, in file order, with their section lines. */
	ck_assert_uint_eq(c->n_client_sets, 4);
	printers = &c->client_sets[0];
	migrating = &c->client_sets[1];
	webmail = &c->client_sets[2];
	inside = &c->client_sets[3];

	ck_assert_str_eq(printers->name, "printers");
	ck_assert_int_eq(printers->line, 25);
	ck_assert_uint_eq(printers->n_networks, 2);
	assert_network(&printers->networks[0], "192.0.2.0/24");
	assert_network(&printers->networks[1], "2001:db8:50::/64");
	ck_assert_int_eq(printers->cleartext, MG_CLEARTEXT_ALLOW);
	ck_assert(!printers->trusted);
	ck_assert_ptr_eq(printers->backend, legacy);

	ck_assert_str_eq(migrating->name, "migrating");
	ck_assert_int_eq(migrating->line, 31);
	ck_assert_uint_eq(migrating->n_networks, 1);
	assert_network(&migrating->networks[0], "198.51.100.7/32");	/* an address is a /32 */
	ck_assert_int_eq(migrating->cleartext, MG_CLEARTEXT_WARN);
	ck_assert(!migrating->trusted);
	ck_assert_ptr_null(migrating->backend);

	/* A single string is a list of one; the policy defaults to refuse. */
	ck_assert_str_eq(webmail->name, "webmail");
	ck_assert_int_eq(webmail->line, 35);
	ck_assert_uint_eq(webmail->n_networks, 1);
	assert_network(&webmail->networks[0], "10.0.0.20/32");
	ck_assert_int_eq(webmail->cleartext, MG_CLEARTEXT_REFUSE);
	ck_assert(webmail->trusted);
	ck_assert_ptr_null(webmail->backend);

	ck_assert_str_eq(inside->name, "inside");
	ck_assert_int_eq(inside->line, 39);
	ck_assert_uint_eq(inside->n_networks, 2);
	assert_network(&inside->networks[0], "10.0.0.0/8");
	assert_network(&inside->networks[1], "172.16.0.0/12");	/* v4-mapped is IPv4 */
	ck_assert_int_eq(inside->cleartext, MG_CLEARTEXT_REFUSE);
	ck_assert(!inside->trusted);

	/* The parsed networks really match: first set wins, in file order. */
	k = ipkey("192.0.2.77");
	ck_assert_ptr_eq(route_client_set(c, &k, NULL), printers);
	k = ipkey("2001:db8:50::9");
	ck_assert_ptr_eq(route_client_set(c, &k, NULL), printers);
	k = ipkey("10.0.0.20");
	ck_assert_ptr_eq(route_client_set(c, &k, NULL), webmail);	/* before inside's 10/8 */
	k = ipkey("10.9.9.9");
	ck_assert_ptr_eq(route_client_set(c, &k, NULL), inside);
	k = ipkey("172.31.255.1");
	ck_assert_ptr_eq(route_client_set(c, &k, NULL), inside);
	k = ipkey("198.51.100.8");
	ck_assert_ptr_null(route_client_set(c, &k, NULL));
	ck_assert_int_eq(route_cleartext_policy(c, NULL), MG_CLEARTEXT_WARN);
	ck_assert_int_eq(route_cleartext_policy(c, inside), MG_CLEARTEXT_REFUSE);

	/* Listeners: proxy_networks parsed, absent means none. */
	ck_assert_uint_eq(c->n_listeners, 2);
	lb = &c->listeners[0];
	imap = &c->listeners[1];
	ck_assert_int_eq(lb->line, 44);
	ck_assert_uint_eq(lb->n_proxy_networks, 3);
	assert_network(&lb->proxy_networks[0], "10.0.0.2/32");
	assert_network(&lb->proxy_networks[1], "10.0.0.3/32");
	assert_network(&lb->proxy_networks[2], "2001:db8:ff::/48");
	ck_assert_ptr_null(lb->backend);
	ck_assert_uint_eq(imap->n_proxy_networks, 0);
	ck_assert_ptr_null(imap->proxy_networks);
	ck_assert_ptr_eq(imap->backend, store2);

	/* The user map: lower-cased keys, sorted, backends resolved. */
	ck_assert_uint_eq(c->n_user_routes, 4);
	ck_assert_str_eq(c->user_routes[0].key, "@example.net");
	ck_assert_ptr_eq(c->user_routes[0].backend, plain);
	ck_assert_str_eq(c->user_routes[1].key, "@example.org");
	ck_assert_ptr_eq(c->user_routes[1].backend, store2);
	ck_assert_str_eq(c->user_routes[2].key, "alice@example.com");
	ck_assert_ptr_eq(c->user_routes[2].backend, legacy);
	ck_assert_str_eq(c->user_routes[3].key, "bob");
	ck_assert_ptr_eq(c->user_routes[3].backend, main_b);
	ck_assert_ptr_eq(usermap_lookup(c->user_routes, c->n_user_routes, "ALICE@example.com",
					17, &matched), legacy);
	ck_assert_str_eq(matched, "user");
	ck_assert_ptr_eq(usermap_lookup(c->user_routes, c->n_user_routes, "zoe@Example.Org",
					15, &matched), store2);
	ck_assert_str_eq(matched, "domain");
	ck_assert_ptr_null(usermap_lookup(c->user_routes, c->n_user_routes, "zoe@sub.example.org",
					  19, &matched));
	config_free(c);
}
END_TEST

/* An empty map (or one with only comments) is valid: nobody is routed by it. */
START_TEST(test_empty_user_map)
{
	struct mg_config *c;

	write_map("# nobody yet\n\n   \t\n", 0640);
	c = load_ok(with_map("user_map = '@MAP@'\n" MINIMAL));
	ck_assert_str_eq(c->user_map, map_path);
	ck_assert_uint_eq(c->n_user_routes, 0);
	config_free(c);
}
END_TEST

/* The map belongs to the configuration: a second load sees the new map. */
START_TEST(test_user_map_read_on_each_load)
{
	struct mg_config *a, *b;

	write_map("carol b\n", 0600);
	a = load_ok(with_map("user_map = \"@MAP@\"\n" MINIMAL));
	write_map("carol b\ndave b\n", 0600);
	b = load_ok(with_map("user_map = \"@MAP@\"\n" MINIMAL));
	ck_assert_uint_eq(a->n_user_routes, 1);
	ck_assert_uint_eq(b->n_user_routes, 2);
	ck_assert_str_eq(a->user_routes[0].key, "carol");
	ck_assert_ptr_eq(b->user_routes[1].backend, &b->backends[0]);
	config_free(a);
	config_free(b);
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

	/* client sets: errors at the line of the client section */
	{ MINIMAL "client c {\n networks = { \"192.0.2.0/24\" }\n backend = \"nope\"\n}\n", 12,
	  "client 'c': no backend section is called 'nope'" },
	{ "\n\nclient c {\n networks = {\n \"192.0.2.0/24\"\n }\n\n backend = \"B\"\n}\n" MINIMAL, 3,
	  "client 'c': no backend section is called 'B'" },
	{ MINIMAL "client c {\n networks = { \"192.0.2.1/24\" }\n}\n", 12,
	  "client 'c': networks: '192.0.2.1/24' is not a network: "
	  "host bits set after the prefix length" },
	{ MINIMAL "client c {\n networks = {\n  \"10.0.0.0/8\",\n  \"mail.example.com\"\n }\n}\n", 12,
	  "client 'c': networks: 'mail.example.com' is not a network: bad IPv4 address" },
	{ MINIMAL "client c {\n networks = { \"2001:db8::/129\" }\n}\n", 12,
	  "networks: '2001:db8::/129' is not a network: bad prefix length (0..128" },
	{ MINIMAL "client c {\n networks = { \"10.0.0.0/08\" }\n}\n", 12,
	  "networks: '10.0.0.0/08' is not a network: bad prefix length (0..32" },
	{ MINIMAL "client c {\n networks = { \"/24\" }\n}\n", 12,
	  "networks: '/24' is not a network: missing address before '/'" },
	{ MINIMAL "client c {\n cleartext_auth = allow\n backend = \"b\"\n}\n", 12,
	  "client 'c': networks or local_names is required" },
	{ MINIMAL "client c {\n networks = {}\n}\n", 12, "client 'c': networks or local_names is required" },
	{ MINIMAL "client c {\n networks = { \"192.0.2.0/24\" }\n}\n"
	  "client c {\n networks = { \"198.51.100.0/24\" }\n}\n", 15, "duplicate title 'c'" },
	{ MINIMAL "client \"a b\" {\n networks = { \"192.0.2.0/24\" }\n}\n", 12,
	  "client name 'a b' must be 1 to 64 letters, digits" },
	{ MINIMAL "client c {\n networks = { \"192.0.2.0/24\" }\n trusted = maybe\n}\n", 14,
	  "invalid boolean value for option 'trusted'" },
	{ MINIMAL "client c {\n networks = { \"192.0.2.0/24\" }\n backend = \"\"\n}\n", 14,
	  "backend must not be empty" },
	{ MINIMAL "client c {\n networks = { \"192.0.2.0/24\" }\n cleartext_auth = warn\n"
	  " cleartext_auth = allow\n}\n", 15, "cleartext_auth is set twice (first on line 14)" },
	{ MINIMAL "client c {\n networks = { \"192.0.2.0/24\" }\n colour = red\n}\n", 14,
	  "no such option 'colour'" },

	/* proxy_networks: errors at the line of the listener */
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n port = 143\n"
	  " proxy_networks = { \"10.0.0.300\" }\n}\n", 8,
	  "listen 'l': proxy_networks: '10.0.0.300' is not a network: bad IPv4 address" },
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n port = 143\n"
	  " proxy_networks = {\n \"10.0.0.2\",\n \"2001:db8::1/64\"\n }\n}\n", 8,
	  "listen 'l': proxy_networks: '2001:db8::1/64' is not a network: host bits set" },
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n port = 143\n"
	  " proxy_networks = { \"lb1.example.net\" }\n}\n", 8,
	  "proxy_networks: 'lb1.example.net' is not a network" },

	/* unknown words */
	{ "cleartext_auth = maybe\n" MINIMAL, 1,
	  "cleartext_auth: unknown value 'maybe' (expected refuse, warn or allow)" },
	{ "cleartext_auth = Allow\n" MINIMAL, 1, "cleartext_auth: unknown value 'Allow'" },
	{ MINIMAL "client c {\n networks = { \"192.0.2.0/24\" }\n cleartext_auth = plain\n}\n", 14,
	  "cleartext_auth: unknown value 'plain' (expected refuse, warn or allow)" },
	{ TLS_OK "backend b {\n host = \"x\"\n client_address = xclient\n}\n" LISTEN_OK, 7,
	  "client_address: unknown value 'xclient' (expected none, proxy-v1, proxy-v2 or imap-id)" },
	{ TLS_OK "backend b {\n host = \"x\"\n client_address = PROXY-V2\n}\n" LISTEN_OK, 7,
	  "client_address: unknown value 'PROXY-V2'" },
	{ TLS_OK "backend b {\n host = \"x\"\n client_address = proxy\n}\n" LISTEN_OK, 7,
	  "client_address: unknown value 'proxy'" },
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n port = 143\n client_address = proxy-v2\n}\n",
	  11, "no such option 'client_address'" },
	{ "user_map = \"\"\n" MINIMAL, 1, "user_map must not be empty" },

	/* the process model */
	{ "engines = 0\n" MINIMAL, 1, "engines = 0 is out of range (1..64)" },
	{ "engines = 65\n" MINIMAL, 1, "engines = 65 is out of range (1..64)" },
	{ "engines = many\n" MINIMAL, 1, "engines: 'many' is not a decimal number" },
	{ "engines = AUTO\n" MINIMAL, 1, "engines: 'AUTO' is not a decimal number" },
	{ "user = \"mg\"\nsession_user = \"mg\"\n" MINIMAL, 2,
	  "session_user must differ from user" },
	{ "session_chroot = \"var/empty\"\n" MINIMAL, 1,
	  "session_chroot must be an absolute path" },

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

/* ---- errors in the user map ----------------------------------------------------- */

/*
 * The configuration names the map on line 3; a map error is reported there,
 * followed by the map's own "MAPFILE:LINE: ..." (or "MAPFILE: ...").
 */
#define MAP_CONF "# the map\n\nuser_map = \"@MAP@\"\n" MINIMAL

struct map_error_case {
	const char *map;	/* NULL: no map file at all */
	mode_t mode;
	int map_line;		/* 0: the map message has no line */
	const char *needle;
};

static const struct map_error_case map_error_cases[] = {
	{ "alice b\nbob nosuch\n", 0600, 2, "no backend section is called 'nosuch'" },
	{ "# backends are case sensitive\n\nalice B\n", 0644, 3,
	  "no backend section is called 'B'" },
	{ "alice\n", 0600, 1, "expected \"user-or-@domain backend\"" },
	{ "alice b\n\n  carol b extra\n", 0600, 3, "expected \"user-or-@domain backend\"" },
	{ "alice b # a comment\ncarol b#x y\ndave\t#b\n", 0600, 3,
	  "expected \"user-or-@domain backend\"" },
	{ "@ b\n", 0600, 1, "bad user or domain" },
	{ "Alice@Example.com b\nbob b\nALICE@example.COM b\n", 0600, 3,
	  "'alice@example.com' is mapped twice (first on line 1)" },
	{ "@example.org b\n@Example.Org b\n", 0600, 2,
	  "'@example.org' is mapped twice (first on line 1)" },
	{ "alice\001x b\n", 0600, 1, "control character in the map" },
	{ "ok b\nalice b\vx\n", 0600, 2, "control character in the map" },
	{ NULL, 0, 0, "cannot open: No such file or directory" },
	{ "alice b\n", 0620, 0, "is writable by group or others; refusing" },
	{ "alice b\n", 0602, 0, "is writable by group or others; refusing" },
};

START_TEST(test_user_map_errors)
{
	const struct map_error_case *mc = &map_error_cases[_i];
	char needle[PATH_MAX + 256];

	if (mc->map != NULL)
		write_map(mc->map, mc->mode);
	write_conf(with_map(MAP_CONF));
	if (mc->map_line > 0)
		snprintf(needle, sizeof(needle), "user_map: %s:%d: %s", map_path, mc->map_line,
			 mc->needle);
	else
		snprintf(needle, sizeof(needle), "user_map: %s: %s", map_path, mc->needle);
	expect_load_error(3, needle);
}
END_TEST

/* The whole message, exactly, for the error the operator meets most. */
START_TEST(test_user_map_unknown_backend_message)
{
	struct mg_config *cfg = (struct mg_config *)1;
	char err[1024], want[2 * PATH_MAX + 128];

	write_map("frank@example.com b\nzed nosuch\n", 0644);
	write_conf(with_map("user_map = \"@MAP@\"\n" MINIMAL));
	ck_assert_int_eq(config_load(conf_path, &cfg, err, sizeof(err)), -1);
	ck_assert_ptr_null(cfg);
	snprintf(want, sizeof(want), "%s:1: user_map: %s:2: no backend section is called 'nosuch'",
		 conf_path, map_path);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_user_map_not_a_regular_file)
{
	char needle[PATH_MAX + 64];

	ck_assert_int_eq(mkdir(map_path, 0700), 0);
	write_conf(with_map(MAP_CONF));
	snprintf(needle, sizeof(needle), "user_map: %s: is not a regular file", map_path);
	expect_load_error(3, needle);
}
END_TEST

/* The map's backends are resolved against this file's: a map naming a backend
 * that only another configuration has is an error here. */
START_TEST(test_user_map_sees_only_its_configuration)
{
	struct mg_config *c;

	write_map("alice legacy\n", 0600);
	c = load_ok(with_map("user_map = \"@MAP@\"\ndefault_backend = b\n" MINIMAL
			     "backend legacy {\n host = \"127.0.0.3\"\n}\n"));
	ck_assert_ptr_eq(c->user_routes[0].backend, &c->backends[1]);
	config_free(c);
	write_conf(with_map("user_map = \"@MAP@\"\n" MINIMAL));
	{
		char needle[PATH_MAX + 64];

		snprintf(needle, sizeof(needle), "user_map: %s:1: no backend section is called "
			 "'legacy'", map_path);
		expect_load_error(1, needle);
	}
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

/* c has exactly one warning, and it starts with want. */
static void expect_one_warning(const struct mg_config *c, const char *want)
{
	struct collected got = { 0 };

	ck_assert_int_eq(config_warnings(c, collect, &got), 1);
	ck_assert_msg(strncmp(got.msgs[0], want, strlen(want)) == 0, "%s", got.msgs[0]);
}

START_TEST(test_warnings)
{
	struct mg_config *c = load_ok(
		"tls {\n certificate = \"/c\"\n key = \"/k\"\n require_forward_secrecy = false\n}\n"
		"backend remote {\n host = \"mail.example.com\" client_address = imap-id\n}\n"	/* 6 */
		"backend tls_noverify {\n host = \"10.0.0.2\" client_address = imap-id\n"	/* 9 */
		" tls = starttls\n verify = false\n}\n"
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

	snprintf(text, sizeof(text), TLS_OK "backend b {\n host = \"%s\" client_address = proxy-v2\n"
		 " verify = false\n}\n"
		 LISTEN_OK, loopback_hosts[_i]);
	c = load_ok(text);
	/* verify = false without TLS has nothing to verify: no warning either. */
	ck_assert_int_eq(config_warnings(c, collect, &got), 0);
	config_free(c);
}
END_TEST

static const char *const client_addresses[] = { "none", "proxy-v1", "proxy-v2", "imap-id" };

/* A backend that sees no client address lets one guesser slow everyone (its penalty). */
START_TEST(test_client_address_warning)
{
	char text[1024], want[PATH_MAX + 256];
	struct mg_config *c;

	snprintf(text, sizeof(text), TLS_OK "backend b {\n host = \"127.0.0.1\"\n"	/* 5 */
		 " client_address = %s\n}\n" LISTEN_OK, client_addresses[_i]);
	c = load_ok(text);
	if (_i == 0) {
		snprintf(want, sizeof(want), "%s:5: backend 'b': client_address = none: it sees "
			 "every login coming from this gateway, so its penalty for failed logins "
			 "(Dovecot's auth_penalty) slows every user", conf_path);
		expect_one_warning(c, want);
	} else {
		ck_assert_int_eq(config_warnings(c, NULL, NULL), 0);
	}
	config_free(c);
}
END_TEST

/* Durations: ban_window and ban_time take s, m, h, d; other numbers do not. */
START_TEST(test_durations)
{
	struct mg_config *c = load_ok(MINIMAL "ban_window = 10m\nban_time = 1h\n");	/* 12, 13 */

	ck_assert_uint_eq(c->ban_window, 600);
	ck_assert_uint_eq(c->ban_time, 3600);
	config_free(c);
	c = load_ok(MINIMAL "ban_window = 90s\nban_time = 30d\n");
	ck_assert_uint_eq(c->ban_window, 90);
	ck_assert_uint_eq(c->ban_time, 30 * 86400);
	config_free(c);
	write_conf(MINIMAL "ban_time = 31d\n");
	expect_load_error(12, "ban_time = 31d is out of range (1..2592000)");
	write_conf(MINIMAL "ban_time = 99999999999999999d\n");
	expect_load_error(12, "is out of range");
	write_conf(MINIMAL "ban_window = 5x\n");
	expect_load_error(12, "ban_window: '5x' is not a decimal number");
	write_conf(MINIMAL "ban_window = 1m5\n");
	expect_load_error(12, "is not a decimal number");
	write_conf(MINIMAL "ban_window = m\n");
	expect_load_error(12, "is not a decimal number");
	write_conf(MINIMAL "login_timeout = 1m\n");
	expect_load_error(12, "login_timeout: '1m' is not a decimal number");
}
END_TEST

START_TEST(test_warning_for_near_loopback)
{
	struct mg_config *c = load_ok(TLS_OK "backend b {\n host = \"128.0.0.1\"\n"
				      " client_address = proxy-v2\n}\n" LISTEN_OK);

	ck_assert_int_eq(config_warnings(c, NULL, NULL), 1);
	config_free(c);
}
END_TEST

START_TEST(test_full_file_warnings)
{
	struct mg_config *c = load_ok(full_conf);
	char want[PATH_MAX + 64];

	/* Only cyrus: implicit TLS with verify = false. */
	snprintf(want, sizeof(want), "%s:38: backend 'cyrus': verify = false", conf_path);
	expect_one_warning(c, want);
	config_free(c);
}
END_TEST

/* Client sets and the global policy: what config_warnings() adds. */
START_TEST(test_cleartext_warnings)
{
	struct mg_config *c = load_ok(
		"cleartext_auth = allow\n"						/* 1 */
		MINIMAL									/* 2..12 */
		"backend legacy {\n host = \"127.0.0.3\" client_address = proxy-v1\n}\n"	/* 13 */
		"default_backend = \"b\"\n"						/* 16 */
		"client printers {\n networks = { \"192.0.2.0/24\" }\n"		/* 17 */
		" cleartext_auth = allow\n}\n"
		"client legacy_ok {\n networks = { \"198.51.100.0/24\" }\n"		/* 21 */
		" cleartext_auth = allow\n backend = \"legacy\"\n}\n"
		"client migrating {\n networks = { \"203.0.113.0/24\" }\n"		/* 26 */
		" cleartext_auth = warn\n}\n"
		"client webmail {\n networks = { \"10.0.0.20\" }\n trusted = true\n}\n");	/* 30 */
	struct collected got = { 0 };
	char want[PATH_MAX + 256];

	ck_assert_int_eq(config_warnings(c, collect, &got), 2);
	ck_assert_int_eq(got.n, 2);
	/* allow without a backend: at the line of the client section */
	snprintf(want, sizeof(want), "%s:17: client 'printers': cleartext_auth = allow without "
		 "a backend: cleartext logins reach the ordinary backends", conf_path);
	ck_assert_msg(strncmp(got.msgs[0], want, strlen(want)) == 0, "%s", got.msgs[0]);
	/* the global policy has no line of its own in the message */
	snprintf(want, sizeof(want), "%s: cleartext_auth = allow for every client outside the "
		 "client sets: passwords may cross the network in cleartext", conf_path);
	ck_assert_str_eq(got.msgs[1], want);
	config_free(c);
}
END_TEST

static const char *const global_policies[] = { "warn", "allow" };

START_TEST(test_global_cleartext_warning)
{
	char text[1024], want[PATH_MAX + 256];
	struct mg_config *c;

	snprintf(text, sizeof(text), "\ncleartext_auth = %s\n" MINIMAL, global_policies[_i]);
	c = load_ok(text);
	snprintf(want, sizeof(want), "%s: cleartext_auth = %s for every client outside the client "
		 "sets", conf_path, global_policies[_i]);
	expect_one_warning(c, want);
	config_free(c);
}
END_TEST

/* refuse, said or not, and sets that keep cleartext on a legacy node: silence. */
START_TEST(test_no_cleartext_warnings)
{
	struct mg_config *c = load_ok(
		"cleartext_auth = refuse\n" MINIMAL
		"backend legacy {\n host = \"127.0.0.3\"\n client_address = proxy-v1\n}\n"
		"default_backend = b\n"
		"client printers {\n networks = { \"192.0.2.0/24\" }\n"
		" cleartext_auth = allow\n backend = legacy\n}\n"
		"client migrating {\n networks = { \"203.0.113.0/24\" }\n cleartext_auth = warn\n}\n"
		"client webmail {\n networks = { \"10.0.0.20\" }\n trusted = true\n}\n"
		"listen lb {\n protocol = pop3\n port = 995\n tls = implicit\n"
		" proxy_networks = { \"10.0.0.2\", \"10.0.0.3\" }\n}\n");

	ck_assert_int_eq(config_warnings(c, NULL, NULL), 0);
	config_free(c);
}
END_TEST

START_TEST(test_routing_file_warnings)
{
	struct collected got = { 0 };
	struct mg_config *c;
	char want[PATH_MAX + 256];

	write_map(routing_map, 0644);
	c = load_ok(with_map(routing_conf));
	/*
	 * Backend plain says client_address = none, and the global warn; no
	 * more: every allow set has its legacy backend.
	 */
	ck_assert_int_eq(config_warnings(c, collect, &got), 2);
	snprintf(want, sizeof(want), "%s:21: backend 'plain': client_address = none: it sees every "
		 "login coming from this gateway", conf_path);
	ck_assert_msg(strncmp(got.msgs[0], want, strlen(want)) == 0, "%s", got.msgs[0]);
	snprintf(want, sizeof(want), "%s: cleartext_auth = warn for every client", conf_path);
	ck_assert_msg(strncmp(got.msgs[1], want, strlen(want)) == 0, "%s", got.msgs[1]);
	config_free(c);
}
END_TEST

/* ---- small things ---------------------------------------------------------- */

START_TEST(test_protocol_names)
{
	ck_assert_str_eq(config_protocol_name(MG_PROTO_IMAP), "imap");
	ck_assert_str_eq(config_protocol_name(MG_PROTO_POP3), "pop3");
	ck_assert_str_eq(config_protocol_name(MG_PROTO_COUNT), "unknown");
	ck_assert_str_eq(config_cleartext_name(MG_CLEARTEXT_REFUSE), "refuse");
	ck_assert_str_eq(config_cleartext_name(MG_CLEARTEXT_WARN), "warn");
	ck_assert_str_eq(config_cleartext_name(MG_CLEARTEXT_ALLOW), "allow");
	ck_assert_str_eq(config_cleartext_name((enum mg_cleartext_policy)42), "unknown");
	config_free(NULL);
}
END_TEST

/* ---- master-user logins ------------------------------------------------------ */

#define MASTER_PASSWORD "Config-Master-Secret-4"

/* Straight from the literal: no copy of the password on our heap or stack. */
static void write_master(const char *text, mode_t mode)
{
	int fd = open(master_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	size_t len = strlen(text);

	ck_assert_msg(fd >= 0, "open %s: %s", master_path, strerror(errno));
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(close(fd), 0);
}

/* A minimal file whose one backend (line 5) logs in as the master user with file. */
static const char *master_conf(const char *file)
{
	static char buf[4096];
	int n = snprintf(buf, sizeof(buf),
			 TLS_OK
			 "backend m {\n host = \"127.0.0.1\"\n backend_login = master\n"
			 " master_user_file = \"%s\"\n}\n"
			 "auth = pam\n"
			 LISTEN_OK, file);

	ck_assert(n > 0 && (size_t)n < sizeof(buf));
	return buf;
}

START_TEST(test_master_user_kept_password_not)
{
	struct mg_config *c;

	write_master("# the master user\nusername = mgmaster\npassword=" MASTER_PASSWORD "\n",
		     0600);
	c = load_ok(master_conf(master_path));
	ck_assert_uint_eq(c->n_backends, 1);
	ck_assert_int_eq(c->backends[0].login, MG_BACKEND_LOGIN_MASTER);
	ck_assert_str_eq(c->backends[0].master_user_file, master_path);
	/* The user name stays; the password was checked and wiped (no field holds it). */
	ck_assert_str_eq(c->backends[0].master_user, "mgmaster");
	config_free(c);
	/* A group-readable file is fine (root-owned, the gateway's group). */
	write_master("username=mgmaster\npassword=" MASTER_PASSWORD "\n", 0640);
	c = load_ok(master_conf(master_path));
	config_free(c);
}
END_TEST

static const struct {
	const char *text;
	mode_t mode;
	const char *needle;
} master_file_cases[] = {
	{ "username=mgmaster\npassword=" MASTER_PASSWORD "\n", 0644,
	  "readable or writable by others" },
	{ "username=mgmaster\npassword=" MASTER_PASSWORD "\n", 0620,
	  "readable or writable by others" },
	{ "username=mgmaster\n", 0600, "no password= line" },
	{ "password=" MASTER_PASSWORD "\n", 0600, "no username= line" },
	{ "username=mgmaster\npassword=\n", 0600, "password empty" },
	{ "username=mgmaster\npassword=" MASTER_PASSWORD "\npassword=again\n", 0600,
	  "password given twice" },
	{ "username=mgmaster\npassword=" MASTER_PASSWORD "\ncolour=red\n", 0600, "unknown key" },
};

START_TEST(test_master_file_errors)
{
	struct mg_config *cfg = (struct mg_config *)1;
	char err[512] = "";

	write_master(master_file_cases[_i].text, master_file_cases[_i].mode);
	write_conf(master_conf(master_path));
	expect_load_error(5, "backend 'm': master_user_file: ");
	expect_load_error(5, master_path);
	expect_load_error(5, master_file_cases[_i].needle);
	ck_assert_int_eq(config_load(conf_path, &cfg, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, MASTER_PASSWORD) == NULL, "the password is in: %s", err);
}
END_TEST

START_TEST(test_master_file_missing_or_unset)
{
	char path[PATH_MAX + 8];

	snprintf(path, sizeof(path), "%s/none", tmpdir);
	write_conf(master_conf(path));
	expect_load_error(5, "No such file or directory");
	write_conf(TLS_OK "backend m {\n host = \"127.0.0.1\"\n backend_login = master\n}\n"
		   LISTEN_OK);
	expect_load_error(5, "backend 'm': backend_login = master needs master_user_file");
}
END_TEST

START_TEST(test_master_file_path_bounded)
{
	char path[MG_MASTER_USER_FILE_MAX + 2];

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	write_conf(master_conf(path));
	expect_load_error(5, "master_user_file path longer than 255 bytes");
}
END_TEST

START_TEST(test_master_backends_bounded)
{
	static char text[32768];
	size_t used = 0;
	int n;

	write_master("username=mgmaster\npassword=" MASTER_PASSWORD "\n", 0600);
	n = snprintf(text, sizeof(text), TLS_OK);
	used += (size_t)n;
	for (int i = 0; i <= MG_MASTER_BACKENDS_MAX; i++) {
		n = snprintf(text + used, sizeof(text) - used,
			     "backend m%d {\n host = \"127.0.0.1\"\n backend_login = master\n"
			     " master_user_file = \"%s\"\n}\n", i, master_path);
		ck_assert(n > 0 && (size_t)n < sizeof(text) - used);
		used += (size_t)n;
	}
	n = snprintf(text + used, sizeof(text) - used, LISTEN_OK);
	ck_assert(n > 0 && (size_t)n < sizeof(text) - used);
	write_conf(text);
	/* The 33rd starts after the tls section and 32 sections of 5 lines. */
	expect_load_error(5 + 5 * MG_MASTER_BACKENDS_MAX, "more than 32 backends with "
			  "backend_login = master");
}
END_TEST

/* ---- certificates by name ------------------------------------------------ */

static const char sni_conf[] =
	"tls {\n"						/* 1 */
	"  certificate = \"/etc/mg/default.pem\"\n"
	"  key = \"/etc/mg/default.key\"\n"
	"  certificate_dir = \"/etc/mg/certs\"\n"
	"  sni_strict = yes\n"					/* 5 */
	"}\n"
	BACKEND_OK						/* 7..9 */
	"listen shared {\n"					/* 10 */
	"  protocol = imap\n"
	"  port = 143\n"
	"}\n"
	"listen own {\n"
	"  protocol = imap\n"					/* 15 */
	"  port = 993\n"
	"  tls = implicit\n"
	"  certificate = \"/etc/mg/own.pem\"\n"
	"  key = \"/etc/mg/own.key\"\n"
	"  certificate_dir = \"/etc/mg/own.d\"\n"		/* 20 */
	"}\n"
	"listen dir_only {\n"
	"  protocol = pop3\n"
	"  port = 995\n"
	"  certificate_dir = \"/etc/mg/pop3.d\"\n"		/* 25 */
	"}\n"
	"listen pair_only {\n"
	"  protocol = pop3\n"
	"  port = 110\n"
	"  certificate = \"/etc/mg/p.pem\"\n"			/* 30 */
	"  key = \"/etc/mg/p.key\"\n"
	"}\n";

START_TEST(test_certificates_by_name)
{
	struct mg_config *c = load_ok(sni_conf);
	const struct mg_listener_config *l = c->listeners;

	ck_assert_str_eq(c->tls.certificate_dir, "/etc/mg/certs");
	ck_assert_int_eq(c->tls.certificate_dir_line, 4);
	ck_assert(c->tls.sni_strict);
	ck_assert_uint_eq(c->n_listeners, 4);
	/* Nothing of its own: all of the tls section's. */
	ck_assert_str_eq(l[0].certificate, "/etc/mg/default.pem");
	ck_assert_str_eq(l[0].key, "/etc/mg/default.key");
	ck_assert_str_eq(l[0].certificate_dir, "/etc/mg/certs");
	ck_assert_int_eq(l[0].certificate_dir_line, 4);
	/* All of its own. */
	ck_assert_str_eq(l[1].certificate, "/etc/mg/own.pem");
	ck_assert_str_eq(l[1].key, "/etc/mg/own.key");
	ck_assert_str_eq(l[1].certificate_dir, "/etc/mg/own.d");
	ck_assert_int_eq(l[1].certificate_dir_line, 20);
	/* Each setting overrides on its own. */
	ck_assert_str_eq(l[2].certificate, "/etc/mg/default.pem");
	ck_assert_str_eq(l[2].certificate_dir, "/etc/mg/pop3.d");
	ck_assert_int_eq(l[2].certificate_dir_line, 25);
	ck_assert_str_eq(l[3].certificate, "/etc/mg/p.pem");
	ck_assert_str_eq(l[3].key, "/etc/mg/p.key");
	ck_assert_str_eq(l[3].certificate_dir, "/etc/mg/certs");
	config_free(c);

	c = load_ok("tls {\n certificate = \"/c\"\n key = \"/k\"\n sni_strict = no\n}\n"
		    BACKEND_OK LISTEN_OK);
	ck_assert(!c->tls.sni_strict);
	config_free(c);

	c = load_ok("tls {\n certificate = \"/c\"\n key = \"/k\"\n certificate_watch = no\n"
		    " last_good_dir = \"/var/lib/mailgate/last-good\"\n}\n" BACKEND_OK LISTEN_OK);
	ck_assert(!c->tls.certificate_watch);
	ck_assert_str_eq(c->tls.last_good_dir, "/var/lib/mailgate/last-good");
	config_free(c);
}
END_TEST

/* With a pair in every listener, the tls section needs none (nor must exist). */
START_TEST(test_default_pair_per_listener_only)
{
	struct mg_config *c = load_ok(
		BACKEND_OK
		"listen a {\n protocol = imap\n port = 143\n certificate = \"/a.pem\"\n"
		" key = \"/a.key\"\n}\n"
		"tls {\n certificate_dir = \"/d\"\n}\n");

	ck_assert_ptr_null(c->tls.certificate);
	ck_assert_str_eq(c->listeners[0].certificate, "/a.pem");
	ck_assert_str_eq(c->listeners[0].certificate_dir, "/d");
	ck_assert_int_eq(c->listeners[0].certificate_dir_line, 11);
	config_free(c);
	c = load_ok(BACKEND_OK "listen a {\n protocol = imap\n port = 143\n"
		    " certificate = \"/a.pem\"\n key = \"/a.key\"\n}\n");
	ck_assert_ptr_null(c->listeners[0].certificate_dir);
	config_free(c);
}
END_TEST

/* An OCSP response goes with its pair: the tls section's, or a listener's own. */
START_TEST(test_ocsp_file_with_its_pair)
{
	struct mg_config *c = load_ok(
		"tls {\n certificate = \"/c.pem\"\n key = \"/c.key\"\n ocsp_file = \"/c.ocsp\"\n}\n"
		BACKEND_OK
		"listen shared {\n protocol = imap\n port = 143\n}\n"
		"listen own {\n protocol = imap\n port = 993\n certificate = \"/o.pem\"\n"
		" key = \"/o.key\"\n ocsp_file = \"/o.ocsp\"\n}\n"
		"listen own_without {\n protocol = imap\n port = 994\n certificate = \"/p.pem\"\n"
		" key = \"/p.key\"\n}\n");

	ck_assert_str_eq(c->tls.ocsp_file, "/c.ocsp");
	ck_assert_str_eq(c->listeners[0].ocsp_file, "/c.ocsp");
	ck_assert_str_eq(c->listeners[1].ocsp_file, "/o.ocsp");
	/* Its own pair, without a response: not the tls section's, which is for another. */
	ck_assert_ptr_null(c->listeners[2].ocsp_file);
	config_free(c);
	c = load_ok(MINIMAL);
	ck_assert_ptr_null(c->tls.ocsp_file);
	ck_assert_ptr_null(c->listeners[0].ocsp_file);
	config_free(c);
}
END_TEST

static const struct error_case sni_error_cases[] = {
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n port = 143\n ocsp_file = \"/x\"\n}\n",
	  11, "listen 'l': ocsp_file needs the listener's own certificate" },
	{ "tls {\n certificate_dir = \"/d\"\n ocsp_file = \"/x\"\n}\n" BACKEND_OK
	  "listen a {\n protocol = imap\n port = 143\n certificate = \"/a\"\n key = \"/k\"\n}\n",
	  3, "tls: ocsp_file needs the certificate it is for" },
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n port = 143\n certificate = \"/a\"\n"
	  " key = \"/k\"\n ocsp_file = \"\"\n}\n", 13, "ocsp_file must not be empty" },
	{ "tls {\n certificate = \"/c\"\n key = \"/k\"\n certificate_dir = \"certs\"\n}\n"
	  BACKEND_OK LISTEN_OK, 4, "certificate_dir 'certs' must be an absolute path" },
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n port = 143\n\n"
	  " certificate_dir = \"./d\"\n}\n", 12, "certificate_dir './d' must be an absolute path" },
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n port = 143\n certificate = \"/x\"\n}\n",
	  8, "listen 'l': key is required with certificate" },
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n port = 143\n key = \"/x\"\n}\n",
	  8, "listen 'l': certificate is required with key" },
	{ "tls {\n certificate_dir = \"/d\"\n}\n" BACKEND_OK LISTEN_OK, 1,
	  "tls: certificate is required (listen 'l' names none of its own)" },
	{ BACKEND_OK "listen a {\n protocol = imap\n port = 143\n certificate = \"/a\"\n"
	  " key = \"/k\"\n}\n" "listen b {\n protocol = imap\n port = 993\n}\n", 0,
	  "no tls section: a certificate and a key are required for the listeners "
	  "(listen 'b' names none of its own)" },
	{ "tls {\n certificate = \"/c\"\n key = \"/k\"\n sni_strict = maybe\n}\n"
	  BACKEND_OK LISTEN_OK, 4, "invalid boolean value for option 'sni_strict'" },
	{ "tls {\n certificate = \"/c\"\n key = \"/k\"\n certificate_dir = \"\"\n}\n"
	  BACKEND_OK LISTEN_OK, 4, "certificate_dir must not be empty" },
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n port = 143\n certificate = \"/a\"\n"
	  " certificate = \"/b\"\n}\n", 12, "certificate is set twice (first on line 11)" },
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n port = 143\n sni_strict = yes\n}\n",
	  11, "no such option 'sni_strict'" },
	{ "tls {\n certificate = \"/c\"\n key = \"/k\"\n last_good_dir = \"keep\"\n}\n"
	  BACKEND_OK LISTEN_OK, 4, "last_good_dir 'keep' must be an absolute path" },
	{ "tls {\n certificate = \"/c\"\n key = \"/k\"\n certificate_watch = maybe\n}\n"
	  BACKEND_OK LISTEN_OK, 4, "invalid boolean value for option 'certificate_watch'" },
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n port = 143\n"
	  " certificate_watch = no\n}\n", 11, "no such option 'certificate_watch'" },
	/* session ticket key files */
	{ "tls {\n certificate = \"/c\"\n key = \"/k\"\n ticket_key_file = \"t.key\"\n}\n"
	  BACKEND_OK LISTEN_OK, 4, "ticket_key_file 't.key' must be an absolute path" },
	{ "tls {\n certificate = \"/c\"\n key = \"/k\"\n\n ticket_key_file = { \"/a\", \"\" }\n}\n"
	  BACKEND_OK LISTEN_OK, 5, "ticket_key_file '' must be an absolute path" },
	{ "tls {\n certificate = \"/c\"\n key = \"/k\"\n ticket_key_file = { \"/1\", \"/2\", "
	  "\"/3\", \"/4\", \"/5\", \"/6\", \"/7\", \"/8\", \"/9\" }\n}\n" BACKEND_OK LISTEN_OK, 4,
	  "ticket_key_file: at most 8 files" },
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n port = 143\n ticket_key_file = \"/t\"\n}\n",
	  11, "no such option 'ticket_key_file'" },
};

/* Client sets by the name asked for in TLS (SNI). */
START_TEST(test_local_names)
{
	struct mg_config *c = load_ok(
		MINIMAL
		"backend customer {\n host = \"127.0.0.9\" client_address = imap-id\n}\n"
		"default_backend = b\n"
		"client customer {\n"
		" local_names = { \"IMAP.Customer.Example.\", \"*.Customer.example\" }\n"
		" backend = customer\n}\n"
		"client office {\n networks = { \"192.0.2.0/24\" }\n"
		" local_names = \"mail.office.example\"\n}\n"
		"client inside {\n networks = { \"10.0.0.0/8\" }\n}\n");
	const struct mg_client_set_config *customer = &c->client_sets[0];
	const struct mg_client_set_config *office = &c->client_sets[1];
	const struct mg_client_set_config *inside = &c->client_sets[2];
	struct mg_ipkey any = ipkey("203.0.113.5"), office_ip = ipkey("192.0.2.7");
	struct mg_ipkey inside_ip = ipkey("10.1.2.3");

	ck_assert_uint_eq(c->n_client_sets, 3);
	ck_assert_uint_eq(customer->n_networks, 0);
	ck_assert_uint_eq(customer->n_local_names, 2);
	ck_assert_str_eq(customer->local_names[0], "imap.customer.example");
	ck_assert_str_eq(customer->local_names[1], "*.customer.example");
	ck_assert_ptr_eq(customer->backend, &c->backends[1]);
	ck_assert_uint_eq(office->n_local_names, 1);
	ck_assert_str_eq(office->local_names[0], "mail.office.example");
	ck_assert_uint_eq(inside->n_local_names, 0);

	ck_assert_ptr_eq(route_client_set(c, &any, "imap.customer.example"), customer);
	ck_assert_ptr_eq(route_client_set(c, &inside_ip, "pop.customer.example"), customer);
	ck_assert_ptr_null(route_client_set(c, &any, NULL));
	ck_assert_ptr_null(route_client_set(c, &any, "customer.example"));
	ck_assert_ptr_eq(route_client_set(c, &office_ip, "mail.office.example"), office);
	ck_assert_ptr_null(route_client_set(c, &office_ip, NULL));
	ck_assert_ptr_null(route_client_set(c, &any, "mail.office.example"));
	ck_assert_ptr_eq(route_client_set(c, &inside_ip, "mail.office.example"), inside);
	ck_assert_ptr_eq(route_client_set(c, &inside_ip, NULL), inside);
	ck_assert_int_eq(config_warnings(c, NULL, NULL), 0);
	config_free(c);
}
END_TEST

#define LABEL63 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk"
#define BAD_NAME(name) MINIMAL "client c {\n local_names = { \"ok.example\", \"" name "\" }\n}\n"
#define NAME_ERROR "client 'c': local_names: '"

static const struct error_case local_name_error_cases[] = {
	{ BAD_NAME("imap..example"), 13, NAME_ERROR "imap..example' is not a host name" },
	{ BAD_NAME(""), 13, NAME_ERROR "' is not a host name" },
	{ BAD_NAME("."), 13, NAME_ERROR ".' is not a host name" },
	{ BAD_NAME("*"), 13, NAME_ERROR "*' is not a host name" },
	{ BAD_NAME("*.*.example"), 13, NAME_ERROR "*.*.example' is not a host name" },
	{ BAD_NAME("imap.*.example"), 13, NAME_ERROR "imap.*.example' is not a host name" },
	{ BAD_NAME("*imap.example"), 13, NAME_ERROR "*imap.example' is not a host name" },
	{ BAD_NAME("imap example"), 13, NAME_ERROR "imap example' is not a host name" },
	{ BAD_NAME("_imap.example"), 13, NAME_ERROR "_imap.example' is not a host name" },
	{ BAD_NAME("b\xc3\xbc" "cher.example"), 13, "is not a host name" },
	{ BAD_NAME("192.0.2.0/24"), 13, NAME_ERROR "192.0.2.0/24' is not a host name" },
	{ BAD_NAME(LABEL63 "x.example"), 13, "...' is not a host name" },
	{ BAD_NAME(LABEL63 "." LABEL63 "." LABEL63 "." LABEL63), 13, "' is not a host name" },
	/* libconfuse says nothing of an empty list: the section's line it is. */
	{ MINIMAL "client c {\n networks = { \"192.0.2.0/24\" }\n\n local_names = {}\n}\n", 12,
	  "client 'c': the local_names list is empty" },
	{ MINIMAL "client c {\n local_names = {\n  \"a.example\",\n  \"b..example\"\n }\n}\n", 15,
	  NAME_ERROR "b..example' is not a host name" },
	{ MINIMAL "client c {\n local_names = { \"a.example\" }\n cleartext_auth = allow\n}\n", 14,
	  "client 'c': cleartext_auth has no effect with local_names, which match only sessions "
	  "in TLS" },
	{ MINIMAL "client c {\n local_names = { \"a.example\" }\n cleartext_auth = warn\n}\n", 14,
	  "client 'c': cleartext_auth has no effect with local_names" },
	{ MINIMAL "client c {\n trusted = true\n local_names = { \"a.example\" }\n}\n", 13,
	  "client 'c': trusted has no effect with local_names" },
	{ MINIMAL "client c {\n local_name = { \"a.example\" }\n}\n", 13,
	  "no such option 'local_name'" },
};

START_TEST(test_local_name_errors)
{
	const struct error_case *ec = &local_name_error_cases[_i];

	write_conf(ec->text);
	expect_load_error(ec->line, ec->needle);
}
END_TEST

START_TEST(test_sni_errors)
{
	const struct error_case *ec = &sni_error_cases[_i];

	write_conf(ec->text);
	expect_load_error(ec->line, ec->needle);
}
END_TEST

/* ---- session ticket key files (their contents: check_master_tickets) ---- */

START_TEST(test_ticket_key_files)
{
	struct mg_config *c = load_ok(MINIMAL);

	ck_assert_uint_eq(c->tls.n_ticket_key_files, 0);
	config_free(c);
	c = load_ok("tls {\n certificate = \"/c\"\n key = \"/k\"\n"
		    " ticket_key_file = \"/etc/mg/t.key\"\n}\n" BACKEND_OK LISTEN_OK);
	ck_assert_uint_eq(c->tls.n_ticket_key_files, 1);
	ck_assert_str_eq(c->tls.ticket_key_files[0], "/etc/mg/t.key");
	ck_assert_int_eq(c->tls.ticket_key_file_line, 4);
	config_free(c);
	/* nginx's rotation: the first encrypts, the rest only decrypt. */
	c = load_ok("tls {\n certificate = \"/c\"\n key = \"/k\"\n\n"
		    " ticket_key_file = { \"/new.key\", \"/old.key\" }\n}\n" BACKEND_OK LISTEN_OK);
	ck_assert_uint_eq(c->tls.n_ticket_key_files, 2);
	ck_assert_str_eq(c->tls.ticket_key_files[0], "/new.key");
	ck_assert_str_eq(c->tls.ticket_key_files[1], "/old.key");
	ck_assert_int_eq(c->tls.ticket_key_file_line, 5);
	config_free(c);
}
END_TEST

/* ---- TLS profiles ------------------------------------------------------------ */

static const char profile_conf[] =
	"tls {\n"						/* 1 */
	"  certificate = \"/c.pem\"\n"
	"  key = \"/k.pem\"\n"
	"  groups = \"X25519:P-256\"\n"
	"}\n"							/* 5 */
	"tls_profile customers {\n"
	"  min_protocol = TLSv1.3\n"
	"  ciphersuites = \"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256\"\n"
	"  groups = \"X25519\"\n"
	"}\n"							/* 10 */
	"tls_profile backends {\n"
	"  ciphers = \"ECDHE+AESGCM:AES256-GCM-SHA384\"\n"
	"  forward_secrecy = allowed\n"
	"}\n"
	"tls_profile fs {\n"					/* 15 */
	"  ciphers = \"ECDHE+AESGCM:AES256-GCM-SHA384\"\n"
	"  forward_secrecy = required\n"
	"}\n"
	"backend plain {\n host = \"127.0.0.1\" client_address = proxy-v2\n}\n"	/* 19..21 */
	"backend store {\n"
	"  host = \"10.0.0.5\" client_address = proxy-v2\n"
	"  tls = implicit\n"
	"  tls_profile = \"backends\"\n"			/* 25 */
	"}\n"
	"default_backend = plain\n"
	"listen strict {\n protocol = imap\n port = 993\n tls = implicit\n"
	" tls_profile = \"customers\"\n}\n"			/* 28..33 */
	"listen plain {\n protocol = imap\n port = 143\n}\n";

START_TEST(test_tls_profiles)
{
	struct mg_config *c = load_ok(profile_conf);
	const struct mg_tls_profile *p = c->tls_profiles;

	ck_assert_uint_eq(c->n_tls_profiles, 3);
	ck_assert_str_eq(p[0].name, "customers");
	ck_assert_int_eq(p[0].line, 6);
	ck_assert_int_eq(p[0].min_version, MG_TLS_1_3);
	ck_assert_ptr_null(p[0].ciphers);
	ck_assert_str_eq(p[0].ciphersuites, "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
	ck_assert_str_eq(p[0].groups, "X25519");
	ck_assert(p[0].require_forward_secrecy);	/* the default */
	ck_assert_str_eq(p[1].name, "backends");
	ck_assert_int_eq(p[1].min_version, MG_TLS_1_2);
	ck_assert(!p[1].require_forward_secrecy);
	ck_assert(p[2].require_forward_secrecy);
	/* The tls section is the profile of listeners that name none. */
	ck_assert_ptr_null(c->tls.profile.name);
	ck_assert_str_eq(c->tls.profile.groups, "X25519:P-256");
	ck_assert_ptr_eq(c->listeners[0].tls_profile, &p[0]);
	ck_assert_ptr_eq(c->listeners[1].tls_profile, &c->tls.profile);
	/* A backend without one keeps OpenSSL's defaults. */
	ck_assert_ptr_null(c->backends[0].tls_profile);
	ck_assert_ptr_eq(c->backends[1].tls_profile, &p[1]);
	config_free(c);
}
END_TEST

START_TEST(test_tls_profile_warning)
{
	struct mg_config *c = load_ok(profile_conf);
	char want[PATH_MAX + 64];

	snprintf(want, sizeof(want), "%s:11: tls_profile 'backends': forward_secrecy = allowed",
		 conf_path);
	expect_one_warning(c, want);
	config_free(c);
}
END_TEST

#define PROFILE(body) "tls_profile p {\n" body "}\n"	/* lines 11.. after MINIMAL */

static const struct error_case profile_error_cases[] = {
	/* OpenSSL's own parsers, at the option's line */
	{ MINIMAL PROFILE(" ciphers = \"NOTHING-KNOWN\"\n"), 13,
	  "tls_profile 'p': ciphers: no cipher match" },
	{ MINIMAL PROFILE("\n groups = \"X25519:P-999\"\n"), 14,
	  "tls_profile 'p': groups: " },
	{ MINIMAL PROFILE(" ciphersuites = \"TLS_AES_128_GCM_SHA256:TLS_BOGUS\"\n"), 13,
	  "tls_profile 'p': ciphersuites: unknown suite 'TLS_BOGUS'" },
	{ MINIMAL PROFILE(" ciphersuites = \"TLS_AES_128_GCM_SHA256::\"\n"), 13,
	  "tls_profile 'p': ciphersuites: empty name in the list" },
	/* RSA key exchange only: nothing is left with forward secrecy */
	{ MINIMAL PROFILE(" ciphers = \"AES128-GCM-SHA256:AES256-GCM-SHA384\"\n"), 13,
	  "tls_profile 'p': ciphers: no suite with forward secrecy (forward_secrecy = required)" },
	{ "tls {\n certificate = \"/c\"\n key = \"/k\"\n ciphers = \"kRSA\"\n}\n"
	  BACKEND_OK LISTEN_OK, 4, "tls: ciphers: no suite with forward secrecy" },
	{ "tls {\n certificate = \"/c\"\n key = \"/k\"\n groups = \"nope\"\n}\n"
	  BACKEND_OK LISTEN_OK, 4, "tls: groups: " },
	/* words */
	{ MINIMAL PROFILE(" forward_secrecy = maybe\n"), 13,
	  "forward_secrecy: unknown value 'maybe' (expected required or allowed)" },
	{ MINIMAL PROFILE(" min_protocol = TLSv1.1\n"), 13,
	  "min_protocol: unknown value 'TLSv1.1' (expected TLSv1.2 or TLSv1.3)" },
	{ MINIMAL PROFILE(" require_forward_secrecy = true\n"), 13,
	  "no such option 'require_forward_secrecy'" },
	{ MINIMAL PROFILE(" certificate = \"/x\"\n"), 13, "no such option 'certificate'" },
	{ MINIMAL PROFILE(" groups = \"X25519\"\n groups = \"P-256\"\n"), 14,
	  "groups is set twice (first on line 13)" },
	{ MINIMAL "tls_profile \"a b\" {\n}\n", 12, "tls_profile name 'a b' must be" },
	{ MINIMAL "tls_profile p {\n}\ntls_profile p {\n}\n", 14, "found duplicate title 'p'" },
	/* references */
	{ TLS_OK BACKEND_OK "listen l {\n protocol = imap\n port = 143\n"
	  " tls_profile = \"missing\"\n}\n", 11,
	  "listen 'l': no tls_profile section is called 'missing'" },
	{ TLS_OK "backend b {\n host = \"10.0.0.1\"\n tls = starttls\n"
	  " tls_profile = \"nope\"\n}\n" LISTEN_OK, 8,
	  "backend 'b': no tls_profile section is called 'nope'" },
	{ TLS_OK PROFILE("") "backend b {\n host = \"127.0.0.1\"\n tls_profile = \"p\"\n}\n"
	  LISTEN_OK, 9, "backend 'b': tls_profile needs tls = starttls or implicit" },
	{ PROFILE("") "tls {\n certificate = \"/c\"\n key = \"/k\"\n tls_profile = \"p\"\n}\n"
	  BACKEND_OK LISTEN_OK, 6, "no such option 'tls_profile'" },
};

START_TEST(test_tls_profile_errors)
{
	const struct error_case *ec = &profile_error_cases[_i];

	write_conf(ec->text);
	expect_load_error(ec->line, ec->needle);
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
	tcase_add_test(tc, test_engines_number);
	tcase_add_test(tc, test_boundaries_accepted);
	tcase_add_loop_test(tc, test_typed_number_bounds, 0, n_typed_options());
	tcase_add_test(tc, test_typed_defaults);
	tcase_add_loop_test(tc, test_typed_words, 0, n_typed_options());
	tcase_add_test(tc, test_listeners_may_share_port_on_other_addresses);
	tcase_add_test(tc, test_env_single_quotes_are_literal);
	tcase_add_test(tc, test_other_quoting);
	suite_add_tcase(s, tc);

	tc = tcase_create("certificates");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_certificates_by_name);
	tcase_add_test(tc, test_default_pair_per_listener_only);
	tcase_add_test(tc, test_ocsp_file_with_its_pair);
	tcase_add_loop_test(tc, test_sni_errors, 0,
			    (int)(sizeof(sni_error_cases) / sizeof(sni_error_cases[0])));
	tcase_add_test(tc, test_ticket_key_files);
	suite_add_tcase(s, tc);

	tc = tcase_create("profiles");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_tls_profiles);
	tcase_add_test(tc, test_tls_profile_warning);
	tcase_add_loop_test(tc, test_tls_profile_errors, 0,
			    (int)(sizeof(profile_error_cases) / sizeof(profile_error_cases[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("routing");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_routing_file);
	tcase_add_test(tc, test_local_names);
	tcase_add_loop_test(tc, test_local_name_errors, 0,
			    (int)(sizeof(local_name_error_cases) / sizeof(local_name_error_cases[0])));
	tcase_add_test(tc, test_empty_user_map);
	tcase_add_test(tc, test_user_map_read_on_each_load);
	tcase_add_loop_test(tc, test_user_map_errors, 0,
			    (int)(sizeof(map_error_cases) / sizeof(map_error_cases[0])));
	tcase_add_test(tc, test_user_map_unknown_backend_message);
	tcase_add_test(tc, test_user_map_not_a_regular_file);
	tcase_add_test(tc, test_user_map_sees_only_its_configuration);
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

	tc = tcase_create("master");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_master_user_kept_password_not);
	tcase_add_loop_test(tc, test_master_file_errors, 0,
			    (int)(sizeof(master_file_cases) / sizeof(master_file_cases[0])));
	tcase_add_test(tc, test_master_file_missing_or_unset);
	tcase_add_test(tc, test_master_file_path_bounded);
	tcase_add_test(tc, test_master_backends_bounded);
	suite_add_tcase(s, tc);

	tc = tcase_create("warnings");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_warnings);
	tcase_add_loop_test(tc, test_no_warning_for_loopback, 0,
			    (int)(sizeof(loopback_hosts) / sizeof(loopback_hosts[0])));
	tcase_add_test(tc, test_warning_for_near_loopback);
	tcase_add_test(tc, test_durations);
	tcase_add_loop_test(tc, test_client_address_warning, 0,
			    sizeof(client_addresses) / sizeof(client_addresses[0]));
	tcase_add_test(tc, test_full_file_warnings);
	tcase_add_test(tc, test_cleartext_warnings);
	tcase_add_loop_test(tc, test_global_cleartext_warning, 0,
			    (int)(sizeof(global_policies) / sizeof(global_policies[0])));
	tcase_add_test(tc, test_no_cleartext_warnings);
	tcase_add_test(tc, test_routing_file_warnings);
	tcase_add_test(tc, test_protocol_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(config_suite());
}
