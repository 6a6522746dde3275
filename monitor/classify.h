/*
 * classify.h - what a server's answer means, as pure functions of the text.
 *
 * The heart of the plugin: telling a refusal by policy (the server would
 * not even look at a password sent in the clear) from a refusal after the
 * credentials were checked (it looked: the password was processed in the
 * clear, which is as bad as a success for a careless client with the right
 * password). The tables are in classify.c and in tests/check_monitor_classify.c.
 */
#ifndef MON_CLASSIFY_H
#define MON_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "state.h"

enum mon_greeting_class {
	MON_GREETING_OK,	/* IMAP "* OK", POP3 "+OK" */
	MON_GREETING_PREAUTH,	/* IMAP "* PREAUTH": already logged in */
	MON_GREETING_REFUSED,	/* IMAP "* BYE", POP3 "-ERR" */
	MON_GREETING_MALFORMED
};

enum mon_login_class {
	MON_LOGIN_ACCEPTED,	/* the cleartext login worked */
	MON_LOGIN_CHECKED,	/* refused after checking the credentials */
	MON_LOGIN_POLICY,	/* refused because the connection is not secure */
	MON_LOGIN_USER_OK,	/* POP3 USER accepted: the verdict comes at PASS */
	MON_LOGIN_UNEXPECTED,	/* an answer none of the above fits */
	MON_LOGIN_CLASS_COUNT
};

enum mon_greeting_class classify_imap_greeting(const char *line, size_t len);
enum mon_greeting_class classify_pop3_greeting(const char *line, size_t len);

/*
 * If line is the tagged response for tag, point *status at what follows
 * "tag " ("OK ...", "NO [CODE] ...") and return true.
 */
bool classify_imap_tagged(const char *line, size_t len, const char *tag, const char **status,
			  size_t *status_len);

/* Does an IMAP status ("OK ...") or a POP3 line ("+OK ...") say OK? */
bool classify_imap_ok(const char *status, size_t len);
bool classify_pop3_ok(const char *line, size_t len);

/*
 * The tagged answer to a cleartext LOGIN (status as from
 * classify_imap_tagged). logindisabled: the server advertised
 * LOGINDISABLED, so a BAD is its documented refusal.
 */
enum mon_login_class classify_imap_login(const char *status, size_t len, bool logindisabled);

/* The connection closed instead of answering LOGIN; bye is an untagged BYE's text or NULL. */
enum mon_login_class classify_imap_closed(const char *bye, size_t len);

/* The answers to POP3 USER and PASS before TLS. */
enum mon_login_class classify_pop3_user(const char *line, size_t len);
enum mon_login_class classify_pop3_pass(const char *line, size_t len);

/*
 * Does a refusal's text say the reason is the missing TLS ("STARTTLS",
 * "SSL/TLS", "plaintext", "cleartext", "encryption", "secure", "privacy",
 * "LOGINDISABLED", Cyrus's "under a layer")? Words are matched
 * case-insensitively at word starts (and short ones like "TLS" as whole
 * words), so "SSL/TLS" and "non-secure" count but "settlsomething" does not.
 */
bool classify_policy_wording(const char *text, size_t len);

/* The plugin state a login class stands for. */
enum mon_state classify_login_state(enum mon_login_class c);
const char *classify_login_name(enum mon_login_class c);

#endif
