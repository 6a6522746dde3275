/*
 * engine_lastgood.h - the last good copy of every certificate pair, so that
 * a renewal that leaves a broken file behind (garbage, a key that does not
 * match, a file caught half-written) keeps the pair that was served instead
 * of dropping it.
 *
 * New engines are forked by the master and load every file afresh: they do
 * not have the pairs the running engines hold. So the first engine of each
 * generation, while still root, keeps a copy of every pair that loaded in a
 * private directory (tls last_good_dir, mode 0700, files 0600, owned by the
 * daemon's start user), replacing a copy (write, then rename) only when the
 * pair changed; and an engine whose file does not load loads that copy
 * instead. A copy is named by the SHA-256 of its source path (the name of
 * the certificate file as configured or listed), holds that path to be
 * checked on reading, and both files' bytes:
 *
 *     mailgate-last-good 1 PATH_LEN CERT_LEN KEY_LEN\n PATH CERT KEY
 *
 * KEY_LEN 0: the key is inside CERT. Copies of pairs no longer configured
 * or listed are removed (a deleted file is not a broken one).
 */
#ifndef MG_ENGINE_LASTGOOD_H
#define MG_ENGINE_LASTGOOD_H

#include <stdbool.h>
#include <stddef.h>

#include "engine_certs.h"

/* A copy's file name: the hex SHA-256 of the source path. */
#define LASTGOOD_NAME_LEN 64

void lastgood_name(const char *source, char out[LASTGOOD_NAME_LEN + 1]);

/*
 * dir is fit to hold copies: a directory (not a symlink) owned by the
 * effective user and closed to everybody else. create: make it (0700, its
 * parent 0755 when that is missing too). Returns 0, or -1 with err.
 */
int lastgood_dir_ready(const char *dir, bool create, char *err, size_t errlen);

/* The copy's bytes for pem (its cert_path is the source); malloc'd, NULL when out of memory. */
char *lastgood_format(const struct tls_pem *pem, size_t *len);

/*
 * Parse a copy that must be source's. out gets fresh buffers (wipe them
 * with tls_pem_wipe()), cert_path = source and key_path = key_label when
 * the copy has a separate key. Returns 0, or -1 with err.
 */
int lastgood_parse(const char *buf, size_t len, const char *source, const char *key_label,
		   struct tls_pem *out, char *err, size_t errlen);

/* Keep pem: 1 written, 0 the copy was already the same, -1 with err. */
int lastgood_save(const char *dir, const struct tls_pem *pem, char *err, size_t errlen);

/* source's copy into out (as lastgood_parse). -1 with err; errno ENOENT: there is none. */
int lastgood_load(const char *dir, const char *source, const char *key_label,
		  struct tls_pem *out, char *err, size_t errlen);

/* Flush the copies written (one syncfs() for a whole load). 0, or -1 with errno. */
int lastgood_sync(const char *dir);

/*
 * Remove the copies whose names are not in keep (sorted with strcmp), and
 * leftovers of interrupted writes. Returns how many were removed, or -1.
 */
int lastgood_prune(const char *dir, char (*keep)[LASTGOOD_NAME_LEN + 1], size_t n);

#endif
