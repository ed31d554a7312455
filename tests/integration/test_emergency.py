"""Emergency revocation: `revo revoke --cn HOST --reason keyCompromise --publish --wait N`
commits, re-signs OCSP, builds the CRL and makes sure every target of the issuer holds
it, in this process when no publisher runs, or by waiting for the running one; it
prints a timeline (milliseconds since the start) and exits 0 only when all of it
happened within the wait.

Targets are read back independently (file, the HTTP server, botocore on radosgw, the
Roles Anywhere fake) and the responder (`revo ocsp serve`) is asked with
python-cryptography.
"""

import json
import re
import subprocess
import time

import ocsp_helpers as O
import publish_helpers as P
import pytest
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
LINE = re.compile(r"^\s*(\d+) ms\s+(\w+)\s+(?:(\S+): )?(.*)$")
EVENTS = {"committed", "ocsp", "crl", "uploaded", "failed", "skipped", "info"}


def timeline(out):
    """[(ms, event, target or None, message)] from the human timeline."""
    ev = []
    for line in out.splitlines():
        m = LINE.match(line)
        if m and m.group(2) in EVENTS:
            ev.append((int(m.group(1)), m.group(2), m.group(3), m.group(4)))
    return ev


def check_timeline(ev, targets, out):
    names = [e[1] for e in ev]
    assert names and names[0] == "committed", f"the timeline starts with 'committed':\n{out}"
    assert "ocsp" in names, f"no 'ocsp' line:\n{out}"
    ms = [e[0] for e in ev]
    assert ms == sorted(ms), f"milliseconds go back:\n{out}"
    uploaded = {e[2] for e in ev if e[1] == "uploaded"}
    for t in targets:
        assert t in uploaded, f"no 'uploaded' line for target {t}:\n{out}"
    return {e[2]: e[0] for e in ev if e[1] == "uploaded"}


def host_with_certs(w, cn, n=2):
    return [w.add_leaf(cn) for _ in range(n)]


def emergency(w, cn, *extra, wait=30, expect=0, json_out=False, timeout=None, env=ENV):
    args = ["revoke", "--cn", cn, "--reason", "keyCompromise", "--publish", "--wait", str(wait), *extra]
    t0 = time.monotonic()
    p = w.revo.raw(*args, json=json_out, env=env, timeout=timeout or wait + 60)
    took = time.monotonic() - t0
    assert p.returncode == expect, (
        f"revo {' '.join(args)}: exit {p.returncode}, expected {expect}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}\n"
        f"targets: {json.dumps(w.target_list(), indent=1)}")
    if expect != 0:
        line = p.stderr.strip()
        assert "\n" not in line and line.startswith("revo: "), f"one error line expected: {p.stderr!r}"
    return p, took


def ocsp_status(srv, leaf, ca):
    r = O.load(srv.ocsp_post(O.crypto_request(leaf.cert, ca.cert)).body)
    O.verify_signature(r, ca.cert)
    return r.certificate_status


def test_emergency_without_publisher(world, http_store, ra_fake, serve, ca1):
    w = world
    leaves = host_with_certs(w, "jenkins-prod-1")
    other = w.add_leaf("jenkins-prod-2")
    w.file_target("file")
    hs = http_store()
    w.http_target(hs)
    w.target("ra", "rolesanywhere://us-east-1", "--trust-anchor", P.TRUST_ANCHOR, "--endpoint", ra_fake.url)
    w.targets["ra"] = lambda: ra_fake.crl_pem(w.target_list()["ra"]["remote_id"])
    w.revo("publish", "--once", env=ENV)  # every target holds a CRL already
    before = {n: w.fetch(n).number for n in ("file", "http", "ra")}
    srv = serve(w.revo)
    assert ocsp_status(srv, leaves[0], ca1) == ocsp.OCSPCertStatus.GOOD
    ra_fake.wait_quiet()
    p, took = emergency(w, "jenkins-prod-1")
    ev = timeline(p.stdout)
    check_timeline(ev, ["file", "http", "ra"], p.stdout)
    assert "crl" in [e[1] for e in ev], p.stdout
    assert not [e for e in ev if e[1] == "failed"], p.stdout
    assert ev[-1][0] < 30000 and took < 30
    for n in ("file", "http", "ra"):
        v = w.fetch(n)
        assert v.signature_ok and v.number > before[n], (n, v.number, before[n])
        assert {lf.serial for lf in leaves} <= v.serials, f"{n} does not list the host's certificates"
        assert other.serial not in v.serials
    for lf in leaves:
        assert ocsp_status(srv, lf, ca1) == ocsp.OCSPCertStatus.REVOKED, "OCSP does not say revoked"
    assert ocsp_status(srv, other, ca1) == ocsp.OCSPCertStatus.GOOD
    lst = w.target_list()
    for n in ("file", "http", "ra"):
        assert lst[n]["crl_number"] == w.fetch(n).number and lst[n]["failures"] == 0, lst[n]


def test_emergency_s3(world, radosgw, s3key):
    """File and S3 targets that already hold a CRL (the usual case)."""
    w = world
    leaves = host_with_certs(w, "build-7")
    w.file_target("file")
    w.s3_target(radosgw, s3key)
    w.revo("publish", "--once", env=ENV)
    before = w.fetch("s3").number
    p, took = emergency(w, "build-7")
    check_timeline(timeline(p.stdout), ["file", "s3"], p.stdout)
    for n in ("file", "s3"):
        v = w.fetch(n)
        assert v.signature_ok and {lf.serial for lf in leaves} <= v.serials, n
    assert w.fetch("s3").number > before
    assert radosgw.head(s3key)["Metadata"]["revo-crl-number"] == str(w.fetch("s3").number)


def test_emergency_first_upload_to_s3(world, radosgw, s3key):
    """File and S3 targets that hold nothing yet."""
    w = world
    leaves = host_with_certs(w, "build-8", n=1)
    w.file_target("file")
    w.s3_target(radosgw, s3key)
    p, took = emergency(w, "build-8")
    check_timeline(timeline(p.stdout), ["file", "s3"], p.stdout)
    for n in ("file", "s3"):
        v = w.fetch(n)
        assert v.signature_ok and leaves[0].serial in v.serials, n


def test_emergency_json(world):
    w = world
    leaves = host_with_certs(w, "scanner-3")
    w.file_target("file")
    p, took = emergency(w, "scanner-3", json_out=True)
    doc = json.loads(p.stdout)
    assert {c["serial"] for c in doc["certs"]} == {lf.hex for lf in leaves}, doc["certs"]
    assert all(c["result"] == "revoked" and c["reason"] == "keyCompromise" for c in doc["certs"])
    pub = doc["publish"]
    assert pub["ok"] is True and pub["wait"] == 30, pub
    events = pub["events"]
    for e in events:
        assert set(e) == {"ms", "event", "target", "message"}, e
        assert isinstance(e["ms"], int) and e["event"] in EVENTS, e
    kinds = [e["event"] for e in events]
    assert kinds[0] == "committed" and "ocsp" in kinds and "crl" in kinds, kinds
    assert any(e["event"] == "uploaded" and e["target"] == "file" for e in events), events
    assert [e["ms"] for e in events] == sorted(e["ms"] for e in events)
    assert {lf.serial for lf in leaves} <= w.fetch("file").serials


def test_emergency_with_publisher_running(revo_bin, world, publisher, http_store, serve, ca1):
    w = world
    leaves = host_with_certs(w, "signer-1")
    w.file_target("file")
    hs = http_store()
    w.http_target(hs)
    pub = publisher(w.revo, env=ENV)
    pub.ready()
    assert P.wait_for(lambda: w.fetch("file") and w.fetch("http"), 5)
    srv = serve(w.revo)
    p, took = emergency(w, "signer-1")
    ev = timeline(p.stdout)
    check_timeline(ev, ["file", "http"], p.stdout)
    infos = [e for e in ev if e[1] == "info"]
    assert any(str(pub.pid) in e[3] for e in infos), f"the timeline should say it waits for pid {pub.pid}:\n{p.stdout}"
    for n in ("file", "http"):
        v = w.fetch(n)
        assert v.signature_ok and {lf.serial for lf in leaves} <= v.serials, n
    for lf in leaves:
        assert ocsp_status(srv, lf, ca1) == ocsp.OCSPCertStatus.REVOKED
    if not revo_bin.asan:
        assert took < 3, f"with a publisher running, the emergency took {took:.1f} s"
    assert pub.alive()
    # the man page: "It prints a timeline: committed, OCSP re-signed, CRL built, each
    # target uploaded or failed" (checked last, so the rest is reported first)
    assert "crl" in [e[1] for e in ev], f"no 'crl' (CRL built) line when a publisher runs:\n{p.stdout}"


def test_emergency_target_down(world, http_store):
    w = world
    leaves = host_with_certs(w, "web-9", n=1)
    w.file_target("file")
    w.target("down", P.closed_port_url())
    w.revo("publish", "--once", env=ENV, expect=1)
    p, took = emergency(w, "web-9", wait=5, expect=1)
    ev = timeline(p.stdout)
    failed = [e for e in ev if e[1] == "failed" and e[2] == "down"]
    assert failed, f"the timeline must name the failing target:\n{p.stdout}"
    assert re.search(r"connect|refused", failed[-1][3], re.I), f"and say why: {failed[-1]}"
    assert "file" in {e[2] for e in ev if e[1] == "uploaded"}, p.stdout
    assert leaves[0].serial in w.fetch("file").serials
    assert took < 5 + 3, f"--wait 5 took {took:.1f} s"


def test_emergency_target_down_with_publisher(revo_bin, world, publisher):
    w = world
    leaves = host_with_certs(w, "web-10", n=1)
    w.file_target("file")
    w.target("down", P.closed_port_url())
    pub = publisher(w.revo, env=ENV)
    pub.ready()
    p, took = emergency(w, "web-10", wait=3, expect=1)
    ev = timeline(p.stdout)
    failed = [e for e in ev if e[1] == "failed" and e[2] == "down"]
    assert failed, f"the timeline must name the failing target:\n{p.stdout}"
    assert re.search(r"connect|refused", failed[-1][3], re.I), f"and say why: {failed[-1]}"
    assert "file" in {e[2] for e in ev if e[1] == "uploaded"}, p.stdout
    assert 2.5 <= took < 8, f"--wait 3 took {took:.1f} s"
    assert leaves[0].serial in w.fetch("file").serials


def test_emergency_transient_503_is_retried(world, http_store):
    """One 503 from a target: the few quick retries make it, exit 0."""
    w = world
    leaves = host_with_certs(w, "ci-runner-4", n=1)
    w.file_target("file")
    hs = http_store()
    w.http_target(hs)
    w.revo("publish", "--once", env=ENV)
    hs.fail_puts = [503]
    p, took = emergency(w, "ci-runner-4")
    codes = [x[3] for x in hs.puts("/http/ca1.crl")]
    assert codes[-2:] == [503, 200], codes
    assert leaves[0].serial in w.fetch("http").serials
    check_timeline(timeline(p.stdout), ["file", "http"], p.stdout)


def test_emergency_wait_is_a_bound(world, stall_server):
    """A target that accepts and never answers: the command still ends within about
    --wait seconds (exit 1, naming that target), and the file target has the CRL."""
    w = world
    leaves = host_with_certs(w, "stuck-1", n=1)
    st = stall_server(max_stall=30)
    w.file_target("file")
    w.target("stall", st.url())
    args = ["revoke", "--cn", "stuck-1", "--reason", "keyCompromise", "--publish", "--wait", "3"]
    t0 = time.monotonic()
    try:
        p = w.revo.raw(*args, env=ENV, timeout=8)
    except subprocess.TimeoutExpired:
        pytest.fail(f"revo {' '.join(args)} was still running after 8 s (--wait 3)")
    took = time.monotonic() - t0
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert took < 6, f"--wait 3 took {took:.1f} s"
    ev = timeline(p.stdout)
    assert any(e[1] == "failed" and e[2] == "stall" for e in ev), p.stdout
    assert leaves[0].serial in w.fetch("file").serials
