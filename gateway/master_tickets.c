/*
 * master_tickets.c - the master's session ticket keys: the ring it makes
 * and rotates, or the operator's key files (see master_tickets.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "env_period.h"
#include "master_tickets.h"

_Static_assert(MG_TICKET_KEY_FILES_MAX <= TICKET_KEYS_MAX, "every key file fits in a set");

/* Where each key of a made ring sits: key[CURRENT] encrypts (ticket_keys.h). */
enum { RING_CURRENT, RING_NEXT, RING_PREVIOUS };

void tickets_ring_start(struct ticket_keys *ring, const unsigned char *current,
			const unsigned char *next)
{
	uint32_t serial = ring->serial;

	ticket_keys_wipe(ring);
	ticket_key_set(&ring->key[RING_CURRENT], current, TICKET_KEY_LONG);
	ticket_key_set(&ring->key[RING_NEXT], next, TICKET_KEY_LONG);
	ring->n = 2;
	ring->serial = serial + 1;
}

void tickets_ring_rotate(struct ticket_keys *ring, const unsigned char *fresh)
{
	ring->key[RING_PREVIOUS] = ring->key[RING_CURRENT];
	ring->key[RING_CURRENT] = ring->key[RING_NEXT];
	ticket_key_set(&ring->key[RING_NEXT], fresh, TICKET_KEY_LONG);
	ring->n = 3;
	ring->serial++;
}

int tickets_period(const char *value, unsigned *period_s, char *err, size_t errlen)
{
	return env_period(TICKET_ROTATION_ENV, value, TICKET_ROTATION_S, period_s, err, errlen);
}

/* One key file into k; err says what is wrong with it. */
static int read_key_file(const char *path, struct ticket_key *k, char *err, size_t errlen)
{
	unsigned char buf[TICKET_KEY_LONG + 1];
	struct stat st;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int rc = -1;

	if (fd < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
	} else if (st.st_mode & (S_IROTH | S_IWOTH)) {
		/* Whoever reads it can decrypt every resumed session's secrets. */
		snprintf(err, errlen, "readable or writable by others (mode %04o); chmod o-rwx it",
			 (unsigned)(st.st_mode & 07777));
	} else if (st.st_size != TICKET_KEY_SHORT && st.st_size != TICKET_KEY_LONG) {
		snprintf(err, errlen, "is %lld bytes; a key file holds exactly %d or %d "
			 "(openssl rand 80 > FILE)", (long long)st.st_size, TICKET_KEY_SHORT,
			 TICKET_KEY_LONG);
	} else {
		/* One byte more than the size asks for: a file that grew is refused, not cut. */
		while (got < sizeof(buf)) {
			ssize_t n = read(fd, buf + got, sizeof(buf) - got);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		if (got != (size_t)st.st_size || ticket_key_set(k, buf, got) < 0)
			snprintf(err, errlen, "could not be read whole (did it change?)");
		else
			rc = 0;
	}
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return rc;
}

int tickets_read_files(const struct mg_tls_config *tls, struct ticket_keys *out, char *err,
		       size_t errlen)
{
	uint32_t serial = out->serial;

	ticket_keys_wipe(out);
	if (tls->n_ticket_key_files == 0 || tls->n_ticket_key_files > TICKET_KEYS_MAX) {
		snprintf(err, errlen, "ticket_key_file (line %d): 1 to %d files", tls->ticket_key_file_line,
			 TICKET_KEYS_MAX);
		return -1;
	}
	for (size_t i = 0; i < tls->n_ticket_key_files; i++) {
		char why[256];

		if (read_key_file(tls->ticket_key_files[i], &out->key[i], why, sizeof(why)) < 0) {
			snprintf(err, errlen, "ticket_key_file (line %d): %s: %s",
				 tls->ticket_key_file_line, tls->ticket_key_files[i], why);
			ticket_keys_wipe(out);
			return -1;
		}
	}
	out->n = tls->n_ticket_key_files;
	out->serial = serial;
	return 0;
}

/* count fresh random keys of TICKET_KEY_LONG bytes into buf. */
static int random_keys(unsigned char *buf, size_t count, char *err, size_t errlen)
{
	size_t len = count * TICKET_KEY_LONG;

	if (getrandom(buf, len, 0) != (ssize_t)len) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		explicit_bzero(buf, len);
		return -1;
	}
	return 0;
}

static int make_ring(struct master_tickets *t, long long now_ms, char *err, size_t errlen)
{
	unsigned char fresh[2 * TICKET_KEY_LONG];

	if (random_keys(fresh, 2, err, errlen) < 0)
		return -1;
	tickets_ring_start(t->set, fresh, fresh + TICKET_KEY_LONG);
	explicit_bzero(fresh, sizeof(fresh));
	t->from_files = false;
	t->rotate_at = now_ms + (long long)t->period_s * 1000;
	return 0;
}

/* The files into t->set, through a page of their own until they all read. */
static int load_files(struct master_tickets *t, const struct mg_config *cfg, char *err,
		      size_t errlen)
{
	struct ticket_keys *fresh = ticket_keys_page(err, errlen);
	uint32_t serial = t->set->serial;

	if (fresh == NULL)
		return -1;
	if (tickets_read_files(&cfg->tls, fresh, err, errlen) < 0) {
		ticket_keys_page_free(fresh);
		return -1;
	}
	*t->set = *fresh;
	t->set->serial = serial + 1;
	ticket_keys_page_free(fresh);
	t->from_files = true;
	t->rotate_at = 0;
	return 0;
}

int tickets_start(struct master_tickets *t, const struct mg_config *cfg, long long now_ms,
		  char *err, size_t errlen)
{
	*t = (struct master_tickets){ 0 };
	if (tickets_period(getenv(TICKET_ROTATION_ENV), &t->period_s, err, errlen) < 0)
		return -1;
	t->set = ticket_keys_page(err, errlen);
	if (t->set == NULL)
		return -1;
	if ((cfg->tls.n_ticket_key_files > 0 ? load_files(t, cfg, err, errlen)
					     : make_ring(t, now_ms, err, errlen)) < 0) {
		tickets_stop(t);
		return -1;
	}
	return 0;
}

int tickets_reload(struct master_tickets *t, const struct mg_config *cfg, long long now_ms,
		   char *err, size_t errlen)
{
	if (cfg->tls.n_ticket_key_files > 0)
		return load_files(t, cfg, err, errlen) < 0 ? -1 : 1;
	if (!t->from_files)
		return 0;	/* made keys outlive the configuration */
	return make_ring(t, now_ms, err, errlen) < 0 ? -1 : 1;
}

bool tickets_due(const struct master_tickets *t, long long now_ms)
{
	return t->rotate_at != 0 && now_ms >= t->rotate_at;
}

int tickets_rotate(struct master_tickets *t, long long now_ms, char *err, size_t errlen)
{
	unsigned char fresh[TICKET_KEY_LONG];

	if (random_keys(fresh, 1, err, errlen) < 0) {
		/* Try again in a minute; the keys in use stay valid meanwhile. */
		t->rotate_at = now_ms + 60000;
		return -1;
	}
	tickets_ring_rotate(t->set, fresh);
	explicit_bzero(fresh, sizeof(fresh));
	t->rotate_at = now_ms + (long long)t->period_s * 1000;
	return 0;
}

void tickets_stop(struct master_tickets *t)
{
	ticket_keys_page_free(t->set);
	t->set = NULL;
	t->rotate_at = 0;
}

int tickets_check(const struct mg_config *cfg, char *err, size_t errlen)
{
	struct ticket_keys *set;
	int rc;

	if (cfg->tls.n_ticket_key_files == 0)
		return 0;
	set = ticket_keys_page(err, errlen);
	if (set == NULL)
		return -1;
	rc = tickets_read_files(&cfg->tls, set, err, errlen);
	ticket_keys_page_free(set);
	return rc;
}
