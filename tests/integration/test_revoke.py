"""revo revoke / unhold: selectors, reasons, times, dry run, RFC 5280 semantics, bad input."""

import pytest
import revohelp as H

REVOKE_CERT_KEYS = {"serial", "issuer", "cn", "issued", "result", "reason", "revoked_at",
                    "invalidity_date", "seq"}


@pytest.fixture
def certs(ca_store, ca1, leaf):
    """Three registered certificates of ca1."""
    cs = [leaf(0x6001, "rv-one", ca1), leaf(0x6002, "rv-two", ca1), leaf(0x6003, "rv-three", ca1)]
    ca_store("cert", "add", *[c.pem_path for c in cs])
    return cs


def one(j):
    assert j["dry_run"] is False
    assert len(j["certs"]) == 1, j
    c = j["certs"][0]
    assert REVOKE_CERT_KEYS <= set(c), f"missing {REVOKE_CERT_KEYS - set(c)}"
    return c


def test_revoke_by_serial_default_reason_and_time(ca_store, certs):
    t0 = H.now()
    c = one(ca_store("revoke", "--serial", certs[0].hex, json=True))
    t1 = H.now()
    assert c["serial"] == certs[0].hex and c["issuer"] == "ca1" and c["cn"] == "rv-one"
    assert c["issued"] is True and c["result"] == "revoked"
    assert c["reason"] == "unspecified"
    at = H.parse_time(c["revoked_at"]).replace(microsecond=0)
    slack = H.datetime.timedelta(seconds=1)
    assert t0 - slack <= at <= t1 + slack, (t0, at, t1)
    assert c["invalidity_date"] is None
    assert isinstance(c["seq"], int)
    st = ca_store.status(certs[0].hex)
    assert st["status"] == "revoked" and st["reason"] == "unspecified"
    assert st["revoked_at"] == c["revoked_at"]
    assert ca_store.status(certs[1].hex)["status"] == "good"
    last = ca_store.log()[-1]
    assert last["op"] == "revoke" and last["seq"] == c["seq"] and last["serial"] == certs[0].hex


@pytest.mark.parametrize("spelling", ["{hex}", "0x{hex}", "{colons}", "{lower}", "0X{lower}"])
def test_serial_spellings(ca_store, certs, spelling):
    h = certs[1].hex  # 6002
    s = spelling.format(hex=h, colons=":".join(h[i:i + 2] for i in range(0, len(h), 2)), lower=h.lower())
    c = one(ca_store("revoke", "--serial", s, json=True))
    assert c["serial"] == h and c["issued"] is True


@pytest.mark.parametrize(
    "given,name",
    [(n, n) for n in ["unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
                      "cessationOfOperation", "certificateHold", "privilegeWithdrawn", "aACompromise"]]
    + [("KEYCOMPROMISE", "keyCompromise"), ("cacompromise", "cACompromise")],
)
def test_reasons(ca_store, certs, given, name):
    c = one(ca_store("revoke", "--serial", certs[0].hex, "--reason", given, json=True))
    assert c["reason"] == name
    assert ca_store.status(certs[0].hex)["reason"] == name
    assert ca_store.log()[-1]["reason"] == name


def test_at_and_invalidity_date(ca_store, certs):
    at = H.now() - H.days(3)
    inval = H.now() - H.days(5)
    c = one(ca_store("revoke", "--serial", certs[0].hex, "--reason", "keyCompromise",
                     "--at", H.rfc3339(at), "--invalidity-date", H.rfc3339(inval), json=True))
    assert H.same_second(c["revoked_at"], at)
    assert H.same_second(c["invalidity_date"], inval)
    st = ca_store.status(certs[0].hex)
    assert H.same_second(st["revoked_at"], at) and H.same_second(st["invalidity_date"], inval)
    e = ca_store.log()[-1]
    assert H.same_second(e["revoked_at"], at) and H.same_second(e["invalidity_date"], inval)


def test_at_with_offset_and_fraction(ca_store, certs):
    c = one(ca_store("revoke", "--serial", certs[0].hex, "--at", "2026-01-02T03:04:05.678+01:00", json=True))
    assert H.same_second(c["revoked_at"], H.parse_time("2026-01-02T02:04:05Z"))


def test_revoke_by_cert_file_registers_it(ca_store, ca1, leaf):
    c = leaf(0x6100, "by-file", ca1)
    r = one(ca_store("revoke", "--cert", c.pem_path, "--reason", "superseded", json=True))
    assert r["serial"] == c.hex and r["issued"] is True and r["cn"] == "by-file"
    st = ca_store.status(c.hex)
    assert st["status"] == "revoked" and st["issued"] is True
    assert H.same_second(st["not_after"], c.not_after)


def test_revoke_by_cert_der_file(ca_store, certs):
    r = one(ca_store("revoke", "--cert", certs[2].der_path, json=True))
    assert r["serial"] == certs[2].hex and r["result"] == "revoked"


def test_revoke_by_cert_of_unknown_issuer_refused(ca_store, ca2, leaf):
    c = leaf(0x6101, "foreign", ca2)
    log = ca_store.log()
    ca_store.fail("revoke", "--cert", c.pem_path)
    assert ca_store.list() == [] and ca_store.list("--revoked") == [] and ca_store.log() == log


@pytest.fixture
def cn_certs(two_ca_store, ca1, ca2, leaf):
    t = H.now()
    cs = {
        "a": leaf(0x6201, "jenkins-1", ca1),
        "b": leaf(0x6202, "jenkins-1", ca1, not_before=t - H.days(200), not_after=t + H.days(5)),
        "expired": leaf(0x6203, "jenkins-1", ca1, not_before=t - H.days(100), not_after=t - H.days(1)),
        "other": leaf(0x6204, "jenkins-10", ca1),
        "ca2": leaf(0x6205, "jenkins-1", ca2),
    }
    two_ca_store("cert", "add", *[c.pem_path for c in cs.values()])
    return cs


def test_revoke_by_cn_all_unexpired_of_every_issuer(two_ca_store, cn_certs):
    j = two_ca_store("revoke", "--cn", "jenkins-1", "--reason", "keyCompromise", json=True)
    got = {(c["issuer"], c["serial"]) for c in j["certs"]}
    assert got == {("ca1", "6201"), ("ca1", "6202"), ("ca2", "6205")}
    assert all(c["result"] == "revoked" and c["reason"] == "keyCompromise" and c["cn"] == "jenkins-1"
               for c in j["certs"])
    rev = {(e["issuer"], e["serial"]) for e in two_ca_store.list("--revoked")}
    assert rev == got
    assert two_ca_store.status("6203", "ca1")["status"] == "good", "expired certificates are skipped"
    assert two_ca_store.status("6204", "ca1")["status"] == "good", "CN must match exactly"


def test_revoke_by_cn_limited_to_issuer(two_ca_store, cn_certs):
    j = two_ca_store("revoke", "--cn", "jenkins-1", "--issuer", "ca2", json=True)
    assert [(c["issuer"], c["serial"]) for c in j["certs"]] == [("ca2", "6205")]
    assert [(e["issuer"], e["serial"]) for e in two_ca_store.list("--revoked")] == [("ca2", "6205")]


def test_revoke_by_cn_matching_nothing_is_an_error(two_ca_store, cn_certs):
    log = two_ca_store.log()
    two_ca_store.fail("revoke", "--cn", "jenkins")  # a prefix is not a match
    two_ca_store.fail("revoke", "--cn", "no-such-host")
    two_ca_store.fail("revoke", "--cn", "jenkins-10", "--issuer", "ca2")
    assert two_ca_store.list("--revoked") == []
    assert two_ca_store.log() == log


def test_revoke_by_cn_only_expired_is_an_error(two_ca_store, ca1, leaf):
    t = H.now()
    two_ca_store("cert", "add", leaf(0x6301, "gone-host", ca1, not_before=t - H.days(50),
                                     not_after=t - H.days(2)).pem_path)
    two_ca_store.fail("revoke", "--cn", "gone-host")
    assert two_ca_store.list("--revoked") == []


def test_dry_run_writes_nothing(two_ca_store, cn_certs):
    log = two_ca_store.log()
    j = two_ca_store("revoke", "--cn", "jenkins-1", "--reason", "keyCompromise", "--dry-run", json=True)
    assert j["dry_run"] is True
    assert {c["serial"] for c in j["certs"]} == {"6201", "6202", "6205"}
    assert all(c["result"] == "would-revoke" and c["seq"] is None for c in j["certs"])
    assert two_ca_store.log() == log
    assert two_ca_store.list("--revoked") == []
    j = two_ca_store("revoke", "--serial", "6204", "--issuer", "ca1", "--dry-run", json=True)
    assert j["dry_run"] is True and j["certs"][0]["result"] == "would-revoke"
    assert two_ca_store.log() == log
    assert two_ca_store.status("6204", "ca1")["status"] == "good"


def test_already_revoked_reports_original_revocation(ca_store, certs):
    at = H.now() - H.days(2)
    first = one(ca_store("revoke", "--serial", certs[0].hex, "--reason", "superseded",
                         "--at", H.rfc3339(at), json=True))
    log = ca_store.log()
    again = one(ca_store("revoke", "--serial", certs[0].hex, "--reason", "keyCompromise", json=True))
    assert again["result"] == "already-revoked"
    assert again["reason"] == "superseded"
    assert again["revoked_at"] == first["revoked_at"]
    assert H.same_second(again["revoked_at"], at)
    st = ca_store.status(certs[0].hex)
    assert st["reason"] == "superseded" and H.same_second(st["revoked_at"], at)
    assert [e for e in ca_store.log() if e["op"] == "revoke"] == [e for e in log if e["op"] == "revoke"]


def test_hold_replaced_by_permanent_reason_keeps_hold_time(ca_store, certs):
    hold_at = H.now() - H.days(4)
    one(ca_store("revoke", "--serial", certs[0].hex, "--reason", "certificateHold",
                 "--at", H.rfc3339(hold_at), json=True))
    c = one(ca_store("revoke", "--serial", certs[0].hex, "--reason", "keyCompromise", json=True))
    assert c["result"] == "hold-replaced"
    assert c["reason"] == "keyCompromise"
    assert H.same_second(c["revoked_at"], hold_at)
    st = ca_store.status(certs[0].hex)
    assert st["reason"] == "keyCompromise" and H.same_second(st["revoked_at"], hold_at)
    # now permanent: cannot be unheld
    ca_store.fail("unhold", "--serial", certs[0].hex)
    assert ca_store.status(certs[0].hex)["status"] == "revoked"


def test_hold_replaced_with_explicit_at(ca_store, certs):
    one(ca_store("revoke", "--serial", certs[0].hex, "--reason", "certificateHold",
                 "--at", H.rfc3339(H.now() - H.days(4)), json=True))
    at = H.now() - H.days(1)
    c = one(ca_store("revoke", "--serial", certs[0].hex, "--reason", "cessationOfOperation",
                     "--at", H.rfc3339(at), json=True))
    assert c["result"] == "hold-replaced" and H.same_second(c["revoked_at"], at)


def test_unhold(ca_store, certs):
    one(ca_store("revoke", "--serial", certs[0].hex, "--reason", "certificateHold", json=True))
    j = ca_store("unhold", "--serial", certs[0].hex, json=True)
    assert j["serial"] == certs[0].hex and j["issuer"] == "ca1" and j["result"] == "unheld"
    assert isinstance(j["seq"], int)
    st = ca_store.status(certs[0].hex)
    assert st["status"] == "good" and st["revoked_at"] is None and st["reason"] is None
    assert ca_store.list("--revoked") == []
    e = ca_store.log()[-1]
    assert e["op"] == "unhold" and e["seq"] == j["seq"] and e["serial"] == certs[0].hex
    # it can be revoked again afterwards
    c = one(ca_store("revoke", "--serial", certs[0].hex, "--reason", "keyCompromise", json=True))
    assert c["result"] == "revoked"


def test_unhold_only_for_hold(ca_store, certs):
    one(ca_store("revoke", "--serial", certs[0].hex, "--reason", "keyCompromise", json=True))
    log = ca_store.log()
    ca_store.fail("unhold", "--serial", certs[0].hex)  # permanent revocation
    ca_store.fail("unhold", "--serial", certs[1].hex)  # not revoked at all
    ca_store.fail("unhold", "--serial", "0BADBAD0", "--issuer", "ca1")  # unknown
    assert ca_store.log() == log
    assert ca_store.status(certs[0].hex)["status"] == "revoked"


def test_unknown_serial_needs_issuer(ca_store, certs):
    log = ca_store.log()
    ca_store.fail("revoke", "--serial", "0DEAD0")
    assert ca_store.log() == log and ca_store.list("--revoked") == []
    c = one(ca_store("revoke", "--serial", "0DEAD0", "--issuer", "ca1", "--reason", "keyCompromise", json=True))
    assert c["result"] == "revoked" and c["issued"] is False and c["cn"] is None
    st = ca_store.status("0DEAD0", "ca1")
    assert st["status"] == "revoked" and st["issued"] is False and st["reason"] == "keyCompromise"
    rev = ca_store.list("--revoked")
    assert [(e["serial"], e["issued"]) for e in rev] == [("0DEAD0", False)]
    # not listed as an issued certificate
    assert "0DEAD0" not in [e["serial"] for e in ca_store.list() if e["issued"]]


def test_unknown_serial_of_20_octets_accepted_with_issuer(ca_store):
    s = "7F" + "AB" * 19
    c = one(ca_store("revoke", "--serial", s, "--issuer", "ca1", json=True))
    assert c["serial"] == s and c["issued"] is False


def test_leading_zero_octets_are_not_significant(ca_store, certs):
    # a serial is a number: leading zero digits do not change it
    c = one(ca_store("revoke", "--serial", "00" + certs[0].hex, json=True))
    assert c["serial"] == certs[0].hex


def _future(days):
    return H.rfc3339(H.now() + H.days(days))


BAD_REVOKE = {
    "remove-from-crl": ["--serial", "6001", "--reason", "removeFromCRL"],
    "unknown-reason": ["--serial", "6001", "--reason", "stolen"],
    "future-at": ["--serial", "6001", "--at", "{future}"],
    "future-invalidity": ["--serial", "6001", "--invalidity-date", "{future}"],
    "unparsable-at": ["--serial", "6001", "--at", "yesterday"],
    "bad-month-at": ["--serial", "6001", "--at", "2026-13-01T00:00:00Z"],
    "unparsable-invalidity": ["--serial", "6001", "--invalidity-date", "2026-02-30"],
    "serial-21-octets": ["--serial", "01" * 21, "--issuer", "ca1"],
    "serial-zero": ["--serial", "0", "--issuer", "ca1"],
    "serial-zero-00": ["--serial", "00", "--issuer", "ca1"],
    "serial-negative": ["--serial", "-5", "--issuer", "ca1"],
    "serial-not-hex": ["--serial", "XYZ", "--issuer", "ca1"],
    "serial-empty": ["--serial", "", "--issuer", "ca1"],
    "unknown-issuer": ["--serial", "6001", "--issuer", "nope"],
    "cn-nothing": ["--cn", "nobody-has-this-cn"],
    "unknown-serial-no-issuer": ["--serial", "0BEEF0"],
    "cert-file-missing": ["--cert", "/nonexistent/cert.pem"],
}


@pytest.mark.parametrize("kind", list(BAD_REVOKE))
def test_bad_revoke_input_refused_store_unchanged(ca_store, certs, kind):
    args = [a.replace("{future}", _future(1)) for a in BAD_REVOKE[kind]]
    log = ca_store.log()
    ca_store.fail("revoke", *args)
    assert ca_store.log() == log
    assert ca_store.list("--revoked") == []


@pytest.mark.parametrize("args", [["--wait", "60"], ["--publish", "--wait", "0"],
                                  ["--publish", "--wait", "x"], ["--publish", "--dry-run"]],
                         ids=["wait-alone", "wait-zero", "wait-nan", "publish-dry-run"])
def test_publish_misuse_refused(ca_store, certs, args):
    log = ca_store.log()
    ca_store("revoke", "--serial", certs[0].hex, *args, expect=2)
    assert ca_store.log() == log
    assert ca_store.status(certs[0].hex)["status"] == "good"


@pytest.mark.parametrize("serial", ["01" * 21, "0", "-5", "XYZ"])
def test_status_refuses_bad_serial(ca_store, serial):
    ca_store.fail("status", "--serial", serial, "--issuer", "ca1")


def test_cert_registered_after_its_revocation_becomes_issued(ca_store, ca1, leaf):
    c = leaf(0x6401, "found-later", ca1)
    at = H.now() - H.days(1)
    ca_store("revoke", "--serial", c.hex, "--issuer", "ca1", "--reason", "keyCompromise", "--at", H.rfc3339(at))
    assert ca_store.status(c.hex, "ca1")["issued"] is False
    j = ca_store("cert", "add", c.pem_path, json=True)
    assert j["added"] == 1
    st = ca_store.status(c.hex)
    assert st["issued"] is True and st["status"] == "revoked" and st["reason"] == "keyCompromise"
    assert st["cn"] == "found-later" and H.same_second(st["revoked_at"], at)
    assert H.same_second(st["not_after"], c.not_after)
    assert [(e["serial"], e["issued"]) for e in ca_store.list("--revoked")] == [(c.hex, True)]


def test_serial_of_two_issuers_needs_issuer(two_ca_store, ca1, ca2, leaf):
    a = leaf(0x6501, "twice-a", ca1)
    b = leaf(0x6501, "twice-b", ca2)
    two_ca_store("cert", "add", a.pem_path, b.pem_path)
    log = two_ca_store.log()
    two_ca_store.fail("revoke", "--serial", "6501")
    two_ca_store.fail("status", "--serial", "6501")
    assert two_ca_store.log() == log
    c = one(two_ca_store("revoke", "--serial", "6501", "--issuer", "ca2", json=True))
    assert (c["issuer"], c["cn"]) == ("ca2", "twice-b")
    assert two_ca_store.status("6501", "ca1")["status"] == "good"
