"""revo probe sessions against the botocore-checked CloudTrail fake (cloudtrail_server.py):
IAM Roles Anywhere CreateSession records are matched against the store. A session by a
certificate revoked before the session is CRITICAL (the key scenario: a CloudTrail log
with a revoked serial used after its revocation); an unknown serial, or a session that
cannot be tied to a serial, is a WARNING; refused attempts, sessions before the
revocation, other services' CreateSession events and events outside --since are not
problems. Every LookupEvents call the probe makes must pass the fake's model and SigV4
checks."""
import base64
import json
import re

import pytest

import cloudtrail_server as CT
import publish_helpers as P
import revohelp as H
from cloudtrail_server import cloudtrail_fake  # noqa: F401 (fixture)
from publish_helpers import world  # noqa: F401 (fixture)

ENV = P.aws_env()
SANITIZER = ("AddressSanitizer", "runtime error:", "LeakSanitizer")
PERF_NAMES = ("sessions", "after_revocation", "unknown", "unidentified", "refused",
              "before_revocation")
ANCHOR_B = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4"
HOUR = 3600


def ct(ts):
    return CT.ct_time(ts)


class Sessions:
    """A store (world: issuer ca1) with alice (revoked REV_AGO seconds ago), bob (good),
    and the CloudTrail fake."""

    REV_AGO = 2 * HOUR

    def __init__(self, w, fake):
        self.w = w
        self.fake = fake
        self.now = int(H.now().timestamp())
        self.alice = w.add_leaf("alice")
        self.bob = w.add_leaf("bob")
        self.revoked_at = self.now - self.REV_AGO
        w.revo("revoke", "--serial", self.alice.hex, "--issuer", "ca1", "--reason",
               "keyCompromise", "--at", ct(self.revoked_at))
        # serials as revo prints them
        listed = {e["cn"]: e for e in w.revo.list()}
        self.alice_serial = listed["alice"]["serial"]
        self.bob_serial = listed["bob"]["serial"]
        assert listed["alice"]["revoked_at"] == ct(self.revoked_at)

    def probe(self, *extra, json_out=False, env=ENV, store=None, region=True):
        """Run the probe; return (rc, last stdout line, CompletedProcess). Checks: no
        sanitizer report, a status line, and no request that broke the model or SigV4."""
        args = ["probe", "sessions", "--endpoint", self.fake.url]
        if region:
            args += ["--region", "us-east-1"]
        kw = {} if store is None else {"store": store}
        p = self.w.revo.raw(*args, *extra, json=json_out, env=env, timeout=60, **kw)
        assert not any(s in p.stderr for s in SANITIZER), p.stderr
        out = p.stdout.strip()
        if json_out and p.returncode != 3:
            return p.returncode, None, p
        line = out.splitlines()[-1] if out else ""
        assert re.match(r"(OK|WARNING|CRITICAL|UNKNOWN) - ", line), (p.stdout, p.stderr)
        assert " | " in line or line.startswith("UNKNOWN"), line
        assert p.returncode == {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}[
            line.split(" ", 1)[0]], (p.returncode, line)
        assert not self.fake.violations, "requests that break the cloudtrail model or SigV4:\n" + \
            "\n".join(repr(r) for r in self.fake.violations)
        return p.returncode, line, p


@pytest.fixture
def s(world, cloudtrail_fake):
    return Sessions(world, cloudtrail_fake)


def perf(line):
    """perfdata of a status line as {name: number}."""
    assert " | " in line, line
    out = {}
    for tok in line.split(" | ", 1)[1].split():
        k, v = tok.split("=", 1)
        out[k] = float(re.match(r"[-+0-9.e]+", v).group(0))
    return out


def assert_perf(line, **want):
    got = perf(line)
    for name in PERF_NAMES:
        assert name in got, f"perfdata {name} missing: {line}"
    for k, v in want.items():
        assert got[k] == v, f"{k}={got[k]}, expected {v}: {line}"


def revoked_msg(s, when, ip, serial=None, cn="alice"):
    return (f"session by revoked certificate {serial or s.alice_serial} (CN={cn}) at {ct(when)} "
            f"from {ip}, revoked {ct(s.revoked_at)}")


# ---------------------------------------------------------------- the verdicts


def test_revoked_serial_used_after_revocation_is_critical(s):
    """The key scenario: a CloudTrail log with a revoked serial used after revocation."""
    t = s.now - HOUR
    s.fake.add_create_session(s.alice.hex, cn="alice", when=t, source_ip="198.51.100.23")
    s.fake.add_create_session(s.bob.hex, cn="bob", when=s.now - 600)
    rc, line, _ = s.probe()
    assert rc == 2 and line.startswith("CRITICAL - "), line
    assert revoked_msg(s, t, "198.51.100.23") in line, line
    assert_perf(line, sessions=2, after_revocation=1, unknown=0, unidentified=0, refused=0,
                before_revocation=0)
    # the request the probe made: EventName CreateSession, a 24 h window, 50 a page
    calls = s.fake.calls()
    assert calls and all(r.status == 200 for r in calls)
    body = calls[0].json
    assert body["LookupAttributes"] == [{"AttributeKey": "EventName",
                                         "AttributeValue": "CreateSession"}]
    assert body["MaxResults"] == 50
    assert abs(body["EndTime"] - calls[0].wall) < 120, body
    assert abs((body["EndTime"] - body["StartTime"]) - 24 * HOUR) < 2, body


def test_session_in_the_second_of_the_revocation_is_critical(s):
    s.fake.add_create_session(s.alice.hex, cn="alice", when=s.revoked_at,
                              source_ip="198.51.100.24")
    rc, line, _ = s.probe()
    assert rc == 2 and revoked_msg(s, s.revoked_at, "198.51.100.24") in line, line
    assert_perf(line, sessions=1, after_revocation=1, before_revocation=0)


def test_revoked_serial_used_only_before_revocation_is_ok(s):
    s.fake.add_create_session(s.alice.hex, cn="alice", when=s.revoked_at - HOUR)
    s.fake.add_create_session(s.alice.hex, cn="alice", when=s.revoked_at - 1)
    rc, line, _ = s.probe()
    assert rc == 0 and line.startswith("OK - "), line
    assert "none by a revoked or unknown certificate" in line, line
    assert_perf(line, sessions=2, after_revocation=0, unknown=0, unidentified=0, refused=0,
                before_revocation=2)


def test_good_certificate_sessions_are_ok(s):
    for i in range(3):
        s.fake.add_create_session(s.bob.hex, cn="bob", when=s.now - 300 * (i + 1))
    rc, line, _ = s.probe()
    assert rc == 0 and line.startswith("OK - 3 sessions since "), line
    assert "none by a revoked or unknown certificate" in line, line
    assert s.bob_serial not in line and s.alice_serial not in line
    assert_perf(line, sessions=3, after_revocation=0, unknown=0, unidentified=0, refused=0,
                before_revocation=0)


def test_no_sessions_is_ok(s):
    rc, line, _ = s.probe()
    assert rc == 0 and "none by a revoked or unknown certificate" in line, line
    assert_perf(line, sessions=0, after_revocation=0)


def test_unknown_serial_is_warning(s):
    serial = 0x5EC0DE0000A1B2C3
    t = s.now - 1800
    s.fake.add_create_session(H.serial_hex(serial), cn="mallory", when=t, source_ip="192.0.2.66")
    s.fake.add_create_session(s.bob.hex, cn="bob", when=s.now - 60)
    rc, line, _ = s.probe()
    assert rc == 1 and line.startswith("WARNING - "), line
    assert (f"session by unknown serial {H.serial_hex(serial)} (CN=mallory) at {ct(t)} from "
            f"192.0.2.66: not a certificate of this store") in line, line
    assert_perf(line, sessions=2, after_revocation=0, unknown=1, unidentified=0)


def test_custom_session_name_is_unidentified_unless_the_record_has_the_certificate(s):
    s.fake.add_create_session(s.bob.hex, cn="bob", when=s.now - 900, role_session_name="deploy-bot")
    rc, line, _ = s.probe()
    assert rc == 1 and line.startswith("WARNING - "), line
    assert "1 session(s) could not be matched to a certificate serial" in line, line
    assert_perf(line, sessions=1, unidentified=1, after_revocation=0, unknown=0)
    # the same kind of session by alice's revoked certificate, with the certificate
    # logged: the serial comes from the certificate
    t = s.now - 600
    s.fake.add_create_session(s.alice.hex, cn="alice", when=t, source_ip="198.51.100.31",
                              role_session_name="deploy-bot", cert_der=s.alice.der)
    rc, line, _ = s.probe()
    assert rc == 2 and revoked_msg(s, t, "198.51.100.31") in line, line
    assert_perf(line, sessions=2, unidentified=1, after_revocation=1)


def test_certificate_in_the_record_wins_over_a_hex_session_name(s):
    """A session name that looks like bob's serial, but the logged certificate is alice's."""
    t = s.now - 600
    s.fake.add_create_session(s.alice.hex, cn="alice", when=t, source_ip="198.51.100.32",
                              role_session_name=s.bob.hex.lower(), cert_der=s.alice.der)
    rc, line, _ = s.probe()
    assert rc == 2 and revoked_msg(s, t, "198.51.100.32") in line, line
    assert_perf(line, sessions=1, after_revocation=1, unidentified=0)


def test_pem_certificate_in_request_parameters(s):
    t = s.now - 700
    rec = s.fake.add_create_session(s.alice.hex, cn=None, when=t, source_ip="198.51.100.33",
                                    role_session_name="ci-runner")
    rec["requestParameters"]["x509Certificate"] = s.alice.pem.decode()
    rc, line, _ = s.probe()
    # no sourceIdentity in the record: the CN comes from the store
    assert rc == 2 and revoked_msg(s, t, "198.51.100.33") in line, line


def test_refused_attempts_by_a_revoked_serial_are_not_critical(s):
    for i in range(2):
        s.fake.add_create_session(s.alice.hex, cn="alice", when=s.now - 600 * (i + 1),
                                  error_code="AccessDenied",
                                  error_message="Certificate has been revoked",
                                  cert_der=s.alice.der if i else None)
    rc, line, _ = s.probe()
    assert rc == 0 and line.startswith("OK - "), line
    assert_perf(line, refused=2, after_revocation=0, unknown=0, unidentified=0)


def test_s3express_create_session_is_ignored(s):
    # an S3 Express One Zone CreateSession whose session name is alice's revoked serial
    s.fake.add_s3express_session(s.alice.hex.lower(), when=s.now - 600)
    rec = s.fake.add_s3express_session("deploy-bot", when=s.now - 500)
    rec["additionalEventData"] = {"x509Certificate": base64.b64encode(s.alice.der).decode()}
    s.fake.add_create_session(s.bob.hex, cn="bob", when=s.now - 400)
    rc, line, _ = s.probe()
    assert rc == 0 and line.startswith("OK - "), line
    assert s.alice_serial not in line, line
    assert_perf(line, sessions=1, after_revocation=0, unknown=0, unidentified=0, refused=0)


def test_since_excludes_older_events(s):
    t = s.revoked_at + 600  # after the revocation, 1 h 50 min ago
    s.fake.add_create_session(s.alice.hex, cn="alice", when=t, source_ip="198.51.100.40")
    rc, line, _ = s.probe("--since", "90m")
    assert rc == 0, line
    assert_perf(line, sessions=0, after_revocation=0)
    body = s.fake.calls()[-1].json
    assert abs((body["EndTime"] - body["StartTime"]) - 90 * 60) < 2, body
    rc, line, _ = s.probe("--since", "3h")
    assert rc == 2 and revoked_msg(s, t, "198.51.100.40") in line, line
    rc, line, _ = s.probe("--since", "1d")
    assert rc == 2, line
    rc, line, _ = s.probe("--since", "3600s")
    assert rc == 0, line


def test_trust_anchor_filter(s):
    t = s.now - 600
    s.fake.add_create_session(s.alice.hex, cn="alice", when=t, source_ip="198.51.100.50",
                              trust_anchor_arn=ANCHOR_B)
    s.fake.add_create_session(s.bob.hex, cn="bob", when=s.now - 300)
    rc, line, _ = s.probe("--trust-anchor", CT.TRUST_ANCHOR_ARN)
    assert rc == 0, line
    assert_perf(line, sessions=1, after_revocation=0)
    rc, line, _ = s.probe("--trust-anchor", ANCHOR_B)
    assert rc == 2 and revoked_msg(s, t, "198.51.100.50") in line, line
    assert_perf(line, sessions=1, after_revocation=1)
    rc, line, _ = s.probe()
    assert rc == 2, line
    assert_perf(line, sessions=2, after_revocation=1)


def test_issuer_filter(s, ca2, leaf):
    """With --issuer ca2, ca1's certificates are not this probe's: alice's serial is unknown."""
    s.w.revo("issuer", "add", "ca2", "--cert", ca2.cert_path, "--key", ca2.key_path)
    t = s.now - 600
    s.fake.add_create_session(s.alice.hex, cn="alice", when=t, source_ip="198.51.100.60")
    rc, line, _ = s.probe("--issuer", "ca1")
    assert rc == 2 and revoked_msg(s, t, "198.51.100.60") in line, line
    rc, line, _ = s.probe("--issuer", "ca2")
    assert rc == 1 and f"session by unknown serial {s.alice_serial} (CN=alice)" in line, line
    assert_perf(line, sessions=1, after_revocation=0, unknown=1)


# ---------------------------------------------------------------- the API


def test_paging_reaches_the_last_page(s):
    # 120 good sessions in the last 2 hours, and the oldest of all (on the last page)
    # is alice's, after her revocation
    t = s.revoked_at + 60
    s.fake.add_create_session(s.alice.hex, cn="alice", when=t, source_ip="198.51.100.70")
    for i in range(120):
        s.fake.add_create_session(s.bob.hex, cn="bob", when=s.now - 30 * i)
    rc, line, _ = s.probe()
    assert rc == 2 and revoked_msg(s, t, "198.51.100.70") in line, line
    assert_perf(line, sessions=121, after_revocation=1)
    calls = s.fake.calls()
    assert [r.status for r in calls] == [200, 200, 200], calls
    assert "NextToken" not in calls[0].json
    assert all("NextToken" in r.json for r in calls[1:])
    # pages at least 0.5 s apart (2 calls per second is the account's limit)
    gaps = [b.time - a.time for a, b in zip(calls, calls[1:])]
    assert all(g >= 0.45 for g in gaps), gaps


def test_max_events_warns(s):
    for i in range(120):
        s.fake.add_create_session(s.bob.hex, cn="bob", when=s.now - 30 * i)
    rc, line, _ = s.probe("--max-events", "60")
    assert rc == 1 and line.startswith("WARNING - "), line
    assert re.search(r"more than 60 events\b.*only the newest 60 checked", line), line
    assert_perf(line, sessions=60, after_revocation=0)


def test_throttled_once_still_answers(s):
    t = s.now - HOUR
    s.fake.add_create_session(s.alice.hex, cn="alice", when=t, source_ip="198.51.100.80")
    s.fake.throttle_next = 1
    rc, line, _ = s.probe()
    assert rc == 2 and revoked_msg(s, t, "198.51.100.80") in line, line
    calls = s.fake.calls()
    assert [r.status for r in calls] == [400, 200], calls
    assert calls[0].answer["__type"] == "ThrottlingException"


def test_throttled_more_than_five_times_is_unknown(s):
    s.fake.throttle_next = 100
    rc, line, _ = s.probe()
    assert rc == 3 and line.startswith("UNKNOWN - "), line
    assert 1 < len(s.fake.calls()) <= 6, s.fake.calls()


def test_wrong_secret_is_unknown(s):
    s.fake.add_create_session(s.alice.hex, cn="alice", when=s.now - HOUR)
    env = P.aws_env(sk="not-the-secret-key")
    p = s.w.revo.raw("probe", "sessions", "--endpoint", s.fake.url, "--region", "us-east-1",
                     env=env, timeout=60)
    assert not any(m in p.stderr for m in SANITIZER), p.stderr
    line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    assert p.returncode == 3 and line.startswith("UNKNOWN - "), (p.stdout, p.stderr)
    assert s.fake.violations and all(
        any("signature does not match" in x for x in r.problems) for r in s.fake.violations), \
        s.fake.violations
    s.fake.violations.clear()


def test_endpoint_down_is_unknown(s):
    p = s.w.revo.raw("probe", "sessions", "--endpoint", f"http://127.0.0.1:{P.free_port()}",
                     "--region", "us-east-1", env=ENV, timeout=60)
    assert not any(m in p.stderr for m in SANITIZER), p.stderr
    line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    assert p.returncode == 3 and line.startswith("UNKNOWN - "), (p.stdout, p.stderr)


def test_api_error_is_unknown(s):
    s.fake.fail_next.append((400, "OperationNotPermittedException"))
    rc, line, _ = s.probe()
    assert rc == 3 and line.startswith("UNKNOWN - "), line


# ---------------------------------------------------------------- output forms


def test_json_shape_and_verdicts(s):
    f = s.fake
    unknown = 0x6A0000000000BEEF
    ev = {
        "ok": f.add_create_session(s.bob.hex, cn="bob", when=s.now - 100, source_ip="192.0.2.1"),
        "before-revocation": f.add_create_session(s.alice.hex, cn="alice",
                                                  when=s.revoked_at - 600, source_ip="192.0.2.2"),
        "after-revocation": f.add_create_session(s.alice.hex, cn="alice", when=s.now - 200,
                                                 source_ip="192.0.2.3"),
        "unknown": f.add_create_session(H.serial_hex(unknown), cn="eve", when=s.now - 300,
                                        source_ip="192.0.2.4"),
        "unidentified": f.add_create_session(s.bob.hex, cn="bob", when=s.now - 400,
                                             source_ip="192.0.2.5", role_session_name="ops-box"),
        "refused": f.add_create_session(s.alice.hex, cn="alice", when=s.now - 500,
                                        source_ip="192.0.2.6", error_code="AccessDenied"),
    }
    rc, _, p = s.probe(json_out=True)
    assert rc == 2, (p.stdout, p.stderr)
    j = json.loads(p.stdout)
    assert j["status"] == "CRITICAL"
    assert j["line"].startswith("CRITICAL - ") and revoked_msg(s, s.now - 200, "192.0.2.3") in j["line"]
    assert isinstance(j["summary"], str)
    for k in PERF_NAMES:
        assert k in j["perfdata"], j["perfdata"]
    assert {k: j["perfdata"][k] for k in PERF_NAMES} == {
        "sessions": 6, "after_revocation": 1, "unknown": 1, "unidentified": 1, "refused": 1,
        "before_revocation": 1}
    statuses = {c["status"] for c in j["checks"]}
    assert "CRITICAL" in statuses and "WARNING" in statuses, j["checks"]
    assert any(c["status"] == "CRITICAL" and c["message"] == revoked_msg(s, s.now - 200, "192.0.2.3")
               for c in j["checks"]), j["checks"]
    by_id = {x["event_id"]: x for x in j["sessions"]}
    assert len(j["sessions"]) == 6
    keys = {"event_id", "time", "source_ip", "serial", "cn", "issuer", "trust_anchor", "verdict",
            "revoked_at"}
    for x in j["sessions"]:
        assert keys <= set(x), x
    for verdict, rec in ev.items():
        x = by_id[rec["eventID"]]
        assert x["verdict"] == verdict, (verdict, x)
        assert x["time"] == rec["eventTime"] and x["source_ip"] == rec["sourceIPAddress"], x
        assert x["trust_anchor"] == CT.TRUST_ANCHOR_ARN, x
    ok = by_id[ev["ok"]["eventID"]]
    assert (ok["serial"], ok["cn"], ok["issuer"], ok["revoked_at"]) == (s.bob_serial, "bob", "ca1", None)
    for v in ("before-revocation", "after-revocation"):
        x = by_id[ev[v]["eventID"]]
        assert (x["serial"], x["cn"], x["issuer"], x["revoked_at"]) == (
            s.alice_serial, "alice", "ca1", ct(s.revoked_at)), x
    x = by_id[ev["unknown"]["eventID"]]
    assert (x["serial"], x["cn"], x["issuer"], x["revoked_at"]) == (H.serial_hex(unknown), "eve",
                                                                     None, None), x
    x = by_id[ev["unidentified"]["eventID"]]
    assert x["serial"] is None and x["issuer"] is None and x["revoked_at"] is None, x
    x = by_id[ev["refused"]["eventID"]]
    assert x["verdict"] == "refused", x


def test_prometheus_file(s, tmp_path):
    s.fake.add_create_session(s.alice.hex, cn="alice", when=s.now - 600)
    s.fake.add_create_session(s.bob.hex, cn="bob", when=s.now - 300)
    prom = tmp_path / "sessions.prom"
    rc, line, _ = s.probe("--prometheus", prom)
    assert rc == 2, line
    text = prom.read_text()
    assert "# TYPE revo_probe_status gauge" in text
    assert re.search(r'^revo_probe_status\{probe="sessions"[^}]*\} 2$', text, re.M), text
    want = {"sessions": 2, "after_revocation": 1, "unknown": 0, "unidentified": 0, "refused": 0,
            "before_revocation": 0}
    for name, v in want.items():
        m = re.search(rf"^revo_probe_sessions_{name}\{{[^}}]*\}} (\S+)$", text, re.M)
        assert m and float(m.group(1)) == v, (name, text)
    assert not list(tmp_path.glob("sessions.prom.tmp*"))
    # an OK run overwrites it
    with s.fake.lock:
        s.fake.events.clear()
    rc, line, _ = s.probe("--prometheus", prom)
    assert rc == 0, line
    assert re.search(r'^revo_probe_status\{probe="sessions"[^}]*\} 0$', prom.read_text(), re.M)


# ---------------------------------------------------------------- misuse and failures


@pytest.mark.parametrize("args", [
    ("--since", "yesterday"),
    ("--since", "-5h"),
    ("--since", ""),
    ("--max-events", "many"),
    ("unexpected-argument",),
])
def test_misuse_is_unknown(s, args):
    rc, line, p = s.probe(*args)
    assert rc == 3 and line.startswith("UNKNOWN - "), (p.stdout, p.stderr)
    assert not s.fake.calls()


def test_unknown_option_exits_unknown(s):
    """Misuse caught by the option parser is still a monitoring-plugin line: UNKNOWN on
    stdout, naming the option, exit 3."""
    p = s.w.revo.raw("probe", "sessions", "--endpoint", s.fake.url, "--no-such-option", env=ENV)
    assert not any(m in p.stderr for m in SANITIZER), p.stderr
    assert p.returncode == 3, (p.stdout, p.stderr)
    assert p.stdout.startswith("UNKNOWN - unknown option '--no-such-option'"), p.stdout
    p = s.w.revo.raw("probe", "sessions", "--since", env=ENV)
    assert p.returncode == 3 and p.stdout.startswith("UNKNOWN - option '--since' needs a value"), p.stdout
    assert not s.fake.calls()


def test_store_that_cannot_be_opened_is_unknown(s, tmp_path):
    s.fake.add_create_session(s.alice.hex, cn="alice", when=s.now - 600)
    rc, line, p = s.probe(store=tmp_path / "no-store-here")
    assert rc == 3 and line.startswith("UNKNOWN - "), (p.stdout, p.stderr)


def test_region_from_aws_region(s):
    """Without --region the probe signs for AWS_REGION (then AWS_DEFAULT_REGION), like
    targets do: the fake here checks the credential scope's region."""
    s.fake.region = "eu-west-1"
    s.fake.add_create_session(s.bob.hex, cn="bob", when=s.now - 600)
    rc, line, p = s.probe(region=False, env=dict(ENV, AWS_REGION="eu-west-1"))
    assert rc == 0 and "sessions=1" in line, (line, p.stderr)
    rc, line, p = s.probe(region=False, env=dict(ENV, AWS_DEFAULT_REGION="eu-west-1"))
    assert rc == 0 and "sessions=1" in line, (line, p.stderr)
