#!/usr/bin/env python3
"""Integration tests: mailgated's IMAP front end in front of a real Dovecot.

One private Dovecot and one mailgated are shared by most tests (started on
first use); tests that need another configuration start their own
mailgated. Run: python3 tests/integration/test_imap.py
(MG_MAILGATED=path/to/mailgated, MG_TEST=test_name, MG_KEEP=1).
"""

import os
import re
import socket
import select
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mgtest  # noqa: E402
from mgtest import Closed, ImapClient, b64, imap_quote, sasl_plain  # noqa: E402

USERS = {
    "alice": "alice-Secret-1",
    "bob": 'pa ss"word',                          # a space and a double quote
    "carol": "carol-Secret-3",
    "logcheck": "Zq8-LOGCHECK-pw-unique-71934",  # grepped for in the logs
}
LOGCHECK_WRONG = "Wx5-LOGCHECK-wrong-pw-40417"   # never valid; never logged

# Byte-exact message (CRLF, 8-bit, ~240 kB so the relay moves many records).
MESSAGE = (
    b"Return-Path: <sender@example.org>\r\n"
    b"From: Mailgate Test <sender@example.org>\r\n"
    b"To: alice@example.org\r\n"
    b"Subject: mailgate integration test message\r\n"
    b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
    b"Message-ID: <mgtest-1@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    + "Grüße aus dem Test — ✓\r\n".encode("utf-8")
    + b"".join(b"line %05d: %s\r\n" % (i, b"0123456789abcdef" * 4) for i in range(3000))
    + b"-- \r\nend\r\n"
)
SHORT_MESSAGE = (b"From: a@example.org\r\nTo: bob@example.org\r\nSubject: short\r\n"
                 b"\r\nhello bob\r\n")

# The shared gateway's limits (small so the tests are quick).
SHARED = dict(
    max_connections=200,
    max_connections_per_ip=100,
    login_timeout=30,
    session_timeout=300,
    max_line_length=8192,
    max_literal_size=8192,
    max_bad_commands=4,
    max_auth_failures=3,
    auth_failure_delay=0,
    shutdown_grace=2,
)


# ---------------------------------------------------------------------------
# shared fixtures
# ---------------------------------------------------------------------------

class _Env:
    pass


_env = None
_env_error = None


def env():
    """The shared test directory, certificates, Dovecot and mailgated."""
    global _env, _env_error
    if _env is not None:
        return _env
    if _env_error is not None:
        raise RuntimeError("shared fixtures failed to start earlier") from _env_error
    try:
        e = _Env()
        e.td = mgtest.TestDir()
        e.certs = mgtest.Certs(e.td.join("certs"))
        e.dovecot = mgtest.Dovecot(e.td, e.certs, users=USERS, start=False)
        e.dovecot.deliver("alice", MESSAGE)
        e.dovecot.deliver("bob", SHORT_MESSAGE)
        e.dovecot.start()
        e.down_port = mgtest.free_port()          # nothing ever listens here
        e.backends = [mgtest.backend_for(e.dovecot, "dovecot"),
                      mgtest.backend("down", imap_port=e.down_port, pop3_port=e.down_port)]
        e.mg = mgtest.Mailgated(
            e.td, e.certs, name="mg-shared", backends=e.backends,
            listeners=[mgtest.listener("imap", "starttls"),
                       mgtest.listener("imaps", "implicit"),
                       mgtest.listener("imapsdown", "implicit", backend="down")],
            **SHARED)
    except BaseException as ex:
        _env_error = ex
        raise
    _env = e
    return e


_gateways = []      # every mailgated these tests started, for the log checks


def gateway(name, **settings):
    """Another mailgated in front of the shared Dovecot (listeners "imap"
    with STARTTLS and "imaps" with implicit TLS unless given)."""
    e = env()
    listeners = settings.pop("listeners", None)
    backends = settings.pop("backends", e.backends)
    conf = dict(SHARED)
    conf.update(settings)
    mg = mgtest.Mailgated(e.td, e.certs, name=name, backends=backends,
                          listeners=listeners, **conf)
    _gateways.append(mg)
    return mg


def plain(port=None, **kw):
    """A cleartext connection to the STARTTLS listener, greeting read."""
    e = env()
    kw.setdefault("ca", e.certs.ca)
    return ImapClient(port or e.mg.port("imap"), **kw)


def secure(port=None, implicit=False, **kw):
    """A TLS connection: STARTTLS on the "imap" listener, or implicit TLS."""
    e = env()
    kw.setdefault("ca", e.certs.ca)
    if implicit:
        return ImapClient(port or e.mg.port("imaps"), implicit_tls=True, **kw)
    c = ImapClient(port or e.mg.port("imap"), **kw)
    c.starttls()
    return c


def assert_tagged(line, tag, status, code=None):
    prefix = "%s %s" % (tag, status)
    assert line.startswith(prefix + " ") or line == prefix, \
        "expected %r, got %r" % (prefix + (" [%s]" % code if code else "") + " ...", line)
    if code:
        assert line.startswith("%s [%s]" % (prefix, code)), \
            "expected response code [%s] in %r" % (code, line)


def assert_no_continuation(lines):
    cont = [l for l in lines if l.startswith("+")]
    assert not cont, "the server sent a continuation request: %r" % cont


def capabilities(line):
    """The capability atoms of a '* CAPABILITY ...' line or a greeting /
    response with a [CAPABILITY ...] code (case preserved)."""
    m = re.match(r"^\* CAPABILITY (.*)$", line)
    if m:
        return m.group(1).split()
    m = re.search(r"\[CAPABILITY ([^\]]*)\]", line)
    assert m, "no capability list in %r" % line
    return m.group(1).split()


def capability_command(c, tag="C"):
    untagged, tagged = c.command(tag, "CAPABILITY")
    assert_tagged(tagged, tag, "OK")
    caps = [l for l in untagged if l.startswith("* CAPABILITY ")]
    assert len(caps) == 1, "expected one * CAPABILITY line, got %r" % untagged
    return capabilities(caps[0])


def login_ok(c, user, tag="L"):
    untagged, tagged = c.login(user, USERS[user], tag=tag)
    assert_tagged(tagged, tag, "OK")
    return untagged, tagged


def assert_backend_capabilities(untagged, tagged):
    """A successful login relays Dovecot's post-login capabilities, either
    in the tagged OK's [CAPABILITY] code or as an untagged CAPABILITY."""
    lists = [l for l in untagged if l.startswith("* CAPABILITY ")]
    if "[CAPABILITY " in tagged:
        lists.append(tagged)
    assert lists, "no capabilities relayed with the login: %r %r" % (untagged, tagged)
    caps = capabilities(lists[-1])
    # post-login only (Dovecot), so they come from the backend, not the gateway
    for cap in ("UIDPLUS", "NAMESPACE", "MOVE"):
        assert cap in caps, "%s missing from the relayed capabilities %r" % (cap, caps)


def select_inbox(c, tag="S"):
    untagged, tagged = c.command(tag, "SELECT INBOX")
    assert_tagged(tagged, tag, "OK")
    exists = [l for l in untagged if re.match(r"^\* \d+ EXISTS$", l)]
    assert exists, "SELECT INBOX gave no EXISTS: %r" % untagged
    return int(exists[0].split()[1])


def logout(c, tag="Z"):
    untagged, tagged = c.command(tag, "LOGOUT")
    assert any(l.startswith("* BYE") for l in untagged), "no * BYE before LOGOUT's OK: %r" % untagged
    assert_tagged(tagged, tag, "OK")
    c.expect_closed(5)
    c.close()


def assert_bye_and_closed(c, timeout=5, allow_tagged_bad=None):
    lines = c.expect_closed(timeout)
    ok = any(l.startswith("* BYE") for l in lines)
    if allow_tagged_bad and not ok:
        ok = any(l.startswith(allow_tagged_bad + " BAD") for l in lines)
    assert ok, "expected * BYE before the close, got %r" % lines
    c.close()
    return lines


# ---------------------------------------------------------------------------
# real clients through both listeners
# ---------------------------------------------------------------------------

def direct_fetch():
    e = env()
    data = mgtest.curl_fetch("imaps", e.dovecot.imaps_port, e.certs.ca, "alice", USERS["alice"])
    assert data == MESSAGE, "Dovecot itself returned other bytes than delivered (%d vs %d)" \
        % (len(data), len(MESSAGE))
    return data


def test_curl_fetch_starttls():
    e = env()
    direct = direct_fetch()
    data = mgtest.curl_fetch("imap", e.mg.port("imap"), e.certs.ca, "alice", USERS["alice"])
    assert data == direct, "message through STARTTLS differs: %d bytes vs %d" % (len(data), len(direct))


def test_curl_fetch_implicit_tls():
    e = env()
    direct = direct_fetch()
    data = mgtest.curl_fetch("imaps", e.mg.port("imaps"), e.certs.ca, "alice", USERS["alice"])
    assert data == direct, "message through implicit TLS differs: %d bytes vs %d" % (len(data), len(direct))


def test_curl_ssl_reqd_wrong_ca_fails():
    # curl must not accept the gateway's certificate against another CA
    e = env()
    other = mgtest.Certs(e.td.join("other-ca"))
    r = mgtest.curl("imap://%s:%d/INBOX;UID=1" % (mgtest.HOST, e.mg.port("imap")),
                    other.ca, "alice", USERS["alice"])
    assert r.returncode != 0, "curl accepted a certificate from an unknown CA"


# ---------------------------------------------------------------------------
# capabilities
# ---------------------------------------------------------------------------

def test_greeting_and_capability_before_tls():
    with plain() as c:
        assert c.greeting.startswith("* OK [CAPABILITY "), c.greeting
        for caps in (capabilities(c.greeting), capability_command(c)):
            assert "IMAP4rev1" in caps, caps
            assert "STARTTLS" in caps, caps
            assert "LOGINDISABLED" in caps, caps
            assert not [x for x in caps if x.upper().startswith("AUTH=")], \
                "AUTH= offered before TLS: %r" % caps


def test_capability_after_starttls():
    with secure() as c:
        assert c.tls_version() in ("TLSv1.2", "TLSv1.3"), c.tls_version()
        caps = capability_command(c)
        for want in ("IMAP4rev1", "AUTH=PLAIN", "AUTH=LOGIN"):
            assert want in caps, "%s missing after STARTTLS: %r" % (want, caps)
        for unwanted in ("STARTTLS", "LOGINDISABLED"):
            assert unwanted not in caps, "%s still offered after STARTTLS: %r" % (unwanted, caps)


def test_implicit_tls_greeting():
    with secure(implicit=True) as c:
        assert c.greeting.startswith("* OK"), c.greeting
        assert "STARTTLS" not in c.greeting, c.greeting
        assert "LOGINDISABLED" not in c.greeting, c.greeting
        caps = capability_command(c)
        assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps, caps
        assert "AUTH=PLAIN" in caps and "AUTH=LOGIN" in caps, caps


# ---------------------------------------------------------------------------
# no cleartext authentication
# ---------------------------------------------------------------------------

def test_login_refused_before_tls():
    e = env()
    user = "neverforwarded%d" % os.getpid()
    with plain() as c:
        untagged, tagged = c.command("a", "LOGIN %s %s" % (user, imap_quote(USERS["alice"])))
        assert_no_continuation(untagged)
        assert_tagged(tagged, "a", "NO", "PRIVACYREQUIRED")
        # the connection stays usable, and STARTTLS is still possible
        untagged, tagged = c.command("b", "NOOP")
        assert_tagged(tagged, "b", "OK")
        c.starttls()
    assert user not in e.dovecot.log(), "refused credentials reached the backend"


def test_authenticate_plain_refused_before_tls():
    with plain() as c:
        untagged, tagged = c.command("a", "AUTHENTICATE PLAIN")
        assert_no_continuation(untagged)
        assert_tagged(tagged, "a", "NO", "PRIVACYREQUIRED")
        untagged, tagged = c.command("b", "NOOP")
        assert_no_continuation(untagged)
        assert_tagged(tagged, "b", "OK")


def test_authenticate_plain_ir_refused_before_tls():
    with plain() as c:
        untagged, tagged = c.command("a", "AUTHENTICATE PLAIN " + sasl_plain("alice", USERS["alice"]))
        assert_no_continuation(untagged)
        assert_tagged(tagged, "a", "NO", "PRIVACYREQUIRED")


def test_authenticate_login_refused_before_tls():
    with plain() as c:
        untagged, tagged = c.command("a", "AUTHENTICATE LOGIN")
        assert_no_continuation(untagged)
        assert_tagged(tagged, "a", "NO", "PRIVACYREQUIRED")
        untagged, tagged = c.command("b", "AUTHENTICATE LOGIN " + b64("alice"))
        assert_no_continuation(untagged)
        assert_tagged(tagged, "b", "NO", "PRIVACYREQUIRED")


def test_login_sync_literal_before_tls():
    # A synchronising literal may get "+ " (it is within max_literal_size);
    # whatever happens, the answer is NO [PRIVACYREQUIRED].
    with plain() as c:
        parts = ["a LOGIN {5}\r\n", "alice {%d}\r\n" % len(USERS["alice"]),
                 USERS["alice"] + "\r\n"]
        c.send(parts.pop(0))
        while True:
            line = c.readline()
            if line.startswith("+"):
                assert parts, "continuation after the last literal: %r" % line
                c.send(parts.pop(0))
                continue
            assert_tagged(line, "a", "NO", "PRIVACYREQUIRED")
            break
        untagged, tagged = c.command("b", "NOOP")
        assert_tagged(tagged, "b", "OK")


def test_login_literal_plus_before_tls():
    # The LITERAL+ bytes are consumed as part of the refused command: the
    # next answer is the NOOP's, with nothing for "alice {N+}" in between.
    with plain() as c:
        pw = USERS["alice"]
        c.send("a LOGIN {5+}\r\nalice {%d+}\r\n%s\r\nb NOOP\r\n" % (len(pw), pw))
        untagged, tagged = c.read_response("a")
        assert_no_continuation(untagged)
        assert_tagged(tagged, "a", "NO", "PRIVACYREQUIRED")
        untagged, tagged = c.read_response("b")
        assert not untagged, "unexpected lines between the two answers: %r" % untagged
        assert_tagged(tagged, "b", "OK")


def test_starttls_command_injection():
    e = env()
    with ImapClient(e.mg.port("imap"), ca=e.certs.ca) as c:
        c.send("a STARTTLS\r\nb CAPABILITY\r\n")          # one send(): one segment
        line = c.readline()
        assert_tagged(line, "a", "OK")
        c.wrap_tls()            # fails if anything followed the OK in cleartext
        c.send("c NOOP\r\n")
        line = c.readline()
        assert line.startswith("c "), \
            "first line after the handshake is not c's answer: %r (injected command ran?)" % line
        assert_tagged(line, "c", "OK")
        assert c.is_open(0.3) and not c.buf, "extra data after c's answer: %r" % c.buf


def test_starttls_twice_is_bad():
    with secure() as c:
        untagged, tagged = c.command("a", "STARTTLS")
        assert_tagged(tagged, "a", "BAD")
        untagged, tagged = c.command("b", "NOOP")
        assert_tagged(tagged, "b", "OK")
    with secure(implicit=True) as c:
        untagged, tagged = c.command("a", "STARTTLS")
        assert_tagged(tagged, "a", "BAD")


def test_prelogin_commands():
    with plain() as c:
        capability_command(c, "a")
        untagged, tagged = c.command("b", "NOOP")
        assert_tagged(tagged, "b", "OK")
        untagged, tagged = c.command("c", 'ID ("name" "mgtest" "version" "1")')
        assert_tagged(tagged, "c", "OK")
        assert len([l for l in untagged if l.startswith("* ID ")]) == 1, untagged
        untagged, tagged = c.command("d", "ID NIL")
        assert_tagged(tagged, "d", "OK")
        assert len([l for l in untagged if l.startswith("* ID ")]) == 1, untagged
        logout(c, "e")


# ---------------------------------------------------------------------------
# logins over TLS, relayed to Dovecot
# ---------------------------------------------------------------------------

def test_login_quoted_over_tls():
    with secure() as c:
        untagged, tagged = login_ok(c, "bob")        # 'pa ss"word' quoted
        assert_backend_capabilities(untagged, tagged)
        assert select_inbox(c) >= 1
        untagged, tagged = c.command("f", "UID FETCH 1 (BODY.PEEK[])")
        assert_tagged(tagged, "f", "OK")
        assert SHORT_MESSAGE.decode("latin-1") in "\n".join(untagged), untagged
        logout(c)


def test_login_quoted_over_implicit_tls():
    with secure(implicit=True) as c:
        login_ok(c, "alice")
        assert select_inbox(c) >= 1
        logout(c)


def test_login_sync_literals_over_tls():
    pw = USERS["bob"]
    with secure() as c:
        c.send("a LOGIN {3}\r\n")
        assert c.readline().startswith("+"), c.received
        c.send("bob {%d}\r\n" % len(pw))
        assert c.readline().startswith("+"), c.received
        c.send(pw + "\r\n")
        untagged, tagged = c.read_response("a")
        assert_tagged(tagged, "a", "OK")
        select_inbox(c)
        logout(c)


def test_login_literal_plus_over_tls():
    pw = USERS["bob"]
    with secure() as c:
        c.send("a LOGIN {3+}\r\nbob {%d+}\r\n%s\r\n" % (len(pw), pw))
        untagged, tagged = c.read_response("a")
        assert_no_continuation(untagged)
        assert_tagged(tagged, "a", "OK")
        select_inbox(c)
        logout(c)


def test_authenticate_plain_over_tls():
    with secure() as c:                  # without initial response
        c.send("a AUTHENTICATE PLAIN\r\n")
        line = c.readline()
        assert line.startswith("+"), "expected a continuation, got %r" % line
        c.send(sasl_plain("carol", USERS["carol"]) + "\r\n")
        untagged, tagged = c.read_response("a")
        assert_tagged(tagged, "a", "OK")
        select_inbox(c)
        logout(c)
    with secure() as c:                  # SASL-IR
        untagged, tagged = c.command("a", "AUTHENTICATE PLAIN " + sasl_plain("carol", USERS["carol"]))
        assert_no_continuation(untagged)
        assert_tagged(tagged, "a", "OK")
        select_inbox(c)
        logout(c)


def test_credentials_with_line_breaks_never_reach_the_backend():
    """NUL, CR or LF in a decoded name or password (a literal or SASL can
    carry them) would end the backend's command early: refused, with no
    connection to the backend at all."""
    e = env()
    backend_log = len(e.dovecot.log())
    pw = USERS["alice"]
    with secure() as c:
        # A synchronising literal whose password holds CR LF.
        bad = pw + "\r\nX LOGOUT"
        c.send("a LOGIN alice {%d}\r\n" % len(bad))
        assert c.readline().startswith("+")
        c.send(bad + "\r\n")
        refused = [c.read_response("a")[1]]
        # SASL PLAIN with LF in the password, and a NUL inside a literal user name.
        refused.append(c.command("b", "AUTHENTICATE PLAIN " + sasl_plain("alice", pw + "\n"))[1])
        c.send("c LOGIN {6+}\r\nal\x00ice %s\r\n" % imap_quote(pw))
        refused.append(c.read_response("c")[1])
        for tag, line in zip("abc", refused):
            assert line.startswith(tag + " NO ") or line.startswith(tag + " BAD "), refused
        # The same session still logs in with clean credentials.
        login_ok(c, "alice")
        logout(c)
    new = e.dovecot.log()[backend_log:]
    assert new.count("Login: user=<alice>") == 1 and "auth failed" not in new, new


def test_authenticate_login_over_tls():
    with secure() as c:
        c.send("a AUTHENTICATE LOGIN\r\n")
        assert c.readline().startswith("+"), c.received
        c.send(b64("carol") + "\r\n")
        assert c.readline().startswith("+"), c.received
        c.send(b64(USERS["carol"]) + "\r\n")
        untagged, tagged = c.read_response("a")
        assert_tagged(tagged, "a", "OK")
        select_inbox(c)
        logout(c)


def test_wrong_password_then_right():
    with secure() as c:
        untagged, tagged = c.login("carol", "not-carols-password", tag="a")
        assert_tagged(tagged, "a", "NO", "AUTHENTICATIONFAILED")
        untagged, tagged = c.login("carol", USERS["carol"], tag="b")
        assert_tagged(tagged, "b", "OK")
        select_inbox(c)
        logout(c)


def test_max_auth_failures():
    n = SHARED["max_auth_failures"]
    with secure() as c:
        for i in range(n):
            untagged, tagged = c.login("carol", "wrong-%d" % i, tag="a%d" % i)
            assert_tagged(tagged, "a%d" % i, "NO", "AUTHENTICATIONFAILED")
            if i < n - 1:
                assert not any(l.startswith("* BYE") for l in untagged), untagged
        assert_bye_and_closed(c)


def test_backend_down_is_unavailable():
    e = env()
    with secure(e.mg.port("imapsdown"), implicit=True) as c:
        untagged, tagged = c.login("alice", USERS["alice"], tag="a")
        assert_tagged(tagged, "a", "NO", "UNAVAILABLE")


# ---------------------------------------------------------------------------
# bounds before login
# ---------------------------------------------------------------------------

def test_unknown_commands_and_max_bad_commands():
    n = SHARED["max_bad_commands"]
    with plain() as c:
        for i in range(n - 1):
            untagged, tagged = c.command("x%d" % i, "FROBNICATE")
            assert_tagged(tagged, "x%d" % i, "BAD")
            assert not any(l.startswith("* BYE") for l in untagged), untagged
        # the n-th bad command: its BAD, then * BYE and the close
        c.send("x%d FROBNICATE\r\n" % (n - 1))
        lines = assert_bye_and_closed(c)
        assert lines[0].startswith("x%d BAD" % (n - 1)), lines


def test_overlong_line():
    with plain() as c:
        c.send("a NOOP " + "x" * (SHARED["max_line_length"] + 100) + "\r\n")
        assert_bye_and_closed(c, allow_tagged_bad="a")


def test_literal_plus_too_large():
    with secure() as c:
        size = SHARED["max_literal_size"] * 4
        c.send("a LOGIN {%d+}\r\n" % size + "y" * 1000)
        assert_bye_and_closed(c)


def test_sync_literal_too_large():
    with secure() as c:
        size = SHARED["max_literal_size"] * 4
        c.send("a LOGIN {%d}\r\n" % size)
        line = c.readline()
        assert not line.startswith("+"), "continuation for an oversized literal: %r" % line
        assert line.startswith(("a NO", "a BAD")), line
        untagged, tagged = c.command("b", "NOOP")
        assert_tagged(tagged, "b", "OK")
        login_ok(c, "carol")            # and it is still usable for a login
        logout(c)


# Zero-length literals, synchronising and LITERAL+, in every position. Each
# case is a list of parts: the first is sent at once, each later one after a
# "+ " continuation. Expected: the tagged status and response code (or the
# untagged "* BAD" when the tag itself is a literal); then the session goes
# on serving.
EMPTY_LITERALS_CLEARTEXT = [
    (["a LOGIN {0}\r\n"], "a", "NO", "PRIVACYREQUIRED"),
    (["a LOGIN {0+}\r\n {0+}\r\n\r\n"], "a", "NO", "PRIVACYREQUIRED"),
    (["a LOGIN alice {0+}\r\n\r\n"], "a", "NO", "PRIVACYREQUIRED"),
    (["a AUTHENTICATE {0}\r\n"], "a", "NO", "PRIVACYREQUIRED"),
    (["a AUTHENTICATE PLAIN {0+}\r\n\r\n"], "a", "NO", "PRIVACYREQUIRED"),
    (["a NOOP {0}\r\n", "\r\n"], "a", "BAD", None),
    (["a NOOP {0+}\r\n\r\n"], "a", "BAD", None),
    (["a CAPABILITY {0+}\r\n {0}\r\n", "\r\n"], "a", "BAD", None),
    (["a ID ({0}\r\n", " {0}\r\n", ")\r\n"], "a", "OK", None),
    (["a ID ({0+}\r\n {0+}\r\n)\r\n"], "a", "OK", None),
    (["a ID ({0+}\r\n)\r\n"], "a", "BAD", None),
    (["a ID {0}\r\n", "\r\n"], "a", "BAD", None),
    (["a {0}\r\n", "\r\n"], "a", "BAD", None),
    (["a {0+}\r\n NOOP\r\n"], "a", "BAD", None),
    (["{0}\r\n"], "*", "BAD", None),
    (["{0+}\r\n\r\n"], "*", "BAD", None),
]
EMPTY_LITERALS_TLS = [
    (["a LOGIN {0}\r\n", " {0}\r\n", "\r\n"], "a", "BAD", None),
    (["a LOGIN {0+}\r\n {0+}\r\n\r\n"], "a", "BAD", None),
    (["a LOGIN alice {0}\r\n", "\r\n"], "a", "BAD", None),
    (["a LOGIN {0+}\r\n x\r\n"], "a", "BAD", None),
    (["a AUTHENTICATE {0}\r\n", "\r\n"], "a", "BAD", None),
    (["a AUTHENTICATE PLAIN {0+}\r\n\r\n"], "a", "BAD", None),
    (["a STARTTLS {0}\r\n", "\r\n"], "a", "BAD", None),
]


def send_with_continuations(c, parts):
    """Send parts[0], then each further part after a "+ " continuation;
    returns the first line that is not one."""
    c.send(parts[0])
    for part in parts[1:]:
        line = c.readline()
        assert line.startswith("+ "), "expected a continuation, got %r" % line
        c.send(part)
    return c.readline()


def check_empty_literals(connect, cases):
    for parts, tag, status, code in cases:
        with connect() as c:
            line = send_with_continuations(c, parts)
            while tag != "*" and line.startswith("* "):
                line = c.readline()         # ID's untagged answer
            assert not line.startswith("+"), "continuation after the last part: %r" % line
            try:
                assert_tagged(line, tag, status, code)
            except AssertionError as ex:
                raise AssertionError("%r: %s" % (parts, ex))
            untagged, tagged = c.command("b", "NOOP")
            assert not untagged, "%r: unexpected lines %r" % (parts, untagged)
            assert_tagged(tagged, "b", "OK")


def test_empty_literals_before_tls():
    check_empty_literals(plain, EMPTY_LITERALS_CLEARTEXT)
    env().mg.assert_no_crash_reports()


def test_empty_literals_over_tls():
    check_empty_literals(secure, EMPTY_LITERALS_TLS)
    with secure() as c:             # and a real login still works after them
        c.send("a LOGIN {0+}\r\n {0+}\r\n\r\n")
        assert_tagged(c.readline(), "a", "BAD")
        login_ok(c, "alice")
        logout(c)
    env().mg.assert_no_crash_reports()


def test_nul_byte_is_bad():
    with plain() as c:
        c.send(b"a NO\x00OP\r\n")
        line = c.readline()
        assert line.startswith(("a BAD", "* BAD")), line


# ---------------------------------------------------------------------------
# ALPN and the configuration check
# ---------------------------------------------------------------------------

def test_alpn_imap_accepted():
    e = env()
    r = mgtest.s_client(e.mg.port("imaps"), ca=e.certs.ca, alpn="imap", input=b"")
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, "s_client -alpn imap failed:\n" + out
    assert "ALPN protocol: imap" in out, "imap not selected by ALPN:\n" + out
    assert "Verify return code: 0 (ok)" in out, out


def test_alpn_other_protocol_refused():
    e = env()
    r = mgtest.s_client(e.mg.port("imaps"), ca=e.certs.ca, alpn="http/1.1", input=b"")
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    assert r.returncode != 0, "s_client -alpn http/1.1 succeeded:\n" + out
    assert re.search(r"no[ _]application[ _]protocol", out, re.I), \
        "no no_application_protocol alert:\n" + out


def test_alpn_with_python_client():
    e = env()
    with ImapClient(e.mg.port("imaps"), implicit_tls=True, ca=e.certs.ca, alpn=["imap"]) as c:
        assert c.sock.selected_alpn_protocol() == "imap", c.sock.selected_alpn_protocol()
        assert c.greeting.startswith("* OK"), c.greeting
    with ImapClient(e.mg.port("imap"), ca=e.certs.ca, alpn=["imap"]) as c:
        c.starttls()
        assert c.sock.selected_alpn_protocol() == "imap", c.sock.selected_alpn_protocol()


def test_tls_sessions_resume_on_every_engine():
    """Every engine shares the ticket keys, so a TLS session resumes whichever
    engine accepts the reconnection."""
    e = env()
    mg = gateway("mg-resume", engines=2)
    ctx = ssl.create_default_context(cafile=e.certs.ca)
    ctx.check_hostname = False

    def connect(session=None):
        raw = socket.create_connection((mgtest.HOST, mg.port("imaps")), timeout=5)
        s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
        greeting = s.recv(4096)          # also takes in the tickets sent after the handshake
        assert greeting.startswith(b"* OK"), greeting
        reused, sess, port = s.session_reused, s.session, s.getsockname()[1]
        s.close()
        return reused, sess, port

    _, session, _ = connect()
    ports = []
    for _ in range(40):
        reused, _, port = connect(session)
        assert reused, "a TLS session was not resumed (connection %d)" % (len(ports) + 1)
        ports.append(port)
        # done once both engines have resumed one: their pids are in the session lines
        pids = set()
        for line in mg.log().splitlines():
            m = re.search(r"mailgated\[(\d+)\].*session end client=127\.0\.0\.1:(\d+) ", line)
            if m and int(m.group(2)) in ports:
                pids.add(m.group(1))
        if len(pids) >= 2:
            break
    assert len(pids) >= 2, "every resumed session went to one engine: %s" % pids
    mg.stop()


def test_backend_untagged_lines_before_login_ok_are_relayed():
    # What the backend says while it logs the user in (an ALERT, new
    # capabilities) is the user's: it reaches the client before the tagged OK.
    e = env()
    said = ["* OK [ALERT] Your password expires in 3 days.",
            "* CAPABILITY IMAP4rev1 IDLE X-FAKE"]
    fake = mgtest.FakeMailServer(e.certs, users={"alice": USERS["alice"]},
                                 cleartext_login=True, login_untagged=said)
    mg = gateway("mg-untagged", backends=[mgtest.backend("fake", imap_port=fake.port)],
                 listeners=[mgtest.listener("imap", "starttls")])
    with secure(mg.port("imap")) as c:
        untagged, tagged = c.login("alice", USERS["alice"], tag="L")
        assert tagged == "L OK Logged in", tagged
        assert untagged == said, untagged
        untagged, tagged = c.command("Z", "LOGOUT")
        assert tagged.startswith("Z OK"), tagged
    mg.stop()


def test_session_end_reason_logout_or_closed():
    # A LOGOUT the backend answers by closing is a logout, not the backend's doing.
    e = env()
    with secure() as c:
        port = c.sock.getsockname()[1]
        untagged, tagged = c.login("alice", USERS["alice"], tag="L")
        assert_tagged(tagged, "L", "OK")
        select_inbox(c)
        logout(c, tag="a0001")
    line = e.mg.session_end_line(port)
    assert line.endswith(" reason=logout"), line
    # pipelined with the login, and in lower case: the same
    with secure() as c:
        port = c.sock.getsockname()[1]
        c.send("L LOGIN alice %s\r\nz logout\r\n" % imap_quote(USERS["alice"]))
        assert c.expect_closed(10)[-1].startswith("z OK"), "no tagged OK to LOGOUT"
    line = e.mg.session_end_line(port)
    assert line.endswith(" reason=logout"), line
    # a client that just goes away closed the session
    with secure() as c:
        port = c.sock.getsockname()[1]
        untagged, tagged = c.login("alice", USERS["alice"], tag="L")
        assert_tagged(tagged, "L", "OK")
        select_inbox(c)
    line = e.mg.session_end_line(port)
    assert line.endswith(" reason=client-closed"), line


def test_config_check():
    e = env()
    r = e.mg.check()
    assert r.returncode == 0, "mailgated -t rejected a good file (%d):\n%s" % (r.returncode, r.stderr)
    lines = e.mg.config_text().splitlines(True)
    lines.insert(2, "no_such_option = 1\n")          # becomes line 3
    bad = e.td.write("bad-line3.conf", "".join(lines), mode=0o644)
    r = e.mg.check(bad)
    assert r.returncode != 0, "mailgated -t accepted an unknown key"
    assert "%s:3" % bad in r.stderr, "no FILE:3 in the error:\n" + r.stderr


def test_config_check_refuses_writable_file():
    e = env()
    path = e.td.write("world-writable.conf", e.mg.config_text(), mode=0o644)
    os.chmod(path, 0o666)
    r = e.mg.check(path)
    assert r.returncode != 0, "mailgated -t accepted a world-writable file"
    assert path in r.stderr, r.stderr


def test_config_check_refuses_unknown_user_and_group():
    # The start would fail at the privilege drop; -t must say so, not "ok".
    e = env()
    for option in ("user", "group"):
        text = re.sub(r"(?m)^%s = .*$" % option, '%s = "mg-no-such-%s"' % (option, option),
                      e.mg.config_text())
        path = e.td.write("unknown-%s.conf" % option, text, mode=0o644)
        r = e.mg.check(path)
        assert r.returncode != 0, "mailgated -t accepted an unknown %s:\n%s" % (option, r.stdout)
        assert "%s: %s mg-no-such-%s: no such %s" % (path, option, option, option) in r.stderr, \
            r.stderr
    # The pre-login children's user too (the start would fail at the sandbox).
    text = re.sub(r'(?m)^session_user = .*$', 'session_user = "mg-no-such-child"',
                  e.mg.config_text())
    assert 'session_user = "mg-no-such-child"' in text, text
    path = e.td.write("unknown-session-user.conf", text, mode=0o644)
    r = e.mg.check(path)
    assert r.returncode != 0, "mailgated -t accepted an unknown session_user:\n%s" % r.stdout
    assert "%s: session_user mg-no-such-child: no such user" % path in r.stderr, r.stderr


# ---------------------------------------------------------------------------
# instances with their own configuration
# ---------------------------------------------------------------------------

def test_login_timeout():
    mg = gateway("mg-timeout", login_timeout=2)
    with plain(mg.port("imap")) as c:
        t0 = time.monotonic()
        lines = c.expect_closed(8)
        elapsed = time.monotonic() - t0
        assert any(l.startswith("* BYE") for l in lines), "no * BYE before the close: %r" % lines
        assert 1.5 <= elapsed <= 5.5, "closed after %.1f s with login_timeout = 2" % elapsed
    mg.stop()


# The deadlines (issue 11): login_timeout bounds the whole pre-login phase
# whatever the client does, tls_handshake_timeout a client's handshake.
DEADLINE_LOGIN = 6
DEADLINE_TLS = 2
_deadlines = None


def deadline_gateway():
    global _deadlines
    if _deadlines is None:
        _deadlines = gateway("mg-deadlines", login_timeout=DEADLINE_LOGIN,
                             tls_handshake_timeout=DEADLINE_TLS,
                             max_commands_before_login=10000)
    return _deadlines


def assert_cut_off_at(elapsed, deadline, what):
    # generous bounds: the machine is loaded
    assert deadline - 0.5 <= elapsed <= deadline + 3, \
        "%s cut off after %.1f s, deadline %d s" % (what, elapsed, deadline)


def trickle_until_closed(sock, data, limit):
    """Send data one byte a second (the pace is what is tested) until the
    server closes; returns the seconds until then and the bytes received."""
    t0 = time.monotonic()
    received = b""
    for i in range(limit):
        try:
            sock.sendall(data[i % len(data):i % len(data) + 1])
        except OSError:
            return time.monotonic() - t0, received
        # waiting for the server's close is the second between bytes
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            r, _, _ = select.select([sock], [], [], max(0.0, end - time.monotonic()))
            if not r:
                continue
            try:
                chunk = sock.recv(4096)
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                return time.monotonic() - t0, received
            received += chunk
    raise AssertionError("still open after %d bytes a second apart; got %r" % (limit, received))


def test_trickling_client_cut_off_at_login_timeout():
    mg = deadline_gateway()
    t0 = time.monotonic()
    with plain(mg.port("imap")) as c:
        port = c.sock.getsockname()[1]
        # a command never finished: one byte a second
        _, received = trickle_until_closed(c.sock, b"a NOOP " + b"x" * 100, 30)
        assert_cut_off_at(time.monotonic() - t0, DEADLINE_LOGIN, "a trickling client")
        assert received.startswith(b"* BYE "), received
        assert "reason=login-timeout" in mg.session_end_line(port)


def tls_trickle(mg, sock, port, t0):
    # a ClientHello's record header, then one byte a second of the rest
    _, received = trickle_until_closed(sock, b"\x16\x03\x01\x02\x00" + b"\x01" * 200, 30)
    assert_cut_off_at(time.monotonic() - t0, DEADLINE_TLS, "a trickling TLS handshake")
    assert received == b"", received
    assert "reason=tls-timeout" in mg.session_end_line(port)


def test_trickling_implicit_tls_handshake_cut_off():
    mg = deadline_gateway()
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", mg.port("imaps"))) as s:
        tls_trickle(mg, s, s.getsockname()[1], t0)


def test_trickling_handshake_after_starttls_cut_off():
    mg = deadline_gateway()
    with plain(mg.port("imap")) as c:
        untagged, tagged = c.command("S", "STARTTLS")
        assert_tagged(tagged, "S", "OK")
        tls_trickle(mg, c.sock, c.sock.getsockname()[1], time.monotonic())


def test_stalled_tls_handshake_cut_off():
    mg = deadline_gateway()
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", mg.port("imaps"))) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01")     # a ClientHello that never ends
        s.settimeout(DEADLINE_TLS + 10)
        try:
            assert s.recv(4096) == b""
        except ConnectionResetError:
            pass
        assert_cut_off_at(time.monotonic() - t0, DEADLINE_TLS, "a stalled TLS handshake")
        assert "reason=tls-timeout" in mg.session_end_line(s.getsockname()[1])


def test_pipelining_slow_reader_cut_off_at_login_timeout():
    mg = deadline_gateway()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    t0 = time.monotonic()
    s.connect(("127.0.0.1", mg.port("imap")))
    port = s.getsockname()[1]

    def flood():
        try:
            # about 100 bytes of answer each: more than every buffer on the way holds
            s.sendall(b"c CAPABILITY\r\n" * 10000)
        except OSError:
            pass
    sender = threading.Thread(target=flood, daemon=True)
    sender.start()
    received = 0
    closed_after = None
    try:
        while time.monotonic() - t0 < DEADLINE_LOGIN + 20:
            r, _, _ = select.select([s], [], [], 0.5)
            if not r:
                continue
            try:
                chunk = s.recv(256)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                closed_after = time.monotonic() - t0
                break
            received += len(chunk)
            time.sleep(0.02)    # the slow reader: about 12 kB/s (the pace under test)
    finally:
        s.close()
    assert closed_after is not None, "still answered %d bytes after %.0f s" % (
        received, time.monotonic() - t0)
    assert_cut_off_at(closed_after, DEADLINE_LOGIN, "a pipelining slow reader")
    assert received > 1000, received    # it was answered until then
    assert "reason=login-timeout" in mg.session_end_line(port)


SLOW_CLIENTS = 500


def timed_login(port):
    """Seconds from connecting to the tagged OK of a normal login (STARTTLS first)."""
    t0 = time.monotonic()
    with plain(port) as c:
        c.starttls()
        login_ok(c, "alice")
        elapsed = time.monotonic() - t0
        logout(c)
    return elapsed


def test_slow_clients_do_not_delay_a_normal_login():
    """500 clients trickling a byte a second before login, from 25 other
    addresses: a normal login takes at most a second longer."""
    mg = gateway("mg-slowflood", max_connections=SLOW_CLIENTS + 50, login_timeout=120)
    port = mg.port("imap")
    before = min(timed_login(port) for _ in range(3))
    slow = []
    stop = threading.Event()
    try:
        for i in range(SLOW_CLIENTS):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.6.%d" % (1 + i % 25), 0))
            s.settimeout(10)
            s.connect(("127.0.0.1", port))
            slow.append(s)
        mgtest.wait_until(lambda: mgtest.open_connections([port]) >= SLOW_CLIENTS, 60,
                          what="%d slow clients held by the gateway" % SLOW_CLIENTS)

        def trickle():
            while not stop.wait(1.0):
                for s in slow:
                    try:
                        s.send(b"x")
                    except OSError:
                        pass
        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        during = min(timed_login(port) for _ in range(3))
        assert mgtest.open_connections([port]) >= SLOW_CLIENTS, "slow clients were dropped"
    finally:
        stop.set()
        for s in slow:
            s.close()
    assert during - before < 1.0, ("a login took %.2f s beside %d slow clients, %.2f s "
                                   "without" % (during, SLOW_CLIENTS, before))
    mg.wait_no_children(60)
    mg.stop()


def test_max_commands_before_login():
    # the shared gateway: the default, 50; valid commands count too
    with plain() as c:
        port = c.sock.getsockname()[1]
        c.send("".join("n%d NOOP\r\n" % i for i in range(51)))
        lines = c.expect_closed(10)
        assert [l for l in lines if l.startswith("n")] == \
            ["n%d OK NOOP completed." % i for i in range(50)], lines
        assert lines[-1] == "* BYE Too many commands before login.", lines
    assert "reason=too-many-commands" in env().mg.session_end_line(port)


_limits = None


def limits_gateway():
    global _limits
    if _limits is None:
        _limits = gateway("mg-limits", max_connections=3, max_connections_per_ip=2)
    return _limits


def two_then_refused(port, bye="* BYE"):
    """Two connections greeted, the third refused with bye and closed."""
    c1, c2 = plain(port), plain(port)
    for c in (c1, c2):
        assert c.greeting.startswith("* OK"), c.greeting
    c3 = plain(port, greeting=False)
    line = c3.readline()
    assert line.startswith(bye), "third connection from one IP: %r" % line
    c3.expect_closed(5)
    c3.close()
    return c1, c2


def test_per_ip_connection_limit():
    mg = limits_gateway()
    port = mg.port("imap")
    c1, c2 = two_then_refused(port)
    try:
        for i, c in enumerate((c1, c2)):
            untagged, tagged = c.command("n%d" % i, "NOOP")
            assert_tagged(tagged, "n%d" % i, "OK")
        # a freed slot is reusable once the session has ended
        c1.close()
        mgtest.wait_until(lambda: mg.sessions() <= 1, 5, what="session 1 to end")
        with plain(port) as c4:
            assert c4.greeting.startswith("* OK"), c4.greeting
    finally:
        c1.close()
        c2.close()
    mg.wait_no_children(5)


def test_prelogin_limit_spares_logged_in_sessions():
    """Per address, only connections that have not logged in yet are
    limited: an office behind one NAT address keeps its logged-in sessions."""
    mg = gateway("mg-prelogin", max_connections=20, max_prelogin_per_ip=2)
    port = mg.port("imap")
    c1, c2 = two_then_refused(port, "* BYE Too many connections from your address")
    try:
        mg.wait_log(r"connection refused client=127\.0\.0\.1 listener=imap "
                    r"reason=max-prelogin-per-ip")
        # Logged in, c1 no longer counts; nor do four more logged-in sessions.
        c1.starttls()
        login_ok(c1, "alice")
        others = []
        for i in range(4):
            mgtest.wait_until(lambda: plain_accepted(port, others), 5,
                              what="a connection while only c2 waits for its login")
            others[-1].starttls()
            login_ok(others[-1], "carol")
        for c in others:
            logout(c)
            c.close()
    finally:
        c1.close()
        c2.close()
    mg.stop()


def test_sessions_per_user_and_address_limited():
    """max_sessions_per_user_ip: a third session of alice from one address
    is refused with [LIMIT] before the backend is asked; bob, and alice
    from another address, still log in; a freed slot is usable again."""
    mg = gateway("mg-userip", max_sessions_per_user_ip=2)
    port = mg.port("imap")
    held = []
    try:
        for _ in range(2):
            c = plain(port)
            c.starttls()
            login_ok(c, "alice")
            held.append(c)
        with plain(port) as c:
            c.starttls()
            # the master learns of a login at its handoff: wait for both
            mgtest.wait_until(lambda: mg.log().count("login ok: rip=127.0.0.1 ") >= 2, 5,
                              what="both logins in the log")
            untagged, tagged = c.login("alice", USERS["alice"], tag="a")
            assert_tagged(tagged, "a", "NO", "LIMIT")
            login_ok(c, "bob")          # the same session may still log in as another user
            logout(c)
        mg.wait_log(r'login refused: rip=127\.0\.0\.1 rport=\d+ listener=imap user="alice" '
                    r'reason=max-sessions-per-user-ip')
        with plain(port, source="127.0.0.2") as c:
            c.starttls()
            login_ok(c, "alice")
            logout(c)
        logout(held[0])
        held[0].close()
        mgtest.wait_until(lambda: mg.sessions() <= 1, 10, what="the first session to end")
        with plain(port) as c:
            c.starttls()
            login_ok(c, "alice")
            logout(c)
    finally:
        for c in held:
            c.close()
    mg.stop()


def plain_accepted(port, keep):
    """Open a connection; True (and keep it) when it was greeted, not refused."""
    c = plain(port, greeting=False)
    line = c.readline()
    if line.startswith("* OK"):
        keep.append(c)
        return True
    c.close()
    return False


def test_global_connection_limit():
    mg = limits_gateway()
    port = mg.port("imap")
    mg.wait_no_children(5)
    clients = []
    try:
        for src in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            c = plain(port, source=src)
            clients.append(c)
            assert c.greeting.startswith("* OK"), (src, c.greeting)
        c = plain(port, source="127.0.0.5", greeting=False)
        line = c.readline()
        assert line.startswith("* BYE"), "fourth connection with max_connections = 3: %r" % line
        c.expect_closed(5)
        c.close()
        for i, c in enumerate(clients):
            untagged, tagged = c.command("n%d" % i, "NOOP")
            assert_tagged(tagged, "n%d" % i, "OK")
    finally:
        for c in clients:
            c.close()
    mg.wait_no_children(5)


def peer_cert_der(c):
    return c.sock.getpeercert(binary_form=True)


def file_cert_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def test_reload_keeps_sessions_and_applies_new_config():
    e = env()
    mg = gateway("mg-reload")
    master = mg.pid
    old = secure(mg.port("imap"))
    login_ok(old, "alice")
    select_inbox(old)
    # new configuration: another certificate, and the STARTTLS listener
    # routed to the backend that is down
    cert2, key2 = e.certs.issue("server-reload")
    mg.tls.update(certificate=cert2, key=key2)
    mg.listener("imap")["backend"] = "down"
    mg.write_config()
    mg.reload()

    def new_config_seen():
        try:
            with secure(mg.port("imap")) as c:
                return peer_cert_der(c) == file_cert_der(cert2)
        except (OSError, Closed):      # ssl.SSLError is an OSError
            return False
    mgtest.wait_until(new_config_seen, 10, interval=0.1, what="the reloaded certificate")
    assert mg.pid == master and mg.running(), "the master restarted or died on SIGHUP"
    with secure(mg.port("imap")) as c:
        untagged, tagged = c.login("alice", USERS["alice"], tag="a")
        assert_tagged(tagged, "a", "NO", "UNAVAILABLE")
    with secure(mg.port("imaps"), implicit=True) as c:   # still the default backend
        assert peer_cert_der(c) == file_cert_der(cert2)
        login_ok(c, "carol")
        logout(c)
    # the session opened before the reload goes on, relayed as before
    untagged, tagged = old.command("n", "NOOP")
    assert_tagged(tagged, "n", "OK")
    assert select_inbox(old, "s2") >= 1
    logout(old)
    mg.stop()


def test_reload_invalid_config_keeps_old():
    mg = gateway("mg-badreload")
    good = mg.config_text()
    lines = good.splitlines(True)
    lines.insert(2, "no_such_option = 1\n")
    mark = len(mg.log())
    mg.write_config("".join(lines))
    mg.reload()
    mg.wait_log(re.escape(mg.conf_path) + r":\d+", timeout=10, start=mark)
    assert mg.running(), "mailgated died on a bad reload:\n" + mgtest.tail(mg.log())
    with secure(mg.port("imap")) as c:
        login_ok(c, "carol")
        select_inbox(c)
        logout(c)
    with secure(mg.port("imaps"), implicit=True) as c:
        login_ok(c, "carol")
        logout(c)
    mg.write_config(good)
    mg.stop()


def test_sigterm_ends_sessions():
    grace = 1
    mg = gateway("mg-term", shutdown_grace=grace)
    active = secure(mg.port("imap"))
    login_ok(active, "alice")
    select_inbox(active)
    idle = plain(mg.port("imap"))
    mgtest.wait_until(lambda: mg.sessions() >= 2, 5, what="two sessions")
    kids = mg.children()
    elapsed = mg.stop(timeout=grace + 10)
    assert elapsed <= grace + 3, "master took %.1f s to exit (shutdown_grace = %d)" % (elapsed, grace)
    left = mgtest.wait_pids_gone(kids, 1)
    assert not left, "session processes survived the master: %s" % left
    for c in (active, idle):
        c.expect_closed(3)
        c.close()
    for l in mg.listeners:
        assert not mgtest.port_accepts(l["port"]), "port %d still accepts" % l["port"]


# ---------------------------------------------------------------------------
# logging (last: it greps the shared gateway's whole log)
# ---------------------------------------------------------------------------

def test_session_log_line_and_no_passwords():
    e = env()
    pw = USERS["logcheck"]
    with plain() as c:                   # refused in cleartext
        c.login("logcheck", pw, tag="a")
    with secure() as c:
        untagged, tagged = c.login("logcheck", LOGCHECK_WRONG, tag="a")
        assert_tagged(tagged, "a", "NO", "AUTHENTICATIONFAILED")
        untagged, tagged = c.command("b", "AUTHENTICATE PLAIN " + sasl_plain("logcheck", pw))
        assert_tagged(tagged, "b", "OK")
        version = c.tls_version()
        select_inbox(c)
        logout(c)
    with secure(implicit=True) as c:
        c.send("a AUTHENTICATE LOGIN\r\n")
        assert c.readline().startswith("+")
        c.send(b64("logcheck") + "\r\n")
        assert c.readline().startswith("+")
        c.send(b64(pw) + "\r\n")
        assert_tagged(c.read_response("a")[1], "a", "OK")
        logout(c)

    rx = re.compile(r'\buser=["<]?logcheck\b')

    def session_lines():
        return [l for l in e.mg.log().splitlines()
                if rx.search(l) and "bytes_in=" in l and "bytes_out=" in l]
    lines = mgtest.wait_until(lambda: len(session_lines()) >= 2 and session_lines(), 5,
                              what="two session end lines with user=logcheck")
    assert any(re.search(r"\btls=%s\b" % re.escape(version), l) for l in lines), \
        "no tls=%s in the session lines:\n%s" % (version, "\n".join(lines))
    for l in lines:
        m_in = re.search(r"\bbytes_in=(\d+)", l)
        m_out = re.search(r"\bbytes_out=(\d+)", l)
        assert m_in and m_out, l
        assert int(m_in.group(1)) > 0 and int(m_out.group(1)) > 0, l

    forbidden = [LOGCHECK_WRONG, b64(pw), b64(LOGCHECK_WRONG), sasl_plain("logcheck", pw)]
    forbidden += list(USERS.values())
    for inst in [e.mg] + _gateways:
        text = inst.log()
        for s in forbidden:
            assert s not in text, "a password (%r) appears in %s" % (s, inst.log_path)


# ---------------------------------------------------------------------------
# the backend leg over TLS, with certificate and name verification
# ---------------------------------------------------------------------------

def backend_tls_gateway(name, tls, **extra):
    e = env()
    return gateway(name, backends=[mgtest.backend_for(e.dovecot, "dovecot", tls=tls, **extra)])


def test_backend_starttls_verified():
    e = env()
    mg = backend_tls_gateway("mg-backend-starttls", "starttls")
    direct = direct_fetch()
    data = mgtest.curl_fetch("imaps", mg.port("imaps"), e.certs.ca, "alice", USERS["alice"])
    assert data == direct, "message over a STARTTLS backend leg differs"
    mgtest.wait_until(lambda: re.search(r"backend_imap state=greeting->starttls|"
                                        r"state=starttls->login", mg.log()), 5,
                      what="the backend STARTTLS step in the log")
    mg.stop()


def test_backend_implicit_tls_verified():
    e = env()
    mg = backend_tls_gateway("mg-backend-implicit", "implicit")
    direct = direct_fetch()
    data = mgtest.curl_fetch("imap", mg.port("imap"), e.certs.ca, "alice", USERS["alice"])
    assert data == direct, "message over an implicit-TLS backend leg differs"
    mg.stop()


def test_backend_tls_sessions_resume():
    """Every login opens a new backend connection: its TLS handshake resumes
    the engine's last session with that backend instead of starting over."""
    e = env()
    mg = gateway("mg-backend-resume", engines=1,
                 backends=[mgtest.backend_for(e.dovecot, "dovecot", tls="implicit")])
    for i in range(3):
        with secure(mg.port("imaps"), implicit=True) as c:
            login_ok(c, "carol")
            logout(c)
    lines = re.findall(r"backend tls up version=\S+ resumed=(yes|no)", mg.log())
    assert len(lines) == 3, "expected three backend handshakes, got %r" % lines
    assert lines[0] == "no" and lines[1:] == ["yes", "yes"], lines
    mg.stop()


def assert_backend_refused(mg, pattern):
    with secure(mg.port("imaps"), implicit=True) as c:
        untagged, tagged = c.login("alice", USERS["alice"], tag="a")
        assert_tagged(tagged, "a", "NO", "UNAVAILABLE")
    mgtest.wait_until(lambda: re.search(pattern, mg.log()), 5, what=pattern)
    mg.stop()


def test_backend_wrong_name_refused():
    mg = backend_tls_gateway("mg-backend-wrongname", "implicit",
                             verify_name="not-the-backend.example")
    assert_backend_refused(mg, r"certificate verification failed|hostname mismatch")


def test_backend_unknown_ca_refused():
    e = env()
    other = mgtest.Certs(e.td.join("backend-other-ca"))
    mg = backend_tls_gateway("mg-backend-otherca", "starttls", ca_file=other.ca)
    assert_backend_refused(mg, r"certificate verification failed")


# ---------------------------------------------------------------------------
# hostile input: whatever arrives, the daemon keeps serving everyone else
# ---------------------------------------------------------------------------

IMAP_FRAGMENTS = [b"a LOGIN ", b"{5}\r\n", b"{99999999}\r\n", b"{3+}\r\nabc", b"\"x\\\"y\"",
                  b"AUTHENTICATE PLAIN ", b"=", b"*\r\n", b"STARTTLS\r\n", b"(((", b")))",
                  b"\x00", b"\r\n", b"\n", b"ID (\"a\" \"b\")", b"\xff\xfe", b" ", b"NIL",
                  b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", b"x" * 9000,
                  b"{0}\r\n", b"{0+}\r\n", b" {0}\r\n", b"({0+}\r\n)", b"a ID ({0+}\r\n"]


def test_hostile_input_does_not_hurt_the_daemon():
    e = env()
    mgtest.send_hostile_inputs([e.mg.port("imap"), e.mg.port("imaps")], IMAP_FRAGMENTS, 150)
    e.mg.wait_no_children(15)
    # everyone else is still served, and no session process crashed
    with secure() as c:
        login_ok(c, "alice")
        select_inbox(c)
    e.mg.wait_no_children(10)
    bad = [l for l in e.mg.log().splitlines() if "died of signal" in l or "Sanitizer" in l]
    assert not bad, bad


if __name__ == "__main__":
    sys.exit(mgtest.run_tests(globals()))
