"""Several revo processes writing at once."""

import time


def test_two_revokes_at_once_both_succeed(ca_store, ca1, leaf, procs):
    a = leaf(0xB001, "conc-a", ca1)
    b = leaf(0xB002, "conc-b", ca1)
    ca_store("cert", "add", a.pem_path, b.pem_path)
    p1 = ca_store.popen("revoke", "--serial", a.hex, "--reason", "keyCompromise", json=True)
    p2 = ca_store.popen("revoke", "--serial", b.hex, "--reason", "superseded", json=True)
    procs += [p1, p2]
    j1 = ca_store.finish(p1, json=True)
    j2 = ca_store.finish(p2, json=True)
    assert j1["certs"][0]["result"] == "revoked" and j2["certs"][0]["result"] == "revoked"
    rev = {e["serial"]: e["reason"] for e in ca_store.list("--revoked")}
    assert rev == {a.hex: "keyCompromise", b.hex: "superseded"}
    seqs = sorted(e["seq"] for e in ca_store.log() if e["op"] == "revoke")
    assert seqs == sorted([j1["certs"][0]["seq"], j2["certs"][0]["seq"]])
    assert len(set(seqs)) == 2


def test_same_serial_twice_at_once(ca_store, ca1, leaf, procs):
    a = leaf(0xB101, "conc-same", ca1)
    ca_store("cert", "add", a.pem_path)
    ps = [ca_store.popen("revoke", "--serial", a.hex, "--reason", "keyCompromise", json=True) for _ in range(2)]
    procs += ps
    js = [ca_store.finish(p, json=True)["certs"][0] for p in ps]
    assert sorted(j["result"] for j in js) == ["already-revoked", "revoked"]
    assert js[0]["revoked_at"] == js[1]["revoked_at"]
    assert len([e for e in ca_store.log() if e["op"] == "revoke"]) == 1


def test_burst_of_20_revokes(ca_store, ca1, leaf, procs, tmp_path):
    registered = [leaf(0xB200 + i, f"burst-{i}", ca1) for i in range(10)]
    bundle = tmp_path / "burst.pem"
    bundle.write_bytes(b"".join(c.pem for c in registered))
    ca_store("cert", "add", bundle)
    serials = [c.hex for c in registered] + [f"{0xB300 + i:04X}" for i in range(10)]
    start = time.monotonic()
    ps = []
    for s in serials:
        extra = [] if int(s, 16) < 0xB300 else ["--issuer", "ca1"]
        ps.append(ca_store.popen("revoke", "--serial", s, "--reason", "cessationOfOperation", *extra, json=True))
    procs += ps
    results = [ca_store.finish(p, json=True, timeout=120)["certs"][0] for p in ps]
    assert all(r["result"] == "revoked" for r in results)
    assert sorted(r["serial"] for r in results) == sorted(serials)
    rev = ca_store.list("--revoked")
    assert sorted(e["serial"] for e in rev) == sorted(serials)
    assert all(e["reason"] == "cessationOfOperation" for e in rev)
    log_seqs = [e["seq"] for e in ca_store.log() if e["op"] == "revoke"]
    assert len(log_seqs) == 20 and len(set(log_seqs)) == 20
    assert sorted(log_seqs) == sorted(r["seq"] for r in results)
    assert time.monotonic() - start < 60
