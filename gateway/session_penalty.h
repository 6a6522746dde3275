/*
 * session_penalty.h - what a session child tells the master's penalty
 * (master_penalty.h) about a failed login, and what it hears back.
 *
 * The master never sees a name or a password: the child sends two keyed
 * hashes (SipHash), one of the user name (lower-cased: "Bob" and "bob" are one
 * account to a guesser) and one of the user name with the password, so
 * that the same wrong password is recognised without being kept. The key
 * is made once by the master at start, before it forks anything, and
 * lives only in memory: its children inherit it.
 */
#ifndef MG_SESSION_PENALTY_H
#define MG_SESSION_PENALTY_H

#include <stdint.h>

#include "credentials.h"

/* In the master, before the first fork. Returns 0, or -1 when no randomness is to be had. */
int session_penalty_key_init(void);

/* The two hashes of cred under the key. */
void session_penalty_keys(const struct mg_credentials *cred, uint64_t *user, uint64_t *password);

/* What the master answered, in CHAN_PENALTY's flags. */
#define PENALTY_FLAG_BANNED		0x01	/* this failure banned the client's address */
#define PENALTY_FLAG_USER_WARNING	0x02	/* the user's failures from many addresses reached ban_after */

#endif
