/*
 * caps.h - what a server says it can do before TLS: IMAP CAPABILITY atoms
 * (in a CAPABILITY response or a [CAPABILITY ...] response code) and POP3
 * CAPA lines. Pure parsing; the probes decide what the answers mean.
 */
#ifndef MON_CAPS_H
#define MON_CAPS_H

#include <stdbool.h>
#include <stddef.h>

struct mon_caps {
	bool known;		/* a capability list was seen */
	bool starttls;		/* IMAP STARTTLS / POP3 STLS */
	bool logindisabled;	/* IMAP LOGINDISABLED */
	bool literal_plus;	/* IMAP LITERAL+ (or LITERAL-) */
	bool user;		/* POP3 USER */
	/*
	 * A SASL mechanism that carries the password itself (PLAIN, LOGIN):
	 * IMAP AUTH=PLAIN / AUTH=LOGIN, POP3 "SASL PLAIN LOGIN".
	 */
	bool password_mech;
};

/*
 * Add the capabilities in text[0..len): space-separated atoms as they
 * follow "* CAPABILITY" or "[CAPABILITY". Atoms are matched
 * case-insensitively; a "]" ends the list.
 */
void caps_parse_imap(const char *text, size_t len, struct mon_caps *caps);

/*
 * Find a [CAPABILITY ...] response code in an IMAP line (a greeting, or a
 * tagged OK) and parse it. Returns whether there was one.
 */
bool caps_imap_response_code(const char *line, size_t len, struct mon_caps *caps);

/*
 * If line is an untagged "* CAPABILITY ..." response, parse it and return
 * true.
 */
bool caps_imap_untagged(const char *line, size_t len, struct mon_caps *caps);

/* Add one line of a POP3 CAPA answer (without CRLF, dot-unstuffed). */
void caps_parse_pop3_line(const char *line, size_t len, struct mon_caps *caps);

/* Is mech (one SASL mechanism name) one that sends the password as is? */
bool caps_is_password_mech(const char *mech, size_t len);

#endif
