#!/usr/bin/env python3
"""mailgate demo (`make demo`).

Makes a throwaway CA and server certificate, starts a private Dovecot on
free high ports (20000 and up) with one user, demo/demo, and one welcome
message, and mailgated in front of it:

    IMAP  STARTTLS      127.0.0.1:1143
    IMAP  implicit TLS  127.0.0.1:1993
    POP3  STLS          127.0.0.1:1110
    POP3  implicit TLS  127.0.0.1:1995

then prints client commands that work against it and stays in the
foreground until Ctrl-C or SIGTERM, when it stops everything it started.
Two names, imap.demo.test and mail.other.test, are served with their own
certificates from a certificate directory (DIR/certs.d), chosen by the
name the client asks for (SNI).

    python3 tests/demo.py --dir BUILD/demo-run
    (MG_MAILGATED=path/to/mailgated; default gateway/mailgated)

Run as root: the private Dovecot needs it, and mailgated drops to
nobody/nogroup.
"""

import argparse
import os
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "integration"))

import mgtest  # noqa: E402

DEMO_USER = "demo"
DEMO_PASSWORD = "demo"

# The public side of the demo: (listener name, protocol, tls, port).
FRONT = [
    ("imap", "imap", "starttls", 1143),
    ("imaps", "imap", "implicit", 1993),
    ("pop3", "pop3", "starttls", 1110),
    ("pop3s", "pop3", "implicit", 1995),
]

WELCOME = (
    b"From: mailgate demo <postmaster@example.org>\r\n"
    b"To: demo@example.org\r\n"
    b"Subject: Welcome to the mailgate demo\r\n"
    b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
    b"Message-ID: <welcome@mailgate.demo>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"Hello,\r\n"
    b"\r\n"
    b"this message came from a private Dovecot, through mailgated, over TLS.\r\n"
    b"A cleartext login on 1143 or 1110 is refused until the client runs STARTTLS/STLS.\r\n"
    b"\r\n"
    b"-- \r\n"
    b"mailgate\r\n"
)


# The legacy node's own welcome message, so a client can tell where it landed.
LEGACY_WELCOME = WELCOME.replace(
    b"Subject: Welcome to the mailgate demo",
    b"Subject: Welcome to the mailgate demo's legacy node").replace(
    b"this message came from a private Dovecot, through mailgated, over TLS.",
    b"this message came from the legacy node: cleartext, for old devices only.")

# A printer or scanner that cannot do TLS, recognised by its address.
LEGACY_SOURCE = "127.0.0.3"
LEGACY_CLIENTS = """
client legacy_devices {
  networks = { "%s/32" }
  cleartext_auth = allow
  backend = "legacy"
}
""" % LEGACY_SOURCE


# Names served from the certificate directory, each with its own certificate.
SNI_NAMES = ("imap.demo.test", "mail.other.test")


def make_certificate_dir(td, certs):
    """DIR/certs.d with NAME.pem and NAME.key for each of SNI_NAMES."""
    d = td.mkdir("certs.d")
    for name in SNI_NAMES:
        cert, key = certs.issue(name, cn=name, dns=(name,), ips=())
        shutil.copyfile(cert, os.path.join(d, name + ".pem"))
        shutil.copyfile(key, os.path.join(d, name + ".key"))
        os.chmod(os.path.join(d, name + ".key"), 0o600)
    return d


def sni_commands(ca):
    """One s_client line per name: the certificate served names it."""
    port = port_of("imaps")
    lines = ["openssl s_client -connect 127.0.0.1:%d -servername %s -verify_hostname %s "
             "-CAfile %s </dev/null | grep -E 'subject=|Verify return'" % (port, n, n, ca)
             for n in SNI_NAMES]
    lines.append("curl --cacert %s --resolve %s:%d:127.0.0.1 'imaps://%s:%s@%s:%d/INBOX;UID=1'"
                 % (ca, SNI_NAMES[0], port, DEMO_USER, DEMO_PASSWORD, SNI_NAMES[0], port))
    return lines


def client_commands(ca):
    """Command lines that work against the running demo, by listener name."""
    return {
        "imap": [
            "curl --ssl-reqd --cacert %s 'imap://%s:%s@127.0.0.1:%d/INBOX;UID=1'"
            % (ca, DEMO_USER, DEMO_PASSWORD, port_of("imap")),
            "openssl s_client -starttls imap -connect 127.0.0.1:%d -CAfile %s"
            % (port_of("imap"), ca),
        ],
        "imaps": [
            "curl --cacert %s 'imaps://%s:%s@127.0.0.1:%d/INBOX;UID=1'"
            % (ca, DEMO_USER, DEMO_PASSWORD, port_of("imaps")),
        ],
        "pop3": [
            "curl --ssl-reqd --cacert %s 'pop3://%s:%s@127.0.0.1:%d/1'"
            % (ca, DEMO_USER, DEMO_PASSWORD, port_of("pop3")),
            "openssl s_client -starttls pop3 -connect 127.0.0.1:%d -CAfile %s"
            % (port_of("pop3"), ca),
        ],
        "pop3s": [
            "curl --cacert %s 'pop3s://%s:%s@127.0.0.1:%d/1'"
            % (ca, DEMO_USER, DEMO_PASSWORD, port_of("pop3s")),
        ],
    }


def port_of(name):
    for n, _proto, _tls, port in FRONT:
        if n == name:
            return port
    raise KeyError(name)


class Stop(Exception):
    pass


def _stop(signum, frame):
    raise Stop(signal.Signals(signum).name)


def main():
    ap = argparse.ArgumentParser(description="Run a private Dovecot with mailgated in front of it.")
    ap.add_argument("--dir", default="demo-run",
                    help="working directory (emptied first, kept afterwards for its logs)")
    args = ap.parse_args()

    if os.geteuid() != 0:
        sys.exit("demo: run as root (the private Dovecot needs it; mailgated drops to nobody)")
    taken = [port for _n, _p, _t, port in FRONT if not mgtest._port_free(port)]
    if taken:
        sys.exit("demo: port(s) %s already in use on 127.0.0.1 (another demo running?)"
                 % ", ".join(map(str, taken)))
    binary = mgtest.default_mailgated_binary()
    if not os.access(binary, os.X_OK):
        sys.exit("demo: no mailgated at %s (run make first, or set MG_MAILGATED)" % binary)

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    status = 0
    try:
        td = mgtest.TestDir(path=args.dir, keep=True)
        certs = mgtest.Certs(td.join("certs"))
        ca = td.join("ca.pem")
        shutil.copyfile(certs.ca, ca)
        os.chmod(ca, 0o644)

        # The gateway tells Dovecot each client's address in an IMAP ID
        # (client_address = imap-id), which Dovecot takes from trusted hosts
        # only: its penalty for failed logins then falls on the guesser,
        # not on every user behind the gateway's address.
        trusted = "login_trusted_networks = 127.0.0.0/8\n"
        dovecot = mgtest.Dovecot(td, certs, users={DEMO_USER: DEMO_PASSWORD},
                                 port_start=20000, auth_failure_delay=2, extra_conf=trusted,
                                 start=False)
        dovecot.deliver(DEMO_USER, WELCOME)
        dovecot.start()
        # The legacy node: the one place where cleartext logins are allowed.
        legacy = mgtest.Dovecot(td, certs, users={DEMO_USER: DEMO_PASSWORD}, name="legacy",
                                port_start=20000, auth_failure_delay=2, extra_conf=trusted,
                                disable_plaintext_auth=False, start=False)
        legacy.deliver(DEMO_USER, LEGACY_WELCOME)
        legacy.start()

        certificate_dir = make_certificate_dir(td, certs)
        listeners = [mgtest.listener(name, tls, port=port, protocol=proto)
                     for name, proto, tls, port in FRONT]
        mg = mgtest.Mailgated(
            td, certs, name="mailgated",
            backends=[mgtest.backend_for(dovecot, "dovecot", client_address="imap-id"),
                      mgtest.backend_for(legacy, "legacy", client_address="imap-id")],
            default_backend="dovecot",
            extra=LEGACY_CLIENTS,
            listeners=listeners,
            tls={"certificate_dir": certificate_dir},
            user="nobody", group="nogroup", log_level="info",
            login_timeout=60, session_timeout=1800, shutdown_grace=5,
            auth_failure_delay=2000, login_penalty=True, ban_after=20)

        print("mailgate demo is running (directory %s)" % td.path)
        print("  Dovecot (private backend): imap 127.0.0.1:%d, imaps 127.0.0.1:%d"
              % (dovecot.imap_port, dovecot.imaps_port))
        print("  Dovecot (legacy node, cleartext allowed): imap 127.0.0.1:%d"
              % legacy.imap_port)
        print("  client set legacy_devices: %s may log in without TLS and lands on the "
              "legacy node" % LEGACY_SOURCE)
        for name, proto, tls, port in FRONT:
            print("  mailgated %-5s %-8s on 127.0.0.1:%d" % (proto.upper(), tls, port))
        print("  user %s, password %s; logs: %s, %s"
              % (DEMO_USER, DEMO_PASSWORD, mg.log_path, dovecot.log_path))
        print()
        print("Try:")
        cmds = client_commands(ca)
        for name, _p, _t, _port in FRONT:
            for line in cmds.get(name, []):
                print("  " + line)
        print()
        print("Certificates by name (SNI) from %s:" % certificate_dir)
        for line in sni_commands(ca):
            print("  " + line)
        print()
        print("A legacy device (source %s) may use cleartext; the same from 127.0.0.1 is "
              "refused:" % LEGACY_SOURCE)
        print("  curl --interface %s 'imap://%s:%s@127.0.0.1:%d/INBOX;UID=1'"
              % (LEGACY_SOURCE, DEMO_USER, DEMO_PASSWORD, port_of("imap")))
        print("  curl 'imap://%s:%s@127.0.0.1:%d/INBOX;UID=1'"
              % (DEMO_USER, DEMO_PASSWORD, port_of("imap")))
        print()
        print("Ctrl-C (or SIGTERM) stops the demo.", flush=True)

        while True:
            time.sleep(1)
            if not mg.running():
                print("demo: mailgated exited:\n" + mgtest.tail(mg.log()), file=sys.stderr)
                status = 1
                break
            if not dovecot.running() or not legacy.running():
                print("demo: dovecot exited:\n" + mgtest.tail(dovecot.log()), file=sys.stderr)
                status = 1
                break
    except Stop as e:
        print("\ndemo: %s, stopping" % e, flush=True)
    except Exception as e:   # a start-up failure: say why, then clean up
        print("demo: %s" % e, file=sys.stderr)
        status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        errors = mgtest.cleanup()      # mailgated first, then Dovecot
        for err in errors:
            print("demo: while stopping: %s" % err, file=sys.stderr)
            status = 1
    if status == 0:
        print("demo: stopped, nothing left running", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
