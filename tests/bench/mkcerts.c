/*
 * mkcerts - certificate pairs for mgbench's certificate_dir phase.
 *
 *   mkcerts CA_CERT CA_KEY DIR COUNT [shared-key]
 *
 * Writes DIR/customerN.pem (N = 1..COUNT): a leaf for DNS:customerN.bench.test
 * signed by the given CA, then its P-256 key. Ten thousand pairs with the
 * openssl CLI take minutes (a process and a key file per pair); here they
 * take seconds. "shared-key" gives every leaf the same key (each certificate
 * still distinct): for machines where key generation is the slow part.
 * Only the benchmark uses it; nothing is installed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define MAX_PAIRS 1000000L
#define DAYS 365L

static void die_ssl(const char *what)
{
	fprintf(stderr, "mkcerts: %s failed\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static void *read_pem(const char *path, int want_key)
{
	FILE *f = fopen(path, "r");
	void *v;

	if (f == NULL) {
		fprintf(stderr, "mkcerts: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	v = want_key ? (void *)PEM_read_PrivateKey(f, NULL, NULL, NULL)
		     : (void *)PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (v == NULL) {
		fprintf(stderr, "mkcerts: %s: no PEM %s\n", path, want_key ? "key" : "certificate");
		ERR_print_errors_fp(stderr);
		exit(1);
	}
	return v;
}

static void add_ext(X509 *leaf, X509 *ca, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, ca, leaf, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL || !X509_add_ext(leaf, ext, -1))
		die_ssl("adding an extension");
	X509_EXTENSION_free(ext);
}

/* The leaf for name, serial n, signed by ca/ca_key. */
static X509 *make_leaf(long n, const char *name, EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key)
{
	X509 *leaf = X509_new();
	X509_NAME *subject = X509_NAME_new();
	char san[300];

	if (leaf == NULL || subject == NULL || !X509_set_version(leaf, 2) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(leaf), n + 1000) ||
	    X509_gmtime_adj(X509_getm_notBefore(leaf), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(leaf), DAYS * 86400) == NULL ||
	    !X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
					(const unsigned char *)name, -1, -1, 0) ||
	    !X509_set_subject_name(leaf, subject) ||
	    !X509_set_issuer_name(leaf, X509_get_subject_name(ca)) ||
	    !X509_set_pubkey(leaf, key))
		die_ssl("building a certificate");
	X509_NAME_free(subject);
	snprintf(san, sizeof(san), "DNS:%s", name);
	add_ext(leaf, ca, NID_subject_alt_name, san);
	add_ext(leaf, ca, NID_basic_constraints, "critical,CA:FALSE");
	add_ext(leaf, ca, NID_key_usage, "critical,digitalSignature");
	add_ext(leaf, ca, NID_ext_key_usage, "serverAuth");
	if (X509_sign(leaf, ca_key, EVP_sha256()) == 0)
		die_ssl("signing a certificate");
	return leaf;
}

static void write_pair(const char *dir, long n, X509 *leaf, EVP_PKEY *key)
{
	char path[4096];
	FILE *f;

	if ((size_t)snprintf(path, sizeof(path), "%s/customer%ld.pem", dir, n) >= sizeof(path)) {
		fprintf(stderr, "mkcerts: %s: path too long\n", dir);
		exit(1);
	}
	f = fopen(path, "w");
	if (f == NULL) {
		fprintf(stderr, "mkcerts: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	if (!PEM_write_X509(f, leaf) || !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL))
		die_ssl("writing a pair");
	if (fclose(f) != 0) {
		fprintf(stderr, "mkcerts: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	EVP_PKEY *ca_key, *shared = NULL;
	X509 *ca;
	char *end;
	long count;

	if (argc < 5 || argc > 6 || (argc == 6 && strcmp(argv[5], "shared-key") != 0)) {
		fprintf(stderr, "usage: mkcerts CA_CERT CA_KEY DIR COUNT [shared-key]\n");
		return 2;
	}
	errno = 0;
	count = strtol(argv[4], &end, 10);
	if (errno != 0 || *end != '\0' || count < 1 || count > MAX_PAIRS) {
		fprintf(stderr, "mkcerts: COUNT must be 1..%ld, not '%s'\n", MAX_PAIRS, argv[4]);
		return 2;
	}
	ca = read_pem(argv[1], 0);
	ca_key = read_pem(argv[2], 1);
	if (argc == 6 && (shared = EVP_EC_gen("P-256")) == NULL)
		die_ssl("generating the shared key");
	for (long n = 1; n <= count; n++) {
		EVP_PKEY *key = shared != NULL ? shared : EVP_EC_gen("P-256");
		char name[64];
		X509 *leaf;

		if (key == NULL)
			die_ssl("generating a key");
		snprintf(name, sizeof(name), "customer%ld.bench.test", n);
		leaf = make_leaf(n, name, key, ca, ca_key);
		write_pair(argv[3], n, leaf, key);
		X509_free(leaf);
		if (key != shared)
			EVP_PKEY_free(key);
	}
	EVP_PKEY_free(shared);
	EVP_PKEY_free(ca_key);
	X509_free(ca);
	return 0;
}
