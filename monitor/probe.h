/*
 * probe.h - what the check needs from a protocol, as a table of functions
 * (one module per protocol: probe_imap.c, probe_pop3.c), and the state the
 * steps share.
 *
 * Every step returns 0 when the dialogue on this connection can go on, or
 * -1 after it has added a finding saying why not. A timeout also sets
 * ctx->timed_out: the -t budget is spent and no further step runs.
 */
#ifndef MON_PROBE_H
#define MON_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include "caps.h"
#include "classify.h"
#include "conn.h"
#include "credentials.h"
#include "options.h"
#include "report.h"
#include "tls.h"
#include "transcript.h"

struct mon_ctx {
	const struct mon_options *opt;
	struct mon_report *report;
	struct mon_transcript *transcript;
	struct mg_credentials cred;
	bool dummy;			/* cred is the dummy user with a random password */
	struct mg_tls_probe *tls;
	const char *tls_name;		/* --sni, else -H: sent as SNI and checked */
	long long started;		/* ms, mg_now_ms() clock */
	long long deadline;
	bool timed_out;
	unsigned next_tag;		/* IMAP tags CCL1, CCL2, ... */
	char injected_tag[16];		/* IMAP: the tag of the command pipelined with STARTTLS */
};

/* What STARTTLS/STLS got, besides a negative MG_IO_* code (no finding added). */
#define MON_STARTTLS_OK	     0	/* go ahead: start the handshake */
#define MON_STARTTLS_REFUSED 1	/* conn->line holds the refusal */

struct mon_probe_ops {
	const char *name;		/* "IMAP", "POP3" */
	const char *starttls_name;	/* "STARTTLS", "STLS" */
	const char *login_name;		/* "LOGIN", "USER/PASS" */

	/* Read the greeting; IMAP may find capabilities in it. */
	int (*greeting)(struct mon_ctx *ctx, struct mon_conn *c, struct mon_caps *caps);
	/* Fill caps (if the greeting did not) and judge them. */
	int (*capabilities)(struct mon_ctx *ctx, struct mon_conn *c, struct mon_caps *caps);
	/* Log in as a careless client would, and judge the answer. */
	int (*cleartext_login)(struct mon_ctx *ctx, struct mon_conn *c, const struct mon_caps *caps);
	/*
	 * Ask for TLS. With inject, a harmless command follows in the same
	 * write, as in the STARTTLS command-injection attack (CVE-2011-0411).
	 * The caller judges a refusal or failure: after a pipelined STARTTLS
	 * either is a defence, not a fault.
	 */
	int (*starttls)(struct mon_ctx *ctx, struct mon_conn *c, bool inject);
	/* Over TLS, with the real credentials: must succeed. */
	int (*tls_login)(struct mon_ctx *ctx, struct mon_conn *c);
	/* After an injected STARTTLS and the handshake: was the injected command answered? */
	int (*injection_verdict)(struct mon_ctx *ctx, struct mon_conn *c);
	/* Say goodbye, briefly and ignoring failures (the verdicts are in). */
	void (*quit)(struct mon_ctx *ctx, struct mon_conn *c);
};

extern const struct mon_probe_ops probe_imap_ops;
extern const struct mon_probe_ops probe_pop3_ops;

/* ---- helpers shared by the protocol modules (probe.c) ---- */

/* A failed read or write during what: CRITICAL, and ctx->timed_out on a timeout. */
void probe_io_failed(struct mon_ctx *ctx, const struct mon_conn *c, const char *what, int rc);

/* The finding for a classified cleartext login answer. */
void probe_report_login(struct mon_ctx *ctx, const struct mon_probe_ops *ops,
			enum mon_login_class cls, const char *answer, size_t len);

/* An answer for a finding: sanitized and cut to a readable length. */
const char *probe_quote_answer(const char *answer, size_t len, char *buf, size_t buflen);

/* Give a closing exchange at most a short time of what is left. */
void probe_short_deadline(struct mon_conn *c, int max_ms);

#endif
