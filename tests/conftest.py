"""Shared fixtures for revo's tests.

Binaries come from $REVO_BINS (colon-separated; default build/revo relative to the
repository root); every integration test runs once per binary, with the id taken
from the build directory (build -> plain, build-asan -> asan).

The `revo` fixture runs the binary against a fresh store in tmp_path, checks the
exit status and the one-line error convention, and fails the test on any
sanitizer report.
"""

import json as jsonlib
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import revohelp as H  # noqa: E402

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:")
ASAN_OPTIONS = "detect_leaks=1:abort_on_error=0:exitcode=99"
UBSAN_OPTIONS = "print_stacktrace=1:halt_on_error=1:exitcode=98"
NOBODY = 65534


# ---------------------------------------------------------------- binaries


def bin_id(path):
    name = path.parent.name
    if name == "build":
        return "plain"
    if name.startswith("build-"):
        return name[len("build-") :]
    return name


def configured_bins():
    """(existing, all configured) binary paths."""
    raw = os.environ.get("REVO_BINS")
    cands = [p for p in raw.split(":") if p] if raw else ["build/revo"]
    paths = []
    for c in cands:
        p = pathlib.Path(c)
        if not p.is_absolute():
            p = ROOT / p
        paths.append(p)
    return [p for p in paths if p.exists()], paths


def bin_params():
    existing, all_paths = configured_bins()
    if not existing:
        # Nothing to run: one parameter that fails loudly instead of a silent skip.
        return [pytest.param((None, "missing"), id="missing")], all_paths
    ids, params = set(), []
    for p in existing:
        i = bin_id(p)
        while i in ids:
            i += "_"
        ids.add(i)
        params.append(pytest.param((p, i), id=i))
    return params, all_paths


BIN_PARAMS, ALL_BIN_PATHS = bin_params()


class RevoBin:
    def __init__(self, path, ident):
        self.path = pathlib.Path(path)
        self.id = ident
        self.build_dir = self.path.parent
        self.asan = "asan" in ident or "san" in self.build_dir.name

    def __repr__(self):
        return f"RevoBin({self.id}: {self.path})"


@pytest.fixture(scope="session", params=BIN_PARAMS)
def revo_bin(request):
    path, ident = request.param
    if path is None:
        pytest.fail(
            "no revo binary found; looked for: "
            + ", ".join(str(p) for p in ALL_BIN_PATHS)
            + " (set REVO_BINS)"
        )
    return RevoBin(path, ident)


def base_env(extra=None):
    env = dict(os.environ)
    for k in ("REVO_STORE", "SUDO_USER", "SUDO_UID", "REVO_KEY_PASS", "REVO_PKCS11_PIN"):
        env.pop(k, None)
    env["ASAN_OPTIONS"] = ASAN_OPTIONS
    env["UBSAN_OPTIONS"] = UBSAN_OPTIONS
    env.setdefault("LC_ALL", "C.UTF-8")
    for k, v in (extra or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def check_sanitizers(cmd, stderr):
    for m in SANITIZER_MARKERS:
        if m in stderr:
            pytest.fail(f"sanitizer report ({m!r}) from {cmd}:\n{stderr}")


def check_error_line(cmd, rc, stderr):
    line = stderr.rstrip("\n")
    assert line and "\n" not in line, (
        f"{cmd} exited {rc}: stderr must be exactly one line, got:\n{stderr}"
    )
    assert line.startswith("revo: "), f"{cmd}: error line must start with 'revo: ': {stderr!r}"
    assert len(line) > len("revo: ") + 3, f"{cmd}: empty error message: {stderr!r}"


DEFAULT = object()


class Revo:
    """Callable that runs revo. See __call__."""

    def __init__(self, binary, store):
        self.bin = binary
        self.store = pathlib.Path(store)

    def argv(self, args, store=DEFAULT, json=False, user=None):
        store = self.store if store is DEFAULT else store
        cmd = [str(self.bin.path)]
        if store is not None:
            cmd += ["--store", str(store)]
        if json:
            cmd.append("--json")
        cmd += [str(a) for a in args]
        if user is not None:
            if shutil.which("setpriv") is None:
                pytest.skip("setpriv is not installed")
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
        return cmd

    def raw(self, *args, store=DEFAULT, json=False, input=None, env=None, cwd=None, timeout=120, user=None):
        """Run and return the CompletedProcess (text), after the sanitizer check only."""
        cmd = self.argv(args, store, json, user)
        if isinstance(input, str):
            input = input.encode()
        p = subprocess.run(
            cmd, input=input, capture_output=True, env=base_env(env), cwd=cwd, timeout=timeout
        )
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        check_sanitizers(cmd, err)
        return subprocess.CompletedProcess(cmd, p.returncode, out, err)

    def __call__(self, *args, store=DEFAULT, expect=0, json=False, input=None, env=None, cwd=None, timeout=120, user=None):
        """Run `revo --store STORE [--json] ARGS...`.

        expect: the exit status (an int, or a tuple of acceptable ones). On a
        non-zero exit stderr must be exactly one line starting with 'revo: '.
        Returns the parsed JSON when json=True and the command succeeded, else
        (stdout, stderr)."""
        p = self.raw(*args, store=store, json=json, input=input, env=env, cwd=cwd, timeout=timeout, user=user)
        ok = p.returncode in expect if isinstance(expect, (tuple, list, set)) else p.returncode == expect
        assert ok, (
            f"{' '.join(p.args)}\n  exited {p.returncode}, expected {expect}\n"
            f"  stdout: {p.stdout[:3000]}\n  stderr: {p.stderr[:3000]}"
        )
        if p.returncode != 0:
            check_error_line(" ".join(p.args), p.returncode, p.stderr)
            return p.stdout, p.stderr
        if json:
            try:
                return jsonlib.loads(p.stdout)
            except ValueError as e:
                pytest.fail(f"{' '.join(p.args)}: stdout is not one JSON document ({e}):\n{p.stdout[:3000]}")
        return p.stdout, p.stderr

    def fail(self, *args, **kw):
        """Run a command that must fail (exit 1 or 2, one error line); return stderr."""
        kw.setdefault("expect", (1, 2))
        return self(*args, **kw)[1]

    def popen(self, *args, store=DEFAULT, json=False, env=None, **kw):
        cmd = self.argv(args, store, json)
        return subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=base_env(env),
            start_new_session=True,
            **kw,
        )

    def finish(self, proc, expect=0, json=False, timeout=120):
        """Wait for a Popen'ed revo, check it like __call__ does."""
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        out = out.decode("utf-8", "replace")
        err = err.decode("utf-8", "replace")
        check_sanitizers(proc.args, err)
        assert proc.returncode == expect, f"{proc.args} exited {proc.returncode}: {err}"
        if proc.returncode != 0:
            check_error_line(proc.args, proc.returncode, err)
            return out, err
        return jsonlib.loads(out) if json else (out, err)

    # conveniences used by many tests
    def list(self, *args, **kw):
        return self("list", *args, json=True, **kw)

    def log(self, *args, **kw):
        return self("log", *args, json=True, **kw)

    def status(self, serial, issuer=None, **kw):
        a = ["status", "--serial", serial]
        if issuer:
            a += ["--issuer", issuer]
        return self(*a, json=True, **kw)


@pytest.fixture
def store(tmp_path):
    """Path of a store directory that does not exist yet."""
    return tmp_path / "store"


@pytest.fixture
def revo(revo_bin, store):
    return Revo(revo_bin, store)


@pytest.fixture
def revo_at(revo_bin):
    """Factory: a Revo runner bound to another store directory."""
    return lambda path: Revo(revo_bin, path)


# ---------------------------------------------------------------- PKI


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    return d


@pytest.fixture(scope="session")
def ca1(pki_dir):
    return H.CA("Revo Test CA 1", pki_dir / "ca1")


@pytest.fixture(scope="session")
def ca2(pki_dir):
    """A second, unrelated CA."""
    return H.CA("Revo Other CA", pki_dir / "ca2", org="Somebody Else")


@pytest.fixture(scope="session")
def ca1_twin(pki_dir, ca1):
    """A CA with the same subject name as ca1 but another key."""
    return H.CA(ca1.cn, pki_dir / "ca1twin")


@pytest.fixture(scope="session")
def leaf(pki_dir):
    """Factory: leaf(serial, cn, ca, not_before=, not_after=, sign_key=, aki=, eku=, org=)."""
    return H.LeafFactory(pki_dir / "leaves")


@pytest.fixture(scope="session")
def ocsp_cert(leaf, ca1):
    return leaf.ocsp_signer(0x7001, ca1)


@pytest.fixture
def inited(revo):
    revo("init")
    return revo


@pytest.fixture
def ca_store(inited, ca1):
    """An initialised store with ca1 registered as issuer 'ca1'."""
    inited("issuer", "add", "ca1", "--cert", ca1.cert_path, "--key", ca1.key_path)
    return inited


@pytest.fixture
def two_ca_store(ca_store, ca2):
    ca_store("issuer", "add", "ca2", "--cert", ca2.cert_path, "--key", ca2.key_path)
    return ca_store


@pytest.fixture
def world_tmp():
    """A temporary directory that user nobody can enter (tmp_path is 0700 root)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="revo-it-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def procs():
    """Collects Popen objects; kills any still running at teardown."""
    lst = []
    yield lst
    for p in lst:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
