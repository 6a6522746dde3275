/*
 * caps.c - parsing IMAP capability lists and POP3 CAPA lines.
 */
#include <string.h>

#include "caps.h"
#include "imap_token.h"

bool caps_is_password_mech(const char *mech, size_t len)
{
	return imap_word_equals(mech, len, "PLAIN") || imap_word_equals(mech, len, "LOGIN");
}

/* Call fn for every space-separated word of text[0..len). */
static void each_word(const char *text, size_t len, void (*fn)(const char *, size_t, void *),
		      void *arg)
{
	size_t i = 0;

	while (i < len) {
		size_t start;

		while (i < len && text[i] == ' ')
			i++;
		start = i;
		while (i < len && text[i] != ' ')
			i++;
		if (i > start)
			fn(text + start, i - start, arg);
	}
}

static void imap_atom(const char *atom, size_t len, void *arg)
{
	struct mon_caps *caps = arg;

	if (imap_word_equals(atom, len, "STARTTLS"))
		caps->starttls = true;
	else if (imap_word_equals(atom, len, "LOGINDISABLED"))
		caps->logindisabled = true;
	else if (imap_word_equals(atom, len, "LITERAL+"))
		caps->literal_plus = true;
	else if (len > 5 && imap_word_equals(atom, 5, "AUTH=") &&
		 caps_is_password_mech(atom + 5, len - 5))
		caps->password_mech = true;
}

void caps_parse_imap(const char *text, size_t len, struct mon_caps *caps)
{
	const char *end = memchr(text, ']', len);

	if (end != NULL)
		len = (size_t)(end - text);
	caps->known = true;
	each_word(text, len, imap_atom, caps);
}

bool caps_imap_response_code(const char *line, size_t len, struct mon_caps *caps)
{
	static const char code[] = "[CAPABILITY ";
	size_t clen = sizeof(code) - 1;

	for (size_t i = 0; i + clen <= len; i++) {
		if (imap_word_equals(line + i, clen, code)) {
			caps_parse_imap(line + i + clen, len - i - clen, caps);
			return true;
		}
	}
	return false;
}

bool caps_imap_untagged(const char *line, size_t len, struct mon_caps *caps)
{
	static const char prefix[] = "* CAPABILITY";
	size_t plen = sizeof(prefix) - 1;

	if (len < plen || !imap_word_equals(line, plen, prefix) || (len > plen && line[plen] != ' '))
		return false;
	caps_parse_imap(line + plen, len - plen, caps);
	return true;
}

static void sasl_mech(const char *mech, size_t len, void *arg)
{
	struct mon_caps *caps = arg;

	if (caps_is_password_mech(mech, len))
		caps->password_mech = true;
}

void caps_parse_pop3_line(const char *line, size_t len, struct mon_caps *caps)
{
	size_t wlen = 0;

	caps->known = true;
	while (wlen < len && line[wlen] != ' ')
		wlen++;
	if (imap_word_equals(line, wlen, "STLS"))
		caps->starttls = true;
	else if (imap_word_equals(line, wlen, "USER"))
		caps->user = true;
	else if (imap_word_equals(line, wlen, "SASL"))
		each_word(line + wlen, len - wlen, sasl_mech, caps);
}
