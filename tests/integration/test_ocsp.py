"""`revo ocsp presign` and `revo ocsp serve`: every field of the answers checked against
the store with python-cryptography, GET/POST encodings, pre-signed versus on-demand
answers, nonces, several CertIDs, --non-issued, --no-keys, HTTP caching headers,
/healthz, /metrics, SIGHUP and the listen options.

Real external clients (openssl, GnuTLS, NSS, nginx) are in test_ocsp_peers.py, broken
and hostile input in test_ocsp_bad_input.py.
"""

import base64
import datetime
import json
import os
import signal
import socket
import threading
import time
import urllib.parse

import ocsp_helpers as O
import pytest
import revohelp as H
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID
from ocsp_helpers import delegated_env, ocsp_pki, presigned_env, serve  # noqa: F401 (fixtures)

UTC = datetime.timezone.utc
GOOD, REVOKED, UNKNOWN = (ocsp.OCSPCertStatus.GOOD, ocsp.OCSPCertStatus.REVOKED,
                          ocsp.OCSPCertStatus.UNKNOWN)
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------- checks


def request_for(pki, serial, hash_name="sha1", nonce=None, via="crypto"):
    """A one-CertID request: python-cryptography's encoder for registered leaves,
    ours otherwise (or when asked)."""
    if via == "crypto" and serial in pki.leaves:
        return O.crypto_request(pki.leaf(serial).cert, pki.ca.cert, hash_name, nonce)
    return O.ocsp_request([O.cert_id(pki.ca.cert, serial, hash_name)], nonce=nonce)


def check_single(single, revo, serial, hash_name, ca_cert, issuer="ca", validity=O.VALIDITY):
    """One SingleResponse against `revo status --json`."""
    assert single.serial_number == serial, f"serial {single.serial_number:X} != {serial:X}"
    assert single.hash_algorithm.name == hash_name, (
        f"CertID hash {single.hash_algorithm.name}, the request used {hash_name}")
    nh, kh = O.issuer_hash_bytes(ca_cert, hash_name)
    assert single.issuer_name_hash == nh and single.issuer_key_hash == kh, "CertID hashes not echoed"
    st = revo.status(H.serial_hex(serial), issuer)
    want = {"good": GOOD, "revoked": REVOKED, "unknown": UNKNOWN}[st["status"]]
    assert single.certificate_status == want, (
        f"serial {serial:X}: OCSP says {single.certificate_status}, store says {st}")
    if want == REVOKED:
        assert H.aware(single.revocation_time) == H.parse_time(st["revoked_at"]), (
            f"revocationTime {single.revocation_time} != store {st['revoked_at']}")
        if st["reason"] in (None, "unspecified"):
            assert single.revocation_reason in (None, x509.ReasonFlags.unspecified)
        else:
            assert single.revocation_reason == H.REASON_FLAGS[st["reason"]], (
                f"reason {single.revocation_reason} != store {st['reason']}")
    else:
        assert single.revocation_time is None and single.revocation_reason is None
    tu, nu = H.aware(single.this_update), H.aware(single.next_update)
    assert nu is not None, "nextUpdate must be present"
    assert (nu - tu).total_seconds() == validity, (
        f"nextUpdate - thisUpdate = {(nu - tu).total_seconds()} s, issuer --ocsp-validity is {validity} s")
    assert tu <= H.now() + datetime.timedelta(seconds=5), f"thisUpdate {tu} in the future"
    assert nu > H.now(), f"nextUpdate {nu} already passed: a stale answer"
    return st


def check_signed_by(resp, signer_cert, delegated, ca_cert):
    """responderID byKey, the signature, the certs field."""
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.responder_name is None, "responderID must be byKey"
    assert resp.responder_key_hash == O.key_hash(signer_cert), "responderID key hash is not the signer's"
    O.verify_signature(resp, signer_cert)
    certs = resp.certificates
    if delegated:
        ders = [c.public_bytes(serialization.Encoding.DER) for c in certs]
        assert signer_cert.public_bytes(serialization.Encoding.DER) in ders, (
            "the delegated responder certificate must be included in the response")
        eku = signer_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.OCSP_SIGNING in eku
        # the responder certificate is issued by the CA whose certificates it answers for
        ca_cert.public_key().verify(signer_cert.signature, signer_cert.tbs_certificate_bytes,
                                    ec.ECDSA(signer_cert.signature_hash_algorithm))
    pa = H.aware(resp.produced_at)
    assert pa <= H.now() + datetime.timedelta(seconds=5), f"producedAt {pa} in the future"


def successful(body):
    st = O.status_of(body)
    assert st == O.SUCCESSFUL, f"responseStatus {O.STATUS_NAMES.get(st, st)}, expected successful"
    return O.load(body)


def only_single(resp):
    s = O.singles(resp)
    assert len(s) == 1, f"{len(s)} SingleResponses, expected 1"
    return s[0]


def error_body(body, status):
    assert body == O.error_response(status), (
        f"expected the {O.STATUS_NAMES[status]} OCSPResponse {O.error_response(status).hex()}, "
        f"got {body[:40].hex()} ({O.STATUS_NAMES.get(O.status_of(body), '?') if body[:1] == b'0' else 'not DER'})")


ALL_SERIALS = ["GOOD", "REV", "HOLD", "LATE", "GOOD2", "BIG", "HIBIT", "B64", "REVOKED_NOT_ISSUED"]


# ---------------------------------------------------------------- pre-signed answers


def test_presign_json(presigned_env, delegated_env):
    for env, signer in ((presigned_env, "ca"), (delegated_env, "delegated")):
        j = env.presign
        assert list(j) == ["issuers"] and len(j["issuers"]) == 1, j
        i = j["issuers"][0]
        assert i["issuer"] == "ca" and i["signer"] == signer, i
        assert i["validity"] == O.VALIDITY, i
        # 8 registered leaves (2 revoked) and one revoked serial never issued
        assert i["revoked"] == 3, i
        assert i["responses"] == 2 * 9, f"one SHA-1 and one SHA-256 response per serial: {i}"
        assert i["certs"] in (8, 9), i


@pytest.mark.parametrize("hash_name", ["sha1", "sha256"])
def test_presigned_answers_match_the_store(presigned_env, hash_name):
    """Every serial, POST and GET: status, time, reason, CertID echo, validity,
    responderID, signature by the CA key; GET and POST serve the same stored bytes."""
    env, s, pki = presigned_env, presigned_env.server, presigned_env.pki
    statuses = set()
    for name in ALL_SERIALS:
        serial = getattr(pki, name)
        req = request_for(pki, serial, hash_name)
        post = s.ocsp_post(req)
        get = s.ocsp_get(req)
        assert post.body == get.body, f"{name}: GET and POST must serve the same pre-signed bytes"
        again = s.ocsp_post(req)
        assert again.body == post.body, f"{name}: a pre-signed answer must be served as stored"
        resp = successful(post.body)
        check_signed_by(resp, pki.ca.cert, False, pki.ca.cert)
        st = check_single(only_single(resp), env.revo, serial, hash_name, pki.ca.cert)
        assert O.nonce_of(resp) is None
        statuses.add(st["status"])
    assert statuses == {"good", "revoked"}
    m = s.metrics()
    assert O.metric(m, "revo_ocsp_signatures_total") == 0, "a responder without keys signed something"


def test_presigned_revocation_details(presigned_env):
    """The revocation facts themselves (not only agreement with `revo status`)."""
    s, pki = presigned_env.server, presigned_env.pki
    for serial, at, reason in ((pki.REV, pki.rev_at, x509.ReasonFlags.key_compromise),
                               (pki.HOLD, pki.hold_at, x509.ReasonFlags.certificate_hold),
                               (pki.REVOKED_NOT_ISSUED, pki.rni_at,
                                x509.ReasonFlags.cessation_of_operation)):
        one = only_single(successful(s.ocsp_post(request_for(pki, serial)).body))
        assert one.certificate_status == REVOKED
        assert H.aware(one.revocation_time) == at
        assert one.revocation_reason == reason


def test_get_encodings(presigned_env):
    """GET: standard base64 raw or percent-encoded (upper and lower case escapes), with
    and without padding, URL-safe alphabet, under any path prefix."""
    s, pki = presigned_env.server, presigned_env.pki
    req = O.ocsp_request([O.cert_id(pki.ca.cert, pki.B64, "sha1")])
    std = O.b64_std(req)
    assert "+" in std and "/" in std and std.endswith("="), std
    want = s.ocsp_post(req).body
    assert only_single(successful(want)).certificate_status == GOOD
    enc = urllib.parse.quote(std, safe="")
    variants = {
        "percent-encoded": "/" + enc,
        "percent-encoded, lower-case escapes": "/" + enc.replace("%2F", "%2f").replace("%2B", "%2b").replace("%3D", "%3d"),
        "prefix /ocsp/, percent-encoded": "/ocsp/" + enc,
        "deep prefix, percent-encoded": "/a/b/c/" + enc,
        "raw standard base64": "/" + std,
        "prefix /ocsp/, raw standard base64": "/ocsp/" + std,
        "no padding, percent-encoded": "/" + urllib.parse.quote(std.rstrip("="), safe=""),
        "URL-safe, no padding": "/" + O.b64_urlsafe_nopad(req),
        "prefix /ocsp/, URL-safe, no padding": "/ocsp/" + O.b64_urlsafe_nopad(req),
        "URL-safe with padding": "/ocsp/" + base64.urlsafe_b64encode(req).decode(),
        "every character percent-encoded": "/" + "".join(f"%{b:02X}" for b in std.encode()),
    }
    bad = {}
    for what, path in variants.items():
        r = s.get(path)
        if r.status != 200 or r.body != want:
            bad[what] = (path, r.status, r.body[:16].hex())
    assert not bad, f"GET forms not answered with the pre-signed response: {bad}"


def test_request_variants(presigned_env):
    """Valid requests in less common shapes get the same pre-signed answer: SHA-1
    AlgorithmIdentifier without NULL parameters, a requestorName, a non-critical
    singleRequestExtension, an explicit v1 version (BER, as some clients send it)."""
    s, pki = presigned_env.server, presigned_env.pki
    want = s.ocsp_post(request_for(pki, pki.GOOD, via="ours")).body
    nh, kh = O.issuer_hash_bytes(pki.ca.cert, "sha1")
    cid = O.cert_id(pki.ca.cert, pki.GOOD)
    no_null = O.seq(O.alg_id("sha1", with_null=False), O.octets(nh), O.octets(kh), O.integer(pki.GOOD))
    requestor = O.tlv(0xA1, O.tlv(0x81, b"ops@example.test"))
    single_ext = O.explicit(0, O.seq(O.seq(O.oid("1.3.6.1.4.1.99999.1"), O.octets(b"\x05\x00"))))
    variants = {
        "sha1 without NULL": O.ocsp_request([no_null]),
        "requestorName": O.seq(O.seq(requestor, O.seq(O.seq(cid)))),
        "singleRequestExtensions": O.seq(O.seq(O.seq(O.seq(cid, single_ext)))),
    }
    for what, req in variants.items():
        r = s.ocsp_post(req)
        assert O.status_of(r.body) == O.SUCCESSFUL, f"{what}: {O.STATUS_NAMES.get(O.status_of(r.body))}"
        one = only_single(O.load(r.body))
        assert one.certificate_status == GOOD and one.serial_number == pki.GOOD, what
        assert r.body == want, f"{what}: not the pre-signed answer"


def test_not_served_without_key(presigned_env):
    """No key: a serial without a pre-signed response is unauthorized, a foreign issuer
    unauthorized (also a CA with the same name and another key), garbage malformed."""
    s, pki = presigned_env.server, presigned_env.pki
    for hash_name in ("sha1", "sha256"):
        error_body(s.ocsp_post(request_for(pki, pki.NOT_ISSUED, hash_name)).body, O.UNAUTHORIZED)
        foreign = O.crypto_request(pki.foreign.cert, pki.ca2.cert, hash_name)
        error_body(s.ocsp_post(foreign).body, O.UNAUTHORIZED)
        error_body(s.ocsp_get(foreign).body, O.UNAUTHORIZED)
        nh, _ = O.issuer_hash_bytes(pki.ca.cert, hash_name)
        _, kh2 = O.issuer_hash_bytes(pki.ca2.cert, hash_name)
        twin = O.seq(O.alg_id(hash_name), O.octets(nh), O.octets(kh2), O.integer(pki.GOOD))
        error_body(s.ocsp_post(O.ocsp_request([twin])).body, O.UNAUTHORIZED)
    for junk in (b"\x00", b"hello world", b"\x30\x03\x02\x01\x01", os.urandom(64)):
        r = s.post(junk)
        assert r.status == 200, r
        error_body(r.body, O.MALFORMED)
    # several CertIDs need a signature: without a key, unauthorized
    multi = O.ocsp_request([O.cert_id(pki.ca.cert, pki.GOOD), O.cert_id(pki.ca.cert, pki.REV)])
    error_body(s.ocsp_post(multi).body, O.UNAUTHORIZED)
    # a nonce cannot be echoed without a key: the pre-signed answer comes back
    plain = s.ocsp_post(request_for(presigned_env.pki, pki.GOOD)).body
    with_nonce = s.ocsp_post(request_for(pki, pki.GOOD, nonce=b"N" * 16)).body
    assert with_nonce == plain and O.nonce_of(O.load(with_nonce)) is None


# ---------------------------------------------------------------- delegated responder, on demand


@pytest.mark.parametrize("hash_name", ["sha1", "sha256"])
def test_delegated_presigned(delegated_env, hash_name):
    """Pre-signed by the delegated responder: its certificate in the response, its key hash
    as responderID, its signature."""
    env, s, pki = delegated_env, delegated_env.server, delegated_env.pki
    for name in ALL_SERIALS:
        serial = getattr(pki, name)
        req = request_for(pki, serial, hash_name)
        body = s.ocsp_get(req).body
        assert s.ocsp_post(req).body == body, f"{name}: not the pre-signed bytes"
        resp = successful(body)
        check_signed_by(resp, pki.responder.cert, True, pki.ca.cert)
        check_single(only_single(resp), env.revo, serial, hash_name, pki.ca.cert)


@pytest.mark.parametrize("length", [1, 16, 32, 128])
def test_nonce_echoed_and_signed_on_demand(delegated_env, length):
    env, s, pki = delegated_env, delegated_env.server, delegated_env.pki
    before = s.metrics()
    nonce = os.urandom(length)
    for method in ("POST", "GET"):
        for serial in (pki.GOOD, pki.REV):
            req = request_for(pki, serial, "sha256", nonce=nonce, via="ours")
            r = s.ocsp_post(req) if method == "POST" else s.ocsp_get(req)
            resp = successful(r.body)
            assert O.nonce_of(resp) == nonce, f"{method}: nonce of {length} octets not echoed"
            check_signed_by(resp, pki.responder.cert, True, pki.ca.cert)
            check_single(only_single(resp), env.revo, serial, "sha256", pki.ca.cert)
            pa = H.aware(resp.produced_at)
            assert abs((H.now() - pa).total_seconds()) <= 5, f"producedAt {pa}: not signed now"
            cc = O.cache_control(r.header("cache-control") or "")
            assert "no-store" in cc, f"{method} answer with a nonce must not be cached: {r.headers}"
            assert r.header("etag") is None or method == "POST" or "no-store" in cc
    after = s.metrics()
    assert O.metric(after, "revo_ocsp_signatures_total") - O.metric(before, "revo_ocsp_signatures_total") == 4
    assert (O.metric(after, "revo_ocsp_requests_total", method="GET", outcome="signed")
            - O.metric(before, "revo_ocsp_requests_total", method="GET", outcome="signed")) == 2


def test_nonce_from_python_cryptography(delegated_env):
    s, pki = delegated_env.server, delegated_env.pki
    req = O.crypto_request(pki.leaf(pki.GOOD).cert, pki.ca.cert, "sha1", nonce=b"0123456789abcdef")
    resp = successful(s.ocsp_post(req).body)
    assert O.nonce_of(resp) == b"0123456789abcdef"
    assert only_single(resp).certificate_status == GOOD


def test_several_certids_answered_together(delegated_env):
    env, s, pki = delegated_env, delegated_env.server, delegated_env.pki
    items = [(pki.GOOD, "sha1"), (pki.REV, "sha256"), (pki.NOT_ISSUED, "sha1"),
             (pki.HOLD, "sha256"), (pki.REVOKED_NOT_ISSUED, "sha1"), (pki.BIG, "sha256")]
    req = O.ocsp_request([O.cert_id(pki.ca.cert, sn, h) for sn, h in items])
    for r in (s.ocsp_post(req), s.ocsp_get(req)):
        resp = successful(r.body)
        check_signed_by(resp, pki.responder.cert, True, pki.ca.cert)
        got = O.singles(resp)
        assert [g.serial_number for g in got] == [sn for sn, _ in items], "answers not in request order"
        for g, (sn, h) in zip(got, items):
            check_single(g, env.revo, sn, h, pki.ca.cert)
        assert "no-store" in O.cache_control(r.header("cache-control") or ""), r.headers
    # the maximum number of CertIDs (--max-certids 16) is answered
    req16 = O.ocsp_request([O.cert_id(pki.ca.cert, pki.GOOD + i, "sha1") for i in range(16)])
    got = O.singles(successful(s.ocsp_post(req16).body))
    assert [g.serial_number for g in got] == [pki.GOOD + i for i in range(16)]


def test_non_issued_policies(delegated_env):
    env, pki = delegated_env, delegated_env.pki
    for mode in ("default", "revoked", "good"):
        s = env.servers[mode]
        for hash_name in ("sha1", "sha256"):
            resp = successful(s.ocsp_post(request_for(pki, pki.NOT_ISSUED, hash_name)).body)
            check_signed_by(resp, pki.responder.cert, True, pki.ca.cert)
            one = only_single(resp)
            assert one.serial_number == pki.NOT_ISSUED and one.hash_algorithm.name == hash_name
            exts = O.extension_oids(resp)
            if mode == "default":
                assert one.certificate_status == UNKNOWN, f"--non-issued unknown: {one.certificate_status}"
                assert O.OID_EXT_REVOKED not in exts
            elif mode == "good":
                assert one.certificate_status == GOOD, f"--non-issued good: {one.certificate_status}"
                assert O.OID_EXT_REVOKED not in exts
            else:
                assert one.certificate_status == REVOKED, f"--non-issued revoked: {one.certificate_status}"
                assert H.aware(one.revocation_time) == EPOCH, one.revocation_time
                assert one.revocation_reason == x509.ReasonFlags.certificate_hold
                assert O.OID_EXT_REVOKED in exts, (
                    f"RFC 6960 2.2: the extended revoked definition extension is required, got {exts}")
            tu, nu = H.aware(one.this_update), H.aware(one.next_update)
            assert nu is not None and nu > H.now() and tu <= H.now() + datetime.timedelta(seconds=5)
            # issued and revoked-not-issued serials are not affected by the policy
            for serial in (pki.GOOD, pki.REV, pki.REVOKED_NOT_ISSUED):
                one = only_single(successful(s.ocsp_post(request_for(pki, serial, hash_name)).body))
                check_single(one, env.revo, serial, hash_name, pki.ca.cert)


def test_no_keys(delegated_env):
    """--no-keys: pre-signed answers only; nonce not echoed, several CertIDs and missing
    answers unauthorized."""
    pki = delegated_env.pki
    s, signing = delegated_env.servers["nokeys"], delegated_env.server
    for serial in (pki.GOOD, pki.REV):
        req = request_for(pki, serial)
        body = s.ocsp_post(req).body
        assert body == signing.ocsp_post(req).body, "the pre-signed bytes, whoever serves them"
        resp = successful(body)
        check_signed_by(resp, pki.responder.cert, True, pki.ca.cert)
        with_nonce = s.ocsp_post(request_for(pki, serial, nonce=b"\x01" * 20)).body
        if O.status_of(with_nonce) == O.SUCCESSFUL:
            assert O.nonce_of(O.load(with_nonce)) is None, "--no-keys echoed a nonce: it signed"
            assert with_nonce == body
    multi = O.ocsp_request([O.cert_id(pki.ca.cert, pki.GOOD), O.cert_id(pki.ca.cert, pki.REV)])
    error_body(s.ocsp_post(multi).body, O.UNAUTHORIZED)
    error_body(s.ocsp_post(request_for(pki, pki.NOT_ISSUED)).body, O.UNAUTHORIZED)
    assert json.loads(s.healthz().body)["on_demand_signing"] is False
    assert json.loads(signing.healthz().body)["on_demand_signing"] is True
    assert O.metric(s.metrics(), "revo_ocsp_signatures_total") == 0


def test_foreign_issuer_and_garbage_with_key(delegated_env):
    s, pki = delegated_env.server, delegated_env.pki
    error_body(s.ocsp_post(O.crypto_request(pki.foreign.cert, pki.ca2.cert)).body, O.UNAUTHORIZED)
    error_body(s.ocsp_post(O.crypto_request(pki.foreign.cert, pki.ca2.cert, nonce=b"abcd")).body,
               O.UNAUTHORIZED)
    error_body(s.post(b"\x30\x80garbage").body, O.MALFORMED)


# ---------------------------------------------------------------- revocations and re-signing


def poll(fn, timeout, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def test_revoke_without_presign_gives_try_later(revo, ocsp_pki, serve):
    """No key: after `revo revoke` the stored good contradicts the store -> tryLater, never
    the stale good; after `revo ocsp presign` revoked within one second, no restart. The
    same for unhold, and a certificate registered after presign is unauthorized."""
    pki = ocsp_pki
    leaves = [pki.leaf(x) for x in (pki.GOOD, pki.LATE, pki.HOLD)]
    O.setup_store(revo, pki, leaves=leaves)
    s = serve(revo)
    late = {h: request_for(pki, pki.LATE, h) for h in ("sha1", "sha256")}
    for h, req in late.items():
        assert only_single(successful(s.ocsp_post(req).body)).certificate_status == GOOD
    revo("revoke", "--serial", H.serial_hex(pki.LATE), "--reason", "superseded")
    for h, req in late.items():
        error_body(s.ocsp_post(req).body, O.TRY_LATER)
        error_body(s.ocsp_get(req).body, O.TRY_LATER)
    good_req = request_for(pki, pki.GOOD)
    assert only_single(successful(s.ocsp_post(good_req).body)).certificate_status == GOOD
    revo("unhold", "--serial", H.serial_hex(pki.HOLD))
    error_body(s.ocsp_post(request_for(pki, pki.HOLD)).body, O.TRY_LATER)
    revo("cert", "add", pki.leaf(pki.GOOD2).pem_path)
    error_body(s.ocsp_post(request_for(pki, pki.GOOD2)).body, O.UNAUTHORIZED)

    revo("ocsp", "presign", json=True)
    t0 = time.monotonic()

    def revoked_now():
        b = s.post(late["sha256"]).body
        return O.status_of(b) == O.SUCCESSFUL and only_single(O.load(b)).certificate_status == REVOKED

    assert poll(revoked_now, 1.0), "not revoked within 1 s of presign"
    assert time.monotonic() - t0 <= 1.0
    assert s.alive()
    for h, req in late.items():
        for body in (s.ocsp_post(req).body, s.ocsp_get(req).body):
            resp = successful(body)
            check_signed_by(resp, pki.ca.cert, False, pki.ca.cert)
            check_single(only_single(resp), revo, pki.LATE, h, pki.ca.cert)
            assert only_single(resp).revocation_reason == x509.ReasonFlags.superseded
    assert only_single(successful(s.ocsp_post(request_for(pki, pki.HOLD)).body)).certificate_status == GOOD
    assert only_single(successful(s.ocsp_post(request_for(pki, pki.GOOD2)).body)).certificate_status == GOOD
    assert only_single(successful(s.ocsp_post(good_req).body)).certificate_status == GOOD


def test_revoke_with_delegated_key_signs_on_demand(revo, ocsp_pki, serve):
    """With the delegated key a contradicted or missing pre-signed answer is signed on
    demand at once: revoked right after `revo revoke`, good for a new certificate."""
    pki = ocsp_pki
    O.setup_store(revo, pki, delegated=True, leaves=[pki.leaf(pki.GOOD), pki.leaf(pki.LATE)])
    s = serve(revo)
    req = request_for(pki, pki.LATE, "sha1")
    assert only_single(successful(s.ocsp_post(req).body)).certificate_status == GOOD
    revo("revoke", "--serial", H.serial_hex(pki.LATE), "--reason", "affiliationChanged")
    for r in (s.ocsp_post(req), s.ocsp_get(req)):
        resp = successful(r.body)
        check_signed_by(resp, pki.responder.cert, True, pki.ca.cert)
        one = only_single(resp)
        check_single(one, revo, pki.LATE, "sha1", pki.ca.cert)
        assert one.revocation_reason == x509.ReasonFlags.affiliation_changed
        assert abs((H.now() - H.aware(resp.produced_at)).total_seconds()) <= 5
        assert "no-store" in O.cache_control(r.header("cache-control") or ""), (
            f"an answer signed on demand must not be cached: {r.headers}")
    revo("cert", "add", pki.leaf(pki.GOOD2).pem_path)
    one = only_single(successful(s.ocsp_post(request_for(pki, pki.GOOD2, "sha256")).body))
    check_single(one, revo, pki.GOOD2, "sha256", pki.ca.cert)


def test_stale_presigned_never_served(revo, revo_at, ocsp_pki, serve, tmp_path):
    """A pre-signed answer past its nextUpdate is never served: without a key the client
    gets tryLater (and /healthz turns 503 once recounted), with the delegated key a fresh
    answer signed on demand."""
    pki = ocsp_pki
    leaves = [pki.leaf(pki.GOOD)]
    O.setup_store(revo, pki, leaves=leaves, validity=2)
    revo_d = revo_at(tmp_path / "store-delegated")
    O.setup_store(revo_d, pki, leaves=leaves, validity=2, delegated=True)
    s_nokey = serve(revo)
    s_key = serve(revo_d)
    req = request_for(pki, pki.GOOD)
    resp = successful(s_nokey.ocsp_post(req).body)
    nu = H.aware(only_single(resp).next_update)
    assert (nu - H.aware(only_single(resp).this_update)).total_seconds() == 2
    nu_d = H.aware(only_single(successful(s_key.ocsp_post(req).body)).next_update)
    time.sleep(max(0.0, (max(nu, nu_d) - datetime.datetime.now(UTC)).total_seconds()) + 1.2)
    for r in (s_nokey.post(req), s_nokey.get("/" + O.b64url_path(req))):
        st = O.status_of(r.body)
        if st == O.SUCCESSFUL:
            one = only_single(O.load(r.body))
            assert H.aware(one.next_update) > H.now(), (
                f"served a stale answer: nextUpdate {one.next_update} is in the past")
        else:
            assert r.body == O.error_response(O.TRY_LATER), r.body.hex()
    for r in (s_key.ocsp_post(req), s_key.ocsp_get(req)):
        resp = successful(r.body)
        check_signed_by(resp, pki.responder.cert, True, pki.ca.cert)
        one = only_single(resp)
        assert H.aware(one.next_update) > H.now() and one.certificate_status == GOOD
    s_nokey.signal(signal.SIGHUP)
    # 503 comes at once (the earliest nextUpdate has passed); the recount after SIGHUP
    # then names the stale answers
    r = poll(lambda: (lambda r: r if r.status == 503 and json.loads(r.body)["stale_or_missing"] >= 1
                      else None)(s_nokey.healthz()), 5, 0.1)
    assert r, f"/healthz with only stale answers and no key, after SIGHUP: {s_nokey.healthz()!r}"
    h = json.loads(r.body)
    assert h["stale_or_missing"] >= 1 and h["seconds_to_earliest_next_update"] < 0, h


# ---------------------------------------------------------------- HTTP caching


def test_get_cache_headers(presigned_env):
    s, pki = presigned_env.server, presigned_env.pki
    req = request_for(pki, pki.GOOD)
    r = s.ocsp_get(req)
    one = only_single(successful(r.body))
    tu, nu = H.aware(one.this_update), H.aware(one.next_update)
    assert r.header("content-length") == str(len(r.body))
    assert r.header("date"), "no Date header"
    cc = O.cache_control(r.header("cache-control") or "")
    for d in ("max-age", "public", "no-transform", "must-revalidate"):
        assert d in cc, f"Cache-Control lacks {d}: {r.header('cache-control')!r}"
    max_age = int(cc["max-age"])
    left = (nu - datetime.datetime.now(UTC)).total_seconds()
    assert max_age <= left + 1, f"max-age {max_age} beyond nextUpdate ({left:.0f} s away)"
    assert max_age <= 86400
    assert max_age >= left - 10, f"max-age {max_age}: should run up to nextUpdate ({left:.0f} s)"
    assert r.header("last-modified") and O.http_date(r.header("last-modified")) == tu, (
        f"Last-Modified {r.header('last-modified')} != thisUpdate {tu}")
    assert r.header("expires") and O.http_date(r.header("expires")) == nu, (
        f"Expires {r.header('expires')} != nextUpdate {nu}")
    etag = r.header("etag")
    assert etag and etag.strip('"') and etag.endswith('"'), f"no usable ETag: {etag!r}"
    # the ETag names the response: another response has another one
    r2 = s.ocsp_get(request_for(pki, pki.REV))
    assert r2.header("etag") and r2.header("etag") != etag
    # the same response, the same ETag
    assert s.ocsp_get(req).header("etag") == etag

    before = s.metrics()
    path = "/" + O.b64url_path(req)
    for inm in (etag, f'"nope", {etag}'):
        nm = s.get(path, headers={"If-None-Match": inm})
        assert nm.status == 304, f"If-None-Match {inm}: HTTP {nm.status}"
        assert nm.body == b""
        assert nm.header("etag") == etag, f"304 must carry the ETag (RFC 9110 15.4.5): {nm.headers}"
        assert nm.header("cache-control") and "max-age" in nm.header("cache-control"), (
            f"304 must carry Cache-Control (RFC 9110 15.4.5): {nm.headers}")
        assert nm.header("expires"), f"304 must carry Expires (RFC 9110 15.4.5): {nm.headers}"
    other = s.get(path, headers={"If-None-Match": '"something-else"'})
    assert other.status == 200 and other.body == r.body
    after = s.metrics()
    assert (O.metric(after, "revo_ocsp_requests_total", method="GET", outcome="not_modified")
            - O.metric(before, "revo_ocsp_requests_total", method="GET", outcome="not_modified")) == 2

    # POST answers are not cacheable
    p = s.ocsp_post(req)
    assert "no-store" in O.cache_control(p.header("cache-control") or ""), p.headers
    assert "max-age" not in O.cache_control(p.header("cache-control") or "")


def test_max_age_cap(presigned_env):
    s, pki = presigned_env.servers["maxage60"], presigned_env.pki
    r = s.ocsp_get(request_for(pki, pki.GOOD, "sha256"))
    cc = O.cache_control(r.header("cache-control") or "")
    assert cc.get("max-age") == "60", f"--max-age 60: {r.header('cache-control')!r}"
    one = only_single(successful(r.body))
    assert O.http_date(r.header("expires")) == H.aware(one.next_update)


def test_error_answers_are_not_cached(presigned_env):
    s, pki = presigned_env.server, presigned_env.pki
    r = s.get("/" + O.b64url_path(request_for(pki, pki.NOT_ISSUED)))
    error_body(r.body, O.UNAUTHORIZED)
    cc = O.cache_control(r.header("cache-control") or "")
    assert "max-age" not in cc or cc["max-age"] == "0", f"an unauthorized answer is cacheable: {r.headers}"


# ---------------------------------------------------------------- monitoring


HEALTH_FIELDS = {"status", "store_readable", "issuers", "presigned_responses", "stale_or_missing",
                 "seconds_to_earliest_next_update", "on_demand_signing"}


def test_healthz_ok(presigned_env, delegated_env):
    for env, signing in ((presigned_env, False), (delegated_env, True)):
        r = env.server.healthz()
        assert r.status == 200, r
        h = json.loads(r.body)
        assert set(h) >= HEALTH_FIELDS, f"missing fields {HEALTH_FIELDS - set(h)}"
        assert h["status"] == "ok" and h["store_readable"] is True
        assert h["issuers"] == 1
        assert h["presigned_responses"] == 18, h
        assert h["stale_or_missing"] == 0, h
        assert O.VALIDITY - 600 < h["seconds_to_earliest_next_update"] <= O.VALIDITY, h
        assert h["on_demand_signing"] is signing, h


def test_healthz_503_until_presigned(revo, ocsp_pki, serve):
    """Certificates without pre-signed responses and no key: 503; presign + SIGHUP: 200."""
    O.setup_store(revo, ocsp_pki, presign=False)
    s = serve(revo)
    r = s.healthz()
    assert r.status == 503, f"/healthz with unsigned certificates and no key: {r.status} {r.body!r}"
    h = json.loads(r.body)
    assert set(h) >= HEALTH_FIELDS and h["status"] != "ok"
    assert h["stale_or_missing"] >= 8 and h["presigned_responses"] == 0, h
    assert h["on_demand_signing"] is False
    revo("ocsp", "presign", json=True)
    s.signal(signal.SIGHUP)

    def healthy():
        r = s.healthz()
        return r.status == 200 and json.loads(r.body)
    h = poll(healthy, 5, 0.1)
    assert h, f"/healthz still {s.healthz().status} 5 s after presign and SIGHUP"
    assert h["stale_or_missing"] == 0 and h["presigned_responses"] == 18, h


def test_healthz_with_key_but_not_presigned(revo, ocsp_pki, serve):
    O.setup_store(revo, ocsp_pki, delegated=True, presign=False)
    s = serve(revo)
    r = s.healthz()
    assert r.status == 200, f"a responder that can sign answers correctly: {r.status} {r.body!r}"
    h = json.loads(r.body)
    assert h["on_demand_signing"] is True and h["stale_or_missing"] >= 8, h
    one = only_single(successful(s.ocsp_post(request_for(ocsp_pki, ocsp_pki.REV)).body))
    check_single(one, revo, ocsp_pki.REV, "sha1", ocsp_pki.ca.cert)


def test_healthz_no_issuer(revo, serve):
    revo("init")
    s = serve(revo)
    r = s.healthz()
    assert r.status == 503, r
    h = json.loads(r.body)
    assert h["issuers"] == 0 and h["status"] != "ok", h


def test_metrics_count_requests(presigned_env):
    s, pki = presigned_env.server, presigned_env.pki
    r = s.get("/metrics")
    assert r.status == 200
    assert (r.header("content-type") or "").startswith("text/plain"), r.headers
    text = r.body.decode()
    for fam, typ in (("revo_ocsp_requests_total", "counter"),
                     ("revo_ocsp_request_duration_seconds", "histogram"),
                     ("revo_ocsp_presigned_hits_total", "counter"),
                     ("revo_ocsp_signatures_total", "counter"),
                     ("revo_ocsp_errors_total", "counter"),
                     ("revo_ocsp_connections", "gauge"),
                     ("revo_ocsp_stale_or_missing", "gauge")):
        assert f"# TYPE {fam} {typ}" in text, f"no TYPE line for {fam}"
    before = O.parse_metrics(text)
    req = request_for(pki, pki.GOOD)
    for _ in range(3):
        s.ocsp_get(req)
    for _ in range(2):
        s.ocsp_post(req)
    s.get("/" + O.b64url_path(b"\x30\x03\x02\x01\x01"))  # decodes, but is no OCSPRequest
    s.post(O.crypto_request(pki.foreign.cert, pki.ca2.cert))
    after = s.metrics()

    def d(name, **lab):
        return O.metric(after, name, **lab) - O.metric(before, name, **lab)
    assert d("revo_ocsp_requests_total", method="GET", outcome="presigned") == 3
    assert d("revo_ocsp_requests_total", method="POST", outcome="presigned") == 2
    assert d("revo_ocsp_requests_total", method="GET", outcome="malformed") == 1
    assert d("revo_ocsp_requests_total", method="POST", outcome="unauthorized") == 1
    assert d("revo_ocsp_presigned_hits_total") == 5
    assert d("revo_ocsp_request_duration_seconds_count") >= 7
    assert O.metric(after, "revo_ocsp_request_duration_seconds_bucket", le="+Inf") == \
        O.metric(after, "revo_ocsp_request_duration_seconds_count")
    assert O.metric(after, "revo_ocsp_connections") >= 1
    assert O.metric(after, "revo_ocsp_stale_or_missing") == 0


# ---------------------------------------------------------------- signals and listening


def test_sighup_loads_a_new_issuer(revo, ocsp_pki, serve):
    pki = ocsp_pki
    O.setup_store(revo, pki, leaves=[pki.leaf(pki.GOOD)])
    s = serve(revo)
    req3 = O.crypto_request(pki.leaf3.cert, pki.ca3.cert, "sha256")
    O.add_issuer3(revo, pki, delegated=True)
    s.signal(signal.SIGHUP)

    def served():
        b = s.post(req3).body
        return O.status_of(b) == O.SUCCESSFUL and b
    body = poll(served, 5, 0.1)
    assert body, f"issuer added + SIGHUP: still {O.STATUS_NAMES.get(O.status_of(s.post(req3).body))}"
    resp = O.load(body)
    check_signed_by(resp, pki.responder3.cert, True, pki.ca3.cert)
    check_single(only_single(resp), revo, pki.leaf3.serial, "sha256", pki.ca3.cert, issuer="ca3")
    # its delegated key was loaded too: a nonce is echoed
    resp = successful(s.ocsp_post(O.crypto_request(pki.leaf3.cert, pki.ca3.cert, nonce=b"hup!")).body)
    assert O.nonce_of(resp) == b"hup!"
    check_signed_by(resp, pki.responder3.cert, True, pki.ca3.cert)
    # the first issuer still answers
    assert only_single(successful(s.ocsp_post(request_for(pki, pki.GOOD)).body)).certificate_status == GOOD
    assert json.loads(s.healthz().body)["issuers"] == 2
    # CertIDs of two issuers in one request: one signer cannot vouch for the other's
    # certificates, so the other's is unknown (or the whole request unauthorized)
    mixed = O.ocsp_request([O.cert_id(pki.ca3.cert, pki.leaf3.serial), O.cert_id(pki.ca.cert, pki.GOOD)],
                           nonce=b"mixed")
    body = s.post(mixed).body
    if O.status_of(body) == O.SUCCESSFUL:
        resp = O.load(body)
        check_signed_by(resp, pki.responder3.cert, True, pki.ca3.cert)
        got = O.singles(resp)
        assert [g.certificate_status for g in got] == [GOOD, UNKNOWN], got
    else:
        error_body(body, O.UNAUTHORIZED)


def test_sighup_under_load_and_failed_reload(revo, ocsp_pki, serve, tmp_path):
    """SIGHUP storms while requests (pre-signed and signed on demand) are in flight: no
    failed request, no crash (ASan); a reload that cannot read the key keeps serving."""
    pki = ocsp_pki
    key = tmp_path / "responder.key"
    key.write_bytes(pki.responder.key_path.read_bytes())
    os.chmod(key, 0o600)
    O.setup_store(revo, pki, delegated=True, leaves=[pki.leaf(pki.GOOD)], ocsp_key=key)
    s = serve(revo)
    reqs = [request_for(pki, pki.GOOD), request_for(pki, pki.GOOD, nonce=b"hup-storm")]
    stop, errors, count = [], [], [0]

    def load():
        while not stop:
            for req in reqs:
                try:
                    b = s.post(req).body
                    count[0] += 1
                    if O.status_of(b) != O.SUCCESSFUL:
                        errors.append(O.STATUS_NAMES.get(O.status_of(b)))
                except OSError as e:
                    errors.append(repr(e))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(20):
            s.signal(signal.SIGHUP)
            time.sleep(0.03)
        key.rename(tmp_path / "gone.key")
        s.signal(signal.SIGHUP)
        time.sleep(0.3)
    finally:
        stop.append(True)
        for t in threads:
            t.join(10)
    assert not errors, f"{len(errors)} of {count[0]} requests failed during SIGHUPs: {errors[:5]}"
    assert count[0] > 20 and s.alive()
    for req in reqs:
        one = only_single(successful(s.ocsp_post(req).body))
        assert one.certificate_status == GOOD


def test_sigterm_drains_and_exits(revo, ocsp_pki, serve):
    """SIGTERM with idle keep-alive and half-sent requests open: exit 0 within the drain
    (at most 10 s, and a half-sent request is still bound by --read-timeout 2), and no new
    connections are accepted after it."""
    O.setup_store(revo, ocsp_pki, leaves=[ocsp_pki.leaf(ocsp_pki.GOOD)])
    s = serve(revo, "--read-timeout", "2")
    req = request_for(ocsp_pki, ocsp_pki.GOOD)
    idle = O.RawConn(s.port)
    idle.send(O.post_bytes("/", req))
    assert idle.read_response() is not None
    half = O.RawConn(s.port)
    half.send(O.post_bytes("/", req)[:30])
    t0 = time.monotonic()
    s.signal(signal.SIGTERM)
    try:
        rc = s.proc.wait(timeout=12)
    except Exception:
        rc = None
    took = time.monotonic() - t0
    idle.close()
    half.close()
    assert rc is not None, "still running 12 s after SIGTERM"
    s.stop()  # checks exit 0 and the sanitizers
    assert took <= 4, f"SIGTERM took {took:.1f} s with --read-timeout 2"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", s.port), timeout=1).close()


def test_listen_ipv4_and_ipv6_and_sigint(revo, ocsp_pki, serve, tmp_path):
    O.setup_store(revo, ocsp_pki, leaves=[ocsp_pki.leaf(ocsp_pki.GOOD)])
    s = O.Server(revo, ["--listen", "127.0.0.1:0", "--listen", "[::1]:0", "--threads", "1"],
                 tmp_path / "dual")
    try:
        assert len(s.addresses) == 2, s.addresses
        v6 = [a for a in s.addresses if a.startswith("[::1]:")]
        assert v6, s.addresses
        port6 = int(v6[0].rsplit(":", 1)[1])
        req = request_for(ocsp_pki, ocsp_pki.GOOD)
        r = O.http_request(port6, "POST", "/", req, ctype=O.OCSP_REQ_CT, host="::1")
        assert r.status == 200 and O.status_of(r.body) == O.SUCCESSFUL
        assert only_single(successful(s.ocsp_post(req).body)).certificate_status == GOOD
        s.signal(signal.SIGINT)
        rc = s.proc.wait(timeout=15)
        s.stopped = True
        from conftest import check_sanitizers
        check_sanitizers(s.cmd, s.stderr())
        assert rc == 0, f"SIGINT: exit {rc}\n{s.stderr()}"
    finally:
        s.kill()


def test_serve_misuse(revo, ocsp_pki, serve):
    O.setup_store(revo, ocsp_pki, leaves=[ocsp_pki.leaf(ocsp_pki.GOOD)], presign=False)
    revo.fail("ocsp", "serve", expect=2)
    revo.fail("ocsp", "serve", "--listen", "127.0.0.1:0", "--non-issued", "maybe", expect=2)
    revo.fail("ocsp", "serve", "--listen", "127.0.0.1:0", "--threads", "0", expect=2)
    revo.fail("ocsp", "serve", "--listen", "127.0.0.1:0", "--max-certids", "1000", expect=2)
    # a port held by another program (no SO_REUSEPORT) is an error, not a hang
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        revo.fail("ocsp", "serve", "--listen", f"127.0.0.1:{port}", expect=1, timeout=20)
    finally:
        holder.close()
    revo.fail("ocsp", "serve", "--listen", "no-such-host.invalid:1", expect=(1, 2), timeout=20)
    revo.fail("ocsp", "serve", "--listen", "127.0.0.1:0", store=revo.store.parent / "no-store", expect=1,
              timeout=20)
    # presign needs a store with an issuer
    revo.fail("ocsp", "presign", "--issuer", "nope", expect=(1, 2))
