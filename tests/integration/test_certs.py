#!/usr/bin/env python3
"""Integration tests: certificates by name (SNI) in front of a real Dovecot.

A certificate directory holds pairs for several names: a wildcard and an
exact name under it, an ECDSA and an RSA pair for one name, a pair with its
key inside the .pem, a pair whose key does not match, an expired pair and
one that expires in a few days. openssl s_client asks for names
(-servername, -noservername, -sigalgs) on implicit TLS and after
STARTTLS/STLS, and the certificate served is recognised by its serial
number. Also: sni_strict, a listener with its own certificate_dir and
default pair, mailgated -t on a broken directory, and a Dovecot login
through a certificate chosen by name.

Run: python3 tests/integration/test_certs.py
(MG_MAILGATED=path/to/mailgated, MG_TEST=test_name, MG_KEEP=1).
"""

import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mgtest  # noqa: E402
from mgtest import Bare, ImapClient, Pop3Client  # noqa: E402

USERS = {"alice": "alice-Certs-1"}
MESSAGE = (b"From: a@example.org\r\nTo: alice@example.org\r\nSubject: sni\r\n"
           b"\r\nserved by name\r\n")
DAY = 86400


class _Env:
    pass


_env = None


def put_pair(directory, stem, cert, key, key_inside=False):
    """Copy an issued pair into directory as STEM.pem + STEM.key (or the key
    appended to STEM.pem)."""
    pem = os.path.join(directory, stem + ".pem")
    shutil.copyfile(cert, pem)
    if key_inside:
        with open(pem, "ab") as out, open(key, "rb") as k:
            out.write(k.read())
    else:
        shutil.copyfile(key, os.path.join(directory, stem + ".key"))
    return pem


def env():
    global _env
    if _env is not None:
        return _env
    e = _Env()
    e.td = mgtest.TestDir()
    e.certs = mgtest.Certs(e.td.join("certs"))
    c = e.certs
    e.serial = {"default": mgtest.cert_serial(c.cert)}

    def issue(label, dns, **kw):
        cert, key = c.issue(label, cn=dns[0], dns=dns, ips=(), **kw)
        e.serial[label] = mgtest.cert_serial(cert)
        return cert, key

    # The shared directory: what the tls section serves by name.
    e.dir = e.td.mkdir("certs.d")
    put_pair(e.dir, "wildcard", *issue("wildcard", ("*.customer.test",)))
    put_pair(e.dir, "exact", *issue("exact", ("imap.customer.test",)))
    put_pair(e.dir, "dual-ec", *issue("dual-ec", ("mail.dual.test",)))
    put_pair(e.dir, "dual-rsa", *issue("dual-rsa", ("mail.dual.test",), key_type="rsa"))
    put_pair(e.dir, "other", *issue("other", ("mail.other.test",)), key_inside=True)
    soon = issue("soon", ("soon.customer.test",), days=5)
    e.soon_pem = put_pair(e.dir, "soon", *soon)
    # Broken pairs: a key of another certificate, an expired certificate.
    mismatched_cert, _ = issue("mismatch", ("broken.customer.test",))
    _, foreign_key = issue("foreign", ("foreign.test",))
    e.broken_pem = put_pair(e.dir, "broken", mismatched_cert, foreign_key)
    now = time.time()
    e.expired_pem = put_pair(e.dir, "gone", *issue("gone", ("gone.customer.test",),
                                                    not_before=now - 30 * DAY,
                                                    not_after=now - DAY))

    # A listener's own directory and default pair.
    e.own_dir = e.td.mkdir("own.d")
    put_pair(e.own_dir, "own-exact", *issue("own-exact", ("imap.customer.test",)))
    e.own_default = issue("own-default", ("own.default.test",))
    # A listener whose default pair is RSA, over the shared directory.
    e.rsa_default = issue("rsa-default", ("rsa.default.test",), key_type="rsa")

    e.dovecot = mgtest.Dovecot(e.td, c, users=USERS, start=False)
    e.dovecot.deliver("alice", MESSAGE)
    e.dovecot.start()
    e.backends = [mgtest.backend_for(e.dovecot, "dovecot")]
    e.mg = mgtest.Mailgated(
        e.td, c, name="mg-sni", backends=e.backends,
        listeners=[mgtest.listener("imap", "starttls"),
                   mgtest.listener("imaps", "implicit"),
                   mgtest.listener("pop3", "starttls", protocol="pop3"),
                   mgtest.listener("imaps-own", "implicit", certificate=e.own_default[0],
                                   key=e.own_default[1], certificate_dir=e.own_dir),
                   mgtest.listener("imaps-rsa", "implicit", certificate=e.rsa_default[0],
                                   key=e.rsa_default[1], certificate_dir=e.dir)],
        tls={"certificate_dir": e.dir}, engines=2)
    _env = e
    return e


def served(port, servername=None, starttls=None, extra=()):
    """The certificate a handshake gets: (serial, s_client's output), or
    (None, output) when the handshake fails. servername None: no SNI."""
    r = mgtest.s_client(port, servername=servername, starttls=starttls, extra=extra, timeout=20)
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    if r.returncode != 0 or not m:
        return None, out
    x = subprocess.run([mgtest.find_program("openssl"), "x509", "-noout", "-serial"],
                       input=m.group(0).encode(), stdout=subprocess.PIPE, check=True)
    return x.stdout.decode().strip().split("=", 1)[1].upper(), out


def expect(port, servername, label, **kw):
    e = env()
    serial, out = served(port, servername, **kw)
    assert serial == e.serial[label], \
        "%s on port %d: want the %s certificate (%s), got %s:\n%s" % (
            servername, port, label, e.serial[label], serial, mgtest.tail(out, 30))
    return out


# ---------------------------------------------------------------------------
# which certificate a name gets
# ---------------------------------------------------------------------------

def test_exact_name_wins_over_wildcard():
    e = env()
    expect(e.mg.port("imaps"), "imap.customer.test", "exact")
    # Names compare case-insensitively, a final dot ignored.
    expect(e.mg.port("imaps"), "IMAP.Customer.TEST", "exact")
    expect(e.mg.port("imaps"), "imap.customer.test.", "exact")


def test_wildcard_covers_one_label():
    e = env()
    expect(e.mg.port("imaps"), "pop.customer.test", "wildcard")
    expect(e.mg.port("imaps"), "x-1.customer.test", "wildcard")
    # Not the bare domain, not two labels: those get the default pair.
    expect(e.mg.port("imaps"), "customer.test", "default")
    expect(e.mg.port("imaps"), "a.b.customer.test", "default")


def test_key_inside_the_pem():
    e = env()
    expect(e.mg.port("imaps"), "mail.other.test", "other")


def test_ecdsa_and_rsa_picked_by_signature_algorithms():
    e = env()
    port = e.mg.port("imaps")
    out = expect(port, "mail.dual.test", "dual-ec", extra=["-sigalgs", "ecdsa_secp256r1_sha256"])
    assert "Peer signature type: ECDSA" in out, mgtest.tail(out, 30)
    out = expect(port, "mail.dual.test", "dual-rsa", extra=["-sigalgs", "rsa_pss_rsae_sha256"])
    assert "Peer signature type: RSA-PSS" in out, mgtest.tail(out, 30)
    # TLS 1.2: the suite's authentication picks.
    expect(port, "mail.dual.test", "dual-rsa",
           extra=["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"])
    expect(port, "mail.dual.test", "dual-ec",
           extra=["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"])


def test_rsa_only_client_never_gets_another_names_certificate():
    """A name with only an ECDSA pair, asked for by a client that takes RSA
    only, on a listener whose default pair is RSA: the handshake fails; the
    default pair (for another name) is not offered instead."""
    e = env()
    port = e.mg.port("imaps-rsa")
    rsa_only = ["-sigalgs", "rsa_pss_rsae_sha256:rsa_pkcs1_sha256"]
    expect(port, None, "rsa-default", extra=rsa_only)
    expect(port, "mail.dual.test", "dual-rsa", extra=rsa_only)
    expect(port, "imap.customer.test", "exact")     # a client that takes ECDSA
    offset = len(e.mg.log())
    serial, out = served(port, "imap.customer.test", extra=rsa_only)
    assert serial is None, "an RSA-only client asking for an ECDSA-only name got %s:\n%s" % (
        serial, mgtest.tail(out, 30))
    e.mg.wait_log(r"tls handshake failed client=\S+ listener=imaps-rsa ", start=offset)


def test_no_sni_gets_the_default():
    e = env()
    expect(e.mg.port("imaps"), None, "default")


def test_unknown_name_gets_the_default():
    e = env()
    expect(e.mg.port("imaps"), "nobody.example", "default")
    expect(e.mg.port("imaps"), "broken.customer.test.example", "default")


def test_starttls_and_stls_choose_by_name():
    e = env()
    expect(e.mg.port("imap"), "imap.customer.test", "exact", starttls="imap")
    expect(e.mg.port("imap"), "mail.dual.test", "dual-rsa", starttls="imap",
           extra=["-sigalgs", "rsa_pss_rsae_sha256"])
    expect(e.mg.port("imap"), None, "default", starttls="imap")
    expect(e.mg.port("pop3"), "pop.customer.test", "wildcard", starttls="pop3")


def test_listener_with_its_own_directory_and_default():
    e = env()
    port = e.mg.port("imaps-own")
    expect(port, "imap.customer.test", "own-exact")
    expect(port, None, "own-default")
    expect(port, "pop.customer.test", "own-default")    # the tls section's directory is not its
    expect(e.mg.port("imaps"), "imap.customer.test", "exact")


# ---------------------------------------------------------------------------
# broken pairs, expiry, mailgated -t
# ---------------------------------------------------------------------------

def test_broken_pairs_skipped_and_logged():
    e = env()
    log = e.mg.log()
    assert re.search(r"certificate skipped path=%s error=\"[^\"]*does not match"
                     % re.escape(e.broken_pem), log), mgtest.tail(log, 40)
    assert re.search(r"certificate skipped path=%s error=\"[^\"]*expired"
                     % re.escape(e.expired_pem), log), mgtest.tail(log, 40)
    # Logged once (by the first engine), not once per engine.
    assert log.count("certificate skipped path=%s " % e.broken_pem) == 1, mgtest.tail(log, 40)
    m = re.search(r"certificate_dir loaded dir=%s pairs=(\d+)" % re.escape(e.dir), log)
    assert m and m.group(1) == "6", mgtest.tail(log, 40)
    # Their names serve nothing: the default pair answers.
    expect(e.mg.port("imaps"), "broken.customer.test", "wildcard")
    expect(e.mg.port("imaps"), "gone.customer.test", "wildcard")


def test_expiring_certificate_warned():
    e = env()
    log = e.mg.log()
    m = re.search(r"certificate expires soon path=%s not_after=\S+ days_left=(\d+)"
                  % re.escape(e.soon_pem), log)
    assert m and m.group(1) in ("4", "5"), mgtest.tail(log, 40)
    expect(e.mg.port("imaps"), "soon.customer.test", "soon")    # still served
    assert "expires soon path=%s" % e.own_default[0] not in log


def test_expiry_warning_comes_again():
    """A gateway that runs for weeks warns again each day (shortened to a
    second here): the warning for the pair that expires soon comes back."""
    e = env()
    soon_dir = e.td.mkdir("soon.d")
    shutil.copyfile(e.soon_pem, os.path.join(soon_dir, "soon.pem"))
    shutil.copyfile(os.path.join(e.dir, "soon.key"), os.path.join(soon_dir, "soon.key"))
    mg = mgtest.Mailgated(e.td, e.certs, name="mg-expiry", backends=e.backends,
                          listeners=[mgtest.listener("imaps", "implicit")],
                          tls={"certificate_dir": soon_dir}, engines=2,
                          env={"MAILGATED_TEST_EXPIRY_CHECK": "1"})
    pattern = "certificate expires soon path=%s" % os.path.join(soon_dir, "soon.pem")
    try:
        at_start = mg.log().count(pattern)
        assert at_start >= 1, mgtest.tail(mg.log(), 20)
        mgtest.wait_until(lambda: mg.log().count(pattern) >= at_start + 2, 15,
                          what="the expiry warning twice more")
    finally:
        mg.stop()


def test_invalid_expiry_check_period_stops_the_start():
    e = env()
    for bad in ("0", "x", "86401", "-1"):
        mg = mgtest.Mailgated(e.td, e.certs, name="mg-expiry-bad", backends=e.backends,
                              listeners=[mgtest.listener("imaps", "implicit")],
                              env={"MAILGATED_TEST_EXPIRY_CHECK": bad}, start=False)
        try:
            mg.start()
        except RuntimeError:
            pass            # it may be gone before its ports were probed
        # The master may bind its ports first: what counts is that it exits, failed.
        try:
            status = mg.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            mg.stop()
            raise AssertionError("mailgated kept running with MAILGATED_TEST_EXPIRY_CHECK=%s"
                                 % bad) from None
        assert status != 0, "mailgated exited 0 with MAILGATED_TEST_EXPIRY_CHECK=%s" % bad
        assert "MAILGATED_TEST_EXPIRY_CHECK must be a number of seconds from 1 to 86400" \
            in mg.log(), mgtest.tail(mg.log(), 20)
        mg.stop()


def test_check_fails_naming_the_broken_file():
    e = env()
    r = e.mg.check()
    assert r.returncode != 0, "mailgated -t accepted a broken pair:\n" + r.stdout + r.stderr
    assert e.broken_pem in r.stderr or e.expired_pem in r.stderr, r.stderr
    assert "certificate_dir (line " in r.stderr, r.stderr


def test_check_accepts_a_clean_directory_and_warns_of_expiry():
    e = env()
    clean = e.td.mkdir("clean.d")
    for stem in ("exact", "soon"):
        for ext in (".pem", ".key"):
            shutil.copyfile(os.path.join(e.dir, stem + ext), os.path.join(clean, stem + ext))
    mg = mgtest.Mailgated(e.td, e.certs, name="mg-check", backends=e.backends,
                          tls={"certificate_dir": clean}, start=False)
    r = mg.check()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning: certificate expires soon path=%s/soon.pem" % clean in r.stderr, r.stderr
    # A directory that does not exist fails the check (and start-up).
    mg.tls["certificate_dir"] = e.td.join("missing.d")
    mg.write_config()
    r = mg.check()
    assert r.returncode != 0 and "missing.d" in r.stderr, r.stderr
    # A relative one is a configuration error with its line.
    mg.tls["certificate_dir"] = "certs.d"
    mg.write_config()
    r = mg.check()
    assert r.returncode != 0 and "must be an absolute path" in r.stderr, r.stderr
    assert re.search(r"mailgate\.conf:\d+: ", r.stderr), r.stderr


# ---------------------------------------------------------------------------
# sni_strict
# ---------------------------------------------------------------------------

def test_sni_strict_refuses_unknown_names():
    e = env()
    mg = mgtest.Mailgated(e.td, e.certs, name="mg-strict", backends=e.backends,
                          tls={"certificate_dir": e.dir, "sni_strict": Bare("yes")})
    port = mg.port("imaps")
    serial, out = served(port, "nobody.example")
    assert serial is None, "a name nothing serves got a certificate:\n" + out
    assert re.search(r"unrecognized[ _]name", out, re.I), mgtest.tail(out, 30)
    serial, out = served(mg.port("imap"), "nobody.example", starttls="imap")
    assert serial is None and re.search(r"unrecognized[ _]name", out, re.I), out
    # Known names, the default pair's own name, and no SNI still work.
    expect(port, "imap.customer.test", "exact")
    expect(port, "localhost", "default")
    expect(port, None, "default")
    mg.stop()


# ---------------------------------------------------------------------------
# a real login through a certificate chosen by name
# ---------------------------------------------------------------------------

def login_and_fetch(client):
    untagged, tagged = client.login("alice", USERS["alice"], tag="a")
    assert tagged.startswith("a OK"), tagged
    untagged, tagged = client.command("s", "SELECT INBOX")
    assert tagged.startswith("s OK"), tagged
    untagged, tagged = client.command("f", "FETCH 1 BODY[TEXT]")
    assert tagged.startswith("f OK"), tagged
    assert any("served by name" in line for line in untagged), untagged
    client.command("z", "LOGOUT")


def test_dovecot_login_through_a_named_certificate():
    e = env()
    # The Python client verifies the name against the certificate it gets.
    for name in ("imap.customer.test", "pop.customer.test", "mail.other.test"):
        with ImapClient(e.mg.port("imaps"), implicit_tls=True, ca=e.certs.ca,
                        server_hostname=name) as c:
            assert c.greeting.startswith("* OK"), c.greeting
            login_and_fetch(c)
    with ImapClient(e.mg.port("imap"), ca=e.certs.ca, server_hostname="mail.dual.test") as c:
        c.starttls()
        login_and_fetch(c)
    with Pop3Client(e.mg.port("pop3"), ca=e.certs.ca, server_hostname="pop.customer.test") as p:
        p.stls()
        line = p.user_pass("alice", USERS["alice"])
        assert line.startswith("+OK"), line


if __name__ == "__main__":
    sys.exit(mgtest.run_tests(globals()))
