"""revo import crl: real `openssl ca -gencrl` CRLs, CRLs made with cryptography,
bad signatures and CRLs of another CA."""

import pytest
import revohelp as H
from cryptography import x509
from cryptography.hazmat.primitives import serialization

CRL_KEYS = {"issuer", "entries", "revoked", "already_revoked", "skipped"}


@pytest.fixture(scope="session")
def openssl_crl(tmp_path_factory, ca1, leaf):
    """A CRL made by a real `openssl ca`: returns (crl path, {serial: (at, reason, inval)}, certs)."""
    d = tmp_path_factory.mktemp("openssl-ca")
    db = H.OpenSSLCA(d, ca1)
    t = H.now()
    certs = {name: leaf(s, name, ca1) for s, name in [
        (0x4001, "crl-valid"), (0x4002, "crl-keycomp"), (0x4003, "crl-superseded"),
        (0x4004, "crl-hold"), (0x4005, "crl-cacomp"), (0x4006, "crl-noreason"),
        (0x4007, "crl-cessation")]}
    db.valid(certs["crl-valid"].pem_path)
    db.revoke(certs["crl-keycomp"].pem_path, compromise=t - H.days(2))
    db.revoke(certs["crl-superseded"].pem_path, reason="superseded")
    db.revoke(certs["crl-hold"].pem_path, hold="holdInstructionReject")
    db.revoke(certs["crl-cacomp"].pem_path, ca_compromise=t - H.days(4))
    db.revoke(certs["crl-noreason"].pem_path)
    db.revoke(certs["crl-cessation"].pem_path, reason="cessationOfOperation")
    crl = db.gencrl(d / "crl.pem")
    entries = H.crl_entries(crl.read_bytes())
    # what we asked openssl for, double-checked against its CRL
    assert {s: r for s, (_, r, _) in entries.items()} == {
        0x4002: "keyCompromise", 0x4003: "superseded", 0x4004: "certificateHold",
        0x4005: "cACompromise", 0x4006: None, 0x4007: "cessationOfOperation"}
    assert H.same_second(H.rfc3339(entries[0x4002][2]), t - H.days(2))
    return crl, entries, certs


def assert_revoked_match(revo, entries, issued=()):
    lst = revo.list("--revoked")
    assert sorted(int(e["serial"], 16) for e in lst) == sorted(entries)
    for e in lst:
        at, reason, inval = entries[int(e["serial"], 16)]
        assert e["issuer"] == "ca1"
        assert e["status"] == "revoked"
        assert e["reason"] == (reason or "unspecified"), e
        assert H.same_second(e["revoked_at"], at), e
        if inval is None:
            assert e["invalidity_date"] is None, e
        else:
            assert H.same_second(e["invalidity_date"], inval), e
        assert e["issued"] is (int(e["serial"], 16) in issued), e


def test_import_crl_from_openssl_ca(ca_store, openssl_crl):
    crl, entries, certs = openssl_crl
    # two of the revoked certificates are known to the store, the others are not
    ca_store("cert", "add", certs["crl-keycomp"].pem_path, certs["crl-valid"].pem_path)
    j = ca_store("import", "crl", crl, "--issuer", "ca1", json=True)
    assert CRL_KEYS <= set(j)
    assert j["issuer"] == "ca1"
    assert (j["entries"], j["revoked"], j["already_revoked"], j["skipped"]) == (len(entries), len(entries), 0, 0)
    assert_revoked_match(ca_store, entries, issued={0x4002})
    st = ca_store.status(certs["crl-valid"].hex)
    assert st["status"] == "good"
    st = ca_store.status(certs["crl-hold"].hex, "ca1")
    assert st["status"] == "revoked" and st["issued"] is False and st["reason"] == "certificateHold"


def test_reimport_crl_is_idempotent(ca_store, openssl_crl):
    crl, entries, _ = openssl_crl
    ca_store("import", "crl", crl, "--issuer", "ca1")
    before = ca_store.list("--revoked")
    j = ca_store("import", "crl", crl, "--issuer", "ca1", json=True)
    assert (j["entries"], j["revoked"], j["already_revoked"]) == (len(entries), 0, len(entries))
    assert ca_store.list("--revoked") == before


def test_import_der_crl(ca_store, openssl_crl, tmp_path):
    crl, entries, _ = openssl_crl
    der = tmp_path / "crl.der"
    der.write_bytes(x509.load_pem_x509_crl(crl.read_bytes()).public_bytes(serialization.Encoding.DER))
    j = ca_store("import", "crl", der, "--issuer", "ca1", json=True)
    assert j["revoked"] == len(entries)
    assert_revoked_match(ca_store, entries)


def test_import_crl_all_reasons_invalidity_and_remove_from_crl(ca_store, ca1, tmp_path):
    t = H.now()
    entries = [
        (0x5001, t - H.days(1), None, None),
        (0x5002, t - H.days(2), "keyCompromise", t - H.days(9)),
        (0x5003, t - H.days(3), "cACompromise", t - H.days(8)),
        (0x5004, t - H.days(4), "affiliationChanged", None),
        (0x5005, t - H.days(5), "superseded", None),
        (0x5006, t - H.days(6), "cessationOfOperation", None),
        (0x5007, t - H.days(7), "certificateHold", None),
        (0x5008, t - H.days(8), "privilegeWithdrawn", None),
        (0x5009, t - H.days(9), "aACompromise", t - H.days(10)),
        (0x500A, t - H.days(10), "unspecified", None),
        (0x500B, t - H.days(11), "removeFromCRL", None),
    ]
    p = tmp_path / "made.crl"
    p.write_bytes(H.make_crl(ca1, entries))
    j = ca_store("import", "crl", p, "--issuer", "ca1", json=True)
    assert (j["entries"], j["revoked"], j["skipped"]) == (11, 10, 1)
    expected = {s: (at, r, inv) for s, at, r, inv in entries if r != "removeFromCRL"}
    assert_revoked_match(ca_store, expected)


def test_crl_then_revoke_reports_existing_revocation(ca_store, ca1, tmp_path):
    t = H.now()
    p = tmp_path / "one.crl"
    p.write_bytes(H.make_crl(ca1, [(0x5101, t - H.days(3), "superseded", None)]))
    ca_store("import", "crl", p, "--issuer", "ca1")
    j = ca_store("revoke", "--serial", "5101", "--issuer", "ca1", "--reason", "keyCompromise", json=True)
    assert j["certs"][0]["result"] == "already-revoked"
    assert j["certs"][0]["reason"] == "superseded"
    assert j["certs"][0]["issued"] is False


def _unchanged(revo, fn):
    lst, rev, log = revo.list(), revo.list("--revoked"), revo.log()
    fn()
    assert revo.list() == lst
    assert revo.list("--revoked") == rev
    assert revo.log() == log


def test_crl_with_bad_signature_refused(ca_store, ca1, leaf, tmp_path):
    ca_store("cert", "add", leaf(0x5201, "bad-sig-target", ca1).pem_path)
    t = H.now()
    der = H.make_crl(ca1, [(0x5201, t - H.days(1), "keyCompromise", None)])
    p = tmp_path / "badsig.crl"
    p.write_bytes(H.flip_signature_byte(der))
    # the corrupted CRL still parses, but its signature no longer verifies
    assert not x509.load_der_x509_crl(p.read_bytes()).is_signature_valid(ca1.key.public_key())
    _unchanged(ca_store, lambda: ca_store.fail("import", "crl", p, "--issuer", "ca1"))
    assert ca_store.status("5201")["status"] == "good"


def test_crl_with_bad_signature_refused_pem(ca_store, openssl_crl, tmp_path):
    crl, _, _ = openssl_crl
    der = x509.load_pem_x509_crl(crl.read_bytes()).public_bytes(serialization.Encoding.DER)
    bad = x509.load_der_x509_crl(H.flip_signature_byte(der)).public_bytes(serialization.Encoding.PEM)
    p = tmp_path / "badsig.pem"
    p.write_bytes(bad)
    _unchanged(ca_store, lambda: ca_store.fail("import", "crl", p, "--issuer", "ca1"))


def test_crl_of_another_ca_refused(two_ca_store, ca2, tmp_path):
    t = H.now()
    p = tmp_path / "ca2.crl"
    p.write_bytes(H.make_crl(ca2, [(0x5301, t - H.days(1), "keyCompromise", None)]))
    # right for ca2, wrong for ca1
    _unchanged(two_ca_store, lambda: two_ca_store.fail("import", "crl", p, "--issuer", "ca1"))
    two_ca_store("import", "crl", p, "--issuer", "ca2")
    assert [e["issuer"] for e in two_ca_store.list("--revoked")] == ["ca2"]


def test_crl_with_ca_name_signed_by_other_key_refused(ca_store, ca1, ca2, tmp_path):
    t = H.now()
    p = tmp_path / "forged.crl"
    p.write_bytes(H.make_crl(ca1, [(0x5401, t - H.days(1), "keyCompromise", None)], sign_key=ca2.key))
    _unchanged(ca_store, lambda: ca_store.fail("import", "crl", p, "--issuer", "ca1"))


def test_crl_signed_by_ca_with_other_issuer_name_refused(ca_store, ca1, ca2, tmp_path):
    t = H.now()
    p = tmp_path / "misnamed.crl"
    p.write_bytes(H.make_crl(ca1, [(0x5501, t - H.days(1), None, None)], issuer_name=ca2.name))
    _unchanged(ca_store, lambda: ca_store.fail("import", "crl", p, "--issuer", "ca1"))


@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty", "missing"])
def test_malformed_crl_refused(ca_store, ca1, tmp_path, kind):
    der = H.make_crl(ca1, [(0x5601, H.now() - H.days(1), None, None)])
    p = tmp_path / f"{kind}.crl"
    if kind == "garbage":
        p.write_bytes(b"\x30\x82\x01\x00" + bytes(range(200)))
    elif kind == "truncated":
        p.write_bytes(der[: len(der) // 2])
    elif kind == "empty":
        p.write_bytes(b"")
    _unchanged(ca_store, lambda: ca_store.fail("import", "crl", p, "--issuer", "ca1"))


def test_import_crl_unknown_issuer(ca_store, ca1, tmp_path):
    p = tmp_path / "x.crl"
    p.write_bytes(H.make_crl(ca1, [(0x5701, H.now() - H.days(1), None, None)]))
    ca_store.fail("import", "crl", p, "--issuer", "nope")
    ca_store("import", "crl", p, expect=2)
    assert ca_store.list("--revoked") == []
