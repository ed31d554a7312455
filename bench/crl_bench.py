#!/usr/bin/python3
"""CRL benchmark: `revo crl build` of N revoked entries (ECDSA P-256) against
`openssl ca -gencrl` on an equivalent index.txt and strongSwan `pki --signcrl` on the
same serials, reasons and revocation times.

Prints Markdown tables of medians to stdout; run through bench/crl_bench.sh.
Targets (issue #3): 1M entries <= 0.5 s, >= 20x faster than `openssl ca -gencrl` in the
same run, anonymous memory (RssAnon) flat in N, cost linear in N.

Every command runs under GNU time (/usr/bin/time -f %M): its getrusage ru_maxrss is the
command's own peak RSS (VmHWM). Measuring straight from Python would not do: a child
spawned by vfork/posix_spawn inherits the Python parent's high-water mark at exec.
Peak RssAnon (heap and other anonymous memory, not the file-backed LMDB map or the
mapped output) comes from polling /proc/PID/status every 5 ms while the command runs.
Wall times include the GNU time wrapper (about 1 ms of fork and exec).
"""
import argparse
import calendar
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

GNU_TIME = "/usr/bin/time"

# OpenSSL index.txt reason spellings (keyTime / CAkeyTime carry the compromise time, which
# both openssl ca and revo turn into an invalidityDate), with the strongSwan pki name.
# None: no reason field (unspecified: no reasonCode extension from any of the three).
REASONS = [
    ("keyTime", "key-compromise"),
    ("keyCompromise", "key-compromise"),
    ("CAkeyTime", "ca-compromise"),
    ("superseded", "superseded"),
    ("cessationOfOperation", "cessation-of-operation"),
    ("affiliationChanged", "affiliation-changed"),
    ("certificateHold", "certificate-hold"),
    (None, None),
]

T_FIRST = calendar.timegm((2025, 1, 1, 0, 0, 0))
T_LAST = calendar.timegm((2026, 11, 1, 0, 0, 0))


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def make_ca(d):
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem", "-subj", "/O=Bench/CN=Bench CA",
         "-days", "3650", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    os.chmod(f"{d}/ca.key", 0o600)


def make_index(d, n, seed):
    """n R lines (random 16-octet serials, mixed reasons, revoked 2025-01-01..2026-11-01,
    notAfter in 2027) as index.txt, and the same entries as a strongSwan pki options file."""
    rnd = random.Random(seed)
    with open(f"{d}/index.txt", "w") as idx, open(f"{d}/pki.opt", "w") as opt:
        for i in range(n):
            serial = "%032X" % (rnd.getrandbits(127) | (1 << 120))
            t = rnd.randrange(T_FIRST, T_LAST)
            rev = time.strftime("%y%m%d%H%M%SZ", time.gmtime(t))
            ossl, sw = REASONS[i % len(REASONS)]
            if ossl:
                rev += "," + ossl
            if ossl in ("keyTime", "CAkeyTime"):
                rev += "," + time.strftime("%Y%m%d%H%M%SZ", time.gmtime(t - 10 * 86400))
            exp = time.strftime("%y%m%d%H%M%SZ", time.gmtime(
                calendar.timegm((2027, 1, 1, 0, 0, 0)) + rnd.randrange(0, 360 * 86400)))
            idx.write(f"R\t{exp}\t{rev}\t{serial}\tunknown\t/O=Bench/CN=host-{i}\n")
            opt.write((f"--reason {sw} " if sw else "") + f"--date {t} --serial {serial}\n")


def openssl_config(d, ca_dir):
    os.makedirs(f"{d}/ossl", exist_ok=True)
    shutil.copy(f"{d}/index.txt", f"{d}/ossl/index.txt")
    with open(f"{d}/ossl/crlnumber", "w") as f:
        f.write("01\n")
    with open(f"{d}/ossl/ca.cnf", "w") as f:
        f.write(f"""[ ca ]
default_ca = bench
[ bench ]
dir = {d}/ossl
database = $dir/index.txt
crlnumber = $dir/crlnumber
certificate = {ca_dir}/ca.pem
private_key = {ca_dir}/ca.key
default_md = sha256
default_crl_days = 7
unique_subject = no
crl_extensions = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid:always
""")
    return f"{d}/ossl/ca.cnf"


def _status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("RssAnon", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def _find_child(ppid):
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                st = f.read()
        except OSError:
            continue
        if int(st[st.rindex(")") + 2:].split()[1]) == ppid:
            return int(name)
    return None


def measure(cmd, exe, errfile, outfile=None):
    """Run cmd under GNU time; returns (wall seconds, peak RSS KiB, peak RssAnon KiB,
    RssAnon samples)."""
    exe = os.path.realpath(exe)
    tfile = errfile + ".time"
    stop = threading.Event()
    peak = {"RssAnon": 0, "samples": 0}

    def poll(tpid):
        pid = None
        while not stop.is_set():
            if pid is None:
                pid = _find_child(tpid)
            if pid is not None:
                try:
                    if os.readlink(f"/proc/{pid}/exe") == exe:
                        s = _status(pid)
                        if "RssAnon" in s:
                            peak["RssAnon"] = max(peak["RssAnon"], s["RssAnon"])
                            peak["samples"] += 1
                except OSError:
                    pass
            stop.wait(0.005)

    with open(errfile, "w") as err, open(outfile or os.devnull, "wb") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen([GNU_TIME, "-f", "%M", "-o", tfile] + cmd, stdout=out, stderr=err)
        th = threading.Thread(target=poll, args=(p.pid,), daemon=True)
        th.start()
        _, status, _ = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    th.join()
    if p.returncode != 0:
        with open(errfile) as f:
            raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {f.read()[-2000:]}")
    with open(tfile) as f:
        maxrss = int(f.read().split()[-1])
    return wall, maxrss, peak["RssAnon"], peak["samples"]


# ---- checking the produced CRLs ----

def _tlv(b, off):
    tag = b[off]
    ln = b[off + 1]
    if ln & 0x80:
        k = ln & 0x7F
        ln = int.from_bytes(b[off + 2:off + 2 + k], "big")
        start = off + 2 + k
    else:
        start = off + 2
    return tag, start, start + ln


def revoked_entries(der):
    """(bytes of the revokedCertificates content, list of entry serial bytes)."""
    _, s, _ = _tlv(der, 0)  # CertificateList
    _, s, tbs_end = _tlv(der, s)  # TBSCertList
    off = s
    tag, s2, e = _tlv(der, off)
    if tag == 0x02:  # version
        off = e
    off = _tlv(der, off)[2]  # signature AlgorithmIdentifier
    off = _tlv(der, off)[2]  # issuer
    off = _tlv(der, off)[2]  # thisUpdate
    if off < tbs_end and der[off] in (0x17, 0x18):
        off = _tlv(der, off)[2]  # nextUpdate
    if off >= tbs_end or der[off] != 0x30:
        return b"", []
    _, s, e = _tlv(der, off)
    serials = []
    p = s
    while p < e:
        _, es, ee = _tlv(der, p)
        _, ss, se = _tlv(der, es)
        serials.append(der[ss:se])
        p = ee
    return der[s:e], serials


def check_crl(path, ca, pem=False):
    """Parse and verify with openssl; return the DER bytes."""
    form = "PEM" if pem else "DER"
    r = subprocess.run(["openssl", "crl", "-noout", "-inform", form, "-in", path, "-CAfile", ca],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0 or "verify OK" not in r.stdout:
        raise RuntimeError(f"{path}: openssl crl failed: {r.stdout[-1000:]}")
    if pem:
        return run(["openssl", "crl", "-inform", "PEM", "-in", path, "-outform", "DER"]).stdout
    with open(path, "rb") as f:
        return f.read()


def count_text_entries(path):
    r = run(["openssl", "crl", "-noout", "-text", "-inform", "DER", "-in", path])
    return r.stdout.decode().count("Serial Number")


# ---- report ----

def fmt_t(s):
    return f"{s * 1000:.0f} ms" if s < 10 else f"{s:.1f} s"


def fmt_mb(kib):
    return f"{kib / 1024:.1f} MB"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--revo", default="build/revo")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--runs", type=int, default=7, help="revo crl build runs per size")
    ap.add_argument("--peer-runs", type=int, default=3, help="openssl/pki runs per size")
    ap.add_argument("--openssl-large-runs", type=int, default=2,
                    help="openssl ca runs at sizes >= 1,000,000")
    ap.add_argument("--pki-max", type=int, default=100000,
                    help="largest size strongSwan pki runs at (it is quadratic in N)")
    ap.add_argument("--pki-large-runs", type=int, default=1, help="pki runs at sizes > 10,000")
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    a = ap.parse_args()
    revo = os.path.abspath(a.revo)
    sizes = [int(x) for x in a.sizes.split(",")]
    openssl = shutil.which("openssl")
    pki = shutil.which("pki")
    work = a.dir or tempfile.mkdtemp(prefix="revo-crlbench-")
    os.makedirs(work, exist_ok=True)
    make_ca(work)
    ca = f"{work}/ca.pem"
    t_start = time.time()

    res = {}
    for n in sizes:
        d = f"{work}/n{n}"
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        make_index(d, n, seed=n)
        store = f"{d}/store"
        run([revo, "--store", store, "init"])
        run([revo, "--store", store, "issuer", "add", "bench", "--cert", ca,
             "--key", f"{work}/ca.key"])
        t0 = time.perf_counter()
        run([revo, "--store", store, "import", "openssl-index", f"{d}/index.txt",
             "--issuer", "bench"])
        t_import = time.perf_counter() - t0
        cnf = openssl_config(d, work)

        tools = {
            "revo": ([revo, "--store", store, "crl", "build", "--issuer", "bench",
                      "--out", f"{d}/revo.crl"], revo, a.runs),
            "openssl": ([openssl, "ca", "-gencrl", "-config", cnf, "-out", f"{d}/openssl.pem"],
                        openssl, a.openssl_large_runs if n >= 1_000_000 else a.peer_runs),
        }
        if pki and n <= a.pki_max:
            tools["pki"] = ([pki, "--signcrl", "--cacert", ca, "--cakey", f"{work}/ca.key",
                             "--lifetime", "7", "--digest", "sha256", "--outform", "der",
                             "--options", f"{d}/pki.opt"], pki,
                            a.peer_runs if n <= 10000 else a.pki_large_runs)
        r = {k: {"t": [], "rss": 0, "anon": 0, "samples": 0} for k in tools}
        # interleave the tools so that noise on the shared machine spreads over all of them
        for i in range(max(t[2] for t in tools.values())):
            for k, (cmd, exe, runs) in tools.items():
                if i >= runs:
                    continue
                out = f"{d}/pki.crl" if k == "pki" else None  # pki writes to stdout
                wall, rss, anon, samples = measure(cmd, exe, f"{d}/{k}.err", out)
                r[k]["t"].append(wall)
                r[k]["rss"] = max(r[k]["rss"], rss)
                r[k]["anon"] = max(r[k]["anon"], anon)
                r[k]["samples"] += samples
                print(f"# n={n} {k} run {i + 1}: {wall:.3f} s, RSS {rss} KiB, "
                      f"RssAnon {anon} KiB ({samples} samples)", file=sys.stderr, flush=True)

        # every CRL parses and verifies, and lists the same N entries
        der_revo = check_crl(f"{d}/revo.crl", ca)
        der_ossl = check_crl(f"{d}/openssl.pem", ca, pem=True)
        rc_revo, s_revo = revoked_entries(der_revo)
        rc_ossl, s_ossl = revoked_entries(der_ossl)
        notes = []
        if len(s_revo) != n or len(s_ossl) != n:
            raise RuntimeError(f"n={n}: revo lists {len(s_revo)}, openssl {len(s_ossl)} entries")
        if rc_revo == rc_ossl:
            notes.append("revo and openssl revokedCertificates byte-identical")
        elif sorted(s_revo) == sorted(s_ossl):
            notes.append("revo and openssl list the same serials (entries differ in encoding)")
        else:
            raise RuntimeError(f"n={n}: revo and openssl list different serials")
        if n <= 10000:
            c = count_text_entries(f"{d}/revo.crl")
            if c != n:
                raise RuntimeError(f"n={n}: openssl crl -text shows {c} entries in revo.crl")
            notes.append(f"openssl crl -text shows {c} entries")
        if "pki" in r:
            der_pki = check_crl(f"{d}/pki.crl", ca)
            _, s_pki = revoked_entries(der_pki)
            if sorted(s_pki) != sorted(s_revo):
                raise RuntimeError(f"n={n}: pki lists different serials ({len(s_pki)})")
            notes.append("pki lists the same serials")
        res[n] = {"r": r, "der": len(der_revo), "ossl_der": len(der_ossl), "import": t_import,
                  "notes": notes}
        print(f"# n={n}: " + "; ".join(notes), file=sys.stderr, flush=True)
        if not a.dir:
            shutil.rmtree(d, ignore_errors=True)

    med = lambda n, k: statistics.median(res[n]["r"][k]["t"]) if k in res[n]["r"] else None
    ver = run([openssl, "version"]).stdout.decode().split()[1]
    print(f"CRL benchmark: ECDSA P-256, sizes {', '.join(f'{n:,}' for n in sizes)}; "
          f"OpenSSL {ver}; {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, "
          f"total {time.time() - t_start:.0f} s")
    print()
    print("| N revoked | CRL (DER) | revo crl build | revo µs/entry | openssl ca -gencrl "
          "| openssl / revo | pki --signcrl | pki / revo |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in sizes:
        rv, os_, pk = med(n, "revo"), med(n, "openssl"), med(n, "pki")
        nr = lambda k: len(res[n]["r"][k]["t"])
        pki_cell = f"{fmt_t(pk)} ({nr('pki')})" if pk else "not run"
        pki_ratio = f"{pk / rv:.0f}×" if pk else "—"
        print(f"| {n:,} | {res[n]['der'] / 1e6:.2f} MB | {fmt_t(rv)} ({nr('revo')}) | "
              f"{rv / n * 1e6:.2f} | {fmt_t(os_)} ({nr('openssl')}) | {os_ / rv:.1f}× | "
              f"{pki_cell} | {pki_ratio} |")
    print()
    print("Medians, (runs) in brackets. Peak memory (peak RSS = VmHWM from getrusage; "
          "peak RssAnon sampled every 5 ms):")
    print()
    print("| N revoked | revo RSS | revo RssAnon | openssl RSS | openssl RssAnon "
          "| pki RSS | pki RssAnon |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n in sizes:
        r = res[n]["r"]
        cell = lambda k, f: fmt_mb(r[k][f]) if k in r else "—"
        print(f"| {n:,} | {cell('revo', 'rss')} | {cell('revo', 'anon')} | "
              f"{cell('openssl', 'rss')} | {cell('openssl', 'anon')} | "
              f"{cell('pki', 'rss')} | {cell('pki', 'anon')} |")
    print()
    for i in range(1, len(sizes)):
        n0, n1 = sizes[i - 1], sizes[i]
        inc = (med(n1, "revo") - med(n0, "revo")) / (n1 - n0) * 1e6
        print(f"revo incremental cost {n0:,} → {n1:,}: {inc:.2f} µs/entry")
    for n in sizes:
        print(f"n={n:,}: import {res[n]['import']:.2f} s; {'; '.join(res[n]['notes'])}")
    if not a.dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
