/*
 * config_ctx.c - the bookkeeping of one configuration load, shared by the
 * scanner (config_scan.c), libconfuse's side (config.c) and the warnings
 * (config_warn.c): the first error as "FILE:LINE: message", values quoted
 * for messages, and where each top-level section starts. It knows nothing
 * of libconfuse, so the scanner does not depend on the file that does.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "log.h"

/* ---- error messages ---------------------------------------------------- */

void config_verror(struct load_ctx *ctx, int line, const char *fmt, va_list ap)
{
	char msg[512];
	int n;

	if (ctx->failed)
		return;
	ctx->failed = 1;
	if (ctx->err == NULL || ctx->errlen == 0)
		return;

	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		snprintf(msg, sizeof(msg), "invalid configuration");
	if (line > 0)
		n = snprintf(ctx->err, ctx->errlen, "%s:%d: %s", ctx->path, line, msg);
	else
		n = snprintf(ctx->err, ctx->errlen, "%s: %s", ctx->path, msg);
	/* A cut message is still worth showing, but must say it was cut. */
	if (n >= 0 && (size_t)n >= ctx->errlen && ctx->errlen >= 4)
		memcpy(ctx->err + ctx->errlen - 4, "...", 4);
}

void config_error(struct load_ctx *ctx, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	config_verror(ctx, line, fmt, ap);
	va_end(ap);
}

/* Values in messages come from the file: keep them printable and short. */
const char *config_quote(char buf[QUOTE_MAX], const char *s)
{
	if (s == NULL)
		s = "";
	return log_sanitize(buf, QUOTE_MAX, s, strlen(s));
}

int config_out_of_memory(struct load_ctx *ctx)
{
	config_error(ctx, 0, "out of memory");
	return -1;
}

/* ---- bookkeeping ------------------------------------------------------- */

int config_grow(void **array, size_t *cap, size_t elem)
{
	size_t ncap = *cap != 0 ? *cap * 2 : 16;
	void *p;

	if (ncap > SIZE_MAX / elem)
		return -1;
	p = realloc(*array, ncap * elem);
	if (p == NULL)
		return -1;
	*array = p;
	*cap = ncap;
	return 0;
}

int config_mark_section(struct load_ctx *ctx, const char *name, size_t len, int line)
{
	if (ctx->n_sections == ctx->cap_sections &&
	    config_grow((void **)&ctx->sections, &ctx->cap_sections, sizeof(*ctx->sections)) < 0)
		return config_out_of_memory(ctx);
	ctx->sections[ctx->n_sections++] = (struct section_mark){ name, len, line };
	return 0;
}

static int is_section(const struct section_mark *m, const char *name)
{
	return m->name_len == strlen(name) && memcmp(m->name, name, m->name_len) == 0;
}

size_t config_count_sections(const struct load_ctx *ctx, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < ctx->n_sections; i++)
		n += is_section(&ctx->sections[i], name);
	return n;
}

int config_section_line(const struct load_ctx *ctx, const char *name, size_t index)
{
	size_t i;

	for (i = 0; i < ctx->n_sections; i++) {
		if (!is_section(&ctx->sections[i], name))
			continue;
		if (index-- == 0)
			return ctx->sections[i].line;
	}
	return 0;
}
