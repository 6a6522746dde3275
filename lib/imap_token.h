/*
 * imap_token.h - the IMAP command tokenizer (RFC 3501 / RFC 9051 syntax).
 *
 * The front end assembles one complete command (the line, plus the bytes of
 * every literal it announced) into a buffer and hands it to
 * imap_command_parse(), which splits it into tag, command name and argument
 * tokens. Nothing here does I/O, allocates, or knows what a command means.
 */
#ifndef MG_IMAP_TOKEN_H
#define MG_IMAP_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAP_MAX_ARGS	 64	/* tokens after the command name */
#define IMAP_MAX_DEPTH	 8	/* nesting of parenthesised lists */

enum imap_token_type {
	IMAP_TOKEN_ATOM,	/* includes NIL, numbers, flags like \Seen */
	IMAP_TOKEN_STRING,	/* quoted string or literal, value decoded */
	IMAP_TOKEN_LIST_BEGIN,	/* "(" */
	IMAP_TOKEN_LIST_END	/* ")" */
};

struct imap_token {
	enum imap_token_type type;
	bool literal;		/* STRING came from a {N} / {N+} literal */
	const char *value;	/* not NUL-terminated; may contain NUL if literal */
	size_t len;
};

struct imap_command {
	const char *tag;	/* NULL when even the tag was unparseable */
	size_t tag_len;
	const char *name;	/* the command atom, as sent (match case-insensitively) */
	size_t name_len;
	struct imap_token args[IMAP_MAX_ARGS];
	size_t nargs;
};

/*
 * Result of looking at the end of one received line (without its CRLF):
 * does the client announce a literal that follows it?
 */
enum imap_literal_result {
	IMAP_LITERAL_NONE,	/* the line completes the command */
	IMAP_LITERAL_SYNC,	/* ends in {N}: client waits for "+ " */
	IMAP_LITERAL_NONSYNC,	/* ends in {N+}: bytes follow at once (LITERAL+) */
	IMAP_LITERAL_INVALID	/* ends in a malformed {…} (no digits, overflow) */
};

/*
 * Inspect the end of line[0..len). For SYNC and NONSYNC, *size is the literal
 * length (at most UINT32_MAX, anything larger is INVALID).
 */
enum imap_literal_result imap_line_literal(const char *line, size_t len, uint64_t *size);

/*
 * Parse a complete command in buf[0..len): the lines joined with their CRLFs,
 * literal bytes in place, without the final CRLF. Quoted strings are unescaped
 * in place, so buf is modified and tokens point into it.
 *
 * Returns 0 on success. On a syntax error returns -1 and sets *error to a
 * short static description; cmd->tag is still set when the tag itself was
 * valid, so the caller can answer "tag BAD" instead of "* BAD".
 *
 * Rules: tag is 1*(ASTRING-CHAR except "+"); single spaces separate tokens;
 * quoted strings allow only \\ and \" escapes and no CR, LF or NUL; atoms
 * contain no NUL, CTL, SP, "(", ")", "{", "%", "*", DQUOTE or "\" except a
 * leading "\" (flags); at most IMAP_MAX_ARGS tokens and IMAP_MAX_DEPTH nesting;
 * lists must balance; a literal's announced size must match the bytes present.
 */
int imap_command_parse(char *buf, size_t len, struct imap_command *cmd, const char **error);

/* Case-insensitive compare of a token or name with a NUL-terminated word. */
bool imap_word_equals(const char *s, size_t len, const char *word);

/*
 * Write s[0..len) as an IMAP string for sending to a server: a quoted string
 * when possible, a literal "{N}\r\n..." (or "{N+}\r\n..." when nonsync is
 * true) when it contains CR, LF, NUL, or 8-bit bytes, or when its quoted
 * form (escapes double '"' and '\\') would not fit but the literal does.
 * Returns the number of bytes written, or 0 when neither fits in
 * out[0..outsize).
 * *needs_sync_literal is set when a synchronising literal was used.
 */
size_t imap_quote(const char *s, size_t len, bool nonsync, char *out, size_t outsize,
		  bool *needs_sync_literal);

#endif
