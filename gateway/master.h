/*
 * master.h - run the master process until SIGTERM/SIGINT.
 */
#ifndef MG_MASTER_H
#define MG_MASTER_H

#include <stdbool.h>

#include "config.h"
#include "engine_servers.h"

/*
 * Build TLS contexts, bind every listener, daemonise unless foreground,
 * drop privileges and serve. Takes ownership of cfg. Returns 0 after a clean
 * shutdown, -1 when start-up failed (logged).
 */
int master_run(struct mg_config *cfg, const char *config_path, bool foreground);

/*
 * What -t adds to the configuration check: load the certificates and keys and
 * build every TLS context, as start-up would, but a pair in a
 * certificate_dir that does not load fails the check (start-up skips it).
 * note hears the warnings (certificates about to expire). Takes ownership
 * of cfg.
 */
int master_check(struct mg_config *cfg, servers_note_fn *note, void *arg, char *err,
		 size_t errlen);

#endif
