/*
 * engine_certs.h - certificates by name: the pairs a listener serves, indexed by
 * the DNS names they are for, so the client's SNI picks one.
 *
 * A set is filled once (from files, or every NAME.pem of a directory), then
 * only read: an engine builds a new set on reload or when a watched file
 * changes, and swaps it in whole, so a handshake never sees a half-loaded
 * set. Lookups are hash probes: a name no certificate carries costs a probe
 * or two and no memory, however many random names clients send.
 *
 * Which name a pair serves: every DNS name of its subjectAltName, or the
 * subject's CN when it has no DNS name at all (RFC 6125). "*.example.org"
 * matches exactly one label ("a.example.org", not "example.org" nor
 * "a.b.example.org"); an exact name wins over a wildcard. Names compare
 * case-insensitively, a trailing dot ignored. For each name the set keeps
 * one ECDSA and one RSA pair (of two pairs of one type for one name, the one
 * that expires later: the renewed one), and hands both to OpenSSL, which
 * picks by the client's signature algorithms.
 */
#ifndef MG_ENGINE_CERTS_H
#define MG_ENGINE_CERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "dnsname.h"

struct tls_certs;	/* a set of certificate pairs indexed by name */
struct tls_cert;	/* one pair: leaf, key, chain */
struct ssl_st;

/* Longest DNS name accepted (RFC 1035: 253 characters without the final dot). */
#define TLS_NAME_MAX DNS_NAME_MAX

/*
 * Something a load skipped: the file's path and why, for the log or for -t.
 * pair_skipped: a pair that did not load; otherwise the pair loaded, but
 * not its OCSP response (a warning only: the pair is served unstapled).
 */
typedef void tls_certs_report_fn(const char *path, const char *why, bool pair_skipped,
				 void *arg);

/*
 * A pair's files read into memory: what a load parses, and what a last-good
 * copy (engine_lastgood.h) keeps. The paths label messages; key NULL: the
 * key is inside cert. tls_pem_wipe() zeroes and frees the buffers.
 */
struct tls_pem {
	const char *cert_path;
	const char *key_path;
	char *cert;
	size_t cert_len;
	char *key;
	size_t key_len;
};

/*
 * Read cert_path (and key_path unless NULL) whole. Returns 0, or -1 with err
 * naming the file and errno from the failing call (ENOENT: it is not there).
 */
int tls_pem_read(struct tls_pem *pem, const char *cert_path, const char *key_path, char *err,
		 size_t errlen);
void tls_pem_wipe(struct tls_pem *pem);

/* OpenSSL's passphrase callback that refuses: keys on disk are never encrypted here. */
int tls_no_passphrase(char *buf, int size, int rwflag, void *arg);

struct tls_certs *tls_certs_new(void);
void tls_certs_free(struct tls_certs *set);

/*
 * Load one pair: the chain in cert_path (PEM, leaf first), the key in
 * key_path, or in cert_path when key_path is NULL. Refused: a file that does
 * not parse, a key that does not match the leaf, an expired leaf, a leaf
 * that names no DNS name (no SAN DNS entry and no CN), a key neither ECDSA
 * nor RSA. Returns 0, or -1 with err (which names the file) and the set
 * unchanged. now: the time expiry is judged against.
 */
int tls_certs_add(struct tls_certs *set, const char *cert_path, const char *key_path, time_t now,
		  char *err, size_t errlen);

/* The same from a pair already in memory; *added (unless NULL) is the new pair. */
int tls_certs_add_pem(struct tls_certs *set, const struct tls_pem *pem, time_t now,
		      const struct tls_cert **added, char *err, size_t errlen);

/*
 * What a directory load does besides loading (all may be NULL). loaded: a
 * pair loaded, here are its bytes (to keep a last-good copy). broken: a
 * NAME.pem that is there but does not load; return 0 when the hook put a
 * replacement in the set (then nothing is reported), -1 to report it. A
 * NAME.pem that vanishes between the listing and the read is gone, not
 * broken: it is neither reported nor handed to broken. NAME.ocsp is read
 * for the pair either way, loaded or put in by broken (a last-good copy):
 * it is checked against the leaf served, so a response for the renewed
 * certificate is not stapled to the old one.
 */
struct tls_certs_hooks {
	void (*loaded)(const struct tls_pem *pem, void *arg);
	int (*broken)(struct tls_certs *set, const struct tls_pem *pem, const char *why, void *arg);
	tls_certs_report_fn *report;
	void *arg;
};

int tls_certs_load_dir_hooked(struct tls_certs *set, const char *dir, time_t now,
			      const struct tls_certs_hooks *hooks, char *err, size_t errlen);

/*
 * Staple the OCSP response in ocsp_path (DER, engine_ocsp.h) to the pair
 * the set holds last: the one the last successful tls_certs_add() or
 * tls_certs_add_pem() put there. Returns 0, or -1 with err (naming the
 * file) and the pair left without one.
 */
int tls_certs_add_ocsp(struct tls_certs *set, const char *ocsp_path, time_t now, char *err,
		       size_t errlen);

/*
 * Load every NAME.pem in dir, with NAME.key beside it or the key inside the
 * .pem, and NAME.ocsp when there is one. Other files, and names starting
 * with a dot, are ignored (editors' and certbot's leftovers). A pair that
 * does not load is reported and skipped; a response that does not is
 * reported and the pair served without. Returns how many pairs loaded, or
 * -1 with err when dir cannot be read.
 */
int tls_certs_load_dir(struct tls_certs *set, const char *dir, time_t now,
		       tls_certs_report_fn *report, void *arg, char *err, size_t errlen);

size_t tls_certs_count(const struct tls_certs *set);	/* pairs loaded */
size_t tls_certs_names(const struct tls_certs *set);	/* names indexed (wildcards too) */

/*
 * The pairs for name[0..len) (as a client sent it in SNI): out[0] ECDSA,
 * out[1] RSA, either NULL. Returns how many were found (0..2). A name that
 * is not a valid DNS name finds nothing.
 */
int tls_certs_find(const struct tls_certs *set, const char *name, size_t len,
		   const struct tls_cert *out[2]);

/*
 * Put a pair found on a connection (before the server's certificate is
 * chosen: in the servername callback). The set keeps the parsed leaves of
 * the pairs last used, so it is not const here: one set per engine thread.
 */
int tls_cert_use(struct tls_certs *set, struct ssl_st *ssl, const struct tls_cert *cert);

/* The pair's file, and when its leaf expires. */
const char *tls_cert_path(const struct tls_cert *cert);
time_t tls_cert_not_after(const struct tls_cert *cert);

/* The pair's OCSP response (engine_ocsp.h), or NULL. */
struct tls_ocsp *tls_cert_ocsp(const struct tls_cert *cert);

/*
 * Call fn for every pair whose leaf expires before deadline (the warning
 * before renewal is due), in load order.
 */
void tls_certs_expiring(const struct tls_certs *set, time_t deadline,
			void (*fn)(const struct tls_cert *cert, void *arg), void *arg);

#endif
