"""A local stand-in for the AWS CloudTrail API (LookupEvents only), for revo's tests.

No CloudTrail server exists outside AWS, so this one is built on python3-botocore
(Debian's, for /usr/bin/python3), like rolesanywhere_server.py: every request is checked
against botocore's own service model (cloudtrail 2013-11-01) and its own SigV4 signer,
independently of the code under test:

  * AWS JSON 1.1: POST / with Content-Type application/x-amz-json-1.1 and
    X-Amz-Target <targetPrefix>.LookupEvents (the model's metadata);
  * the body must satisfy the LookupEvents input shape: no unknown members, types,
    MaxResults 1..50, LookupAttributes with at most one attribute (the real API's
    limit) whose AttributeKey is one of the model's enum and whose AttributeValue is
    not empty; StartTime/EndTime as epoch-seconds numbers (what botocore sends for
    the json protocol), StartTime <= EndTime; a NextToken must come back with the
    same LookupAttributes, StartTime, EndTime and EventCategory as the call that
    returned it (the real API answers InvalidNextTokenException otherwise);
  * the SigV4 signature (service `cloudtrail`, a known access key and secret) is
    recomputed with botocore (rolesanywhere_server.verify_sigv4).

Semantics: events (CloudTrail records, dicts) are held in memory; LookupEvents filters
by the one lookup attribute and by StartTime <= eventTime <= EndTime, answers newest
first, MaxResults (default 50) per page, with an opaque NextToken. Every event in the
answer carries EventId, EventName, ReadOnly, AccessKeyId, EventTime (epoch seconds),
EventSource, Username, Resources and CloudTrailEvent (the whole record as a JSON
string), like the real API.

Errors the JSON 1.1 way: {"__type": TYPE, "message": ...} with the x-amzn-ErrorType
header; 400 UnrecognizedClientException for an unknown access key, 403
InvalidSignatureException for a signature that does not verify, 400
ThrottlingException, 400 InvalidNextTokenException / InvalidMaxResultsException /
InvalidLookupAttributesException / InvalidTimeRangeException / ValidationException.

Knobs (attributes, changeable while it runs):

  throttle_next   the next N LookupEvents calls get ThrottlingException
  fail_next       a list of (status, error type) answered to the next LookupEvents calls
  min_interval    a LookupEvents call less than this many seconds after the last one
                  served gets ThrottlingException (throttled calls do not count; default
                  0; the real limit is 2 calls per second per account and region)

Every request is recorded in `requests` (rolesanywhere_server.Recorded objects);
requests that break the model or the signature are also collected in `violations`.

Seeding: add_create_session(...) builds a realistic IAM Roles Anywhere CreateSession
record; add_event(record) adds any other record.

Run as a script for manual use: /usr/bin/python3 cloudtrail_server.py [--port N]
(access key and secret from --access-key/--secret-key; --demo seeds a few sessions).
"""

import base64
import datetime
import hashlib
import json
import os
import secrets
import threading
import time
import uuid

import pytest

from rolesanywhere_server import FakeHttp, Recorded, check_value, verify_sigv4
from rolesanywhere_server import service_model as ra_service_model

SERVICE = "cloudtrail"
OPERATION = "LookupEvents"
ACCOUNT = "123456789012"
CONTENT_TYPE = "application/x-amz-json-1.1"
# the key pair publish_helpers.aws_env() puts in revo's environment
AK = "REVOTESTACCESSKEY001"
SK = "revo-test-secret-key/0001+radosgw"

TRUST_ANCHOR_ARN = f"arn:aws:rolesanywhere:us-east-1:{ACCOUNT}:trust-anchor/0f3c9b6e-1d2a-4c5b-9e8f-7a6b5c4d3e2f"
PROFILE_ARN = f"arn:aws:rolesanywhere:us-east-1:{ACCOUNT}:profile/5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/revo-test-workload"

def service_model():
    """botocore's cloudtrail service model (loaded once)."""
    return ra_service_model(SERVICE)


def epoch(when):
    """Seconds since the epoch of a datetime (naive = UTC), a number, or None (now)."""
    if when is None:
        return time.time()
    if isinstance(when, datetime.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        return when.timestamp()
    return float(when)


def ct_time(ts):
    """CloudTrail's eventTime format: YYYY-MM-DDTHH:MM:SSZ."""
    return datetime.datetime.fromtimestamp(int(ts), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def parse_ct_time(s):
    """eventTime of a record (YYYY-MM-DDTHH:MM:SS[.fff]Z) -> epoch seconds."""
    s = s.rstrip("Z")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in s else "%Y-%m-%dT%H:%M:%S"
    return datetime.datetime.strptime(s, fmt).replace(tzinfo=datetime.timezone.utc).timestamp()


def _number(ts):
    return int(ts) if float(ts).is_integer() else float(ts)


def _rand_id(prefix, n=16):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(n))


class CloudTrailFake(FakeHttp):
    def __init__(self, keys=None, region="us-east-1", host="127.0.0.1", port=0,
                 min_interval=0.0, account=ACCOUNT):
        self.keys = dict(keys or {AK: SK})
        self.region = region
        self.account = account
        self.min_interval = min_interval
        self.throttle_next = 0
        self.fail_next = []  # [(status, error type)]
        self.lock = threading.RLock()
        self.requests = []
        self.violations = []
        self.events = []  # [(epoch seconds, record dict)]
        self.tokens = {}  # NextToken -> (query fingerprint, offset)
        self.last_call = None
        self.model = service_model()
        self.target = f"{self.model.metadata['targetPrefix']}.{OPERATION}"
        self._http_init(host, port, timeout=10)

    # ------------------------------------------------ seeding

    def add_event(self, record):
        """Add any CloudTrail record (a dict with at least eventTime, eventName,
        eventSource, eventID). Returns it."""
        ts = parse_ct_time(record["eventTime"])
        with self.lock:
            self.events.append((ts, record))
        return record

    def add_create_session(self, serial_hex, cn=None, when=None, source_ip="203.0.113.10",
                           trust_anchor_arn=TRUST_ANCHOR_ARN, profile_arn=PROFILE_ARN,
                           role_arn=ROLE_ARN, cert_der=None, role_session_name=None,
                           error_code=None, error_message=None, duration=3600):
        """Add an IAM Roles Anywhere CreateSession record as CloudTrail logs it (the
        credential helper's call with a certificate). The role session name is
        role_session_name when given, else the certificate serial in lowercase hex
        (Roles Anywhere's default). Returns the record."""
        ts = epoch(when)
        serial = serial_hex.lower().replace(":", "")
        if serial.startswith("0x"):
            serial = serial[2:]
        session = role_session_name if role_session_name is not None else serial
        role_name = role_arn.rsplit("/", 1)[-1]
        params = {
            "durationSeconds": duration,
            "profileArn": profile_arn,
            "roleArn": role_arn,
            "trustAnchorArn": trust_anchor_arn,
        }
        if role_session_name is not None:
            params["roleSessionName"] = role_session_name
        rec = {
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "Unknown",
                "principalId": serial,
                "accountId": self.account,
                "userName": cn or serial,
            },
            "eventTime": ct_time(ts),
            "eventSource": "rolesanywhere.amazonaws.com",
            "eventName": "CreateSession",
            "awsRegion": self.region,
            "sourceIPAddress": source_ip,
            "userAgent": "CredHelper/1.1.1 (Linux; go1.21.5; amd64)",
            "requestParameters": params,
        }
        if error_code:
            rec["errorCode"] = error_code
            rec["errorMessage"] = error_message or f"{error_code}: the session was refused"
            rec["responseElements"] = None
        else:
            role_id = _rand_id("AROA")
            rec["responseElements"] = {
                "credentialSet": [{
                    "assumedRoleUser": {
                        "arn": f"arn:aws:sts::{self.account}:assumed-role/{role_name}/{session}",
                        "assumedRoleId": f"{role_id}:{session}",
                    },
                    "credentials": {
                        "accessKeyId": _rand_id("ASIA"),
                        "expiration": ct_time(ts + duration),
                        "secretAccessKey": "HIDDEN_DUE_TO_SECURITY_REASONS",
                        "sessionToken": base64.b64encode(os.urandom(96)).decode(),
                    },
                    "packedPolicySize": 0,
                    "roleArn": role_arn,
                }],
                "subjectArn": f"arn:aws:rolesanywhere:{self.region}:{self.account}:subject/{uuid.uuid4()}",
            }
            if cn:
                rec["responseElements"]["credentialSet"][0]["sourceIdentity"] = f"CN={cn}"
        if cert_der is not None:
            rec["additionalEventData"] = {"x509Certificate": base64.b64encode(cert_der).decode()}
        rec.update({
            "requestID": str(uuid.uuid4()),
            "eventID": str(uuid.uuid4()),
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": self.account,
            "eventCategory": "Management",
        })
        return self.add_event(rec)

    def add_s3express_session(self, session_name, when=None, source_ip="203.0.113.20",
                              bucket="revo-test--use1-az4--x-s3"):
        """An S3 Express One Zone CreateSession record (same eventName, other service)."""
        ts = epoch(when)
        rec = {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": f"{_rand_id('AROA')}:{session_name}",
                "arn": f"arn:aws:sts::{self.account}:assumed-role/{ROLE_ARN.rsplit('/', 1)[-1]}/{session_name}",
                "accountId": self.account,
                "accessKeyId": _rand_id("ASIA"),
            },
            "eventTime": ct_time(ts),
            "eventSource": "s3express.amazonaws.com",
            "eventName": "CreateSession",
            "awsRegion": self.region,
            "sourceIPAddress": source_ip,
            "userAgent": "aws-sdk-go-v2/1.24.0",
            "requestParameters": {"bucketName": bucket, "x-amz-create-session-mode": "ReadWrite",
                                  "roleSessionName": session_name},
            "responseElements": {"credentials": {"accessKeyId": _rand_id("ASIA"),
                                                 "expiration": ct_time(ts + 300),
                                                 "secretAccessKey": "HIDDEN_DUE_TO_SECURITY_REASONS",
                                                 "sessionToken": "HIDDEN"}},
            "requestID": str(uuid.uuid4()),
            "eventID": str(uuid.uuid4()),
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": self.account,
            "eventCategory": "Management",
        }
        return self.add_event(rec)

    # ------------------------------------------------ inspection

    def calls(self):
        """The LookupEvents requests received (Recorded)."""
        with self.lock:
            return [r for r in self.requests if r.operation == OPERATION]

    # ------------------------------------------------ dispatch

    def handle(self, method, raw_path, headers, body):
        rec = Recorded(method, raw_path, headers, body)
        with self.lock:
            self.requests.append(rec)
        status, out = self._handle(rec)
        rec.status = status
        rec.answer = out
        if rec.problems:
            with self.lock:
                self.violations.append(rec)
        hdrs = [("Content-Type", CONTENT_TYPE), ("x-amzn-RequestId", str(uuid.uuid4()))]
        if status >= 400:
            hdrs.append(("x-amzn-ErrorType", out["__type"]))
        return status, hdrs, json.dumps(out).encode()

    @staticmethod
    def _error(status, etype, message):
        return status, {"__type": etype, "message": message}

    def _handle(self, rec):
        # the JSON 1.1 envelope
        target = rec.header("X-Amz-Target")
        if rec.method != "POST" or rec.path != "/":
            rec.problems.append(f"{rec.method} {rec.raw_path}: the json protocol is POST /")
            return self._error(404, "UnknownOperationException", "unknown operation")
        if target is None or not target.startswith(self.model.metadata["targetPrefix"] + "."):
            rec.problems.append(f"X-Amz-Target {target!r} is not {self.target!r}")
            return self._error(400, "UnknownOperationException", "unknown operation")
        name = target[len(self.model.metadata["targetPrefix"]) + 1:]
        rec.operation = name
        if name not in self.model.operation_names:
            rec.problems.append(f"X-Amz-Target {target!r}: no operation of the {SERVICE} model")
            return self._error(400, "UnknownOperationException", f"unknown operation {name}")
        ctype = rec.header("Content-Type") or ""
        if ctype.split(";")[0].strip() != CONTENT_TYPE:
            rec.problems.append(f"Content-Type {ctype!r}, not {CONTENT_TYPE}")
        # signature
        problems = verify_sigv4(rec, self.keys, region=self.region, service=SERVICE)
        if problems:
            rec.problems.extend(problems)
            if rec.access_key is not None and rec.access_key not in self.keys:
                return self._error(400, "UnrecognizedClientException",
                                   "The security token included in the request is invalid.")
            return self._error(403, "InvalidSignatureException",
                               "The request signature we calculated does not match the signature "
                               "you provided. Check your AWS Secret Access Key and signing method. "
                               "Consult the service documentation for details.")
        if name != OPERATION:
            rec.problems.append(f"{name}: the fake implements {OPERATION} only")
            return self._error(400, "UnsupportedOperationException",
                               f"{name} is not implemented by the fake")
        # the body
        try:
            doc = json.loads(rec.body or b"{}")
        except ValueError as e:
            rec.problems.append(f"{name}: the body is not JSON ({e})")
            return self._error(400, "SerializationException", "body is not JSON")
        rec.json = doc
        if not isinstance(doc, dict):
            rec.problems.append(f"{name}: the body is not a JSON object")
            return self._error(400, "SerializationException", "body is not an object")
        etype = self._check_input(doc, name, rec.problems)
        if rec.problems:
            return self._error(400, etype or "ValidationException", "; ".join(rec.problems)[:500])
        # faults and throttling
        with self.lock:
            # only calls that are served count for min_interval (like a token bucket)
            now = time.monotonic()
            if self.fail_next:
                status, etype = self.fail_next.pop(0)
                return self._error(status, etype, "injected fault")
            if self.throttle_next > 0:
                self.throttle_next -= 1
                return self._error(400, "ThrottlingException", "Rate exceeded")
            if self.last_call is not None and now - self.last_call < self.min_interval:
                return self._error(400, "ThrottlingException", "Rate exceeded")
            self.last_call = now
        return self._lookup(rec, doc)

    def _check_input(self, doc, name, problems):
        """Check the LookupEvents body; return the error type the real API would answer
        (None: ValidationException)."""
        shape = self.model.operation_model(name).input_shape
        etype = None
        for k in doc:
            if k not in shape.members:
                problems.append(f"{name}: unknown member {k!r}")
        for k in shape.required_members:
            if k not in doc:
                problems.append(f"{name}: required member {k!r} missing")
        for k, v in doc.items():
            if k not in shape.members:
                continue
            m = shape.members[k]
            if m.type_name == "timestamp":
                # the json protocol's timestamps are epoch seconds, as JSON numbers
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    problems.append(f"{name}.{k}: a timestamp must be epoch seconds (a number), "
                                    f"got {v!r}")
                continue
            before = len(problems)
            check_value(m, v, f"{name}.{k}", problems)
            if m.type_name == "integer" and len(problems) == before:
                lo, hi = m.metadata.get("min"), m.metadata.get("max")
                if (lo is not None and v < lo) or (hi is not None and v > hi):
                    problems.append(f"{name}.{k}: {v} outside {lo}..{hi}")
                    if k == "MaxResults":
                        etype = "InvalidMaxResultsException"
        attrs = doc.get("LookupAttributes")
        if isinstance(attrs, list):
            if len(attrs) > 1:
                problems.append(f"{name}.LookupAttributes: {len(attrs)} attributes, the API "
                                "takes at most one")
                etype = "InvalidLookupAttributesException"
            for i, a in enumerate(attrs):
                if isinstance(a, dict) and a.get("AttributeValue") == "":
                    problems.append(f"{name}.LookupAttributes[{i}]: empty AttributeValue")
                    etype = "InvalidLookupAttributesException"
                if isinstance(a, dict) and a.get("AttributeKey") not in (
                        shape.members["LookupAttributes"].member.members["AttributeKey"].enum):
                    etype = "InvalidLookupAttributesException"
        st, et = doc.get("StartTime"), doc.get("EndTime")
        if isinstance(st, (int, float)) and isinstance(et, (int, float)) and st > et:
            problems.append(f"{name}: StartTime {st} is after EndTime {et}")
            etype = "InvalidTimeRangeException"
        return etype

    # ------------------------------------------------ LookupEvents

    @staticmethod
    def _attr(record, key):
        """The values of a record that a lookup attribute compares against."""
        ui = record.get("userIdentity") or {}
        if key == "EventName":
            return [record.get("eventName")]
        if key == "EventSource":
            return [record.get("eventSource")]
        if key == "EventId":
            return [record.get("eventID")]
        if key == "ReadOnly":
            return [str(bool(record.get("readOnly"))).lower()]
        if key == "AccessKeyId":
            return [ui.get("accessKeyId")]
        if key == "Username":
            return [CloudTrailFake._username(record)]
        if key == "ResourceType":
            return [r.get("type") for r in record.get("resources") or []]
        if key == "ResourceName":
            return [r.get("ARN") for r in record.get("resources") or []]
        return []

    @staticmethod
    def _username(record):
        ui = record.get("userIdentity") or {}
        if ui.get("userName"):
            return ui["userName"]
        arn = ui.get("arn") or ""
        return arn.rsplit("/", 1)[-1] if "/" in arn else None

    def _answer_event(self, ts, record):
        ui = record.get("userIdentity") or {}
        ev = {
            "EventId": record.get("eventID"),
            "EventName": record.get("eventName"),
            "ReadOnly": str(bool(record.get("readOnly"))).lower(),
            "EventTime": _number(ts),
            "EventSource": record.get("eventSource"),
            "Resources": [{"ResourceType": r.get("type"), "ResourceName": r.get("ARN")}
                          for r in record.get("resources") or []],
            "CloudTrailEvent": json.dumps(record),
        }
        if ui.get("accessKeyId"):
            ev["AccessKeyId"] = ui["accessKeyId"]
        user = self._username(record)
        if user:
            ev["Username"] = user
        return ev

    def _lookup(self, rec, doc):
        attrs = doc.get("LookupAttributes") or []
        start = doc.get("StartTime")
        end = doc.get("EndTime")
        category = doc.get("EventCategory")
        limit = doc.get("MaxResults", 50)
        fingerprint = hashlib.sha256(json.dumps(
            [attrs, start, end, category], sort_keys=True).encode()).hexdigest()
        offset = 0
        token = doc.get("NextToken")
        with self.lock:
            if token is not None:
                got = self.tokens.get(token)
                if got is None or got[0] != fingerprint:
                    return self._error(400, "InvalidNextTokenException",
                                       "Invalid NextToken" if got is None else
                                       "The NextToken was issued for other lookup parameters")
                offset = got[1]
            sel = []
            for ts, r in self.events:
                if start is not None and ts < start:
                    continue
                if end is not None and ts > end:
                    continue
                if category is not None:
                    continue  # no insight events here
                if attrs and attrs[0]["AttributeValue"] not in self._attr(r, attrs[0]["AttributeKey"]):
                    continue
                sel.append((ts, r))
            sel.sort(key=lambda e: -e[0])  # newest first (stable for equal times)
            page = sel[offset:offset + limit]
            out = {"Events": [self._answer_event(ts, r) for ts, r in page]}
            if offset + limit < len(sel):
                nxt = base64.b64encode(os.urandom(24)).decode()
                self.tokens[nxt] = (fingerprint, offset + limit)
                out["NextToken"] = nxt
        return 200, out


# ---------------------------------------------------------------- pytest fixture


@pytest.fixture
def cloudtrail_fake():
    """A CloudTrail fake accepting publish_helpers' (AK, SK). At teardown, no request may
    have broken the cloudtrail model or the signature (set fake.expect_violations to
    allow it, or clear fake.violations after checking the expected ones)."""
    f = CloudTrailFake({AK: SK}).start()
    f.expect_violations = False
    yield f
    f.stop()
    if not f.expect_violations:
        assert not f.violations, "requests that break the cloudtrail model or SigV4:\n" + "\n".join(
            repr(r) for r in f.violations)


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--access-key", default=AK)
    ap.add_argument("--secret-key", default=SK)
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--min-interval", type=float, default=0.0)
    ap.add_argument("--demo", action="store_true",
                    help="seed a few Roles Anywhere sessions (serials 1a2b3c, 4d5e6f)")
    a = ap.parse_args()
    f = CloudTrailFake({a.access_key: a.secret_key}, region=a.region, port=a.port,
                       min_interval=a.min_interval)
    if a.demo:
        f.add_create_session("1a2b3c", cn="alice", when=time.time() - 3600)
        f.add_create_session("4d5e6f", cn="bob", when=time.time() - 600)
        f.add_create_session("4d5e6f", cn="bob", when=time.time() - 300, error_code="AccessDeniedException")
    print(f"listening on {f.url}", flush=True)
    try:
        f.httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
