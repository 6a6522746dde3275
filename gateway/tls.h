/*
 * tls.h - the only door to OpenSSL.
 *
 * Contexts are built once in the master (certificates and keys read before
 * any fork), so a child never re-reads key material and stateless session
 * tickets work across children. A connection is a struct mg_tls on a
 * non-blocking socket; reads and writes report what they wait for so the
 * caller can poll.
 */
#ifndef MG_TLS_H
#define MG_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

struct mg_tls_server;	/* what a listener offers: certificate, versions, ALPN */
struct mg_tls_client;	/* how we talk to one backend: CA, verification */
struct mg_tls;		/* one TLS connection */

/* Results of tls_read/tls_write besides a byte count. */
#define MG_TLS_EOF	   0
#define MG_TLS_ERROR	  (-1)
#define MG_TLS_WANT_READ  (-2)
#define MG_TLS_WANT_WRITE (-3)

struct mg_tls_server *tls_server_new(const struct mg_tls_config *cfg, enum mg_protocol protocol,
				     char *err, size_t errlen);
void tls_server_free(struct mg_tls_server *server);

struct mg_tls_client *tls_client_new(const struct mg_backend_config *backend, char *err,
				     size_t errlen);
void tls_client_free(struct mg_tls_client *client);

/* Handshakes on a non-blocking fd, within timeout_ms. Return 0 or -1 with err. */
int tls_accept(struct mg_tls_server *server, int fd, int timeout_ms, struct mg_tls **out,
	       char *err, size_t errlen);
int tls_connect(struct mg_tls_client *client, int fd, int timeout_ms, struct mg_tls **out,
		char *err, size_t errlen);

ssize_t tls_read(struct mg_tls *tls, void *buf, size_t len);
ssize_t tls_write(struct mg_tls *tls, const void *buf, size_t len);
/* Decrypted bytes OpenSSL holds that poll() cannot see. */
bool tls_pending(struct mg_tls *tls);

const char *tls_version(const struct mg_tls *tls);
const char *tls_cipher(const struct mg_tls *tls);

/* Send close_notify (best effort, never blocks) and free. */
void tls_close(struct mg_tls *tls);

#endif
