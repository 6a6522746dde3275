/*
 * ticket_keys.h - TLS session ticket keys as the master and the engines
 * share them: one key in nginx's ssl_session_ticket_key format, a set of
 * keys (the first encrypts, every one decrypts), the channel message that
 * carries a set, and the page that holds one.
 *
 * A key is 48 or 80 bytes, laid out as nginx reads its key files (its
 * ngx_ssl_session_ticket_keys()), so one file serves both:
 *
 *   48 bytes: name (16) | AES-128-CBC key (16) | HMAC-SHA256 secret (16)
 *   80 bytes: name (16) | HMAC-SHA256 secret (32) | AES-256-CBC key (32)
 *
 * The name is sent in the clear at the start of every ticket and picks
 * the key that decrypts it. Keys the master makes itself are 80 bytes.
 *
 * No OpenSSL here: the engines' ticket callback (engine_tls.c) reads the
 * parts through ticket_key_parts().
 */
#ifndef MG_TICKET_KEYS_H
#define MG_TICKET_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan.h"

#define TICKET_KEY_NAME_LEN	16
#define TICKET_KEY_SHORT	48	/* AES-128 */
#define TICKET_KEY_LONG		80	/* AES-256 */
#define TICKET_KEYS_MAX		8	/* in one set: files listed, or current, next, previous */

struct ticket_key {
	unsigned char raw[TICKET_KEY_LONG];
	size_t len;			/* TICKET_KEY_SHORT or TICKET_KEY_LONG */
};

/* What encrypts and authenticates a ticket, pointing into a key. */
struct ticket_key_parts {
	const unsigned char *name;	/* TICKET_KEY_NAME_LEN bytes */
	const unsigned char *aes;
	size_t aes_len;			/* 16 or 32 */
	const unsigned char *hmac;
	size_t hmac_len;		/* 16 or 32 */
};

/*
 * A set: key[0] encrypts new tickets, every key decrypts. serial counts
 * the sets the master has made (a rotation or a reload that changed them),
 * so a log line can say which set an engine runs without naming a key.
 */
struct ticket_keys {
	struct ticket_key key[TICKET_KEYS_MAX];
	size_t n;
	uint32_t serial;
};

/* Copy len bytes (48 or 80) into k. Returns 0, or -1 for any other length. */
int ticket_key_set(struct ticket_key *k, const unsigned char *p, size_t len);

void ticket_key_parts(const struct ticket_key *k, struct ticket_key_parts *out);

/* The index in set of the key named name (TICKET_KEY_NAME_LEN bytes), or -1. */
int ticket_keys_find(const struct ticket_keys *set, const unsigned char *name);

/*
 * The CHAN_TICKET_KEYS message: serial (u32), count (u8), then each key as
 * a byte string of 48 or 80. The caller wipes msg->data after sending.
 */
void ticket_keys_message(const struct ticket_keys *set, struct chan_msg *msg);

/*
 * Read a CHAN_TICKET_KEYS message (after its type byte) into out: at least
 * one key, at most TICKET_KEYS_MAX, each 48 or 80 bytes, nothing left over.
 * Returns 0, or -1 with out wiped.
 */
int ticket_keys_read(struct chan_reader *r, struct ticket_keys *out);

/*
 * A set in a page of its own that never reaches a core file and that the
 * kernel zeroes in every child forked afterwards (session children, the
 * auth process): only a channel message gives an engine its keys. NULL
 * with err on failure. ticket_keys_page_free() wipes it first.
 */
struct ticket_keys *ticket_keys_page(char *err, size_t errlen);
void ticket_keys_page_free(struct ticket_keys *set);

void ticket_keys_wipe(struct ticket_keys *set);

#endif
