/*
 * classify.c - response classification tables for IMAP and POP3.
 *
 * IMAP (RFC 3501, RFC 5530 response codes):
 *	tagged OK				accepted	CRITICAL
 *	NO [PRIVACYREQUIRED] ...		policy		OK
 *	NO [AUTHENTICATIONFAILED|AUTHORIZATIONFAILED|EXPIRED|CONTACTADMIN|UNAVAILABLE]
 *						checked		CRITICAL
 *	NO <TLS wording> (no such code)		policy		OK
 *	NO <anything else> ("wrong password")	checked		CRITICAL
 *	BAD after LOGINDISABLED was advertised	policy		OK
 *	BAD <TLS wording>			policy		OK
 *	BAD otherwise, closed, garbage		unexpected	WARNING
 *
 * POP3 (RFC 1939, RFC 2449, RFC 3206 response codes):
 *	USER +OK				continue with PASS
 *	USER -ERR <TLS wording>			policy		OK
 *	USER -ERR [AUTH] ...			checked		CRITICAL
 *	USER -ERR otherwise			unexpected	WARNING
 *	PASS +OK, -ERR [IN-USE], -ERR [LOGIN-DELAY]
 *						accepted	CRITICAL
 *	PASS -ERR <TLS wording>			policy		OK
 *	PASS -ERR otherwise			checked		CRITICAL
 *
 * A response code that says the credentials were looked at wins over any
 * wording; wording decides only where no code does.
 */
#include <string.h>

#include "classify.h"
#include "imap_token.h"
#include "line_word.h"

struct policy_word {
	const char *word;
	bool whole;		/* must also end at a word boundary */
};

static const struct policy_word policy_words[] = {
	{ "starttls", true },
	{ "stls", true },
	{ "tls", true },
	{ "ssl", true },
	{ "plaintext", false },
	{ "cleartext", false },
	{ "clear text", false },
	{ "plain text", false },
	{ "encrypt", false },		/* encrypted, encryption */
	{ "secure", false },		/* secure, secured, non-secure */
	{ "insecure", false },
	{ "unencrypted", false },
	{ "privacy", false },
	{ "logindisabled", true },
	{ "under a layer", false },	/* Cyrus: "Login only available under a layer" */
};

/* RFC 5530 codes that mean the credentials (or the account) were looked at. */
static const char *const checked_codes[] = {
	"AUTHENTICATIONFAILED", "AUTHORIZATIONFAILED", "EXPIRED", "CONTACTADMIN", "UNAVAILABLE",
};

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool classify_policy_wording(const char *text, size_t len)
{
	for (size_t w = 0; w < sizeof(policy_words) / sizeof(policy_words[0]); w++) {
		const char *word = policy_words[w].word;
		size_t wlen = strlen(word);

		for (size_t i = 0; i + wlen <= len; i++) {
			if (i > 0 && is_alnum(text[i - 1]))
				continue;
			if (!imap_word_equals(text + i, wlen, word))
				continue;
			if (policy_words[w].whole && i + wlen < len && is_alnum(text[i + wlen]))
				continue;
			return true;
		}
	}
	return false;
}

enum mon_greeting_class classify_imap_greeting(const char *line, size_t len)
{
	if (len < 2 || line[0] != '*' || line[1] != ' ')
		return MON_GREETING_MALFORMED;
	if (starts_with_word(line + 2, len - 2, "OK", WORD_ANY_CASE))
		return MON_GREETING_OK;
	if (starts_with_word(line + 2, len - 2, "PREAUTH", WORD_ANY_CASE))
		return MON_GREETING_PREAUTH;
	if (starts_with_word(line + 2, len - 2, "BYE", WORD_ANY_CASE))
		return MON_GREETING_REFUSED;
	return MON_GREETING_MALFORMED;
}

enum mon_greeting_class classify_pop3_greeting(const char *line, size_t len)
{
	if (starts_with_word(line, len, "+OK", WORD_ANY_CASE))
		return MON_GREETING_OK;
	if (starts_with_word(line, len, "-ERR", WORD_ANY_CASE))
		return MON_GREETING_REFUSED;
	return MON_GREETING_MALFORMED;
}

bool classify_imap_tagged(const char *line, size_t len, const char *tag, const char **status,
			  size_t *status_len)
{
	size_t tlen = strlen(tag);

	/* Tags are ours and compared exactly (RFC 3501 tags are case-sensitive). */
	if (tlen == 0 || len <= tlen || memcmp(line, tag, tlen) != 0 || line[tlen] != ' ')
		return false;
	*status = line + tlen + 1;
	*status_len = len - tlen - 1;
	return true;
}

bool classify_imap_ok(const char *status, size_t len)
{
	return starts_with_word(status, len, "OK", WORD_ANY_CASE);
}

bool classify_pop3_ok(const char *line, size_t len)
{
	return starts_with_word(line, len, "+OK", WORD_ANY_CASE);
}

/*
 * The response code right after "NO " / "-ERR ": "[CODE" or "[CODE arg]".
 * Returns its name's length (0 when there is none) and points *code at it.
 */
static size_t response_code(const char *text, size_t len, const char **code)
{
	size_t n = 0;

	if (len < 2 || text[0] != '[')
		return 0;
	while (1 + n < len && text[1 + n] != ']' && text[1 + n] != ' ')
		n++;
	*code = text + 1;
	return n;
}

/* text after the status word and its space (or empty). */
static void rest_after_word(const char *text, size_t len, size_t wlen, const char **rest,
			    size_t *restlen)
{
	if (len > wlen) {
		*rest = text + wlen + 1;
		*restlen = len - wlen - 1;
	} else {
		*rest = text + len;
		*restlen = 0;
	}
}

static bool code_is(const char *code, size_t codelen, const char *name)
{
	return imap_word_equals(code, codelen, name);
}

enum mon_login_class classify_imap_login(const char *status, size_t len, bool logindisabled)
{
	const char *rest, *code = NULL;
	size_t restlen, codelen;

	if (starts_with_word(status, len, "OK", WORD_ANY_CASE))
		return MON_LOGIN_ACCEPTED;
	if (starts_with_word(status, len, "NO", WORD_ANY_CASE)) {
		rest_after_word(status, len, 2, &rest, &restlen);
		codelen = response_code(rest, restlen, &code);
		if (codelen > 0 && code_is(code, codelen, "PRIVACYREQUIRED"))
			return MON_LOGIN_POLICY;
		for (size_t i = 0; i < sizeof(checked_codes) / sizeof(checked_codes[0]); i++)
			if (codelen > 0 && code_is(code, codelen, checked_codes[i]))
				return MON_LOGIN_CHECKED;
		if (classify_policy_wording(rest, restlen))
			return MON_LOGIN_POLICY;
		/* A bare "NO Login failed": the server compared the password. */
		return MON_LOGIN_CHECKED;
	}
	if (starts_with_word(status, len, "BAD", WORD_ANY_CASE)) {
		rest_after_word(status, len, 3, &rest, &restlen);
		if (logindisabled || classify_policy_wording(rest, restlen))
			return MON_LOGIN_POLICY;
		return MON_LOGIN_UNEXPECTED;
	}
	return MON_LOGIN_UNEXPECTED;
}

enum mon_login_class classify_imap_closed(const char *bye, size_t len)
{
	if (bye != NULL && classify_policy_wording(bye, len))
		return MON_LOGIN_POLICY;
	return MON_LOGIN_UNEXPECTED;
}

enum mon_login_class classify_pop3_user(const char *line, size_t len)
{
	const char *rest, *code = NULL;
	size_t restlen, codelen;

	if (starts_with_word(line, len, "+OK", WORD_ANY_CASE))
		return MON_LOGIN_USER_OK;
	if (!starts_with_word(line, len, "-ERR", WORD_ANY_CASE))
		return MON_LOGIN_UNEXPECTED;
	rest_after_word(line, len, 4, &rest, &restlen);
	if (classify_policy_wording(rest, restlen))
		return MON_LOGIN_POLICY;
	/* [AUTH] without a TLS reason: it is judging the login itself (RFC 3206). */
	codelen = response_code(rest, restlen, &code);
	if (codelen > 0 && code_is(code, codelen, "AUTH"))
		return MON_LOGIN_CHECKED;
	return MON_LOGIN_UNEXPECTED;
}

enum mon_login_class classify_pop3_pass(const char *line, size_t len)
{
	const char *rest, *code = NULL;
	size_t restlen, codelen;

	if (starts_with_word(line, len, "+OK", WORD_ANY_CASE))
		return MON_LOGIN_ACCEPTED;
	if (!starts_with_word(line, len, "-ERR", WORD_ANY_CASE))
		return MON_LOGIN_UNEXPECTED;
	rest_after_word(line, len, 4, &rest, &restlen);
	codelen = response_code(rest, restlen, &code);
	/* RFC 2449/3206: these come only after the credentials were accepted. */
	if (codelen > 0 && (code_is(code, codelen, "IN-USE") || code_is(code, codelen, "LOGIN-DELAY")))
		return MON_LOGIN_ACCEPTED;
	if (classify_policy_wording(rest, restlen))
		return MON_LOGIN_POLICY;
	return MON_LOGIN_CHECKED;
}

enum mon_state classify_login_state(enum mon_login_class c)
{
	switch (c) {
	case MON_LOGIN_ACCEPTED:
	case MON_LOGIN_CHECKED:
		return MON_CRITICAL;
	case MON_LOGIN_POLICY:
	case MON_LOGIN_USER_OK:
		return MON_OK;
	case MON_LOGIN_UNEXPECTED:
	case MON_LOGIN_CLASS_COUNT:
		break;
	}
	return MON_WARNING;
}

static const char *const login_names[] = {
	[MON_LOGIN_ACCEPTED] = "accepted",
	[MON_LOGIN_CHECKED] = "checked",
	[MON_LOGIN_POLICY] = "policy",
	[MON_LOGIN_USER_OK] = "user-ok",
	[MON_LOGIN_UNEXPECTED] = "unexpected",
};
_Static_assert(sizeof(login_names) / sizeof(login_names[0]) == MON_LOGIN_CLASS_COUNT,
	       "every login class has a name");

const char *classify_login_name(enum mon_login_class c)
{
	return c < MON_LOGIN_CLASS_COUNT ? login_names[c] : "?";
}
