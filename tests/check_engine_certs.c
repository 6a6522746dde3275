/*
 * check_engine_certs.c - certificates by name: which pair a name finds (exact,
 * wildcard, CN), what a load refuses and reports, renewal order, that
 * names nobody loaded cost nothing, and which OCSP responses (NAME.ocsp) are
 * stapled. Certificates and responses are made here, at test time.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "check_run.h"
#include "engine_certs.h"
#include "engine_ocsp.h"

#define DAY (24 * 60 * 60)

static char dir[64];
static time_t now;

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/check_engine_certs.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	now = time(NULL);
}

static void remove_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

struct spec {
	const char *stem;	/* files STEM.pem (and STEM.key unless key_in_pem) */
	bool rsa;
	const char *san;	/* "DNS:a.example,DNS:b.example", or NULL for none */
	const char *cn;
	long not_after_days;	/* from now; negative: expired */
	bool key_in_pem;
	EVP_PKEY *issuer_key;	/* NULL: self-signed */
	X509 *issuer;
	bool traditional;	/* the key as SEC1 / PKCS#1 ("EC/RSA PRIVATE KEY"), not PKCS#8 */
};

static EVP_PKEY *new_key(bool rsa)
{
	EVP_PKEY *key = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");

	ck_assert_ptr_nonnull(key);
	return key;
}

static X509 *new_cert(const struct spec *s, EVP_PKEY *key, bool ca)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX v3;
	static long serial = 1;

	ck_assert_ptr_nonnull(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -2 * DAY);
	X509_gmtime_adj(X509_getm_notAfter(x), s->not_after_days * DAY);
	if (s->cn != NULL)
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)s->cn,
					   -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, s->issuer != NULL ? X509_get_subject_name(s->issuer) : name);
	X509_NAME_free(name);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v3, s->issuer != NULL ? s->issuer : x, x, NULL, NULL, 0);
	if (s->san != NULL) {
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, s->san);

		ck_assert_ptr_nonnull(ext);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (ca) {
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
							  "critical,CA:TRUE");
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	ck_assert_int_gt(X509_sign(x, s->issuer_key != NULL ? s->issuer_key : key, EVP_sha256()), 0);
	return x;
}

static void write_pem(const char *path, X509 *leaf, X509 *chain, EVP_PKEY *key,
		      bool traditional)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	if (leaf != NULL)
		ck_assert(PEM_write_X509(f, leaf));
	if (chain != NULL)
		ck_assert(PEM_write_X509(f, chain));
	if (key != NULL && traditional) {
		BIO *bio = BIO_new_fp(f, BIO_NOCLOSE);

		ck_assert(PEM_write_bio_PrivateKey_traditional(bio, key, NULL, NULL, 0, NULL, NULL));
		BIO_free(bio);
	}
	else if (key != NULL)
		ck_assert(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL));
	fclose(f);
}

/* Writes the pair's files; returns the .pem's path (static buffer per call site use). */
static void make_pair(const struct spec *s, char *pem, size_t pemsize)
{
	EVP_PKEY *key = new_key(s->rsa);
	X509 *x = new_cert(s, key, false);
	char keypath[256];

	snprintf(pem, pemsize, "%s/%s.pem", dir, s->stem);
	snprintf(keypath, sizeof(keypath), "%s/%s.key", dir, s->stem);
	write_pem(pem, x, s->issuer, s->key_in_pem ? key : NULL, s->traditional);
	if (!s->key_in_pem)
		write_pem(keypath, NULL, NULL, key, s->traditional);
	if (s->traditional) {
		/* The format under test is really in the file. */
		char text[8192];
		FILE *f = fopen(s->key_in_pem ? pem : keypath, "r");
		size_t n;

		ck_assert_ptr_nonnull(f);
		n = fread(text, 1, sizeof(text) - 1, f);
		text[n] = '\0';
		fclose(f);
		ck_assert_ptr_nonnull(strstr(text, s->rsa ? "-----BEGIN RSA PRIVATE KEY-----"
							  : "-----BEGIN EC PRIVATE KEY-----"));
	}
	X509_free(x);
	EVP_PKEY_free(key);
}

static void pair(const char *stem, const char *san, const char *cn)
{
	struct spec s = { .stem = stem, .san = san, .cn = cn, .not_after_days = 90 };
	char pem[256];

	make_pair(&s, pem, sizeof(pem));
}

/* More than any test makes: the OCSP test reports one per bad response. */
#define REPORTS_MAX 16

struct reports {
	char text[REPORTS_MAX][512];
	int n;
};

static void collect(const char *path, const char *why, bool pair_skipped, void *arg)
{
	struct reports *r = arg;

	if (r->n < REPORTS_MAX)
		snprintf(r->text[r->n], sizeof(r->text[0]), "%s | %s%s", path, why,
			 pair_skipped ? "" : " | pair kept");
	r->n++;
}

static struct tls_certs *load(struct reports *r, int want_loaded)
{
	struct tls_certs *set = tls_certs_new();
	char err[512];
	int loaded;

	ck_assert_ptr_nonnull(set);
	loaded = tls_certs_load_dir(set, dir, now, collect, r, err, sizeof(err));
	ck_assert_msg(loaded == want_loaded, "loaded %d, want %d (%s; %d reports, first: %s)",
		      loaded, want_loaded, err, r->n, r->n > 0 ? r->text[0] : "-");
	return set;
}

/* The path of the ECDSA (slot 0) or RSA (slot 1) pair name finds, or NULL. */
static const char *found(const struct tls_certs *set, const char *name, int slot)
{
	const struct tls_cert *out[2];

	tls_certs_find(set, name, strlen(name), out);
	return out[slot] != NULL ? tls_cert_path(out[slot]) : NULL;
}

static bool found_stem(const struct tls_certs *set, const char *name, const char *stem)
{
	const char *path = found(set, name, 0);
	char want[256];

	snprintf(want, sizeof(want), "%s/%s.pem", dir, stem);
	return path != NULL && strcmp(path, want) == 0;
}

START_TEST(exact_and_wildcard)
{
	struct reports r = { 0 };
	struct tls_certs *set;

	make_dir();
	pair("customer", "DNS:imap.customer.example,DNS:pop.customer.example", "x");
	pair("wild", "DNS:*.example.org", NULL);
	pair("special", "DNS:special.example.org", NULL);
	set = load(&r, 3);
	ck_assert_int_eq(r.n, 0);
	ck_assert_uint_eq(tls_certs_count(set), 3);
	ck_assert(found_stem(set, "imap.customer.example", "customer"));
	ck_assert(found_stem(set, "pop.customer.example", "customer"));
	/* the CN is not a name when the SAN has DNS names */
	ck_assert_ptr_null(found(set, "x", 0));
	/* a wildcard covers one label, exactly */
	ck_assert(found_stem(set, "a.example.org", "wild"));
	ck_assert_ptr_null(found(set, "example.org", 0));
	ck_assert_ptr_null(found(set, "a.b.example.org", 0));
	/* an exact name wins over the wildcard */
	ck_assert(found_stem(set, "special.example.org", "special"));
	/* names compare without case and without the final dot */
	ck_assert(found_stem(set, "IMAP.Customer.EXAMPLE.", "customer"));
	ck_assert(found_stem(set, "B.Example.Org", "wild"));
	ck_assert_ptr_null(found(set, "customer.example", 0));
	ck_assert_ptr_null(found(set, "imap.customer.example.com", 0));
	tls_certs_free(set);
	remove_dir();
}
END_TEST

START_TEST(names_that_find_nothing)
{
	struct reports r = { 0 };
	struct tls_certs *set;
	static const char *const bad[] = { "", ".", "..", "a..example.org", ".example.org",
					   "*.example.org", "a b.example.org", "a/b.example.org",
					   "*", "a.example.org..", "\xc3\xa9.example.org" };
	char longname[300];
	char longlabel[80];
	const struct tls_cert *out[2];
	size_t names;

	make_dir();
	pair("wild", "DNS:*.example.org,DNS:example.org", NULL);
	set = load(&r, 1);
	names = tls_certs_names(set);
	ck_assert_uint_eq(names, 2);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(tls_certs_find(set, bad[i], strlen(bad[i]), out) == 0, "%s found",
			      bad[i]);
	/* a NUL inside the name: the length counts, and the name is invalid */
	ck_assert_int_eq(tls_certs_find(set, "a.example.org\0x", 15, out), 0);
	ck_assert_int_eq(tls_certs_find(set, "a.example.org\0x", 13, out), 1);
	/* over 253 characters, or a label over 63 */
	memset(longname, 'a', sizeof(longname));
	memcpy(longname + sizeof(longname) - 12, ".example.org", 12);
	ck_assert_int_eq(tls_certs_find(set, longname, sizeof(longname), out), 0);
	memset(longlabel, 'b', sizeof(longlabel));
	memcpy(longlabel + 64, ".example.org", 12);
	ck_assert_int_eq(tls_certs_find(set, longlabel, 76, out), 0);
	ck_assert_int_eq(tls_certs_find(set, longlabel + 1, 75, out), 1);	/* 63: fine */
	/* random names clients send grow nothing */
	for (int i = 0; i < 10000; i++) {
		char name[64];
		int len = snprintf(name, sizeof(name), "r%08x.c%d.example.net", (unsigned)rand(), i);

		ck_assert_int_eq(tls_certs_find(set, name, (size_t)len, out), 0);
	}
	ck_assert_uint_eq(tls_certs_names(set), names);
	tls_certs_free(set);
	remove_dir();
}
END_TEST

START_TEST(cn_when_no_san)
{
	struct reports r = { 0 };
	struct tls_certs *set;

	make_dir();
	pair("legacy", NULL, "Legacy.Example");
	pair("ipaddr", "IP:192.0.2.7", "ip.example");	/* no DNS name in the SAN: CN */
	set = load(&r, 2);
	ck_assert(found_stem(set, "legacy.example", "legacy"));
	ck_assert(found_stem(set, "ip.example", "ipaddr"));
	tls_certs_free(set);
	remove_dir();
}
END_TEST

START_TEST(ecdsa_and_rsa_for_one_name)
{
	struct reports r = { 0 };
	struct tls_certs *set;
	struct spec ec = { .stem = "ec", .san = "DNS:both.example", .not_after_days = 30 };
	struct spec rsa = { .stem = "rsa", .rsa = true, .san = "DNS:both.example",
			    .not_after_days = 30 };
	const struct tls_cert *out[2];
	char pem[256];

	make_dir();
	make_pair(&ec, pem, sizeof(pem));
	make_pair(&rsa, pem, sizeof(pem));
	set = load(&r, 2);
	ck_assert_int_eq(tls_certs_find(set, "both.example", 12, out), 2);
	ck_assert(strstr(tls_cert_path(out[0]), "/ec.pem") != NULL);
	ck_assert(strstr(tls_cert_path(out[1]), "/rsa.pem") != NULL);
	tls_certs_free(set);
	remove_dir();
}
END_TEST

/*
 * What a handshake gets: every key format a file may hold (PKCS#8, SEC1,
 * PKCS#1; in a .key or inside the .pem) is kept as DER and parsed again
 * into a pair OpenSSL takes, the leaf its own and the key matching it;
 * served again, from the pair cache.
 */
START_TEST(pair_used_in_every_key_format)
{
	static const struct spec specs[] = {
		{ .stem = "ec8", .san = "DNS:ec8.example", .not_after_days = 30 },
		{ .stem = "ec1", .san = "DNS:ec1.example", .not_after_days = 30,
		  .traditional = true },
		{ .stem = "rsa8", .rsa = true, .san = "DNS:rsa8.example", .not_after_days = 30 },
		{ .stem = "rsa1", .rsa = true, .san = "DNS:rsa1.example", .not_after_days = 30,
		  .traditional = true, .key_in_pem = true },
	};
	const char *names[] = { "ec8.example", "ec1.example", "rsa8.example", "rsa1.example" };
	struct reports r = { 0 };
	struct tls_certs *set;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char pem[256];

	ck_assert_ptr_nonnull(ctx);
	make_dir();
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
		make_pair(&specs[i], pem, sizeof(pem));
	set = load(&r, 4);
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			const struct tls_cert *out[2] = { NULL, NULL };
			SSL *ssl = SSL_new(ctx);
			int slot = specs[i].rsa ? 1 : 0;
			X509 *served;

			ck_assert_ptr_nonnull(ssl);
			ck_assert_int_eq(tls_certs_find(set, names[i], strlen(names[i]), out), 1);
			ck_assert_ptr_nonnull(out[slot]);
			ck_assert_int_eq(tls_cert_use(set, ssl, out[slot]), 0);
			served = SSL_get_certificate(ssl);
			ck_assert_ptr_nonnull(served);
			ck_assert_int_eq(X509_check_host(served, names[i], 0, 0, NULL), 1);
			ck_assert_ptr_nonnull(SSL_get_privatekey(ssl));
			ck_assert_int_eq(X509_check_private_key(served, SSL_get_privatekey(ssl)), 1);
			ck_assert_int_eq(EVP_PKEY_get_base_id(SSL_get_privatekey(ssl)),
					 specs[i].rsa ? EVP_PKEY_RSA : EVP_PKEY_EC);
			SSL_free(ssl);
		}
	}
	tls_certs_free(set);
	SSL_CTX_free(ctx);
	remove_dir();
}
END_TEST

/* Old and renewed certificate side by side: the one that expires later serves. */
START_TEST(renewed_wins_whatever_the_order)
{
	struct reports r = { 0 };
	struct tls_certs *set;
	struct spec renewed = { .stem = "a-renewed", .san = "DNS:mail.example",
				.not_after_days = 90 };
	struct spec old = { .stem = "b-old", .san = "DNS:mail.example", .not_after_days = 5 };
	struct spec older = { .stem = "0-older", .san = "DNS:mail.example", .not_after_days = 2 };
	char pem[256];

	make_dir();
	make_pair(&renewed, pem, sizeof(pem));
	make_pair(&old, pem, sizeof(pem));
	make_pair(&older, pem, sizeof(pem));
	set = load(&r, 3);
	ck_assert(found_stem(set, "mail.example", "a-renewed"));
	tls_certs_free(set);
	remove_dir();
}
END_TEST

START_TEST(key_inside_the_pem)
{
	struct reports r = { 0 };
	struct tls_certs *set;
	struct spec s = { .stem = "inone", .san = "DNS:one.example", .not_after_days = 10,
			  .key_in_pem = true };
	char pem[256], key[256];

	make_dir();
	make_pair(&s, pem, sizeof(pem));
	snprintf(key, sizeof(key), "%s/inone.key", dir);
	ck_assert_int_ne(access(key, F_OK), 0);
	set = load(&r, 1);
	ck_assert(found_stem(set, "one.example", "inone"));
	tls_certs_free(set);
	remove_dir();
}
END_TEST

START_TEST(chain_with_intermediate)
{
	struct reports r = { 0 };
	struct tls_certs *set;
	struct spec ca = { .cn = "Test Intermediate", .not_after_days = 365 };
	EVP_PKEY *ca_key = new_key(false);
	X509 *ca_cert = new_cert(&ca, ca_key, true);
	struct spec a = { .stem = "a", .san = "DNS:a.example", .not_after_days = 30,
			  .issuer = ca_cert, .issuer_key = ca_key };
	struct spec b = { .stem = "b", .san = "DNS:b.example", .not_after_days = 30,
			  .issuer = ca_cert, .issuer_key = ca_key };
	char pem[256];

	make_dir();
	make_pair(&a, pem, sizeof(pem));
	make_pair(&b, pem, sizeof(pem));
	set = load(&r, 2);
	ck_assert(found_stem(set, "a.example", "a"));
	ck_assert(found_stem(set, "b.example", "b"));
	tls_certs_free(set);
	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	remove_dir();
}
END_TEST

static bool reported(const struct reports *r, const char *path_part, const char *why_part)
{
	for (int i = 0; i < r->n && i < REPORTS_MAX; i++) {
		if (strstr(r->text[i], path_part) != NULL && strstr(r->text[i], why_part) != NULL)
			return true;
	}
	return false;
}

START_TEST(broken_pairs_reported_and_skipped)
{
	struct reports r = { 0 };
	struct tls_certs *set;
	struct spec expired = { .stem = "expired", .san = "DNS:expired.example",
				.not_after_days = -1 };
	struct spec nonames = { .stem = "nonames", .san = "IP:192.0.2.1", .not_after_days = 9 };
	char pem[256], path[256];
	FILE *f;

	make_dir();
	pair("good", "DNS:good.example", NULL);
	make_pair(&expired, pem, sizeof(pem));
	make_pair(&nonames, pem, sizeof(pem));
	/* a key that belongs to another certificate */
	pair("mismatch", "DNS:mismatch.example", NULL);
	pair("other", "DNS:other.example", NULL);
	snprintf(path, sizeof(path), "%s/other.key", dir);
	snprintf(pem, sizeof(pem), "%s/mismatch.key", dir);
	ck_assert_int_eq(rename(path, pem), 0);
	snprintf(path, sizeof(path), "%s/other.pem", dir);
	ck_assert_int_eq(unlink(path), 0);
	/* garbage where a certificate should be */
	snprintf(path, sizeof(path), "%s/garbage.pem", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n", f);
	fclose(f);
	/* a certificate without its key */
	pair("keyless", "DNS:keyless.example", NULL);
	snprintf(path, sizeof(path), "%s/keyless.key", dir);
	ck_assert_int_eq(unlink(path), 0);
	/* ignored: not NAME.pem, or hidden */
	snprintf(path, sizeof(path), "%s/README", dir);
	f = fopen(path, "w");
	fputs("not a certificate\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/.hidden.pem", dir);
	f = fopen(path, "w");
	fputs("not a certificate\n", f);
	fclose(f);

	set = load(&r, 1);
	ck_assert_msg(r.n == 5, "%d reports", r.n);
	ck_assert(reported(&r, "/expired.pem", "expired"));
	ck_assert(reported(&r, "/nonames.pem", "no DNS name"));
	ck_assert(reported(&r, "/mismatch.pem", "does not match"));
	ck_assert(reported(&r, "/garbage.pem", "garbage.pem"));
	ck_assert(reported(&r, "/keyless.pem", "keyless.pem"));
	ck_assert(found_stem(set, "good.example", "good"));
	ck_assert_ptr_null(found(set, "mismatch.example", 0));
	ck_assert_ptr_null(found(set, "expired.example", 0));
	tls_certs_free(set);
	remove_dir();
}
END_TEST

START_TEST(single_pair_errors_name_the_file)
{
	struct tls_certs *set = tls_certs_new();
	char err[512];

	ck_assert_int_eq(tls_certs_add(set, "/nonexistent/x.pem", NULL, time(NULL), err,
				       sizeof(err)), -1);
	ck_assert_msg(strstr(err, "/nonexistent/x.pem") != NULL, "%s", err);
	ck_assert_uint_eq(tls_certs_count(set), 0);
	ck_assert_int_eq(tls_certs_load_dir(set, "/nonexistent-dir", time(NULL), NULL, NULL, err,
					    sizeof(err)), -1);
	ck_assert_msg(strstr(err, "/nonexistent-dir") != NULL, "%s", err);
	tls_certs_free(set);
}
END_TEST

static void count_expiring(const struct tls_cert *cert, void *arg)
{
	(void)cert;
	(*(int *)arg)++;
}

START_TEST(expiring_soon)
{
	struct reports r = { 0 };
	struct tls_certs *set;
	struct spec soon = { .stem = "soon", .san = "DNS:soon.example", .not_after_days = 3 };
	struct spec later = { .stem = "later", .san = "DNS:later.example", .not_after_days = 60 };
	const struct tls_cert *out[2];
	char pem[256];
	int n = 0;

	make_dir();
	make_pair(&soon, pem, sizeof(pem));
	make_pair(&later, pem, sizeof(pem));
	set = load(&r, 2);
	tls_certs_expiring(set, now + 14 * DAY, count_expiring, &n);
	ck_assert_int_eq(n, 1);
	tls_certs_find(set, "soon.example", 12, out);
	ck_assert(tls_cert_not_after(out[0]) > now + 2 * DAY);
	ck_assert(tls_cert_not_after(out[0]) < now + 4 * DAY);
	tls_certs_free(set);
	remove_dir();
}
END_TEST

/* ---- OCSP responses beside the pairs ----------------------------------------- */

/* What the response in STEM.ocsp says, and about which certificate. */
struct ocsp_spec {
	const char *name;
	int response_status;	/* OCSP_RESPONSE_STATUS_* */
	int cert_status;	/* V_OCSP_CERTSTATUS_* */
	long this_update;	/* seconds from now */
	long next_update;	/* seconds from now; 0: none */
	bool other_leaf;	/* about another certificate of the same CA */
	bool leaf_only;		/* the .pem holds no issuer */
	const char *raw;	/* instead of a response: these bytes */
	const char *why;	/* what the report says, NULL: stapled */
};

static const struct ocsp_spec ocsp_specs[] = {
	{ "good", OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_GOOD, -3600, 7 * DAY,
	  false, false, NULL, NULL },
	{ "expired", OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_GOOD, -8 * DAY, -DAY,
	  false, false, NULL, "the response expired" },
	{ "future", OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_GOOD, DAY, 7 * DAY,
	  false, false, NULL, "not valid yet" },
	{ "other", OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_GOOD, -3600, 7 * DAY,
	  true, false, NULL, "for another certificate" },
	{ "revoked", OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_REVOKED, -3600, 7 * DAY,
	  false, false, NULL, "the certificate is revoked" },
	{ "unknown", OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_UNKNOWN, -3600, 7 * DAY,
	  false, false, NULL, "does not know the certificate" },
	{ "forever", OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_GOOD, -3600, 0,
	  false, false, NULL, "no nextUpdate" },
	{ "trylater", OCSP_RESPONSE_STATUS_TRYLATER, V_OCSP_CERTSTATUS_GOOD, -3600, 7 * DAY,
	  false, false, NULL, "did not answer successfully" },
	{ "no-issuer", OCSP_RESPONSE_STATUS_SUCCESSFUL, V_OCSP_CERTSTATUS_GOOD, -3600, 7 * DAY,
	  false, true, NULL, "issuer is not in its chain" },
	{ "garbage", 0, 0, 0, 0, false, false, "\x30\x03\x0a\x01", "not a DER OCSP response" },
	{ "empty", 0, 0, 0, 0, false, false, "", ": empty" },
};

static unsigned char *ocsp_der(const struct ocsp_spec *o, X509 *leaf, X509 *ca, EVP_PKEY *ca_key,
			       int *len)
{
	OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
	OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), leaf, ca);
	ASN1_GENERALIZEDTIME *this_update = ASN1_GENERALIZEDTIME_adj(NULL, now, 0, o->this_update);
	ASN1_GENERALIZEDTIME *next_update =
		o->next_update != 0 ? ASN1_GENERALIZEDTIME_adj(NULL, now, 0, o->next_update) : NULL;
	ASN1_GENERALIZEDTIME *revoked = ASN1_GENERALIZEDTIME_adj(NULL, now, -1, 0);	/* a day ago */
	OCSP_RESPONSE *resp;
	unsigned char *der = NULL;

	ck_assert_ptr_nonnull(OCSP_basic_add1_status(bs, id, o->cert_status,
						     OCSP_REVOKED_STATUS_KEYCOMPROMISE, revoked,
						     this_update, next_update));
	ck_assert_int_eq(OCSP_basic_sign(bs, ca, ca_key, EVP_sha256(), NULL, 0), 1);
	resp = OCSP_response_create(o->response_status,
				    o->response_status == OCSP_RESPONSE_STATUS_SUCCESSFUL ? bs : NULL);
	ck_assert_ptr_nonnull(resp);
	*len = i2d_OCSP_RESPONSE(resp, &der);
	ck_assert_int_gt(*len, 0);
	OCSP_RESPONSE_free(resp);
	OCSP_BASICRESP_free(bs);
	OCSP_CERTID_free(id);
	ASN1_GENERALIZEDTIME_free(this_update);
	ASN1_GENERALIZEDTIME_free(next_update);
	ASN1_GENERALIZEDTIME_free(revoked);
	return der;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* STEM.pem (+ .key) for "STEM.example", issued by ca, and STEM.ocsp as o says. */
static void ocsp_pair(const struct ocsp_spec *o, X509 *ca, EVP_PKEY *ca_key)
{
	struct spec s = { .stem = o->name, .cn = o->name, .not_after_days = 90,
			  .issuer = ca, .issuer_key = ca_key };
	EVP_PKEY *key = new_key(false), *other_key = new_key(false);
	X509 *leaf, *other;
	char path[256], san[128];
	unsigned char *der;
	int len;

	snprintf(san, sizeof(san), "DNS:%s.example", o->name);
	s.san = san;
	leaf = new_cert(&s, key, false);
	other = new_cert(&s, other_key, false);
	snprintf(path, sizeof(path), "%s/%s.pem", dir, o->name);
	write_pem(path, leaf, o->leaf_only ? NULL : ca, NULL, false);
	snprintf(path, sizeof(path), "%s/%s.key", dir, o->name);
	write_pem(path, NULL, NULL, key, false);
	snprintf(path, sizeof(path), "%s/%s.ocsp", dir, o->name);
	if (o->raw != NULL) {
		write_file(path, o->raw, strlen(o->raw));
	} else {
		der = ocsp_der(o, o->other_leaf ? other : leaf, ca, ca_key, &len);
		write_file(path, der, (size_t)len);
		OPENSSL_free(der);
	}
	X509_free(leaf);
	X509_free(other);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other_key);
}

static struct tls_ocsp *ocsp_of(const struct tls_certs *set, const char *stem)
{
	const struct tls_cert *out[2];
	char name[128];

	snprintf(name, sizeof(name), "%s.example", stem);
	ck_assert_int_eq(tls_certs_find(set, name, strlen(name), out), 1);
	return tls_cert_ocsp(out[0]);
}

START_TEST(ocsp_beside_the_pair)
{
	const size_t n = sizeof(ocsp_specs) / sizeof(ocsp_specs[0]);
	struct spec ca = { .cn = "Test OCSP CA", .not_after_days = 365 };
	EVP_PKEY *ca_key = new_key(false);
	X509 *ca_cert = new_cert(&ca, ca_key, true);
	struct reports r = { 0 };
	struct tls_certs *set;
	int refused = 0;

	make_dir();
	for (size_t i = 0; i < n; i++)
		ocsp_pair(&ocsp_specs[i], ca_cert, ca_key);
	pair("plain", "DNS:plain.example", NULL);	/* no .ocsp at all */
	/* Every pair loads, a response or not: a bad one only costs the staple. */
	set = load(&r, (int)n + 1);
	for (size_t i = 0; i < n; i++) {
		const struct ocsp_spec *o = &ocsp_specs[i];
		char path[256];

		snprintf(path, sizeof(path), "%s/%s.ocsp", dir, o->name);
		if (o->why == NULL) {
			struct tls_ocsp *ocsp = ocsp_of(set, o->name);

			ck_assert_msg(ocsp != NULL, "%s: not stapled", o->name);
			ck_assert_int_eq(tls_ocsp_next_update(ocsp), now + o->next_update);
			continue;
		}
		refused++;
		ck_assert_msg(ocsp_of(set, o->name) == NULL, "%s: stapled", o->name);
		ck_assert_msg(reported(&r, path, o->why), "%s: no report saying '%s' (%d reports)",
			      o->name, o->why, r.n);
		ck_assert_msg(reported(&r, path, " | pair kept"), "%s: reported as a skipped pair",
			      o->name);
	}
	ck_assert_ptr_null(ocsp_of(set, "plain"));
	ck_assert_int_eq(r.n, refused);
	tls_certs_free(set);
	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	remove_dir();
}
END_TEST

/* Stapled while valid; after nextUpdate not any more (and not an error). */
START_TEST(ocsp_staple_until_next_update)
{
	struct spec ca = { .cn = "Test OCSP CA", .not_after_days = 365 };
	EVP_PKEY *ca_key = new_key(false);
	X509 *ca_cert = new_cert(&ca, ca_key, true);
	struct reports r = { 0 };
	struct tls_certs *set;
	struct tls_ocsp *ocsp;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	SSL *ssl = SSL_new(ctx);
	unsigned char *stapled = NULL;
	char log_path[128], line[512];
	int saved, fd, warnings = 0;
	FILE *f;

	make_dir();
	ocsp_pair(&ocsp_specs[0], ca_cert, ca_key);
	set = load(&r, 1);
	ocsp = ocsp_of(set, "good");
	ck_assert_ptr_nonnull(ocsp);
	ck_assert_int_eq(tls_ocsp_staple(ocsp, ssl, now), 1);
	ck_assert_int_gt(SSL_get_tlsext_status_ocsp_resp(ssl, &stapled), 0);
	ck_assert_ptr_nonnull(stapled);
	ck_assert_int_eq(tls_ocsp_staple(ocsp, ssl, tls_ocsp_next_update(ocsp) - 1), 1);
	/* Expired: warned once (the log goes to stderr here), then quietly not stapled. */
	snprintf(log_path, sizeof(log_path), "%s/stderr", dir);
	fflush(stderr);
	saved = dup(2);
	fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert(saved >= 0 && fd >= 0 && dup2(fd, 2) == 2);
	ck_assert_int_eq(tls_ocsp_staple(ocsp, ssl, tls_ocsp_next_update(ocsp)), 0);
	ck_assert_int_eq(tls_ocsp_staple(ocsp, ssl, tls_ocsp_next_update(ocsp) + DAY), 0);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	f = fopen(log_path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL)
		warnings += strstr(line, "ocsp response expired path=") != NULL &&
			    strstr(line, "good.ocsp: no longer stapled") != NULL;
	fclose(f);
	ck_assert_int_eq(warnings, 1);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	tls_certs_free(set);
	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	remove_dir();
}
END_TEST

/* A directory load whose broken pairs come from a copy (as engine_lastgood's do). */
struct copy_load {
	const struct tls_pem *copy;
	struct reports r;
};

static int put_copy(struct tls_certs *set, const struct tls_pem *labels, const char *why,
		    void *arg)
{
	const struct copy_load *c = arg;
	char err[512];

	(void)labels;
	(void)why;
	ck_assert_msg(tls_certs_add_pem(set, c->copy, now, NULL, err, sizeof(err)) == 0, "%s", err);
	return 0;
}

static void copy_report(const char *path, const char *why, bool pair_skipped, void *arg)
{
	collect(path, why, pair_skipped, &((struct copy_load *)arg)->r);
}

/* good.pem broken and its pair put in from copy: the set, with what good.ocsp gave it. */
static struct tls_certs *load_with_copy(struct copy_load *c)
{
	struct tls_certs_hooks hooks = { .broken = put_copy, .report = copy_report, .arg = c };
	struct tls_certs *set = tls_certs_new();
	char path[256], err[512];

	ck_assert_ptr_nonnull(set);
	snprintf(path, sizeof(path), "%s/good.pem", dir);
	write_file(path, "garbage\n", 8);
	/* 0 loaded: the copy is not the file. */
	ck_assert_int_eq(tls_certs_load_dir_hooked(set, dir, now, &hooks, err, sizeof(err)), 0);
	return set;
}

/*
 * A pair served from its copy gets NAME.ocsp too, but only while the
 * response is about the copy's leaf, not about the renewed certificate
 * whose file broke.
 */
START_TEST(ocsp_for_a_pair_from_its_copy)
{
	struct spec ca = { .cn = "Test OCSP CA", .not_after_days = 365 };
	EVP_PKEY *ca_key = new_key(false);
	X509 *ca_cert = new_cert(&ca, ca_key, true);
	char cert[256], key[256], ocsp[256];
	struct copy_load c = { 0 };
	struct tls_certs *set;
	struct tls_pem copy;
	char err[512];

	make_dir();
	snprintf(cert, sizeof(cert), "%s/good.pem", dir);
	snprintf(key, sizeof(key), "%s/good.key", dir);
	snprintf(ocsp, sizeof(ocsp), "%s/good.ocsp", dir);
	ocsp_pair(&ocsp_specs[0], ca_cert, ca_key);
	ck_assert_msg(tls_pem_read(&copy, cert, key, err, sizeof(err)) == 0, "%s", err);
	c.copy = &copy;

	set = load_with_copy(&c);
	ck_assert_msg(ocsp_of(set, "good") != NULL, "the copy's own response not stapled");
	ck_assert_int_eq(c.r.n, 0);
	tls_certs_free(set);

	/* Renewed (a new leaf, its response), then the new .pem broke: the copy is the old leaf. */
	ocsp_pair(&ocsp_specs[0], ca_cert, ca_key);
	c.r.n = 0;
	set = load_with_copy(&c);
	ck_assert_ptr_null(ocsp_of(set, "good"));
	ck_assert_int_eq(c.r.n, 1);
	ck_assert_msg(reported(&c.r, ocsp, "for another certificate"), "%s", c.r.text[0]);
	ck_assert_msg(reported(&c.r, ocsp, " | pair kept"), "%s", c.r.text[0]);
	tls_certs_free(set);

	tls_pem_wipe(&copy);
	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	remove_dir();
}
END_TEST

START_TEST(ocsp_needs_a_pair)
{
	struct tls_certs *set = tls_certs_new();
	char err[512];

	ck_assert_int_eq(tls_certs_add_ocsp(set, "/nonexistent/x.ocsp", now, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "/nonexistent/x.ocsp: no certificate") != NULL, "%s", err);
	tls_certs_free(set);
}
END_TEST

static Suite *tls_certs_suite(void)
{
	Suite *s = suite_create("tls_certs");
	TCase *tc = tcase_create("names");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, exact_and_wildcard);
	tcase_add_test(tc, names_that_find_nothing);
	tcase_add_test(tc, cn_when_no_san);
	tcase_add_test(tc, ecdsa_and_rsa_for_one_name);
	tcase_add_test(tc, renewed_wins_whatever_the_order);
	tcase_add_test(tc, key_inside_the_pem);
	tcase_add_test(tc, chain_with_intermediate);
	tcase_add_test(tc, pair_used_in_every_key_format);
	suite_add_tcase(s, tc);
	tc = tcase_create("loading");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, broken_pairs_reported_and_skipped);
	tcase_add_test(tc, single_pair_errors_name_the_file);
	tcase_add_test(tc, expiring_soon);
	suite_add_tcase(s, tc);
	tc = tcase_create("ocsp");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, ocsp_beside_the_pair);
	tcase_add_test(tc, ocsp_staple_until_next_update);
	tcase_add_test(tc, ocsp_needs_a_pair);
	tcase_add_test(tc, ocsp_for_a_pair_from_its_copy);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run(tls_certs_suite());
}
