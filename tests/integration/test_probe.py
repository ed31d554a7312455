"""revo probe crl / revo probe ocsp: the monitoring-plugin contract (one status line,
perfdata, exit 0/1/2/3, --json, --prometheus) against the real responder and CRLs served
by nginx: good and revoked answers, an expired CRL, a CRL signed by the wrong key, a
replayed older CRL, a responder that is down, a response for another serial, and an
unreachable URL."""
import json
import os
import shutil
import time

import pytest

import revohelp as H
from ocsp_helpers import (  # noqa: F401 - fixtures
    free_port, nginx, ocsp_pki, serve, setup_store)


def probe(revo, *args, json_out=False):
    p = revo.raw("probe", *args, json=json_out)
    assert not any(s in p.stderr for s in ("AddressSanitizer", "runtime error:", "LeakSanitizer")), p.stderr
    line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    return p.returncode, line, p


def status_line_ok(line, status):
    assert line.startswith(status + " - "), line
    assert " | " in line, line  # perfdata follows


@pytest.fixture
def pki_store(revo, ocsp_pki):
    setup_store(revo, ocsp_pki)
    return ocsp_pki


# ---- OCSP


def test_probe_ocsp_good_and_revoked(revo, pki_store, serve):
    pki = pki_store
    s = serve(revo)
    url = f"http://127.0.0.1:{s.port}/"
    rc, line, _ = probe(revo, "ocsp", url, "--issuer", pki.ca.cert_path, "--cert",
                        pki.leaf(pki.GOOD).pem_path, "--expect", "good")
    assert rc == 0
    status_line_ok(line, "OK")
    assert "status good" in line and "latency_ms=" in line
    rc, line, _ = probe(revo, "ocsp", url, "--issuer", pki.ca.cert_path, "--serial",
                        H.serial_hex(pki.REV), "--expect", "revoked", "--post")
    assert rc == 0 and "keyCompromise" in line, line
    # expecting the wrong status is CRITICAL
    rc, line, _ = probe(revo, "ocsp", url, "--issuer", pki.ca.cert_path, "--serial",
                        H.serial_hex(pki.GOOD), "--expect", "revoked", "--sha256")
    assert rc == 2
    status_line_ok(line, "CRITICAL")
    assert "expected revoked" in line


def test_probe_ocsp_json_and_prometheus(revo, pki_store, serve, tmp_path):
    pki = pki_store
    s = serve(revo)
    prom = tmp_path / "ocsp.prom"
    rc, _, p = probe(revo, "ocsp", f"http://127.0.0.1:{s.port}/ocsp", "--issuer",
                     pki.ca.cert_path, "--serial", H.serial_hex(pki.GOOD), "--prometheus", prom,
                     json_out=True)
    assert rc == 0
    j = json.loads(p.stdout)
    assert j["status"] == "OK" and j["perfdata"]["latency_ms"] > 0
    text = prom.read_text()
    assert 'revo_probe_status{probe="ocsp"' in text and "} 0\n" in text
    assert "revo_probe_ocsp_latency_ms{" in text


def test_probe_ocsp_responder_down(revo, ocsp_pki):
    port = free_port()
    rc, line, _ = probe(revo, "ocsp", f"http://127.0.0.1:{port}/", "--issuer",
                        ocsp_pki.ca.cert_path, "--serial", "01")
    assert rc == 2
    status_line_ok(line, "CRITICAL")
    assert "did not answer" in line


def test_probe_ocsp_response_for_another_serial(revo, pki_store, serve, nginx, tmp_path):
    """nginx serves the pre-signed answer of GOOD whatever is asked: asking for GOOD2 must
    be CRITICAL (the answer is not for the CertID asked)."""
    pki = pki_store
    s = serve(revo)
    from ocsp_helpers import cert_id, ocsp_request
    req = ocsp_request([cert_id(pki.ca.cert, pki.GOOD)])
    resp = s.ocsp_post(req)
    body = resp.body if hasattr(resp, "body") else resp
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "fixed.der").write_bytes(body)
    n = nginx("""server { listen 127.0.0.1:@PORT@;
        location / { default_type application/ocsp-response; root %s;
                     try_files /fixed.der =404; } }""" % (tmp_path / "www"))
    rc, line, _ = probe(revo, "ocsp", f"http://127.0.0.1:{n.port}/", "--issuer",
                        pki.ca.cert_path, "--serial", H.serial_hex(pki.GOOD2))
    assert rc == 2, line
    assert "does not answer for the CertID" in line


def test_probe_ocsp_misuse_is_unknown(revo, ocsp_pki):
    rc, line, _ = probe(revo, "ocsp", "http://127.0.0.1:1/", "--issuer", ocsp_pki.ca.cert_path)
    assert rc == 3 and line.startswith("UNKNOWN - "), line
    rc, line, _ = probe(revo, "ocsp", "http://127.0.0.1:1/", "--issuer", ocsp_pki.ca.cert_path,
                        "--serial", "01", "--expect", "maybe")
    assert rc == 3


# ---- CRL


@pytest.fixture
def crl_site(revo, pki_store, nginx, tmp_path):
    """A CRL built by revo, served by nginx from www/ca.crl."""
    www = tmp_path / "www"
    www.mkdir()
    revo("crl", "build", "--issuer", "ca", "--out", www / "ca.crl")
    n = nginx("""server { listen 127.0.0.1:@PORT@;
        location / { root %s; default_type application/pkix-crl; } }""" % www)
    return pki_store, www, f"http://127.0.0.1:{n.port}/ca.crl"


def test_probe_crl_ok_listed_and_state(revo, crl_site, tmp_path):
    pki, www, url = crl_site
    state = tmp_path / "state"
    rc, line, _ = probe(revo, "crl", url, "--ca", pki.ca.cert_path, "--state", state,
                        "--serial", H.serial_hex(pki.REV))
    assert rc == 0, line
    status_line_ok(line, "OK")
    assert "listed" in line and "crl_number=1" in line and "next_update_seconds=" in line
    assert state.read_text().strip() == "1"
    # a serial that is not on the CRL
    rc, line, _ = probe(revo, "crl", url, "--ca", pki.ca.cert_path, "--serial",
                        H.serial_hex(pki.GOOD))
    assert rc == 2 and "not on the CRL" in line


def test_probe_crl_replayed_older_crl(revo, crl_site, tmp_path):
    pki, www, url = crl_site
    state = tmp_path / "state"
    shutil.copy(www / "ca.crl", tmp_path / "old.crl")
    revo("crl", "build", "--issuer", "ca", "--out", www / "ca.crl")
    assert probe(revo, "crl", url, "--ca", pki.ca.cert_path, "--state", state)[0] == 0
    assert state.read_text().strip() == "2"
    shutil.copy(tmp_path / "old.crl", www / "ca.crl")  # an attacker or a stale cache
    rc, line, _ = probe(revo, "crl", url, "--ca", pki.ca.cert_path, "--state", state)
    assert rc == 2 and "lower than 2" in line, line


def test_probe_crl_wrong_key_and_thresholds(revo, crl_site):
    pki, www, url = crl_site
    rc, line, _ = probe(revo, "crl", url, "--ca", pki.ca2.cert_path)
    assert rc == 2 and "signature does not verify" in line
    # nextUpdate is 7 days away: warn at 30 days, critical at 8 days
    rc, line, _ = probe(revo, "crl", url, "--ca", pki.ca.cert_path, "--warn", "30d", "--crit", "1d")
    assert rc == 1 and line.startswith("WARNING - ")
    rc, line, _ = probe(revo, "crl", url, "--ca", pki.ca.cert_path, "--warn", "30d", "--crit", "8d")
    assert rc == 2


def test_probe_crl_expired(revo, ocsp_pki, nginx, tmp_path):
    revo("init")
    revo("issuer", "add", "ca", "--cert", ocsp_pki.ca.cert_path, "--key", ocsp_pki.ca.key_path,
         "--crl-validity", "2s", "--crl-every", "1s")
    www = tmp_path / "www"
    www.mkdir()
    revo("crl", "build", "--issuer", "ca", "--out", www / "ca.crl")
    n = nginx("server { listen 127.0.0.1:@PORT@; location / { root %s; } }" % www)
    time.sleep(3)
    rc, line, _ = probe(revo, "crl", f"http://127.0.0.1:{n.port}/ca.crl", "--ca",
                        ocsp_pki.ca.cert_path)
    assert rc == 2 and "expired" in line, line


def test_probe_crl_unreachable_and_not_a_crl(revo, ocsp_pki, nginx, tmp_path):
    rc, line, _ = probe(revo, "crl", f"http://127.0.0.1:{free_port()}/x.crl", "--ca",
                        ocsp_pki.ca.cert_path)
    assert rc == 2 and "cannot fetch" in line
    www = tmp_path / "www"
    www.mkdir()
    (www / "x.crl").write_text("<html>maintenance</html>")
    n = nginx("server { listen 127.0.0.1:@PORT@; location / { root %s; } }" % www)
    rc, line, _ = probe(revo, "crl", f"http://127.0.0.1:{n.port}/x.crl", "--ca",
                        ocsp_pki.ca.cert_path)
    assert rc == 2 and "not a CRL" in line
    rc, line, _ = probe(revo, "crl", f"http://127.0.0.1:{n.port}/missing.crl", "--ca",
                        ocsp_pki.ca.cert_path)
    assert rc == 2
    rc, line, _ = probe(revo, "crl", "file:///nonexistent.crl")
    assert rc == 3 and line.startswith("UNKNOWN")
