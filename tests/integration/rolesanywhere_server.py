"""A local stand-in for the AWS IAM Roles Anywhere API, for revo's tests.

No Roles Anywhere server exists outside AWS, so this one is built on python3-botocore
(Debian's, for /usr/bin/python3): every request is checked against botocore's own
service model (rolesanywhere 2018-05-10) and its own SigV4 signer, independently of the
code under test:

  * method + path must match one of the model's operations (requestUri with its
    {labels}); URI labels and query parameters must satisfy their shapes;
  * the JSON body must satisfy the operation's input shape: required members present,
    no unknown members, types, string/blob length and pattern constraints; crlData must
    be valid base64 of a PEM CRL that python-cryptography can load, at most 300000
    characters;
  * the SigV4 signature (service `rolesanywhere`, a known access key and secret) is
    recomputed with botocore.auth.SigV4Auth over an AWSRequest rebuilt from what was
    received (method, URL, the signed headers, body) and compared with the
    Authorization header; X-Amz-Content-SHA256, when sent, must be the body's hash;
    X-Amz-Date must be within 5 minutes.

It answers like the real API (rest-json): ImportCrl 201 {"crl": CrlDetail}, UpdateCrl,
EnableCrl, DisableCrl, GetCrl 200 {"crl": ...}, ListCrls {"crls": [...]}, DeleteCrl,
GetTrustAnchor {"trustAnchor": ...}; errors carry the x-amzn-ErrorType header and
{"message": ...}. Knobs (attributes, changeable while it runs):

  import_disabled   ImportCrl answers with enabled=false (as seen in the wild), so the
                    client has to call EnableCrl
  min_interval      two CRL API calls less than this many seconds apart get
                    429 ThrottlingException (default 0.9; the real limit is 1/s)
  throttle_next     the next N CRL API calls get 429 ThrottlingException
  fail_next         a list of (status, error type) answered to the next requests
  handlers          {operation name: fn(fake, req) -> (status, body dict)} to add or
                    replace operations (the probes extend it with trust anchors etc.)

Every request is recorded in `requests` (Recorded objects: time, method, path,
operation, labels, headers, body, json, status, problems); model or signature
violations are also collected in `violations` (a test asserts it stays empty).

Run as a script for manual use: /usr/bin/python3 rolesanywhere_server.py [--port N]
(access key and secret from --access-key/--secret-key).
"""

import base64
import binascii
import datetime
import hashlib
import http.server
import json
import re
import socketserver
import threading
import time
import urllib.parse
import uuid

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.session
from cryptography import x509
from cryptography.hazmat.primitives import serialization

SERVICE = "rolesanywhere"
CRLDATA_LIMIT = 300000
CRL_OPERATIONS = {"ImportCrl", "UpdateCrl", "EnableCrl", "DisableCrl", "GetCrl", "ListCrls",
                  "DeleteCrl"}
ACCOUNT = "123456789012"

_MODELS = {}
_MODEL_LOCK = threading.Lock()


def service_model(name=SERVICE):
    """botocore's service model of `name` (rolesanywhere by default), loaded once."""
    with _MODEL_LOCK:
        if name not in _MODELS:
            _MODELS[name] = botocore.session.get_session().get_service_model(name)
        return _MODELS[name]


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class ApiError(Exception):
    def __init__(self, status, etype, message):
        super().__init__(f"{status} {etype}: {message}")
        self.status = status
        self.etype = etype
        self.message = message


class Recorded:
    """One request as received, and what the fake made of it."""

    def __init__(self, method, raw_path, headers, body):
        self.time = time.monotonic()
        self.wall = time.time()
        self.method = method
        self.raw_path = raw_path
        split = urllib.parse.urlsplit(raw_path)
        self.path = split.path
        self.query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        self.headers = headers  # list of (name, value) as received
        self.body = body
        self.json = None
        self.operation = None
        self.labels = {}
        self.status = None
        self.problems = []  # model / signature violations
        self.access_key = None

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return (f"<{self.method} {self.raw_path} op={self.operation} status={self.status}"
                f" problems={self.problems}>")


# ---------------------------------------------------------------- model checks


def _uri_regex(request_uri):
    path = request_uri.split("?", 1)[0]
    out, pos = "", 0
    for m in re.finditer(r"\{([^}]+)\}", path):
        out += re.escape(path[pos:m.start()])
        name = m.group(1)
        if name.endswith("+"):
            out += f"(?P<{name[:-1]}>.+)"
        else:
            out += f"(?P<{name}>[^/]+)"
        pos = m.end()
    out += re.escape(path[pos:])
    return re.compile("^" + out + "$")


def _routes():
    m = service_model()
    routes = []
    for name in m.operation_names:
        op = m.operation_model(name)
        routes.append((op.http["method"].upper(), _uri_regex(op.http["requestUri"]), name))
    # literal segments first, so /crls is not mistaken for /crl/{crlId}-like labels
    routes.sort(key=lambda r: -len(r[1].pattern.replace("(?P<", "")))
    return routes


def check_value(shape, value, where, problems):
    """Check a JSON value against a botocore shape; append problems."""
    t = shape.type_name
    meta = shape.metadata
    if t == "structure":
        if not isinstance(value, dict):
            problems.append(f"{where}: expected an object, got {type(value).__name__}")
            return
        for k in value:
            if k not in shape.members:
                problems.append(f"{where}: unknown member {k!r}")
        for k in shape.required_members:
            if k not in value:
                problems.append(f"{where}: required member {k!r} missing")
        for k, v in value.items():
            if k in shape.members:
                check_value(shape.members[k], v, f"{where}.{k}", problems)
    elif t == "list":
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list")
            return
        if "min" in meta and len(value) < meta["min"] or "max" in meta and len(value) > meta["max"]:
            problems.append(f"{where}: {len(value)} items, outside {meta}")
        for i, v in enumerate(value):
            check_value(shape.member, v, f"{where}[{i}]", problems)
    elif t == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{where}: expected a boolean, got {value!r}")
    elif t in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{where}: expected an integer, got {value!r}")
    elif t == "string":
        if not isinstance(value, str):
            problems.append(f"{where}: expected a string, got {type(value).__name__}")
            return
        if "min" in meta and len(value) < meta["min"]:
            problems.append(f"{where}: shorter than {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{where}: longer than {meta['max']}")
        if "pattern" in meta and not re.search(meta["pattern"], value):
            problems.append(f"{where}: {value!r} does not match {meta['pattern']!r}")
        if shape.enum and value not in shape.enum:
            problems.append(f"{where}: {value!r} not one of {shape.enum}")
    elif t == "blob":
        if not isinstance(value, str):
            problems.append(f"{where}: a blob must be a base64 string in rest-json")
            return
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as e:
            problems.append(f"{where}: not valid base64 ({e})")
            return
        if "min" in meta and len(value) < meta["min"]:
            problems.append(f"{where}: shorter than {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{where}: {len(value)} characters, over the limit of {meta['max']}")
    elif t == "timestamp":
        if not isinstance(value, (str, int, float)):
            problems.append(f"{where}: not a timestamp")
    else:
        pass


def check_label(shape, value, where, problems):
    check_value(shape, value, where, problems)


# ---------------------------------------------------------------- SigV4


def verify_sigv4(rec, keys, region=None, service=SERVICE, host_url=None):
    """Recompute the request's SigV4 signature with botocore; return a list of problems
    (empty when it verifies). keys: {access key: secret}."""
    problems = []
    auth = rec.header("Authorization")
    if not auth:
        return ["no Authorization header"]
    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
                     r"\s*SignedHeaders=([a-z0-9;\-]+),\s*Signature=([0-9a-f]{64})", auth)
    if not m:
        return [f"Authorization header not understood: {auth[:80]!r}..."]
    ak, date, reg, svc, signed, sig = m.groups()
    rec.access_key = ak
    if ak not in keys:
        return [f"unknown access key {ak!r}"]
    if svc != service:
        problems.append(f"signed for service {svc!r}, not {service!r}")
    if region is not None and reg != region:
        problems.append(f"signed for region {reg!r}, not {region!r}")
    amz_date = rec.header("X-Amz-Date")
    if not amz_date or not re.fullmatch(r"\d{8}T\d{6}Z", amz_date):
        return problems + [f"X-Amz-Date missing or malformed: {amz_date!r}"]
    if amz_date[:8] != date:
        problems.append(f"scope date {date} != X-Amz-Date {amz_date}")
    t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    skew = abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())
    if skew > 300:
        problems.append(f"X-Amz-Date is {skew:.0f} s off")
    names = signed.split(";")
    if "host" not in names:
        problems.append("the Host header is not signed")
    if "x-amz-date" not in names:
        problems.append("X-Amz-Date is not signed")
    if names != sorted(names):
        problems.append(f"SignedHeaders not sorted: {signed}")
    # the payload hash, when sent, must be the body's
    sha = rec.header("X-Amz-Content-SHA256")
    if sha is not None and sha != hashlib.sha256(rec.body).hexdigest():
        problems.append("X-Amz-Content-SHA256 is not the SHA-256 of the body")
    # rebuild the request with exactly the signed headers, as received
    hdrs = {}
    for n in names:
        vals = [v for k, v in rec.headers if k.lower() == n]
        if not vals:
            problems.append(f"signed header {n!r} was not received")
            continue
        hdrs[n] = ",".join(v.strip() for v in vals)
    host = rec.header("Host") or "localhost"
    url = (host_url or f"http://{host}") + rec.raw_path
    req = botocore.awsrequest.AWSRequest(method=rec.method, url=url, headers=hdrs, data=rec.body)
    req.context["timestamp"] = amz_date
    signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials(ak, keys[ak]), svc, reg)
    # botocore would use X-Amz-Content-SHA256 as the payload hash when present; it has
    # been checked against the body above
    canonical = signer.canonical_request(req)
    want_signed = signer.signed_headers(signer.headers_to_sign(req))
    if want_signed != signed:
        problems.append(f"SignedHeaders {signed!r}, botocore would sign {want_signed!r}")
    sts = signer.string_to_sign(req, canonical)
    want = signer.signature(sts, req)
    if want != sig:
        problems.append("signature does not match (botocore SigV4 over the request as received)")
    return problems


# ---------------------------------------------------------------- the fake


class FakeHttp:
    """The HTTP side the AWS fakes share: a threaded HTTP/1.1 server on host:port that
    hands every request to self.handle(method, path, [(name, value)], body) and sends
    back the (status, [(name, value)], body) it returns."""

    def _http_init(self, host, port, timeout=None):
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                status, hdrs, out = fake.handle(self.command, self.path,
                                                list(self.headers.items()), body)
                self.send_response(status)
                for k, v in hdrs:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any

        Handler.timeout = timeout

        class Srv(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Srv((host, port), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self.thread = None

    # ------------------------------------------------ life

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class RolesAnywhereFake(FakeHttp):
    def __init__(self, keys=None, region="us-east-1", host="127.0.0.1", port=0,
                 min_interval=0.9):
        self.keys = dict(keys or {"AKIDREVOTEST": "revo-ra-secret"})
        self.region = region
        self.min_interval = min_interval
        self.import_disabled = False
        self.throttle_next = 0
        self.fail_next = []  # [(status, error type)]
        self.lock = threading.RLock()
        self.requests = []
        self.violations = []
        self.crls = {}  # crlId -> CrlDetail dict (crlData: base64 str)
        self.trust_anchors = {}  # trustAnchorId -> TrustAnchorDetail dict
        self.last_crl_call = None
        self.routes = _routes()
        self.model = service_model()
        self.handlers = {
            "ImportCrl": RolesAnywhereFake.op_import_crl,
            "UpdateCrl": RolesAnywhereFake.op_update_crl,
            "EnableCrl": RolesAnywhereFake.op_enable_crl,
            "DisableCrl": RolesAnywhereFake.op_disable_crl,
            "GetCrl": RolesAnywhereFake.op_get_crl,
            "ListCrls": RolesAnywhereFake.op_list_crls,
            "DeleteCrl": RolesAnywhereFake.op_delete_crl,
            "GetTrustAnchor": RolesAnywhereFake.op_get_trust_anchor,
        }
        self._http_init(host, port)

    # ------------------------------------------------ state helpers

    def arn(self, kind, ident):
        return f"arn:aws:rolesanywhere:{self.region}:{ACCOUNT}:{kind}/{ident}"

    def add_trust_anchor(self, name="revo-test", enabled=True, ident=None):
        ident = ident or str(uuid.uuid4())
        now = iso(time.time())
        self.trust_anchors[ident] = {
            "trustAnchorId": ident, "trustAnchorArn": self.arn("trust-anchor", ident),
            "name": name, "enabled": enabled, "createdAt": now, "updatedAt": now,
            "source": {"sourceType": "CERTIFICATE_BUNDLE", "sourceData": {"x509CertificateData": ""}},
        }
        return self.trust_anchors[ident]

    def add_crl(self, crl_der_or_pem, trust_anchor_arn, name="seeded", enabled=True):
        """Seed a CRL (as if imported earlier); returns its crlId."""
        pem = crl_der_or_pem
        if not pem.lstrip().startswith(b"-----"):
            pem = x509.load_der_x509_crl(pem).public_bytes(serialization.Encoding.PEM)
        ident = str(uuid.uuid4())
        now = iso(time.time())
        with self.lock:
            self.crls[ident] = {
                "crlId": ident, "crlArn": self.arn("crl", ident), "name": name,
                "enabled": enabled, "crlData": base64.b64encode(pem).decode(),
                "trustAnchorArn": trust_anchor_arn, "createdAt": now, "updatedAt": now}
        return ident

    def crl_pem(self, crl_id):
        return base64.b64decode(self.crls[crl_id]["crlData"])

    def crl(self, crl_id):
        """The python-cryptography CRL object the fake holds under crl_id."""
        return x509.load_pem_x509_crl(self.crl_pem(crl_id))

    def calls(self, operation=None):
        with self.lock:
            return [r for r in self.requests if operation is None or r.operation == operation]

    def crl_calls(self):
        with self.lock:
            return [r for r in self.requests if r.operation in CRL_OPERATIONS]

    def wait_quiet(self, seconds=None):
        """Sleep until min_interval (or seconds) has passed since the last CRL call, so
        that a test's next command is not throttled."""
        gap = self.min_interval + 0.1 if seconds is None else seconds
        with self.lock:
            last = self.last_crl_call
        if last is not None:
            left = last + gap - time.monotonic()
            if left > 0:
                time.sleep(left)

    # ------------------------------------------------ dispatch

    def route(self, method, path):
        for m, rx, name in self.routes:
            if m != method:
                continue
            mt = rx.match(path)
            if mt:
                return name, {k: urllib.parse.unquote(v) for k, v in mt.groupdict().items()}
        return None, {}

    def handle(self, method, raw_path, headers, body):
        rec = Recorded(method, raw_path, headers, body)
        with self.lock:
            self.requests.append(rec)
        status, out = self._handle(rec)
        rec.status = status
        if rec.problems:
            with self.lock:
                self.violations.append(rec)
        hdrs = [("Content-Type", "application/json"),
                ("x-amzn-RequestId", str(uuid.uuid4()))]
        if status >= 400 and isinstance(out, dict) and "__errortype" in out:
            hdrs.append(("x-amzn-ErrorType", out.pop("__errortype")))
        return status, hdrs, json.dumps(out).encode()

    def _error(self, status, etype, message):
        return status, {"__errortype": etype, "message": message}

    def _handle(self, rec):
        name, labels = self.route(rec.method, rec.path)
        rec.operation = name
        rec.labels = labels
        if name is None:
            rec.problems.append(f"{rec.method} {rec.path} is no operation of the {SERVICE} model")
            return self._error(404, "UnknownOperationException", "unknown operation")
        problems = verify_sigv4(rec, self.keys, region=self.region)
        if problems:
            rec.problems.extend(problems)
            return self._error(403, "InvalidSignatureException",
                               "The request signature we calculated does not match the signature you provided.")
        op = self.model.operation_model(name)
        shape = op.input_shape
        # labels and query parameters
        for member, mshape in (shape.members.items() if shape else []):
            loc = mshape.serialization.get("location")
            wire = mshape.serialization.get("name", member)
            if loc == "uri":
                if wire in labels:
                    check_label(mshape, labels[wire], f"{name} uri {wire}", rec.problems)
            elif loc == "querystring":
                if wire in rec.query:
                    v = rec.query[wire][-1]
                    if mshape.type_name == "integer":
                        try:
                            v = int(v)
                        except ValueError:
                            rec.problems.append(f"{name} query {wire}: not an integer")
                            continue
                    check_value(mshape, v, f"{name} query {wire}", rec.problems)
        body_members = {k: s for k, s in (shape.members.items() if shape else [])
                        if not s.serialization.get("location")}
        doc = {}
        if rec.body:
            ctype = rec.header("Content-Type") or ""
            if not ctype.startswith("application/json"):
                rec.problems.append(f"{name}: Content-Type {ctype!r}, not application/json")
            try:
                doc = json.loads(rec.body)
            except ValueError as e:
                rec.problems.append(f"{name}: the body is not JSON ({e})")
                return self._error(400, "ValidationException", "body is not JSON")
            rec.json = doc
            if not isinstance(doc, dict):
                rec.problems.append(f"{name}: the body is not a JSON object")
                return self._error(400, "ValidationException", "body is not an object")
        elif body_members and any(k in shape.required_members for k in body_members):
            rec.problems.append(f"{name}: no body, but the input shape has required members")
        for k in doc:
            if k not in body_members:
                rec.problems.append(f"{name}: unknown member {k!r}")
        for k in shape.required_members if shape else []:
            if k in body_members and k not in doc:
                rec.problems.append(f"{name}: required member {k!r} missing")
        for k, v in doc.items():
            if k in body_members:
                check_value(body_members[k], v, f"{name}.{k}", rec.problems)
        if "crlData" in doc and isinstance(doc["crlData"], str):
            self._check_crl_data(doc["crlData"], name, rec.problems)
        if rec.problems:
            return self._error(400, "ValidationException", "; ".join(rec.problems)[:500])
        # faults and throttling
        with self.lock:
            if self.fail_next:
                status, etype = self.fail_next.pop(0)
                return self._error(status, etype, "injected fault")
            if name in CRL_OPERATIONS:
                now = time.monotonic()
                last, self.last_crl_call = self.last_crl_call, now
                if self.throttle_next > 0:
                    self.throttle_next -= 1
                    return self._error(429, "ThrottlingException", "Rate exceeded")
                if last is not None and now - last < self.min_interval:
                    return self._error(429, "ThrottlingException", "Rate exceeded")
        fn = self.handlers.get(name)
        if fn is None:
            return self._error(501, "NotImplemented", f"{name} is not implemented by the fake")
        try:
            return fn(self, rec)
        except ApiError as e:
            return self._error(e.status, e.etype, e.message)

    @staticmethod
    def _check_crl_data(data, name, problems):
        if len(data) > CRLDATA_LIMIT:
            problems.append(f"{name}: crlData is {len(data)} characters, over {CRLDATA_LIMIT}")
        try:
            pem = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            problems.append(f"{name}: crlData is not base64")
            return
        if not pem.startswith(b"-----BEGIN X509 CRL-----"):
            problems.append(f"{name}: crlData is not base64 of a PEM CRL")
            return
        try:
            x509.load_pem_x509_crl(pem)
        except ValueError as e:
            problems.append(f"{name}: crlData holds no CRL that loads ({e})")

    # ------------------------------------------------ operations

    def _get(self, rec):
        ident = rec.labels.get("crlId")
        with self.lock:
            crl = self.crls.get(ident)
        if crl is None:
            raise ApiError(404, "ResourceNotFoundException", f"CRL {ident} not found")
        return crl

    def op_import_crl(self, rec):
        doc = rec.json
        arn = doc["trustAnchorArn"]
        with self.lock:
            same = [c for c in self.crls.values() if c["trustAnchorArn"] == arn]
            if len(same) >= 2:
                raise ApiError(400, "ValidationException", "at most 2 CRLs per trust anchor")
            ident = str(uuid.uuid4())
            now = iso(time.time())
            enabled = bool(doc.get("enabled", False)) and not self.import_disabled
            self.crls[ident] = {
                "crlId": ident, "crlArn": self.arn("crl", ident), "name": doc["name"],
                "enabled": enabled, "crlData": doc["crlData"], "trustAnchorArn": arn,
                "createdAt": now, "updatedAt": now}
            return 201, {"crl": dict(self.crls[ident])}

    def op_update_crl(self, rec):
        crl = self._get(rec)
        with self.lock:
            if "crlData" in rec.json:
                crl["crlData"] = rec.json["crlData"]
            if "name" in rec.json:
                crl["name"] = rec.json["name"]
            crl["updatedAt"] = iso(time.time())
            return 200, {"crl": dict(crl)}

    def op_enable_crl(self, rec):
        crl = self._get(rec)
        with self.lock:
            crl["enabled"] = True
            crl["updatedAt"] = iso(time.time())
            return 200, {"crl": dict(crl)}

    def op_disable_crl(self, rec):
        crl = self._get(rec)
        with self.lock:
            crl["enabled"] = False
            crl["updatedAt"] = iso(time.time())
            return 200, {"crl": dict(crl)}

    def op_get_crl(self, rec):
        return 200, {"crl": dict(self._get(rec))}

    def op_delete_crl(self, rec):
        crl = self._get(rec)
        with self.lock:
            del self.crls[crl["crlId"]]
        return 200, {"crl": dict(crl)}

    def op_list_crls(self, rec):
        with self.lock:
            return 200, {"crls": [dict(c) for c in self.crls.values()]}

    def op_get_trust_anchor(self, rec):
        ident = rec.labels.get("trustAnchorId")
        with self.lock:
            ta = self.trust_anchors.get(ident)
        if ta is None:
            raise ApiError(404, "ResourceNotFoundException", f"trust anchor {ident} not found")
        return 200, {"trustAnchor": dict(ta)}


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--access-key", default="AKIDREVOTEST")
    ap.add_argument("--secret-key", default="revo-ra-secret")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--import-disabled", action="store_true")
    a = ap.parse_args()
    f = RolesAnywhereFake({a.access_key: a.secret_key}, region=a.region, port=a.port)
    f.import_disabled = a.import_disabled
    print(f"listening on {f.url}", flush=True)
    try:
        f.httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
