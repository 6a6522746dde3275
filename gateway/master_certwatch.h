/*
 * master_certwatch.h - reload when a certificate file changes
 * (tls certificate_watch = yes, the default).
 *
 * The master watches, with inotify, the directories that hold every
 * configured certificate, key and ocsp_file and every certificate_dir, so that
 * the atomic rename certbot and acme.sh do is caught as well as a write in
 * place; for a file that is a symlink (certbot's live/ -> archive/) the
 * directory of its target too, and for a certificate_dir its parent (the
 * directory itself swapped for another). Changes are debounced (a quiet
 * second, at most five after the first) and then start the same reload as
 * SIGHUP, logged as "reload reason=certificate-changed path=...". The
 * master never opens or parses a certificate for this: the new engines
 * load the files (and keep the last good pair when one is broken).
 */
#ifndef MG_MASTER_CERTWATCH_H
#define MG_MASTER_CERTWATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define CERTWATCH_QUIET_MS 1000	/* no further change for this long: reload */
#define CERTWATCH_MAX_MS 5000	/* but never later than this after the first change */

/* The debounce, apart so it can be tested with made-up clocks. */
struct debounce {
	bool pending;
	long long first_ms;
	long long last_ms;
};

void debounce_note(struct debounce *d, long long now_ms);
/* When the pending changes are due (ms on the same clock), or 0 when none are. */
long long debounce_due_at(const struct debounce *d);
/* Due at now_ms: forget them and say so. */
bool debounce_fire(struct debounce *d, long long now_ms);

struct certwatch;

struct certwatch *certwatch_new(void);
void certwatch_free(struct certwatch *w);

/*
 * Watch what cfg serves, or nothing when its certificate_watch is off.
 * Directories watched before and still wanted keep their watch, so no
 * change is lost between two configurations.
 */
void certwatch_set(struct certwatch *w, const struct mg_config *cfg);
/* The inotify descriptor to poll, or -1. */
int certwatch_fd(const struct certwatch *w);
/* Read what happened; a change to a watched name is noted at now_ms. */
void certwatch_read(struct certwatch *w, long long now_ms);
long long certwatch_due_at(const struct certwatch *w);
/* Due at now_ms: true, with the first changed path (sanitised) in path. */
bool certwatch_fire(struct certwatch *w, long long now_ms, char *path, size_t len);

/* Does a certificate_dir load name (NAME.pem, NAME.key or NAME.ocsp, no leading dot)? */
bool certwatch_cert_name(const char *name);

#endif
