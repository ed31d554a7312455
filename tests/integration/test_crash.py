"""kill -9 of a large import, and durability of acknowledged revocations."""

import os
import random
import signal
import time

import pytest
import revohelp as H

FIRST_SERIAL = 0x10000000


def make_index(path, n):
    """n lines in serial order; every 7th revoked (keyCompromise with a compromise
    time, or superseded), every 13th expired. Returns {serial: expected}."""
    t = H.now()
    fut = t + H.days(400)
    past = t - H.days(3)
    expected = {}
    lines = []
    fut_s, past_s = H.utctime(fut), H.utctime(past)
    rev_s = H.utctime(t - H.days(1))
    comp_s = H.gentime(t - H.days(2))
    for i in range(n):
        s = FIRST_SERIAL + i
        h = H.serial_hex(s)
        cn = f"crash-{i}"
        if i % 7 == 3:
            if i % 2:
                lines.append(f"R\t{fut_s}\t{rev_s},keyCompromise,{comp_s}\t{h}\tunknown\t/CN={cn}")
                expected[h] = (cn, "revoked", "keyCompromise")
            else:
                lines.append(f"R\t{fut_s}\t{rev_s},superseded\t{h}\tunknown\t/CN={cn}")
                expected[h] = (cn, "revoked", "superseded")
        elif i % 13 == 5:
            lines.append(f"E\t{past_s}\t\t{h}\tunknown\t/CN={cn}")
            expected[h] = (cn, "good", None)
        else:
            lines.append(f"V\t{fut_s}\t\t{h}\tunknown\t/CN={cn}")
            expected[h] = (cn, "good", None)
    path.write_text("\n".join(lines) + "\n")
    return expected


def lines_for(revo_bin):
    return 100_000 if revo_bin.asan else 200_000


@pytest.fixture(scope="session")
def index_file(tmp_path_factory):
    """Factory: an index.txt of n lines, made once per size for the session."""
    cache = {}

    def get(n):
        if n not in cache:
            path = tmp_path_factory.mktemp("index") / f"index-{n}.txt"
            expected = make_index(path, n)
            cache[n] = (path, expected, list(expected))  # file order == serial order
        return cache[n]

    return get


def kill_group(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def check_prefix(revo, order, expected):
    """The store holds exactly the first k lines of the file, each with its data."""
    lst = revo.list()
    got = [e["serial"] for e in lst]
    k = len(got)
    assert got == order[:k], "the imported set must be a prefix of the file"
    for e in lst:
        cn, status, reason = expected[e["serial"]]
        assert e["cn"] == cn and e["issuer"] == "ca1" and e["issued"] is True, e
        assert e["status"] == status, f"{e}: an R line must be revoked in the same commit"
        assert e["reason"] == reason, e
    rev = revo.list("--revoked")
    assert sorted(e["serial"] for e in rev) == sorted(s for s in got if expected[s][1] == "revoked")
    return k


def fresh_store(revo_at, path, ca1):
    r = revo_at(path)
    r("init")
    r("issuer", "add", "ca1", "--cert", ca1.cert_path, "--key", ca1.key_path)
    return r


def test_kill_9_during_import_leaves_consistent_prefix(revo_at, revo_bin, tmp_path, ca1, procs, index_file):
    n = lines_for(revo_bin)
    idx, expected, order = index_file(n)

    # calibrate: how long does the whole import take with this build?
    full = fresh_store(revo_at, tmp_path / "full", ca1)
    t0 = time.monotonic()
    j = full("import", "openssl-index", idx, "--issuer", "ca1", json=True, timeout=300)
    duration = time.monotonic() - t0
    assert (j["lines"], j["added"], j["present"]) == (n, n, 0)

    rnd = random.Random()
    outcomes = []  # (delay, killed, k)
    interrupted = None
    for loop in range(3):
        r = fresh_store(revo_at, tmp_path / f"store{loop}", ca1)
        # a random moment inside the import (bounded, 0.2-1.5 s if the import is that long)
        delay = rnd.uniform(min(0.2, 0.1 * duration), min(1.5, 0.95 * duration))
        p = r.popen("import", "openssl-index", idx, "--issuer", "ca1")
        procs.append(p)
        time.sleep(delay)
        kill_group(p)
        _, err = p.communicate()
        err = err.decode(errors="replace")
        assert "AddressSanitizer" not in err and "runtime error:" not in err, err
        killed = p.returncode == -signal.SIGKILL
        if not killed:
            assert p.returncode == 0, err
        k = check_prefix(r, order, expected)
        outcomes.append((round(delay, 3), killed, k))
        if killed and 0 < k < n:
            interrupted = (r, k)
    print(f"import {duration:.2f}s, (delay, killed, k): {outcomes}")
    assert any(killed for _, killed, _ in outcomes), (
        f"the import ({duration:.2f}s) always finished before the kill: {outcomes}")
    assert interrupted, (
        f"no kill left a partial import (0 < k < {n}); batches are not committed as they go? "
        f"import took {duration:.2f}s; (delay, killed, k): {outcomes}")

    # the interrupted store accepts the import again and completes it
    r, k = interrupted
    j = r("import", "openssl-index", idx, "--issuer", "ca1", json=True, timeout=300)
    assert j["lines"] == n
    assert j["added"] == n - k and j["present"] == k, (j, k)
    assert check_prefix(r, order, expected) == n


def test_acknowledged_revocations_survive_kill_of_concurrent_importer(revo_at, tmp_path, ca1, procs, index_file):
    idx, _, _ = index_file(1_000_000)  # long enough to still be running after the revocations
    r = fresh_store(revo_at, tmp_path / "store", ca1)
    imp = r.popen("import", "openssl-index", idx, "--issuer", "ca1")
    procs.append(imp)
    time.sleep(0.15)
    acked = {}
    latencies = []
    for i in range(8):
        s = f"{0x0E000000 + i:08X}"
        t0 = time.monotonic()
        j = r("revoke", "--serial", s, "--issuer", "ca1", "--reason", "keyCompromise", json=True)
        latencies.append(time.monotonic() - t0)
        c = j["certs"][0]
        assert c["result"] == "revoked"
        acked[s] = c["revoked_at"]
        # readers are not blocked by the importer either
        assert r.status(s, "ca1")["status"] == "revoked"
    assert imp.poll() is None, "the importer finished before the revocations: nothing was tested"
    assert max(latencies) < 1.0, f"revocations waited for the importer: {latencies}"
    kill_group(imp)
    imp.communicate()
    for s, at in acked.items():
        st = r.status(s, "ca1")
        assert st["status"] == "revoked" and st["reason"] == "keyCompromise" and st["revoked_at"] == at

    # kill -9 some revoke processes of a burst: every acknowledged one is present
    burst = [f"{0x0E100000 + i:08X}" for i in range(12)]
    ps = [(s, r.popen("revoke", "--serial", s, "--issuer", "ca1", json=True)) for s in burst]
    procs.extend(p for _, p in ps)
    rnd = random.Random(1234)
    for s, p in ps[::2]:
        time.sleep(rnd.uniform(0, 0.02))
        kill_group(p)
    ok = []
    for s, p in ps:
        out, err = p.communicate(timeout=120)
        assert b"AddressSanitizer" not in err and b"runtime error:" not in err, err
        if p.returncode == 0:
            ok.append(s)
        else:
            assert p.returncode == -signal.SIGKILL, err
    for s in ok + list(acked):
        assert r.status(s, "ca1")["status"] == "revoked", f"acknowledged revocation of {s} lost"
    # the store still takes writes, and the killed ones can be revoked now
    for s in burst:
        j = r("revoke", "--serial", s, "--issuer", "ca1", json=True)
        assert j["certs"][0]["result"] in ("revoked", "already-revoked")
        assert r.status(s, "ca1")["status"] == "revoked"
