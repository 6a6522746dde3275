#!/usr/bin/env python3
"""Integration tests: OCSP stapling.

The test CA answers OCSP requests without a running responder: `openssl
ocsp -index` reads the CA's own index of issued certificates and writes
the signed response to a file, as an operator's cron job or deploy hook
would. The gateway staples NAME.ocsp beside NAME.pem in a certificate
directory, and the default pair's ocsp_file; openssl s_client -status shows
what a client gets: the response for the certificate's own serial, or none
for a name without one. A response for another certificate is refused with
a warning naming the file, and the pair is still served (mailgated -t only
warns about it). A pair served from its last-good copy (its file broken)
keeps a response about the copy's certificate, not one about a renewal.
Expiry is tested in check_engine_certs (the openssl CLI cannot date a
response in the past).

Run: python3 tests/integration/test_ocsp.py
(MG_MAILGATED=path/to/mailgated, MG_TEST=test_name, MG_KEEP=1).
"""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mgtest  # noqa: E402


class _Env:
    pass


_env = None


def openssl(*args):
    mgtest.run([mgtest.find_program("openssl")] + list(args))


def ocsp_response(certs, cert, out):
    """A signed "good" response about cert, valid for a week, into out."""
    req = out + ".req"
    openssl("ocsp", "-issuer", certs.ca, "-cert", cert, "-no_nonce", "-reqout", req)
    openssl("ocsp", "-index", os.path.join(certs.dir, "index.txt"), "-CA", certs.ca,
            "-rsigner", certs.ca, "-rkey", certs.ca_key, "-reqin", req, "-respout", out,
            "-ndays", "7")
    return out


def with_chain(certs, cert, out):
    """cert followed by the CA certificate: the chain holds the issuer."""
    with open(out, "wb") as f:
        for part in (cert, certs.ca):
            with open(part, "rb") as p:
                f.write(p.read())
    return out


def env():
    global _env
    if _env is not None:
        return _env
    e = _Env()
    e.td = mgtest.TestDir()
    e.certs = mgtest.Certs(e.td.join("certs"))
    c = e.certs
    e.dir = e.td.mkdir("certs.d")
    e.serial = {}

    def pair(stem, name, staple=False, about=None, key_type="ec"):
        """STEM.pem (with its chain) and STEM.key for name, and with staple
        STEM.ocsp: a response about this certificate, or about another."""
        cert, key = c.issue(stem, cn=name, dns=(name,), ips=(), key_type=key_type)
        e.serial[stem] = mgtest.cert_serial(cert)
        with_chain(c, cert, os.path.join(e.dir, stem + ".pem"))
        os.link(key, os.path.join(e.dir, stem + ".key"))
        if staple:
            ocsp_response(c, about or cert, os.path.join(e.dir, stem + ".ocsp"))

    pair("stapled", "stapled.test", staple=True)
    pair("plain", "plain.test")
    # One name, an ECDSA and an RSA pair, each with its own response.
    pair("dual-ec", "dual.test", staple=True)
    pair("dual-rsa", "dual.test", staple=True, key_type="rsa")
    other, _ = c.issue("other", cn="other.test", dns=("other.test",), ips=())
    e.mismatch_ocsp = os.path.join(e.dir, "mismatch.ocsp")
    pair("mismatch", "mismatch.test", staple=True, about=other)
    # Broken later: served from their last-good copies (test_last_good_copy_...).
    pair("kept", "kept.test", staple=True)
    pair("renewed", "renewed.test", staple=True)

    # The default pair, with its chain and its own response.
    e.serial["default"] = mgtest.cert_serial(c.cert)
    e.default_chain = with_chain(c, c.cert, e.td.join("default-chain.pem"))
    e.default_ocsp = ocsp_response(c, c.cert, e.td.join("default.ocsp"))
    e.backends = [mgtest.backend("unused", imap_port=mgtest.free_port(),
                                 pop3_port=mgtest.free_port())]
    e.mg = mgtest.Mailgated(
        e.td, c, name="mg-ocsp", backends=e.backends,
        tls={"certificate": e.default_chain, "key": c.key, "ocsp_file": e.default_ocsp,
             "certificate_dir": e.dir})
    _env = e
    return e


def status(port, servername, starttls=None, extra=()):
    """What s_client -status says about the staple: (stapled serial or None,
    output)."""
    r = mgtest.s_client(port, servername=servername, starttls=starttls,
                        extra=["-status"] + list(extra), timeout=20)
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0 and "-----BEGIN CERTIFICATE-----" in out, mgtest.tail(out, 30)
    if "OCSP response: no response sent" in out:
        return None, out
    assert "OCSP Response Status: successful" in out, mgtest.tail(out, 40)
    assert re.search(r"Cert Status: good", out), mgtest.tail(out, 40)
    m = re.search(r"Serial Number: ([0-9A-Fa-f]+)", out)
    assert m, mgtest.tail(out, 40)
    return m.group(1).upper(), out


def test_stapled_for_its_certificate():
    e = env()
    serial, out = status(e.mg.port("imaps"), "stapled.test")
    assert serial == e.serial["stapled"], (serial, e.serial["stapled"])
    # After STARTTLS too.
    serial, out = status(e.mg.port("imap"), "stapled.test", starttls="imap")
    assert serial == e.serial["stapled"], (serial, e.serial["stapled"])


def test_each_of_a_names_two_certificates_gets_its_own_staple():
    """The client's signature algorithms pick the ECDSA or the RSA pair of a
    name: the response stapled is the one about the certificate served."""
    e = env()
    for sigalgs, stem in (("ecdsa_secp256r1_sha256", "dual-ec"),
                          ("rsa_pss_rsae_sha256", "dual-rsa")):
        serial, out = status(e.mg.port("imaps"), "dual.test", extra=["-sigalgs", sigalgs])
        assert serial == e.serial[stem], "%s: stapled %s, want %s's %s:\n%s" % (
            sigalgs, serial, stem, e.serial[stem], mgtest.tail(out, 40))
        # The response's signer comes first in the output: the server's is the one after.
        m = re.search(r"Server certificate\s*(-----BEGIN CERTIFICATE-----.*?"
                      r"-----END CERTIFICATE-----)", out, re.S)
        assert m, mgtest.tail(out, 40)
        x = subprocess.run([mgtest.find_program("openssl"), "x509", "-noout", "-serial"],
                           input=m.group(1).encode(), stdout=subprocess.PIPE, check=True)
        assert x.stdout.decode().strip().split("=", 1)[1].upper() == e.serial[stem], \
            "%s: served another certificate than %s" % (sigalgs, stem)


def test_no_staple_for_a_name_without_one():
    e = env()
    serial, out = status(e.mg.port("imaps"), "plain.test")
    assert serial is None, "plain.test got a staple for %s" % serial


def test_default_pair_stapled():
    e = env()
    for name in (None, "unknown.example"):
        serial, out = status(e.mg.port("imaps"), name)
        assert serial == e.serial["default"], (name, serial, e.serial["default"])


def test_response_for_another_certificate_refused():
    e = env()
    log = e.mg.log()
    assert re.search(r"warning: .*ocsp response skipped path=%s error=\"[^\"]*for another "
                     r"certificate\"" % re.escape(e.mismatch_ocsp), log), mgtest.tail(log, 40)
    # Logged once (by the first engine), and the pair is still served, unstapled.
    assert log.count("ocsp response skipped path=%s " % e.mismatch_ocsp) == 1, \
        mgtest.tail(log, 40)
    serial, out = status(e.mg.port("imaps"), "mismatch.test")
    assert serial is None, "mismatch.test got a staple for %s" % serial
    assert "subject=CN = mismatch.test" in out, mgtest.tail(out, 40)


def test_check_warns_but_accepts():
    e = env()
    r = e.mg.check()
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"warning: ocsp response skipped path=%s" % re.escape(e.mismatch_ocsp),
                     r.stderr), r.stderr


def test_reloaded_with_the_certificate():
    """A response that appears later is stapled after a reload (SIGHUP)."""
    e = env()
    assert status(e.mg.port("imaps"), "plain.test")[0] is None
    ocsp_response(e.certs, os.path.join(e.dir, "plain.pem"), e.td.join("plain.ocsp"))
    os.rename(e.td.join("plain.ocsp"), os.path.join(e.dir, "plain.ocsp"))
    e.mg.reload()

    def stapled():
        return status(e.mg.port("imaps"), "plain.test")[0] == e.serial["plain"]
    mgtest.wait_until(stapled, 20, interval=0.2, what="plain.test stapled after the reload")


def test_last_good_copy_keeps_a_response_that_matches_its_leaf():
    """A pair served from its last-good copy (its file broken) is stapled
    with NAME.ocsp when the response is about the copy's leaf; one already
    about a renewed certificate is refused with a warning and the copy is
    served unstapled. The default pair's ocsp_file goes with its copy too."""
    e = env()
    port = e.mg.port("imaps")
    assert status(port, "renewed.test")[0] == e.serial["renewed"]
    kept_pem = os.path.join(e.dir, "kept.pem")
    renewed_pem = os.path.join(e.dir, "renewed.pem")
    renewed_ocsp = os.path.join(e.dir, "renewed.ocsp")
    saved = {}
    for path in (kept_pem, renewed_pem, e.default_chain):
        with open(path, "rb") as f:
            saved[path] = f.read()
    new_cert, _ = e.certs.issue("renewed2", cn="renewed.test", dns=("renewed.test",), ips=())
    mark = len(e.mg.log())
    try:
        ocsp_response(e.certs, new_cert, e.td.join("renewed2.ocsp"))
        os.rename(e.td.join("renewed2.ocsp"), renewed_ocsp)
        for path in (kept_pem, renewed_pem, e.default_chain):
            with open(path, "wb") as f:
                f.write(b"garbage\n")
        e.mg.reload()
        for path in (kept_pem, renewed_pem, e.default_chain):
            e.mg.wait_log(r"certificate broken path=%s error=\"[^\"]+\" keeping=previous"
                          % re.escape(path), 20, start=mark)
        e.mg.wait_log(r"warning: .*ocsp response skipped path=%s error=\"[^\"]*for another "
                      r"certificate\"" % re.escape(renewed_ocsp), 20, start=mark)
        mgtest.wait_until(lambda: status(port, "renewed.test")[0] is None, 20, interval=0.2,
                          what="renewed.test unstapled once its response is for the renewal")
        serial, out = status(port, "renewed.test")
        assert serial is None and "subject=CN = renewed.test" in out, mgtest.tail(out, 40)
        assert e.mg.log().count("certificate skipped") == 0, mgtest.tail(e.mg.log(), 30)
        for _ in range(3):
            assert status(port, "kept.test")[0] == e.serial["kept"]
            assert status(port, None)[0] == e.serial["default"]
    finally:
        for path, text in saved.items():
            with open(path, "wb") as f:
                f.write(text)


if __name__ == "__main__":
    sys.exit(mgtest.run_tests(globals()))
