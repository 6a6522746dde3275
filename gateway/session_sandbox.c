/*
 * session_sandbox.c - shutting a session child in before it reads a byte.
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chan.h"
#include "log.h"
#include "session.h"
#include "session_sandbox.h"

/* mkdir -p for the chroot, root-owned and 0755 where we create it. */
static int make_dirs(const char *path, char *err, size_t errlen)
{
	char buf[256];
	size_t len = strlen(path);

	if (len >= sizeof(buf)) {
		snprintf(err, errlen, "session_chroot %s: path too long", path);
		return -1;
	}
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "session_chroot %s: %s", buf, strerror(errno));
			return -1;
		}
		buf[i] = path[i];
	}
	return 0;
}

const struct passwd *session_sandbox_user(const struct mg_config *cfg, char *err, size_t errlen)
{
	const struct passwd *pw;

	errno = 0;
	pw = getpwnam(cfg->session_user);
	if (pw == NULL) {
		snprintf(err, errlen, "session_user %s: %s (create it like Dovecot's dovenull: "
			 "a system user that owns nothing)", cfg->session_user,
			 errno != 0 ? strerror(errno) : "no such user");
		return NULL;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "session_user %s is root", cfg->session_user);
		return NULL;
	}
	if (strcmp(pw->pw_name, cfg->user) == 0) {
		snprintf(err, errlen, "session_user must differ from user");
		return NULL;
	}
	return pw;
}

int session_sandbox_prepare(const struct mg_config *cfg, struct session_sandbox *out, char *err,
			    size_t errlen)
{
	const struct passwd *pw;
	struct stat st;

	memset(out, 0, sizeof(*out));
	if (geteuid() != 0)
		return 0;
	pw = session_sandbox_user(cfg, err, errlen);
	if (pw == NULL)
		return -1;
	if (snprintf(out->root, sizeof(out->root), "%s", cfg->session_chroot) >=
		    (int)sizeof(out->root) ||
	    make_dirs(out->root, err, errlen) < 0)
		return -1;
	if (stat(out->root, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "session_chroot %s: not a directory", out->root);
		return -1;
	}
	if (st.st_uid != 0 || (st.st_mode & 022) != 0) {
		snprintf(err, errlen, "session_chroot %s must be owned by root and writable by "
			 "nobody else", out->root);
		return -1;
	}
	out->enforce = true;
	out->uid = pw->pw_uid;
	out->gid = pw->pw_gid;
	return 0;
}

static int shut_in(const struct session_sandbox *sandbox, char *err, size_t errlen)
{
	struct rlimit none = { 0, 0 };

	if (!sandbox->enforce)
		return 0;
	if (chroot(sandbox->root) < 0 || chdir("/") < 0) {
		snprintf(err, errlen, "chroot %.200s: %s", sandbox->root, strerror(errno));
		return -1;
	}
	if (setrlimit(RLIMIT_NPROC, &none) < 0 || setgroups(0, NULL) < 0 ||
	    setresgid(sandbox->gid, sandbox->gid, sandbox->gid) < 0 ||
	    setresuid(sandbox->uid, sandbox->uid, sandbox->uid) < 0) {
		snprintf(err, errlen, "cannot become uid %ld: %s", (long)sandbox->uid,
			 strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0) {
		snprintf(err, errlen, "root privileges could be regained");
		return -1;
	}
	return 0;
}

/*
 * Everything a child does before it may hold a session: keep only the
 * descriptors in keep, take the name ps(1) shows, then the sandbox.
 */
static void shut_in_child(const struct session_sandbox *sandbox, const char *name,
			  const int *keep, size_t nkeep)
{
	char err[256];

	prctl(PR_SET_NAME, name);
	signal(SIGHUP, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	chan_close_all_but(keep, nkeep);
	log_reopen();
	log_set_prefix("session");
	if (shut_in(sandbox, err, sizeof(err)) < 0) {
		log_error("session sandbox: %s", err);
		_exit(1);
	}
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	/* Changing credentials resets "dumpable": no core file may hold a password. */
	prctl(PR_SET_DUMPABLE, 0);
}

_Noreturn void session_child_main(const struct session_sandbox *sandbox,
				  const struct mg_config *cfg, int link, int authd_fd)
{
	struct mg_session_env env = { .cfg = cfg, .link = link, .authd_fd = authd_fd };
	int keep[2] = { link, authd_fd };

	shut_in_child(sandbox, "mailgated-login", keep, authd_fd >= 0 ? 2 : 1);
	session_run(&env);
	_exit(0);
}

/*
 * Wait until the master hands over a session (its link, returned) or lets
 * go (EOF: -1). A frame of its own: the message buffer is gone from the
 * stack before the session runs, so the session's frames do not start
 * 17 kB deeper, on pages the child would otherwise fault in (and stack
 * probing touches every page of a large frame).
 */
static __attribute__((noinline)) int wait_for_session(int control)
{
	unsigned char buf[CHAN_MSG_MAX];
	int fds[CHAN_MAX_FDS];
	size_t nfds = 0;
	long len;

	for (;;) {
		struct pollfd pfd = { .fd = control, .events = POLLIN };

		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			_exit(1);
		len = chan_recv(control, buf, fds, &nfds);
		if (len >= 0 || (errno != EAGAIN && errno != EINTR))
			break;
	}
	if (len <= 0 || buf[0] != CHAN_SPARE_SESSION || len != 1 || nfds != 1) {
		if (len > 0)
			chan_close_fds(fds, nfds);
		return -1;
	}
	return fds[0];
}

_Noreturn void session_spare_main(const struct session_sandbox *sandbox,
				  const struct mg_config *cfg, int control, int authd_fd)
{
	struct mg_session_env env = { .cfg = cfg, .authd_fd = authd_fd };
	int keep[2] = { control, authd_fd };

	shut_in_child(sandbox, "mailgated-spare", keep, authd_fd >= 0 ? 2 : 1);
	env.link = wait_for_session(control);
	close(control);
	if (env.link < 0)
		_exit(0);
	prctl(PR_SET_NAME, "mailgated-login");
	session_run(&env);
	_exit(0);
}
