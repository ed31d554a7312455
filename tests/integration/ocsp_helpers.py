"""Helpers for the OCSP responder's integration tests (test_ocsp*.py).

Independent of the code under test: OCSP requests are built either with
python-cryptography or with a tiny DER writer of our own (several CertIDs, nonces
of any length, broken encodings), responses are read with python-cryptography,
and HTTP is spoken with http.client or raw sockets.

Fixtures:
  ocsp_pki      session PKI: a CA, a delegated responder certificate
                (id-kp-OCSPSigning, id-pkix-ocsp-nocheck, its own key), leaves with
                chosen serials, a second (foreign) CA with a leaf.
  serve         factory: serve(revo, *args, store=None) starts `revo ocsp serve
                --listen 127.0.0.1:0 --threads 2 ARGS`, waits for "listening on",
                and at teardown stops it with SIGTERM, asserting exit 0 and no
                sanitizer report.
"""

import base64
import datetime
import email.utils
import hashlib
import http.client
import ipaddress
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse

import pytest
import revohelp as H
from conftest import base_env, check_sanitizers
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

UTC = datetime.timezone.utc

OID_SHA1 = "1.3.14.3.2.26"
OID_SHA256 = "2.16.840.1.101.3.4.2.1"
OID_NONCE = "1.3.6.1.5.5.7.48.1.2"
OID_EXT_REVOKED = "1.3.6.1.5.5.7.48.1.9"
OID_NOCHECK = "1.3.6.1.5.5.7.48.1.5"

# OCSPResponseStatus values
SUCCESSFUL, MALFORMED, INTERNAL, TRY_LATER, SIG_REQUIRED, UNAUTHORIZED = 0, 1, 2, 3, 5, 6
STATUS_NAMES = {0: "successful", 1: "malformedRequest", 2: "internalError", 3: "tryLater",
                5: "sigRequired", 6: "unauthorized"}

OCSP_REQ_CT = "application/ocsp-request"
OCSP_RESP_CT = "application/ocsp-response"

VALIDITY = 7200  # the issuers' --ocsp-validity in these tests (2h)


# ---------------------------------------------------------------- tiny DER writer


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, content):
    return bytes([tag]) + der_len(len(content)) + content


def seq(*items):
    return tlv(0x30, b"".join(items))


def octets(b):
    return tlv(0x04, b)


def integer(n):
    if n == 0:
        return tlv(0x02, b"\x00")
    if n > 0:
        b = n.to_bytes((n.bit_length() + 8) // 8, "big")  # room for the sign bit
    else:
        ln = (n.bit_length() + 8) // 8
        b = n.to_bytes(ln, "big", signed=True)
    return tlv(0x02, b)


def oid(dotted):
    parts = [int(p) for p in dotted.split(".")]
    out = bytes([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        enc = [p & 0x7F]
        p >>= 7
        while p:
            enc.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(enc))
    return tlv(0x06, out)


def explicit(n, content):
    return tlv(0xA0 | n, content)


NULL = b"\x05\x00"


def alg_id(hash_name, with_null=True):
    o = {"sha1": OID_SHA1, "sha256": OID_SHA256}.get(hash_name, hash_name)
    return seq(oid(o), NULL) if with_null else seq(oid(o))


def issuer_hash_bytes(ca_cert, hash_name):
    der = ca_cert.public_bytes(serialization.Encoding.DER)
    name, key = H.subject_and_key_bits(der)
    h = hashlib.new(hash_name)
    h.update(name)
    n = h.digest()
    h = hashlib.new(hash_name)
    h.update(key)
    return n, h.digest()


def cert_id(ca_cert, serial, hash_name="sha1"):
    """DER CertID for serial under the issuer certificate ca_cert."""
    name_hash, key_hash = issuer_hash_bytes(ca_cert, hash_name)
    return seq(alg_id(hash_name), octets(name_hash), octets(key_hash), integer(serial))


def nonce_ext(nonce):
    """RFC 9654 nonce extension: extnValue is the DER OCTET STRING of the nonce."""
    return seq(oid(OID_NONCE), octets(octets(nonce)))


def ocsp_request(certids, nonce=None, extensions=None):
    """DER OCSPRequest with the given CertIDs (DER) and an optional nonce."""
    reqs = b"".join(seq(c) for c in certids)
    tbs = [seq_raw(reqs)]
    exts = list(extensions or [])
    if nonce is not None:
        exts.append(nonce_ext(nonce))
    if exts:
        tbs.append(explicit(2, seq(*exts)))
    return seq(seq(*tbs))


def seq_raw(content):
    return tlv(0x30, content)


def crypto_request(leaf_cert, ca_cert, hash_name="sha1", nonce=None):
    """A single-CertID request built by python-cryptography (an independent encoder)."""
    alg = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256()}[hash_name]
    b = ocsp.OCSPRequestBuilder().add_certificate(leaf_cert, ca_cert, alg)
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.build().public_bytes(serialization.Encoding.DER)


# ---------------------------------------------------------------- responses


def status_of(der):
    """OCSPResponseStatus of a DER OCSPResponse, read directly from the DER."""
    assert len(der) >= 5 and der[0] == 0x30, f"not an OCSPResponse: {der[:16].hex()}"
    tag, hdr, cs, ce = H.der_read(der, 0)
    assert ce == len(der), f"OCSPResponse length {ce} != {len(der)} octets received"
    t2, _, s, e = H.der_read(der, cs)
    assert t2 == 0x0A and e - s == 1, f"no ENUMERATED responseStatus: {der[:16].hex()}"
    return der[s]


def error_response(status):
    """The exact DER of an unsuccessful OCSPResponse."""
    return bytes([0x30, 0x03, 0x0A, 0x01, status])


def load(der):
    return ocsp.load_der_ocsp_response(der)


def extension_oids(resp):
    """Dotted OIDs of the responseExtensions, read from the DER (cryptography 38 is
    not fond of unknown extensions)."""
    return [e.oid.dotted_string for e in resp.extensions]


def nonce_of(resp):
    for e in resp.extensions:
        if e.oid.dotted_string == OID_NONCE:
            return e.value.nonce
    return None


def key_hash(cert):
    """SHA-1 of the subjectPublicKey BIT STRING contents (responderID byKey)."""
    _, key = H.subject_and_key_bits(cert.public_bytes(serialization.Encoding.DER))
    return hashlib.sha1(key).digest()


def verify_signature(resp, signer_cert):
    pub = signer_cert.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    pub.verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(resp.signature_hash_algorithm))


def singles(resp):
    return list(resp.responses)


def aware(dt):
    return H.aware(dt) if dt is not None else None


# ---------------------------------------------------------------- PKI


class Party:
    """A certificate with its own key, as PEM/DER files."""

    def __init__(self, cert, key, directory, slug):
        self.cert = cert
        self.key = key
        self.serial = cert.serial_number
        self.hex = H.serial_hex(cert.serial_number)
        d = pathlib.Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.pem_path = d / f"{slug}.pem"
        self.der_path = d / f"{slug}.der"
        self.key_path = d / f"{slug}.key"
        self.pem_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.der_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
        self.key_path.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))
        os.chmod(self.key_path, 0o600)

    @property
    def der(self):
        return self.cert.public_bytes(serialization.Encoding.DER)


def make_cert(ca, serial, cn, directory, slug=None, aia_url=None, responder=False,
              server=False, not_after_days=90):
    key = ec.generate_private_key(ec.SECP256R1())
    t = H.now()
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(H.naive(t - H.days(10)))
        .not_valid_after(H.naive(t + H.days(not_after_days)))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(ca.aki, critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=False, crl_sign=False, encipher_only=False,
                          decipher_only=False),
            critical=True)
    )
    if responder:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        b = b.add_extension(x509.OCSPNoCheck(), critical=False)
    elif server:
        b = b.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False)
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    if aia_url:
        b = b.add_extension(
            x509.AuthorityInformationAccess([
                x509.AccessDescription(x509.AuthorityInformationAccessOID.OCSP,
                                       x509.UniformResourceIdentifier(aia_url))]),
            critical=False)
    cert = b.sign(ca.key, hashes.SHA256())
    return Party(cert, key, directory, slug or f"{re.sub(r'[^a-z0-9]+', '-', cn.lower())}-{H.serial_hex(serial)}")


def find_b64_serial(ca_cert):
    """A serial whose SHA-1 request (our encoding, no nonce) has '+', '/' and '=' in its
    standard base64, so that GET decoding is exercised for every special character."""
    n = 0x5A000000
    while True:
        n += 1
        b = base64.b64encode(ocsp_request([cert_id(ca_cert, n, "sha1")])).decode()
        if "+" in b and "/" in b and b.endswith("=") and "/" in b[:-8]:
            return n


class OcspPKI:
    GOOD = 0x1001
    REV = 0x1002
    HOLD = 0x1003
    LATE = 0x1004
    GOOD2 = 0x1005
    BIG = int("7F" + "A5" * 19, 16)  # 20 octets
    HIBIT = 0x80FF  # DER needs a leading zero octet
    NOT_ISSUED = 0xDEAD01
    REVOKED_NOT_ISSUED = 0xBADBAD

    def __init__(self, directory):
        d = pathlib.Path(directory)
        self.dir = d
        self.ca = H.CA("Revo OCSP Test CA", d / "ca")
        self.ca2 = H.CA("Revo OCSP Foreign CA", d / "ca2", org="Somebody Else")
        self.ca3 = H.CA("Revo OCSP Second CA", d / "ca3")
        self.responder = make_cert(self.ca, 0x7001, "OCSP Responder", d / "responder",
                                   slug="responder", responder=True)
        # a responder certificate for ca3 too
        self.responder3 = make_cert(self.ca3, 0x7003, "OCSP Responder 3", d / "responder3",
                                    slug="responder3", responder=True)
        self.B64 = find_b64_serial(self.ca.cert)
        self.leaves = {}
        for s, cn in [(self.GOOD, "good-1"), (self.REV, "revoked-1"), (self.HOLD, "held-1"),
                      (self.LATE, "late-1"), (self.GOOD2, "good-2"), (self.BIG, "big-serial"),
                      (self.HIBIT, "hibit"), (self.B64, "b64-chars")]:
            self.leaves[s] = make_cert(self.ca, s, cn, d / "leaves", server=True)
        self.foreign = make_cert(self.ca2, 0x2001, "foreign-1", d / "foreign", server=True)
        self.leaf3 = make_cert(self.ca3, 0x3001, "third-1", d / "leaves3", server=True)
        # revocation facts applied by setup_store
        t = H.now()
        self.rev_at = t - H.days(1)
        self.rev_inval = t - H.days(2)
        self.hold_at = t - datetime.timedelta(hours=5)
        self.rni_at = t - H.days(3)

    def leaf(self, serial):
        return self.leaves[serial]


@pytest.fixture(scope="session")
def ocsp_pki(tmp_path_factory):
    return OcspPKI(tmp_path_factory.mktemp("ocsp-pki"))


def setup_store(revo, pki, delegated=False, presign=True, validity=VALIDITY, leaves=None, ocsp_key=None):
    """init, add issuer 'ca' (delegated responder optional), register the leaves, revoke
    REV (keyCompromise), HOLD (certificateHold) and REVOKED_NOT_ISSUED (not issued,
    cessationOfOperation), then `ocsp presign`."""
    revo("init")
    args = ["issuer", "add", "ca", "--cert", pki.ca.cert_path, "--key", pki.ca.key_path,
            "--ocsp-validity", f"{validity}s"]
    if delegated:
        args += ["--ocsp-cert", pki.responder.pem_path, "--ocsp-key", ocsp_key or pki.responder.key_path]
    revo(*args)
    leaves = list(pki.leaves.values()) if leaves is None else leaves
    revo("cert", "add", "--issuer", "ca", *[lf.pem_path for lf in leaves])
    serials = {lf.serial for lf in leaves}
    if pki.REV in serials:
        revo("revoke", "--serial", H.serial_hex(pki.REV), "--reason", "keyCompromise",
             "--at", H.rfc3339(pki.rev_at), "--invalidity-date", H.rfc3339(pki.rev_inval))
    if pki.HOLD in serials:
        revo("revoke", "--serial", H.serial_hex(pki.HOLD), "--reason", "certificateHold",
             "--at", H.rfc3339(pki.hold_at))
    revo("revoke", "--serial", H.serial_hex(pki.REVOKED_NOT_ISSUED), "--issuer", "ca",
         "--reason", "cessationOfOperation", "--at", H.rfc3339(pki.rni_at))
    if presign:
        return revo("ocsp", "presign", json=True)
    return None


def add_issuer3(revo, pki, presign=True, delegated=False):
    args = ["issuer", "add", "ca3", "--cert", pki.ca3.cert_path, "--key", pki.ca3.key_path,
            "--ocsp-validity", f"{VALIDITY}s"]
    if delegated:
        args += ["--ocsp-cert", pki.responder3.pem_path, "--ocsp-key", pki.responder3.key_path]
    revo(*args)
    revo("cert", "add", "--issuer", "ca3", pki.leaf3.pem_path)
    if presign:
        j = revo("ocsp", "presign", "--issuer", "ca3", json=True)
        assert [i["issuer"] for i in j["issuers"]] == ["ca3"], f"presign --issuer ca3: {j}"
        assert j["issuers"][0]["signer"] == ("delegated" if delegated else "ca")
        assert j["issuers"][0]["responses"] == 2


# ---------------------------------------------------------------- the responder


LISTEN_RE = re.compile(r"^listening on (\S+)$", re.M)


class Server:
    def __init__(self, revo, args, workdir, store=None):
        self.revo = revo
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.out_path = self.workdir / "serve.out"
        self.err_path = self.workdir / "serve.err"
        cmd = revo.argv(["ocsp", "serve", *[str(a) for a in args]],
                        store=revo.store if store is None else store)
        self.cmd = cmd
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL,
                                     env=base_env(), start_new_session=True)
        self.addresses = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = self.out_path.read_text(errors="replace")
            self.addresses = LISTEN_RE.findall(text)
            if self.addresses:
                break
            if self.proc.poll() is not None:
                pytest.fail(f"{' '.join(cmd)} exited {self.proc.returncode} before listening:\n"
                            f"{self.stderr()}")
            time.sleep(0.02)
        else:
            pytest.fail(f"{' '.join(cmd)}: no 'listening on' line within 20 s:\n{self.stderr()}")
        first = self.addresses[0]
        m = re.fullmatch(r"(.*):(\d+)", first)
        self.host = m.group(1).strip("[]")
        self.port = int(m.group(2))
        self.stopped = False

    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, expect=0, timeout=20):
        """SIGTERM, wait, assert the exit status and a clean stderr."""
        if self.stopped:
            return
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            pytest.fail(f"{' '.join(self.cmd)} did not exit within {timeout} s of SIGTERM\n"
                        f"{self.stderr()}")
        finally:
            self.out.close()
            self.err.close()
        err = self.stderr()
        check_sanitizers(self.cmd, err)
        assert rc == expect, f"{' '.join(self.cmd)}: exit {rc} after SIGTERM, expected {expect}:\n{err}"

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self.out.close()
        self.err.close()

    # ------------------------------------------------ requests

    def post(self, der, path="/", ctype=OCSP_REQ_CT, headers=None, timeout=10):
        return http_request(self.port, "POST", path, der, ctype=ctype, headers=headers, timeout=timeout)

    def get(self, path, headers=None, timeout=10):
        return http_request(self.port, "GET", path, None, headers=headers, timeout=timeout)

    def ocsp_post(self, der, path="/"):
        r = self.post(der, path)
        assert r.status == 200, f"POST {path}: HTTP {r.status} {r.body[:200]!r}"
        assert r.header("content-type") == OCSP_RESP_CT, r.headers
        return r

    def ocsp_get(self, der, prefix="/"):
        r = self.get(prefix + b64url_path(der))
        assert r.status == 200, f"GET: HTTP {r.status} {r.body[:200]!r}"
        assert r.header("content-type") == OCSP_RESP_CT, r.headers
        return r

    def healthz(self):
        return self.get("/healthz")

    def metrics(self):
        r = self.get("/metrics")
        assert r.status == 200, r
        return parse_metrics(r.body.decode())


@pytest.fixture
def serve(tmp_path):
    """Factory: serve(revo, *args, store=None, threads=2) -> Server (stopped at teardown
    with SIGTERM: exit 0, no sanitizer report)."""
    servers = []

    def start(revo, *args, store=None, threads=2, listen="127.0.0.1:0"):
        a = ["--listen", listen, "--threads", str(threads), *args]
        s = Server(revo, a, tmp_path / f"serve{len(servers)}", store=store)
        servers.append(s)
        return s

    yield start
    errors = []
    for s in servers:
        try:
            s.stop()
        except BaseException as e:  # noqa: BLE001 - report all, then fail
            errors.append(str(e))
            s.kill()
    if errors:
        pytest.fail("\n".join(errors))


# ---------------------------------------------------------------- HTTP


class Resp:
    def __init__(self, status, reason, headers, body, version="HTTP/1.1"):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value)
        self.body = body
        self.version = version

    def header(self, name):
        vals = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(vals) <= 1, f"header {name} given {len(vals)} times: {self.headers}"
        return vals[0] if vals else None

    def __repr__(self):
        return f"Resp({self.status} {self.reason}, {self.headers}, {self.body[:64]!r})"


def http_request(port, method, path, body=None, ctype=None, headers=None, timeout=10,
                 host="127.0.0.1"):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        h = dict(headers or {})
        if ctype is not None:
            h["Content-Type"] = ctype
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, r.reason, list(r.getheaders()), data)
    finally:
        conn.close()


def b64url_path(der):
    """The RFC 6960 A.1 GET form: percent-encoded standard base64."""
    return urllib.parse.quote(base64.b64encode(der).decode(), safe="")


def b64_std(der):
    return base64.b64encode(der).decode()


def b64_urlsafe_nopad(der):
    return base64.urlsafe_b64encode(der).decode().rstrip("=")


def http_date(s):
    return email.utils.parsedate_to_datetime(s).astimezone(UTC)


def cache_control(value):
    """'max-age=5, public' -> {'max-age': '5', 'public': None}"""
    out = {}
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        k, _, v = part.partition("=")
        out[k.strip().lower()] = v.strip() if v else None
    return out


def parse_metrics(text):
    """Prometheus text -> {'name{labels}': float} (labels as written, sorted)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(\s+\d+)?", line)
        assert m, f"not a Prometheus sample line: {line!r}"
        name, labels, val = m.group(1), m.group(2) or "", m.group(3)
        if labels:
            pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels)
            labels = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(pairs)) + "}"
        out[name + labels] = float(val)
    return out


def metric(m, name, **labels):
    key = name
    if labels:
        key += "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    return m.get(key, 0.0)


class RawConn:
    """A raw TCP connection that parses HTTP/1.x responses from the byte stream."""

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        if self.eof:
            return False
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            self.eof = True
            return False
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def read_response(self, timeout=10, head=False):
        """The next response, or None when the peer closed (or timeout) first."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if time.monotonic() > deadline or not self._fill(deadline):
                if b"\r\n\r\n" not in self.buf:
                    return None
        head_bytes, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        m = re.fullmatch(r"(HTTP/1\.[01]) (\d{3}) ?(.*)", lines[0])
        assert m, f"bad status line {lines[0]!r}"
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers.append((k.strip(), v.strip()))
        status = int(m.group(2))
        cl = [v for k, v in headers if k.lower() == "content-length"]
        n = int(cl[0]) if cl else 0
        if head or status in (204, 304) or 100 <= status < 200:
            n = 0
        elif not cl:
            # body until close
            while self._fill(deadline):
                pass
            n = len(rest)
        while len(rest) < n:
            if time.monotonic() > deadline or not self._fill(deadline):
                break
            rest = self.buf.partition(b"\r\n\r\n")[2]
        assert len(rest) >= n, f"truncated body: {len(rest)} of {n} octets"
        self.buf = rest[n:]
        return Resp(status, m.group(3), headers, rest[:n], m.group(1))

    def closed_within(self, seconds):
        """True when the peer closes the connection within `seconds` (data is kept)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self._fill(deadline) and self.eof:
                return True
        return self.eof

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def post_bytes(path, der, ctype=OCSP_REQ_CT, version="HTTP/1.1", extra=""):
    h = f"POST {path} {version}\r\nHost: 127.0.0.1\r\n"
    if ctype is not None:
        h += f"Content-Type: {ctype}\r\n"
    h += f"Content-Length: {len(der)}\r\n{extra}\r\n"
    return h.encode() + der


def get_bytes(path, version="HTTP/1.1", extra=""):
    return f"GET {path} {version}\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()


# ---------------------------------------------------------------- peers and ports


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            if proc is not None and proc.poll() is not None:
                return False
            time.sleep(0.05)
    return False


def need(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing test peer(s) {missing}: run scripts/deps.sh test "
                    "(gnutls-bin, libnss3-tools, nginx-light)")


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    return subprocess.run([str(c) for c in cmd], **kw)


class Nginx:
    """nginx in the foreground with its prefix, pid, logs and temp paths under `directory`."""

    def __init__(self, directory, http_body, port=None):
        need("nginx")
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        for sub in ("logs", "tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi", "cache"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        d = self.dir
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = f"""{user}worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/logs/error.log info;
events {{ worker_connections 128; }}
http {{
    access_log {d}/logs/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    {http_body.replace('@PORT@', str(self.port)).replace('@DIR@', str(d))}
}}
"""
        self.conf = d / "nginx.conf"
        self.conf.write_text(conf)
        t = run(["nginx", "-t", "-p", d, "-e", d / "logs" / "error.log", "-c", self.conf])
        assert t.returncode == 0, f"nginx -t failed:\n{t.stderr}\n{conf}"
        self.proc = subprocess.Popen(
            ["nginx", "-p", str(d), "-e", str(d / "logs" / "error.log"), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        if not wait_port(self.port, 10, self.proc):
            self.stop()
            pytest.fail(f"nginx did not listen on {self.port}:\n{self.error_log()}")

    def error_log(self):
        p = self.dir / "logs" / "error.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()


@pytest.fixture
def nginx(tmp_path):
    """Factory: nginx(http_body) -> Nginx (stopped at teardown). '@PORT@' in the body is
    the port nginx listens on, '@DIR@' its directory."""
    started = []

    def start(http_body, port=None):
        n = Nginx(tmp_path / f"nginx{len(started)}", http_body, port)
        started.append(n)
        return n

    yield start
    for n in started:
        n.stop()


# ---------------------------------------------------------------- shared read-only set-ups


class Env:
    """A store set up by setup_store and responders serving it."""

    def __init__(self, revo, pki, delegated, servers):
        self.revo = revo
        self.pki = pki
        self.delegated = delegated
        self.servers = servers  # name -> Server

    @property
    def server(self):
        return self.servers["default"]


def _module_env(revo_bin, pki, tmp_path_factory, delegated, variants):
    from conftest import Revo

    d = tmp_path_factory.mktemp("delegated" if delegated else "presigned")
    revo = Revo(revo_bin, d / "store")
    presign = setup_store(revo, pki, delegated=delegated)
    servers = {}
    try:
        for name, args in variants.items():
            servers[name] = Server(revo, ["--listen", "127.0.0.1:0", "--threads", "2", *args],
                                   d / f"serve-{name}")
    except BaseException:
        for s in servers.values():
            s.kill()
        raise
    env = Env(revo, pki, delegated, servers)
    env.presign = presign
    yield env
    errors = []
    for s in servers.values():
        try:
            s.stop()
        except BaseException as e:  # noqa: BLE001
            errors.append(str(e))
            s.kill()
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture(scope="module")
def presigned_env(revo_bin, ocsp_pki, tmp_path_factory):
    """Issuer 'ca' without a delegated key, pre-signed; responders: default and
    --max-age 60."""
    yield from _module_env(revo_bin, ocsp_pki, tmp_path_factory, False,
                           {"default": [], "maxage60": ["--max-age", "60"]})


@pytest.fixture(scope="module")
def delegated_env(revo_bin, ocsp_pki, tmp_path_factory):
    """Issuer 'ca' with a delegated responder key, pre-signed; responders: default
    (--non-issued unknown), 'revoked', 'good', and 'nokeys' (--no-keys)."""
    yield from _module_env(revo_bin, ocsp_pki, tmp_path_factory, True,
                           {"default": [], "revoked": ["--non-issued", "revoked"],
                            "good": ["--non-issued", "good"], "nokeys": ["--no-keys"]})
