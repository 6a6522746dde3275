/*
 * probe.c - the parts of the probes that do not depend on the protocol:
 * wording of findings about I/O failures and cleartext login answers.
 */
#include <stdio.h>
#include <string.h>

#include "authfile.h"
#include "clock.h"
#include "log.h"
#include "probe.h"

#define ANSWER_SHOWN 100	/* characters of a server answer quoted in a finding */

const char *probe_quote_answer(const char *answer, size_t len, char *buf, size_t buflen)
{
	size_t cap = buflen < ANSWER_SHOWN + 1 ? buflen : ANSWER_SHOWN + 1;

	return log_sanitize(buf, cap, answer, len);
}

void probe_io_failed(struct mon_ctx *ctx, const struct mon_conn *c, const char *what, int rc)
{
	char why[96];

	if (rc == MG_IO_TIMEOUT)
		ctx->timed_out = true;
	report_add(ctx->report, MON_CRITICAL, "%s: %s", what, conn_io_text(c, rc, why, sizeof(why)));
}

void probe_report_login(struct mon_ctx *ctx, const struct mon_probe_ops *ops,
			enum mon_login_class cls, const char *answer, size_t len)
{
	char shown[ANSWER_SHOWN + 1];
	const char *user = ctx->dummy ? "dummy user " MON_DUMMY_USER : ctx->cred.user;

	probe_quote_answer(answer, len, shown, sizeof(shown));
	switch (cls) {
	case MON_LOGIN_ACCEPTED:
		report_add(ctx->report, MON_CRITICAL, "cleartext %s succeeded for %s (%s)",
			   ops->login_name, user, shown);
		break;
	case MON_LOGIN_CHECKED:
		report_add(ctx->report, MON_CRITICAL,
			   "cleartext credentials were processed: %s for %s answered '%s'",
			   ops->login_name, user, shown);
		break;
	case MON_LOGIN_POLICY:
		report_add(ctx->report, MON_OK, "cleartext %s refused by policy (%s)",
			   ops->login_name, shown);
		break;
	case MON_LOGIN_USER_OK:
	case MON_LOGIN_UNEXPECTED:
	case MON_LOGIN_CLASS_COUNT:
		report_add(ctx->report, MON_WARNING, "unexpected answer to cleartext %s: '%s'",
			   ops->login_name, shown);
		break;
	}
}

void probe_short_deadline(struct mon_conn *c, int max_ms)
{
	long long until = mg_now_ms() + max_ms;

	if (until < c->deadline)
		c->deadline = until;
}
