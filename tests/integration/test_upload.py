"""`revo upload FILE URL` against real peers: Ceph radosgw (strict SigV4), the Roles
Anywhere fake (botocore's model and signer), a file and a plain HTTP PUT server. The
credentials sources (environment, shared credentials and config files with --profile,
credential_process) and the rule that secrets never show anywhere.

Objects are read back with botocore, CRLs parsed with python-cryptography; every test
runs once per binary (plain, asan).
"""

import base64
import hashlib
import os
import pathlib
import re
import stat
import time
import urllib.error
import urllib.request
import uuid

import publish_helpers as P
import pytest
import revohelp as H
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from publish_helpers import (  # noqa: F401 (fixtures)
    http_store,
    publisher,
    ra_fake,
    radosgw,
    s3_proxy,
    s3key,
)

ENV = P.aws_env()


def upload(revo, path, url, *args, expect=0, env=ENV, json=True):
    return revo("upload", path, url, *args, expect=expect, env=env, json=json and expect == 0)


def s3args(rgw, endpoint=None):
    return ["--endpoint", endpoint or rgw.endpoint, "--region", "us-east-1"]


# ---------------------------------------------------------------- S3 (radosgw)


def test_s3_upload_stores_the_der_with_metadata(revo, ca1, radosgw, s3key, tmp_path):
    der = P.make_crl_file(ca1, tmp_path / "c.crl", 5, [0x1001, 0x1002])
    j = upload(revo, tmp_path / "c.crl", radosgw.url(s3key), *s3args(radosgw))
    assert radosgw.get(s3key) == der, "the object is not the CRL's DER"
    h = radosgw.head(s3key)
    assert h["ContentType"] == "application/pkix-crl", h
    assert h["Metadata"].get("revo-crl-number") == "5", f"x-amz-meta-revo-crl-number: {h['Metadata']}"
    cc = h.get("CacheControl") or ""
    m = re.search(r"max-age=(\d+)", cc)
    assert m and 0 <= int(m.group(1)) <= 300, f"Cache-Control {cc!r}: max-age must be at most 300 s"
    assert j["sha256"] == hashlib.sha256(der).hexdigest(), j
    assert j["previous_crl_number"] is None, j
    assert j["etag"] and j["etag"].strip('"') == h["ETag"].strip('"'), (j, h["ETag"])


def test_s3_request_headers(revo, ca1, radosgw, s3_proxy, s3key, tmp_path):
    """What goes over the wire (seen by a proxy in front of radosgw, which checks the
    signature): HEAD (nothing there), PUT with the documented headers, GET read-back."""
    s3_proxy.refuse_acl = False
    der = P.make_crl_file(ca1, tmp_path / "c.crl", 11, [0x1001])
    upload(revo, tmp_path / "c.crl", radosgw.url(s3key), "--endpoint", s3_proxy.endpoint, "--region", "us-east-1")
    seq = [(m, st) for m, _, _, _, st in s3_proxy.log]
    assert seq == [("HEAD", 404), ("PUT", 200), ("GET", 200)], seq
    _, path, headers, body, _ = s3_proxy.log[1]
    assert path == f"/{radosgw.BUCKET}/{s3key}", path
    hd = {}
    for k, v in headers:
        hd.setdefault(k.lower(), []).append(v)
    one = {k: v[0] for k, v in hd.items()}
    assert all(len(v) == 1 for v in hd.values()), f"a header sent twice: {hd}"
    assert body == der
    assert one["content-type"] == "application/pkix-crl"
    assert one["x-amz-content-sha256"] == hashlib.sha256(der).hexdigest()
    assert one["x-amz-checksum-sha256"] == base64.b64encode(hashlib.sha256(der).digest()).decode()
    assert one["x-amz-meta-revo-crl-number"] == "11"
    assert re.search(r"max-age=\d+", one.get("cache-control", "")), one.get("cache-control")
    assert "expires" in one, "an Expires header from nextUpdate is documented"
    assert "x-amz-acl" not in one
    assert re.match(r"AWS4-HMAC-SHA256 Credential=" + P.AK + r"/\d{8}/us-east-1/s3/aws4_request,", one["authorization"]), one["authorization"]
    signed = re.search(r"SignedHeaders=([^,]+)", one["authorization"]).group(1).split(";")
    assert {"host", "x-amz-content-sha256", "x-amz-date"} <= set(signed), signed
    assert "expect" not in one, "no Expect header (libcurl pitfall)"


def test_s3_upload_pem_input_sends_der(revo, ca1, radosgw, s3key, tmp_path):
    pem = P.make_crl_file(ca1, tmp_path / "c.pem", 3, [0x77], pem=True)
    upload(revo, tmp_path / "c.pem", radosgw.url(s3key), *s3args(radosgw))
    got = radosgw.get(s3key)
    assert got == x509.load_pem_x509_crl(pem).public_bytes(serialization.Encoding.DER), (
        "a PEM file must reach S3 as DER")


def test_s3_newer_crl_replaces_older(revo, ca1, radosgw, s3key, tmp_path):
    P.make_crl_file(ca1, tmp_path / "a.crl", 5, [1])
    der7 = P.make_crl_file(ca1, tmp_path / "b.crl", 7, [1, 2])
    upload(revo, tmp_path / "a.crl", radosgw.url(s3key), *s3args(radosgw))
    j = upload(revo, tmp_path / "b.crl", radosgw.url(s3key), *s3args(radosgw))
    assert j["previous_crl_number"] == 5, j
    assert radosgw.get(s3key) == der7


def test_s3_older_crl_refused_target_untouched(revo, ca1, radosgw, s3key, tmp_path):
    der9 = P.make_crl_file(ca1, tmp_path / "new.crl", 9, [1, 2, 3])
    P.make_crl_file(ca1, tmp_path / "old.crl", 4, [1])
    upload(revo, tmp_path / "new.crl", radosgw.url(s3key), *s3args(radosgw))
    before = radosgw.head(s3key)
    err = revo.fail("upload", tmp_path / "old.crl", radosgw.url(s3key), *s3args(radosgw), env=ENV)
    assert "9" in err and "4" in err, f"the error should name both CRL numbers: {err}"
    after = radosgw.head(s3key)
    assert radosgw.get(s3key) == der9, "an older CRL replaced a newer one"
    assert after["ETag"] == before["ETag"] and after["LastModified"] == before["LastModified"], (
        "the object was rewritten")


def test_s3_older_crl_refused_without_revo_metadata(revo, ca1, radosgw, s3key, tmp_path):
    """An object put there by someone else (no x-amz-meta-revo-crl-number): revo reads
    the CRL itself to find its number."""
    der9 = P.make_crl_file(ca1, tmp_path / "new.crl", 9, [1])
    radosgw.put(s3key, der9, ContentType="application/pkix-crl")
    P.make_crl_file(ca1, tmp_path / "old.crl", 8, [1])
    revo.fail("upload", tmp_path / "old.crl", radosgw.url(s3key), *s3args(radosgw), env=ENV)
    assert radosgw.get(s3key) == der9


@pytest.mark.parametrize("which", ["wrong-secret", "unknown-key"])
def test_s3_bad_credentials(revo, ca1, radosgw, s3key, tmp_path, which):
    P.make_crl_file(ca1, tmp_path / "c.crl", 1)
    env = P.aws_env(sk="not-the-secret-0123456789") if which == "wrong-secret" else P.aws_env(
        ak="AKNOBODYKNOWSTHIS001")
    p = revo.raw("upload", tmp_path / "c.crl", radosgw.url(s3key), *s3args(radosgw), env=env)
    assert p.returncode == 1, f"exit {p.returncode}: {p.stderr}"
    line = p.stderr.strip()
    assert "\n" not in line and line.startswith("revo: "), p.stderr
    assert re.search(r"credential", line.replace(radosgw.url(s3key), ""), re.I), (
        f"a signature/key rejected by S3 must say the credentials are wrong: {line}")
    assert "not-the-secret" not in p.stderr + p.stdout
    assert radosgw.get(s3key) is None


def test_s3_missing_bucket(revo, ca1, radosgw, tmp_path):
    P.make_crl_file(ca1, tmp_path / "c.crl", 1)
    err = revo.fail("upload", tmp_path / "c.crl", f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/ca1.crl",
                    *s3args(radosgw), env=ENV)
    assert re.search(r"bucket.*(does not exist|not exist|missing|no such)", err, re.I), err


def test_s3_body_corrupted_in_transit(revo, ca1, radosgw, s3_proxy, s3key, tmp_path):
    """radosgw checks the body against x-amz-content-sha256 (400
    XAmzContentSHA256Mismatch): a clear error, nothing stored."""
    s3_proxy.corrupt_puts = 1
    P.make_crl_file(ca1, tmp_path / "c.crl", 1, [1])
    err = revo.fail("upload", tmp_path / "c.crl", radosgw.url(s3key), "--endpoint", s3_proxy.endpoint,
                    "--region", "us-east-1", env=ENV)
    assert s3_proxy.corrupted == 1
    assert re.search(r"SHA256|hash|checksum", err.replace(radosgw.url(s3key), ""), re.I), err
    assert radosgw.get(s3key) is None


def test_s3_endpoint_down(revo, ca1, tmp_path):
    P.make_crl_file(ca1, tmp_path / "c.crl", 1)
    err = revo.fail("upload", tmp_path / "c.crl", "s3://b/k.crl", "--endpoint",
                    f"http://127.0.0.1:{P.free_port()}", "--region", "us-east-1", env=ENV)
    assert "127.0.0.1" in err, err


def test_s3_public_read_on_radosgw(revo, ca1, radosgw, s3key, tmp_path, leaf):
    """--public-read: x-amz-acl public-read, so an anonymous GET works (radosgw honours
    canned ACLs); without it the object stays private."""
    w = P.World(revo, ca1, leaf, tmp_path, ENV)
    w.s3_target(radosgw, s3key, name="pub", extra=["--public-read"])
    w.s3_target(radosgw, s3key + ".private", name="priv")
    revo("publish", "--once", env=ENV)
    with urllib.request.urlopen(f"{radosgw.endpoint}/{radosgw.BUCKET}/{s3key}", timeout=5) as r:
        assert r.status == 200 and P.CrlView(r.read(), ca1).signature_ok
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(f"{radosgw.endpoint}/{radosgw.BUCKET}/{s3key}.private", timeout=5)
    assert ei.value.code == 403
    assert {t["name"]: t["public_read"] for t in w.target_list().values()} == {"pub": True, "priv": False}


def test_s3_public_read_refused_by_bucket(revo, ca1, radosgw, s3_proxy, s3key, tmp_path, leaf):
    """A bucket that refuses ACLs (radosgw 16 cannot be configured so: a proxy in front
    of it answers 400 AccessControlListNotSupported like S3 with bucket-owner-enforced
    ownership): a clear error that explains bucket policies, not retried."""
    w = P.World(revo, ca1, leaf, tmp_path, ENV)
    w.s3_target(radosgw, s3key, name="pub", endpoint=s3_proxy.endpoint, extra=["--public-read"])
    t0 = time.monotonic()
    out, err = revo("publish", "--once", env=ENV, expect=1)
    took = time.monotonic() - t0
    t = w.target_list()["pub"]
    assert t["last_error"] and re.search(r"polic", t["last_error"], re.I), (
        f"the error should explain bucket policies: {t['last_error']}")
    assert re.search(r"ACL", t["last_error"]), t["last_error"]
    assert s3_proxy.refused == 1, f"AccessControlListNotSupported cannot succeed: retried {s3_proxy.refused} times"
    assert t["failures"] == 1 and t["crl_number"] is None, t
    assert took < 5, f"a refusal that cannot succeed took {took:.1f} s"
    assert radosgw.get(s3key) is None


# ---------------------------------------------------------------- credentials


def write_profiles(tmp_path, creds="", config=""):
    c = tmp_path / "aws-credentials"
    f = tmp_path / "aws-config"
    c.write_text(creds)
    f.write_text(config)
    return {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None,
            "AWS_SHARED_CREDENTIALS_FILE": str(c), "AWS_CONFIG_FILE": str(f)}


def test_profile_from_shared_credentials_file(revo, ca1, radosgw, s3key, tmp_path):
    P.make_crl_file(ca1, tmp_path / "c.crl", 2)
    env = P.aws_env(**write_profiles(
        tmp_path,
        creds=f"[default]\naws_access_key_id = AKWRONGDEFAULT000001\naws_secret_access_key = nope\n\n"
              f"[prod]\naws_access_key_id = {P.AK}\naws_secret_access_key = {P.SK}\n",
        config="[profile prod]\nregion = us-east-1\n"))
    upload(revo, tmp_path / "c.crl", radosgw.url(s3key), "--profile", "prod", "--endpoint",
           radosgw.endpoint, env=env)
    assert radosgw.head(s3key)["Metadata"]["revo-crl-number"] == "2"
    # the default profile holds wrong keys: without --profile it fails on credentials
    revo.fail("upload", tmp_path / "c.crl", radosgw.url(s3key), "--endpoint", radosgw.endpoint, env=env)
    # AWS_PROFILE selects the profile too
    upload(revo, tmp_path / "c.crl", radosgw.url(s3key + ".2"), "--endpoint", radosgw.endpoint,
           env={**env, "AWS_PROFILE": "prod"})
    assert radosgw.head(s3key + ".2")["Metadata"]["revo-crl-number"] == "2"


def test_profile_keys_in_config_file(revo, ca1, radosgw, s3key, tmp_path):
    P.make_crl_file(ca1, tmp_path / "c.crl", 2)
    env = P.aws_env(**write_profiles(
        tmp_path, config=f"[profile cfg]\naws_access_key_id = {P.AK}\naws_secret_access_key = {P.SK}\n"))
    upload(revo, tmp_path / "c.crl", radosgw.url(s3key), "--profile", "cfg", *s3args(radosgw), env=env)
    assert radosgw.get(s3key) is not None


def test_profile_missing(revo, ca1, radosgw, s3key, tmp_path):
    P.make_crl_file(ca1, tmp_path / "c.crl", 2)
    env = P.aws_env(**write_profiles(tmp_path, creds="[other]\naws_access_key_id = A\naws_secret_access_key = B\n"))
    err = revo.fail("upload", tmp_path / "c.crl", radosgw.url(s3key), "--profile", "nosuch",
                    *s3args(radosgw), env=env)
    assert "nosuch" in err, err


CP_SCRIPT = """#!/bin/sh
echo run >> {count}
cat <<'EOF'
{{"Version": 1, "AccessKeyId": "{ak}", "SecretAccessKey": "{sk}", "Expiration": "{exp}"}}
EOF
"""


@pytest.fixture(scope="module")
def cp_user(radosgw):
    """A second key pair of the S3 user, whose secret is only ever given through
    credential_process."""
    if "cp" not in radosgw.users:
        ak = "REVOCPKEY" + uuid.uuid4().hex[:11].upper()
        sk = "cpSECRET" + uuid.uuid4().hex + "zz"
        radosgw.admin("key", "create", "--uid", "test", "--key-type", "s3", "--access-key", ak,
                      "--secret-key", sk)
        radosgw.users["cp"] = (ak, sk)
    return radosgw.users["cp"]


def cp_env(tmp_path, cp_user, expiration=None):
    ak, sk = cp_user
    script = tmp_path / "cred-proc.sh"
    count = tmp_path / "cred-proc.count"
    exp = expiration or H.rfc3339(H.now() + H.days(1))
    script.write_text(CP_SCRIPT.format(count=count, ak=ak, sk=sk, exp=exp))
    script.chmod(0o755)
    env = P.aws_env(**write_profiles(tmp_path, config=f"[profile cp]\ncredential_process = {script}\n"))
    return env, count


def secret_nowhere(secret, texts, store):
    for label, text in texts:
        assert secret not in text, f"the secret appears in {label}"
    for f in pathlib.Path(store).rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert secret.encode() not in data, f"the secret is stored in {f}"
            assert base64.b64encode(secret.encode()) not in data, f"the secret (base64) is stored in {f}"


def test_credential_process(revo, ca1, leaf, radosgw, s3key, tmp_path, cp_user):
    ak, sk = cp_user
    env, count = cp_env(tmp_path, cp_user)
    P.make_crl_file(ca1, tmp_path / "c.crl", 4)
    p = revo.raw("upload", tmp_path / "c.crl", radosgw.url(s3key), "--profile", "cp",
                 *s3args(radosgw), env=env)
    assert p.returncode == 0, p.stderr
    assert radosgw.head(s3key)["Metadata"]["revo-crl-number"] == "4"
    texts = [("upload stdout", p.stdout), ("upload stderr", p.stderr)]
    # the same secret through targets and the publisher: not in the store, output or list
    w = P.World(revo, ca1, leaf, tmp_path, env)
    w.s3_target(radosgw, s3key + ".a", name="a", extra=["--profile", "cp"])
    w.s3_target(radosgw, s3key + ".b", name="b", extra=["--profile", "cp"])
    count.write_text("")
    q = revo.raw("publish", "--once", env=env)
    assert q.returncode == 0, q.stderr
    assert radosgw.get(s3key + ".a") and radosgw.get(s3key + ".b")
    texts += [("publish stdout", q.stdout), ("publish stderr", q.stderr)]
    lst = revo.raw("--json", "target", "list", env=env)
    texts.append(("target list --json", lst.stdout))
    lst2 = revo.raw("target", "list", env=env)
    texts.append(("target list", lst2.stdout))
    # a failure with those credentials: the error must not carry the secret either
    f = revo.raw("upload", tmp_path / "c.crl", f"s3://no-such-bucket-{uuid.uuid4().hex[:6]}/x",
                 "--profile", "cp", *s3args(radosgw), env=env)
    assert f.returncode == 1
    texts += [("error", f.stderr)]
    secret_nowhere(sk, texts, revo.store)


def test_credential_process_bad_output(revo, ca1, radosgw, s3key, tmp_path):
    script = tmp_path / "bad.sh"
    script.write_text("#!/bin/sh\necho 'AccessKeyId=AK SecretAccessKey=topsecretvalue'\n")
    script.chmod(0o755)
    env = P.aws_env(**write_profiles(tmp_path, config=f"[profile bad]\ncredential_process = {script}\n"))
    P.make_crl_file(ca1, tmp_path / "c.crl", 1)
    err = revo.fail("upload", tmp_path / "c.crl", radosgw.url(s3key), "--profile", "bad",
                    *s3args(radosgw), env=env)
    assert "credential_process" in err and "topsecretvalue" not in err, err
    script.write_text("#!/bin/sh\nexit 3\n")
    err = revo.fail("upload", tmp_path / "c.crl", radosgw.url(s3key), "--profile", "bad",
                    *s3args(radosgw), env=env)
    assert "credential_process" in err, err


# ---------------------------------------------------------------- Roles Anywhere


def test_rolesanywhere_upload_imports(revo, ca1, ra_fake, tmp_path):
    der = P.make_crl_file(ca1, tmp_path / "c.crl", 6, [0xA1, 0xA2])
    j = upload(revo, tmp_path / "c.crl", "rolesanywhere://us-east-1", "--trust-anchor", P.TRUST_ANCHOR,
               "--endpoint", ra_fake.url)
    calls = ra_fake.calls()
    assert [(c.method, c.operation, c.status) for c in calls] == [("POST", "ImportCrl", 201)], calls
    body = calls[0].json
    assert body["trustAnchorArn"] == P.TRUST_ANCHOR and body["enabled"] is True, body
    crl_id = j["remote_id"]
    assert crl_id in ra_fake.crls, j
    held = ra_fake.crl(crl_id)
    assert held.public_bytes(serialization.Encoding.DER) == der
    assert ra_fake.crl_pem(crl_id).startswith(b"-----BEGIN X509 CRL-----\n")
    assert j["sha256"] == hashlib.sha256(der).hexdigest()


def test_rolesanywhere_upload_by_crl_id(revo, ca1, ra_fake, tmp_path):
    """rolesanywhere://REGION/CRL-ID: GetCrl to learn what it holds, then UpdateCrl."""
    old = P.make_crl_file(ca1, tmp_path / "old.crl", 3, [1])
    crl_id = ra_fake.add_crl(old, P.TRUST_ANCHOR)
    new = P.make_crl_file(ca1, tmp_path / "new.crl", 4, [1, 2])
    j = upload(revo, tmp_path / "new.crl", f"rolesanywhere://us-east-1/{crl_id}", "--endpoint", ra_fake.url)
    ops = [(c.operation, c.status) for c in ra_fake.calls()]
    assert ops == [("GetCrl", 200), ("UpdateCrl", 200)], ops
    assert j["previous_crl_number"] == 3, j
    assert ra_fake.crl(crl_id).public_bytes(serialization.Encoding.DER) == new
    # and an older one is refused: nothing but the GetCrl
    ra_fake.wait_quiet()
    n = len(ra_fake.calls())
    revo.fail("upload", tmp_path / "old.crl", f"rolesanywhere://us-east-1/{crl_id}", "--endpoint",
              ra_fake.url, env=ENV)
    assert [c.operation for c in ra_fake.calls()[n:]] == ["GetCrl"]
    assert ra_fake.crl(crl_id).public_bytes(serialization.Encoding.DER) == new


@pytest.fixture(scope="session")
def big_crl(ca1, tmp_path_factory):
    """A CRL of 5000 entries (16-octet serials, keyCompromise): its crlData is well over
    300000 characters."""
    d = tmp_path_factory.mktemp("bigcrl")
    serials = [int.from_bytes(os.urandom(16), "big") | (1 << 126) for _ in range(5000)]
    path = d / "big.crl"
    der = P.make_crl_file(ca1, path, 50, serials)
    return path, der, serials


def crldata_len(der_len):
    b64 = 4 * ((der_len + 2) // 3)
    pem = len("-----BEGIN X509 CRL-----\n") + b64 + (b64 + 63) // 64 + len("-----END X509 CRL-----\n")
    return 4 * ((pem + 2) // 3)


def true_fit(der_len, entries, empty_len):
    """How many entries of this CRL's average size fit in 300000 characters of crlData."""
    per = (der_len - empty_len) / entries
    n = int((300000 / 1.8 - empty_len) / per) + 50
    while n > 0 and crldata_len(int(empty_len + n * per) + 8) > 300000:
        n -= 1
    return n


def test_rolesanywhere_too_large_refused_before_sending(revo, ca1, ra_fake, big_crl, tmp_path):
    path, der, serials = big_crl
    assert crldata_len(len(der)) > 300000
    err = revo.fail("upload", path, "rolesanywhere://us-east-1", "--trust-anchor", P.TRUST_ANCHOR,
                    "--endpoint", ra_fake.url, env=ENV)
    assert ra_fake.calls() == [], "a CRL over the limit must be refused before sending"
    assert "300000" in err, err
    m = re.search(r"(\d+) of (?:its )?(\d+) entries", err)
    assert m, f"the error should say how many entries would fit: {err}"
    fit, total = int(m.group(1)), int(m.group(2))
    assert total == 5000, err
    empty = len(H.make_crl(ca1, [], number=50))
    want = true_fit(len(der), 5000, empty)
    assert 0.9 * want <= fit <= want, (
        f"revo says about {fit} entries would fit; at this CRL's size per entry "
        f"{want} fit in 300000 characters of base64(PEM)")


# ---------------------------------------------------------------- file and http


def test_file_upload_atomic_and_monotonic(revo, ca1, tmp_path):
    out = tmp_path / "pub" / "ca1.crl"
    out.parent.mkdir()
    der = P.make_crl_file(ca1, tmp_path / "c.crl", 8, [5])
    j = upload(revo, tmp_path / "c.crl", f"file://{out}")
    assert out.read_bytes() == der and j["sha256"] == hashlib.sha256(der).hexdigest()
    assert stat.S_IMODE(out.stat().st_mode) & 0o044 == 0o044, "a published CRL must be world-readable"
    assert sorted(p.name for p in out.parent.iterdir()) == ["ca1.crl"], "temporary files left behind"
    P.make_crl_file(ca1, tmp_path / "old.crl", 7, [5])
    err = revo.fail("upload", tmp_path / "old.crl", f"file://{out}", env=ENV)
    assert "8" in err and "7" in err, err
    assert out.read_bytes() == der


def test_http_put_upload(revo, ca1, http_store, tmp_path):
    s = http_store()
    der = P.make_crl_file(ca1, tmp_path / "c.crl", 3, [9])
    upload(revo, tmp_path / "c.crl", s.url("/x/ca1.crl"))
    assert s.get("/x/ca1.crl") == der
    methods = [e[1] for e in s.log]
    assert methods[-2:] == ["PUT", "GET"], f"PUT then a read-back GET expected: {methods}"
    P.make_crl_file(ca1, tmp_path / "old.crl", 2, [9])
    revo.fail("upload", tmp_path / "old.crl", s.url("/x/ca1.crl"), env=ENV)
    assert s.get("/x/ca1.crl") == der
    assert [e[1] for e in s.log].count("PUT") == 1


@pytest.mark.parametrize("url", ["ftp://host/x.crl", "s3://bucket-only", "file://relative/x.crl",
                                 "rolesanywhere://us-east-1"])
def test_bad_urls(revo, ca1, tmp_path, url):
    P.make_crl_file(ca1, tmp_path / "c.crl", 1)
    err = revo.fail("upload", tmp_path / "c.crl", url, env=ENV)
    assert url.split("/")[0] in err or "URL" in err or "trust-anchor" in err, err


def test_not_a_crl(revo, tmp_path):
    (tmp_path / "x.crl").write_bytes(b"hello")
    err = revo.fail("upload", tmp_path / "x.crl", f"file://{tmp_path}/out.crl", env=ENV)
    assert "CRL" in err, err
    assert not (tmp_path / "out.crl").exists()
