/*
 * session_usermap.h - the user map file: which backend serves a user or a domain.
 *
 *     # user or @domain      backend
 *     alice@example.com      store2
 *     @example.org           store3
 *
 * Keys are compared without regard to ASCII case. Loaded with the
 * configuration (and so again on SIGHUP); errors name the map file and line.
 */
#ifndef MG_SESSION_USERMAP_H
#define MG_SESSION_USERMAP_H

#include <stddef.h>

#include "config.h"

/*
 * Read path, resolving backend names in cfg->backends. On success *routes
 * (sorted, for usermap_lookup) and *count are set. On failure returns -1 with
 * "PATH:LINE: what is wrong" (or "PATH: ...") in err.
 */
int usermap_load(const char *path, const struct mg_config *cfg, struct mg_user_route **routes,
		 size_t *count, char *err, size_t errlen);

/* Parse an in-memory map (what usermap_load does after reading the file). */
int usermap_parse(const char *name, const char *text, size_t len, const struct mg_config *cfg,
		  struct mg_user_route **routes, size_t *count, char *err, size_t errlen);

void usermap_free(struct mg_user_route *routes, size_t count);

/*
 * The backend for user[0..len): an entry for the whole name first, then one
 * for "@domain" (the part after the last '@'). NULL when neither exists.
 * *matched is set to "user" or "domain".
 */
const struct mg_backend_config *usermap_lookup(const struct mg_user_route *routes, size_t count,
					       const char *user, size_t len, const char **matched);

#endif
