"""revo init, revo issuer add/list, and the command-line conventions."""

import os
import re

import pytest
import revohelp as H

ISSUER_KEYS = {
    "id", "name", "subject", "not_after", "sha1_name_hash", "sha1_key_hash",
    "sha256_name_hash", "sha256_key_hash", "key", "ocsp_cert_subject", "ocsp_key",
    "crl_validity", "crl_every", "ocsp_validity", "created",
}


# ---------------------------------------------------------------- init


def test_init_creates_missing_directory_and_reports_it(revo, store):
    assert not store.exists()
    j = revo("init", json=True)
    assert store.is_dir()
    assert (store / "data.mdb").is_file()
    assert j["created"] is True
    assert j["schema_version"] == 1
    assert os.path.samefile(j["store"], store)


def test_init_is_idempotent(revo, store):
    revo("init")
    log1 = revo.log()
    assert [e["op"] for e in log1] == ["init"]
    j = revo("init", json=True)
    assert j["created"] is False
    assert j["schema_version"] == 1
    # a no-op: nothing journalled the second time
    assert revo.log() == log1


def test_init_in_existing_empty_directory(revo, store):
    store.mkdir()
    j = revo("init", json=True)
    assert j["created"] is True
    assert (store / "data.mdb").is_file()


def test_store_from_REVO_STORE_environment(revo, tmp_path):
    d = tmp_path / "envstore"
    revo("init", store=None, env={"REVO_STORE": str(d)})
    assert (d / "data.mdb").is_file()
    j = revo("list", store=None, json=True, env={"REVO_STORE": str(d)})
    assert j == []


def test_store_default_is_revo_store_in_cwd(revo, tmp_path):
    revo("init", store=None, cwd=tmp_path)
    assert (tmp_path / "revo-store" / "data.mdb").is_file()


# ---------------------------------------------------------------- misuse


@pytest.mark.parametrize(
    "args",
    [
        ["frobnicate"],
        ["list", "--bogus-option"],
        ["revoke"],  # no selector
        ["revoke", "--serial", "01", "--cn", "x"],  # conflicting selectors
        ["status"],  # --serial missing
        ["issuer", "add", "x"],  # --cert/--key missing
        ["import", "openssl-index"],
    ],
    ids=["unknown-command", "unknown-option", "revoke-no-selector", "revoke-two-selectors",
         "status-no-serial", "issuer-add-missing", "import-no-file"],
)
def test_misuse_exits_2_with_one_line(ca_store, args):
    log = ca_store.log()
    ca_store(*args, expect=2)
    assert ca_store.log() == log


@pytest.mark.parametrize(
    "args",
    [["frobnicate"], ["list", "--bogus-option"], ["revoke", "--serial", "0"],
     ["revoke", "--serial", "01", "--issuer", "nope"], ["status", "--serial", "01", "--issuer", "nope"]],
    ids=["unknown-command", "unknown-option", "zero-serial", "unknown-issuer", "status-unknown-issuer"],
)
def test_error_line_reads_what_colon_why(ca_store, args):
    err = ca_store.fail(*args).rstrip("\n")
    assert re.fullmatch(r"revo: [^:]*\S: \S.*", err), f"not 'revo: <what>: <why>': {err!r}"


def test_help_exits_0(revo):
    out, _ = revo("--help", store=None)
    assert "revoke" in out
    out, _ = revo("help", "revoke", store=None)
    assert "--serial" in out
    out, _ = revo("revoke", "--help", store=None)
    assert "--serial" in out


# ---------------------------------------------------------------- issuer add / list


def test_issuer_add_records_hashes_key_path_and_defaults(inited, ca1):
    # pass the key as a relative path: the store must keep it absolute
    j = inited(
        "issuer", "add", "ca1", "--cert", ca1.cert_path, "--key", ca1.key_path.name,
        json=True, cwd=ca1.key_path.parent,
    )
    assert ISSUER_KEYS <= set(j), f"missing keys: {ISSUER_KEYS - set(j)}"
    want = H.issuer_hashes(ca1.cert)
    for k, v in want.items():
        assert j[k] == v, f"{k}: got {j[k]}, independently computed {v}"
    assert j["name"] == "ca1"
    assert j["key"] == str(ca1.key_path.resolve())
    assert os.path.isabs(j["key"])
    assert ca1.cn in j["subject"]
    assert H.same_second(j["not_after"], H.aware(ca1.cert.not_valid_after))
    assert j["ocsp_cert_subject"] is None and j["ocsp_key"] is None
    assert (j["crl_validity"], j["crl_every"], j["ocsp_validity"]) == (7 * 86400, 3600, 4 * 86400)
    assert abs((H.parse_time(j["created"]) - H.now()).total_seconds()) < 120
    assert isinstance(j["id"], int)

    lst = inited("issuer", "list", json=True)
    assert isinstance(lst, list) and len(lst) == 1
    assert lst[0] == j

    assert [e["op"] for e in inited.log()] == ["init", "issuer-add"]


def test_issuer_list_two_issuers_distinct(two_ca_store, ca1, ca2):
    lst = two_ca_store("issuer", "list", json=True)
    assert sorted(i["name"] for i in lst) == ["ca1", "ca2"]
    by = {i["name"]: i for i in lst}
    assert by["ca2"]["sha1_key_hash"] == H.issuer_hashes(ca2.cert)["sha1_key_hash"]
    assert by["ca1"]["id"] != by["ca2"]["id"]


def test_issuer_add_durations(inited, ca1):
    j = inited(
        "issuer", "add", "ca1", "--cert", ca1.cert_path, "--key", ca1.key_path,
        "--crl-validity", "1h30m", "--crl-every", "15m", "--ocsp-validity", "2d", json=True,
    )
    assert (j["crl_validity"], j["crl_every"], j["ocsp_validity"]) == (5400, 900, 172800)


def test_issuer_add_bad_duration_refused(inited, ca1):
    inited.fail("issuer", "add", "ca1", "--cert", ca1.cert_path, "--key", ca1.key_path,
                "--crl-validity", "soon")
    assert inited("issuer", "list", json=True) == []


def test_issuer_add_refuses_non_ca_certificate(inited, ca1, leaf):
    ee = leaf(0x501, "not-a-ca", ca1)
    inited.fail("issuer", "add", "ee", "--cert", ee.pem_path, "--key", ca1.key_path)
    assert inited("issuer", "list", json=True) == []


def test_issuer_add_refuses_duplicate_name(ca_store, ca2):
    log = ca_store.log()
    ca_store.fail("issuer", "add", "ca1", "--cert", ca2.cert_path, "--key", ca2.key_path)
    lst = ca_store("issuer", "list", json=True)
    assert len(lst) == 1 and lst[0]["sha1_key_hash"] != H.issuer_hashes(ca2.cert)["sha1_key_hash"]
    assert ca_store.log() == log


@pytest.mark.parametrize(
    "name",
    ["", "has space", "a/b", "x" * 64, "caf\u00e9", "semi;colon", "star*"],
    ids=["empty", "space", "slash", "64-chars", "non-ascii", "semicolon", "star"],
)
def test_issuer_add_refuses_bad_name(inited, ca1, name):
    inited.fail("issuer", "add", name, "--cert", ca1.cert_path, "--key", ca1.key_path)
    assert inited("issuer", "list", json=True) == []


def test_issuer_add_accepts_longest_name_and_all_allowed_characters(inited, ca1, ca2):
    n1 = "A" * 63
    n2 = "a-Z_0.9"
    inited("issuer", "add", n1, "--cert", ca1.cert_path, "--key", ca1.key_path)
    inited("issuer", "add", n2, "--cert", ca2.cert_path, "--key", ca2.key_path)
    assert sorted(i["name"] for i in inited("issuer", "list", json=True)) == sorted([n1, n2])


def test_issuer_add_with_delegated_ocsp_signer(inited, ca1, ocsp_cert, leaf):
    # the delegated key must be the responder certificate's own
    inited.fail("issuer", "add", "ca1", "--cert", ca1.cert_path, "--key", ca1.key_path,
                "--ocsp-cert", ocsp_cert.pem_path, "--ocsp-key", ca1.key_path)
    j = inited(
        "issuer", "add", "ca1", "--cert", ca1.cert_path, "--key", ca1.key_path,
        "--ocsp-cert", ocsp_cert.pem_path, "--ocsp-key", leaf.key_path, json=True,
    )
    assert ocsp_cert.cn in j["ocsp_cert_subject"]
    assert j["ocsp_key"] == str(leaf.key_path.resolve())


def test_issuer_add_refuses_ocsp_cert_not_signed_by_ca(inited, ca1, ca2, leaf):
    foreign = leaf.ocsp_signer(0x7002, ca2)
    inited.fail(
        "issuer", "add", "ca1", "--cert", ca1.cert_path, "--key", ca1.key_path,
        "--ocsp-cert", foreign.pem_path, "--ocsp-key", ca1.key_path,
    )
    assert inited("issuer", "list", json=True) == []


def test_issuer_add_refuses_ocsp_cert_with_ca_name_but_other_signature(inited, ca1, ca2, leaf):
    forged = leaf(0x7003, "forged ocsp", ca1, sign_key=ca2.key,
                  eku=[H.ExtendedKeyUsageOID.OCSP_SIGNING])
    inited.fail(
        "issuer", "add", "ca1", "--cert", ca1.cert_path, "--key", ca1.key_path,
        "--ocsp-cert", forged.pem_path, "--ocsp-key", ca1.key_path,
    )
    assert inited("issuer", "list", json=True) == []


def test_issuer_add_refuses_ocsp_cert_without_ocsp_signing_eku(inited, ca1, leaf):
    plain = leaf.ocsp_signer(0x7004, ca1, with_eku=False)
    inited.fail(
        "issuer", "add", "ca1", "--cert", ca1.cert_path, "--key", ca1.key_path,
        "--ocsp-cert", plain.pem_path, "--ocsp-key", ca1.key_path,
    )
    assert inited("issuer", "list", json=True) == []


def test_issuer_add_ocsp_cert_without_ocsp_key_is_misuse(inited, ca1, ocsp_cert):
    inited(
        "issuer", "add", "ca1", "--cert", ca1.cert_path, "--key", ca1.key_path,
        "--ocsp-cert", ocsp_cert.pem_path, expect=2,
    )
    assert inited("issuer", "list", json=True) == []


def test_issuer_add_refuses_garbage_certificate(inited, ca1, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
    inited.fail("issuer", "add", "ca1", "--cert", bad, "--key", ca1.key_path)
    inited.fail("issuer", "add", "ca1", "--cert", tmp_path / "missing.pem", "--key", ca1.key_path)
    assert inited("issuer", "list", json=True) == []


def test_key_material_is_never_stored(inited, store, ca1, ocsp_cert, leaf):
    inited("issuer", "add", "with-ocsp", "--cert", ca1.cert_path, "--key", ca1.key_path,
             "--ocsp-cert", ocsp_cert.pem_path, "--ocsp-key", leaf.key_path)
    data = (store / "data.mdb").read_bytes()
    scalar = ca1.key.private_numbers().private_value.to_bytes(32, "big")
    assert scalar not in data, "the CA private key is in the store"
    assert b"PRIVATE KEY" not in data
    assert ca1.key_path.read_bytes() not in data
    # the certificate, on the other hand, is kept
    assert ca1.cert.public_bytes(H.serialization.Encoding.DER) in data


def test_store_files_are_not_world_accessible(revo, store):
    old = os.umask(0)
    try:
        revo("init")
    finally:
        os.umask(old)
    for p in (store, store / "data.mdb", store / "lock.mdb"):
        assert p.stat().st_mode & 0o007 == 0, f"{p} is open to everybody: {oct(p.stat().st_mode)}"
