/*
 * session_sandbox.h - the cell a session child runs in.
 *
 * A session child parses untrusted IMAP/POP3 before login, so it gets as
 * little as possible: no descriptor but its engine channel and the PAM
 * request socket, an empty directory as its root, its own unprivileged user
 * (session_user, distinct from the engines' user, so it can neither signal
 * nor trace them), no new privileges, no core dumps, and RLIMIT_NPROC 0 (it
 * cannot fork). The master resolves the user and checks the directory before
 * it forks anyone (getpwnam() needs /etc, which the chroot takes away).
 */
#ifndef MG_SESSION_SANDBOX_H
#define MG_SESSION_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

struct session_sandbox {
	bool enforce;		/* false when not started as root: nothing to drop */
	uid_t uid;
	gid_t gid;
	char root[256];		/* the empty directory to chroot into */
};

/*
 * Resolve session_user and make sure session_chroot exists (created 0755
 * when missing), is owned by root and writable by nobody else. Returns 0,
 * or -1 with err.
 */
int session_sandbox_prepare(const struct mg_config *cfg, struct session_sandbox *out, char *err,
			    size_t errlen);

/*
 * session_user's entry, when it exists, is not root and is not user; NULL
 * with err otherwise. What prepare checks first, and mailgated -t alone.
 */
struct passwd;
const struct passwd *session_sandbox_user(const struct mg_config *cfg, char *err,
					  size_t errlen);

/*
 * In a freshly forked child: shut the child in and run the session on link.
 * Never returns.
 */
_Noreturn void session_child_main(const struct session_sandbox *sandbox,
				  const struct mg_config *cfg, int link, int authd_fd);

/*
 * In a freshly forked spare: shut the child in, then wait on control for the
 * master's CHAN_SPARE_SESSION, which brings the engine's channel of the
 * session to run (ps(1) shows "mailgated-spare" until then,
 * "mailgated-login" after). EOF on control: exit quietly. Never returns.
 */
_Noreturn void session_spare_main(const struct session_sandbox *sandbox,
				  const struct mg_config *cfg, int control, int authd_fd);

#endif
