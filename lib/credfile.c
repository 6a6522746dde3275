/*
 * credfile.c - a credentials file ("username=" and "password=" lines), read
 * strictly: the plugin's login file and the gateway's master-user file.
 *
 * The file is opened once and checked on the open descriptor (no race
 * between the check and the read). A file others can read is refused
 * rather than warned about: a password in it is not a secret any more.
 * Buffers that held the file are wiped before they are released.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "credfile.h"

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* One "key=value" line (no line end) into cred; lineno for messages. */
static int parse_line(const char *line, size_t len, unsigned lineno, struct mg_credentials *cred,
		      bool *have_user, bool *have_pass, char *err, size_t errlen)
{
	const char *eq = memchr(line, '=', len);
	size_t klen, vlen;
	const char *key, *value;

	if (eq == NULL) {
		snprintf(err, errlen, "line %u: expected username= or password=", lineno);
		return -1;
	}
	key = line;
	klen = (size_t)(eq - line);
	while (klen > 0 && is_space(key[0])) {
		key++;
		klen--;
	}
	while (klen > 0 && is_space(key[klen - 1]))
		klen--;
	value = eq + 1;
	vlen = len - (size_t)(value - line);
	while (vlen > 0 && is_space(value[0])) {
		value++;
		vlen--;
	}
	if (klen == 8 && memcmp(key, "username", 8) == 0) {
		if (*have_user) {
			snprintf(err, errlen, "line %u: username given twice", lineno);
			return -1;
		}
		if (vlen == 0 || vlen > MG_USER_MAX) {
			snprintf(err, errlen, "line %u: username empty or longer than %d bytes", lineno,
				 MG_USER_MAX);
			return -1;
		}
		memcpy(cred->user, value, vlen);
		cred->user[vlen] = '\0';
		cred->user_len = vlen;
		*have_user = true;
		return 0;
	}
	if (klen == 8 && memcmp(key, "password", 8) == 0) {
		if (*have_pass) {
			snprintf(err, errlen, "line %u: password given twice", lineno);
			return -1;
		}
		if (vlen == 0 || vlen > MG_PASSWORD_MAX) {
			snprintf(err, errlen, "line %u: password empty or longer than %d bytes", lineno,
				 MG_PASSWORD_MAX);
			return -1;
		}
		memcpy(cred->password, value, vlen);
		cred->password[vlen] = '\0';
		cred->password_len = vlen;
		*have_pass = true;
		return 0;
	}
	snprintf(err, errlen, "line %u: unknown key (expected username= or password=)", lineno);
	return -1;
}

int credfile_parse(const char *text, size_t len, struct mg_credentials *cred, char *err,
		   size_t errlen)
{
	bool have_user = false, have_pass = false;
	unsigned lineno = 0;
	size_t pos = 0;

	credentials_wipe(cred);
	if (memchr(text, '\0', len) != NULL) {
		snprintf(err, errlen, "contains a NUL byte");
		return -1;
	}
	while (pos < len) {
		const char *line = text + pos;
		const char *lf = memchr(line, '\n', len - pos);
		size_t linelen = lf != NULL ? (size_t)(lf - line) : len - pos;
		size_t start = 0;

		pos += linelen + (lf != NULL ? 1 : 0);
		lineno++;
		if (linelen > 0 && line[linelen - 1] == '\r')
			linelen--;
		while (start < linelen && is_space(line[start]))
			start++;
		if (start == linelen || line[start] == '#')
			continue;
		if (parse_line(line, linelen, lineno, cred, &have_user, &have_pass, err, errlen) < 0) {
			credentials_wipe(cred);
			return -1;
		}
	}
	if (!have_user || !have_pass) {
		snprintf(err, errlen, "no %s= line", have_user ? "password" : "username");
		credentials_wipe(cred);
		return -1;
	}
	return 0;
}

int credfile_read(const char *path, struct mg_credentials *cred, char *err, size_t errlen)
{
	char buf[CREDFILE_MAX + 1];
	size_t len = 0;
	struct stat st;
	int fd, rc;

	credentials_wipe(cred);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	if ((st.st_mode & (S_IROTH | S_IWOTH | S_IWGRP)) != 0) {
		snprintf(err, errlen, "%s: readable or writable by others (mode %03o); chmod 600 or 640",
			 path, (unsigned)(st.st_mode & 0777));
		close(fd);
		return -1;
	}
	while (len < sizeof(buf)) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);

		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			close(fd);
			explicit_bzero(buf, sizeof(buf));
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	if (len > CREDFILE_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", path, CREDFILE_MAX);
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	rc = credfile_parse(buf, len, cred, err, errlen);
	explicit_bzero(buf, sizeof(buf));
	if (rc < 0) {
		/* Prefix the file name: "FILE: line 2: ...". */
		char reason[256];

		snprintf(reason, sizeof(reason), "%s", err);
		snprintf(err, errlen, "%s: %s", path, reason);
	}
	return rc;
}
