"""Runs each libFuzzer target (scripts/fuzz.sh) for a bounded time: a crash, a leak or a
broken invariant in a hand-written parser fails the suite."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECONDS = os.environ.get("REVO_FUZZ_SECONDS", "10")


@pytest.mark.skipif(shutil.which("clang") is None, reason="clang is not installed")
def test_fuzz_targets_survive_bounded_run():
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "fuzz.sh"), SECONDS],
                       cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:]
    assert "Done" in r.stdout and "runs in" in r.stdout
