/*
 * probe_pop3.c - check_cleartext_login's POP3 dialogue (RFC 1939, CAPA
 * from RFC 2449, STLS from RFC 2595, response codes from RFC 3206).
 *
 * The careless client here is the classic one: USER, then PASS, in the
 * clear. Many servers answer USER with +OK whatever the name and give their
 * verdict at PASS, so both answers are classified.
 */
#include <stdio.h>
#include <string.h>

#include "probe.h"

#define POP3_QUIT_MS	   1000
#define POP3_CAPA_LINES	   200	/* a longer CAPA answer is not a real one */
/* Sent inside TLS after a pipelined STLS; only the injected CAPA could answer +OK. */
#define POP3_PROBE_COMMAND "XCHECKCLEARTEXT"

/* Send one command line; the password (if any) is masked in the transcript. */
static int send_line(struct mon_conn *c, const char *verb, const char *arg, size_t arglen,
		     bool secret)
{
	char line[16 + MG_PASSWORD_MAX + 8];
	size_t vlen = strlen(verb), len = 0;
	int rc;

	if (vlen + 1 + arglen + 2 > sizeof(line))
		return MG_IO_ERROR;
	memcpy(line, verb, vlen);
	len = vlen;
	if (arg != NULL) {
		line[len++] = ' ';
		memcpy(line + len, arg, arglen);
		len += arglen;
	}
	memcpy(line + len, "\r\n", 2);
	len += 2;
	rc = conn_send(c, line, len, secret ? arg : NULL, secret ? arglen : 0);
	explicit_bzero(line, sizeof(line));
	return rc;
}

/* Send a command and read its one-line answer into c->line. */
static int command(struct mon_conn *c, const char *verb, const char *arg, size_t arglen,
		   bool secret)
{
	int rc = send_line(c, verb, arg, arglen, secret);

	return rc < 0 ? rc : conn_read_line(c);
}

static int pop3_greeting(struct mon_ctx *ctx, struct mon_conn *c, struct mon_caps *caps)
{
	char shown[128];
	int rc = conn_read_line(c);

	if (rc < 0) {
		probe_io_failed(ctx, c, "no POP3 greeting", rc);
		return -1;
	}
	probe_quote_answer(c->line, c->line_len, shown, sizeof(shown));
	switch (classify_pop3_greeting(c->line, c->line_len)) {
	case MON_GREETING_OK:
		return 0;
	case MON_GREETING_REFUSED:
		report_add(ctx->report, MON_CRITICAL, "server refused the connection: '%s'", shown);
		return -1;
	case MON_GREETING_PREAUTH:
	case MON_GREETING_MALFORMED:
		break;
	}
	report_add(ctx->report, MON_CRITICAL, "malformed POP3 greeting: '%s'", shown);
	return -1;
}

static int pop3_capabilities(struct mon_ctx *ctx, struct mon_conn *c, struct mon_caps *caps)
{
	int rc = command(c, "CAPA", NULL, 0, false);

	if (rc < 0) {
		probe_io_failed(ctx, c, "CAPA", rc);
		return -1;
	}
	if (classify_pop3_ok(c->line, c->line_len)) {
		caps->known = true;
		for (int n = 0;; n++) {
			rc = conn_read_line(c);
			if (rc < 0) {
				probe_io_failed(ctx, c, "CAPA", rc);
				return -1;
			}
			if (c->line_len == 1 && c->line[0] == '.')
				break;
			if (n >= POP3_CAPA_LINES) {
				report_add(ctx->report, MON_WARNING, "CAPA answer longer than %d lines",
					   POP3_CAPA_LINES);
				return -1;
			}
			/* Dot-unstuffing: "..x" is the line ".x". */
			if (c->line_len > 0 && c->line[0] == '.')
				caps_parse_pop3_line(c->line + 1, c->line_len - 1, caps);
			else
				caps_parse_pop3_line(c->line, c->line_len, caps);
		}
	}
	if (!caps->known) {
		report_add(ctx->report, MON_WARNING,
			   "CAPA not supported: cannot tell whether STLS is offered");
		return 0;
	}
	if (!caps->starttls)
		report_add(ctx->report, MON_WARNING,
			   "STLS not offered: there is no way to secure the session");
	if (caps->user)
		report_add(ctx->report, MON_WARNING, "USER offered before STLS");
	if (caps->password_mech)
		report_add(ctx->report, MON_WARNING, "SASL PLAIN or LOGIN offered before STLS");
	if (caps->starttls && !caps->user && !caps->password_mech)
		report_add(ctx->report, MON_OK, "STLS offered, no cleartext login advertised");
	return 0;
}

static int pop3_cleartext_login(struct mon_ctx *ctx, struct mon_conn *c,
				const struct mon_caps *caps)
{
	enum mon_login_class cls;
	int rc;

	rc = command(c, "USER", ctx->cred.user, ctx->cred.user_len, false);
	if (rc < 0) {
		probe_io_failed(ctx, c, "cleartext USER", rc);
		return -1;
	}
	cls = classify_pop3_user(c->line, c->line_len);
	if (cls == MON_LOGIN_USER_OK) {
		rc = command(c, "PASS", ctx->cred.password, ctx->cred.password_len, true);
		if (rc < 0) {
			probe_io_failed(ctx, c, "cleartext PASS", rc);
			return -1;
		}
		cls = classify_pop3_pass(c->line, c->line_len);
	}
	probe_report_login(ctx, &probe_pop3_ops, cls, c->line, c->line_len);
	return 0;
}

static int pop3_starttls(struct mon_ctx *ctx, struct mon_conn *c, bool inject)
{
	static const char plain[] = "STLS\r\n";
	/* One write: both commands travel in the same TCP segment. */
	static const char injected[] = "STLS\r\nCAPA\r\n";
	int rc;

	rc = inject ? conn_send(c, injected, sizeof(injected) - 1, NULL, 0)
		    : conn_send(c, plain, sizeof(plain) - 1, NULL, 0);
	if (rc == 0)
		rc = conn_read_line(c);
	if (rc < 0)
		return rc;
	return classify_pop3_ok(c->line, c->line_len) ? MON_STARTTLS_OK : MON_STARTTLS_REFUSED;
}

static int pop3_tls_login(struct mon_ctx *ctx, struct mon_conn *c)
{
	char shown[128];
	int rc;

	rc = command(c, "USER", ctx->cred.user, ctx->cred.user_len, false);
	if (rc == 0 && classify_pop3_ok(c->line, c->line_len))
		rc = command(c, "PASS", ctx->cred.password, ctx->cred.password_len, true);
	if (rc < 0) {
		probe_io_failed(ctx, c, "USER/PASS over TLS", rc);
		return -1;
	}
	probe_quote_answer(c->line, c->line_len, shown, sizeof(shown));
	if (classify_pop3_ok(c->line, c->line_len)) {
		report_add(ctx->report, MON_OK, "USER/PASS over TLS succeeded");
		return 0;
	}
	report_add(ctx->report, MON_CRITICAL, "USER/PASS over TLS failed for %s: '%s'",
		   ctx->cred.user, shown);
	return -1;
}

static int pop3_injection_verdict(struct mon_ctx *ctx, struct mon_conn *c)
{
	char shown[128];
	int rc = command(c, POP3_PROBE_COMMAND, NULL, 0, false);

	if (rc == MG_IO_EOF) {
		report_add(ctx->report, MON_OK, "connection closed after pipelined STLS");
		return -1;
	}
	if (rc < 0) {
		probe_io_failed(ctx, c, "STLS injection test", rc);
		return -1;
	}
	/* Our unknown command can only get -ERR; a +OK first is the injected CAPA's answer. */
	if (classify_pop3_ok(c->line, c->line_len)) {
		probe_quote_answer(c->line, c->line_len, shown, sizeof(shown));
		report_add(ctx->report, MON_CRITICAL,
			   "STLS command injection: a command sent with STLS was answered inside "
			   "TLS ('%s')",
			   shown);
		return -1;
	}
	report_add(ctx->report, MON_OK, "no STLS command injection");
	return 0;
}

static void pop3_quit(struct mon_ctx *ctx, struct mon_conn *c)
{
	probe_short_deadline(c, POP3_QUIT_MS);
	command(c, "QUIT", NULL, 0, false);
}

const struct mon_probe_ops probe_pop3_ops = {
	.name = "POP3",
	.starttls_name = "STLS",
	.login_name = "USER/PASS",
	.greeting = pop3_greeting,
	.capabilities = pop3_capabilities,
	.cleartext_login = pop3_cleartext_login,
	.starttls = pop3_starttls,
	.tls_login = pop3_tls_login,
	.injection_verdict = pop3_injection_verdict,
	.quit = pop3_quit,
};
