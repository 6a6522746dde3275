#!/usr/bin/env python3
"""Integration tests: certificates renewed without a restart.

A gateway with certificate_watch (the default) in front of a real Dovecot
serves a certificate_dir and a certbot-style default pair (live/ symlinks
into archive/). Certificates are renewed the ways renewal tools do it (a
temporary file renamed over the old one, a symlink swapped, a file written
in place) and recognised by their serial numbers: new connections get the
new one within 5 seconds, with no SIGHUP, while an IMAP IDLE session opened
before keeps working (a delivered message reaches it as EXISTS). A second
gateway with certificate_watch = no is renewed by SIGHUP. Broken files
(garbage, a key that does not match, a half-written file, a broken default)
keep the previous pair in service, from its last-good copy, and the log
names the file; a deleted pair stops being served, and a new one is served.

Run: python3 tests/integration/test_certs_renewal.py
(MG_MAILGATED=path/to/mailgated, MG_TEST=test_name, MG_KEEP=1).
"""

import os
import re
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mgtest  # noqa: E402
from mgtest import Bare, ImapClient  # noqa: E402
from test_certs import put_pair, served  # noqa: E402

USERS = {"alice": "alice-Renew-1"}
MESSAGE = (b"From: a@example.org\r\nTo: alice@example.org\r\nSubject: renew\r\n"
           b"\r\nfirst\r\n")
RENEW_WITHIN = 5.0      # seconds: what the issue promises with the watch


class _Env:
    pass


_env = None


def issue(e, label, dns):
    cert, key = e.certs.issue(label, cn=dns[0], dns=dns, ips=())
    return cert, key, mgtest.cert_serial(cert)


def replace_atomically(path, source):
    """What certbot and acme.sh do: write a temporary file, rename it over."""
    tmp = os.path.join(os.path.dirname(path), ".%s.tmp" % os.path.basename(path))
    shutil.copyfile(source, tmp)
    os.rename(tmp, path)


def swap_symlink(link, target):
    """Point link at target atomically (ln -s to a temporary name, rename)."""
    tmp = link + ".new"
    os.symlink(target, tmp)
    os.rename(tmp, link)


def env():
    global _env
    if _env is not None:
        return _env
    e = _Env()
    e.td = mgtest.TestDir()
    e.certs = mgtest.Certs(e.td.join("certs"))
    e.dir = e.td.mkdir("certs.d")
    e.pairs = {}
    for stem in ("renew", "garbage", "mismatch", "half", "bye", "rename"):
        cert, key, serial = issue(e, stem, ("%s.customer.test" % stem,))
        put_pair(e.dir, stem, cert, key)
        e.pairs[stem] = serial
    # certbot's layout: live/NAME/{fullchain,privkey}.pem -> ../../archive/NAME/*1.pem
    archive = e.td.mkdir("le", "archive", "mail")
    live = e.td.mkdir("le", "live", "mail")
    cert, key, e.le_serial = issue(e, "le1", ("localhost",))
    shutil.copyfile(cert, os.path.join(archive, "fullchain1.pem"))
    shutil.copyfile(key, os.path.join(archive, "privkey1.pem"))
    e.le_cert = os.path.join(live, "fullchain.pem")
    e.le_key = os.path.join(live, "privkey.pem")
    os.symlink("../../archive/mail/fullchain1.pem", e.le_cert)
    os.symlink("../../archive/mail/privkey1.pem", e.le_key)
    e.le_archive = archive

    e.dovecot = mgtest.Dovecot(e.td, e.certs, users=USERS, start=False)
    e.dovecot.deliver("alice", MESSAGE)
    e.dovecot.start()
    e.backends = [mgtest.backend_for(e.dovecot, "dovecot")]
    e.mg = mgtest.Mailgated(
        e.td, e.certs, name="mg-watch", backends=e.backends,
        listeners=[mgtest.listener("imaps", "implicit"),
                   mgtest.listener("imaps-le", "implicit", certificate=e.le_cert,
                                   key=e.le_key)],
        tls={"certificate_dir": e.dir}, engines=2)
    _env = e
    return e


def serial_served(port, name=None):
    serial, out = served(port, name)
    assert serial is not None, "handshake failed:\n" + mgtest.tail(out, 20)
    return serial


def wait_served(port, name, serial, timeout=RENEW_WITHIN, what=None):
    """Wait until new connections (on every engine) get serial for name."""
    def every_engine():
        return all(serial_served(port, name) == serial for _ in range(4))
    mgtest.wait_until(every_engine, timeout, interval=0.1,
                      what=what or "%s to be served with serial %s" % (name, serial))


def assert_served(port, name, serial, why):
    for _ in range(4):      # connections land on either engine
        got = serial_served(port, name)
        assert got == serial, "%s: %s got serial %s, want %s" % (why, name, got, serial)


def reloaded(mg, mark, timeout=15):
    """Wait for the reload after log offset mark; returns its generation."""
    m = mg.wait_log(r"reload done config=\S+ generation=(\d+)", timeout, start=mark)
    return int(m.group(1))


def peer_serial(client):
    der = client.sock.getpeercert(binary_form=True)
    r = subprocess.run([mgtest.find_program("openssl"), "x509", "-inform", "DER", "-noout",
                        "-serial"], input=der, stdout=subprocess.PIPE, check=True)
    return r.stdout.decode().strip().split("=", 1)[1].upper()


class Idler:
    """An IMAP session through the gateway, logged in, SELECTed and in IDLE."""

    def __init__(self, port, ca, name):
        self.c = ImapClient(port, implicit_tls=True, ca=ca, server_hostname=name)
        assert self.c.greeting.startswith("* OK"), self.c.greeting
        _, tagged = self.c.login("alice", USERS["alice"], tag="a")
        assert tagged.startswith("a OK"), tagged
        untagged, tagged = self.c.command("s", "SELECT INBOX")
        assert tagged.startswith("s OK"), tagged
        self.exists = max(int(m.group(1)) for m in
                          (re.match(r"\* (\d+) EXISTS", l) for l in untagged) if m)
        self.c.send("i IDLE\r\n")
        line = self.c.readline()
        assert line.startswith("+"), line
        self.serial = peer_serial(self.c)

    def still_works(self, dovecot):
        """A delivered message reaches the IDLE session; IDLE ends cleanly."""
        dovecot.deliver("alice", MESSAGE.replace(b"first", b"another"))
        want = "* %d EXISTS" % (self.exists + 1)
        while True:
            line = self.c.readline(timeout=15)
            if line == want:
                break
        self.c.send("DONE\r\n")
        _, tagged = self.c.read_response("i")
        assert tagged.startswith("i OK"), tagged
        self.exists += 1
        _, tagged = self.c.command("n", "NOOP")
        assert tagged.startswith("n OK"), tagged
        self.c.close()


# ---------------------------------------------------------------------------
# renewal, with the watch and with SIGHUP
# ---------------------------------------------------------------------------

def test_renewal_under_idle_is_served_within_5s_without_sighup():
    e = env()
    port = e.mg.port("imaps")
    idle = Idler(port, e.certs.ca, "renew.customer.test")
    assert idle.serial == e.pairs["renew"], (idle.serial, e.pairs["renew"])
    mark = len(e.mg.log())
    cert, key, serial = issue(e, "renew2", ("renew.customer.test",))
    assert serial != e.pairs["renew"]
    # key first, then the chain: a reader between the two sees a mismatch
    replace_atomically(os.path.join(e.dir, "renew.key"), key)
    replace_atomically(os.path.join(e.dir, "renew.pem"), cert)
    wait_served(port, "renew.customer.test", serial)
    e.mg.wait_log(r"reload reason=certificate-changed path=%s/renew\.(pem|key)"
                  % re.escape(e.dir), 1, start=mark)
    assert "reload requested" in e.mg.log()[mark:]
    e.pairs["renew"] = serial
    idle.still_works(e.dovecot)


def renew_le(e, label, install, what):
    """Issue a new localhost pair, install(cert, key) it, see it served."""
    cert, key, serial = issue(e, label, ("localhost",))
    install(cert, key)
    wait_served(e.mg.port("imaps-le"), None, serial, what=what)
    e.le_serial = serial


def test_certbot_symlink_swap_is_caught():
    e = env()
    assert_served(e.mg.port("imaps-le"), None, e.le_serial, "before the renewal")

    def certbot(cert, key):
        shutil.copyfile(cert, os.path.join(e.le_archive, "fullchain2.pem"))
        shutil.copyfile(key, os.path.join(e.le_archive, "privkey2.pem"))
        swap_symlink(e.le_key, "../../archive/mail/privkey2.pem")
        swap_symlink(e.le_cert, "../../archive/mail/fullchain2.pem")
    renew_le(e, "le2", certbot, "the swapped certbot pair")


def test_write_in_place_of_a_symlink_target_is_caught():
    """The directory of a symlink's target is watched too (acme.sh writes in place)."""
    e = env()

    def in_place(cert, key):
        for src, dst in ((key, "privkey2.pem"), (cert, "fullchain2.pem")):
            with open(src, "rb") as f, open(os.path.join(e.le_archive, dst), "wb") as out:
                out.write(f.read())
    renew_le(e, "le3", in_place, "the pair written in place")


def test_renewal_with_watch_off_needs_sighup():
    e = env()
    own = e.td.mkdir("off.d")
    cert, key, old = issue(e, "off1", ("off.customer.test",))
    put_pair(own, "off", cert, key)
    mg = mgtest.Mailgated(e.td, e.certs, name="mg-nowatch", backends=e.backends,
                          tls={"certificate_dir": own, "certificate_watch": Bare("no")})
    port = mg.port("imaps")
    idle = Idler(port, e.certs.ca, "off.customer.test")
    assert idle.serial == old
    cert, key, new = issue(e, "off2", ("off.customer.test",))
    replace_atomically(os.path.join(own, "off.key"), key)
    replace_atomically(os.path.join(own, "off.pem"), cert)
    mark = len(mg.log())
    # The same change reaches the watching gateway's directory: once it has
    # reloaded, this one has had the same time to and must not have.
    witness = len(e.mg.log())
    put_pair(e.dir, "witness", cert, key)
    e.mg.wait_log(r"reload reason=certificate-changed path=\S*witness", RENEW_WITHIN,
                  start=witness)
    reloaded(e.mg, witness)
    assert "reload" not in mg.log()[mark:], mgtest.tail(mg.log()[mark:], 20)
    assert_served(port, "off.customer.test", old, "certificate_watch = no, no SIGHUP yet")
    mg.reload()
    reloaded(mg, mark)
    assert_served(port, "off.customer.test", new, "after SIGHUP")
    assert "certificate-changed" not in mg.log()
    idle.still_works(e.dovecot)
    mg.stop()


def test_write_in_place_in_the_directory_is_caught():
    e = env()
    cert, key, serial = issue(e, "rename2", ("rename.customer.test",))
    for src, dst in ((key, "rename.key"), (cert, "rename.pem")):
        with open(src, "rb") as f, open(os.path.join(e.dir, dst), "wb") as out:
            out.write(f.read())
    wait_served(e.mg.port("imaps"), "rename.customer.test", serial)
    e.pairs["rename"] = serial


# ---------------------------------------------------------------------------
# broken files keep the previous pair; deleted ones are gone; new ones come
# ---------------------------------------------------------------------------

def test_broken_files_keep_the_previous_pair():
    e = env()
    port = e.mg.port("imaps")
    _, foreign_key, _ = issue(e, "foreign", ("foreign.test",))
    mark = len(e.mg.log())
    with open(os.path.join(e.dir, "garbage.pem"), "wb") as f:
        f.write(b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    replace_atomically(os.path.join(e.dir, "mismatch.key"), foreign_key)
    with open(os.path.join(e.dir, "half.pem"), "rb") as f:
        text = f.read()
    with open(os.path.join(e.dir, "half.pem"), "wb") as f:
        f.write(text[:len(text) // 2])
    # the default pair of the listener too: a broken default does not fail the reload
    with open(e.certs.cert, "rb") as f:
        default_text = f.read()
    default_serial = mgtest.cert_serial(e.certs.cert)
    with open(e.certs.cert, "wb") as f:
        f.write(b"garbage\n")
    try:
        reloaded(e.mg, mark)
        log = e.mg.log()[mark:]
        for stem, why in (("garbage", ""), ("mismatch", "does not match"), ("half", "")):
            path = os.path.join(e.dir, stem + ".pem")
            assert re.search(r"certificate broken path=%s error=\"[^\"]*%s[^\"]*\" "
                             r"keeping=previous not_after=\d{4}-\d\d-\d\dT"
                             % (re.escape(path), why), log), (stem, mgtest.tail(log, 30))
            assert_served(port, "%s.customer.test" % stem, e.pairs[stem], "broken " + stem)
        assert re.search(r"certificate broken path=%s error=\"[^\"]+\" keeping=previous"
                         % re.escape(e.certs.cert), log), mgtest.tail(log, 30)
        assert "reload failed" not in log, mgtest.tail(log, 30)
        assert_served(port, None, default_serial, "broken default pair")
    finally:
        with open(e.certs.cert, "wb") as f:
            f.write(default_text)
    # the copies are root's alone
    keep = os.path.join(e.mg.dir, "last-good")
    st = os.stat(keep)
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid(), oct(st.st_mode)
    for name in os.listdir(keep):
        st = os.stat(os.path.join(keep, name))
        assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid(), name


def test_deleted_pair_is_gone_and_new_pair_is_served():
    e = env()
    port = e.mg.port("imaps")
    default = serial_served(port, None)
    assert_served(port, "bye.customer.test", e.pairs["bye"], "before the delete")
    mark = len(e.mg.log())
    os.unlink(os.path.join(e.dir, "bye.pem"))
    os.unlink(os.path.join(e.dir, "bye.key"))
    cert, key, serial = issue(e, "fresh", ("fresh.customer.test",))
    replace_atomically(os.path.join(e.dir, "fresh.key"), key)
    replace_atomically(os.path.join(e.dir, "fresh.pem"), cert)
    wait_served(port, "fresh.customer.test", serial)
    # a deleted file is not a broken one: its name gets the default pair
    assert_served(port, "bye.customer.test", default, "deleted pair")
    assert "bye.pem" not in "".join(l for l in e.mg.log()[mark:].splitlines()
                                    if "certificate broken" in l)
    # and its last-good copy is removed
    reloaded(e.mg, mark)
    keep = os.path.join(e.mg.dir, "last-good")
    want = {lastgood_name(os.path.join(e.dir, s + ".pem"))
            for s in ("renew", "garbage", "mismatch", "half", "rename", "fresh")}
    have = set(os.listdir(keep))
    assert want <= have, (want - have)
    assert lastgood_name(os.path.join(e.dir, "bye.pem")) not in have


def lastgood_name(path):
    import hashlib
    return hashlib.sha256(path.encode()).hexdigest()


def test_options_checked():
    """mailgated -t accepts the options and refuses a relative last_good_dir."""
    e = env()
    mg = mgtest.Mailgated(e.td, e.certs, name="mg-opts", backends=e.backends, start=False,
                          tls={"certificate_watch": Bare("no"), "last_good_dir": "keep"})
    r = mg.check()
    assert r.returncode != 0 and "last_good_dir 'keep' must be an absolute path" in r.stderr, \
        r.stderr
    mg.tls["last_good_dir"] = e.td.join("keep")
    mg.write_config()
    r = mg.check()
    assert r.returncode == 0, r.stdout + r.stderr


if __name__ == "__main__":
    sys.exit(mgtest.run_tests(globals()))
