#!/usr/bin/env python3
"""Integration test: the shipped fail2ban filter over a log made by real
failed logins through mailgated in front of a real Dovecot.

Failed logins come over STARTTLS, implicit TLS, POP3 STLS, IPv6, and
through a load balancer's PROXY header (IPv4 and IPv6 sources); one user
name tries to smuggle another address into the line. Lines that must not
match are made too: logins that succeed (their session ends), a warn-set
cleartext login, a failed login from a client set marked monitoring = yes,
and (for the normal mode) a password sent before STARTTLS. fail2ban-regex
(Debian's fail2ban) runs the filter from conf/fail2ban over the log, in
both modes, and the exact addresses it matched are compared.

Run: python3 tests/integration/test_fail2ban.py
(MG_MAILGATED=path/to/mailgated, MG_TEST=test_name, MG_KEEP=1).
"""

import collections
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mgtest  # noqa: E402
from mgtest import ImapClient, Pop3Client  # noqa: E402

USERS = {"alice": "alice-F2b-1", "bob": "bob-F2b-2"}
WRONG = "not-the-password"
ORDINARY = "127.0.0.1"
WARN_SET = "127.0.0.2"          # cleartext logins allowed with a warning
MONITOR_SET = "127.0.0.3"       # the monitoring host
PROXIED_V4 = "192.0.2.77"
PROXIED_V6 = "2001:db8::77"
SMUGGLED = "203.0.113.66"       # what a user name tries to add

CLIENT_SETS = """
client migrating {
  networks = { "%s/32" }
  cleartext_auth = warn
}
client monitor {
  networks = { "%s/32" }
  monitoring = yes
}
""" % (WARN_SET, MONITOR_SET)


class _Env:
    pass


_env = None


def filter_path():
    top = os.environ.get("MG_TOP_SRCDIR") or os.path.join(mgtest.HERE, "..", "..")
    return os.path.join(top, "conf", "fail2ban", "filter.d", "mailgate.conf")


def env():
    """Dovecot, mailgated, and every login the log must show, made once."""
    global _env
    if _env is not None:
        return _env
    e = _Env()
    e.td = mgtest.TestDir()
    e.certs = mgtest.Certs(e.td.join("certs"))
    e.dovecot = mgtest.Dovecot(e.td, e.certs, users=USERS)
    e.mg = mgtest.Mailgated(
        e.td, e.certs, name="mg-f2b", backends=[mgtest.backend_for(e.dovecot, "dovecot")],
        listeners=[mgtest.listener("imap", "starttls"),
                   mgtest.listener("imaps", "implicit"),
                   mgtest.listener("pop3", "starttls", protocol="pop3"),
                   mgtest.listener("imap6", "starttls", address=("::1",)),
                   mgtest.listener("imap_lb", "starttls", proxy_networks=["127.0.0.1/32"])],
        max_auth_failures=10, auth_failure_delay=0, extra=CLIENT_SETS)
    e.expected = collections.Counter()      # address -> failed logins made from it
    e.refused_cleartext = collections.Counter()
    make_logins(e)
    _env = e
    return e


def imap(e, listener="imap", **kw):
    kw.setdefault("ca", e.certs.ca)
    return ImapClient(e.mg.port(listener), **kw)


def fail_imap(e, c, user, counted_as):
    untagged, tagged = c.login(user, WRONG, tag="a")
    assert tagged.startswith("a NO"), tagged
    e.expected[counted_as] += 1


def make_logins(e):
    # Over STARTTLS, twice in one session, and over implicit TLS.
    with imap(e, source=ORDINARY) as c:
        c.starttls()
        fail_imap(e, c, "alice", ORDINARY)
        fail_imap(e, c, "nobody", ORDINARY)
    with imap(e, "imaps", implicit_tls=True, source=ORDINARY) as c:
        fail_imap(e, c, "bob", ORDINARY)
    # A user name that tries to make the line name another address.
    with imap(e, source=ORDINARY) as c:
        c.starttls()
        fail_imap(e, c, 'x" rip=%s rport=1 listener=imap user="y' % SMUGGLED, ORDINARY)
    # POP3 after STLS.
    with Pop3Client(e.mg.port("pop3"), ca=e.certs.ca, source=ORDINARY) as c:
        c.stls()
        c.command("USER alice")
        reply = c.command("PASS " + WRONG)
        assert reply.startswith("-ERR"), reply
        e.expected[ORDINARY] += 1
    # IPv6.
    with imap(e, "imap6", host="::1") as c:
        c.starttls()
        fail_imap(e, c, "alice", "::1")
    # Through a load balancer: the PROXY header's source is the client.
    port = e.mg.port("imap_lb")
    for source, family in ((PROXIED_V4, "TCP4"), (PROXIED_V6, "TCP6")):
        dest = "127.0.0.1" if family == "TCP4" else "::1"
        header = "PROXY %s %s %s 40001 %d\r\n" % (family, source, dest, port)
        with imap(e, "imap_lb", source=ORDINARY, preamble=header.encode()) as c:
            c.starttls()
            fail_imap(e, c, "bob", source)
    # A password before STARTTLS: refused, matched only in aggressive mode.
    with imap(e, source=ORDINARY) as c:
        untagged, tagged = c.login("alice", USERS["alice"], tag="a")
        assert tagged.startswith("a NO"), tagged
        e.refused_cleartext[ORDINARY] += 1
    # Never matched: logins that succeed (and their session ends) ...
    with imap(e, source=ORDINARY) as c:
        c.starttls()
        untagged, tagged = c.login("alice", USERS["alice"], tag="a")
        assert tagged.startswith("a OK"), tagged
        c.command("z", "LOGOUT")
    # ... a warn-set cleartext login ...
    with imap(e, source=WARN_SET) as c:
        untagged, tagged = c.login("bob", USERS["bob"], tag="a")
        assert tagged.startswith("a OK"), tagged
        c.command("z", "LOGOUT")
    # ... and the monitoring host's failed login.
    with imap(e, source=MONITOR_SET) as c:
        c.starttls()
        untagged, tagged = c.login("alice", WRONG, tag="a")
        assert tagged.startswith("a NO"), tagged
    e.mg.wait_no_children(10)
    mgtest.wait_until(lambda: e.mg.log().count("session end ") >= 12, 10,
                      what="every session's end in the log")


def installed_filter(e):
    """The shipped filter where fail2ban would have it: in a filter.d beside
    the common.conf it includes (Debian's own)."""
    d = e.td.join("fail2ban", "filter.d")
    if not os.path.isdir(d):
        os.makedirs(d)
        shutil.copyfile(filter_path(), os.path.join(d, "mailgate.conf"))
        common = "/etc/fail2ban/filter.d/common.conf"
        assert os.path.exists(common), "fail2ban's %s is missing (apt-get install fail2ban)" % common
        shutil.copyfile(common, os.path.join(d, "common.conf"))
    return os.path.join(d, "mailgate.conf")


def as_syslog(text):
    """The same lines as syslog writes them (facility mail): a BSD stamp and
    the host name, no level word."""
    out = []
    for line in text.splitlines():
        m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\S+) (mailgated\[\d+\]): \w+: (.*)$", line)
        if not m:
            continue
        month = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()[int(m.group(2)) - 1]
        out.append("%s %2d %s gw1 %s: %s" % (month, int(m.group(3)), m.group(4), m.group(5),
                                             m.group(6)))
    return "\n".join(out) + "\n"


def fail2ban_regex(e, mode, syslog=False):
    """The addresses fail2ban-regex matched in mailgated's log, counted."""
    text = as_syslog(e.mg.log()) if syslog else e.mg.log()
    log = e.td.write("mailgated-%s%s.log" % (mode, "-syslog" if syslog else ""), text,
                     mode=0o644)
    path = installed_filter(e)
    spec = path if mode == "normal" else "%s[mode=%s]" % (path, mode)
    r = subprocess.run([mgtest.find_program("fail2ban-regex"), "--out", "ip", log, spec],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, "fail2ban-regex failed (%d):\n%s\n%s" % (
        r.returncode, out, r.stderr.decode("utf-8", "replace"))
    return collections.Counter(line.strip() for line in out.splitlines() if line.strip())


def test_normal_mode_matches_exactly_the_failed_logins():
    e = env()
    got = fail2ban_regex(e, "normal")
    assert got == e.expected, "fail2ban matched %s, want %s" % (dict(got), dict(e.expected))
    assert SMUGGLED not in got and WARN_SET not in got and MONITOR_SET not in got


def test_aggressive_mode_also_matches_cleartext_attempts():
    e = env()
    got = fail2ban_regex(e, "aggressive")
    want = e.expected + e.refused_cleartext
    assert got == want, "fail2ban matched %s, want %s" % (dict(got), dict(want))


def test_syslog_form_matches_alike():
    e = env()
    got = fail2ban_regex(e, "aggressive", syslog=True)
    want = e.expected + e.refused_cleartext
    assert got == want, "fail2ban matched %s in the syslog form, want %s" % (dict(got),
                                                                          dict(want))


def test_lines_name_the_address_first_and_quote_the_user():
    e = env()
    lines = [l for l in e.mg.log().splitlines() if "login failed: " in l]
    assert lines, mgtest.tail(e.mg.log(), 30)
    for l in lines:
        rest = l.split("login failed: ", 1)[1]
        assert rest.startswith("rip="), l
    smuggle = [l for l in lines if SMUGGLED in l]
    assert len(smuggle) == 1, lines
    assert ('user="x\\" rip=%s rport=1 listener=imap user=\\"y"' % SMUGGLED) in smuggle[0], \
        smuggle[0]
    assert any("monitoring login failed: rip=%s " % MONITOR_SET in l
               for l in e.mg.log().splitlines()), mgtest.tail(e.mg.log(), 40)


if __name__ == "__main__":
    sys.exit(mgtest.run_tests(globals()))
