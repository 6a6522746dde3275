/*
 * credfile.h - credentials files: "username=" and "password=" lines, shared
 * by check_cleartext_login (-a) and mailgated (master_user_file).
 */
#ifndef MG_CREDFILE_H
#define MG_CREDFILE_H

#include <stddef.h>

#include "credentials.h"

#define CREDFILE_MAX 4096	/* bytes; a credentials file is two lines */

/*
 * Read "username=" and "password=" lines from path into cred. Blank lines
 * and lines starting with '#' are ignored; spaces around the key and before
 * the value are too (the rest of the line, trailing spaces included, is the
 * value). Fails (-1 with err) when the file is not a regular file, is
 * readable or writable by others or writable by its group, is larger than
 * CREDFILE_MAX, has an unknown key, a repeated key, a missing or empty
 * value, or a NUL byte. err never contains the password.
 */
int credfile_read(const char *path, struct mg_credentials *cred, char *err, size_t errlen);

/* The same checks on a file's contents already in memory. */
int credfile_parse(const char *text, size_t len, struct mg_credentials *cred, char *err,
		   size_t errlen);

#endif
