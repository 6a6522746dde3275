/*
 * session_sasl_exchange.c - continuations, responses and decoding for SASL PLAIN and
 * LOGIN on the client side. Called only on connections allowed to carry
 * credentials: the protocol modules refuse earlier otherwise.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "session_sasl.h"
#include "session_sasl_exchange.h"
#include "session.h"

/* Far more than any valid PLAIN message (authzid, user and password). */
#define SASL_MAX_DECODED 4096
#define SASL_MAX_ENCODED (SASL_MAX_DECODED * 4 / 3 + 4)

struct response {
	char text[SASL_MAX_ENCODED + 1];
	size_t len;
};

/*
 * Send "+ challenge" and read the answer. A response too long to be valid is
 * kept empty, so it fails to decode as every other malformed one does.
 */
static enum sasl_exchange_result ask(struct mg_session *session, const char *challenge,
				     struct response *out, long *io)
{
	struct mg_stream *client = &session->client;
	char line[64];
	int len = snprintf(line, sizeof(line), "+ %s\r\n", challenge);
	long n;
	size_t textlen;

	if ((n = stream_write_all(client, line, (size_t)len, session_write_deadline(session))) < 0 ||
	    (n = stream_read_line(client, session_client_deadline(session))) < 0) {
		*io = n;
		return SASL_EXCHANGE_IO;
	}
	textlen = stream_strip_eol(client->in, (size_t)n);
	out->len = 0;
	if (textlen == 1 && client->in[0] == '*') {
		stream_consume(client, (size_t)n);
		return SASL_EXCHANGE_CANCELLED;
	}
	if (textlen < sizeof(out->text)) {
		memcpy(out->text, client->in, textlen);
		out->len = textlen;
	}
	stream_consume(client, (size_t)n);
	return SASL_EXCHANGE_OK;
}

/* The initial response, or the answer to an empty challenge. */
static enum sasl_exchange_result first_response(struct mg_session *session, const char *ir,
						size_t irlen, const char *challenge,
						struct response *out, long *io)
{
	if (ir == NULL)
		return ask(session, challenge, out, io);
	out->len = 0;
	/* RFC 4959 and RFC 5034: "=" is an empty initial response. */
	if (irlen < sizeof(out->text) && !(irlen == 1 && ir[0] == '=')) {
		memcpy(out->text, ir, irlen);
		out->len = irlen;
	}
	return SASL_EXCHANGE_OK;
}

static enum sasl_exchange_result plain(struct mg_session *session, const char *ir, size_t irlen,
				       struct response *response, long *io)
{
	unsigned char decoded[SASL_MAX_DECODED];
	size_t decoded_len = 0;
	const char *error = NULL;
	enum sasl_exchange_result result = first_response(session, ir, irlen, "", response, io);

	if (result == SASL_EXCHANGE_OK &&
	    (base64_decode(response->text, response->len, decoded, sizeof(decoded),
			   &decoded_len) < 0 ||
	     sasl_plain_decode(decoded, decoded_len, &session->cred, &error) < 0))
		result = SASL_EXCHANGE_INVALID;
	explicit_bzero(decoded, sizeof(decoded));
	return result;
}

static enum sasl_exchange_result login(struct mg_session *session, const char *ir, size_t irlen,
				       struct response *response, long *io)
{
	struct mg_credentials *cred = &session->cred;
	const char *error = NULL;
	/* The initial response, when given, is the user name. */
	enum sasl_exchange_result result =
		first_response(session, ir, irlen, "VXNlcm5hbWU6", response, io);

	if (result != SASL_EXCHANGE_OK)
		return result;
	if (sasl_login_decode(response->text, response->len, cred->user, sizeof(cred->user),
			      &cred->user_len, &error) < 0)
		return SASL_EXCHANGE_INVALID;
	result = ask(session, "UGFzc3dvcmQ6", response, io);
	if (result != SASL_EXCHANGE_OK)
		return result;
	if (sasl_login_decode(response->text, response->len, cred->password,
			      sizeof(cred->password), &cred->password_len, &error) < 0)
		return SASL_EXCHANGE_INVALID;
	return SASL_EXCHANGE_OK;
}

enum sasl_exchange_result sasl_exchange(struct mg_session *session, const char *mechanism,
					size_t mechlen, const char *ir, size_t irlen, long *io)
{
	struct response response;
	enum sasl_exchange_result result = SASL_EXCHANGE_UNSUPPORTED;

	if (mechlen == 5 && strncasecmp(mechanism, "PLAIN", 5) == 0)
		result = plain(session, ir, irlen, &response, io);
	else if (mechlen == 5 && strncasecmp(mechanism, "LOGIN", 5) == 0)
		result = login(session, ir, irlen, &response, io);
	explicit_bzero(&response, sizeof(response));
	if (result != SASL_EXCHANGE_OK)
		credentials_wipe(&session->cred);
	return result;
}
