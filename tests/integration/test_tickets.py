#!/usr/bin/env python3
"""Integration tests: TLS session tickets across engines, generations and gateways.

openssl s_client makes a full handshake and keeps the session it gets
(-sess_out), then offers it again (-sess_in): "Reused, TLSv1.3" means the
gateway took the ticket. Shown here: a ticket resumes on every engine
(implicit TLS and after STARTTLS), after a reload (a new generation of
engines), across one key rotation but not two (the rotation shortened
through the test-only MAILGATED_TEST_TICKET_ROTATION), and, with
ticket_key_file, on another mailgated that shares the file (the first file
listed encrypts, the others only decrypt; files are re-read on reload).
mailgated -t refuses a key file of the wrong size or open to others,
naming the configuration, the line and the file; keys never reach a log.

No backend is needed: every session ends at the greeting.

Run: python3 tests/integration/test_tickets.py
(MG_MAILGATED=path/to/mailgated, MG_TEST=test_name, MG_KEEP=1).
"""

import base64
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mgtest  # noqa: E402

ROTATION_ENV = "MAILGATED_TEST_TICKET_ROTATION"
ROTATION_S = 4


class _Env:
    pass


_env = None


def env():
    global _env
    if _env is None:
        e = _Env()
        e.td = mgtest.TestDir()
        e.certs = mgtest.Certs(e.td.join("certs"))
        # Nobody listens there: these sessions never get past the greeting.
        e.backend = mgtest.backend("nowhere", imap_port=mgtest.free_port(),
                                   pop3_port=mgtest.free_port())
        _env = e
    return _env


def gateway(name, **kw):
    e = env()
    return mgtest.Mailgated(e.td, e.certs, [e.backend], name=name, **kw)


def key_file(name, data, mode=0o600):
    return env().td.write(name, data, mode=mode)


def handshake(port, sess_in=None, sess_out=None, starttls=None, source_port=None):
    """One TLS handshake (and LOGOUT) with s_client. Returns (resumed, output)."""
    extra = ["-ign_eof"]            # wait for the greeting and the BYE
    if sess_in:
        extra += ["-sess_in", sess_in]
    if sess_out:
        extra += ["-sess_out", sess_out]
    if source_port:
        extra += ["-bind", "%s:%d" % (mgtest.HOST, source_port)]
    r = mgtest.s_client(port, ca=env().certs.ca, starttls=starttls, input=b"a LOGOUT\r\n",
                        extra=extra)
    out = r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")
    m = re.search(r"^(New|Reused), (TLSv[0-9.]+)", out, re.M)
    # s_client's status is not looked at: it counts a close after BYE without
    # close_notify as an error. The handshake line and both answers say enough.
    assert m, "s_client on port %d made no handshake:\n%s" % (port, mgtest.tail(out))
    assert m.group(2) == "TLSv1.3", out
    # (after STARTTLS s_client has read the greeting itself)
    assert "* BYE" in out and (starttls or "* OK" in out), \
        "no greeting or BYE:\n" + mgtest.tail(out)
    return out.find("Reused, TLSv1.3") >= 0, out


def new_ticket(mg, name, listener="imaps"):
    """A full handshake; returns the path of the session file it wrote."""
    path = env().td.join("%s-%s.sess" % (mg.name, name))
    resumed, out = handshake(mg.port(listener), sess_out=path,
                             starttls="imap" if listener == "imap" else None)
    assert not resumed, "a handshake without a session resumed:\n" + out
    assert os.path.getsize(path) > 0, "s_client wrote no session"
    return path


def engine_of(mg, source_port):
    """The pid of the engine that logged the end of the session from source_port."""
    m = mg.wait_log(r"mailgated\[(\d+)\].*session end client=127\.0\.0\.1:%d " % source_port)
    return int(m.group(1))


# ---------------------------------------------------------------------------
# engines and generations
# ---------------------------------------------------------------------------

def test_resumes_on_every_engine():
    mg = gateway("mg-engines", engines=2)
    for listener, starttls in (("imaps", None), ("imap", "imap")):
        ticket = new_ticket(mg, listener, listener)
        pids = set()
        for attempt in range(40):
            port = mgtest.free_port()
            resumed, out = handshake(mg.port(listener), sess_in=ticket, starttls=starttls,
                                     source_port=port)
            assert resumed, "%s: resumption %d failed:\n%s" % (listener, attempt + 1,
                                                               mgtest.tail(out))
            pids.add(engine_of(mg, port))
            if len(pids) == 2 and attempt >= 5:
                break
        assert pids == set(mg.engines()), \
            "%s: resumed on engines %s, not on each of %s" % (listener, pids, mg.engines())
    mg.stop()


def test_resumes_after_reload():
    mg = gateway("mg-reload", engines=2)
    ticket = new_ticket(mg, "before")
    old = set(mg.engines())
    mark = len(mg.log())
    mg.reload()
    mg.wait_log(r"reload done config=\S+ generation=2", timeout=20, start=mark)
    mgtest.wait_until(lambda: not old & set(mg.engines()), 10, what="the old engines to end")
    new = set(mg.engines())
    for _ in range(4):
        port = mgtest.free_port()
        resumed, out = handshake(mg.port("imaps"), sess_in=ticket, source_port=port)
        assert resumed, "a ticket of generation 1 did not resume on generation 2:\n" + out
        assert engine_of(mg, port) in new
    mg.stop()


# ---------------------------------------------------------------------------
# rotation
# ---------------------------------------------------------------------------

def sets_made(mg):
    """The serial of the newest key set the master has made (1: the first)."""
    found = [int(n) for n in re.findall(r"ticket keys rotated set=(\d+)", mg.log())]
    return max(found + [1])


def wait_installed(mg, serial, engines):
    """Until every engine has installed key set serial (or a newer one)."""
    def done():
        log = mg.log()
        for pid in engines:
            got = [int(n) for n in re.findall(
                r"mailgated\[%d\]: debug: engine: ticket keys installed set=(\d+)" % pid, log)]
            if not got or max(got) < serial:
                return False
        return True
    mgtest.wait_until(done, 3 * ROTATION_S + 10, what="key set %d in engines %s"
                      % (serial, sorted(engines)))


def test_rotation_keeps_the_previous_key_only():
    mg = gateway("mg-rotate", engines=2, env={ROTATION_ENV: str(ROTATION_S)})
    engines = mg.engines()
    # Each step must fall within one rotation period; a step that a rotation
    # overtook proves nothing, and the whole sequence starts again.
    for _attempt in range(6):
        first = sets_made(mg)
        wait_installed(mg, first, engines)
        ticket = new_ticket(mg, "set%d" % first)
        if sets_made(mg) != first:
            continue                    # encrypted under set first or the next
        wait_installed(mg, first + 1, engines)
        resumed, out = handshake(mg.port("imaps"), sess_in=ticket)
        if sets_made(mg) != first + 1:
            continue
        assert resumed, "a ticket from before one rotation did not resume:\n" + out
        wait_installed(mg, first + 2, engines)
        resumed, out = handshake(mg.port("imaps"), sess_in=ticket)
        assert not resumed, "a ticket from before two rotations resumed:\n" + out
        break
    else:
        raise AssertionError("every attempt was overtaken by a rotation:\n"
                             + mgtest.tail(mg.log()))
    assert mg.engines() == engines, "engines restarted during the rotations"
    mg.stop()


# ---------------------------------------------------------------------------
# ticket_key_file
# ---------------------------------------------------------------------------

def test_key_file_shared_by_two_gateways():
    k1, k2 = os.urandom(80), os.urandom(48)
    f1, f2 = key_file("k1.key", k1), key_file("k2.key", k2)
    a = gateway("mg-a", tls={"ticket_key_file": [f1]})
    b = gateway("mg-b", tls={"ticket_key_file": [f2, f1]})

    # A encrypts with k1, which B accepts (it encrypts with k2).
    ticket_a = new_ticket(a, "a")
    resumed, out = handshake(b.port("imaps"), sess_in=ticket_a)
    assert resumed, "a ticket of gateway A did not resume on gateway B:\n" + out
    resumed, out = handshake(b.port("imap"), sess_in=ticket_a, starttls="imap")
    assert resumed, "... nor after STARTTLS:\n" + out

    # B's own tickets are under k2, which A does not have ...
    ticket_b = new_ticket(b, "b")
    resumed, out = handshake(a.port("imaps"), sess_in=ticket_b)
    assert not resumed, "gateway A resumed a ticket under a key it was never given:\n" + out

    # ... until A's files are rotated like B's and A reloads.
    a.tls["ticket_key_file"] = [f2, f1]
    a.write_config()
    mark = len(a.log())
    a.reload()
    a.wait_log(r"ticket keys replaced set=\d+ source=ticket_key_file", timeout=10, start=mark)
    a.wait_log(r"reload done", timeout=20, start=mark)
    resumed, out = handshake(a.port("imaps"), sess_in=ticket_b)
    assert resumed, "after the reload gateway A still refused a ticket under k2:\n" + out

    logs = a.log() + b.log()
    for key in (k1, k2):
        for form in (key.hex(), key.hex().upper(), base64.b64encode(key).decode(),
                     key[:16].hex(), key[16:32].hex()):
            assert form not in logs, "a ticket key (or part) is in a log"
    a.stop()
    b.stop()


def test_check_refuses_bad_key_files():
    good = key_file("good.key", os.urandom(48))
    short = key_file("short.key", os.urandom(47))
    shared = key_file("shared.key", os.urandom(80), mode=0o644)
    mg = gateway("mg-check", start=False, tls={"ticket_key_file": [good]})
    r = mg.check()
    assert r.returncode == 0, "mailgated -t refused a good key file:\n" + r.stderr

    for path, why in ((short, "is 47 bytes"), (shared, "readable or writable by others")):
        mg.tls["ticket_key_file"] = [good, path]
        conf = mg.write_config()
        line = 1 + next(i for i, text in enumerate(mg.config_text().splitlines())
                        if "ticket_key_file" in text)
        r = mg.check()
        assert r.returncode != 0, "mailgated -t accepted %s" % path
        for want in (conf, "(line %d)" % line, path, why):
            assert want in r.stderr, "no %r in the error:\n%s" % (want, r.stderr)
        # The daemon refuses to start on it, saying the same.
        try:
            mg.start(timeout=5)
        except RuntimeError as ex:
            assert why in str(ex), ex
        else:
            raise AssertionError("mailgated started with %s" % path)

    mg.tls["ticket_key_file"] = ["relative.key"]
    conf = mg.write_config()
    r = mg.check()
    assert r.returncode != 0 and re.search(re.escape(conf) + r":\d+: ticket_key_file "
                                           r"'relative.key' must be an absolute path",
                                           r.stderr), r.stderr


if __name__ == "__main__":
    sys.exit(mgtest.run_tests(globals()))
