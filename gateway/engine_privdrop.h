/*
 * engine_privdrop.h - give up root, once, irrevocably, and prove it.
 */
#ifndef MG_ENGINE_PRIVDROP_H
#define MG_ENGINE_PRIVDROP_H

#include <stddef.h>

/*
 * Switch to user (and group, or the user's primary group when group is
 * NULL), with the user's supplementary groups. Verifies that root cannot be
 * regained. When not running as root, does nothing and returns 1 (the caller
 * warns). Returns 0 on success, -1 with err.
 */
int privdrop(const char *user, const char *group, char *err, size_t errlen);

/*
 * What mailgated -t checks, as root or not: that user and group exist (and
 * user is not root), so that privdrop() can succeed. Returns 0, or -1 with
 * err naming the option and the value ("user NAME: no such user").
 */
int privdrop_check(const char *user, const char *group, char *err, size_t errlen);

#endif
