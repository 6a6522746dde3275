/*
 * transcript.c - the bounded, sanitized, password-free -v transcript.
 */
#include <stdarg.h>
#include <string.h>

#include "log.h"
#include "transcript.h"

void transcript_init(struct mon_transcript *t, bool enabled)
{
	t->enabled = enabled;
	t->n = 0;
	t->dropped = 0;
}

size_t mon_mask_secret(const char *text, size_t len, const char *secret, size_t secretlen,
		       char *out, size_t outsize)
{
	size_t masklen = strlen(MON_MASK), o = 0, i = 0;

	if (outsize == 0)
		return 0;
	while (i < len && o + 1 < outsize) {
		if (secretlen > 0 && len - i >= secretlen && memcmp(text + i, secret, secretlen) == 0) {
			size_t n = masklen < outsize - 1 - o ? masklen : outsize - 1 - o;

			memcpy(out + o, MON_MASK, n);
			o += n;
			i += secretlen;
			continue;
		}
		/*
		 * A trailing partial match of the secret is not a secret shown:
		 * text is the whole line, so a prefix that ends there is all the
		 * line holds.
		 */
		out[o++] = text[i++];
	}
	out[o] = '\0';
	return o;
}

static char *next_line(struct mon_transcript *t)
{
	if (!t->enabled)
		return NULL;
	if (t->n >= MON_TRANSCRIPT_LINES) {
		t->dropped++;
		return NULL;
	}
	return t->lines[t->n++];
}

void transcript_add_masked(struct mon_transcript *t, const char *prefix, const char *text,
			   size_t len, const char *secret, size_t secretlen)
{
	char masked[MON_TRANSCRIPT_WIDTH * 2];
	size_t plen = strlen(prefix), mlen;
	char *line = next_line(t);

	if (line == NULL)
		return;
	/* Mask first, sanitize second: sanitizing could hide a match. */
	mlen = mon_mask_secret(text, len, secret, secretlen, masked, sizeof(masked));
	if (plen >= MON_TRANSCRIPT_WIDTH)
		plen = MON_TRANSCRIPT_WIDTH - 1;
	memcpy(line, prefix, plen);
	log_sanitize(line + plen, MON_TRANSCRIPT_WIDTH - plen, masked, mlen);
}

void transcript_add(struct mon_transcript *t, const char *prefix, const char *text, size_t len)
{
	transcript_add_masked(t, prefix, text, len, NULL, 0);
}

void transcript_note(struct mon_transcript *t, const char *fmt, ...)
{
	char text[MON_TRANSCRIPT_WIDTH];
	va_list ap;
	int n;

	if (!t->enabled)
		return;
	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	transcript_add(t, "-- ", text, strlen(text));
}

void transcript_print(const struct mon_transcript *t, FILE *out)
{
	for (size_t i = 0; i < t->n; i++)
		fprintf(out, "%s\n", t->lines[i]);
	if (t->dropped > 0)
		fprintf(out, "-- (%zu more transcript lines not shown)\n", t->dropped);
}
