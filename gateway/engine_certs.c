/*
 * engine_certs.c - certificates by name (see engine_certs.h).
 *
 * Memory is what matters at hosting scale (10,000 customer domains). A pair
 * keeps its leaf and its key as DER only (parsed, a P-256 pair costs about
 * 7 kB, as DER 0.5 kB): they are parsed again when a handshake needs them,
 * into a bounded cache (engine_paircache.h), so names in use cost no
 * parsing. The key's DER is a secret like the parsed key: wiped when freed. An
 * intermediate that many chains share (every customer's certificate comes
 * from the same few CAs) is kept once and referenced by each chain. The name index is two open-addressing
 * hash tables (exact names, and wildcards by the suffix after "*."), keyed
 * with a random seed per set.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "dnsname.h"
#include "engine_certs.h"
#include "engine_paircache.h"
#include "engine_ocsp.h"
#include "tls_openssl.h"

enum { SLOT_ECDSA, SLOT_RSA, SLOT_COUNT };

struct tls_cert {
	unsigned char *leaf_der;
	int leaf_len;
	unsigned char *key_der;	/* as in its file: PKCS#8, SEC1 or PKCS#1 */
	int key_len;
	STACK_OF(X509) *chain;	/* intermediates, shared with other pairs */
	time_t not_after;
	int slot;
	size_t index;		/* in the set's pairs */
	uint32_t cache_hint;	/* where the pair cache put it last */
	char *path;
	struct tls_ocsp *ocsp;	/* stapled response, for the few pairs that have one */
};

struct name_entry {
	char *name;		/* NULL: the slot is free */
	const struct tls_cert *pair[SLOT_COUNT];
};

struct name_table {
	struct name_entry *slots;
	size_t cap;		/* a power of two, or 0 */
	size_t used;
};

/* An intermediate's PEM text and the one parsed copy every chain shares. */
struct known_pem {
	char *text;
	size_t len;
	X509 *x;
};

struct tls_certs {
	struct pair_cache *parsed;	/* made at the first handshake that needs one */
	struct tls_cert **pairs;
	size_t n_pairs, cap_pairs;
	struct name_table exact;
	struct name_table wildcard;	/* "*.example.org" is kept as "example.org" */
	struct known_pem *intermediates;	/* every distinct one, to share among chains */
	size_t n_intermediates, cap_intermediates;
	OSSL_DECODER_CTX *decoder;		/* for every key of the set, from PEM */
	EVP_PKEY *decoded;			/* where it puts each */
	OSSL_DECODER_CTX *der_decoder[SLOT_COUNT];	/* for the DER kept, by type */
	EVP_PKEY *der_decoded;
	uint64_t seed;
};

/* ---- names ------------------------------------------------------------------ */

/* Certificates in the wild carry '_' in names now and then: index them too. */
#define CERT_NAME_FLAGS DNS_NAME_UNDERSCORE

static uint64_t hash_name(uint64_t seed, const char *name, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 0x100000001b3ULL;
	}
	/* FNV's low bits are weak: fold the high ones in before masking. */
	return h ^ (h >> 29) ^ (h >> 47);
}

static struct name_entry *table_probe(const struct name_table *t, uint64_t seed,
				      const char *name, size_t len)
{
	size_t i;

	if (t->cap == 0)
		return NULL;
	i = (size_t)hash_name(seed, name, len) & (t->cap - 1);
	for (;;) {
		struct name_entry *e = &t->slots[i];

		if (e->name == NULL || (strlen(e->name) == len && memcmp(e->name, name, len) == 0))
			return e;
		i = (i + 1) & (t->cap - 1);
	}
}

static int table_grow(struct name_table *t, uint64_t seed)
{
	size_t cap = t->cap == 0 ? 64 : t->cap * 2;
	struct name_entry *slots = calloc(cap, sizeof(*slots));
	struct name_table grown = { .slots = slots, .cap = cap, .used = t->used };

	if (slots == NULL)
		return -1;
	for (size_t i = 0; i < t->cap; i++) {
		if (t->slots[i].name != NULL)
			*table_probe(&grown, seed, t->slots[i].name, strlen(t->slots[i].name)) =
				t->slots[i];
	}
	free(t->slots);
	*t = grown;
	return 0;
}

/* The entry for name, made when missing; NULL when out of memory. */
static struct name_entry *table_entry(struct name_table *t, uint64_t seed, const char *name,
				      size_t len)
{
	struct name_entry *e;

	/* At most half full: probes stay short. */
	if ((t->used + 1) * 2 > t->cap && table_grow(t, seed) < 0)
		return NULL;
	e = table_probe(t, seed, name, len);
	if (e->name == NULL) {
		e->name = strndup(name, len);
		if (e->name == NULL)
			return NULL;
		t->used++;
	}
	return e;
}

static void table_free(struct name_table *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->slots[i].name);
	free(t->slots);
	*t = (struct name_table){ 0 };
}

/* ---- the set ---------------------------------------------------------------- */

struct tls_certs *tls_certs_new(void)
{
	struct tls_certs *set = calloc(1, sizeof(*set));

	if (set != NULL && getrandom(&set->seed, sizeof(set->seed), 0) != sizeof(set->seed))
		set->seed = (uint64_t)(uintptr_t)set ^ (uint64_t)time(NULL);
	return set;
}

static void cert_free(struct tls_cert *c)
{
	if (c == NULL)
		return;
	free(c->leaf_der);
	OPENSSL_clear_free(c->key_der, (size_t)(c->key_len > 0 ? c->key_len : 0));
	sk_X509_pop_free(c->chain, X509_free);
	tls_ocsp_free(c->ocsp);
	free(c->path);
	free(c);
}

void tls_certs_free(struct tls_certs *set)
{
	if (set == NULL)
		return;
	pair_cache_free(set->parsed);
	for (int slot = 0; slot < SLOT_COUNT; slot++)
		OSSL_DECODER_CTX_free(set->der_decoder[slot]);
	for (size_t i = 0; i < set->n_pairs; i++)
		cert_free(set->pairs[i]);
	free(set->pairs);
	for (size_t i = 0; i < set->n_intermediates; i++) {
		X509_free(set->intermediates[i].x);
		free(set->intermediates[i].text);
	}
	free(set->intermediates);
	OSSL_DECODER_CTX_free(set->decoder);
	table_free(&set->exact);
	table_free(&set->wildcard);
	free(set);
}

size_t tls_certs_count(const struct tls_certs *set)
{
	return set->n_pairs;
}

size_t tls_certs_names(const struct tls_certs *set)
{
	return set->exact.used + set->wildcard.used;
}

/* Keys on disk are never encrypted here: a daemon has nobody to ask. */
int tls_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return -1;
}

/* A PEM block in a file read into memory: its label and its whole text. */
struct pem_block {
	const char *label;	/* "CERTIFICATE", "PRIVATE KEY", ... (not terminated) */
	size_t label_len;
	const char *text;	/* from "-----BEGIN" to the end of its "-----END ...-----" */
	size_t len;
};

/* The next block at or after *pos; false when there is none (or it is cut off). */
static bool next_block(const char *buf, size_t len, size_t *pos, struct pem_block *b)
{
	static const char begin[] = "-----BEGIN ", end[] = "-----END ";
	const char *start = *pos < len ? memmem(buf + *pos, len - *pos, begin, sizeof(begin) - 1)
				       : NULL;
	const char *label, *label_end, *stop, *close;

	if (start == NULL)
		return false;
	label = start + sizeof(begin) - 1;
	label_end = memmem(label, len - (size_t)(label - buf), "-----", 5);
	if (label_end == NULL)
		return false;
	stop = memmem(label_end, len - (size_t)(label_end - buf), end, sizeof(end) - 1);
	if (stop == NULL)
		return false;
	close = memmem(stop + sizeof(end) - 1, len - (size_t)(stop + sizeof(end) - 1 - buf),
		       "-----", 5);
	if (close == NULL)
		return false;
	*b = (struct pem_block){ .label = label, .label_len = (size_t)(label_end - label),
				 .text = start, .len = (size_t)(close + 5 - start) };
	*pos = (size_t)(close + 5 - buf);
	return true;
}

static bool label_is(const struct pem_block *b, const char *want)
{
	size_t n = strlen(want);

	return b->label_len == n && memcmp(b->label, want, n) == 0;
}

static bool label_ends(const struct pem_block *b, const char *suffix)
{
	size_t n = strlen(suffix);

	return b->label_len >= n && memcmp(b->label + b->label_len - n, suffix, n) == 0;
}

/* Certificate files are small; a bigger one is a mistake, not a chain. */
#define PEM_FILE_MAX (1024 * 1024)

/* The whole file in a malloc'd, NUL-terminated buffer; NULL with err. */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n = 0;

	if (f == NULL) {
		int saved = errno;

		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		errno = saved;
		return NULL;
	}
	buf = malloc(PEM_FILE_MAX + 1);
	if (buf == NULL) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	n = fread(buf, 1, PEM_FILE_MAX + 1, f);
	if (ferror(f) || n > PEM_FILE_MAX) {
		snprintf(err, errlen, "%s: %s", path, ferror(f) ? strerror(errno) : "larger than 1 MB");
		fclose(f);
		explicit_bzero(buf, n);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void wipe_file(char *buf, size_t len)
{
	if (buf != NULL) {
		explicit_bzero(buf, len);
		free(buf);
	}
}

void tls_pem_wipe(struct tls_pem *pem)
{
	wipe_file(pem->cert, pem->cert_len);
	wipe_file(pem->key, pem->key_len);
	pem->cert = pem->key = NULL;
	pem->cert_len = pem->key_len = 0;
}

int tls_pem_read(struct tls_pem *pem, const char *cert_path, const char *key_path, char *err,
		 size_t errlen)
{
	*pem = (struct tls_pem){ .cert_path = cert_path, .key_path = key_path };
	pem->cert = read_file(cert_path, &pem->cert_len, err, errlen);
	if (pem->cert == NULL)
		return -1;
	if (key_path != NULL) {
		pem->key = read_file(key_path, &pem->key_len, err, errlen);
		if (pem->key == NULL) {
			int saved = errno;

			tls_pem_wipe(pem);
			errno = saved;
			return -1;
		}
	}
	return 0;
}

static X509 *parse_certificate(const struct pem_block *b)
{
	BIO *bio = BIO_new_mem_buf(b->text, (int)b->len);
	X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, tls_no_passphrase, NULL) : NULL;

	BIO_free(bio);
	return x;
}

/*
 * The set's copy of the intermediate in block b: the same text was parsed
 * before (most chains share their CA's certificate), or it is parsed now
 * and remembered. NULL when it does not parse.
 */
static X509 *shared_intermediate(struct tls_certs *set, const struct pem_block *b)
{
	X509 *x;

	for (size_t i = 0; i < set->n_intermediates; i++) {
		const struct known_pem *k = &set->intermediates[i];

		if (k->len == b->len && memcmp(k->text, b->text, b->len) == 0) {
			X509_up_ref(k->x);
			return k->x;
		}
	}
	x = parse_certificate(b);
	if (x == NULL)
		return NULL;
	if (set->n_intermediates == set->cap_intermediates) {
		size_t cap = set->cap_intermediates == 0 ? 8 : set->cap_intermediates * 2;
		struct known_pem *grown = realloc(set->intermediates, cap * sizeof(*grown));

		if (grown == NULL)
			return x;	/* unshared, still correct */
		set->intermediates = grown;
		set->cap_intermediates = cap;
	}
	set->intermediates[set->n_intermediates].text = malloc(b->len);
	if (set->intermediates[set->n_intermediates].text == NULL)
		return x;
	memcpy(set->intermediates[set->n_intermediates].text, b->text, b->len);
	set->intermediates[set->n_intermediates].len = b->len;
	set->intermediates[set->n_intermediates].x = x;
	X509_up_ref(x);
	set->n_intermediates++;
	return x;
}

/* The leaf (first certificate) and the chain after it, from the file's blocks. */
static int read_chain(struct tls_certs *set, struct tls_cert *c, X509 **leaf, const char *buf,
		      size_t len, const char *path, char *err, size_t errlen)
{
	struct pem_block b;
	size_t pos = 0;

	c->chain = sk_X509_new_null();
	if (c->chain == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	while (next_block(buf, len, &pos, &b)) {
		X509 *x;

		if (!label_is(&b, "CERTIFICATE"))
			continue;
		x = *leaf == NULL ? parse_certificate(&b) : shared_intermediate(set, &b);
		if (x == NULL) {
			tls_openssl_error(err, errlen, path);
			return -1;
		}
		if (*leaf == NULL) {
			*leaf = x;
		} else if (!sk_X509_push(c->chain, x)) {
			X509_free(x);
			snprintf(err, errlen, "%s: out of memory", path);
			return -1;
		}
	}
	if (*leaf == NULL) {
		snprintf(err, errlen, "%s: no certificate in the file", path);
		return -1;
	}
	return 0;
}

/*
 * The DER of a key's PEM block, kept for the pair (engine_paircache.h): the
 * block's own bytes, as the load decoded them (encoding the parsed key
 * again would cost an encoder's set-up, ~0.1 ms a key). Legacy encrypted
 * PEM never gets here: the load refused it.
 */
static int key_der(struct tls_cert *c, const struct pem_block *b, const char *path, char *err,
		   size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(b->text, (int)b->len);
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long len = 0;
	int ok = bio != NULL && PEM_read_bio(bio, &name, &header, &data, &len) == 1 && len > 0 &&
		 len <= INT_MAX;

	BIO_free(bio);
	OPENSSL_free(name);
	OPENSSL_free(header);
	if (!ok) {
		OPENSSL_clear_free(data, len > 0 ? (size_t)len : 0);
		tls_openssl_error(err, errlen, path);
		return -1;
	}
	c->key_der = data;
	c->key_len = (int)len;
	return 0;
}

/*
 * The private key: the first "... PRIVATE KEY" block of buf. One decoder
 * serves every key of the set: OpenSSL 3 spends most of a key's load
 * setting a decoder up, which makes a directory of 10,000 keys five times
 * slower when each gets its own.
 */
static int read_key(struct tls_certs *set, struct tls_cert *c, EVP_PKEY **key, const char *buf,
		    size_t len, const char *path, char *err, size_t errlen)
{
	struct pem_block b = { 0 };
	size_t pos = 0;
	BIO *bio;
	int ok;

	while (next_block(buf, len, &pos, &b) && !label_ends(&b, "PRIVATE KEY"))
		;
	if (b.text == NULL || !label_ends(&b, "PRIVATE KEY")) {
		snprintf(err, errlen, "%s: no private key in the file", path);
		return -1;
	}
	if (set->decoder == NULL) {
		set->decoder = OSSL_DECODER_CTX_new_for_pkey(&set->decoded, "PEM", NULL, NULL,
							     OSSL_KEYMGMT_SELECT_KEYPAIR, NULL,
							     NULL);
		if (set->decoder == NULL ||
		    !OSSL_DECODER_CTX_set_pem_password_cb(set->decoder, tls_no_passphrase, NULL)) {
			tls_openssl_error(err, errlen, "cannot set up the key decoder");
			return -1;
		}
	}
	bio = BIO_new_mem_buf(b.text, (int)b.len);
	set->decoded = NULL;
	ok = bio != NULL && OSSL_DECODER_from_bio(set->decoder, bio) && set->decoded != NULL;
	BIO_free(bio);
	if (!ok) {
		EVP_PKEY_free(set->decoded);
		set->decoded = NULL;
		tls_openssl_error(err, errlen, path);
		return -1;
	}
	*key = set->decoded;
	set->decoded = NULL;
	return key_der(c, &b, path, err, errlen);
}

static time_t asn1_time_t(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return timegm(&tm);
}

/* Calls fn for every name the leaf serves; returns how many, or -1 when fn fails. */
static int for_each_name(X509 *leaf, int (*fn)(const char *name, size_t len, void *arg),
			 void *arg)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	int found = 0;

	for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);

		if (gn->type != GEN_DNS)
			continue;
		if (fn((const char *)ASN1_STRING_get0_data(gn->d.dNSName),
		       (size_t)ASN1_STRING_length(gn->d.dNSName), arg) < 0) {
			GENERAL_NAMES_free(names);
			return -1;
		}
		found++;
	}
	GENERAL_NAMES_free(names);
	if (found == 0) {
		/* No DNS name in the SAN: the subject's (last) CN, as RFC 6125 allows. */
		const X509_NAME *subject = X509_get_subject_name(leaf);
		int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1), last = -1;

		while (at >= 0) {
			last = at;
			at = X509_NAME_get_index_by_NID(subject, NID_commonName, at);
		}
		if (last >= 0) {
			const ASN1_STRING *cn =
				X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, last));

			if (fn((const char *)ASN1_STRING_get0_data(cn), (size_t)ASN1_STRING_length(cn),
			       arg) < 0)
				return -1;
			found++;
		}
	}
	return found;
}

struct index_ctx {
	struct tls_certs *set;
	const struct tls_cert *pair;
	size_t indexed;
};

static int index_name(const char *name, size_t len, void *arg)
{
	struct index_ctx *ctx = arg;
	char norm[TLS_NAME_MAX + 1];
	bool wildcard;
	size_t n = dns_name_normalize(name, len, norm, CERT_NAME_FLAGS | DNS_NAME_WILDCARD,
				      &wildcard);
	struct name_entry *e;
	const struct tls_cert **slot;

	if (n == 0)
		return 0;	/* not a DNS name (an IP address, say): serves no SNI */
	e = table_entry(wildcard ? &ctx->set->wildcard : &ctx->set->exact, ctx->set->seed, norm, n);
	if (e == NULL)
		return -1;
	slot = &e->pair[ctx->pair->slot];
	/* Two of one kind for one name: the renewed one, which expires later. */
	if (*slot == NULL || ctx->pair->not_after > (*slot)->not_after)
		*slot = ctx->pair;
	ctx->indexed++;
	return 0;
}

static int count_name(const char *name, size_t len, void *arg)
{
	char norm[TLS_NAME_MAX + 1];
	bool wildcard;

	if (dns_name_normalize(name, len, norm, CERT_NAME_FLAGS | DNS_NAME_WILDCARD,
			       &wildcard) > 0)
		(*(size_t *)arg)++;
	return 0;
}

static int reserve_pair(struct tls_certs *set)
{
	size_t cap = set->cap_pairs == 0 ? 16 : set->cap_pairs * 2;
	struct tls_cert **grown;

	if (set->n_pairs < set->cap_pairs)
		return 0;
	grown = realloc(set->pairs, cap * sizeof(*grown));
	if (grown == NULL)
		return -1;
	set->pairs = grown;
	set->cap_pairs = cap;
	return 0;
}

int tls_certs_add_pem(struct tls_certs *set, const struct tls_pem *pem, time_t now,
		      const struct tls_cert **added, char *err, size_t errlen)
{
	const char *cert_path = pem->cert_path;
	struct tls_cert *c = calloc(1, sizeof(*c));
	struct index_ctx ctx = { .set = set };
	X509 *leaf = NULL;
	EVP_PKEY *key = NULL;
	size_t usable = 0;
	int type;

	if (c == NULL) {
		snprintf(err, errlen, "%s: out of memory", cert_path);
		return -1;
	}
	ERR_clear_error();
	if (read_chain(set, c, &leaf, pem->cert, pem->cert_len, cert_path, err, errlen) < 0)
		goto fail;
	if (pem->key != NULL) {
		if (read_key(set, c, &key, pem->key, pem->key_len, pem->key_path, err, errlen) < 0)
			goto fail;
	} else if (read_key(set, c, &key, pem->cert, pem->cert_len, cert_path, err, errlen) < 0) {
		goto fail;
	}
	if (!X509_check_private_key(leaf, key)) {
		ERR_clear_error();
		snprintf(err, errlen, "%s: the key %s does not match the certificate", cert_path,
			 pem->key != NULL ? pem->key_path : "in the file");
		goto fail;
	}
	type = EVP_PKEY_get_base_id(key);
	if (type != EVP_PKEY_EC && type != EVP_PKEY_RSA) {
		snprintf(err, errlen, "%s: the key is neither ECDSA nor RSA", cert_path);
		goto fail;
	}
	c->slot = type == EVP_PKEY_EC ? SLOT_ECDSA : SLOT_RSA;
	c->not_after = asn1_time_t(X509_get0_notAfter(leaf));
	if (X509_cmp_time(X509_get0_notAfter(leaf), &now) < 0) {
		snprintf(err, errlen, "%s: the certificate expired", cert_path);
		goto fail;
	}
	if (for_each_name(leaf, count_name, &usable) < 0 || usable == 0) {
		snprintf(err, errlen, "%s: the certificate names no DNS name (subjectAltName or CN)",
			 cert_path);
		goto fail;
	}
	c->path = strdup(cert_path);
	c->leaf_len = i2d_X509(leaf, &c->leaf_der);
	EVP_PKEY_free(key);
	key = NULL;
	if (c->path == NULL || c->leaf_len <= 0 || reserve_pair(set) < 0) {
		snprintf(err, errlen, "%s: out of memory", cert_path);
		goto fail;
	}
	ctx.pair = c;
	c->index = set->n_pairs;
	set->pairs[set->n_pairs++] = c;
	/* On failure, names indexed so far point at c: it stays in the set either way. */
	if (for_each_name(leaf, index_name, &ctx) < 0) {
		X509_free(leaf);
		snprintf(err, errlen, "%s: out of memory", cert_path);
		return -1;
	}
	X509_free(leaf);
	if (added != NULL)
		*added = c;
	return 0;
fail:
	ERR_clear_error();
	X509_free(leaf);
	EVP_PKEY_free(key);
	cert_free(c);
	return -1;
}

int tls_certs_add(struct tls_certs *set, const char *cert_path, const char *key_path, time_t now,
		  char *err, size_t errlen)
{
	struct tls_pem pem;
	int rc;

	if (tls_pem_read(&pem, cert_path, key_path, err, errlen) < 0)
		return -1;
	rc = tls_certs_add_pem(set, &pem, now, NULL, err, errlen);
	tls_pem_wipe(&pem);
	return rc;
}

int tls_certs_add_ocsp(struct tls_certs *set, const char *ocsp_path, time_t now, char *err,
		       size_t errlen)
{
	struct tls_cert *c = set->n_pairs > 0 ? set->pairs[set->n_pairs - 1] : NULL;
	const unsigned char *p;
	struct tls_ocsp *ocsp;
	X509 *leaf;

	if (c == NULL) {
		snprintf(err, errlen, "%s: no certificate to staple it to", ocsp_path);
		return -1;
	}
	p = c->leaf_der;
	leaf = d2i_X509(NULL, &p, c->leaf_len);
	if (leaf == NULL) {
		ERR_clear_error();
		snprintf(err, errlen, "%s: out of memory", ocsp_path);
		return -1;
	}
	ocsp = tls_ocsp_load(ocsp_path, leaf, c->chain, now, err, errlen);
	X509_free(leaf);
	if (ocsp == NULL)
		return -1;
	tls_ocsp_free(c->ocsp);
	c->ocsp = ocsp;
	return 0;
}

/* NAME.pem, NAME not starting with a dot: what a directory load takes. */
static bool pem_name(const char *name, size_t *stem)
{
	size_t len = strlen(name);

	if (name[0] == '.' || len <= 4 || strcmp(name + len - 4, ".pem") != 0)
		return false;
	*stem = len - 4;
	return true;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int tls_certs_load_dir(struct tls_certs *set, const char *dir, time_t now,
		       tls_certs_report_fn *report, void *arg, char *err, size_t errlen)
{
	struct tls_certs_hooks hooks = { .report = report, .arg = arg };

	return tls_certs_load_dir_hooked(set, dir, now, &hooks, err, errlen);
}

/* One NAME.pem of a directory: 1 loaded, 0 gone or skipped (reported as hooks say). */
static int load_one(struct tls_certs *set, const char *cert, const char *key, time_t now,
		    const struct tls_certs_hooks *h)
{
	struct tls_pem pem;
	char why[512];

	if (tls_pem_read(&pem, cert, key, why, sizeof(why)) < 0) {
		if (errno == ENOENT && access(cert, F_OK) < 0)
			return 0;	/* deleted since the listing: gone, not broken */
	} else if (tls_certs_add_pem(set, &pem, now, NULL, why, sizeof(why)) == 0) {
		if (h->loaded != NULL)
			h->loaded(&pem, h->arg);
		tls_pem_wipe(&pem);
		return 1;
	}
	tls_pem_wipe(&pem);
	pem = (struct tls_pem){ .cert_path = cert, .key_path = key };
	if (h->broken != NULL && h->broken(set, &pem, why, h->arg) == 0)
		return 0;
	if (h->report != NULL)
		h->report(cert, why, true, h->arg);
	return 0;
}

int tls_certs_load_dir_hooked(struct tls_certs *set, const char *dir, time_t now,
			      const struct tls_certs_hooks *hooks, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int loaded = 0;

	if (d == NULL) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		size_t stem;

		if (!pem_name(e->d_name, &stem))
			continue;
		if (n == cap) {
			size_t grown_cap = cap == 0 ? 64 : cap * 2;
			char **grown = realloc(names, grown_cap * sizeof(*grown));

			if (grown == NULL)
				break;
			names = grown;
			cap = grown_cap;
		}
		names[n] = strdup(e->d_name);
		if (names[n] != NULL)
			n++;
	}
	closedir(d);
	/* In name order, so which of two equal pairs wins never depends on the directory. */
	if (n > 1)
		qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; i < n; i++) {
		char cert[4096], key[4096], ocsp[4096], why[512];
		size_t stem = strlen(names[i]) - 4, before;

		if ((size_t)snprintf(cert, sizeof(cert), "%s/%s", dir, names[i]) >= sizeof(cert) ||
		    (size_t)snprintf(key, sizeof(key), "%s/%.*s.key", dir, (int)stem, names[i]) >=
			    sizeof(key) ||
		    (size_t)snprintf(ocsp, sizeof(ocsp), "%s/%.*s.ocsp", dir, (int)stem,
				     names[i]) >= sizeof(ocsp)) {
			if (hooks->report != NULL)
				hooks->report(names[i], "path too long", true, hooks->arg);
			continue;
		}
		before = set->n_pairs;
		loaded += load_one(set, cert, access(key, F_OK) == 0 ? key : NULL, now, hooks);
		/* Served from the file or from its last-good copy: its response goes with it. */
		if (set->n_pairs > before && access(ocsp, F_OK) == 0 &&
		    tls_certs_add_ocsp(set, ocsp, now, why, sizeof(why)) < 0 &&
		    hooks->report != NULL)
			hooks->report(ocsp, why, false, hooks->arg);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return loaded;
}

int tls_certs_find(const struct tls_certs *set, const char *name, size_t len,
		   const struct tls_cert *out[2])
{
	char norm[TLS_NAME_MAX + 1];
	bool wildcard;
	size_t n = dns_name_normalize(name, len, norm, CERT_NAME_FLAGS, &wildcard);
	const struct name_entry *e = NULL;
	const char *dot;
	int found = 0;

	out[0] = out[1] = NULL;
	if (n == 0)
		return 0;
	e = table_probe(&set->exact, set->seed, norm, n);
	if ((e == NULL || e->name == NULL) && (dot = memchr(norm, '.', n)) != NULL) {
		/* A wildcard covers exactly the first label. */
		size_t rest = n - (size_t)(dot + 1 - norm);

		e = table_probe(&set->wildcard, set->seed, dot + 1, rest);
	}
	if (e == NULL || e->name == NULL)
		return 0;
	for (int slot = 0; slot < SLOT_COUNT; slot++) {
		out[slot] = e->pair[slot];
		found += e->pair[slot] != NULL;
	}
	return found;
}

/* The pair cache's parser: the leaf, and the key through the set's decoder for its type. */
static int parse_pair(const void *owner, struct parsed_pair *out, void *arg)
{
	static const char *const key_types[SLOT_COUNT] = { [SLOT_ECDSA] = "EC",
							   [SLOT_RSA] = "RSA" };
	struct tls_certs *set = arg;
	const struct tls_cert *c = owner;
	OSSL_DECODER_CTX **dc = &set->der_decoder[c->slot];
	const unsigned char *p = c->leaf_der;
	size_t left = (size_t)c->key_len;

	if (*dc == NULL &&
	    (*dc = OSSL_DECODER_CTX_new_for_pkey(&set->der_decoded, "DER", NULL, key_types[c->slot],
						 OSSL_KEYMGMT_SELECT_KEYPAIR, NULL, NULL)) == NULL)
		return -1;
	out->leaf = d2i_X509(NULL, &p, c->leaf_len);
	if (out->leaf == NULL)
		return -1;
	p = c->key_der;
	set->der_decoded = NULL;
	if (!OSSL_DECODER_from_data(*dc, &p, &left) || set->der_decoded == NULL) {
		EVP_PKEY_free(set->der_decoded);
		set->der_decoded = NULL;
		X509_free(out->leaf);
		out->leaf = NULL;
		return -1;
	}
	out->key = set->der_decoded;
	set->der_decoded = NULL;
	return 0;
}

int tls_cert_use(struct tls_certs *set, struct ssl_st *ssl, const struct tls_cert *cert)
{
	/* The set owns its pairs: the mutable one, for its hint word. */
	struct tls_cert *mine = set->pairs[cert->index];
	const struct parsed_pair *p;

	if (set->parsed == NULL && (set->parsed = pair_cache_new(PAIR_CACHE_DEFAULT)) == NULL)
		return -1;
	p = pair_cache_get(set->parsed, mine, &mine->cache_hint, parse_pair, set);
	if (p == NULL)
		return -1;
	return SSL_use_cert_and_key(ssl, p->leaf, p->key, cert->chain, 1) == 1 ? 0 : -1;
}

const char *tls_cert_path(const struct tls_cert *cert)
{
	return cert->path;
}

time_t tls_cert_not_after(const struct tls_cert *cert)
{
	return cert->not_after;
}

struct tls_ocsp *tls_cert_ocsp(const struct tls_cert *cert)
{
	return cert->ocsp;
}

void tls_certs_expiring(const struct tls_certs *set, time_t deadline,
			void (*fn)(const struct tls_cert *cert, void *arg), void *arg)
{
	for (size_t i = 0; i < set->n_pairs; i++) {
		if (set->pairs[i]->not_after < deadline)
			fn(set->pairs[i], arg);
	}
}
