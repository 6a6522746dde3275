/*
 * tls.c - OpenSSL for both programs: a TLS connection on a non-blocking
 * socket (reads, writes, close), the settings every context shares, and the
 * diagnostic client the monitor probes servers with. The gateway's own
 * contexts (listeners, backends, the engines' connections) are in
 * gateway/engine_tls.c; nothing else includes OpenSSL's headers but
 * libevent's glue in the engine.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "clock.h"
#include "tls.h"
#include "tls_openssl.h"

struct mg_tls {
	SSL *ssl;
};

void tls_openssl_error(char *err, size_t errlen, const char *what)
{
	unsigned long code = ERR_get_error();
	char reason[256];

	if (code != 0)
		ERR_error_string_n(code, reason, sizeof(reason));
	else
		snprintf(reason, sizeof(reason), "no detail");
	snprintf(err, errlen, "%s: %s", what, reason);
	ERR_clear_error();
}

/* Settings both directions share. */
void tls_common_options(SSL_CTX *ctx)
{
	/*
	 * Mail clients routinely close without close_notify; that is the end of
	 * the session, not an error (and nothing here relies on truncation
	 * detection: IMAP and POP3 frame their own data).
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
				      SSL_OP_IGNORE_UNEXPECTED_EOF);
	/*
	 * Decrypted records carry passwords (LOGIN, AUTH PLAIN, the monitor's
	 * own login): OpenSSL wipes its copy of the plaintext once it has been
	 * read, as we wipe ours.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT);
#ifdef SSL_OP_ENABLE_KTLS
	/* The kernel builds the records where it can (see tls_kernel_offload()). */
	SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
#endif
	/* Idle IMAP sessions (IDLE) must not pin 2 x 16 kB of record buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

/*
 * Drive SSL_connect on a non-blocking fd until done or the deadline (the
 * probe's handshake: it connects with SSL_VERIFY_NONE and reports the
 * verification result afterwards; the gateway's handshakes run in libevent).
 */
static int handshake(SSL *ssl, int fd, int timeout_ms, char *err, size_t errlen)
{
	long long deadline = mg_now_ms() + timeout_ms;

	for (;;) {
		int rc = SSL_connect(ssl);
		struct pollfd pfd = { .fd = fd };
		int left;

		if (rc == 1)
			return 0;
		switch (SSL_get_error(ssl, rc)) {
		case SSL_ERROR_WANT_READ:
			pfd.events = POLLIN;
			break;
		case SSL_ERROR_WANT_WRITE:
			pfd.events = POLLOUT;
			break;
		case SSL_ERROR_SYSCALL:
			if (ERR_peek_error() == 0) {
				snprintf(err, errlen, "TLS handshake: connection closed%s%s",
					 errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "");
				return -1;
			}
			tls_openssl_error(err, errlen, "TLS handshake");
			return -1;
		default:
			tls_openssl_error(err, errlen, "TLS handshake");
			return -1;
		}
		left = mg_ms_left(deadline);
		if (left == 0 || poll(&pfd, 1, left) == 0) {
			snprintf(err, errlen, "TLS handshake: timed out");
			return -1;
		}
	}
}

static struct mg_tls *wrap(SSL *ssl)
{
	struct mg_tls *tls = calloc(1, sizeof(*tls));

	if (tls != NULL)
		tls->ssl = ssl;
	return tls;
}

static ssize_t io_result(struct mg_tls *tls, int rc)
{
	switch (SSL_get_error(tls->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		return MG_TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return MG_TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return MG_TLS_EOF;
	case SSL_ERROR_SYSCALL:
		/* A peer that closes without close_notify: treat as end of stream. */
		ERR_clear_error();
		return errno == 0 || errno == ECONNRESET ? MG_TLS_EOF : MG_TLS_ERROR;
	default:
		ERR_clear_error();
		return MG_TLS_ERROR;
	}
}

ssize_t tls_read(struct mg_tls *tls, void *buf, size_t len)
{
	size_t got = 0;
	int rc;

	errno = 0;
	rc = SSL_read_ex(tls->ssl, buf, len, &got);
	if (rc == 1)
		return (ssize_t)got;
	return io_result(tls, rc);
}

ssize_t tls_write(struct mg_tls *tls, const void *buf, size_t len)
{
	size_t put = 0;
	int rc;

	errno = 0;
	rc = SSL_write_ex(tls->ssl, buf, len, &put);
	if (rc == 1)
		return (ssize_t)put;
	return io_result(tls, rc);
}

const char *tls_version(const struct mg_tls *tls)
{
	return SSL_get_version(tls->ssl);
}

const char *tls_cipher(const struct mg_tls *tls)
{
	return SSL_get_cipher_name(tls->ssl);
}

void tls_close(struct mg_tls *tls)
{
	if (tls == NULL)
		return;
	/* One non-blocking attempt: a peer that does not read gets no more of our time. */
	SSL_shutdown(tls->ssl);
	ERR_clear_error();
	SSL_free(tls->ssl);
	free(tls);
}

/*
 * ---- Client-side probing, for the monitor ---------------------------------
 *
 * The monitor must see what a careless client would see: so the probe
 * context talks TLS 1.0 and up at security level 0 (to report an old
 * version rather than fail on it) and never aborts on a certificate that
 * does not verify; the verification result, the name check and the expiry
 * are read afterwards and judged by the caller.
 */
struct mg_tls_probe {
	SSL_CTX *ctx;
};

struct mg_tls_probe *tls_probe_new(const char *ca_file, char *err, size_t errlen)
{
	struct mg_tls_probe *probe = calloc(1, sizeof(*probe));
	X509_VERIFY_PARAM *param;

	if (probe == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	probe->ctx = SSL_CTX_new(TLS_client_method());
	if (probe->ctx == NULL) {
		tls_openssl_error(err, errlen, "cannot create TLS context");
		goto fail;
	}
	tls_common_options(probe->ctx);
	SSL_CTX_set_security_level(probe->ctx, 0);
	if (!SSL_CTX_set_min_proto_version(probe->ctx, TLS1_VERSION)) {
		tls_openssl_error(err, errlen, "cannot set minimum TLS version");
		goto fail;
	}
	if (ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(probe->ctx, ca_file, NULL) != 1) {
			tls_openssl_error(err, errlen, ca_file);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(probe->ctx) != 1) {
		tls_openssl_error(err, errlen, "cannot load the system CA store");
		goto fail;
	}
	/*
	 * Verify the chain but leave time to tls_peer_days_left(): otherwise
	 * an expired certificate would be reported twice, and the thresholds
	 * could never say WARNING before it expires.
	 */
	param = SSL_CTX_get0_param(probe->ctx);
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_NO_CHECK_TIME);
	/* SSL_VERIFY_NONE still verifies and records the result; it only does not abort. */
	SSL_CTX_set_verify(probe->ctx, SSL_VERIFY_NONE, NULL);
	return probe;
fail:
	tls_probe_free(probe);
	return NULL;
}

void tls_probe_free(struct mg_tls_probe *probe)
{
	if (probe == NULL)
		return;
	SSL_CTX_free(probe->ctx);
	free(probe);
}

int tls_probe_connect(struct mg_tls_probe *probe, int fd, const char *sni, int timeout_ms,
		      struct mg_tls **out, char *err, size_t errlen)
{
	SSL *ssl = SSL_new(probe->ctx);

	*out = NULL;
	err[0] = '\0';
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
		tls_openssl_error(err, errlen, "cannot create TLS connection");
		SSL_free(ssl);
		return -1;
	}
	if (sni != NULL && sni[0] != '\0') {
		/* SNI only for names: RFC 6066 forbids literal addresses there. */
		ASN1_OCTET_STRING *ip = a2i_IPADDRESS(sni);

		if (ip == NULL && SSL_set_tlsext_host_name(ssl, sni) != 1) {
			tls_openssl_error(err, errlen, "cannot set the TLS server name");
			SSL_free(ssl);
			return -1;
		}
		ASN1_OCTET_STRING_free(ip);
		ERR_clear_error();
	}
	errno = 0;
	if (handshake(ssl, fd, timeout_ms, err, errlen) < 0 || (*out = wrap(ssl)) == NULL) {
		if (*out == NULL && err[0] == '\0')
			snprintf(err, errlen, "out of memory");
		SSL_free(ssl);
		return -1;
	}
	return 0;
}

int tls_peer_days_left(const struct mg_tls *tls, long *days)
{
	X509 *cert = SSL_get0_peer_certificate(tls->ssl);
	int day = 0, sec = 0;

	if (cert == NULL || ASN1_TIME_diff(&day, &sec, NULL, X509_get0_notAfter(cert)) != 1) {
		ERR_clear_error();
		return -1;
	}
	/* day and sec share a sign; round towards the past, so 0.5 days left is 0, -0.5 is -1. */
	*days = (long)day - (sec < 0 ? 1 : 0);
	return 0;
}

int tls_peer_verify_result(const struct mg_tls *tls, char *buf, size_t len)
{
	long result;

	if (SSL_get0_peer_certificate(tls->ssl) == NULL) {
		snprintf(buf, len, "no certificate");
		return -1;
	}
	result = SSL_get_verify_result(tls->ssl);
	if (result == X509_V_OK) {
		snprintf(buf, len, "ok");
		return 0;
	}
	snprintf(buf, len, "%s", X509_verify_cert_error_string(result));
	return -1;
}

bool tls_peer_name_matches(const struct mg_tls *tls, const char *name)
{
	X509 *cert = SSL_get0_peer_certificate(tls->ssl);
	ASN1_OCTET_STRING *ip;
	int rc;

	if (cert == NULL || name == NULL || name[0] == '\0')
		return false;
	/* An IP literal must be in an iPAddress entry; a DNS entry of the same text does not count. */
	ip = a2i_IPADDRESS(name);
	if (ip != NULL) {
		ASN1_OCTET_STRING_free(ip);
		rc = X509_check_ip_asc(cert, name, 0);
	} else {
		rc = X509_check_host(cert, name, strlen(name), 0, NULL);
	}
	ERR_clear_error();
	return rc == 1;
}

int tls_peer_version(const struct mg_tls *tls)
{
	return SSL_version(tls->ssl);
}
