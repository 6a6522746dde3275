/*
 * ticket_keys.c - session ticket keys: nginx's key layout, the set the
 * master sends the engines, and the page that keeps a set out of core
 * files and forked children (see ticket_keys.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ticket_keys.h"

int ticket_key_set(struct ticket_key *k, const unsigned char *p, size_t len)
{
	if (len != TICKET_KEY_SHORT && len != TICKET_KEY_LONG)
		return -1;
	memcpy(k->raw, p, len);
	k->len = len;
	return 0;
}

void ticket_key_parts(const struct ticket_key *k, struct ticket_key_parts *out)
{
	/* Offsets into raw, as nginx lays out each size (ticket_keys.h). */
	out->name = k->raw;
	if (k->len == TICKET_KEY_SHORT) {
		out->aes = k->raw + 16;
		out->aes_len = 16;
		out->hmac = k->raw + 32;
		out->hmac_len = 16;
	} else {
		out->hmac = k->raw + 16;
		out->hmac_len = 32;
		out->aes = k->raw + 48;
		out->aes_len = 32;
	}
}

int ticket_keys_find(const struct ticket_keys *set, const unsigned char *name)
{
	for (size_t i = 0; i < set->n; i++)
		if (memcmp(set->key[i].raw, name, TICKET_KEY_NAME_LEN) == 0)
			return (int)i;
	return -1;
}

void ticket_keys_message(const struct ticket_keys *set, struct chan_msg *msg)
{
	chan_msg_init(msg, CHAN_TICKET_KEYS);
	chan_put_u32(msg, set->serial);
	chan_put_u8(msg, (uint8_t)set->n);
	for (size_t i = 0; i < set->n; i++)
		chan_put_bytes(msg, set->key[i].raw, set->key[i].len);
}

int ticket_keys_read(struct chan_reader *r, struct ticket_keys *out)
{
	size_t n;

	ticket_keys_wipe(out);
	out->serial = chan_get_u32(r);
	n = chan_get_u8(r);
	if (n == 0 || n > TICKET_KEYS_MAX)
		r->bad = true;
	for (size_t i = 0; i < n && !r->bad; i++) {
		const unsigned char *p = NULL;
		size_t len = 0;

		chan_get_bytes(r, &p, &len, TICKET_KEY_LONG);
		if (!r->bad && ticket_key_set(&out->key[i], p, len) < 0)
			r->bad = true;
	}
	if (!chan_reader_done(r)) {
		ticket_keys_wipe(out);
		return -1;
	}
	out->n = n;
	return 0;
}

void ticket_keys_wipe(struct ticket_keys *set)
{
	explicit_bzero(set, sizeof(*set));
}

struct ticket_keys *ticket_keys_page(char *err, size_t errlen)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *p;

	_Static_assert(sizeof(struct ticket_keys) <= 4096, "a set fits in the smallest page");
	p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "mmap: %s", strerror(errno));
		return NULL;
	}
	if (madvise(p, page, MADV_WIPEONFORK) < 0 || madvise(p, page, MADV_DONTDUMP) < 0) {
		snprintf(err, errlen, "madvise: %s", strerror(errno));
		munmap(p, page);
		return NULL;
	}
	return p;	/* anonymous memory starts zeroed: an empty set */
}

void ticket_keys_page_free(struct ticket_keys *set)
{
	if (set == NULL)
		return;
	ticket_keys_wipe(set);
	munmap(set, (size_t)sysconf(_SC_PAGESIZE));
}
