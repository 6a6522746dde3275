/*
 * plugin.c - the order of the check, as the plugin's documentation gives it:
 *
 *  1. connect and greeting				(connection 1)
 *  2. capabilities before TLS
 *  3. a cleartext login, as a careless client sends it
 *  4. STARTTLS/STLS, the certificate, the TLS version,	(connection 2)
 *     and with real credentials a login over TLS
 *  5. with --injection, a command pipelined with STARTTLS (connection 3)
 *
 * With -S only step 4 runs, on a connection that starts with TLS.
 *
 * -t bounds everything: every connect and read has the overall deadline
 * (a little before -t, so the normal report wins), and an alarm at -t
 * seconds is the backstop for what cannot take a deadline (name
 * resolution). The credentials are wiped before plugin_run returns.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "authfile.h"
#include "clock.h"
#include "plugin.h"
#include "probe.h"
#include "tlsprobe.h"

/* The deadline comes this much before the alarm, so a timeout is reported in full. */
#define DEADLINE_MARGIN_MS 250

/* Written by the alarm handler with write(2): prepared before the alarm is armed. */
static char alarm_message[512];
static size_t alarm_message_len;

static void on_alarm(int sig)
{
	(void)sig;
	if (write(STDOUT_FILENO, alarm_message, alarm_message_len) < 0) {
		/* Nothing left to try: the exit code still says CRITICAL. */
	}
	_exit(MON_CRITICAL);
}

static void arm_hard_limit(const struct mon_report *r, unsigned timeout_s)
{
	struct sigaction sa;
	int n;

	n = snprintf(alarm_message, sizeof(alarm_message),
		     "CLEARTEXT CRITICAL - %s: timed out after %u s | time=%u.000000s;;;0\n",
		     r->subject, timeout_s, timeout_s);
	alarm_message_len = n < 0 ? 0 : (size_t)n < sizeof(alarm_message) ? (size_t)n
									   : sizeof(alarm_message) - 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm(timeout_s);
}

static int open_conn(struct mon_ctx *ctx, struct mon_conn *c, bool first)
{
	double connect_s = 0;
	char err[256];
	int rc;

	rc = conn_open(c, ctx->opt->host, ctx->opt->port, ctx->opt->family, ctx->started,
		       ctx->deadline, ctx->transcript, &connect_s, err, sizeof(err));
	if (rc == 0) {
		if (first) {
			ctx->report->have_connect_time = true;
			ctx->report->connect_time = connect_s;
		}
		return 0;
	}
	if (rc == MON_CONN_TIMEOUT)
		ctx->timed_out = true;
	report_add(ctx->report, MON_CRITICAL, "%s", err);
	return -1;
}

/* Connection 1: greeting, capabilities, the cleartext login. -1: the server is unusable. */
static int run_cleartext(struct mon_ctx *ctx, const struct mon_probe_ops *ops,
			 struct mon_caps *caps)
{
	struct mon_conn c;
	int rc = -1;

	if (open_conn(ctx, &c, true) < 0)
		return -1;
	if (ops->greeting(ctx, &c, caps) == 0) {
		rc = 0;
		if (ops->capabilities(ctx, &c, caps) == 0)
			ops->cleartext_login(ctx, &c, caps);
		if (!ctx->timed_out)
			ops->quit(ctx, &c);
	}
	conn_close(&c);
	return rc;
}

/* The TLS checks and the login over TLS, on a connection where TLS is up. */
static void run_tls_checks(struct mon_ctx *ctx, const struct mon_probe_ops *ops,
			   struct mon_conn *c)
{
	bool trusted = tlsprobe_evaluate(ctx, c);

	if (ctx->dummy)
		return;		/* said once, at the start */
	if (!trusted) {
		/* The real password goes only to a server that proved who it is. */
		report_add(ctx->report, MON_OK, "%s over TLS not tried: certificate not verified",
			   ops->login_name);
		return;
	}
	ops->tls_login(ctx, c);
}

/*
 * Connection 2: STARTTLS/STLS and everything about TLS. advertised: the
 * capabilities listed it (else they were unknown and this is a try).
 */
static void run_starttls(struct mon_ctx *ctx, const struct mon_probe_ops *ops, bool advertised)
{
	struct mon_caps caps = { 0 };
	struct mon_conn c;
	char what[32], shown[128];
	int rc;

	if (open_conn(ctx, &c, false) < 0)
		return;
	if (ops->greeting(ctx, &c, &caps) < 0)
		goto out;
	snprintf(what, sizeof(what), "%s", ops->starttls_name);
	rc = ops->starttls(ctx, &c, false);
	if (rc < 0) {
		probe_io_failed(ctx, &c, what, rc);
		goto out;
	}
	if (rc == MON_STARTTLS_REFUSED) {
		/* Offered but refused is a broken secure path; never offered is "not offered". */
		probe_quote_answer(c.line, c.line_len, shown, sizeof(shown));
		if (advertised)
			report_add(ctx->report, MON_CRITICAL, "%s refused: '%s'", what, shown);
		else
			report_add(ctx->report, MON_WARNING,
				   "%s not supported ('%s'): there is no way to secure the session",
				   what, shown);
		goto out;
	}
	if (tlsprobe_handshake(ctx, &c, what, MON_CRITICAL, MON_CRITICAL) < 0)
		goto out;
	run_tls_checks(ctx, ops, &c);
	if (!ctx->timed_out)
		ops->quit(ctx, &c);
out:
	conn_close(&c);
}

/* Connection 3 (--injection): STARTTLS with a command in the same packet. */
static void run_injection(struct mon_ctx *ctx, const struct mon_probe_ops *ops)
{
	struct mon_caps caps = { 0 };
	struct mon_conn c;
	char what[48], shown[128];
	int rc;

	if (open_conn(ctx, &c, false) < 0)
		return;
	if (ops->greeting(ctx, &c, &caps) < 0)
		goto out;
	snprintf(what, sizeof(what), "pipelined %s", ops->starttls_name);
	rc = ops->starttls(ctx, &c, true);
	if (rc == MG_IO_EOF) {
		report_add(ctx->report, MON_OK, "connection closed on %s", what);
		goto out;
	}
	if (rc < 0) {
		probe_io_failed(ctx, &c, what, rc);
		goto out;
	}
	if (rc == MON_STARTTLS_REFUSED) {
		/* Refusing to start TLS with unread input is the textbook defence. */
		probe_quote_answer(c.line, c.line_len, shown, sizeof(shown));
		report_add(ctx->report, MON_OK, "%s refused ('%s')", what, shown);
		goto out;
	}
	/* Hanging up is a defence (Dovecot does); any other failure is odd. */
	if (tlsprobe_handshake(ctx, &c, what, MON_WARNING, MON_OK) < 0)
		goto out;
	if (ops->injection_verdict(ctx, &c) == 0 && !ctx->timed_out)
		ops->quit(ctx, &c);
out:
	conn_close(&c);
}

/* -S: TLS from the first byte; only the TLS part is checked. */
static void run_implicit(struct mon_ctx *ctx, const struct mon_probe_ops *ops)
{
	struct mon_caps caps = { 0 };
	struct mon_conn c;

	if (open_conn(ctx, &c, true) < 0)
		return;
	if (tlsprobe_handshake(ctx, &c, "implicit TLS", MON_CRITICAL, MON_CRITICAL) == 0 &&
	    ops->greeting(ctx, &c, &caps) == 0) {
		run_tls_checks(ctx, ops, &c);
		if (!ctx->timed_out)
			ops->quit(ctx, &c);
	}
	conn_close(&c);
}

static int load_credentials(struct mon_ctx *ctx, const struct mon_probe_ops *ops)
{
	char err[512];

	if (ctx->opt->authfile != NULL) {
		if (credfile_read(ctx->opt->authfile, &ctx->cred, err, sizeof(err)) < 0) {
			report_add(ctx->report, MON_UNKNOWN, "credentials file %s", err);
			return -1;
		}
		ctx->dummy = false;
		return 0;
	}
	if (authfile_dummy(&ctx->cred) < 0) {
		report_add(ctx->report, MON_UNKNOWN, "no randomness for the dummy password");
		return -1;
	}
	ctx->dummy = true;
	report_add(ctx->report, MON_OK, "no credentials file (-a): dummy user %s, %s over TLS not "
		   "tested", MON_DUMMY_USER, ops->login_name);
	return 0;
}

enum mon_state plugin_run(const struct mon_options *opt, struct mon_report *report,
			 struct mon_transcript *transcript)
{
	const struct mon_probe_ops *ops =
		opt->protocol == MON_PROTO_POP3 ? &probe_pop3_ops : &probe_imap_ops;
	struct mon_ctx ctx;
	struct mon_caps caps = { 0 };
	char err[256];
	long long budget = (long long)opt->timeout_s * 1000;
	double started_s;

	memset(&ctx, 0, sizeof(ctx));
	ctx.opt = opt;
	ctx.report = report;
	ctx.transcript = transcript;
	ctx.tls_name = opt->sni != NULL ? opt->sni : opt->host;
	ctx.started = mg_now_ms();
	started_s = conn_now();
	ctx.deadline = ctx.started + (budget > 2 * DEADLINE_MARGIN_MS ? budget - DEADLINE_MARGIN_MS
								       : budget / 2);
	report_init(report, opt->warn_days, opt->crit_days);
	snprintf(report->subject, sizeof(report->subject), strchr(opt->host, ':') != NULL ?
		 "%s [%s]:%u%s" : "%s %s:%u%s", ops->name, opt->host, opt->port,
		 opt->implicit_tls ? " (TLS)" : "");
	/* A peer that closes while OpenSSL writes must not kill the plugin silently. */
	signal(SIGPIPE, SIG_IGN);
	arm_hard_limit(report, opt->timeout_s);

	if (load_credentials(&ctx, ops) < 0)
		goto done;
	ctx.tls = tls_probe_new(opt->ca_file, err, sizeof(err));
	if (ctx.tls == NULL) {
		report_add(report, MON_UNKNOWN, "TLS setup: %s", err);
		goto done;
	}
	if (opt->implicit_tls) {
		run_implicit(&ctx, ops);
		goto done;
	}
	if (run_cleartext(&ctx, ops, &caps) < 0 || ctx.timed_out)
		goto done;
	if (caps.known && !caps.starttls)
		goto done;	/* already a WARNING: nothing to secure the session with */
	run_starttls(&ctx, ops, caps.known);
	if (opt->injection && !ctx.timed_out)
		run_injection(&ctx, ops);
done:
	alarm(0);
	credentials_wipe(&ctx.cred);
	tls_probe_free(ctx.tls);
	report->total_time = conn_now() - started_s;
	return report_state(report);
}
