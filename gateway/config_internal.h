/*
 * config_internal.h - what the parts of configuration loading share:
 * config.c (libconfuse and the struct), config_ctx.c (errors and
 * bookkeeping of a load), config_options.c (the typed options: numbers,
 * words and booleans), config_scan.c (reading the file and the
 * pre-scan), config_warn.c (insecure-but-valid choices).
 * Not for use outside those files and their tests. libconfuse stays out of
 * it: config.c is the only file that includes confuse.h.
 */
#ifndef MG_CONFIG_INTERNAL_H
#define MG_CONFIG_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
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

/* ---- the typed options (config_options.c) ------------------------------ */

/*
 * The C type of the field an option fills. The table's entry macros check
 * each field's type at compile time, so an entry cannot write a size_t
 * into an unsigned or an int into a bool.
 */
enum config_type {
	CONFIG_UNSIGNED,	/* unsigned: a decimal number in min..max */
	CONFIG_SIZE,		/* size_t: a decimal number in min..max */
	CONFIG_ENUM,		/* an int-sized enum: one of the words */
	CONFIG_BOOL		/* bool: one of the words, or libconfuse's true/false */
};

/* A word an option accepts, and the value it stands for. */
struct config_word {
	const char *word;
	long value;
};

/*
 * One option that is not a string: this entry alone makes its libconfuse
 * schema (config.c), checks what the file says, and fills the struct.
 */
struct config_option {
	const char *name;		/* as written in the file */
	enum config_type type;
	bool no_default;		/* absent from the file: the field is left alone
					   (zero) and the caller decides */
	long def;			/* the value when the file says nothing */
	unsigned long min, max;		/* numbers: the accepted range */
	bool duration;			/* seconds, also written 90s, 10m, 1h, 2d */
	/* The words accepted (numbers: besides digits, e.g. "auto"), or none. */
	const struct config_word *words;
	size_t n_words;
	size_t offset;			/* of the field in the section's struct */
};

/* The typed options of one section, all filling the same struct. */
struct config_table {
	const char *section;		/* libconfuse's name: "root" is the top level */
	const struct config_option *options;
	size_t n_options;
};

extern const struct config_table config_tables[];
extern const size_t config_n_tables;

/* The table of a section by its libconfuse name, or NULL. */
const struct config_table *config_table(const char *section);

/* An option of a table (which may be NULL) by name, or NULL. */
const struct config_option *config_option_find(const struct config_table *table, const char *name);
/* The word the file says for value of option name in section; "unknown" when none. */
const char *config_word_of(const char *section, const char *name, long value);

/* True when libconfuse parses the option as a boolean itself (true/false/yes/no/on/off). */
bool config_option_is_plain_bool(const struct config_option *o);

/*
 * Parse what the file says for o: one of its words, else (numbers) plain
 * decimal in min..max. Returns 0 and the value in *out, or -1 with the
 * error "LINE: ..." recorded in ctx.
 */
int config_option_parse(struct load_ctx *ctx, int line, const struct config_option *o,
			const char *value, long *out);

/* Store a parsed value into the field o describes in base, its table's struct. */
void config_option_store(const struct config_option *o, void *base, long value);

#endif
