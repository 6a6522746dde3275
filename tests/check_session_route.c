/*
 * check_session_route.c - client sets, backend selection and the user map.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "session_route.h"
#include "session_usermap.h"
#include "check_run.h"

static struct mg_backend_config backends[4];
static struct mg_listener_config listener_plain, listener_pinned;
static struct mg_client_set_config sets[3];
static struct mg_cidr nets_legacy[2], nets_warn[1], nets_webmail[1];
static struct mg_config cfg;

static struct mg_cidr net(const char *text)
{
	struct mg_cidr out;
	const char *error = NULL;

	ck_assert_msg(cidr_parse(text, &out, &error) == 0, "%s: %s", text, error);
	return out;
}

static struct mg_ipkey key(const char *text)
{
	struct mg_cidr host = net(text);

	return host.network;
}

static void setup(void)
{
	static char *names[] = { "main", "legacy", "store2", "store3" };

	memset(&cfg, 0, sizeof(cfg));
	memset(backends, 0, sizeof(backends));
	for (size_t i = 0; i < 4; i++)
		backends[i].name = names[i];
	cfg.backends = backends;
	cfg.n_backends = 4;
	cfg.default_backend = &backends[0];

	nets_legacy[0] = net("192.0.2.0/24");
	nets_legacy[1] = net("2001:db8:1::/48");
	nets_warn[0] = net("198.51.100.0/24");
	nets_webmail[0] = net("10.0.0.5");
	sets[0] = (struct mg_client_set_config){ .name = "printers", .networks = nets_legacy,
						 .n_networks = 2, .cleartext = MG_CLEARTEXT_ALLOW,
						 .backend = &backends[1] };
	sets[1] = (struct mg_client_set_config){ .name = "migrating", .networks = nets_warn,
						 .n_networks = 1, .cleartext = MG_CLEARTEXT_WARN };
	sets[2] = (struct mg_client_set_config){ .name = "webmail", .networks = nets_webmail,
						 .n_networks = 1, .trusted = true };
	cfg.client_sets = sets;
	cfg.n_client_sets = 3;

	listener_plain = (struct mg_listener_config){ .name = "imap" };
	listener_pinned = (struct mg_listener_config){ .name = "imap-store3",
						       .backend = &backends[3] };
}

static void teardown(void)
{
	usermap_free(cfg.user_routes, cfg.n_user_routes);
	cfg.user_routes = NULL;
	cfg.n_user_routes = 0;
}

static void load_map(const char *text)
{
	char err[256] = "";

	ck_assert_msg(usermap_parse("users.map", text, strlen(text), &cfg, &cfg.user_routes,
				    &cfg.n_user_routes, err, sizeof(err)) == 0, "%s", err);
}

START_TEST(client_set_first_match_wins)
{
	struct mg_ipkey printer = key("192.0.2.77"), printer6 = key("2001:db8:1:2::9");
	struct mg_ipkey mapped = key("::ffff:192.0.2.77");
	struct mg_ipkey migrating = key("198.51.100.1"), other = key("203.0.113.1");

	ck_assert_ptr_eq(route_client_set(&cfg, &printer, NULL), &sets[0]);
	ck_assert_ptr_eq(route_client_set(&cfg, &printer6, NULL), &sets[0]);
	ck_assert_ptr_eq(route_client_set(&cfg, &mapped, NULL), &sets[0]);
	ck_assert_ptr_eq(route_client_set(&cfg, &migrating, NULL), &sets[1]);
	ck_assert_ptr_null(route_client_set(&cfg, &other, NULL));

	/* An earlier set that also matches takes precedence. */
	nets_warn[0] = net("192.0.2.0/25");
	sets[0].networks = nets_warn;
	sets[0].n_networks = 1;
	ck_assert_ptr_eq(route_client_set(&cfg, &printer, NULL), &sets[0]);
}
END_TEST

/* Sets by the name asked for in TLS: customers first, then the networks. */
static char *customer_names[] = { "imap.customer.example", "*.customer.example" };
static char *shop_names[] = { "mail.shop.example" };

static void add_name_sets(struct mg_client_set_config *more)
{
	/* An earlier set by name only, a later one by name and network. */
	more[0] = (struct mg_client_set_config){ .name = "customer", .local_names = customer_names,
						 .n_local_names = 2, .backend = &backends[2] };
	more[1] = sets[0];
	more[2] = (struct mg_client_set_config){ .name = "shop-office", .networks = nets_warn,
						 .n_networks = 1, .local_names = shop_names,
						 .n_local_names = 1, .backend = &backends[3] };
	more[3] = sets[1];
	cfg.client_sets = more;
	cfg.n_client_sets = 4;
}

START_TEST(client_set_by_local_name)
{
	struct mg_client_set_config more[4];
	struct mg_ipkey printer = key("192.0.2.77"), office = key("198.51.100.1");
	struct mg_ipkey other = key("203.0.113.1");
	struct mg_route r;

	add_name_sets(more);
	/* No name (before TLS, or TLS without SNI): the sets by name do not match. */
	ck_assert_ptr_eq(route_client_set(&cfg, &printer, NULL), &more[1]);
	ck_assert_ptr_eq(route_client_set(&cfg, &office, NULL), &more[3]);
	ck_assert_ptr_null(route_client_set(&cfg, &other, NULL));
	ck_assert_ptr_null(route_client_set(&cfg, &other, ""));
	/* A set without networks: any address, when the name matches. */
	ck_assert_ptr_eq(route_client_set(&cfg, &other, "imap.customer.example"), &more[0]);
	ck_assert_ptr_eq(route_client_set(&cfg, &printer, "pop.customer.example"), &more[0]);
	ck_assert_ptr_eq(route_client_set(&cfg, &other, "IMAP.Customer.Example"), &more[0]);
	/* The wildcard covers one label: not the domain itself, not two labels. */
	ck_assert_ptr_eq(route_client_set(&cfg, &printer, "customer.example"), &more[1]);
	ck_assert_ptr_eq(route_client_set(&cfg, &printer, "a.b.customer.example"), &more[1]);
	ck_assert_ptr_null(route_client_set(&cfg, &other, "xcustomer.example"));
	ck_assert_ptr_null(route_client_set(&cfg, &other, "customer.example.org"));
	/* Networks and names together: both must hold. */
	ck_assert_ptr_eq(route_client_set(&cfg, &office, "mail.shop.example"), &more[2]);
	ck_assert_ptr_eq(route_client_set(&cfg, &office, "other.shop.example"), &more[3]);
	ck_assert_ptr_null(route_client_set(&cfg, &other, "mail.shop.example"));
	/* The name's set forces its backend like any other set. */
	route_select(&cfg, route_client_set(&cfg, &other, "imap.customer.example"),
		     &listener_plain, "alice", 5, &r);
	ck_assert_ptr_eq(r.backend, &backends[2]);
	ck_assert_str_eq(r.reason, "client-set");
}
END_TEST

START_TEST(local_name_match)
{
	ck_assert(route_local_name_match(&(struct mg_client_set_config){
		.local_names = customer_names, .n_local_names = 2 }, "x.customer.example"));
	ck_assert(!route_local_name_match(&(struct mg_client_set_config){
		.local_names = customer_names, .n_local_names = 1 }, "x.customer.example"));
	ck_assert(!route_local_name_match(&sets[0], "imap.customer.example"));
	ck_assert(!route_local_name_match(&(struct mg_client_set_config){
		.local_names = customer_names, .n_local_names = 2 }, NULL));
}
END_TEST

START_TEST(cleartext_policy_defaults_to_refuse)
{
	ck_assert_int_eq(route_cleartext_policy(&cfg, NULL), MG_CLEARTEXT_REFUSE);
	ck_assert_int_eq(route_cleartext_policy(&cfg, &sets[0]), MG_CLEARTEXT_ALLOW);
	ck_assert_int_eq(route_cleartext_policy(&cfg, &sets[1]), MG_CLEARTEXT_WARN);
	cfg.cleartext_default = MG_CLEARTEXT_WARN;
	ck_assert_int_eq(route_cleartext_policy(&cfg, NULL), MG_CLEARTEXT_WARN);
}
END_TEST

START_TEST(route_order)
{
	struct mg_route r;

	load_map("alice@example.com store2\n@example.org store3\n");

	/* 1. the client set's forced backend beats everything */
	route_select(&cfg, &sets[0], &listener_pinned, "alice@example.com", 17, &r);
	ck_assert_ptr_eq(r.backend, &backends[1]);
	ck_assert_str_eq(r.reason, "client-set");

	/* 2. the user map: the user, then the domain */
	route_select(&cfg, &sets[1], &listener_pinned, "alice@example.com", 17, &r);
	ck_assert_ptr_eq(r.backend, &backends[2]);
	ck_assert_str_eq(r.reason, "user");
	route_select(&cfg, NULL, &listener_plain, "bob@Example.ORG", 15, &r);
	ck_assert_ptr_eq(r.backend, &backends[3]);
	ck_assert_str_eq(r.reason, "domain");

	/* 3. the listener's backend */
	route_select(&cfg, NULL, &listener_pinned, "carol@example.net", 17, &r);
	ck_assert_ptr_eq(r.backend, &backends[3]);
	ck_assert_str_eq(r.reason, "listener");

	/* 4. the default backend */
	route_select(&cfg, NULL, &listener_plain, "carol@example.net", 17, &r);
	ck_assert_ptr_eq(r.backend, &backends[0]);
	ck_assert_str_eq(r.reason, "default");
}
END_TEST

START_TEST(map_lookup_details)
{
	const char *matched = NULL;

	load_map("# comment line\n\n  Alice@Example.com\tstore2   # trailing comment\r\n"
		 "@example.org store3\nplainuser legacy\n");
	ck_assert_uint_eq(cfg.n_user_routes, 3);
	ck_assert_ptr_eq(usermap_lookup(cfg.user_routes, 3, "ALICE@example.COM", 17, &matched),
			 &backends[2]);
	ck_assert_str_eq(matched, "user");
	ck_assert_ptr_eq(usermap_lookup(cfg.user_routes, 3, "plainuser", 9, &matched),
			 &backends[1]);
	/* the domain is the part after the last '@' */
	ck_assert_ptr_eq(usermap_lookup(cfg.user_routes, 3, "x@y@example.org", 15, &matched),
			 &backends[3]);
	ck_assert_str_eq(matched, "domain");
	ck_assert_ptr_null(usermap_lookup(cfg.user_routes, 3, "example.org", 11, &matched));
	ck_assert_ptr_null(usermap_lookup(cfg.user_routes, 3, "bob@example.net", 15, &matched));
	ck_assert_ptr_null(usermap_lookup(cfg.user_routes, 3, "", 0, &matched));
	ck_assert_ptr_null(usermap_lookup(cfg.user_routes, 3, "plain\0user", 10, &matched));
	ck_assert_ptr_null(usermap_lookup(NULL, 0, "plainuser", 9, &matched));
}
END_TEST

struct bad_map {
	const char *text;
	const char *message;	/* expected in the error, with the line */
};

static const struct bad_map bad_maps[] = {
	{ "alice store2 extra\n", "users.map:1: expected" },
	{ "alice\n", "users.map:1: expected" },
	{ "\n\nalice nosuch\n", "users.map:3: no backend section is called 'nosuch'" },
	{ "@ store2\n", "users.map:1: bad user or domain" },
	{ "alice store2\nbob store3\nALICE legacy\n", "users.map:3: 'alice' is mapped twice (first on line 1)" },
	{ "al\001ice store2\n", "users.map:1: control character" },
};

START_TEST(map_errors_name_file_and_line)
{
	const struct bad_map *t = &bad_maps[_i];
	struct mg_user_route *routes = NULL;
	size_t n = 99;
	char err[256] = "";

	ck_assert_int_eq(usermap_parse("users.map", t->text, strlen(t->text), &cfg, &routes, &n,
				       err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, t->message) != NULL, "expected \"%s\" in \"%s\"", t->message, err);
	ck_assert_ptr_null(routes);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(map_overlong_key)
{
	char text[600];
	struct mg_user_route *routes = NULL;
	size_t n = 0;
	char err[256] = "";

	memset(text, 'a', 300);
	snprintf(text + 300, sizeof(text) - 300, " store2\n");
	ck_assert_int_eq(usermap_parse("m", text, strlen(text), &cfg, &routes, &n, err,
				       sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "m:1: bad user or domain"));
}
END_TEST

START_TEST(map_file_permissions_and_absence)
{
	char dir[] = "/tmp/check_session_route.XXXXXX";
	char path[256];
	struct mg_user_route *routes = NULL;
	size_t n = 0;
	char err[256] = "";
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/users.map", dir);
	ck_assert_int_eq(usermap_load(path, &cfg, &routes, &n, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "cannot open"));

	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("@example.org store3\n", f);
	fclose(f);
	chmod(path, 0666);
	ck_assert_int_eq(usermap_load(path, &cfg, &routes, &n, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "writable by group or others"));

	chmod(path, 0644);
	ck_assert_int_eq(usermap_load(path, &cfg, &routes, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 1);
	usermap_free(routes, n);
	unlink(path);
	rmdir(dir);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("route");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, client_set_first_match_wins);
	tcase_add_test(tc, client_set_by_local_name);
	tcase_add_test(tc, local_name_match);
	tcase_add_test(tc, cleartext_policy_defaults_to_refuse);
	tcase_add_test(tc, route_order);
	tcase_add_test(tc, map_lookup_details);
	tcase_add_loop_test(tc, map_errors_name_file_and_line, 0,
			    sizeof(bad_maps) / sizeof(bad_maps[0]));
	tcase_add_test(tc, map_overlong_key);
	tcase_add_test(tc, map_file_permissions_and_absence);
	suite_add_tcase(suite, tc);
	return check_run(suite);
}
