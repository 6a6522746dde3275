/*
 * check_engine_paircache.c - the parsed-pair cache: a hit returns the
 * pair parsed before without parsing again, the least recently used pair
 * goes first when it is full, a stale hint (its entry now another owner's)
 * is never taken, a pair that does not parse costs no entry, and a leaf a
 * caller still references outlives its eviction.
 */
#include <check.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "check_run.h"
#include "engine_paircache.h"

#define OWNERS 5

static unsigned char *der[OWNERS];
static int der_len[OWNERS];
static char owner[OWNERS];		/* their addresses are the owners */
static uint32_t hint[OWNERS];

/* A self-signed P-256 certificate with serial n, as DER. */
static unsigned char *make_der(long n, int *len)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	unsigned char *out = NULL;

	ck_assert_ptr_nonnull(key);
	ck_assert_ptr_nonnull(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), n);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"leaf.test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
	*len = i2d_X509(x, &out);
	ck_assert_int_gt(*len, 0);
	X509_free(x);
	EVP_PKEY_free(key);
	return out;
}

static void setup(void)
{
	for (int i = 0; i < OWNERS; i++) {
		der[i] = make_der(100 + i, &der_len[i]);
		hint[i] = 0;
	}
}

static void teardown(void)
{
	for (int i = 0; i < OWNERS; i++)
		OPENSSL_free(der[i]);
}

/* The parser: owner is &owner[i]; the key is a fresh one (only its presence counts here). */
static int parse(const void *who, struct parsed_pair *out, void *arg)
{
	int i = (int)((const char *)who - owner);
	const unsigned char *p = der[i];

	(void)arg;
	out->leaf = d2i_X509(NULL, &p, der_len[i]);
	if (out->leaf == NULL)
		return -1;
	out->key = EVP_PKEY_new();
	return 0;
}

static int parse_fails(const void *who, struct parsed_pair *out, void *arg)
{
	(void)who;
	(void)out;
	(void)arg;
	return -1;
}

static X509 *get(struct pair_cache *lc, int i)
{
	const struct parsed_pair *p = pair_cache_get(lc, &owner[i], &hint[i], parse, NULL);

	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(p->key);
	return p->leaf;
}

static long serial(X509 *x)
{
	return ASN1_INTEGER_get(X509_get0_serialNumber(x));
}

START_TEST(test_hit_parses_once)
{
	struct pair_cache *lc = pair_cache_new(3);
	X509 *first = get(lc, 0);

	ck_assert_ptr_nonnull(first);
	ck_assert_int_eq(serial(first), 100);
	ck_assert_ptr_eq(get(lc, 0), first);
	ck_assert_ptr_eq(get(lc, 0), first);
	ck_assert_uint_eq(pair_cache_parses(lc), 1);
	pair_cache_free(lc);
}
END_TEST

START_TEST(test_least_recently_used_goes_first)
{
	struct pair_cache *lc = pair_cache_new(3);

	get(lc, 0);
	get(lc, 1);
	get(lc, 2);
	ck_assert_uint_eq(pair_cache_parses(lc), 3);
	get(lc, 0);			/* now 1 is the oldest */
	ck_assert_int_eq(serial(get(lc, 3)), 103);
	ck_assert_uint_eq(pair_cache_parses(lc), 4);
	/* 0 and 2 stayed; 1 went */
	get(lc, 0);
	get(lc, 2);
	ck_assert_uint_eq(pair_cache_parses(lc), 4);
	ck_assert_int_eq(serial(get(lc, 1)), 101);
	ck_assert_uint_eq(pair_cache_parses(lc), 5);
	pair_cache_free(lc);
}
END_TEST

START_TEST(test_stale_hint_is_not_taken)
{
	struct pair_cache *lc = pair_cache_new(1);

	get(lc, 0);
	ck_assert_uint_eq(hint[0], 1);
	/* 1 takes the only entry; 0's hint still points there */
	ck_assert_int_eq(serial(get(lc, 1)), 101);
	ck_assert_uint_eq(hint[0], 1);
	ck_assert_int_eq(serial(get(lc, 0)), 100);
	ck_assert_uint_eq(pair_cache_parses(lc), 3);
	/* a hint past the entries in use, as a corrupt word would be */
	hint[2] = 7;
	ck_assert_int_eq(serial(get(lc, 2)), 102);
	pair_cache_free(lc);
}
END_TEST

START_TEST(test_failed_parse_takes_no_entry)
{
	struct pair_cache *lc = pair_cache_new(2);
	uint32_t other_hint = 0;
	char other_owner;
	X509 *kept;

	kept = get(lc, 0);
	ck_assert_ptr_null(pair_cache_get(lc, &other_owner, &other_hint, parse_fails, NULL));
	ck_assert_uint_eq(other_hint, 0);
	ck_assert_ptr_null(pair_cache_get(lc, &other_owner, &other_hint, parse_fails, NULL));
	/* 0 is still there: the failures evicted nothing */
	ck_assert_ptr_eq(get(lc, 0), kept);
	ck_assert_uint_eq(pair_cache_parses(lc), 3);
	pair_cache_free(lc);
}
END_TEST

START_TEST(test_referenced_leaf_outlives_eviction)
{
	struct pair_cache *lc = pair_cache_new(1);
	X509 *held = get(lc, 0);

	ck_assert(X509_up_ref(held));	/* as SSL_use_cert_and_key does */
	get(lc, 1);			/* evicts and frees the cache's reference */
	ck_assert_int_eq(serial(held), 100);
	X509_free(held);
	pair_cache_free(lc);
}
END_TEST

START_TEST(test_capacity_bounds)
{
	ck_assert_ptr_null(pair_cache_new(0));
	ck_assert_ptr_null(pair_cache_new(65535));
	pair_cache_free(NULL);
}
END_TEST

static Suite *paircache_suite(void)
{
	Suite *s = suite_create("engine_paircache");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_hit_parses_once);
	tcase_add_test(tc, test_least_recently_used_goes_first);
	tcase_add_test(tc, test_stale_hint_is_not_taken);
	tcase_add_test(tc, test_failed_parse_takes_no_entry);
	tcase_add_test(tc, test_referenced_leaf_outlives_eviction);
	tcase_add_test(tc, test_capacity_bounds);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(paircache_suite());
}
