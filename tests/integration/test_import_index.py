"""revo import openssl-index: V/R/E lines, reasons, idempotence, malformed lines."""

import re

import pytest
import revohelp as H

IMPORT_KEYS = {"issuer", "lines", "added", "present", "revoked", "already_revoked"}


def sample_rows():
    t = H.now()
    fut = t + H.days(365)
    rows = {
        # serial: (line args, expected)
        0x1001: (("V", fut, 0x1001, "host-a"), dict(cn="host-a", status="good", reason=None)),
        0x1002: (
            ("R", fut, 0x1002, "host-b", t - H.days(3), "keyCompromise", t - H.days(5)),
            dict(cn="host-b", status="revoked", reason="keyCompromise",
                 revoked_at=t - H.days(3), invalidity=t - H.days(5)),
        ),
        0x1003: (
            ("R", fut, 0x1003, "host-c", t - H.days(2), "certificateHold"),
            dict(cn="host-c", status="revoked", reason="certificateHold", revoked_at=t - H.days(2)),
        ),
        0x1004: (("E", t - H.days(10), 0x1004, "host-d"),
                 dict(cn="host-d", status="good", reason=None, expired=True)),
        0x1005: (
            ("R", fut, 0x1005, "host-e", t - H.days(1)),
            dict(cn="host-e", status="revoked", reason="unspecified", revoked_at=t - H.days(1)),
        ),
        0x1006: (
            # OpenSSL writes this reason as "CACompromise"
            ("R", fut, 0x1006, "host-f", t - H.days(4), "CACompromise", t - H.days(6)),
            dict(cn="host-f", status="revoked", reason="cACompromise",
                 revoked_at=t - H.days(4), invalidity=t - H.days(6)),
        ),
        0x1007: (
            ("R", fut, 0x1007, "host-g", t - H.days(7), "superseded"),
            dict(cn="host-g", status="revoked", reason="superseded", revoked_at=t - H.days(7)),
        ),
        0x1008: (("V", fut, 0x1008, "/O=Org/OU=Unit/CN=host-h"), dict(cn="host-h", status="good", reason=None)),
        (1 << 159) - 1: (("V", fut, (1 << 159) - 1, "host-big"), dict(cn="host-big", status="good", reason=None)),
        0x0F: (
            ("R", fut, 0x0F, "host-i", t - H.days(8), "cessationOfOperation"),
            dict(cn="host-i", status="revoked", reason="cessationOfOperation", revoked_at=t - H.days(8)),
        ),
    }
    for s, (args, exp) in rows.items():
        exp["not_after"] = args[1]
    return rows


def write_sample(path):
    rows = sample_rows()
    H.write_index(path, [H.index_line(*args) for args, _ in rows.values()])
    return rows


def check_against(revo, rows):
    lst = revo.list()
    assert [int(e["serial"], 16) for e in lst] == sorted(rows), "list must hold every line, in serial order"
    for e in lst:
        exp = rows[int(e["serial"], 16)][1]
        assert e["issuer"] == "ca1"
        assert e["cn"] == exp["cn"], e
        assert e["issued"] is True
        assert e["status"] == exp["status"], e
        assert H.same_second(e["not_after"], exp["not_after"]), e
        assert e["reason"] == exp["reason"], e
        if "revoked_at" in exp:
            assert H.same_second(e["revoked_at"], exp["revoked_at"]), e
        else:
            assert e["revoked_at"] is None
        if "invalidity" in exp:
            assert H.same_second(e["invalidity_date"], exp["invalidity"]), e
        else:
            assert e["invalidity_date"] is None, e
    revoked = revo.list("--revoked")
    assert sorted(int(e["serial"], 16) for e in revoked) == sorted(
        s for s, (_, exp) in rows.items() if exp["status"] == "revoked"
    )


def test_import_v_r_e_lines(ca_store, tmp_path):
    idx = tmp_path / "index.txt"
    rows = write_sample(idx)
    j = ca_store("import", "openssl-index", idx, "--issuer", "ca1", json=True)
    assert IMPORT_KEYS <= set(j)
    n_rev = sum(1 for _, e in rows.values() if e["status"] == "revoked")
    assert j["issuer"] == "ca1"
    assert (j["lines"], j["added"], j["present"], j["revoked"], j["already_revoked"]) == (
        len(rows), len(rows), 0, n_rev, 0)
    check_against(ca_store, rows)

    st = ca_store.status("1002")
    assert st["status"] == "revoked" and st["reason"] == "keyCompromise"
    assert st["expired"] is False
    st = ca_store.status("1004")
    assert st["expired"] is True and st["status"] == "good"
    st = ca_store.status("1001", "ca1")
    assert st["status"] == "good" and st["revoked_at"] is None and st["issued"] is True


def test_reimport_is_idempotent(ca_store, tmp_path):
    idx = tmp_path / "index.txt"
    rows = write_sample(idx)
    ca_store("import", "openssl-index", idx, "--issuer", "ca1")
    before = ca_store.list()
    n_rev = sum(1 for _, e in rows.values() if e["status"] == "revoked")
    j = ca_store("import", "openssl-index", idx, "--issuer", "ca1", json=True)
    assert (j["lines"], j["added"], j["present"], j["revoked"], j["already_revoked"]) == (
        len(rows), 0, len(rows), 0, n_rev)
    assert ca_store.list() == before


def test_imported_revocation_is_not_revoked_twice(ca_store, tmp_path):
    idx = tmp_path / "index.txt"
    rows = write_sample(idx)
    ca_store("import", "openssl-index", idx, "--issuer", "ca1")
    j = ca_store("revoke", "--serial", "1007", "--reason", "keyCompromise", json=True)
    c = j["certs"][0]
    assert c["result"] == "already-revoked"
    assert c["reason"] == "superseded"
    assert H.same_second(c["revoked_at"], rows[0x1007][1]["revoked_at"])


def test_import_of_empty_index(ca_store, tmp_path):
    idx = tmp_path / "index.txt"
    idx.write_text("")
    j = ca_store("import", "openssl-index", idx, "--issuer", "ca1", json=True)
    assert (j["lines"], j["added"]) == (0, 0)
    assert ca_store.list() == []


def _bad_line(kind, t):
    fut = H.utctime(t + H.days(30))
    past = H.utctime(t - H.days(1))
    return {
        "bad-status": f"X\t{fut}\t\t2003\tunknown\t/CN=bad",
        "bad-expiry": "V\tnotadate\t\t2003\tunknown\t/CN=bad",
        "missing-fields": f"V\t{fut}\t\t2003",
        "r-without-time": f"R\t{fut}\t\t2003\tunknown\t/CN=bad",
        "bad-reason": f"R\t{fut}\t{past},notAReason\t2003\tunknown\t/CN=bad",
        "bad-revocation-time": f"R\t{fut}\t99999999,keyCompromise\t2003\tunknown\t/CN=bad",
        "bad-serial": f"V\t{fut}\t\tXYZ\tunknown\t/CN=bad",
        "zero-serial": f"V\t{fut}\t\t00\tunknown\t/CN=bad",
        "21-octet-serial": f"V\t{fut}\t\t{'01' * 21}\tunknown\t/CN=bad",
    }[kind]


BAD_KINDS = ["bad-status", "bad-expiry", "missing-fields", "r-without-time", "bad-reason",
             "bad-revocation-time", "bad-serial", "zero-serial", "21-octet-serial"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_malformed_line_reported_with_line_number_and_nothing_imported(ca_store, tmp_path, kind):
    t = H.now()
    fut = t + H.days(30)
    lines = [
        H.index_line("V", fut, 0x2001, "ok-1"),
        H.index_line("R", fut, 0x2002, "ok-2", t - H.days(1), "keyCompromise", t - H.days(2)),
        H.index_line("V", fut, 0x2004, "ok-4"),
        H.index_line("V", fut, 0x2005, "ok-5"),
        _bad_line(kind, t),  # line 5
        H.index_line("V", fut, 0x2006, "ok-6"),
    ]
    idx = tmp_path / "index.txt"
    H.write_index(idx, lines)
    log = ca_store.log()
    err = ca_store.fail("import", "openssl-index", idx, "--issuer", "ca1")
    assert re.search(r"(?<![0-9])5(?![0-9])", err), f"error must name line 5: {err!r}"
    assert ca_store.list() == []
    assert ca_store.list("--revoked") == []
    assert ca_store.log() == log


def test_unknown_issuer_refused(ca_store, tmp_path):
    idx = tmp_path / "index.txt"
    write_sample(idx)
    ca_store.fail("import", "openssl-index", idx, "--issuer", "nope")
    assert ca_store.list() == []


def test_missing_issuer_option_is_misuse(ca_store, tmp_path):
    idx = tmp_path / "index.txt"
    write_sample(idx)
    ca_store("import", "openssl-index", idx, expect=2)
    assert ca_store.list() == []


def test_missing_index_file(ca_store, tmp_path):
    ca_store.fail("import", "openssl-index", tmp_path / "nope.txt", "--issuer", "ca1")


def test_index_written_by_real_openssl_ca(ca_store, ca1, leaf, tmp_path):
    """The database `openssl ca` itself writes. OpenSSL spells a compromise time
    as `keyTime,T` / `CAkeyTime,T` and a hold as `holdInstruction,OID` in index.txt."""
    db = H.OpenSSLCA(tmp_path / "openssl-ca", ca1)
    t = H.now()
    certs = {name: leaf(s, name, ca1) for s, name in [
        (0x3001, "ossl-valid"), (0x3002, "ossl-keycomp"), (0x3003, "ossl-hold"),
        (0x3004, "ossl-superseded"), (0x3005, "ossl-cacomp"), (0x3006, "ossl-noreason")]}
    db.valid(certs["ossl-valid"].pem_path)
    db.revoke(certs["ossl-keycomp"].pem_path, compromise=t - H.days(2))
    db.revoke(certs["ossl-hold"].pem_path, hold="holdInstructionReject")
    db.revoke(certs["ossl-superseded"].pem_path, reason="superseded")
    db.revoke(certs["ossl-cacomp"].pem_path, ca_compromise=t - H.days(3))
    db.revoke(certs["ossl-noreason"].pem_path)
    j = ca_store("import", "openssl-index", db.index, "--issuer", "ca1", json=True)
    assert (j["lines"], j["added"], j["revoked"]) == (6, 6, 5)
    by = {e["cn"]: e for e in ca_store.list()}
    assert by["ossl-valid"]["status"] == "good"
    assert by["ossl-keycomp"]["reason"] == "keyCompromise"
    assert H.same_second(by["ossl-keycomp"]["invalidity_date"], t - H.days(2))
    assert by["ossl-hold"]["reason"] == "certificateHold"
    assert by["ossl-superseded"]["reason"] == "superseded"
    assert by["ossl-cacomp"]["reason"] == "cACompromise"
    assert H.same_second(by["ossl-cacomp"]["invalidity_date"], t - H.days(3))
    assert by["ossl-noreason"]["reason"] == "unspecified"
    for e in by.values():
        assert H.same_second(e["not_after"], certs[e["cn"]].not_after)


def test_reimport_picks_up_new_revocations(ca_store, tmp_path):
    """Syncing a live OpenSSL database again: a line that became R gets revoked."""
    t = H.now()
    fut = t + H.days(30)
    idx = tmp_path / "index.txt"
    H.write_index(idx, [H.index_line("V", fut, 0x2101, "sync-1"), H.index_line("V", fut, 0x2102, "sync-2")])
    ca_store("import", "openssl-index", idx, "--issuer", "ca1")
    H.write_index(idx, [H.index_line("V", fut, 0x2101, "sync-1"),
                        H.index_line("R", fut, 0x2102, "sync-2", t - H.days(1), "superseded"),
                        H.index_line("V", fut, 0x2103, "sync-3")])
    j = ca_store("import", "openssl-index", idx, "--issuer", "ca1", json=True)
    assert (j["lines"], j["added"], j["present"], j["revoked"]) == (3, 1, 2, 1)
    st = ca_store.status("2102")
    assert st["status"] == "revoked" and st["reason"] == "superseded"
    assert H.same_second(st["revoked_at"], t - H.days(1))
