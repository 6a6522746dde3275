"""mgtest - helpers for mailgate's integration tests and demo.

Standard library only, plus the external programs openssl, curl and Debian's
dovecot. Everything a test starts lives in one temporary directory
(TestDir) and is stopped when the process exits.

What is here:
  TestDir          a private directory, removed at exit unless MG_KEEP=1
  free_port()      a free TCP port on 127.0.0.1
  Certs            a throwaway CA and certificates made with the openssl CLI
  Dovecot          a private Dovecot (IMAP + POP3, plain and implicit TLS)
  Mailgated        mailgated in the foreground with a generated mailgate.conf
  ImapClient       a raw, line-oriented IMAP client (STARTTLS, literals, ...)
  curl(), s_client()   the real clients
  run_tests()      a tiny runner: test_* functions, PASS/FAIL lines, summary

Environment:
  MG_MAILGATED   the mailgated binary (default ../../gateway/mailgated)
  MG_KEEP=1      keep the test directory (its path is printed)
  MG_TEST=name   run only this test (comma-separated names allowed)
  MG_TEST_TIMEOUT  seconds one test may take (default 90)
  MG_DOVECOT     the dovecot binary (default: dovecot on PATH or /usr/sbin)
"""

import atexit
import base64
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"

# ---------------------------------------------------------------------------
# cleanup registry: everything started is stopped at exit, last started first
# ---------------------------------------------------------------------------

_cleanups = []
_live = []          # running Dovecot/Mailgated objects, for failure reports


def add_cleanup(fn):
    """Run fn() at exit (or in cleanup()), in reverse order of registration."""
    _cleanups.append(fn)


def cleanup():
    """Run every registered cleanup now. Returns a list of error texts."""
    errors = []
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except BaseException:   # noqa: B036 - report everything, go on
            errors.append(traceback.format_exc())
    return errors


def _atexit_cleanup():
    for err in cleanup():
        sys.stderr.write("mgtest: cleanup error:\n" + err)


atexit.register(_atexit_cleanup)


def _sigterm_to_exit(signum, frame):
    raise SystemExit(128 + signum)


def install_signal_handlers():
    """Turn SIGTERM/SIGHUP into SystemExit so the cleanups run."""
    signal.signal(signal.SIGTERM, _sigterm_to_exit)
    signal.signal(signal.SIGHUP, _sigterm_to_exit)


# ---------------------------------------------------------------------------
# small utilities
# ---------------------------------------------------------------------------

def wait_until(predicate, timeout, interval=0.02, what="condition"):
    """Poll predicate() until it returns a true value or the deadline passes.
    Returns the value; raises AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s"
                                 % (timeout, what))
        time.sleep(interval)


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def tail(text, lines=40):
    return "\n".join(text.splitlines()[-lines:])


def find_program(name, env=None, extra_dirs=("/usr/sbin", "/sbin")):
    if env and os.environ.get(env):
        return os.environ[env]
    path = shutil.which(name)
    if path:
        return path
    for d in extra_dirs:
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    raise RuntimeError("%s not found (install it%s)"
                       % (name, " or set " + env if env else ""))


def proc_status(pid):
    """Parsed /proc/PID/status as a dict, or None if the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    st = proc_status(pid)
    return st is not None and not st.get("State", "").startswith(("Z", "X"))


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def process_name(pid):
    """The kernel's short name of a process (/proc/PID/comm), or ""."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def children_of(ppid, zombies=False):
    """Processes whose parent is ppid; zombies (exited, not yet reaped)
    only if zombies=True."""
    out = []
    for pid in all_pids():
        st = proc_status(pid)
        if st and st.get("PPid") == str(ppid) and \
                (zombies or not st.get("State", "").startswith(("Z", "X"))):
            out.append(pid)
    return sorted(out)


def descendants_of(ppid):
    """All live descendants of ppid."""
    parent = {}
    for pid in all_pids():
        st = proc_status(pid)
        if st and not st.get("State", "").startswith(("Z", "X")):
            try:
                parent[pid] = int(st.get("PPid", "0"))
            except ValueError:
                pass
    out, todo = [], [ppid]
    while todo:
        p = todo.pop()
        for pid, pp in parent.items():
            if pp == p:
                out.append(pid)
                todo.append(pid)
    return sorted(out)


def process_group(pgid):
    """Live processes in process group pgid (our daemons are started as
    session leaders, so this finds even children that lost their parent)."""
    out = []
    for pid in all_pids():
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields: state ppid pgrp ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            out.append(pid)
    return sorted(out)


def wait_pids_gone(pids, timeout):
    """Wait until none of pids is alive; returns the ones still alive."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in pids if pid_alive(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)


def kill_pids(pids, sig=signal.SIGKILL):
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def mail_account():
    """(user, uid, group, gid) of the unprivileged account used by Dovecot
    for mail files and by mailgated after dropping privileges."""
    pw = pwd.getpwnam("nobody")
    try:
        gr = grp.getgrnam("nogroup")
    except KeyError:
        gr = grp.getgrgid(pw.pw_gid)
    return pw.pw_name, pw.pw_uid, gr.gr_name, gr.gr_gid


SESSION_USER = "mailgate-session"


def ensure_session_user(name=SESSION_USER):
    """mailgated's session children run as their own user that owns nothing
    (like Dovecot's dovenull); create it when missing (tests run as root)."""
    try:
        pwd.getpwnam(name)
        return name
    except KeyError:
        pass
    run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", "--user-group", name])
    pwd.getpwnam(name)
    return name


def b64(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def sasl_plain(user, password, authzid=""):
    return b64("%s\0%s\0%s" % (authzid, user, password))


def imap_quote(s):
    """An IMAP quoted string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------------------
# test directory and ports
# ---------------------------------------------------------------------------

class TestDir:
    """A private directory for one test run. Traversable by everybody
    (mailgated and Dovecot drop privileges). Removed at exit unless MG_KEEP=1
    or keep=True. With path=..., that directory is used (emptied first)."""

    __test__ = False
    MARKER = ".mgtest-dir"

    def __init__(self, prefix="mgtest-", path=None, keep=None):
        if path:
            path = os.path.abspath(path)
            if os.path.isdir(path) and os.listdir(path):
                if not os.path.exists(os.path.join(path, self.MARKER)):
                    raise RuntimeError("%s exists and was not made by mgtest; not emptying it"
                                       % path)
                shutil.rmtree(path)
            os.makedirs(path, exist_ok=True)
            self.path = path
        else:
            self.path = tempfile.mkdtemp(prefix=prefix)
        with open(os.path.join(self.path, self.MARKER), "w") as f:
            f.write("made by tests/integration/mgtest.py; may be removed\n")
        os.chmod(self.path, 0o755)
        if keep is None:
            keep = os.environ.get("MG_KEEP") == "1"
        self.keep = keep
        add_cleanup(self.remove)

    def __str__(self):
        return self.path

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def mkdir(self, *parts, mode=0o755):
        p = self.join(*parts)
        os.makedirs(p, exist_ok=True)
        os.chmod(p, mode)
        return p

    def write(self, name, data, mode=0o644):
        p = self.join(name)
        if isinstance(data, str):
            data = data.encode("utf-8")
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)
        return p

    def remove(self):
        if self.keep:
            sys.stderr.write("mgtest: files kept in %s\n" % self.path)
            return
        shutil.rmtree(self.path, ignore_errors=True)


_ports_given = set()


def _port_free(port, host=HOST):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port(start=None, host=HOST):
    """A TCP port nobody listens on. start=None: one from the kernel;
    start=N: the first free port >= N (used by the demo for 20000+).
    A port is never handed out twice by one process."""
    if start is None:
        for _ in range(100):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            port = s.getsockname()[1]
            s.close()
            if port not in _ports_given:
                _ports_given.add(port)
                return port
        raise RuntimeError("no free port")
    for port in range(start, 65536):
        if port not in _ports_given and _port_free(port, host):
            _ports_given.add(port)
            return port
    raise RuntimeError("no free port from %d" % start)


def _tcp_sockets():
    """(local port, state, rx queue) of every TCP socket, IPv4 and IPv6,
    from /proc/net/tcp and tcp6."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            yield (int(fields[1].rsplit(":", 1)[1], 16), fields[3],
                   int(fields[4].split(":")[1], 16))


def accept_queue(port):
    """Connections waiting in the accept queue of the listening TCP sockets on
    port (the rx_queue of LISTEN sockets)."""
    return sum(rx for local, state, rx in _tcp_sockets() if state == "0A" and local == port)


# Server-side TCP states of a connection the gateway has not closed yet.
_OPEN_STATES = ("01", "08")     # ESTABLISHED, CLOSE_WAIT


def open_connections(ports, states=_OPEN_STATES):
    """Accepted connections on these local ports that the server side has not
    closed yet (by default ESTABLISHED or CLOSE_WAIT)."""
    ports = set(ports)
    return sum(1 for local, state, rx in _tcp_sockets() if state in states and local in ports)


def open_connection_peers(ports, states=_OPEN_STATES):
    """(remote port, state) of each connection open_connections counts."""
    ports = set(ports)
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] in states and local in ports:
                found.append((int(fields[2].rsplit(":", 1)[1], 16),
                              "ESTABLISHED" if fields[3] == "01" else "CLOSE_WAIT"))
    return found


def port_accepts(port, host=HOST, timeout=0.5):
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return False
    s.close()
    return True


# ---------------------------------------------------------------------------
# certificates
# ---------------------------------------------------------------------------

def run(cmd, timeout=60, check=True, **kw):
    """subprocess.run with a timeout, captured output, and an error that
    shows the command's stderr."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("stdin", subprocess.DEVNULL)
    r = subprocess.run(cmd, timeout=timeout, **kw)
    if check and r.returncode != 0:
        err = r.stderr.decode("utf-8", "replace") if isinstance(r.stderr, bytes) else r.stderr
        raise RuntimeError("command failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), err))
    return r


_OPENSSL_CNF = """\
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused

[ ca ]
default_ca = testca
[ testca ]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}/newcerts
serial = {dir}/serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
[ policy_any ]
commonName = supplied
"""


def cert_serial(path):
    """The serial number of a PEM certificate file, as openssl prints it."""
    r = run([find_program("openssl"), "x509", "-in", path, "-noout", "-serial"])
    out = r.stdout if isinstance(r.stdout, str) else r.stdout.decode()
    return out.strip().split("=", 1)[1].upper()


def _asn1_time(t):
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(t))


class Certs:
    """A throwaway CA (ECDSA P-256) and certificates it signs, made with the
    openssl CLI. All files are readable by everybody (tests only).

    certs.ca             CA certificate (PEM)
    certs.cert/.key      server certificate for DNS:localhost + IP:127.0.0.1
    certs.issue(name, ...)   another one, e.g. expired
    """

    def __init__(self, directory, cn="localhost"):
        self.dir = directory
        os.makedirs(os.path.join(directory, "newcerts"), exist_ok=True)
        os.chmod(directory, 0o755)
        self.cnf = os.path.join(directory, "openssl.cnf")
        with open(self.cnf, "w") as f:
            f.write(_OPENSSL_CNF.format(dir=directory))
        with open(os.path.join(directory, "index.txt"), "w"):
            pass
        with open(os.path.join(directory, "serial"), "w") as f:
            f.write("%s\n" % secrets.token_hex(8).upper())
        self.openssl = find_program("openssl")
        self.ca_key = self._genkey("ca-key.pem")
        self.ca = os.path.join(directory, "ca.pem")
        run([self.openssl, "req", "-config", self.cnf, "-new", "-x509",
             "-key", self.ca_key, "-out", self.ca, "-days", "3650",
             "-subj", "/CN=mailgate test CA %s" % secrets.token_hex(4),
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash"])
        os.chmod(self.ca, 0o644)
        self.cert, self.key = self.issue("server", cn=cn)

    def _genkey(self, name, key_type="ec"):
        path = os.path.join(self.dir, name)
        if key_type == "rsa":
            run([self.openssl, "genpkey", "-algorithm", "RSA",
                 "-pkeyopt", "rsa_keygen_bits:2048", "-out", path])
        else:
            run([self.openssl, "genpkey", "-algorithm", "EC",
                 "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path])
        os.chmod(path, 0o644)   # tests only: the daemon re-reads it unprivileged
        return path

    def issue(self, name, cn="localhost", dns=("localhost",), ips=("127.0.0.1",),
              not_before=None, not_after=None, days=365, key_type="ec"):
        """Issue a server certificate; returns (cert_path, key_path).
        not_before/not_after are Unix times (e.g. in the past for an expired
        certificate); default now-1h .. now+days. key_type: "ec" (P-256) or
        "rsa" (2048 bits)."""
        now = time.time()
        if not_before is None:
            not_before = now - 3600
        if not_after is None:
            not_after = now + days * 86400
        key = self._genkey(name + "-key.pem", key_type)
        csr = os.path.join(self.dir, name + ".csr")
        cert = os.path.join(self.dir, name + ".pem")
        ext = os.path.join(self.dir, name + ".ext")
        alt = ["DNS:%s" % d for d in dns] + ["IP:%s" % i for i in ips]
        with open(ext, "w") as f:
            f.write("[ server ]\n"
                    "basicConstraints = critical,CA:FALSE\n"
                    "keyUsage = critical,digitalSignature\n"
                    "extendedKeyUsage = serverAuth\n"
                    "subjectKeyIdentifier = hash\n"
                    "authorityKeyIdentifier = keyid,issuer\n"
                    + ("subjectAltName = %s\n" % ",".join(alt) if alt else ""))
        run([self.openssl, "req", "-config", self.cnf, "-new", "-key", key,
             "-subj", "/CN=%s" % cn, "-out", csr])
        run([self.openssl, "ca", "-config", self.cnf, "-batch", "-notext",
             "-cert", self.ca, "-keyfile", self.ca_key, "-in", csr, "-out", cert,
             "-startdate", _asn1_time(not_before), "-enddate", _asn1_time(not_after),
             "-extfile", ext, "-extensions", "server"])
        os.chmod(cert, 0o644)
        return cert, key

    def expired(self, name="expired"):
        now = time.time()
        return self.issue(name, not_before=now - 10 * 86400, not_after=now - 86400)

    def dh_params(self):
        """DH parameters for Dovecot's ssl_dh: Debian's shipped file, else
        the RFC 7919 ffdhe2048 group (instant, unlike openssl dhparam)."""
        if os.path.exists("/usr/share/dovecot/dh.pem"):
            return "/usr/share/dovecot/dh.pem"
        path = os.path.join(self.dir, "dh.pem")
        if not os.path.exists(path):
            run([self.openssl, "genpkey", "-genparam", "-algorithm", "DH",
                 "-pkeyopt", "dh_param:ffdhe2048", "-out", path])
            os.chmod(path, 0o644)
        return path


# ---------------------------------------------------------------------------
# Dovecot
# ---------------------------------------------------------------------------

_DOVECOT_CONF = """\
# private Dovecot for mailgate tests (generated by mgtest.py)
instance_name = {instance}
base_dir = {base_dir}
state_dir = {state_dir}
log_path = {log}
info_log_path = {log}
debug_log_path = {log}
listen = 127.0.0.1
protocols = imap pop3
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_dh = <{dh}
disable_plaintext_auth = {disable_plaintext_auth}
auth_mechanisms = plain login
auth_failure_delay = {auth_failure_delay}
auth_verbose = yes
verbose_proctitle = yes
mail_location = maildir:~/Maildir
first_valid_uid = {uid}
first_valid_gid = {gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {users}
}}
protocol imap {{
  mail_max_userip_connections = 500
}}
protocol pop3 {{
  mail_max_userip_connections = 500
}}
service imap-login {{
  inet_listener imap {{
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = {imaps_port}
    ssl = yes
  }}
  service_count = 0
  process_limit = 10
  client_limit = 1000
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = {pop3s_port}
    ssl = yes
  }}
  service_count = 0
  process_limit = 10
  client_limit = 1000
}}
service imap {{
  process_limit = 1000
}}
service pop3 {{
  process_limit = 1000
}}
{penalty}
{extra}
"""

# Dovecot's auth penalty (anvil) delays every login from an IP that failed
# recently by 2..15 s. All gateway sessions come from 127.0.0.1, so one
# wrong-password test would slow down the rest. login_trusted_networks does
# not lift it in 2.3.19; an auth process that cannot reach the penalty
# socket simply disables the penalty (silently).
_NO_AUTH_PENALTY = """\
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
"""


class Dovecot:
    """A private Dovecot on 127.0.0.1: IMAP, IMAPS, POP3, POP3S on free ports.

    users: {name: password}; passwords are {PLAIN} in a passwd-file (no ':').
    Mail belongs to the 'nobody' account; homes are DIR/home/USER.
    """

    def __init__(self, td, certs, users=None, name="dovecot",
                 disable_plaintext_auth=True, auth_failure_delay=0,
                 ports=None, port_start=None, auth_penalty=False, extra_conf="",
                 start=True):
        self.td = td
        self.certs = certs
        self.name = name
        self.dir = td.mkdir(name)
        self.users = dict(users or {})
        for u, p in self.users.items():
            if ":" in u or ":" in p or "\n" in p:
                raise ValueError("passwd-file cannot hold %r" % ((u, p),))
        ports = dict(ports or {})
        for k in ("imap", "imaps", "pop3", "pop3s"):
            if k not in ports:
                ports[k] = free_port(port_start)
        self.imap_port = ports["imap"]
        self.imaps_port = ports["imaps"]
        self.pop3_port = ports["pop3"]
        self.pop3s_port = ports["pop3s"]
        self.mail_user, self.uid, self.mail_group, self.gid = mail_account()
        self.base_dir = os.path.join(self.dir, "run")
        self.state_dir = os.path.join(self.dir, "state")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.stderr_path = os.path.join(self.dir, "dovecot.stderr")
        self.conf_path = os.path.join(self.dir, "dovecot.conf")
        self.users_path = os.path.join(self.dir, "users")
        self.disable_plaintext_auth = disable_plaintext_auth
        self.auth_failure_delay = auth_failure_delay
        self.auth_penalty = auth_penalty
        self.extra_conf = extra_conf
        self.instance = "mgtest-%s-%s" % (name, secrets.token_hex(4))
        self.proc = None
        self._msgno = 0
        os.makedirs(self.state_dir, exist_ok=True)
        os.makedirs(os.path.join(self.dir, "home"), exist_ok=True)
        os.chmod(os.path.join(self.dir, "home"), 0o755)
        for u in self.users:
            self._make_home(u)
        self._write_users()
        self._write_conf()
        if start:
            self.start()

    # -- files --------------------------------------------------------------
    def home(self, user):
        return os.path.join(self.dir, "home", user)

    def maildir(self, user):
        return os.path.join(self.home(user), "Maildir")

    def _make_home(self, user):
        for d in (self.home(user), self.maildir(user)) + tuple(
                os.path.join(self.maildir(user), s) for s in ("cur", "new", "tmp")):
            os.makedirs(d, exist_ok=True)
            os.chown(d, self.uid, self.gid)
            os.chmod(d, 0o700)

    def _write_users(self):
        lines = ["%s:%s:%d:%d::%s::\n" % (u, p, self.uid, self.gid, self.home(u))
                 for u, p in self.users.items()]
        with open(self.users_path, "w") as f:
            f.write("".join(lines))
        os.chmod(self.users_path, 0o644)

    def add_user(self, user, password):
        """Add a user (passwd-file is re-read by Dovecot when it changes)."""
        self.users[user] = password
        self._make_home(user)
        self._write_users()

    def _write_conf(self):
        text = _DOVECOT_CONF.format(
            instance=self.instance, base_dir=self.base_dir, state_dir=self.state_dir,
            log=self.log_path, cert=self.certs.cert, key=self.certs.key,
            dh=self.certs.dh_params(),
            disable_plaintext_auth="yes" if self.disable_plaintext_auth else "no",
            auth_failure_delay=(self.auth_failure_delay if isinstance(self.auth_failure_delay, str)
                                else "%d secs" % self.auth_failure_delay),
            uid=self.uid, gid=self.gid, users=self.users_path,
            imap_port=self.imap_port, imaps_port=self.imaps_port,
            pop3_port=self.pop3_port, pop3s_port=self.pop3s_port,
            penalty="" if self.auth_penalty else _NO_AUTH_PENALTY,
            extra=self.extra_conf)
        with open(self.conf_path, "w") as f:
            f.write(text)
        os.chmod(self.conf_path, 0o644)

    def deliver(self, user, data):
        """Put a message file straight into USER's Maildir/new, byte for byte
        (CRLF or LF as given). Messages get UIDs in delivery order when the
        mailbox is next synced. Returns the file path."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._msgno += 1
        base = "%d.M%06dP%dQ%d.mgtest" % (int(time.time()), self._msgno,
                                          os.getpid(), self._msgno)
        tmp = os.path.join(self.maildir(user), "tmp", base)
        new = os.path.join(self.maildir(user), "new", base)
        with open(tmp, "wb") as f:
            f.write(data)
        os.chown(tmp, self.uid, self.gid)
        os.chmod(tmp, 0o600)
        os.rename(tmp, new)
        return new

    # -- process ------------------------------------------------------------
    def start(self, timeout=20):
        binary = find_program("dovecot", env="MG_DOVECOT")
        if os.geteuid() != 0:
            raise RuntimeError("the private Dovecot must be started as root")
        errf = open(self.stderr_path, "ab")
        # a session of its own: a terminal's Ctrl-C reaches only us, and we
        # stop it in order; its process group finds every process it made
        self.proc = subprocess.Popen([binary, "-F", "-c", self.conf_path],
                                     stdin=subprocess.DEVNULL, stdout=errf, stderr=errf,
                                     start_new_session=True)
        errf.close()
        add_cleanup(self.stop)
        _live.append(self)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("dovecot exited with %s during start:\n%s\n%s"
                                   % (self.proc.returncode, read_text(self.stderr_path),
                                      tail(self.log())))
            if self._greets():
                break
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError("dovecot did not greet within %d s:\n%s"
                                   % (timeout, tail(self.log())))
            time.sleep(0.05)
        for port in (self.imaps_port, self.pop3_port, self.pop3s_port):
            wait_until(lambda: port_accepts(port), deadline - time.monotonic(),
                       what="dovecot port %d" % port)
        return self

    def _greets(self):
        try:
            s = socket.create_connection((HOST, self.imap_port), timeout=2)
        except OSError:
            return False
        try:
            s.settimeout(2)
            data = b""
            while b"\n" not in data:
                chunk = s.recv(1024)
                if not chunk:
                    return False
                data += chunk
            return data.startswith(b"* OK")
        except OSError:
            return False
        finally:
            s.close()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15):
        """SIGTERM to the master; wait for it and every process it started."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if self in _live:
            _live.remove(self)
        kids = set(descendants_of(proc.pid)) | set(process_group(proc.pid))
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
                kill_pids(sorted(kids | set(process_group(proc.pid))))
                raise RuntimeError("dovecot did not stop within %d s" % timeout)
        # A login process that still has a client connected outlives the
        # master (seen with service_count = 0); it is ours, so end it.
        kids |= set(process_group(proc.pid))
        left = wait_pids_gone(sorted(kids), 3)
        if left:
            kill_pids(left)
            left = wait_pids_gone(left, 5)
            if left:
                raise RuntimeError("dovecot left processes behind: %s" % left)

    def log(self):
        return read_text(self.log_path) + read_text(self.stderr_path)

    def describe(self):
        return "--- %s log (%s) ---\n%s" % (self.name, self.log_path, tail(self.log(), 10))


# ---------------------------------------------------------------------------
# mailgated
# ---------------------------------------------------------------------------

class Bare(str):
    """A configuration value written without quotes (an enum word)."""


# values written bare (libconfuse enums / words); all other strings are quoted
_BARE_KEYS = {"log_level", "protocol", "tls"}


def _cfg_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cfg_value(key, value):
    if isinstance(value, Bare):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "{ " + ", ".join(_cfg_string(str(v)) for v in value) + " }"
    if key in _BARE_KEYS and re.fullmatch(r"[A-Za-z0-9_.]+", str(value)):
        return str(value)
    return _cfg_string(str(value))


def _cfg_section(kind, title, options, indent=""):
    lines = ["%s%s%s {" % (indent, kind, " " + title if title else "")]
    for k, v in options.items():
        if v is None or k == "name":
            continue
        lines.append("%s  %s = %s" % (indent, k, _cfg_value(k, v)))
    lines.append(indent + "}")
    return "\n".join(lines)


def listener(name, tls="starttls", port=None, protocol="imap", backend=None,
             address=(HOST,), **extra):
    """A listen section as a dict (port: a free one if not given)."""
    d = {"name": name, "protocol": protocol, "address": list(address),
         "port": port if port is not None else free_port(), "tls": tls}
    if backend is not None:
        d["backend"] = backend
    d.update(extra)
    return d


def backend(name, host=HOST, imap_port=None, pop3_port=None, tls="none", **extra):
    d = {"name": name, "host": host, "imap_port": imap_port, "pop3_port": pop3_port,
         "tls": tls}
    d.update(extra)
    return d


def backend_for(dovecot, name="dovecot", tls="none", **extra):
    """A backend section pointing at a private Dovecot (plain ports unless
    tls=implicit)."""
    if tls == "implicit":
        ports = dict(imap_port=dovecot.imaps_port, pop3_port=dovecot.pop3s_port)
    else:
        ports = dict(imap_port=dovecot.imap_port, pop3_port=dovecot.pop3_port)
    if tls != "none":
        extra.setdefault("ca_file", dovecot.certs.ca)
        extra.setdefault("verify", True)
        extra.setdefault("verify_name", "localhost")
    return backend(name, tls=tls, **ports, **extra)


def default_mailgated_binary():
    env = os.environ.get("MG_MAILGATED")
    if env:
        return env
    return os.path.normpath(os.path.join(HERE, "..", "..", "gateway", "mailgated"))


class Mailgated:
    """mailgated -f with a generated configuration.

    settings: global options (max_connections_per_ip=2, login_timeout=2, ...)
    backends: list of backend dicts (see backend(), backend_for())
    listeners: list of listener dicts (see listener()); default: "imap"
        (STARTTLS) and "imaps" (implicit TLS) on free ports
    tls: the tls section (default: certs.cert/certs.key, min TLSv1.2)
    extra: raw text appended to the file
    """

    DEFAULTS = {
        "log_level": "debug",
        "shutdown_grace": 2,
        "login_timeout": 30,
        "session_timeout": 300,
        "backend_connect_timeout": 5,
        "backend_timeout": 10,
        "auth_failure_delay": 0,
        # The tests fail logins from 127.0.0.1 all day: the penalty's delays
        # and bans (test_penalty.py turns them on) would slow and lock them out.
        "login_penalty": False,
        "ban_after": 0,
    }

    def __init__(self, td, certs, backends, listeners=None, name="mailgated",
                 tls=None, extra="", start=True, binary=None, env=None, **settings):
        self.td = td
        self.certs = certs
        self.name = name
        self.dir = td.mkdir(name)
        self.binary = binary or default_mailgated_binary()
        self.conf_path = os.path.join(self.dir, "mailgate.conf")
        self.log_path = os.path.join(self.dir, "mailgated.log")
        user, _, group, _ = mail_account()
        self.settings = {"user": user, "group": group,
                         "session_user": ensure_session_user(),
                         "session_chroot": td.mkdir(name, "empty"),
                         "pid_file": os.path.join(self.dir, "mailgated.pid")}
        self.settings.update(self.DEFAULTS)
        self.settings.update(settings)
        self.backends = [dict(b) for b in backends]
        if "default_backend" not in self.settings and self.backends:
            self.settings["default_backend"] = self.backends[0]["name"]
        if listeners is None:
            listeners = [listener("imap", "starttls"), listener("imaps", "implicit")]
        self.listeners = [dict(l) for l in listeners]
        # last_good_dir: private, not the system's /run/mailgate/last-good
        self.tls = {"certificate": certs.cert, "key": certs.key,
                    "min_protocol": "TLSv1.2",
                    "last_good_dir": os.path.join(self.dir, "last-good")}
        if tls:
            self.tls.update(tls)
        self.extra = extra
        self.env = env          # extra environment (e.g. pam_wrapper's)
        self.proc = None
        self.write_config()
        if start:
            self.start()

    # -- configuration ----------------------------------------------------
    def config_text(self):
        parts = ["# mailgate.conf generated by mgtest.py"]
        for k, v in self.settings.items():
            if v is not None:
                parts.append("%s = %s" % (k, _cfg_value(k, v)))
        parts.append(_cfg_section("tls", "", self.tls))
        for b in self.backends:
            parts.append(_cfg_section("backend", b["name"], b))
        for l in self.listeners:
            parts.append(_cfg_section("listen", l["name"], l))
        if self.extra:
            parts.append(self.extra)
        return "\n".join(parts) + "\n"

    def write_config(self, text=None):
        """(Re)write mailgate.conf from the current attributes, or the given
        text. Mode 0644: mailgated refuses group/world-writable files."""
        if text is None:
            text = self.config_text()
        tmp = self.conf_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.conf_path)
        return self.conf_path

    def listener(self, name):
        for l in self.listeners:
            if l["name"] == name:
                return l
        raise KeyError(name)

    def port(self, name):
        return self.listener(name)["port"]

    # -- process -------------------------------------------------------------
    def start(self, timeout=10):
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError("mailgated binary not found at %s (build it, or set MG_MAILGATED)"
                               % self.binary)
        logf = open(self.log_path, "ab")
        environ = dict(os.environ)
        environ.update(self.env or {})
        self.proc = subprocess.Popen([self.binary, "-f", "-c", self.conf_path],
                                     stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     start_new_session=True, env=environ)
        logf.close()
        add_cleanup(self.stop)
        _live.append(self)
        deadline = time.monotonic() + timeout
        probed = False
        for l in self.listeners:
            port = l["port"]
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError("mailgated exited with %s during start:\n%s"
                                       % (self.proc.returncode, tail(self.log())))
                if port_accepts(port, host=l.get("address", [HOST])[0]):
                    probed = True
                    break
                if time.monotonic() >= deadline:
                    raise RuntimeError("mailgated: port %d of listener %s not accepting "
                                       "within %d s:\n%s"
                                       % (port, l["name"], timeout, tail(self.log())))
                time.sleep(0.02)
        if probed:
            # The probes made sessions; let them end so that they do not
            # count against connection limits in the first test.
            self.wait_no_children(max(1.0, deadline - time.monotonic()))
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def children(self, zombies=True):
        """PIDs of the master's child processes: the TLS engines and the
        session children (pre-login). Exited children count until the master
        has reaped them; zombies=False leaves them out."""
        if not self.proc:
            return []
        # The PAM auth supervisor is a child too, but lives as long as the master.
        return [pid for pid in children_of(self.proc.pid, zombies)
                if not process_name(pid).startswith("mailgated-auth")]

    def engines(self):
        return [pid for pid in self.children(zombies=False)
                if process_name(pid) == "mailgated-tls"]

    def session_children(self, zombies=True):
        """Session children (one per connection before login), by name:
        neither engines nor the spares the master forks ahead."""
        return [pid for pid in self.children(zombies)
                if process_name(pid) not in ("mailgated-tls", "mailgated-spare")]

    def spares(self, zombies=False):
        """Session children forked ahead, still waiting for a session."""
        return [pid for pid in self.children(zombies)
                if process_name(pid) == "mailgated-spare"]

    def sessions(self):
        """Sessions the gateway still holds: client connections it has not
        closed (a logged-in session lives in an engine, not in a process of
        its own), and session children not yet reaped."""
        ports = [l["port"] for l in self.listeners]
        return max(open_connections(ports), len(self.session_children()))

    def wait_no_children(self, timeout=5):
        """Wait until no session is running and none is waiting to be
        accepted: a connection still in a listener's accept queue becomes a
        session (and counts against the limits) a moment later."""
        ports = [l["port"] for l in self.listeners]

        def idle():
            return (not self.session_children() and open_connections(ports) == 0
                    and all(accept_queue(p) == 0 for p in ports))

        def settled():
            # twice, a little apart: accept() and fork() may be between the looks
            if not idle():
                return False
            time.sleep(0.05)
            return idle()
        try:
            wait_until(settled, timeout, what="mailgated's sessions to end")
        except AssertionError as ex:
            # the state at the end of the wait, not at its start
            raise AssertionError("%s (still: session children %s, open connections %d, "
                                 "accept queues %s)%s"
                                 % (ex, self.session_children(), open_connections(ports),
                                    [accept_queue(p) for p in ports],
                                    self.describe_open(ports))) from None

    def describe_open(self, ports):
        """The log's story of each connection still open: the lines naming
        its client port, and those of the engine's conn id they name."""
        text = self.log()
        out = []
        for peer, state in open_connection_peers(ports):
            mine = [l for l in text.splitlines() if re.search(r":%d\b" % peer, l)]
            # conn ids count per engine: an engine's pid and id name a connection
            ids = set(re.findall(r"(mailgated\[\d+\]).*?conn=(\d+)\b", "\n".join(mine)))
            story = [l for l in text.splitlines()
                     if l in mine or any(p in l and re.search(r"conn=%s\b" % i, l)
                                         for p, i in ids)]
            out.append("\n--- open connection from port %d (%s) ---\n%s"
                       % (peer, state, "\n".join(story[-40:])))
        return "".join(out)

    def reload(self):
        """SIGHUP: re-read configuration and certificates."""
        self.proc.send_signal(signal.SIGHUP)

    def stop(self, timeout=None):
        """SIGTERM; wait for the master (shutdown_grace + 5 s by default)
        and for every child it had. Returns seconds it took."""
        if self.proc is None:
            return 0.0
        proc, self.proc = self.proc, None
        if self in _live:
            _live.remove(self)
        if timeout is None:
            timeout = int(self.settings.get("shutdown_grace", 10)) + 5
        kids = set(children_of(proc.pid, zombies=True)) | set(process_group(proc.pid))
        kids.discard(proc.pid)
        t0 = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
                kill_pids(sorted(kids | set(process_group(proc.pid))))
                raise AssertionError("mailgated did not exit within %s s of SIGTERM:\n%s"
                                     % (timeout, tail(self.log())))
        elapsed = time.monotonic() - t0
        kids |= set(process_group(proc.pid))
        left = wait_pids_gone(sorted(kids), 2)
        if left:
            kill_pids(left)
            raise AssertionError("mailgated left session processes behind: %s" % left)
        self.assert_no_crash_reports()
        return elapsed

    # What a sanitizer build, or the master reaping a crashed session, writes.
    CRASH_PATTERNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                      "died of signal", "exited with status")

    def assert_no_crash_reports(self):
        """A session child that crashes only shows in the log: read it."""
        found = [line for line in self.log().splitlines()
                 if any(p in line for p in self.CRASH_PATTERNS)]
        if found:
            raise AssertionError("%s log reports a crash:\n%s\n%s"
                                 % (self.name, "\n".join(found[:10]), tail(self.log(), 40)))

    def log(self):
        return read_text(self.log_path)

    def describe(self):
        return "--- %s log (%s) ---\n%s" % (self.name, self.log_path, tail(self.log(), 15))

    def wait_log(self, pattern, timeout=5, start=0):
        """Wait until the log (from character offset start) matches the
        regular expression; returns the match."""
        rx = re.compile(pattern)

        def found():
            return rx.search(self.log()[start:])
        return wait_until(found, timeout, what="log line matching %r in %s"
                          % (pattern, self.log_path))

    def session_end_line(self, port, timeout=10):
        """The engine's session end line of the client connection from
        127.0.0.1:port (waited for)."""
        rx = re.compile(r"session end client=127\.0\.0\.1:%d .*" % port)
        return wait_until(lambda: rx.search(self.log()), timeout,
                          what="the session end line of port %d" % port).group(0)

    def check(self, conf_path=None, timeout=15):
        """Run `mailgated -t -c FILE`; returns the CompletedProcess (text)."""
        return subprocess.run([self.binary, "-t", "-c", conf_path or self.conf_path],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout,
                              universal_newlines=True, errors="replace")


# ---------------------------------------------------------------------------
# raw IMAP client
# ---------------------------------------------------------------------------

class Closed(Exception):
    """The server closed the connection."""


class ImapClient:
    """A raw line-oriented IMAP client for things well-behaved clients never
    do. Lines are str (latin-1, so every byte maps to one character) with
    the CRLF stripped; send() takes str (latin-1) or bytes.

    c = ImapClient(port)                 # reads the greeting into c.greeting
    c = ImapClient(port, implicit_tls=True, ca=certs.ca)
    c = ImapClient(port, source="127.0.0.2")
    """

    def __init__(self, port, host=HOST, source=None, implicit_tls=False, ca=None,
                 timeout=10.0, greeting=True, alpn=None, server_hostname="localhost",
                 preamble=None):
        self.timeout = timeout
        self.ca = ca
        self.alpn = alpn
        self.server_hostname = server_hostname
        self.buf = b""
        self.tls = False
        self.received = []     # every line read, for failure messages
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                  socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source:
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        if preamble:            # e.g. a PROXY header, as a load balancer sends it
            self.send(preamble)
        if implicit_tls:
            self.wrap_tls()
        self.greeting = self.readline() if greeting else None

    # -- TLS ------------------------------------------------------------------
    def ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.check_hostname = True
        if self.alpn:
            ctx.set_alpn_protocols(list(self.alpn))
        return ctx

    def wrap_tls(self):
        """Run the TLS handshake on the socket now (after STARTTLS's OK)."""
        if self.buf:
            raise AssertionError("server sent data after STARTTLS's OK, before TLS: %r"
                                 % self.buf)
        if self.ca is None:
            raise ValueError("ImapClient needs ca= for TLS")
        self.sock.settimeout(self.timeout)
        self.sock = self.ssl_context().wrap_socket(self.sock,
                                                   server_hostname=self.server_hostname)
        self.tls = True

    def starttls(self, tag="S"):
        """STARTTLS; the tagged OK must come; then the handshake."""
        untagged, tagged = self.command(tag, "STARTTLS")
        if not tagged.startswith(tag + " OK"):
            raise AssertionError("STARTTLS refused: %r (untagged %r)" % (tagged, untagged))
        self.wrap_tls()
        return tagged

    def tls_version(self):
        return self.sock.version() if self.tls else None

    # -- I/O ------------------------------------------------------------------
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _recv(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline passed")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionResetError,
                BrokenPipeError):
            data = b""
        except ssl.SSLError as e:
            # a TLS alert from the peer while closing counts as closed
            if "alert" in str(e).lower() or "eof" in str(e).lower():
                data = b""
            else:
                raise
        if not data:
            raise Closed("connection closed by the server (unread: %r)" % self.buf)
        return data

    def readline(self, timeout=None):
        """One line without CRLF. Raises Closed at EOF, socket.timeout if
        no full line arrives in time."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self.buf:
            try:
                self.buf += self._recv(deadline)
            except socket.timeout:
                raise socket.timeout("no complete line within the deadline; have %r, "
                                     "lines so far %r" % (self.buf, self.received[-5:]))
        line, _, self.buf = self.buf.partition(b"\n")
        if line.endswith(b"\r"):
            line = line[:-1]
        text = line.decode("latin-1")
        self.received.append(text)
        return text

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while len(self.buf) < n:
            self.buf += self._recv(deadline)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, tag, timeout=None):
        """Lines up to the tagged response for tag (literals in untagged
        responses are read as part of their line). Returns (untagged, tagged):
        untagged is a list of lines (continuation '+' lines included)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        untagged = []
        while True:
            line = self.readline(max(0.01, deadline - time.monotonic()))
            m = re.search(r"\{(\d+)\}$", line)
            if m and not line.startswith(tag + " "):
                lit = self.read_exact(int(m.group(1)), max(0.01, deadline - time.monotonic()))
                line = line + "\r\n" + lit.decode("latin-1")
                line += self.readline(max(0.01, deadline - time.monotonic()))
            if line.startswith(tag + " "):
                return untagged, line
            untagged.append(line)

    def command(self, tag, text, timeout=None):
        """Send 'TAG TEXT\\r\\n' and read up to the tagged answer."""
        self.send("%s %s\r\n" % (tag, text))
        return self.read_response(tag, timeout)

    def login(self, user, password, tag="L"):
        return self.command(tag, "LOGIN %s %s" % (imap_quote(user), imap_quote(password)))

    def expect_closed(self, timeout=5.0):
        """Read until the server closes; returns the lines read meanwhile.
        AssertionError if it is still open after timeout seconds."""
        deadline = time.monotonic() + timeout
        lines = []
        while True:
            try:
                lines.append(self.readline(max(0.01, deadline - time.monotonic())))
            except Closed:
                if self.buf:
                    lines.append(self.buf.decode("latin-1"))
                    self.buf = b""
                return lines
            except socket.timeout:
                raise AssertionError("connection still open after %.1f s; read %r"
                                     % (timeout, lines))

    def is_open(self, timeout=0.2):
        """True if nothing (no EOF) arrives within timeout; data is kept."""
        deadline = time.monotonic() + timeout
        try:
            self.buf += self._recv(deadline)
        except socket.timeout:
            return True
        except Closed:
            return False
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Pop3Client(ImapClient):
    """The same raw client, speaking POP3: one-line and multi-line answers."""

    def command(self, text, timeout=None):
        """Send a command line; return the one-line answer."""
        self.send(text + "\r\n")
        return self.readline(timeout)

    def multiline(self, text, timeout=None):
        """Send a command; return (status line, body lines) for a +OK
        multi-line answer (dot-unstuffed), or (status line, []) for -ERR."""
        status = self.command(text, timeout)
        if not status.startswith("+OK"):
            return status, []
        body = []
        while True:
            line = self.readline(timeout)
            if line == ".":
                return status, body
            body.append(line[1:] if line.startswith("..") else line)

    def capa(self):
        status, body = self.multiline("CAPA")
        if not status.startswith("+OK"):
            raise AssertionError("CAPA failed: %r" % status)
        return body

    def stls(self):
        answer = self.command("STLS")
        if not answer.startswith("+OK"):
            raise AssertionError("STLS refused: %r" % answer)
        self.wrap_tls()
        return answer

    def user_pass(self, user, password):
        first = self.command("USER " + user)
        if not first.startswith("+OK"):
            return first
        return self.command("PASS " + password)


def send_hostile_inputs(ports, fragments, count, seed=20261122):
    """Open count connections, alternating over ports, and send each a
    reproducible mix of protocol fragments and random bytes, then hang up.
    Checks only that every connection is accepted: the caller then checks
    that the daemon still serves and logged no crash."""
    import random
    rng = random.Random(seed)
    for i in range(count):
        parts = []
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.3:
                parts.append(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))))
            else:
                parts.append(rng.choice(fragments))
        try:
            s = socket.create_connection((HOST, ports[i % len(ports)]), timeout=5)
        except OSError as ex:
            raise AssertionError("connection %d refused: %r" % (i, ex))
        try:
            s.sendall(b"".join(parts))
        except OSError:
            pass            # the server may close first: that is allowed
        finally:
            s.close()


# ---------------------------------------------------------------------------
# real clients
# ---------------------------------------------------------------------------

def curl(url, ca, user=None, password=None, ssl_reqd=True, extra=(), timeout=30):
    """Run curl; returns CompletedProcess with bytes stdout/stderr.
    Credentials go through -u (no URL encoding needed; tests only)."""
    cmd = [find_program("curl"), "-s", "-S", "--max-time", str(timeout),
           "--cacert", ca]
    if ssl_reqd:
        cmd.append("--ssl-reqd")
    if user is not None:
        cmd += ["-u", "%s:%s" % (user, password)]
    cmd += list(extra)
    cmd.append(url)
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout + 10)


def curl_fetch(scheme, port, ca, user, password, uid=1, mailbox="INBOX", **kw):
    """Fetch one message with curl (imap:// uses STARTTLS with --ssl-reqd).
    Returns the message bytes; AssertionError if curl fails."""
    if scheme.startswith("pop3"):
        url = "%s://%s:%d/%d" % (scheme, HOST, port, uid)     # RETR message number uid
    else:
        url = "%s://%s:%d/%s;UID=%d" % (scheme, HOST, port, mailbox, uid)
    r = curl(url, ca, user, password, **kw)
    if r.returncode != 0:
        raise AssertionError("curl %s failed (%d): %s" % (url, r.returncode,
                                                          r.stderr.decode("utf-8", "replace")))
    return r.stdout


def s_client(port, ca=None, starttls=None, alpn=None, input=b"", timeout=15,
             servername="localhost", extra=()):
    """Run openssl s_client (servername None: no SNI); returns
    CompletedProcess with the output as bytes (stdout and stderr
    separately)."""
    cmd = [find_program("openssl"), "s_client", "-connect", "%s:%d" % (HOST, port)]
    cmd += ["-servername", servername] if servername is not None else ["-noservername"]
    if ca:
        cmd += ["-CAfile", ca, "-verify_return_error"]
    if starttls:
        cmd += ["-starttls", starttls]
    if alpn:
        cmd += ["-alpn", alpn]
    cmd += list(extra)
    return subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


# ---------------------------------------------------------------------------
# runner
# ---------------------------------------------------------------------------

class _TestTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise _TestTimeout("test took longer than MG_TEST_TIMEOUT")


def describe_live():
    """Tails of the logs of everything running, for a failure report."""
    return "\n".join(x.describe() for x in list(_live))


def run_tests(namespace):
    """Run the test_* functions of namespace (a module's globals()) in the
    order they are defined. Prints PASS:/FAIL: lines and a summary; returns
    the exit status (0 only if nothing failed)."""
    install_signal_handlers()
    tests = [(n, f) for n, f in list(namespace.items())
             if n.startswith("test_") and callable(f)]
    wanted = os.environ.get("MG_TEST", "").replace(",", " ").split()
    if wanted:
        unknown = [w for w in wanted if w not in dict(tests)]
        if unknown:
            print("no such test: %s" % ", ".join(unknown))
            print("0 passed, 1 failed")
            return 1
        tests = [(n, f) for n, f in tests if n in wanted]
    per_test = int(os.environ.get("MG_TEST_TIMEOUT", "90"))
    signal.signal(signal.SIGALRM, _alarm)
    passed = failed = 0
    try:
        for name, fn in tests:
            t0 = time.monotonic()
            signal.alarm(per_test)
            try:
                fn()
            except (KeyboardInterrupt, SystemExit):
                signal.alarm(0)
                print("FAIL: %s (interrupted)" % name, flush=True)
                raise
            except BaseException:
                signal.alarm(0)
                failed += 1
                print("FAIL: %s" % name)
                print(traceback.format_exc().rstrip())
                live = describe_live()
                if live:
                    print(live)
                sys.stdout.flush()
            else:
                signal.alarm(0)
                passed += 1
                print("PASS: %s" % name, flush=True)
            if os.environ.get("MG_VERBOSE"):
                print("  (%.2f s)" % (time.monotonic() - t0), flush=True)
    finally:
        signal.alarm(0)
        errors = cleanup()
    for err in errors:
        failed += 1
        print("FAIL: cleanup")
        print(err.rstrip())
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 0 if failed == 0 else 1


# ---------------------------------------------------------------------------
# fake servers for check_cleartext_login's tests
# ---------------------------------------------------------------------------

class SilentServer:
    """A listening socket that never accepts and never speaks: the kernel
    completes the TCP handshake (backlog), then nothing happens. For
    timeout tests."""

    def __init__(self, host=HOST, port=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port if port is not None else 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        add_cleanup(self.close)

    def close(self):
        self.sock.close()


class FakeMailServer:
    """A tiny IMAP or POP3 server in a thread, for behaviour no real server
    should show. It offers STARTTLS/STLS and LOGINDISABLED (IMAP), refuses
    logins before TLS by policy and accepts `users` after it.

    vulnerable=True reproduces the STARTTLS command-injection bug
    (CVE-2011-0411): commands that arrived in the same packet as
    STARTTLS/STLS are executed and answered inside TLS. With False they are
    discarded, as they must be.
    """

    def __init__(self, certs, protocol="imap", vulnerable=False, users=None, host=HOST,
                 max_tls=None, cleartext_login=False, login_untagged=()):
        """max_tls: an ssl.TLSVersion to cap the handshake at (e.g. TLSv1_1,
        to show a server that offers only old TLS). cleartext_login: IMAP
        LOGIN is accepted without TLS (a backend behind a gateway).
        login_untagged: lines sent before the tagged OK of a good LOGIN."""
        import threading
        self.certs = certs
        self.protocol = protocol
        self.vulnerable = vulnerable
        self.users = dict(users or {})
        self.cleartext_login = cleartext_login
        self.login_untagged = list(login_untagged)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(certs.cert, certs.key)
        if max_tls is not None:
            # OpenSSL 3 allows TLS 1.0/1.1 only at security level 0.
            self.ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            self.ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            self.ctx.maximum_version = max_tls
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.answered_inside_tls = []    # injected commands answered after TLS
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        add_cleanup(self.stop)

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                conn.settimeout(10)
                self._session(conn)
            except (OSError, ssl.SSLError, ValueError):
                pass
            finally:
                try:
                    conn.close()
                except OSError:
                    pass

    def _session(self, conn):
        imap = self.protocol == "imap"
        state = {"conn": conn, "buf": b"", "tls": False}

        def send(text):
            state["conn"].sendall(text.encode("latin-1") + b"\r\n")

        def readline():
            while b"\n" not in state["buf"]:
                data = state["conn"].recv(4096)
                if not data:
                    return None
                state["buf"] += data
            line, _, state["buf"] = state["buf"].partition(b"\n")
            return line.rstrip(b"\r").decode("latin-1")

        def start_tls():
            pipelined = state["buf"]
            if not self.vulnerable:
                state["buf"] = b""
            elif pipelined:
                self.answered_inside_tls.append(pipelined.decode("latin-1"))
            state["conn"] = self.ctx.wrap_socket(state["conn"], server_side=True)
            state["tls"] = True

        if imap:
            send("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] fake IMAP ready")
        else:
            send("+OK fake POP3 ready")
        user = None
        while True:
            line = readline()
            if line is None:
                return
            if imap:
                tag, _, rest = line.partition(" ")
                cmd, _, args = rest.partition(" ")
                cmd = cmd.upper()
                if cmd == "CAPABILITY":
                    send("* CAPABILITY IMAP4rev1 " + ("AUTH=PLAIN" if state["tls"]
                                                      else "STARTTLS LOGINDISABLED"))
                    send(tag + " OK done")
                elif cmd == "STARTTLS" and not state["tls"]:
                    send(tag + " OK Begin TLS negotiation now")
                    start_tls()
                elif cmd == "LOGIN" and not state["tls"] and not self.cleartext_login:
                    send(tag + " NO [PRIVACYREQUIRED] use STARTTLS")
                elif cmd == "LOGIN":
                    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', args)
                    ok = len(parts) == 2 and self.users.get(parts[0]) == parts[1]
                    for untagged in self.login_untagged if ok else ():
                        send(untagged)
                    send(tag + (" OK Logged in" if ok else " NO [AUTHENTICATIONFAILED] no"))
                elif cmd == "NOOP":
                    send(tag + " OK NOOP completed")
                elif cmd == "LOGOUT":
                    send("* BYE bye")
                    send(tag + " OK LOGOUT completed")
                    return
                else:
                    send(tag + " BAD unknown command")
            else:
                cmd, _, args = line.partition(" ")
                cmd = cmd.upper()
                if cmd == "CAPA":
                    send("+OK capabilities follow")
                    send("USER" if state["tls"] else "STLS")
                    send(".")
                elif cmd == "STLS" and not state["tls"]:
                    send("+OK Begin TLS negotiation")
                    start_tls()
                elif cmd in ("USER", "PASS") and not state["tls"]:
                    send("-ERR [AUTH] Plaintext authentication disallowed; use STLS")
                elif cmd == "USER":
                    user = args
                    send("+OK")
                elif cmd == "PASS":
                    ok = user is not None and self.users.get(user) == args
                    send("+OK Logged in" if ok else "-ERR [AUTH] Authentication failed")
                elif cmd == "QUIT":
                    send("+OK bye")
                    return
                else:
                    send("-ERR unknown command")


def readable_mappings(pid):
    """(start, end, name) of the readable mappings of pid."""
    out = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            fields = line.split(None, 5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            name = fields[5].strip() if len(fields) > 5 else ""
            if fields[1][0] == "r" and name not in ("[vvar]", "[vsyscall]", "[vvar_vclock]"):
                out.append((start, end, name))
    return out


def memory_search(pid, needles, max_mapping=512 << 20):
    """Search every readable mapping of pid (read through /proc/PID/mem, as
    root) for the byte strings in needles {label: bytes}. Returns
    {label: [mapping names where found]}. Mappings larger than max_mapping
    (sanitizer shadow memory) are skipped."""
    found = {label: [] for label in needles}
    longest = max(len(n) for n in needles.values())
    chunk = 8 << 20
    read_any = 0
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for start, end, name in readable_mappings(pid):
            if end - start > max_mapping:
                continue
            pos, tail = start, b""
            while pos < end:
                try:
                    mem.seek(pos)
                    data = mem.read(min(chunk, end - pos))
                except OSError:
                    break           # e.g. a device mapping: nothing of ours
                if not data:
                    break
                read_any += len(data)
                window = tail + data
                for label, needle in needles.items():
                    if needle in window and name not in found[label]:
                        found[label].append(name or "[anon]")
                tail = window[-(longest - 1):] if longest > 1 else b""
                pos += len(data)
    assert read_any > 0, "read nothing from process %d's memory" % pid
    return found
