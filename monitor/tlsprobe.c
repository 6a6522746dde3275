/*
 * tlsprobe.c - judging the TLS a server offers, through the new client-side
 * functions of lib/tls.c (which, with gateway/engine_tls.c, alone talks to OpenSSL).
 *
 *	TLS older than 1.2				WARNING
 *	certificate expires within -c / -w days		CRITICAL / WARNING
 *	certificate already expired			CRITICAL
 *	chain does not verify (--ca-file or system)	WARNING
 *	certificate does not name --sni or -H		WARNING
 *
 * Trust and name are WARNING, not CRITICAL: the plugin is about cleartext
 * logins, and a monitoring host often reaches a server by an address its
 * certificate does not list (use --sni). But the real password is only
 * sent over a TLS session that passed both, and never to an expired
 * certificate.
 */
#include <stdio.h>

#include "tlsprobe.h"

int tlsprobe_handshake(struct mon_ctx *ctx, struct mon_conn *c, const char *what,
		       enum mon_state failure_state, enum mon_state closed_state)
{
	char err[256];

	if (conn_start_tls(c, ctx->tls, ctx->tls_name, err, sizeof(err)) == 0)
		return 0;
	transcript_note(ctx->transcript, "%s", err);
	if (conn_ms_left(c) == 0) {
		ctx->timed_out = true;
		report_add(ctx->report, MON_CRITICAL, "%s: TLS handshake timed out after %.1f s", what,
			   conn_elapsed(c));
		return -1;
	}
	if (conn_peer_closed(c)) {
		report_add(ctx->report, closed_state, "%s: server closed the connection instead of "
			   "the TLS handshake", what);
		return -1;
	}
	report_add(ctx->report, failure_state, "%s: %s", what, err);
	return -1;
}

bool tlsprobe_evaluate(struct mon_ctx *ctx, struct mon_conn *c)
{
	const struct mg_tls *tls = c->stream.tls;
	struct mon_report *r = ctx->report;
	bool trusted = true;
	char reason[160];
	long days;

	if (tls_peer_version(tls) < MG_TLS_VERSION_1_2)
		report_add(r, MON_WARNING, "%s negotiated, older than TLS 1.2", tls_version(tls));
	else
		report_add(r, MON_OK, "%s", tls_version(tls));

	if (tls_peer_days_left(tls, &days) == 0) {
		enum mon_state state = mon_days_state(days, ctx->opt->warn_days, ctx->opt->crit_days);

		r->have_cert_days = true;
		r->cert_days = days;
		/* days is rounded down: -1 means expired less than a whole day ago. */
		if (days < 0)
			trusted = false;	/* no real password to an expired certificate */
		if (days == -1)
			report_add(r, state, "certificate expired within the last day");
		else if (days < 0)
			report_add(r, state, "certificate expired %ld day%s ago", -days - 1,
				   days == -2 ? "" : "s");
		else if (state != MON_OK)
			report_add(r, state, "certificate expires in %ld day%s", days,
				   days == 1 ? "" : "s");
		else
			report_add(r, state, "certificate valid for %ld day%s", days,
				   days == 1 ? "" : "s");
	} else {
		report_add(r, MON_WARNING, "no server certificate");
		trusted = false;
	}

	if (tls_peer_verify_result(tls, reason, sizeof(reason)) < 0) {
		report_add(r, MON_WARNING, "certificate not trusted: %s", reason);
		trusted = false;
	}
	if (!tls_peer_name_matches(tls, ctx->tls_name)) {
		report_add(r, MON_WARNING, "certificate does not name %s", ctx->tls_name);
		trusted = false;
	}
	return trusted;
}
