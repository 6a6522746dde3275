#!/usr/bin/env python3
"""Integration tests: client sets, routing, the legacy node and the real
client address, with two real Dovecot instances (the secure backend and the
legacy node) and clients bound to different loopback source addresses.

Run: python3 tests/integration/test_routing.py
(MG_MAILGATED=path/to/mailgated, MG_TEST=test_name, MG_KEEP=1).
"""

import os
import re
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mgtest  # noqa: E402
from mgtest import ImapClient, Pop3Client  # noqa: E402

MAIN_USERS = {
    "alice": "alice-Route-1",
    "frank@example.com": "frank-Route-6",
    "ident": "ident-Route-7",
}
LEGACY_USERS = {
    "printer": "printer-Route-2",
    "dave@example.net": "dave-Route-4",
    "erin@example.com": "erin-Route-5",
    "frank@example.com": "frank-Route-6",
}


def message(node, user):
    return ("From: test@example.org\r\nTo: %s\r\nSubject: on the %s node\r\n\r\n"
            "This message lives on the %s node.\r\n" % (user, node, node)).encode()


class _Env:
    pass


_env = None

LEGACY_SET = "127.0.0.3"
WARN_SET = "127.0.0.4"
TRUSTED_SET = "127.0.0.5"
ORDINARY = "127.0.0.2"
LOAD_BALANCER = "127.0.0.8"
NOT_A_BALANCER = "127.0.0.9"
PROXIED_PRINTER = "192.0.2.99"      # in the legacy set, only reachable via PROXY


def env():
    global _env
    if _env is not None:
        return _env
    e = _Env()
    e.td = mgtest.TestDir()
    e.certs = mgtest.Certs(e.td.join("certs"))
    e.haproxy_port = mgtest.free_port()
    e.main = mgtest.Dovecot(
        e.td, e.certs, users=MAIN_USERS, name="main", start=False,
        extra_conf=("haproxy_trusted_networks = 127.0.0.0/8\n"
                    "login_trusted_networks = 127.0.0.0/8\n"
                    "service imap-login {\n  inet_listener imap_haproxy {\n"
                    "    port = %d\n    haproxy = yes\n  }\n}\n" % e.haproxy_port))
    e.legacy = mgtest.Dovecot(e.td, e.certs, users=LEGACY_USERS, name="legacy",
                              disable_plaintext_auth=False, start=False)
    for u in MAIN_USERS:
        e.main.deliver(u, message("main", u))
    for u in LEGACY_USERS:
        e.legacy.deliver(u, message("legacy", u))
    e.main.start()
    e.legacy.start()
    e.map_path = e.td.join("users.map")
    write_map(e.map_path, "erin@example.com legacy\n@example.net legacy\n")
    main_proxy = dict(imap_port=e.haproxy_port, pop3_port=e.main.pop3_port)
    e.backends = [
        mgtest.backend_for(e.main, "main"),
        mgtest.backend_for(e.legacy, "legacy"),
        mgtest.backend("main_proxy_v2", client_address="proxy-v2", **main_proxy),
        mgtest.backend("main_proxy_v1", client_address="proxy-v1", **main_proxy),
        mgtest.backend_for(e.main, "main_imap_id", client_address="imap-id"),
    ]
    e.mg = mgtest.Mailgated(
        e.td, e.certs, name="mg-routing", backends=e.backends,
        listeners=[mgtest.listener("imap", "starttls", address=("127.0.0.1",)),
                   mgtest.listener("pop3", "starttls", protocol="pop3", address=("127.0.0.1",)),
                   mgtest.listener("imap_v2", "starttls", backend="main_proxy_v2"),
                   mgtest.listener("imap_v1", "starttls", backend="main_proxy_v1"),
                   mgtest.listener("imap_id", "starttls", backend="main_imap_id"),
                   mgtest.listener("imap_lb", "starttls",
                                   proxy_networks=["%s/32" % LOAD_BALANCER]),
                   mgtest.listener("imaps_lb", "implicit",
                                   proxy_networks=["%s/32" % LOAD_BALANCER])],
        default_backend="main", user_map=e.map_path, max_bad_commands=5,
        extra=CLIENT_SETS)
    _env = e
    return e


CLIENT_SETS = """
client legacy_printers {
  networks = { "%s/32", "192.0.2.0/24" }
  cleartext_auth = allow
  backend = "legacy"
}
client migrating {
  networks = { "%s" }
  cleartext_auth = warn
}
client webmail {
  networks = { "%s" }
  trusted = true
}
""" % (LEGACY_SET, WARN_SET, TRUSTED_SET)


def write_map(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)


def client(listener="imap", source=ORDINARY, **kw):
    e = env()
    kw.setdefault("ca", e.certs.ca)
    return ImapClient(e.mg.port(listener), source=source, **kw)


def login(c, user, password, tag="L"):
    untagged, tagged = c.login(user, password, tag=tag)
    return untagged, tagged


def fetch_subject(c):
    untagged, tagged = c.command("S", "SELECT INBOX")
    assert tagged.startswith("S OK"), tagged
    untagged, tagged = c.command("F", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert tagged.startswith("F OK"), (untagged, tagged)
    m = re.search(r"Subject: on the (\w+) node", "\n".join(untagged))
    assert m, "no subject in %r" % untagged
    return m.group(1)


def caps(line):
    m = re.search(r"\[CAPABILITY ([^\]]*)\]", line)
    assert m, line
    return m.group(1).split()


# ---------------------------------------------------------------------------
# client sets
# ---------------------------------------------------------------------------

def test_cleartext_refused_from_ordinary_address():
    with client() as c:
        assert "LOGINDISABLED" in caps(c.greeting), c.greeting
        untagged, tagged = login(c, "alice", MAIN_USERS["alice"])
        assert tagged.startswith("L NO [PRIVACYREQUIRED]"), tagged
    e = env()
    r = mgtest.curl("imap://127.0.0.1:%d/INBOX;UID=1" % e.mg.port("imap"), e.certs.ca,
                    "printer", LEGACY_USERS["printer"], ssl_reqd=False,
                    extra=("--interface", ORDINARY))
    assert r.returncode != 0, "cleartext curl from an ordinary address logged in"


def test_legacy_set_cleartext_lands_on_legacy_node():
    e = env()
    with client(source=LEGACY_SET) as c:
        cap = caps(c.greeting)
        assert "LOGINDISABLED" not in cap and "AUTH=PLAIN" in cap, cap
    r = mgtest.curl("imap://127.0.0.1:%d/INBOX;UID=1" % e.mg.port("imap"), e.certs.ca,
                    "printer", LEGACY_USERS["printer"], ssl_reqd=False,
                    extra=("--interface", LEGACY_SET))
    assert r.returncode == 0, r.stderr
    assert r.stdout == message("legacy", "printer"), r.stdout
    mgtest.wait_until(lambda: re.search(r'cleartext login: rip=%s rport=\d+ .*user="printer" '
                                        r"set=legacy_printers policy=allow"
                                        % re.escape(LEGACY_SET), e.mg.log()),
                      5, what="the cleartext login in the log")
    assert "user=<printer>" not in e.main.log(), "the legacy login reached the main node"


def test_legacy_set_pop3_offers_user():
    with Pop3Client(env().mg.port("pop3"), source=LEGACY_SET, ca=env().certs.ca) as c:
        names = [l.split()[0].upper() for l in c.capa()]
        assert "USER" in names and "STLS" in names, names
        answer = c.user_pass("printer", LEGACY_USERS["printer"])
        assert answer.startswith("+OK"), answer
        assert c.command("STAT").startswith("+OK 1 ")


def test_warn_set_alert_and_log():
    e = env()
    with client(source=WARN_SET) as c:
        assert "LOGINDISABLED" not in caps(c.greeting)
        untagged, tagged = login(c, "alice", MAIN_USERS["alice"])
        assert tagged.startswith("L OK"), tagged
        alerts = [l for l in untagged if l.startswith("* OK [ALERT]")]
        assert alerts and "unencrypted" in alerts[0], untagged
        # the ports this gateway listens on, not the standard ones
        assert alerts[0].endswith("to STARTTLS on port %d or to TLS on port %d."
                                  % (e.mg.port("imap"), e.mg.port("imaps_lb"))), alerts
        assert fetch_subject(c) == "main"
    mgtest.wait_until(lambda: re.search(r'cleartext login: rip=%s rport=\d+ .*user="alice" '
                                        r"set=migrating policy=warn" % re.escape(WARN_SET),
                                        e.mg.log()),
                      5, what="the warn login in the log")


def test_warn_set_pop3_text():
    with Pop3Client(env().mg.port("pop3"), source=WARN_SET, ca=env().certs.ca) as c:
        answer = c.user_pass("alice", MAIN_USERS["alice"])
        # The backend's own text stays; the warning is added after it, naming
        # this gateway's port (no POP3 listener with implicit TLS here).
        assert re.match(r"\+OK \S.* WARNING: your password was sent unencrypted\. ", answer), \
            answer
        assert answer.endswith("to STLS on port %d." % env().mg.port("pop3")), answer


def test_warn_set_with_tls_gets_no_alert():
    with client(source=WARN_SET) as c:
        c.starttls()
        untagged, tagged = login(c, "alice", MAIN_USERS["alice"])
        assert tagged.startswith("L OK"), tagged
        assert not [l for l in untagged if "[ALERT]" in l], untagged


def test_trusted_set_counts_as_secure():
    e = env()
    with client(source=TRUSTED_SET) as c:
        cap = caps(c.greeting)
        assert "LOGINDISABLED" not in cap and "AUTH=PLAIN" in cap, cap
        untagged, tagged = login(c, "alice", MAIN_USERS["alice"])
        assert tagged.startswith("L OK"), tagged
    assert not re.search(r"cleartext login: rip=%s " % re.escape(TRUSTED_SET), e.mg.log())


# ---------------------------------------------------------------------------
# routing by user and domain, reloaded with the configuration
# ---------------------------------------------------------------------------

def tls_login_subject(user, password):
    with client(source=ORDINARY) as c:
        c.starttls()
        untagged, tagged = login(c, user, password)
        assert tagged.startswith("L OK"), (user, tagged)
        return fetch_subject(c)


def test_user_and_domain_routing():
    assert tls_login_subject("erin@example.com", LEGACY_USERS["erin@example.com"]) == "legacy"
    assert tls_login_subject("dave@example.net", LEGACY_USERS["dave@example.net"]) == "legacy"
    assert tls_login_subject("frank@example.com", MAIN_USERS["frank@example.com"]) == "main"
    log = env().mg.log()
    assert re.search(r'login ok: .*user="erin@example.com" backend=legacy route=user', log), log
    assert re.search(r'login ok: .*user="dave@example.net" backend=legacy route=domain', log), \
        log


def test_user_map_reloaded_on_sighup():
    e = env()
    write_map(e.map_path, "erin@example.com legacy\n@example.net legacy\n"
                          "FRANK@example.com legacy\n")
    mark = len(e.mg.log())
    e.mg.reload()
    e.mg.wait_log(r"reload done", start=mark)
    try:
        assert tls_login_subject("frank@example.com", LEGACY_USERS["frank@example.com"]) == "legacy"
        # a map naming an unknown backend is refused, with the map's file and line
        write_map(e.map_path, "frank@example.com legacy\nzed nosuch\n")
        mark = len(e.mg.log())
        e.mg.reload()
        e.mg.wait_log(re.escape(e.map_path) + r":2: no backend section is called 'nosuch'",
                      start=mark)
        assert tls_login_subject("frank@example.com", LEGACY_USERS["frank@example.com"]) == "legacy"
    finally:
        write_map(e.map_path, "erin@example.com legacy\n@example.net legacy\n")
        mark = len(e.mg.log())
        e.mg.reload()
        e.mg.wait_log(r"reload done", start=mark)


# ---------------------------------------------------------------------------
# the real client address towards the backend
# ---------------------------------------------------------------------------

def login_from(listener, source):
    with client(listener, source=source) as c:
        c.starttls()
        untagged, tagged = login(c, "ident", MAIN_USERS["ident"])
        assert tagged.startswith("L OK"), tagged


def assert_dovecot_saw(source):
    e = env()
    mgtest.wait_until(lambda: re.search(r"Login: user=<ident>.*rip=%s," % re.escape(source),
                                        e.main.log()),
                      5, what="Dovecot's login line with rip=%s" % source)


def test_proxy_v2_to_backend():
    login_from("imap_v2", "127.0.0.6")
    assert_dovecot_saw("127.0.0.6")


def test_proxy_v1_to_backend():
    login_from("imap_v1", "127.0.0.7")
    assert_dovecot_saw("127.0.0.7")


def test_imap_id_to_backend():
    login_from("imap_id", "127.0.0.10")
    assert_dovecot_saw("127.0.0.10")


# ---------------------------------------------------------------------------
# PROXY headers from a load balancer in front of mailgated
# ---------------------------------------------------------------------------

def proxy_v2(src, dst, sport, dport):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def test_inbound_proxy_from_load_balancer():
    e = env()
    port = e.mg.port("imap_lb")
    for header in (("PROXY TCP4 %s 127.0.0.1 40001 %d\r\n" % (PROXIED_PRINTER, port)).encode(),
                   proxy_v2(PROXIED_PRINTER, "127.0.0.1", 40002, port)):
        with client("imap_lb", source=LOAD_BALANCER, preamble=header) as c:
            greeting = c.greeting
            # the set is chosen by the proxied address: the legacy printers
            assert "LOGINDISABLED" not in caps(greeting), greeting
            untagged, tagged = login(c, "printer", LEGACY_USERS["printer"])
            assert tagged.startswith("L OK"), tagged
            assert fetch_subject(c) == "legacy"
    mgtest.wait_until(lambda: len(re.findall(r"login ok: rip=%s rport=4000[12] "
                                             % re.escape(PROXIED_PRINTER), e.mg.log())) == 2,
                      5, what="two logins from the proxied address in the log")


def test_inbound_proxy_with_curl_and_implicit_tls():
    e = env()
    r = mgtest.curl("imaps://127.0.0.1:%d/INBOX;UID=1" % e.mg.port("imaps_lb"), e.certs.ca,
                    "alice", MAIN_USERS["alice"],
                    extra=("--haproxy-protocol", "--interface", LOAD_BALANCER))
    assert r.returncode == 0, r.stderr
    assert r.stdout == message("main", "alice")


def test_inbound_proxy_refused_from_other_address():
    e = env()
    port = e.mg.port("imap_lb")
    with client("imap_lb", source=NOT_A_BALANCER) as c:
        greeting = c.greeting
        assert "LOGINDISABLED" in caps(greeting), greeting     # its own address decides
        c.send("PROXY TCP4 %s 127.0.0.1 40003 %d\r\n" % (PROXIED_PRINTER, port))
        line = c.readline()
        assert " BAD " in line, "a PROXY header from a non-balancer was not refused: %r" % line
        untagged, tagged = login(c, "printer", LEGACY_USERS["printer"])
        assert tagged.startswith("L NO [PRIVACYREQUIRED]"), tagged
    assert PROXIED_PRINTER + ":40003" not in e.mg.log()


def test_load_balancer_without_header_is_dropped():
    e = env()
    with client("imap_lb", source=LOAD_BALANCER, greeting=False) as c:
        c.send("a CAPABILITY\r\n")
        lines = c.expect_closed(5)
        assert not [l for l in lines if l.startswith("* OK")], lines
    e.mg.wait_log(r"proxy header refused from=%s:\d+ listener=imap_lb" % re.escape(LOAD_BALANCER))


def test_config_check_reports_unknown_backend_in_client_set():
    e = env()
    path = e.td.join("bad-client.conf")
    text = e.mg.config_text().replace('backend = "legacy"\n}', 'backend = "nosuch"\n}')
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    lineno = text.splitlines().index("client legacy_printers {") + 1
    r = e.mg.check(path)
    assert r.returncode != 0
    assert "%s:%d:" % (path, lineno) in r.stderr and "nosuch" in r.stderr, r.stderr


if __name__ == "__main__":
    sys.exit(mgtest.run_tests(globals()))
