"""Helpers for the revo integration tests that do not need pytest.

Everything here is independent of the code under test: certificates, CRLs and
OpenSSL index files are made with python-cryptography or the openssl CLI, and
hashes are computed from the DER with a tiny parser of our own.
"""

import datetime
import hashlib
import json
import os
import pathlib
import re
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

UTC = datetime.timezone.utc

# ---------------------------------------------------------------- time helpers


def now():
    """The current time, UTC, whole seconds."""
    return datetime.datetime.now(UTC).replace(microsecond=0)


def days(n):
    return datetime.timedelta(days=n)


def rfc3339(dt):
    """2026-12-04T10:00:00Z"""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s):
    """Parse an RFC 3339 time as printed by revo into an aware datetime (UTC)."""
    assert isinstance(s, str), f"expected an RFC 3339 string, got {s!r}"
    m = re.fullmatch(
        r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d+)?([Zz]|[+-]\d\d:\d\d)", s
    )
    assert m, f"not an RFC 3339 time: {s!r}"
    frac = m.group(7) or ""
    tz = m.group(8)
    base = s[: m.start(7)] if m.group(7) else s[: m.start(8)]
    dt = datetime.datetime.fromisoformat(base.replace("t", "T"))
    if frac:
        dt = dt.replace(microsecond=int((frac[1:] + "000000")[:6]))
    if tz in ("Z", "z"):
        dt = dt.replace(tzinfo=UTC)
    else:
        sign = 1 if tz[0] == "+" else -1
        off = datetime.timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
        dt = dt.replace(tzinfo=datetime.timezone(sign * off))
    return dt.astimezone(UTC)


def same_second(s, dt):
    """True when the RFC 3339 string s names the same second as datetime dt."""
    return parse_time(s).replace(microsecond=0) == dt.astimezone(UTC).replace(microsecond=0)


def utctime(dt):
    """YYMMDDHHMMSSZ (or GeneralizedTime from 2050 on, as OpenSSL writes)."""
    dt = dt.astimezone(UTC)
    if dt.year >= 2050:
        return dt.strftime("%Y%m%d%H%M%SZ")
    return dt.strftime("%y%m%d%H%M%SZ")


def gentime(dt):
    """YYYYMMDDHHMMSSZ"""
    return dt.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


def naive(dt):
    """cryptography 38 wants naive UTC datetimes."""
    return dt.astimezone(UTC).replace(tzinfo=None)


def aware(dt):
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


# ---------------------------------------------------------------- serials


def json_loads(s):
    return json.loads(s)


def serial_hex(n):
    """How revo prints a serial: upper-case hex with an even number of digits."""
    h = format(n, "X")
    if len(h) % 2:
        h = "0" + h
    return h


# ---------------------------------------------------------------- tiny DER reader


def der_read(buf, pos=0):
    """Read one TLV at pos: returns (tag, header_len, content_start, content_end)."""
    tag = buf[pos]
    ln = buf[pos + 1]
    hdr = 2
    if ln & 0x80:
        n = ln & 0x7F
        ln = int.from_bytes(buf[pos + 2 : pos + 2 + n], "big")
        hdr += n
    start = pos + hdr
    return tag, hdr, start, start + ln


def der_children(buf, start, end):
    out = []
    pos = start
    while pos < end:
        tag, hdr, cs, ce = der_read(buf, pos)
        out.append((tag, pos, cs, ce))
        pos = ce
    return out


def subject_and_key_bits(cert_der):
    """Return (subject Name DER, subjectPublicKey BIT STRING contents without the
    unused-bits octet) of a certificate, parsed directly from its DER."""
    _, _, cs, ce = der_read(cert_der, 0)  # Certificate
    tbs_tag, tbs_pos, tcs, tce = der_children(cert_der, cs, ce)[0]
    assert tbs_tag == 0x30
    fields = der_children(cert_der, tcs, tce)
    i = 0
    if fields[0][0] == 0xA0:  # [0] version
        i = 1
    # serial, signature, issuer, validity, subject, spki
    subj = fields[i + 4]
    spki = fields[i + 5]
    subject_der = cert_der[subj[1] : subj[3]]
    spki_children = der_children(cert_der, spki[2], spki[3])
    bit_tag, _, bcs, bce = spki_children[1]
    assert bit_tag == 0x03
    assert cert_der[bcs] == 0, "unused bits in subjectPublicKey"
    return subject_der, cert_der[bcs + 1 : bce]


def issuer_hashes(cert):
    """The OCSP CertID hashes of an issuer certificate, lower-case hex."""
    der = cert.public_bytes(serialization.Encoding.DER)
    name, key = subject_and_key_bits(der)
    return {
        "sha1_name_hash": hashlib.sha1(name).hexdigest(),
        "sha1_key_hash": hashlib.sha1(key).hexdigest(),
        "sha256_name_hash": hashlib.sha256(name).hexdigest(),
        "sha256_key_hash": hashlib.sha256(key).hexdigest(),
    }


# ---------------------------------------------------------------- PKI


class CA:
    def __init__(self, cn, directory, key=None, org="Revo Tests"):
        self.cn = cn
        self.key = key or ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )
        t = now()
        ski = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(naive(t - days(30)))
            .not_valid_after(naive(t + days(3650)))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.ski = ski
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", cn).strip("-").lower()
        self.cert_path = self.dir / f"{slug}.pem"
        self.cert_der_path = self.dir / f"{slug}.der"
        self.key_path = self.dir / f"{slug}.key"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.cert_der_path.write_bytes(self.cert.public_bytes(serialization.Encoding.DER))
        self.key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        os.chmod(self.key_path, 0o600)

    @property
    def aki(self):
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(self.ski)


class Leaf:
    def __init__(self, cert, pem_path, der_path, cn):
        self.cert = cert
        self.pem_path = pem_path
        self.der_path = der_path
        self.cn = cn
        self.serial = cert.serial_number
        self.hex = serial_hex(cert.serial_number)
        self.not_before = aware(cert.not_valid_before)
        self.not_after = aware(cert.not_valid_after)

    @property
    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self):
        return self.cert.public_bytes(serialization.Encoding.DER)


class LeafFactory:
    """Makes end-entity certificates with a chosen serial, CN, validity and issuer."""

    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.count = 0
        # the leaves' shared key, as a file (a delegated OCSP signer's --ocsp-key)
        self.key_path = self.dir / "leaves.key"
        self.key_path.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        os.chmod(self.key_path, 0o600)

    def __call__(
        self,
        serial,
        cn,
        ca,
        not_before=None,
        not_after=None,
        sign_key=None,
        aki=True,
        eku=None,
        org=None,
    ):
        t = now()
        not_before = not_before or (t - days(10))
        not_after = not_after or (t + days(90))
        attrs = []
        if org:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
        b = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs))
            .issuer_name(ca.name)
            .public_key(self.key.public_key())
            .serial_number(serial)
            .not_valid_before(naive(not_before))
            .not_valid_after(naive(not_after))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if aki:
            b = b.add_extension(ca.aki, critical=False)
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        cert = b.sign(sign_key or ca.key, hashes.SHA256())
        self.count += 1
        slug = re.sub(r"[^A-Za-z0-9]+", "-", cn).strip("-").lower() or "x"
        base = self.dir / f"leaf{self.count:05d}-{slug}-{serial_hex(serial)}"
        pem = base.with_suffix(".pem")
        der = base.with_suffix(".der")
        pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        der.write_bytes(cert.public_bytes(serialization.Encoding.DER))
        return Leaf(cert, pem, der, cn)

    def ocsp_signer(self, serial, ca, sign_key=None, with_eku=True):
        eku = [ExtendedKeyUsageOID.OCSP_SIGNING] if with_eku else None
        return self(serial, f"OCSP signer {serial}", ca, sign_key=sign_key, eku=eku)


REASON_FLAGS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "cACompromise": x509.ReasonFlags.ca_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "certificateHold": x509.ReasonFlags.certificate_hold,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
    "aACompromise": x509.ReasonFlags.aa_compromise,
    "removeFromCRL": x509.ReasonFlags.remove_from_crl,
}
FLAG_NAMES = {v: k for k, v in REASON_FLAGS.items()}


def make_crl(ca, entries, issuer_name=None, sign_key=None, number=1, der=True):
    """entries: iterable of (serial, revoked_at, reason name or None, invalidity or None)."""
    t = now()
    b = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_name or ca.name)
        .last_update(naive(t - datetime.timedelta(minutes=5)))
        .next_update(naive(t + days(7)))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(ca.aki, critical=False)
    )
    for serial, at, reason, inval in entries:
        rb = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(naive(at))
        if reason is not None:
            rb = rb.add_extension(x509.CRLReason(REASON_FLAGS[reason]), critical=False)
        if inval is not None:
            rb = rb.add_extension(x509.InvalidityDate(naive(inval)), critical=False)
        b = b.add_revoked_certificate(rb.build())
    crl = b.sign(sign_key or ca.key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.DER if der else serialization.Encoding.PEM)


def crl_entries(crl_bytes):
    """Parse a CRL (PEM or DER) independently: {serial: (revoked_at, reason, invalidity)}."""
    if crl_bytes.lstrip().startswith(b"-----"):
        crl = x509.load_pem_x509_crl(crl_bytes)
    else:
        crl = x509.load_der_x509_crl(crl_bytes)
    out = {}
    for r in crl:
        reason = None
        inval = None
        for ext in r.extensions:
            if isinstance(ext.value, x509.CRLReason):
                reason = FLAG_NAMES[ext.value.reason]
            elif isinstance(ext.value, x509.InvalidityDate):
                inval = aware(ext.value.invalidity_date)
        out[r.serial_number] = (aware(r.revocation_date), reason, inval)
    return out


def flip_signature_byte(der):
    """Corrupt the last byte of a DER CRL/cert: the last octet of the signature."""
    b = bytearray(der)
    b[-1] ^= 0x01
    return bytes(b)


# ---------------------------------------------------------------- OpenSSL index.txt


def index_line(status, expiry, serial, subject, revoked_at=None, reason=None, extra=None):
    """One line of an OpenSSL ca database.

    status: V, R or E; expiry: datetime; serial: int; subject: '/CN=x' or a CN;
    revoked_at: datetime; reason: the name as OpenSSL writes it; extra: the third
    revocation field (a datetime for the compromise time, or a string such as
    holdInstructionReject)."""
    if not subject.startswith("/"):
        subject = "/CN=" + subject
    rev = ""
    if revoked_at is not None:
        rev = utctime(revoked_at)
        if reason is not None:
            rev += "," + reason
            if extra is not None:
                rev += "," + (gentime(extra) if isinstance(extra, datetime.datetime) else extra)
    return "\t".join([status, utctime(expiry), rev, serial_hex(serial), "unknown", subject])


def write_index(path, lines):
    pathlib.Path(path).write_text("".join(line + "\n" for line in lines))


# ---------------------------------------------------------------- real `openssl ca`

OPENSSL_CNF = """\
[ ca ]
default_ca = CA_default

[ CA_default ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = {cert}
private_key = {key}
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 30
default_crl_days = 7
policy = policy_any
unique_subject = no
crl_extensions = crl_ext

[ policy_any ]
commonName = supplied

[ crl_ext ]
authorityKeyIdentifier = keyid:always
"""


class OpenSSLCA:
    """A real `openssl ca` database for one CA, in its own directory."""

    def __init__(self, directory, ca):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "newcerts").mkdir(exist_ok=True)
        (self.dir / "index.txt").write_text("")
        (self.dir / "serial").write_text("1000\n")
        (self.dir / "crlnumber").write_text("01\n")
        self.cnf = self.dir / "openssl.cnf"
        self.cnf.write_text(
            OPENSSL_CNF.format(dir=self.dir, cert=ca.cert_path, key=ca.key_path)
        )
        self.index = self.dir / "index.txt"

    def _ca(self, *args):
        p = subprocess.run(
            ["openssl", "ca", "-batch", "-config", str(self.cnf), *map(str, args)],
            capture_output=True,
            text=True,
        )
        assert p.returncode == 0, f"openssl ca {args} failed: {p.stderr}"
        return p

    def valid(self, cert_path):
        self._ca("-valid", cert_path)

    def revoke(self, cert_path, reason=None, compromise=None, ca_compromise=None, hold=None):
        args = ["-revoke", cert_path]
        if reason:
            args += ["-crl_reason", reason]
        if compromise:
            args += ["-crl_compromise", gentime(compromise)]
        if ca_compromise:
            args += ["-crl_CA_compromise", gentime(ca_compromise)]
        if hold:
            args += ["-crl_hold", hold]
        self._ca(*args)

    def gencrl(self, out):
        self._ca("-gencrl", "-out", out)
        return pathlib.Path(out)
