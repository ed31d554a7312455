"""`revo target add/list` and `revo publish` (one round with --once, and the daemon)
against real peers: Ceph radosgw, the Roles Anywhere fake, a file, a plain HTTP PUT
server; faults: a closed port, 403/503 answers, a stalled server, radosgw stopped
mid-run, the publisher killed with SIGKILL and restarted.

What a target holds is always read from the target itself (botocore, the fake's
records, the file, the HTTP server) and verified with python-cryptography against the
CA; `revo target list --json` must tell the truth about it.

Tests that depend on wall-clock behaviour of the daemon (the 1-second promise, kill -9
cycles, backoff timing) run on the plain build only: the ASan build is checked by the
rest (marked with P.ASAN_NOTE in the skip reason).
"""

import json
import os
import random
import re
import signal
import threading
import time

import ocsp_helpers as O
import publish_helpers as P
import pytest
import revohelp as H
from cryptography.x509 import ocsp
from ocsp_helpers import serve  # noqa: F401 (fixture)
from publish_helpers import (  # noqa: F401 (fixtures)
    http_store,
    publisher,
    ra_fake,
    radosgw,
    s3key,
    stall_server,
    world,
)

ENV = P.aws_env()
FIELDS = {"name", "url", "issuer", "region", "endpoint", "profile", "trust_anchor", "public_read",
          "last_attempt", "last_success", "crl_number", "journal_seq", "sha256", "remote_id",
          "etag", "last_error", "failures"}


def plain_only(revo_bin):
    if revo_bin.asan:
        pytest.skip(P.ASAN_NOTE)


def once(world, expect=0):
    return world.revo("publish", "--once", env=ENV, expect=expect)


def state_note(world):
    """target list, for assertion messages."""
    return json.dumps(world.target_list(), indent=1)


# ---------------------------------------------------------------- target add / list


def test_target_add_and_list_fields(world, radosgw):
    w = world
    w.target("s3", "s3://bucket/path/ca1.crl", "--endpoint", radosgw.endpoint, "--region", "eu-west-3",
             "--profile", "prod", "--public-read")
    w.target("ra", "rolesanywhere://us-east-1", "--trust-anchor", P.TRUST_ANCHOR)
    w.file_target("f")
    lst = w.revo("target", "list", json=True)
    assert len(lst) == 3, lst
    by = {t["name"]: t for t in lst}
    for t in lst:
        assert set(t) == FIELDS, f"target list --json fields: {sorted(t)}"
        assert t["issuer"] == "ca1"
        assert t["last_attempt"] is None and t["last_success"] is None and t["crl_number"] is None, t
        assert t["failures"] == 0 and t["last_error"] is None, t
    s3 = by["s3"]
    assert (s3["url"], s3["endpoint"], s3["region"], s3["profile"], s3["public_read"]) == (
        "s3://bucket/path/ca1.crl", radosgw.endpoint, "eu-west-3", "prod", True), s3
    assert by["ra"]["trust_anchor"] == P.TRUST_ANCHOR and by["ra"]["remote_id"] is None
    out, _ = w.revo("target", "list")
    for name in ("s3", "ra", "f"):
        assert name in out


@pytest.mark.parametrize("args,word", [
    (["x", "rolesanywhere://us-east-1"], "trust-anchor"),
    (["x", "rolesanywhere://us-east-1", "--trust-anchor", "abc"], "ARN"),
    (["x", "s3://bucket/k", "--endpoint", "ftp://h"], "endpoint"),
    (["x", "gopher://h/x"], "URL"),
    (["x", "s3://bucket"], "BUCKET"),
])
def test_target_add_refuses_bad_targets(world, args, word):
    err = world.revo.fail("target", "add", *args)
    assert word.lower() in err.lower(), err
    assert world.target_list() == {}


def test_target_add_duplicate_name(world):
    world.file_target("f")
    world.revo.fail("target", "add", "f", "file:///tmp/other.crl")


# ---------------------------------------------------------------- --once


def test_publish_once_every_target(world, radosgw, s3key, http_store, ra_fake):
    w = world
    leaf = w.add_leaf("once-host")
    w.revo("revoke", "--serial", leaf.hex, "--reason", "keyCompromise")
    w.file_target("file")
    w.s3_target(radosgw, s3key)
    hs = http_store()
    w.http_target(hs)
    w.target("ra", "rolesanywhere://us-east-1", "--trust-anchor", P.TRUST_ANCHOR, "--endpoint", ra_fake.url)
    ra_fetch = lambda: ra_fake.crl_pem(w.target_list()["ra"]["remote_id"])  # noqa: E731
    w.targets["ra"] = ra_fetch
    out, err = once(w)
    lst = w.target_list()
    numbers = set()
    for name in ("file", "s3", "http", "ra"):
        v = w.fetch(name)
        assert v is not None, f"{name} holds no CRL: {state_note(w)}"
        assert v.signature_ok, f"{name}: the CRL does not verify with the CA"
        assert leaf.serial in v.serials
        t = lst[name]
        assert t["crl_number"] == v.number, f"{name}: target list says {t['crl_number']}, the target holds {v.number}"
        assert t["sha256"] == v.sha256, f"{name}: target list sha256 is not the SHA-256 of the DER held"
        assert t["last_error"] is None and t["failures"] == 0, t
        assert t["last_success"] and t["last_attempt"], t
        assert H.parse_time(t["last_success"]) >= H.now() - H.days(1) / 24, t
        numbers.add(v.number)
    assert len(numbers) == 1, f"every target should hold the same CRL: {numbers}"
    assert lst["ra"]["remote_id"] in ra_fake.crls
    assert lst["s3"]["etag"], lst["s3"]
    assert re.search(r"uploaded", out), out


def test_publish_once_json_lines(world):
    w = world
    w.file_target("file")
    out, _ = w.revo("--json", "publish", "--once", env=ENV)
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert events, "no progress lines"
    for e in events:
        assert {"time", "event", "target", "message"} <= set(e), e
        H.parse_time(e["time"])
    assert any(e["event"] == "uploaded" and e["target"] == "file" for e in events), events
    assert any(e["event"] == "crl" for e in events), events


def test_publish_once_one_target_down(world, radosgw, s3key):
    w = world
    leaf = w.add_leaf("down-host")
    w.revo("revoke", "--serial", leaf.hex)
    w.file_target("file")
    w.s3_target(radosgw, s3key)
    down = P.closed_port_url()
    w.target("down", down)
    t0 = time.monotonic()
    out, err = once(w, expect=1)
    took = time.monotonic() - t0
    assert "target" in err, err
    for name in ("file", "s3"):
        v = w.fetch(name)
        assert v is not None and leaf.serial in v.serials and v.signature_ok, (name, state_note(w))
    lst = w.target_list()
    d = lst["down"]
    assert d["failures"] >= 1 and d["last_error"], d
    assert re.search(r"connect|refused", d["last_error"], re.I), d["last_error"]
    assert d["crl_number"] is None and d["last_success"] is None and d["last_attempt"], d
    assert lst["file"]["failures"] == 0 and lst["s3"]["failures"] == 0
    assert took < 15, f"--once with a target down took {took:.1f} s"


def test_publish_once_403_not_retried(world, http_store):
    w = world
    hs = http_store()
    hs.fail_puts = [403] * 10
    w.http_target(hs)
    w.file_target("file")
    t0 = time.monotonic()
    once(w, expect=1)
    assert time.monotonic() - t0 < 5
    assert len(hs.puts("/http/ca1.crl")) == 1, f"a 403 cannot succeed: PUT tried {len(hs.puts('/http/ca1.crl'))} times"
    t = w.target_list()["http"]
    assert "403" in (t["last_error"] or ""), t
    assert t["failures"] == 1 and t["crl_number"] is None, t
    assert w.fetch("file") is not None


def test_publish_once_s3_wrong_secret_not_retried(world, radosgw, s3key):
    w = world
    w.s3_target(radosgw, s3key)
    t0 = time.monotonic()
    w.revo("publish", "--once", env=P.aws_env(sk="wrong-secret-value"), expect=1)
    assert time.monotonic() - t0 < 5, "a signature error cannot succeed: it must not be retried"
    t = w.target_list()["s3"]
    assert t["failures"] == 1, t
    assert "wrong-secret-value" not in json.dumps(t)
    assert radosgw.get(s3key) is None


def test_publish_once_503_retried_with_backoff(revo_bin, world, http_store):
    w = world
    hs = http_store()
    hs.fail_puts = [503, 503, 503]
    w.http_target(hs)
    out, err = once(w)
    puts = hs.puts("/http/ca1.crl")
    assert [p[3] for p in puts] == [503, 503, 503, 200], puts
    v = w.fetch("http")
    assert v and v.signature_ok
    t = w.target_list()["http"]
    assert t["failures"] == 0 and t["last_error"] is None and t["crl_number"] == v.number, t
    if not revo_bin.asan:
        gaps = [b[0] - a[0] for a, b in zip(puts, puts[1:])]
        # exponential backoff from 0.5 s with jitter in [d/2, d]
        assert gaps[0] >= 0.2 and gaps[1] >= 0.45 and gaps[2] >= 0.95, f"retry gaps {gaps}"
        assert gaps[2] > gaps[0], f"no backoff: {gaps}"


def test_publish_lower_number_at_target_kept(world, ca1, tmp_path):
    """A target already holding a CRL with a higher number is left alone."""
    w = world
    path = w.file_target("file")
    newer = P.make_crl_file(ca1, path, 1000, [42])
    w.revo("publish", "--once", env=ENV, expect=(0, 1))
    assert path.read_bytes() == newer, "a CRL with a higher number was replaced"
    t = w.target_list()["file"]
    assert t["crl_number"] in (None, 1000), f"the record must not claim a CRL the target does not hold: {t}"


# ---------------------------------------------------------------- Roles Anywhere


def ra_target(w, ra_fake, name="ra"):
    w.target(name, "rolesanywhere://us-east-1", "--trust-anchor", P.TRUST_ANCHOR, "--endpoint", ra_fake.url)
    w.targets[name] = lambda: ra_fake.crl_pem(w.target_list()[name]["remote_id"])


def answered(ra_fake):
    """(operation, status) of the calls, without the 429s the fake may give when two
    calls arrive less than 0.9 s apart (timing noise under load: revo retries them)."""
    return [(c.operation, c.status) for c in ra_fake.calls() if c.status != 429]


def assert_spaced(ra_fake, at_least=0.9):
    """revo spaces CRL calls 1 s apart; arrivals here may jitter by a little."""
    calls = ra_fake.crl_calls()
    gaps = [b.time - a.time for a, b in zip(calls, calls[1:])]
    assert all(g >= at_least for g in gaps), (
        f"CRL API calls must be spaced 1 s apart: {[(c.operation, c.status) for c in calls]} gaps {gaps}")


def test_rolesanywhere_import_then_update(world, ra_fake):
    w = world
    ra_target(w, ra_fake)
    once(w)
    imports = [c for c in ra_fake.calls("ImportCrl") if c.status != 429]
    assert len(imports) == 1 and imports[0].status == 201, ra_fake.requests
    body = imports[0].json
    assert body["trustAnchorArn"] == P.TRUST_ANCHOR and body["enabled"] is True
    crl_id = w.target_list()["ra"]["remote_id"]
    assert crl_id in ra_fake.crls, (crl_id, list(ra_fake.crls))
    first = w.fetch("ra")
    leaf = w.add_leaf("ra-host")
    w.revo("revoke", "--serial", leaf.hex)
    ra_fake.wait_quiet()
    once(w)
    ops = [(c.method, c.path, c.status) for c in ra_fake.calls() if c.status != 429]
    assert ops[1:] == [("PATCH", f"/crl/{crl_id}", 200)], f"the second publication must be UpdateCrl: {ops}"
    assert set(ra_fake.calls("UpdateCrl")[0].json) == {"crlData"}
    v = w.fetch("ra")
    assert v.number > first.number and leaf.serial in v.serials and v.signature_ok
    t = w.target_list()["ra"]
    assert t["remote_id"] == crl_id and t["crl_number"] == v.number and t["sha256"] == v.sha256, t
    assert len(ra_fake.crls) == 1


def test_rolesanywhere_import_name_fits_the_model(revo, ca1, ra_fake):
    """Issuer names may contain '.', ImportCrl names may not (^[ a-zA-Z0-9-_]*$): the
    name revo sends must satisfy the model whatever the issuer is called."""
    revo("init")
    revo("issuer", "add", "corp.ca-1", "--cert", ca1.cert_path, "--key", ca1.key_path)
    revo("target", "add", "ra", "rolesanywhere://us-east-1", "--trust-anchor", P.TRUST_ANCHOR,
         "--endpoint", ra_fake.url)
    ra_fake.expect_violations = True  # reported below, with the name
    revo("publish", "--once", env=ENV, expect=(0, 1))
    imports = ra_fake.calls("ImportCrl")
    assert imports, ra_fake.requests
    name = imports[0].json.get("name")
    assert not ra_fake.violations, f"ImportCrl name {name!r}: {ra_fake.violations[0].problems}"
    assert imports[-1].status == 201


def test_rolesanywhere_disabled_import_is_enabled(world, ra_fake):
    w = world
    ra_fake.import_disabled = True
    ra_target(w, ra_fake)
    once(w)
    ops = answered(ra_fake)
    assert ops[0] == ("ImportCrl", 201) and ops[-1] == ("EnableCrl", 200), ops
    assert [c.operation for c in ra_fake.calls()].count("ImportCrl") == 1, f"imported twice: {ops}"
    crl_id = w.target_list()["ra"]["remote_id"]
    assert ra_fake.calls("EnableCrl")[0].path == f"/crl/{crl_id}/enable"
    assert ra_fake.crls[crl_id]["enabled"] is True
    assert_spaced(ra_fake)


def test_rolesanywhere_by_crl_id(world, ra_fake, ca1, tmp_path):
    w = world
    for _ in range(3):  # revo's CRL numbers move on to 4
        w.revo("crl", "build", "--issuer", "ca1", "--out", tmp_path / "x.crl")
    crl_id = ra_fake.add_crl(H.make_crl(ca1, [], number=3), P.TRUST_ANCHOR)
    w.target("ra", f"rolesanywhere://us-east-1/{crl_id}", "--endpoint", ra_fake.url)
    w.targets["ra"] = lambda: ra_fake.crl_pem(crl_id)
    once(w)
    ops = answered(ra_fake)
    assert ops == [("GetCrl", 200), ("UpdateCrl", 200)], ops
    v = w.fetch("ra")
    assert v.number > 3 and v.signature_ok
    assert w.target_list()["ra"]["crl_number"] == v.number
    assert_spaced(ra_fake)


def test_rolesanywhere_newer_at_target_left_alone(world, ra_fake, ca1):
    w = world
    seeded = H.make_crl(ca1, [], number=5000)
    crl_id = ra_fake.add_crl(seeded, P.TRUST_ANCHOR)
    w.target("ra", f"rolesanywhere://us-east-1/{crl_id}", "--endpoint", ra_fake.url)
    w.revo("publish", "--once", env=ENV, expect=(0, 1))
    assert [c.operation for c in ra_fake.calls()] == ["GetCrl"], ra_fake.requests
    assert P.CrlView(ra_fake.crl_pem(crl_id)).number == 5000


def test_rolesanywhere_throttled_then_retried(world, ra_fake):
    w = world
    ra_fake.throttle_next = 2
    ra_target(w, ra_fake)
    once(w)
    ops = [(c.operation, c.status) for c in ra_fake.calls()]
    assert ops[:2] == [("ImportCrl", 429), ("ImportCrl", 429)] and ops[-1] == ("ImportCrl", 201), ops
    assert set(ops[2:-1]) <= {("ImportCrl", 429)}, ops
    assert len(ra_fake.crls) == 1
    assert_spaced(ra_fake)
    t = w.target_list()["ra"]
    assert t["failures"] == 0 and t["remote_id"] in ra_fake.crls, t


def test_rolesanywhere_too_large_refused(world, ra_fake, ca1, tmp_path):
    """~5000 revoked entries: crlData would exceed 300000 characters; refused before
    anything is sent, saying how many entries would fit; not retried."""
    w = world
    lines = [H.index_line("R", H.now() + H.days(300), int.from_bytes(os.urandom(16), "big") | (1 << 126),
                          f"big-{i}", revoked_at=H.now() - H.days(1), reason="keyCompromise")
             for i in range(5000)]
    H.write_index(tmp_path / "index.txt", lines)
    w.revo("import", "openssl-index", tmp_path / "index.txt", "--issuer", "ca1")
    ra_target(w, ra_fake)
    w.file_target("file")
    t0 = time.monotonic()
    once(w, expect=1)
    assert time.monotonic() - t0 < 10
    assert ra_fake.calls() == [], "nothing may be sent for a CRL over the limit"
    t = w.target_list()["ra"]
    assert re.search(r"(\d+) of (?:its )?(\d+) entries", t["last_error"] or ""), t
    assert "300000" in t["last_error"], t
    assert t["failures"] == 1, t
    v = w.fetch("file")
    assert v is not None and len(v.serials) == 5000, "the file target gets the big CRL all the same"


# ---------------------------------------------------------------- the daemon


def test_daemon_revocation_reaches_file_within_a_second_and_ocsp(revo_bin, world, publisher, serve, ca1):
    plain_only(revo_bin)
    w = world
    leaf = w.add_leaf("daemon-host")
    w.file_target("file")
    pub = publisher(w.revo, env=ENV)
    pub.ready()
    srv = serve(w.revo)
    req = O.crypto_request(leaf.cert, ca1.cert)
    resp = O.load(srv.ocsp_post(req).body)
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
    before = w.fetch("file")
    t0 = time.monotonic()
    w.revo("revoke", "--serial", leaf.hex, "--reason", "keyCompromise")
    t_commit = time.monotonic()
    v = P.wait_for(lambda: P.lists_serial(w, "file", leaf.serial), 5)
    t_file = time.monotonic()
    assert v, f"the file target never listed the serial:\n{pub.stdout()[-2000:]}"
    assert v.signature_ok and v.number > before.number
    assert t_file - t_commit <= 1.2, f"the file target got the CRL {t_file - t_commit:.2f} s after the commit"

    def revoked():
        r = O.load(srv.ocsp_post(req).body)
        return r if r.certificate_status == ocsp.OCSPCertStatus.REVOKED else None

    r = P.wait_for(revoked, 5)
    t_ocsp = time.monotonic()
    assert r is not None, "the responder never said revoked"
    assert t_ocsp - t_commit <= 1.2, f"OCSP said revoked {t_ocsp - t_commit:.2f} s after the commit"
    assert r.revocation_reason.name == "key_compromise"
    O.verify_signature(r, ca1.cert)
    assert t0 <= t_commit
    took = pub.stop()
    assert took < 5


def test_second_publisher_refused(world, publisher):
    w = world
    w.file_target("file")
    first = publisher(w.revo, env=ENV)
    first.ready()
    err = w.revo.fail("publish", env=ENV)
    assert str(first.pid) in err, f"the refusal should name the first publisher's pid {first.pid}: {err}"
    err = w.revo.fail("publish", "--once", env=ENV)
    assert str(first.pid) in err, err
    assert first.alive()
    first.stop()


def test_sigterm_exits_zero(world, publisher):
    w = world
    w.file_target("file")
    p = publisher(w.revo, env=ENV)
    p.ready()
    took = p.stop(expect=0)
    assert took < 5, f"SIGTERM took {took:.1f} s"
    # SIGINT as well
    p = publisher(w.revo, env=ENV)
    p.ready()
    p.proc.send_signal(signal.SIGINT)
    assert p.proc.wait(timeout=10) == 0
    p.done = True
    p._close()


def test_sigterm_finishes_the_upload_in_flight(revo_bin, world, publisher, http_store):
    plain_only(revo_bin)
    w = world
    hs = http_store()
    hs.put_delay = 1.5
    w.http_target(hs)
    pub = publisher(w.revo, env=ENV)
    assert P.wait_for(lambda: hs.arrivals, 5), "no PUT arrived"
    t0 = time.monotonic()
    took = pub.stop(expect=0, timeout=15)
    assert took >= 1.0, f"the publisher exited {took:.2f} s after SIGTERM: it did not wait for the PUT"
    v = w.fetch("http")
    assert v is not None and v.signature_ok, "the upload in flight did not complete"
    t = w.target_list()["http"]
    assert t["crl_number"] == v.number and t["sha256"] == v.sha256 and t["failures"] == 0, t
    assert time.monotonic() - t0 < 10


def test_daemon_503_then_ok(revo_bin, world, publisher, http_store):
    plain_only(revo_bin)
    w = world
    hs = http_store()
    w.http_target(hs)
    w.file_target("file")
    pub = publisher(w.revo, env=ENV)
    pub.ready()
    first = P.wait_for(lambda: w.fetch("http"), 5)
    assert first
    leaf = w.add_leaf("503-host")
    hs.fail_puts = [503] * 3
    w.revo("revoke", "--serial", leaf.hex)
    v = P.wait_for(lambda: P.lists_serial(w, "http", leaf.serial), 10)
    assert v, f"never recovered from 503s: {state_note(w)}"
    codes = [p[3] for p in hs.puts("/http/ca1.crl")]
    assert codes[-4:] == [503, 503, 503, 200], codes
    t = P.wait_for(lambda: (lambda t: t if t["failures"] == 0 else None)(w.target_list()["http"]), 3)
    assert t and t["crl_number"] == v.number, state_note(w)


def test_daemon_stalled_target_does_not_delay_file(revo_bin, world, publisher, stall_server):
    plain_only(revo_bin)
    w = world
    st = stall_server(max_stall=30)
    w.target("stall", st.url())
    w.file_target("file")
    pub = publisher(w.revo, env=ENV)
    pub.ready()
    assert P.wait_for(lambda: w.fetch("file"), 3), "the first CRL never reached the file target"
    assert P.wait_for(lambda: st.accepted >= 1, 3), "the stalled target was never contacted"
    leaf = w.add_leaf("stall-host")
    t_commit = time.monotonic()
    w.revo("revoke", "--serial", leaf.hex)
    v = P.wait_for(lambda: P.lists_serial(w, "file", leaf.serial), 5)
    took = time.monotonic() - t_commit
    assert v, f"the file target never got the CRL while another target stalls:\n{pub.stdout()[-2000:]}"
    assert took <= 1.2, f"a stalled target delayed the file target: {took:.2f} s"
    # let the stalled connections go, then SIGTERM finishes quickly
    st.stop()
    assert pub.stop(timeout=15) < 15


def test_daemon_s3_stopped_and_restarted(revo_bin, world, publisher, radosgw, s3key):
    plain_only(revo_bin)
    w = world
    w.s3_target(radosgw, s3key)
    w.file_target("file")
    pub = publisher(w.revo, env=ENV)
    pub.ready()
    assert P.wait_for(lambda: w.fetch("s3"), 5), f"the first CRL never reached S3: {state_note(w)}"
    leaf = w.add_leaf("s3down-host")
    radosgw.rgw_stop()
    try:
        w.revo("revoke", "--serial", leaf.hex)
        assert P.wait_for(lambda: P.lists_serial(w, "file", leaf.serial), 3), "file target not updated"
        failing = P.wait_for(lambda: (lambda t: t if t["failures"] >= 2 else None)(w.target_list()["s3"]), 5)
        assert failing, f"no failed attempts recorded while radosgw is down: {state_note(w)}"
        assert failing["last_error"]
    finally:
        radosgw.rgw_start()
    v = P.wait_for(lambda: P.lists_serial(w, "s3", leaf.serial), 12, interval=0.2)
    assert v, f"the publisher never caught up after radosgw came back: {state_note(w)}\n{pub.stdout()[-2000:]}"
    assert v.signature_ok
    t = P.wait_for(lambda: (lambda t: t if t["failures"] == 0 else None)(w.target_list()["s3"]), 3)
    assert t and t["crl_number"] == v.number and t["sha256"] == v.sha256 and t["last_error"] is None, state_note(w)


def test_daemon_kill9_numbers_never_go_back(revo_bin, world, publisher, radosgw, s3key, http_store):
    """Revocations keep coming while the publisher is killed with SIGKILL at random
    moments (during uploads) and restarted. At every target, sampled all along (and
    every PUT the HTTP server received): the CRL number never goes back and every CRL
    verifies. At the end every target lists every revocation and the store's record
    matches what each target holds."""
    plain_only(revo_bin)
    w = world
    w.file_target("file")
    hs = http_store()
    hs.put_delay = 0.1  # so that kills land in the middle of uploads
    w.http_target(hs)
    w.s3_target(radosgw, s3key)
    leaves = [w.add_leaf(f"k9-{i}") for i in range(8)]
    seen = {n: [] for n in ("file", "http", "s3")}
    bad = []
    stop = threading.Event()

    def sampler():
        while not stop.is_set():
            for n in seen:
                try:
                    v = w.fetch(n)
                except Exception as e:  # noqa: BLE001
                    if "signature" in str(e):
                        bad.append((n, str(e)))
                    continue
                if v is None:
                    continue
                if not v.signature_ok:
                    bad.append((n, f"CRL {v.number} does not verify"))
                if not seen[n] or seen[n][-1] != v.number:
                    seen[n].append(v.number)
            time.sleep(0.01)

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    rnd = random.Random(1234)
    pubs = []
    try:
        for i, lf in enumerate(leaves):
            pub = publisher(w.revo, env=ENV)
            pub.t0 = time.monotonic()
            pubs.append(pub)
            time.sleep(rnd.uniform(0.05, 0.2))
            w.revo("revoke", "--serial", lf.hex)
            time.sleep(rnd.uniform(0.0, 0.15))
            if i < len(leaves) - 1:
                pub.kill9()
                pub.t_killed = time.monotonic()
        pub.ready()
        everything = {lf.serial for lf in leaves}

        def converged():
            for n in seen:
                v = w.fetch(n)
                if v is None or not everything <= v.serials:
                    return None
            return True

        ok = P.wait_for(converged, 15, interval=0.1)
        time.sleep(0.3)
    finally:
        stop.set()
        th.join(5)
    assert not bad, f"targets held CRLs that do not verify: {bad}"
    for n, nums in seen.items():
        assert nums == sorted(nums), f"{n}: the CRL number went back: {nums}"
    put_numbers = [p[4] for p in hs.puts("/http/ca1.crl") if p[3] == 200]
    assert put_numbers == sorted(put_numbers), (
        f"http: PUT CRL numbers went back: {put_numbers}\n(arrived, stored, number, client port): "
        f"{hs.put_trace}\npublisher pids and start times: {[(p.pid, p.t0) for p in pubs]}")
    assert ok, f"not every target lists every revocation after the restarts: {state_note(w)}"
    pub.stop()
    lst = w.target_list()
    for n in seen:
        v = w.fetch(n)
        t = lst[n]
        assert t["crl_number"] == v.number and t["sha256"] == v.sha256, (
            f"{n}: the store says CRL {t['crl_number']} ({t['sha256']}), the target holds {v.number} ({v.sha256})")


def test_credential_process_cached_by_daemon(revo_bin, world, publisher, ra_fake, tmp_path):
    """credential_process runs once and its answer is reused until shortly before it
    expires (three uploads by one publisher, here to a Roles Anywhere target)."""
    plain_only(revo_bin)
    w = world
    script = tmp_path / "cp.sh"
    count = tmp_path / "cp.count"
    exp = H.rfc3339(H.now() + H.days(1))
    script.write_text(f"""#!/bin/sh
echo run >> {count}
printf '{{"Version": 1, "AccessKeyId": "{P.AK}", "SecretAccessKey": "{P.SK}", "Expiration": "{exp}"}}'
""")
    script.chmod(0o755)
    (tmp_path / "config").write_text(f"[profile cp]\ncredential_process = {script}\n")
    env = P.aws_env(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None, AWS_CONFIG_FILE=str(tmp_path / "config"))
    w.target("ra", "rolesanywhere://us-east-1", "--trust-anchor", P.TRUST_ANCHOR, "--endpoint", ra_fake.url,
             "--profile", "cp")
    w.targets["ra"] = lambda: ra_fake.crl_pem(w.target_list()["ra"]["remote_id"])
    pub = publisher(w.revo, env=env)
    pub.ready()
    assert P.wait_for(lambda: w.target_list()["ra"]["remote_id"], 5), state_note(w)
    for i in range(2):
        lf = w.add_leaf(f"cp-{i}")
        w.revo("revoke", "--serial", lf.hex)
        assert P.wait_for(lambda: P.lists_serial(w, "ra", lf.serial), 5), state_note(w)
    assert [op for op, _ in answered(ra_fake)] == ["ImportCrl", "UpdateCrl", "UpdateCrl"], ra_fake.requests
    runs = len(count.read_text().split())
    assert runs == 1, f"credential_process ran {runs} times for 3 uploads within its validity"


def test_daemon_not_issued_serial_reaches_targets(revo_bin, world, publisher):
    """A revocation of a serial the store does not know (with --issuer) reaches the
    targets too."""
    plain_only(revo_bin)
    w = world
    w.file_target("file")
    pub = publisher(w.revo, env=ENV)
    pub.ready()
    w.revo("revoke", "--serial", "0DEADBEEF1", "--issuer", "ca1", "--reason", "cessationOfOperation")
    assert P.wait_for(lambda: P.lists_serial(w, "file", 0x0DEADBEEF1), 3), pub.stdout()[-2000:]


def test_daemon_reloads_a_new_issuer_and_a_removed_target(world, publisher, ca2, tmp_path):
    """`issuer add`, `target remove` and `issuer set` while `revo publish` runs: it reloads
    without a restart. The new issuer's target gets a CRL signed by the new CA; the removed
    target gets nothing more; the publisher keeps its lock and pid."""
    w = world
    w.file_target("keep")
    gone = w.file_target("gone")
    pub = publisher(w.revo, env=ENV)
    pub.ready()
    P.wait_for(lambda: w.fetch("gone") is not None, 5)
    held = w.fetch("gone").number

    # a second issuer and its target, registered while the publisher runs
    w.revo("issuer", "add", "ca2", "--cert", ca2.cert_path, "--key", ca2.key_path)
    path2 = tmp_path / "ca2.crl"
    w.revo("target", "add", "file2", f"file://{path2}", "--issuer", "ca2")
    v = P.wait_for(lambda: P.crl_or_none(path2.read_bytes() if path2.exists() else None, ca2), 5)
    assert v is not None and v.signature_ok, pub.stdout()[-2000:]
    pub.wait_output(r"reloaded issuers, keys and targets")

    # the removed target keeps what it held; the other one gets the revocation
    w.revo("target", "remove", "gone")
    pub.wait_output(r"target removed: no more uploads to it")
    leaf = w.add_leaf("reload-host")
    w.revo("revoke", "--serial", leaf.hex, "--reason", "keyCompromise")
    assert P.wait_for(lambda: P.lists_serial(w, "keep", leaf.serial), 5), pub.stdout()[-2000:]
    time.sleep(0.5)
    assert P.crl_or_none(gone.read_bytes(), w.ca).number == held

    # issuer set: reloaded, and that issuer published again with its new settings
    crl_before = w.fetch("keep").number
    w.revo("issuer", "set", "ca1", "--ocsp-validity", "3h")
    P.wait_for(lambda: pub.stdout().count("reloaded issuers, keys and targets") >= 2, 5)
    v = P.wait_for(lambda: (lambda c: c if c and c.number > crl_before else None)(w.fetch("keep")), 5)
    assert v is not None, pub.stdout()[-2000:]
    assert pub.alive()
    pub.stop()


def test_daemon_sighup_reloads_and_publishes_every_issuer(world, publisher):
    w = world
    w.file_target("file")
    pub = publisher(w.revo, env=ENV)
    pub.ready()
    P.wait_for(lambda: w.fetch("file") is not None, 5)
    before = w.fetch("file").number
    pub.proc.send_signal(signal.SIGHUP)
    pub.wait_output(r"reloaded issuers, keys and targets")
    v = P.wait_for(lambda: (lambda c: c if c and c.number > before else None)(w.fetch("file")), 5)
    assert v is not None and v.signature_ok, pub.stdout()[-2000:]
    assert pub.alive()
    pub.stop()
