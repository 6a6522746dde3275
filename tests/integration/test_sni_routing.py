#!/usr/bin/env python3
"""Integration tests: the SNI name beyond the handshake, with two real
Dovecot instances (the default backend and a customer's own).

A client set with local_names sends imap.customer.example (and, by its
wildcard, any one label under customer.example) to the customer's Dovecot,
on implicit TLS and after STARTTLS/STLS; other names, no name, and names
that are not host names go to the default. A set with networks and
local_names needs both. The name shows in mailgated's login and closing
log lines (sni=), and in the IMAP ID both backends get
(client_address = imap-id), which Dovecot logs (imap_id_log). Names a
client may send but that are no host names (an underscore, a space, 254
characters, an empty label) are treated as none; one longer than TLS
allows ends only its own handshake.

Run: python3 tests/integration/test_sni_routing.py
(MG_MAILGATED=path/to/mailgated, MG_TEST=test_name, MG_KEEP=1).
"""

import os
import re
import socket
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mgtest  # noqa: E402
from mgtest import ImapClient, Pop3Client  # noqa: E402

USERS = {"alice": "alice-Sni-1"}
OFFICE = "127.0.0.3"            # the office set's network
ELSEWHERE = "127.0.0.2"
NAMES = ("imap.customer.example", "*.customer.example", "mail.other.example",
         "mail.office.example")
DOVECOT_EXTRA = "login_trusted_networks = 127.0.0.0/8\nimap_id_log = *\n"
CLIENT_SETS = """
client customer {
  local_names = { "IMAP.customer.example", "*.customer.example" }
  backend = "customer"
}
client office {
  networks = { "%s/32" }
  local_names = { "mail.office.example" }
  backend = "customer"
}
""" % OFFICE


def message(node):
    return ("From: a@example.org\r\nTo: alice@example.org\r\nSubject: on the %s node\r\n"
            "\r\nrouted by name\r\n" % node).encode()


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
    # One pair for every name the tests ask for, so the clients verify it.
    e.cert_dir = e.td.mkdir("certs.d")
    cert, key = e.certs.issue("names", cn=NAMES[0], dns=NAMES, ips=())
    os.link(cert, os.path.join(e.cert_dir, "names.pem"))
    os.link(key, os.path.join(e.cert_dir, "names.key"))
    e.main = mgtest.Dovecot(e.td, e.certs, users=USERS, name="main", start=False,
                            extra_conf=DOVECOT_EXTRA)
    e.customer = mgtest.Dovecot(e.td, e.certs, users=USERS, name="customer", start=False,
                                extra_conf=DOVECOT_EXTRA)
    e.main.deliver("alice", message("main"))
    e.customer.deliver("alice", message("customer"))
    e.main.start()
    e.customer.start()
    e.mg = mgtest.Mailgated(
        e.td, e.certs, name="mg-sni-routing",
        backends=[mgtest.backend_for(e.main, "main", client_address="imap-id"),
                  mgtest.backend_for(e.customer, "customer", client_address="imap-id")],
        listeners=[mgtest.listener("imap", "starttls"),
                   mgtest.listener("imaps", "implicit"),
                   mgtest.listener("pop3", "starttls", protocol="pop3")],
        tls={"certificate_dir": e.cert_dir}, default_backend="main", extra=CLIENT_SETS)
    _env = e
    return e


class UncheckedName(ImapClient):
    """Verifies the chain but not the name: for names no certificate has."""

    def ssl_context(self):
        ctx = super().ssl_context()
        ctx.check_hostname = False
        return ctx


def node_of(c):
    """Log in as alice and say which Dovecot answered (from the subject)."""
    untagged, tagged = c.login("alice", USERS["alice"], tag="L")
    assert tagged.startswith("L OK"), tagged
    untagged, tagged = c.command("S", "SELECT INBOX")
    assert tagged.startswith("S OK"), tagged
    untagged, tagged = c.command("F", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert tagged.startswith("F OK"), (untagged, tagged)
    m = re.search(r"Subject: on the (\w+) node", "\n".join(untagged))
    assert m, untagged
    c.command("Z", "LOGOUT")
    return m.group(1)


def session(name, listener="imaps", source=None, checked=True):
    """A client on listener asking for name (None: no SNI: an IP address is
    never sent as one), in TLS; returns (client, its port)."""
    e = env()
    cls = ImapClient if checked else UncheckedName
    implicit = listener == "imaps"
    c = cls(e.mg.port(listener), implicit_tls=implicit, ca=e.certs.ca, source=source,
            server_hostname=name or "127.0.0.1")
    if not implicit:
        c.starttls()
    return c, c.sock.getsockname()[1]


def mg_lines(kind, port):
    """mailgated's "login ok" or "session end" line of the session from port."""
    where = (r"login ok: rip=127\.0\.0\.\d+ rport=%d " if kind == "login ok"
             else kind + r" client=127\.0\.0\.\d+:%d ")
    m = env().mg.wait_log(where % port + r"[^\n]*", timeout=10)
    return m.group(0)


def dovecot_id(dovecot, port):
    """The ID Dovecot logged for the session from port (x-originating-port)."""
    rx = re.compile(r"ID sent: [^\n]*x-originating-port=%d\b[^\n]*" % port)
    m = mgtest.wait_until(lambda: rx.search(dovecot.log()), 10,
                          what="Dovecot's ID line for port %d in %s" % (port, dovecot.log_path))
    return m.group(0)


def expect_routed(name, want_node, want_sni, **kw):
    """Log in through a session asking for name; check the node, mailgated's
    lines and the ID the node logged."""
    e = env()
    c, port = session(name, **kw)
    with c:
        assert node_of(c) == want_node
    login = mg_lines("login ok", port)
    end = mg_lines("session end", port)
    backend = "customer" if want_node == "customer" else "main"
    assert " backend=%s " % backend in login, login
    assert (" route=client-set " in login) == (want_node == "customer"), login
    seen = dovecot_id(e.customer if want_node == "customer" else e.main, port)
    for line in (login, end):
        if want_sni:
            assert " sni=%s" % want_sni in line, line
        else:
            assert " sni=" not in line, line
    if want_sni:
        assert "x-connected-name=%s" % want_sni in seen, seen
    else:
        assert "x-connected-name" not in seen, seen


# ---------------------------------------------------------------------------
# routing by name
# ---------------------------------------------------------------------------

def test_exact_name_routes_to_its_backend():
    expect_routed("imap.customer.example", "customer", "imap.customer.example")


def test_wildcard_after_starttls_routes_to_its_backend():
    expect_routed("mail.customer.example", "customer", "mail.customer.example",
                  listener="imap")


def test_name_is_lower_cased():
    expect_routed("IMAP.Customer.EXAMPLE", "customer", "imap.customer.example")


def test_other_name_goes_to_the_default():
    expect_routed("mail.other.example", "main", "mail.other.example")
    # The wildcard covers one label: not the domain, not two labels.
    expect_routed("a.b.customer.example", "main", "a.b.customer.example", checked=False)
    expect_routed("customer.example", "main", "customer.example", checked=False)


def test_no_name_goes_to_the_default():
    expect_routed(None, "main", None)
    expect_routed(None, "main", None, listener="imap")


def test_networks_and_names_together():
    expect_routed("mail.office.example", "customer", "mail.office.example", source=OFFICE)
    expect_routed("mail.office.example", "main", "mail.office.example", source=ELSEWHERE)


def test_pop3_stls_routes_by_name():
    e = env()
    for name, node in (("pop.customer.example", "customer"), ("mail.other.example", "main")):
        with Pop3Client(e.mg.port("pop3"), ca=e.certs.ca, server_hostname=name) as p:
            p.stls()
            port = p.sock.getsockname()[1]
            answer = p.user_pass("alice", USERS["alice"])
            assert answer.startswith("+OK"), answer
            status, body = p.multiline("TOP 1 0")
            assert status.startswith("+OK"), status
            assert "Subject: on the %s node" % node in body, body
            p.command("QUIT")
        login = mg_lines("login ok", port)
        assert " backend=%s " % node in login and " sni=%s" % name in login, login
        end = mg_lines("session end", port)
        assert " sni=%s" % name in end, end


def test_plaintext_session_matches_no_name():
    """Before STARTTLS there is no name: the customer's set does not apply
    (its backend would get no login, and the greeting keeps LOGINDISABLED)."""
    e = env()
    with ImapClient(e.mg.port("imap"), ca=e.certs.ca) as c:
        assert "LOGINDISABLED" in c.greeting, c.greeting
        port = c.sock.getsockname()[1]
        untagged, tagged = c.login("alice", USERS["alice"], tag="L")
        assert tagged.startswith("L NO [PRIVACYREQUIRED]"), tagged
    end = mg_lines("session end", port)
    assert " tls=none " in end and " sni=" not in end, end


# ---------------------------------------------------------------------------
# names that are not host names
# ---------------------------------------------------------------------------

LABEL63 = "a" * 63
NOT_HOST_NAMES = (
    "bad_name.customer.example",                # '_' is no LDH character
    "imap customer.example",
    "imap.customer.example%00",
    "\"imap.customer.example\"",
    ".".join((LABEL63, LABEL63, LABEL63, "b" * 62)),    # 254 characters
)


def test_names_that_are_not_host_names_count_as_none():
    for name in NOT_HOST_NAMES:
        expect_routed(name, "main", None, checked=False)


def s_client(port, name):
    """openssl s_client asking for name (what Python refuses to send); its
    exit status says nothing here (the server closes without close_notify)."""
    cmd = [mgtest.find_program("openssl"), "s_client", "-connect",
           "%s:%d" % (mgtest.HOST, port), "-servername", name, "-CAfile", env().certs.ca, "-ign_eof"]
    r = subprocess.run(cmd, input=b"a LOGOUT\r\n", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    return (r.stdout + r.stderr).decode("utf-8", "replace")


def test_names_python_will_not_send():
    e = env()
    start = len(e.mg.log())
    for name in ("a..customer.example", "x" * 64 + ".customer.example", "a.customer.example.."):
        out = s_client(e.mg.port("imaps"), name)
        assert "* OK" in out and "a OK" in out, (name, mgtest.tail(out, 20))
    ends = re.findall(r"session end client=[^\n]*", e.mg.log()[start:])
    assert len(ends) >= 3 and not any(" sni=" in l for l in ends), ends


def client_hello(server_name):
    """A TLS 1.2 ClientHello whose SNI is server_name (bytes), whatever its
    length: no TLS library sends a name over 255 bytes."""
    sni = struct.pack("!BH", 0, len(server_name)) + server_name
    sni = struct.pack("!H", len(sni)) + sni
    ext = struct.pack("!HH", 0, len(sni)) + sni
    ext += struct.pack("!HHH", 10, 4, 2) + struct.pack("!H", 23)            # P-256
    ext += struct.pack("!HHH", 13, 4, 2) + struct.pack("!H", 0x0403)        # ecdsa_sha256
    body = (struct.pack("!H", 0x0303) + os.urandom(32) + b"\x00"
            + struct.pack("!HH", 2, 0xC02B) + b"\x01\x00"
            + struct.pack("!H", len(ext)) + ext)
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def test_overlong_name_ends_only_its_handshake():
    e = env()
    engines = set(e.mg.engines())
    for length in (256, 1000, 16000):
        with socket.create_connection((mgtest.HOST, e.mg.port("imaps")), timeout=10) as s:
            s.sendall(client_hello(b"a" * length))
            data = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except (ConnectionResetError, socket.timeout):
                pass
            # A fatal alert (21), or a bare close; never a ServerHello (22).
            assert not data.startswith(b"\x16"), data[:16]
    assert set(e.mg.engines()) == engines, "an engine died"
    expect_routed("imap.customer.example", "customer", "imap.customer.example")
    e.mg.assert_no_crash_reports()


if __name__ == "__main__":
    sys.exit(mgtest.run_tests(globals()))
