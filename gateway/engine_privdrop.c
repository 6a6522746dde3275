/*
 * engine_privdrop.c - the one place where mailgated stops being root, and
 * the check (-t) that the user and group it would become exist.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <string.h>
#include <unistd.h>

#include "engine_privdrop.h"

/* The uid and gid of user (and group, or the user's primary group), never root's uid. */
static int lookup(const char *user, const char *group, uid_t *uid, gid_t *gid, char *err,
		  size_t errlen)
{
	const struct passwd *pw;

	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		snprintf(err, errlen, "user %s: %s", user, errno != 0 ? strerror(errno) : "no such user");
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "user %s is root; refusing to run sessions as root", user);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	if (group != NULL) {
		const struct group *gr;

		errno = 0;
		gr = getgrnam(group);
		if (gr == NULL) {
			snprintf(err, errlen, "group %s: %s", group,
				 errno != 0 ? strerror(errno) : "no such group");
			return -1;
		}
		*gid = gr->gr_gid;
	}
	return 0;
}

int privdrop_check(const char *user, const char *group, char *err, size_t errlen)
{
	uid_t uid;
	gid_t gid;

	return lookup(user, group, &uid, &gid, err, errlen);
}

int privdrop(const char *user, const char *group, char *err, size_t errlen)
{
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0)
		return 1;
	if (lookup(user, group, &uid, &gid, err, errlen) < 0)
		return -1;
	if (initgroups(user, gid) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0) {
		snprintf(err, errlen, "cannot switch to %s: %s", user, strerror(errno));
		return -1;
	}
	/* Prove it: a process that can become root again has not dropped anything. */
	if (setuid(0) == 0 || seteuid(0) == 0) {
		snprintf(err, errlen, "root privileges could be regained after the switch");
		return -1;
	}
	/* Changing credentials resets "dumpable" to the system default: clear it again. */
	prctl(PR_SET_DUMPABLE, 0);
	return 0;
}
