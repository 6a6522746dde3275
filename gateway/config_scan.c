/*
 * config_scan.c - reading mailgate.conf and the pre-scan that makes
 * libconfuse safe to use (see config.c's opening comment for why).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_internal.h"

/* ---- the scanner (see the file comment) --------------------------------- */

enum top_state {
	TOP_NAME,		/* expecting an option or section name */
	TOP_AFTER_NAME,		/* "=", "+=", "{" or a section title */
	TOP_AFTER_TITLE,	/* "{" */
	TOP_VALUE,		/* a value or a list's "{" */
	TOP_LOST		/* libconfuse will report the syntax error */
};

struct scanner {
	struct load_ctx *ctx;
	int depth;		/* braces open inside a top-level section or list */
	enum top_state top;
	const char *name;
	size_t name_len;
	int name_line;
};

#define TOK_STRING 0

/*
 * Follow libconfuse's grammar at the top level only, to learn where each
 * section starts: NAME = VALUE | NAME = { ... } | NAME [TITLE] { ... }.
 */
static int scan_token(struct scanner *sc, int punct, const char *text, size_t len, int line)
{
	if (sc->depth > 0) {
		if (punct == '{')
			sc->depth++;
		else if (punct == '}')
			sc->depth--;
		return 0;
	}
	switch (sc->top) {
	case TOP_NAME:
		if (punct != TOK_STRING) {
			sc->top = TOP_LOST;
			break;
		}
		sc->name = text;
		sc->name_len = len;
		sc->name_line = line;
		sc->top = TOP_AFTER_NAME;
		break;
	case TOP_AFTER_NAME:
		if (punct == '=' || punct == '+') {
			sc->top = TOP_VALUE;
		} else if (punct == TOK_STRING) {
			sc->top = TOP_AFTER_TITLE;
		} else if (punct == '{') {
			sc->depth = 1;
			sc->top = TOP_NAME;
			return config_mark_section(sc->ctx, sc->name, sc->name_len, sc->name_line);
		} else {
			sc->top = TOP_LOST;
		}
		break;
	case TOP_AFTER_TITLE:
		if (punct != '{') {
			sc->top = TOP_LOST;
			break;
		}
		sc->depth = 1;
		sc->top = TOP_NAME;
		return config_mark_section(sc->ctx, sc->name, sc->name_len, sc->name_line);
	case TOP_VALUE:
		if (punct == '{')
			sc->depth = 1;		/* a list */
		else if (punct != TOK_STRING)
			sc->top = TOP_LOST;
		if (sc->top != TOP_LOST)
			sc->top = TOP_NAME;
		break;
	case TOP_LOST:
		break;
	}
	return 0;
}

static int env_error(struct load_ctx *ctx, int line)
{
	config_error(ctx, line, "'${' is not allowed: environment variables are not "
		  "expanded (write a literal '${' in single quotes)");
	return -1;
}

/* Characters that end an unquoted word in libconfuse's lexer. */
static int ends_word(char c)
{
	return strchr(" \t\r\n#\"'(){}*+,=", c) != NULL;
}

/*
 * Check in[0..len) and write into out (len + 1 bytes) the same text with
 * every comment replaced by spaces. Returns 0, or -1 with the error set.
 * Indexing is plain array access on in/out with i < len checked everywhere.
 */
int config_scan(struct load_ctx *ctx, const char *in, size_t len, char *out)
{
	struct scanner sc = { .ctx = ctx, .top = TOP_NAME };
	size_t i;
	int line = 1;

	/* Control bytes have no business in a configuration file. */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '\n')
			line++;
		else if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
			config_error(ctx, line, "control character 0x%02x in the file", c);
			return -1;
		}
	}

	memcpy(out, in, len);
	out[len] = '\0';
	line = 1;
	i = 0;
	while (i < len) {
		char c = in[i];
		size_t start;
		int start_line;

		if (c == '\n') {
			line++;
			i++;
		} else if (c == ' ' || c == '\t' || c == '\r') {
			i++;
		} else if (c == '#' || (c == '/' && i + 1 < len && in[i + 1] == '/')) {
			/* A comment to the end of the line: blank it. */
			while (i < len && in[i] != '\n')
				out[i++] = ' ';
		} else if (c == '/' && i + 1 < len && in[i + 1] == '*') {
			start_line = line;
			out[i] = out[i + 1] = ' ';
			i += 2;
			for (;;) {
				if (i >= len) {
					config_error(ctx, start_line, "unterminated /* comment");
					return -1;
				}
				if (in[i] == '*' && i + 1 < len && in[i + 1] == '/') {
					out[i] = out[i + 1] = ' ';
					i += 2;
					break;
				}
				if (in[i] == '\n')
					line++;
				else
					out[i] = ' ';
				i++;
			}
		} else if (c == '"' || c == '\'') {
			start = ++i;
			start_line = line;
			for (;;) {
				if (i >= len) {
					config_error(ctx, start_line, "unterminated string");
					return -1;
				}
				if (in[i] == c)
					break;
				if (in[i] == '\\' && i + 1 < len) {
					/* An escape pair never ends the string and "\$" is literal. */
					if (in[i + 1] == '\n')
						line++;
					i += 2;
					continue;
				}
				if (c == '"' && in[i] == '$' && i + 1 < len && in[i + 1] == '{')
					return env_error(ctx, line);
				/*
				 * libconfuse lets a string run over lines, so a
				 * missing quote would surface far away; no value
				 * here has a newline in it.
				 */
				if (in[i] == '\n') {
					config_error(ctx, start_line, "unterminated string "
						  "(a string cannot span lines)");
					return -1;
				}
				i++;
			}
			if (scan_token(&sc, TOK_STRING, in + start, i - start, start_line) < 0)
				return -1;
			i++;	/* the closing quote */
		} else if (strchr("{}()=,", c) != NULL) {
			if (scan_token(&sc, c, NULL, 0, line) < 0)
				return -1;
			i++;
		} else if (c == '+' && i + 1 < len && in[i + 1] == '=') {
			if (scan_token(&sc, '+', NULL, 0, line) < 0)
				return -1;
			i += 2;
		} else if (c == '+' || c == '*') {
			/* libconfuse would drop these without a word. */
			config_error(ctx, line, "unexpected character '%c'", c);
			return -1;
		} else {
			start = i;
			while (i < len && !ends_word(in[i])) {
				if (in[i] == '$' && i + 1 < len && in[i + 1] == '{')
					return env_error(ctx, line);
				i++;
			}
			if (scan_token(&sc, TOK_STRING, in + start, i - start, line) < 0)
				return -1;
		}
	}
	return 0;
}

/* ---- reading the file ----------------------------------------------------- */

/*
 * Open once and check what was opened (fstat, not stat: no window for a
 * swap between the check and the read). Returns the bytes, or NULL.
 */
char *config_read_file(struct load_ctx *ctx, size_t *lenp)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap;
	int fd;

	fd = open(ctx->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		config_error(ctx, 0, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		config_error(ctx, 0, "cannot stat: %s", strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		config_error(ctx, 0, "is not a regular file");
		goto fail;
	}
	/* Whoever can write the file can choose the backend of every login. */
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		config_error(ctx, 0, "is writable by group or others; refusing");
		goto fail;
	}
	if (st.st_size > CONFIG_MAX_SIZE) {
		config_error(ctx, 0, "is larger than %d bytes", CONFIG_MAX_SIZE);
		goto fail;
	}

	/* st_size is a hint; the loop still bounds what it reads. */
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap);
	if (buf == NULL) {
		config_out_of_memory(ctx);
		goto fail;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *p;

			if (cap > CONFIG_MAX_SIZE) {
				config_error(ctx, 0, "is larger than %d bytes", CONFIG_MAX_SIZE);
				goto fail;
			}
			p = realloc(buf, cap * 2);
			if (p == NULL) {
				config_out_of_memory(ctx);
				goto fail;
			}
			buf = p;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			config_error(ctx, 0, "cannot read: %s", strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > CONFIG_MAX_SIZE) {
		config_error(ctx, 0, "is larger than %d bytes", CONFIG_MAX_SIZE);
		goto fail;
	}
	close(fd);
	*lenp = len;
	return buf;

fail:
	free(buf);
	close(fd);
	return NULL;
}
