#!/usr/bin/python3
"""Store benchmark: import of N synthetic certificates from an OpenSSL index.txt,
`revo revoke` of one serial end to end (with fsync), and `revo status`.

Prints a Markdown table of medians (and p90) to stdout; run through bench/store_bench.sh.
Targets (issue #2): import of 1,000,000 <= 20 s, revoke <= 20 ms median, status <= 5 ms.
"""
import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def make_ca(d):
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem", "-subj", "/CN=Bench CA",
         "-days", "365", "-addext", "basicConstraints=critical,CA:TRUE"])


def make_index(path, n, seed=1):
    """n lines: 90% V, 8% R (mixed reasons), 2% E; serials random 16 octets."""
    rnd = random.Random(seed)
    reasons = ["keyCompromise", "superseded", "cessationOfOperation", "affiliationChanged"]
    serials = []
    with open(path, "w") as f:
        for i in range(n):
            serial = "%032X" % (rnd.getrandbits(127) | (1 << 120))
            serials.append(serial)
            r = rnd.random()
            if r < 0.08:
                rev = "261101000000Z," + reasons[i % len(reasons)]
                f.write(f"R\t270101000000Z\t{rev}\t{serial}\tunknown\t/O=Bench/CN=host-{i}\n")
            elif r < 0.10:
                f.write(f"E\t250101000000Z\t\t{serial}\tunknown\t/O=Bench/CN=host-{i}\n")
            else:
                f.write(f"V\t270101000000Z\t\t{serial}\tunknown\t/O=Bench/CN=host-{i}\n")
    return serials


def timed(cmd, env):
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - t0, after.ru_maxrss


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--revo", default="build/revo")
    ap.add_argument("--certs", type=int, default=1_000_000)
    ap.add_argument("--import-runs", type=int, default=3)
    ap.add_argument("--revokes", type=int, default=50)
    ap.add_argument("--statuses", type=int, default=100)
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    a = ap.parse_args()
    revo = os.path.abspath(a.revo)
    work = a.dir or tempfile.mkdtemp(prefix="revo-bench-")
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ)
    make_ca(work)
    index = f"{work}/index.txt"
    serials = make_index(index, a.certs)
    size_mb = os.path.getsize(index) / 1e6

    imports = []
    rss = 0
    store = None
    for i in range(a.import_runs):
        store = f"{work}/store{i}"
        shutil.rmtree(store, ignore_errors=True)
        run([revo, "--store", store, "init"])
        run([revo, "--store", store, "issuer", "add", "bench", "--cert", f"{work}/ca.pem",
             "--key", f"{work}/ca.key"])
        t, rss = timed([revo, "--store", store, "import", "openssl-index", index, "--issuer",
                        "bench"], env)
        imports.append(t)
    store_mb = os.path.getsize(f"{store}/data.mdb") / 1e6

    # revoke: distinct good serials, each one process, each one synced commit
    good = [s for s in serials[: a.revokes * 20]]
    rnd = random.Random(2)
    rnd.shuffle(good)
    revokes = []
    done = 0
    for s in good:
        if done == a.revokes:
            break
        t, _ = timed([revo, "--store", store, "revoke", "--serial", s, "--issuer", "bench",
                      "--reason", "keyCompromise"], env)
        revokes.append(t)
        done += 1

    statuses = []
    for i in range(a.statuses):
        s = serials[rnd.randrange(len(serials))]
        t, _ = timed([revo, "--store", store, "status", "--serial", s], env)
        statuses.append(t)

    ms = lambda x: f"{x * 1000:.1f} ms"
    print(f"store benchmark: {a.certs} certificates ({size_mb:.0f} MB index.txt), "
          f"store {store_mb:.0f} MB, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    print()
    print("| operation | runs | median | p90 | min | target |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| import openssl-index, {a.certs} lines | {len(imports)} | "
          f"{statistics.median(imports):.2f} s | {pct(imports, 90):.2f} s | {min(imports):.2f} s | "
          f"<= 20 s |")
    print(f"| revoke --serial (fsync) | {len(revokes)} | {ms(statistics.median(revokes))} | "
          f"{ms(pct(revokes, 90))} | {ms(min(revokes))} | <= 20 ms |")
    print(f"| status --serial | {len(statuses)} | {ms(statistics.median(statuses))} | "
          f"{ms(pct(statuses, 90))} | {ms(min(statuses))} | <= 5 ms |")
    print()
    print(f"import peak RSS: {rss / 1024:.0f} MB; import rate "
          f"{a.certs / statistics.median(imports):,.0f} lines/s")
    if not a.dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
