/*
 * line_word.h - does a protocol line open with a given word ("OK", "+OK",
 * "* OK", "PREAUTH"), alone or followed by a space? One function for the
 * backend logins (gateway/) and for check_cleartext_login (monitor/).
 *
 * The case rule is part of every call, because the protocols differ:
 * IMAP's status words are atoms and case-insensitive (RFC 9051 section 4),
 * matched with plain ASCII folding (imap_word_equals(): no locale rules);
 * POP3's status indicators are upper case (RFC 1939 section 3, "+OK" and
 * "-ERR"): the gateway matches its backend's exactly, while
 * check_cleartext_login takes any case, since a server that answers "+ok"
 * to a cleartext password has still accepted it. "OKAY" never matches "OK".
 */
#ifndef MG_LINE_WORD_H
#define MG_LINE_WORD_H

#include <stdbool.h>
#include <stddef.h>

enum word_case {
	WORD_EXACT,		/* byte for byte */
	WORD_ANY_CASE		/* ASCII letters folded (IMAP) */
};

/* line[0..len) is word under rule, then either the end or a space. */
bool starts_with_word(const char *line, size_t len, const char *word, enum word_case rule);

#endif
