/*
 * config_warn.c - choices that are valid but insecure, reported by -t and at
 * start and reload: unverified or cleartext backend legs, backends that see
 * no client address, cleartext allowed outside a legacy node, master-user
 * backends reachable without PAM, RSA key exchange.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"

/* True when every login uses PAM, whatever its listener or client set. */
static bool config_only_pam(const struct mg_config *cfg)
{
	bool global = cfg->auth == MG_AUTH_PAM;

	for (size_t i = 0; i < cfg->n_listeners; i++) {
		enum mg_auth_method a = cfg->listeners[i].auth;

		if (a == MG_AUTH_BACKEND || (a == MG_AUTH_DEFAULT && !global))
			return false;
	}
	for (size_t i = 0; i < cfg->n_client_sets; i++) {
		if (cfg->client_sets[i].auth == MG_AUTH_BACKEND)
			return false;
	}
	return true;
}

/* ---- warnings ------------------------------------------------------------------ */

/* Loopback is the only place where a cleartext backend leg is private. */
static int is_loopback_host(const char *host)
{
	struct mg_cidr addr, loopback4, loopback6;
	const char *error = NULL;

	if (strcasecmp(host, "localhost") == 0)
		return 1;
	/* A name may resolve anywhere: it does not count as loopback. */
	if (cidr_parse(host, &addr, &error) < 0 || cidr_parse("127.0.0.0/8", &loopback4, &error) < 0 ||
	    cidr_parse("::1", &loopback6, &error) < 0)
		return 0;
	return cidr_match(&loopback4, &addr.network) || cidr_match(&loopback6, &addr.network);
}

__attribute__((format(printf, 5, 6)))
static void emit_warning(const struct mg_config *cfg, int line,
			 void (*warn)(const char *msg, void *arg), void *arg,
			 const char *fmt, ...)
{
	char msg[512], full[640];
	va_list ap;
	int n;

	if (warn == NULL)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (line > 0)
		n = snprintf(full, sizeof(full), "%s:%d: %s", cfg->path, line, msg);
	else
		n = snprintf(full, sizeof(full), "%s: %s", cfg->path, msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(full))
		memcpy(full + sizeof(full) - 4, "...", 4);
	warn(full, arg);
}

int config_warnings(const struct mg_config *cfg,
		    void (*warn)(const char *msg, void *arg), void *arg)
{
	char q[QUOTE_MAX], q2[QUOTE_MAX];
	int count = 0;
	size_t i;

	for (i = 0; i < cfg->n_backends; i++) {
		const struct mg_backend_config *b = &cfg->backends[i];

		/* Without TLS there is no certificate to check: the next test covers it. */
		if (b->tls != MG_BACKEND_TLS_NONE && !b->verify) {
			emit_warning(cfg, b->line, warn, arg,
				     "backend '%s': verify = false: the certificate of %s is "
				     "not checked, anyone on the path can pose as the backend",
				     config_quote(q, b->name), config_quote(q2, b->host));
			count++;
		}
		/*
		 * Dovecot slows logins from an address that keeps failing
		 * (auth_penalty): when it sees them all coming from the gateway,
		 * one guesser slows every user.
		 */
		if (b->client_address == MG_CLIENT_ADDRESS_NONE) {
			emit_warning(cfg, b->line, warn, arg,
				     "backend '%s': client_address = none: it sees every login "
				     "coming from this gateway, so its penalty for failed logins "
				     "(Dovecot's auth_penalty) slows every user when one client "
				     "guesses passwords; use proxy-v2 (Dovecot: "
				     "haproxy_trusted_networks) or imap-id (login_trusted_networks)",
				     config_quote(q, b->name));
			count++;
		}
		if (b->tls == MG_BACKEND_TLS_NONE && !is_loopback_host(b->host)) {
			emit_warning(cfg, b->line, warn, arg,
				     "backend '%s': tls = none towards %s, which is not "
				     "loopback: passwords cross the network in cleartext",
				     config_quote(q, b->name), config_quote(q2, b->host));
			count++;
		}
	}
	for (i = 0; i < cfg->n_client_sets; i++) {
		const struct mg_client_set_config *set = &cfg->client_sets[i];

		/* Cleartext belongs on the legacy node, not on the main backends. */
		if (set->cleartext == MG_CLEARTEXT_ALLOW && set->backend == NULL) {
			emit_warning(cfg, set->line, warn, arg,
				     "client '%s': cleartext_auth = allow without a backend: "
				     "cleartext logins reach the ordinary backends, not a legacy "
				     "node", config_quote(q, set->name));
			count++;
		}
	}
	for (i = 0; i < cfg->n_backends; i++) {
		const struct mg_backend_config *b = &cfg->backends[i];

		if (b->login == MG_BACKEND_LOGIN_MASTER && !config_only_pam(cfg)) {
			emit_warning(cfg, b->line, warn, arg,
				     "backend '%s': backend_login = master, but some logins do not "
				     "use auth = pam; those are refused when routed here",
				     config_quote(q, b->name));
			count++;
		}
	}
	if (cfg->cleartext_default != MG_CLEARTEXT_REFUSE) {
		emit_warning(cfg, 0, warn, arg,
			     "cleartext_auth = %s for every client outside the client sets: "
			     "passwords may cross the network in cleartext",
			     config_cleartext_name(cfg->cleartext_default));
		count++;
	}
	if (!cfg->tls.profile.require_forward_secrecy) {
		emit_warning(cfg, cfg->tls.line, warn, arg,
			     "tls: require_forward_secrecy = false allows RSA key exchange: "
			     "whoever gets the key later can decrypt recorded sessions");
		count++;
	}
	for (i = 0; i < cfg->n_tls_profiles; i++) {
		const struct mg_tls_profile *p = &cfg->tls_profiles[i];

		if (!p->require_forward_secrecy) {
			emit_warning(cfg, p->line, warn, arg,
				     "tls_profile '%s': forward_secrecy = allowed allows RSA key "
				     "exchange: whoever gets the key later can decrypt recorded "
				     "sessions", config_quote(q, p->name));
			count++;
		}
	}
	return count;
}
