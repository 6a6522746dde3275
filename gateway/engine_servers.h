/*
 * engine_servers.h - the TLS server side of every listener, as an engine
 * builds it at start (while still root) and as mailgated -t checks it.
 *
 * Listeners that serve the same protocol with the same default pair and
 * certificate_dir share one server context; each certificate_dir is
 * loaded once and shared by every context that names it (at hosting scale
 * a directory holds thousands of pairs). A pair in a directory that does
 * not load is reported with its path and skipped, or, checking (-t), fails
 * the whole load. Certificates that expire within EXPIRY_WARN_DAYS are
 * warned about at load.
 */
#ifndef MG_ENGINE_SERVERS_H
#define MG_ENGINE_SERVERS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"

struct engine_servers;
struct mg_tls_server;

/* Days before expiry from which a loaded certificate is warned about. */
#define EXPIRY_WARN_DAYS 14

/*
 * What a load has to say, as one key=value line: a warning (a skipped
 * pair, a certificate about to expire) or, not a warning, what a
 * certificate_dir held.
 */
typedef void servers_note_fn(bool warning, const char *msg, void *arg);

/*
 * Build the server context of every listener of cfg (which must outlive
 * the result). strict (for -t): a pair in a certificate_dir that does not
 * load is an error; otherwise it is noted and skipped. note may be NULL
 * (say, in all engines but one, so a finding is logged once). Returns NULL
 * with err on failure: a default pair or a directory that cannot be read,
 * or (strict) a broken pair, err naming the file.
 */
struct engine_servers *servers_load(const struct mg_config *cfg, bool strict,
				    servers_note_fn *note, void *arg, char *err, size_t errlen);

/*
 * How an engine loads (servers_load() is the check's: strict, no copies).
 * keep_dir: where the last-good copies are (engine_lastgood.h), or NULL.
 * A pair of a certificate_dir whose file does not load is served from its
 * copy when there is one (noted: "certificate broken path=... error=...
 * keeping=previous not_after=..."); so is a default pair with keep_default
 * (every start but the daemon's first: a broken default at start-up stays
 * fatal). refresh: this engine writes the copies (the first engine of a
 * generation) and removes those of files no longer there. A pair's OCSP
 * response (ocsp_file, NAME.ocsp) is not copied: it is read with the pair,
 * from the file or the copy, and stapled only when it is about that leaf.
 */
struct servers_options {
	bool strict;
	const char *keep_dir;
	bool refresh;
	bool keep_default;
	servers_note_fn *note;
	void *arg;
};

struct engine_servers *servers_load_with(const struct mg_config *cfg,
					 const struct servers_options *opt, char *err,
					 size_t errlen);

/* The context of cfg->listeners[listener]. */
struct mg_tls_server *servers_get(const struct engine_servers *servers, size_t listener);

/* Give every context the engine's session ticket key set (engine_tls.h). */
struct ticket_keys;
void servers_set_ticket_keys(struct engine_servers *servers, const struct ticket_keys *keys);

/*
 * Warn about every certificate (default pairs and directories) that expires
 * before now + EXPIRY_WARN_DAYS, or has expired. Called by servers_load();
 * the hook for a periodic re-check.
 */
void servers_warn_expiring(const struct engine_servers *servers, time_t now,
			   servers_note_fn *note, void *arg);

void servers_free(struct engine_servers *servers);

#endif
