"""revo probe rolesanywhere against the botocore-checked Roles Anywhere fake: the common
rollout mistakes (an anchor with no CRL, a disabled CRL, a disabled anchor, a stale CRL,
a CRL behind the store) are CRITICAL or WARNING; a current, enabled CRL is OK."""
import json
import time

import pytest

import publish_helpers as P
from publish_helpers import ra_fake, world  # noqa: F401 (fixtures)

ENV = P.aws_env()


def probe(w, anchor, *extra):
    p = w.revo.raw("probe", "rolesanywhere", "--trust-anchor", anchor, "--endpoint",
                   w.ra.url, *extra, env=ENV)
    assert not any(s in p.stderr for s in ("AddressSanitizer", "runtime error:", "LeakSanitizer")), p.stderr
    line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    assert " | " in line or line.startswith("UNKNOWN"), line
    return p.returncode, line


@pytest.fixture
def ra(world, ra_fake):
    world.ra = ra_fake
    ta = ra_fake.add_trust_anchor()
    world.anchor_id = ta["trustAnchorId"]
    return world, ta["trustAnchorArn"]


def publish_ra(w, anchor):
    w.target("ra", "rolesanywhere://us-east-1", "--trust-anchor", anchor, "--endpoint", w.ra.url)
    w.revo("publish", "--once", env=ENV)
    w.ra.wait_quiet()


def test_anchor_without_crl_is_critical(ra):
    w, anchor = ra
    rc, line = probe(w, anchor)
    assert rc == 2 and "not enforced" in line, line


def test_current_crl_is_ok_and_disabled_is_critical(ra):
    w, anchor = ra
    publish_ra(w, anchor)
    rc, line = probe(w, anchor)
    assert rc == 0, line
    assert line.startswith("OK - ") and "issuer 'ca1'" in line and "crls=1" in line
    # disable it at the API: revocation is no longer enforced
    for c in w.ra.crls.values():
        c["enabled"] = False
    rc, line = probe(w, anchor)
    assert rc == 2 and "disabled" in line, line


def test_disabled_anchor_is_critical(ra):
    w, anchor = ra
    publish_ra(w, anchor)
    w.ra.trust_anchors[w.anchor_id]["enabled"] = False
    rc, line = probe(w, anchor)
    assert rc == 2 and "trust anchor is disabled" in line, line


def test_crl_behind_the_store_warns_and_stale_is_critical(ra):
    w, anchor = ra
    publish_ra(w, anchor)
    # two more CRLs built locally but never published
    w.revo("crl", "build", "--issuer", "ca1", "--out", w.tmp / "a.crl")
    w.revo("crl", "build", "--issuer", "ca1", "--out", w.tmp / "b.crl")
    rc, line = probe(w, anchor)
    assert rc == 1 and "store's newest" in line, line
    # nextUpdate headroom: a 7-day CRL is below a 30-day warning, and 8-day critical
    rc, line = probe(w, anchor, "--warn", "30d", "--crit", "8d")
    assert rc == 2 and "nextUpdate" in line, line


def test_json_and_misuse(ra):
    w, anchor = ra
    publish_ra(w, anchor)
    p = w.revo.raw("--json", "probe", "rolesanywhere", "--trust-anchor", anchor, "--endpoint",
                   w.ra.url, env=ENV)
    j = json.loads(p.stdout)
    assert p.returncode == 0 and j["status"] == "OK" and j["perfdata"]["crls"] == 1
    rc, line = probe(w, "arn:aws:iam::1:role/x")
    assert rc == 3 and line.startswith("UNKNOWN")


def test_one_publish_behind_is_ok_with_its_age_then_warns_past_max_lag(ra):
    w, anchor = ra
    publish_ra(w, anchor)
    # one CRL built locally, not yet published: a publish in flight
    w.revo("crl", "build", "--issuer", "ca1", "--out", w.tmp / "a.crl")
    rc, line = probe(w, anchor)
    assert rc == 0, line
    assert "one publish behind (CRL 2 built " in line and "publish_lag_seconds=" in line, line
    time.sleep(1.2)
    rc, line = probe(w, anchor, "--max-lag", "1s")
    assert rc == 1 and "one publish behind for " in line and "CRL 2 has not reached" in line, line
    # published: level again, no lag
    w.revo("publish", "--once", env=ENV)
    w.ra.wait_quiet()
    rc, line = probe(w, anchor, "--max-lag", "1s")
    assert rc == 0 and "publish_lag_seconds=0s" in line and "behind" not in line, line


def test_anchor_newer_than_the_store_warns(ra, tmp_path):
    """Roles Anywhere holds a higher CRL number than the store has ever made: the store
    was restored from an old backup (the publisher would otherwise skip it)."""
    w, anchor = ra
    publish_ra(w, anchor)
    crl = P.make_crl_file(w.ca, tmp_path / "high.crl", 99)
    for c in w.ra.crls.values():
        c["enabled"] = False
    w.ra.add_crl(crl, anchor, name="from-the-future")
    rc, line = probe(w, anchor)
    assert rc == 1 and "newer than the store's newest" in line, line


def test_max_lag_misuse(ra):
    w, anchor = ra
    rc, line = probe(w, anchor, "--max-lag", "soon")
    assert rc == 3 and line.startswith("UNKNOWN"), line
