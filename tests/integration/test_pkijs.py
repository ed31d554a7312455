"""pkijs (npm, pure JavaScript) as an independent OCSP and CRL client.

tests/js/revo_check.mjs parses revo's answers with pkijs and verifies them with pkijs's
own checks (BasicOCSPResponse.verify: responderID, signature, the delegated responder's
chain to the issuer and its id-kp-OCSPSigning; CertificateRevocationList.verify), then
prints what it read as JSON, which these tests compare with the store.

The npm packages are pinned in tests/js/package.json and package-lock.json; a
session fixture installs them once with `npm ci` (skipped, with the reason, only when
the npm registry cannot be reached).
"""

import datetime
import json
import os
import pathlib
import shutil
import subprocess

import crl_helpers as C
import ocsp_helpers as O
import pytest
import revohelp as H
from ocsp_helpers import delegated_env, ocsp_pki, presigned_env  # noqa: F401 (fixtures)

JS_DIR = pathlib.Path(__file__).resolve().parent.parent / "js"
SCRIPT = JS_DIR / "revo_check.mjs"
NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT",
                  "ENETUNREACH", "EHOSTUNREACH", "ERR_SOCKET_TIMEOUT", "network")


def _installed():
    """True when node_modules holds exactly the versions package.json pins."""
    pins = json.loads((JS_DIR / "package.json").read_text())["dependencies"]
    for name, version in pins.items():
        p = JS_DIR / "node_modules" / name / "package.json"
        if not p.exists() or json.loads(p.read_text()).get("version") != version:
            return False
    return True


@pytest.fixture(scope="session")
def pkijs_ready():
    """`npm ci` in tests/js once per session (nothing when node_modules already holds
    the pinned versions)."""
    missing = [t for t in ("node", "npm") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing {missing}: run scripts/deps.sh test (nodejs, npm)")
    if not _installed():
        p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"], cwd=JS_DIR,
                           capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            out = p.stdout + p.stderr
            lines = [ln.strip() for ln in out.splitlines() if any(e in ln for e in NETWORK_ERRORS)]
            if lines:
                pytest.skip(f"npm ci in tests/js cannot reach the npm registry to install pkijs: {lines[0]}")
            pytest.fail(f"npm ci in {JS_DIR} failed:\n{out[-3000:]}")
        assert _installed(), "npm ci did not install the pinned pkijs/asn1js"
    return JS_DIR


def pkijs(*args, expect_ok=True):
    p = subprocess.run(["node", str(SCRIPT), *[str(a) for a in args]], capture_output=True, text=True,
                       timeout=60, cwd=JS_DIR)
    if not expect_ok:
        return p
    assert p.returncode == 0 and p.stderr == "", (
        f"revo_check.mjs {' '.join(map(str, args))} exited {p.returncode}:\n{p.stderr}{p.stdout[:2000]}")
    return json.loads(p.stdout)


def check_ocsp(tmp_path, body, issuer, signer=None, name="resp"):
    path = tmp_path / f"{name}-{os.urandom(4).hex()}.der"
    path.write_bytes(body)
    args = [path, issuer.cert_path] + ([signer.pem_path] if signer else [])
    return pkijs("ocsp", *args)


def within_a_second(pkijs_time, revo_time):
    a = H.parse_time(pkijs_time)
    b = H.parse_time(revo_time)
    return abs((a - b).total_seconds()) < 1


def assert_single(j, revo, serial):
    """One SingleResponse for `serial`, agreeing with `revo status --json`."""
    assert j["responseStatus"] == "successful", j
    assert len(j["responses"]) == 1, j
    r = j["responses"][0]
    h = H.serial_hex(serial)
    assert r["serial"] == h, (r, h)
    st = revo.status(h, "ca")
    assert r["status"] == st["status"], (r, st)
    if st["status"] == "revoked":
        assert within_a_second(r["revocationTime"], st["revoked_at"]), (r, st)
        assert r["revocationReason"] == st["reason"], (r, st)
    else:
        assert r["revocationTime"] is None and r["revocationReason"] is None, r
    this_u, next_u = H.parse_time(r["thisUpdate"]), H.parse_time(r["nextUpdate"])
    assert next_u - this_u == datetime.timedelta(seconds=O.VALIDITY), r
    assert this_u <= H.now() + datetime.timedelta(seconds=1) < next_u, r
    return r


# ---------------------------------------------------------------- OCSP


@pytest.mark.parametrize("signer", ["ca", "delegated"])
def test_ocsp_get_and_post(pkijs_ready, presigned_env, delegated_env, signer, tmp_path):
    """Good, revoked (keyCompromise) and on-hold leaves, by POST (python-cryptography's
    SHA-1 request) and by GET (our SHA-256 request): pkijs verifies every answer and
    reads the status, serial, revocation time and reason revo has in its store."""
    env = presigned_env if signer == "ca" else delegated_env
    pki, s, revo = env.pki, env.server, env.revo
    seen = set()
    for serial in (pki.GOOD, pki.REV, pki.HOLD):
        lf = pki.leaf(serial)
        for method in ("POST", "GET"):
            if method == "POST":
                body = s.ocsp_post(O.crypto_request(lf.cert, pki.ca.cert, "sha1")).body
            else:
                body = s.ocsp_get(O.ocsp_request([O.cert_id(pki.ca.cert, serial, "sha256")])).body
            j = check_ocsp(tmp_path, body, pki.ca, pki.responder if signer == "delegated" else None)
            assert j["signatureValid"] is True and j["verifyError"] is None, f"{method} {lf.hex}: {j}"
            if signer == "ca":
                # revo includes the CA certificate itself in CA-signed answers
                assert j["signedByIssuer"] is True and j["signedBySigner"] is None, j
            else:
                assert j["signedByIssuer"] is False and j["signedBySigner"] is True, j
                assert j["responderCertIncluded"] is True and j["signerCertIncluded"] is True, j
            assert j["responderIdType"] == "byKey", j
            r = assert_single(j, revo, serial)
            seen.add((r["status"], r["revocationReason"]))
            assert j["nonce"] is None, j
    assert seen == {("good", None), ("revoked", "keyCompromise"), ("revoked", "certificateHold")}, seen

    # pkijs really checks: another CA as the trust anchor, and a damaged signature
    body = s.ocsp_post(O.crypto_request(pki.leaf(pki.REV).cert, pki.ca.cert, "sha1")).body
    other = pkijs("ocsp", _write(tmp_path / "rev.der", body), pki.ca2.cert_path)
    assert other["signatureValid"] is False, f"pkijs accepted a response under the wrong CA: {other}"
    bad = check_ocsp(tmp_path, flip_ocsp_signature_byte(body), pki.ca,
                     pki.responder if signer == "delegated" else None, name="flipped")
    assert bad["signatureValid"] is False and bad["verifyError"] is None, (
        f"pkijs must find the damaged signature itself wrong: {bad}")


def flip_ocsp_signature_byte(der):
    """Flip the last octet of the BasicOCSPResponse's signature BIT STRING (not the last
    octet of the response, which belongs to an included certificate)."""
    _, _, cs, ce = H.der_read(der, 0)
    kids = H.der_children(der, cs, ce)  # responseStatus, [0] responseBytes
    assert [t for t, *_ in kids] == [0x0A, 0xA0], kids
    _, _, rbs, _ = H.der_read(der, kids[1][2])  # ResponseBytes SEQUENCE
    rb = H.der_children(der, rbs, kids[1][3])
    assert [t for t, *_ in rb] == [0x06, 0x04], rb  # responseType, response OCTET STRING
    _, _, bcs, bce = H.der_read(der, rb[1][2])  # BasicOCSPResponse SEQUENCE
    basic = H.der_children(der, bcs, bce)  # tbsResponseData, signatureAlgorithm, signature, [0] certs
    assert basic[2][0] == 0x03, basic
    b = bytearray(der)
    b[basic[2][3] - 1] ^= 0x01
    return bytes(b)


def _write(path, data):
    path.write_bytes(data)
    return path


def test_ocsp_nonce_signed_on_demand(pkijs_ready, delegated_env, tmp_path):
    """A nonce request (POST and GET) is answered now, by the delegated responder, with
    the nonce echoed: pkijs verifies the fresh signature."""
    env, s, pki = delegated_env, delegated_env.server, delegated_env.pki
    nonce = os.urandom(16)
    for method in ("POST", "GET"):
        for serial in (pki.GOOD, pki.REV):
            req = O.ocsp_request([O.cert_id(pki.ca.cert, serial, "sha256")], nonce=nonce)
            r = s.ocsp_post(req) if method == "POST" else s.ocsp_get(req)
            j = check_ocsp(tmp_path, r.body, pki.ca, pki.responder, name="nonce")
            assert j["signatureValid"] is True and j["verifyError"] is None, f"{method}: {j}"
            assert j["signedBySigner"] is True and j["responderCertIncluded"] is True, j
            assert j["nonce"] == nonce.hex().upper(), f"{method}: nonce not echoed: {j}"
            produced = H.parse_time(j["producedAt"])
            assert abs((H.now() - produced).total_seconds()) <= 5, f"producedAt {produced}: not signed now"
            assert_single(j, env.revo, serial)


# ---------------------------------------------------------------- CRL


def test_crl_reasons_verified(pkijs_ready, ca_store, ca1, tmp_path):
    """A DER CRL with every reason revo accepts (and a good leaf left out): pkijs
    verifies it and reads every serial, date and reason `revo list --revoked` has."""
    revo = ca_store
    at = H.now() - H.days(1)
    for i, reason in enumerate(C.REASONS):
        revo("revoke", "--serial", H.serial_hex(0x5100 + i), "--issuer", "ca1", "--reason", reason,
             "--at", H.rfc3339(at - H.days(i)))
    # a serial whose DER needs a leading zero octet, and a 20-octet one
    revo("revoke", "--serial", "80FF", "--issuer", "ca1", "--reason", "superseded")
    big = "7F" + "A5" * 19
    revo("revoke", "--serial", big, "--issuer", "ca1", "--reason", "keyCompromise")
    out = tmp_path / "reasons.crl"
    j = revo("crl", "build", "--issuer", "ca1", "--out", out, json=True)
    assert not out.read_bytes().startswith(b"-----"), "DER expected without --pem"

    got = pkijs("crl", out, ca1.cert_path)
    assert got["signatureValid"] is True and got["verifyError"] is None, got
    assert got["crlNumber"] == j["crl_number"], (got, j)
    assert H.same_second(j["this_update"], H.parse_time(got["thisUpdate"])), (got, j)
    assert H.same_second(j["next_update"], H.parse_time(got["nextUpdate"])), (got, j)

    listing = revo.list("--revoked", "--issuer", "ca1")
    assert len(listing) == len(C.REASONS) + 2
    want = {e["serial"]: (e["revoked_at"], None if e["reason"] == "unspecified" else e["reason"])
            for e in listing}
    entries = {e["serial"]: e for e in got["entries"]}
    assert len(entries) == len(got["entries"]) == j["entries"], got
    assert set(entries) == set(want), (sorted(entries), sorted(want))
    for serial, (revoked_at, reason) in want.items():
        e = entries[serial]
        assert H.same_second(revoked_at, H.parse_time(e["revocationDate"])), (serial, e, revoked_at)
        assert e["reason"] == reason, (serial, e, reason)
    assert {"80FF", big} <= set(entries)
    assert {e["reason"] for e in got["entries"]} == {None, *C.REASONS[1:]}

    # the same CRL under another CA's certificate does not verify
    other = tmp_path / "other-ca.pem"
    other_ca = H.CA("Revo pkijs Other CA", tmp_path / "other")
    other.write_bytes(other_ca.cert_path.read_bytes())
    wrong = pkijs("crl", out, other)
    assert wrong["signatureValid"] is False, wrong


def test_crl_flipped_signature_rejected(pkijs_ready, ca_store, ca1, tmp_path):
    revo = ca_store
    revo("revoke", "--serial", "0A0B", "--issuer", "ca1", "--reason", "keyCompromise")
    out = tmp_path / "ok.crl"
    revo("crl", "build", "--issuer", "ca1", "--out", out, json=True)
    assert pkijs("crl", out, ca1.cert_path)["signatureValid"] is True
    bad = _write(tmp_path / "flipped.crl", H.flip_signature_byte(out.read_bytes()))
    got = pkijs("crl", bad, ca1.cert_path)
    assert got["signatureValid"] is False, f"pkijs accepted a CRL with a damaged signature: {got}"
    assert [e["serial"] for e in got["entries"]] == ["0A0B"], got


def test_revo_check_fails_loudly(pkijs_ready, ca1, tmp_path):
    """Garbage in: exit 1 with one line on stderr (so a broken answer cannot pass as
    'signatureValid: false' by accident in the tests above)."""
    junk = _write(tmp_path / "junk.der", b"\x30\x03\x02\x01")
    for mode in ("ocsp", "crl"):
        p = pkijs(mode, junk, ca1.cert_path, expect_ok=False)
        assert p.returncode == 1 and p.stdout == "", (mode, p)
        assert p.stderr.startswith("revo_check: ") and p.stderr.count("\n") == 1, (mode, p.stderr)
