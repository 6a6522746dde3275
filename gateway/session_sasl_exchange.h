/*
 * session_sasl_exchange.h - the server side of a SASL PLAIN or LOGIN exchange with
 * the client, shared by the IMAP AUTHENTICATE and POP3 AUTH commands.
 *
 * Both protocols send continuations as "+ <base64>" and take one base64
 * line back, "*" cancelling (RFC 3501 6.2.2, RFC 5034 4); only the final
 * answers differ, and those stay with the protocol module.
 */
#ifndef MG_SESSION_SASL_EXCHANGE_H
#define MG_SESSION_SASL_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>

struct mg_session;

enum sasl_exchange_result {
	SASL_EXCHANGE_OK,		/* session->cred holds user and password */
	SASL_EXCHANGE_CANCELLED,	/* the client answered "*" */
	SASL_EXCHANGE_INVALID,		/* bad base64 or credentials */
	SASL_EXCHANGE_UNSUPPORTED,	/* not PLAIN or LOGIN */
	SASL_EXCHANGE_IO		/* reading or writing failed: *io holds the MG_IO_* code */
};

/*
 * Run mechanism (case-insensitive) with the optional initial response
 * ir[0..irlen) (ir NULL: none; "=" stands for an empty one). Responses may be
 * as long as the client stream's max_line. Every buffer that held a secret is
 * wiped; on any result but OK, session->cred is wiped too.
 */
enum sasl_exchange_result sasl_exchange(struct mg_session *session, const char *mechanism,
					size_t mechlen, const char *ir, size_t irlen, long *io);

#endif
