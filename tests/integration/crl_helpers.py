"""Helpers for the CRL builder's integration tests (test_crl*.py).

Independent of the code under test: CA keys and certificates are made with
python-cryptography, and every CRL revo writes is checked by real consumers
(openssl, GnuTLS certtool, NSS crlutil/vfychain, python-cryptography) and by a
small DER walk of our own (revohelp's reader).
"""

import base64
import hashlib
import datetime
import os
import pathlib
import re
import shutil
import subprocess

import pytest
import revohelp as H
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

UTC = datetime.timezone.utc
PASSPHRASE = "correct horse battery staple"

# Every key kind a CA can have, as the tests name them.
KINDS = ["p256", "p384", "rsa2048", "rsa3072-pss", "ed25519", "enc-env", "enc-file"]

# The signatureAlgorithm revo must use for each kind.
SIG_OID = {
    "p256": SignatureAlgorithmOID.ECDSA_WITH_SHA256,
    "p384": SignatureAlgorithmOID.ECDSA_WITH_SHA384,
    "rsa2048": SignatureAlgorithmOID.RSA_WITH_SHA256,
    "rsa3072-pss": SignatureAlgorithmOID.RSASSA_PSS,
    "ed25519": SignatureAlgorithmOID.ED25519,
    "enc-env": SignatureAlgorithmOID.ECDSA_WITH_SHA256,
    "enc-file": SignatureAlgorithmOID.ECDSA_WITH_SHA384,
}

# Every revocation reason revo accepts (removeFromCRL is not one).
REASONS = [
    "unspecified",
    "keyCompromise",
    "cACompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "certificateHold",
    "privilegeWithdrawn",
    "aACompromise",
]

# "present, any value" for check_crl_py's idp_url
ANY = object()

# Header/footer names of PEM CRLs.
PEM_RE = re.compile(rb"-----BEGIN X509 CRL-----\n(.*?)-----END X509 CRL-----\n?", re.S)


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    return subprocess.run([str(c) for c in cmd], **kw)


def have(tool):
    return shutil.which(tool) is not None


def need(*tools):
    missing = [t for t in tools if not have(t)]
    if missing:
        pytest.fail(
            f"missing test peer(s) {missing}: run scripts/deps.sh test "
            "(gnutls-bin, libnss3-tools, softhsm2, libengine-pkcs11-openssl, opensc, p11-kit)"
        )


# ---------------------------------------------------------------- CAs with any key


def _new_key(kind):
    if kind in ("p256", "enc-env"):
        return ec.generate_private_key(ec.SECP256R1())
    if kind in ("p384", "enc-file"):
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "p521":
        return ec.generate_private_key(ec.SECP521R1())
    if kind == "rsa2048":
        return rsa.generate_private_key(65537, 2048)
    if kind == "rsa4096":
        return rsa.generate_private_key(65537, 4096)
    if kind == "rsa3072-pss":
        return rsa.generate_private_key(65537, 3072)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


def _sig_hash(key):
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 384:
        return hashes.SHA512()
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384()
    return hashes.SHA256()


class KeyCA:
    """A self-signed CA of a given key kind; attribute-compatible with revohelp.CA
    (cn, key, name, cert, ski, aki, cert_path, cert_der_path, key_path)."""

    def __init__(self, kind, cn, directory, key=None, org="Revo CRL Tests", not_after_days=3650, with_ski=True):
        self.kind = kind
        self.cn = cn
        self.key = key or _new_key(kind)
        self.hash = _sig_hash(self.key)
        self.name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )
        t = H.now()
        self.ski = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
        b = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(H.naive(t - H.days(30)))
            .not_valid_after(H.naive(t + H.days(not_after_days)))
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
        )
        if with_ski:
            b = b.add_extension(self.ski, critical=False)
        self.cert = b.sign(self.key, self.hash)
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", cn).strip("-").lower()
        self.cert_path = self.dir / f"{slug}.pem"
        self.cert_der_path = self.dir / f"{slug}.der"
        self.key_path = self.dir / f"{slug}.key"
        self.pass_file = None
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.cert_der_path.write_bytes(self.cert.public_bytes(serialization.Encoding.DER))
        if kind == "enc-env":
            # encrypted PKCS#8 PEM
            data = self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(PASSPHRASE.encode()),
            )
        elif kind == "enc-file":
            # traditional OpenSSL encrypted PEM (Proc-Type: 4,ENCRYPTED)
            data = self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.BestAvailableEncryption(PASSPHRASE.encode()),
            )
            self.pass_file = self.dir / "pass.txt"
            self.pass_file.write_text(PASSPHRASE + "\nsecond line is ignored\n")
            os.chmod(self.pass_file, 0o600)
        else:
            data = self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        self.key_path.write_bytes(data)
        os.chmod(self.key_path, 0o600)
        self.leaf_key = ec.generate_private_key(ec.SECP256R1())
        self.count = 0

    @property
    def aki(self):
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(self.ski)

    @property
    def subject_der(self):
        return H.subject_and_key_bits(self.cert.public_bytes(serialization.Encoding.DER))[0]

    def build_args(self):
        """Extra `crl build` arguments this CA's key needs."""
        a = []
        if self.kind == "rsa3072-pss":
            a.append("--rsa-pss")
        if self.pass_file:
            a += ["--pass-file", self.pass_file]
        return a

    def build_env(self):
        return {"REVO_KEY_PASS": PASSPHRASE} if self.kind == "enc-env" else None

    def leaf(self, serial, cn, not_before=None, not_after=None):
        """An end-entity certificate without CRL distribution points (so that a CRL
        without an Issuing Distribution Point has the right scope)."""
        t = H.now()
        not_before = not_before or (t - H.days(10))
        not_after = not_after or (t + H.days(90))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.name)
            .public_key(self.leaf_key.public_key())
            .serial_number(serial)
            .not_valid_before(H.naive(not_before))
            .not_valid_after(H.naive(not_after))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(self.aki, critical=False)
            .sign(self.key, self.hash)
        )
        self.count += 1
        base = self.dir / f"leaf{self.count:04d}-{H.serial_hex(serial)}"
        pem, der = base.with_suffix(".pem"), base.with_suffix(".der")
        pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        der.write_bytes(cert.public_bytes(serialization.Encoding.DER))
        return H.Leaf(cert, pem, der, cn)


# ---------------------------------------------------------------- reading CRLs


def to_der(data):
    """DER of a CRL file's content (PEM or DER)."""
    if data.startswith(b"-----BEGIN"):
        m = PEM_RE.fullmatch(data)
        assert m, f"PEM CRL must be exactly one X509 CRL block, got:\n{data[:200]!r}"
        return base64.b64decode(b"".join(m.group(1).split()))
    return data


def load(data):
    return x509.load_der_x509_crl(to_der(data))


def tbs_fields(der):
    """The TBSCertList fields as (tag, start, content_start, end) tuples, and whether
    the outer structure is exactly three elements spanning the whole buffer."""
    tag, _, cs, ce = H.der_read(der, 0)
    assert tag == 0x30 and ce == len(der), "CRL must be one SEQUENCE spanning the file"
    outer = H.der_children(der, cs, ce)
    assert [t for t, *_ in outer] == [0x30, 0x30, 0x03], "CertificateList = tbs, alg, sig"
    _, _, tcs, tce = outer[0]
    fields = H.der_children(der, tcs, tce)
    return outer, fields


def tbs_parts(der):
    """{'version','sig_alg','issuer','this_update','next_update','revoked','exts'}: raw
    TLV bytes of each TBSCertList field (revoked/exts None when absent), plus 'outer_alg'."""
    outer, f = tbs_fields(der)
    raw = lambda x: der[x[1] : x[3]]  # noqa: E731
    assert f[0][0] == 0x02 and raw(f[0]) == b"\x02\x01\x01", "version must be v2 (INTEGER 1)"
    parts = {
        "version": raw(f[0]),
        "sig_alg": raw(f[1]),
        "issuer": raw(f[2]),
        "this_update": raw(f[3]),
        "next_update": None,
        "revoked": None,
        "exts": None,
        "outer_alg": raw(outer[1]),
    }
    rest = f[4:]
    if rest and rest[0][0] in (0x17, 0x18):
        parts["next_update"] = raw(rest[0])
        rest = rest[1:]
    if rest and rest[0][0] == 0x30:
        parts["revoked"] = raw(rest[0])
        rest = rest[1:]
    if rest and rest[0][0] == 0xA0:
        parts["exts"] = raw(rest[0])
        rest = rest[1:]
    assert not rest, f"unexpected TBSCertList fields {[hex(t) for t, *_ in rest]}"
    return parts


def entry_map(crl):
    """{serial hex: (revocation date, reason name or None, invalidity or None, critical exts)}"""
    out = {}
    for r in crl:
        reason = inval = None
        crit = []
        for ext in r.extensions:
            if ext.critical:
                crit.append(ext.oid.dotted_string)
            if isinstance(ext.value, x509.CRLReason):
                reason = H.FLAG_NAMES[ext.value.reason]
            elif isinstance(ext.value, x509.InvalidityDate):
                inval = H.aware(ext.value.invalidity_date)
            else:
                raise AssertionError(f"unexpected entry extension {ext}")
        h = H.serial_hex(r.serial_number)
        assert h not in out, f"serial {h} listed twice"
        out[h] = (H.aware(r.revocation_date), reason, inval, crit)
    return out


def expected_from_list(listing):
    """`revo list --revoked --json` -> {serial: (revoked_at, reason or None, invalidity)}"""
    exp = {}
    for e in listing:
        reason = None if e["reason"] == "unspecified" else e["reason"]
        inval = H.parse_time(e["invalidity_date"]) if e["invalidity_date"] else None
        exp[e["serial"]] = (H.parse_time(e["revoked_at"]), reason, inval)
    return exp


def check_entries(crl, expected):
    """The CRL's entries are exactly `expected` (see expected_from_list)."""
    got = entry_map(crl)
    assert set(got) == set(expected), (
        f"serials differ: missing {sorted(set(expected) - set(got))[:10]}, "
        f"extra {sorted(set(got) - set(expected))[:10]}"
    )
    for s, (at, reason, inval) in expected.items():
        gat, greason, ginval, crit = got[s]
        assert crit == [], f"{s}: entry extensions must not be critical"
        assert gat == at, f"{s}: revocationDate {gat} != store {at}"
        assert greason == reason, f"{s}: reason {greason} != store {reason}"
        assert ginval == inval, f"{s}: invalidityDate {ginval} != store {inval}"


def verify_signature(crl, ca):
    """Verify the CRL's signature with the CA public key, independently of OpenSSL's
    CRL code: the exact scheme each key kind must use (PSS: MGF1 and salt = SHA-256)."""
    pub = ca.key.public_key()
    tbs, sig = crl.tbs_certlist_bytes, crl.signature
    if isinstance(pub, ed25519.Ed25519PublicKey):
        pub.verify(sig, tbs)
        return
    if isinstance(pub, ec.EllipticCurvePublicKey):
        bits = pub.curve.key_size
        h = hashes.SHA512() if bits > 384 else hashes.SHA384() if bits > 256 else hashes.SHA256()
        pub.verify(sig, tbs, ec.ECDSA(h))
    elif crl.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS:
        pub.verify(sig, tbs, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    else:
        pub.verify(sig, tbs, padding.PKCS1v15(), hashes.SHA256())
    assert crl.is_signature_valid(pub), "cryptography: signature does not verify"


def expected_key_id(cert):
    """The CA's subjectKeyIdentifier, or (RFC 5280 4.2.1.2 method 1) SHA-1 of its
    subjectPublicKey bits when it has none."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        bits = H.subject_and_key_bits(cert.public_bytes(serialization.Encoding.DER))[1]
        return hashlib.sha1(bits).digest()


def check_crl_py(
    data,
    ca,
    j,
    validity,
    expected=None,
    delta_base=None,
    idp_url=None,
    freshest_url=None,
    sig_oid=None,
):
    """Check a CRL revo wrote with python-cryptography and our own DER walk against
    the CA, the --json output j of `crl build`, and the expected entries."""
    der = to_der(data)
    crl = x509.load_der_x509_crl(der)
    verify_signature(crl, ca)
    assert crl.public_bytes(serialization.Encoding.DER) == der
    p = tbs_parts(der)
    # issuer: the CA certificate's subject, byte for byte
    subject_der = H.subject_and_key_bits(ca.cert.public_bytes(serialization.Encoding.DER))[0]
    assert p["issuer"] == subject_der, "issuer must be the CA subject DER, byte for byte"
    assert p["sig_alg"] == p["outer_alg"], "TBS signature and signatureAlgorithm must match"
    if sig_oid is not None:
        assert crl.signature_algorithm_oid == sig_oid
    # times
    assert p["next_update"] is not None, "nextUpdate must be present"
    this_u, next_u = H.aware(crl.last_update), H.aware(crl.next_update)
    assert next_u - this_u == datetime.timedelta(seconds=validity)
    assert abs((H.now() - this_u).total_seconds()) < 120, f"thisUpdate {this_u} is not now"
    for part, dt in (("this_update", this_u), ("next_update", next_u)):
        want = 0x18 if dt.year >= 2050 else 0x17
        assert p[part][0] == want, f"{part} tag {p[part][0]:#x}, want {want:#x} for {dt}"
    assert H.same_second(j["this_update"], this_u)
    assert H.same_second(j["next_update"], next_u)
    # revokedCertificates is absent, not empty, when there are no entries
    n = len(list(crl))
    assert (p["revoked"] is None) == (n == 0), "revokedCertificates must be absent iff empty"
    assert j["entries"] == n
    # extensions
    exts = {e.oid: e for e in crl.extensions}
    num = crl.extensions.get_extension_for_class(x509.CRLNumber)
    assert not num.critical and num.value.crl_number == j["crl_number"]
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert not aki.critical
    assert aki.value.key_identifier == expected_key_id(ca.cert)
    assert aki.value.authority_cert_issuer is None
    allowed = {x509.CRLNumber.oid, x509.AuthorityKeyIdentifier.oid}
    if delta_base is not None:
        d = crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
        assert d.critical, "Delta CRL Indicator must be critical"
        assert d.value.crl_number == delta_base
        allowed.add(x509.DeltaCRLIndicator.oid)
    else:
        assert x509.DeltaCRLIndicator.oid not in exts
    if idp_url is not None:
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
        assert idp.critical, "Issuing Distribution Point must be critical"
        if idp_url is not ANY:
            assert idp.value.full_name == [x509.UniformResourceIdentifier(idp_url)]
        assert not idp.value.only_contains_user_certs and not idp.value.indirect_crl
        allowed.add(x509.IssuingDistributionPoint.oid)
    else:
        assert x509.IssuingDistributionPoint.oid not in exts
    if freshest_url is not None:
        fr = crl.extensions.get_extension_for_class(x509.FreshestCRL)
        assert not fr.critical, "Freshest CRL must not be critical (RFC 5280 5.2.6)"
        assert [dp.full_name for dp in fr.value] == [[x509.UniformResourceIdentifier(freshest_url)]]
        allowed.add(x509.FreshestCRL.oid)
    else:
        assert x509.FreshestCRL.oid not in exts
    assert set(exts) == allowed, f"unexpected CRL extensions {set(exts) - allowed}"
    if expected is not None:
        check_entries(crl, expected)
    return crl


def check_json(j, out_path, pem, issuer):
    """The --json report of `crl build` against the file it describes."""
    data = pathlib.Path(out_path).read_bytes()
    der = to_der(data)
    assert j["issuer"] == issuer
    assert j["format"] == ("pem" if pem else "der")
    assert j["der_size"] == len(der)
    assert j["file_size"] == len(data)
    pem_bytes = data if pem else pem_of(der)
    assert j["crldata_length"] == len(base64.b64encode(pem_bytes)), "crldata_length"
    assert j["crldata_limit"] == 300000
    assert abs(j["crldata_percent"] - 100.0 * j["crldata_length"] / 300000) <= 0.11
    return der


def pem_of(der):
    """The PEM form of a DER CRL, 64-character lines (as openssl and cryptography write)."""
    return x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM)


# ---------------------------------------------------------------- real consumers


def openssl_crl_verify(crl_path, ca):
    """`openssl crl -verify`: OpenSSL 3.0 exits 0 even when verification fails, so the
    'verify OK' line is what counts."""
    data = pathlib.Path(crl_path).read_bytes()
    form = "PEM" if data.startswith(b"-----") else "DER"
    p = run(["openssl", "crl", "-in", crl_path, "-inform", form, "-verify", "-CAfile", ca.cert_path, "-noout"])
    assert p.returncode == 0 and "verify OK" in p.stderr, f"openssl crl -verify: {p.stdout}{p.stderr}"


def openssl_crl_text(crl_path):
    data = pathlib.Path(crl_path).read_bytes()
    form = "PEM" if data.startswith(b"-----") else "DER"
    p = run(["openssl", "crl", "-in", crl_path, "-inform", form, "-noout", "-text"])
    assert p.returncode == 0, f"openssl crl cannot parse {crl_path}: {p.stderr}"
    return p.stdout


def openssl_verify(ca, crl_paths, leaf_path, extra=()):
    """`openssl verify -crl_check`: returns (ok, output)."""
    cmd = ["openssl", "verify", "-crl_check", *extra, "-CAfile", ca.cert_path]
    for c in crl_paths if isinstance(crl_paths, (list, tuple)) else [crl_paths]:
        cmd += ["-CRLfile", c]
    p = run(cmd + [leaf_path])
    return p.returncode == 0, p.stdout + p.stderr


def openssl_leaf_checks(ca, crl_path, good, revoked):
    ok, out = openssl_verify(ca, crl_path, good.pem_path)
    assert ok and ": OK" in out, f"openssl verify -crl_check rejected a good leaf: {out}"
    if revoked is not None:
        ok, out = openssl_verify(ca, crl_path, revoked.pem_path)
        assert not ok and "certificate revoked" in out, (
            f"openssl verify -crl_check must reject the revoked leaf: {out}"
        )


def certtool_verify(ca, crl_path, tmp):
    """GnuTLS `certtool --verify-crl` (DER input needs --inder, for the CA too)."""
    need("certtool")
    data = pathlib.Path(crl_path).read_bytes()
    args = ["certtool", "--verify-crl", "--infile", crl_path]
    if data.startswith(b"-----"):
        args += ["--load-ca-certificate", ca.cert_path]
    else:
        args += ["--load-ca-certificate", ca.cert_der_path, "--inder"]
    p = run(args)
    assert p.returncode == 0 and "Verification output: Verified" in p.stdout, (
        f"certtool --verify-crl failed:\n{p.stdout[-1500:]}\n{p.stderr}"
    )


NSS_REV = ["-g", "leaf", "-h", "requireFreshInfo", "-m", "crl", "-s", "failIfNoInfo", "-s", "forbidFetching"]


class NSSDB:
    """A throw-away NSS database holding one trusted CA and its CRL."""

    def __init__(self, directory, ca):
        need("certutil", "crlutil", "vfychain")
        self.dir = pathlib.Path(directory)
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.db = f"sql:{self.dir}"
        p = run(["certutil", "-N", "-d", self.db, "--empty-password"])
        assert p.returncode == 0, p.stderr
        p = run(["certutil", "-A", "-d", self.db, "-n", "revo-ca", "-t", "CT,C,C", "-i", ca.cert_path])
        assert p.returncode == 0, p.stderr

    def import_crl(self, crl_path):
        """crlutil -I (DER only): NSS checks the CRL's signature against the CA."""
        data = to_der(pathlib.Path(crl_path).read_bytes())
        der = self.dir / "import.crl"
        der.write_bytes(data)
        p = run(["crlutil", "-I", "-i", der, "-d", self.db])
        assert p.returncode == 0, f"crlutil -I refused the CRL: {p.stdout}{p.stderr}"

    def verify(self, leaf_path):
        """vfychain with libpkix (-pp), leaf CRL checking that requires fresh info and
        never fetches: a good leaf passes only when a valid, current CRL is in the db."""
        p = run(["vfychain", "-d", self.db, "-pp", "-u", "1", *NSS_REV, "-a", leaf_path])
        return p.returncode == 0, p.stdout + p.stderr


def nss_leaf_checks(tmp, ca, crl_path, good, revoked):
    db = NSSDB(tmp, ca)
    # without the CRL, the good leaf must fail (proves the flags make NSS use the CRL)
    ok, out = db.verify(good.pem_path)
    assert not ok, f"vfychain accepted a leaf with no CRL at all: {out}"
    db.import_crl(crl_path)
    ok, out = db.verify(good.pem_path)
    assert ok and "Chain is good" in out, f"NSS rejected the good leaf: {out}"
    if revoked is not None:
        ok, out = db.verify(revoked.pem_path)
        assert not ok and "-8180" in out, f"NSS must reject the revoked leaf as revoked: {out}"


# ---------------------------------------------------------------- stores


def write_index(path, entries, not_after=None):
    """An openssl index.txt of R lines. entries: (serial int, revoked_at, reason or None,
    compromise time or None)."""
    t = H.now()
    exp = H.utctime(not_after or (t + H.days(400)))
    lines = []
    for serial, at, reason, comp in entries:
        rev = H.utctime(at)
        if reason:
            rev += "," + reason
            if comp is not None:
                rev += "," + H.gentime(comp)
        lines.append(f"R\t{exp}\t{rev}\t{H.serial_hex(serial)}\tunknown\t/CN=n{serial:x}")
    pathlib.Path(path).write_text("".join(x + "\n" for x in lines))


def temp_leftovers(out_path):
    """Temporary files revo may have left next to OUT (OUT.tmp.XXXXXX, OUT.pem.XXXXXX)."""
    out = pathlib.Path(out_path)
    return sorted(
        p.name
        for p in out.parent.glob(out.name + ".*")
        if re.fullmatch(re.escape(out.name) + r"\.(tmp|pem)\.[A-Za-z0-9]{6}", p.name)
    )
