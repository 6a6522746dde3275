/*
 * engine_lastgood.c - the last good copy of every certificate pair (see
 * engine_lastgood.h). Run by engines while they are still root; every
 * buffer that held a key is wiped before it is freed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "engine_lastgood.h"

#define MAGIC "mailgate-last-good 1 "
#define PART_MAX (1024 * 1024)		/* as a certificate file may be at most */
#define PATH_MAX_LEN 4096
#define HEADER_MAX 96

void lastgood_name(const char *source, char out[LASTGOOD_NAME_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(source, strlen(source), md, &n, EVP_sha256(), NULL) || n != 32)
		memset(md, 0, sizeof(md));	/* not reached with a working libcrypto */
	for (size_t i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[LASTGOOD_NAME_LEN] = '\0';
}

static int check_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(dir, &st) < 0) {
		snprintf(err, errlen, "last_good_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "last_good_dir %s must be a directory (not a symlink) owned "
			 "by uid %ld with mode 0700", dir, (long)geteuid());
		return -1;
	}
	return 0;
}

int lastgood_dir_ready(const char *dir, bool create, char *err, size_t errlen)
{
	char parent[PATH_MAX_LEN];
	const char *slash = strrchr(dir, '/');

	if (!create || mkdir(dir, 0700) == 0 || errno == EEXIST)
		return check_dir(dir, err, errlen);
	if (errno == ENOENT && slash != NULL && slash != dir &&
	    (size_t)(slash - dir) < sizeof(parent)) {
		memcpy(parent, dir, (size_t)(slash - dir));
		parent[slash - dir] = '\0';
		if ((mkdir(parent, 0755) == 0 || errno == EEXIST) && mkdir(dir, 0700) == 0)
			return check_dir(dir, err, errlen);
	}
	snprintf(err, errlen, "last_good_dir %s: %s", dir, strerror(errno));
	return -1;
}

char *lastgood_format(const struct tls_pem *pem, size_t *len)
{
	size_t path_len = strlen(pem->cert_path);
	size_t key_len = pem->key != NULL ? pem->key_len : 0;
	char header[HEADER_MAX];
	int h = snprintf(header, sizeof(header), MAGIC "%zu %zu %zu\n", path_len, pem->cert_len,
			 key_len);
	char *buf;

	if (h < 0 || (size_t)h >= sizeof(header))
		return NULL;
	*len = (size_t)h + path_len + pem->cert_len + key_len;
	buf = malloc(*len);
	if (buf == NULL)
		return NULL;
	memcpy(buf, header, (size_t)h);
	memcpy(buf + h, pem->cert_path, path_len);
	memcpy(buf + h + path_len, pem->cert, pem->cert_len);
	if (key_len > 0)
		memcpy(buf + h + path_len + pem->cert_len, pem->key, key_len);
	return buf;
}

/* A decimal length at *p: digits only, no leading zero, at most max; advances *p. */
static bool take_len(const char **p, const char *end, size_t max, size_t *out)
{
	size_t v = 0;
	const char *s = *p;

	if (s == end || *s < '0' || *s > '9' || (*s == '0' && s + 1 < end && s[1] >= '0' &&
						  s[1] <= '9'))
		return false;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (size_t)(*s - '0');
		if (v > max)
			return false;
	}
	*p = s;
	*out = v;
	return true;
}

static char *copy_part(const char *p, size_t len)
{
	char *c = malloc(len + 1);

	if (c != NULL) {
		memcpy(c, p, len);
		c[len] = '\0';
	}
	return c;
}

int lastgood_parse(const char *buf, size_t len, const char *source, const char *key_label,
		   struct tls_pem *out, char *err, size_t errlen)
{
	const char *p = buf, *end = buf + len;
	size_t path_len, cert_len, key_len;

	*out = (struct tls_pem){ .cert_path = source };
	if (len < sizeof(MAGIC) - 1 || memcmp(buf, MAGIC, sizeof(MAGIC) - 1) != 0) {
		snprintf(err, errlen, "not a last-good copy");
		return -1;
	}
	p += sizeof(MAGIC) - 1;
	if (!take_len(&p, end, PATH_MAX_LEN, &path_len) || p == end || *p++ != ' ' ||
	    !take_len(&p, end, PART_MAX, &cert_len) || p == end || *p++ != ' ' ||
	    !take_len(&p, end, PART_MAX, &key_len) || p == end || *p++ != '\n') {
		snprintf(err, errlen, "bad last-good header");
		return -1;
	}
	if ((size_t)(end - p) != path_len + cert_len + key_len || cert_len == 0) {
		snprintf(err, errlen, "last-good copy has the wrong length");
		return -1;
	}
	if (path_len != strlen(source) || memcmp(p, source, path_len) != 0) {
		snprintf(err, errlen, "last-good copy is of another file");
		return -1;
	}
	p += path_len;
	out->cert = copy_part(p, cert_len);
	out->cert_len = cert_len;
	if (key_len > 0) {
		out->key_path = key_label != NULL ? key_label : source;
		out->key = copy_part(p + cert_len, key_len);
		out->key_len = key_len;
	}
	if (out->cert == NULL || (key_len > 0 && out->key == NULL)) {
		tls_pem_wipe(out);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static void wipe_free(char *buf, size_t len)
{
	if (buf != NULL) {
		explicit_bzero(buf, len);
		free(buf);
	}
}

/* The whole file (no symlink followed); NULL with errno. */
static char *read_all(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t got = 0;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > HEADER_MAX + PATH_MAX_LEN + 2 * PART_MAX) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	buf = malloc((size_t)st.st_size);
	while (buf != NULL && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n <= 0) {
			wipe_free(buf, (size_t)st.st_size);
			buf = NULL;
			errno = n == 0 ? EINVAL : errno;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return buf;
}

static int copy_path(char *out, size_t outlen, const char *dir, const char *prefix,
		     const char *name)
{
	return (size_t)snprintf(out, outlen, "%s/%s%s", dir, prefix, name) < outlen ? 0 : -1;
}

int lastgood_load(const char *dir, const char *source, const char *key_label,
		  struct tls_pem *out, char *err, size_t errlen)
{
	char name[LASTGOOD_NAME_LEN + 1], path[PATH_MAX_LEN];
	size_t len = 0;
	char *buf;
	int rc;

	*out = (struct tls_pem){ .cert_path = source };
	lastgood_name(source, name);
	if (copy_path(path, sizeof(path), dir, "", name) < 0) {
		snprintf(err, errlen, "last_good_dir: path too long");
		return -1;
	}
	buf = read_all(path, &len);
	if (buf == NULL) {
		int saved = errno;

		snprintf(err, errlen, "%s", saved == ENOENT ? "no last-good copy" : strerror(saved));
		errno = saved;
		return -1;
	}
	rc = lastgood_parse(buf, len, source, key_label, out, err, errlen);
	wipe_free(buf, len);
	errno = rc < 0 ? EINVAL : 0;
	return rc;
}

int lastgood_save(const char *dir, const struct tls_pem *pem, char *err, size_t errlen)
{
	char name[LASTGOOD_NAME_LEN + 1], path[PATH_MAX_LEN], tmp[PATH_MAX_LEN];
	size_t len = 0, old_len = 0, done = 0;
	char *buf = lastgood_format(pem, &len), *old;
	bool ok;
	int fd, saved;

	if (buf == NULL) {
		snprintf(err, errlen, "%s: out of memory", pem->cert_path);
		return -1;
	}
	lastgood_name(pem->cert_path, name);
	if (copy_path(path, sizeof(path), dir, "", name) < 0 ||
	    copy_path(tmp, sizeof(tmp), dir, ".", name) < 0) {
		wipe_free(buf, len);
		snprintf(err, errlen, "last_good_dir: path too long");
		return -1;
	}
	old = read_all(path, &old_len);
	if (old != NULL && old_len == len && memcmp(old, buf, len) == 0) {
		wipe_free(old, old_len);
		wipe_free(buf, len);
		return 0;
	}
	wipe_free(old, old_len);
	/* A leftover of an interrupted write is ours to replace. */
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	while (fd >= 0 && done < len) {
		ssize_t n = write(fd, buf + done, len - done);

		if (n <= 0)
			break;
		done += (size_t)n;
	}
	wipe_free(buf, len);
	/*
	 * No fsync per copy: at hosting scale (10,000 pairs) that made a first
	 * start take longer than the master waits for its engines. The batch is
	 * flushed once (lastgood_sync()); a copy a crash leaves short fails its
	 * strict framing and is only not there as a fallback.
	 */
	ok = fd >= 0 && done == len;
	saved = errno;
	if (fd >= 0 && close(fd) < 0 && ok) {
		ok = false;
		saved = errno;
	}
	if (!ok || rename(tmp, path) < 0) {
		snprintf(err, errlen, "last-good copy of %s: %s", pem->cert_path,
			 strerror(ok ? errno : saved));
		unlink(tmp);
		return -1;
	}
	return 1;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* A copy's name (64 hex digits), or one of an interrupted write (a dot before it). */
static bool copy_name(const char *name, bool *tmp)
{
	*tmp = name[0] == '.';
	name += *tmp;
	if (strlen(name) != LASTGOOD_NAME_LEN)
		return false;
	for (size_t i = 0; i < LASTGOOD_NAME_LEN; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return false;
	return true;
}

int lastgood_sync(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = syncfs(fd);
	close(fd);
	return rc;
}

int lastgood_prune(const char *dir, char (*keep)[LASTGOOD_NAME_LEN + 1], size_t n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int removed = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		bool tmp;

		if (!copy_name(e->d_name, &tmp))
			continue;	/* not ours: left alone */
		if (!tmp && n > 0 && bsearch(e->d_name, keep, n, sizeof(*keep), by_name) != NULL)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}
