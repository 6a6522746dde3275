#!/usr/bin/env python3
"""mgbench - mailgate's benchmark (`make bench`, as root).

One run starts a private Dovecot, one mailgated in front of it and, as the
reference a gateway is judged against, nginx's mail proxy in front of the
same Dovecot (its own nginx: our configuration, prefix, pid and logs in the
working directory; the system's nginx is never touched). Every figure is
measured through the gateway, through nginx and directly against Dovecot
in the same run, and printed with the ratio gateway / nginx:

  1. STARTTLS sessions (connect, greeting, STARTTLS, TLS 1.3 handshake with
     the ECDSA P-256 test certificate, CAPABILITY, LOGIN, LOGOUT) from a few client
     threads: sessions per second, and CPU per session of the whole process
     tree (utime+stime+cutime+cstime of the master and every descendant
     from /proc/PID/stat: whether sessions live in forked children, in
     long-lived engines or in nginx's workers, their CPU is in the tree).
     The gateway once with a plaintext backend leg, once with a TLS backend
     leg (implicit TLS to Dovecot's imaps port, certificate verified); nginx
     has a plaintext leg only (its mail proxy cannot speak TLS upstream).
     Then sessions per second with 32 client threads (bound by this
     machine, the Python client included).
  1b. TLS handshakes on the implicit TLS port (connect, TLS 1.3
     handshake, greeting, LOGOUT; no login), one at a time: CPU of the
     whole tree and of the gateway's engines per connection, full
     handshakes beside resumed ones (the session ticket of one earlier
     handshake offered every time), and resumed / full. Every resumption
     must succeed, else the run fails.
  2. LOGIN latency: median and p95 from sending LOGIN to the tagged OK,
     one session at a time. The CAPABILITY before it (RFC 3501 clients
     ask again after STARTTLS) is timed too: the first answer after the
     TLS 1.3 handshake is where a proxy without TCP_NODELAY that writes its
     session tickets in small pieces stalls for a delayed ACK (nginx 1.22
     does, ~40 ms).
  3. FETCH throughput: one large message fetched with curl through the
     gateway and nginx (imaps and STARTTLS) and from Dovecot's imaps port;
     the rate of the transfer itself (size / (time_total -
     time_pretransfer)), and of the whole fetch session for reference.
  4. Memory per idle authenticated session (logged in, INBOX selected):
     (PSS of the whole tree with N idle sessions - PSS with none) / N, PSS
     from /proc/PID/smaps_rollup of every process in the tree, each proxy
     freshly restarted first (heap freed by earlier sessions would hide
     what these cost).
  5. Certificates by name (certificate_dir): --certs pairs (10,000; 1,000
     with --quick), written by tests/bench/mkcerts, one P-256 leaf each for
     customerN.bench.test; a gateway with them beside the same gateway with
     an empty directory: seconds from starting it to its "ready engines="
     log line, the tree's PSS added (budget judged at 10,000 only, other
     counts print it scaled), and CPU per full handshake with an SNI name
     from the directory beside one without SNI, in alternating rounds (a
     ratio of two small CPU figures on a shared machine: a few percent
     either way is noise; the rounds' spread is printed): names served
     before (their leaves in the engines' parsed-leaf cache; judged) and
     names used for the first time (each leaf parsed; reported).
  6. With --idle-10k: 10,000 idle authenticated sessions through a second,
     dedicated gateway (raised descriptor and Dovecot limits): did all
     open, the tree's PSS, and a fresh LOGIN's latency meanwhile.

It prints a table (measurement, gateway, nginx, gateway/nginx, direct,
budget, verdict) and with --json FILE writes the same as JSON. The budgets
are the project's, written down in tests/bench/README (mostly ratios to
nginx); missing one is reported, not an error. The exit status is non-zero only when something
could not be measured (a server did not start, a login failed, a loop ran
out of time). nginx missing (binary or mail module) is reported, not an
error: the gateway-vs-Dovecot figures are still measured.

    python3 tests/bench/mgbench.py [--quick] [--json FILE] [--keep] [--idle-10k]
                                   [--certs N] [--only PHASE,...]
    (MG_MAILGATED=path/to/mailgated; MG_MKCERTS=path/to/tests/bench/mkcerts;
     PYTHONPATH=tests/integration;
     MG_NGINX=path/to/nginx, MG_NGINX_MAIL_MODULE=path/to/ngx_mail_module.so)
"""

import argparse
import collections
import errno
import json
import os
import platform
import random
import re
import resource
import selectors
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import mgtest  # noqa: E402

HOST = mgtest.HOST          # loopback only
USER, PASSWORD = "bench", "bench-pw"          # small INBOX: sessions, latency, memory
BULK_USER, BULK_PASSWORD = "bulk", "bulk-pw"  # one large message: throughput
MB = 1000 * 1000            # throughput in MB/s (10^6 bytes), as the budgets' numbers

# The budgets of tests/bench/README (change both together): nginx's mail
# proxy, measured in the same run on the same machine, is the yardstick.
BUDGET_CPU_VS_NGINX = 1.0        # CPU per STARTTLS session (plaintext leg) <= 1.0x nginx
BUDGET_IDLE_KB_PLAIN = 32.0      # PSS per idle session, plaintext backend leg
BUDGET_IDLE_KB_TLS = 48.0        # PSS per idle session, TLS backend leg
BUDGET_FETCH_VS_NGINX = 1.2      # one-stream FETCH (plaintext leg) >= 1.2x nginx
BUDGET_LOGIN_ADDED_MS = 0.5      # LOGIN median <= Dovecot direct + 0.5 ms

# certificates by name at hosting scale (certificate_dir)
CERTS_FULL = 10000               # pairs the budgets are for
BUDGET_CERTS_LOAD_S = 10.0       # start to engines ready with them
BUDGET_CERTS_ADDED_MB = 60.0     # tree PSS they add (judged at CERTS_FULL only)
BUDGET_SNI_RATIO = 1.0           # CPU per full handshake with SNI / without
BUDGET_GUESSING_RATIO = 1.1      # legitimate LOGIN median and sessions/s under a guessing
                                 # attack, against without it: within 10%

BURST_THREADS = 32               # client threads for the machine-bound sessions/s
NGINX_WORKERS = "auto"           # one worker per CPU, as a gateway uses every core

CLK_TCK = os.sysconf("SC_CLK_TCK")
TICK_MS = 1000.0 / CLK_TCK


class BenchError(Exception):
    """Something could not be measured."""


def log(msg):
    print("mgbench: " + msg, flush=True)


# ---------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------

_CLIENT_CTX = {}


def client_context(ca, sni=True):
    """One shared client context: TLS 1.3 only, verifies the test CA.
    sni=False: one that sends no server name; the chain is still verified,
    the name cannot be (there is none to check against)."""
    ctx = _CLIENT_CTX.get((ca, sni))
    if ctx is None:
        ctx = ssl.create_default_context(cafile=ca)
        ctx.check_hostname = sni
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        _CLIENT_CTX[(ca, sni)] = ctx
    return ctx


class Client(mgtest.ImapClient):
    """mgtest's raw IMAP client with a shared TLS 1.3 context (no CA file
    re-read per session)."""

    def ssl_context(self):
        return client_context(self.ca)


def expect_ok(tag, tagged, untagged, what):
    if not tagged.startswith(tag + " OK"):
        raise BenchError("%s failed: %r (untagged %r)" % (what, tagged, untagged[-3:]))


def starttls_login(port, ca, user=USER, password=PASSWORD, timeout=15.0):
    """connect, greeting, STARTTLS, handshake, CAPABILITY (RFC 3501: a client
    discards what it knew and asks again after STARTTLS), LOGIN. Returns
    (client, {"capability": s, "login": s}): seconds from sending each
    command to its tagged OK. The first answer after the handshake is timed
    on its own because that is where a server that writes its TLS 1.3
    session tickets in small pieces without TCP_NODELAY stalls (Nagle
    waits for the client's delayed ACK, ~40 ms on Linux)."""
    c = Client(port, ca=ca, timeout=timeout)
    try:
        if not c.greeting.startswith("* OK"):
            raise BenchError("greeting on port %d: %r" % (port, c.greeting))
        c.starttls()
        if c.tls_version() != "TLSv1.3":
            raise BenchError("negotiated %s on port %d, not TLSv1.3" % (c.tls_version(), port))
        t0 = time.perf_counter()
        untagged, tagged = c.command("C", "CAPABILITY")
        t1 = time.perf_counter()
        expect_ok("C", tagged, untagged, "CAPABILITY on port %d" % port)
        untagged, tagged = c.login(user, password, tag="L")
        t2 = time.perf_counter()
        expect_ok("L", tagged, untagged, "LOGIN on port %d" % port)
        return c, {"capability": t1 - t0, "login": t2 - t1}
    except BaseException:
        c.close()
        raise


def one_session(port, ca):
    """A whole STARTTLS session; returns starttls_login()'s timings."""
    c, timings = starttls_login(port, ca)
    try:
        untagged, tagged = c.command("Q", "LOGOUT")
        expect_ok("Q", tagged, untagged, "LOGOUT on port %d" % port)
    finally:
        c.close()
    return timings


def negotiated(port, ca):
    """(TLS version, cipher suite) of one STARTTLS session: the gateway and
    nginx must be compared on the same cipher."""
    c, _ = starttls_login(port, ca)
    try:
        return c.tls_version(), c.sock.cipher()[0]
    finally:
        c.close()


def tls_greeting(port, ca, session=None, timeout=15.0, server_hostname="localhost"):
    """Implicit TLS: connect, handshake (offering session, if any), read the
    greeting, LOGOUT. Returns (resumed, the session to offer next time):
    the TLS 1.3 ticket has arrived by the time the greeting has.
    server_hostname: the name sent (SNI) and verified; None sends none."""
    raw = socket.create_connection((HOST, port), timeout=timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ctx = client_context(ca, sni=bool(server_hostname))
    s = ctx.wrap_socket(raw, server_hostname=server_hostname, session=session)
    try:
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                raise BenchError("port %d closed before its greeting" % port)
            data += chunk
        if not data.startswith(b"* OK"):
            raise BenchError("greeting on port %d: %r" % (port, data))
        s.sendall(b"Q LOGOUT\r\n")
        data = b""
        while b"Q OK" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return s.session_reused, s.session
    finally:
        s.close()


def run_handshakes(port, ca, count, session):
    """count tls_greeting()s one after another, each offering session (None:
    full handshakes). Returns how many resumed."""
    resumed = 0
    for _ in range(count):
        reused, _ = tls_greeting(port, ca, session)
        resumed += bool(reused)
    return resumed


def run_sessions(port, ca, count, threads, deadline_s):
    """count sessions from `threads` client threads. Returns (wall seconds,
    list of their starttls_login() timings). BenchError on any failure or if the whole
    thing takes longer than deadline_s."""
    lock = threading.Lock()
    state = {"next": 0, "done": 0, "errors": [], "latencies": []}
    deadline = time.monotonic() + deadline_s

    def worker():
        while True:
            with lock:
                if state["next"] >= count or state["errors"] or time.monotonic() > deadline:
                    return
                state["next"] += 1
            try:
                lat = one_session(port, ca)
            except BaseException as e:   # noqa: B036 - reported by the main thread
                with lock:
                    state["errors"].append("%s: %s" % (type(e).__name__, e))
                return
            with lock:
                state["done"] += 1
                state["latencies"].append(lat)

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, threads))]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join(max(0.1, deadline - time.monotonic() + 20))
    wall = time.perf_counter() - t0
    if state["errors"]:
        raise BenchError("session on port %d failed: %s" % (port, state["errors"][0]))
    if any(w.is_alive() for w in workers) or state["done"] < count:
        raise BenchError("only %d of %d sessions on port %d finished within %.0f s"
                         % (state["done"], count, port, deadline_s))
    return wall, state["latencies"]


def one_guess(port, ca, source, user, wait_s):
    """One wrong-password attempt from source, as a guesser makes it: the
    STARTTLS dialogue, LOGIN with a password nobody has, wait_s for the
    answer (the penalty keeps a patient guesser waiting up to 15 s; this one
    moves on), close. Returns what happened: "failed" (NO), "abandoned" (no
    answer in time), "refused" (a BYE at the greeting: a limit), "banned"
    (closed before any greeting), or "error"."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((source, 0))
        s.settimeout(10)
        s.connect((HOST, port))
        greeting = s.recv(4096)
        if not greeting:
            return "banned"
        if greeting.startswith(b"* BYE"):
            return "refused"
        s.sendall(b"S STARTTLS\r\n")
        reply = b""
        while b"S OK" not in reply:
            chunk = s.recv(4096)
            if not chunk:
                return "error"
            reply += chunk
        t = client_context(ca).wrap_socket(s, server_hostname="localhost")
        s = t
        s.sendall(b"L LOGIN %s \"guess-%d\"\r\n" % (user.encode(), random.getrandbits(48)))
        s.settimeout(wait_s)
        try:
            answer = s.recv(4096)
        except socket.timeout:
            return "abandoned"
        return "failed" if b"L NO" in answer else "error"
    except OSError:
        return "error"
    finally:
        s.close()


def run_guessers(port, ca, attempts, sources, threads, wait_s, deadline_s):
    """attempts wrong logins from sources loopback addresses (127.0.3.N),
    spread over threads; returns the count of each outcome."""
    lock = threading.Lock()
    state = {"next": 0, "outcomes": collections.Counter()}
    deadline = time.monotonic() + deadline_s

    def worker():
        while True:
            with lock:
                n = state["next"]
                if n >= attempts or time.monotonic() > deadline:
                    return
                state["next"] += 1
            outcome = one_guess(port, ca, "127.0.3.%d" % (1 + n % sources),
                                "user%d" % (n % 97), wait_s)
            with lock:
                state["outcomes"][outcome] += 1

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    return workers, state


def median_ms(timings, what="login"):
    return statistics.median(t[what] for t in timings) * 1000


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


# ---------------------------------------------------------------------------
# /proc readings: whole process trees
# ---------------------------------------------------------------------------

def _stat_fields(pid):
    """Fields 3.. of /proc/PID/stat (fields[0] is the state), or None if
    the process is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_tree(root):
    """root and every descendant, zombies included (an exited child's CPU
    is in its own stat until its parent reaps it, then in the parent's
    cutime/cstime). Parents from /proc/*/stat (field 4, ppid)."""
    children, found = {}, False
    for pid in mgtest.all_pids():
        fields = _stat_fields(pid)
        if fields and len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(pid)
            found = found or pid == root
    if not found:
        return []
    tree, todo = [root], [root]
    while todo:
        kids = children.get(todo.pop(), [])
        tree.extend(kids)
        todo.extend(kids)
    return sorted(tree)


def tree_stat(root):
    """CPU (clock ticks) and minor page faults summed over root's tree:
    utime+stime of every process, cutime+cstime of the children each has
    reaped. A process that exits between two readings moves its whole CPU
    into its parent's cutime/cstime, so the difference of two readings is
    the tree's CPU in between, however short-lived its processes are."""
    total = {"utime": 0, "stime": 0, "cutime": 0, "cstime": 0, "minflt": 0, "cminflt": 0,
             "procs": 0}
    pids = process_tree(root)
    if not pids:
        raise BenchError("process %d is gone" % root)
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is None:
            continue        # reaped meanwhile: its CPU is in its parent's cutime now
        # fields[0] is field 3 (state): minflt=10, cminflt=12, utime=14,
        # stime=15, cutime=16, cstime=17
        for name, i in (("minflt", 7), ("cminflt", 8), ("utime", 11), ("stime", 12),
                        ("cutime", 13), ("cstime", 14)):
            total[name] += int(fields[i])
        total["procs"] += 1
    return total


def role_of(root, pid):
    """Which part of mailgated's process tree pid is."""
    if pid == root:
        return "master"
    name = mgtest.process_name(pid) or ""
    if name == "mailgated-tls":
        return "engines"
    if name.startswith("mailgated-auth"):
        return "auth"
    return "session children"


def role_stat(root):
    """CPU ticks of mailgated's tree by part: each process's own utime+stime
    under its role, and what a process has reaped (cutime+cstime) under the
    role of its children: the master reaps session children (spares too),
    the auth supervisor its workers."""
    roles = {"master": 0, "engines": 0, "session children": 0, "auth": 0}
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields is None:
            continue
        role = role_of(root, pid)
        roles[role] += int(fields[11]) + int(fields[12])
        reaped = int(fields[13]) + int(fields[14])
        roles["session children" if role == "master" else role] += reaped
    return roles


def cpu_delta(st0, st1):
    """(user ms, sys ms, minor faults) of a tree between two tree_stat()s."""
    user = (st1["utime"] + st1["cutime"] - st0["utime"] - st0["cutime"]) * TICK_MS
    system = (st1["stime"] + st1["cstime"] - st0["stime"] - st0["cstime"]) * TICK_MS
    faults = st1["minflt"] + st1["cminflt"] - st0["minflt"] - st0["cminflt"]
    return user, system, faults


def smaps_rollup(pid):
    """{field: kB} from /proc/PID/smaps_rollup, or None if the process is
    gone (or a zombie, which has no memory)."""
    out = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError as e:
        raise BenchError("cannot read /proc/%d/smaps_rollup: %s" % (pid, e))
    return out if "Pss" in out else None


def tree_memory(root):
    """PSS, RSS and private memory (kB) summed over root's live tree.
    Pages the processes share among themselves count once in the sum of
    their PSS, which is why the tree, not one process, is measured."""
    total = {"pss_kb": 0, "rss_kb": 0, "private_kb": 0, "procs": 0}
    for pid in process_tree(root):
        m = smaps_rollup(pid)
        if m is None:
            continue
        total["pss_kb"] += m["Pss"]
        total["rss_kb"] += m.get("Rss", 0)
        total["private_kb"] += m.get("Private_Clean", 0) + m.get("Private_Dirty", 0)
        total["procs"] += 1
    if not total["procs"]:
        raise BenchError("process %d is gone" % root)
    return total


_TCP_BUSY = {"01", "02", "03", "08"}     # ESTABLISHED, SYN_SENT, SYN_RECV, CLOSE_WAIT


def open_connections(ports):
    """Connections whose local end is one of ports (a server's side of its
    clients' connections) and are not yet closed by the server, plus those
    still waiting in an accept queue."""
    return (mgtest.open_connections(ports, _TCP_BUSY)
            + sum(mgtest.accept_queue(p) for p in ports))


def settle_tree(root, ports, what, timeout=20.0):
    """Wait until a server has no client connection left on ports and its
    process tree stopped changing (two looks 0.1 s apart see the same
    processes): every session has ended and every process that ends with
    it is gone, whatever the server's process model."""
    def quiet():
        if open_connections(ports):
            return False
        before = process_tree(root)
        time.sleep(0.1)
        return not open_connections(ports) and process_tree(root) == before
    try:
        mgtest.wait_until(quiet, timeout, interval=0.05, what="%s to settle" % what)
    except AssertionError as e:
        raise BenchError("%s (connections: %d)" % (e, open_connections(ports)))


# ---------------------------------------------------------------------------
# nginx's mail proxy, the reference
# ---------------------------------------------------------------------------

class NginxUnavailable(Exception):
    """nginx or its mail module is missing, or nginx would not start."""


_NGINX_CONF = """\
# nginx mail proxy for mgbench (generated; the reference the gateway is judged against)
{load_module}
worker_processes {workers};
worker_rlimit_nofile {nofile};
pid {dir}/nginx.pid;
lock_file {dir}/nginx.lock;
error_log {dir}/error.log {log_level};
user {user} {group};
events {{
    worker_connections {connections};
}}
http {{
    # auth_http is answered here: every login goes to the same Dovecot's
    # plaintext IMAP port (Dovecot sees 127.0.0.1 and accepts a cleartext
    # LOGIN from it). Dovecot itself checks the password.
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen {host}:{auth_port};
        location = /auth {{
            add_header Auth-Status OK;
            add_header Auth-Server {host};
            add_header Auth-Port {backend_port};
            return 204;
        }}
    }}
}}
mail {{
    server_name localhost;
    auth_http {host}:{auth_port}/auth;
    proxy_pass_error_message on;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.3;
    imap_auth plain login;
    imap_capabilities IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE;
    server {{
        listen {host}:{imap_port};
        protocol imap;
        starttls only;
    }}
    server {{
        listen {host}:{imaps_port} ssl;
        protocol imap;
    }}
}}
"""


def find_nginx():
    """(binary, mail module path or "" if compiled in). NginxUnavailable
    with the reason if either is missing."""
    try:
        binary = mgtest.find_program("nginx", env="MG_NGINX")
    except RuntimeError as e:
        raise NginxUnavailable(str(e))
    try:
        r = subprocess.run([binary, "-V"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        raise NginxUnavailable("%s -V: %s" % (binary, e))
    build = r.stdout.decode("utf-8", "replace")
    if "--with-mail " in build + " " and "--with-mail=dynamic" not in build:
        return binary, ""
    dirs = [a.split("=", 1)[1] for a in build.split() if a.startswith("--modules-path=")]
    candidates = [os.environ.get("MG_NGINX_MAIL_MODULE", "")] + \
        [os.path.join(d, "ngx_mail_module.so") for d in dirs +
         ["/usr/lib/nginx/modules", "/usr/lib64/nginx/modules", "/usr/share/nginx/modules"]]
    for path in candidates:
        if path and os.path.isfile(path):
            return binary, path
    raise NginxUnavailable("nginx's mail module (ngx_mail_module.so) not found; on Debian "
                           "install libnginx-mod-mail (or set MG_NGINX_MAIL_MODULE)")


class Nginx:
    """Our own nginx (mail proxy + the http block answering its auth_http)
    in front of a Dovecot's plaintext IMAP port: STARTTLS-only IMAP on
    imap_port, implicit TLS on imaps_port, TLS 1.3 with the test
    certificate the gateway uses. Started in the foreground as a session
    leader; stopped with SIGTERM; nothing outside its directory is used."""

    def __init__(self, td, certs, backend_port, workers=NGINX_WORKERS, connections=4096):
        self.binary, self.module = find_nginx()
        self.dir = td.mkdir("nginx")
        self.conf_path = os.path.join(self.dir, "nginx.conf")
        self.error_log = os.path.join(self.dir, "error.log")
        self.stderr_path = os.path.join(self.dir, "nginx.stderr")
        self.imap_port, self.imaps_port, self.auth_port = (mgtest.free_port() for _ in range(3))
        self.workers = workers
        self.proc = None
        user, _, group, _ = mgtest.mail_account()
        text = _NGINX_CONF.format(
            load_module="load_module %s;" % self.module if self.module else "",
            workers=workers, nofile=2 * connections + 64, connections=connections,
            dir=self.dir, log_level="info", user=user, group=group, host=HOST,
            auth_port=self.auth_port, backend_port=backend_port, cert=certs.cert,
            key=certs.key, imap_port=self.imap_port, imaps_port=self.imaps_port)
        with open(self.conf_path, "w") as f:
            f.write(text)

    def command(self, *extra):
        # -e: the startup error log too is ours (not /var/log/nginx)
        return [self.binary, "-c", self.conf_path, "-p", self.dir + "/",
                "-e", self.error_log] + list(extra)

    def start(self, timeout=15):
        r = subprocess.run(self.command("-t"), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        if r.returncode != 0:
            raise NginxUnavailable("nginx -t rejects %s:\n%s"
                                   % (self.conf_path, r.stdout.decode("utf-8", "replace")))
        errf = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(self.command("-g", "daemon off;"), stdin=subprocess.DEVNULL,
                                     stdout=errf, stderr=errf, start_new_session=True)
        errf.close()
        mgtest.add_cleanup(self.stop)
        deadline = time.monotonic() + timeout
        for port in (self.imap_port, self.imaps_port, self.auth_port):
            while not mgtest.port_accepts(port):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log_tail = mgtest.tail(self.log(), 10)
                    self.stop()
                    raise NginxUnavailable("nginx did not start listening on port %d:\n%s"
                                           % (port, log_tail))
                time.sleep(0.02)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def worker_pids(self):
        return [p for p in process_tree(self.pid) if p != self.pid] if self.pid else []

    def ports(self):
        return (self.imap_port, self.imaps_port)

    def stop(self, timeout=10):
        """SIGTERM (fast shutdown) to the master; then whatever of its
        process group is left, by pid."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        group = set(mgtest.process_group(proc.pid)) | set(process_tree(proc.pid))
        group.discard(proc.pid)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        left = mgtest.wait_pids_gone(sorted(group | set(mgtest.process_group(proc.pid))), 3)
        if left:
            mgtest.kill_pids(left)
            raise RuntimeError("nginx left processes behind: %s" % left)

    def log(self):
        return mgtest.read_text(self.error_log) + mgtest.read_text(self.stderr_path)

    def version(self):
        try:
            r = subprocess.run([self.binary, "-v"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
            return r.stdout.decode().strip().rsplit("/", 1)[-1]
        except (OSError, subprocess.SubprocessError):
            return "?"


# ---------------------------------------------------------------------------
# many idle sessions from one thread (--idle-10k)
# ---------------------------------------------------------------------------

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class IdleConn:
    """One client opening an idle authenticated session without blocking:
    a generator that yields READ or WRITE when it has to wait for the
    socket, and ends once LOGIN and SELECT INBOX are answered."""

    def __init__(self, port, ctx):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.buf = b""
        self.steps = self._open(port, ctx)

    def _recv_line(self):
        while b"\n" not in self.buf:
            try:
                data = self.sock.recv(4096)
            except (BlockingIOError, ssl.SSLWantReadError):
                yield READ
                continue
            except ssl.SSLWantWriteError:
                yield WRITE
                continue
            if not data:
                raise mgtest.Closed("closed by the server (unread %r)" % self.buf)
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode("latin-1")

    def _send(self, data):
        while data:
            try:
                data = data[self.sock.send(data):]
            except (BlockingIOError, ssl.SSLWantWriteError):
                yield WRITE
            except ssl.SSLWantReadError:
                yield READ

    def _command(self, tag, text):
        yield from self._send(("%s %s\r\n" % (tag, text)).encode("latin-1"))
        while True:
            line = yield from self._recv_line()
            if line.startswith(tag + " "):
                if not line.startswith(tag + " OK"):
                    raise BenchError("%s answered %r" % (text.split()[0], line))
                return line

    def _open(self, port, ctx):
        err = self.sock.connect_ex((HOST, port))
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, os.strerror(err))
        yield WRITE
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, "connect: " + os.strerror(err))
        greeting = yield from self._recv_line()
        if not greeting.startswith("* OK"):
            raise BenchError("greeting %r" % greeting)
        yield from self._command("S", "STARTTLS")
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost",
                                    do_handshake_on_connect=False)
        while True:
            try:
                self.sock.do_handshake()
                break
            except ssl.SSLWantReadError:
                yield READ
            except ssl.SSLWantWriteError:
                yield WRITE
        yield from self._command("L", "LOGIN %s %s" % (mgtest.imap_quote(USER),
                                                       mgtest.imap_quote(PASSWORD)))
        yield from self._command("T", "SELECT INBOX")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def open_many_idle(port, ca, count, in_flight, deadline_s):
    """Open count idle authenticated sessions on port from this one thread,
    at most in_flight being set up at a time. Returns (open IdleConns,
    number failed, first error, seconds taken); never raises for a session
    that fails, since how many open is the result."""
    ctx = client_context(ca)
    sel = selectors.DefaultSelector()
    opened, failed, first_error = [], 0, None
    started, active = 0, 0
    t0 = time.monotonic()
    deadline = t0 + deadline_s

    def advance(conn):
        nonlocal active, failed, first_error
        try:
            want = next(conn.steps)
        except StopIteration:
            active -= 1
            opened.append(conn)
            return
        except (OSError, ssl.SSLError, mgtest.Closed, BenchError) as e:
            active -= 1
            failed += 1
            first_error = first_error or "%s: %s" % (type(e).__name__, e)
            conn.close()
            return
        sel.register(conn.sock.fileno(), want, conn)

    while (started < count or active) and time.monotonic() < deadline:
        while started < count and active < in_flight:
            started += 1
            active += 1
            advance(IdleConn(port, ctx))
        for key, _events in sel.select(timeout=1.0):
            sel.unregister(key.fd)
            advance(key.data)
    for key in list(sel.get_map().values()):      # still being set up at the deadline
        sel.unregister(key.fd)
        key.data.close()
        failed += 1
        first_error = first_error or "not open within %.0f s" % deadline_s
    sel.close()
    failed += count - started
    return opened, failed, first_error, time.monotonic() - t0


# ---------------------------------------------------------------------------
# the measurements
# ---------------------------------------------------------------------------

def ratio(gateway, nginx):
    if gateway is None or nginx is None or not nginx:
        return None
    return gateway / nginx


class Bench:
    def __init__(self, args):
        self.args = args
        self.rows = []        # the report
        self.raw = {}         # everything measured, for --json
        self.td = self.certs = self.dovecot = self.mg = self.nginx = None
        self.nginx_missing = None     # why there is no nginx column, if there is none

    # -- set-up ---------------------------------------------------------------
    def start(self):
        a = self.args
        self.td = mgtest.TestDir(prefix="mgbench-", path=a.dir,
                                 keep=True if (a.keep or a.dir) else None)
        log("working directory %s" % self.td.path)
        self.certs = mgtest.Certs(self.td.join("certs"))
        self.dovecot = mgtest.Dovecot(self.td, self.certs,
                                      users={USER: PASSWORD, BULK_USER: BULK_PASSWORD},
                                      port_start=20000, auth_failure_delay=0, start=False)
        self.dovecot.deliver(USER, b"From: bench@example.org\r\nTo: bench@example.org\r\n"
                                   b"Subject: small\r\n\r\nhello\r\n")
        size = int(a.message_mib * 1024 * 1024)
        self.message_size = self._deliver_large(self.dovecot, size)
        self.dovecot.start()
        self.mg = self.start_gateway(self.dovecot, "mailgated", 5000)
        log("Dovecot pid %d (imap %d, imaps %d), mailgated pid %d (%s)"
            % (self.dovecot.pid, self.dovecot.imap_port, self.dovecot.imaps_port, self.mg.pid,
               ", ".join("%s %d" % (l["name"], l["port"]) for l in self.mg.listeners)))
        self.start_nginx()
        # Prove every path once before timing anything.
        ports = [self.mg.port("imap_plain"), self.mg.port("imap_tls"), self.dovecot.imap_port]
        for port in ports:
            one_session(port, self.certs.ca)
        self.raw["tls"] = {"gateway": negotiated(self.mg.port("imap_plain"), self.certs.ca)}
        if self.nginx:
            one_session(self.nginx.imap_port, self.certs.ca)
            self.raw["tls"]["nginx"] = negotiated(self.nginx.imap_port, self.certs.ca)
        log("negotiated: %s" % ", ".join("%s %s %s" % (k, v[0], v[1])
                                         for k, v in self.raw["tls"].items()))
        self.check_alive()

    def start_gateway(self, dovecot, name, max_connections, listeners=None, **settings):
        if listeners is None:
            listeners = [
                mgtest.listener("imap_plain", "starttls", backend="plain"),
                mgtest.listener("imaps_plain", "implicit", backend="plain"),
                mgtest.listener("imap_tls", "starttls", backend="tls"),
                mgtest.listener("imaps_tls", "implicit", backend="tls"),
            ]
        options = dict(log_level="info", auth_failure_delay=0,
                       max_connections=max_connections, max_connections_per_ip=max_connections,
                       # the load is one user from one address
                       max_sessions_per_user_ip=max_connections,
                       login_timeout=60, session_timeout=600, backend_connect_timeout=10,
                       backend_timeout=30, shutdown_grace=2)
        options.update(settings)
        return mgtest.Mailgated(
            self.td, self.certs, name=name,
            backends=[mgtest.backend_for(dovecot, "plain"),
                      mgtest.backend_for(dovecot, "tls", tls="implicit")],
            default_backend="plain", listeners=listeners, **options)

    def start_nginx(self):
        """nginx in front of the same Dovecot; if it cannot run here, say
        so once and measure the rest."""
        try:
            n = Nginx(self.td, self.certs, self.dovecot.imap_port)
            n.start()
        except NginxUnavailable as e:
            self.nginx_missing = str(e).strip()
            log("NO NGINX REFERENCE: %s; gateway and Dovecot figures only"
                % self.nginx_missing.replace("\n", " | "))
            return
        self.nginx = n
        log("nginx %s pid %d, worker_processes %s (%d workers), imap %d (STARTTLS only), "
            "imaps %d, auth_http on %d"
            % (n.version(), n.pid, n.workers, len(n.worker_pids()), n.imap_port, n.imaps_port,
               n.auth_port))

    def _deliver_large(self, dovecot, size):
        header = (b"From: bulk@example.org\r\nTo: bulk@example.org\r\n"
                  b"Subject: large message for mgbench\r\n"
                  b"Message-ID: <large@mgbench>\r\nMIME-Version: 1.0\r\n"
                  b"Content-Type: text/plain; charset=us-ascii\r\n\r\n")
        line = (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                b"mgbench-relay\r\n")
        body = line * max(1, (size - len(header)) // len(line))
        data = header + body
        dovecot.deliver(BULK_USER, data)
        return len(data)

    def check_alive(self):
        if not self.dovecot.running():
            raise BenchError("dovecot exited:\n" + mgtest.tail(self.dovecot.log()))
        if not self.mg.running():
            raise BenchError("mailgated exited:\n" + mgtest.tail(self.mg.log()))
        if self.nginx and not self.nginx.running():
            raise BenchError("nginx exited:\n" + mgtest.tail(self.nginx.log()))

    def settle(self, who="gateway"):
        """Wait until every session of the gateway (or nginx) has ended and
        its process tree is quiet."""
        if who == "nginx":
            settle_tree(self.nginx.pid, self.nginx.ports(), "nginx")
        else:
            settle_tree(self.mg.pid, [l["port"] for l in self.mg.listeners], "mailgated")

    def add(self, name, unit, gateway, nginx=None, direct=None, budget=None, verdict=None,
            key=None):
        """One row. Where a budget needs nginx and there is none, the
        verdict says so instead of judging."""
        if verdict is not None and nginx is None and "nginx" in (budget or ""):
            verdict = "no nginx"
        self.rows.append({"measurement": name, "unit": unit, "gateway": gateway,
                          "nginx": nginx, "gateway_per_nginx": ratio(gateway, nginx),
                          "direct": direct, "budget": budget, "verdict": verdict,
                          "key": key})

    def tree_cpu(self, who, fn, mg=None):
        """Run fn() and return (its result, user ms, sys ms, page faults) of
        who's whole process tree meanwhile (mg: that gateway, not the
        main one)."""
        if mg is not None:
            pid = mg.pid

            def settle():
                settle_tree(mg.pid, [l["port"] for l in mg.listeners], mg.name)
        else:
            pid = self.nginx.pid if who == "nginx" else self.mg.pid

            def settle():
                self.settle(who)
        settle()
        st0 = tree_stat(pid)
        result = fn()
        settle()
        st1 = tree_stat(pid)
        return (result,) + cpu_delta(st0, st1)

    # -- 1. STARTTLS sessions ---------------------------------------------------
    def session_paths(self):
        """(label, port, whose tree does the work) of every proxy path."""
        paths = [("plain", self.mg.port("imap_plain"), "gateway"),
                 ("tls", self.mg.port("imap_tls"), "gateway")]
        if self.nginx:
            paths.append(("nginx", self.nginx.imap_port, "nginx"))
        return paths

    def sessions(self):
        a = self.args
        results = {}
        for label, port, who in self.session_paths():
            run_sessions(port, self.certs.ca, a.warmup, a.threads, a.phase_timeout)
            roles0 = role_stat(self.mg.pid) if who == "gateway" else None
            (wall, lat), user, system, faults = self.tree_cpu(
                who, lambda: run_sessions(port, self.certs.ca, a.sessions, a.threads,
                                          a.phase_timeout))
            self.check_alive()
            cpu_ms = (user + system) / a.sessions
            results[label] = {
                "port": port, "sessions": a.sessions, "threads": a.threads,
                "wall_s": wall, "sessions_per_s": a.sessions / wall,
                "cpu_ms_per_session": cpu_ms, "tree_user_ms": user, "tree_sys_ms": system,
                "minor_faults_per_session": faults / a.sessions,
                "login_ms_under_load_median": median_ms(lat),
            }
            if roles0 is not None:
                roles1 = role_stat(self.mg.pid)
                by_role = {r: (roles1[r] - roles0[r]) * TICK_MS / a.sessions for r in roles1}
                results[label]["cpu_ms_per_session_by_process"] = by_role
                log("CPU per session (%s backend leg) by process: %s" % (label, ", ".join(
                    "%s %.2f ms" % (r, v) for r, v in by_role.items())))
            log("sessions via %s: %.1f/s, %.3f ms CPU/session (tree %.0f+%.0f ms user+sys; "
                "%.0f page faults/session)"
                % ("nginx" if who == "nginx" else "gateway (%s backend leg)" % label,
                   a.sessions / wall, cpu_ms, user, system, faults / a.sessions))
        run_sessions(self.dovecot.imap_port, self.certs.ca, a.warmup, a.threads,
                     a.phase_timeout)
        wall, lat = run_sessions(self.dovecot.imap_port, self.certs.ca, a.sessions, a.threads,
                                 a.phase_timeout)
        self.check_alive()
        results["direct"] = {"port": self.dovecot.imap_port, "sessions": a.sessions,
                             "threads": a.threads, "wall_s": wall,
                             "sessions_per_s": a.sessions / wall,
                             "login_ms_under_load_median": median_ms(lat)}
        log("sessions direct to Dovecot: %.1f/s" % (a.sessions / wall))
        self.raw["sessions"] = results
        ng = results.get("nginx", {})
        for label, name in (("plain", "plaintext"), ("tls", "TLS")):
            self.add("STARTTLS sessions/s, %d threads, %s backend leg" % (a.threads, name),
                     "sessions/s", results[label]["sessions_per_s"], ng.get("sessions_per_s"),
                     results["direct"]["sessions_per_s"], key="sessions_per_s_" + label)
        for label, name in (("plain", "plaintext"), ("tls", "TLS")):
            v, n = results[label]["cpu_ms_per_session"], ng.get("cpu_ms_per_session")
            budget = verdict = None
            if label == "plain":
                budget = "<= %.1fx nginx" % BUDGET_CPU_VS_NGINX
                verdict = "within" if n and v / n <= BUDGET_CPU_VS_NGINX else "OVER"
            self.add("CPU per STARTTLS session, %s backend leg" % name, "ms", v, n, None,
                     budget, verdict, key="cpu_ms_per_session_" + label)
        # where the plaintext-leg CPU goes: nginx does all of it in one worker
        for role, v in results["plain"].get("cpu_ms_per_session_by_process", {}).items():
            self.add("  of which %s (plaintext leg)" % role, "ms", v, None, None,
                     key="cpu_ms_per_session_plain_" + role.replace(" ", "_"))

    def handshakes(self):
        """CPU of a resumed TLS handshake beside a full one, implicit TLS."""
        a = self.args
        results = {}
        paths = [("gateway", self.mg.port("imaps_plain"))]
        if self.nginx:
            paths.append(("nginx", self.nginx.imaps_port))
        for who, port in paths:
            _, session = tls_greeting(port, self.certs.ca)
            reused, session = tls_greeting(port, self.certs.ca, session)
            if not reused:
                raise BenchError("%s did not resume a TLS session on port %d" % (who, port))
            r = results[who] = {"port": port, "handshakes": a.handshakes}
            for kind, offer in (("full", None), ("resumed", session)):
                run_handshakes(port, self.certs.ca, a.warmup, offer)
                roles0 = role_stat(self.mg.pid) if who == "gateway" else None
                resumed, user, system, _faults = self.tree_cpu(
                    who, lambda: run_handshakes(port, self.certs.ca, a.handshakes, offer))
                if resumed != (a.handshakes if offer else 0):
                    raise BenchError("%s: %d of %d %s handshakes resumed"
                                     % (who, resumed, a.handshakes, kind))
                r[kind] = {"cpu_ms": (user + system) / a.handshakes}
                if roles0 is not None:
                    roles1 = role_stat(self.mg.pid)
                    r[kind]["engines_cpu_ms"] = ((roles1["engines"] - roles0["engines"])
                                                 * TICK_MS / a.handshakes)
            log("TLS handshakes via %s: %.3f ms CPU full, %.3f ms resumed%s"
                % (who, r["full"]["cpu_ms"], r["resumed"]["cpu_ms"],
                   "" if who != "gateway" else " (engines %.3f / %.3f ms)"
                   % (r["full"]["engines_cpu_ms"], r["resumed"]["engines_cpu_ms"])))
        self.check_alive()
        self.raw["handshakes"] = results
        g, n = results["gateway"], results.get("nginx")

        def per(res, kind, field="cpu_ms"):
            return res[kind][field] if res else None

        def resumed_per_full(res, field="cpu_ms"):
            return (res["resumed"][field] / res["full"][field]
                    if res and res["full"][field] else None)
        for kind in ("full", "resumed"):
            self.add("CPU per %s TLS handshake (implicit TLS, greeting, LOGOUT)" % kind, "ms",
                     per(g, kind), per(n, kind), key="cpu_ms_per_handshake_" + kind)
            self.add("  of which engines (%s)" % kind, "ms", per(g, kind, "engines_cpu_ms"),
                     key="cpu_ms_per_handshake_%s_engines" % kind)
        self.add("resumed / full handshake CPU", "ratio", resumed_per_full(g),
                 resumed_per_full(n), key="handshake_cpu_resumed_per_full")
        self.add("  engines only", "ratio", resumed_per_full(g, "engines_cpu_ms"),
                 key="handshake_cpu_resumed_per_full_engines")

    def sessions_burst(self):
        """Sessions per second with many client threads: what this machine
        (client, proxy and Dovecot on the same cores) manages."""
        a = self.args
        results = {}
        paths = [("plain", self.mg.port("imap_plain"), "gateway")]
        if self.nginx:
            paths.append(("nginx", self.nginx.imap_port, "nginx"))
        paths.append(("direct", self.dovecot.imap_port, None))
        for label, port, who in paths:
            run_sessions(port, self.certs.ca, a.warmup, BURST_THREADS, a.phase_timeout)
            if who:
                self.settle(who)
            wall, lat = run_sessions(port, self.certs.ca, a.sessions, BURST_THREADS,
                                     a.phase_timeout)
            results[label] = {"port": port, "sessions": a.sessions, "threads": BURST_THREADS,
                              "wall_s": wall, "sessions_per_s": a.sessions / wall,
                              "login_ms_median": median_ms(lat)}
            log("sessions with %d threads via %s: %.1f/s (LOGIN median %.1f ms)"
                % (BURST_THREADS, label, a.sessions / wall, median_ms(lat)))
        self.check_alive()
        self.raw["sessions_burst"] = results
        self.add("STARTTLS sessions/s, %d threads (machine-bound), plaintext leg"
                 % BURST_THREADS, "sessions/s", results["plain"]["sessions_per_s"],
                 results.get("nginx", {}).get("sessions_per_s"),
                 results["direct"]["sessions_per_s"], key="sessions_per_s_burst")

    # -- 2. LOGIN latency ----------------------------------------------------------
    def login_latency(self):
        a = self.args
        results = {}
        paths = [("plain", self.mg.port("imap_plain")), ("tls", self.mg.port("imap_tls")),
                 ("direct", self.dovecot.imap_port)]
        if self.nginx:
            paths.append(("nginx", self.nginx.imap_port))
        for label, port in paths:
            run_sessions(port, self.certs.ca, min(5, a.logins), 1, a.phase_timeout)
            _wall, timings = run_sessions(port, self.certs.ca, a.logins, 1, a.phase_timeout)
            r = results[label] = {"port": port, "logins": a.logins}
            for what in ("login", "capability"):
                ms = [t[what] * 1000 for t in timings]
                r[what] = {"median_ms": statistics.median(ms), "p95_ms": percentile(ms, 95),
                           "min_ms": min(ms), "max_ms": max(ms)}
            log("LOGIN latency %s: median %.2f ms, p95 %.2f ms; first answer after the "
                "handshake (CAPABILITY): median %.2f ms"
                % (label, r["login"]["median_ms"], r["login"]["p95_ms"],
                   r["capability"]["median_ms"]))
        self.check_alive()
        self.raw["login_latency"] = results
        self.login_rows(results)

    def login_rows(self, results):
        d = results["direct"]
        n = results.get("nginx", {"login": {}, "capability": {}})
        for label, name in (("plain", "plaintext"), ("tls", "TLS")):
            g = results[label]
            added = g["login"]["median_ms"] - d["login"]["median_ms"]
            self.add("LOGIN latency median, %s backend leg" % name, "ms",
                     g["login"]["median_ms"], n["login"].get("median_ms"),
                     d["login"]["median_ms"],
                     "<= direct +%.1f ms (adds %+.2f)" % (BUDGET_LOGIN_ADDED_MS, added),
                     "within" if added <= BUDGET_LOGIN_ADDED_MS else "OVER",
                     key="login_median_ms_" + label)
            self.add("LOGIN latency p95, %s backend leg" % name, "ms", g["login"]["p95_ms"],
                     n["login"].get("p95_ms"), d["login"]["p95_ms"], key="login_p95_ms_" + label)
        self.add("first answer after TLS handshake (CAPABILITY) median", "ms",
                 results["plain"]["capability"]["median_ms"],
                 n["capability"].get("median_ms"), d["capability"]["median_ms"],
                 key="capability_median_ms_plain")

    # -- 3. relay throughput -----------------------------------------------------
    def curl_fetch(self, scheme, port):
        url = "%s://%s:%d/INBOX;UID=1" % (scheme, HOST, port)
        timeout = self.args.phase_timeout
        cmd = [mgtest.find_program("curl"), "-s", "-S", "--max-time", str(int(timeout)),
               "--cacert", self.certs.ca, "--ssl-reqd", "--tlsv1.3",
               "-u", "%s:%s" % (BULK_USER, BULK_PASSWORD), "-o", "/dev/null",
               "-w", "%{speed_download} %{size_download} %{time_total} %{time_pretransfer}",
               url]
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout + 10)
        if r.returncode != 0:
            raise BenchError("curl %s failed (%d): %s" % (url, r.returncode,
                                                          r.stderr.decode("utf-8", "replace")))
        try:
            speed, size, total, pre = (float(x) for x in r.stdout.split())
        except ValueError:
            raise BenchError("curl %s: unexpected -w output %r" % (url, r.stdout))
        if size < self.message_size:
            raise BenchError("curl %s fetched %d bytes, the message has %d"
                             % (url, size, self.message_size))
        # speed_download is size / time_total, so it includes connect, TLS,
        # LOGIN and SELECT; body_bytes_per_s leaves them out.
        return {"bytes_per_s": speed, "bytes": size, "time_total_s": total,
                "time_pretransfer_s": pre,
                "body_bytes_per_s": size / (total - pre) if total > pre else None}

    def fetch_paths(self):
        """(scheme, port, key, whose tree relays) of every throughput path."""
        paths = [("imaps", self.mg.port("imaps_plain"), "imaps_plain", "gateway"),
                 ("imap", self.mg.port("imap_plain"), "imap_plain", "gateway"),
                 ("imaps", self.mg.port("imaps_tls"), "imaps_tls", "gateway")]
        if self.nginx:
            paths += [("imaps", self.nginx.imaps_port, "nginx_imaps", "nginx"),
                      ("imap", self.nginx.imap_port, "nginx_imap", "nginx")]
        return paths + [("imaps", self.dovecot.imaps_port, "direct", None)]

    def throughput(self):
        a = self.args
        # Warm the page cache and Dovecot's index.
        self.curl_fetch("imaps", self.dovecot.imaps_port)
        results = {}
        for scheme, port, key, who in self.fetch_paths():
            def fetches():
                return [self.curl_fetch(scheme, port) for _ in range(a.fetches)]
            if who:
                runs, user, system, _faults = self.tree_cpu(who, fetches)
            else:
                runs = fetches()
            speeds = [x["bytes_per_s"] for x in runs]
            res = results[key] = {"port": port, "scheme": scheme, "runs": runs,
                                  "median_MB_s": statistics.median(speeds) / MB,
                                  "best_MB_s": max(speeds) / MB,
                                  "body_median_MB_s": statistics.median(
                                      x["body_bytes_per_s"] or 0 for x in runs) / MB}
            if who:
                # The proxy's CPU for these fetches (sessions included): how
                # fast one core of it could relay if nothing else were busy.
                cpu_s = (user + system) / 1000.0
                nbytes = sum(x["bytes"] for x in runs)
                res.update({"cpu_s": cpu_s, "user_s": user / 1000.0, "sys_s": system / 1000.0,
                            "cpu_bound_MB_s": (nbytes / cpu_s / MB) if cpu_s > 0 else None})
            log("relay %s: median %.0f MB/s transfer (%.0f MB/s whole session, best %.0f) "
                "over %d fetches of %d bytes%s"
                % (key, res["body_median_MB_s"], res["median_MB_s"], res["best_MB_s"],
                   a.fetches, self.message_size,
                   "" if not who else "; %s CPU %.2f s (%.2f user, %.2f sys)"
                   % (who, res["cpu_s"], res["user_s"], res["sys_s"])))
        self.check_alive()
        self.raw["throughput"] = {"message_bytes": self.message_size, "paths": results}
        self.throughput_rows(results)

    def throughput_rows(self, results):
        """The FETCH rows use the transfer's rate (curl: size / (time_total -
        time_pretransfer), leaving out connect, TLS, LOGIN and SELECT, which
        have rows of their own), and
        nginx's ~40 ms stall after the handshake would otherwise count as
        slow relaying. The whole-session rate follows for reference."""
        def rate(key, field="body_median_MB_s"):
            return results[key][field] if key in results else None

        d = rate("direct")
        # gateway path, its nginx counterpart, name, budgeted?
        pairs = (("imaps_plain", "nginx_imaps", "imaps, plaintext backend leg", True),
                 ("imap_plain", "nginx_imap", "STARTTLS, plaintext backend leg", True),
                 ("imaps_tls", "nginx_imaps", "imaps, TLS backend leg", False))
        for key, nkey, name, budgeted in pairs:
            v, n = rate(key), rate(nkey)
            budget = verdict = None
            if budgeted:
                budget = ">= %.1fx nginx" % BUDGET_FETCH_VS_NGINX
                verdict = "within" if n and v / n >= BUDGET_FETCH_VS_NGINX else "OVER"
            self.add("FETCH throughput, one stream, %s" % name, "MB/s", v, n, d, budget,
                     verdict, key="fetch_MB_s_" + key)
        self.add("whole fetch session (connect..FETCH), imaps, plaintext leg", "MB/s",
                 rate("imaps_plain", "median_MB_s"), rate("nginx_imaps", "median_MB_s"),
                 rate("direct", "median_MB_s"), key="session_MB_s_imaps_plain")
        for key, nkey, name, _budgeted in pairs:
            self.add("relay rate per proxy CPU second, %s" % name, "MB/s",
                     rate(key, "cpu_bound_MB_s"), rate(nkey, "cpu_bound_MB_s"),
                     key="relay_MB_per_cpu_s_" + key)

    # -- 4. memory per idle session ---------------------------------------------
    def open_idle(self, port, count):
        clients = []
        try:
            deadline = time.monotonic() + self.args.phase_timeout
            for _ in range(count):
                if time.monotonic() > deadline:
                    raise BenchError("opening %d idle sessions on port %d took too long"
                                     % (count, port))
                c, _lat = starttls_login(port, self.certs.ca)
                clients.append(c)
                untagged, tagged = c.command("S", "SELECT INBOX")
                expect_ok("S", tagged, untagged, "SELECT INBOX on port %d" % port)
        except BaseException:
            for c in clients:
                c.close()
            raise
        return clients

    def close_idle(self, clients):
        for c in clients:
            try:
                c.command("Q", "LOGOUT", timeout=5)
            except (OSError, mgtest.Closed, socket.timeout):
                pass
            c.close()

    def idle_memory(self, who, port):
        """(tree memory with N idle sessions - with none) / N for who's
        whole process tree, N = --idle sessions opened on port. A proxy is
        restarted first: heap that earlier sessions freed would otherwise
        be reused by these and hide what they cost."""
        k = self.args.idle
        if who == "dovecot":
            root = self.dovecot.pid
            settle_tree(root, [self.dovecot.imap_port, self.dovecot.imaps_port], "Dovecot")
        else:
            self.restart(who)
            self.settle(who)
            root = self.nginx.pid if who == "nginx" else self.mg.pid
        base = tree_memory(root)
        clients = self.open_idle(port, k)
        try:
            time.sleep(self.args.idle_settle)
            for c in clients:       # all still open and idle?
                if not c.is_open(0.01):
                    raise BenchError("an idle session on port %d was closed" % port)
            loaded = tree_memory(root)
        finally:
            self.close_idle(clients)
        return {"sessions": k, "base": base, "loaded": loaded,
                "pss_kb_per_session": (loaded["pss_kb"] - base["pss_kb"]) / float(k),
                "rss_kb_per_session": (loaded["rss_kb"] - base["rss_kb"]) / float(k),
                "private_kb_per_session": (loaded["private_kb"] - base["private_kb"]) / float(k)}

    def restart(self, who):
        if who == "nginx":
            self.nginx.stop()
            try:
                self.nginx.start()
            except NginxUnavailable as e:
                raise BenchError("nginx did not restart: %s" % e)
        else:
            self.mg.stop()
            self.mg.start()

    def memory(self):
        results = {}
        paths = [("plain", "gateway", self.mg.port("imap_plain")),
                 ("tls", "gateway", self.mg.port("imap_tls"))]
        if self.nginx:
            paths.append(("nginx", "nginx", self.nginx.imap_port))
        # Directly: Dovecot's whole tree (imap processes, login and auth).
        paths.append(("direct", "dovecot", self.dovecot.imap_port))
        for label, who, port in paths:
            r = results[label] = self.idle_memory(who, port)
            log("idle session memory, %s: %.1f kB PSS/session (%.1f private, %.1f RSS); tree "
                "%d kB PSS in %d processes idle, %d kB in %d with %d sessions"
                % (label, r["pss_kb_per_session"], r["private_kb_per_session"],
                   r["rss_kb_per_session"], r["base"]["pss_kb"], r["base"]["procs"],
                   r["loaded"]["pss_kb"], r["loaded"]["procs"], r["sessions"]))
        self.settle()
        self.check_alive()
        self.raw["memory"] = results
        n = results.get("nginx", {}).get("pss_kb_per_session")
        d = results["direct"]["pss_kb_per_session"]
        for label, name, budget in (("plain", "plaintext", BUDGET_IDLE_KB_PLAIN),
                                    ("tls", "TLS", BUDGET_IDLE_KB_TLS)):
            v = results[label]["pss_kb_per_session"]
            self.add("memory per idle session (tree PSS), %s backend leg" % name, "kB", v, n, d,
                     "<= %.0f kB" % budget, "within" if v <= budget else "OVER",
                     key="idle_pss_kb_per_session_" + label)

    # -- 6. password guessing ----------------------------------------------------------
    def guessing(self):
        """Legitimate clients logging in while guessers from many addresses
        try wrong passwords, against the same clients without the attack, on
        a gateway with the production defaults (login_penalty on, bans after
        20 failures, 50 connections before login per address). Reports the
        legitimate LOGIN median and sessions/s both ways (goal: within 10%),
        and the gateway's CPU per attempt it rejected (the attack's CPU less
        the legitimate sessions' at their own cost)."""
        a = self.args
        attempts, sources = (300, 10) if a.quick else (2000, 50)
        legit, threads = a.logins, 8
        mg = self.start_gateway(self.dovecot, "mailgated-guessing", 4000,
                                listeners=[mgtest.listener("imap_plain", "starttls",
                                                           backend="plain")],
                                login_penalty=True, ban_after=20, max_connections_per_ip=0)
        port = mg.port("imap_plain")
        r = {"attempts": attempts, "sources": sources, "legit_sessions": legit}
        try:
            run_sessions(port, self.certs.ca, a.warmup, threads, a.phase_timeout)
            (wall0, base), u0, s0, _ = self.tree_cpu(
                "gateway", lambda: run_sessions(port, self.certs.ca, legit, threads,
                                                a.phase_timeout), mg)

            def attacked():
                workers, state = run_guessers(port, self.certs.ca, attempts, sources, 32, 0.5,
                                              a.phase_timeout)
                result = run_sessions(port, self.certs.ca, legit, threads, a.phase_timeout)
                for w in workers:
                    w.join(max(0.1, a.phase_timeout))
                if any(w.is_alive() for w in workers):
                    raise BenchError("the guessers did not finish within %.0f s"
                                     % a.phase_timeout)
                return result, state["outcomes"]
            ((wall1, under), outcomes), u1, s1, _ = self.tree_cpu("gateway", attacked, mg)
        finally:
            mg.stop()
        per_session = (u0 + s0) / legit
        r["outcomes"] = dict(outcomes)
        r["base"] = {"login_median_ms": median_ms(base), "sessions_per_s": legit / wall0}
        r["attack"] = {"login_median_ms": median_ms(under), "sessions_per_s": legit / wall1}
        r["cpu_ms_per_attempt"] = max(0.0, (u1 + s1) - per_session * legit) / attempts
        log("guessing: %d attempts from %d addresses (%s); legitimate LOGIN median %.2f ms "
            "under attack, %.2f ms without; %.1f sessions/s under attack, %.1f without; "
            "%.2f ms gateway CPU per attempt"
            % (attempts, sources, ", ".join("%s %d" % kv for kv in sorted(outcomes.items())),
               r["attack"]["login_median_ms"], r["base"]["login_median_ms"],
               r["attack"]["sessions_per_s"], r["base"]["sessions_per_s"],
               r["cpu_ms_per_attempt"]))
        self.raw["guessing"] = r
        latency = r["attack"]["login_median_ms"] / r["base"]["login_median_ms"]
        rate = r["base"]["sessions_per_s"] / r["attack"]["sessions_per_s"]
        self.add("guessing: legitimate LOGIN median, attacked / not", "ratio", latency,
                 budget="<= %.1f" % BUDGET_GUESSING_RATIO,
                 verdict="within" if latency <= BUDGET_GUESSING_RATIO else "OVER",
                 key="guessing_login_ratio")
        self.add("guessing: legitimate sessions/s, not attacked / attacked", "ratio", rate,
                 budget="<= %.1f" % BUDGET_GUESSING_RATIO,
                 verdict="within" if rate <= BUDGET_GUESSING_RATIO else "OVER",
                 key="guessing_rate_ratio")
        self.add("guessing: gateway CPU per wrong-password attempt", "ms",
                 r["cpu_ms_per_attempt"], key="guessing_cpu_ms_per_attempt")
        self.add("  attempts banned / refused at a limit / answered NO / abandoned", "-",
                 None, budget="%d / %d / %d / %d" % tuple(outcomes.get(k, 0) for k in
                                                        ("banned", "refused", "failed",
                                                         "abandoned")),
                 key="guessing_outcomes")

    # -- 7. 10,000 idle sessions (--idle-10k) ---------------------------------------
    def idle_many(self):
        """Many idle authenticated sessions through a gateway and a Dovecot
        of their own (limits raised for them alone, so that the other
        figures keep the ordinary configuration)."""
        a = self.args
        count = a.idle_many
        nofile = raise_nofile(4 * count + 4096, count + 1024)
        log("descriptor limit %d (inherited by the gateway and Dovecot)" % nofile)
        extra = _MANY_DOVECOT_CONF.format(sessions=count + 100,
                                          imap_procs=count // 10 + 100,
                                          clients=2 * count + 1024)
        dovecot = mgtest.Dovecot(self.td, self.certs, users={USER: PASSWORD},
                                 name="dovecot-many", port_start=20000, auth_failure_delay=0,
                                 extra_conf=extra, start=False)
        dovecot.deliver(USER, b"Subject: idle\r\n\r\nhello\r\n")
        dovecot.start()
        mg = self.start_gateway(dovecot, "mailgated-many", count + 1000,
                                listeners=[mgtest.listener("imap_plain", "starttls",
                                                           backend="plain")],
                                login_timeout=600, session_timeout=3600)
        try:
            r = self.hold_many(mg, count)
            # Thousands of sessions end when their clients go: let them,
            # before stopping the gateway (its stop waits only briefly).
            settle_tree(mg.pid, [mg.port("imap_plain")], "mailgated-many",
                        timeout=max(a.phase_timeout, 600.0))
        finally:
            mg.stop(timeout=60)
            dovecot.stop()
        self.idle_many_rows(r)

    def hold_many(self, mg, count):
        """Open count idle sessions through mg, read its tree's memory and
        log one fresh session in while they are held; close them."""
        a = self.args
        port = mg.port("imap_plain")
        one_session(port, self.certs.ca)
        settle_tree(mg.pid, [port], "mailgated-many")
        base = tree_memory(mg.pid)
        log("opening %d idle sessions through mailgated pid %d ..." % (count, mg.pid))
        opened, failed, error, took = open_many_idle(port, self.certs.ca, count, 32,
                                                     max(a.phase_timeout, 1800.0))
        try:
            time.sleep(a.idle_settle)
            still = sum(1 for c in opened if _still_open(c))
            loaded = tree_memory(mg.pid)
            logins, login_error = fresh_logins(port, self.certs.ca, 5)
        finally:
            for c in opened:
                c.close()
        if not mg.running():
            raise BenchError("mailgated-many exited:\n" + mgtest.tail(mg.log()))
        r = {"sessions": count, "opened": len(opened), "open_at_end": still, "failed": failed,
             "first_error": error, "open_s": took, "base": base, "loaded": loaded,
             "tree_pss_MB": loaded["pss_kb"] / 1000.0,
             "pss_kb_per_session": (loaded["pss_kb"] - base["pss_kb"]) / float(max(1, still)),
             "fresh_login_ms": [x * 1000 for x in logins], "fresh_login_error": login_error}
        r["fresh_login_median_ms"] = statistics.median(r["fresh_login_ms"]) if logins else None
        log("%d of %d idle sessions open (%d failed%s) after %.0f s; tree %.1f MB PSS in %d "
            "processes; fresh LOGIN: %s"
            % (still, count, failed, ": " + error if error else "", took, r["tree_pss_MB"],
               loaded["procs"], "median %.2f ms" % r["fresh_login_median_ms"] if logins
               else login_error))
        return r

    def idle_many_rows(self, r):
        count, still = r["sessions"], r["open_at_end"]
        self.raw["idle_many"] = r
        self.add("%d idle sessions: open at once" % count, "sessions", still, None, None,
                 "all %d" % count, "within" if still == count else "FAILED", key="idle_many_open")
        self.add("%d idle sessions: whole tree PSS" % count, "MB", r["tree_pss_MB"],
                 key="idle_many_tree_pss_MB")
        self.add("%d idle sessions: PSS per session" % count, "kB", r["pss_kb_per_session"],
                 None, None, "<= %.0f kB" % BUDGET_IDLE_KB_PLAIN,
                 "within" if r["pss_kb_per_session"] <= BUDGET_IDLE_KB_PLAIN else "OVER",
                 key="idle_many_pss_kb_per_session")
        self.add("%d idle sessions: a fresh LOGIN's latency, median of 5" % count, "ms",
                 r["fresh_login_median_ms"], None, None, "succeeds",
                 "within" if not r["fresh_login_error"] else "FAILED",
                 key="idle_many_login_ms")

    # -- 5. certificates by name (certificate_dir) ---------------------------------
    def cert_dir(self):
        """A gateway with --certs pairs in its certificate_dir beside the same
        gateway with an empty one: start to engines ready, the tree's PSS,
        and CPU per full handshake with an SNI name from the directory
        beside one without SNI (on the gateway with the pairs).

        The first start with new pairs is not the same as a restart: the
        first engine keeps a last-good copy of every pair (engine_lastgood.h),
        written and synced once per new pair. Both are timed; a first start
        that the master gives up on (its engines must be ready within a
        bound) is a FAILED row, and the gateway is started again until it
        comes up (each attempt keeps the copies it wrote)."""
        a = self.args
        n = a.certs
        top = self.td.mkdir("certdir")
        empty, full = self.td.mkdir("certdir", "empty"), self.td.mkdir("certdir", "pairs")
        t0 = time.monotonic()
        mgtest.run([find_mkcerts(), self.certs.ca, self.certs.ca_key, full, str(n)],
                   timeout=max(a.phase_timeout, 600.0))
        log("%d certificate pairs written to %s in %.1f s" % (n, full, time.monotonic() - t0))
        r = {"count": n, "dir": top}
        for label, directory, want in (("empty", empty, 0), ("pairs", full, n)):
            mg = self.start_gateway(self.dovecot, "mailgated-certs-" + label, 1000,
                                    listeners=[mgtest.listener("imaps", "implicit",
                                                               backend="plain")],
                                    tls={"certificate_dir": directory}, start=False)
            res = r[label] = {"attempts": []}
            try:
                for _ in range(4):
                    att = self.timed_start(mg, want)
                    res["attempts"].append(att)
                    if att["ready_s"] is not None:
                        break
                    log("%s: first start with %d pairs failed after %.1f s: %s"
                        % (mg.name, want, att["failed_s"], att["error"]))
                else:
                    raise BenchError("%s did not start in %d attempts"
                                     % (mg.name, len(res["attempts"])))
                res["first"] = res["attempts"][0]
                mg.stop()
                res["restart"] = self.timed_start(mg, want)
                if res["restart"]["ready_s"] is None:
                    raise BenchError("%s did not restart: %s"
                                     % (mg.name, res["restart"]["error"]))
                settle_tree(mg.pid, [mg.port("imaps")], mg.name)
                res["memory"] = mem = tree_memory(mg.pid)
                log("certificate_dir with %d pairs: engines ready %s after the first start, "
                    "%.2f s after a restart (%d engines); tree %d kB PSS in %d processes"
                    % (want, "%.2f s" % res["first"]["ready_s"] if res["first"]["ready_s"]
                       is not None else "NEVER", res["restart"]["ready_s"],
                       res["restart"]["engines"], mem["pss_kb"], mem["procs"]))
                if label == "pairs":
                    r["handshakes"] = self.sni_handshakes(mg, n)
            finally:
                mg.stop()
        r["added_MB"] = (r["pairs"]["memory"]["pss_kb"] - r["empty"]["memory"]["pss_kb"]) / 1000.0
        self.raw["certificate_dir"] = r
        self.cert_dir_rows(r)

    def timed_start(self, mg, want):
        """Start mg; returns {"ready_s": seconds from starting it to its
        master's "ready engines=" line (None if it never came), "engines",
        "error", "failed_s"}. The log has one-second stamps, so it is
        watched while the gateway starts. The directory's own log line must
        say it held want pairs."""
        a = self.args
        offset = len(mg.log()) if os.path.exists(mg.log_path) else 0
        box = {}

        def starter():
            try:
                mg.start(timeout=max(60.0, a.phase_timeout))
            except BaseException as e:   # noqa: B036 - reported by the main thread
                box["error"] = e
        started = threading.Thread(target=starter, daemon=True)
        t0 = time.monotonic()
        started.start()
        out = {"ready_s": None, "engines": None, "error": None, "failed_s": None}
        while time.monotonic() - t0 < a.phase_timeout:
            m = re.search(r"ready engines=(\d+)", mg.log()[offset:])
            if m:
                out["ready_s"] = time.monotonic() - t0
                out["engines"] = int(m.group(1))
                break
            if not started.is_alive():
                break
            time.sleep(0.01)
        started.join(max(60.0, a.phase_timeout))
        if out["ready_s"] is None:
            errors = re.findall(r"error: (.*)", mg.log()[offset:])
            out["error"] = errors[-1] if errors else str(box.get("error", "timed out"))
            out["failed_s"] = time.monotonic() - t0
            mg.stop()
            return out
        if "error" in box:
            raise BenchError("%s did not start: %s" % (mg.name, box["error"]))
        m = re.search(r"certificate_dir loaded dir=\S+ pairs=(\d+)", mg.log()[offset:])
        held = int(m.group(1)) if m else 0
        if held != want:
            raise BenchError("%s loaded %d pairs of %d:\n%s"
                             % (mg.name, held, want, mgtest.tail(mg.log())))
        return out

    def sni_handshakes(self, mg, pairs):
        """CPU of mg's tree per full handshake with an SNI name from its
        directory beside one without SNI, in alternating rounds so that
        drift on this shared machine falls on both alike.

        Two kinds of SNI round. "Served before": names every engine has
        served (so their leaves are in its parsed-leaf cache, bounded at
        1,024 per engine; engine_leafcache.h), which is what a platform's
        clients reconnecting all day see; the budget is judged on these.
        "First use": names no engine has served yet, each once, so every
        handshake parses its leaf (OpenSSL 3.0 builds a key decoder for it):
        reported, with its own ratio, not judged."""
        a = self.args
        # Rounds alternate, and the median of their ratios is judged: one
        # round that drift hit (this machine's speed moves by a quarter
        # within minutes) does not decide.
        port, rounds, per_round = mg.port("imaps"), 3 if a.quick else 5, a.handshakes
        if per_round > 1000 or pairs < per_round * (2 + rounds):
            raise BenchError("--handshakes %d needs at most 1000 and --certs at least %d"
                             % (per_round, per_round * (2 + rounds)))

        def name(i):
            return "customer%d.bench.test" % (1 + (i * 7919) % pairs)
        served = [name(i) for i in range(per_round)]
        fresh = [[name(per_round * (1 + r) + i) for i in range(per_round)]
                 for r in range(rounds)]
        runs = {"sni": [], "no_sni": [], "first_use": [], "no_sni_cold": []}

        def go(hostnames):
            for h in hostnames:
                tls_greeting(port, self.certs.ca, server_hostname=h)
        # Connections go to the engines by a hash of the client's port:
        # four passes leave a name unserved by one of two engines 1 time in 16,
        # and the timed rounds fill in the rest.
        go([None] * a.warmup)
        for _ in range(4):
            go(served)
        for r in range(rounds):
            for kind, hostnames in (("sni", served), ("no_sni", [None] * per_round),
                                    ("first_use", fresh[r]),
                                    ("no_sni_cold", [None] * per_round)):
                _, user, system, _faults = self.tree_cpu("gateway", lambda: go(hostnames), mg)
                runs[kind].append((user + system) / per_round)
        res = {k: {"cpu_ms": statistics.mean(v), "rounds_cpu_ms": v} for k, v in runs.items()}
        res["handshakes"] = per_round * rounds
        res["round_ratios"] = [s_ / n_ for s_, n_ in zip(runs["sni"], runs["no_sni"]) if n_]
        res["ratio"] = statistics.median(res["round_ratios"])
        res["first_use_round_ratios"] = [s_ / n_ for s_, n_ in
                                         zip(runs["first_use"], runs["no_sni_cold"]) if n_]
        res["first_use_ratio"] = statistics.median(res["first_use_round_ratios"])
        log("full handshakes with %d pairs loaded: %.3f ms CPU with an SNI name served "
            "before, %.3f ms without SNI; median ratio %.3f (rounds %s); a name's first use "
            "%.3f ms against %.3f ms, median ratio %.3f (rounds %s)"
            % (pairs, res["sni"]["cpu_ms"], res["no_sni"]["cpu_ms"], res["ratio"],
               ", ".join("%.3f" % x for x in res["round_ratios"]),
               res["first_use"]["cpu_ms"], res["no_sni_cold"]["cpu_ms"],
               res["first_use_ratio"],
               ", ".join("%.3f" % x for x in res["first_use_round_ratios"])))
        return res

    def cert_dir_rows(self, r):
        n = r["count"]
        for label, held in (("empty", 0), ("pairs", n)):
            judged = label == "pairs"
            for when in ("first", "restart"):
                att = r[label][when]
                v = att["ready_s"]
                verdict = None
                if judged:
                    verdict = ("FAILED" if v is None else
                               "within" if v <= BUDGET_CERTS_LOAD_S else "OVER")
                self.add("certificate_dir, %d pairs: start to engines ready, %s"
                         % (held, "first start" if when == "first" else "restart"), "s", v,
                         budget="<= %.0f s" % BUDGET_CERTS_LOAD_S if judged else None,
                         verdict=verdict, key="certdir_ready_s_%s_%s" % (label, when))
            tries = len(r[label]["attempts"])
            if tries > 1:
                self.add("  first start gave up after %.1f s (%s); came up at attempt %d"
                         % (r[label]["first"]["failed_s"], r[label]["first"]["error"], tries),
                         "-", None, key="certdir_first_start_failed_" + label)
        added = r["added_MB"]
        self.add("certificate_dir, %d pairs: tree PSS added" % n, "MB", added,
                 budget="<= %.0f MB" % BUDGET_CERTS_ADDED_MB if n == CERTS_FULL else None,
                 verdict=("within" if added <= BUDGET_CERTS_ADDED_MB else "OVER")
                 if n == CERTS_FULL else None, key="certdir_added_MB")
        if n != CERTS_FULL:
            self.add("  scaled to %d pairs (x%.2f; not judged)" % (CERTS_FULL, CERTS_FULL / n),
                     "MB", added * CERTS_FULL / n,
                     budget="<= %.0f MB at %d" % (BUDGET_CERTS_ADDED_MB, CERTS_FULL),
                     verdict="scaled", key="certdir_added_MB_per_10k")
        h = r["handshakes"]
        self.add("CPU per full TLS handshake, SNI name served before", "ms",
                 h["sni"]["cpu_ms"], key="certdir_handshake_cpu_ms_sni")
        self.add("CPU per full TLS handshake, no SNI (same gateway)", "ms",
                 h["no_sni"]["cpu_ms"], key="certdir_handshake_cpu_ms_no_sni")
        spread = h["round_ratios"]
        self.add("SNI / no-SNI handshake CPU, median of rounds", "ratio", h["ratio"],
                 budget="<= %.1f (rounds %.2f..%.2f)" % (BUDGET_SNI_RATIO, min(spread),
                                                         max(spread)),
                 verdict="within" if h["ratio"] <= BUDGET_SNI_RATIO else "OVER",
                 key="certdir_sni_per_no_sni")
        spread = h["first_use_round_ratios"]
        self.add("  a name's first use (leaf parsed) / no-SNI; not judged", "ratio",
                 h["first_use_ratio"], budget="(rounds %.2f..%.2f)" % (min(spread), max(spread)),
                 key="certdir_first_use_per_no_sni")

    # -- report ---------------------------------------------------------------------
    def report(self):
        def fmt(v):
            if v is None:
                return "-"
            if isinstance(v, float):
                return "%.3f" % v if abs(v) < 10 else "%.1f" % v
            return str(v)

        head = ("measurement", "unit", "gateway", "nginx", "gw/nginx", "direct", "budget",
                "verdict")
        table = [head] + [(r["measurement"], r["unit"], fmt(r["gateway"]), fmt(r["nginx"]),
                           "-" if r["gateway_per_nginx"] is None
                           else "%.2fx" % r["gateway_per_nginx"],
                           fmt(r["direct"]), r["budget"] or "-", r["verdict"] or "-")
                          for r in self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(head))]
        lines = []
        for n, row in enumerate(table):
            cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])] + \
                    [row[i].rjust(widths[i]) for i in (2, 3, 4, 5)] + \
                    [row[6].ljust(widths[6]), row[7]]
            lines.append("  ".join(cells).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        over = self.misses()
        a = self.args
        print()
        print("mailgate benchmark report (%s; %d cores; %s)"
              % ("quick" if a.quick else "full", os.cpu_count() or 0, platform.node()))
        print("  %d STARTTLS sessions per path from %d threads (and from %d), %d full and "
              "%d resumed TLS handshakes per path, %d sequential "
              "LOGINs per path, %.0f MiB message x %d fetches, %d idle sessions, %d "
              "certificate_dir pairs; TLS 1.3, "
              "ECDSA P-256; MB = 10^6 bytes; FETCH rate = size / (curl time_total - "
              "time_pretransfer); "
              "'direct' = Dovecot %s"
              % (a.sessions, a.threads, BURST_THREADS, a.handshakes, a.handshakes, a.logins,
                 self.message_size / 1048576.0, a.fetches, a.idle, a.certs,
                 self.dovecot_version()))
        print("  " + self.nginx_description())
        print("  budgets: tests/bench/README")
        print()
        for line in lines:
            print(line)
        print()
        if self.nginx:
            print("nginx's mail proxy has no TLS backend leg: TLS-leg rows compare with its "
                  "plaintext leg.")
        unjudged = [r["measurement"] for r in self.rows if r["verdict"] == "no nginx"]
        if unjudged:
            print("not judged, no nginx to compare with: %s" % "; ".join(unjudged))
        if "certificate_dir" in self.raw:
            print("SNI / no-SNI handshake CPU is a ratio of two small CPU figures (clock ticks "
                  "of %.0f ms) on a shared machine: a few percent either way is noise." % TICK_MS)
        if over:
            print("over budget: %s" % "; ".join(over))
        else:
            print("every judged measurement is within budget")
        sys.stdout.flush()

    def misses(self):
        """Budgeted rows that missed (OVER, or FAILED where the budget is
        that something works); "no nginx" is not a miss but a gap."""
        return [r["measurement"] for r in self.rows if r["verdict"] in ("OVER", "FAILED")]

    def nginx_description(self):
        if not self.nginx:
            return "'nginx' = NOT MEASURED: %s" % self.nginx_missing.splitlines()[0]
        return ("'nginx' = nginx %s mail proxy, worker_processes %s (%d workers), auth_http "
                "answered by its own http{} block, plaintext leg to the same Dovecot; CPU and "
                "memory of its whole tree (master, workers)"
                % (self.nginx.version(), self.nginx.workers, len(self.nginx.worker_pids())))

    def dovecot_version(self):
        try:
            r = mgtest.run([mgtest.find_program("dovecot", env="MG_DOVECOT"), "--version"],
                           timeout=10, check=False)
            return r.stdout.decode().strip().split()[0]
        except (OSError, RuntimeError, subprocess.SubprocessError, IndexError):
            return "?"

    def write_json(self, path):
        n = self.nginx
        doc = {
            "tool": "mgbench",
            "mode": "quick" if self.args.quick else "full",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": {"cpus": os.cpu_count(), "node": platform.node(),
                     "kernel": platform.release(), "clk_tck": CLK_TCK},
            "dovecot": self.dovecot_version(),
            "nginx": ({"version": n.version(), "binary": n.binary, "mail_module": n.module,
                       "worker_processes": n.workers, "workers": len(n.worker_pids())}
                      if n else {"missing": self.nginx_missing}),
            "mailgated": self.mg.binary if self.mg else None,
            "parameters": {k: v for k, v in vars(self.args).items() if k != "json"},
            "budgets": {"cpu_per_session_vs_nginx_max": BUDGET_CPU_VS_NGINX,
                        "idle_pss_kb_per_session_plain": BUDGET_IDLE_KB_PLAIN,
                        "idle_pss_kb_per_session_tls": BUDGET_IDLE_KB_TLS,
                        "fetch_vs_nginx_min": BUDGET_FETCH_VS_NGINX,
                        "login_added_ms_vs_direct": BUDGET_LOGIN_ADDED_MS,
                        "certdir_ready_s_max": BUDGET_CERTS_LOAD_S,
                        "certdir_added_MB_max_at_%d" % CERTS_FULL: BUDGET_CERTS_ADDED_MB,
                        "certdir_sni_per_no_sni_max": BUDGET_SNI_RATIO},
            "results": self.rows,
            "over_budget": self.misses(),
            "raw": self.raw,
        }
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=False)
            f.write("\n")
        os.rename(tmp, path)
        log("JSON report written to %s" % path)


# Dovecot for --idle-10k: every session comes from 127.0.0.1 as one user,
# and ten sessions share an imap process (one process each would be
# thousands of processes and gigabytes that are not the gateway's;
# client_limit means nothing while service_count is 1, imap's default).
_MANY_DOVECOT_CONF = """\
protocol imap {{
  mail_max_userip_connections = {sessions}
}}
service imap {{
  service_count = 0
  process_limit = {imap_procs}
  client_limit = 10
}}
default_client_limit = {clients}
"""


def find_mkcerts():
    """tests/bench/mkcerts (MG_MKCERTS, else beside the mailgated binary's
    build tree): `make bench` builds it."""
    path = os.environ.get("MG_MKCERTS") or os.path.normpath(
        os.path.join(os.path.dirname(mgtest.default_mailgated_binary()), "..", "tests", "bench",
                     "mkcerts"))
    if not os.access(path, os.X_OK):
        raise BenchError("%s not found: build it (make tests/bench/mkcerts) or set MG_MKCERTS"
                         % path)
    return path


def fresh_logins(port, ca, n):
    """n whole sessions one after another; returns (LOGIN latencies in
    seconds, None) or, at the first that fails, (those so far, the error):
    a gateway that cannot log anyone in while it holds many sessions is a
    result, not a reason to stop measuring."""
    logins = []
    for _ in range(n):
        try:
            logins.append(one_session(port, ca)["login"])
        except (BenchError, OSError, ssl.SSLError, mgtest.Closed, AssertionError) as e:
            return logins, "%s: %s" % (type(e).__name__, e)
    return logins, None


def raise_nofile(want, need):
    """Raise this process's descriptor limit towards want (the servers
    started afterwards inherit it): the hard limit too where we may (root
    with CAP_SYS_RESOURCE), else up to the hard limit. BenchError if that
    leaves less than need (what this client alone holds)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
        return want
    except (ValueError, OSError):
        pass
    if hard < need:
        raise BenchError("cannot raise RLIMIT_NOFILE to %d, and the hard limit %d is below "
                         "the %d this client needs (raise it: ulimit -Hn)" % (want, hard, need))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _still_open(conn):
    """True unless the server has closed an IdleConn (nothing is expected
    on an idle session; a BYE or EOF means it was dropped)."""
    try:
        data = conn.sock.recv(4096)
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return True
    except (OSError, ssl.SSLError):
        return False
    return bool(data) and b"BYE" not in data


# --only's names, in the order a run measures them; idle-10k only when asked.
PHASES = {"sessions": "sessions", "handshakes": "handshakes", "burst": "sessions_burst",
          "login": "login_latency", "throughput": "throughput", "memory": "memory",
          "certs": "cert_dir", "guessing": "guessing", "idle-10k": "idle_many"}


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Measure mailgated against nginx's mail proxy and Dovecot directly.")
    ap.add_argument("--quick", action="store_true",
                    help="smaller counts (CI): 60 sessions, 16 MiB, 50 idle sessions")
    ap.add_argument("--sessions", type=int, help="STARTTLS sessions per path (300; quick 60)")
    ap.add_argument("--threads", type=int, default=4, help="client threads for sessions (4)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed sessions before each run")
    ap.add_argument("--handshakes", type=int,
                    help="sequential TLS handshakes per kind and path (300; quick 60)")
    ap.add_argument("--logins", type=int, help="sequential LOGINs per path (200; quick 40)")
    ap.add_argument("--message-mib", type=float, help="large message size in MiB (64; quick 16)")
    ap.add_argument("--fetches", type=int, help="fetches of it per path (5; quick 3)")
    ap.add_argument("--idle", type=int, help="idle sessions for memory (200; quick 50)")
    ap.add_argument("--idle-settle", type=float, default=0.5,
                    help="seconds idle sessions rest before memory is read (0.5)")
    ap.add_argument("--idle-10k", action="store_true",
                    help="also hold --idle-many idle sessions through a gateway of their own")
    ap.add_argument("--idle-many", type=int, default=10000,
                    help="sessions for --idle-10k (10000)")
    ap.add_argument("--certs", type=int,
                    help="certificate pairs in the certificate_dir phase (10000; quick 1000)")
    ap.add_argument("--only", metavar="PHASE[,PHASE]",
                    help="run only these phases: %s" % ", ".join(PHASES))
    ap.add_argument("--phase-timeout", type=float, default=180.0,
                    help="seconds any one run may take before the benchmark gives up (180)")
    ap.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    ap.add_argument("--dir", help="working directory (emptied first, kept afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the working directory")
    args = ap.parse_args(argv)
    quick = args.quick
    for name, full, small in (("sessions", 300, 60), ("handshakes", 300, 60),
                              ("logins", 200, 40),
                              ("message_mib", 64.0, 16.0), ("fetches", 5, 3), ("idle", 200, 50),
                              ("certs", CERTS_FULL, 1000)):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    bounds = {"sessions": (1, 100000), "handshakes": (1, 100000), "threads": (1, 64),
              "warmup": (0, 1000),
              "logins": (1, 100000), "message_mib": (0.01, 1024), "fetches": (1, 100),
              "idle": (1, 450), "idle_settle": (0, 60), "idle_many": (1, 50000), "certs": (1, 100000),
              "phase_timeout": (1, 3600)}
    for name, (lo, hi) in bounds.items():
        v = getattr(args, name)
        if not lo <= v <= hi:
            ap.error("--%s must be between %s and %s" % (name.replace("_", "-"), lo, hi))
    if args.only is None:
        args.phases = [p for p in PHASES if p != "idle-10k" or args.idle_10k]
    else:
        given = [p.strip() for p in args.only.split(",") if p.strip()]
        unknown = [p for p in given if p not in PHASES]
        if unknown or not given:
            ap.error("--only: unknown phase %s (phases: %s)"
                     % (", ".join(unknown) or "''", ", ".join(PHASES)))
        args.phases = [p for p in PHASES if p in given]     # a run's own order
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        print("mgbench: run as root (the private Dovecot needs it; mailgated drops to nobody)",
              file=sys.stderr)
        return 2
    for prog in ("curl", "openssl"):
        if shutil.which(prog) is None:
            print("mgbench: %s not found" % prog, file=sys.stderr)
            return 2
    mgtest.install_signal_handlers()
    bench = Bench(args)
    status = 0
    t0 = time.monotonic()
    try:
        bench.start()
        for phase in args.phases:
            getattr(bench, PHASES[phase])()
    except (BenchError, AssertionError, RuntimeError, OSError, ssl.SSLError,
            subprocess.SubprocessError, mgtest.Closed) as e:
        print("mgbench: cannot measure: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        live = mgtest.describe_live()
        if live:
            print(live, file=sys.stderr)
        if bench.nginx:
            print("--- nginx error log (%s) ---\n%s"
                  % (bench.nginx.error_log, mgtest.tail(bench.nginx.log(), 10)), file=sys.stderr)
        status = 1
    if status == 0:
        bench.report()
        if args.json:
            bench.write_json(args.json)
    errors = mgtest.cleanup()
    for err in errors:
        print("mgbench: while stopping: %s" % err.rstrip(), file=sys.stderr)
        status = 1
    log("%s after %.1f s" % ("done" if status == 0 else "FAILED", time.monotonic() - t0))
    return status


if __name__ == "__main__":
    sys.exit(main())
