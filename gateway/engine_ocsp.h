/*
 * engine_ocsp.h - OCSP responses stapled to the certificates they are for.
 *
 * An operator (or certbot's, acme.sh's deploy hook) fetches the response
 * with `openssl ocsp ... -respout FILE` and puts it beside the certificate:
 * NAME.ocsp beside NAME.pem in a certificate_dir, or an ocsp_file option
 * next to a default pair. It is read whenever the certificate is, checked
 * then (a successful response, for this very leaf, saying "good", valid
 * now) and kept as DER; a client that asks (status_request) gets it while
 * its nextUpdate has not passed. The response's signature is the client's
 * to check, as with any staple.
 */
#ifndef MG_ENGINE_OCSP_H
#define MG_ENGINE_OCSP_H

#include <stddef.h>
#include <time.h>

struct tls_ocsp;	/* one response, ready to staple */
struct ssl_st;		/* OpenSSL's SSL */
struct x509_st;		/* OpenSSL's X509 */
struct stack_st_X509;	/* OpenSSL's STACK_OF(X509) */

/* A response is a few kB; anything this big is not one. */
#define OCSP_FILE_MAX (64 * 1024)

/*
 * Read the DER response in path for leaf, whose issuer must be in chain.
 * now: the time validity is judged against. Returns NULL with err (which
 * names the file) when it does not parse, is not "successful", is for
 * another certificate, does not say "good", has no nextUpdate, or is not
 * valid at now.
 */
struct tls_ocsp *tls_ocsp_load(const char *path, struct x509_st *leaf,
			       struct stack_st_X509 *chain, time_t now, char *err, size_t errlen);

void tls_ocsp_free(struct tls_ocsp *ocsp);

/* The response's nextUpdate, after which it is no longer stapled. */
time_t tls_ocsp_next_update(const struct tls_ocsp *ocsp);

/*
 * Staple ocsp on ssl (in the status callback) if it is still valid at now.
 * Returns 1 when stapled, 0 when not: expired (logged once per response,
 * not per handshake) or out of memory.
 */
int tls_ocsp_staple(struct tls_ocsp *ocsp, struct ssl_st *ssl, time_t now);

#endif
