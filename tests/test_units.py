"""Run the cmocka unit test executables of every build as pytest cases.

Build directories are the parent directories of the $REVO_BINS entries; their
tests/unit/test_* executables each become one case, id '<build>-<name>'
(plain-test_store, asan-test_store, ...). Finding none is a failure, not a skip.
"""

import os
import subprocess

import pytest
from conftest import ASAN_OPTIONS, UBSAN_OPTIONS, SANITIZER_MARKERS, bin_id, configured_bins


def discover():
    existing, all_paths = configured_bins()
    cases = []
    for b in existing:
        unit_dir = b.parent / "tests" / "unit"
        if not unit_dir.is_dir():
            continue
        for exe in sorted(unit_dir.iterdir()):
            if exe.name.startswith("test_") and exe.is_file() and os.access(exe, os.X_OK):
                cases.append(pytest.param(exe, id=f"{bin_id(b)}-{exe.name}"))
    if not cases:
        where = ", ".join(str(p.parent / "tests" / "unit") for p in all_paths)
        cases.append(pytest.param(None, id="none-found", marks=()))
        return cases, where
    return cases, None


CASES, NOT_FOUND_WHERE = discover()


@pytest.mark.parametrize("exe", CASES)
def test_unit(exe, tmp_path):
    if exe is None:
        pytest.fail(f"no unit test executables (tests/unit/test_*) found under: {NOT_FOUND_WHERE}")
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ASAN_OPTIONS
    env["UBSAN_OPTIONS"] = UBSAN_OPTIONS
    env.pop("REVO_STORE", None)
    p = subprocess.run([str(exe)], capture_output=True, cwd=tmp_path, env=env, timeout=300)
    out = p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0, f"{exe} exited {p.returncode}\n--- stdout\n{out}\n--- stderr\n{err}"
    for m in SANITIZER_MARKERS:
        assert m not in err, f"{exe}: sanitizer report\n{err}"
