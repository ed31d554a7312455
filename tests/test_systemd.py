"""The systemd units verify with systemd-analyze and keep their hardening: the responder
runs as its own user with the store read-only and no key, the publisher alone writes."""
import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
UNITS = ["revo-ocsp.service", "revo-publish.service"]


def _bin():
    for b in os.environ.get("REVO_BINS", str(ROOT / "build" / "revo")).split(":"):
        if os.path.exists(b):
            return os.path.abspath(b)
    pytest.fail("no revo binary (REVO_BINS)")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_units_verify(tmp_path):
    man = tmp_path / "man" / "man1"
    man.mkdir(parents=True)
    for built in (ROOT / "build" / "docs").glob("*.1"):
        shutil.copy(built, man / built.name)
    paths = []
    for u in UNITS:
        text = (ROOT / "dist" / "systemd" / u).read_text().replace("/usr/local/bin/revo", _bin())
        (tmp_path / u).write_text(text)
        paths.append(str(tmp_path / u))
    env = dict(os.environ, MANPATH=str(tmp_path / "man"))
    r = subprocess.run(["systemd-analyze", "verify", *paths], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_units_are_hardened():
    ocsp = (ROOT / "dist" / "systemd" / "revo-ocsp.service").read_text()
    pub = (ROOT / "dist" / "systemd" / "revo-publish.service").read_text()
    for unit in (ocsp, pub):
        for line in ["NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=",
                     "PrivateTmp=yes", "SystemCallFilter=@system-service"]:
            assert line in unit
    assert "User=revo-ocsp" in ocsp and "User=revo\n" in pub
    assert "ReadOnlyPaths=/var/lib/revo/store" in ocsp
    assert "--no-keys" in ocsp
    assert "ExecReload=/bin/kill -HUP $MAINPID" in ocsp
    for unit in (ocsp, pub):
        assert "Type=notify\nNotifyAccess=main" in unit
