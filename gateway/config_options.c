/*
 * config_options.c - every option of mailgate.conf that is not a string:
 * numbers with their ranges, words (log_level = info, tls = implicit) and
 * booleans, one table per section. One entry {name, type, default, range or
 * words, field} drives all three uses: config.c makes the libconfuse schema
 * from it, config_option_parse() checks what the file says, and
 * config_option_store() puts the value into the struct. Nothing here knows
 * libconfuse.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "log.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/*
 * offsetof(st, member) when member has exactly the C type `type`, and a
 * compile error ("selector ... not compatible with any association") when
 * it has another: config_option_store() writes the field as that type.
 */
#define FIELD(st, member, type) _Generic(((st *)0)->member, type: offsetof(st, member))

/* An enum is stored as an int: refuse at compile time one that is not int-sized. */
#define ENUM_FIELD(st, member, etype)						\
	(FIELD(st, member, etype) + 0 * sizeof(struct {				\
		_Static_assert(sizeof(etype) == sizeof(int), #etype " is not int-sized"); \
		char ok;							\
	}))

#define UNSIGNED_AT(st, member)	.type = CONFIG_UNSIGNED, .offset = FIELD(st, member, unsigned)
#define SIZE_AT(st, member)	.type = CONFIG_SIZE, .offset = FIELD(st, member, size_t)
#define BOOL_AT(st, member)	.type = CONFIG_BOOL, .offset = FIELD(st, member, bool)
#define ENUM_AT(st, member, etype) .type = CONFIG_ENUM, .offset = ENUM_FIELD(st, member, etype)
#define WORDS(w)		.words = (w), .n_words = N_OF(w)

/* ---- the words --------------------------------------------------------- */

static const struct config_word engines_words[] = {
	{ "auto", 0 },		/* one engine per CPU */
};

static const struct config_word log_level_words[] = {
	{ "off", MG_LOG_OFF }, { "error", MG_LOG_ERROR }, { "warning", MG_LOG_WARNING },
	{ "info", MG_LOG_INFO }, { "debug", MG_LOG_DEBUG },
};

static const struct config_word cleartext_words[] = {
	{ "refuse", MG_CLEARTEXT_REFUSE }, { "warn", MG_CLEARTEXT_WARN },
	{ "allow", MG_CLEARTEXT_ALLOW },
};

static const struct config_word auth_words[] = {
	{ "backend", MG_AUTH_BACKEND }, { "pam", MG_AUTH_PAM },
};

static const struct config_word tls_version_words[] = {
	{ "TLSv1.2", MG_TLS_1_2 }, { "TLSv1.3", MG_TLS_1_3 },
};

static const struct config_word forward_secrecy_words[] = {
	{ "required", 1 }, { "allowed", 0 },
};

static const struct config_word backend_tls_words[] = {
	{ "none", MG_BACKEND_TLS_NONE }, { "starttls", MG_BACKEND_TLS_STARTTLS },
	{ "implicit", MG_BACKEND_TLS_IMPLICIT },
};

static const struct config_word client_address_words[] = {
	{ "none", MG_CLIENT_ADDRESS_NONE }, { "proxy-v1", MG_CLIENT_ADDRESS_PROXY_V1 },
	{ "proxy-v2", MG_CLIENT_ADDRESS_PROXY_V2 }, { "imap-id", MG_CLIENT_ADDRESS_IMAP_ID },
};

static const struct config_word backend_login_words[] = {
	{ "passthrough", MG_BACKEND_LOGIN_PASSTHROUGH }, { "master", MG_BACKEND_LOGIN_MASTER },
};

static const struct config_word protocol_words[] = {
	{ "imap", MG_PROTO_IMAP }, { "pop3", MG_PROTO_POP3 },
};

static const struct config_word listen_tls_words[] = {
	{ "starttls", MG_LISTEN_STARTTLS }, { "implicit", MG_LISTEN_IMPLICIT },
};

/* ---- the tables ---------------------------------------------------------- */

#define ROOT struct mg_config
static const struct config_option root_options[] = {
	{ "engines", UNSIGNED_AT(ROOT, engines), .def = 0, .min = 1, .max = 64,
	  WORDS(engines_words) },
	{ "log_level", ENUM_AT(ROOT, log_level, enum mg_log_level), .def = MG_LOG_INFO,
	  WORDS(log_level_words) },
	{ "max_connections", UNSIGNED_AT(ROOT, max_connections), .def = 1000,
	  .min = 1, .max = 1000000 },
	{ "max_connections_per_ip", UNSIGNED_AT(ROOT, max_connections_per_ip), .def = 0,
	  .min = 0, .max = 1000000 },
	{ "max_prelogin_per_ip", UNSIGNED_AT(ROOT, max_prelogin_per_ip), .def = 50,
	  .min = 1, .max = 1000000 },
	{ "max_sessions_per_user_ip", UNSIGNED_AT(ROOT, max_sessions_per_user_ip), .def = 20,
	  .min = 1, .max = 1000000 },
	{ "shutdown_grace", UNSIGNED_AT(ROOT, shutdown_grace), .def = 10, .min = 0, .max = 3600 },
	{ "login_timeout", UNSIGNED_AT(ROOT, login_timeout), .def = 60, .min = 1, .max = 3600 },
	{ "tls_handshake_timeout", UNSIGNED_AT(ROOT, tls_handshake_timeout), .def = 10,
	  .min = 1, .max = 300 },
	{ "session_timeout", UNSIGNED_AT(ROOT, session_timeout), .def = 1800,
	  .min = 1, .max = 86400 },
	{ "backend_connect_timeout", UNSIGNED_AT(ROOT, backend_connect_timeout), .def = 10,
	  .min = 1, .max = 300 },
	{ "backend_timeout", UNSIGNED_AT(ROOT, backend_timeout), .def = 30, .min = 1, .max = 3600 },
	{ "max_line_length", SIZE_AT(ROOT, max_line_length), .def = 8192,
	  .min = 512, .max = 65536 },
	{ "max_literal_size", SIZE_AT(ROOT, max_literal_size), .def = 8192,
	  .min = 0, .max = 65536 },
	{ "max_bad_commands", UNSIGNED_AT(ROOT, max_bad_commands), .def = 10,
	  .min = 1, .max = 1000 },
	{ "max_commands_before_login", UNSIGNED_AT(ROOT, max_commands_before_login), .def = 50,
	  .min = 1, .max = 10000 },
	{ "max_auth_failures", UNSIGNED_AT(ROOT, max_auth_failures), .def = 3,
	  .min = 1, .max = 100 },
	{ "auth_failure_delay", UNSIGNED_AT(ROOT, auth_failure_delay_ms), .def = 2000,
	  .min = 0, .max = 60000 },
	{ "login_penalty", BOOL_AT(ROOT, login_penalty), .def = 1 },
	{ "ban_after", UNSIGNED_AT(ROOT, ban_after), .def = 20, .min = 0, .max = 100000 },
	{ "ban_window", UNSIGNED_AT(ROOT, ban_window), .def = 600, .min = 1, .max = 86400,
	  .duration = true },
	{ "ban_time", UNSIGNED_AT(ROOT, ban_time), .def = 3600, .min = 1, .max = 30 * 86400,
	  .duration = true },
	{ "ipv6_prefix", UNSIGNED_AT(ROOT, ipv6_prefix), .def = 64, .min = 1, .max = 128 },
	{ "cleartext_auth", ENUM_AT(ROOT, cleartext_default, enum mg_cleartext_policy),
	  .def = MG_CLEARTEXT_REFUSE, WORDS(cleartext_words) },
	{ "auth", ENUM_AT(ROOT, auth, enum mg_auth_method), .def = MG_AUTH_BACKEND,
	  WORDS(auth_words) },
	{ "auth_workers", UNSIGNED_AT(ROOT, auth_workers), .def = 4, .min = 1, .max = 64 },
	{ "auth_timeout", UNSIGNED_AT(ROOT, auth_timeout), .def = 10, .min = 1, .max = 300 },
};
#undef ROOT

#define TLS struct mg_tls_config
static const struct config_option tls_options[] = {
	{ "min_protocol", ENUM_AT(TLS, profile.min_version, enum mg_tls_version),
	  .def = MG_TLS_1_2, WORDS(tls_version_words) },
	{ "require_forward_secrecy", BOOL_AT(TLS, profile.require_forward_secrecy), .def = 1 },
	{ "sni_strict", BOOL_AT(TLS, sni_strict), .def = 0 },
	{ "certificate_watch", BOOL_AT(TLS, certificate_watch), .def = 1 },
};
#undef TLS

#define PROFILE struct mg_tls_profile
static const struct config_option profile_options[] = {
	{ "min_protocol", ENUM_AT(PROFILE, min_version, enum mg_tls_version),
	  .def = MG_TLS_1_2, WORDS(tls_version_words) },
	{ "forward_secrecy", BOOL_AT(PROFILE, require_forward_secrecy), .def = 1,
	  WORDS(forward_secrecy_words) },
};
#undef PROFILE

/* Without imap_port or pop3_port the backend's tls decides (143/993, 110/995). */
#define BACKEND struct mg_backend_config
static const struct config_option backend_options[] = {
	{ "imap_port", UNSIGNED_AT(BACKEND, imap_port), .no_default = true,
	  .min = 1, .max = 65535 },
	{ "pop3_port", UNSIGNED_AT(BACKEND, pop3_port), .no_default = true,
	  .min = 1, .max = 65535 },
	{ "tls", ENUM_AT(BACKEND, tls, enum mg_backend_tls), .def = MG_BACKEND_TLS_NONE,
	  WORDS(backend_tls_words) },
	{ "verify", BOOL_AT(BACKEND, verify), .def = 1 },
	{ "client_address", ENUM_AT(BACKEND, client_address, enum mg_client_address),
	  .def = MG_CLIENT_ADDRESS_NONE, WORDS(client_address_words) },
	{ "backend_login", ENUM_AT(BACKEND, login, enum mg_backend_login),
	  .def = MG_BACKEND_LOGIN_PASSTHROUGH, WORDS(backend_login_words) },
};
#undef BACKEND

/* protocol and port are required (config.c says so); no auth: MG_AUTH_DEFAULT (0). */
#define LISTEN struct mg_listener_config
static const struct config_option listen_options[] = {
	{ "protocol", ENUM_AT(LISTEN, protocol, enum mg_protocol), .no_default = true,
	  WORDS(protocol_words) },
	{ "port", UNSIGNED_AT(LISTEN, port), .no_default = true, .min = 1, .max = 65535 },
	{ "tls", ENUM_AT(LISTEN, tls, enum mg_listen_tls), .def = MG_LISTEN_STARTTLS,
	  WORDS(listen_tls_words) },
	{ "auth", ENUM_AT(LISTEN, auth, enum mg_auth_method), .no_default = true,
	  WORDS(auth_words) },
};
#undef LISTEN

/* No auth: MG_AUTH_DEFAULT (0), the listener's or the global one. */
#define CLIENT struct mg_client_set_config
static const struct config_option client_options[] = {
	{ "cleartext_auth", ENUM_AT(CLIENT, cleartext, enum mg_cleartext_policy),
	  .def = MG_CLEARTEXT_REFUSE, WORDS(cleartext_words) },
	{ "trusted", BOOL_AT(CLIENT, trusted), .def = 0 },
	{ "monitoring", BOOL_AT(CLIENT, monitoring), .def = 0 },
	{ "auth", ENUM_AT(CLIENT, auth, enum mg_auth_method), .no_default = true,
	  WORDS(auth_words) },
};
#undef CLIENT

const struct config_table config_tables[] = {
	{ "root", root_options, N_OF(root_options) },
	{ "tls", tls_options, N_OF(tls_options) },
	{ "tls_profile", profile_options, N_OF(profile_options) },
	{ "backend", backend_options, N_OF(backend_options) },
	{ "listen", listen_options, N_OF(listen_options) },
	{ "client", client_options, N_OF(client_options) },
};
const size_t config_n_tables = N_OF(config_tables);

/* ---- lookups ------------------------------------------------------------- */

const struct config_table *config_table(const char *section)
{
	for (size_t i = 0; section != NULL && i < N_OF(config_tables); i++)
		if (strcmp(config_tables[i].section, section) == 0)
			return &config_tables[i];
	return NULL;
}

const struct config_option *config_option_find(const struct config_table *table, const char *name)
{
	for (size_t i = 0; table != NULL && name != NULL && i < table->n_options; i++)
		if (strcmp(table->options[i].name, name) == 0)
			return &table->options[i];
	return NULL;
}

const char *config_word_of(const char *section, const char *name, long value)
{
	const struct config_option *o = config_option_find(config_table(section), name);

	for (size_t i = 0; o != NULL && i < o->n_words; i++)
		if (o->words[i].value == value)
			return o->words[i].word;
	return "unknown";
}

bool config_option_is_plain_bool(const struct config_option *o)
{
	return o->type == CONFIG_BOOL && o->n_words == 0;
}

/* ---- parsing and storing ------------------------------------------------- */

/* "a, b or c" for a message; cut (still terminated) if buf is too small. */
static const char *word_list(const struct config_option *o, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < o->n_words; i++) {
		const char *sep = i == 0 ? "" : i + 1 == o->n_words ? " or " : ", ";
		int n = snprintf(buf + len, size - len, "%s%s", sep, o->words[i].word);

		if (n < 0 || (size_t)n >= size - len)
			break;
		len += (size_t)n;
	}
	return buf;
}

int config_option_parse(struct load_ctx *ctx, int line, const struct config_option *o,
			const char *value, long *out)
{
	char q[QUOTE_MAX], words[160];
	unsigned long v;
	char *end;

	for (size_t i = 0; value != NULL && i < o->n_words; i++) {
		if (strcmp(value, o->words[i].word) == 0) {
			*out = o->words[i].value;
			return 0;
		}
	}
	if (o->type == CONFIG_ENUM || o->type == CONFIG_BOOL) {
		config_error(ctx, line, "%s: unknown value '%s' (expected %s)", o->name,
			     config_quote(q, value), word_list(o, words, sizeof(words)));
		return -1;
	}
	/*
	 * Numbers are plain decimal: libconfuse's own parser takes "0x10" and
	 * reads "010" as octal 8, which nobody means in a timeout.
	 */
	if (value == NULL || !isdigit((unsigned char)value[0])) {
		config_error(ctx, line, "%s: '%s' is not a decimal number", o->name,
			     config_quote(q, value));
		return -1;
	}
	errno = 0;
	v = strtoul(value, &end, 10);
	if (o->duration && *end != '\0' && end[1] == '\0' && strchr("smhd", *end) != NULL) {
		unsigned long unit = *end == 'd' ? 86400 : *end == 'h' ? 3600 : *end == 'm' ? 60 : 1;

		/* Past the range either way: the range check below says so. */
		v = v > o->max / unit + 1 ? o->max + 1 : v * unit;
		end++;
	}
	if (*end != '\0') {
		config_error(ctx, line, "%s: '%s' is not a decimal number", o->name,
			     config_quote(q, value));
		return -1;
	}
	if (errno == ERANGE || v < o->min || v > o->max) {
		config_error(ctx, line, "%s = %s is out of range (%lu..%lu)", o->name,
			     config_quote(q, value), o->min, o->max);
		return -1;
	}
	*out = (long)v;		/* every max is far below LONG_MAX (a unit test says so) */
	return 0;
}

void config_option_store(const struct config_option *o, void *base, long value)
{
	/* Raw pointer arithmetic: offset is offsetof() into the struct base points to. */
	unsigned char *field = (unsigned char *)base + o->offset;

	switch (o->type) {
	case CONFIG_UNSIGNED: {
		unsigned v = (unsigned)value;

		memcpy(field, &v, sizeof(v));
		break;
	}
	case CONFIG_SIZE: {
		size_t v = (size_t)value;

		memcpy(field, &v, sizeof(v));
		break;
	}
	case CONFIG_ENUM: {
		int v = (int)value;	/* ENUM_FIELD checked the enum is int-sized */

		memcpy(field, &v, sizeof(v));
		break;
	}
	case CONFIG_BOOL: {
		bool v = value != 0;

		memcpy(field, &v, sizeof(v));
		break;
	}
	}
}
