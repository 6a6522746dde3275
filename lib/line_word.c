/*
 * line_word.c - the start-of-line word match of line_word.h.
 */
#include <string.h>

#include "imap_token.h"
#include "line_word.h"

bool starts_with_word(const char *line, size_t len, const char *word, enum word_case rule)
{
	size_t wlen = strlen(word);

	/* An empty word names nothing (and line may be NULL when len is 0). */
	if (wlen == 0 || len < wlen)
		return false;
	if (rule == WORD_ANY_CASE ? !imap_word_equals(line, wlen, word)
				  : memcmp(line, word, wlen) != 0)
		return false;
	return len == wlen || line[wlen] == ' ';
}
