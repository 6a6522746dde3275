/*
 * engine_tls.c - the gateway's TLS policy: server contexts for listeners
 * (versions, ciphers and groups from the listener's TLS profile, see
 * engine_tls_profile.c; no renegotiation, no compression, strict ALPN: the
 * ALPACA defence, shared session ticket keys), client contexts for backends
 * (certificate and name verification, session resumption, the backend's
 * profile if it names one), and the connection objects the engines hand to
 * libevent.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "dnsname.h"
#include "engine_certs.h"
#include "engine_ocsp.h"
#include "engine_tls.h"
#include "engine_tls_profile.h"
#include "ticket_keys.h"
#include "tls_openssl.h"

struct mg_tls_server {
	SSL_CTX *ctx;
	const char *alpn;	/* "imap" or "pop3" */
	struct tls_certs *names;	/* certificates by SNI name, not ours; or NULL */
	const struct ticket_keys *tickets;	/* the engine's, not ours; or NULL */
	bool sni_strict;
	struct tls_ocsp *ocsp;		/* the default pair's stapled response, or NULL */
};

struct mg_tls_client {
	SSL_CTX *ctx;
	char *verify_name;	/* NULL when verification is off */
	SSL_SESSION *resume;	/* a copy of the newest session the backend gave us */
};

/* Where the new-session callback finds its client (an engine is one thread). */
static int client_index = -1;
/* Where the ticket key callback finds its server. */
static int server_index = -1;

/*
 * Keep the backend's newest session (a TLS 1.3 ticket) so that the next
 * login's backend handshake resumes instead of checking the certificate
 * chain again: the backend leg of every login is a new connection. A copy:
 * OpenSSL marks the connection's own session unusable when the connection
 * is freed without a close_notify, which is how relays end.
 */
static int remember_session(SSL *ssl, SSL_SESSION *session)
{
	struct mg_tls_client *client = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), client_index);
	SSL_SESSION *copy = client != NULL ? SSL_SESSION_dup(session) : NULL;

	if (copy != NULL) {
		SSL_SESSION_free(client->resume);
		client->resume = copy;
	}
	return 0;	/* OpenSSL keeps its own reference */
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	const struct mg_tls_server *server = arg;
	size_t want = strlen(server->alpn);
	unsigned int pos = 0;

	/* in is a list of length-prefixed protocol ids; walk it with bounds checked. */
	while (pos < inlen) {
		unsigned int idlen = in[pos];

		if (idlen == 0 || pos + 1 + idlen > inlen)
			break;
		if (idlen == want && memcmp(in + pos + 1, server->alpn, want) == 0) {
			*out = in + pos + 1;
			*outlen = (unsigned char)idlen;
			return SSL_TLSEXT_ERR_OK;
		}
		pos += 1 + idlen;
	}
	/* A client that names another protocol is talking to the wrong service. */
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/*
 * The servername callback: runs on the client hello, before OpenSSL picks
 * the certificate and signature algorithm, so the pairs put on the
 * connection here are the ones it chooses from (ECDSA or RSA, by the
 * client's signature algorithms). A name is looked up in the set's hash
 * tables; one that finds nothing leaves the default pair in place, or
 * with sni_strict ends the handshake, unless the default pair itself is
 * for that name. Nothing here keeps anything of the name.
 */
static int choose_certificate(SSL *ssl, int *alert, void *arg)
{
	const struct mg_tls_server *server = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	const struct tls_cert *found[2] = { NULL, NULL };

	if (name == NULL)
		return SSL_TLSEXT_ERR_OK;	/* no SNI: the default pair */
	if (server->names != NULL &&
	    tls_certs_find(server->names, name, strlen(name), found) > 0) {
		/* Only the name's pairs: a default RSA one must not answer an RSA-only client. */
		SSL_certs_clear(ssl);
		for (int i = 0; i < 2; i++) {
			if (found[i] != NULL && tls_cert_use(server->names, ssl, found[i]) < 0) {
				ERR_clear_error();
				*alert = SSL_AD_INTERNAL_ERROR;
				return SSL_TLSEXT_ERR_ALERT_FATAL;
			}
		}
		return SSL_TLSEXT_ERR_OK;
	}
	if (server->sni_strict &&
	    X509_check_host(SSL_CTX_get0_certificate(server->ctx), name, strlen(name),
			    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) != 1) {
		ERR_clear_error();
		*alert = SSL_AD_UNRECOGNIZED_NAME;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	return SSL_TLSEXT_ERR_OK;
}

/*
 * The default pair from memory (the files, or their last-good copy): the
 * chain as SSL_CTX_use_certificate_chain_file() reads it (leaf first, every
 * further certificate an intermediate, other blocks skipped), the key as
 * SSL_CTX_use_PrivateKey_file() does.
 */
static int use_pair(SSL_CTX *ctx, const struct tls_pem *pair, char *err, size_t errlen)
{
	const char *key_path = pair->key != NULL ? pair->key_path : pair->cert_path;
	BIO *bio;
	X509 *x;
	EVP_PKEY *key = NULL;
	int ok;

	ERR_clear_error();
	bio = BIO_new_mem_buf(pair->cert, (int)pair->cert_len);
	x = bio != NULL ? PEM_read_bio_X509_AUX(bio, NULL, tls_no_passphrase, NULL) : NULL;
	ok = x != NULL && SSL_CTX_use_certificate(ctx, x) == 1 && SSL_CTX_clear_chain_certs(ctx);

	X509_free(x);
	while (ok && (x = PEM_read_bio_X509(bio, NULL, tls_no_passphrase, NULL)) != NULL) {
		ok = SSL_CTX_add0_chain_cert(ctx, x) == 1;
		if (!ok)
			X509_free(x);
	}
	/* The end of the buffer, not a broken block, is what ends the chain. */
	if (ok && ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE)
		ERR_clear_error();
	BIO_free(bio);
	if (!ok || ERR_peek_error() != 0) {
		tls_openssl_error(err, errlen, pair->cert_path);
		return -1;
	}
	bio = pair->key != NULL ? BIO_new_mem_buf(pair->key, (int)pair->key_len)
				: BIO_new_mem_buf(pair->cert, (int)pair->cert_len);
	key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, tls_no_passphrase, NULL) : NULL;
	BIO_free(bio);
	ok = key != NULL && SSL_CTX_use_PrivateKey(ctx, key) == 1;
	EVP_PKEY_free(key);
	if (!ok) {
		tls_openssl_error(err, errlen, key_path);
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_openssl_error(err, errlen, "tls key does not match the certificate");
		return -1;
	}
	return 0;
}

/*
 * The session ticket key callback (RFC 5077 tickets, also TLS 1.3's):
 * encrypt with the set's first key, AES-CBC and HMAC-SHA256 as nginx does
 * with the same key files; decrypt with whichever key the ticket names.
 * A ticket under any key but the first is renewed, so a client moves to
 * the current key while its old one is still accepted. Without keys (no
 * set yet) no ticket is issued and none is accepted: a full handshake.
 */
static int ticket_key_cb(SSL *ssl, unsigned char name[TICKET_KEY_NAME_LEN],
			 unsigned char iv[EVP_MAX_IV_LENGTH], EVP_CIPHER_CTX *cipher,
			 EVP_MAC_CTX *mac, int encrypt)
{
	const struct mg_tls_server *server = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), server_index);
	const struct ticket_keys *set = server != NULL ? server->tickets : NULL;
	struct ticket_key_parts key;
	OSSL_PARAM params[2];
	const EVP_CIPHER *aes;
	int found = 0;

	if (set == NULL || set->n == 0)
		return 0;
	if (!encrypt && (found = ticket_keys_find(set, name)) < 0)
		return 0;
	ticket_key_parts(&set->key[found], &key);
	aes = key.aes_len == 16 ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (encrypt) {
		memcpy(name, key.name, TICKET_KEY_NAME_LEN);
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(aes)) != 1 ||
		    EVP_EncryptInit_ex(cipher, aes, NULL, key.aes, iv) != 1)
			return -1;
	} else if (EVP_DecryptInit_ex(cipher, aes, NULL, key.aes, iv) != 1) {
		return -1;
	}
	if (EVP_MAC_init(mac, key.hmac, key.hmac_len, params) != 1)
		return -1;
	return encrypt || found == 0 ? 1 : 2;
}

/*
 * The status callback: a client asked for the certificate's status
 * (status_request). OpenSSL has chosen the certificate by now; the pair it
 * came from is found again by the name (a hash probe) and the leaf's key
 * type, since a name may have an ECDSA and an RSA pair. No response, or
 * an expired one, is no staple: the handshake goes on without.
 */
static int staple_ocsp(SSL *ssl, void *arg)
{
	struct mg_tls_server *server = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	const struct tls_cert *found[2] = { NULL, NULL };
	struct tls_ocsp *ocsp = server->ocsp;

	if (name != NULL && server->names != NULL &&
	    tls_certs_find(server->names, name, strlen(name), found) > 0) {
		X509 *leaf = SSL_get_certificate(ssl);
		int slot = leaf != NULL && EVP_PKEY_get_base_id(X509_get0_pubkey(leaf)) == EVP_PKEY_RSA;

		ocsp = found[slot] != NULL ? tls_cert_ocsp(found[slot]) : NULL;
	}
	if (ocsp == NULL || tls_ocsp_staple(ocsp, ssl, time(NULL)) != 1)
		return SSL_TLSEXT_ERR_NOACK;
	return SSL_TLSEXT_ERR_OK;
}

struct mg_tls_server *tls_server_new(const struct mg_tls_config *cfg,
				     const struct mg_listener_config *listener,
				     const struct tls_pem *pair, char *err, size_t errlen)
{
	struct mg_tls_server *server = calloc(1, sizeof(*server));
	static const unsigned char session_context[] = "mailgate";

	if (server == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	server->alpn = listener->protocol == MG_PROTO_POP3 ? "pop3" : "imap";
	server->sni_strict = cfg->sni_strict;
	server->ctx = SSL_CTX_new(TLS_server_method());
	if (server->ctx == NULL) {
		tls_openssl_error(err, errlen, "cannot create TLS context");
		goto fail;
	}
	tls_common_options(server->ctx);
	SSL_CTX_set_options(server->ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (tls_profile_apply(server->ctx, listener->tls_profile, NULL, err, errlen) < 0)
		goto fail;

	if (use_pair(server->ctx, pair, err, errlen) < 0)
		goto fail;

	/*
	 * Several engines serve one listener, so a server-side session cache
	 * would miss half the time; stateless tickets resume across engines
	 * once they share the ticket keys (tls_server_set_ticket_keys()).
	 */
	SSL_CTX_set_session_cache_mode(server->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_session_id_context(server->ctx, session_context, sizeof(session_context) - 1);
	if (server_index < 0)
		server_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (server_index < 0 || SSL_CTX_set_ex_data(server->ctx, server_index, server) != 1 ||
	    SSL_CTX_set_tlsext_ticket_key_evp_cb(server->ctx, ticket_key_cb) != 1) {
		tls_openssl_error(err, errlen, "cannot set the session ticket callback");
		goto fail;
	}
	/*
	 * One ticket per handshake, not OpenSSL's two: mail clients open one
	 * connection at a time to a server (IMAP IDLE and a second for
	 * fetching at most), and every ticket costs an encryption and a
	 * record on every handshake.
	 */
	SSL_CTX_set_num_tickets(server->ctx, 1);
	SSL_CTX_set_alpn_select_cb(server->ctx, alpn_select, server);
	SSL_CTX_set_tlsext_servername_callback(server->ctx, choose_certificate);
	SSL_CTX_set_tlsext_servername_arg(server->ctx, server);
	SSL_CTX_set_tlsext_status_cb(server->ctx, staple_ocsp);
	SSL_CTX_set_tlsext_status_arg(server->ctx, server);
	return server;
fail:
	tls_server_free(server);
	return NULL;
}

void tls_server_set_names(struct mg_tls_server *server, struct tls_certs *names)
{
	server->names = names;
}

int tls_server_set_ocsp(struct mg_tls_server *server, const char *path, time_t now, char *err,
			size_t errlen)
{
	STACK_OF(X509) *chain = NULL;
	struct tls_ocsp *ocsp;

	SSL_CTX_get0_chain_certs(server->ctx, &chain);
	ocsp = tls_ocsp_load(path, SSL_CTX_get0_certificate(server->ctx), chain, now, err, errlen);
	if (ocsp == NULL)
		return -1;
	tls_ocsp_free(server->ocsp);
	server->ocsp = ocsp;
	return 0;
}

time_t tls_server_not_after(const struct mg_tls_server *server)
{
	X509 *leaf = SSL_CTX_get0_certificate(server->ctx);
	int days = 0, secs = 0;

	/* Relative to now, which is what a warning before expiry wants anyway. */
	if (leaf == NULL || !ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(leaf))) {
		ERR_clear_error();
		return 0;
	}
	return time(NULL) + (time_t)days * 24 * 60 * 60 + secs;
}

void tls_server_free(struct mg_tls_server *server)
{
	if (server == NULL)
		return;
	SSL_CTX_free(server->ctx);
	tls_ocsp_free(server->ocsp);
	free(server);
}

struct mg_tls_client *tls_client_new(const struct mg_backend_config *backend, char *err,
				     size_t errlen)
{
	struct mg_tls_client *client = calloc(1, sizeof(*client));

	if (client == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	client->ctx = SSL_CTX_new(TLS_client_method());
	if (client->ctx == NULL) {
		tls_openssl_error(err, errlen, "cannot create TLS context");
		goto fail;
	}
	tls_common_options(client->ctx);
	if (client_index < 0)
		client_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	SSL_CTX_set_ex_data(client->ctx, client_index, client);
	SSL_CTX_set_session_cache_mode(client->ctx, SSL_SESS_CACHE_CLIENT |
						    SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(client->ctx, remember_session);
	if (backend->tls_profile != NULL) {
		if (tls_profile_apply(client->ctx, backend->tls_profile, NULL, err, errlen) < 0)
			goto fail;
	} else {
		SSL_CTX_set_min_proto_version(client->ctx, TLS1_2_VERSION);
	}
	if (backend->verify) {
		const char *name = backend->verify_name != NULL ? backend->verify_name : backend->host;

		if (backend->ca_file != NULL) {
			if (SSL_CTX_load_verify_locations(client->ctx, backend->ca_file, NULL) != 1) {
				tls_openssl_error(err, errlen, backend->ca_file);
				goto fail;
			}
		} else if (SSL_CTX_set_default_verify_paths(client->ctx) != 1) {
			tls_openssl_error(err, errlen, "cannot load the system CA store");
			goto fail;
		}
		SSL_CTX_set_verify(client->ctx, SSL_VERIFY_PEER, NULL);
		client->verify_name = strdup(name);
		if (client->verify_name == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	} else {
		SSL_CTX_set_verify(client->ctx, SSL_VERIFY_NONE, NULL);
	}
	return client;
fail:
	tls_client_free(client);
	return NULL;
}

void tls_client_free(struct mg_tls_client *client)
{
	if (client == NULL)
		return;
	SSL_SESSION_free(client->resume);
	SSL_CTX_free(client->ctx);
	free(client->verify_name);
	free(client);
}

struct ssl_st *tls_server_ssl(struct mg_tls_server *server, char *err, size_t errlen)
{
	SSL *ssl = SSL_new(server->ctx);

	if (ssl == NULL)
		tls_openssl_error(err, errlen, "cannot create TLS connection");
	return ssl;
}

struct ssl_st *tls_client_ssl(struct mg_tls_client *client, char *err, size_t errlen)
{
	SSL *ssl = SSL_new(client->ctx);

	if (ssl == NULL) {
		tls_openssl_error(err, errlen, "cannot create TLS connection");
		return NULL;
	}
	/* A session the backend no longer takes costs nothing: a full handshake follows. */
	if (client->resume != NULL && SSL_SESSION_is_resumable(client->resume))
		SSL_set_session(ssl, client->resume);
	if (client->verify_name != NULL) {
		/* SNI only for names: RFC 6066 forbids literal addresses there. */
		ASN1_OCTET_STRING *ip = a2i_IPADDRESS(client->verify_name);

		if (ip == NULL)
			SSL_set_tlsext_host_name(ssl, client->verify_name);
		ASN1_OCTET_STRING_free(ip);
		ERR_clear_error();
		if (SSL_set1_host(ssl, client->verify_name) != 1) {
			tls_openssl_error(err, errlen, "cannot set the name to verify");
			SSL_free(ssl);
			return NULL;
		}
	}
	return ssl;
}

void tls_ssl_free(struct ssl_st *ssl)
{
	SSL_free(ssl);
}

bool tls_ssl_resumed(const struct ssl_st *ssl)
{
	return SSL_session_reused((SSL *)ssl) == 1;
}

const char *tls_ssl_version(const struct ssl_st *ssl)
{
	return SSL_get_version(ssl);
}

const char *tls_ssl_cipher(const struct ssl_st *ssl)
{
	return SSL_get_cipher_name(ssl);
}

size_t tls_ssl_server_name(const struct ssl_st *ssl, char *out)
{
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	bool wildcard;

	out[0] = '\0';
	if (name == NULL)
		return 0;
	/* strnlen: one past the longest name is enough to refuse it. */
	return dns_name_normalize(name, strnlen(name, DNS_NAME_MAX + 2), out, 0, &wildcard);
}

void tls_ssl_failure(const struct ssl_st *ssl, bool client, unsigned long first_error, char *err,
		     size_t errlen)
{
	long verify = client && ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
	char reason[256];

	if (verify != X509_V_OK) {
		snprintf(err, errlen, "TLS handshake: certificate verification failed: %s",
			 X509_verify_cert_error_string(verify));
	} else if (first_error != 0) {
		ERR_error_string_n(first_error, reason, sizeof(reason));
		snprintf(err, errlen, "TLS handshake: %s", reason);
	} else {
		snprintf(err, errlen, "TLS handshake: connection closed");
	}
	ERR_clear_error();
}

void tls_server_set_ticket_keys(struct mg_tls_server *server, const struct ticket_keys *keys)
{
	server->tickets = keys;
}

/* Is word one of the space-separated words of list? */
static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)) != NULL; p += n) {
		bool starts = p == list || p[-1] == ' ';
		bool ends = p[n] == '\0' || p[n] == ' ' || p[n] == '\n';

		if (starts && ends)
			return true;
	}
	return false;
}

const char *tls_kernel_offload(void)
{
#if defined(SSL_OP_ENABLE_KTLS) && !defined(OPENSSL_NO_KTLS)
	char ulp[256] = "";
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");

	if (f != NULL) {
		if (fgets(ulp, sizeof(ulp), f) == NULL)
			ulp[0] = '\0';
		fclose(f);
	}
	return has_word(ulp, "tls") ? "kernel" : "user space (this kernel offers no TLS)";
#else
	return "user space (OpenSSL was built without kernel TLS)";
#endif
}
