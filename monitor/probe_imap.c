/*
 * probe_imap.c - check_cleartext_login's IMAP dialogue (RFC 3501 / 9051,
 * STARTTLS from RFC 2595, response codes from RFC 5530).
 *
 * A careless client sends LOGIN whatever the capabilities say, so LOGIN is
 * sent even when LOGINDISABLED is advertised; the answer is what counts.
 * Credentials are quoted with the gateway's imap_quote(); a password that
 * needs a literal is sent as one (LITERAL+ when offered, else waiting for
 * the continuation). The command buffer is wiped once sent, and the
 * transcript shows the password as ******.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "imap_token.h"
#include "log.h"
#include "probe.h"

#define IMAP_LITERAL_MAX (1024 * 1024)	/* a literal in a server response we skip */
#define IMAP_QUIT_MS	 1000

static void next_tag(struct mon_ctx *ctx, char *tag, size_t len)
{
	snprintf(tag, len, "CCL%u", ++ctx->next_tag);
}

/* Skip a literal announced at the end of the line just read. Returns 0 or MG_IO_*. */
static int skip_literal(struct mon_conn *c)
{
	uint64_t size = 0;
	long n;

	switch (imap_line_literal(c->line, c->line_len, &size)) {
	case IMAP_LITERAL_NONE:
	case IMAP_LITERAL_INVALID:
		return 0;
	case IMAP_LITERAL_SYNC:
	case IMAP_LITERAL_NONSYNC:
		break;
	}
	if (size > IMAP_LITERAL_MAX)
		return MG_IO_TOO_LONG;
	n = stream_read_exact(&c->stream, (size_t)size, (size_t)size + MON_LINE_MAX, c->deadline);
	if (n < 0)
		return (int)n;
	stream_consume(&c->stream, (size_t)size);
	transcript_note(c->transcript, "(literal of %zu bytes not shown)", (size_t)size);
	return 0;
}

/*
 * Read up to the tagged answer for tag. Untagged CAPABILITY responses and a
 * [CAPABILITY] code in the tagged answer go into caps (when not NULL); the
 * text of an untagged BYE into bye (when not NULL). Returns 0 with *status
 * pointing into c->line, or an MG_IO_* code.
 */
static int read_tagged(struct mon_conn *c, const char *tag, struct mon_caps *caps, char *bye,
		       size_t byelen, const char **status, size_t *status_len)
{
	for (;;) {
		int rc = conn_read_line(c);

		if (rc < 0)
			return rc;
		if (classify_imap_tagged(c->line, c->line_len, tag, status, status_len)) {
			if (caps != NULL)
				caps_imap_response_code(*status, *status_len, caps);
			return 0;
		}
		if (caps != NULL)
			caps_imap_untagged(c->line, c->line_len, caps);
		if (bye != NULL && c->line_len >= 5 && imap_word_equals(c->line, 5, "* BYE"))
			log_sanitize(bye, byelen, c->line, c->line_len);
		rc = skip_literal(c);
		if (rc < 0)
			return rc;
	}
}

/* Offset just past the first CRLF in s[0..len) (the end of a "{N}" line). */
static size_t after_crlf(const char *s, size_t len)
{
	const char *crlf = memmem(s, len, "\r\n", 2);

	return crlf != NULL ? (size_t)(crlf - s) + 2 : len;
}

/*
 * Send "TAG LOGIN user password". Returns 0 when all of it was sent, 1 when
 * the server gave its tagged answer before it asked for a literal (the
 * answer is in c->line, *status points into it), or an MG_IO_* code.
 */
static int send_login(struct mon_ctx *ctx, struct mon_conn *c, const char *tag, bool literal_plus,
		      const char **status, size_t *status_len)
{
	char cmd[2 * (MG_USER_MAX + MG_PASSWORD_MAX) + 128];
	size_t splits[3], nsplits = 0, len, n, start = 0;
	char shown[64 + MG_USER_MAX];
	bool sync = false;
	int rc = 0, head;

	head = snprintf(cmd, sizeof(cmd), "%s LOGIN ", tag);
	if (head < 0 || (size_t)head >= sizeof(cmd))
		return MG_IO_ERROR;
	len = (size_t)head;
	n = imap_quote(ctx->cred.user, ctx->cred.user_len, literal_plus, cmd + len,
		       sizeof(cmd) - len, &sync);
	if (n == 0 || len + n + 1 >= sizeof(cmd))
		return MG_IO_ERROR;
	if (sync)
		splits[nsplits++] = len + after_crlf(cmd + len, n);
	len += n;
	cmd[len++] = ' ';
	n = imap_quote(ctx->cred.password, ctx->cred.password_len, literal_plus, cmd + len,
		       sizeof(cmd) - len - 2, &sync);
	if (n == 0) {
		explicit_bzero(cmd, sizeof(cmd));
		return MG_IO_ERROR;
	}
	if (sync)
		splits[nsplits++] = len + after_crlf(cmd + len, n);
	len += n;
	memcpy(cmd + len, "\r\n", 2);
	len += 2;
	splits[nsplits++] = len;

	/*
	 * The transcript gets one line that shows neither the password nor its
	 * length (a literal's "{N}" would); the wire form goes out unrecorded.
	 */
	snprintf(shown, sizeof(shown), "%s LOGIN \"%s\" %s", tag, ctx->cred.user, MON_MASK);
	transcript_add(c->transcript, "C: ", shown, strlen(shown));
	for (size_t i = 0; i < nsplits && rc == 0; i++) {
		rc = conn_send_unrecorded(c, cmd + start, splits[i] - start);
		start = splits[i];
		if (rc < 0 || i + 1 == nsplits)
			break;
		/* A synchronising literal: wait for "+", or the server's verdict. */
		for (;;) {
			rc = conn_read_line(c);
			if (rc < 0)
				break;
			if (c->line_len > 0 && c->line[0] == '+')
				break;
			if (classify_imap_tagged(c->line, c->line_len, tag, status, status_len)) {
				rc = 1;
				break;
			}
		}
	}
	explicit_bzero(cmd, sizeof(cmd));
	return rc;
}

static int imap_greeting(struct mon_ctx *ctx, struct mon_conn *c, struct mon_caps *caps)
{
	char shown[128];
	int rc = conn_read_line(c);

	if (rc < 0) {
		probe_io_failed(ctx, c, "no IMAP greeting", rc);
		return -1;
	}
	probe_quote_answer(c->line, c->line_len, shown, sizeof(shown));
	switch (classify_imap_greeting(c->line, c->line_len)) {
	case MON_GREETING_OK:
		caps_imap_response_code(c->line, c->line_len, caps);
		return 0;
	case MON_GREETING_PREAUTH:
		report_add(ctx->report, MON_WARNING,
			   "server sent PREAUTH: logged in without a password, no login to test");
		return -1;
	case MON_GREETING_REFUSED:
		report_add(ctx->report, MON_CRITICAL, "server refused the connection: '%s'", shown);
		return -1;
	case MON_GREETING_MALFORMED:
		break;
	}
	report_add(ctx->report, MON_CRITICAL, "malformed IMAP greeting: '%s'", shown);
	return -1;
}

static int imap_capabilities(struct mon_ctx *ctx, struct mon_conn *c, struct mon_caps *caps)
{
	const char *status;
	size_t slen;
	char tag[16], cmd[64];
	int rc;

	if (!caps->known) {
		next_tag(ctx, tag, sizeof(tag));
		snprintf(cmd, sizeof(cmd), "%s CAPABILITY\r\n", tag);
		rc = conn_send(c, cmd, strlen(cmd), NULL, 0);
		if (rc == 0)
			rc = read_tagged(c, tag, caps, NULL, 0, &status, &slen);
		if (rc < 0) {
			probe_io_failed(ctx, c, "CAPABILITY", rc);
			return -1;
		}
	}
	if (!caps->known) {
		report_add(ctx->report, MON_WARNING,
			   "no capability list: cannot tell whether STARTTLS is offered");
		return 0;
	}
	if (!caps->starttls)
		report_add(ctx->report, MON_WARNING,
			   "STARTTLS not offered: there is no way to secure the session");
	if (!caps->logindisabled)
		report_add(ctx->report, MON_WARNING, "LOGINDISABLED not advertised before STARTTLS");
	if (caps->password_mech)
		report_add(ctx->report, MON_WARNING, "AUTH=PLAIN or AUTH=LOGIN offered before STARTTLS");
	if (caps->starttls && caps->logindisabled && !caps->password_mech)
		report_add(ctx->report, MON_OK, "STARTTLS and LOGINDISABLED advertised");
	return 0;
}

static int imap_cleartext_login(struct mon_ctx *ctx, struct mon_conn *c,
				const struct mon_caps *caps)
{
	const char *status = NULL;
	size_t slen = 0;
	char tag[16], bye[256] = "";
	enum mon_login_class cls;
	int rc;

	next_tag(ctx, tag, sizeof(tag));
	rc = send_login(ctx, c, tag, caps->literal_plus, &status, &slen);
	if (rc == 0)
		rc = read_tagged(c, tag, NULL, bye, sizeof(bye), &status, &slen);
	if (rc == MG_IO_EOF) {
		/* Hanging up on a cleartext LOGIN is a refusal only if it says so. */
		cls = classify_imap_closed(bye[0] != '\0' ? bye : NULL, strlen(bye));
		if (bye[0] == '\0')
			snprintf(bye, sizeof(bye), "connection closed without an answer");
		probe_report_login(ctx, &probe_imap_ops, cls, bye, strlen(bye));
		return -1;
	}
	if (rc < 0) {
		probe_io_failed(ctx, c, "cleartext LOGIN", rc);
		return -1;
	}
	cls = classify_imap_login(status, slen, caps->logindisabled);
	probe_report_login(ctx, &probe_imap_ops, cls, status, slen);
	return 0;
}

static int imap_starttls(struct mon_ctx *ctx, struct mon_conn *c, bool inject)
{
	const char *status;
	size_t slen;
	char tag[16], cmd[96];
	int rc, n;

	next_tag(ctx, tag, sizeof(tag));
	if (inject) {
		next_tag(ctx, ctx->injected_tag, sizeof(ctx->injected_tag));
		/* One write: both commands travel in the same TCP segment. */
		n = snprintf(cmd, sizeof(cmd), "%s STARTTLS\r\n%s NOOP\r\n", tag, ctx->injected_tag);
	} else {
		n = snprintf(cmd, sizeof(cmd), "%s STARTTLS\r\n", tag);
	}
	rc = conn_send(c, cmd, (size_t)n, NULL, 0);
	if (rc == 0)
		rc = read_tagged(c, tag, NULL, NULL, 0, &status, &slen);
	if (rc < 0)
		return rc;
	return classify_imap_ok(status, slen) ? MON_STARTTLS_OK : MON_STARTTLS_REFUSED;
}

static int imap_tls_login(struct mon_ctx *ctx, struct mon_conn *c)
{
	const char *status = NULL;
	size_t slen = 0;
	char tag[16], shown[128];
	int rc;

	next_tag(ctx, tag, sizeof(tag));
	/* Capabilities after TLS are unknown here: a synchronising literal is always safe. */
	rc = send_login(ctx, c, tag, false, &status, &slen);
	if (rc == 0)
		rc = read_tagged(c, tag, NULL, NULL, 0, &status, &slen);
	if (rc < 0) {
		probe_io_failed(ctx, c, "LOGIN over TLS", rc);
		return -1;
	}
	probe_quote_answer(status, slen, shown, sizeof(shown));
	if (classify_imap_ok(status, slen)) {
		report_add(ctx->report, MON_OK, "LOGIN over TLS succeeded");
		return 0;
	}
	report_add(ctx->report, MON_CRITICAL, "LOGIN over TLS failed for %s: '%s'", ctx->cred.user,
		   shown);
	return -1;
}

static int imap_injection_verdict(struct mon_ctx *ctx, struct mon_conn *c)
{
	const char *status;
	size_t slen;
	char tag[16], cmd[64], shown[128] = "";
	bool injected = false;
	int rc;

	/* Our own command, sent inside TLS: its answer ends the wait for the injected one. */
	next_tag(ctx, tag, sizeof(tag));
	snprintf(cmd, sizeof(cmd), "%s NOOP\r\n", tag);
	rc = conn_send(c, cmd, strlen(cmd), NULL, 0);
	while (rc == 0) {
		rc = conn_read_line(c);
		if (rc < 0)
			break;
		if (classify_imap_tagged(c->line, c->line_len, ctx->injected_tag, &status, &slen)) {
			injected = true;
			probe_quote_answer(c->line, c->line_len, shown, sizeof(shown));
		}
		if (classify_imap_tagged(c->line, c->line_len, tag, &status, &slen))
			break;
		rc = skip_literal(c);
	}
	if (injected) {
		report_add(ctx->report, MON_CRITICAL,
			   "STARTTLS command injection: a command sent with STARTTLS was answered "
			   "inside TLS ('%s')",
			   shown);
		return -1;
	}
	if (rc == MG_IO_EOF) {
		report_add(ctx->report, MON_OK, "connection closed after pipelined STARTTLS");
		return -1;
	}
	if (rc < 0) {
		probe_io_failed(ctx, c, "STARTTLS injection test", rc);
		return -1;
	}
	report_add(ctx->report, MON_OK, "no STARTTLS command injection");
	return 0;
}

static void imap_quit(struct mon_ctx *ctx, struct mon_conn *c)
{
	const char *status;
	size_t slen;
	char tag[16], cmd[64];

	probe_short_deadline(c, IMAP_QUIT_MS);
	next_tag(ctx, tag, sizeof(tag));
	snprintf(cmd, sizeof(cmd), "%s LOGOUT\r\n", tag);
	if (conn_send(c, cmd, strlen(cmd), NULL, 0) == 0)
		read_tagged(c, tag, NULL, NULL, 0, &status, &slen);
}

const struct mon_probe_ops probe_imap_ops = {
	.name = "IMAP",
	.starttls_name = "STARTTLS",
	.login_name = "LOGIN",
	.greeting = imap_greeting,
	.capabilities = imap_capabilities,
	.cleartext_login = imap_cleartext_login,
	.starttls = imap_starttls,
	.tls_login = imap_tls_login,
	.injection_verdict = imap_injection_verdict,
	.quit = imap_quit,
};
