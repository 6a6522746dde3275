#!/usr/bin/env python3
"""mgbench - mailgate's benchmark (`make bench`, as root).

One run starts a private Dovecot and one mailgated in front of it, then
measures, through the gateway and directly against Dovecot:

  1. STARTTLS sessions (connect, greeting, STARTTLS, TLS 1.3 handshake with
     the ECDSA P-256 test certificate, LOGIN, LOGOUT) from a few client
     threads: sessions per second, and the gateway's CPU per session from
     the master's /proc/PID/stat (utime+stime+cutime+cstime; the master
     reaps every session child, so its children's CPU is in cutime/cstime).
     Once with a plaintext backend leg, once with a TLS backend leg
     (implicit TLS to Dovecot's imaps port, certificate verified).
     Dovecot's CPU is not ours: directly, only sessions per second.
  2. LOGIN latency: median and p95 from sending LOGIN to the tagged OK,
     one session at a time.
  3. Relay throughput: one large message fetched with curl, through the
     gateway (imaps and STARTTLS) and from Dovecot's imaps port.
  4. Memory per idle authenticated session (logged in, INBOX selected):
     proportional set size (smaps_rollup Pss) of each session child.

It prints a table (measurement, gateway, direct, budget, verdict) and with
--json FILE writes the same as JSON. Budgets are the design's "Performance
budget"; missing one is reported, not an error. The exit status is
non-zero only when something could not be measured (a server did not
start, a login failed, a loop ran out of time).

    python3 tests/bench/mgbench.py [--quick] [--json FILE] [--keep]
    (MG_MAILGATED=path/to/mailgated; PYTHONPATH=tests/integration)
"""

import argparse
import json
import os
import platform
import shutil
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
MB = 1000 * 1000            # throughput in MB/s (10^6 bytes), as the design's numbers

# Budgets from DESIGN.md, "Performance budget".
BUDGET_CPU_PLAIN_MS = 1.5
BUDGET_CPU_TLS_MS = 3.0
BUDGET_LOGIN_ADDED_MS = 3.0
BUDGET_RELAY_MBPS = 300.0
BUDGET_IDLE_PSS_KB = 200.0

CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """Something could not be measured."""


def log(msg):
    print("mgbench: " + msg, flush=True)


# ---------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------

_CLIENT_CTX = {}


def client_context(ca):
    """One shared client context: TLS 1.3 only, verifies the test CA."""
    ctx = _CLIENT_CTX.get(ca)
    if ctx is None:
        ctx = ssl.create_default_context(cafile=ca)
        ctx.check_hostname = True
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        _CLIENT_CTX[ca] = ctx
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
    """connect, greeting, STARTTLS, handshake, LOGIN. Returns (client,
    seconds from sending LOGIN to its tagged OK)."""
    c = Client(port, ca=ca, timeout=timeout)
    try:
        if not c.greeting.startswith("* OK"):
            raise BenchError("greeting on port %d: %r" % (port, c.greeting))
        c.starttls()
        if c.tls_version() != "TLSv1.3":
            raise BenchError("negotiated %s on port %d, not TLSv1.3" % (c.tls_version(), port))
        t0 = time.perf_counter()
        untagged, tagged = c.login(user, password, tag="L")
        login_s = time.perf_counter() - t0
        expect_ok("L", tagged, untagged, "LOGIN on port %d" % port)
        return c, login_s
    except BaseException:
        c.close()
        raise


def one_session(port, ca):
    """A whole STARTTLS session; returns the LOGIN latency in seconds."""
    c, login_s = starttls_login(port, ca)
    try:
        untagged, tagged = c.command("Q", "LOGOUT")
        expect_ok("Q", tagged, untagged, "LOGOUT on port %d" % port)
    finally:
        c.close()
    return login_s


def run_sessions(port, ca, count, threads, deadline_s):
    """count sessions from `threads` client threads. Returns (wall seconds,
    list of LOGIN latencies). BenchError on any failure or if the whole
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


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


# ---------------------------------------------------------------------------
# /proc readings
# ---------------------------------------------------------------------------

def proc_stat(pid):
    """CPU (clock ticks) and minor page faults of pid and of its reaped
    children, from /proc/PID/stat."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError as e:
        raise BenchError("cannot read /proc/%d/stat: %s" % (pid, e))
    # fields[0] is field 3 (state): minflt=10, cminflt=12, utime=14, stime=15,
    # cutime=16, cstime=17
    return {"minflt": int(fields[7]), "cminflt": int(fields[8]),
            "utime": int(fields[11]), "stime": int(fields[12]),
            "cutime": int(fields[13]), "cstime": int(fields[14])}


def smaps_rollup(pid):
    """{field: kB} from /proc/PID/smaps_rollup."""
    out = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1])
    except OSError as e:
        raise BenchError("cannot read /proc/%d/smaps_rollup: %s" % (pid, e))
    if "Pss" not in out:
        raise BenchError("no Pss in /proc/%d/smaps_rollup" % pid)
    return out


# ---------------------------------------------------------------------------
# the measurements
# ---------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.rows = []        # the report
        self.raw = {}         # everything measured, for --json
        self.td = self.certs = self.dovecot = self.mg = None

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
        self.message_size = self._deliver_large(size)
        self.dovecot.start()
        listeners = [
            mgtest.listener("imap_plain", "starttls", backend="plain"),
            mgtest.listener("imaps_plain", "implicit", backend="plain"),
            mgtest.listener("imap_tls", "starttls", backend="tls"),
            mgtest.listener("imaps_tls", "implicit", backend="tls"),
        ]
        self.mg = mgtest.Mailgated(
            self.td, self.certs, name="mailgated",
            backends=[mgtest.backend_for(self.dovecot, "plain"),
                      mgtest.backend_for(self.dovecot, "tls", tls="implicit")],
            default_backend="plain", listeners=listeners,
            log_level="info", auth_failure_delay=0,
            max_connections=5000, max_connections_per_ip=5000,
            login_timeout=60, session_timeout=600, backend_connect_timeout=10,
            backend_timeout=30, shutdown_grace=2)
        log("Dovecot pid %d (imap %d, imaps %d), mailgated pid %d (%s)"
            % (self.dovecot.pid, self.dovecot.imap_port, self.dovecot.imaps_port, self.mg.pid,
               ", ".join("%s %d" % (l["name"], l["port"]) for l in self.mg.listeners)))
        # Prove every path once before timing anything.
        for port in (self.mg.port("imap_plain"), self.mg.port("imap_tls"), self.dovecot.imap_port):
            one_session(port, self.certs.ca)
        self.check_alive()

    def _deliver_large(self, size):
        header = (b"From: bulk@example.org\r\nTo: bulk@example.org\r\n"
                  b"Subject: large message for mgbench\r\n"
                  b"Message-ID: <large@mgbench>\r\nMIME-Version: 1.0\r\n"
                  b"Content-Type: text/plain; charset=us-ascii\r\n\r\n")
        line = (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                b"mgbench-relay\r\n")
        body = line * max(1, (size - len(header)) // len(line))
        data = header + body
        self.dovecot.deliver(BULK_USER, data)
        return len(data)

    def check_alive(self):
        if not self.dovecot.running():
            raise BenchError("dovecot exited:\n" + mgtest.tail(self.dovecot.log()))
        if not self.mg.running():
            raise BenchError("mailgated exited:\n" + mgtest.tail(self.mg.log()))

    def settle(self):
        """Wait until every session child is reaped (its CPU then sits in the
        master's cutime/cstime)."""
        try:
            self.mg.wait_no_children(timeout=20)
        except AssertionError as e:
            raise BenchError(str(e))

    def add(self, name, unit, gateway, direct=None, budget=None, verdict=None, key=None):
        self.rows.append({"measurement": name, "unit": unit, "gateway": gateway,
                          "direct": direct, "budget": budget, "verdict": verdict,
                          "key": key})

    # -- 1. STARTTLS sessions ---------------------------------------------------
    def sessions(self):
        a = self.args
        results = {}
        for label, port in (("plain", self.mg.port("imap_plain")),
                            ("tls", self.mg.port("imap_tls"))):
            run_sessions(port, self.certs.ca, a.warmup, a.threads, a.phase_timeout)
            self.settle()
            st0 = proc_stat(self.mg.pid)
            wall, lat = run_sessions(port, self.certs.ca, a.sessions, a.threads,
                                     a.phase_timeout)
            self.settle()
            st1 = proc_stat(self.mg.pid)
            self.check_alive()
            d = {k: st1[k] - st0[k] for k in st0}
            tick_ms = 1000.0 / CLK_TCK
            cpu_ms = (d["utime"] + d["stime"] + d["cutime"] + d["cstime"]) * tick_ms / a.sessions
            results[label] = {
                "port": port, "sessions": a.sessions, "threads": a.threads,
                "wall_s": wall, "sessions_per_s": a.sessions / wall,
                "cpu_ms_per_session": cpu_ms,
                "master_user_ms": d["utime"] * tick_ms, "master_sys_ms": d["stime"] * tick_ms,
                "children_user_ms": d["cutime"] * tick_ms,
                "children_sys_ms": d["cstime"] * tick_ms,
                "master_minor_faults_per_session": d["minflt"] / a.sessions,
                "child_minor_faults_per_session": d["cminflt"] / a.sessions,
                "login_ms_under_load_median": statistics.median(lat) * 1000,
            }
            log("sessions via gateway (%s backend leg): %.1f/s, %.3f ms CPU/session "
                "(master %.0f+%.0f ms, sessions %.0f+%.0f ms user+sys; %.0f page faults/session)"
                % (label, a.sessions / wall, cpu_ms, d["utime"] * tick_ms, d["stime"] * tick_ms,
                   d["cutime"] * tick_ms, d["cstime"] * tick_ms,
                   (d["minflt"] + d["cminflt"]) / a.sessions))
        run_sessions(self.dovecot.imap_port, self.certs.ca, a.warmup, a.threads,
                     a.phase_timeout)
        wall, lat = run_sessions(self.dovecot.imap_port, self.certs.ca, a.sessions, a.threads,
                                 a.phase_timeout)
        self.check_alive()
        results["direct"] = {"port": self.dovecot.imap_port, "sessions": a.sessions,
                             "threads": a.threads, "wall_s": wall,
                             "sessions_per_s": a.sessions / wall,
                             "login_ms_under_load_median": statistics.median(lat) * 1000}
        log("sessions direct to Dovecot: %.1f/s" % (a.sessions / wall))
        self.raw["sessions"] = results
        d = results["direct"]["sessions_per_s"]
        self.add("STARTTLS sessions/s, plaintext backend leg", "sessions/s",
                 results["plain"]["sessions_per_s"], d, key="sessions_per_s_plain")
        self.add("STARTTLS sessions/s, TLS backend leg", "sessions/s",
                 results["tls"]["sessions_per_s"], d, key="sessions_per_s_tls")
        for label, budget in (("plain", BUDGET_CPU_PLAIN_MS), ("tls", BUDGET_CPU_TLS_MS)):
            v = results[label]["cpu_ms_per_session"]
            self.add("gateway CPU per STARTTLS session, %s backend leg"
                     % ("plaintext" if label == "plain" else "TLS"), "ms", v, None,
                     "<= %.1f ms" % budget, "within" if v <= budget else "OVER",
                     key="cpu_ms_per_session_" + label)

    # -- 2. LOGIN latency ----------------------------------------------------------
    def login_latency(self):
        a = self.args
        results = {}
        for label, port in (("plain", self.mg.port("imap_plain")),
                            ("tls", self.mg.port("imap_tls")),
                            ("direct", self.dovecot.imap_port)):
            run_sessions(port, self.certs.ca, min(5, a.logins), 1, a.phase_timeout)
            _wall, lat = run_sessions(port, self.certs.ca, a.logins, 1, a.phase_timeout)
            ms = [x * 1000 for x in lat]
            results[label] = {"port": port, "logins": a.logins,
                              "median_ms": statistics.median(ms),
                              "p95_ms": percentile(ms, 95),
                              "min_ms": min(ms), "max_ms": max(ms)}
            log("LOGIN latency %s: median %.2f ms, p95 %.2f ms"
                % (label, results[label]["median_ms"], results[label]["p95_ms"]))
        self.check_alive()
        self.settle()
        self.raw["login_latency"] = results
        d = results["direct"]
        for label, name in (("plain", "plaintext"), ("tls", "TLS")):
            g = results[label]
            added = g["median_ms"] - d["median_ms"]
            self.add("LOGIN latency median, %s backend leg" % name, "ms", g["median_ms"],
                     d["median_ms"], "+<= %.0f ms (adds %+.2f)" % (BUDGET_LOGIN_ADDED_MS, added),
                     "within" if added <= BUDGET_LOGIN_ADDED_MS else "OVER",
                     key="login_median_ms_" + label)
            self.add("LOGIN latency p95, %s backend leg" % name, "ms", g["p95_ms"],
                     d["p95_ms"], None, None, key="login_p95_ms_" + label)

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

    def throughput(self):
        a = self.args
        paths = [("gateway imaps, plaintext backend leg", "imaps", self.mg.port("imaps_plain"),
                  "imaps_plain"),
                 ("gateway STARTTLS, plaintext backend leg", "imap", self.mg.port("imap_plain"),
                  "imap_plain"),
                 ("gateway imaps, TLS backend leg", "imaps", self.mg.port("imaps_tls"),
                  "imaps_tls"),
                 ("Dovecot imaps (direct)", "imaps", self.dovecot.imaps_port, "direct")]
        # Warm the page cache and Dovecot's index.
        self.curl_fetch("imaps", self.dovecot.imaps_port)
        results = {}
        for _name, scheme, port, key in paths:
            self.settle()
            st0 = proc_stat(self.mg.pid)
            runs = [self.curl_fetch(scheme, port) for _ in range(a.fetches)]
            self.settle()
            st1 = proc_stat(self.mg.pid)
            speeds = [x["bytes_per_s"] for x in runs]
            results[key] = {"port": port, "scheme": scheme, "runs": runs,
                            "median_MB_s": statistics.median(speeds) / MB,
                            "best_MB_s": max(speeds) / MB,
                            "body_median_MB_s": statistics.median(
                                x["body_bytes_per_s"] or 0 for x in runs) / MB}
            if key != "direct":
                # The gateway's CPU for these fetches (sessions included): how
                # fast one core of it could relay if nothing else were busy.
                ticks = sum(st1[k] - st0[k] for k in ("utime", "stime", "cutime", "cstime"))
                cpu_s = ticks / float(CLK_TCK)
                nbytes = sum(x["bytes"] for x in runs)
                results[key]["gateway_cpu_s"] = cpu_s
                results[key]["gateway_user_s"] = (st1["cutime"] - st0["cutime"]) / float(CLK_TCK)
                results[key]["gateway_sys_s"] = (st1["cstime"] - st0["cstime"]) / float(CLK_TCK)
                results[key]["gateway_cpu_bound_MB_s"] = (nbytes / cpu_s / MB) if cpu_s > 0 \
                    else None
            log("relay %s: median %.0f MB/s (best %.0f; %.0f without connect+login) over %d "
                "fetches of %d bytes%s"
                % (key, results[key]["median_MB_s"], results[key]["best_MB_s"],
                   results[key]["body_median_MB_s"], a.fetches, self.message_size,
                   "" if key == "direct" else "; gateway CPU %.2f s (%.2f user, %.2f sys)"
                   % (results[key]["gateway_cpu_s"], results[key]["gateway_user_s"],
                      results[key]["gateway_sys_s"])))
        self.check_alive()
        self.settle()
        self.raw["throughput"] = {"message_bytes": self.message_size, "paths": results}
        d = results["direct"]["median_MB_s"]
        for name, _scheme, _port, key in paths[:-1]:
            v = results[key]["median_MB_s"]
            self.add("relay throughput, one stream, %s" % name.replace("gateway ", ""), "MB/s",
                     v, d, ">= %.0f MB/s" % BUDGET_RELAY_MBPS,
                     "within" if v >= BUDGET_RELAY_MBPS else "OVER", key="relay_MB_s_" + key)
        for name, _scheme, _port, key in paths[:-1]:
            self.add("relay rate per gateway CPU second, %s" % name.replace("gateway ", ""),
                     "MB/s", results[key]["gateway_cpu_bound_MB_s"], None, None, None,
                     key="relay_MB_per_cpu_s_" + key)

    # -- 4. memory per idle session ---------------------------------------------
    def dovecot_imap_pids(self):
        return [p for p in mgtest.descendants_of(self.dovecot.pid)
                if mgtest.process_name(p) == "imap"]

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

    def memory(self):
        k = self.args.idle
        results = {}
        for label, port in (("plain", self.mg.port("imap_plain")),
                            ("tls", self.mg.port("imap_tls"))):
            self.settle()
            clients = self.open_idle(port, k)
            try:
                time.sleep(self.args.idle_settle)
                for c in clients:       # all still open and idle?
                    if not c.is_open(0.01):
                        raise BenchError("an idle session on port %d was closed" % port)
                kids = self.mg.children(zombies=False)
                if len(kids) != k:
                    raise BenchError("expected %d session children, found %d" % (k, len(kids)))
                maps = [smaps_rollup(p) for p in kids]
            finally:
                self.close_idle(clients)
            pss = [m["Pss"] for m in maps]
            results[label] = {"sessions": k, "pss_kb": pss,
                              "pss_mean_kb": statistics.mean(pss), "pss_max_kb": max(pss),
                              "rss_mean_kb": statistics.mean(m.get("Rss", 0) for m in maps),
                              "private_mean_kb": statistics.mean(
                                  m.get("Private_Clean", 0) + m.get("Private_Dirty", 0)
                                  for m in maps)}
            log("idle session memory via gateway (%s backend leg): Pss mean %.0f kB, max %d kB "
                "(private %.0f kB, Rss %.0f kB)"
                % (label, results[label]["pss_mean_kb"], results[label]["pss_max_kb"],
                   results[label]["private_mean_kb"], results[label]["rss_mean_kb"]))
        self.settle()
        # Directly: Dovecot's imap process per session (its login process,
        # shared by many sessions, is not counted).
        try:
            mgtest.wait_until(lambda: not self.dovecot_imap_pids(), 20,
                              what="Dovecot's imap processes to end")
        except AssertionError as e:
            raise BenchError(str(e))
        clients = self.open_idle(self.dovecot.imap_port, k)
        try:
            time.sleep(self.args.idle_settle)
            try:
                pids = mgtest.wait_until(
                    lambda: (lambda p: p if len(p) == k else None)(self.dovecot_imap_pids()),
                    10, what="%d Dovecot imap processes" % k)
            except AssertionError as e:
                raise BenchError(str(e))
            maps = [smaps_rollup(p) for p in pids]
        finally:
            self.close_idle(clients)
        pss = [m["Pss"] for m in maps]
        results["direct"] = {"sessions": k, "pss_kb": pss, "pss_mean_kb": statistics.mean(pss),
                             "pss_max_kb": max(pss),
                             "rss_mean_kb": statistics.mean(m.get("Rss", 0) for m in maps)}
        log("idle session memory in Dovecot (imap process): Pss mean %.0f kB, max %d kB"
            % (results["direct"]["pss_mean_kb"], results["direct"]["pss_max_kb"]))
        self.check_alive()
        self.raw["memory"] = results
        d = results["direct"]
        for label, name in (("plain", "plaintext"), ("tls", "TLS")):
            g = results[label]
            for stat in ("mean", "max"):
                v = g["pss_%s_kb" % stat]
                self.add("idle session Pss %s, %s backend leg" % (stat, name), "kB", v,
                         d["pss_%s_kb" % stat], "<= %.0f kB" % BUDGET_IDLE_PSS_KB,
                         "within" if v <= BUDGET_IDLE_PSS_KB else "OVER",
                         key="idle_pss_%s_kb_%s" % (stat, label))

    # -- report ---------------------------------------------------------------------
    def report(self):
        def fmt(v):
            if v is None:
                return "-"
            if isinstance(v, float):
                return "%.3f" % v if abs(v) < 10 else "%.1f" % v
            return str(v)

        head = ("measurement", "unit", "gateway", "direct", "budget", "verdict")
        table = [head] + [(r["measurement"], r["unit"], fmt(r["gateway"]), fmt(r["direct"]),
                           r["budget"] or "-", r["verdict"] or "-") for r in self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(head))]
        lines = []
        for n, row in enumerate(table):
            cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])] + \
                    [row[i].rjust(widths[i]) for i in (2, 3)] + \
                    [row[4].ljust(widths[4]), row[5]]
            lines.append("  ".join(cells).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        over = [r["measurement"] for r in self.rows if r["verdict"] == "OVER"]
        a = self.args
        print()
        print("mailgate benchmark report (%s; %d cores; %s)"
              % ("quick" if a.quick else "full", os.cpu_count() or 0, platform.node()))
        print("  %d STARTTLS sessions per path from %d threads, %d sequential LOGINs per path, "
              "%.0f MiB message x %d fetches, %d idle sessions; TLS 1.3, ECDSA P-256; "
              "MB = 10^6 bytes (curl speed_download: size / total time); "
              "'direct' = Dovecot %s"
              % (a.sessions, a.threads, a.logins, self.message_size / 1048576.0, a.fetches,
                 a.idle, self.dovecot_version()))
        print()
        for line in lines:
            print(line)
        print()
        if over:
            print("over budget: %s" % "; ".join(over))
        else:
            print("every budgeted measurement is within budget")
        sys.stdout.flush()

    def dovecot_version(self):
        try:
            r = mgtest.run([mgtest.find_program("dovecot", env="MG_DOVECOT"), "--version"],
                           timeout=10, check=False)
            return r.stdout.decode().strip().split()[0]
        except (OSError, RuntimeError, subprocess.SubprocessError, IndexError):
            return "?"

    def write_json(self, path):
        doc = {
            "tool": "mgbench",
            "mode": "quick" if self.args.quick else "full",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": {"cpus": os.cpu_count(), "node": platform.node(),
                     "kernel": platform.release(), "clk_tck": CLK_TCK},
            "dovecot": self.dovecot_version(),
            "mailgated": self.mg.binary if self.mg else None,
            "parameters": {k: v for k, v in vars(self.args).items() if k != "json"},
            "budgets": {"cpu_ms_per_session_plain": BUDGET_CPU_PLAIN_MS,
                        "cpu_ms_per_session_tls": BUDGET_CPU_TLS_MS,
                        "login_added_ms": BUDGET_LOGIN_ADDED_MS,
                        "relay_MB_s": BUDGET_RELAY_MBPS,
                        "idle_pss_kb": BUDGET_IDLE_PSS_KB},
            "results": self.rows,
            "over_budget": [r["measurement"] for r in self.rows if r["verdict"] == "OVER"],
            "raw": self.raw,
        }
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=False)
            f.write("\n")
        os.rename(tmp, path)
        log("JSON report written to %s" % path)


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Measure mailgated against a private Dovecot, and Dovecot directly.")
    ap.add_argument("--quick", action="store_true",
                    help="smaller counts (CI): 60 sessions, 16 MiB, 20 idle sessions")
    ap.add_argument("--sessions", type=int, help="STARTTLS sessions per path (300; quick 60)")
    ap.add_argument("--threads", type=int, default=4, help="client threads for sessions (4)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed sessions before each run")
    ap.add_argument("--logins", type=int, help="sequential LOGINs per path (200; quick 40)")
    ap.add_argument("--message-mib", type=float, help="large message size in MiB (64; quick 16)")
    ap.add_argument("--fetches", type=int, help="fetches of it per path (3; quick 2)")
    ap.add_argument("--idle", type=int, help="idle sessions for memory (50; quick 20)")
    ap.add_argument("--idle-settle", type=float, default=0.5,
                    help="seconds idle sessions rest before memory is read (0.5)")
    ap.add_argument("--phase-timeout", type=float, default=180.0,
                    help="seconds any one run may take before the benchmark gives up (180)")
    ap.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    ap.add_argument("--dir", help="working directory (emptied first, kept afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the working directory")
    args = ap.parse_args(argv)
    quick = args.quick
    for name, full, small in (("sessions", 300, 60), ("logins", 200, 40),
                              ("message_mib", 64.0, 16.0), ("fetches", 3, 2), ("idle", 50, 20)):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    bounds = {"sessions": (1, 100000), "threads": (1, 64), "warmup": (0, 1000),
              "logins": (1, 100000), "message_mib": (0.01, 1024), "fetches": (1, 100),
              "idle": (1, 1000), "idle_settle": (0, 60), "phase_timeout": (1, 3600)}
    for name, (lo, hi) in bounds.items():
        v = getattr(args, name)
        if not lo <= v <= hi:
            ap.error("--%s must be between %s and %s" % (name.replace("_", "-"), lo, hi))
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
        bench.sessions()
        bench.login_latency()
        bench.throughput()
        bench.memory()
    except (BenchError, AssertionError, RuntimeError, OSError, ssl.SSLError,
            subprocess.SubprocessError, mgtest.Closed) as e:
        print("mgbench: cannot measure: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        live = mgtest.describe_live()
        if live:
            print(live, file=sys.stderr)
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
