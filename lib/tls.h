/*
 * tls.h - TLS connections for both programs (lib/tls.c and, for the
 * gateway's contexts, gateway/engine_tls.h are the only doors to OpenSSL).
 *
 * A connection is a struct mg_tls on a non-blocking socket; reads and writes
 * report what they wait for so the caller can poll.
 */
#ifndef MG_TLS_H
#define MG_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct mg_tls;		/* one TLS connection */

/* Results of tls_read/tls_write besides a byte count. */
#define MG_TLS_EOF	   0
#define MG_TLS_ERROR	  (-1)
#define MG_TLS_WANT_READ  (-2)
#define MG_TLS_WANT_WRITE (-3)

ssize_t tls_read(struct mg_tls *tls, void *buf, size_t len);
ssize_t tls_write(struct mg_tls *tls, const void *buf, size_t len);

const char *tls_version(const struct mg_tls *tls);
const char *tls_cipher(const struct mg_tls *tls);

/* Send close_notify (best effort, never blocks) and free. */
void tls_close(struct mg_tls *tls);

/*
 * ---- Client-side probing, for the monitor (check_cleartext_login) ----------
 *
 * A probe context is a diagnostic client: it accepts old protocol versions
 * and any certificate so that it can *report* what a server offers instead
 * of refusing to talk. The chain is still verified (against ca_file, or the
 * system store when ca_file is NULL) and the result kept for
 * tls_peer_verify_result(); expiry is left to tls_peer_days_left(), so the
 * caller can apply its own thresholds. Never use it for the gateway's legs.
 */
struct mg_tls_probe;

/* The wire value of TLS 1.2, for comparing with tls_peer_version(). */
#define MG_TLS_VERSION_1_2 0x0303

struct mg_tls_probe *tls_probe_new(const char *ca_file, char *err, size_t errlen);
void tls_probe_free(struct mg_tls_probe *probe);

/*
 * Handshake as a client on a non-blocking fd within timeout_ms, sending sni
 * as the server name unless it is NULL or an IP literal. A certificate that
 * does not verify does not fail the handshake. Returns 0, or -1 with err.
 */
int tls_probe_connect(struct mg_tls_probe *probe, int fd, const char *sni, int timeout_ms,
		      struct mg_tls **out, char *err, size_t errlen);

/*
 * Whole days until the peer certificate's notAfter, rounded down (negative
 * once it has expired). Returns 0, or -1 when there is no certificate.
 */
int tls_peer_days_left(const struct mg_tls *tls, long *days);

/* 0 when the chain verified; -1 with the reason in buf otherwise. */
int tls_peer_verify_result(const struct mg_tls *tls, char *buf, size_t len);

/* Does the peer certificate name name (a DNS name or an IP literal)? */
bool tls_peer_name_matches(const struct mg_tls *tls, const char *name);

/* The negotiated protocol version as its wire value (0x0303 for TLS 1.2). */
int tls_peer_version(const struct mg_tls *tls);

#endif
