/*
 * config_internal.h - what the parts of configuration loading share:
 * config.c (libconfuse and the struct), config_ctx.c (errors and
 * bookkeeping of a load), config_scan.c (reading the file and the
 * pre-scan), config_warn.c (insecure-but-valid choices).
 * Not for use outside those files and their tests. libconfuse stays out of
 * it: config.c is the only file that includes confuse.h.
 */
#ifndef MG_CONFIG_INTERNAL_H
#define MG_CONFIG_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include "config.h"

/* A configuration is a page or two; anything this big is a mistake. */
#define CONFIG_MAX_SIZE		(1024 * 1024)
/* Room for a value quoted in an error message. */
#define QUOTE_MAX		64

/* Where a top-level section ("listen imap {") starts, found by the scanner. */
struct section_mark {
	const char *name;	/* points into the file buffer, not terminated */
	size_t name_len;
	int line;
};

/* An option set in the file, with its line: config.c's (it names a libconfuse option). */
struct opt_mark;

struct load_ctx {
	const char *path;
	char *err;
	size_t errlen;
	int failed;		/* the first error is kept; later ones are echoes */

	struct section_mark *sections;
	size_t n_sections, cap_sections;
	struct opt_mark *opts;
	size_t n_opts, cap_opts;
};


/* Record the first error of a load as "PATH:LINE: message" (line 0: none). */
void config_error(struct load_ctx *ctx, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void config_verror(struct load_ctx *ctx, int line, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* Report "out of memory"; returns -1. */
int config_out_of_memory(struct load_ctx *ctx);

/* A value from the file, made printable and short for a message. */
const char *config_quote(char buf[QUOTE_MAX], const char *s);

/* Grow a bookkeeping array (doubling). Returns 0 or -1. */
int config_grow(void **array, size_t *cap, size_t elem);

/* Remember that a top-level section starts at line. Returns 0 or -1 (reported). */
int config_mark_section(struct load_ctx *ctx, const char *name, size_t len, int line);

/* How many top-level sections called name the scanner saw. */
size_t config_count_sections(const struct load_ctx *ctx, const char *name);

/* Line of the index-th top-level section called name, 0 if there is none. */
int config_section_line(const struct load_ctx *ctx, const char *name, size_t index);

/* Read ctx->path after checking what was opened. Returns the bytes, or NULL. */
char *config_read_file(struct load_ctx *ctx, size_t *lenp);

/*
 * Copy in[0..len) to out with comments blanked (newlines kept), rejecting what
 * libconfuse would misread, and mark where each top-level section starts.
 * Returns 0 or -1 (reported).
 */
int config_scan(struct load_ctx *ctx, const char *in, size_t len, char *out);

#endif
