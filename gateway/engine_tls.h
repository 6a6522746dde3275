/*
 * engine_tls.h - the gateway's TLS contexts: what a listener offers
 * (certificate, versions, ALPN, ticket keys) and how it talks to a backend
 * (CA, name verification, resumption). Built in each engine from the
 * configuration; a connection is handed to libevent as an OpenSSL SSL.
 */
#ifndef MG_ENGINE_TLS_H
#define MG_ENGINE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"
#include "tls.h"

struct mg_tls_server;	/* what a listener offers */
struct mg_tls_client;	/* how we talk to one backend */

struct tls_certs;

struct tls_pem;

/*
 * What listener offers: its default pair (listener's certificate and key,
 * as read into pair: the files, or their last-good copy), its TLS profile
 * (versions, ciphers, groups), ALPN for its protocol.
 */
struct mg_tls_server *tls_server_new(const struct mg_tls_config *cfg,
				     const struct mg_listener_config *listener,
				     const struct tls_pem *pair, char *err, size_t errlen);

/*
 * Certificates by name (engine_certs.h) for the clients' SNI, or NULL for
 * none. The set stays the caller's and must outlive the server; one engine
 * is one thread, so servers of that engine may share one set.
 */
void tls_server_set_names(struct mg_tls_server *server, struct tls_certs *names);

/*
 * Staple the OCSP response in path (engine_ocsp.h) for the default pair.
 * Returns 0, or -1 with err naming the file; the pair is then served
 * without one.
 */
int tls_server_set_ocsp(struct mg_tls_server *server, const char *path, time_t now, char *err,
			size_t errlen);

/* When the default pair's leaf expires (0 if unknown). */
time_t tls_server_not_after(const struct mg_tls_server *server);

/*
 * Session ticket keys shared by every engine and every gateway generation,
 * so a client resumes whichever engine accepts it (ticket_keys.h). The set
 * stays the caller's and must outlive the server; the engine changes it in
 * place when the master rotates the keys, and every server of the engine
 * uses the new set from the next handshake on. NULL: no tickets.
 */
struct ticket_keys;
void tls_server_set_ticket_keys(struct mg_tls_server *server, const struct ticket_keys *keys);
void tls_server_free(struct mg_tls_server *server);

struct mg_tls_client *tls_client_new(const struct mg_backend_config *backend, char *err,
				     size_t errlen);
void tls_client_free(struct mg_tls_client *client);

/*
 * ---- For the TLS engines (libevent's OpenSSL bufferevents) -----------------
 *
 * The engine drives the handshake and the records through libevent; these
 * hand it ready-made connection objects with the policy above applied (ALPN
 * on the server side, the name to verify and SNI on the client side), and
 * turn a failure into one line for the log. struct ssl_st is OpenSSL's SSL.
 */
struct ssl_st;

struct ssl_st *tls_server_ssl(struct mg_tls_server *server, char *err, size_t errlen);
struct ssl_st *tls_client_ssl(struct mg_tls_client *client, char *err, size_t errlen);
void tls_ssl_free(struct ssl_st *ssl);
/* Where TLS records are built: "kernel" (kTLS) or why in user space. */
const char *tls_kernel_offload(void);
const char *tls_ssl_version(const struct ssl_st *ssl);
/* Did the handshake resume an earlier session? */
bool tls_ssl_resumed(const struct ssl_st *ssl);
const char *tls_ssl_cipher(const struct ssl_st *ssl);
/*
 * The name the client asked for in SNI, checked and lower-cased, into out
 * (DNS_NAME_MAX + 1 bytes). A client that sent none, or something that is
 * not a host name (too long, a byte outside letters, digits, '-' and dots),
 * gets "": its bytes go no further than this. Returns the length.
 */
size_t tls_ssl_server_name(const struct ssl_st *ssl, char *out);
/*
 * Why a handshake or record on ssl failed: the certificate verification
 * result on a verifying client, else OpenSSL's error (first_error, from the
 * bufferevent's error queue, 0 for none), else "connection closed".
 */
void tls_ssl_failure(const struct ssl_st *ssl, bool client, unsigned long first_error, char *err,
		     size_t errlen);

#endif
