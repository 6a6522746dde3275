/*
 * engine_servers.c - every listener's TLS server context, with its
 * certificates by name (see engine_servers.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_certs.h"
#include "engine_lastgood.h"
#include "engine_servers.h"
#include "engine_tls.h"
#include "log.h"

#define DAY (24 * 60 * 60)

struct loaded_dir {
	const char *path;		/* a listener's certificate_dir (cfg outlives us) */
	struct tls_certs *certs;
};

struct engine_servers {
	struct mg_tls_server **by_listener;	/* per cfg->listeners[i], shared */
	size_t n_listeners;
	struct mg_tls_server **own;		/* the distinct contexts */
	const struct mg_listener_config **origin;	/* the first listener of each */
	size_t n_own;
	struct loaded_dir *dirs;		/* the distinct certificate_dirs */
	size_t n_dirs;
};

struct dir_report {
	const struct servers_options *opt;
	bool failed;
	int line;			/* where certificate_dir was set */
	char *err;
	size_t errlen;
	/* Names of the copies still wanted (engine_lastgood.h), for the prune. */
	char (*seen)[LASTGOOD_NAME_LEN + 1];
	size_t n_seen, cap_seen;
	bool seen_lost;			/* out of memory: prune nothing */
};

static bool same_dir(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* Would b be served by the context built for a? */
static bool same_server(const struct mg_listener_config *a, const struct mg_listener_config *b)
{
	return a->protocol == b->protocol && a->tls_profile == b->tls_profile &&
	       strcmp(a->certificate, b->certificate) == 0 &&
	       strcmp(a->key, b->key) == 0 && same_dir(a->certificate_dir, b->certificate_dir) &&
	       same_dir(a->ocsp_file, b->ocsp_file);
}

/* why usually starts with "PATH: "; the message names the path once. */
static const char *reason(const char *path, const char *why)
{
	size_t n = strlen(path);

	return strncmp(why, path, n) == 0 && why[n] == ':' && why[n + 1] == ' ' ? why + n + 2
										: why;
}

static void format_time(time_t t, char *out, size_t outlen)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "unknown");
}

/*
 * "certificate skipped" (nothing served for it), "ocsp response skipped"
 * (the pair is served unstapled) or "certificate broken ... keeping=previous"
 * (its last-good copy is served): file names in a directory customers'
 * automation fills are not ours to trust.
 */
static void note_pair(const struct dir_report *r, const char *what, const char *path,
		      const char *why, time_t kept_until)
{
	char p[512], w[512], when[32], msg[1300];

	if (r->opt->note == NULL)
		return;
	log_sanitize(p, sizeof(p), path, strlen(path));
	log_sanitize(w, sizeof(w), reason(path, why), strlen(reason(path, why)));
	if (kept_until == 0) {
		snprintf(msg, sizeof(msg), "%s skipped path=%s error=\"%s\"", what, p, w);
	} else {
		format_time(kept_until, when, sizeof(when));
		snprintf(msg, sizeof(msg), "certificate broken path=%s error=\"%s\" "
			 "keeping=previous not_after=%s", p, w, when);
	}
	r->opt->note(true, msg, r->opt->arg);
}

/*
 * A pair of a directory that did not load, or its OCSP response
 * (tls_certs_load_dir's report). A response is only warned about, even
 * by -t: the pair is served, unstapled.
 */
static void on_skipped(const char *path, const char *why, bool pair_skipped, void *arg)
{
	struct dir_report *r = arg;

	if (r->opt->strict && pair_skipped) {
		if (!r->failed)
			snprintf(r->err, r->errlen, "certificate_dir (line %d): %s: %s", r->line, path,
				 reason(path, why));
		r->failed = true;
		return;
	}
	note_pair(r, pair_skipped ? "certificate" : "ocsp response", path, why, 0);
}

/* path's copy is still wanted: remember its name for the prune. */
static void keep_seen(struct dir_report *r, const char *path)
{
	if (r->opt->keep_dir == NULL || !r->opt->refresh)
		return;
	if (r->n_seen == r->cap_seen) {
		size_t cap = r->cap_seen == 0 ? 64 : r->cap_seen * 2;
		char(*grown)[LASTGOOD_NAME_LEN + 1] = realloc(r->seen, cap * sizeof(*grown));

		if (grown == NULL) {
			r->seen_lost = true;
			return;
		}
		r->seen = grown;
		r->cap_seen = cap;
	}
	lastgood_name(path, r->seen[r->n_seen++]);
}

/* A pair loaded: the first engine keeps (or refreshes) its copy. */
static void on_loaded(const struct tls_pem *pem, void *arg)
{
	struct dir_report *r = arg;
	char why[512], p[512];

	keep_seen(r, pem->cert_path);
	if (r->opt->keep_dir == NULL || !r->opt->refresh ||
	    lastgood_save(r->opt->keep_dir, pem, why, sizeof(why)) >= 0 || r->opt->note == NULL)
		return;
	log_sanitize(p, sizeof(p), why, strlen(why));
	r->opt->note(true, p, r->opt->arg);
}

/* A pair of a directory that is there but does not load: its copy, if any. */
static int on_broken(struct tls_certs *set, const struct tls_pem *labels, const char *why,
		     void *arg)
{
	struct dir_report *r = arg;
	const struct tls_cert *kept = NULL;
	struct tls_pem pem;
	char detail[512];
	int rc;

	keep_seen(r, labels->cert_path);
	if (r->opt->strict || r->opt->keep_dir == NULL ||
	    lastgood_load(r->opt->keep_dir, labels->cert_path, labels->key_path, &pem, detail,
			  sizeof(detail)) < 0)
		return -1;
	/* The copy is judged as the file would be: an expired one is not served. */
	rc = tls_certs_add_pem(set, &pem, time(NULL), &kept, detail, sizeof(detail));
	tls_pem_wipe(&pem);
	if (rc < 0)
		return -1;
	note_pair(r, "certificate", labels->cert_path, why, tls_cert_not_after(kept));
	return 0;
}

/* The set of l's certificate_dir: loaded before, or now. NULL with err. */
static struct tls_certs *load_dir(struct engine_servers *s, const struct mg_listener_config *l,
				  struct dir_report *report, char *err, size_t errlen)
{
	struct tls_certs_hooks hooks = { .loaded = on_loaded, .broken = on_broken,
					 .report = on_skipped, .arg = report };
	struct loaded_dir *d;
	char why[512];
	int loaded;

	for (size_t i = 0; i < s->n_dirs; i++)
		if (strcmp(s->dirs[i].path, l->certificate_dir) == 0)
			return s->dirs[i].certs;
	d = &s->dirs[s->n_dirs];
	d->path = l->certificate_dir;
	d->certs = tls_certs_new();
	if (d->certs == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->n_dirs++;		/* freed with the rest, whatever happens next */
	report->line = l->certificate_dir_line;
	loaded = tls_certs_load_dir_hooked(d->certs, d->path, time(NULL), &hooks, why,
					   sizeof(why));
	if (loaded < 0) {
		snprintf(err, errlen, "certificate_dir (line %d): %s", l->certificate_dir_line, why);
		return NULL;
	}
	if (report->failed)
		return NULL;	/* err filled by on_skipped */
	if (report->opt->note != NULL) {
		char p[512], msg[700];

		log_sanitize(p, sizeof(p), d->path, strlen(d->path));
		snprintf(msg, sizeof(msg), "certificate_dir loaded dir=%s pairs=%zu names=%zu", p,
			 tls_certs_count(d->certs), tls_certs_names(d->certs));
		report->opt->note(false, msg, report->opt->arg);
	}
	return d->certs;
}

/*
 * l's context with its default pair from the files; when they do not load
 * and the options allow, from the pair's last-good copy. NULL with err (the
 * files' error).
 */
static struct mg_tls_server *load_default(const struct mg_config *cfg,
					  const struct mg_listener_config *l,
					  struct dir_report *report, char *err, size_t errlen)
{
	const struct servers_options *opt = report->opt;
	struct mg_tls_server *server = NULL;
	struct tls_pem pem;
	char detail[512];

	keep_seen(report, l->certificate);
	if (tls_pem_read(&pem, l->certificate, l->key, err, errlen) == 0) {
		server = tls_server_new(&cfg->tls, l, &pem, err, errlen);
		if (server != NULL)
			on_loaded(&pem, report);
		tls_pem_wipe(&pem);
	}
	if (server != NULL || opt->strict || !opt->keep_default || opt->keep_dir == NULL ||
	    lastgood_load(opt->keep_dir, l->certificate, l->key, &pem, detail,
			  sizeof(detail)) < 0)
		return server;
	server = tls_server_new(&cfg->tls, l, &pem, detail, sizeof(detail));
	tls_pem_wipe(&pem);
	if (server != NULL)
		note_pair(report, "certificate", l->certificate, err, tls_server_not_after(server));
	return server;
}

static int by_copy_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The default pair's OCSP response: a warning when it does not load. */
static void load_ocsp(struct mg_tls_server *server, const char *path, struct dir_report *report)
{
	char why[512];

	if (tls_server_set_ocsp(server, path, time(NULL), why, sizeof(why)) < 0)
		on_skipped(path, why, false, report);
}

static int alloc_tables(struct engine_servers *s, size_t n)
{
	s->by_listener = calloc(n, sizeof(*s->by_listener));
	s->own = calloc(n, sizeof(*s->own));
	s->origin = calloc(n, sizeof(*s->origin));
	s->dirs = calloc(n, sizeof(*s->dirs));
	s->n_listeners = n;
	return s->by_listener == NULL || s->own == NULL || s->origin == NULL || s->dirs == NULL
		       ? -1
		       : 0;
}

struct engine_servers *servers_load(const struct mg_config *cfg, bool strict,
				    servers_note_fn *note, void *arg, char *err, size_t errlen)
{
	struct servers_options opt = { .strict = strict, .note = note, .arg = arg };

	return servers_load_with(cfg, &opt, err, errlen);
}

/*
 * Copies only from a directory nobody else can touch (the first engine of
 * a generation makes it; the others read it once it is there).
 */
static void prepare_keep_dir(struct servers_options *opt)
{
	char why[512];

	if (opt->keep_dir == NULL ||
	    lastgood_dir_ready(opt->keep_dir, opt->refresh, why, sizeof(why)) == 0)
		return;
	if (opt->note != NULL)
		opt->note(true, why, opt->arg);
	opt->keep_dir = NULL;
}

struct engine_servers *servers_load_with(const struct mg_config *cfg,
					 const struct servers_options *options, char *err,
					 size_t errlen)
{
	struct servers_options opt = *options;
	struct engine_servers *s = calloc(1, sizeof(*s));
	struct dir_report report = { .opt = &opt, .err = err, .errlen = errlen };

	if (opt.strict)
		opt.keep_dir = NULL;
	prepare_keep_dir(&opt);
	if (s == NULL || cfg->n_listeners == 0 || alloc_tables(s, cfg->n_listeners) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct mg_listener_config *l = &cfg->listeners[i];
		struct tls_certs *names = NULL;
		struct mg_tls_server *server;
		size_t j = 0;

		while (j < s->n_own && !same_server(s->origin[j], l))
			j++;
		if (j < s->n_own) {
			s->by_listener[i] = s->own[j];
			continue;
		}
		if (l->certificate_dir != NULL &&
		    (names = load_dir(s, l, &report, err, errlen)) == NULL)
			goto fail;
		server = load_default(cfg, l, &report, err, errlen);
		if (server == NULL)
			goto fail;
		tls_server_set_names(server, names);
		if (l->ocsp_file != NULL)
			load_ocsp(server, l->ocsp_file, &report);
		s->own[s->n_own] = server;
		s->origin[s->n_own++] = l;
		s->by_listener[i] = server;
	}
	if (opt.note != NULL)
		servers_warn_expiring(s, time(NULL), opt.note, opt.arg);
	if (opt.keep_dir != NULL && opt.refresh && !report.seen_lost) {
		if (report.n_seen > 1)
			qsort(report.seen, report.n_seen, sizeof(*report.seen), by_copy_name);
		lastgood_prune(opt.keep_dir, report.seen, report.n_seen);
	}
	if (opt.keep_dir != NULL && opt.refresh && lastgood_sync(opt.keep_dir) < 0 &&
	    opt.note != NULL) {
		char dir[512], msg[700];

		/* The copies stay usable; only a crash before the kernel writes them loses some. */
		log_sanitize(dir, sizeof(dir), opt.keep_dir, strlen(opt.keep_dir));
		snprintf(msg, sizeof(msg), "last-good copies not flushed dir=%s error=\"%s\"", dir,
			 strerror(errno));
		opt.note(true, msg, opt.arg);
	}
	free(report.seen);
	return s;
fail:
	free(report.seen);
	servers_free(s);
	return NULL;
}

struct mg_tls_server *servers_get(const struct engine_servers *servers, size_t listener)
{
	return listener < servers->n_listeners ? servers->by_listener[listener] : NULL;
}

void servers_set_ticket_keys(struct engine_servers *servers, const struct ticket_keys *keys)
{
	for (size_t i = 0; i < servers->n_own; i++)
		tls_server_set_ticket_keys(servers->own[i], keys);
}

struct expiry_ctx {
	time_t now;
	servers_note_fn *note;
	void *arg;
};

static void warn_expiry(const struct expiry_ctx *x, const char *path, time_t not_after)
{
	char p[512], when[32], msg[700];

	log_sanitize(p, sizeof(p), path, strlen(path));
	format_time(not_after, when, sizeof(when));
	if (not_after <= x->now)
		snprintf(msg, sizeof(msg), "certificate expired path=%s not_after=%s", p, when);
	else
		snprintf(msg, sizeof(msg), "certificate expires soon path=%s not_after=%s "
			 "days_left=%ld", p, when, (long)((not_after - x->now) / DAY));
	x->note(true, msg, x->arg);
}

static void on_expiring(const struct tls_cert *cert, void *arg)
{
	warn_expiry(arg, tls_cert_path(cert), tls_cert_not_after(cert));
}

void servers_warn_expiring(const struct engine_servers *servers, time_t now,
			   servers_note_fn *note, void *arg)
{
	struct expiry_ctx x = { .now = now, .note = note, .arg = arg };
	time_t deadline = now + (time_t)EXPIRY_WARN_DAYS * DAY;

	for (size_t i = 0; i < servers->n_own; i++) {
		const char *path = servers->origin[i]->certificate;
		time_t not_after = tls_server_not_after(servers->own[i]);
		bool seen = false;

		/* IMAP's and POP3's contexts usually share the default pair: warn once. */
		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(servers->origin[j]->certificate, path) == 0;
		if (!seen && not_after != 0 && not_after < deadline)
			warn_expiry(&x, path, not_after);
	}
	for (size_t i = 0; i < servers->n_dirs; i++)
		tls_certs_expiring(servers->dirs[i].certs, deadline, on_expiring, &x);
}

void servers_free(struct engine_servers *servers)
{
	if (servers == NULL)
		return;
	for (size_t i = 0; i < servers->n_own; i++)
		tls_server_free(servers->own[i]);
	for (size_t i = 0; i < servers->n_dirs; i++)
		tls_certs_free(servers->dirs[i].certs);
	free(servers->by_listener);
	free(servers->own);
	free(servers->origin);
	free(servers->dirs);
	free(servers);
}
