"""CRLs signed with a key on a PKCS#11 token: SoftHSM2 through the libp11 engine.

A token is made in a private SOFTHSM2_CONF directory, an EC P-256 key generated on it
with pkcs11-tool, and the CA certificate self-signed by `openssl req -engine pkcs11`
with that key; revo only ever sees the `pkcs11:` URI. The key never leaves the token.
"""

import os
import subprocess
import types

import crl_helpers as C
import pytest
import revohelp as H
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN, SO_PIN = "1234", "5678"
URI = "pkcs11:token=revo;object=ca;type=private"

# With a wrong or missing PIN, libp11 (not revo) leaks the engine's method tables
# (RSA_meth_dup / EC_KEY_METHOD_new at engine load, EVP_PKEY_meth_new during
# OPENSSL_cleanup): `openssl pkey -engine pkcs11` leaks the same 770 octets under
# LD_PRELOAD=libasan. Suppressed by those allocation sites only; the full unwinder is
# needed for the suppressions to see them.
LSAN_SUPPRESSIONS = "leak:RSA_meth_dup\nleak:EC_KEY_METHOD_new\nleak:EVP_PKEY_meth_new\n"


def run_ok(cmd, env, **kw):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=60, **kw)
    assert p.returncode == 0, f"{cmd}: {p.stdout}\n{p.stderr}"
    return p


@pytest.fixture(scope="session")
def hsm(tmp_path_factory):
    C.need("softhsm2-util", "pkcs11-tool")
    if not os.path.exists(MODULE):
        pytest.fail(f"{MODULE} missing: install softhsm2 (scripts/deps.sh test)")
    if not os.path.exists("/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so") and not os.path.exists(
        "/usr/lib/x86_64-linux-gnu/engines-3/libpkcs11.so"
    ):
        pytest.fail("the libp11 engine is missing: install libengine-pkcs11-openssl")
    d = tmp_path_factory.mktemp("softhsm")
    (d / "tokens").mkdir()
    conf = d / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {d / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = dict(os.environ, SOFTHSM2_CONF=str(conf), PKCS11_MODULE_PATH=MODULE)
    run_ok(["softhsm2-util", "--init-token", "--free", "--label", "revo", "--pin", PIN, "--so-pin", SO_PIN], env)
    run_ok(["pkcs11-tool", "--module", MODULE, "--login", "--pin", PIN, "--keypairgen",
            "--key-type", "EC:prime256v1", "--label", "ca", "--id", "01"], env)
    eng_key = f"{URI}?pin-value={PIN}"
    ca_pem = d / "hsm-ca.pem"
    run_ok(["openssl", "req", "-new", "-x509", "-engine", "pkcs11", "-keyform", "engine", "-key", eng_key,
            "-subj", "/C=DE/O=Revo Tests/CN=Revo SoftHSM CA", "-days", "3650", "-sha256",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash", "-out", ca_pem], env)
    cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    der = d / "hsm-ca.der"
    der.write_bytes(cert.public_bytes(serialization.Encoding.DER))

    # leaves signed on the token too, by `openssl x509 -req`
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ext = d / "leaf.ext"
    ext.write_text("basicConstraints=critical,CA:FALSE\nauthorityKeyIdentifier=keyid\n")

    def leaf(serial, cn):
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .sign(leaf_key, C.hashes.SHA256())
        )
        csr_path = d / f"{cn}.csr"
        csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
        pem = d / f"{cn}.pem"
        run_ok(["openssl", "x509", "-req", "-in", csr_path, "-engine", "pkcs11", "-CAkeyform", "engine",
                "-CA", ca_pem, "-CAkey", eng_key, "-set_serial", str(serial), "-days", "30", "-sha256",
                "-extfile", ext, "-out", pem], env)
        c = x509.load_pem_x509_certificate(pem.read_bytes())
        derp = d / f"{cn}.der"
        derp.write_bytes(c.public_bytes(serialization.Encoding.DER))
        return H.Leaf(c, pem, derp, cn)

    ca = types.SimpleNamespace(
        cert=cert,
        cert_path=ca_pem,
        cert_der_path=der,
        key=types.SimpleNamespace(public_key=cert.public_key),
        ski=cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value,
    )
    good, bad = leaf(0x5A01, "hsm-good"), leaf(0x5A02, "hsm-bad")
    supp = d / "lsan.supp"
    supp.write_text(LSAN_SUPPRESSIONS)
    return types.SimpleNamespace(dir=d, conf=conf, ca=ca, good=good, bad=bad, supp=supp)


def hsm_env(hsm, pin=PIN, module=True, quiet_leaks=False):
    env = {"SOFTHSM2_CONF": str(hsm.conf), "REVO_PKCS11_PIN": pin, "PKCS11_MODULE_PATH": None}
    env["REVO_PKCS11_MODULE"] = MODULE if module else None
    if quiet_leaks:
        from conftest import ASAN_OPTIONS

        env["ASAN_OPTIONS"] = ASAN_OPTIONS + ":fast_unwind_on_malloc=0"
        env["LSAN_OPTIONS"] = f"suppressions={hsm.supp}:print_suppressions=0"
    return env


@pytest.fixture
def hsm_store(inited, hsm):
    inited("issuer", "add", "hsm", "--cert", hsm.ca.cert_path, "--key", URI, "--crl-validity", "2d")
    j = inited("issuer", "list", json=True)
    assert j[0]["key"] == URI, "the URI is stored as given, without a PIN"
    inited("cert", "add", hsm.good.pem_path, hsm.bad.pem_path)
    inited("revoke", "--cert", hsm.bad.pem_path, "--reason", "keyCompromise",
           "--invalidity-date", H.rfc3339(H.now() - H.days(1)))
    inited("revoke", "--serial", "5A0F", "--issuer", "hsm", "--reason", "certificateHold")
    return inited


def test_softhsm_crl(hsm_store, hsm, tmp_path):
    revo = hsm_store
    expected = C.expected_from_list(revo.list("--revoked"))
    nums = []
    # with REVO_PKCS11_MODULE, and through p11-kit's proxy (the module is registered)
    for name, module, pem in (("hsm.crl", True, False), ("hsm-p11kit.pem", False, True)):
        out = tmp_path / name
        args = ["crl", "build", "--issuer", "hsm", "--out", out] + (["--pem"] if pem else [])
        j = revo(*args, json=True, env=hsm_env(hsm, module=module))
        nums.append(j["crl_number"])
        C.check_json(j, out, pem, "hsm")
        C.check_crl_py(out.read_bytes(), hsm.ca, j, 2 * 86400, expected=expected,
                       sig_oid=C.SIG_OID["p256"])
        C.openssl_crl_verify(out, hsm.ca)
        C.openssl_leaf_checks(hsm.ca, out, hsm.good, hsm.bad)
        C.certtool_verify(hsm.ca, out, tmp_path)
        C.nss_leaf_checks(tmp_path / f"nss-{name}", hsm.ca, out, hsm.good, hsm.bad)
    assert nums == [1, 2]


def _bad_pin_case(revo, hsm, tmp_path, env):
    """Run a build that must fail; gather every property before asserting so the report
    names each broken one."""
    ok = revo("crl", "build", "--issuer", "hsm", "--out", tmp_path / "first.crl", json=True,
              env=hsm_env(hsm))
    assert ok["crl_number"] == 1
    out = tmp_path / "bad.crl"
    p = revo.raw("crl", "build", "--issuer", "hsm", "--out", out, env=env, input=b"", timeout=30)
    after = revo("crl", "build", "--issuer", "hsm", "--out", tmp_path / "after.crl", json=True,
                 env=hsm_env(hsm))
    C.openssl_crl_verify(tmp_path / "after.crl", hsm.ca)
    problems = []
    if p.returncode != 1:
        problems.append(f"exit {p.returncode}, want 1")
    if out.exists() or C.temp_leftovers(out):
        problems.append("an output or temporary file was left")
    if after["crl_number"] != 2:
        problems.append(f"a CRL number was consumed: next build got {after['crl_number']}, want 2")
    lines = p.stderr.rstrip("\n").split("\n")
    if len(lines) != 1 or not lines[0].startswith("revo: "):
        problems.append(f"stderr must be one 'revo: ...' line, got {len(lines)} lines:\n{p.stderr}")
    elif "pkcs11" not in lines[0].lower() and "PIN" not in lines[0]:
        problems.append(f"the error does not say what failed: {lines[0]}")
    assert not problems, "; ".join(problems)


def test_softhsm_wrong_pin(hsm_store, hsm, tmp_path):
    _bad_pin_case(hsm_store, hsm, tmp_path, hsm_env(hsm, pin="9999", quiet_leaks=True))


def test_softhsm_missing_pin(hsm_store, hsm, tmp_path):
    """No PIN anywhere and no terminal: fail at once (never wait for a prompt)."""
    env = hsm_env(hsm, quiet_leaks=True)
    env["REVO_PKCS11_PIN"] = None
    _bad_pin_case(hsm_store, hsm, tmp_path, env)
