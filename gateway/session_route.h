/*
 * session_route.h - the per-client decisions: which client set a connection belongs
 * to (at connect time, so the greeting already tells the truth), and which
 * backend an authenticated session goes to.
 */
#ifndef MG_SESSION_ROUTE_H
#define MG_SESSION_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "netaddr.h"

/*
 * The first client set that matches, or NULL: its networks (when it has
 * any) contain addr, and one of its local_names (when it has any) matches
 * local_name, the name the client asked for in TLS (SNI), lower-case. A
 * NULL local_name (no TLS yet, or TLS without SNI) matches no set that has
 * local_names.
 */
const struct mg_client_set_config *route_client_set(const struct mg_config *cfg,
						    const struct mg_ipkey *addr,
						    const char *local_name);

/* Does name match one of set's local_names (exact or "*.domain", any case)? */
bool route_local_name_match(const struct mg_client_set_config *set, const char *name);

/* The cleartext policy for a client: its set's, or the global default. */
enum mg_cleartext_policy route_cleartext_policy(const struct mg_config *cfg,
						const struct mg_client_set_config *set);

/* Who checks credentials: the client set's choice, the listener's, the global one. */
enum mg_auth_method route_auth_method(const struct mg_config *cfg,
				      const struct mg_client_set_config *set,
				      const struct mg_listener_config *listener);

struct mg_route {
	const struct mg_backend_config *backend;
	const char *reason;	/* "client-set", "user", "domain", "listener" or "default" */
};

/*
 * Choose the backend, in order: the client set's forced backend, the user
 * map (user, then @domain), the listener's backend, the default backend.
 */
void route_select(const struct mg_config *cfg, const struct mg_client_set_config *set,
		  const struct mg_listener_config *listener, const char *user, size_t user_len,
		  struct mg_route *out);

#endif
