#!/usr/bin/python3
"""Emergency-revocation benchmark (issue #5): with 100k revoked entries already in the
store, the time from `revo revoke --publish --wait` starting to every target (Ceph radosgw
over SigV4, and a file) holding a CRL that lists the new revocation, and the time from the
commit until the OCSP responder answers "revoked". Both ways of publishing are measured:
the command publishing itself (no publisher running) and a running `revo publish`.

Prints a Markdown table of medians; run through bench/publish_bench.sh.
"""
import argparse
import base64
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import ocsp_helpers as O  # noqa: E402  (OCSP request DER)
import publish_helpers as P  # noqa: E402  (the radosgw set-up the tests use)

from cryptography import x509  # noqa: E402
from cryptography.x509 import ocsp  # noqa: E402


def run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, **kw)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--revo", default="build/revo")
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=9)
    a = ap.parse_args()
    revo = os.path.abspath(a.revo)
    work = tempfile.mkdtemp(prefix="revo-publish-bench-")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=P.AK, AWS_SECRET_ACCESS_KEY=P.SK,
               REVO_STORE=f"{work}/store")
    env.pop("AWS_PROFILE", None)
    ceph = P.Ceph(os.path.join(work, "ceph"))
    os.makedirs(ceph.dir, exist_ok=True)
    procs = []
    try:
        t = time.time()
        ceph.start()
        ceph_s = time.time() - t
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", f"{work}/ca.key", "-out", f"{work}/ca.pem", "-subj",
             "/CN=Publish Bench CA", "-days", "365", "-addext",
             "basicConstraints=critical,CA:TRUE"])
        os.chmod(f"{work}/ca.key", 0o600)
        rnd = random.Random(5)
        good = []
        with open(f"{work}/index.txt", "w") as f:
            for i in range(a.entries):
                s = "%032X" % (rnd.getrandbits(127) | (1 << 120))
                f.write(f"R\t270101000000Z\t261101000000Z,keyCompromise\t{s}\tunknown\t/CN=r{i}\n")
            for i in range(2 * a.runs + 2):
                s = "%032X" % (rnd.getrandbits(127) | (1 << 120))
                good.append(s)
                f.write(f"V\t270101000000Z\t\t{s}\tunknown\t/CN=host-{i}\n")
        R = lambda *args, **kw: run([revo, *args], env=env, **kw)  # noqa: E731
        R("init")
        R("issuer", "add", "bench", "--cert", f"{work}/ca.pem", "--key", f"{work}/ca.key")
        R("import", "openssl-index", f"{work}/index.txt", "--issuer", "bench")
        R("target", "add", "s3", f"s3://{ceph.BUCKET}/bench.crl", "--endpoint", ceph.endpoint,
          "--region", "us-east-1")
        R("target", "add", "file", f"file://{work}/published.crl")
        R("ocsp", "presign")
        R("publish", "--once")
        crl_size = os.path.getsize(f"{work}/published.crl")
        serve = subprocess.Popen([revo, "ocsp", "serve", "--listen", "127.0.0.1:0",
                                  "--threads", "2"], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        procs.append(serve)
        url = "http://" + serve.stdout.readline().split()[-1]
        ca = x509.load_pem_x509_certificate(open(f"{work}/ca.pem", "rb").read())

        def ocsp_status(serial_hex):
            der = O.ocsp_request([O.cert_id(ca, int(serial_hex, 16), "sha1")])
            path = urllib.request.quote(base64.b64encode(der).decode(), safe="")
            with urllib.request.urlopen(f"{url}/{path}", timeout=5) as r:
                resp = ocsp.load_der_ocsp_response(r.read())
            if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
                return None
            return resp.certificate_status

        results = {}
        for mode in ("self", "daemon"):
            daemon = None
            if mode == "daemon":
                daemon = subprocess.Popen([revo, "publish"], env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
                procs.append(daemon)
                time.sleep(3)  # its first round
            totals, s3_ms, file_ms, ocsp_ms = [], [], [], []
            for _ in range(a.runs):
                serial = good.pop()
                seen = {}

                def poll():
                    t0 = time.monotonic()
                    while time.monotonic() - t0 < 10:
                        try:
                            if ocsp_status(serial) == ocsp.OCSPCertStatus.REVOKED:
                                seen["t"] = time.monotonic()
                                return
                        except Exception:  # noqa: BLE001 - keep polling
                            pass
                        time.sleep(0.002)

                start = time.monotonic()
                th = threading.Thread(target=poll)
                th.start()
                p = subprocess.run([revo, "--json", "revoke", "--serial", serial, "--reason",
                                    "keyCompromise", "--publish", "--wait", "30"], env=env,
                                   capture_output=True, text=True)
                end = time.monotonic()
                th.join()
                if p.returncode != 0:
                    raise RuntimeError(f"revoke --publish failed: {p.stdout}\n{p.stderr}")
                ev = json.loads(p.stdout)["publish"]["events"]
                committed = next(e["ms"] for e in ev if e["event"] == "committed")
                up = {e["target"]: e["ms"] for e in ev if e["event"] == "uploaded"}
                totals.append((end - start) * 1000)
                s3_ms.append(up["s3"])
                file_ms.append(up["file"])
                if "t" in seen:
                    ocsp_ms.append((seen["t"] - start) * 1000 - committed)
            if daemon:
                daemon.terminate()
                daemon.wait(timeout=30)
            results[mode] = (totals, s3_ms, file_ms, ocsp_ms)
        serve.terminate()
        serve.wait(timeout=30)

        print(f"Emergency revocation benchmark: {a.entries:,} revoked entries in the store "
              f"(CRL {crl_size / 1e6:.1f} MB DER), targets Ceph radosgw (SigV4, strict) and a "
              f"file; {a.runs} revocations per mode; {os.cpu_count()} cores; "
              f"{time.strftime('%Y-%m-%d')}; radosgw ready in {ceph_s:.0f} s")
        print()
        print("| mode | revoke --publish --wait (whole command) | radosgw holds it | file holds it "
              "| OCSP answers revoked after commit |")
        print("| --- | --- | --- | --- | --- |")
        for mode, (tot, s3, fl, oc) in results.items():
            name = "no publisher running (the command publishes)" if mode == "self" \
                else "`revo publish` running"
            med = lambda xs: f"{statistics.median(xs):.0f} ms (p90 {pct(xs, 90):.0f})" if xs else "—"  # noqa: E731
            print(f"| {name} | {med(tot)} | {med(s3)} | {med(fl)} | {med(oc)} |")
        print()
        print("radosgw and file columns: milliseconds since the command started, from its "
              "timeline; OCSP: first GET answering revoked (polled every ~2 ms) minus the "
              "commit time on the timeline. Targets: ≤ 1 s median to every target; OCSP ≤ 200 ms.")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        ceph.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
