/*
 * config.h - the gateway's configuration as a plain, read-only structure.
 *
 * config.c is the only file that knows libconfuse: it parses mailgate.conf,
 * validates every value (failing closed, with file and line), and hands the
 * rest of the program this struct. Nothing outside config.c changes it.
 */
#ifndef MG_CONFIG_H
#define MG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "config_cidr.h"
#include "log.h"

enum mg_protocol {
	MG_PROTO_IMAP,
	MG_PROTO_POP3,
	MG_PROTO_COUNT
};

/* How a listener offers TLS. */
enum mg_listen_tls {
	MG_LISTEN_STARTTLS,	/* cleartext greeting, STARTTLS/STLS required before login */
	MG_LISTEN_IMPLICIT	/* TLS from the first byte (993/995) */
};

/* How the gateway talks TLS to a backend. */
enum mg_backend_tls {
	MG_BACKEND_TLS_NONE,
	MG_BACKEND_TLS_STARTTLS,
	MG_BACKEND_TLS_IMPLICIT
};

enum mg_tls_version {
	MG_TLS_1_2,
	MG_TLS_1_3
};

/* What a client set may do without TLS. */
enum mg_cleartext_policy {
	MG_CLEARTEXT_REFUSE,	/* no credentials before STARTTLS/STLS (the default) */
	MG_CLEARTEXT_WARN,	/* accepted, with an alert to the user and a log line */
	MG_CLEARTEXT_ALLOW	/* accepted: legacy devices sent to a legacy node */
};

/* Who checks the credentials before a backend is contacted. */
enum mg_auth_method {
	MG_AUTH_DEFAULT,	/* inherit: a listener or client set that says nothing */
	MG_AUTH_BACKEND,	/* the backend decides (the credentials are replayed) */
	MG_AUTH_PAM		/* PAM in the auth process first, then the backend */
};

/* How the gateway logs in to a backend after PAM accepted the user. */
enum mg_backend_login {
	MG_BACKEND_LOGIN_PASSTHROUGH,	/* the user's own credentials */
	MG_BACKEND_LOGIN_MASTER		/* Dovecot master user: AUTHENTICATE PLAIN user\0master\0pw */
};

/* Bounds that keep the auth process's copy of the master-login table small. */
#define MG_MASTER_BACKENDS_MAX		32	/* backends with backend_login = master */
#define MG_MASTER_USER_FILE_MAX		255	/* bytes of a master_user_file path */

/* Session ticket key files in the tls section (a key set holds at most 8). */
#define MG_TICKET_KEY_FILES_MAX		8

/* How a backend learns the real client address. */
enum mg_client_address {
	MG_CLIENT_ADDRESS_NONE,
	MG_CLIENT_ADDRESS_PROXY_V1,	/* HAProxy PROXY protocol, text */
	MG_CLIENT_ADDRESS_PROXY_V2,	/* HAProxy PROXY protocol, binary */
	MG_CLIENT_ADDRESS_IMAP_ID	/* IMAP ID ("x-originating-ip" ...) before login */
};

/*
 * How a TLS leg is negotiated: a tls_profile section, or the tls section's
 * own settings (the profile of every listener that names none). Checked at
 * load with OpenSSL's own parsers (engine_tls_profile.h).
 */
struct mg_tls_profile {
	char *name;			/* NULL for the tls section's own */
	enum mg_tls_version min_version;	/* default TLS 1.2 */
	char *ciphers;			/* TLS 1.2 cipher list, NULL = built-in default */
	char *ciphersuites;		/* TLS 1.3 suites, NULL = OpenSSL default */
	char *groups;			/* key exchange groups, NULL = OpenSSL default */
	bool require_forward_secrecy;	/* default true: no RSA key exchange */
	int line;			/* where it is set, for messages */
};

struct mg_tls_config {
	/*
	 * The default pair (clients without SNI, names nothing else serves):
	 * required unless every listener names its own.
	 */
	char *certificate;		/* PEM chain, leaf first */
	char *key;			/* PEM private key */
	char *ocsp_file;		/* the default pair's OCSP response (DER), or NULL */
	char *certificate_dir;		/* NAME.pem (+ NAME.key, NAME.ocsp) by SNI name, or NULL */
	int certificate_dir_line;
	bool sni_strict;		/* a name nothing serves: unrecognized_name alert */
	bool certificate_watch;		/* reload when a certificate file changes (default yes) */
	char *last_good_dir;		/* last-good copies of the pairs (engine_lastgood.h) */
	/*
	 * Session ticket keys shared with other gateways (nginx's
	 * ssl_session_ticket_key format; the first encrypts), absolute
	 * paths, or none: the master makes and rotates its own.
	 */
	char **ticket_key_files;
	size_t n_ticket_key_files;
	int ticket_key_file_line;
	struct mg_tls_profile profile;	/* min_protocol, ciphers, ... of the section */
	int line;			/* where the tls section starts, 0 if absent */
};

struct mg_backend_config {
	char *name;
	char *host;			/* name or address */
	unsigned imap_port;		/* default 143, or 993 with tls = implicit */
	unsigned pop3_port;		/* default 110, or 995 with tls = implicit */
	enum mg_backend_tls tls;	/* default none */
	char *ca_file;			/* NULL = system default store */
	bool verify;			/* default true */
	char *verify_name;		/* NULL = host */
	/* Its tls_profile, or NULL: OpenSSL's defaults from TLS 1.2 up. */
	const struct mg_tls_profile *tls_profile;
	enum mg_client_address client_address;	/* default none */
	enum mg_backend_login login;	/* default passthrough */
	char *master_user_file;		/* for login = master: "username=" and "password=" lines */
	/*
	 * The user name from that file, read at load time. Its password is
	 * checked then and wiped, never kept: every session child is forked
	 * from the process that holds this struct. The PAM auth process reads
	 * the file again for each master login (auth_process.h).
	 */
	char *master_user;
	int line;			/* where the section starts, for messages */
};

/* A named group of client networks and what they may do (first match wins). */
struct mg_client_set_config {
	char *name;
	struct mg_cidr *networks;	/* none: any address (then local_names is given) */
	size_t n_networks;
	/*
	 * Names asked for in TLS (SNI): exact, or "*.domain" for one label,
	 * lower-case; none: any session. A set with names matches only
	 * sessions in TLS that asked for one of them.
	 */
	char **local_names;
	size_t n_local_names;
	enum mg_cleartext_policy cleartext;	/* default refuse */
	bool trusted;			/* counts as secure, like Dovecot's login_trusted_networks */
	/* The monitoring host: its failed logins are logged apart, for fail2ban to pass over. */
	bool monitoring;
	const struct mg_backend_config *backend;	/* forced backend, or NULL */
	enum mg_auth_method auth;	/* MG_AUTH_DEFAULT: the listener's or the global one */
	int line;
};

/* One line of the user map: a user name or "@domain", lower-cased. */
struct mg_user_route {
	char *key;
	const struct mg_backend_config *backend;
};

struct mg_listener_config {
	char *name;
	enum mg_protocol protocol;
	char **addresses;		/* default { "0.0.0.0", "::" } */
	size_t n_addresses;
	unsigned port;
	enum mg_listen_tls tls;
	const struct mg_backend_config *backend;	/* NULL = default_backend */
	struct mg_cidr *proxy_networks;	/* load balancers whose PROXY header is accepted */
	size_t n_proxy_networks;
	enum mg_auth_method auth;	/* MG_AUTH_DEFAULT: the global one */
	/*
	 * What the listener serves, resolved at load: its own certificate and
	 * key (set together) or the tls section's, and its own certificate_dir
	 * or the tls section's. Each a copy; certificate_dir may be NULL. The
	 * OCSP response goes with the pair: the listener's own ocsp_file with
	 * its own pair, the tls section's with the tls section's (or NULL).
	 */
	char *certificate;
	char *key;
	char *ocsp_file;
	char *certificate_dir;
	int certificate_dir_line;	/* where certificate_dir was set, for messages */
	/* Its tls_profile, else the tls section's settings: never NULL. */
	const struct mg_tls_profile *tls_profile;
	int line;
};

struct mg_config {
	char *path;			/* the file this came from */

	char *user;			/* unprivileged user, default "mailgate" */
	char *group;			/* default: user's primary group */
	char *pid_file;			/* default "/run/mailgated.pid" */
	char *session_user;		/* pre-login children, default "mailgate-session" */
	char *session_chroot;		/* their empty root, default "/run/mailgate/empty" */
	unsigned engines;		/* TLS engine processes; 0 = one per CPU */
	enum mg_log_level log_level;	/* default info */

	unsigned max_connections;		/* default 1000 */
	unsigned max_connections_per_ip;	/* every session of an address; default 0: none */
	unsigned max_prelogin_per_ip;	/* those not logged in yet, default 50 */
	unsigned max_sessions_per_user_ip;	/* logged in, one user from one address; 20 */
	unsigned shutdown_grace;		/* seconds, default 10 */

	unsigned login_timeout;		/* seconds from connect to login, default 60 */
	unsigned tls_handshake_timeout;	/* seconds for a client's TLS handshake, default 10 */
	unsigned session_timeout;	/* seconds of idle after login, default 1800 */
	unsigned backend_connect_timeout;	/* seconds, default 10 */
	unsigned backend_timeout;	/* seconds for each backend reply, default 30 */

	size_t max_line_length;		/* bytes, default 8192 */
	size_t max_literal_size;	/* bytes before login, default 8192 */
	unsigned max_bad_commands;	/* before login, default 10 */
	unsigned max_commands_before_login;	/* valid ones too, default 50 */
	unsigned max_auth_failures;	/* before the connection is closed, default 3; also
					   the PAM requests the auth process answers a session */
	unsigned auth_failure_delay_ms;	/* base delay after a failed login, default 2000 */
	/* The master's penalty (master_penalty.h): a ban after ban_after counted failures
	   (0: never) within ban_window seconds, for ban_time seconds; IPv6 counted per
	   ipv6_prefix bits. */
	unsigned ban_after, ban_window, ban_time, ipv6_prefix;
	bool login_penalty;		/* delay failures 2 s doubling to 15 s; default true */

	struct mg_tls_config tls;
	struct mg_tls_profile *tls_profiles;	/* the tls_profile sections */
	size_t n_tls_profiles;

	struct mg_listener_config *listeners;
	size_t n_listeners;
	struct mg_backend_config *backends;
	size_t n_backends;
	const struct mg_backend_config *default_backend;	/* never NULL after load */

	enum mg_cleartext_policy cleartext_default;	/* for clients in no set: refuse */
	struct mg_client_set_config *client_sets;
	size_t n_client_sets;
	enum mg_auth_method auth;	/* global: backend (default) or pam */
	char *pam_service;		/* default "mailgate" */
	unsigned auth_workers;		/* PAM worker processes, default 4 */
	unsigned auth_timeout;		/* seconds per PAM call, default 10 */
	char *user_map;			/* path of the user map file, or NULL */
	struct mg_user_route *user_routes;	/* sorted by key, for bsearch */
	size_t n_user_routes;
};

/*
 * Parse and validate the file at path. On success returns 0 and *out owns a
 * new config (release it with config_free). On failure returns -1, *out is
 * NULL and err holds one line "FILE:LINE: what is wrong" (LINE omitted where
 * no line applies, e.g. a missing file).
 */
int config_load(const char *path, struct mg_config **out, char *err, size_t errlen);

void config_free(struct mg_config *cfg);

/*
 * Report choices that are valid but insecure (TLS below 1.2 is impossible, so:
 * backend certificate verification off, cleartext towards a backend that is
 * not on loopback, forward secrecy not required). Calls warn(msg, arg) once per
 * finding with "FILE:LINE: ..." text. Returns the number of findings.
 */
int config_warnings(const struct mg_config *cfg,
		    void (*warn)(const char *msg, void *arg), void *arg);

const char *config_protocol_name(enum mg_protocol protocol);
const char *config_cleartext_name(enum mg_cleartext_policy policy);

/* True when any listener or client set (or the global setting) uses PAM. */
bool config_uses_pam(const struct mg_config *cfg);

#endif
