"""Store faults: not a store, garbage, newer schema, read-only store."""

import hashlib
import os
import pathlib
import shutil
import subprocess

import pytest
import revohelp as H

NOBODY = 65534


def tree_digest(d):
    """Names, modes and contents of every file under d, except LMDB's lock file
    (whose reader table changes whenever anyone opens the environment)."""
    d = pathlib.Path(d)
    out = {}
    for p in sorted(d.rglob("*")):
        if p.name == "lock.mdb":
            continue
        st = p.lstat()
        out[str(p.relative_to(d))] = (
            st.st_mode,
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None,
        )
    return out


def write_commands(leaf_path, index_path):
    return {
        "revoke": ["revoke", "--serial", "0A01", "--issuer", "ca1", "--reason", "keyCompromise"],
        "cert-add": ["cert", "add", leaf_path],
        "import": ["import", "openssl-index", index_path, "--issuer", "ca1"],
        "unhold": ["unhold", "--serial", "0A02", "--issuer", "ca1"],
    }


@pytest.fixture
def inputs(ca1, leaf, tmp_path):
    lf = leaf(0xA001, "fault-target", ca1)
    idx = tmp_path / "index.txt"
    H.write_index(idx, [H.index_line("V", H.now() + H.days(30), 0xA003, "from-index")])
    return lf, idx


READ_AND_WRITE = ["list", "status", "log", "revoke", "cert-add", "import", "issuer-add"]


def run_kind(revo, kind, store, lf, idx, ca1, **kw):
    args = {
        "list": ["list"],
        "status": ["status", "--serial", "0A01", "--issuer", "ca1"],
        "log": ["log"],
        "issuer-add": ["issuer", "add", "ca1", "--cert", ca1.cert_path, "--key", ca1.key_path],
        **write_commands(lf.pem_path, idx),
    }[kind]
    return revo.fail(*args, store=store, **kw)


@pytest.mark.parametrize("kind", READ_AND_WRITE)
def test_empty_directory_is_not_a_store(revo, tmp_path, inputs, ca1, kind):
    d = tmp_path / "empty"
    d.mkdir()
    run_kind(revo, kind, d, *inputs, ca1)
    assert list(d.iterdir()) == [], "a failed command must not create files in a non-store directory"


@pytest.mark.parametrize("kind", ["list", "revoke"])
def test_missing_directory_is_not_created(revo, tmp_path, inputs, ca1, kind):
    d = tmp_path / "missing"
    run_kind(revo, kind, d, *inputs, ca1)
    assert not d.exists()


@pytest.mark.parametrize("kind", READ_AND_WRITE + ["init"])
def test_garbage_data_mdb(revo, tmp_path, inputs, ca1, kind):
    d = tmp_path / "garbage"
    d.mkdir()
    (d / "data.mdb").write_bytes(b"this is not an LMDB file\n" * 400)
    before = tree_digest(d)
    if kind == "init":
        revo.fail("init", store=d)
    else:
        run_kind(revo, kind, d, *inputs, ca1)
    assert tree_digest(d) == before


def test_regular_file_as_store(revo, tmp_path):
    f = tmp_path / "file"
    f.write_text("hello\n")
    revo.fail("list", store=f)
    revo.fail("init", store=f)
    assert f.read_text() == "hello\n"


@pytest.mark.parametrize("db", [None, "meta"], ids=["main-db-only", "meta-without-schema"])
def test_foreign_lmdb_environment_is_not_a_store(revo, tmp_path, inputs, ca1, db):
    d = tmp_path / "foreign"
    d.mkdir()
    dump = "VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n %s\n %s\nDATA=END\n" % (
        b"hello".hex(), b"world".hex())
    subprocess.run(["mdb_load", *(["-s", db] if db else []), str(d)], input=dump.encode(), check=True)
    assert (d / "data.mdb").exists()
    before = tree_digest(d)
    run_kind(revo, "list", d, *inputs, ca1)
    run_kind(revo, "revoke", d, *inputs, ca1)
    assert tree_digest(d) == before


def test_map_grows_when_full(revo_at, tmp_path, ca1):
    """docs/store.md: the map doubles on MDB_MAP_FULL; REVO_MAP_SIZE sets the first size."""
    small = {"REVO_MAP_SIZE": str(1 << 20)}
    r = revo_at(tmp_path / "small")
    r("init", env=small)
    r("issuer", "add", "ca1", "--cert", ca1.cert_path, "--key", ca1.key_path, env=small)
    n = 20000
    fut = H.now() + H.days(30)
    idx = tmp_path / "index.txt"
    H.write_index(idx, [H.index_line("V", fut, 0x300000 + i, f"grow-{i}") for i in range(n)])
    j = r("import", "openssl-index", idx, "--issuer", "ca1", json=True, env=small)
    assert j["added"] == n
    assert (tmp_path / "small" / "data.mdb").stat().st_size > (1 << 20)
    # another process, with its own idea of the map size, reads and writes it
    assert r.status(H.serial_hex(0x300000 + n - 1), env=small)["status"] == "good"
    r("revoke", "--serial", H.serial_hex(0x300000 + n - 1), env=small)
    assert len(r.list(env=small)) == n
    assert len(r.list()) == n


def test_command_on_uninitialised_store_path_then_init_works(revo, store, ca1):
    revo.fail("issuer", "add", "ca1", "--cert", ca1.cert_path, "--key", ca1.key_path)
    revo("init")
    revo("issuer", "add", "ca1", "--cert", ca1.cert_path, "--key", ca1.key_path)


# ---------------------------------------------------------------- newer schema


def _dump_db(store, db):
    p = subprocess.run(["mdb_dump", "-s", db, str(store)], capture_output=True, check=True)
    lines = p.stdout.decode().split("\n")
    end = lines.index("HEADER=END")
    header = lines[: end + 1]
    body = []
    i = end + 1
    while lines[i] != "DATA=END":
        body.append((bytes.fromhex(lines[i].strip()), bytes.fromhex(lines[i + 1].strip())))
        i += 2
    return header, body


def _load_db(store, db, header, records):
    text = "\n".join(header) + "\n"
    for k, v in records:
        text += " " + k.hex() + "\n " + v.hex() + "\n"
    text += "DATA=END\n"
    subprocess.run(["mdb_load", "-s", db, str(store)], input=text.encode(), check=True,
                   capture_output=True)


def bump_schema_version(store):
    """Rewrite meta's schema version to a newer one with mdb_dump/mdb_load.

    docs/store.md documents the encoding; to stay robust this raises every
    integer encoding of the version found in the value."""
    header, recs = _dump_db(store, "meta")
    keys = [k for k, _ in recs]
    target = [k for k in keys if b"schema" in k.lower()]
    assert target, f"no schema version key in meta: {keys}"
    k = target[0]
    v = dict(recs)[k]
    if v.strip().isdigit():
        nv = str(int(v) + 1).encode()
    else:
        # binary: replace the trailing integer (1) with a much larger one of the same width
        nv = bytearray(v)
        # find the encoding of 1 in big- or little-endian and make it 0x7F..
        for width in (8, 4, 2, 1):
            for order in ("big", "little"):
                one = (1).to_bytes(width, order)
                if bytes(v).endswith(one):
                    nv[len(v) - width:] = (2).to_bytes(width, order)  # one newer
                    break
            else:
                continue
            break
        else:
            raise AssertionError(f"cannot find schema version 1 in {v.hex()}")
        nv = bytes(nv)
    assert nv != v
    _load_db(store, "meta", header, [(k, nv)])  # mdb_load overwrites the record
    return k, v, nv


def test_store_of_newer_schema_is_refused(ca_store, store, ca1, leaf):
    c = leaf(0xA101, "schema", ca1)
    ca_store("cert", "add", c.pem_path)
    bump_schema_version(store)
    before = tree_digest(store)
    for args in (["list"], ["status", "--serial", c.hex], ["revoke", "--serial", c.hex],
                 ["cert", "add", c.pem_path], ["init"], ["log"]):
        err = ca_store.fail(*args)
        assert "schema" in err.lower() or "version" in err.lower() or "newer" in err.lower(), err
    assert tree_digest(store) == before


# ---------------------------------------------------------------- read-only


@pytest.fixture
def ro_store(revo_at, world_tmp, ca1, leaf):
    """A store owned by nobody with read-only files and directory, plus inputs nobody can read."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    if os.getuid() != 0:
        pytest.skip("needs root to switch to user nobody")
    st = world_tmp / "store"
    r = revo_at(st)
    r("init")
    r("issuer", "add", "ca1", "--cert", ca1.cert_path, "--key", ca1.key_path)
    c = leaf(0xA201, "ro-registered", ca1)
    r("cert", "add", c.pem_path)
    r("revoke", "--serial", "0A02", "--issuer", "ca1", "--reason", "certificateHold")
    lf = world_tmp / "new.pem"
    lf.write_bytes(leaf(0xA202, "ro-new", ca1).pem)
    idx = world_tmp / "index.txt"
    H.write_index(idx, [H.index_line("V", H.now() + H.days(30), 0xA203, "ro-index")])
    cacert = world_tmp / "ca.pem"
    cacert.write_bytes(ca1.cert_path.read_bytes())
    cakey = world_tmp / "ca.key"
    cakey.write_bytes(ca1.key_path.read_bytes())
    for f in (lf, idx, cacert, cakey):
        os.chmod(f, 0o644)
    for p in [st, *st.iterdir()]:
        os.chown(p, NOBODY, NOBODY)
        os.chmod(p, 0o555 if p.is_dir() else 0o444)
    return r, st, c, lf, idx


@pytest.mark.parametrize("kind", ["revoke", "cert-add", "import", "unhold", "revoke-cert", "issuer-add"])
def test_read_only_store_refuses_writes(ro_store, ca1, kind):
    r, st, c, lf, idx = ro_store
    lst, log = r.list(), r.log()
    before = tree_digest(st)
    args = write_commands(lf, idx).get(kind)
    if kind == "revoke-cert":
        args = ["revoke", "--cert", lf]
    if kind == "issuer-add":
        args = ["issuer", "add", "ca9", "--cert", st.parent / "ca.pem", "--key", st.parent / "ca.key"]
    r.fail(*args, user=NOBODY)
    assert tree_digest(st) == before
    assert r.list() == lst and r.log() == log


def test_read_only_store_reads_answer_or_fail_cleanly(ro_store):
    """Reading a store one cannot lock is allowed to fail, but with one line, or to
    answer correctly; it never changes the store."""
    r, st, c, lf, idx = ro_store
    lst = r.list()
    before = tree_digest(st)
    for args in (["list"], ["status", "--serial", c.hex], ["log"]):
        p = r.raw(*args, json=True, user=NOBODY)
        assert p.returncode in (0, 1), p
        if p.returncode == 0:
            if args == ["list"]:
                assert H.json_loads(p.stdout) == lst
        else:
            line = p.stderr.rstrip("\n")
            assert line.startswith("revo: ") and "\n" not in line, p.stderr
    assert tree_digest(st) == before
