/*
 * master_certwatch.c - reload when a certificate file changes (see
 * master_certwatch.h), and the master's side of it: which configuration
 * is watched, and when a change may start a reload.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "master_certwatch.h"
#include "master_internal.h"

/* What renewals do: write in place, rename over, create, delete, chmod, swap a symlink. */
#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | \
		    IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

/* ---- debounce ------------------------------------------------------------------ */

void debounce_note(struct debounce *d, long long now_ms)
{
	if (!d->pending)
		d->first_ms = now_ms;
	d->pending = true;
	d->last_ms = now_ms;
}

long long debounce_due_at(const struct debounce *d)
{
	long long quiet, cap;

	if (!d->pending)
		return 0;
	quiet = d->last_ms + CERTWATCH_QUIET_MS;
	cap = d->first_ms + CERTWATCH_MAX_MS;
	return quiet < cap ? quiet : cap;
}

bool debounce_fire(struct debounce *d, long long now_ms)
{
	if (!d->pending || now_ms < debounce_due_at(d))
		return false;
	*d = (struct debounce){ 0 };
	return true;
}

/* ---- watches -------------------------------------------------------------------- */

/* One watched directory: which of its names matter. */
struct watch {
	int wd;			/* -1: the kernel dropped it (the directory is gone) */
	char *dir;
	bool cert_files;	/* a certificate_dir: every NAME.pem, NAME.key and NAME.ocsp */
	char **names;		/* else (and also) exactly these */
	size_t n_names;
};

struct certwatch {
	int fd;
	struct watch *watches;
	size_t n, cap;
	struct debounce debounce;
	char first[600];	/* the first change since the last reload, for the log */
	unsigned armed_for;	/* the generation whose files are watched; 0: re-arm */
};

bool certwatch_cert_name(const char *name)
{
	size_t len = strlen(name);

	return name[0] != '.' &&
	       ((len > 4 && (strcmp(name + len - 4, ".pem") == 0 ||
			     strcmp(name + len - 4, ".key") == 0)) ||
		(len > 5 && strcmp(name + len - 5, ".ocsp") == 0));
}

static void watch_free(struct watch *w)
{
	for (size_t i = 0; i < w->n_names; i++)
		free(w->names[i]);
	free(w->names);
	free(w->dir);
}

static void free_watches(struct watch *ws, size_t n)
{
	for (size_t i = 0; i < n; i++)
		watch_free(&ws[i]);
	free(ws);
}

struct certwatch *certwatch_new(void)
{
	struct certwatch *w = calloc(1, sizeof(*w));

	if (w != NULL)
		w->fd = -1;
	return w;
}

void certwatch_free(struct certwatch *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free_watches(w->watches, w->n);
	free(w);
}

int certwatch_fd(const struct certwatch *w)
{
	return w != NULL ? w->fd : -1;
}

/* The list being built by certwatch_set(). */
struct watch_list {
	int fd;
	struct watch *w;
	size_t n, cap;
};

/* Watch dir for name (NULL: for every certificate file). Failures are logged, not fatal. */
static void add(struct watch_list *l, const char *dir, const char *name)
{
	int wd = inotify_add_watch(l->fd, dir, WATCH_MASK);
	struct watch *w = NULL;
	char **grown;

	if (wd < 0) {
		char d[512];

		log_sanitize(d, sizeof(d), dir, strlen(dir));
		log_warning("certificate watch: cannot watch %s: %s", d, strerror(errno));
		return;
	}
	/* Two paths to one directory get one watch descriptor: one entry. */
	for (size_t i = 0; i < l->n && w == NULL; i++)
		if (l->w[i].wd == wd)
			w = &l->w[i];
	if (w == NULL) {
		if (l->n == l->cap) {
			size_t cap = l->cap == 0 ? 8 : l->cap * 2;
			struct watch *more = realloc(l->w, cap * sizeof(*more));

			if (more == NULL)
				return;
			l->w = more;
			l->cap = cap;
		}
		w = &l->w[l->n];
		*w = (struct watch){ .wd = wd, .dir = strdup(dir) };
		if (w->dir == NULL)
			return;
		l->n++;
	}
	if (name == NULL) {
		w->cert_files = true;
		return;
	}
	for (size_t i = 0; i < w->n_names; i++)
		if (strcmp(w->names[i], name) == 0)
			return;
	grown = realloc(w->names, (w->n_names + 1) * sizeof(*grown));
	if (grown == NULL)
		return;
	w->names = grown;
	w->names[w->n_names] = strdup(name);
	if (w->names[w->n_names] != NULL)
		w->n_names++;
}

/* Watch path's directory for its name: the parent of a file or of a directory. */
static void add_parent(struct watch_list *l, const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n;

	if (slash == NULL || slash[1] == '\0')
		return;
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= sizeof(dir))
		return;
	memcpy(dir, path, n);
	dir[n] = '\0';
	add(l, dir, slash + 1);
}

/* A configured file: its directory, and its target's when it is a symlink. */
static void add_file(struct watch_list *l, const char *path)
{
	char real[PATH_MAX];

	add_parent(l, path);
	if (realpath(path, real) != NULL && strcmp(real, path) != 0)
		add_parent(l, real);
}

/* A certificate_dir: itself, its parent (for a swap), and where its symlinks point. */
static void add_dir(struct watch_list *l, const char *path)
{
	DIR *d;
	struct dirent *e;

	add(l, path, NULL);
	add_parent(l, path);
	d = opendir(path);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char entry[PATH_MAX], real[PATH_MAX];
		struct stat st;

		if (!certwatch_cert_name(e->d_name) ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISLNK(st.st_mode) ||
		    (size_t)snprintf(entry, sizeof(entry), "%s/%s", path, e->d_name) >=
			    sizeof(entry) ||
		    realpath(entry, real) == NULL)
			continue;
		add_parent(l, real);
	}
	closedir(d);
}

static bool listed(const struct watch_list *l, int wd)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->w[i].wd == wd)
			return true;
	return false;
}

void certwatch_set(struct certwatch *w, const struct mg_config *cfg)
{
	struct watch_list l = { .fd = w->fd };

	if (!cfg->tls.certificate_watch) {
		if (w->fd >= 0)
			close(w->fd);
		free_watches(w->watches, w->n);
		w->fd = -1;
		w->watches = NULL;
		w->n = w->cap = 0;
		w->debounce = (struct debounce){ 0 };
		return;
	}
	if (w->fd < 0) {
		w->fd = l.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (w->fd < 0) {
			log_warning("certificate watch: inotify: %s; certificates are re-read on "
				    "SIGHUP only", strerror(errno));
			return;
		}
	}
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct mg_listener_config *li = &cfg->listeners[i];

		add_file(&l, li->certificate);
		add_file(&l, li->key);
		if (li->ocsp_file != NULL)
			add_file(&l, li->ocsp_file);
		if (li->certificate_dir != NULL)
			add_dir(&l, li->certificate_dir);
	}
	for (size_t i = 0; i < w->n; i++)
		if (w->watches[i].wd >= 0 && !listed(&l, w->watches[i].wd))
			inotify_rm_watch(w->fd, w->watches[i].wd);
	free_watches(w->watches, w->n);
	w->watches = l.w;
	w->n = l.n;
	w->cap = l.cap;
	log_debug("certificate watch: %zu directories", w->n);
}

static struct watch *find(struct certwatch *w, int wd)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->watches[i].wd == wd)
			return &w->watches[i];
	return NULL;
}

static bool matters(const struct watch *w, const char *name)
{
	if (w->cert_files && certwatch_cert_name(name))
		return true;
	for (size_t i = 0; i < w->n_names; i++)
		if (strcmp(w->names[i], name) == 0)
			return true;
	return false;
}

static void changed(struct certwatch *w, long long now_ms, const char *dir, const char *name)
{
	char path[PATH_MAX + NAME_MAX + 2];

	debounce_note(&w->debounce, now_ms);
	if (w->first[0] != '\0')
		return;
	snprintf(path, sizeof(path), "%s%s%s", dir, name[0] != '\0' ? "/" : "", name);
	log_sanitize(w->first, sizeof(w->first), path, strlen(path));
}

/* One event; its name is ev->len bytes, NUL-padded. */
static void event(struct certwatch *w, const struct inotify_event *ev, long long now_ms)
{
	struct watch *watch;

	if (ev->mask & IN_Q_OVERFLOW) {
		changed(w, now_ms, "(inotify queue overflow)", "");
		return;
	}
	watch = find(w, ev->wd);
	if (watch == NULL)
		return;		/* a watch of an earlier configuration */
	if (ev->mask & IN_IGNORED) {
		/* The directory is gone: its parent's watch reports that; re-arm after. */
		watch->wd = -1;
		w->armed_for = 0;
		return;
	}
	if (ev->len == 0 || ev->name[0] == '\0') {
		if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF))
			changed(w, now_ms, watch->dir, "");
		return;
	}
	if (matters(watch, ev->name))
		changed(w, now_ms, watch->dir, ev->name);
}

void certwatch_read(struct certwatch *w, long long now_ms)
{
	/* Aligned for struct inotify_event, as inotify(7) asks. */
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));
		size_t off = 0;

		if (n <= 0)
			return;		/* EAGAIN: all read */
		/* Raw walk over the kernel's records: each is a header and len bytes of name. */
		while (off + sizeof(struct inotify_event) <= (size_t)n) {
			const struct inotify_event *ev = (const struct inotify_event *)(buf + off);

			if (off + sizeof(*ev) + ev->len > (size_t)n)
				break;
			event(w, ev, now_ms);
			off += sizeof(*ev) + ev->len;
		}
	}
}

long long certwatch_due_at(const struct certwatch *w)
{
	return w != NULL ? debounce_due_at(&w->debounce) : 0;
}

bool certwatch_fire(struct certwatch *w, long long now_ms, char *path, size_t len)
{
	if (!debounce_fire(&w->debounce, now_ms))
		return false;
	snprintf(path, len, "%s", w->first[0] != '\0' ? w->first : "(unknown)");
	w->first[0] = '\0';
	return true;
}

/* ---- the master's side ------------------------------------------------------------ */

long long master_certwatch_due(const struct master *m)
{
	/* While a reload runs a change waits for it: the loop wakes when it ends. */
	if (m->certwatch == NULL || m->pending != NULL || m->reload_retiring || m->stopping)
		return 0;
	return certwatch_due_at(m->certwatch);
}

void master_certwatch_step(struct master *m, bool readable)
{
	const struct generation *want = m->pending != NULL ? m->pending : m->current;
	char path[600];

	if (m->certwatch == NULL)
		return;
	if (readable)
		certwatch_read(m->certwatch, mg_now_ms());
	if (master_certwatch_due(m) != 0 &&
	    certwatch_fire(m->certwatch, mg_now_ms(), path, sizeof(path))) {
		log_info("reload reason=certificate-changed path=%s", path);
		reload(m);
		want = m->pending != NULL ? m->pending : m->current;
		m->certwatch->armed_for = 0;
	}
	/* Watch the files of the configuration being loaded (or back to the running one). */
	if (m->certwatch->armed_for != want->number) {
		certwatch_set(m->certwatch, want->cfg);
		m->certwatch->armed_for = want->number;
	}
}
