#!/usr/bin/env python3
"""Integration tests: the check_cleartext_login plugin against real servers
started here - mailgated in front of Dovecot, Dovecot itself with
disable_plaintext_auth = yes and = no, a closed port, a server that never
speaks, certificates near expiry, and fake servers with and without the
STARTTLS command-injection bug.

Dovecot treats a client whose address equals its own as secured (see
TESTING-NOTES), so the Dovecots here also listen on 127.0.0.2 and the plugin
connects there from 127.0.0.1; it checks their certificate with
--sni localhost.

Run: python3 tests/integration/test_monitor.py
(MG_CHECK_CLEARTEXT=path/to/check_cleartext_login or MG_TOP_BUILDDIR,
MG_MAILGATED, MG_TEST=test_name, MG_KEEP=1).
"""

import os
import re
import signal
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mgtest  # noqa: E402

USER = "monitor"
PASSWORD = "Mon-Cleartext-pw-7731"      # grepped for in every output
LITERAL_USER = "literal"
LITERAL_PASSWORD = 'p\u00e4"ss\\w\u00f6rd'   # 8-bit: IMAP needs a literal; quote, backslash
USERS = {USER: PASSWORD, "alice": "alice-pw", LITERAL_USER: LITERAL_PASSWORD}
OTHER_IP = "127.0.0.2"
STATUS_RX = re.compile(r"^CLEARTEXT (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+ \| "
                       r"(connect_time=[0-9.]+s;;;0 )?time=[0-9.]+s;;;0"
                       r"( cert_days=-?[0-9]+;[0-9]+:;[0-9]+:)?$")
EXIT = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}


def plugin_binary():
    if os.environ.get("MG_CHECK_CLEARTEXT"):
        return os.environ["MG_CHECK_CLEARTEXT"]
    top = os.environ.get("MG_TOP_BUILDDIR") or os.path.join(mgtest.HERE, "..", "..")
    return os.path.normpath(os.path.join(top, "monitor", "check_cleartext_login"))


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
    listen_both = "listen = 127.0.0.1, %s\n" % OTHER_IP
    e.dovecot_secure = mgtest.Dovecot(e.td, e.certs, users=USERS, name="dovecot-secure",
                                      disable_plaintext_auth=True, extra_conf=listen_both)
    e.dovecot_plain = mgtest.Dovecot(e.td, e.certs, users=USERS, name="dovecot-plain",
                                     disable_plaintext_auth=False, extra_conf=listen_both)
    e.mg = mgtest.Mailgated(
        e.td, e.certs, name="mg-monitor",
        backends=[mgtest.backend_for(e.dovecot_secure, "dovecot")],
        listeners=[mgtest.listener("imap", "starttls"),
                   mgtest.listener("imaps", "implicit"),
                   mgtest.listener("pop3", "starttls", protocol="pop3"),
                   mgtest.listener("pop3s", "implicit", protocol="pop3")])
    e.authfile = e.td.write("monitor.auth", "# test account\nusername=%s\npassword=%s\n"
                            % (USER, PASSWORD), mode=0o600)
    e.literal_authfile = e.td.write("literal.auth", "username=%s\npassword=%s\n"
                                    % (LITERAL_USER, LITERAL_PASSWORD), mode=0o600)
    _env = e
    return e


class Result:
    def __init__(self, args, proc, elapsed):
        self.args = args
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.elapsed = elapsed
        self.first = self.out.split("\n", 1)[0]
        m = STATUS_RX.match(self.first)
        self.state = m.group(1) if m else None

    def __str__(self):
        return "check_cleartext_login %s\n-> exit %d after %.2f s\n%s%s" % (
            " ".join(self.args), self.rc, self.elapsed, self.out, self.err)


def run_check(*args, auth=True, ca=True, timeout=None, check_shape=True):
    """Run the plugin; returns a Result. By default with the test account's
    credentials file and the test CA. Every run is checked for the
    guidelines' output shape, an exit code that matches the state word,
    and the absence of the password."""
    e = env()
    argv = list(args)
    if auth:
        argv += ["-a", e.authfile]
    if ca:
        argv += ["--ca-file", e.certs.ca]
    binary = plugin_binary()
    if not os.access(binary, os.X_OK):
        raise RuntimeError("check_cleartext_login not found at %s (build it, or set "
                           "MG_CHECK_CLEARTEXT)" % binary)
    t0 = time.monotonic()
    proc = subprocess.run([binary] + argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, errors="replace",
                          timeout=timeout or 60)
    r = Result(argv, proc, time.monotonic() - t0)
    assert PASSWORD not in r.out and PASSWORD not in r.err, "password in the output:\n%s" % r
    if check_shape:
        assert r.state is not None, "status line does not have the guidelines' shape:\n%s" % r
        assert r.rc == EXIT[r.state], "exit code %d for %s:\n%s" % (r.rc, r.state, r)
    for line in r.err.splitlines():     # a sanitizer build reports here
        assert "Sanitizer" not in line and "runtime error" not in line, str(r)
    return r


def expect(r, state, *texts):
    assert r.state == state, "expected %s:\n%s" % (state, r)
    for t in texts:
        assert t in r.first, "expected %r in the status line:\n%s" % (t, r)


def secure_dovecot(port_attr, *args, **kw):
    e = env()
    return run_check("-H", OTHER_IP, "--sni", "localhost", "-p",
                     str(getattr(e.dovecot_secure, port_attr)), *args, **kw)


def plain_dovecot(port_attr, *args, **kw):
    e = env()
    return run_check("-H", OTHER_IP, "--sni", "localhost", "-p",
                     str(getattr(e.dovecot_plain, port_attr)), *args, **kw)


# ---------------------------------------------------------------------------
# mailgated in front of Dovecot: everything OK
# ---------------------------------------------------------------------------

def test_mailgated_imap_ok():
    e = env()
    r = run_check("-H", "127.0.0.1", "-p", str(e.mg.port("imap")))
    expect(r, "OK", "IMAP 127.0.0.1:%d" % e.mg.port("imap"),
           "STARTTLS and LOGINDISABLED advertised",
           "cleartext LOGIN refused by policy (NO [PRIVACYREQUIRED]",
           "LOGIN over TLS succeeded", "certificate valid for 36")
    assert re.search(r"\| connect_time=[0-9.]+s;;;0 time=[0-9.]+s;;;0 "
                     r"cert_days=36[45];30:;14:$", r.first), str(r)


def test_mailgated_pop3_ok():
    e = env()
    r = run_check("-H", "127.0.0.1", "-P", "pop3", "-p", str(e.mg.port("pop3")))
    expect(r, "OK", "POP3 127.0.0.1:", "STLS offered, no cleartext login advertised",
           "cleartext USER/PASS refused by policy (-ERR [AUTH]",
           "USER/PASS over TLS succeeded")


def test_mailgated_implicit_tls_ok():
    e = env()
    r = run_check("-H", "127.0.0.1", "-S", "-p", str(e.mg.port("imaps")))
    expect(r, "OK", "(TLS)", "TLSv1.3", "LOGIN over TLS succeeded")
    assert "cleartext" not in r.first, "-S must check only the TLS part:\n%s" % r
    r = run_check("-H", "127.0.0.1", "-S", "-P", "pop3", "-p", str(e.mg.port("pop3s")))
    expect(r, "OK", "USER/PASS over TLS succeeded")


def test_mailgated_dummy_user_ok():
    e = env()
    r = run_check("-H", "127.0.0.1", "-p", str(e.mg.port("imap")), auth=False)
    expect(r, "OK", "refused by policy",
           "no credentials file (-a): dummy user check_cleartext_login, LOGIN over TLS not tested")


def test_mailgated_injection_ok():
    e = env()
    r = run_check("-H", "127.0.0.1", "-p", str(e.mg.port("imap")), "--injection")
    expect(r, "OK", "no STARTTLS command injection")
    r = run_check("-H", "127.0.0.1", "-P", "pop3", "-p", str(e.mg.port("pop3")), "--injection")
    expect(r, "OK", "no STLS command injection")


def test_ipv4_by_name():
    e = env()
    # localhost also resolves to ::1, where nothing listens: -4 goes straight to 127.0.0.1,
    # and the certificate names localhost.
    r = run_check("-H", "localhost", "-4", "-p", str(e.mg.port("imap")))
    expect(r, "OK", "IMAP localhost:")


def test_ipv6_without_address():
    e = env()
    r = run_check("-H", "127.0.0.1", "-6", "-p", str(e.mg.port("imap")))
    expect(r, "CRITICAL")
    assert "127.0.0.1" in r.first, str(r)


# ---------------------------------------------------------------------------
# Dovecot itself, seen from another address
# ---------------------------------------------------------------------------

def test_dovecot_plaintext_disabled_ok():
    r = secure_dovecot("imap_port", "--injection")
    expect(r, "OK", "cleartext LOGIN refused by policy (NO [PRIVACYREQUIRED] Plaintext "
           "authentication disallowed", "LOGIN over TLS succeeded")
    r = secure_dovecot("pop3_port", "-P", "pop3", "--injection")
    expect(r, "OK", "cleartext USER/PASS refused by policy (-ERR [AUTH] Plaintext "
           "authentication disallowed", "USER/PASS over TLS succeeded")


def test_dovecot_plaintext_allowed_real_credentials_critical():
    r = plain_dovecot("imap_port")
    expect(r, "CRITICAL", "cleartext LOGIN succeeded for %s" % USER,
           "LOGINDISABLED not advertised before STARTTLS")
    assert r.rc == 2
    assert r.first.index("cleartext LOGIN succeeded") < r.first.index("LOGINDISABLED"), \
        "the cause must come first:\n%s" % r
    r = plain_dovecot("pop3_port", "-P", "pop3")
    expect(r, "CRITICAL", "cleartext USER/PASS succeeded for %s" % USER,
           "USER offered before STLS")
    assert r.rc == 2


def test_dovecot_plaintext_allowed_dummy_user_critical():
    r = plain_dovecot("imap_port", auth=False)
    expect(r, "CRITICAL", "cleartext credentials were processed: LOGIN for dummy user "
           "check_cleartext_login answered 'NO [AUTHENTICATIONFAILED]")
    r = plain_dovecot("pop3_port", "-P", "pop3", auth=False)
    expect(r, "CRITICAL", "cleartext credentials were processed: USER/PASS for dummy user "
           "check_cleartext_login answered '-ERR [AUTH] Authentication failed.'")


def test_same_address_looks_secured():
    # The rule TESTING-NOTES describes, seen by the plugin: from 127.0.0.1 to
    # 127.0.0.1 the "secure" Dovecot lets the cleartext login through.
    e = env()
    r = run_check("-H", "127.0.0.1", "-p", str(e.dovecot_secure.imap_port))
    expect(r, "CRITICAL", "cleartext LOGIN succeeded")


# ---------------------------------------------------------------------------
# no server, a silent server, the clock
# ---------------------------------------------------------------------------

def test_closed_port_critical():
    port = mgtest.free_port()
    r = run_check("-H", "127.0.0.1", "-p", str(port))
    expect(r, "CRITICAL", "cannot connect to 127.0.0.1:%d: Connection refused" % port)


def test_silent_server_times_out():
    silent = mgtest.SilentServer()
    r = run_check("-H", "127.0.0.1", "-p", str(silent.port), "-t", "2")
    expect(r, "CRITICAL", "no IMAP greeting: timed out after 1.")
    assert 1.5 <= r.elapsed < 2.6, "took %.2f s with -t 2:\n%s" % (r.elapsed, r)
    r = run_check("-H", "127.0.0.1", "-P", "pop3", "-p", str(silent.port), "-t", "1")
    expect(r, "CRITICAL", "no POP3 greeting: timed out after 0.")
    assert r.elapsed < 1.6, "took %.2f s with -t 1:\n%s" % (r.elapsed, r)


def test_hard_limit_alarm():
    # The alarm at -t seconds is the backstop for waits without a deadline
    # (name resolution). Stop the plugin across it: when it continues, the
    # pending alarm ends it at once with the hard-limit report.
    silent = mgtest.SilentServer()
    proc = subprocess.Popen([plugin_binary(), "-H", "127.0.0.1", "-p", str(silent.port),
                             "-t", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    try:
        time.sleep(0.5)         # started, alarm armed, deadline (1.75 s) still ahead
        proc.send_signal(signal.SIGSTOP)
        time.sleep(2.5)
        proc.send_signal(signal.SIGCONT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, (proc.returncode, out, err)
    assert out == "CLEARTEXT CRITICAL - IMAP 127.0.0.1:%d: timed out after 2 s | " \
        "time=2.000000s;;;0\n" % silent.port, repr(out)


def test_silent_implicit_tls_times_out():
    silent = mgtest.SilentServer()
    r = run_check("-H", "127.0.0.1", "-S", "-p", str(silent.port), "-t", "1")
    expect(r, "CRITICAL", "implicit TLS: TLS handshake timed out after 0.")
    assert r.elapsed < 1.6, str(r)


# ---------------------------------------------------------------------------
# certificates
# ---------------------------------------------------------------------------

def mailgated_with_cert(name, cert, key):
    e = env()
    return mgtest.Mailgated(e.td, e.certs, name=name,
                            backends=[mgtest.backend_for(e.dovecot_secure, "dovecot")],
                            listeners=[mgtest.listener("imap", "starttls")],
                            tls={"certificate": cert, "key": key})


def test_certificate_expiry_thresholds():
    e = env()
    # 4.5 days: whole days left is 4 however long the test takes.
    cert, key = e.certs.issue("short-lived", not_after=time.time() + 4.5 * 86400)
    mg = mailgated_with_cert("mg-short-lived", cert, key)
    port = str(mg.port("imap"))
    r = run_check("-H", "127.0.0.1", "-p", port, "-w", "10", "-c", "2")
    expect(r, "WARNING", "certificate expires in 4 days")
    assert r.first.endswith("cert_days=4;10:;2:"), str(r)
    assert "LOGIN over TLS succeeded" in r.first, str(r)
    r = run_check("-H", "127.0.0.1", "-p", port, "-w", "10", "-c", "8")
    expect(r, "CRITICAL", "certificate expires in 4 days")
    r = run_check("-H", "127.0.0.1", "-p", port, "-w", "4", "-c", "0")
    expect(r, "OK", "certificate valid for 4 days")
    mg.stop()


def test_expired_certificate_critical():
    e = env()
    now = time.time()
    cert, key = e.certs.issue("expired-monitor", not_before=now - 10 * 86400,
                              not_after=now - 3 * 86400 - 3600)
    mg = mailgated_with_cert("mg-expired", cert, key)
    r = run_check("-H", "127.0.0.1", "-p", str(mg.port("imap")), "-w", "0", "-c", "0")
    expect(r, "CRITICAL", "certificate expired 3 days ago",
           "LOGIN over TLS not tried: certificate not verified")
    assert r.first.endswith("cert_days=-4;0:;0:"), str(r)
    mg.stop()


def test_untrusted_and_misnamed_certificate_warning():
    e = env()
    r = run_check("-H", "127.0.0.1", "-p", str(e.mg.port("imap")), ca=False)
    expect(r, "WARNING", "certificate not trusted:",
           "LOGIN over TLS not tried: certificate not verified")
    r = secure_dovecot("imap_port")
    expect(r, "OK")
    r = run_check("-H", OTHER_IP, "-p", str(e.dovecot_secure.imap_port))
    expect(r, "WARNING", "certificate does not name 127.0.0.2")


# ---------------------------------------------------------------------------
# STARTTLS command injection
# ---------------------------------------------------------------------------

def test_injection_vulnerable_fake_critical():
    e = env()
    for protocol, word in (("imap", "STARTTLS"), ("pop3", "STLS")):
        fake = mgtest.FakeMailServer(e.certs, protocol=protocol, vulnerable=True, users=USERS)
        r = run_check("-H", "127.0.0.1", "-P", protocol, "-p", str(fake.port), "--injection")
        expect(r, "CRITICAL", "%s command injection: a command sent with %s was answered "
               "inside TLS" % (word, word))
        assert fake.answered_inside_tls, "the fake server did not see a pipelined command"
        # Without --injection the same server looks fine.
        r = run_check("-H", "127.0.0.1", "-P", protocol, "-p", str(fake.port))
        expect(r, "OK")
        fake.stop()


def test_injection_safe_fake_ok():
    e = env()
    for protocol in ("imap", "pop3"):
        fake = mgtest.FakeMailServer(e.certs, protocol=protocol, vulnerable=False, users=USERS)
        r = run_check("-H", "127.0.0.1", "-P", protocol, "-p", str(fake.port), "--injection")
        expect(r, "OK", "command injection")
        fake.stop()


def test_old_tls_version_warning():
    e = env()
    fake = mgtest.FakeMailServer(e.certs, protocol="imap", users=USERS,
                                 max_tls=ssl.TLSVersion.TLSv1_1)
    r = run_check("-H", "127.0.0.1", "-p", str(fake.port))
    expect(r, "WARNING", "TLSv1.1 negotiated, older than TLS 1.2", "LOGIN over TLS succeeded")
    fake.stop()


# ---------------------------------------------------------------------------
# output, arguments, credentials
# ---------------------------------------------------------------------------

def test_verbose_transcript_masks_password():
    e = env()
    r = run_check("-H", OTHER_IP, "--sni", "localhost", "-p", str(e.dovecot_plain.imap_port),
                  "-v")
    lines = r.out.splitlines()
    assert len(lines) > 5, str(r)
    assert any(l.startswith('C: CCL1 LOGIN "%s" ******' % USER) for l in lines), str(r)
    assert any(l.startswith("S: * OK") for l in lines), str(r)
    assert any(l.startswith("-- TLS established: TLSv1.3") for l in lines), str(r)
    r = run_check("-H", "127.0.0.1", "-P", "pop3", "-p", str(e.mg.port("pop3")), "-v")
    assert "C: PASS ******" in r.out.splitlines(), str(r)


def test_password_needing_a_literal():
    # 8-bit, a quote and a backslash: a literal in IMAP, sent as is in POP3;
    # masked in the transcript in every form.
    e = env()
    secret_parts = ("ss\\w", 'p\u00e4"')

    def check_masked(r):
        for part in secret_parts:
            assert part not in r.out, "password part %r shown:\n%s" % (part, r)
        assert "******" in r.out, str(r)

    r = run_check("-H", "127.0.0.1", "-p", str(e.mg.port("imap")), "-a", e.literal_authfile,
                  "-v", auth=False)
    expect(r, "OK", "LOGIN over TLS succeeded")
    check_masked(r)
    r = plain_dovecot("imap_port", "-a", e.literal_authfile, "-v", auth=False)
    expect(r, "CRITICAL", "cleartext LOGIN succeeded for literal")
    check_masked(r)
    r = plain_dovecot("pop3_port", "-P", "pop3", "-a", e.literal_authfile, "-v", auth=False)
    expect(r, "CRITICAL", "cleartext USER/PASS succeeded for literal")
    check_masked(r)


def test_wrong_password_over_tls_critical():
    e = env()
    bad = e.td.write("wrong.auth", "username=%s\npassword=wrong-%s\n" % (USER, PASSWORD[::-1]),
                     mode=0o640)
    r = run_check("-H", "127.0.0.1", "-p", str(e.mg.port("imap")), "-a", bad, auth=False)
    expect(r, "CRITICAL", "LOGIN over TLS failed for %s" % USER)


def test_bad_arguments_unknown():
    for args in (["-p", "143"], ["-H", "127.0.0.1", "-p", "0"], ["-H", "h", "-P", "smtp"],
                 ["-H", "h", "--password", "x"], ["-H", "h", "-w", "1", "-c", "5"]):
        r = run_check(*args, auth=False, ca=False, check_shape=False)
        assert r.rc == 3, str(r)
        assert r.first.startswith("CLEARTEXT UNKNOWN - "), str(r)
        assert "Usage: check_cleartext_login -H host" in r.out, str(r)


def test_authfile_problems_unknown():
    e = env()
    loose = e.td.write("loose.auth", "username=%s\npassword=%s\n" % (USER, PASSWORD), mode=0o644)
    r = run_check("-H", "127.0.0.1", "-p", str(e.mg.port("imap")), "-a", loose, auth=False)
    expect(r, "UNKNOWN", "readable or writable by others")
    assert "connect_time" not in r.first, "must not connect with an unusable file:\n%s" % r
    broken = e.td.write("broken.auth", "user=%s\n" % USER, mode=0o600)
    r = run_check("-H", "127.0.0.1", "-p", str(e.mg.port("imap")), "-a", broken, auth=False)
    expect(r, "UNKNOWN", "line 1: unknown key")
    r = run_check("-H", "127.0.0.1", "-p", str(e.mg.port("imap")),
                  "-a", e.td.join("missing.auth"), auth=False)
    expect(r, "UNKNOWN", "No such file")


def test_help_version_and_man_page_agree():
    top = os.environ.get("MG_TOP_SRCDIR") or os.path.join(mgtest.HERE, "..", "..")
    with open(os.path.join(top, "man", "check_cleartext_login.8")) as f:
        man = f.read().replace("\\-", "-")
    help_run = subprocess.run([plugin_binary(), "--help"], stdout=subprocess.PIPE,
                              universal_newlines=True, timeout=10)
    assert help_run.returncode == 3, "--help exits UNKNOWN as the Monitoring Plugins do"
    help_opts = set(re.findall(r"--[a-z0-9-]+", help_run.stdout))
    man_opts = set(re.findall(r"--[a-z0-9-]+", man))
    assert len(help_opts) >= 16, sorted(help_opts)
    assert help_opts == man_opts, "--help and the man page differ: only in --help %s, " \
        "only in the man page %s" % (sorted(help_opts - man_opts), sorted(man_opts - help_opts))
    version = subprocess.run([plugin_binary(), "-V"], stdout=subprocess.PIPE,
                             universal_newlines=True, timeout=10)
    assert version.returncode == 3
    assert re.match(r"^check_cleartext_login \(mailgate\) [0-9.]+\n$", version.stdout), \
        version.stdout


if __name__ == "__main__":
    sys.exit(mgtest.run_tests(globals()))
