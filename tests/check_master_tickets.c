/*
 * check_master_tickets.c - session ticket keys: nginx's key layout, the
 * set the master sends the engines (and every malformed form of it), key
 * files (sizes, modes, what is not a file, the error naming line and
 * file), the ring of made keys across rotations, and the master's
 * bookkeeping of when to rotate and what a reload changes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_run.h"
#include "config.h"
#include "master_tickets.h"
#include "ticket_keys.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/check_master_tickets.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* len bytes, each its own index plus seed: every part of a key tells where it came from. */
static void pattern(unsigned char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(i + seed);
}

static const char *write_key(const char *name, size_t len, unsigned seed, mode_t mode)
{
	static char path[8][128];
	static unsigned next;
	unsigned char buf[128];
	char *p = path[next++ % 8];
	FILE *f;

	snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
	pattern(buf, len, seed);
	f = fopen(p, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
	ck_assert_int_eq(chmod(p, mode), 0);
	return p;
}

/* ---- one key --------------------------------------------------------------- */

START_TEST(test_key_sizes)
{
	static const size_t bad[] = { 0, 16, 32, 47, 49, 64, 79, 81 };
	unsigned char buf[81];
	struct ticket_key k;

	pattern(buf, sizeof(buf), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(ticket_key_set(&k, buf, bad[i]), -1);
	ck_assert_int_eq(ticket_key_set(&k, buf, 48), 0);
	ck_assert_uint_eq(k.len, 48);
	ck_assert_int_eq(ticket_key_set(&k, buf, 80), 0);
	ck_assert_uint_eq(k.len, 80);
}
END_TEST

/* nginx's ngx_ssl_session_ticket_keys(): where each size keeps what. */
static const struct {
	size_t len, aes_at, aes_len, hmac_at, hmac_len;
} layouts[] = {
	{ 48, 16, 16, 32, 16 },		/* name, AES-128 key, HMAC secret */
	{ 80, 48, 32, 16, 32 },		/* name, HMAC secret, AES-256 key */
};

START_TEST(test_key_layout_as_nginx)
{
	unsigned char buf[80];
	struct ticket_key k;
	struct ticket_key_parts p;

	pattern(buf, sizeof(buf), 0);	/* each byte is its offset */
	ticket_key_set(&k, buf, layouts[_i].len);
	ticket_key_parts(&k, &p);
	ck_assert_int_eq(p.name[0], 0);
	ck_assert_int_eq(p.aes[0], (int)layouts[_i].aes_at);
	ck_assert_uint_eq(p.aes_len, layouts[_i].aes_len);
	ck_assert_int_eq(p.hmac[0], (int)layouts[_i].hmac_at);
	ck_assert_uint_eq(p.hmac_len, layouts[_i].hmac_len);
}
END_TEST

/* ---- the set on the channel ---------------------------------------------- */

static void make_set(struct ticket_keys *set, size_t n)
{
	unsigned char buf[80];

	memset(set, 0, sizeof(*set));
	for (size_t i = 0; i < n; i++) {
		pattern(buf, sizeof(buf), (unsigned)(i * 100));
		ticket_key_set(&set->key[i], buf, i % 2 == 0 ? 80 : 48);
	}
	set->n = n;
	set->serial = 7;
}

START_TEST(test_message_round_trip)
{
	struct ticket_keys set, got;
	struct chan_msg msg;
	struct chan_reader r;

	make_set(&set, TICKET_KEYS_MAX);
	ticket_keys_message(&set, &msg);
	ck_assert(!msg.overflow);
	ck_assert_int_eq(msg.data[0], CHAN_TICKET_KEYS);
	chan_reader_init(&r, msg.data + 1, msg.len - 1);
	ck_assert_int_eq(ticket_keys_read(&r, &got), 0);
	ck_assert_uint_eq(got.n, TICKET_KEYS_MAX);
	ck_assert_uint_eq(got.serial, 7);
	for (size_t i = 0; i < got.n; i++) {
		ck_assert_uint_eq(got.key[i].len, set.key[i].len);
		ck_assert_mem_eq(got.key[i].raw, set.key[i].raw, set.key[i].len);
		ck_assert_int_eq(ticket_keys_find(&got, set.key[i].raw), (int)i);
	}
	ck_assert_int_eq(ticket_keys_find(&got, (const unsigned char *)"no such name 123"), -1);
}
END_TEST

/* Messages a confused or hostile master could send: each refused, nothing kept. */
START_TEST(test_message_malformed)
{
	static const unsigned char k47[47] = { 1 }, k80[80] = { 2 };
	struct ticket_keys got;
	struct chan_msg msg;
	struct chan_reader r;

	for (int c = 0; c < 6; c++) {
		chan_msg_init(&msg, CHAN_TICKET_KEYS);
		chan_put_u32(&msg, 1);
		switch (c) {
		case 0:		/* no key */
			chan_put_u8(&msg, 0);
			break;
		case 1:		/* more than a set holds */
			chan_put_u8(&msg, TICKET_KEYS_MAX + 1);
			for (int i = 0; i < TICKET_KEYS_MAX + 1; i++)
				chan_put_bytes(&msg, k80, sizeof(k80));
			break;
		case 2:		/* a key of the wrong size */
			chan_put_u8(&msg, 2);
			chan_put_bytes(&msg, k80, sizeof(k80));
			chan_put_bytes(&msg, k47, sizeof(k47));
			break;
		case 3:		/* fewer keys than announced */
			chan_put_u8(&msg, 2);
			chan_put_bytes(&msg, k80, sizeof(k80));
			break;
		case 4:		/* something after the last key */
			chan_put_u8(&msg, 1);
			chan_put_bytes(&msg, k80, sizeof(k80));
			chan_put_u8(&msg, 0);
			break;
		case 5:		/* cut short */
			chan_put_u8(&msg, 1);
			chan_put_bytes(&msg, k80, sizeof(k80));
			msg.len -= 10;
			break;
		}
		memset(&got, 0xAA, sizeof(got));
		chan_reader_init(&r, msg.data + 1, msg.len - 1);
		ck_assert_msg(ticket_keys_read(&r, &got) == -1, "case %d accepted", c);
		ck_assert_uint_eq(got.n, 0);
		ck_assert_int_eq(got.key[0].raw[0], 0);	/* wiped, not half-filled */
	}
}
END_TEST

/* ---- key files ------------------------------------------------------------- */

static struct mg_tls_config files_cfg(const char **paths, size_t n)
{
	struct mg_tls_config tls = { .ticket_key_files = (char **)paths,
				     .n_ticket_key_files = n, .ticket_key_file_line = 12 };
	return tls;
}

START_TEST(test_files_read_in_order)
{
	const char *paths[2];
	struct mg_tls_config tls;
	struct ticket_keys set;
	char err[512];

	paths[0] = write_key("new.key", 48, 1, 0600);
	paths[1] = write_key("old.key", 80, 2, 0640);
	tls = files_cfg(paths, 2);
	ck_assert_int_eq(tickets_read_files(&tls, &set, err, sizeof(err)), 0);
	ck_assert_uint_eq(set.n, 2);
	ck_assert_uint_eq(set.key[0].len, 48);
	ck_assert_int_eq(set.key[0].raw[0], 1);
	ck_assert_uint_eq(set.key[1].len, 80);
	ck_assert_int_eq(set.key[1].raw[79], (79 + 2) & 0xff);
}
END_TEST

START_TEST(test_file_errors)
{
	static const struct {
		const char *name;
		size_t len;
		mode_t mode;
		const char *why;
	} cases[] = {
		{ "short.key", 47, 0600, "is 47 bytes; a key file holds exactly 48 or 80" },
		{ "long.key", 81, 0600, "is 81 bytes" },
		{ "empty.key", 0, 0600, "is 0 bytes" },
		{ "shared.key", 80, 0644, "readable or writable by others (mode 0644)" },
		{ "open.key", 48, 0602, "readable or writable by others (mode 0602)" },
	};
	struct ticket_keys set;
	char err[512], want[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *paths[2] = { write_key("good.key", 80, 0, 0600), NULL };
		struct mg_tls_config tls;

		paths[1] = write_key(cases[i].name, cases[i].len, 0, cases[i].mode);
		tls = files_cfg(paths, 2);
		ck_assert_int_eq(tickets_read_files(&tls, &set, err, sizeof(err)), -1);
		snprintf(want, sizeof(want), "ticket_key_file (line 12): %s: %s", paths[1],
			 cases[i].why);
		ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
		ck_assert_uint_eq(set.n, 0);
		ck_assert_int_eq(set.key[0].raw[1], 0);	/* the good one is not left behind */
	}
}
END_TEST

START_TEST(test_file_not_there_or_not_a_file)
{
	char missing[128], err[512];
	const char *paths[1];
	struct mg_tls_config tls;
	struct ticket_keys set;

	snprintf(missing, sizeof(missing), "%s/missing.key", dir);
	paths[0] = missing;
	tls = files_cfg(paths, 1);
	ck_assert_int_eq(tickets_read_files(&tls, &set, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "missing.key: No such file or directory"));
	paths[0] = dir;
	ck_assert_int_eq(tickets_read_files(&tls, &set, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, ": not a regular file"));
	ck_assert_ptr_nonnull(strstr(err, "(line 12)"));
}
END_TEST

/* ---- the ring and its rotation ------------------------------------------ */

START_TEST(test_ring_rotation)
{
	unsigned char a[80], b[80], c[80], d[80];
	struct ticket_keys ring = { .serial = 4 };

	pattern(a, 80, 10);
	pattern(b, 80, 20);
	pattern(c, 80, 30);
	pattern(d, 80, 40);
	tickets_ring_start(&ring, a, b);
	ck_assert_uint_eq(ring.n, 2);
	ck_assert_uint_eq(ring.serial, 5);
	ck_assert_mem_eq(ring.key[0].raw, a, 80);		/* a encrypts */
	ck_assert_int_ge(ticket_keys_find(&ring, b), 0);	/* b already decrypts */

	tickets_ring_rotate(&ring, c);
	ck_assert_uint_eq(ring.n, 3);
	ck_assert_uint_eq(ring.serial, 6);
	ck_assert_mem_eq(ring.key[0].raw, b, 80);		/* the next one encrypts now */
	ck_assert_int_ge(ticket_keys_find(&ring, a), 1);	/* the old one still decrypts */
	ck_assert_int_ge(ticket_keys_find(&ring, c), 1);	/* the new next one already does */

	tickets_ring_rotate(&ring, d);
	ck_assert_uint_eq(ring.n, 3);
	ck_assert_mem_eq(ring.key[0].raw, c, 80);
	ck_assert_int_ge(ticket_keys_find(&ring, b), 1);
	ck_assert_int_ge(ticket_keys_find(&ring, d), 1);
	ck_assert_int_eq(ticket_keys_find(&ring, a), -1);	/* two rotations: gone */
}
END_TEST

START_TEST(test_period)
{
	static const char *const bad[] = { "", "0", "-5", "5x", "x5", " 5", "43201",
					   "99999999999999999999" };
	unsigned period;
	char err[256];

	ck_assert_int_eq(tickets_period(NULL, &period, err, sizeof(err)), 0);
	ck_assert_uint_eq(period, 12 * 60 * 60);
	ck_assert_int_eq(tickets_period("5", &period, err, sizeof(err)), 0);
	ck_assert_uint_eq(period, 5);
	ck_assert_int_eq(tickets_period("43200", &period, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(tickets_period(bad[i], &period, err, sizeof(err)) == -1, "%s", bad[i]);
		ck_assert_ptr_nonnull(strstr(err, TICKET_ROTATION_ENV));
	}
}
END_TEST

/* ---- the master's bookkeeping ------------------------------------------- */

START_TEST(test_made_keys_rotate_and_survive_reload)
{
	struct mg_config cfg = { 0 };
	struct master_tickets t;
	unsigned char first[80];
	char err[256];

	unsetenv(TICKET_ROTATION_ENV);
	ck_assert_int_eq(tickets_start(&t, &cfg, 1000, err, sizeof(err)), 0);
	ck_assert(!t.from_files);
	ck_assert_uint_eq(t.set->n, 2);
	ck_assert_int_eq(t.rotate_at, 1000 + 12LL * 60 * 60 * 1000);
	ck_assert(!tickets_due(&t, t.rotate_at - 1));
	ck_assert(tickets_due(&t, t.rotate_at));
	memcpy(first, t.set->key[0].raw, 80);
	ck_assert_mem_ne(first, t.set->key[1].raw, 80);

	/* A reload without key files keeps the keys: tickets outlive it. */
	ck_assert_int_eq(tickets_reload(&t, &cfg, 5000, err, sizeof(err)), 0);
	ck_assert_mem_eq(t.set->key[0].raw, first, 80);

	ck_assert_int_eq(tickets_rotate(&t, t.rotate_at, err, sizeof(err)), 0);
	ck_assert_int_eq(t.rotate_at, 1000 + 2 * 12LL * 60 * 60 * 1000);
	ck_assert_uint_eq(t.set->n, 3);
	ck_assert_int_ge(ticket_keys_find(t.set, first), 1);
	tickets_stop(&t);
	ck_assert_ptr_null(t.set);
}
END_TEST

START_TEST(test_key_files_replace_made_keys_and_back)
{
	const char *paths[1] = { write_key("t.key", 48, 3, 0600) };
	struct mg_config cfg = { 0 }, with_files = { .tls = files_cfg(paths, 1) };
	struct master_tickets t;
	uint32_t serial;
	char err[512];

	setenv(TICKET_ROTATION_ENV, "3", 1);
	ck_assert_int_eq(tickets_start(&t, &cfg, 0, err, sizeof(err)), 0);
	ck_assert_int_eq(t.rotate_at, 3000);
	serial = t.set->serial;

	ck_assert_int_eq(tickets_reload(&t, &with_files, 100, err, sizeof(err)), 1);
	ck_assert(t.from_files);
	ck_assert_uint_eq(t.set->n, 1);
	ck_assert_int_eq(t.set->key[0].raw[0], 3);
	ck_assert_uint_eq(t.set->serial, serial + 1);
	ck_assert(!tickets_due(&t, 1LL << 60));		/* the operator rotates files */

	/* A file that broke meanwhile fails the reload and keeps the set. */
	write_key("t.key", 50, 9, 0600);
	ck_assert_int_eq(tickets_reload(&t, &with_files, 200, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "is 50 bytes"));
	ck_assert_int_eq(t.set->key[0].raw[0], 3);
	ck_assert_uint_eq(t.set->n, 1);

	/* Without the files again, made keys and their rotation come back. */
	ck_assert_int_eq(tickets_reload(&t, &cfg, 300, err, sizeof(err)), 1);
	ck_assert(!t.from_files);
	ck_assert_uint_eq(t.set->n, 2);
	ck_assert_int_eq(t.rotate_at, 3300);
	tickets_stop(&t);

	/* As mailgated -t sees them; a start on a bad file fails. */
	ck_assert_int_eq(tickets_check(&cfg, err, sizeof(err)), 0);
	ck_assert_int_eq(tickets_check(&with_files, err, sizeof(err)), -1);
	ck_assert_int_eq(tickets_start(&t, &with_files, 0, err, sizeof(err)), -1);
	ck_assert_ptr_null(t.set);
	setenv(TICKET_ROTATION_ENV, "0", 1);
	ck_assert_int_eq(tickets_start(&t, &cfg, 0, err, sizeof(err)), -1);
	unsetenv(TICKET_ROTATION_ENV);
}
END_TEST

static Suite *tickets_suite(void)
{
	Suite *s = suite_create("master_tickets");
	TCase *tc = tcase_create("keys");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_key_sizes);
	tcase_add_loop_test(tc, test_key_layout_as_nginx, 0,
			    (int)(sizeof(layouts) / sizeof(layouts[0])));
	tcase_add_test(tc, test_message_round_trip);
	tcase_add_test(tc, test_message_malformed);
	tcase_add_test(tc, test_files_read_in_order);
	tcase_add_test(tc, test_file_errors);
	tcase_add_test(tc, test_file_not_there_or_not_a_file);
	tcase_add_test(tc, test_ring_rotation);
	tcase_add_test(tc, test_period);
	tcase_add_test(tc, test_made_keys_rotate_and_survive_reload);
	tcase_add_test(tc, test_key_files_replace_made_keys_and_back);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(tickets_suite());
}
