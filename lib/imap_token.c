/*
 * imap_token.c - split one complete IMAP command into tag, name and tokens.
 *
 * Before login this tokenizer is what stands between an untrusted client and
 * everything else, so it accepts a deliberately narrow subset of RFC 9051:
 * single spaces, no CR/LF/NUL outside literals, 7-bit atoms, bounded nesting
 * and token count. Anything it does not recognise is a syntax error, never a
 * guess, so a half-understood command is never acted on or forwarded.
 *
 * The buffer is parsed in place: tokens point into it, and quoted strings are
 * unescaped where they lie (the result is never longer than the source).
 * Positions are size_t indices into buf; the few places that turn an index
 * into a pointer say so.
 */
#include <stdio.h>
#include <string.h>

#include "imap_token.h"

/* RFC 9051: number is at most 2^32-1; a literal can never be larger. */
#define LITERAL_SIZE_MAX UINT32_MAX

static bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/*
 * ASTRING-CHAR: a 7-bit ATOM-CHAR, or "]". Arguments such as LOGIN's user
 * name are astrings, so "]" has to be accepted there. 8-bit bytes are only
 * legal inside quoted strings and literals.
 */
static bool is_astring_char(unsigned char c)
{
	if (c >= 0x80 || is_ctl(c))
		return false;
	switch (c) {
	case ' ':
	case '(':
	case ')':
	case '{':
	case '%':
	case '*':
	case '"':
	case '\\':
		return false;
	default:
		return true;
	}
}

/* A command name is a plain atom: no resp-specials. */
static bool is_atom_char(unsigned char c)
{
	return is_astring_char(c) && c != ']';
}

/* "+" would make a tag indistinguishable from a continuation request. */
static bool is_tag_char(unsigned char c)
{
	return is_astring_char(c) && c != '+';
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/*
 * s[0..len) holds only digits. Bounding the value here also guarantees that
 * later "pos + size" arithmetic on the buffer cannot overflow.
 */
static int parse_literal_size(const char *s, size_t len, uint64_t *size)
{
	uint64_t n = 0;
	size_t i;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		n = n * 10 + (uint64_t)(s[i] - '0');
		if (n > LITERAL_SIZE_MAX)
			return -1;
	}
	*size = n;
	return 0;
}

enum imap_literal_result imap_line_literal(const char *line, size_t len, uint64_t *size)
{
	size_t lbrace, digits_end, rbrace;
	uint64_t n;

	/*
	 * line must be what arrived after the last literal's bytes (or the
	 * first line): scanning back into literal data would misread it.
	 */
	*size = 0;
	if (len == 0 || line[len - 1] != '}')
		return IMAP_LITERAL_NONE;
	rbrace = len - 1;

	/*
	 * Walk back over the last token looking for its "{". An atom may end
	 * in "}" (it is an ATOM-CHAR), so reaching a token boundary first
	 * means there is no literal here.
	 */
	lbrace = rbrace;
	for (;;) {
		unsigned char c;

		if (lbrace == 0)
			return IMAP_LITERAL_NONE;
		c = (unsigned char)line[lbrace - 1];
		if (c == '{')
			break;
		if (c == ' ' || c == '(' || c == ')' || c == '"' || is_ctl(c))
			return IMAP_LITERAL_NONE;
		lbrace--;
	}
	lbrace--;		/* index of the "{" */

	/* A literal starts a token: "x{5}" or a line that is only "{5}" is junk. */
	if (lbrace == 0 || (line[lbrace - 1] != ' ' && line[lbrace - 1] != '('))
		return IMAP_LITERAL_INVALID;

	digits_end = lbrace + 1;
	while (digits_end < rbrace && is_digit((unsigned char)line[digits_end]))
		digits_end++;
	if (parse_literal_size(line + lbrace + 1, digits_end - lbrace - 1, &n) < 0)
		return IMAP_LITERAL_INVALID;
	if (digits_end == rbrace) {
		*size = n;
		return IMAP_LITERAL_SYNC;
	}
	if (digits_end + 1 == rbrace && line[digits_end] == '+') {
		*size = n;
		return IMAP_LITERAL_NONSYNC;
	}
	return IMAP_LITERAL_INVALID;
}

struct parser {
	char *buf;
	size_t len;
	size_t pos;
	struct imap_command *cmd;
	const char *error;
};

static int fail(struct parser *ps, const char *why)
{
	ps->error = why;
	return -1;
}

/* Record one token; value is an index into buf, turned into a pointer here. */
static int emit(struct parser *ps, enum imap_token_type type, bool literal, size_t start,
		size_t len)
{
	struct imap_token *tok;

	if (ps->cmd->nargs == IMAP_MAX_ARGS)
		return fail(ps, "too many arguments");
	tok = &ps->cmd->args[ps->cmd->nargs++];
	tok->type = type;
	tok->literal = literal;
	tok->value = ps->buf + start;
	tok->len = len;
	return 0;
}

/* An atom, or a flag: one leading "\" followed by at least one atom char. */
static int parse_atom(struct parser *ps)
{
	size_t start = ps->pos;

	if (ps->buf[ps->pos] == '\\')
		ps->pos++;
	while (ps->pos < ps->len && is_astring_char((unsigned char)ps->buf[ps->pos]))
		ps->pos++;
	if (ps->pos == start || (ps->buf[start] == '\\' && ps->pos == start + 1))
		return fail(ps, "invalid character");
	return emit(ps, IMAP_TOKEN_ATOM, false, start, ps->pos - start);
}

/*
 * A quoted string, unescaped in place: w trails ps->pos, and both index the
 * same buffer, so the decoded value overwrites its own source.
 */
static int parse_quoted(struct parser *ps)
{
	size_t start = ps->pos + 1;
	size_t w = start;

	ps->pos++;		/* opening DQUOTE */
	for (;;) {
		unsigned char c;

		if (ps->pos == ps->len)
			return fail(ps, "unterminated quoted string");
		c = (unsigned char)ps->buf[ps->pos++];
		if (c == '"')
			break;
		if (c == '\0' || c == '\r' || c == '\n')
			return fail(ps, "CR, LF or NUL in quoted string");
		if (c == '\\') {
			if (ps->pos == ps->len)
				return fail(ps, "unterminated quoted string");
			c = (unsigned char)ps->buf[ps->pos++];
			if (c != '\\' && c != '"')
				return fail(ps, "bad escape in quoted string");
		}
		ps->buf[w++] = (char)c;
	}
	return emit(ps, IMAP_TOKEN_STRING, false, start, w - start);
}

/* "{N}" or "{N+}", CRLF, then exactly N bytes that are taken as they are. */
static int parse_literal(struct parser *ps)
{
	size_t digits = ps->pos + 1;
	size_t p = digits;
	uint64_t size;

	while (p < ps->len && is_digit((unsigned char)ps->buf[p]))
		p++;
	if (parse_literal_size(ps->buf + digits, p - digits, &size) < 0)
		return fail(ps, "bad literal size");
	if (p < ps->len && ps->buf[p] == '+')
		p++;
	if (p == ps->len || ps->buf[p] != '}')
		return fail(ps, "bad literal");
	p++;
	if (ps->len - p < 2 || ps->buf[p] != '\r' || ps->buf[p + 1] != '\n')
		return fail(ps, "literal not followed by CRLF");
	p += 2;
	if (size > ps->len - p)
		return fail(ps, "literal shorter than announced");
	ps->pos = p + (size_t)size;
	return emit(ps, IMAP_TOKEN_STRING, true, p, (size_t)size);
}

/*
 * Where the previous step left us: what may come next. After a token only a
 * space, ")" or the end; after a space or "(" a new token (after "(" also
 * ")"). This is what rejects double, leading and trailing spaces.
 */
enum expect {
	EXPECT_SEPARATOR,
	EXPECT_TOKEN,
	EXPECT_TOKEN_OR_CLOSE
};

static int parse_arguments(struct parser *ps)
{
	enum expect expect = EXPECT_SEPARATOR;
	size_t depth = 0;

	while (ps->pos < ps->len) {
		char c = ps->buf[ps->pos];

		if (expect == EXPECT_SEPARATOR) {
			if (c == ' ') {
				ps->pos++;
				expect = EXPECT_TOKEN;
				continue;
			}
			if (c != ')')
				return fail(ps, "expected space");
			if (depth == 0)
				return fail(ps, "unbalanced )");
		}
		if (c == ')') {
			if (expect == EXPECT_TOKEN)
				return fail(ps, "space before )");
			if (emit(ps, IMAP_TOKEN_LIST_END, false, ps->pos, 1) < 0)
				return -1;
			ps->pos++;
			depth--;
			expect = EXPECT_SEPARATOR;
			continue;
		}
		if (c == ' ')
			return fail(ps, expect == EXPECT_TOKEN ? "double space" : "space after (");

		if (c == '(') {
			if (depth == IMAP_MAX_DEPTH)
				return fail(ps, "lists nested too deeply");
			if (emit(ps, IMAP_TOKEN_LIST_BEGIN, false, ps->pos, 1) < 0)
				return -1;
			ps->pos++;
			depth++;
			expect = EXPECT_TOKEN_OR_CLOSE;
			continue;
		}
		if (c == '"') {
			if (parse_quoted(ps) < 0)
				return -1;
		} else if (c == '{') {
			if (parse_literal(ps) < 0)
				return -1;
		} else if (parse_atom(ps) < 0) {
			return -1;
		}
		expect = EXPECT_SEPARATOR;
	}
	if (expect == EXPECT_TOKEN)
		return fail(ps, "trailing space");
	if (depth != 0)
		return fail(ps, "unclosed list");
	return 0;
}

int imap_command_parse(char *buf, size_t len, struct imap_command *cmd, const char **error)
{
	struct parser ps = { .buf = buf, .len = len, .pos = 0, .cmd = cmd, .error = NULL };
	size_t start;

	cmd->tag = NULL;
	cmd->tag_len = 0;
	cmd->name = NULL;
	cmd->name_len = 0;
	cmd->nargs = 0;
	*error = NULL;

	while (ps.pos < len && is_tag_char((unsigned char)buf[ps.pos]))
		ps.pos++;
	if (ps.pos == 0 || (ps.pos < len && buf[ps.pos] != ' ')) {
		*error = len == 0 ? "empty command" : "invalid tag";
		return -1;
	}
	/* From here on the tag is good: the caller can answer "tag BAD". */
	cmd->tag = buf;
	cmd->tag_len = ps.pos;

	if (ps.pos < len)
		ps.pos++;
	start = ps.pos;
	while (ps.pos < len && is_atom_char((unsigned char)buf[ps.pos]))
		ps.pos++;
	if (ps.pos == start) {
		fail(&ps, start == len ? "missing command name" : "invalid command name");
		goto bad;
	}
	cmd->name = buf + start;	/* pointer into buf, at the index found above */
	cmd->name_len = ps.pos - start;

	if (parse_arguments(&ps) < 0)
		goto bad;
	return 0;

bad:
	/* Keep only the tag, so nothing half-parsed can be acted on. */
	cmd->name = NULL;
	cmd->name_len = 0;
	cmd->nargs = 0;
	*error = ps.error;
	return -1;
}

bool imap_word_equals(const char *s, size_t len, const char *word)
{
	size_t i;

	if (s == NULL)
		return false;
	/* Plain ASCII folding: locale rules (Turkish i, Kelvin sign) must not apply. */
	for (i = 0; i < len; i++) {
		unsigned char a = (unsigned char)s[i];
		unsigned char b = (unsigned char)word[i];

		if (b == '\0')
			return false;
		if (a >= 'A' && a <= 'Z')
			a = (unsigned char)(a - 'A' + 'a');
		if (b >= 'A' && b <= 'Z')
			b = (unsigned char)(b - 'A' + 'a');
		if (a != b)
			return false;
	}
	return word[len] == '\0';
}

/* Printable 7-bit only: anything else goes as a literal, which is always exact. */
static bool is_quotable(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c > 0x7e)
			return false;
	}
	return true;
}

static size_t quote_string(const char *s, size_t len, char *out, size_t outsize)
{
	size_t need = len + 2;
	size_t i, o = 0;

	if (len > outsize)
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] == '"' || s[i] == '\\')
			need++;
	if (need > outsize)
		return 0;
	out[o++] = '"';
	for (i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			out[o++] = '\\';
		out[o++] = s[i];
	}
	out[o++] = '"';
	return o;
}

static size_t quote_literal(const char *s, size_t len, bool nonsync, char *out, size_t outsize)
{
	char head[32];
	int n;

	if (len > LITERAL_SIZE_MAX)
		return 0;
	n = snprintf(head, sizeof(head), "{%zu%s}\r\n", len, nonsync ? "+" : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		return 0;
	if ((size_t)n > outsize || len > outsize - (size_t)n)
		return 0;
	memcpy(out, head, (size_t)n);
	/* Raw pointer arithmetic: the value goes right after the header. */
	memcpy(out + n, s, len);
	return (size_t)n + len;
}

size_t imap_quote(const char *s, size_t len, bool nonsync, char *out, size_t outsize,
		  bool *needs_sync_literal)
{
	size_t n;

	*needs_sync_literal = false;
	/*
	 * Quoted when it can be and fits: a password of '"' and '\\' doubles
	 * when quoted, and the literal that carries it anyway is barely longer
	 * than the value.
	 */
	if (is_quotable(s, len) && (n = quote_string(s, len, out, outsize)) > 0)
		return n;
	n = quote_literal(s, len, nonsync, out, outsize);
	if (n > 0 && !nonsync)
		*needs_sync_literal = true;
	return n;
}
