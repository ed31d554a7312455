"""Self-test of the CloudTrail fake (cloudtrail_server.py) with a real botocore client:
what botocore sends passes the fake's model and signature checks, and the fake answers
what botocore expects (filters, time window, newest first, paging, errors)."""
import datetime
import json
import time
import urllib.error
import urllib.request

import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import botocore.exceptions
import botocore.session
import pytest

import cloudtrail_server as CT
import publish_helpers as P
from cloudtrail_server import cloudtrail_fake  # noqa: F401 (fixture)

UTC = datetime.timezone.utc


def client(fake, sk=CT.SK, ak=CT.AK):
    return botocore.session.get_session().create_client(
        "cloudtrail", endpoint_url=fake.url, region_name="us-east-1",
        aws_access_key_id=ak, aws_secret_access_key=sk,
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1},
                                      connect_timeout=5, read_timeout=10))


def raw_call(fake, body, target=None, sk=CT.SK, content_type=CT.CONTENT_TYPE):
    """POST a hand-made (but correctly signed) LookupEvents body; (status, json, headers)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=fake.url + "/", data=data,
        headers={"X-Amz-Target": target or fake.target, "Content-Type": content_type})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(CT.AK, sk), "cloudtrail",
                            "us-east-1").add_auth(req)
    prepared = req.prepare()
    r = urllib.request.Request(prepared.url, data=data, method="POST",
                               headers=dict(prepared.headers.items()))
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, json.loads(resp.read()), resp.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers


def test_keys_match_publish_helpers():
    assert (CT.AK, CT.SK) == (P.AK, P.SK)
    env = P.aws_env()
    assert env["AWS_ACCESS_KEY_ID"] == CT.AK and env["AWS_SECRET_ACCESS_KEY"] == CT.SK


def test_lookup_by_event_name_and_time_window(cloudtrail_fake):
    f = cloudtrail_fake
    now = time.time()
    old = f.add_create_session("0A1B2C", cn="old", when=now - 5 * 3600)
    a = f.add_create_session("0A1B2C", cn="alice", when=now - 3600, source_ip="198.51.100.7")
    b = f.add_create_session("3d4e5f", cn="bob", when=now - 60,
                             cert_der=b"\x30\x03\x02\x01\x01", error_code="AccessDeniedException")
    f.add_event({"eventVersion": "1.08", "eventTime": CT.ct_time(now - 120),
                 "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
                 "eventID": "11111111-2222-3333-4444-555555555555", "readOnly": False,
                 "userIdentity": {"type": "IAMUser", "userName": "ops",
                                  "accessKeyId": "AKIAEXAMPLEEXAMPLE01"}})
    s3x = f.add_s3express_session("0a1b2c", when=now - 30)
    c = client(f)
    resp = c.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateSession"}],
        StartTime=datetime.datetime.fromtimestamp(now - 2 * 3600, UTC),
        EndTime=datetime.datetime.fromtimestamp(now + 1, UTC), MaxResults=50)
    got = [e["EventId"] for e in resp["Events"]]
    # newest first; the old session is outside the window; AssumeRole is another name
    assert got == [s3x["eventID"], b["eventID"], a["eventID"]], got
    assert old["eventID"] not in got and "NextToken" not in resp
    ev = resp["Events"][2]
    assert isinstance(ev["EventTime"], datetime.datetime)
    assert int(ev["EventTime"].timestamp()) == int(now - 3600)
    assert ev["EventSource"] == "rolesanywhere.amazonaws.com" and ev["ReadOnly"] == "false"
    rec = json.loads(ev["CloudTrailEvent"])
    assert rec == a
    assert rec["eventTime"] == CT.ct_time(now - 3600) and rec["eventTime"].endswith("Z")
    cs = rec["responseElements"]["credentialSet"][0]
    # the default role session name is the serial in lowercase hex
    assert cs["assumedRoleUser"]["arn"].endswith("/0a1b2c")
    assert cs["assumedRoleUser"]["assumedRoleId"].endswith(":0a1b2c")
    assert cs["sourceIdentity"] == "CN=alice" and rec["sourceIPAddress"] == "198.51.100.7"
    assert "roleSessionName" not in rec["requestParameters"]
    assert rec["requestParameters"]["trustAnchorArn"] == CT.TRUST_ANCHOR_ARN
    refused = json.loads(resp["Events"][1]["CloudTrailEvent"])
    assert refused["errorCode"] == "AccessDeniedException" and refused["responseElements"] is None
    assert refused["additionalEventData"]["x509Certificate"] == "MAMCAQE="
    # other attributes
    by_source = c.lookup_events(LookupAttributes=[
        {"AttributeKey": "EventSource", "AttributeValue": "rolesanywhere.amazonaws.com"}])
    assert [e["EventId"] for e in by_source["Events"]] == [b["eventID"], a["eventID"], old["eventID"]]
    by_user = c.lookup_events(LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "ops"}])
    assert [e["EventName"] for e in by_user["Events"]] == ["AssumeRole"]
    assert by_user["Events"][0]["AccessKeyId"] == "AKIAEXAMPLEEXAMPLE01"
    by_id = c.lookup_events(LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": a["eventID"]}])
    assert [e["EventId"] for e in by_id["Events"]] == [a["eventID"]]
    assert len(c.lookup_events()["Events"]) == 5
    assert not f.violations
    assert all(r.operation == "LookupEvents" and r.status == 200 for r in f.requests)


def test_paging_with_next_token(cloudtrail_fake):
    f = cloudtrail_fake
    now = time.time()
    ids = [f.add_create_session(f"{i + 1:06x}", cn=f"n{i}", when=now - 10 * i)["eventID"]
           for i in range(120)]
    c = client(f)
    kw = dict(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateSession"}],
              StartTime=datetime.datetime.fromtimestamp(now - 7200, UTC),
              EndTime=datetime.datetime.fromtimestamp(now + 1, UTC))
    pages, token = [], None
    while True:
        r = c.lookup_events(**kw, **({"NextToken": token} if token else {}))
        pages.append([e["EventId"] for e in r["Events"]])
        token = r.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [50, 50, 20]
    assert sum(pages, []) == ids  # newest first, each event once
    # botocore's own paginator agrees
    seen = [e["EventId"] for page in c.get_paginator("lookup_events").paginate(**kw)
            for e in page["Events"]]
    assert seen == ids
    # a token only works with the parameters it was issued for
    first = c.lookup_events(**kw, MaxResults=10)
    moved = dict(kw, EndTime=datetime.datetime.fromtimestamp(now + 5, UTC))
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        c.lookup_events(**moved, NextToken=first["NextToken"])
    assert ei.value.response["Error"]["Code"] == "InvalidNextTokenException"
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        c.lookup_events(**kw, NextToken="bm90IGEgdG9rZW4=")
    assert ei.value.response["Error"]["Code"] == "InvalidNextTokenException"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert not f.violations


def test_wrong_secret_and_unknown_key_are_refused(cloudtrail_fake):
    f = cloudtrail_fake
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        client(f, sk="not-the-secret").lookup_events()
    assert ei.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        client(f, ak="AKIDNOBODYKNOWS00001").lookup_events()
    assert ei.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert len(f.violations) == 2
    assert any("signature does not match" in p for p in f.violations[0].problems)
    assert any("unknown access key" in p for p in f.violations[1].problems)
    f.violations.clear()


def test_throttling_and_faults(cloudtrail_fake):
    f = cloudtrail_fake
    c = client(f)
    f.throttle_next = 1
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        c.lookup_events()
    err = ei.value.response
    assert err["Error"]["Code"] == "ThrottlingException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ThrottlingException"
    c.lookup_events()  # the next one is served
    f.fail_next.append((500, "InternalFailure"))
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        c.lookup_events()
    assert ei.value.response["Error"]["Code"] == "InternalFailure"
    f.min_interval = 30
    f.last_call = None
    c.lookup_events()
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        c.lookup_events()
    assert ei.value.response["Error"]["Code"] == "ThrottlingException"
    with pytest.raises(botocore.exceptions.ClientError):
        c.lookup_events()  # throttled calls do not reset the interval, but it still holds
    # botocore's standard retry mode retries throttling by itself
    f.min_interval = 0
    f.throttle_next = 1
    retrying = botocore.session.get_session().create_client(
        "cloudtrail", endpoint_url=f.url, region_name="us-east-1", aws_access_key_id=CT.AK,
        aws_secret_access_key=CT.SK, config=botocore.config.Config(
            retries={"mode": "standard", "total_max_attempts": 3}))
    n = len(f.calls())
    assert retrying.lookup_events()["Events"] == []
    assert len(f.calls()) == n + 2
    assert not f.violations


@pytest.mark.parametrize("body,etype,what", [
    ({"MaxResults": 500}, "InvalidMaxResultsException", "outside 1..50"),
    ({"MaxResults": 0}, "InvalidMaxResultsException", "outside 1..50"),
    ({"Bogus": 1}, "ValidationException", "unknown member 'Bogus'"),
    ({"StartTime": "2026-01-01T00:00:00Z"}, "ValidationException", "epoch seconds"),
    ({"StartTime": 200, "EndTime": 100}, "InvalidTimeRangeException", "after EndTime"),
    ({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "CreateSession"},
                           {"AttributeKey": "EventSource", "AttributeValue": "x"}]},
     "InvalidLookupAttributesException", "at most one"),
    ({"LookupAttributes": [{"AttributeKey": "SessionName", "AttributeValue": "x"}]},
     "InvalidLookupAttributesException", "not one of"),
    ({"LookupAttributes": [{"AttributeKey": "EventName"}]}, "ValidationException",
     "required member 'AttributeValue'"),
    ({"MaxResults": "50"}, "ValidationException", "expected an integer"),
])
def test_malformed_bodies_are_violations(cloudtrail_fake, body, etype, what):
    f = cloudtrail_fake
    status, doc, headers = raw_call(f, body)
    assert status == 400 and doc["__type"] == etype, (status, doc)
    assert headers["x-amzn-ErrorType"] == etype
    assert len(f.violations) == 1
    assert any(what in p for p in f.violations[0].problems), f.violations[0].problems
    f.violations.clear()


def test_envelope_violations(cloudtrail_fake):
    f = cloudtrail_fake
    status, doc, _ = raw_call(f, {}, content_type="application/json")
    assert status == 400 and doc["__type"] == "ValidationException"
    assert any("Content-Type" in p for p in f.violations[0].problems)
    status, doc, _ = raw_call(f, {}, target="CloudTrail_20131101.LookupEvents")
    assert status == 400 and doc["__type"] == "UnknownOperationException"
    status, doc, _ = raw_call(f, b"{not json")
    assert status == 400 and doc["__type"] == "SerializationException"
    assert len(f.violations) == 3
    f.violations.clear()
    # a well-formed hand-made body with float timestamps passes
    now = time.time()
    f.add_create_session("abc", when=now - 5)
    status, doc, _ = raw_call(f, {"StartTime": now - 60.5, "EndTime": now, "MaxResults": 50,
                                  "LookupAttributes": [{"AttributeKey": "EventName",
                                                        "AttributeValue": "CreateSession"}]})
    assert status == 200 and len(doc["Events"]) == 1 and isinstance(doc["Events"][0]["EventTime"], int)
    assert not f.violations
