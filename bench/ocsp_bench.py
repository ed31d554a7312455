#!/usr/bin/python3
"""OCSP responder benchmark: `revo ocsp serve` (pre-signed GET and POST, on-demand signing
with a nonce) against nginx serving the very same response bytes as a static file,
`openssl ocsp` (in a private network namespace) and `cfssl ocspserve` (POST), in one run.

Prints Markdown tables to stdout (progress on stderr); run through bench/ocsp_bench.sh.
Targets (issue #4): pre-signed GET and POST throughput >= 1.0x nginx static in the same run
and server CPU per request <= nginx's; >= 5x `openssl ocsp` and >= 5x cfssl; p99 <= 1 ms at
half of nginx's maximum rate; on-demand signing with a nonce (ECDSA P-256) >= 50 % of the
single-core `openssl speed ecdsap256` sign rate; memory flat in the number of certificates
served beyond the map itself.

Throughput: wrk -t2 -c64 (POST through a Lua script), closed loop, max rate. Server CPU is
utime+stime from /proc/PID/stat of the whole server (every thread; master and workers for
nginx and `openssl ocsp -multi`) over the run, divided by the requests wrk completed; wrk's
own CPU (getrusage of the child) likewise. Everything shares the machine's cores, so
"other" is the rest of the machine's busy time in that window (kernel softirq not charged
to a process, and anything else running on the machine).

Latency: bench/ocsp_latency (open loop): one request due every 1/rate s over 32 keep-alive
connections; latency is measured from the time each request was due, so queueing shows.
"""
import argparse
import base64
import hashlib
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

TICK = os.sysconf("SC_CLK_TCK")
BIG_MAP = 16 << 30  # REVO_MAP_SIZE for the presign workaround (sparse: no disk used)
PCTS = ["50", "75", "90", "95", "99", "99.5", "99.9", "99.95", "99.99"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ---------------------------------------------------------------- /proc accounting

def _stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    rest = s[s.rindex(")") + 2:].split()
    return int(rest[1]), int(rest[11]) + int(rest[12])  # ppid, utime+stime


def tree(pid):
    """pid and its descendants."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                kids.setdefault(_stat(int(d))[0], []).append(int(d))
            except (OSError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(pid):
    t = 0
    for p in tree(pid):
        try:
            t += _stat(p)[1]
        except OSError:
            pass
    return t / TICK


def machine_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / TICK  # all but idle and iowait


def status_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("RssAnon", "RssFile", "RssShmem", "VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------- servers

class Server:
    """A server we started; stopped by its PID (and its children's PIDs) only."""

    def __init__(self, name, popen, port, netns=False):
        self.name, self.p, self.port, self.netns = name, popen, port, netns

    @property
    def pid(self):
        return self.p.pid

    def nsenter(self):
        return ["nsenter", f"--net=/proc/{self.pid}/ns/net"] if self.netns else []

    def stop(self, kill_tree=False):
        if self.p.poll() is not None:
            return
        pids = tree(self.pid) if kill_tree else [self.pid]
        sig = signal.SIGKILL if kill_tree else signal.SIGTERM
        for q in reversed(pids):
            try:
                os.kill(q, sig)
            except ProcessLookupError:
                pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            for q in tree(self.pid):
                try:
                    os.kill(q, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.p.wait()


STARTED = []


def start_revo(revo, store, work, tag):
    err = open(f"{work}/revo-{tag}.err", "w")
    p = subprocess.Popen([revo, "--store", store, "ocsp", "serve", "--listen", "127.0.0.1:0",
                          "--threads", "2"], stdout=subprocess.PIPE, stderr=err, text=True)
    line = p.stdout.readline()
    m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not m:
        p.kill()
        raise SystemExit(f"ocsp_bench: revo ocsp serve did not start: {line!r} "
                         f"{open(f'{work}/revo-{tag}.err').read()}")
    s = Server("revo", p, int(m.group(1)))
    STARTED.append(s)
    return s


def wait_listen(port, pid=None, timeout=10):
    """Wait for a LISTEN socket on port (in pid's network namespace when given)."""
    base = f"/proc/{pid}/net" if pid else "/proc/net"
    want = ":%04X" % port
    t_end = time.time() + timeout
    while time.time() < t_end:
        for path in (f"{base}/tcp", f"{base}/tcp6"):  # openssl ocsp listens on [::]
            try:
                with open(path) as f:
                    for line in f.readlines()[1:]:
                        parts = line.split()
                        if parts[1].endswith(want) and parts[3] == "0A":
                            return
            except OSError:
                pass
        time.sleep(0.05)
    raise SystemExit(f"ocsp_bench: nothing listens on port {port}")


def start_nginx(work, resp_path):
    d = f"{work}/nginx"
    os.makedirs(f"{d}/tmp", exist_ok=True)
    port = free_port()
    # nginx's workers drop to "nobody" when it starts as root: they could not read the
    # response file in our private work directory
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = f"""{user}worker_processes 2;
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
  open_file_cache max=16 inactive=60s;
  open_file_cache_valid 60s;
  keepalive_requests 10000000;
  server {{
    listen 127.0.0.1:{port} reuseport;
    # every GET URL (the OCSP request after any prefix) gets the one response file
    location ~ ^/ {{
      alias {resp_path};
      default_type application/ocsp-response;
    }}
  }}
}}
"""
    with open(f"{d}/nginx.conf", "w") as f:
        f.write(conf)
    p = subprocess.Popen(["nginx", "-c", f"{d}/nginx.conf", "-e", f"{d}/error.log"],
                         stdout=subprocess.DEVNULL, stderr=open(f"{d}/stderr", "w"))
    s = Server("nginx", p, port)
    STARTED.append(s)
    wait_listen(port)
    return s


def start_openssl(work):
    port = 8888  # inside its own network namespace
    cmd = (f"ip link set lo up && exec openssl ocsp -index {work}/openssl-index.txt "
           f"-port {port} -rsigner {work}/ocsp.pem -rkey {work}/ocsp.key -CA {work}/ca.pem "
           f"-nmin 60 -multi 2")
    p = subprocess.Popen(["unshare", "-n", "sh", "-c", cmd], stdout=subprocess.DEVNULL,
                         stderr=open(f"{work}/openssl-ocsp.err", "a"))
    s = Server("openssl", p, port, netns=True)
    STARTED.append(s)
    wait_listen(port, p.pid)
    return s


def start_cfssl(work):
    port = free_port()
    p = subprocess.Popen(["cfssl", "ocspserve", "-address", "127.0.0.1", "-port", str(port),
                          "-responses", f"{work}/cfssl.responses"],
                         stdout=subprocess.DEVNULL, stderr=open(f"{work}/cfssl.err", "a"))
    s = Server("cfssl", p, port)
    STARTED.append(s)
    wait_listen(port)
    return s


# ---------------------------------------------------------------- PKI and requests

def make_pki(d):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run(["openssl", "req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem",
         "-subj", "/O=Bench/CN=Bench OCSP CA", "-days", "3650",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    with open(f"{d}/ocsp.ext", "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=critical,OCSPSigning\nnoCheck=ignored\n")
    run(["openssl", "req", "-new", *ec, "-keyout", f"{d}/ocsp.key", "-out", f"{d}/ocsp.csr",
         "-subj", "/O=Bench/CN=Bench OCSP responder"])
    run(["openssl", "x509", "-req", "-in", f"{d}/ocsp.csr", "-CA", f"{d}/ca.pem", "-CAkey",
         f"{d}/ca.key", "-set_serial", "0x0C5B", "-days", "365", "-extfile", f"{d}/ocsp.ext",
         "-out", f"{d}/ocsp.pem"])
    with open(f"{d}/leaf.ext", "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=clientAuth\n")
    run(["openssl", "req", "-new", *ec, "-keyout", f"{d}/leaf.key", "-out", f"{d}/leaf.csr",
         "-subj", "/O=Bench/CN=bench-leaf"])
    run(["openssl", "x509", "-req", "-in", f"{d}/leaf.csr", "-CA", f"{d}/ca.pem", "-CAkey",
         f"{d}/ca.key", "-set_serial", "0x1D2C3B4A59687766", "-days", "365", "-extfile",
         f"{d}/leaf.ext", "-out", f"{d}/leaf.pem"])
    for k in ("ca.key", "ocsp.key", "leaf.key"):
        os.chmod(f"{d}/{k}", 0o600)


def make_index(path, n, seed):
    """n lines: 95 % V, 5 % R (keyCompromise); random 16-octet serials; notAfter in 2030."""
    rnd = random.Random(seed)
    serials = []
    with open(path, "w") as f:
        for i in range(n):
            s = "%032X" % (rnd.getrandbits(127) | (1 << 120))
            serials.append(s)
            if i % 20 == 7:
                f.write(f"R\t300101000000Z\t261101000000Z,keyCompromise\t{s}\tunknown\t"
                        f"/O=Bench/CN=host-{i}\n")
            else:
                f.write(f"V\t300101000000Z\t\t{s}\tunknown\t/O=Bench/CN=host-{i}\n")
    return serials


def _der(tag, body):
    n = len(body)
    if n < 0x80:
        ln = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        ln = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + ln + body


def _tlv(b, off):
    tag, ln = b[off], b[off + 1]
    off += 2
    if ln & 0x80:
        k = ln & 0x7F
        ln = int.from_bytes(b[off:off + k], "big")
        off += k
    return tag, off, ln


class ReqMaker:
    """Builds no-nonce OCSP requests (one SHA-1 CertID) like `openssl ocsp -no_nonce`,
    from a template made by openssl: only the serial changes."""

    def __init__(self, template):
        b, off = template, 0
        for _ in range(5):  # into OCSPRequest, TBSRequest, requestList, Request, CertID
            _tag, off, _len = _tlv(b, off)
        # off: the CertID's content: hashAlgorithm, issuerNameHash, issuerKeyHash, serial
        start = off
        for _ in range(3):
            _tag, body, ln = _tlv(b, off)
            off = body + ln
        self.head = b[start:off]

    def der(self, serial_hex):
        v = int(serial_hex, 16)
        mag = v.to_bytes((v.bit_length() + 7) // 8 or 1, "big")
        if mag[0] & 0x80:
            mag = b"\0" + mag
        certid = _der(0x30, self.head + _der(0x02, mag))
        return _der(0x30, _der(0x30, _der(0x30, _der(0x30, certid))))


def get_path(der):
    return "/" + urllib.parse.quote(base64.b64encode(der).decode(), safe="")


def http_get(path):
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").encode()


def http_post(der):
    return (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\n"
            + f"Content-Length: {len(der)}\r\n\r\n".encode() + der)


def fetch(server, path=None, post=None, out=None):
    cmd = server.nsenter() + ["curl", "-s", "-o", out, "-w", "%{http_code}",
                              "--max-time", "5"]
    if post:
        cmd += ["--data-binary", f"@{post}", "-H", "Content-Type: application/ocsp-request",
                f"http://127.0.0.1:{server.port}/"]
    else:
        cmd += [f"http://127.0.0.1:{server.port}{path}"]
    return run(cmd).stdout.decode()


def verify(work, resp, reqin=None):
    """`openssl ocsp` verifies the response against the CA: returns the leaf's status line."""
    base = ["openssl", "ocsp", "-respin", resp, "-CAfile", f"{work}/ca.pem"]
    r = subprocess.run(base + ["-issuer", f"{work}/ca.pem", "-serial", "0x1D2C3B4A59687766",
                               "-no_nonce"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ok = "Response verify OK" in r.stdout
    st = re.search(r"0x1D2C3B4A59687766: (\w+)", r.stdout)
    st = st.group(1) if st else r.stdout.strip().replace("\n", " ")[:200]
    if reqin:  # -reqin with -serial would build a new request: check the nonce apart
        n = subprocess.run(base + ["-reqin", reqin], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True).stdout
        ok = ok and "Response verify OK" in n and "Nonce Verify error" not in n
        st += ", nonce echoed" if "Nonce Verify error" not in n else ", NONCE MISMATCH"
    return ok, st


# ---------------------------------------------------------------- load

def wrk(server, url_path, duration, script=None, env=None):
    cmd = server.nsenter() + ["wrk", "-t2", "-c64", f"-d{duration}s"]
    if script:
        cmd += ["-s", script]
    cmd.append(f"http://127.0.0.1:{server.port}{url_path}")
    e = dict(os.environ, **(env or {}))
    c0, s0, m0, t0 = children_cpu(), cpu_seconds(server.pid), machine_busy(), time.time()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=e)
    s1, m1, c1, t1 = cpu_seconds(server.pid), machine_busy(), children_cpu(), time.time()
    out = r.stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if r.returncode != 0 or not m or not rps:
        raise SystemExit(f"ocsp_bench: wrk failed: {out}")
    n = int(m.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    server_cpu, client_cpu = s1 - s0, c1 - c0
    return {
        "requests": n, "rps": float(rps.group(1)), "wall": t1 - t0,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "sockerr": sum(int(x) for x in sock.groups()) if sock else 0,
        "server_cpu": server_cpu, "client_cpu": client_cpu,
        "server_us": server_cpu / n * 1e6 if n else float("nan"),
        "client_us": client_cpu / n * 1e6 if n else float("nan"),
        "other_pct": max(0.0, (m1 - m0 - server_cpu - client_cpu)) / (t1 - t0) * 100,
    }


def latency(tool, server, rate, duration, reqfile, listfile=False):
    cmd = server.nsenter() + [tool, "--port", str(server.port), "--rate", str(int(rate)),
                              "--duration", str(duration), "--warmup", "1", "--conns", "32",
                              "--get-list" if listfile else "--request", reqfile]
    c0, s0, m0, t0 = children_cpu(), cpu_seconds(server.pid), machine_busy(), time.time()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    s1, m1, c1, t1 = cpu_seconds(server.pid), machine_busy(), children_cpu(), time.time()
    if r.returncode != 0:
        raise SystemExit(f"ocsp_bench: ocsp_latency failed: {r.stderr}")
    d = json.loads(r.stdout)
    d["server_cpu"], d["client_cpu"] = s1 - s0, c1 - c0
    d["other_pct"] = max(0.0, m1 - m0 - d["server_cpu"] - d["client_cpu"]) / (t1 - t0) * 100
    return d


def openssl_speed():
    r = run(["openssl", "speed", "-seconds", "3", "ecdsap256"]).stdout.decode()
    m = re.search(r"256 bits ecdsa \(nistp256\)\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)\s+([\d.]+)", r)
    if not m:
        raise SystemExit(f"ocsp_bench: cannot read openssl speed output: {r}")
    return float(m.group(1))


def metrics(server):
    r = subprocess.run(["curl", "-s", "--max-time", "5",
                        f"http://127.0.0.1:{server.port}/metrics"],
                       stdout=subprocess.PIPE, text=True)
    out = {}
    for line in r.stdout.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        k, _, v = line.rpartition(" ")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


def perf_profile(server, path, work, seconds=5):
    """perf record -g on the responder during a wrk GET run; top symbols and objects."""
    data = f"{work}/perf.data"
    w = subprocess.Popen(["wrk", "-t2", "-c64", f"-d{seconds + 2}s",
                          f"http://127.0.0.1:{server.port}{path}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    subprocess.run(["perf", "record", "-g", "-F", "999", "-o", data, "-p", str(server.pid),
                    "--", "sleep", str(seconds)], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    w.wait()
    out = []
    for sort in ("dso", "dso,symbol"):
        r = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                            "--sort", sort, "-g", "none", "--percent-limit", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        out.append([l.rstrip() for l in r.stdout.splitlines()
                    if l.strip() and not l.startswith("#")][:25])
    return out


# ---------------------------------------------------------------- memory

def memory_run(revo, tool, work, tag, store, serials, maker, sweep, rate):
    """Fresh responder on store: RssAnon after start, after answering `sweep` distinct
    certificates (GET) and after 3 s more of the same list."""
    rnd = random.Random(3)
    pick = serials if len(serials) <= sweep else rnd.sample(serials, sweep)
    lst = f"{work}/sweep-{tag}.http"
    with open(lst, "wb") as f:
        for s in pick:
            f.write(http_get(get_path(maker.der(s))))
    srv = start_revo(revo, store, work, f"mem-{tag}")
    time.sleep(0.3)
    m0 = status_kib(srv.pid)
    dur = max(2.0, len(pick) / rate) + 1
    lat = latency(tool, srv, rate, dur, lst, listfile=True)
    m1 = status_kib(srv.pid)
    lat2 = latency(tool, srv, rate, 3, lst, listfile=True)
    m2 = status_kib(srv.pid)
    met = metrics(srv)
    srv.stop()
    return {"start": m0, "after": m1, "after2": m2, "distinct": len(pick),
            "answered": lat["completed"] + lat2["completed"],
            "non200": lat["non200"] + lat2["non200"], "errors": lat["errors"] + lat2["errors"],
            "presigned": sum(v for k, v in met.items() if 'outcome="presigned"' in k),
            "signed": sum(v for k, v in met.items() if 'outcome="signed"' in k)}


def build_store(revo, work, name, index, with_leaf):
    st = f"{work}/{name}"
    shutil.rmtree(st, ignore_errors=True)
    run([revo, "--store", st, "init"])
    run([revo, "--store", st, "issuer", "add", "bench", "--cert", f"{work}/ca.pem", "--key",
         f"{work}/ca.key", "--ocsp-cert", f"{work}/ocsp.pem", "--ocsp-key", f"{work}/ocsp.key"])
    if with_leaf:
        run([revo, "--store", st, "cert", "add", "--issuer", "bench", f"{work}/leaf.pem"])
    t0 = time.perf_counter()
    run([revo, "--store", st, "import", "openssl-index", index, "--issuer", "bench"])
    t_imp = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = subprocess.run([revo, "--store", st, "ocsp", "presign"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    t_pre = time.perf_counter() - t0
    note = None
    if r.returncode == -signal.SIGBUS:
        # revo grows the LMDB map (mdb_env_set_mapsize) while presign's read transaction
        # is still open; LMDB forbids that and the next cursor read faults. Work around it
        # with a map large enough from the start, and say so.
        note = (f"`revo ocsp presign` died of SIGBUS after {t_pre:.1f} s (map grown during "
                f"its read transaction); re-run with REVO_MAP_SIZE={BIG_MAP}")
        log(f"ocsp_bench: {note}")
        t0 = time.perf_counter()
        r = subprocess.run([revo, "--store", st, "ocsp", "presign"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True,
                           env=dict(os.environ, REVO_MAP_SIZE=str(BIG_MAP)))
        t_pre = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"revo ocsp presign failed ({r.returncode}): {r.stderr.strip()}")
    return st, t_imp, t_pre, note


# ---------------------------------------------------------------- main

def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--revo", default="build/revo")
    ap.add_argument("--latency-tool", default="build/bench/ocsp_latency")
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--runs", type=int, default=3, help="wrk runs of revo and nginx")
    ap.add_argument("--peer-runs", type=int, default=1, help="wrk runs of openssl and cfssl")
    ap.add_argument("--lat-duration", type=int, default=10, help="seconds per latency run "
                    "(the first second is warm-up)")
    ap.add_argument("--lat-runs", type=int, default=3, help="latency runs of revo and nginx")
    ap.add_argument("--small", type=int, default=10_000, help="certificates in the main store")
    ap.add_argument("--big", type=int, default=1_000_000, help="certificates in the big store")
    ap.add_argument("--fallback-big", type=int, default=200_000,
                    help="used instead of --big when pre-signing it would take over "
                    "--presign-budget seconds (estimated from the main store)")
    ap.add_argument("--presign-budget", type=float, default=180)
    ap.add_argument("--sweep", type=int, default=100_000,
                    help="distinct certificates asked for in the memory runs (at most)")
    ap.add_argument("--profile", choices=["auto", "always", "never"], default="auto")
    ap.add_argument("--plot", default=None, help="write the latency plot (PNG) here")
    ap.add_argument("--json", default=None, help="write all raw results here")
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    a = ap.parse_args()
    tool = os.path.abspath(a.latency_tool)
    work = a.dir or tempfile.mkdtemp(prefix="revo-ocsp-bench-")
    os.makedirs(work, exist_ok=True)
    work = os.path.abspath(work)
    # a private copy: the binary under test stays the same (and perf finds its symbols)
    # even if build/revo is rebuilt while the benchmark runs
    revo = f"{work}/revo"
    shutil.copy2(os.path.abspath(a.revo), revo)
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    T0 = time.time()
    res = {"date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(),
           "revo_commit": subprocess.run(["git", "-C", src, "describe", "--always", "--dirty"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         text=True).stdout.strip(),
           "openssl": run(["openssl", "version"]).stdout.decode().strip(),
           "nginx": run(["nginx", "-v"]).stderr.decode().strip(),
           "wrk": subprocess.run(["wrk", "-v"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True).stdout.split("\n")[0],
           "loadavg_start": open("/proc/loadavg").read().split()[:3]}
    try:
        # ---- data
        log("ocsp_bench: PKI, stores, requests")
        make_pki(work)
        serials = make_index(f"{work}/index-small.txt", a.small, seed=1)
        store, t_imp, t_pre, note = build_store(revo, work, "store-small",
                                                f"{work}/index-small.txt", with_leaf=True)
        res["small"] = {"certs": a.small + 1, "import_s": t_imp, "presign_s": t_pre,
                        "presign_note": note}
        with open(f"{work}/openssl-index.txt", "w") as f:
            f.write(open(f"{work}/index-small.txt").read())
            f.write("V\t300101000000Z\t\t1D2C3B4A59687766\tunknown\t/O=Bench/CN=bench-leaf\n")
        run(["openssl", "ocsp", "-issuer", f"{work}/ca.pem", "-cert", f"{work}/leaf.pem",
             "-reqout", f"{work}/req.der", "-no_nonce"])
        run(["openssl", "ocsp", "-issuer", f"{work}/ca.pem", "-cert", f"{work}/leaf.pem",
             "-reqout", f"{work}/req-nonce.der"])
        req = open(f"{work}/req.der", "rb").read()
        maker = ReqMaker(req)
        assert maker.der("1D2C3B4A59687766") == req, "request template mismatch"
        path = get_path(req)
        for name, data in (("get.http", http_get(path)), ("post.http", http_post(req)),
                           ("post-nonce.http",
                            http_post(open(f"{work}/req-nonce.der", "rb").read()))):
            with open(f"{work}/{name}", "wb") as f:
                f.write(data)
        with open(f"{work}/post.lua", "w") as f:
            f.write('local f = assert(io.open(os.getenv("OCSP_REQ"), "rb"))\n'
                    'wrk.method = "POST"\nwrk.body = f:read("*a")\nf:close()\n'
                    'wrk.headers["Content-Type"] = "application/ocsp-request"\n')
        lua = f"{work}/post.lua"
        post_env = {"OCSP_REQ": f"{work}/req.der"}
        nonce_env = {"OCSP_REQ": f"{work}/req-nonce.der"}
        # cfssl's responses file: `cfssl ocspsign` prints {"ocspResponse": BASE64}; ocspserve
        # reads whitespace-separated base64 responses and keys them by serial number.
        r = run(["cfssl", "ocspsign", "-ca", f"{work}/ca.pem", "-responder", f"{work}/ocsp.pem",
                 "-responder-key", f"{work}/ocsp.key", "-cert", f"{work}/leaf.pem",
                 "-status", "good"])
        with open(f"{work}/cfssl.responses", "w") as f:
            f.write(json.loads(r.stdout)["ocspResponse"] + "\n")

        # ---- servers and a correctness check of each answer
        rv = start_revo(revo, store, work, "main")
        checks = {}
        code = fetch(rv, path=path, out=f"{work}/revo-get.der")
        checks["revo GET"] = (code,) + verify(work, f"{work}/revo-get.der")
        code = fetch(rv, post=f"{work}/req.der", out=f"{work}/revo-post.der")
        checks["revo POST"] = (code,) + verify(work, f"{work}/revo-post.der")
        code = fetch(rv, post=f"{work}/req-nonce.der", out=f"{work}/revo-nonce.der")
        checks["revo POST nonce"] = (code,) + verify(work, f"{work}/revo-nonce.der",
                                                     reqin=f"{work}/req-nonce.der")
        resp = open(f"{work}/revo-get.der", "rb").read()
        same_post = resp == open(f"{work}/revo-post.der", "rb").read()
        os.makedirs(f"{work}/www", exist_ok=True)
        shutil.copyfile(f"{work}/revo-get.der", f"{work}/www/ocsp-response.der")
        ng = start_nginx(work, f"{work}/www/ocsp-response.der")
        code = fetch(ng, path=path, out=f"{work}/nginx-get.der")
        checks["nginx GET"] = (code,) + verify(work, f"{work}/nginx-get.der")
        same_nginx = resp == open(f"{work}/nginx-get.der", "rb").read()
        cf = start_cfssl(work)
        code = fetch(cf, post=f"{work}/req.der", out=f"{work}/cfssl-post.der")
        checks["cfssl POST"] = (code,) + verify(work, f"{work}/cfssl-post.der")
        os_ = start_openssl(work)
        code = fetch(os_, path=path, out=f"{work}/openssl-get.der")
        checks["openssl GET"] = (code,) + verify(work, f"{work}/openssl-get.der")
        code = fetch(os_, post=f"{work}/req.der", out=f"{work}/openssl-post.der")
        checks["openssl POST"] = (code,) + verify(work, f"{work}/openssl-post.der")
        os_.stop(kill_tree=True)
        res["checks"] = checks
        res["resp_len"] = len(resp)
        res["same_bytes"] = {"revo POST == GET": same_post, "nginx == revo": same_nginx}
        for k, v in checks.items():
            log(f"  {k}: HTTP {v[0]}, verify {'OK' if v[1] else 'FAILED'}, {v[2]}")

        # ---- throughput (closed loop)
        tp = {k: [] for k in ("revo GET", "revo POST", "nginx GET", "revo POST nonce",
                              "openssl GET", "openssl POST", "cfssl POST")}
        for i in range(a.runs):
            for key, srv, p, scr, env in (("revo GET", rv, path, None, None),
                                          ("nginx GET", ng, path, None, None),
                                          ("revo POST", rv, "/", lua, post_env)):
                log(f"ocsp_bench: wrk {key} run {i + 1}/{a.runs}")
                tp[key].append(wrk(srv, p, a.duration, scr, env))
        m_before = metrics(rv)
        log("ocsp_bench: wrk revo POST nonce")
        tp["revo POST nonce"].append(wrk(rv, "/", a.duration, lua, nonce_env))
        m_after = metrics(rv)
        res["nonce_signatures"] = (m_after.get("revo_ocsp_signatures_total", 0)
                                   - m_before.get("revo_ocsp_signatures_total", 0))
        for i in range(a.peer_runs):
            for key, p, scr, env in (("openssl GET", path, None, None),
                                     ("openssl POST", "/", lua, post_env)):
                # openssl ocsp -multi: a child spins at 100 % CPU after a client closes a
                # connection it accepted (wrk does at the end of a run): fresh server per run
                log(f"ocsp_bench: wrk {key} run {i + 1}/{a.peer_runs}")
                os_ = start_openssl(work)
                tp[key].append(wrk(os_, p, a.duration, scr, env))
                os_.stop(kill_tree=True)
            log(f"ocsp_bench: wrk cfssl POST run {i + 1}/{a.peer_runs}")
            tp["cfssl POST"].append(wrk(cf, "/", a.duration, lua, post_env))
        res["throughput"] = tp
        res["revo_rss_after_load"] = status_kib(rv.pid)

        # ---- latency (open loop)
        nginx_max = med([x["rps"] for x in tp["nginx GET"]])
        half = int(nginx_max / 2)
        lat = {k: [] for k in ("revo GET", "nginx GET", "revo POST", "openssl POST",
                               "cfssl POST")}
        for i in range(a.lat_runs):
            for key, srv, f in (("revo GET", rv, "get.http"), ("nginx GET", ng, "get.http"),
                                ("revo POST", rv, "post.http")):
                log(f"ocsp_bench: latency {key} at {half}/s run {i + 1}/{a.lat_runs}")
                lat[key].append(latency(tool, srv, half, a.lat_duration, f"{work}/{f}"))
        os_rate = int(med([x["rps"] for x in tp["openssl POST"]]) / 2)
        log(f"ocsp_bench: latency openssl POST at {os_rate}/s")
        os_ = start_openssl(work)
        lat["openssl POST"].append(latency(tool, os_, os_rate, a.lat_duration,
                                           f"{work}/post.http"))
        os_.stop(kill_tree=True)
        cf_rate = int(med([x["rps"] for x in tp["cfssl POST"]]) / 2)
        log(f"ocsp_bench: latency cfssl POST at {cf_rate}/s")
        lat["cfssl POST"].append(latency(tool, cf, cf_rate, a.lat_duration,
                                         f"{work}/post.http"))
        res["latency"] = lat
        res["half_nginx"] = half
        res["revo_metrics"] = metrics(rv)
        res["revo_rss_after_latency"] = status_kib(rv.pid)

        # ---- profile when a throughput or CPU target is missed
        revo_get, revo_post = (med([x["rps"] for x in tp[k]]) for k in ("revo GET", "revo POST"))
        cpu_n = med([x["server_us"] for x in tp["nginx GET"]])
        cpu_r = max(med([x["server_us"] for x in tp[k]]) for k in ("revo GET", "revo POST"))
        missed = revo_get < nginx_max or revo_post < nginx_max or cpu_r > cpu_n
        if a.profile == "always" or (a.profile == "auto" and missed):
            log("ocsp_bench: perf record of the responder during wrk GET")
            res["profile"] = perf_profile(rv, path, work)
        for s in (cf, ng, rv):
            s.stop()
        for name in ("revo-main.err", "cfssl.err", "nginx/error.log"):
            try:
                txt = open(f"{work}/{name}").read().strip()
            except OSError:
                txt = ""
            res.setdefault("stderr", {})[name] = txt[-2000:]

        # ---- on-demand signing reference: single-core openssl speed
        log("ocsp_bench: openssl speed -seconds 3 ecdsap256")
        res["openssl_speed_sign"] = openssl_speed()

        # ---- memory: 10k vs big store
        est = t_pre * a.big / a.small
        big = a.big if est <= a.presign_budget else a.fallback_big
        res["big_estimate_s"] = est
        log(f"ocsp_bench: big store of {big} certificates (pre-signing {a.big} estimated at "
            f"{est:.0f} s)")
        try:
            big_serials = make_index(f"{work}/index-big.txt", big, seed=2)
            store_big, t_imp_b, t_pre_b, note = build_store(revo, work, "store-big",
                                                            f"{work}/index-big.txt",
                                                            with_leaf=False)
            res["big"] = {"certs": big, "import_s": t_imp_b, "presign_s": t_pre_b,
                          "requested": a.big, "presign_note": note}
            for tag, st, sers in (("small", store, serials), ("big", store_big, big_serials)):
                log(f"ocsp_bench: memory, {tag} store")
                res[tag]["mem"] = memory_run(revo, tool, work, tag, st, sers, maker, a.sweep,
                                             25000)
                res[tag]["data_mdb_mb"] = os.path.getsize(f"{st}/data.mdb") / 1e6
        except Exception as e:  # noqa: BLE001 - report what was measured
            res["mem_error"] = f"{type(e).__name__}: {e}"
            log(f"ocsp_bench: memory phase failed: {res['mem_error']}")
        res["total_s"] = time.time() - T0
    finally:
        for s in STARTED:
            try:
                s.stop(kill_tree=s.name == "openssl")
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                log(f"ocsp_bench: stopping {s.name}: {e}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
    report(res, a)
    if a.plot:
        plot(res, a.plot, work)
    if not a.dir:
        shutil.rmtree(work, ignore_errors=True)


def fmt_us(x):
    return f"{x / 1000:.2f} ms" if x >= 1000 else f"{x:.0f} µs"


def memory_report(res, a):
    P = print
    P("Memory of a fresh responder (`--threads 2`), KiB from /proc/PID/status: at start, "
      "after answering every listed certificate once (GET, 25k/s), after 3 s more:")
    P()
    P("| store | data.mdb | presign | distinct certs asked | answered (non-200) | pre-signed / "
      "signed | RssAnon start | RssAnon after | RssAnon +3 s | RssFile after | VmHWM |")
    P("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for tag in ("small", "big"):
        s = res[tag]
        m = s["mem"]
        P(f"| {s['certs']:,} certs | {s['data_mdb_mb']:.0f} MB | {s['presign_s']:.1f} s | "
          f"{m['distinct']:,} | {m['answered']:,} ({m['non200']}) | "
          f"{m['presigned']:,.0f} / {m['signed']:,.0f} | "
          f"{m['start']['RssAnon']:,} | {m['after']['RssAnon']:,} | "
          f"{m['after2']['RssAnon']:,} | {m['after']['RssFile']:,} | {m['after2']['VmHWM']:,} |")
    for tag in ("small", "big"):
        if res[tag].get("presign_note"):
            P(f"\n{res[tag]['certs']:,} certificates: {res[tag]['presign_note']}.")
    P(f"\nImport / presign times: small {res['small']['import_s']:.1f} s / "
      f"{res['small']['presign_s']:.1f} s, big {res['big']['import_s']:.1f} s / "
      f"{res['big']['presign_s']:.1f} s.")
    if res["big"]["certs"] != res["big"]["requested"]:
        P(f"\n{res['big']['requested']:,} certificates were not used: pre-signing them was "
          f"estimated at {res['big_estimate_s']:.0f} s (> {a.presign_budget:.0f} s).")
    P()


def report(res, a):
    tp, lat = res["throughput"], res["latency"]
    P = print
    ng = med([x["rps"] for x in tp["nginx GET"]])
    cpu_ng = med([x["server_us"] for x in tp["nginx GET"]])
    P(f"OCSP responder benchmark, {res['date']}, {res['cores']} cores, revo "
      f"{res['revo_commit']}, {res['openssl']}, {res['nginx']}, {res['wrk']}; load average "
      f"at start {' '.join(res['loadavg_start'])}; total {res['total_s']:.0f} s")
    P()
    P(f"Response: {res['resp_len']} octets (ECDSA P-256, delegated responder certificate "
      f"included); revo POST bytes == GET bytes: {res['same_bytes']['revo POST == GET']}; "
      f"nginx bytes == revo bytes: {res['same_bytes']['nginx == revo']}.")
    P("Checks (`openssl ocsp -respin ... -CAfile ca.pem`): " + "; ".join(
        f"{k} HTTP {v[0]} {'verify OK' if v[1] else 'verify FAILED'} {v[2]}"
        for k, v in res["checks"].items()))
    P()
    P(f"Throughput: `wrk -t2 -c64 -d{a.duration}s`, median of runs (runs in brackets); "
      "CPU per request from /proc (server) and getrusage (wrk):")
    P()
    P("| server | request | req/s | vs nginx | server CPU/req | wrk CPU/req | other CPU | "
      "non-2xx / socket errors |")
    P("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for k in ("revo GET", "revo POST", "nginx GET", "revo POST nonce", "openssl GET",
              "openssl POST", "cfssl POST"):
        xs = tp[k]
        if not xs:
            continue
        r = med([x["rps"] for x in xs])
        P(f"| {k.split()[0]} | {' '.join(k.split()[1:])} | {r:,.0f} ({len(xs)}) | "
          f"{r / ng:.2f}× | {med([x['server_us'] for x in xs]):.1f} µs | "
          f"{med([x['client_us'] for x in xs]):.1f} µs | "
          f"{med([x['other_pct'] for x in xs]):.0f} % | "
          f"{sum(x['non2xx'] for x in xs)} / {sum(x['sockerr'] for x in xs)} |")
    P()
    P(f"Latency: `bench/ocsp_latency` open loop, 32 keep-alive connections, "
      f"{a.lat_duration} s per run of which the first second is warm-up; revo and nginx at "
      f"half of nginx's median wrk rate, the peers at half of their own; percentiles of all "
      f"runs' medians (runs in brackets):")
    P()
    P("| server | request | rate | achieved | p50 | p99 | p99.9 | p99.99 | max | "
      "non-200 / errors | server CPU/req | tool CPU/req | other CPU |")
    P("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for k, xs in lat.items():
        if not xs:
            continue
        pc = lambda p: med([x["percentiles_us"][p] for x in xs])  # noqa: E731
        cpu = med([x["server_cpu"] / x["completed"] * 1e6 for x in xs if x["completed"]])
        tcpu = med([x["client_cpu"] / x["completed"] * 1e6 for x in xs if x["completed"]])
        P(f"| {k.split()[0]} | {k.split()[1]} | {xs[0]['rate']:,.0f}/s ({len(xs)}) | "
          f"{med([x['throughput'] for x in xs]):,.0f}/s | {fmt_us(pc('50'))} | "
          f"{fmt_us(pc('99'))} | {fmt_us(pc('99.9'))} | {fmt_us(pc('99.99'))} | "
          f"{fmt_us(pc('100'))} | {sum(x['non200'] for x in xs)} / "
          f"{sum(x['errors'] + x['timed_out'] + x['unsent'] for x in xs)} | {cpu:.1f} µs | "
          f"{tcpu:.1f} µs | {med([x['other_pct'] for x in xs]):.0f} % |")
    P()
    sign = med([x["rps"] for x in tp["revo POST nonce"]])
    sp = res["openssl_speed_sign"]
    P(f"On-demand signing: revo POST with nonce {sign:,.0f}/s ({res['nonce_signatures']:.0f} "
      f"signatures counted by /metrics) against `openssl speed -seconds 3 ecdsap256` "
      f"{sp:,.0f} signs/s on one core: {sign / sp * 100:.0f} %.")
    P()
    if res.get("mem_error"):
        P(f"Memory phase failed: {res['mem_error']}")
        P()
    else:
        memory_report(res, a)
    # targets
    g = med([x["rps"] for x in tp["revo GET"]])
    p_ = med([x["rps"] for x in tp["revo POST"]])
    cg = med([x["server_us"] for x in tp["revo GET"]])
    cp = med([x["server_us"] for x in tp["revo POST"]])
    og = med([x["rps"] for x in tp["openssl GET"]])
    op = med([x["rps"] for x in tp["openssl POST"]])
    cf = med([x["rps"] for x in tp["cfssl POST"]])
    p99 = med([x["percentiles_us"]["99"] for x in lat["revo GET"]])
    p99p = med([x["percentiles_us"]["99"] for x in lat["revo POST"]])
    p99n = med([x["percentiles_us"]["99"] for x in lat["nginx GET"]])
    yes = lambda c: "met" if c else "NOT met"  # noqa: E731
    P("Targets:")
    P()
    P(f"- GET ≥ 1.0× nginx: {yes(g >= ng)} ({g:,.0f} / {ng:,.0f} = {g / ng:.2f}×)")
    P(f"- POST ≥ 1.0× nginx (GET): {yes(p_ >= ng)} ({p_:,.0f} / {ng:,.0f} = {p_ / ng:.2f}×)")
    P(f"- server CPU/request ≤ nginx's: GET {yes(cg <= cpu_ng)}, POST {yes(cp <= cpu_ng)} "
      f"(revo {cg:.1f} / {cp:.1f} µs, nginx {cpu_ng:.1f} µs)")
    P(f"- ≥ 5× openssl ocsp: GET {yes(g >= 5 * og)} ({g / og:.1f}×), POST "
      f"{yes(p_ >= 5 * op)} ({p_ / op:.1f}×)")
    P(f"- ≥ 5× cfssl (POST): {yes(p_ >= 5 * cf)} ({p_ / cf:.1f}×)")
    P(f"- p99 ≤ 1 ms at {res['half_nginx']:,}/s: GET {yes(p99 <= 1000)} ({fmt_us(p99)}), POST "
      f"{yes(p99p <= 1000)} ({fmt_us(p99p)}); nginx {fmt_us(p99n)}")
    P(f"- nonce signing ≥ 50 % of openssl speed: {yes(sign >= sp / 2)} "
      f"({sign / sp * 100:.0f} %)")
    if not res.get("mem_error"):
        sa = res["small"]["mem"]["after2"]["RssAnon"]
        ba = res["big"]["mem"]["after2"]["RssAnon"]
        P(f"- memory flat: RssAnon {sa:,} KiB ({res['small']['certs']:,} certs) vs {ba:,} KiB "
          f"({res['big']['certs']:,} certs): {ba / sa:.2f}×")
    if res.get("profile"):
        P()
        P("perf record -g of the responder during wrk GET (self time, ≥ 1 %):")
        P()
        P("```")
        for block in res["profile"]:
            for line in block:
                P(line)
            P()
        P("```")
    P()
    m = res.get("revo_metrics", {})
    P("revo /metrics after the load runs: " + ", ".join(
        f"{k.split('{')[1].rstrip('}')}={v:.0f}" for k, v in m.items()
        if k.startswith("revo_ocsp_requests_total{") and v) +
      f"; errors={m.get('revo_ocsp_errors_total', float('nan')):.0f}")
    for k, v in res.get("stderr", {}).items():
        if v:
            P(f"\n{k} (tail): {v[-500:]}")


def plot(res, out, work):
    lines = []
    for k, xs in res["latency"].items():
        if not xs:
            continue
        # the run with the median p99
        x = sorted(xs, key=lambda r: r["percentiles_us"]["99"])[len(xs) // 2]
        fn = f"{work}/plot-{k.replace(' ', '-')}.dat"
        with open(fn, "w") as f:
            for p in PCTS:
                nines = -__import__("math").log10(1 - float(p) / 100)
                f.write(f"{nines} {x['percentiles_us'][p] / 1000}\n")
        colors = {"revo GET": "#1f3fbf", "revo POST": "#4fa0e0", "nginx GET": "#1a9641",
                  "openssl POST": "#e66101", "cfssl POST": "#b2182b"}
        lines.append((fn, f"{k} at {x['rate']:,.0f}/s", colors.get(k, "black")))
    gp = f"""set terminal pngcairo size 900,560 font "sans,10"
set output "{out}"
set title "OCSP responder latency from intended send time (open loop), {res['date']}, {res['cores']} cores"
set xlabel "percentile"
set ylabel "latency (ms)"
set logscale y
set grid
set key top left
set xtics ("50" {-__import__('math').log10(0.5)}, "90" 1, "99" 2, "99.9" 3, "99.99" 4)
set xrange [0.25:4.1]
plot """ + ", ".join(f'"{fn}" using 1:2 with linespoints lw 2 lc rgb "{c}" title "{t}"'
                     for fn, t, c in lines)
    with open(f"{work}/plot.gp", "w") as f:
        f.write(gp + "\n")
    subprocess.run(["gnuplot", f"{work}/plot.gp"], check=True)


if __name__ == "__main__":
    sys.exit(main())
