/*
 * config.c - read mailgate.conf into a plain struct mg_config.
 *
 * This is the only file that knows libconfuse. It fails closed: any doubt
 * about the file (unknown key or word, a number out of range, a duplicate, a
 * reference to a backend that does not exist, a file others may write) is an
 * error "FILE:LINE: what is wrong", never a silent default.
 *
 * The file is not handed to libconfuse as it is. We read it ourselves (one
 * open, so the permission check and the parse see the same file) and run a
 * small scanner over it first, because libconfuse 3.3 has three traits we
 * cannot switch off:
 *   - it expands ${VAR} (and ${VAR:-default}) from the environment in
 *     unquoted and double-quoted strings; the scanner rejects "${" there
 *     (single quotes and "\$" stay literal, as in libconfuse itself);
 *   - its line counter runs ahead after every comment (three lines per "#"
 *     line), and it refuses comments inside lists; the scanner blanks
 *     comments out (keeping the newlines), so libconfuse's line numbers are
 *     right and comments work everywhere;
 *   - it reports a section's line as the line of its closing brace; the
 *     scanner records where each top-level section starts.
 * The scanner mirrors libconfuse's lexer (strings, escapes, comment starts)
 * and rejects what that lexer would silently swallow (a stray '*' or '+',
 * an unterminated string or comment, control characters) or would turn into
 * a confusing message far from the mistake (a string spanning lines).
 *
 * libconfuse's callbacks carry no user pointer and its lexer is global, so
 * a load is not reentrant: load_ctx below points at the one load in flight.
 *
 * Every option that is not a string (numbers, words, booleans) is an entry
 * of the tables in config_options.c: new_parser() makes its libconfuse
 * option from the entry, parse_typed() checks the file's value against it,
 * and fill_typed() stores it into the struct. Strings and lists are written
 * here, with the checks that tie options together.
 *
 * Reading the file and the scanner are in config_scan.c, the error messages
 * and the section bookkeeping they share with this file in config_ctx.c, the
 * warnings about insecure choices in config_warn.c.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <confuse.h>

#include "config_internal.h"
#include "credfile.h"
#include "dnsname.h"
#include "engine_tls_profile.h"
#include "log.h"
#include "session_usermap.h"

/* The load in flight, for libconfuse's callbacks (see the file comment). */
static struct load_ctx *load_ctx;

/* ---- error messages and bookkeeping for the callbacks ------------------ */

/* libconfuse's error callback: cfg->line is the line being read. */
__attribute__((format(printf, 2, 0)))
static void on_cfg_error(cfg_t *cfg, const char *fmt, va_list ap)
{
	if (load_ctx != NULL)
		config_verror(load_ctx, cfg != NULL ? cfg->line : 0, fmt, ap);
}

/* An option set in the file, with its line (duplicate check, messages). */
struct opt_mark {
	const cfg_opt_t *opt;
	int line;
};

/* Line where opt was set in the file, 0 if it was not. */
static int opt_line(const struct load_ctx *ctx, const cfg_opt_t *opt)
{
	size_t i;

	for (i = 0; i < ctx->n_opts; i++)
		if (ctx->opts[i].opt == opt)
			return ctx->opts[i].line;
	return 0;
}

static int remember_opt(struct load_ctx *ctx, const cfg_opt_t *opt, int line)
{
	if (ctx->n_opts == ctx->cap_opts &&
	    config_grow((void **)&ctx->opts, &ctx->cap_opts, sizeof(*ctx->opts)) < 0)
		return config_out_of_memory(ctx);
	ctx->opts[ctx->n_opts++] = (struct opt_mark){ opt, line };
	return 0;
}

/* ---- value callbacks ----------------------------------------------------- */

/*
 * Every number, word and boolean of the file that libconfuse does not
 * parse itself: the table entry (config_options.c) the option was made from
 * says what it accepts. cfg->name is the section's ("root" at the top).
 * The entry is always found, as new_parser() sets this callback only on
 * options it made from an entry; were it not, the load would still fail.
 */
static int parse_typed(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const struct config_option *o = config_option_find(config_table(cfg->name), opt->name);
	long v;

	if (o == NULL || config_option_parse(load_ctx, cfg->line, o, value, &v) < 0)
		return -1;
	*(long *)result = v;
	return 0;
}

/*
 * Called by libconfuse after each scalar is set: a key given twice would
 * otherwise silently keep the last value, and an empty string is never a
 * meaningful path, name or address here.
 */
static int check_scalar(cfg_t *cfg, cfg_opt_t *opt)
{
	int first = opt_line(load_ctx, opt);

	if (first > 0) {
		config_error(load_ctx, cfg->line, "%s is set twice (first on line %d)",
			  opt->name, first);
		return -1;
	}
	if (opt->type == CFGT_STR) {
		const char *s = cfg_opt_getnstr(opt, 0);

		if (s == NULL || s[0] == '\0') {
			config_error(load_ctx, cfg->line, "%s must not be empty", opt->name);
			return -1;
		}
	}
	return remember_opt(load_ctx, opt, cfg->line);
}

/* Parse an IP literal; returns AF_INET, AF_INET6 or 0. */
static int parse_ip(const char *s, unsigned char addr[16])
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, s, addr) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, addr) == 1)
		return AF_INET6;
	return 0;
}

/* Listen addresses are literals: a name could resolve to anything. */
static int check_address(cfg_t *cfg, cfg_opt_t *opt)
{
	unsigned n = cfg_opt_size(opt);
	unsigned char addr[16];
	char q[QUOTE_MAX];
	const char *s;

	if (n == 0)
		return 0;	/* an empty list is reported with the listener */
	/* Called after each element and once at "}": the newest is the last. */
	s = cfg_opt_getnstr(opt, n - 1);
	if (s == NULL || parse_ip(s, addr) == 0) {
		config_error(load_ctx, cfg->line, "address '%s' is not an IPv4 or IPv6 address",
			  config_quote(q, s));
		return -1;
	}
	if (opt_line(load_ctx, opt) == 0)
		return remember_opt(load_ctx, opt, cfg->line);
	return 0;
}

/* Where a list was first set, for its messages (its elements are checked later). */
static int remember_list_line(cfg_t *cfg, cfg_opt_t *opt)
{
	if (opt_line(load_ctx, opt) == 0)
		return remember_opt(load_ctx, opt, cfg->line);
	return 0;
}

static void local_name_error(struct load_ctx *ctx, int line, const char *set, const char *text)
{
	char q[QUOTE_MAX], q2[QUOTE_MAX];

	config_error(ctx, line, "client '%s': local_names: '%s' is not a host name (letters, "
		     "digits, '-' and dots; \"*.\" for one label)", config_quote(q, set),
		     config_quote(q2, text));
}

/*
 * Each name of a client set's local_names when it is read, so an error
 * names its own line; the list's first line is kept for the set's checks.
 */
static int check_local_name(cfg_t *cfg, cfg_opt_t *opt)
{
	unsigned n = cfg_opt_size(opt);
	const char *s = n > 0 ? cfg_opt_getnstr(opt, n - 1) : NULL;
	char norm[DNS_NAME_MAX + 1];
	bool wildcard;

	/* Called after each element and once at "}": the newest is the last. */
	if (n > 0 && (s == NULL ||
		      dns_name_normalize(s, strlen(s), norm, DNS_NAME_WILDCARD, &wildcard) == 0)) {
		local_name_error(load_ctx, cfg->line, cfg_title(cfg), s);
		return -1;
	}
	return remember_list_line(cfg, opt);
}

/* The tls section is not repeatable; libconfuse would merge two of them. */
static int check_tls_section(cfg_t *cfg, cfg_opt_t *opt)
{
	if (opt_line(load_ctx, opt) > 0) {
		int line = config_section_line(load_ctx, "tls", 1);

		config_error(load_ctx, line > 0 ? line : cfg->line,
			  "tls section given twice (first on line %d)",
			  config_section_line(load_ctx, "tls", 0));
		return -1;
	}
	return remember_opt(load_ctx, opt, config_section_line(load_ctx, "tls", 0));
}

static void install_validators(cfg_opt_t *opts)
{
	cfg_opt_t *o;

	for (o = opts; o->name != NULL; o++) {
		if (o->type == CFGT_SEC) {
			install_validators(o->subopts);
			if (strcmp(o->name, "tls") == 0)
				o->validcb = check_tls_section;
		} else if (strcmp(o->name, "address") == 0) {
			o->validcb = check_address;
		} else if (strcmp(o->name, "local_names") == 0) {
			o->validcb = check_local_name;
		} else if (strcmp(o->name, "ticket_key_file") == 0) {
			o->validcb = remember_list_line;
		} else if ((o->flags & CFGF_LIST) == 0) {
			o->validcb = check_scalar;
		}
	}
}

/* ---- building the struct ------------------------------------------------- */

/*
 * Copy the typed options of a parsed section into base, the struct its
 * table describes. The values were checked as they were read.
 */
static void fill_typed(cfg_t *sec, void *base)
{
	const struct config_table *t = config_table(sec->name);

	for (size_t i = 0; t != NULL && i < t->n_options; i++) {
		const struct config_option *o = &t->options[i];
		long v;

		if (cfg_size(sec, o->name) == 0)
			continue;	/* no default and not in the file: the caller's */
		if (config_option_is_plain_bool(o))
			v = cfg_getbool(sec, o->name) == cfg_true;
		else
			v = cfg_getint(sec, o->name);
		config_option_store(o, base, v);
	}
}

/*
 * Section names end up in key=value log lines (listener=imaps): keep them
 * to one plain token.
 */
static int check_name(struct load_ctx *ctx, const char *kind, const char *name, int line)
{
	size_t len = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			    "0123456789_.-");
	char q[QUOTE_MAX];

	if (len == 0 || name[len] != '\0' || len > 64) {
		config_error(ctx, line, "%s name '%s' must be 1 to 64 letters, digits, "
			  "'_', '-' or '.'", kind, config_quote(q, name));
		return -1;
	}
	return 0;
}

static int copy_str(struct load_ctx *ctx, char **dst, const char *src)
{
	*dst = NULL;
	if (src == NULL)
		return 0;
	*dst = strdup(src);
	if (*dst == NULL)
		return config_out_of_memory(ctx);
	return 0;
}

/* An option's value, or NULL when the file does not set it. */
static const char *opt_str(cfg_t *sec, const char *name)
{
	return cfg_size(sec, name) > 0 ? cfg_getstr(sec, name) : NULL;
}

/*
 * Line of the index-th section "name". Taken from the scanner when it saw
 * exactly as many as libconfuse did (always, unless a section name was
 * written in quotes); else libconfuse's own, the closing brace.
 */
static int sec_line(struct load_ctx *ctx, cfg_t *root, const char *name,
		    unsigned index, cfg_t *sec)
{
	if (config_count_sections(ctx, name) == cfg_size(root, name))
		return config_section_line(ctx, name, index);
	return sec->line;
}

/*
 * The master user's credentials (Dovecot's master-user scheme). Whoever
 * reads them can open every mailbox, so the file must be closed to others.
 * The whole file is checked here, so a bad one fails at start-up, with -t
 * and on reload; but only the user name is kept. The password is wiped at
 * once: session children are forked from the process that holds this
 * configuration, and the PAM auth process reads the file itself when a
 * login that PAM accepted needs it.
 */
static int load_master_user(struct load_ctx *ctx, struct mg_backend_config *b)
{
	struct mg_credentials cred;
	char err[512], q[QUOTE_MAX];
	int rc = 0;

	if (b->master_user_file == NULL) {
		config_error(ctx, b->line, "backend '%s': backend_login = master needs "
			  "master_user_file", config_quote(q, b->name));
		return -1;
	}
	if (strlen(b->master_user_file) > MG_MASTER_USER_FILE_MAX) {
		config_error(ctx, b->line, "backend '%s': master_user_file path longer than %d "
			  "bytes", config_quote(q, b->name), MG_MASTER_USER_FILE_MAX);
		return -1;
	}
	if (credfile_read(b->master_user_file, &cred, err, sizeof(err)) < 0) {
		config_error(ctx, b->line, "backend '%s': master_user_file: %s", config_quote(q, b->name), err);
		return -1;
	}
	b->master_user = strndup(cred.user, cred.user_len);
	if (b->master_user == NULL)
		rc = config_out_of_memory(ctx);
	credentials_wipe(&cred);
	return rc;
}

/*
 * The settings a tls_profile section and the tls section share, checked
 * with OpenSSL's own parsers: a cipher string that selects nothing, an
 * unknown suite or group fails the load at its line, not an engine later.
 */
static int build_profile(struct load_ctx *ctx, cfg_t *sec, const char *kind,
			 struct mg_tls_profile *p)
{
	const char *option = NULL;
	char why[256], q[QUOTE_MAX];
	int line;

	if (copy_str(ctx, &p->ciphers, opt_str(sec, "ciphers")) < 0 ||
	    copy_str(ctx, &p->ciphersuites, opt_str(sec, "ciphersuites")) < 0 ||
	    copy_str(ctx, &p->groups, opt_str(sec, "groups")) < 0)
		return -1;
	if (tls_profile_check(p, &option, why, sizeof(why)) == 0)
		return 0;
	line = option != NULL ? opt_line(ctx, cfg_getopt(sec, option)) : 0;
	if (p->name != NULL)
		config_error(ctx, line > 0 ? line : p->line, "%s '%s': %s", kind,
			     config_quote(q, p->name), why);
	else
		config_error(ctx, line > 0 ? line : p->line, "%s: %s", kind, why);
	return -1;
}

static int build_tls_profiles(struct load_ctx *ctx, cfg_t *root, struct mg_config *c)
{
	unsigned n = cfg_size(root, "tls_profile");

	if (n == 0)
		return 0;
	c->tls_profiles = calloc(n, sizeof(*c->tls_profiles));
	if (c->tls_profiles == NULL)
		return config_out_of_memory(ctx);
	c->n_tls_profiles = n;
	for (unsigned i = 0; i < n; i++) {
		cfg_t *sec = cfg_getnsec(root, "tls_profile", i);
		struct mg_tls_profile *p = &c->tls_profiles[i];

		p->line = sec_line(ctx, root, "tls_profile", i, sec);
		if (check_name(ctx, "tls_profile", cfg_title(sec), p->line) < 0 ||
		    copy_str(ctx, &p->name, cfg_title(sec)) < 0)
			return -1;
		fill_typed(sec, p);
		if (build_profile(ctx, sec, "tls_profile", p) < 0)
			return -1;
	}
	return 0;
}

/*
 * The tls_profile a listener or backend section names, or NULL when it
 * names none. Fails (reported) on a name no tls_profile section has.
 */
static int find_profile(struct load_ctx *ctx, const struct mg_config *c, cfg_t *sec,
			const char *kind, const char *name, int line,
			const struct mg_tls_profile **out)
{
	const char *want = opt_str(sec, "tls_profile");
	char q[QUOTE_MAX], q2[QUOTE_MAX];

	*out = NULL;
	if (want == NULL)
		return 0;
	for (size_t i = 0; i < c->n_tls_profiles; i++) {
		if (strcmp(c->tls_profiles[i].name, want) == 0) {
			*out = &c->tls_profiles[i];
			return 0;
		}
	}
	if (opt_line(ctx, cfg_getopt(sec, "tls_profile")) > 0)
		line = opt_line(ctx, cfg_getopt(sec, "tls_profile"));
	config_error(ctx, line, "%s '%s': no tls_profile section is called '%s'", kind,
		     config_quote(q, name), config_quote(q2, want));
	return -1;
}

static int build_backends(struct load_ctx *ctx, cfg_t *root, struct mg_config *c)
{
	unsigned i, n = cfg_size(root, "backend"), n_master = 0;
	char q[QUOTE_MAX];

	if (n == 0) {
		config_error(ctx, 0, "no backend section: at least one is required");
		return -1;
	}
	c->backends = calloc(n, sizeof(*c->backends));
	if (c->backends == NULL)
		return config_out_of_memory(ctx);
	c->n_backends = n;

	for (i = 0; i < n; i++) {
		cfg_t *sec = cfg_getnsec(root, "backend", i);
		struct mg_backend_config *b = &c->backends[i];

		b->line = sec_line(ctx, root, "backend", i, sec);
		fill_typed(sec, b);
		if (check_name(ctx, "backend", cfg_title(sec), b->line) < 0 ||
		    copy_str(ctx, &b->name, cfg_title(sec)) < 0 ||
		    copy_str(ctx, &b->host, opt_str(sec, "host")) < 0 ||
		    copy_str(ctx, &b->ca_file, opt_str(sec, "ca_file")) < 0 ||
		    copy_str(ctx, &b->verify_name, opt_str(sec, "verify_name")) < 0)
			return -1;
		if (b->host == NULL) {
			config_error(ctx, b->line, "backend '%s': host is required",
				  config_quote(q, b->name));
			return -1;
		}
		if (find_profile(ctx, c, sec, "backend", b->name, b->line, &b->tls_profile) < 0)
			return -1;
		if (b->tls_profile != NULL && b->tls == MG_BACKEND_TLS_NONE) {
			config_error(ctx, opt_line(ctx, cfg_getopt(sec, "tls_profile")),
				     "backend '%s': tls_profile needs tls = starttls or implicit",
				     config_quote(q, b->name));
			return -1;
		}
		if (copy_str(ctx, &b->master_user_file, opt_str(sec, "master_user_file")) < 0)
			return -1;
		if (b->login == MG_BACKEND_LOGIN_MASTER && ++n_master > MG_MASTER_BACKENDS_MAX) {
			config_error(ctx, b->line, "backend '%s': more than %d backends with "
				  "backend_login = master", config_quote(q, b->name),
				  MG_MASTER_BACKENDS_MAX);
			return -1;
		}
		if (b->login == MG_BACKEND_LOGIN_MASTER && load_master_user(ctx, b) < 0)
			return -1;
		/* Implicit TLS has its own well-known ports (RFC 8314). */
		/* Ports start at 1: 0 is "not in the file". */
		if (b->imap_port == 0)
			b->imap_port = b->tls == MG_BACKEND_TLS_IMPLICIT ? 993 : 143;
		if (b->pop3_port == 0)
			b->pop3_port = b->tls == MG_BACKEND_TLS_IMPLICIT ? 995 : 110;
	}
	return 0;
}

static const struct mg_backend_config *find_backend(const struct mg_config *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n_backends; i++)
		if (strcmp(c->backends[i].name, name) == 0)
			return &c->backends[i];
	return NULL;
}

static int build_default_backend(struct load_ctx *ctx, cfg_t *root, struct mg_config *c)
{
	const char *name = opt_str(root, "default_backend");
	char q[QUOTE_MAX];

	if (name == NULL) {
		if (c->n_backends == 1) {
			c->default_backend = &c->backends[0];
			return 0;
		}
		config_error(ctx, 0, "default_backend is required when there are %zu backends",
			  c->n_backends);
		return -1;
	}
	c->default_backend = find_backend(c, name);
	if (c->default_backend == NULL) {
		config_error(ctx, opt_line(ctx, cfg_getopt(root, "default_backend")),
			  "default_backend: no backend section is called '%s'", config_quote(q, name));
		return -1;
	}
	return 0;
}

/* A list of CIDR networks (option name of section kind/name, at line). */
static int build_networks(struct load_ctx *ctx, cfg_t *sec, const char *option,
			  const char *kind, const char *name, int line,
			  struct mg_cidr **out, size_t *count)
{
	unsigned i, n = cfg_size(sec, option);
	char q[QUOTE_MAX], q2[QUOTE_MAX];

	*out = NULL;
	*count = 0;
	if (n == 0)
		return 0;
	*out = calloc(n, sizeof(**out));
	if (*out == NULL)
		return config_out_of_memory(ctx);
	*count = n;
	for (i = 0; i < n; i++) {
		const char *text = cfg_getnstr(sec, option, i);
		const char *error = NULL;

		if (text == NULL || cidr_parse(text, &(*out)[i], &error) < 0) {
			config_error(ctx, line, "%s '%s': %s: '%s' is not a network: %s", kind,
				  config_quote(q, name), option, config_quote(q2, text),
				  error != NULL ? error : "empty");
			return -1;
		}
	}
	return 0;
}

/*
 * A certificate directory is read by engines started after the daemon has
 * changed to "/", so a relative path would mean something else there than
 * to mailgated -t.
 */
static int check_certificate_dir(struct load_ctx *ctx, cfg_t *sec, const char *dir, int *line)
{
	*line = opt_line(ctx, cfg_getopt(sec, "certificate_dir"));
	if (dir != NULL && dir[0] != '/') {
		char q[QUOTE_MAX];

		config_error(ctx, *line, "certificate_dir '%s' must be an absolute path",
			     config_quote(q, dir));
		return -1;
	}
	return 0;
}

/*
 * Session ticket key files: absolute paths (read again on every reload,
 * after the daemon has changed to "/"), at most as many as a key set
 * holds. Their contents are the master's to read (master_tickets.c), so
 * that mailgated -t and the daemon judge them with the same code.
 */
static int build_ticket_key_files(struct load_ctx *ctx, cfg_t *sec, struct mg_tls_config *t)
{
	unsigned n = cfg_size(sec, "ticket_key_file");
	char q[QUOTE_MAX];

	t->ticket_key_file_line = opt_line(ctx, cfg_getopt(sec, "ticket_key_file"));
	if (n == 0)
		return 0;
	if (n > MG_TICKET_KEY_FILES_MAX) {
		config_error(ctx, t->ticket_key_file_line, "ticket_key_file: at most %d files",
			     MG_TICKET_KEY_FILES_MAX);
		return -1;
	}
	t->ticket_key_files = calloc(n, sizeof(*t->ticket_key_files));
	if (t->ticket_key_files == NULL)
		return config_out_of_memory(ctx);
	for (unsigned i = 0; i < n; i++) {
		const char *path = cfg_getnstr(sec, "ticket_key_file", i);

		if (path == NULL || path[0] != '/') {
			config_error(ctx, t->ticket_key_file_line,
				     "ticket_key_file '%s' must be an absolute path", config_quote(q, path));
			return -1;
		}
		if (copy_str(ctx, &t->ticket_key_files[i], path) < 0)
			return -1;
		t->n_ticket_key_files = i + 1;
	}
	return 0;
}

static int build_tls(struct load_ctx *ctx, cfg_t *root, struct mg_config *c)
{
	cfg_t *sec = cfg_getsec(root, "tls");
	struct mg_tls_config *t = &c->tls;

	t->line = config_section_line(ctx, "tls", 0);
	t->profile.line = t->line;
	fill_typed(sec, t);
	if (copy_str(ctx, &t->certificate, opt_str(sec, "certificate")) < 0 ||
	    copy_str(ctx, &t->key, opt_str(sec, "key")) < 0 ||
	    copy_str(ctx, &t->ocsp_file, opt_str(sec, "ocsp_file")) < 0 ||
	    copy_str(ctx, &t->certificate_dir, opt_str(sec, "certificate_dir")) < 0 ||
	    copy_str(ctx, &t->last_good_dir, cfg_getstr(sec, "last_good_dir")) < 0 ||
	    build_profile(ctx, sec, "tls", &t->profile) < 0)
		return -1;
	if (t->last_good_dir != NULL && t->last_good_dir[0] != '/') {
		char q[QUOTE_MAX];

		/* Engines run after the daemon changed to "/", as for certificate_dir. */
		config_error(ctx, opt_line(ctx, cfg_getopt(sec, "last_good_dir")),
			     "last_good_dir '%s' must be an absolute path",
			     config_quote(q, t->last_good_dir));
		return -1;
	}

	/*
	 * The default pair goes together; it may be left out only when every
	 * listener names its own (checked with each listener).
	 */
	if ((t->certificate == NULL) != (t->key == NULL)) {
		config_error(ctx, t->line, "tls: %s is required",
			     t->certificate == NULL ? "certificate" : "key");
		return -1;
	}
	if (build_ticket_key_files(ctx, sec, t) < 0)
		return -1;
	if (t->ocsp_file != NULL && t->certificate == NULL) {
		config_error(ctx, opt_line(ctx, cfg_getopt(sec, "ocsp_file")),
			     "tls: ocsp_file needs the certificate it is for");
		return -1;
	}
	return check_certificate_dir(ctx, sec, t->certificate_dir, &t->certificate_dir_line);
}

/*
 * What a listener serves: its own certificate and key, else the tls
 * section's; its own certificate_dir, else the tls section's.
 */
static int build_listener_certs(struct load_ctx *ctx, cfg_t *sec, const struct mg_tls_config *t,
				struct mg_listener_config *l)
{
	const char *cert = opt_str(sec, "certificate"), *key = opt_str(sec, "key");
	const char *dir = opt_str(sec, "certificate_dir"), *ocsp = opt_str(sec, "ocsp_file");
	char q[QUOTE_MAX];

	if ((cert == NULL) != (key == NULL)) {
		config_error(ctx, l->line, "listen '%s': %s is required with %s",
			     config_quote(q, l->name), cert == NULL ? "certificate" : "key",
			     cert == NULL ? "key" : "certificate");
		return -1;
	}
	/* A response is for one certificate: the listener's own, next to it. */
	if (ocsp != NULL && cert == NULL) {
		config_error(ctx, opt_line(ctx, cfg_getopt(sec, "ocsp_file")),
			     "listen '%s': ocsp_file needs the listener's own certificate",
			     config_quote(q, l->name));
		return -1;
	}
	if (cert == NULL && t->certificate == NULL) {
		/* Every listener needs a default pair: a client may send no name. */
		if (t->line > 0)
			config_error(ctx, t->line, "tls: certificate is required (listen '%s' names "
				     "none of its own)", config_quote(q, l->name));
		else
			config_error(ctx, 0, "no tls section: a certificate and a key are required "
				     "for the listeners (listen '%s' names none of its own)",
				     config_quote(q, l->name));
		return -1;
	}
	if (check_certificate_dir(ctx, sec, dir, &l->certificate_dir_line) < 0)
		return -1;
	if (dir == NULL) {
		dir = t->certificate_dir;
		l->certificate_dir_line = t->certificate_dir_line;
	}
	return copy_str(ctx, &l->certificate, cert != NULL ? cert : t->certificate) < 0 ||
	       copy_str(ctx, &l->key, key != NULL ? key : t->key) < 0 ||
	       copy_str(ctx, &l->ocsp_file, cert != NULL ? ocsp : t->ocsp_file) < 0 ||
	       copy_str(ctx, &l->certificate_dir, dir) < 0 ? -1 : 0;
}

static int build_listener(struct load_ctx *ctx, cfg_t *sec, struct mg_config *c,
			  struct mg_listener_config *l)
{
	static const char *const default_addresses[] = { "0.0.0.0", "::" };
	cfg_opt_t *addr_opt = cfg_getopt(sec, "address");
	unsigned i, n = cfg_size(sec, "address");
	const char *backend = opt_str(sec, "backend");
	char q[QUOTE_MAX], q2[QUOTE_MAX];

	if (check_name(ctx, "listen", cfg_title(sec), l->line) < 0 ||
	    copy_str(ctx, &l->name, cfg_title(sec)) < 0)
		return -1;
	if (cfg_size(sec, "protocol") == 0) {
		config_error(ctx, l->line, "listen '%s': protocol is required (imap or pop3)",
			  config_quote(q, l->name));
		return -1;
	}
	if (cfg_size(sec, "port") == 0) {
		config_error(ctx, l->line, "listen '%s': port is required", config_quote(q, l->name));
		return -1;
	}
	fill_typed(sec, l);

	if (n == 0 && addr_opt != NULL && (addr_opt->flags & CFGF_MODIFIED) != 0) {
		config_error(ctx, l->line, "listen '%s': the address list is empty",
			  config_quote(q, l->name));
		return -1;
	}
	l->n_addresses = n > 0 ? n : 2;
	l->addresses = calloc(l->n_addresses, sizeof(*l->addresses));
	if (l->addresses == NULL)
		return config_out_of_memory(ctx);
	for (i = 0; i < l->n_addresses; i++) {
		const char *a = n > 0 ? cfg_getnstr(sec, "address", i) : default_addresses[i];

		if (copy_str(ctx, &l->addresses[i], a) < 0)
			return -1;
	}

	if (backend != NULL) {
		l->backend = find_backend(c, backend);
		if (l->backend == NULL) {
			config_error(ctx, l->line, "listen '%s': no backend section is called '%s'",
				  config_quote(q, l->name), config_quote(q2, backend));
			return -1;
		}
	}
	if (build_listener_certs(ctx, sec, &c->tls, l) < 0 ||
	    find_profile(ctx, c, sec, "listen", l->name, l->line, &l->tls_profile) < 0)
		return -1;
	if (l->tls_profile == NULL)
		l->tls_profile = &c->tls.profile;
	return build_networks(ctx, sec, "proxy_networks", "listen", l->name, l->line,
			      &l->proxy_networks, &l->n_proxy_networks);
}

/*
 * A client set's local_names: host names (any case, a final dot ignored) or
 * "*.domain" for exactly one label, kept lower-case for the route's match.
 */
static int build_local_names(struct load_ctx *ctx, cfg_t *sec, struct mg_client_set_config *set)
{
	cfg_opt_t *opt = cfg_getopt(sec, "local_names");
	unsigned n = cfg_size(sec, "local_names");
	int line = opt_line(ctx, opt) > 0 ? opt_line(ctx, opt) : set->line;
	char q[QUOTE_MAX];

	if (n == 0) {
		if (opt != NULL && (opt->flags & CFGF_MODIFIED) != 0) {
			config_error(ctx, line, "client '%s': the local_names list is empty",
				     config_quote(q, set->name));
			return -1;
		}
		return 0;
	}
	set->local_names = calloc(n, sizeof(*set->local_names));
	if (set->local_names == NULL)
		return config_out_of_memory(ctx);
	set->n_local_names = n;
	for (unsigned i = 0; i < n; i++) {
		const char *text = cfg_getnstr(sec, "local_names", i);
		char norm[DNS_NAME_MAX + 3];
		bool wildcard;

		/* check_local_name() saw each; this keeps the struct safe on its own. */
		if (text == NULL ||
		    dns_name_normalize(text, strlen(text), norm + 2, DNS_NAME_WILDCARD, &wildcard) == 0) {
			local_name_error(ctx, line, set->name, text);
			return -1;
		}
		norm[0] = '*';
		norm[1] = '.';
		if (copy_str(ctx, &set->local_names[i], wildcard ? norm : norm + 2) < 0)
			return -1;
	}
	return 0;
}

static int build_client_sets(struct load_ctx *ctx, cfg_t *root, struct mg_config *c)
{
	unsigned i, n = cfg_size(root, "client");
	char q[QUOTE_MAX], q2[QUOTE_MAX];

	if (n == 0)
		return 0;
	c->client_sets = calloc(n, sizeof(*c->client_sets));
	if (c->client_sets == NULL)
		return config_out_of_memory(ctx);
	c->n_client_sets = n;
	for (i = 0; i < n; i++) {
		cfg_t *sec = cfg_getnsec(root, "client", i);
		struct mg_client_set_config *set = &c->client_sets[i];
		const char *backend = opt_str(sec, "backend");

		set->line = sec_line(ctx, root, "client", i, sec);
		if (check_name(ctx, "client", cfg_title(sec), set->line) < 0 ||
		    copy_str(ctx, &set->name, cfg_title(sec)) < 0 ||
		    build_networks(ctx, sec, "networks", "client", set->name, set->line,
				   &set->networks, &set->n_networks) < 0 ||
		    build_local_names(ctx, sec, set) < 0)
			return -1;
		if (set->n_networks == 0 && set->n_local_names == 0) {
			config_error(ctx, set->line, "client '%s': networks or local_names is required",
				  config_quote(q, set->name));
			return -1;
		}
		fill_typed(sec, set);
		/* A name is known only inside TLS: a policy for cleartext would never apply. */
		if (set->n_local_names > 0 && (set->cleartext != MG_CLEARTEXT_REFUSE || set->trusted)) {
			const char *opt = set->trusted ? "trusted" : "cleartext_auth";
			int line = opt_line(ctx, cfg_getopt(sec, opt));

			config_error(ctx, line > 0 ? line : set->line,
				     "client '%s': %s has no effect with local_names, which match "
				     "only sessions in TLS", config_quote(q, set->name), opt);
			return -1;
		}
		if (backend != NULL) {
			set->backend = find_backend(c, backend);
			if (set->backend == NULL) {
				config_error(ctx, set->line,
					  "client '%s': no backend section is called '%s'",
					  config_quote(q, set->name), config_quote(q2, backend));
				return -1;
			}
		}
	}
	return 0;
}

/*
 * Two listeners conflict on the same port when their addresses are equal
 * or one is the wildcard of the other's family (bind would fail later, with
 * a worse message). "::" and "0.0.0.0" do not conflict: the listener code
 * binds IPv6 sockets with IPV6_V6ONLY.
 */
static int check_listen_conflicts(struct load_ctx *ctx, const struct mg_config *c)
{
	static const unsigned char any[16];
	size_t li, ai, lj, aj;
	char q[QUOTE_MAX], q2[QUOTE_MAX], q3[QUOTE_MAX], q4[QUOTE_MAX];

	for (li = 0; li < c->n_listeners; li++) {
		const struct mg_listener_config *l = &c->listeners[li];

		for (ai = 0; ai < l->n_addresses; ai++) {
			unsigned char a[16];
			int fa = parse_ip(l->addresses[ai], a);
			size_t alen = fa == AF_INET ? 4 : 16;

			if (fa == 0) {
				/* check_address() saw every address; this is a default. */
				config_error(ctx, l->line, "listen '%s': bad address '%s'",
					  config_quote(q, l->name), config_quote(q2, l->addresses[ai]));
				return -1;
			}
			for (lj = 0; lj <= li; lj++) {
				const struct mg_listener_config *m = &c->listeners[lj];
				size_t end = lj == li ? ai : m->n_addresses;

				if (m->port != l->port)
					continue;
				for (aj = 0; aj < end; aj++) {
					unsigned char b[16];

					if (parse_ip(m->addresses[aj], b) != fa)
						continue;
					if (memcmp(a, b, alen) != 0 &&
					    memcmp(a, any, alen) != 0 && memcmp(b, any, alen) != 0)
						continue;
					config_error(ctx, l->line, "listen '%s': address %s port %u "
						  "conflicts with %s port %u of listen '%s' (line %d)",
						  config_quote(q, l->name), config_quote(q2, l->addresses[ai]), l->port,
						  config_quote(q3, m->addresses[aj]), m->port,
						  config_quote(q4, m->name), m->line);
					return -1;
				}
			}
		}
	}
	return 0;
}

static int build_listeners(struct load_ctx *ctx, cfg_t *root, struct mg_config *c)
{
	unsigned i, n = cfg_size(root, "listen");

	if (n == 0) {
		config_error(ctx, 0, "no listen section: at least one is required");
		return -1;
	}
	c->listeners = calloc(n, sizeof(*c->listeners));
	if (c->listeners == NULL)
		return config_out_of_memory(ctx);
	c->n_listeners = n;
	for (i = 0; i < n; i++) {
		cfg_t *sec = cfg_getnsec(root, "listen", i);

		c->listeners[i].line = sec_line(ctx, root, "listen", i, sec);
		if (build_listener(ctx, sec, c, &c->listeners[i]) < 0)
			return -1;
	}
	return check_listen_conflicts(ctx, c);
}

static int build_config(struct load_ctx *ctx, cfg_t *root, struct mg_config *c)
{
	fill_typed(root, c);
	if (copy_str(ctx, &c->path, ctx->path) < 0 ||
	    copy_str(ctx, &c->user, cfg_getstr(root, "user")) < 0 ||
	    copy_str(ctx, &c->group, opt_str(root, "group")) < 0 ||
	    copy_str(ctx, &c->pid_file, cfg_getstr(root, "pid_file")) < 0 ||
	    copy_str(ctx, &c->session_user, cfg_getstr(root, "session_user")) < 0 ||
	    copy_str(ctx, &c->session_chroot, cfg_getstr(root, "session_chroot")) < 0)
		return -1;
	if (strcmp(c->session_user, c->user) == 0) {
		config_error(ctx, opt_line(ctx, cfg_getopt(root, "session_user")),
			     "session_user must differ from user: a session child must not be able "
			     "to signal or trace the engines");
		return -1;
	}
	if (c->session_chroot[0] != '/') {
		config_error(ctx, opt_line(ctx, cfg_getopt(root, "session_chroot")),
			     "session_chroot must be an absolute path");
		return -1;
	}
	if (copy_str(ctx, &c->pam_service, cfg_getstr(root, "pam_service")) < 0 ||
	    check_name(ctx, "pam_service", c->pam_service,
		       opt_line(ctx, cfg_getopt(root, "pam_service"))) < 0)
		return -1;
	/* A file name in /etc/pam.d: no hidden files, no ".." */
	if (c->pam_service[0] == '.') {
		config_error(ctx, opt_line(ctx, cfg_getopt(root, "pam_service")),
			  "pam_service must not start with '.'");
		return -1;
	}
	if (copy_str(ctx, &c->user_map, opt_str(root, "user_map")) < 0)
		return -1;

	if (build_tls_profiles(ctx, root, c) < 0 ||
	    build_backends(ctx, root, c) < 0 ||
	    build_default_backend(ctx, root, c) < 0 ||
	    build_tls(ctx, root, c) < 0 ||
	    build_listeners(ctx, root, c) < 0 ||
	    build_client_sets(ctx, root, c) < 0)
		return -1;
	if (c->user_map != NULL) {
		char err[512];

		/* The map's own errors name the map file and its line. */
		if (usermap_load(c->user_map, c, &c->user_routes, &c->n_user_routes, err,
				 sizeof(err)) < 0) {
			config_error(ctx, opt_line(ctx, cfg_getopt(root, "user_map")), "user_map: %s",
				  err);
			return -1;
		}
	}
	return 0;
}

/* ---- the schema ------------------------------------------------------------ */

/* The libconfuse option for a table entry (config_options.c). */
static cfg_opt_t typed_opt(const struct config_option *o)
{
	cfg_flag_t flags = o->no_default ? CFGF_NODEFAULT : CFGF_NONE;

	if (config_option_is_plain_bool(o))
		return (cfg_opt_t)CFG_BOOL(o->name, o->def != 0 ? cfg_true : cfg_false, flags);
	return (cfg_opt_t)CFG_INT_CB(o->name, o->def, flags, parse_typed);
}

/*
 * A section's options: the strings, lists and subsections written here,
 * then one option per entry of the section's table, then the end. NULL if
 * out of memory (the caller frees the result).
 */
static cfg_opt_t *section_opts(const char *section, const cfg_opt_t *fixed, size_t n_fixed)
{
	const struct config_table *t = config_table(section);
	size_t n_typed = t != NULL ? t->n_options : 0;
	cfg_opt_t *opts = calloc(n_fixed + n_typed + 1, sizeof(*opts));

	if (opts == NULL)
		return NULL;
	memcpy(opts, fixed, n_fixed * sizeof(*opts));
	for (size_t i = 0; i < n_typed; i++)
		opts[n_fixed + i] = typed_opt(&t->options[i]);
	opts[n_fixed + n_typed] = (cfg_opt_t)CFG_END();
	return opts;
}

#define N_OPTS(a) (sizeof(a) / sizeof((a)[0]))

static cfg_t *new_parser(void)
{
	const cfg_opt_t tls_opts[] = {
		CFG_STR("certificate", NULL, CFGF_NODEFAULT),
		CFG_STR("key", NULL, CFGF_NODEFAULT),
		CFG_STR("ocsp_file", NULL, CFGF_NODEFAULT),
		CFG_STR("ciphers", NULL, CFGF_NODEFAULT),
		CFG_STR("ciphersuites", NULL, CFGF_NODEFAULT),
		CFG_STR("groups", NULL, CFGF_NODEFAULT),
		CFG_STR("certificate_dir", NULL, CFGF_NODEFAULT),
		CFG_STR("last_good_dir", "/run/mailgate/last-good", CFGF_NONE),
		CFG_STR_LIST("ticket_key_file", NULL, CFGF_NODEFAULT),
	};
	const cfg_opt_t backend_opts[] = {
		CFG_STR("host", NULL, CFGF_NODEFAULT),
		CFG_STR("ca_file", NULL, CFGF_NODEFAULT),
		CFG_STR("verify_name", NULL, CFGF_NODEFAULT),
		CFG_STR("master_user_file", NULL, CFGF_NODEFAULT),
		CFG_STR("tls_profile", NULL, CFGF_NODEFAULT),
	};
	const cfg_opt_t profile_opts[] = {
		CFG_STR("ciphers", NULL, CFGF_NODEFAULT),
		CFG_STR("ciphersuites", NULL, CFGF_NODEFAULT),
		CFG_STR("groups", NULL, CFGF_NODEFAULT),
	};
	const cfg_opt_t client_opts[] = {
		CFG_STR_LIST("networks", NULL, CFGF_NODEFAULT),
		CFG_STR_LIST("local_names", NULL, CFGF_NODEFAULT),
		CFG_STR("backend", NULL, CFGF_NODEFAULT),
	};
	/*
	 * address has no libconfuse default on purpose: a list default is
	 * parsed by re-entering the lexer mid-file, and an explicit empty
	 * list must stay distinguishable from an absent one.
	 */
	const cfg_opt_t listen_opts[] = {
		CFG_STR_LIST("address", NULL, CFGF_NODEFAULT),
		CFG_STR("backend", NULL, CFGF_NODEFAULT),
		CFG_STR_LIST("proxy_networks", NULL, CFGF_NODEFAULT),
		CFG_STR("certificate", NULL, CFGF_NODEFAULT),
		CFG_STR("key", NULL, CFGF_NODEFAULT),
		CFG_STR("ocsp_file", NULL, CFGF_NODEFAULT),
		CFG_STR("certificate_dir", NULL, CFGF_NODEFAULT),
		CFG_STR("tls_profile", NULL, CFGF_NODEFAULT),
	};
	cfg_opt_t *tls = section_opts("tls", tls_opts, N_OPTS(tls_opts));
	cfg_opt_t *profile = section_opts("tls_profile", profile_opts, N_OPTS(profile_opts));
	cfg_opt_t *backend = section_opts("backend", backend_opts, N_OPTS(backend_opts));
	cfg_opt_t *listen = section_opts("listen", listen_opts, N_OPTS(listen_opts));
	cfg_opt_t *client = section_opts("client", client_opts, N_OPTS(client_opts));
	cfg_opt_t *root = NULL;
	cfg_t *cfg = NULL;

	if (tls != NULL && profile != NULL && backend != NULL && listen != NULL && client != NULL) {
		const cfg_opt_t root_opts[] = {
			CFG_STR("user", "mailgate", CFGF_NONE),
			CFG_STR("group", NULL, CFGF_NODEFAULT),
			CFG_STR("pid_file", "/run/mailgated.pid", CFGF_NONE),
			CFG_STR("session_user", "mailgate-session", CFGF_NONE),
			CFG_STR("session_chroot", "/run/mailgate/empty", CFGF_NONE),
			CFG_STR("default_backend", NULL, CFGF_NODEFAULT),
			CFG_STR("user_map", NULL, CFGF_NODEFAULT),
			CFG_STR("pam_service", "mailgate", CFGF_NONE),
			CFG_SEC("tls", tls, CFGF_NONE),
			CFG_SEC("tls_profile", profile, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
			CFG_SEC("backend", backend, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
			CFG_SEC("listen", listen, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
			CFG_SEC("client", client, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
		};

		root = section_opts("root", root_opts, N_OPTS(root_opts));
	}
	if (root != NULL) {
		install_validators(root);
		/* cfg_init copies the tables, so they may be freed below. */
		cfg = cfg_init(root, CFGF_NONE);
		if (cfg != NULL)
			cfg_set_error_function(cfg, on_cfg_error);
	}
	free(root);
	free(client);
	free(listen);
	free(backend);
	free(profile);
	free(tls);
	return cfg;
}

/* ---- public interface ------------------------------------------------------- */

int config_load(const char *path, struct mg_config **out, char *err, size_t errlen)
{
	struct load_ctx ctx = { .path = path, .err = err, .errlen = errlen };
	struct mg_config *c = NULL;
	char *raw = NULL, *text = NULL;
	cfg_t *cfg = NULL;
	size_t len = 0;
	int rc = -1;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (path == NULL) {
		ctx.path = "(null)";
		config_error(&ctx, 0, "no configuration file given");
		return -1;
	}

	raw = config_read_file(&ctx, &len);
	if (raw == NULL)
		goto done;
	text = malloc(len + 1);
	if (text == NULL) {
		config_out_of_memory(&ctx);
		goto done;
	}
	if (config_scan(&ctx, raw, len, text) < 0)
		goto done;

	load_ctx = &ctx;
	cfg = new_parser();
	if (cfg == NULL) {
		config_out_of_memory(&ctx);
		goto done;
	}
	if (cfg_parse_buf(cfg, text) != CFG_SUCCESS || ctx.failed) {
		config_error(&ctx, 0, "cannot parse");	/* only if nothing said why */
		goto done;
	}

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		config_out_of_memory(&ctx);
		goto done;
	}
	if (build_config(&ctx, cfg, c) < 0 || ctx.failed)
		goto done;

	*out = c;
	c = NULL;
	rc = 0;
done:
	if (cfg != NULL)
		cfg_free(cfg);
	load_ctx = NULL;
	config_free(c);
	free(ctx.sections);
	free(ctx.opts);
	free(text);
	free(raw);
	return rc;
}

static void profile_free(struct mg_tls_profile *p)
{
	free(p->name);
	free(p->ciphers);
	free(p->ciphersuites);
	free(p->groups);
}

void config_free(struct mg_config *cfg)
{
	size_t i, j;

	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->user);
	free(cfg->group);
	free(cfg->pid_file);
	free(cfg->session_user);
	free(cfg->session_chroot);
	free(cfg->tls.certificate);
	free(cfg->tls.key);
	free(cfg->tls.ocsp_file);
	free(cfg->tls.certificate_dir);
	free(cfg->tls.last_good_dir);
	for (i = 0; i < cfg->tls.n_ticket_key_files; i++)
		free(cfg->tls.ticket_key_files[i]);
	free(cfg->tls.ticket_key_files);
	profile_free(&cfg->tls.profile);
	for (i = 0; i < cfg->n_tls_profiles; i++)
		profile_free(&cfg->tls_profiles[i]);
	free(cfg->tls_profiles);
	for (i = 0; i < cfg->n_listeners; i++) {
		struct mg_listener_config *l = &cfg->listeners[i];

		free(l->name);
		for (j = 0; l->addresses != NULL && j < l->n_addresses; j++)
			free(l->addresses[j]);
		free(l->addresses);
		free(l->proxy_networks);
		free(l->certificate);
		free(l->key);
		free(l->ocsp_file);
		free(l->certificate_dir);
	}
	free(cfg->listeners);
	for (i = 0; i < cfg->n_client_sets; i++) {
		free(cfg->client_sets[i].name);
		free(cfg->client_sets[i].networks);
		for (size_t k = 0; k < cfg->client_sets[i].n_local_names; k++)
			free(cfg->client_sets[i].local_names[k]);
		free(cfg->client_sets[i].local_names);
	}
	free(cfg->client_sets);
	usermap_free(cfg->user_routes, cfg->n_user_routes);
	free(cfg->user_map);
	for (i = 0; i < cfg->n_backends; i++) {
		struct mg_backend_config *b = &cfg->backends[i];

		free(b->name);
		free(b->host);
		free(b->ca_file);
		free(b->verify_name);
		free(b->master_user_file);
		free(b->master_user);
	}
	free(cfg->backends);
	free(cfg->pam_service);
	free(cfg);
}

const char *config_cleartext_name(enum mg_cleartext_policy policy)
{
	/* The option table's words: the file and the log say the same. */
	return config_word_of("root", "cleartext_auth", policy);
}

bool config_uses_pam(const struct mg_config *cfg)
{
	if (cfg->auth == MG_AUTH_PAM)
		return true;
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		if (cfg->listeners[i].auth == MG_AUTH_PAM)
			return true;
	}
	for (size_t i = 0; i < cfg->n_client_sets; i++) {
		if (cfg->client_sets[i].auth == MG_AUTH_PAM)
			return true;
	}
	return false;
}

const char *config_protocol_name(enum mg_protocol protocol)
{
	switch (protocol) {
	case MG_PROTO_IMAP:
		return "imap";
	case MG_PROTO_POP3:
		return "pop3";
	case MG_PROTO_COUNT:
		break;
	}
	return "unknown";
}
