#!/usr/bin/env python3
"""Integration test: one password guesser must not slow everyone's logins.

Dovecot with its penalty for failed logins (auth_penalty, on by default in
Dovecot) delays further logins from an address that keeps failing. When
the gateway does not pass the client's address on (client_address =
none), Dovecot sees every login coming from the gateway, so a
wrong-password flood from one client delays every other user's login by
seconds. With the recommended client_address = proxy-v2 (Dovecot's
haproxy_trusted_networks), only the guesser's address is slowed.

Both gateways run in front of the same real Dovecot; the guesser and the
user log in from different loopback addresses.

Run: python3 tests/integration/test_penalty.py
(MG_MAILGATED=path/to/mailgated, MG_TEST=test_name, MG_KEEP=1).
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mgtest  # noqa: E402
from mgtest import ImapClient  # noqa: E402

USERS = {"alice": "alice-Pen-1", "bob": "bob-Pen-2"}
GUESSER = "127.0.0.5"
USER_SOURCE = "127.0.0.6"
FLOOD = 4               # failed logins: Dovecot's penalty then reaches 8 s
SLOWED_S = 2.0          # Dovecot's first penalty step


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
    e.haproxy_port = mgtest.free_port()
    # The gateway's leg is cleartext on loopback; what Dovecot thinks of the
    # client's address is the point here, not its cleartext policy.
    e.dovecot = mgtest.Dovecot(
        e.td, e.certs, users=USERS, auth_penalty=True, disable_plaintext_auth=False,
        extra_conf=("haproxy_trusted_networks = 127.0.0.0/8\n"
                    "service imap-login {\n  inet_listener imap_haproxy {\n"
                    "    port = %d\n    haproxy = yes\n  }\n}\n" % e.haproxy_port))
    _env = e
    return e


def gateway(name, backend):
    """backend_timeout long enough to see how long Dovecot makes a login wait."""
    e = env()
    return mgtest.Mailgated(e.td, e.certs, name=name, backends=[backend],
                            listeners=[mgtest.listener("imap", "starttls")],
                            max_auth_failures=FLOOD + 1, auth_failure_delay=0,
                            backend_timeout=40)


def flood(mg):
    """Wrong passwords from the guesser, one session."""
    e = env()
    with ImapClient(mg.port("imap"), ca=e.certs.ca, source=GUESSER, timeout=60) as c:
        c.starttls()
        for i in range(FLOOD):
            untagged, tagged = c.login("alice", "guess-%d" % i, tag="g%d" % i)
            assert tagged.startswith("g%d NO" % i), tagged


def timed_login(mg):
    """Seconds a correct login of bob takes from another address."""
    e = env()
    with ImapClient(mg.port("imap"), ca=e.certs.ca, source=USER_SOURCE, timeout=60) as c:
        c.starttls()
        t0 = time.monotonic()
        untagged, tagged = c.login("bob", USERS["bob"], tag="a")
        elapsed = time.monotonic() - t0
        assert tagged.startswith("a OK"), tagged
        c.command("z", "LOGOUT")
    return elapsed


def test_recommended_setting_slows_only_the_guesser():
    e = env()
    mg = gateway("mg-proxy-v2", mgtest.backend("dovecot", imap_port=e.haproxy_port,
                                               pop3_port=e.dovecot.pop3_port,
                                               client_address="proxy-v2"))
    try:
        assert "client_address = none" not in mg.check().stderr
        flood(mg)
        elapsed = timed_login(mg)
        assert elapsed < SLOWED_S, ("with proxy-v2 another user's login took %.1f s after "
                                    "the flood" % elapsed)
        # Dovecot did see the guesser's own address.
        assert "rip=%s" % GUESSER in env().dovecot.log(), mgtest.tail(env().dovecot.log(), 20)
    finally:
        mg.stop()


def test_without_client_address_one_guesser_slows_everyone():
    """What the warning of mailgated -t is about, shown: the reason the
    recommended setting is recommended."""
    mg = gateway("mg-none", mgtest.backend_for(env().dovecot, "dovecot", client_address="none"))
    try:
        r = mg.check()
        assert r.returncode == 0 and "client_address = none" in r.stderr, r.stderr
        flood(mg)
        elapsed = timed_login(mg)
        assert elapsed >= SLOWED_S, ("without a client address another user's login took "
                                     "only %.1f s after the flood: did Dovecot's penalty "
                                     "change?" % elapsed)
    finally:
        mg.stop()


# ---------------------------------------------------------------------------
# the gateway's own penalty: delays, bans, the same wrong password
# ---------------------------------------------------------------------------

_ban = None


def ban_gateway():
    """A Dovecot without a penalty of its own, behind a gateway that bans
    after 3 failures."""
    global _ban
    if _ban is None:
        e = env()
        quiet = mgtest.Dovecot(e.td, e.certs, users=USERS, name="quiet")
        _ban = mgtest.Mailgated(e.td, e.certs, name="mg-ban",
                                backends=[mgtest.backend_for(quiet, "dovecot",
                                                             client_address="imap-id")],
                                listeners=[mgtest.listener("imap", "starttls"),
                                           mgtest.listener("imaps", "implicit")],
                                max_auth_failures=10, auth_failure_delay=0,
                                login_penalty=True, ban_after=3, ban_window=600, ban_time=600)
    return _ban


def timed_failure(c, user, password, tag):
    t0 = time.monotonic()
    untagged, tagged = c.login(user, password, tag=tag)
    assert tagged.startswith(tag + " NO"), tagged
    return time.monotonic() - t0


def test_failures_slow_then_ban_the_address():
    mg = ban_gateway()
    e = env()
    with ImapClient(mg.port("imap"), ca=e.certs.ca, source="127.0.0.7", timeout=60) as c:
        c.starttls()
        first = timed_failure(c, "alice", "wrong-1", "a")
        second = timed_failure(c, "nobody1", "wrong-2", "b")
        third = timed_failure(c, "nobody2", "wrong-3", "c")
    assert first < 1.5, "the first failure was answered after %.1f s" % first
    assert 1.5 <= second < 6, "the second failure was answered after %.1f s, not ~2" % second
    assert third >= 3, "the third failure was answered after %.1f s, not ~4" % third
    mg.wait_log(r"address banned: rip=127\.0\.0\.7 failures=3 ")
    # Banned: closed at once, before any greeting or TLS.
    for port, listener in ((mg.port("imap"), "imap"), (mg.port("imaps"), "imaps")):
        s = socket.socket()
        s.bind(("127.0.0.7", 0))
        s.settimeout(10)
        s.connect((mgtest.HOST, port))
        try:
            assert s.recv(100) == b"", "a banned address got an answer on %s" % listener
        finally:
            s.close()
    mg.wait_log(r"connection refused client=127\.0\.0\.7 listener=imaps reason=banned")
    # Another address is served, without delay.
    with ImapClient(mg.port("imap"), ca=e.certs.ca, source="127.0.0.8", timeout=60) as c:
        c.starttls()
        t0 = time.monotonic()
        untagged, tagged = c.login("bob", USERS["bob"], tag="a")
        assert tagged.startswith("a OK"), tagged
        assert time.monotonic() - t0 < 1.5
        c.command("z", "LOGOUT")


def refused_at_once(mg, source):
    """True when a connection from source is closed before any greeting."""
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(10)
    s.connect((mgtest.HOST, mg.port("imap")))
    try:
        return s.recv(100) == b""
    finally:
        s.close()


def test_a_ban_survives_a_reload():
    mg = ban_gateway()
    e = env()
    with ImapClient(mg.port("imap"), ca=e.certs.ca, source="127.0.0.10", timeout=60) as c:
        c.starttls()
        for i in range(3):
            timed_failure(c, "nobody%d" % i, "wrong-%d" % i, "t%d" % i)
    mg.wait_log(r"address banned: rip=127\.0\.0\.10 ")
    assert refused_at_once(mg, "127.0.0.10")
    offset = len(mg.log())
    mg.reload()
    mg.wait_log(r"reload done ", start=offset, timeout=30)
    assert refused_at_once(mg, "127.0.0.10"), "the ban did not survive the reload"
    assert not refused_at_once(mg, "127.0.0.11")


def test_same_wrong_password_is_not_counted_again():
    """A phone with an old password, retrying: neither slowed more nor banned."""
    mg = ban_gateway()
    e = env()
    for i in range(5):
        with ImapClient(mg.port("imap"), ca=e.certs.ca, source="127.0.0.9", timeout=60) as c:
            c.starttls()
            elapsed = timed_failure(c, "bob", "old-password", "a")
            assert elapsed < 1.5, "retry %d of the same password waited %.1f s" % (i, elapsed)
    with ImapClient(mg.port("imap"), ca=e.certs.ca, source="127.0.0.9", timeout=60) as c:
        assert c.greeting.startswith("* OK"), c.greeting
        c.starttls()
        untagged, tagged = c.login("bob", USERS["bob"], tag="a")
        assert tagged.startswith("a OK"), tagged
        c.command("z", "LOGOUT")
    assert "address banned: rip=127.0.0.9 " not in mg.log()


if __name__ == "__main__":
    sys.exit(mgtest.run_tests(globals()))
