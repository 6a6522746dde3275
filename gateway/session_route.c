/*
 * session_route.c - client sets and backend selection. Pure decisions over the
 * configuration, so they are unit-tested without a network.
 */
#include "dnsname.h"
#include "session_route.h"
#include "session_usermap.h"

bool route_local_name_match(const struct mg_client_set_config *set, const char *name)
{
	for (size_t i = 0; i < set->n_local_names; i++) {
		if (dns_name_match(set->local_names[i], name))
			return true;
	}
	return false;
}

const struct mg_client_set_config *route_client_set(const struct mg_config *cfg,
						    const struct mg_ipkey *addr,
						    const char *local_name)
{
	for (size_t i = 0; i < cfg->n_client_sets; i++) {
		const struct mg_client_set_config *set = &cfg->client_sets[i];

		/* Every condition a set states must hold; one it leaves out holds. */
		if (set->n_networks > 0 && !cidr_match_any(set->networks, set->n_networks, addr))
			continue;
		if (set->n_local_names > 0 && !route_local_name_match(set, local_name))
			continue;
		return set;
	}
	return NULL;
}

enum mg_cleartext_policy route_cleartext_policy(const struct mg_config *cfg,
						const struct mg_client_set_config *set)
{
	return set != NULL ? set->cleartext : cfg->cleartext_default;
}

enum mg_auth_method route_auth_method(const struct mg_config *cfg,
				      const struct mg_client_set_config *set,
				      const struct mg_listener_config *listener)
{
	if (set != NULL && set->auth != MG_AUTH_DEFAULT)
		return set->auth;
	if (listener->auth != MG_AUTH_DEFAULT)
		return listener->auth;
	return cfg->auth == MG_AUTH_PAM ? MG_AUTH_PAM : MG_AUTH_BACKEND;
}

void route_select(const struct mg_config *cfg, const struct mg_client_set_config *set,
		  const struct mg_listener_config *listener, const char *user, size_t user_len,
		  struct mg_route *out)
{
	const char *matched = NULL;
	const struct mg_backend_config *mapped;

	if (set != NULL && set->backend != NULL) {
		out->backend = set->backend;
		out->reason = "client-set";
		return;
	}
	mapped = usermap_lookup(cfg->user_routes, cfg->n_user_routes, user, user_len, &matched);
	if (mapped != NULL) {
		out->backend = mapped;
		out->reason = matched;
		return;
	}
	if (listener->backend != NULL) {
		out->backend = listener->backend;
		out->reason = "listener";
		return;
	}
	out->backend = cfg->default_backend;
	out->reason = "default";
}
