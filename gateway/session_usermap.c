/*
 * session_usermap.c - parsing and searching the user map.
 *
 * The whole file is read at load time into a sorted array: a lookup during
 * login is a binary search in memory the session inherited from the master,
 * with no file access after the privilege drop.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "credentials.h"
#include "session_usermap.h"

#define USERMAP_MAX_SIZE (16 * 1024 * 1024)

/* While parsing, each entry remembers its line for duplicate messages. */
struct entry {
	struct mg_user_route route;
	int line;
};

static int compare_entries(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->route.key, ((const struct entry *)b)->route.key);
}

static const struct mg_backend_config *find_backend(const struct mg_config *cfg,
						    const char *name, size_t len)
{
	for (size_t i = 0; i < cfg->n_backends; i++) {
		if (strlen(cfg->backends[i].name) == len &&
		    memcmp(cfg->backends[i].name, name, len) == 0)
			return &cfg->backends[i];
	}
	return NULL;
}

static void free_entries(struct entry *entries, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(entries[i].route.key);
	free(entries);
}

/* Split line[0..len) into at most max words; returns how many there were. */
static size_t split_words(const char *line, size_t len, const char **word, size_t *wlen,
			  size_t max)
{
	size_t count = 0, i = 0;

	while (i < len) {
		size_t start;

		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && line[i] != ' ' && line[i] != '\t')
			i++;
		if (count < max) {
			word[count] = line + start;
			wlen[count] = i - start;
		}
		count++;
	}
	return count;
}

int usermap_parse(const char *name, const char *text, size_t len, const struct mg_config *cfg,
		  struct mg_user_route **routes, size_t *count, char *err, size_t errlen)
{
	struct entry *entries = NULL;
	size_t n = 0, cap = 0, pos = 0;
	int line = 0;

	*routes = NULL;
	*count = 0;
	while (pos < len) {
		const char *start = text + pos;
		const char *nl = memchr(start, '\n', len - pos);
		size_t linelen = nl != NULL ? (size_t)(nl - start) : len - pos;
		const char *word[3];
		size_t wlen[3], words;
		const char *hash;

		pos += linelen + (nl != NULL ? 1 : 0);
		line++;
		if (linelen > 0 && start[linelen - 1] == '\r')
			linelen--;
		hash = memchr(start, '#', linelen);
		if (hash != NULL)
			linelen = (size_t)(hash - start);
		for (size_t i = 0; i < linelen; i++) {
			if ((unsigned char)start[i] < 0x20 && start[i] != '\t') {
				snprintf(err, errlen, "%s:%d: control character in the map", name, line);
				goto fail;
			}
		}
		words = split_words(start, linelen, word, wlen, 3);
		if (words == 0)
			continue;
		if (words != 2) {
			snprintf(err, errlen, "%s:%d: expected \"user-or-@domain backend\"", name, line);
			goto fail;
		}
		if (wlen[0] > MG_USER_MAX || (word[0][0] == '@' && wlen[0] == 1)) {
			snprintf(err, errlen, "%s:%d: bad user or domain", name, line);
			goto fail;
		}
		if (n == cap) {
			size_t grown = cap == 0 ? 64 : cap * 2;
			struct entry *more = realloc(entries, grown * sizeof(*more));

			if (more == NULL) {
				snprintf(err, errlen, "%s: out of memory", name);
				goto fail;
			}
			entries = more;
			cap = grown;
		}
		entries[n].line = line;
		entries[n].route.backend = find_backend(cfg, word[1], wlen[1]);
		if (entries[n].route.backend == NULL) {
			snprintf(err, errlen, "%s:%d: no backend section is called '%.*s'", name,
				 line, (int)(wlen[1] > 64 ? 64 : wlen[1]), word[1]);
			goto fail;
		}
		entries[n].route.key = strndup(word[0], wlen[0]);
		if (entries[n].route.key == NULL) {
			snprintf(err, errlen, "%s: out of memory", name);
			goto fail;
		}
		for (char *p = entries[n].route.key; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		n++;
	}
	if (n > 0)
		qsort(entries, n, sizeof(*entries), compare_entries);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(entries[i - 1].route.key, entries[i].route.key) == 0) {
			const struct entry *first = entries[i - 1].line < entries[i].line
							    ? &entries[i - 1] : &entries[i];
			const struct entry *second = first == &entries[i] ? &entries[i - 1]
									  : &entries[i];

			snprintf(err, errlen, "%s:%d: '%.64s' is mapped twice (first on line %d)",
				 name, second->line, second->route.key, first->line);
			goto fail;
		}
	}
	/* The routes are the entries without their line numbers. */
	*routes = calloc(n > 0 ? n : 1, sizeof(**routes));
	if (*routes == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		(*routes)[i] = entries[i].route;
	free(entries);
	*count = n;
	return 0;
fail:
	free_entries(entries, n);
	return -1;
}

int usermap_load(const char *path, const struct mg_config *cfg, struct mg_user_route **routes,
		 size_t *count, char *err, size_t errlen)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int rc = -1;

	*routes = NULL;
	*count = 0;
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: is not a regular file", path);
		goto out;
	}
	/* Whoever can write the map can send any user's password anywhere. */
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		snprintf(err, errlen, "%s: is writable by group or others; refusing", path);
		goto out;
	}
	if (st.st_size > USERMAP_MAX_SIZE) {
		snprintf(err, errlen, "%s: larger than %d bytes", path, USERMAP_MAX_SIZE);
		goto out;
	}
	text = malloc((size_t)st.st_size + 1);
	if (text == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	while (len < (size_t)st.st_size) {
		ssize_t got = read(fd, text + len, (size_t)st.st_size - len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			snprintf(err, errlen, "%s: cannot read: %s", path,
				 got < 0 ? strerror(errno) : "file shrank");
			goto out;
		}
		len += (size_t)got;
	}
	rc = usermap_parse(path, text, len, cfg, routes, count, err, errlen);
out:
	free(text);
	close(fd);
	return rc;
}

void usermap_free(struct mg_user_route *routes, size_t count)
{
	if (routes == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free(routes[i].key);
	free(routes);
}

static const struct mg_backend_config *find(const struct mg_user_route *routes, size_t count,
					    const char *key, size_t len)
{
	char lower[MG_USER_MAX + 2];
	size_t lo = 0, hi = count;

	if (len >= sizeof(lower))
		return NULL;
	for (size_t i = 0; i < len; i++)
		lower[i] = (char)tolower((unsigned char)key[i]);
	lower[len] = '\0';
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(lower, routes[mid].key);

		if (cmp == 0)
			return routes[mid].backend;
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const struct mg_backend_config *usermap_lookup(const struct mg_user_route *routes, size_t count,
					       const char *user, size_t len, const char **matched)
{
	const struct mg_backend_config *backend;
	const char *at;

	if (count == 0 || len == 0 || memchr(user, '\0', len) != NULL)
		return NULL;
	backend = find(routes, count, user, len);
	if (backend != NULL) {
		*matched = "user";
		return backend;
	}
	at = memrchr(user, '@', len);
	if (at == NULL)
		return NULL;
	backend = find(routes, count, at, len - (size_t)(at - user));
	if (backend != NULL)
		*matched = "domain";
	return backend;
}
