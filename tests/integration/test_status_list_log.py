"""JSON shapes of status, list and log, and what the journal records."""

import os
import pwd
import re
import socket

import revohelp as H

STATUS_KEYS = {"serial", "issuer", "status", "issued", "expired", "cn", "not_before", "not_after",
               "revoked_at", "reason", "invalidity_date"}
LIST_KEYS = {"serial", "issuer", "cn", "not_after", "status", "issued", "revoked_at", "reason",
             "invalidity_date"}
LOG_KEYS = {"seq", "time", "op", "issuer", "serial", "reason", "revoked_at", "invalidity_date", "user",
            "uid", "host", "sudo_user", "detail"}
LOG_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)")


def test_status_shape_good_revoked_unknown_expired(ca_store, ca1, leaf):
    t = H.now()
    good = leaf(0x8001, "st-good", ca1)
    old = leaf(0x8002, "st-old", ca1, not_before=t - H.days(60), not_after=t - H.days(1))
    ca_store("cert", "add", good.pem_path, old.pem_path)

    st = ca_store.status(good.hex)
    assert set(st) == STATUS_KEYS, f"status keys: {sorted(st)}"
    assert st["serial"] == "8001" and st["issuer"] == "ca1" and st["status"] == "good"
    assert st["issued"] is True and st["expired"] is False and st["cn"] == "st-good"
    assert H.same_second(st["not_before"], good.not_before)
    assert H.same_second(st["not_after"], good.not_after)
    assert st["revoked_at"] is None and st["reason"] is None and st["invalidity_date"] is None

    st = ca_store.status(old.hex, "ca1")
    assert st["expired"] is True and st["status"] == "good"

    st = ca_store.status("0ABCDE", "ca1")
    assert set(st) == STATUS_KEYS
    assert st["status"] == "unknown" and st["issued"] is False
    assert st["cn"] is None and st["not_after"] is None and st["revoked_at"] is None

    inval = t - H.days(2)
    ca_store("revoke", "--serial", good.hex, "--reason", "keyCompromise", "--invalidity-date", H.rfc3339(inval))
    st = ca_store.status(good.hex)
    assert st["status"] == "revoked" and st["reason"] == "keyCompromise"
    assert H.same_second(st["invalidity_date"], inval)
    assert abs((H.parse_time(st["revoked_at"]) - t).total_seconds()) < 60


def test_status_text_output_mentions_status(ca_store, ca1, leaf):
    c = leaf(0x8101, "st-text", ca1)
    ca_store("cert", "add", c.pem_path)
    ca_store("revoke", "--serial", c.hex, "--reason", "superseded")
    out, _ = ca_store("status", "--serial", c.hex)
    assert "revoked" in out and "superseded" in out
    # a serial no issuer knows: the issuer column says "-", never "(null)"
    out, _ = ca_store("status", "--serial", "0FEDCBA9")
    assert out.startswith("- 0FEDCBA9 unknown") and "(null)" not in out, out


def test_list_shape_and_filters(two_ca_store, ca1, ca2, leaf):
    a = leaf(0x8201, "ls-a", ca1)
    b = leaf(0x8202, "ls-b", ca1)
    c = leaf(0x8201, "ls-c", ca2)  # same serial, other issuer
    two_ca_store("cert", "add", a.pem_path, b.pem_path, c.pem_path)
    two_ca_store("revoke", "--serial", "8202", "--issuer", "ca1", "--reason", "superseded")
    two_ca_store("revoke", "--serial", "0F00", "--issuer", "ca2")  # not issued
    lst = two_ca_store.list()
    for e in lst:
        assert LIST_KEYS <= set(e), f"list keys: {sorted(e)}"
    got = [(e["issuer"], e["serial"], e["status"], e["issued"]) for e in lst]
    assert ("ca1", "8201", "good", True) in got
    assert ("ca1", "8202", "revoked", True) in got
    assert ("ca2", "8201", "good", True) in got
    # grouped per issuer, serial order inside
    issuers = [e["issuer"] for e in lst]
    runs = [i for k, i in enumerate(issuers) if k == 0 or issuers[k - 1] != i]
    assert len(runs) == len(set(runs)) == 2, f"entries of one issuer must be together: {issuers}"
    for iss in ("ca1", "ca2"):
        ser = [int(e["serial"], 16) for e in lst if e["issuer"] == iss]
        assert ser == sorted(ser)

    rev = two_ca_store.list("--revoked")
    assert sorted((e["issuer"], e["serial"], e["issued"]) for e in rev) == [
        ("ca1", "8202", True), ("ca2", "0F00", False)]
    assert all(e["status"] == "revoked" for e in rev)

    only2 = two_ca_store.list("--issuer", "ca2")
    assert {e["issuer"] for e in only2} == {"ca2"}
    assert "8201" in [e["serial"] for e in only2]
    only2r = two_ca_store.list("--revoked", "--issuer", "ca2")
    assert [(e["serial"], e["issued"]) for e in only2r] == [("0F00", False)]
    two_ca_store.fail("list", "--issuer", "nope")


def test_log_records_every_change_with_actor(ca_store, ca1, leaf):
    c = leaf(0x8301, "log-me", ca1)
    ca_store("cert", "add", c.pem_path)
    at = H.now() - H.days(1)
    inval = H.now() - H.days(2)
    ca_store("revoke", "--serial", c.hex, "--reason", "certificateHold", "--at", H.rfc3339(at))
    ca_store("unhold", "--serial", c.hex)
    ca_store("revoke", "--serial", c.hex, "--reason", "keyCompromise", "--invalidity-date", H.rfc3339(inval))
    log = ca_store.log()
    assert [e["op"] for e in log] == ["init", "issuer-add", "cert-add", "revoke", "unhold", "revoke"]
    seqs = [e["seq"] for e in log]
    assert all(isinstance(s, int) for s in seqs) and seqs == sorted(set(seqs))
    me = pwd.getpwuid(os.getuid()).pw_name
    prev = None
    for e in log:
        assert set(e) == LOG_KEYS, f"log keys: {sorted(e)}"
        assert LOG_TIME.fullmatch(e["time"]), f"log time needs microseconds: {e['time']!r}"
        tm = H.parse_time(e["time"])
        assert abs((tm - H.now()).total_seconds()) < 300
        if prev:
            assert tm >= prev
        prev = tm
        assert e["user"] == me
        assert e["uid"] == os.getuid()
        assert e["host"] == socket.gethostname()
        assert e["sudo_user"] is None
    ia = log[1]
    assert ia["issuer"] == "ca1"
    ca_ = log[2]
    assert ca_["issuer"] == "ca1" and ca_["serial"] == c.hex
    r1, un, r2 = log[3], log[4], log[5]
    assert (r1["serial"], r1["issuer"], r1["reason"]) == (c.hex, "ca1", "certificateHold")
    assert H.same_second(r1["revoked_at"], at) and r1["invalidity_date"] is None
    assert (un["serial"], un["issuer"]) == (c.hex, "ca1")
    assert (r2["serial"], r2["reason"]) == (c.hex, "keyCompromise")
    assert H.same_second(r2["invalidity_date"], inval)


def test_log_since(ca_store, ca1, leaf):
    c = leaf(0x8401, "since", ca1)
    ca_store("cert", "add", c.pem_path)
    log = ca_store.log()
    mid = log[1]["seq"]
    assert ca_store.log("--since", mid) == [e for e in log if e["seq"] > mid]
    assert ca_store.log("--since", log[-1]["seq"]) == []
    assert ca_store.log("--since", 0) == log


def test_log_records_sudo_user(ca_store):
    ca_store("revoke", "--serial", "0A0A", "--issuer", "ca1", env={"SUDO_USER": "alice", "SUDO_UID": "1234"})
    e = ca_store.log()[-1]
    assert e["op"] == "revoke" and e["sudo_user"] == "alice"
    assert e["uid"] == os.getuid()


def test_log_of_failed_command_is_unchanged(ca_store):
    log = ca_store.log()
    ca_store.fail("revoke", "--serial", "0A0A", "--issuer", "ca1", "--reason", "nope")
    assert ca_store.log() == log
