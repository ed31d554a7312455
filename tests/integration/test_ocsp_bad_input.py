"""Broken and hostile input against `revo ocsp serve`, over raw sockets: bad DER, bad
base64 and escapes, oversize bodies, heads and URLs, wrong methods and content types,
bad nonces, foreign issuers, pipelining, half-closed connections, HTTP/1.0, slow
clients. The responder answers per RFC or closes the connection, never crashes, and
after each test still serves a good request; at teardown it exits 0 on SIGTERM with no
sanitizer report (ASan build).
"""

import os
import random
import socket
import threading
import time

import ocsp_helpers as O
import pytest
import revohelp as H
from conftest import Revo
from cryptography.x509 import ocsp
from ocsp_helpers import ocsp_pki, serve  # noqa: F401 (fixtures)

GOOD = ocsp.OCSPCertStatus.GOOD
REVOKED = ocsp.OCSPCertStatus.REVOKED


class BadEnv:
    pass


@pytest.fixture(scope="module")
def bad_env(revo_bin, ocsp_pki, tmp_path_factory):
    pki = ocsp_pki
    d = tmp_path_factory.mktemp("bad")
    revo = Revo(revo_bin, d / "store")
    O.setup_store(revo, pki, delegated=True, leaves=[pki.leaf(pki.GOOD), pki.leaf(pki.REV)])
    s = O.Server(revo, ["--listen", "127.0.0.1:0", "--threads", "2", "--read-timeout", "2",
                        "--idle-timeout", "3"], d / "serve")
    e = BadEnv()
    e.pki, e.revo, e.server, e.port = pki, revo, s, s.port
    e.good_req = O.crypto_request(pki.leaf(pki.GOOD).cert, pki.ca.cert)
    e.rev_req = O.crypto_request(pki.leaf(pki.REV).cert, pki.ca.cert, "sha256")
    yield e
    s.stop()


@pytest.fixture(autouse=True)
def still_serves(bad_env):
    """Before and after every test: the responder is alive and answers good requests."""
    check_serving(bad_env)
    yield
    check_serving(bad_env)


def check_serving(e):
    s = e.server
    assert s.alive(), f"the responder died:\n{s.stderr()[-4000:]}"
    for body in (s.ocsp_post(e.good_req).body, s.ocsp_get(e.good_req).body):
        one = list(O.load(body).responses)[0]
        assert one.certificate_status == GOOD and one.serial_number == e.pki.GOOD
    r = s.ocsp_post(O.ocsp_request([O.cert_id(e.pki.ca.cert, e.pki.REV)], nonce=b"still-here"))
    assert O.nonce_of(O.load(r.body)) == b"still-here"


def send_all(conn, data):
    try:
        conn.send(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def exchange(port, data, n=1, timeout=5):
    """Send data on a new connection, read up to n responses; (responses, closed)."""
    c = O.RawConn(port)
    try:
        send_all(c, data)
        out = []
        for _ in range(n):
            r = c.read_response(timeout=timeout)
            if r is None:
                break
            out.append(r)
        closed = c.eof or c.closed_within(0.05)
        return out, closed
    finally:
        c.close()


def post_raw(e, der, **kw):
    rs, _ = exchange(e.port, O.post_bytes("/", der, **kw))
    assert rs, "no answer (connection closed)"
    return rs[0]


def assert_malformed(r, what=""):
    assert r.status == 200, f"{what}: HTTP {r.status} {r.body[:80]!r}"
    assert r.body == O.error_response(O.MALFORMED), f"{what}: expected malformedRequest, got {r.body[:40].hex()}"


def assert_ocsp_or_4xx(r, allowed=(O.MALFORMED,), http=(400, 404), what=""):
    if r.status == 200:
        st = O.status_of(r.body)
        assert st in allowed, f"{what}: OCSP status {O.STATUS_NAMES.get(st, st)}"
    else:
        assert r.status in http, f"{what}: HTTP {r.status}"


# ---------------------------------------------------------------- DER


def test_truncated_der(bad_env):
    e = bad_env
    req = O.ocsp_request([O.cert_id(e.pki.ca.cert, e.pki.GOOD), O.cert_id(e.pki.ca.cert, e.pki.REV, "sha256")],
                         nonce=b"0123456789abcdef")
    c = O.RawConn(e.port)
    try:
        for n in range(1, len(req)):
            assert send_all(c, O.post_bytes("/", req[:n])), f"connection dropped at prefix {n}"
            r = c.read_response()
            assert r is not None, f"no answer to a {n}-octet prefix"
            assert_malformed(r, f"prefix of {n} of {len(req)} octets")
        send_all(c, O.post_bytes("/", req))
        resp = O.load(c.read_response().body)
        assert [x.serial_number for x in resp.responses] == [e.pki.GOOD, e.pki.REV]
        # trailing garbage after a valid request is not DER of an OCSPRequest
        send_all(c, O.post_bytes("/", e.good_req + b"\x00\x00"))
        assert_malformed(c.read_response(), "trailing octets")
    finally:
        c.close()
    # an empty body
    r = post_raw(e, b"")
    assert_ocsp_or_4xx(r, http=(400, 411), what="empty body")


def test_garbage_der(bad_env):
    e = bad_env
    rnd = random.Random(4)
    c = O.RawConn(e.port)
    try:
        for i in range(150):
            blob = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300)))
            if i % 3 == 0:
                blob = b"\x30" + bytes([len(blob) & 0x7F]) + blob
            send_all(c, O.post_bytes("/", blob))
            r = c.read_response()
            assert r is not None, f"no answer to garbage #{i}: {blob[:32].hex()}"
            assert_malformed(r, f"garbage #{i} {blob[:32].hex()}")
        # every single-octet corruption of a valid request: a well-formed answer each time
        req = e.good_req
        for pos in range(len(req)):
            for mask in (0x01, 0x80):
                b = bytearray(req)
                b[pos] ^= mask
                send_all(c, O.post_bytes("/", bytes(b)))
                r = c.read_response()
                assert r is not None and r.status == 200, f"corruption at {pos}^{mask:#x}: {r}"
                st = O.status_of(r.body)
                assert st in (O.SUCCESSFUL, O.MALFORMED, O.UNAUTHORIZED), (pos, mask, st)
                if st == O.SUCCESSFUL:
                    assert len(list(O.load(r.body).responses)) == 1
    finally:
        c.close()


def test_der_of_another_type(bad_env, tmp_path):
    e, pki = bad_env, bad_env.pki
    crl = H.make_crl(pki.ca, [(0x99, H.now(), "keyCompromise", None)])
    a_response = e.server.ocsp_post(e.good_req).body
    tbs_only = O.seq(O.seq_raw(O.seq(O.cert_id(pki.ca.cert, pki.GOOD))))  # a TBSRequest alone
    cases = {
        "certificate": pki.leaf(pki.GOOD).der,
        "CA certificate": pki.ca.cert_der_path.read_bytes(),
        "CRL": crl,
        "OCSP response": a_response,
        "empty SEQUENCE": b"\x30\x00",
        "TBSRequest without requestList": O.seq(O.seq()),
        "empty requestList": O.seq(O.seq(O.seq_raw(b""))),
        "a bare TBSRequest": tbs_only,
        "INTEGER": b"\x02\x01\x05",
        "CertID without serial": O.ocsp_request([O.seq(O.alg_id("sha1"), O.octets(b"\x00" * 20),
                                                       O.octets(b"\x00" * 20))]),
        "request with an unknown critical extension": O.seq(O.seq(
            O.seq_raw(O.seq(O.cert_id(pki.ca.cert, pki.GOOD))),
            O.explicit(2, O.seq(O.seq(O.oid("1.2.3.4.5"), b"\x01\x01\xff", O.octets(b"\x05\x00")))))),
    }
    for what, der in cases.items():
        r = post_raw(e, der)
        if what == "request with an unknown critical extension":
            # RFC 6960 4.4: a responder may ignore request extensions it does not know, or refuse
            assert r.status == 200 and O.status_of(r.body) in (O.SUCCESSFUL, O.MALFORMED), what
            continue
        assert_malformed(r, what)


def test_huge_and_odd_lengths(bad_env):
    e, pki = bad_env, bad_env.pki
    cid = O.cert_id(pki.ca.cert, pki.GOOD)
    cases = {
        "4-octet length": b"\x30\x84\xff\xff\xff\xff" + e.good_req[2:],
        "8-octet length": b"\x30\x88" + b"\xff" * 8 + e.good_req[2:],
        "9-octet length": b"\x30\x89" + b"\xff" * 9 + e.good_req[2:],
        "127 length octets": b"\x30\xff" + b"\xff" * 127,
        "indefinite length (BER)": b"\x30\x80" + e.good_req[2:] + b"\x00\x00",
        "non-minimal length": b"\x30\x81" + bytes([len(e.good_req) - 2]) + e.good_req[2:],
        "inner OCTET STRING 2^31": O.ocsp_request([O.seq(O.alg_id("sha1"), b"\x04\x84\x7f\xff\xff\xff")]),
        "inner length past the end": O.seq(O.seq(O.seq_raw(b"\x30\x50" + cid))),
        "0x80 length octets count 0": b"\x30\x80",
        "tag only": b"\x30",
        "high tag number": b"\x3f\x81\x80\x80\x80\x80\x00\x00",
    }
    for what, der in cases.items():
        assert_malformed(post_raw(e, der), what)
    # serials the DER allows but RFC 5280 does not: an answer, never a crash
    nh, kh = O.issuer_hash_bytes(pki.ca.cert, "sha1")
    for what, serial_der in {
        "21-octet serial": O.tlv(0x02, b"\x01" + b"\x22" * 20),
        "zero serial": O.integer(0),
        "negative serial": O.integer(-5),
        "empty INTEGER": b"\x02\x00",
        "1000-octet serial": O.tlv(0x02, b"\x01" * 1000),
    }.items():
        req = O.ocsp_request([O.seq(O.alg_id("sha1"), O.octets(nh), O.octets(kh), serial_der)])
        r = post_raw(e, req)
        assert r.status == 200, (what, r)
        st = O.status_of(r.body)
        assert st in (O.MALFORMED, O.SUCCESSFUL, O.UNAUTHORIZED), (what, st)
        if st == O.SUCCESSFUL:
            one = list(O.load(r.body).responses)[0]
            assert one.certificate_status == ocsp.OCSPCertStatus.UNKNOWN, (what, one.certificate_status)
    # hashes of the wrong length, an unknown or unsupported hash algorithm
    for what, c2 in {
        "19-octet name hash": O.seq(O.alg_id("sha1"), O.octets(nh[:19]), O.octets(kh), O.integer(pki.GOOD)),
        "empty hashes": O.seq(O.alg_id("sha1"), O.octets(b""), O.octets(b""), O.integer(pki.GOOD)),
        "sha512": O.seq(O.alg_id("2.16.840.1.101.3.4.2.3"), O.octets(b"\x01" * 64), O.octets(b"\x02" * 64),
                        O.integer(pki.GOOD)),
        "md5": O.seq(O.alg_id("1.2.840.113549.2.5"), O.octets(b"\x01" * 16), O.octets(b"\x02" * 16),
                     O.integer(pki.GOOD)),
    }.items():
        r = post_raw(e, O.ocsp_request([c2]))
        assert r.status == 200 and O.status_of(r.body) in (O.MALFORMED, O.UNAUTHORIZED), (what, r)


def test_too_many_certids(bad_env):
    e, pki = bad_env, bad_env.pki
    for n in (17, 64, 65, 200):
        req = O.ocsp_request([O.cert_id(pki.ca.cert, pki.GOOD + i) for i in range(n)])
        assert len(req) <= 16384
        assert_malformed(post_raw(e, req), f"{n} CertIDs (--max-certids 16)")
    # 1000 CertIDs cannot fit in --max-body (16384): 413
    req = O.ocsp_request([O.cert_id(pki.ca.cert, pki.GOOD + i) for i in range(1000)])
    c = O.RawConn(e.port)
    try:
        send_all(c, O.post_bytes("/", req)[: -len(req)])
        r = c.read_response(timeout=3)
        if r is None and not c.eof:
            send_all(c, req)
            r = c.read_response(timeout=5)
        assert r is not None, "no answer to a 1000-CertID request"
        if r.status == 200:
            assert_malformed(r, "1000 CertIDs")
        else:
            assert r.status == 413, r
    finally:
        c.close()
    # and as a GET: the URL is far over 8 KB
    rs, closed = exchange(e.port, O.get_bytes("/" + O.b64url_path(req)))
    assert (rs and 400 <= rs[0].status < 500) or (not rs and closed), rs


def test_nonce_bounds(bad_env):
    e, pki = bad_env, bad_env.pki
    cid = O.cert_id(pki.ca.cert, pki.GOOD)
    for n in (0, 129, 200, 1000):
        req = O.ocsp_request([cid], nonce=os.urandom(n))
        assert_malformed(post_raw(e, req), f"nonce of {n} octets")
        rs, _ = exchange(e.port, O.get_bytes("/" + O.b64url_path(req)))
        assert rs, f"GET nonce of {n}: no answer"
        assert_malformed(rs[0], f"GET nonce of {n} octets")
    for n in (1, 128):
        nonce = os.urandom(n)
        r = post_raw(e, O.ocsp_request([cid], nonce=nonce))
        assert O.nonce_of(O.load(r.body)) == nonce, f"nonce of {n} octets"
    # a nonce extension whose value is not an OCTET STRING
    bad = O.seq(O.oid(O.OID_NONCE), O.octets(b"\x02\x01\x05"))
    r = post_raw(e, O.ocsp_request([cid], extensions=[bad]))
    assert r.status == 200 and O.status_of(r.body) in (O.MALFORMED, O.SUCCESSFUL)


def test_foreign_issuers(bad_env):
    e, pki = bad_env, bad_env.pki
    foreign = O.crypto_request(pki.foreign.cert, pki.ca2.cert)
    nh, _ = O.issuer_hash_bytes(pki.ca.cert, "sha1")
    _, kh = O.issuer_hash_bytes(pki.ca2.cert, "sha1")
    twin = O.ocsp_request([O.seq(O.alg_id("sha1"), O.octets(nh), O.octets(kh), O.integer(pki.GOOD))])
    for what, req in {"foreign CA": foreign, "right name, other key": twin,
                      "foreign with nonce": O.crypto_request(pki.foreign.cert, pki.ca2.cert, nonce=b"xyz")}.items():
        r = post_raw(e, req)
        assert r.status == 200 and r.body == O.error_response(O.UNAUTHORIZED), (what, r)
    # ours first, a foreign one second
    mixed = O.ocsp_request([O.cert_id(pki.ca.cert, pki.GOOD), O.cert_id(pki.ca2.cert, pki.foreign.serial)])
    r = post_raw(e, mixed)
    st = O.status_of(r.body)
    if st == O.SUCCESSFUL:
        got = list(O.load(r.body).responses)
        assert [g.certificate_status for g in got] == [GOOD, ocsp.OCSPCertStatus.UNKNOWN]
    else:
        assert st == O.UNAUTHORIZED


# ---------------------------------------------------------------- HTTP


def test_bad_base64_and_paths(bad_env):
    e = bad_env
    b64 = O.b64_std(e.good_req)
    for path in ("/", "/ocsp/", "/favicon.ico", "/ocsp/!!!!", "/" + b64[:-6] + "!!" + b64[-4:],
                 "/" + b64[:40], "/ocsp/" + b64.replace("M", "*", 1), "/" + "=" * 40, "/%%%",
                 "/" + b64[:-1] + " x"):
        rs, closed = exchange(e.port, O.get_bytes(path.replace(" ", "%20")))
        assert rs, f"GET {path}: no answer"
        assert_ocsp_or_4xx(rs[0], what=f"GET {path}")
    # surplus padding may be tolerated, or refused; either way a well-formed answer
    rs, _ = exchange(e.port, O.get_bytes("/" + b64 + "===="))
    assert rs
    assert_ocsp_or_4xx(rs[0], allowed=(O.MALFORMED, O.SUCCESSFUL), what="surplus padding")


def test_invalid_percent_escapes(bad_env):
    e = bad_env
    b64 = O.b64url_path(e.good_req)
    for path in ("/%ZZ", "/%4", "/%", "/" + b64[:-1] + "%", "/" + b64[:-2] + "%G1", "/%00%00%00",
                 "/%C0%AF", "/ocsp%2F" + b64, "/" + b64.replace("%2F", "%2", 1) + "x"):
        rs, closed = exchange(e.port, O.get_bytes(path))
        assert rs, f"GET {path[:60]}: no answer"
        assert_ocsp_or_4xx(rs[0], allowed=(O.MALFORMED, O.SUCCESSFUL), what=f"GET {path[:60]}")


def test_overlong_url(bad_env):
    e = bad_env
    for n in (9000, 70000, 1 << 20):
        c = O.RawConn(e.port)
        try:
            ok = send_all(c, O.get_bytes("/" + "A" * n))
            r = c.read_response(timeout=5)
            if r is not None:
                assert 400 <= r.status < 500, f"URL of {n}: HTTP {r.status}"
                assert r.status in (400, 414, 431), r.status
            else:
                assert c.eof or not ok, f"URL of {n}: neither an answer nor a close"
        finally:
            c.close()


def test_content_types(bad_env):
    e = bad_env
    for ctype in ("text/plain", "application/ocsp-response", "application/octet-stream", "", None,
                  "application/ocsp-requestx"):
        rs, _ = exchange(e.port, O.post_bytes("/", e.good_req, ctype=ctype))
        assert rs and rs[0].status == 415, f"Content-Type {ctype!r}: {rs}"
    # media types are case-insensitive and may carry parameters (RFC 9110 8.3.1)
    for ctype in ("Application/OCSP-Request", "application/ocsp-request; charset=binary"):
        rs, _ = exchange(e.port, O.post_bytes("/", e.good_req, ctype=ctype))
        assert rs and rs[0].status == 200 and O.status_of(rs[0].body) == O.SUCCESSFUL, (
            f"Content-Type {ctype!r}: {rs}")


def test_post_without_length(bad_env):
    e = bad_env
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n\r\n"
    c = O.RawConn(e.port)
    try:
        send_all(c, head)
        r = c.read_response(timeout=5)
        assert r is not None and r.status == 411, r
    finally:
        c.close()


def test_chunked_post_is_not_smuggled(bad_env):
    """Transfer-Encoding: chunked: answered properly, or refused and the connection closed
    (the chunk data must never be read as a request of its own)."""
    e = bad_env
    inner = O.get_bytes("/healthz")
    body = inner + e.good_req
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    head = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    c = O.RawConn(e.port)
    try:
        send_all(c, head + chunked)
        r = c.read_response(timeout=5)
        assert r is not None, "no answer to a chunked POST"
        assert r.status != 200 or r.header("content-type") == O.OCSP_RESP_CT
        assert 400 <= r.status < 600 or O.status_of(r.body) == O.MALFORMED, r
        assert c.closed_within(3), "after refusing a chunked body the connection must be closed"
        assert b"presigned_responses" not in c.buf
    finally:
        c.close()
    # Content-Length and Transfer-Encoding together (RFC 9112 6.3: smuggling)
    head2 = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
             b"Content-Length: " + str(len(chunked)).encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
    rs, closed = exchange(e.port, head2 + chunked + O.get_bytes("/healthz"), n=2, timeout=3)
    assert rs and 400 <= rs[0].status < 500 and closed and len(rs) == 1, rs


def test_bad_content_length(bad_env):
    e = bad_env
    for cl in ("abc", "-1", "12abc", "1, 2", "0x10", "99999999999999999999999"):
        data = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
                b"Content-Length: " + cl.encode() + b"\r\n\r\n" + e.good_req)
        rs, closed = exchange(e.port, data, n=2, timeout=3)
        assert rs and rs[0].status in (400, 411, 413), f"Content-Length {cl!r}: {rs}"
        assert closed, f"Content-Length {cl!r}: connection must be closed after the error"
    # two different Content-Length headers
    data = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
            b"Content-Length: 5\r\nContent-Length: " + str(len(e.good_req)).encode() + b"\r\n\r\n" + e.good_req)
    rs, closed = exchange(e.port, data, n=2, timeout=3)
    assert rs and rs[0].status == 400 and closed, rs


def test_body_too_large(bad_env):
    e = bad_env
    for cl in (16385, 20000, 10 ** 12):
        c = O.RawConn(e.port)
        try:
            send_all(c, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
                        b"Content-Length: " + str(cl).encode() + b"\r\n\r\n")
            r = c.read_response(timeout=3)
            if r is None and not c.eof and cl < 10 ** 6:
                send_all(c, b"\x30" * cl)
                r = c.read_response(timeout=5)
            assert r is not None and r.status == 413, f"Content-Length {cl}: {r}"
        finally:
            c.close()
    # exactly --max-body is accepted (and is garbage: malformedRequest)
    body = b"\x30\x82\x3f\xfc" + b"\x00" * (16384 - 4)
    r = post_raw(e, body)
    assert_malformed(r, "16384-octet body")


def test_head_too_large(bad_env):
    e = bad_env
    for what, extra in (("one 9000-octet header", "X-Big: " + "a" * 9000 + "\r\n"),
                        ("300 headers", "".join(f"X-H{i}: {'b' * 30}\r\n" for i in range(300)))):
        c = O.RawConn(e.port)
        try:
            ok = send_all(c, O.get_bytes("/" + O.b64url_path(e.good_req), extra=extra))
            r = c.read_response(timeout=5)
            assert r is not None, f"{what}: no 431 (sent: {ok}, closed: {c.eof})"
            assert r.status == 431, f"{what}: HTTP {r.status}"
        finally:
            c.close()
    # just under the limit is fine
    rs, _ = exchange(e.port, O.get_bytes("/" + O.b64url_path(e.good_req), extra="X-Pad: " + "c" * 7000 + "\r\n"))
    assert rs and rs[0].status == 200 and O.status_of(rs[0].body) == O.SUCCESSFUL


def test_methods(bad_env):
    e = bad_env
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
        data = f"{method} / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
        rs, _ = exchange(e.port, data)
        assert rs and rs[0].status == 405, f"{method}: {rs}"
        allow = {m.strip() for m in (rs[0].header("allow") or "").split(",")}
        assert {"GET", "POST"} <= allow, f"{method}: 405 must list the allowed methods: {rs[0].headers}"
    for data in (b"FOO@ / HTTP/1.1\r\n\r\n", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", b"GET /\r\n\r\n",
                 b"\x00\x01\x02\x03\r\n\r\n", b"GET / HTTP/1.1 extra\r\n\r\n", b"GET  HTTP/1.1\r\n\r\n",
                 b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", b"GET / HTTP/1.1\r\n : x\r\n\r\n",
                 b"GET / HTTP/1.1\nHost: x\n\n"):
        rs, closed = exchange(e.port, data, timeout=3)
        assert (rs and rs[0].status in (400, 404, 405, 501, 505)) or (not rs and closed), (data, rs)


def test_pipelined(bad_env):
    e = bad_env
    three = (O.post_bytes("/", e.good_req) + O.get_bytes("/ocsp/" + O.b64url_path(e.rev_req))
             + O.get_bytes("/healthz"))
    c = O.RawConn(e.port)
    try:
        send_all(c, three)
        a, b, h = (c.read_response() for _ in range(3))
        assert a and b and h, (a, b, h)
        assert list(O.load(a.body).responses)[0].certificate_status == GOOD
        one = list(O.load(b.body).responses)[0]
        assert one.certificate_status == REVOKED and one.serial_number == e.pki.REV
        assert h.status == 200 and b"presigned_responses" in h.body
        # 30 more in one send, alternating, with a nonce request in the middle
        batch = []
        for i in range(30):
            if i == 15:
                batch.append(O.post_bytes("/", O.ocsp_request([O.cert_id(e.pki.ca.cert, e.pki.GOOD)],
                                                                 nonce=b"pipelined")))
            else:
                batch.append(O.get_bytes("/" + O.b64url_path(e.good_req if i % 2 == 0 else e.rev_req)))
        send_all(c, b"".join(batch))
        for i in range(30):
            r = c.read_response()
            assert r is not None, f"pipelined answer {i} missing"
            resp = O.load(r.body)
            if i == 15:
                assert O.nonce_of(resp) == b"pipelined"
            else:
                want = e.pki.GOOD if i % 2 == 0 else e.pki.REV
                assert list(resp.responses)[0].serial_number == want, f"answer {i} out of order"
    finally:
        c.close()


def test_half_closed(bad_env):
    e = bad_env
    for data in (O.post_bytes("/", e.good_req), O.get_bytes("/" + O.b64url_path(e.rev_req)),
                 O.post_bytes("/", e.good_req) + O.get_bytes("/" + O.b64url_path(e.rev_req))):
        c = O.RawConn(e.port)
        try:
            send_all(c, data)
            c.sock.shutdown(socket.SHUT_WR)
            n = data.count(b"HTTP/1.1\r\n")
            for _ in range(n):
                r = c.read_response(timeout=5)
                assert r is not None and r.status == 200 and O.status_of(r.body) == O.SUCCESSFUL, r
            assert c.closed_within(5), "after the answers to a half-closed connection, close it"
        finally:
            c.close()


def test_http10(bad_env):
    e = bad_env
    path = "/" + O.b64url_path(e.good_req)
    c = O.RawConn(e.port)
    try:
        send_all(c, O.get_bytes(path, version="HTTP/1.0"))
        r = c.read_response()
        assert r is not None and r.status == 200, r
        assert (r.header("connection") or "").lower() == "close", f"HTTP/1.0 answer: {r.headers}"
        assert c.closed_within(3), "HTTP/1.0 without keep-alive: the connection must be closed"
    finally:
        c.close()
    c = O.RawConn(e.port)
    try:
        for _ in range(3):
            send_all(c, O.get_bytes(path, version="HTTP/1.0", extra="Connection: keep-alive\r\n"))
            r = c.read_response()
            assert r is not None and r.status == 200, r
            assert (r.header("connection") or "").lower() == "keep-alive", r.headers
    finally:
        c.close()
    # HTTP/1.1 with Connection: close
    c = O.RawConn(e.port)
    try:
        send_all(c, O.get_bytes(path, extra="Connection: close\r\n"))
        r = c.read_response()
        assert r is not None and r.status == 200
        assert c.closed_within(3)
    finally:
        c.close()


def test_slow_loris_and_idle(bad_env):
    """--read-timeout 2: a client sending one byte a second is cut off within about 4 s,
    an idle keep-alive connection within --idle-timeout 3 (+1), while others are served
    fast the whole time."""
    e = bad_env
    data = O.get_bytes("/" + O.b64url_path(e.good_req))
    slow = O.RawConn(e.port)
    idle = O.RawConn(e.port)
    silent = O.RawConn(e.port)
    t0 = time.monotonic()
    send_all(idle, O.get_bytes("/healthz"))
    assert idle.read_response() is not None
    result = {}

    def loris():
        i = 0
        while i < len(data):
            if not send_all(slow, data[i:i + 1]):
                break
            i += 1
            if slow.closed_within(1.0):
                break
        result["closed_after"] = time.monotonic() - t0
        result["eof"] = slow.eof

    th = threading.Thread(target=loris)
    th.start()
    worst = 0.0
    while th.is_alive() and time.monotonic() - t0 < 8:
        t = time.monotonic()
        r = O.http_request(e.port, "POST", "/", e.good_req, ctype=O.OCSP_REQ_CT, timeout=5)
        worst = max(worst, time.monotonic() - t)
        assert r.status == 200 and O.status_of(r.body) == O.SUCCESSFUL
        time.sleep(0.2)
    th.join(10)
    idle_closed = idle.closed_within(max(0.1, 5.0 - (time.monotonic() - t0)))
    silent_closed = silent.closed_within(0.1)
    for c in (slow, idle, silent):
        c.close()
    assert result.get("eof"), "the slow client was never disconnected"
    assert 1.5 <= result["closed_after"] <= 4.5, f"slow client cut off after {result['closed_after']:.1f} s"
    assert worst < 1.0, f"another client waited {worst:.2f} s while the slow one was connected"
    assert idle_closed, "an idle keep-alive connection outlived --idle-timeout 3"
    assert silent_closed, "a connection that never sent anything outlived the timeouts"


def test_many_connections(bad_env):
    e = bad_env
    conns = [O.RawConn(e.port) for _ in range(200)]
    try:
        for i, c in enumerate(conns):
            send_all(c, O.post_bytes("/", e.good_req if i % 2 else e.rev_req))
        for i, c in enumerate(conns):
            r = c.read_response()
            assert r is not None and O.status_of(r.body) == O.SUCCESSFUL, i
    finally:
        for c in conns:
            c.close()
    # connections that vanish mid-request (reset) do not hurt
    for i in range(50):
        s = socket.create_connection(("127.0.0.1", e.port))
        s.sendall(O.post_bytes("/", e.good_req)[: 10 + i])
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()


def test_max_conns(revo, ocsp_pki, serve):
    """--max-conns per worker: extra connections are not served while the limit is held,
    and service resumes once connections go away."""
    O.setup_store(revo, ocsp_pki, leaves=[ocsp_pki.leaf(ocsp_pki.GOOD)])
    s = serve(revo, "--max-conns", "4", threads=1)
    req = O.crypto_request(ocsp_pki.leaf(ocsp_pki.GOOD).cert, ocsp_pki.ca.cert)
    held = [O.RawConn(s.port) for _ in range(4)]
    try:
        for c in held:  # make sure each is accepted and counted
            send_all(c, O.get_bytes("/healthz"))
            assert c.read_response() is not None
        extra = O.RawConn(s.port)
        send_all(extra, O.post_bytes("/", req))
        r = extra.read_response(timeout=1.5)
        assert r is None or r.status == 503, f"a 5th connection was served over --max-conns 4: {r}"
        for c in held:
            c.close()
        held = []
        # the waiting or refused client is served, or a new one is, once capacity frees
        if r is None and not extra.eof:
            r = extra.read_response(timeout=3)
            assert r is not None and O.status_of(r.body) == O.SUCCESSFUL, r
        extra.close()

        def served():
            try:
                return O.status_of(s.post(req, timeout=2).body) == O.SUCCESSFUL
            except OSError:  # the worker may not have seen the closes yet
                return False
        deadline = time.monotonic() + 3
        while not served():
            assert time.monotonic() < deadline, "not served again after the connections went away"
            time.sleep(0.05)
    finally:
        for c in held:
            c.close()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_client_that_never_reads(revo, ocsp_pki, serve):
    """A client pipelining requests without reading the answers must not make the
    responder buffer answers without bound (it stops reading that connection once its
    output backs up): memory stays bounded and other clients are served."""
    O.setup_store(revo, ocsp_pki, leaves=[ocsp_pki.leaf(ocsp_pki.GOOD)])
    s = serve(revo)
    req = O.crypto_request(ocsp_pki.leaf(ocsp_pki.GOOD).cert, ocsp_pki.ca.cert)
    assert O.status_of(s.ocsp_post(req).body) == O.SUCCESSFUL
    base = rss_kb(s.proc.pid)
    limit_kb = 96 * 1024
    hog = socket.create_connection(("127.0.0.1", s.port))
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.settimeout(0.5)
    chunk = O.get_bytes("/" + O.b64url_path(req)) * 1000
    sent, grew = 0, 0
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < 2.0:
            try:
                hog.sendall(chunk)
            except socket.timeout:
                break  # the responder stopped reading: back-pressure works
            sent += 1000
            grew = rss_kb(s.proc.pid) - base
            if grew > limit_kb:
                break
        t = time.monotonic()
        r = s.ocsp_post(req)
        other = time.monotonic() - t
        assert O.status_of(r.body) == O.SUCCESSFUL
    finally:
        hog.close()
    assert grew <= limit_kb, (
        f"{sent} pipelined requests never read grew the responder by {grew // 1024} MiB "
        f"(unbounded output buffering)")
    assert other < 1.0, f"another client waited {other:.2f} s"
