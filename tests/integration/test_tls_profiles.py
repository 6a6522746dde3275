#!/usr/bin/env python3
"""Integration tests: named TLS profiles on listeners and on backends.

Listeners with profiles (TLS 1.3 only, X25519 only, a narrow cipher list,
RSA key exchange allowed) and listeners without one are driven with
openssl s_client (-tls1_2, -groups, -cipher, -ciphersuites), which shows
what each accepts and refuses. A backend with a profile logs in to a real
Dovecot over implicit TLS; Dovecot logs the suite of each login, which
shows that the backend leg really uses the profile (one TLS 1.3 suite).

Run: python3 tests/integration/test_tls_profiles.py
(MG_MAILGATED=path/to/mailgated, MG_TEST=test_name, MG_KEEP=1).
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mgtest  # noqa: E402
from mgtest import ImapClient  # noqa: E402

USERS = {"alice": "alice-Profile-1"}
MESSAGE = (b"From: a@example.org\r\nTo: alice@example.org\r\nSubject: profiles\r\n"
           b"\r\nthrough a backend profile\r\n")

PROFILES = """\
tls_profile modern {
  min_protocol = TLSv1.3
}
tls_profile x25519 {
  groups = "X25519"
}
tls_profile narrow {
  ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305"
  ciphersuites = "TLS_CHACHA20_POLY1305_SHA256"
}
tls_profile legacy {
  ciphers = "ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256"
  forward_secrecy = allowed
}
tls_profile backend_net {
  min_protocol = TLSv1.3
  ciphersuites = "TLS_CHACHA20_POLY1305_SHA256"
  groups = "X25519:P-256"
}
tls_profile ccm8_only {
  min_protocol = TLSv1.3
  ciphersuites = "TLS_AES_128_CCM_8_SHA256"
}
"""

DOVECOT_LOG_TLS = ("login_log_format_elements = user=<%u> method=%m rip=%r lip=%l mpid=%e "
                   "%c tls=<%k> session=<%{session}>\n")


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
    e.rsa = e.certs.issue("rsa", key_type="rsa")
    # Dovecot's login lines name the TLS version and suite (%k).
    e.dovecot = mgtest.Dovecot(e.td, e.certs, users=USERS, start=False,
                               extra_conf=DOVECOT_LOG_TLS)
    e.dovecot.deliver("alice", MESSAGE)
    e.dovecot.start()
    e.backends = [
        mgtest.backend_for(e.dovecot, "plain"),
        mgtest.backend_for(e.dovecot, "tls_default", tls="implicit"),
        mgtest.backend_for(e.dovecot, "tls_profiled", tls="implicit", tls_profile="backend_net"),
        # a suite Dovecot's OpenSSL does not enable: Dovecot ends the handshake with an alert
        mgtest.backend_for(e.dovecot, "tls_refused", tls="implicit", tls_profile="ccm8_only"),
    ]
    e.mg = mgtest.Mailgated(
        e.td, e.certs, name="mg-profiles", backends=e.backends,
        listeners=[mgtest.listener("imaps", "implicit"),
                   mgtest.listener("imap", "starttls", tls_profile="modern"),
                   mgtest.listener("imaps_modern", "implicit", tls_profile="modern"),
                   mgtest.listener("imaps_x25519", "implicit", tls_profile="x25519"),
                   mgtest.listener("imaps_narrow", "implicit", tls_profile="narrow"),
                   mgtest.listener("imaps_rsa", "implicit", certificate=e.rsa[0],
                                   key=e.rsa[1]),
                   mgtest.listener("imaps_legacy", "implicit", tls_profile="legacy",
                                   certificate=e.rsa[0], key=e.rsa[1]),
                   mgtest.listener("imaps_to_default", "implicit", backend="tls_default"),
                   mgtest.listener("imaps_to_profiled", "implicit", backend="tls_profiled"),
                   mgtest.listener("imaps_to_refused", "implicit", backend="tls_refused")],
        extra=PROFILES)
    _env = e
    return e


def handshake(port, *args, starttls=None):
    """openssl s_client against port: (protocol, cipher) of the session, or
    (None, output) when the handshake fails."""
    r = mgtest.s_client(port, starttls=starttls, extra=args, timeout=20)
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    m = re.search(r"^New, (TLSv1\.[23]), Cipher is (\S+)", out, re.M)
    if r.returncode != 0 or not m:
        return None, out
    return m.group(1), m.group(2)


def accepted(port, *args, **kw):
    version, detail = handshake(port, *args, **kw)
    assert version is not None, "handshake %s refused on port %d:\n%s" % (
        " ".join(args), port, mgtest.tail(detail, 30))
    return version, detail


def refused(port, *args, **kw):
    version, detail = handshake(port, *args, **kw)
    assert version is None, "handshake %s accepted on port %d: %s %s" % (
        " ".join(args), port, version, detail)
    return detail


# ---------------------------------------------------------------------------
# listeners
# ---------------------------------------------------------------------------

def test_min_protocol_tls13_refuses_tls12():
    e = env()
    out = refused(e.mg.port("imaps_modern"), "-tls1_2")
    assert re.search(r"protocol version|no protocols available", out), mgtest.tail(out, 20)
    assert accepted(e.mg.port("imaps_modern"), "-tls1_3")[0] == "TLSv1.3"
    # After STARTTLS too.
    refused(e.mg.port("imap"), "-tls1_2", starttls="imap")
    assert accepted(e.mg.port("imap"), starttls="imap")[0] == "TLSv1.3"
    # A listener without a profile keeps the default: TLS 1.2 and up.
    assert accepted(e.mg.port("imaps"), "-tls1_2")[0] == "TLSv1.2"


def test_groups_refuse_other_curves():
    e = env()
    port = e.mg.port("imaps_x25519")
    refused(port, "-groups", "P-256")
    refused(port, "-tls1_2", "-groups", "P-256")
    accepted(port, "-groups", "X25519")
    # The default listener takes P-256.
    accepted(e.mg.port("imaps"), "-groups", "P-256")


def test_ciphers_and_ciphersuites_narrowed():
    e = env()
    port = e.mg.port("imaps_narrow")
    refused(port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert accepted(port, "-tls1_2")[1] == "ECDHE-ECDSA-CHACHA20-POLY1305"
    refused(port, "-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256")
    assert accepted(port, "-tls1_3")[1] == "TLS_CHACHA20_POLY1305_SHA256"
    accepted(e.mg.port("imaps"), "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")


def test_forward_secrecy_required_unless_allowed():
    e = env()
    # Default profile: RSA key exchange is not offered, even with an RSA key.
    refused(e.mg.port("imaps_rsa"), "-tls1_2", "-cipher", "AES128-GCM-SHA256")
    assert accepted(e.mg.port("imaps_rsa"), "-tls1_2")[1].startswith("ECDHE-RSA-")
    # forward_secrecy = allowed: it is, and the configuration check says so.
    assert accepted(e.mg.port("imaps_legacy"), "-tls1_2", "-cipher",
                    "AES128-GCM-SHA256")[1] == "AES128-GCM-SHA256"
    log = e.mg.log()
    assert re.search(r"tls_profile 'legacy': forward_secrecy = allowed allows RSA key exchange",
                     log), mgtest.tail(log, 40)


# ---------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------

def login(port):
    """Log in through port: the tagged reply, and the body of message 1 on success."""
    with ImapClient(port, implicit_tls=True, ca=env().certs.ca) as c:
        untagged, tagged = c.login("alice", USERS["alice"], tag="a")
        if not tagged.startswith("a OK"):
            return tagged
        untagged, tagged = c.command("f", "EXAMINE INBOX")
        assert tagged.startswith("f OK"), tagged
        untagged, tagged = c.command("g", "FETCH 1 BODY[TEXT]")
        assert any("through a backend profile" in line for line in untagged), untagged
        c.command("z", "LOGOUT")
        return "a OK"


def dovecot_login_suite(start):
    """The TLS suite of the one login in Dovecot's log after offset start."""
    e = env()
    rx = re.compile(r"Login: user=<alice>.* tls=<(TLSv1\.[23]) with cipher (\S+)")
    m = mgtest.wait_until(lambda: rx.search(mgtest.read_text(e.dovecot.log_path)[start:]), 5,
                          what="a login line in Dovecot's log")
    return m.group(1), m.group(2)


def test_backend_profile_against_dovecot():
    e = env()
    start = len(mgtest.read_text(e.dovecot.log_path))
    assert login(e.mg.port("imaps_to_profiled")) == "a OK"
    assert dovecot_login_suite(start) == ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256")
    # A backend without a profile gets OpenSSL's first choice, as before.
    start = len(mgtest.read_text(e.dovecot.log_path))
    assert login(e.mg.port("imaps_to_default")) == "a OK"
    assert dovecot_login_suite(start) == ("TLSv1.3", "TLS_AES_256_GCM_SHA384")


def test_backend_alert_fails_the_login_at_once():
    """Dovecot refusing the backend handshake with an alert (no shared TLS 1.3
    suite) fails the login with a temporary error, well before any timeout,
    and is logged as a backend TLS failure."""
    e = env()
    started = time.monotonic()
    tagged = login(e.mg.port("imaps_to_refused"))
    took = time.monotonic() - started
    assert tagged.startswith("a NO"), tagged
    assert "UNAVAILABLE" in tagged, tagged
    # backend_connect_timeout and backend_timeout are far longer than this
    assert took < 5, "the refused backend handshake took %.1f s to fail the login" % took
    mgtest.wait_until(lambda: re.search(r"backend.*tls_refused.*(alert|handshake)|"
                                        r"(alert|handshake).*tls_refused", e.mg.log()),
                      5, what="the backend TLS failure in mailgated's log")
    # and the gateway keeps serving
    assert login(e.mg.port("imaps_to_profiled")) == "a OK"


def test_check_names_an_unknown_profile():
    e = env()
    mg = mgtest.Mailgated(e.td, e.certs, name="mg-unknown", backends=e.backends[:1],
                          listeners=[mgtest.listener("imaps", "implicit",
                                                     tls_profile="nonesuch")],
                          start=False)
    r = mg.check()
    assert r.returncode != 0, r.stdout + r.stderr
    assert re.search(r"mailgate\.conf:\d+: listen 'imaps': no tls_profile section is called "
                     r"'nonesuch'", r.stderr), r.stderr


if __name__ == "__main__":
    sys.exit(mgtest.run_tests(globals()))
