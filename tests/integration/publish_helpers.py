"""Peers and helpers for the publishing tests (test_upload.py, test_publish.py,
test_emergency.py).

Independent of the code under test: S3 objects are read with python3-botocore, CRLs
are parsed and verified with python-cryptography, and every server a target talks to
is a real peer or a small server of our own:

  radosgw       (session) a single-node Ceph cluster from Debian on 127.0.0.1: one
                monitor (auth none), one memstore OSD, pool size 1, radosgw with the
                beast frontend, an S3 user and a bucket. Started once per session (about
                13 s), every daemon killed by pid at the end.
  ra_fake       a Roles Anywhere API fake (rolesanywhere_server.py), checking every
                request against botocore's model and SigV4 signer.
  http_store    factory: a tiny HTTP PUT/GET server (faults on demand: N answers
                with a status, e.g. 503, then normal service).
  stall_server  factory: accepts connections and never answers (for at most 30 s).
  s3_proxy      a proxy in front of radosgw that refuses x-amz-acl like a bucket with
                "bucket owner enforced" object ownership (radosgw 16 cannot be told to),
                or corrupts PUT bodies in transit.
  publisher     factory: `revo publish` in the background (stdout/stderr to files),
                stopped with SIGTERM at teardown (exit 0, no sanitizer report).
"""

import atexit
import hashlib
import http.client
import http.server
import os
import pathlib
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import threading
import time
import urllib.request
import uuid

import pytest
import revohelp as H
from conftest import base_env, check_sanitizers
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rolesanywhere_server import RolesAnywhereFake

PYTHON = "/usr/bin/python3"

# the S3 user of the radosgw fixture, and the key pair the Roles Anywhere fake accepts
AK = "REVOTESTACCESSKEY001"
SK = "revo-test-secret-key/0001+radosgw"
TRUST_ANCHOR = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/abc"

ASAN_NOTE = "plain build only: this test waits on wall-clock behaviour of a daemon"


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def closed_port_url(path="/crl/ca1.crl"):
    """An http:// URL on a port where nothing listens."""
    return f"http://127.0.0.1:{free_port()}{path}"


def aws_env(ak=AK, sk=SK, **extra):
    """Environment for revo: these keys, and nothing from the user's AWS setup."""
    env = {
        "AWS_ACCESS_KEY_ID": ak,
        "AWS_SECRET_ACCESS_KEY": sk,
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_REGION": None,
        "AWS_DEFAULT_REGION": None,
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/revo-test/credentials",
        "AWS_CONFIG_FILE": "/nonexistent/revo-test/config",
    }
    env.update(extra)
    return env


def wait_for(pred, timeout, interval=0.02, what="condition"):
    """Poll pred() until it returns a true value; return it (or None on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


# ---------------------------------------------------------------- CRLs


class CrlView:
    """A CRL as fetched from a target, parsed and verified independently."""

    def __init__(self, data, ca=None):
        self.raw = data
        if data.lstrip().startswith(b"-----"):
            self.crl = x509.load_pem_x509_crl(data)
        else:
            self.crl = x509.load_der_x509_crl(data)
        self.der = self.crl.public_bytes(serialization.Encoding.DER)
        self.number = self.crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        self.serials = {r.serial_number for r in self.crl}
        self.signature_ok = None
        if ca is not None:
            self.signature_ok = self.crl.is_signature_valid(ca.key.public_key())
            assert self.crl.issuer == ca.cert.subject, "CRL issuer is not the CA's subject"

    @property
    def sha256(self):
        return hashlib.sha256(self.der).hexdigest()


def crl_or_none(data, ca=None):
    if not data:
        return None
    return CrlView(data, ca)


def make_crl_file(ca, path, number, serials=(), reason="keyCompromise", pem=False):
    entries = [(s, H.now() - H.days(1), reason, None) for s in serials]
    data = H.make_crl(ca, entries, number=number, der=not pem)
    pathlib.Path(path).write_bytes(data)
    return data


# ---------------------------------------------------------------- Ceph radosgw


_DAEMONS = []  # every Ceph daemon started, killed at exit should a teardown not run


@atexit.register
def _kill_daemons():
    for p in _DAEMONS:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass


CEPH_CONF = """\
[global]
fsid = {fsid}
mon_host = [v2:127.0.0.1:{mon2},v1:127.0.0.1:{mon1}]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv6 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
auth_allow_insecure_global_id_reclaim = true
osd_objectstore = memstore
memstore_device_bytes = 1073741824
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 1
osd_pool_default_pgp_num = 1
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = true
mon_osd_pool_ec_fast_read = false
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
mon_data_avail_warn = 1
mon_data_avail_crit = 0
osd_crush_chooseleaf_type = 0
run_dir = {d}/run
admin_socket = {d}/run/$name.asok
log_file = {d}/log/$name.log
pid_file = {d}/run/$name.pid
keyring = {d}/keyring
crash_dir = {d}/crash

[mon.a]
mon_data = {d}/mon

[osd.0]
osd_data = {d}/osd

[client.rgw.a]
# radosgw defaults to "secure" for its monitor connection, impossible with auth none
ms_mon_client_mode = crc secure
rgw_frontends = beast endpoint=127.0.0.1:{rgw}
rgw_data = {d}/rgw
rgw_enable_gc_threads = false
rgw_enable_lc_threads = false
rgw_dynamic_resharding = false
"""


class Ceph:
    """A single-node Ceph cluster with radosgw, all on 127.0.0.1, in one directory.

    Commands (CONF = DIR/ceph.conf, written from CEPH_CONF above):
      monmaptool --create --fsid FSID --addv a [v2:127.0.0.1:P2,v1:127.0.0.1:P1] DIR/monmap
      ceph-authtool --create-keyring DIR/keyring --gen-key -n mon. --cap mon 'allow *'
      ceph-mon -c CONF --mkfs -i a --monmap DIR/monmap --keyring DIR/keyring
      ceph-mon -f -c CONF -i a
      ceph -c CONF osd new OSD_UUID                       (prints 0)
      ceph-osd -c CONF -i 0 --mkfs --osd-uuid OSD_UUID
      ceph-osd -f -c CONF -i 0
      radosgw -f -c CONF -n client.rgw.a                   (until http://127.0.0.1:RGW/ answers)
      radosgw-admin -c CONF -n client.admin user create --uid test --display-name test
                    --access-key AK --secret-key SK
    """

    BUCKET = "revo-crls"

    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        self.conf = self.dir / "ceph.conf"
        self.procs = {}
        self.rgw_port = None
        self.users = {}

    # ------------------------------------------------ processes

    def _run(self, *cmd, timeout=60):
        p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd))} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
                               + self.log_tail())
        return p.stdout

    def _daemon(self, name, *cmd):
        out = open(self.dir / "log" / f"{name}.out", "ab")
        p = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        self.procs[name] = p
        _DAEMONS.append(p)
        return p

    def log_tail(self, n=15):
        text = []
        for f in sorted((self.dir / "log").glob("*")):
            try:
                lines = f.read_text(errors="replace").splitlines()[-n:]
            except OSError:
                continue
            text.append(f"--- {f.name}\n" + "\n".join(lines))
        return "\n" + "\n".join(text)

    def start(self, timeout=60):
        for tool in ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is not installed (scripts/deps.sh test installs "
                                   "radosgw ceph-mon ceph-osd ceph-common)")
        t0 = time.monotonic()
        d = self.dir
        for sub in ("run", "log", "mon", "osd", "rgw", "crash"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        fsid = str(uuid.uuid4())
        mon2, mon1, self.rgw_port = free_port(), free_port(), free_port()
        self.conf.write_text(CEPH_CONF.format(fsid=fsid, mon2=mon2, mon1=mon1, rgw=self.rgw_port, d=d))
        self._run("monmaptool", "--create", "--fsid", fsid, "--addv", "a",
                  f"[v2:127.0.0.1:{mon2},v1:127.0.0.1:{mon1}]", d / "monmap")
        self._run("ceph-authtool", "--create-keyring", d / "keyring", "--gen-key", "-n", "mon.",
                  "--cap", "mon", "allow *")
        self._run("ceph-mon", "-c", self.conf, "--mkfs", "-i", "a", "--monmap", d / "monmap",
                  "--keyring", d / "keyring")
        self._daemon("mon", "ceph-mon", "-f", "-c", self.conf, "-i", "a")
        osd_uuid = str(uuid.uuid4())
        out = self.ceph("osd", "new", osd_uuid).strip()
        if out != "0":
            raise RuntimeError(f"ceph osd new: expected id 0, got {out!r}")
        self._run("ceph-osd", "-c", self.conf, "-i", "0", "--mkfs", "--osd-uuid", osd_uuid)
        self._daemon("osd", "ceph-osd", "-f", "-c", self.conf, "-i", "0")
        self.rgw_start(timeout=timeout - (time.monotonic() - t0))
        self.add_user("test", AK, SK)
        self.s3().create_bucket(Bucket=self.BUCKET)
        self.start_seconds = time.monotonic() - t0
        return self

    def ceph(self, *args):
        return self._run("ceph", "-c", self.conf, "--connect-timeout", "20", *args)

    def admin(self, *args):
        return self._run("radosgw-admin", "-c", self.conf, "-n", "client.admin", *args)

    def add_user(self, uid, ak, sk):
        self.admin("user", "create", "--uid", uid, "--display-name", uid,
                   "--access-key", ak, "--secret-key", sk)
        self.users[uid] = (ak, sk)

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.rgw_port}"

    def rgw_alive(self):
        try:
            with urllib.request.urlopen(self.endpoint + "/", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def rgw_start(self, timeout=60):
        p = self._daemon("rgw", "radosgw", "-f", "-c", self.conf, "-n", "client.rgw.a")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise RuntimeError(f"radosgw exited {p.returncode}" + self.log_tail())
            if self.rgw_alive():
                return
            time.sleep(0.1)
        raise RuntimeError(f"radosgw did not answer within {timeout:.0f} s" + self.log_tail())

    def rgw_stop(self):
        """Stop radosgw (SIGKILL: the port closes at once)."""
        p = self.procs.pop("rgw", None)
        if p and p.poll() is None:
            p.kill()
            p.wait(timeout=10)

    def close(self):
        for name in ("rgw", "osd", "mon"):
            p = self.procs.pop(name, None)
            if p is None or p.poll() is not None:
                continue
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    # ------------------------------------------------ S3 client (botocore)

    def s3(self, ak=AK, sk=SK):
        import botocore.config
        import botocore.session

        return botocore.session.get_session().create_client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=ak, aws_secret_access_key=sk,
            config=botocore.config.Config(s3={"addressing_style": "path"},
                                          retries={"max_attempts": 1},
                                          connect_timeout=5, read_timeout=10))

    def get(self, key, bucket=None):
        """Bytes of an object, or None."""
        c = self.s3()
        try:
            return c.get_object(Bucket=bucket or self.BUCKET, Key=key)["Body"].read()
        except c.exceptions.NoSuchKey:
            return None

    def head(self, key, bucket=None):
        c = self.s3()
        try:
            return c.head_object(Bucket=bucket or self.BUCKET, Key=key)
        except c.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def put(self, key, data, bucket=None, **kw):
        return self.s3().put_object(Bucket=bucket or self.BUCKET, Key=key, Body=data, **kw)

    def url(self, key, bucket=None):
        return f"s3://{bucket or self.BUCKET}/{key}"


_CLUSTER = {"ceph": None, "users": 0, "error": None}


@pytest.fixture(scope="session")
def radosgw(tmp_path_factory):
    """The session's Ceph cluster with radosgw (see Ceph). Test modules import this
    fixture, which gives each module a fixture of its own: they share one cluster
    (started by the first, stopped when the last is torn down)."""
    c = _CLUSTER
    if c["error"]:
        pytest.fail(c["error"], pytrace=False)
    if c["ceph"] is None:
        ceph = Ceph(pathlib.Path(tmp_path_factory.mktemp("ceph")))
        try:
            ceph.start()
        except Exception as e:  # noqa: BLE001 - fail every dependent test with the reason
            ceph.close()
            c["error"] = f"cannot start the Ceph radosgw peer: {e}"
            pytest.fail(c["error"], pytrace=False)
        c["ceph"] = ceph
    c["users"] += 1
    yield c["ceph"]
    c["users"] -= 1
    if c["users"] == 0:
        c["ceph"].close()
        c["ceph"] = None


@pytest.fixture
def s3key():
    """A fresh object key under the session bucket (no words in it, so that error
    messages quoting the URL cannot satisfy a test by accident)."""
    return f"t/{uuid.uuid4().hex[:12]}/ca1.crl"


# ---------------------------------------------------------------- Roles Anywhere fake


@pytest.fixture
def ra_fake():
    """A Roles Anywhere fake accepting (AK, SK). At teardown, no request may have broken
    the service model or the signature (set fake.expect_violations to allow it)."""
    f = RolesAnywhereFake({AK: SK}).start()
    f.expect_violations = False
    yield f
    f.stop()
    if not f.expect_violations:
        assert not f.violations, "requests that break the rolesanywhere model or SigV4:\n" + "\n".join(
            repr(r) for r in f.violations)


# ---------------------------------------------------------------- small HTTP servers


class _Srv(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _SerialSrv(http.server.HTTPServer):
    allow_reuse_address = True
    request_queue_size = 64


class HttpStore:
    """A tiny HTTP PUT/GET object store on 127.0.0.1. It serves one request at a time,
    in the order the connections arrived (every response closes its connection), so
    writes land in the order they were sent, like a simple WebDAV server. Knobs:
    fail_next: a list of statuses answered to the next requests (any method);
    fail_puts: a list of statuses answered to the next PUTs only;
    put_delay: seconds each PUT takes before it is stored and answered.
    Records every request: (monotonic time, method, path, status, CRL number of a PUT body)."""

    def __init__(self):
        self.objects = {}
        self.fail_next = []
        self.fail_puts = []
        self.put_delay = 0.0
        self.log = []
        self.put_trace = []  # (arrived, stored, CRL number, client port) of stored PUTs
        self.arrivals = []  # when each PUT request arrived
        self.lock = threading.Lock()
        store = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 5  # a client that stops sending cannot hold the server

            def log_message(self, *a):
                pass

            def _reply(self, status, body=b"", ctype="text/plain"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.close_connection = True
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _fault(self, number=None):
                with store.lock:
                    st = None
                    if store.fail_next:
                        st = store.fail_next.pop(0)
                    elif self.command == "PUT" and store.fail_puts:
                        st = store.fail_puts.pop(0)
                    if st is not None:
                        store.log.append((time.monotonic(), self.command, self.path, st, number))
                return st

            def do_GET(self):
                st = self._fault()
                if st:
                    return self._reply(st, b"injected fault\n")
                with store.lock:
                    body = store.objects.get(self.path)
                    store.log.append((time.monotonic(), self.command, self.path,
                                      200 if body is not None else 404, None))
                if body is None:
                    return self._reply(404, b"not found\n")
                self._reply(200, body, "application/pkix-crl")

            do_HEAD = do_GET

            def do_PUT(self):
                arrived = time.monotonic()
                with store.lock:
                    store.arrivals.append(arrived)
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                if len(body) != n:  # the client went away in the middle of the body
                    self.close_connection = True
                    return
                try:
                    number = CrlView(body).number
                except Exception:  # noqa: BLE001 - not a CRL: recorded as None
                    number = None
                st = self._fault(number)
                if st:
                    return self._reply(st, b"injected fault\n")
                if store.put_delay:
                    time.sleep(store.put_delay)
                with store.lock:
                    store.objects[self.path] = body
                    store.log.append((time.monotonic(), "PUT", self.path, 200, number))
                    store.put_trace.append((arrived, time.monotonic(), number, self.client_address[1]))
                self._reply(200, b"")

        self.httpd = _SerialSrv(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/crl/ca1.crl"):
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path="/crl/ca1.crl"):
        with self.lock:
            return self.objects.get(path)

    def puts(self, path="/crl/ca1.crl"):
        with self.lock:
            return [e for e in self.log if e[1] == "PUT" and e[2] == path]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_store():
    made = []

    def make():
        s = HttpStore()
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


class StallServer:
    """Accepts TCP connections and never answers; each is closed after max_stall
    seconds, or at stop()."""

    def __init__(self, max_stall=30.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.max_stall = max_stall
        self.conns = []
        self.accepted = 0
        self.stopped = False
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()
        threading.Thread(target=self._reaper, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append((time.monotonic(), c))
                self.accepted += 1

    def _reaper(self):
        while not self.stopped:
            time.sleep(0.2)
            now = time.monotonic()
            with self.lock:
                keep = []
                for t, c in self.conns:
                    if now - t >= self.max_stall:
                        c.close()
                    else:
                        keep.append((t, c))
                self.conns = keep

    def url(self, path="/crl/ca1.crl"):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.stopped = True
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            for _, c in self.conns:
                c.close()
            self.conns = []


@pytest.fixture
def stall_server():
    made = []

    def make(max_stall=30.0):
        s = StallServer(max_stall)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


class S3Proxy:
    """Forwards every request unchanged (Host header included, so SigV4 still verifies)
    to radosgw, with two faults on demand:
      refuse_acl   a PUT carrying x-amz-acl gets what S3 answers for a bucket with
                   "bucket owner enforced" object ownership: 400
                   AccessControlListNotSupported (radosgw 16 cannot be told to);
      corrupt_puts the next N PUT bodies get one octet flipped on the way (radosgw then
                   sees a body that does not match x-amz-content-sha256)."""

    def __init__(self, upstream_port, refuse_acl=True):
        self.refuse_acl = refuse_acl
        self.corrupt_puts = 0
        self.refused = 0
        self.corrupted = 0
        self.log = []  # (method, path, headers (list of pairs), body, upstream status)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                entry = [self.command, self.path, list(self.headers.items()), body, None]
                proxy.log.append(entry)
                if proxy.refuse_acl and self.command == "PUT" and self.headers.get("x-amz-acl"):
                    proxy.refused += 1
                    entry[4] = 400
                    out = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
                           b"<Code>AccessControlListNotSupported</Code>"
                           b"<Message>The bucket does not allow ACLs</Message>"
                           b"<RequestId>revo-test</RequestId></Error>")
                    self.send_response(400)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    return
                if self.command == "PUT" and body and proxy.corrupt_puts > 0:
                    proxy.corrupt_puts -= 1
                    proxy.corrupted += 1
                    body = body[:-1] + bytes([body[-1] ^ 1])
                c = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=20)
                c.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    c.putheader(k, v)
                c.endheaders(body if body else None)
                r = c.getresponse()
                data = r.read()
                entry[4] = r.status
                self.send_response(r.status, r.reason)
                for k, v in r.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)) if self.command != "HEAD"
                                 else r.getheader("Content-Length") or "0")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                c.close()

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _any

        self.httpd = _Srv(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def s3_proxy(radosgw):
    p = S3Proxy(radosgw.rgw_port)
    yield p
    p.stop()


# ---------------------------------------------------------------- the publisher


class Publisher:
    """`revo publish ARGS` in the background, output to files."""

    def __init__(self, revo, workdir, args=(), env=None, json=False):
        self.revo = revo
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        n = len(list(self.workdir.glob("publish*.out")))
        self.out_path = self.workdir / f"publish{n}.out"
        self.err_path = self.workdir / f"publish{n}.err"
        self.cmd = revo.argv(["publish", *map(str, args)], json=json)
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self.out, stderr=self.err,
                                     stdin=subprocess.DEVNULL, env=base_env(env),
                                     start_new_session=True)
        self.pid = self.proc.pid
        self.done = False

    def stdout(self):
        return self.out_path.read_text(errors="replace")

    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def wait_output(self, pattern, timeout=15):
        rx = re.compile(pattern, re.M)
        m = wait_for(lambda: rx.search(self.stdout()) or (self.proc.poll() is not None and "exit"),
                     timeout)
        if not m or m == "exit":
            pytest.fail(f"{' '.join(self.cmd)}: no output matching {pattern!r} within {timeout} s "
                        f"(exit {self.proc.poll()}):\nstdout:\n{self.stdout()[-3000:]}\n"
                        f"stderr:\n{self.stderr()[-3000:]}")
        return m

    def ready(self, timeout=15):
        """Wait until the first round is done and it watches the store."""
        return self.wait_output(r"watching the store", timeout)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, expect=0, timeout=20):
        """SIGTERM; assert it exits with `expect` within timeout, no sanitizer report.
        Returns the seconds it took."""
        if self.done:
            return 0
        self.done = True
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self._close()
            pytest.fail(f"{' '.join(self.cmd)} did not exit within {timeout} s of SIGTERM\n"
                        f"stdout:\n{self.stdout()[-3000:]}\nstderr:\n{self.stderr()[-2000:]}")
        took = time.monotonic() - t0
        self._close()
        err = self.stderr()
        check_sanitizers(self.cmd, err)
        assert rc == expect, (f"{' '.join(self.cmd)}: exit {rc} after SIGTERM, expected {expect}:\n"
                              f"stderr: {err}\nstdout:\n{self.stdout()[-3000:]}")
        return took

    def kill9(self):
        self.done = True
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self._close()

    def _close(self):
        for f in (self.out, self.err):
            try:
                f.close()
            except OSError:
                pass


@pytest.fixture
def publisher(tmp_path):
    """Factory: publisher(revo, *args, env=None, json=False) -> Publisher; all stopped
    at teardown (SIGTERM, exit 0, no sanitizer report)."""
    started = []

    def start(revo, *args, env=None, json=False):
        p = Publisher(revo, tmp_path / "publisher", args, env=env, json=json)
        started.append(p)
        return p

    yield start
    errors = []
    for p in started:
        if p.done:
            continue
        try:
            p.stop()
        except BaseException as e:  # noqa: BLE001 - report all
            errors.append(str(e))
            p.kill9()
    if errors:
        pytest.fail("\n".join(errors))


# ---------------------------------------------------------------- store set-up


class World:
    """A store with issuer ca1 and a few registered leaves; helpers to add targets and
    read back what each one holds."""

    def __init__(self, revo, ca, leaf, tmp, env):
        self.revo = revo
        self.ca = ca
        self.tmp = pathlib.Path(tmp)
        self.env = env
        self.targets = {}  # name -> fetch function
        self.leaves = {}
        revo("init")
        revo("issuer", "add", "ca1", "--cert", ca.cert_path, "--key", ca.key_path,
             "--ocsp-validity", "2h")
        self.leaf_factory = leaf

    def add_leaf(self, cn, serial=None):
        serial = serial or int.from_bytes(os.urandom(8), "big") | (1 << 62)
        lf = self.leaf_factory(serial, cn, self.ca)
        self.revo("cert", "add", "--issuer", "ca1", lf.pem_path)
        self.leaves[cn] = lf
        return lf

    def target(self, name, url, *args, fetch=None):
        self.revo("target", "add", name, url, "--issuer", "ca1", *args)
        self.targets[name] = fetch
        return name

    def file_target(self, name="file"):
        path = self.tmp / f"published-{name}.crl"
        self.target(name, f"file://{path}",
                    fetch=lambda: path.read_bytes() if path.exists() else None)
        return path

    def s3_target(self, rgw, key, name="s3", endpoint=None, extra=()):
        self.target(name, rgw.url(key), "--endpoint", endpoint or rgw.endpoint, "--region",
                    "us-east-1", *extra, fetch=lambda: rgw.get(key))
        return key

    def http_target(self, server, name="http", path=None):
        path = path or f"/{name}/ca1.crl"
        self.target(name, server.url(path), fetch=lambda: server.get(path))
        return path

    def fetch(self, name):
        """The CrlView a target holds now (verified against the CA), or None."""
        return crl_or_none(self.targets[name](), self.ca)

    def target_list(self):
        return {t["name"]: t for t in self.revo("target", "list", json=True)}


def lists_serial(world, name, serial):
    """The CRL at target `name` when it lists serial (else None)."""
    try:
        v = world.fetch(name)
    except Exception:  # noqa: BLE001 - not there yet / mid-restart
        return None
    return v if v is not None and serial in v.serials else None


@pytest.fixture
def world(revo, ca1, leaf, tmp_path):
    return World(revo, ca1, leaf, tmp_path, aws_env())
