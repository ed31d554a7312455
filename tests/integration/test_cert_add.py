"""revo cert add: PEM bundles, DER, issuer detection, idempotence, bad input."""


import pytest
import revohelp as H

CERT_KEYS = {"serial", "issuer", "cn", "not_after", "result"}


def test_pem_bundle_with_several_certificates(ca_store, leaf, ca1, tmp_path):
    certs = [leaf(0x1100 + i, f"bundle-{i}", ca1) for i in range(3)]
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"".join(c.pem for c in certs))
    j = ca_store("cert", "add", bundle, json=True)
    assert j["added"] == 3 and j["present"] == 0
    assert len(j["certs"]) == 3
    for c, e in zip(sorted(certs, key=lambda c: c.serial), sorted(j["certs"], key=lambda e: int(e["serial"], 16))):
        assert CERT_KEYS <= set(e)
        assert e["serial"] == c.hex
        assert e["issuer"] == "ca1"
        assert e["cn"] == c.cn
        assert H.same_second(e["not_after"], c.not_after)
        assert e["result"] == "added"
    lst = ca_store.list()
    assert [e["serial"] for e in lst] == [c.hex for c in certs]
    assert all(e["status"] == "good" and e["issued"] is True for e in lst)
    ops = [e["op"] for e in ca_store.log()]
    assert ops.count("cert-add") >= 1


def test_der_file_and_issuer_autodetected(ca_store, leaf, ca1):
    c = leaf(0x1200, "der-host", ca1)
    j = ca_store("cert", "add", c.der_path, json=True)
    assert j["added"] == 1
    assert j["certs"][0]["issuer"] == "ca1"
    st = ca_store.status(c.hex)
    assert st["status"] == "good" and st["issued"] is True and st["cn"] == "der-host"
    assert H.same_second(st["not_before"], c.not_before)
    assert H.same_second(st["not_after"], c.not_after)


def test_several_files_in_one_command_with_explicit_issuer(ca_store, leaf, ca1):
    a = leaf(0x1301, "multi-a", ca1)
    b = leaf(0x1302, "multi-b", ca1)
    j = ca_store("cert", "add", "--issuer", "ca1", a.pem_path, b.der_path, json=True)
    assert j["added"] == 2
    assert {e["serial"] for e in ca_store.list()} == {a.hex, b.hex}


def test_readd_is_a_noop_reporting_present(ca_store, leaf, ca1):
    c = leaf(0x1400, "again", ca1)
    d = leaf(0x1401, "new-one", ca1)
    ca_store("cert", "add", c.pem_path)
    log = ca_store.log()
    j = ca_store("cert", "add", c.pem_path, json=True)
    assert j["added"] == 0 and j["present"] == 1
    assert j["certs"][0]["result"] == "present"
    assert ca_store.log() == log, "re-adding a registered certificate must not journal anything"
    j = ca_store("cert", "add", c.der_path, d.pem_path, json=True)
    assert j["added"] == 1 and j["present"] == 1
    assert {e["serial"]: e["result"] for e in j["certs"]} == {c.hex: "present", d.hex: "added"}
    assert len(ca_store.list()) == 2


def test_serial_printing_and_20_octet_serial(ca_store, leaf, ca1):
    small = leaf(0x0A1B, "small", ca1)
    high = leaf(0x80FF, "highbit", ca1)  # DER needs a leading 00 octet
    big = leaf((1 << 159) - 1, "twenty-octets", ca1)
    j = ca_store("cert", "add", small.pem_path, high.pem_path, big.pem_path, json=True)
    assert sorted(e["serial"] for e in j["certs"]) == sorted(["0A1B", "80FF", "7F" + "FF" * 19])
    # numeric order inside the issuer
    assert [e["serial"] for e in ca_store.list()] == ["0A1B", "80FF", "7F" + "FF" * 19]


def test_list_is_in_numeric_serial_order(ca_store, leaf, ca1):
    serials = [0x0100, 0x02, 0x01FF, 0x10, 0x0FFFFF, 0x01]
    for s in serials:
        ca_store("cert", "add", leaf(s, f"order-{s}", ca1).pem_path)
    assert [int(e["serial"], 16) for e in ca_store.list()] == sorted(serials)


def test_unknown_issuer_refused_and_nothing_added(ca_store, leaf, ca1, ca2):
    good = leaf(0x1500, "good", ca1)
    foreign = leaf(0x1501, "foreign", ca2)
    log = ca_store.log()
    ca_store.fail("cert", "add", good.pem_path, foreign.pem_path)
    assert ca_store.list() == []
    assert ca_store.log() == log
    ca_store.fail("cert", "add", foreign.der_path)
    assert ca_store.list() == []


def test_forged_certificate_with_issuer_name_but_wrong_signature(ca_store, leaf, ca1, ca2):
    forged = leaf(0x1600, "forged", ca1, sign_key=ca2.key)
    ca_store.fail("cert", "add", forged.pem_path)
    ca_store.fail("cert", "add", "--issuer", "ca1", forged.pem_path)
    assert ca_store.list() == []


def test_explicit_wrong_issuer_refused(two_ca_store, leaf, ca1):
    c = leaf(0x1700, "wrong-issuer", ca1)
    two_ca_store.fail("cert", "add", "--issuer", "ca2", c.pem_path)
    assert two_ca_store.list() == []
    two_ca_store.fail("cert", "add", "--issuer", "nope", c.pem_path)
    assert two_ca_store.list() == []


def test_issuer_found_by_authority_key_identifier(ca_store, ca1, ca1_twin, leaf):
    # Two issuers with the same subject name: only the AKI tells them apart.
    ca_store("issuer", "add", "twin", "--cert", ca1_twin.cert_path, "--key", ca1_twin.key_path)
    a = leaf(0x1801, "from-ca1", ca1)
    b = leaf(0x1802, "from-twin", ca1_twin)
    j = ca_store("cert", "add", a.pem_path, b.pem_path, json=True)
    assert {e["serial"]: e["issuer"] for e in j["certs"]} == {a.hex: "ca1", b.hex: "twin"}


def test_certificate_without_aki_found_by_issuer_name(ca_store, ca1, leaf):
    c = leaf(0x1900, "no-aki", ca1, aki=False)
    j = ca_store("cert", "add", c.pem_path, json=True)
    assert j["certs"][0]["issuer"] == "ca1"


def _bad_files(tmp_path, good):
    pem = good.pem.decode()
    lines = pem.strip().split("\n")
    files = {
        "bad-base64": "-----BEGIN CERTIFICATE-----\nthis is not base64 !!!\n-----END CERTIFICATE-----\n",
        "truncated-pem": "\n".join(lines[: len(lines) // 2] + [lines[-1]]) + "\n",
        "no-end-line": "\n".join(lines[:-1]) + "\n",
        "empty": "",
        "garbage-der": bytes(range(256)) * 4,
        "truncated-der": good.der[: len(good.der) // 2],
        "der-trailing-garbage": good.der + b"\x00\x01\x02",
    }
    out = {}
    for name, content in files.items():
        p = tmp_path / f"{name}.crt"
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
        out[name] = p
    return out


BAD_KINDS = ["bad-base64", "truncated-pem", "no-end-line", "empty", "garbage-der",
             "truncated-der", "der-trailing-garbage", "missing-file"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_file_refused_and_nothing_added_even_with_good_files(ca_store, leaf, ca1, tmp_path, kind):
    good = leaf(0x1A00, "good-before", ca1)
    good2 = leaf(0x1A01, "good-after", ca1)
    bad = _bad_files(tmp_path, good).get(kind, tmp_path / "does-not-exist.pem")
    log = ca_store.log()
    ca_store.fail("cert", "add", good.pem_path, bad, good2.der_path)
    assert ca_store.list() == [], f"{kind}: nothing may be added when one file is bad"
    assert ca_store.log() == log
    ca_store.fail("cert", "add", bad)
    assert ca_store.list() == []


def test_pem_bundle_with_one_bad_block_adds_nothing(ca_store, leaf, ca1, tmp_path):
    a = leaf(0x1B01, "bundle-ok", ca1)
    b = leaf(0x1B02, "bundle-ok2", ca1)
    p = tmp_path / "mixed.pem"
    p.write_bytes(a.pem + b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" + b.pem)
    ca_store.fail("cert", "add", p)
    assert ca_store.list() == []


def test_cert_add_without_files_is_misuse(ca_store):
    ca_store("cert", "add", expect=2)
