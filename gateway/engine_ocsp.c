/*
 * engine_ocsp.c - OCSP responses stapled to the certificates they are for
 * (see engine_ocsp.h).
 *
 * Only what a handshake needs is kept: the DER as read (OpenSSL takes a
 * copy of it for each connection), when it stops being valid, and the
 * path for the one warning when it does.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "engine_ocsp.h"
#include "log.h"

/* How far a response's thisUpdate may be ahead of our clock (as openssl ocsp). */
#define CLOCK_SKEW (5 * 60)

struct tls_ocsp {
	unsigned char *der;
	size_t len;
	time_t next_update;
	bool warned;		/* its expiry has been logged */
	char *path;
};

/* The file's bytes, or NULL with err. */
static unsigned char *read_der(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rbe");
	unsigned char *buf;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(OCSP_FILE_MAX + 1);
	if (buf == NULL) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	*len = fread(buf, 1, OCSP_FILE_MAX + 1, f);
	if (ferror(f) || *len == 0 || *len > OCSP_FILE_MAX) {
		snprintf(err, errlen, "%s: %s", path,
			 ferror(f) ? strerror(errno) : *len == 0 ? "empty" : "larger than 64 kB");
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	return buf;
}

static time_t asn1_to_time(const ASN1_GENERALIZEDTIME *t)
{
	struct tm tm;

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return 0;
	return timegm(&tm);
}

/* The certificate of chain that issued leaf, or NULL. */
static X509 *find_issuer(X509 *leaf, STACK_OF(X509) *chain)
{
	for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		X509 *candidate = sk_X509_value(chain, i);

		if (X509_check_issued(candidate, leaf) == X509_V_OK)
			return candidate;
	}
	return NULL;
}

/*
 * The single response of bs that is about leaf, or NULL. Each is compared
 * with the leaf's own CertID made with that response's hash (SHA-1 usually,
 * SHA-256 from some responders).
 */
static OCSP_SINGLERESP *response_for(OCSP_BASICRESP *bs, X509 *leaf, X509 *issuer)
{
	for (int i = 0; i < OCSP_resp_count(bs); i++) {
		OCSP_SINGLERESP *single = OCSP_resp_get0(bs, i);
		OCSP_CERTID *id = (OCSP_CERTID *)OCSP_SINGLERESP_get0_id(single);
		ASN1_OBJECT *hash = NULL;
		const EVP_MD *md;
		OCSP_CERTID *ours;
		bool same;

		if (!OCSP_id_get0_info(NULL, &hash, NULL, NULL, id) ||
		    (md = EVP_get_digestbyobj(hash)) == NULL)
			continue;
		ours = OCSP_cert_to_id(md, leaf, issuer);
		same = ours != NULL && OCSP_id_cmp(ours, id) == 0;
		OCSP_CERTID_free(ours);
		if (same)
			return single;
	}
	return NULL;
}

/* Why the response der[0..len) cannot be stapled for leaf, or NULL when it can. */
static const char *check(const unsigned char *der, size_t len, X509 *leaf, STACK_OF(X509) *chain,
			 time_t now, time_t *next_update)
{
	const unsigned char *p = der;
	OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	OCSP_BASICRESP *bs = NULL;
	OCSP_SINGLERESP *single;
	ASN1_GENERALIZEDTIME *this_update = NULL, *next = NULL;
	const char *why = NULL;
	X509 *issuer;
	int status, reason;

	if (resp == NULL || p != der + len)
		why = "not a DER OCSP response";
	else if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL)
		why = "the responder did not answer successfully";
	else if ((bs = OCSP_response_get1_basic(resp)) == NULL)
		why = "not a basic OCSP response";
	else if ((issuer = find_issuer(leaf, chain)) == NULL)
		why = "the certificate's issuer is not in its chain, so the response cannot be "
		      "matched to it";
	else if ((single = response_for(bs, leaf, issuer)) == NULL)
		why = "the response is for another certificate";
	else if ((status = OCSP_single_get0_status(single, &reason, NULL, &this_update, &next)) !=
		 V_OCSP_CERTSTATUS_GOOD)
		why = status == V_OCSP_CERTSTATUS_REVOKED ? "the certificate is revoked"
							  : "the responder does not know the certificate";
	else if (next == NULL)
		why = "the response has no nextUpdate: it would never expire";
	else if (asn1_to_time(this_update) > now + CLOCK_SKEW)
		why = "the response is not valid yet (thisUpdate is in the future)";
	else if ((*next_update = asn1_to_time(next)) <= now)
		why = "the response expired (nextUpdate has passed)";
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	ERR_clear_error();
	return why;
}

struct tls_ocsp *tls_ocsp_load(const char *path, struct x509_st *leaf,
			       struct stack_st_X509 *chain, time_t now, char *err, size_t errlen)
{
	struct tls_ocsp *ocsp;
	time_t next_update = 0;
	const char *why;
	size_t len = 0;
	unsigned char *der = read_der(path, &len, err, errlen);

	if (der == NULL)
		return NULL;
	why = check(der, len, leaf, chain, now, &next_update);
	if (why != NULL) {
		snprintf(err, errlen, "%s: %s", path, why);
		free(der);
		return NULL;
	}
	ocsp = calloc(1, sizeof(*ocsp));
	if (ocsp != NULL)
		ocsp->path = strdup(path);
	if (ocsp == NULL || ocsp->path == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		free(ocsp);
		free(der);
		return NULL;
	}
	ocsp->der = der;
	ocsp->len = len;
	ocsp->next_update = next_update;
	return ocsp;
}

void tls_ocsp_free(struct tls_ocsp *ocsp)
{
	if (ocsp == NULL)
		return;
	free(ocsp->der);
	free(ocsp->path);
	free(ocsp);
}

time_t tls_ocsp_next_update(const struct tls_ocsp *ocsp)
{
	return ocsp->next_update;
}

int tls_ocsp_staple(struct tls_ocsp *ocsp, struct ssl_st *ssl, time_t now)
{
	unsigned char *copy;

	if (now >= ocsp->next_update) {
		if (!ocsp->warned) {
			char p[512];

			ocsp->warned = true;
			log_sanitize(p, sizeof(p), ocsp->path, strlen(ocsp->path));
			log_warning("ocsp response expired path=%s: no longer stapled", p);
		}
		return 0;
	}
	/* OpenSSL frees what it is given with the connection. */
	copy = OPENSSL_memdup(ocsp->der, ocsp->len);
	if (copy == NULL)
		return 0;
	if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)ocsp->len) != 1) {
		OPENSSL_free(copy);
		ERR_clear_error();
		return 0;
	}
	return 1;
}
