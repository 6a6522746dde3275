/*
 * check_engine_tls.c - the gateway's TLS contexts (engine_tls.c): what every
 * connection made from them inherits. Today: OpenSSL is asked to wipe the
 * decrypted plaintext (passwords travel in it) on both sides, the listeners'
 * server contexts and the backends' client contexts. The certificate is made
 * here, at test time, with the openssl command.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "check_run.h"
#include "config.h"
#include "engine_certs.h"
#include "engine_tls.h"

static char dir[64];
static char path[128];
static struct mg_config *cfg;

static void setup(void)
{
	char cmd[1024], err[512] = "";
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/check_engine_tls.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout '%s/k.key' -out '%s/c.pem' -subj '/CN=gw.test' -days 30 2>/dev/null",
		 dir, dir);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/mailgate.conf", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "tls {\n certificate = \"%s/c.pem\"\n key = \"%s/k.key\"\n}\n"
		"backend b {\n host = \"127.0.0.1\"\n tls = implicit\n ca_file = \"%s/c.pem\"\n"
		" verify_name = \"gw.test\"\n}\n"
		"listen imaps {\n protocol = imap\n port = 993\n tls = implicit\n}\n",
		dir, dir, dir);
	fclose(f);
	ck_assert_msg(config_load(path, &cfg, err, sizeof(err)) == 0, "%s", err);
}

static void teardown(void)
{
	char cmd[128];

	config_free(cfg);
	cfg = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* A connection made from the context wipes what it decrypts; it is freed here. */
static void assert_cleanses(SSL *ssl, const char *err)
{
	ck_assert_msg(ssl != NULL, "%s", err);
	ck_assert((SSL_get_options(ssl) & SSL_OP_CLEANSE_PLAINTEXT) != 0);
	tls_ssl_free(ssl);
}

START_TEST(test_server_cleanses_plaintext)
{
	struct tls_pem pem;
	struct mg_tls_server *server;
	char err[512] = "";

	ck_assert_msg(tls_pem_read(&pem, cfg->listeners[0].certificate, cfg->listeners[0].key,
				   err, sizeof(err)) == 0, "%s", err);
	server = tls_server_new(&cfg->tls, &cfg->listeners[0], &pem, err, sizeof(err));
	tls_pem_wipe(&pem);
	ck_assert_msg(server != NULL, "%s", err);
	assert_cleanses(tls_server_ssl(server, err, sizeof(err)), err);
	tls_server_free(server);
}
END_TEST

START_TEST(test_backend_client_cleanses_plaintext)
{
	char err[512] = "";
	struct mg_tls_client *client = tls_client_new(&cfg->backends[0], err, sizeof(err));

	ck_assert_msg(client != NULL, "%s", err);
	assert_cleanses(tls_client_ssl(client, err, sizeof(err)), err);
	tls_client_free(client);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("engine_tls");
	TCase *tc = tcase_create("contexts");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_server_cleanses_plaintext);
	tcase_add_test(tc, test_backend_client_cleanses_plaintext);
	suite_add_tcase(s, tc);
	return check_run(s);
}
