#!/usr/bin/env python3
"""Integration tests: mailgated's process model, in front of a real Dovecot.

The master (root) forks TLS engines ("mailgated-tls", run as `user`), one
sandboxed session child per connection before login ("mailgated-login", run
as `session_user`, chrooted) and, with auth = pam, the auth supervisor
("mailgated-authd"). These tests kill engines and the auth process, look at
the session child from /proc (credentials, chroot, limits, memory), add a
listener by SIGHUP, and split STARTTLS command injection over TCP segments.

Every test starts its own mailgated (engines set explicitly); one private
Dovecot is shared. Run: python3 tests/integration/test_engine.py
(MG_MAILGATED=path/to/mailgated, MG_TEST=test_name, MG_KEEP=1). Run as root.
"""

import base64
import os
import pwd
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mgtest  # noqa: E402
from mgtest import ImapClient, Pop3Client  # noqa: E402
# Only the PAM set-up helpers (pam_wrapper + pam_matrix); importing the
# module starts nothing: its fixtures are made on first use of its env().
import test_pam  # noqa: E402

PAM_USER = "alice"
PAM_PASSWORD = test_pam.PAM_USERS[PAM_USER][0]

USERS = {
    PAM_USER: PAM_PASSWORD,      # Dovecot and PAM agree on alice's password
    "bob": "bob-Engine-2",
    "carol": "carol-Engine-3",
    "dave": "dave-Engine-4",
    "erin": "erin-Engine-5",
}

MESSAGE = (b"From: a@example.org\r\nTo: someone@example.org\r\nSubject: engine test\r\n"
           b"\r\nhello\r\n")

# What every gateway of this suite has unless a test says otherwise.
BASE = dict(
    max_connections=200,
    max_connections_per_ip=100,
    login_timeout=30,
    session_timeout=300,
    auth_failure_delay=0,
    shutdown_grace=2,
)


# ---------------------------------------------------------------------------
# shared fixtures: test directory, certificates, Dovecot (no shared gateway)
# ---------------------------------------------------------------------------

class _Env:
    pass


_env = None
_env_error = None


def env():
    global _env, _env_error
    if _env is not None:
        return _env
    if _env_error is not None:
        raise RuntimeError("shared fixtures failed to start earlier") from _env_error
    try:
        e = _Env()
        e.td = mgtest.TestDir()
        e.certs = mgtest.Certs(e.td.join("certs"))
        e.dovecot = mgtest.Dovecot(e.td, e.certs, users=USERS, start=False)
        for user in USERS:
            e.dovecot.deliver(user, MESSAGE)
        e.dovecot.start()
        e.backends = [mgtest.backend_for(e.dovecot, "dovecot")]
    except BaseException as ex:
        _env_error = ex
        raise
    _env = e
    return e


def gateway(name, engines, listeners=None, **settings):
    """A mailgated of its own in front of the shared Dovecot (listeners
    "imap" with STARTTLS and "imaps" with implicit TLS unless given)."""
    e = env()
    conf = dict(BASE)
    conf.update(settings)
    return mgtest.Mailgated(e.td, e.certs, name=name, backends=e.backends,
                            listeners=listeners, engines=engines, **conf)


def tolerate_in_crash_check(mg, pattern):
    """Mailgated.stop() (also run by the cleanup) ends with
    assert_no_crash_reports(), which fails on any "died of signal" line. A
    test that kills a process on purpose expects exactly such a line, so this
    replaces the check on this one instance by the same check with the lines
    matching pattern left out: any other crash report still fails."""
    rx = re.compile(pattern)

    def check():
        found = [line for line in mg.log().splitlines()
                 if any(p in line for p in mg.CRASH_PATTERNS) and not rx.search(line)]
        if found:
            raise AssertionError("%s log reports a crash:\n%s\n%s"
                                 % (mg.name, "\n".join(found[:10]), mgtest.tail(mg.log(), 40)))
    mg.assert_no_crash_reports = check      # the instance attribute wins over the method


def imap_session(port, user, timeout=10):
    """STARTTLS, LOGIN, SELECT INBOX, LOGOUT through the gateway; raises
    AssertionError (or a socket/TLS error) if any step fails."""
    with ImapClient(port, ca=env().certs.ca, timeout=timeout) as c:
        assert c.greeting.startswith("* OK"), c.greeting
        c.starttls()
        untagged, tagged = c.login(user, USERS[user], tag="a")
        assert tagged.startswith("a OK"), "LOGIN: %r" % tagged
        untagged, tagged = c.command("s", "SELECT INBOX")
        assert tagged.startswith("s OK"), "SELECT: %r" % tagged
        assert any(re.match(r"^\* \d+ EXISTS$", l) for l in untagged), untagged
        untagged, tagged = c.command("z", "LOGOUT")
        assert tagged.startswith("z OK"), "LOGOUT: %r" % tagged


def login_works(port, user):
    """For wait_until: True if a whole session works now."""
    try:
        imap_session(port, user, timeout=5)
        return True
    except (AssertionError, OSError, mgtest.Closed):    # ssl.SSLError is an OSError
        return False


def uids(pid):
    """(real, effective, saved, filesystem) uid of a process, from /proc."""
    st = mgtest.proc_status(pid)
    assert st is not None, "process %d is gone" % pid
    return tuple(int(x) for x in st["Uid"].split())


def engine_index(mg, pid):
    """The index the master gave engine pid ("engine started pid=P ... index=I",
    a debug line; the suite's gateways log at debug)."""
    m = re.search(r"engine started pid=%d generation=(\d+) index=(\d+)" % pid, mg.log())
    assert m, "no 'engine started pid=%d' line in the log:\n%s" % (pid, mgtest.tail(mg.log()))
    return int(m.group(1)), int(m.group(2))


def process_age(pid):
    """Seconds since pid started (from /proc/PID/stat and /proc/uptime)."""
    with open("/proc/%d/stat" % pid) as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------
# 1. an engine killed under load is replaced; the master stays
# ---------------------------------------------------------------------------

def test_engine_killed_under_load():
    mg = gateway("mg-engines", engines=2, listeners=[mgtest.listener("imap", "starttls")])
    port = mg.port("imap")
    master = mg.pid
    before = mgtest.wait_until(lambda: len(mg.engines()) == 2 and mg.engines(), 5,
                               what="two engines")
    imap_session(port, "bob")

    results = []                # (start time, ok, error text)
    lock = threading.Lock()
    stop = threading.Event()

    def loader(user):
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                imap_session(port, user, timeout=5)
                ok, err = True, None
            except Exception as ex:     # noqa: BLE001 - counted and reported below
                ok, err = False, repr(ex)
            with lock:
                results.append((t0, ok, err))

    def successes(since=0.0):
        with lock:
            return sum(1 for t0, ok, _ in results if ok and t0 >= since)

    threads = [threading.Thread(target=loader, args=(u,), daemon=True)
               for u in ("bob", "carol", "dave", "erin")]
    for t in threads:
        t.start()
    try:
        mgtest.wait_until(lambda: successes() >= 8, 20, what="logins under load before the kill")
        victim = before[0]
        generation, index = engine_index(mg, victim)
        # An engine that dies younger than 1 s is restarted after a back-off;
        # this one must be restarted at once, so it has to be older than that.
        mgtest.wait_until(lambda: process_age(victim) > 1.2, 3, interval=0.05,
                          what="the engine to be older than the back-off age")
        # Before the kill, so that even a failure below stops this gateway cleanly.
        tolerate_in_crash_check(mg, r"engine %d of generation %d died of signal 9;"
                                % (index, generation))
        mark = len(mg.log())
        t_kill = time.monotonic()
        os.kill(victim, signal.SIGKILL)

        died = mg.wait_log(r"engine %d of generation %d died of signal 9; (\d+) sessions lost"
                           % (index, generation), 5, start=mark)
        mg.wait_log(r"engine %d of generation %d restarted" % (index, generation), 3,
                    start=mark)
        after = mgtest.wait_until(
            lambda: (lambda pids: len(pids) == 2 and victim not in pids and pids)(mg.engines()),
            5, what="two engines again, without the killed one")
        # settle: a login started now works, then count only later ones
        mgtest.wait_until(lambda: login_works(port, "bob"), 10, interval=0.1,
                          what="a login after the engine was killed")
        t_settle = time.monotonic()
        mgtest.wait_until(lambda: successes(t_settle) >= 16, 30,
                          what="16 logins under load after the restart")
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    with lock:
        late = [(t0 - t_kill, err) for t0, ok, err in results if t0 >= t_settle and not ok]
        window = [ok for t0, ok, _ in results if t_kill <= t0 < t_settle]
        failed_total = sum(1 for _, ok, _ in results if not ok)
    assert not late, "logins started after the restart failed: %r" % late[:5]
    assert "keeps dying" not in mg.log()[mark:], \
        "an engine older than 1 s was restarted with a back-off:\n" + mgtest.tail(mg.log())
    new = [p for p in after if p not in before]
    assert len(new) == 1 and before[1] in after, \
        "expected the surviving engine %d and one new one, have %r (before %r)" \
        % (before[1], after, before)
    assert uids(new[0]) == uids(before[1]), "the new engine runs as another user"
    assert mg.pid == master and mg.running(), "the master changed or died"
    assert mgtest.process_name(master) == "mailgated", mgtest.process_name(master)
    print("  engine held %s sessions when killed; %d logins failed in all; %d started "
          "between the kill and the settle point (%d failed), %d after"
          % (died.group(1), failed_total, len(window), window.count(False),
             successes(t_settle)))
    mg.stop()


# ---------------------------------------------------------------------------
# 2. the session child: its own user, a chroot, no processes, no key
# ---------------------------------------------------------------------------

def key_needles(key_path):
    """Byte strings of the TLS private key that only the key file (or the
    parsed key) holds: the base64 lines of the PEM body past the first (the
    first starts with the algorithm header every P-256 key shares), and the
    32-byte private scalar, big-endian (as in the DER) and little-endian (as
    a BIGNUM's words are laid out on x86-64 and other little-endian CPUs)."""
    with open(key_path) as f:
        pem = f.read()
    body = [l.strip() for l in pem.splitlines() if l.strip() and not l.startswith("-----")]
    needles = {}
    for i, line in enumerate(body[1:], 2):
        if len(line) >= 32:
            needles["pem-line-%d" % i] = line.encode("ascii")
    text = mgtest.run([mgtest.find_program("openssl"), "pkey", "-in", key_path, "-noout",
                       "-text"]).stdout.decode("ascii", "replace")
    m = re.search(r"priv:\s*((?:[0-9a-f]{2}:?\s*)+)", text)
    assert m, "no private scalar in openssl's dump:\n" + text
    scalar = bytes.fromhex(re.sub(r"[^0-9a-f]", "", m.group(1)))
    scalar = scalar[-32:].rjust(32, b"\0")
    assert len(set(scalar)) > 8, "implausible private scalar %r" % scalar
    # the scalar is also in the DER (the base64 body decoded): make sure we
    # took it from this very key
    assert scalar in base64.b64decode("".join(body)), "scalar not found in the key's DER"
    needles["scalar-be"] = scalar
    needles["scalar-le"] = scalar[::-1]
    return needles


def test_session_child_is_sandboxed():
    e = env()
    mg = gateway("mg-sandbox", engines=1, listeners=[mgtest.listener("imap", "starttls")])
    key_path = mg.tls["key"]
    chroot = mg.settings["session_chroot"]
    session_pw = pwd.getpwnam(mg.settings["session_user"])
    engine_pw = pwd.getpwnam(mg.settings["user"])
    with ImapClient(mg.port("imap"), ca=e.certs.ca) as c:
        assert c.greeting.startswith("* OK"), c.greeting
        kids = mgtest.wait_until(lambda: mg.session_children(zombies=False), 5,
                                 what="the session child")
        assert len(kids) == 1, "one connection, session children %r" % kids
        pid = kids[0]
        engines = mg.engines()
        assert len(engines) == 1, engines
        engine = engines[0]
        assert mgtest.process_name(pid) == "mailgated-login", mgtest.process_name(pid)

        # credentials
        child_uid = uids(pid)
        assert child_uid == (session_pw.pw_uid,) * 4, \
            "session child uids %r, %s is %d" % (child_uid, session_pw.pw_name, session_pw.pw_uid)
        assert uids(engine) == (engine_pw.pw_uid,) * 4, \
            "engine uids %r, %s is %d" % (uids(engine), engine_pw.pw_name, engine_pw.pw_uid)
        assert session_pw.pw_uid not in (0, engine_pw.pw_uid), session_pw
        st = mgtest.proc_status(pid)
        assert st["Gid"].split() == [str(session_pw.pw_gid)] * 4, st["Gid"]
        assert st["Groups"] == "", "supplementary groups kept: %r" % st["Groups"]
        assert st["NoNewPrivs"] == "1", "NoNewPrivs: %r" % st["NoNewPrivs"]

        # chroot, and no way to the key from there
        root = os.readlink("/proc/%d/root" % pid)
        assert root == os.path.realpath(chroot), \
            "session child's root is %r, session_chroot is %r" % (root, chroot)
        assert os.path.exists(key_path)
        assert not os.path.exists("/proc/%d/root" % pid + key_path), \
            "the key file is visible inside the session child's root"
        assert os.listdir("/proc/%d/root" % pid) == [], os.listdir("/proc/%d/root" % pid)

        # no processes
        with open("/proc/%d/limits" % pid) as f:
            limits = f.read()
        m = re.search(r"^Max processes\s+(\S+)\s+(\S+)", limits, re.M)
        assert m and m.groups() == ("0", "0"), "RLIMIT_NPROC: %r" % (m and m.groups())

        # memory: not a byte of the key, in the child nor in the master
        needles = key_needles(key_path)
        key_only = dict(needles)
        # Positive control: the search must find what is there. The child
        # wipes every command it read (imap_frontend.c), so a string the client sent
        # is no marker; the configured session_chroot path (unique to this
        # test directory, so not in any file mapped) sits in the parsed
        # configuration of both the master and the child.
        needles["chroot-path"] = chroot.encode()
        in_child = mgtest.memory_search(pid, needles)
        in_master = mgtest.memory_search(mg.pid, needles)
        in_engine = mgtest.memory_search(engine, key_only)
        assert c.is_open(0.05), "the connection closed while we looked"
    leaked = {k: v for k, v in in_child.items() if v and k in key_only}
    assert not leaked, "the session child's memory holds the TLS key: %r" % leaked
    leaked = {k: v for k, v in in_master.items() if v and k in key_only}
    assert not leaked, "the master's memory holds the TLS key: %r" % leaked
    assert in_child["chroot-path"] and in_master["chroot-path"], \
        "the search missed the configured session_chroot path (child %r, master %r)" \
        % (in_child["chroot-path"], in_master["chroot-path"])
    # and the same search finds the key where it is: in the engine, parsed
    # by OpenSSL (its BIGNUM holds the scalar)
    assert in_engine["scalar-le"] or in_engine["scalar-be"], \
        "the private scalar was not found even in the engine: %r" % in_engine
    mg.stop()


# ---------------------------------------------------------------------------
# 2b. spare session children: forked ahead, sandboxed, one session each
# ---------------------------------------------------------------------------

def spare_is_sandboxed(mg, pid):
    """A spare runs as session_user, chrooted, unable to fork, like a session child."""
    session_pw = pwd.getpwnam(mg.settings["session_user"])
    assert uids(pid) == (session_pw.pw_uid,) * 4, "spare %d uids %r" % (pid, uids(pid))
    root = os.readlink("/proc/%d/root" % pid)
    assert root == os.path.realpath(mg.settings["session_chroot"]), "spare %d root %r" % (pid, root)
    assert mgtest.proc_status(pid)["NoNewPrivs"] == "1"
    with open("/proc/%d/limits" % pid) as f:
        m = re.search(r"^Max processes\s+(\S+)\s+(\S+)", f.read(), re.M)
    assert m and m.groups() == ("0", "0"), "spare %d RLIMIT_NPROC %r" % (pid, m and m.groups())


def test_spare_session_children():
    e = env()
    mg = gateway("mg-spares", engines=1, listeners=[mgtest.listener("imap", "starttls")])
    port = mg.port("imap")
    spares = mgtest.wait_until(lambda: (lambda s: len(s) >= 3 and s)(mg.spares()), 5,
                               what="spare session children")
    for pid in spares:
        assert pid in mgtest.children_of(mg.pid), "spare %d is not the master's child" % pid
        spare_is_sandboxed(mg, pid)
    assert not mg.session_children(zombies=False), "a session child with no connection"

    # a connection is served by one of the spares, which then shows as a session child
    before = set(mg.spares())
    with ImapClient(port, ca=e.certs.ca) as c:
        assert c.greeting.startswith("* OK"), c.greeting
        kids = mgtest.wait_until(lambda: mg.session_children(zombies=False), 5,
                                 what="the session child")
        assert len(kids) == 1 and kids[0] in before, \
            "the session child %r was not one of the spares %r" % (kids, sorted(before))
        assert mgtest.process_name(kids[0]) == "mailgated-login"
        assert kids[0] not in mg.spares()
    imap_session(port, "bob")

    # a spare that dies unasked costs nothing: the next logins work, the pool refills
    victim = mg.spares()[0]
    os.kill(victim, signal.SIGKILL)
    assert not mgtest.wait_pids_gone([victim], 5), "the killed spare was not reaped"
    for _ in range(SPARES_MAX_IN_TEST):
        imap_session(port, "carol")
    mgtest.wait_until(lambda: len(mg.spares()) >= 3, 5, what="the pool to refill")

    # a reload lets the old spares go: they run the old configuration
    old = set(mg.spares())
    mark = len(mg.log())
    mg.reload()
    mg.wait_log(r"reload done config=.* generation=2\b", 10, start=mark)
    assert not mgtest.wait_pids_gone(list(old), 5), "spares of the old generation live on"
    fresh = mgtest.wait_until(lambda: (lambda s: len(s) >= 3 and s)(mg.spares()), 5,
                              what="spares of the new generation")
    assert not old & set(fresh), "old spares %r still in the pool %r" % (old, fresh)
    imap_session(port, "dave")

    # they end with the daemon
    everyone = set(mg.spares())
    mg.stop()
    assert not mgtest.wait_pids_gone(list(everyone), 5), "spares outlived the daemon"


SPARES_MAX_IN_TEST = 10     # more sessions than the pool holds (SPARES_MAX is 8)


# ---------------------------------------------------------------------------
# 3. the PAM auth process is restarted when it dies
# ---------------------------------------------------------------------------

def auth_supervisors(mg):
    return [pid for pid in mgtest.children_of(mg.pid)
            if mgtest.process_name(pid).startswith("mailgated-auth")
            and mgtest.process_name(pid) != "mailgated-authw"]


def auth_workers(mg):
    return [pid for pid in mgtest.descendants_of(mg.pid)
            if mgtest.process_name(pid) == "mailgated-authw"]


def pam_login(mg, password):
    """The tagged answer to LOGIN alice PASSWORD over implicit TLS."""
    with ImapClient(mg.port("imaps"), implicit_tls=True, ca=env().certs.ca, timeout=5) as c:
        untagged, tagged = c.login(PAM_USER, password, tag="a")
        return tagged


def test_auth_process_restarted():
    test_pam.pam_paths()            # fails, naming the file, when pam_wrapper is missing
    e = env()
    mg = gateway("mg-auth", engines=1, env=test_pam.pam_environment(e.td),
                 listeners=[mgtest.listener("imaps", "implicit")],
                 auth="pam", auth_workers=2, auth_timeout=10)
    master = mg.pid
    tagged = pam_login(mg, PAM_PASSWORD)
    assert tagged.startswith("a OK"), tagged
    # PAM decides: a password Dovecot would not even see is refused
    tagged = pam_login(mg, "not-" + PAM_PASSWORD)
    assert tagged.startswith("a NO [AUTHENTICATIONFAILED]"), tagged
    supervisors = mgtest.wait_until(lambda: auth_supervisors(mg), 5, what="the auth process")
    assert len(supervisors) == 1, supervisors
    old = supervisors[0]
    workers = mgtest.wait_until(lambda: auth_workers(mg), 5, what="auth workers")
    mark = len(mg.log())
    os.kill(old, signal.SIGKILL)
    mg.wait_log(r"auth process ended \(signal 9\); restarting it in \d+ ms", 5, start=mark)
    mg.wait_log(r"auth process started service=", 5, start=mark)
    new = mgtest.wait_until(
        lambda: (lambda s: len(s) == 1 and s[0] != old and s)(auth_supervisors(mg)), 5,
        what="a new auth process")
    mgtest.wait_until(lambda: pam_login(mg, PAM_PASSWORD).startswith("a OK"), 5,
                      interval=0.1, what="a PAM login after the auth process restarted")
    tagged = pam_login(mg, "not-" + PAM_PASSWORD)
    assert tagged.startswith("a NO [AUTHENTICATIONFAILED]"), tagged
    left = mgtest.wait_pids_gone(workers, 5)
    assert not left, "workers of the killed auth process live on: %s" % left
    assert mg.pid == master and mg.running(), "the master changed or died"
    assert new[0] in mgtest.children_of(master), "the new auth process is not the master's child"
    mg.stop()


# ---------------------------------------------------------------------------
# 4. SIGHUP adds a listener without a restart
# ---------------------------------------------------------------------------

def test_reload_adds_listener():
    e = env()
    mg = gateway("mg-addlistener", engines=1, listeners=[mgtest.listener("imap", "starttls")])
    master = mg.pid
    port = mg.port("imap")
    # a session logged in before the reload, and one not yet logged in
    old = ImapClient(port, ca=e.certs.ca)
    old.starttls()
    untagged, tagged = old.login("bob", USERS["bob"], tag="a")
    assert tagged.startswith("a OK"), tagged
    untagged, tagged = old.command("s", "SELECT INBOX")
    assert tagged.startswith("s OK"), tagged
    waiting = ImapClient(port, ca=e.certs.ca)
    assert waiting.greeting.startswith("* OK"), waiting.greeting

    new = mgtest.listener("pop3s", "implicit", protocol="pop3")
    assert not mgtest.port_accepts(new["port"]), "port %d is taken already" % new["port"]
    mg.listeners.append(new)
    mg.write_config()
    mark = len(mg.log())
    mg.reload()
    mg.wait_log(r"reload done config=.* generation=2\b", 10, start=mark)
    assert mg.pid == master and mg.running(), "the master restarted or died on SIGHUP"

    with Pop3Client(new["port"], implicit_tls=True, ca=e.certs.ca) as c:
        assert c.greeting.startswith("+OK"), c.greeting
        answer = c.user_pass("carol", USERS["carol"])
        assert answer.startswith("+OK"), answer
        answer = c.command("STAT")
        assert answer.startswith("+OK 1 "), answer
        assert c.command("QUIT").startswith("+OK")
    imap_session(port, "dave")          # the old listener still works

    # the session logged in before the reload still relays
    untagged, tagged = old.command("n", "NOOP")
    assert tagged.startswith("n OK"), tagged
    untagged, tagged = old.command("f", "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert tagged.startswith("f OK"), tagged
    assert "engine test" in "\n".join(untagged), untagged
    untagged, tagged = old.command("z", "LOGOUT")
    assert tagged.startswith("z OK"), tagged
    old.close()
    # the connection accepted before the reload can still log in
    waiting.starttls()
    untagged, tagged = waiting.login("erin", USERS["erin"], tag="a")
    assert tagged.startswith("a OK"), tagged
    untagged, tagged = waiting.command("z", "LOGOUT")
    assert tagged.startswith("z OK"), tagged
    waiting.close()
    # with its sessions over, the old generation's engine goes
    mgtest.wait_until(lambda: len(mg.engines()) == 1, 10,
                      what="one engine (engines = 1) once the old sessions ended; have %r"
                      % mg.engines())
    mg.stop()


# ---------------------------------------------------------------------------
# 5. STARTTLS command injection, split over TCP segments
# ---------------------------------------------------------------------------

class RawTls:
    """TLS over a connected socket through memory BIOs, so that every raw
    byte the server sends after its STARTTLS answer is kept (self.raw) and
    can be checked for cleartext."""

    def __init__(self, sock, ca, initial=b""):
        self.sock = sock
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        ctx = ssl.create_default_context(cafile=ca)
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")
        self.raw = bytearray(initial)
        self.inc.write(initial)
        self.eof = False

    def _flush(self):
        data = self.out.read()
        if data:
            try:
                self.sock.sendall(data)
            except OSError:
                pass            # the server hung up: reading tells the rest

    def _pull(self, deadline):
        """Read more raw bytes; socket.timeout at the deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline passed")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            self.inc.write_eof()
            return
        self.raw += data
        self.inc.write(data)

    def handshake(self, timeout=5):
        """None if the handshake succeeded, else what ended it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.obj.do_handshake()
                self._flush()
                return None
            except ssl.SSLWantReadError:
                self._flush()
                if self.eof:
                    return "connection closed during the handshake"
                try:
                    self._pull(deadline)
                except socket.timeout:
                    return "handshake timed out"
            except ssl.SSLError as ex:
                self._flush()
                return ex

    def send(self, data):
        self.obj.write(data)
        self._flush()

    def read_until_closed(self, timeout=5):
        """Decrypted bytes up to the server's close."""
        deadline = time.monotonic() + timeout
        out = bytearray()
        while True:
            try:
                data = self.obj.read(65536)
                if not data:
                    return bytes(out)
                out += data
            except ssl.SSLWantReadError:
                if self.eof:
                    return bytes(out)
                try:
                    self._pull(deadline)
                except socket.timeout:
                    raise AssertionError("still open %d s after the last command; read %r"
                                         % (timeout, bytes(out)))
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return bytes(out)

    def drain(self, timeout=3):
        """After a failed handshake: the rest of the raw bytes, up to the close."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        deadline = time.monotonic() + timeout
        while not self.eof:
            try:
                self._pull(deadline)
            except (socket.timeout, OSError):
                return


def assert_only_tls_records(raw, what):
    """Everything after the STARTTLS answer must be TLS records: a cleartext
    answer to an injected command breaks the record framing."""
    pos = 0
    while pos < len(raw):
        hdr = raw[pos:pos + 5]
        if hdr[0] not in (20, 21, 22, 23) or (len(hdr) > 1 and hdr[1] != 3):
            raise AssertionError("%s: cleartext after the STARTTLS answer at byte %d: %r"
                                 % (what, pos, bytes(raw[pos:pos + 120])))
        if len(hdr) < 5:
            return
        pos += 5 + int.from_bytes(hdr[3:5], "big")


class Hangup(Exception):
    """The server closed or reset the connection; .data: what was read."""

    def __init__(self, data):
        Exception.__init__(self, "closed by the server; have %r" % data)
        self.data = data


def read_line(sock, buf, timeout=5):
    """(line without CRLF, rest of buf) from a raw socket; Hangup at a close."""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("no complete line within %d s; have %r" % (timeout, buf))
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            raise Hangup(buf)
        buf += data
    line, _, buf = buf.partition(b"\n")
    return line.rstrip(b"\r").decode("latin-1"), buf


def read_rest(sock, buf, timeout=3):
    """Every byte up to the server's close (or the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return buf
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return buf
        except OSError:
            return buf
        if not data:
            return buf
        buf += data


def assert_starttls_answer(answer, imap, what):
    """The first line after the greeting must be STARTTLS's (STLS's) OK."""
    if imap:
        assert answer.startswith("a OK"), \
            "%s: first answer after the greeting is %r, not STARTTLS's OK" % (what, answer)
    else:
        assert answer.startswith("+OK") and "capab" not in answer.lower(), \
            "%s: first answer after the greeting is %r, not STLS's OK" % (what, answer)


def injection_case(port, protocol, pieces, gap):
    """Send pieces (STARTTLS/STLS plus an injected command, in separate
    sends), then handshake. Returns "tls" (handshake done, nothing injected
    answered), "refused" (the server ended the connection or the handshake:
    injected bytes reached the TLS layer). AssertionError if the injected
    command was answered: in clear before or after the STARTTLS answer
    (anything but TLS records after that answer breaks the record framing),
    or inside TLS."""
    imap = protocol == "imap"
    what = "%s %r gap=%s" % (protocol, pieces, gap)
    sock = socket.create_connection((mgtest.HOST, port), timeout=5)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        greeting, buf = read_line(sock, b"")
        assert greeting.startswith("* OK" if imap else "+OK"), (what, greeting)
        hung_up = False
        for piece in pieces:
            try:
                sock.sendall(piece)
            except OSError:
                # reset: the server already refused (injected bytes hit TLS)
                hung_up = True
                break
            if gap:
                # not synchronisation: spaces the sends so that they arrive
                # as separate segments and reads on the server
                time.sleep(gap)
        # in clear: the STARTTLS answer, nothing before it, then only TLS
        try:
            answer, buf = read_line(sock, buf)
        except Hangup as h:
            assert not h.data, "%s: partial line, then the close: %r" % (what, h.data)
            return "refused"
        assert_starttls_answer(answer, imap, what)
        if hung_up:
            assert_only_tls_records(read_rest(sock, buf), what)
            return "refused"
        tls = RawTls(sock, env().certs.ca, initial=buf)
        err = tls.handshake()
        if err is None:
            # inside TLS: only the answer to the command sent now
            tls.send(b"c LOGOUT\r\n" if imap else b"QUIT\r\n")
            lines = tls.read_until_closed().decode("latin-1").split("\r\n")
            if lines and lines[-1] == "":
                lines.pop()
            if imap:
                ok = len(lines) == 2 and lines[0].startswith("* BYE") and \
                    lines[1].startswith("c OK")
            else:
                ok = len(lines) == 1 and lines[0].startswith("+OK")
            assert ok, "%s: inside TLS the server sent %r; an injected command ran" \
                % (what, lines)
            outcome = "tls"
        else:
            tls.drain()
            outcome = "refused"
        assert_only_tls_records(tls.raw, what)
        return outcome
    finally:
        sock.close()


def test_starttls_injection_split():
    mg = gateway("mg-inject", engines=1,
                 listeners=[mgtest.listener("imap", "starttls"),
                            mgtest.listener("pop3", "starttls", protocol="pop3")])
    cases = {
        "imap": (b"a STARTTLS\r\n", b"b CAPABILITY\r\n"),
        "pop3": (b"STLS\r\n", b"CAPA\r\n"),
    }
    summary = []
    for protocol, (starttls, injected) in cases.items():
        port = mg.port(protocol)
        # control: STARTTLS alone always gives a working TLS session
        for gap in (0, 0.02):
            outcome = injection_case(port, protocol, [starttls], gap)
            assert outcome == "tls", "%s: a plain STARTTLS failed its handshake" % protocol
        h, i = len(starttls) // 2, len(injected) // 2
        splits = [
            [starttls, injected],                               # two sends
            [starttls[:h], starttls[h:], injected[:i], injected[i:]],
            [starttls + injected[:i], injected[i:]],            # STARTTLS + half a line
            [starttls[:-1], starttls[-1:] + injected],          # CR | LF + injected
            [starttls, injected, injected],
        ]
        for n, pieces in enumerate(splits, 1):
            for gap in (0, 0.02):
                summary.append("%s#%d/%s:%s" % (protocol, n, gap,
                                                injection_case(port, protocol, pieces, gap)))
    # no session child may be left behind by any of these
    mg.wait_no_children(10)
    print("  outcomes: " + " ".join(summary))
    mg.stop()


# ---------------------------------------------------------------------------
# 6. without -f: detached, with a pid file that goes with the daemon
# ---------------------------------------------------------------------------

def test_daemon_serves_and_removes_its_pid_file():
    mg = gateway("mg-daemon", engines=1, start=False,
                 listeners=[mgtest.listener("imap", "starttls")])
    pid_file = mg.settings["pid_file"]
    # Without -f it logs to syslog only: the exit status and the pid file tell.
    r = subprocess.run([mg.binary, "-c", mg.conf_path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
                       universal_newlines=True)
    assert r.returncode == 0, "mailgated without -f exited %d: %s" % (r.returncode, r.stderr)

    def written():
        try:
            with open(pid_file) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        return int(text) if text.endswith("\n") else None
    pid = mgtest.wait_until(written, 10, what="the pid file %s" % pid_file)
    everyone = [pid] + mgtest.descendants_of(pid)
    mgtest.add_cleanup(lambda: mgtest.kill_pids(everyone + mgtest.descendants_of(pid)))
    # The detached daemon serves (its engines got the session ticket keys).
    mgtest.wait_until(lambda: login_works(mg.port("imap"), "erin"), 15,
                      what="a login through the detached daemon")
    everyone = [pid] + mgtest.descendants_of(pid)
    os.kill(pid, signal.SIGTERM)
    assert not mgtest.wait_pids_gone(everyone, BASE["shutdown_grace"] + 10), \
        "the daemon or its children outlived SIGTERM"
    assert not os.path.exists(pid_file), "the pid file outlived the daemon"


# ---------------------------------------------------------------------------
# 7. SIGTERM: sessions still before login hear it from the gateway
# ---------------------------------------------------------------------------

def test_shutdown_says_goodbye_before_login():
    mg = gateway("mg-goodbye", engines=1, shutdown_grace=1,
                 listeners=[mgtest.listener("imap", "starttls"),
                            mgtest.listener("imaps", "implicit"),
                            mgtest.listener("pop3", "starttls", protocol="pop3")])
    ca = env().certs.ca
    clients = [("imap", ImapClient(mg.port("imap"), ca=ca), "* BYE Server shutting down."),
               ("imaps", ImapClient(mg.port("imaps"), ca=ca, implicit_tls=True),
                "* BYE Server shutting down."),
               ("pop3", Pop3Client(mg.port("pop3"), ca=ca), "-ERR Server shutting down.")]
    ports = {}
    for name, c, _ in clients:
        assert c.greeting.startswith(("* OK", "+OK")), (name, c.greeting)
        ports[name] = c.sock.getsockname()[1]
    mg.proc.send_signal(signal.SIGTERM)
    for name, c, goodbye in clients:
        lines = c.expect_closed(BASE["shutdown_grace"] + 8)
        assert lines == [goodbye], "%s: %r before the close" % (name, lines)
        c.close()
    for name, port in ports.items():
        line = mg.session_end_line(port)
        assert line.endswith(" reason=shutdown"), line
    mg.stop()


if __name__ == "__main__":
    sys.exit(mgtest.run_tests(globals()))
