/*
 * transcript.h - the protocol transcript that -v prints after the status
 * line: what the plugin sent ("C: "), what the server said ("S: ") and what
 * happened in between ("-- "). Bounded in lines and width, made printable,
 * and never holding a password: callers pass the password's wire form and
 * every occurrence becomes "******".
 */
#ifndef MON_TRANSCRIPT_H
#define MON_TRANSCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define MON_TRANSCRIPT_LINES 160
#define MON_TRANSCRIPT_WIDTH 200
#define MON_MASK	     "******"

struct mon_transcript {
	bool enabled;			/* off: every call is a no-op */
	char lines[MON_TRANSCRIPT_LINES][MON_TRANSCRIPT_WIDTH];
	size_t n;
	size_t dropped;
};

void transcript_init(struct mon_transcript *t, bool enabled);

/* Record prefix + text[0..len) (untrusted: sanitized, cut to the width). */
void transcript_add(struct mon_transcript *t, const char *prefix, const char *text, size_t len);

/* The same with every occurrence of secret[0..secretlen) replaced by MON_MASK. */
void transcript_add_masked(struct mon_transcript *t, const char *prefix, const char *text,
			   size_t len, const char *secret, size_t secretlen);

void transcript_note(struct mon_transcript *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void transcript_print(const struct mon_transcript *t, FILE *out);

/*
 * Copy text[0..len) into out (NUL-terminated, cut to outsize - 1) with every
 * occurrence of secret replaced by MON_MASK. A cut never shows any byte of
 * a secret: bytes are copied only once it is known they start no match.
 * Returns the length written. An empty secret masks nothing.
 */
size_t mon_mask_secret(const char *text, size_t len, const char *secret, size_t secretlen,
		       char *out, size_t outsize);

#endif
