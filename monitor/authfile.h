/*
 * authfile.h - the credentials the plugin logs in with: read from a file
 * (never from the command line, where ps(1) would show them), or a dummy
 * user with a random password when no file is given.
 */
#ifndef MON_AUTHFILE_H
#define MON_AUTHFILE_H

#include <stddef.h>

#include "credentials.h"
#include "credfile.h"

#define MON_DUMMY_USER	 "check_cleartext_login"

/*
 * A user that should not exist (MON_DUMMY_USER) and a fresh random
 * password: a server that says "wrong password" to it has still processed
 * a password sent in the clear. Returns 0, or -1 when no randomness.
 */
int authfile_dummy(struct mg_credentials *cred);

#endif
