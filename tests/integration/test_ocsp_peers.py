"""The responder against real, independent clients: `openssl ocsp` (POST, GET through
-reqout/-respin, nonces, SHA-1 and SHA-256, -VAfile, issuer verification), GnuTLS
`ocsptool --ask`, NSS `vfychain -g leaf -m ocsp` (AIA OCSP URL, GET), nginx
`ssl_stapling` (checked with `openssl s_client -status`), nginx `ssl_ocsp` for client
certificates, and nginx `proxy_cache` as an HTTP cache in front of the responder.
"""

import datetime
import re
import ssl
import socket
import time

import ocsp_helpers as O
import pytest
import revohelp as H
from conftest import Revo
from ocsp_helpers import nginx, ocsp_pki, presigned_env, serve  # noqa: F401 (fixtures)

UTC = datetime.timezone.utc
AIA_GOOD, AIA_REV, AIA_LATE = 0x4001, 0x4002, 0x4003


class PeerEnv:
    pass


@pytest.fixture(scope="module")
def peer_env(revo_bin, ocsp_pki, tmp_path_factory):
    """Issuer 'ca' with the delegated responder key; leaves whose AIA names the
    responder (it listens on a port chosen first); AIA_REV revoked (keyCompromise)."""
    pki = ocsp_pki
    d = tmp_path_factory.mktemp("peers")
    revo = Revo(revo_bin, d / "store")
    port = O.free_port()
    url = f"http://127.0.0.1:{port}/"
    e = PeerEnv()
    e.pki, e.revo, e.url, e.dir = pki, revo, url, d
    e.good = O.make_cert(pki.ca, AIA_GOOD, "aia-good", d / "aia", slug="aia-good", server=True, aia_url=url)
    e.rev = O.make_cert(pki.ca, AIA_REV, "aia-revoked", d / "aia", slug="aia-revoked", server=True, aia_url=url)
    O.setup_store(revo, pki, delegated=True, leaves=[pki.leaf(pki.GOOD), pki.leaf(pki.REV), pki.leaf(pki.HOLD)],
                  presign=False)
    revo("cert", "add", e.good.pem_path, e.rev.pem_path)
    revo("revoke", "--serial", e.rev.hex, "--reason", "keyCompromise")
    revo("ocsp", "presign", json=True)
    s = O.Server(revo, ["--listen", f"127.0.0.1:{port}", "--threads", "2"], d / "serve")
    assert s.port == port
    e.server = s
    yield e
    s.stop()


def openssl_ocsp(*args):
    return O.run(["openssl", "ocsp", *args])


def parse_openssl_status(out, cert_path):
    """'FILE: good|revoked|unknown' plus the Reason and Revocation Time lines."""
    m = re.search(re.escape(str(cert_path)) + r": (\w+)", out)
    assert m, f"no status line for {cert_path} in:\n{out}"
    info = {"status": m.group(1)}
    section = re.split(r"\n(?=\S[^\n]*: (?:good|revoked|unknown)\n)", out[m.end():], maxsplit=1)[0]
    r = re.search(r"Reason: (\w+)", section)
    if r:
        info["reason"] = r.group(1)
    t = re.search(r"Revocation Time: (.+? GMT)", section)
    if t:
        info["revoked_at"] = datetime.datetime.strptime(" ".join(t.group(1).split()),
                                                        "%b %d %H:%M:%S %Y GMT").replace(tzinfo=UTC)
    return info


def assert_verified(p):
    both = p.stdout + p.stderr
    assert p.returncode == 0, f"openssl ocsp exited {p.returncode}:\n{both}"
    assert "Response verify OK" in both, f"response not verified:\n{both}"
    assert "Responder Error" not in both


# ---------------------------------------------------------------- openssl ocsp


@pytest.mark.parametrize("digest", ["-sha1", "-sha256"])
@pytest.mark.parametrize("path", ["/", "/ocsp/"])
def test_openssl_post_ca_signed(presigned_env, digest, path):
    """POST (openssl's way), answers signed by the CA, verified against the CA."""
    pki, s, revo = presigned_env.pki, presigned_env.server, presigned_env.revo
    url = f"http://127.0.0.1:{s.port}{path}"
    for serial in (pki.GOOD, pki.REV, pki.HOLD):
        lf = pki.leaf(serial)
        p = openssl_ocsp(digest, "-issuer", pki.ca.cert_path, "-cert", lf.pem_path, "-url", url,
                         "-CAfile", pki.ca.cert_path, "-no_nonce")
        assert_verified(p)
        got = parse_openssl_status(p.stdout, lf.pem_path)
        st = revo.status(lf.hex, "ca")
        assert got["status"] == st["status"], (got, st)
        if st["status"] == "revoked":
            assert got["revoked_at"] == H.parse_time(st["revoked_at"])
            assert got["reason"] == st["reason"], (got, st)
    # the signature is really checked: another CA as trust anchor fails
    p = openssl_ocsp(digest, "-issuer", pki.ca.cert_path, "-cert", pki.leaf(pki.GOOD).pem_path, "-url",
                     url, "-CAfile", pki.ca2.cert_path, "-no_nonce")
    assert "Response Verify Failure" in p.stdout + p.stderr, p.stdout + p.stderr


def test_openssl_nonce_without_key(presigned_env):
    """openssl asks with a nonce; a responder without a key answers pre-signed, without
    a nonce (openssl warns), and the answer still verifies."""
    pki, s = presigned_env.pki, presigned_env.server
    lf = pki.leaf(pki.GOOD)
    p = openssl_ocsp("-issuer", pki.ca.cert_path, "-cert", lf.pem_path, "-url",
                     f"http://127.0.0.1:{s.port}/", "-CAfile", pki.ca.cert_path, "-nonce")
    assert_verified(p)
    assert "WARNING: no nonce in response" in p.stdout + p.stderr
    assert parse_openssl_status(p.stdout, lf.pem_path)["status"] == "good"


def test_openssl_get_via_reqout_respin(presigned_env, tmp_path):
    """openssl writes the request, we send it as GET, openssl verifies the answer."""
    pki, s = presigned_env.pki, presigned_env.server
    for serial, digest in ((pki.GOOD, "-sha1"), (pki.REV, "-sha256")):
        lf = pki.leaf(serial)
        req = tmp_path / f"{serial:x}.req"
        resp = tmp_path / f"{serial:x}.resp"
        p = openssl_ocsp(digest, "-issuer", pki.ca.cert_path, "-cert", lf.pem_path, "-no_nonce", "-reqout", req)
        assert p.returncode == 0, p.stderr
        for prefix in ("/", "/ocsp/"):
            r = s.ocsp_get(req.read_bytes(), prefix=prefix)
            resp.write_bytes(r.body)
            p = openssl_ocsp(digest, "-issuer", pki.ca.cert_path, "-cert", lf.pem_path, "-no_nonce",
                             "-respin", resp, "-CAfile", pki.ca.cert_path)
            assert_verified(p)
            want = presigned_env.revo.status(lf.hex, "ca")["status"]
            assert parse_openssl_status(p.stdout, lf.pem_path)["status"] == want


def test_openssl_delegated(peer_env):
    """Delegated responder: nonce echoed (no warning), several certificates in one
    request, SHA-256 CertIDs, -VAfile with the responder certificate."""
    e, pki = peer_env, peer_env.pki
    url = e.url
    for digest in ("-sha1", "-sha256"):
        p = openssl_ocsp(digest, "-issuer", pki.ca.cert_path, "-cert", e.good.pem_path, "-cert",
                         e.rev.pem_path, "-cert", pki.leaf(pki.HOLD).pem_path, "-url", url, "-CAfile",
                         pki.ca.cert_path, "-nonce")
        assert_verified(p)
        both = p.stdout + p.stderr
        assert "WARNING: no nonce" not in both and "Nonce Verify error" not in both, both
        assert parse_openssl_status(p.stdout, e.good.pem_path)["status"] == "good"
        rv = parse_openssl_status(p.stdout, e.rev.pem_path)
        st = e.revo.status(e.rev.hex, "ca")
        assert rv["status"] == "revoked" and rv["reason"] == "keyCompromise"
        assert rv["revoked_at"] == H.parse_time(st["revoked_at"])
        hold = parse_openssl_status(p.stdout, pki.leaf(pki.HOLD).pem_path)
        assert hold["status"] == "revoked" and hold["reason"] == "certificateHold"
    # -VAfile: trust the responder certificate itself
    for nonce in ("-nonce", "-no_nonce"):
        p = openssl_ocsp("-issuer", pki.ca.cert_path, "-cert", e.good.pem_path, "-url", url, "-VAfile",
                         pki.responder.pem_path, nonce)
        assert_verified(p)
        assert parse_openssl_status(p.stdout, e.good.pem_path)["status"] == "good"
    # a responder certificate that is not the signer is refused
    p = openssl_ocsp("-issuer", pki.ca.cert_path, "-cert", e.good.pem_path, "-url", url, "-VAfile",
                     pki.responder3.pem_path, "-no_nonce")
    assert "Response Verify Failure" in p.stdout + p.stderr


# ---------------------------------------------------------------- GnuTLS


def ocsptool(*args):
    O.need("ocsptool")
    return O.run(["ocsptool", *args])


def ocsptool_status(p):
    both = p.stdout + p.stderr
    m = re.search(r"Certificate Status: (\w+)", both)
    assert m, f"ocsptool printed no status:\n{both}"
    return m.group(1), ("Verifying OCSP Response: Success." in both), both


def test_gnutls_ocsptool(peer_env, presigned_env):
    e, pki = peer_env, peer_env.pki
    # the URL from the certificate's AIA, the delegated signer given or chained to the CA
    for lf, want in ((e.good, "good"), (e.rev, "revoked")):
        for trust in (["--load-signer", pki.responder.pem_path], ["--load-trust", pki.ca.cert_path]):
            for nonce in ([], ["--nonce"]):
                p = ocsptool("--ask", "--load-issuer", pki.ca.cert_path, "--load-cert", lf.pem_path,
                             *trust, *nonce)
                status, ok, out = ocsptool_status(p)
                assert status == want and ok and p.returncode == 0, out
                if nonce:
                    assert re.search(r"Nonce: [0-9a-f]+", out), f"nonce not echoed:\n{out}"
        # the CA itself is not the signer here: --load-signer CA must fail
        p = ocsptool("--ask", "--load-issuer", pki.ca.cert_path, "--load-cert", lf.pem_path,
                     "--load-signer", pki.ca2.cert_path)
        assert "Verifying OCSP Response: Success." not in p.stdout + p.stderr
    # a URL given explicitly, CA-signed answers, SHA-1 CertIDs as GnuTLS sends them
    s = presigned_env.server
    for serial, want in ((pki.GOOD, "good"), (pki.REV, "revoked")):
        # (the CA-signed answer carries no certificate, and GnuTLS 3.7 does not look the
        # signer up in --load-trust: name it with --load-signer)
        p = ocsptool(f"--ask=http://127.0.0.1:{s.port}/", "--load-issuer", pki.ca.cert_path,
                     "--load-cert", pki.leaf(serial).pem_path, "--load-signer", pki.ca.cert_path)
        status, ok, out = ocsptool_status(p)
        assert status == want and ok and p.returncode == 0, out


# ---------------------------------------------------------------- NSS


def test_nss_vfychain(peer_env, tmp_path):
    O.need("vfychain", "certutil")
    e, pki = peer_env, peer_env.pki
    db = tmp_path / "nssdb"
    db.mkdir()
    assert O.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"]).returncode == 0
    p = O.run(["certutil", "-A", "-d", f"sql:{db}", "-n", "revo-ca", "-t", "CT,C,C", "-i", pki.ca.cert_path])
    assert p.returncode == 0, p.stderr
    before = e.server.metrics()

    def vfy(lf, *flags):
        return O.run(["vfychain", "-d", f"sql:{db}", "-pp", "-u", "1", "-g", "leaf", "-m", "ocsp",
                      *flags, "-a", lf.pem_path])

    # good: with failIfNoInfo, so a good chain needs an OCSP answer
    p = vfy(e.good, "-s", "failIfNoInfo")
    assert p.returncode == 0 and "Chain is good!" in p.stdout + p.stderr, p.stdout + p.stderr
    # revoked: without failIfNoInfo, so only a real "revoked" answer makes it fail
    p = vfy(e.rev)
    both = p.stdout + p.stderr
    assert p.returncode != 0 and "-8180" in both, f"NSS did not see the revocation:\n{both}"
    after = e.server.metrics()
    asked = sum(O.metric(after, "revo_ocsp_requests_total", method=m, outcome=o)
                - O.metric(before, "revo_ocsp_requests_total", method=m, outcome=o)
                for m in ("GET", "POST") for o in ("presigned", "signed"))
    assert asked >= 2, "NSS did not ask the responder"


# ---------------------------------------------------------------- nginx


def s_client_status(port, servername="localhost"):
    p = O.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", servername,
               "-status"], input="", timeout=20)
    return p.stdout + p.stderr


STAPLE_SERVER = """
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_stapling on;
        ssl_stapling_verify on;
        ssl_trusted_certificate {ca};
        ssl_stapling_responder {responder};
        location / {{ return 200 "ok\\n"; }}
    }}
"""


def test_nginx_stapling(peer_env, presigned_env, nginx, tmp_path):
    """nginx fetches our answer (GET, HTTP/1.0), verifies it and staples it: both with the
    delegated responder and with CA-signed answers under a path prefix."""
    e, pki = peer_env, peer_env.pki
    p2 = O.free_port()
    body = STAPLE_SERVER.format(port="@PORT@", cert=e.good.pem_path, key=e.good.key_path,
                                ca=pki.ca.cert_path, responder=e.url)
    good = pki.leaf(pki.GOOD)
    # CA-signed answers carry no certificate: nginx finds the signer (the issuing CA) in
    # the certificate chain it serves, as with any intermediate CA
    fullchain = tmp_path / "good-fullchain.pem"
    fullchain.write_bytes(good.pem_path.read_bytes() + pki.ca.cert_path.read_bytes())
    body += STAPLE_SERVER.format(port=p2, cert=fullchain, key=good.key_path, ca=pki.ca.cert_path,
                                 responder=f"http://127.0.0.1:{presigned_env.server.port}/ocsp/")
    n = nginx(body)
    assert O.wait_port(p2)
    for port in (n.port, p2):
        s_client_status(port)  # nginx fetches the staple lazily
    deadline = time.monotonic() + 8
    outs = {}
    while time.monotonic() < deadline:
        outs = {port: s_client_status(port) for port in (n.port, p2)}
        if all("Cert Status: good" in o for o in outs.values()):
            break
        time.sleep(0.5)
    for port, out in outs.items():
        assert "OCSP Response Status: successful" in out, (
            f"nginx on {port} stapled nothing:\n{out}\n--- nginx error.log:\n{n.error_log()}")
        assert "Cert Status: good" in out, out
    assert "OCSP Response Status: successful" in outs[n.port]
    assert re.search(r"Responder Id: .*", outs[n.port])
    err = n.error_log()
    assert "OCSP response not successful" not in err and "certificate status" not in err, err


def test_nginx_client_certificate_ocsp(peer_env, nginx, tmp_path):
    """nginx `ssl_ocsp on` checks client certificates with our responder: the good one is
    accepted, the revoked one refused."""
    e, pki = peer_env, peer_env.pki
    srv = pki.leaf(pki.GOOD)
    body = f"""
    server {{
        listen 127.0.0.1:@PORT@ ssl;
        ssl_certificate {srv.pem_path};
        ssl_certificate_key {srv.key_path};
        ssl_client_certificate {pki.ca.cert_path};
        ssl_verify_client optional;
        ssl_ocsp on;
        ssl_ocsp_responder {e.url};
        location / {{ return 200 "verify=$ssl_client_verify\\n"; }}
    }}
"""
    n = nginx(body)

    def ask(lf):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(str(lf.pem_path), str(lf.key_path))
        with socket.create_connection(("127.0.0.1", n.port), timeout=10) as raw:
            with ctx.wrap_socket(raw) as tls:
                tls.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                data = b""
                while True:
                    try:
                        d = tls.recv(65536)
                    except (ssl.SSLError, ConnectionResetError):
                        break
                    if not d:
                        break
                    data += d
        return data.decode(errors="replace")

    out = ask(e.good)
    assert "verify=SUCCESS" in out, f"{out}\n--- error.log:\n{n.error_log()}"
    out = ask(e.rev)
    assert "verify=SUCCESS" not in out and " 400 " in out.split("\r\n")[0], out
    assert "certificate revoked" in n.error_log(), n.error_log()


def test_nginx_proxy_cache(presigned_env, serve, nginx):
    """nginx proxy_cache honours our Cache-Control: the second GET is a HIT and never
    reaches the responder; with --max-age 2 the entry expires (EXPIRED), and with
    proxy_cache_revalidate nginx revalidates with If-None-Match (REVALIDATED, a 304)."""
    pki = presigned_env.pki
    up = serve(presigned_env.revo, "--max-age", "2")
    body = f"""
    proxy_cache_path @DIR@/cache levels=1:2 keys_zone=ocsp:1m max_size=10m inactive=10m;
    server {{
        listen 127.0.0.1:@PORT@;
        location / {{
            proxy_pass http://127.0.0.1:{up.port};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache ocsp;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
        location /reval/ {{
            proxy_pass http://127.0.0.1:{up.port};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache ocsp;
            proxy_cache_revalidate on;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
"""
    n = nginx(body)
    req = O.crypto_request(pki.leaf(pki.GOOD).cert, pki.ca.cert)
    direct = up.ocsp_get(req).body
    paths = {"plain": "/" + O.b64url_path(req), "reval": "/reval/" + O.b64url_path(req)}

    def via(path):
        r = O.http_request(n.port, "GET", path)
        assert r.status == 200, f"{r}\n{n.error_log()}"
        assert r.body == direct, "nginx served other bytes than the responder"
        return r.header("x-cache-status")

    def upstream(outcome):
        return O.metric(up.metrics(), "revo_ocsp_requests_total", method="GET", outcome=outcome)

    base = upstream("presigned")
    base_nm = upstream("not_modified")
    assert [via(paths["plain"]), via(paths["plain"])] == ["MISS", "HIT"]
    assert [via(paths["reval"]), via(paths["reval"])] == ["MISS", "HIT"]
    assert upstream("presigned") - base == 2, "a cache HIT must not reach the responder"
    time.sleep(3.2)
    assert via(paths["plain"]) in ("EXPIRED", "MISS")
    assert via(paths["plain"]) == "HIT"
    assert via(paths["reval"]) == "REVALIDATED", n.error_log()
    assert upstream("presigned") - base == 3
    assert upstream("not_modified") - base_nm == 1, "revalidation must be answered 304"
