#!/usr/bin/env python3
"""Integration tests: mailgated's POP3 front end (STLS on a 110-style
listener, implicit TLS on a 995-style one) in front of a real Dovecot.

Run: python3 tests/integration/test_pop3.py
(MG_MAILGATED=path/to/mailgated, MG_TEST=test_name, MG_KEEP=1).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mgtest  # noqa: E402
from mgtest import Pop3Client, b64, sasl_plain  # noqa: E402

USERS = {
    "alice": "alice-Pop3-Secret",
    "bob": "bob pass with spaces",
    "popcheck": "Qv7-POPCHECK-pw-unique-55120",     # grepped for in the logs
}

MESSAGE = (
    b"From: Mailgate Test <sender@example.org>\r\n"
    b"To: alice@example.org\r\n"
    b"Subject: mailgate POP3 test message\r\n"
    b"Message-ID: <mgtest-pop3-1@example.org>\r\n"
    b"\r\n"
    b".a line that POP3 must dot-stuff\r\n"
    + b"".join(b"line %05d: %s\r\n" % (i, b"0123456789abcdef" * 4) for i in range(2000))
    + b"end\r\n"
)

SETTINGS = dict(max_bad_commands=4, max_auth_failures=3, auth_failure_delay=0,
                login_timeout=30, shutdown_grace=2, max_line_length=8192)


class _Env:
    pass


_env = None


def env():
    global _env
    if _env is not None:
        return _env
    e = _Env()
    e.td = mgtest.TestDir()
    e.certs = mgtest.Certs(e.td.join("certs"))
    e.dovecot = mgtest.Dovecot(e.td, e.certs, users=USERS, start=False)
    for user in USERS:
        e.dovecot.deliver(user, MESSAGE)
    e.dovecot.start()
    down = mgtest.free_port()
    e.mg = mgtest.Mailgated(
        e.td, e.certs, name="mg-pop3",
        backends=[mgtest.backend_for(e.dovecot, "dovecot"),
                  mgtest.backend("down", imap_port=down, pop3_port=down)],
        listeners=[mgtest.listener("pop3", "starttls", protocol="pop3"),
                   mgtest.listener("pop3s", "implicit", protocol="pop3"),
                   mgtest.listener("pop3down", "implicit", protocol="pop3", backend="down")],
        **SETTINGS)
    _env = e
    return e


def plain(**kw):
    e = env()
    kw.setdefault("ca", e.certs.ca)
    return Pop3Client(e.mg.port(kw.pop("listener", "pop3")), **kw)


def secure(implicit=False, **kw):
    e = env()
    kw.setdefault("ca", e.certs.ca)
    if implicit:
        return Pop3Client(e.mg.port(kw.pop("listener", "pop3s")), implicit_tls=True, **kw)
    c = Pop3Client(e.mg.port("pop3"), **kw)
    c.stls()
    return c


def assert_err_auth(line):
    assert line.startswith("-ERR [AUTH]"), "expected -ERR [AUTH] ..., got %r" % line


def assert_no_continuation(c):
    """Nothing (in particular no '+ ' continuation) may be waiting."""
    assert c.is_open(0.3), "connection closed unexpectedly"
    assert not c.buf, "unexpected data from the server: %r" % c.buf


# ---------------------------------------------------------------------------
# real clients: byte-for-byte through both listeners
# ---------------------------------------------------------------------------

def direct_retr():
    e = env()
    data = mgtest.curl_fetch("pop3s", e.dovecot.pop3s_port, e.certs.ca, "alice", USERS["alice"])
    assert data, "Dovecot returned nothing"
    return data


def test_curl_retr_stls():
    e = env()
    direct = direct_retr()
    data = mgtest.curl_fetch("pop3", e.mg.port("pop3"), e.certs.ca, "alice", USERS["alice"])
    assert data == direct, "message through STLS differs: %d vs %d bytes" % (len(data), len(direct))


def test_curl_retr_implicit_tls():
    e = env()
    direct = direct_retr()
    data = mgtest.curl_fetch("pop3s", e.mg.port("pop3s"), e.certs.ca, "alice", USERS["alice"])
    assert data == direct, "message through implicit TLS differs"


def test_curl_cleartext_login_refused():
    e = env()
    r = mgtest.curl("pop3://%s:%d/1" % (mgtest.HOST, e.mg.port("pop3")), e.certs.ca,
                    "alice", USERS["alice"], ssl_reqd=False)
    assert r.returncode != 0, "curl logged in without TLS"


# ---------------------------------------------------------------------------
# before TLS: capabilities and refusals
# ---------------------------------------------------------------------------

def test_greeting_and_capa_before_tls():
    with plain() as c:
        assert c.greeting.startswith("+OK"), c.greeting
        caps = c.capa()
        names = [l.split()[0].upper() for l in caps if l.strip()]
        for want in ("STLS", "RESP-CODES", "AUTH-RESP-CODE"):
            assert want in names, "%s missing from CAPA %r" % (want, caps)
        assert "USER" not in names, "USER offered before TLS: %r" % caps
        assert "SASL" not in names, "SASL offered before TLS: %r" % caps


def test_user_pass_apop_refused_before_tls():
    e = env()
    before = e.dovecot.log()
    with plain() as c:
        assert_err_auth(c.command("USER alice"))
        assert_err_auth(c.command("PASS " + USERS["alice"]))
        assert_err_auth(c.command("APOP alice 0123456789abcdef0123456789abcdef"))
        assert_no_continuation(c)
        assert c.command("QUIT").startswith("+OK")
    # refused at the gateway: the backend never heard of this session
    assert e.dovecot.log() == before, "Dovecot saw a connection during a refused login"


def test_auth_refused_before_tls_without_continuation():
    # two per connection: refusals count towards max_bad_commands (4 here)
    with plain() as c:
        assert_err_auth(c.command("AUTH PLAIN"))
        assert_no_continuation(c)
        assert_err_auth(c.command("AUTH PLAIN " + sasl_plain("alice", USERS["alice"])))
        assert_no_continuation(c)
    with plain() as c:
        assert_err_auth(c.command("AUTH LOGIN"))
        assert_no_continuation(c)
        assert_err_auth(c.command("AUTH LOGIN " + b64("alice")))
        assert_no_continuation(c)


def test_stls_injection_discarded():
    e = env()
    with Pop3Client(e.mg.port("pop3"), ca=e.certs.ca) as c:
        c.send("STLS\r\nUSER injected\r\n")        # one send(): one segment
        line = c.readline()
        assert line.startswith("+OK"), line
        c.wrap_tls()
        c.send("XYZZY\r\n")
        line = c.readline()
        assert line.startswith("-ERR"), \
            "first answer inside TLS is not XYZZY's -ERR (injected USER ran?): %r" % line
        assert c.is_open(0.3) and not c.buf, "extra data: %r" % c.buf


def test_capa_after_stls_and_stls_twice():
    with secure() as c:
        caps = c.capa()
        names = [l.split()[0].upper() for l in caps if l.strip()]
        assert "USER" in names, caps
        assert "STLS" not in names, caps
        sasl = [l.upper().split() for l in caps if l.upper().startswith("SASL")]
        assert sasl and "PLAIN" in sasl[0] and "LOGIN" in sasl[0], caps
        assert c.command("STLS").startswith("-ERR")


def test_implicit_tls_capa_has_no_stls():
    with secure(implicit=True) as c:
        assert c.greeting.startswith("+OK"), c.greeting
        names = [l.split()[0].upper() for l in c.capa() if l.strip()]
        assert "STLS" not in names and "USER" in names, names
        assert c.command("STLS").startswith("-ERR")


def test_unknown_command_and_limit():
    # max_bad_commands = 4: three errors, then the fourth ends the connection
    with plain() as c:
        for i in range(3):
            assert c.command("FOO%d" % i).startswith("-ERR")
        c.send("BAR\r\n")
        lines = c.expect_closed(5)
        assert lines and all(l.startswith("-ERR") for l in lines), lines


def test_max_commands_before_login():
    # the default, 50, and valid commands count too (issue 11)
    with plain() as c:
        port = c.sock.getsockname()[1]
        c.send("CAPA\r\n" * 51)
        lines = c.expect_closed(10)
        assert sum(1 for l in lines if l.startswith("+OK")) == 50, lines
        assert lines.count(".") == 50, lines
        assert lines[-1] == "-ERR Too many commands before login.", lines
    assert "reason=too-many-commands" in env().mg.session_end_line(port)


def test_overlong_line_closes():
    with plain() as c:
        c.send("USER " + "x" * 9000 + "\r\n")
        lines = c.expect_closed(5)
        assert lines and lines[-1].startswith("-ERR"), lines


def test_nul_byte_is_refused():
    with plain() as c:
        assert c.command("CA\0PA").startswith("-ERR")
        assert c.command("QUIT").startswith("+OK")


# ---------------------------------------------------------------------------
# logging in after TLS
# ---------------------------------------------------------------------------

def test_user_pass_after_stls_and_stat():
    with secure() as c:
        assert c.command("USER bob").startswith("+OK")
        answer = c.command("PASS " + USERS["bob"])
        assert answer.startswith("+OK"), answer
        stat = c.command("STAT")
        assert stat.startswith("+OK 1 "), stat
        assert c.command("QUIT").startswith("+OK")


def test_session_end_reason_quit():
    # QUIT answered by the backend's close is a logout in the session end line.
    e = env()
    with secure(implicit=True) as c:
        port = c.sock.getsockname()[1]
        assert c.command("USER bob").startswith("+OK")
        assert c.command("PASS " + USERS["bob"]).startswith("+OK")
        assert c.command("quit").startswith("+OK")
        c.expect_closed(5)
    line = e.mg.session_end_line(port)
    assert line.endswith(" reason=logout"), line


def test_auth_plain_initial_response_implicit_tls():
    with secure(implicit=True) as c:
        answer = c.command("AUTH PLAIN " + sasl_plain("alice", USERS["alice"]))
        assert answer.startswith("+OK"), answer
        status, body = c.multiline("LIST")
        assert status.startswith("+OK") and body and body[0].startswith("1 "), (status, body)


def test_auth_plain_continuation():
    with secure() as c:
        assert c.command("AUTH PLAIN").startswith("+")
        answer = c.command(sasl_plain("alice", USERS["alice"]))
        assert answer.startswith("+OK"), answer


def test_auth_login():
    with secure() as c:
        assert c.command("AUTH LOGIN").startswith("+ ")
        assert c.command(b64("bob")).startswith("+ ")
        answer = c.command(b64(USERS["bob"]))
        assert answer.startswith("+OK"), answer


def test_auth_cancelled():
    with secure() as c:
        assert c.command("AUTH PLAIN").startswith("+")
        assert c.command("*").startswith("-ERR")
        assert c.user_pass("alice", USERS["alice"]).startswith("+OK")


def test_wrong_password_then_right():
    with secure() as c:
        assert c.command("USER alice").startswith("+OK")       # verdict comes at PASS
        assert_err_auth(c.command("PASS not-the-password"))
        assert c.user_pass("alice", USERS["alice"]).startswith("+OK")


def test_max_auth_failures_closes():
    with secure() as c:
        for i in range(2):
            assert_err_auth(c.user_pass("alice", "wrong-%d" % i))
        c.send("USER alice\r\n")
        assert c.readline().startswith("+OK")
        c.send("PASS wrong-final\r\n")
        lines = c.expect_closed(10)
        assert lines and lines[0].startswith("-ERR [AUTH]"), lines


def test_backend_down_is_sys_temp():
    with secure(implicit=True, listener="pop3down") as c:
        answer = c.user_pass("alice", USERS["alice"])
        assert answer.startswith("-ERR [SYS/TEMP]"), answer


def test_no_password_in_log():
    with secure() as c:
        assert c.user_pass("popcheck", USERS["popcheck"]).startswith("+OK")
        assert c.command("QUIT").startswith("+OK")
    with secure(implicit=True) as c:
        assert c.command("AUTH PLAIN " + sasl_plain("popcheck", USERS["popcheck"])).startswith("+OK")
        assert c.command("QUIT").startswith("+OK")
    e = env()
    mgtest.wait_until(lambda: e.mg.log().count('user="popcheck"') >= 2, 5,
                      what="two sessions of popcheck in the log")
    text = e.mg.log()
    for secret in (USERS["popcheck"], b64(USERS["popcheck"]), sasl_plain("popcheck", USERS["popcheck"])):
        assert secret not in text, "a password appears in the log"


POP3_FRAGMENTS = [b"USER ", b"PASS ", b"AUTH PLAIN", b"AUTH LOGIN ", b"=", b"*\r\n", b"STLS\r\n",
                  b"CAPA\r\n", b"APOP a b\r\n", b"\x00", b"\r\n", b"\n", b"\xff\xfe", b" ",
                  b"QUIT", b"x" * 300, b"y" * 9000]


def test_hostile_input_does_not_hurt_the_daemon():
    e = env()
    mgtest.send_hostile_inputs([e.mg.port("pop3"), e.mg.port("pop3s")], POP3_FRAGMENTS, 150)
    # let the per-address limit (default 20) drain before the ordinary login
    e.mg.wait_no_children(15)
    with secure(implicit=True) as c:
        assert c.user_pass("alice", USERS["alice"]).startswith("+OK")
    e.mg.wait_no_children(10)
    bad = [l for l in e.mg.log().splitlines() if "died of signal" in l or "Sanitizer" in l]
    assert not bad, bad


if __name__ == "__main__":
    sys.exit(mgtest.run_tests(globals()))
