/*
 * engine_servers.c - every listener's TLS server context, with its
 * certificates by name (see engine_servers.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_certs.h"
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
	bool strict;
	bool failed;
	servers_note_fn *note;
	void *arg;
	int line;			/* where certificate_dir was set */
	char *err;
	size_t errlen;
};

static bool same_dir(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* Would b be served by the context built for a? */
static bool same_server(const struct mg_listener_config *a, const struct mg_listener_config *b)
{
	return a->protocol == b->protocol && strcmp(a->certificate, b->certificate) == 0 &&
	       strcmp(a->key, b->key) == 0 && same_dir(a->certificate_dir, b->certificate_dir);
}

/* why usually starts with "PATH: "; the message names the path once. */
static const char *reason(const char *path, const char *why)
{
	size_t n = strlen(path);

	return strncmp(why, path, n) == 0 && why[n] == ':' && why[n + 1] == ' ' ? why + n + 2
										: why;
}

/* A pair of a directory that did not load (tls_certs_load_dir's report). */
static void on_skipped(const char *path, const char *why, void *arg)
{
	struct dir_report *r = arg;
	char p[512], w[512], msg[1200];

	if (r->strict) {
		if (!r->failed)
			snprintf(r->err, r->errlen, "certificate_dir (line %d): %s: %s", r->line, path,
				 reason(path, why));
		r->failed = true;
		return;
	}
	if (r->note == NULL)
		return;
	/* File names in a directory customers' automation fills are not ours to trust. */
	log_sanitize(p, sizeof(p), path, strlen(path));
	log_sanitize(w, sizeof(w), reason(path, why), strlen(reason(path, why)));
	snprintf(msg, sizeof(msg), "certificate skipped path=%s error=\"%s\"", p, w);
	r->note(true, msg, r->arg);
}

/* The set of l's certificate_dir: loaded before, or now. NULL with err. */
static struct tls_certs *load_dir(struct engine_servers *s, const struct mg_listener_config *l,
				  struct dir_report *report, char *err, size_t errlen)
{
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
	loaded = tls_certs_load_dir(d->certs, d->path, time(NULL), on_skipped, report, why,
				    sizeof(why));
	if (loaded < 0) {
		snprintf(err, errlen, "certificate_dir (line %d): %s", l->certificate_dir_line, why);
		return NULL;
	}
	if (report->failed)
		return NULL;	/* err filled by on_skipped */
	if (report->note != NULL) {
		char p[512], msg[700];

		log_sanitize(p, sizeof(p), d->path, strlen(d->path));
		snprintf(msg, sizeof(msg), "certificate_dir loaded dir=%s pairs=%zu names=%zu", p,
			 tls_certs_count(d->certs), tls_certs_names(d->certs));
		report->note(false, msg, report->arg);
	}
	return d->certs;
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
	struct engine_servers *s = calloc(1, sizeof(*s));
	struct dir_report report = { .strict = strict, .note = note, .arg = arg, .err = err,
				     .errlen = errlen };

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
		server = tls_server_new(&cfg->tls, l, err, errlen);
		if (server == NULL)
			goto fail;
		tls_server_set_names(server, names);
		s->own[s->n_own] = server;
		s->origin[s->n_own++] = l;
		s->by_listener[i] = server;
	}
	if (note != NULL)
		servers_warn_expiring(s, time(NULL), note, arg);
	return s;
fail:
	servers_free(s);
	return NULL;
}

struct mg_tls_server *servers_get(const struct engine_servers *servers, size_t listener)
{
	return listener < servers->n_listeners ? servers->by_listener[listener] : NULL;
}

int servers_set_ticket_keys(struct engine_servers *servers, const unsigned char *keys,
			    size_t len)
{
	for (size_t i = 0; i < servers->n_own; i++)
		if (tls_server_set_ticket_keys(servers->own[i], keys, len) < 0)
			return -1;
	return 0;
}

struct expiry_ctx {
	time_t now;
	servers_note_fn *note;
	void *arg;
};

static void warn_expiry(const struct expiry_ctx *x, const char *path, time_t not_after)
{
	char p[512], when[32], msg[700];
	struct tm tm;

	log_sanitize(p, sizeof(p), path, strlen(path));
	if (gmtime_r(&not_after, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, sizeof(when), "unknown");
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
