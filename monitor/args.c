/*
 * args.c - strict parsing of check_cleartext_login's options, and the
 * usage and --help texts (kept in step with man/check_cleartext_login.8).
 *
 * Numbers go through strtol with every error checked; anything the plugin
 * cannot use is an error the caller reports as UNKNOWN with the usage, as
 * the Monitoring Plugins guidelines ask. There is deliberately no option
 * for a password: it would show in ps(1).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "options.h"

#define PROGNAME "check_cleartext_login"

enum {
	OPT_SNI = 256,
	OPT_CA_FILE,
	OPT_INJECTION
};

static const struct option long_options[] = {
	{ "hostname", required_argument, NULL, 'H' },
	{ "port", required_argument, NULL, 'p' },
	{ "protocol", required_argument, NULL, 'P' },
	{ "authfile", required_argument, NULL, 'a' },
	{ "warning", required_argument, NULL, 'w' },
	{ "critical", required_argument, NULL, 'c' },
	{ "timeout", required_argument, NULL, 't' },
	{ "use-ipv4", no_argument, NULL, '4' },
	{ "use-ipv6", no_argument, NULL, '6' },
	{ "ssl", no_argument, NULL, 'S' },
	{ "sni", required_argument, NULL, OPT_SNI },
	{ "ca-file", required_argument, NULL, OPT_CA_FILE },
	{ "injection", no_argument, NULL, OPT_INJECTION },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* Leading ':' makes getopt report a missing argument as ':' and stay quiet. */
static const char short_options[] = ":H:p:P:a:w:c:t:46SvhV";

const char *mon_protocol_name(enum mon_protocol protocol)
{
	return protocol == MON_PROTO_POP3 ? "pop3" : "imap";
}

unsigned mon_default_port(enum mon_protocol protocol, bool implicit_tls)
{
	if (protocol == MON_PROTO_POP3)
		return implicit_tls ? 995 : 110;
	return implicit_tls ? 993 : 143;
}

/* A decimal integer in [min, max], nothing else (no sign games, no suffix). */
static int parse_number(const char *text, long min, long max, long *out)
{
	char *end;
	long value;

	if (text == NULL || text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	value = strtol(text, &end, 10);
	if (errno != 0 || *end != '\0' || value < min || value > max)
		return -1;
	*out = value;
	return 0;
}

/* Printable ASCII without spaces (nor the perfdata separator): a host or TLS name. */
static bool is_name(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '|')
			return false;
	return true;
}

static int set_host(struct mon_options *opt, const char *arg, char *err, size_t errlen)
{
	size_t len = strlen(arg);

	/* "[2001:db8::1]" as in URLs: keep the address, drop the brackets. */
	if (len >= 2 && arg[0] == '[' && arg[len - 1] == ']') {
		arg++;
		len -= 2;
	}
	if (len == 0 || len > MON_HOST_MAX) {
		snprintf(err, errlen, "invalid host name (-H)");
		return -1;
	}
	memcpy(opt->host, arg, len);
	opt->host[len] = '\0';
	if (!is_name(opt->host, MON_HOST_MAX) || strchr(opt->host, '[') != NULL ||
	    strchr(opt->host, ']') != NULL) {
		snprintf(err, errlen, "invalid host name (-H)");
		opt->host[0] = '\0';
		return -1;
	}
	return 0;
}

static void set_defaults(struct mon_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->protocol = MON_PROTO_IMAP;
	opt->warn_days = MON_DEFAULT_WARN_DAYS;
	opt->crit_days = MON_DEFAULT_CRIT_DAYS;
	opt->timeout_s = MON_DEFAULT_TIMEOUT;
	opt->family = AF_UNSPEC;
}

/*
 * The option as the user typed it, for error messages, without any
 * "=value": "--password=secret" must not be echoed into a monitoring log.
 */
static const char *option_text(int c, char **argv, int index, char *buf, size_t buflen)
{
	const char *arg;
	size_t len;

	if (c > 0 && c < 256 && c != '?' && c != ':') {
		snprintf(buf, buflen, "-%c", c);
		return buf;
	}
	arg = index > 0 && argv[index - 1] != NULL ? argv[index - 1] : "?";
	len = strcspn(arg, "=");
	snprintf(buf, buflen, "%.*s", (int)(len > 64 ? 64 : len), arg);
	return buf;
}

enum mon_args_result mon_args_parse(int argc, char **argv, struct mon_options *opt, char *err,
				    size_t errlen)
{
	bool have_port = false, want_v4 = false, want_v6 = false;
	char optname[80];
	long number;
	int c;

	set_defaults(opt);
	err[0] = '\0';
	/* glibc: optind = 0 re-initialises getopt completely (tests parse many times). */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, short_options, long_options, NULL)) != -1) {
		switch (c) {
		case 'H':
			if (set_host(opt, optarg, err, errlen) < 0)
				return MON_ARGS_ERROR;
			break;
		case 'p':
			if (parse_number(optarg, 1, 65535, &number) < 0) {
				snprintf(err, errlen, "invalid port (-p): must be 1 to 65535");
				return MON_ARGS_ERROR;
			}
			opt->port = (unsigned)number;
			have_port = true;
			break;
		case 'P':
			if (strcmp(optarg, "imap") == 0) {
				opt->protocol = MON_PROTO_IMAP;
			} else if (strcmp(optarg, "pop3") == 0) {
				opt->protocol = MON_PROTO_POP3;
			} else {
				snprintf(err, errlen, "invalid protocol (-P): imap or pop3");
				return MON_ARGS_ERROR;
			}
			break;
		case 'a':
			if (optarg[0] == '\0') {
				snprintf(err, errlen, "empty credentials file name (-a)");
				return MON_ARGS_ERROR;
			}
			opt->authfile = optarg;
			break;
		case 'w':
		case 'c':
			if (parse_number(optarg, 0, MON_MAX_DAYS, &number) < 0) {
				snprintf(err, errlen, "invalid %s threshold (-%c): days from 0 to %d",
					 c == 'w' ? "warning" : "critical", c, MON_MAX_DAYS);
				return MON_ARGS_ERROR;
			}
			if (c == 'w')
				opt->warn_days = (int)number;
			else
				opt->crit_days = (int)number;
			break;
		case 't':
			if (parse_number(optarg, 1, MON_MAX_TIMEOUT, &number) < 0) {
				snprintf(err, errlen, "invalid timeout (-t): seconds from 1 to %d",
					 MON_MAX_TIMEOUT);
				return MON_ARGS_ERROR;
			}
			opt->timeout_s = (unsigned)number;
			break;
		case '4':
			want_v4 = true;
			break;
		case '6':
			want_v6 = true;
			break;
		case 'S':
			opt->implicit_tls = true;
			break;
		case OPT_SNI:
			if (!is_name(optarg, MON_HOST_MAX)) {
				snprintf(err, errlen, "invalid TLS server name (--sni)");
				return MON_ARGS_ERROR;
			}
			opt->sni = optarg;
			break;
		case OPT_CA_FILE:
			if (optarg[0] == '\0') {
				snprintf(err, errlen, "empty CA file name (--ca-file)");
				return MON_ARGS_ERROR;
			}
			opt->ca_file = optarg;
			break;
		case OPT_INJECTION:
			opt->injection = true;
			break;
		case 'v':
			if (opt->verbose < INT_MAX)
				opt->verbose++;
			break;
		case 'h':
			return MON_ARGS_HELP;
		case 'V':
			return MON_ARGS_VERSION;
		case ':':
			snprintf(err, errlen, "option %s needs a value",
				 option_text(optopt, argv, optind, optname, sizeof(optname)));
			return MON_ARGS_ERROR;
		default:
			snprintf(err, errlen, "unknown option %s",
				 option_text(optopt, argv, optind, optname, sizeof(optname)));
			return MON_ARGS_ERROR;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%.64s'", argv[optind]);
		return MON_ARGS_ERROR;
	}
	if (opt->host[0] == '\0') {
		snprintf(err, errlen, "no host given (-H)");
		return MON_ARGS_ERROR;
	}
	if (want_v4 && want_v6) {
		snprintf(err, errlen, "-4 and -6 exclude each other");
		return MON_ARGS_ERROR;
	}
	opt->family = want_v4 ? AF_INET : want_v6 ? AF_INET6 : AF_UNSPEC;
	if (opt->crit_days > opt->warn_days) {
		snprintf(err, errlen, "critical threshold (-c %d) exceeds warning threshold (-w %d)",
			 opt->crit_days, opt->warn_days);
		return MON_ARGS_ERROR;
	}
	if (opt->injection && opt->implicit_tls) {
		snprintf(err, errlen, "--injection tests STARTTLS/STLS and cannot be combined with -S");
		return MON_ARGS_ERROR;
	}
	if (!have_port)
		opt->port = mon_default_port(opt->protocol, opt->implicit_tls);
	return MON_ARGS_RUN;
}

void mon_print_usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROGNAME " -H host [-p port] [-P imap|pop3] [-a authfile] [-w days]\n"
		"       [-c days] [-t seconds] [-4|-6] [-S] [--sni name] [--ca-file file]\n"
		"       [--injection] [-v] [-h] [-V]\n");
}

void mon_print_version(FILE *out)
{
	fprintf(out, PROGNAME " (mailgate) %s\n", MG_VERSION);
}

void mon_print_help(FILE *out)
{
	mon_print_version(out);
	fprintf(out,
		"\n"
		"Behaves like a careless mail client on an IMAP (143) or POP3 (110) port:\n"
		"logs in without TLS and raises CRITICAL when that works, or when the\n"
		"server shows that it checked a password sent in the clear. Then checks\n"
		"STARTTLS/STLS, the certificate and, with credentials, a login over TLS.\n"
		"Works against any IMAP or POP3 server.\n"
		"\n");
	mon_print_usage(out);
	fprintf(out,
		"\n"
		"Options:\n"
		" -H, --hostname=HOST\n"
		"    Host name or IP address of the server.\n"
		" -p, --port=PORT\n"
		"    Port (default 143 for imap, 110 for pop3; with -S 993 and 995).\n"
		" -P, --protocol=imap|pop3\n"
		"    Protocol to speak (default imap).\n"
		" -a, --authfile=FILE\n"
		"    Credentials file with 'username=' and 'password=' lines. It must not be\n"
		"    readable or writable by others (chmod 640 or 600). Without it a dummy\n"
		"    user with a random password is used and no login over TLS is tried.\n"
		"    Use a dedicated account: its password crosses the network in the\n"
		"    clear whenever the server is wrongly configured.\n"
		" -w, --warning=DAYS\n"
		"    WARNING when the certificate expires in fewer days (default %d).\n"
		" -c, --critical=DAYS\n"
		"    CRITICAL when the certificate expires in fewer days (default %d).\n"
		" -t, --timeout=SECONDS\n"
		"    Bound on the whole check; CRITICAL when it runs out (default %d).\n"
		" -4, --use-ipv4\n"
		"    Connect over IPv4 only.\n"
		" -6, --use-ipv6\n"
		"    Connect over IPv6 only.\n"
		" -S, --ssl\n"
		"    The port speaks TLS from the first byte (993/995): check only the TLS\n"
		"    part (certificate, version, login over TLS).\n"
		" --sni=NAME\n"
		"    Server name to send in TLS and to check the certificate against\n"
		"    (default: the host given with -H).\n"
		" --ca-file=FILE\n"
		"    CA certificates to verify the server with (default: the system store).\n"
		" --injection\n"
		"    Also test for STARTTLS command injection (CVE-2011-0411): a command\n"
		"    sent in the same packet as STARTTLS/STLS must not be answered inside\n"
		"    TLS. CRITICAL when it is.\n"
		" -v, --verbose\n"
		"    Add the protocol transcript (passwords shown as ******) after the\n"
		"    status line.\n"
		" -h, --help\n"
		"    Print this help.\n"
		" -V, --version\n"
		"    Print the version.\n"
		"\n"
		"States:\n"
		" CRITICAL  a cleartext login succeeded; the server answered in a way that\n"
		"           shows it checked cleartext credentials (wrong password,\n"
		"           [AUTHENTICATIONFAILED]); no connection or greeting; timeout;\n"
		"           TLS handshake failed; login over TLS failed; certificate\n"
		"           expires within -c days; command injection (--injection).\n"
		" WARNING   STARTTLS/STLS not offered; LOGINDISABLED not advertised (IMAP);\n"
		"           a password mechanism or USER offered before TLS; certificate\n"
		"           expires within -w days, is not trusted or does not name the\n"
		"           host; TLS older than 1.2; an answer the plugin cannot classify.\n"
		" UNKNOWN   bad arguments, or an unusable credentials file.\n"
		" OK        cleartext logins are refused by policy and TLS works.\n"
		"\n"
		"Performance data: connect_time, time (seconds), cert_days.\n",
		MON_DEFAULT_WARN_DAYS, MON_DEFAULT_CRIT_DAYS, MON_DEFAULT_TIMEOUT);
}
