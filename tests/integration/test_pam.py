#!/usr/bin/env python3
"""Integration tests: auth = pam, with pam_wrapper and pam_matrix (no system
account), a real Dovecot behind mailgated, and the master-user login (whose
password is in no process forked by the master before PAM accepted a user,
as a search of their memory shows).

Run: python3 tests/integration/test_pam.py
(MG_MAILGATED=path/to/mailgated, MG_TEST=test_name, MG_KEEP=1).
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mgtest  # noqa: E402
from mgtest import ImapClient, Pop3Client, b64, sasl_plain  # noqa: E402



def pam_paths():
    """pam_wrapper's library, pam_matrix and libpam's module directory: from
    configure (make check exports them), or else from pkg-config, never a
    fixed path. A missing file fails the tests: PAM is part of the product."""
    lib = os.environ.get("MG_PAM_WRAPPER_LIB")
    matrix = os.environ.get("MG_PAM_MATRIX")
    modules = os.environ.get("MG_PAM_MODULE_DIR")
    if not (lib and matrix and modules):
        def pkg_config(*args):
            r = subprocess.run(["pkg-config"] + list(args), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, universal_newlines=True)
            return r.stdout.strip() if r.returncode == 0 else ""
        lib = pkg_config("--libs", "pam_wrapper")
        matrix = pkg_config("--variable=modules", "pam_wrapper") + "/pam_matrix.so"
        modules = pkg_config("--variable=libdir", "pam") + "/security"
    for path in (lib, matrix, modules + "/pam_exec.so", modules + "/pam_deny.so"):
        assert path.startswith("/") and os.path.exists(path), \
            "%r missing: install libpam-wrapper and libpam-modules (and re-run configure)" % path
    return lib, matrix, modules


# PAM's view (pam_matrix: user:password:the service its account step allows)
PAM_USERS = {
    "alice": ("alice-Pam-1", "mailgate"),
    "bob": ("bob-Pam-2", "mailgate"),
    "locked": ("locked-Pam-3", "another-service"),     # the account step refuses
    "slowpoke": ("slow-Pam-4", "mailgate"),
    "dora": ("dora-Pam-5", "mailgate"),
}
# Dovecot's view: the same passwords, except carol, whom PAM does not know
DOVECOT_USERS = {
    "alice": "alice-Pam-1",
    "bob": "bob-Pam-2",
    "locked": "locked-Pam-3",
    "slowpoke": "slow-Pam-4",
    "carol": "carol-only-in-dovecot",
    "dora": "dora-has-another-password-in-dovecot",
}
# test_no_password_in_logs: passwords that appear nowhere else, grepped for in every log
PAM_USERS["logcheck"] = ("Lc7-PAM-LOGCHECK-pw-52817", "mailgate")
DOVECOT_USERS["logcheck"] = PAM_USERS["logcheck"][0]
LOGCHECK_WRONG = "Wq3-PAM-LOGCHECK-wrong-39164"     # never valid
for i in range(20):
    PAM_USERS["user%02d" % i] = ("parallel-%02d" % i, "mailgate")
    DOVECOT_USERS["user%02d" % i] = "parallel-%02d" % i

MASTER_USER = "mgmaster"
MASTER_PASSWORD = "Master-Secret-9"


class _Env:
    pass


_env = None


def pam_environment(td):
    """Service files and the environment that make mailgated's PAM calls go
    to pam_matrix (pam_wrapper), with the sanitizers' known quirks."""
    pam_wrapper_lib, pam_matrix, pam_modules = pam_paths()
    d = td.mkdir("pam")
    services = os.path.join(d, "services")
    os.makedirs(services, exist_ok=True)
    passdb = os.path.join(d, "passdb")
    with open(passdb, "w") as f:
        for user, (password, service) in PAM_USERS.items():
            f.write("%s:%s:%s\n" % (user, password, service))
    slow = os.path.join(d, "slow.sh")
    with open(slow, "w") as f:
        f.write('#!/bin/sh\ncase "$PAM_USER" in slow*) exec /bin/sleep 30 ;; esac\nexit 0\n')
    os.chmod(slow, 0o755)
    with open(os.path.join(services, "other"), "w") as f:
        f.write("auth required %s/pam_deny.so\naccount required %s/pam_deny.so\n"
                % (pam_modules, pam_modules))
    with open(os.path.join(services, "mailgate"), "w") as f:
        f.write("auth requisite %s/pam_exec.so quiet %s\n" % (pam_modules, slow))
        f.write("auth required %s passdb=%s\n" % (pam_matrix, passdb))
        f.write("account required %s passdb=%s\n" % (pam_matrix, passdb))
    supp = os.path.join(d, "lsan.supp")
    with open(supp, "w") as f:
        f.write("leak:libpam_wrapper.so\n")
    preload = pam_wrapper_lib
    if os.environ.get("LD_PRELOAD"):
        preload += ":" + os.environ["LD_PRELOAD"]
    asan = os.environ.get("ASAN_OPTIONS", "")
    lsan = os.environ.get("LSAN_OPTIONS", "")
    return {
        "LD_PRELOAD": preload,
        "PAM_WRAPPER": "1",
        "PAM_WRAPPER_SERVICE_DIR": services,
        # RTLD_DEEPBIND (pam_wrapper's default) and the sanitizers do not mix
        "PAM_WRAPPER_DISABLE_DEEPBIND": "1",
        "UID_WRAPPER_DISABLE_DEEPBIND": "1",
        "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0",
        "LSAN_OPTIONS": (lsan + ":" if lsan else "") + "suppressions=%s" % supp,
    }


def env():
    global _env
    if _env is not None:
        return _env
    e = _Env()
    e.td = mgtest.TestDir()
    e.certs = mgtest.Certs(e.td.join("certs"))
    masters = e.td.join("dovecot-masters")
    with open(masters, "w") as f:
        f.write("%s:{PLAIN}%s\n" % (MASTER_USER, MASTER_PASSWORD))
    os.chmod(masters, 0o644)
    e.dovecot = mgtest.Dovecot(
        e.td, e.certs, users=DOVECOT_USERS, start=False,
        extra_conf="passdb {\n  driver = passwd-file\n  master = yes\n"
                   "  args = scheme=PLAIN %s\n}\n" % masters)
    for user in DOVECOT_USERS:
        e.dovecot.deliver(user, b"From: a@example.org\r\nSubject: pam test\r\n\r\nhello\r\n")
    e.dovecot.start()
    e.pam_env = pam_environment(e.td)
    e.master_file = e.td.join("master.cred")
    with open(e.master_file, "w") as f:
        f.write("username=%s\npassword=%s\n" % (MASTER_USER, MASTER_PASSWORD))
    os.chmod(e.master_file, 0o600)
    e.mg = mgtest.Mailgated(
        e.td, e.certs, name="mg-pam", env=e.pam_env,
        backends=[mgtest.backend_for(e.dovecot, "dovecot"),
                  mgtest.backend_for(e.dovecot, "dovecot_master", backend_login="master",
                                     master_user_file=e.master_file)],
        listeners=[mgtest.listener("imap", "starttls"),
                   mgtest.listener("imaps", "implicit"),
                   mgtest.listener("pop3s", "implicit", protocol="pop3"),
                   mgtest.listener("imaps_master", "implicit", backend="dovecot_master"),
                   mgtest.listener("imaps_plain", "implicit", auth="backend")],
        auth="pam", auth_workers=4, auth_timeout=10, max_auth_failures=5,
        max_connections_per_ip=100)
    _env = e
    return e


def secure(listener="imaps"):
    e = env()
    return ImapClient(e.mg.port(listener), implicit_tls=True, ca=e.certs.ca)


def pam_password(user):
    return PAM_USERS[user][0]


def dovecot_login_lines(user):
    return re.findall(r"imap-login: Info: (?:Login|Aborted login).*user=<%s>" % re.escape(user),
                      env().dovecot.log())


def auth_workers():
    e = env()
    return [pid for pid in mgtest.descendants_of(e.mg.pid)
            if mgtest.process_name(pid) == "mailgated-authw"]


def test_right_password_reaches_dovecot():
    with secure() as c:
        untagged, tagged = c.login("alice", pam_password("alice"), tag="a")
        assert tagged.startswith("a OK"), tagged
        untagged, tagged = c.command("s", "SELECT INBOX")
        assert tagged.startswith("s OK"), tagged
    assert dovecot_login_lines("alice"), "Dovecot never saw alice's login"


def test_wrong_password_never_reaches_the_backend():
    e = env()
    before = e.dovecot.log()
    with secure() as c:
        untagged, tagged = c.login("bob", "not-bobs-password", tag="a")
        assert tagged.startswith("a NO [AUTHENTICATIONFAILED]"), tagged
        # carol's Dovecot password is right, but PAM does not know her
        untagged, tagged = c.login("carol", DOVECOT_USERS["carol"], tag="b")
        assert tagged.startswith("b NO [AUTHENTICATIONFAILED]"), tagged
        untagged, tagged = c.login("bob", pam_password("bob"), tag="c")
        assert tagged.startswith("c OK"), tagged
    e.mg.wait_log(r'login failed: rip=\S+ .*user="bob" auth=pam result=auth-failed')
    new = e.dovecot.log()[len(before):]
    assert "user=<carol>" not in new, "carol's credentials reached Dovecot:\n" + new
    assert len(re.findall(r"Login: user=<bob>", new)) == 1, new


def test_account_step_refusal():
    e = env()
    with secure() as c:
        untagged, tagged = c.login("locked", pam_password("locked"), tag="a")
        assert tagged.startswith("a NO [AUTHENTICATIONFAILED]"), tagged
    e.mg.wait_log(r'login failed: rip=\S+ .*user="locked" auth=pam result=account-refused '
                  r'reason=acct_mgmt')
    assert not dovecot_login_lines("locked")


def test_pop3_with_pam():
    e = env()
    with Pop3Client(e.mg.port("pop3s"), implicit_tls=True, ca=e.certs.ca) as c:
        assert c.user_pass("bob", "wrong").startswith("-ERR [AUTH]")
        assert c.user_pass("bob", pam_password("bob")).startswith("+OK")
        assert c.command("STAT").startswith("+OK 1 ")


def test_twenty_parallel_logins():
    results = {}

    def one(i):
        user = "user%02d" % i
        try:
            with secure() as c:
                untagged, tagged = c.login(user, pam_password(user), tag="a")
                results[user] = tagged
        except Exception as ex:     # noqa: BLE001 - reported below
            results[user] = repr(ex)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    bad = {u: r for u, r in results.items() if not r.startswith("a OK")}
    assert len(results) == 20 and not bad, "answers: %r" % bad
    print("  20 parallel PAM logins in %.2f s" % (time.monotonic() - t0))


def test_worker_killed_during_login_gives_temporary_failure():
    e = env()
    with secure() as c:
        c.send("a LOGIN slowpoke %s\r\n" % pam_password("slowpoke"))
        # the worker now sits in pam_exec's sleep: kill that worker
        def busy_workers():
            return [w for w in auth_workers()
                    if any(mgtest.process_name(k) == "sleep" for k in mgtest.descendants_of(w))]
        busy = mgtest.wait_until(busy_workers, 10, what="a worker busy in the slow PAM call")
        for pid in busy:
            os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        untagged, tagged = c.read_response("a", timeout=10)
        assert tagged.startswith("a NO [UNAVAILABLE]"), tagged
        assert time.monotonic() - t0 < 5, "the temporary failure took too long"
        # the supervisor restarts the workers: the next login works
        untagged, tagged = c.login("alice", pam_password("alice"), tag="b")
        assert tagged.startswith("b OK"), tagged
    e.mg.wait_log(r'login unavailable: .*user="slowpoke" auth=pam reason=auth-worker-died')


def test_master_user_login():
    e = env()
    # dora's PAM password is not her Dovecot password: only a master-user
    # login on her behalf, after PAM accepted her, can open her mailbox
    with secure("imaps_master") as c:
        untagged, tagged = c.login("dora", pam_password("dora"), tag="a")
        assert tagged.startswith("a OK"), tagged
        untagged, tagged = c.command("s", "SELECT INBOX")
        assert tagged.startswith("s OK"), tagged
    mgtest.wait_until(lambda: "Master user logging in as dora" in e.dovecot.log(), 5,
                      what="Dovecot's master-user login line")
    # the same password through a passthrough listener fails at Dovecot
    with secure("imaps_plain") as c:
        untagged, tagged = c.login("dora", pam_password("dora"), tag="a")
        assert tagged.startswith("a NO"), tagged


def test_master_password_only_in_memory_after_pam():
    """The master process never keeps the master user's password, so a
    session child (forked from it) for a master-login route does not hold it
    while it waits for the login; the auth process reads the file only for a
    login that PAM accepted and wipes it again. The login still works."""
    e = env()
    needles = {
        "password": MASTER_PASSWORD.encode(),
        # positive control: the configuration both processes hold names the file
        "file-path": e.master_file.encode(),
    }
    e.mg.wait_no_children()
    with secure("imaps_master") as c:
        kids = mgtest.wait_until(
            lambda: [p for p in e.mg.session_children(zombies=False)
                     if mgtest.process_name(p) == "mailgated-login"], 5,
            what="the session child")
        assert len(kids) == 1, "one connection, session children %r" % kids
        child = kids[0]
        in_child = mgtest.memory_search(child, needles)
        in_master = mgtest.memory_search(e.mg.pid, needles)
        supervisors = [p for p in mgtest.children_of(e.mg.pid)
                       if mgtest.process_name(p) == "mailgated-authd"]
        assert len(supervisors) == 1, supervisors
        in_supervisor = mgtest.memory_search(supervisors[0], needles)
        assert c.is_open(0.05), "the connection closed while we looked"
        assert in_child["file-path"] and in_master["file-path"], \
            "the search missed the master_user_file path (child %r, master %r)" \
            % (in_child["file-path"], in_master["file-path"])
        assert not in_child["password"], \
            "the session child holds the master password before login: %r" % in_child
        assert not in_master["password"], \
            "the master process holds the master password: %r" % in_master
        assert not in_supervisor["password"], \
            "the auth supervisor holds the master password: %r" % in_supervisor

        # now log in through that same child: PAM, then the master login
        untagged, tagged = c.login("dora", pam_password("dora"), tag="a")
        assert tagged.startswith("a OK"), tagged
        untagged, tagged = c.command("s", "SELECT INBOX")
        assert tagged.startswith("s OK"), tagged
    mgtest.wait_until(lambda: len(re.findall("Master user logging in as dora",
                                             e.dovecot.log())) >= 1, 5,
                      what="Dovecot's master-user login line")
    e.mg.wait_log(r'auth check pid=%d user="dora" .*master_backend=dovecot_master result=ok'
                  % child)
    # the worker that read the file and answered wiped every copy
    for pid in auth_workers():
        found = mgtest.memory_search(pid, {"password": MASTER_PASSWORD.encode()})
        assert not found["password"], \
            "auth worker %d still holds the master password: %r" % (pid, found)
    assert not mgtest.memory_search(e.mg.pid, needles)["password"], \
        "the master process holds the master password after the login"


def test_reload_changing_auth_limits_needs_restart():
    """What the auth process enforces for sessions (the per-session request
    cap, the master-login files) is fixed at its start, like pam_service."""
    e = env()
    copy = e.td.join("master-copy.cred")
    with open(copy, "w") as f:
        f.write("username=%s\npassword=%s\n" % (MASTER_USER, MASTER_PASSWORD))
    os.chmod(copy, 0o600)
    master_backend = [b for b in e.mg.backends if b["name"] == "dovecot_master"][0]
    try:
        mark = len(e.mg.log())
        e.mg.settings["max_auth_failures"] = 6
        e.mg.write_config()
        e.mg.reload()
        e.mg.wait_log(r"reload failed, keeping the running configuration: max_auth_failures "
                      r"changed while PAM is in use; that needs a restart", start=mark)
        e.mg.settings["max_auth_failures"] = 5

        mark = len(e.mg.log())
        master_backend["master_user_file"] = copy
        e.mg.write_config()
        e.mg.reload()
        e.mg.wait_log(r"reload failed, keeping the running configuration: the backends with "
                      r"backend_login = master or their master_user_file changed while PAM "
                      r"is in use; that needs a restart", start=mark)
    finally:
        e.mg.settings["max_auth_failures"] = 5
        master_backend["master_user_file"] = e.master_file
        e.mg.write_config()
    mark = len(e.mg.log())
    e.mg.reload()
    e.mg.wait_log(r"reload done", start=mark, timeout=15)
    with secure("imaps_master") as c:
        untagged, tagged = c.login("dora", pam_password("dora"), tag="a")
        assert tagged.startswith("a OK"), tagged


def test_master_backend_reachable_without_pam_is_warned():
    # the imaps_plain listener (auth = backend) could route to the master backend
    env().mg.wait_log(r"backend 'dovecot_master': backend_login = master, but some logins "
                      r"do not use auth = pam")


def test_master_file_mode_refused_by_config_check():
    e = env()
    loose = e.td.join("master-loose.cred")
    with open(loose, "w") as f:
        f.write("username=%s\npassword=%s\n" % (MASTER_USER, MASTER_PASSWORD))
    os.chmod(loose, 0o644)
    path = e.td.join("loose.conf")
    text = e.mg.config_text().replace(e.master_file, loose)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    r = e.mg.check(path)
    assert r.returncode != 0, r.stdout
    assert "master_user_file" in r.stderr and "readable or writable by others" in r.stderr, r.stderr
    assert MASTER_PASSWORD not in r.stderr + r.stdout


def test_backend_auth_listener_skips_pam():
    # carol is unknown to PAM; on a listener with auth = backend Dovecot decides
    with secure("imaps_plain") as c:
        untagged, tagged = c.login("carol", DOVECOT_USERS["carol"], tag="a")
        assert tagged.startswith("a OK"), tagged


def every_log():
    """(path, text) of every log this run's processes wrote: the gateway's,
    Dovecot's (and its stderr), anything else named *.log under the test dir."""
    e = env()
    logs = []
    for root, _dirs, files in os.walk(e.td.path):
        for name in files:
            if name.endswith((".log", ".stderr")):
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    logs.append((path, f.read().decode("latin-1")))
    return logs


def test_no_password_in_logs():
    """Logins of its own (right and wrong, IMAP and POP3, LOGIN/USER-PASS and
    AUTHENTICATE/AUTH PLAIN with and without an initial response, and the
    master-user route), then every form of every password is searched for
    in every log."""
    e = env()
    user, pw = "logcheck", pam_password("logcheck")
    wrong = LOGCHECK_WRONG
    with secure() as c:
        assert c.login(user, wrong, tag="a")[1].startswith("a NO [AUTHENTICATIONFAILED]")
        tagged = c.command("b", "AUTHENTICATE PLAIN " + sasl_plain(user, wrong))[1]
        assert tagged.startswith("b NO [AUTHENTICATIONFAILED]"), tagged
        assert c.login(user, pw, tag="c")[1].startswith("c OK")
    with secure() as c:
        c.send("a AUTHENTICATE PLAIN\r\n")
        assert c.readline().startswith("+"), "no continuation for AUTHENTICATE PLAIN"
        c.send(sasl_plain(user, pw) + "\r\n")
        assert c.read_response("a")[1].startswith("a OK")
    with secure("imaps_master") as c:
        assert c.login(user, pw, tag="a")[1].startswith("a OK")
    with Pop3Client(e.mg.port("pop3s"), implicit_tls=True, ca=e.certs.ca) as c:
        assert c.user_pass(user, wrong).startswith("-ERR [AUTH]")
        assert c.command("AUTH PLAIN " + sasl_plain(user, wrong)).startswith("-ERR [AUTH]")
        assert c.command("AUTH PLAIN " + sasl_plain(user, pw)).startswith("+OK")
    with Pop3Client(e.mg.port("pop3s"), implicit_tls=True, ca=e.certs.ca) as c:
        assert c.command("AUTH PLAIN").startswith("+")
        assert c.command(sasl_plain(user, pw)).startswith("+OK")
        assert c.command("QUIT").startswith("+OK")
    with Pop3Client(e.mg.port("pop3s"), implicit_tls=True, ca=e.certs.ca) as c:
        assert c.user_pass(user, pw).startswith("+OK")
    # every login above reached the log: the search below has something to search
    def logged(kind):
        return [l for l in e.mg.log().splitlines() if kind in l and 'user="%s" ' % user in l]
    mgtest.wait_until(lambda: len(logged("login failed")) >= 4 and len(logged("login ok")) >= 6,
                      10, what="the 4 failed and 6 good logins of %s in the log" % user)

    forbidden = {MASTER_PASSWORD, wrong, b64(wrong), sasl_plain(user, wrong),
                 mgtest.b64("%s\0%s\0%s" % (user, MASTER_USER, MASTER_PASSWORD))}
    for password, _service in PAM_USERS.values():
        forbidden |= {password, b64(password)}
    forbidden |= {sasl_plain(user, pw)}
    logs = every_log()
    names = [os.path.basename(path) for path, _text in logs]
    assert "mailgated.log" in names and "dovecot.log" in names, names
    for path, text in logs:
        for secret in sorted(forbidden):
            assert secret not in text, "a password (%r) appears in %s" % (secret, path)


if __name__ == "__main__":
    sys.exit(mgtest.run_tests(globals()))
