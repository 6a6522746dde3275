/*
 * master_tickets.h - the master's session ticket keys: made by the master
 * and rotated every TICKET_ROTATION_S, or read from the tls section's
 * ticket_key_file list (nginx's format, ticket_keys.h) and then rotated by
 * the operator, who rewrites the files and reloads.
 *
 * Made keys form a ring of three: the current key encrypts; the next one
 * is already in every engine before it is first used, so an engine that
 * takes the rotation a moment late still reads the tickets the others
 * have started to issue; the previous one keeps the tickets of the last
 * period valid. A ticket therefore resumes for one to two periods.
 *
 * Sending the keys to the engines is master_engines.c's; this file knows
 * no engine. Keys are never logged.
 */
#ifndef MG_MASTER_TICKETS_H
#define MG_MASTER_TICKETS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "ticket_keys.h"

#define TICKET_ROTATION_S	(12 * 60 * 60)
/*
 * For tests only: a shorter rotation period in seconds (1 to
 * TICKET_ROTATION_S), read once at start. Documented in mailgated(8).
 */
#define TICKET_ROTATION_ENV	"MAILGATED_TEST_TICKET_ROTATION"

struct master_tickets {
	struct ticket_keys *set;	/* in a page of its own (ticket_keys_page()) */
	bool from_files;
	unsigned period_s;		/* of made keys */
	long long rotate_at;		/* mg_now_ms() time; 0: no rotation (files) */
};

/*
 * The first set: cfg's key files, or a ring made now. The period comes
 * from TICKET_ROTATION_ENV when set. Returns 0, or -1 with err.
 */
int tickets_start(struct master_tickets *t, const struct mg_config *cfg, long long now_ms,
		  char *err, size_t errlen);

/*
 * A reload with configuration cfg: key files are read again (they may have
 * been rotated); made keys stay as they are, so tickets survive the
 * reload. Returns 1 when the set changed (the engines need it), 0 when it
 * did not, -1 with err (the set is unchanged).
 */
int tickets_reload(struct master_tickets *t, const struct mg_config *cfg, long long now_ms,
		   char *err, size_t errlen);

/* Is a rotation of made keys due at now_ms? */
bool tickets_due(const struct master_tickets *t, long long now_ms);

/* Rotate made keys (tickets_ring_rotate() with a fresh key). 0, or -1 with err. */
int tickets_rotate(struct master_tickets *t, long long now_ms, char *err, size_t errlen);

void tickets_stop(struct master_tickets *t);

/* For mailgated -t: read cfg's key files, as the master would, and forget them. */
int tickets_check(const struct mg_config *cfg, char *err, size_t errlen);

/* ---- the parts, for the unit tests ---------------------------------------- */

/*
 * Read tls->ticket_key_files into out (in the order listed: the first
 * encrypts). Each must be a regular file of exactly 48 or 80 bytes that
 * others may neither read nor write. err names the option's line and the
 * file. Returns 0 or -1.
 */
int tickets_read_files(const struct mg_tls_config *tls, struct ticket_keys *out, char *err,
		       size_t errlen);

/* A new ring: current and next (TICKET_KEY_LONG bytes each), no previous. */
void tickets_ring_start(struct ticket_keys *ring, const unsigned char *current,
			const unsigned char *next);

/* previous <- current <- next <- fresh (TICKET_KEY_LONG bytes); serial + 1. */
void tickets_ring_rotate(struct ticket_keys *ring, const unsigned char *fresh);

/* TICKET_ROTATION_ENV's value (NULL: unset) as seconds. 0, or -1 with err. */
int tickets_period(const char *value, unsigned *period_s, char *err, size_t errlen);

#endif
