"""sd_notify: `revo ocsp serve` and `revo publish` tell a service manager (the units are
Type=notify) when they are ready, reloading and stopping, over $NOTIFY_SOCKET: a path or
an abstract '@name', as systemd passes it. Without the variable nothing is sent."""
import os
import signal
import socket
import subprocess
import time

import pytest
from conftest import base_env, check_sanitizers
from publish_helpers import world  # noqa: F401 (fixture)


class Manager:
    """The service manager's end: a datagram socket collecting notifications."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if path.startswith("@"):
            self.sock.bind("\0" + path[1:])
        else:
            self.sock.bind(path)
        self.name = path
        self.got = []

    def wait(self, key, timeout=20):
        """Messages until one has the line `key` (e.g. READY=1); returns that message."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            self.got.append(msg)
            if key in msg.split("\n"):
                return msg
        pytest.fail(f"no {key} from the daemon within {timeout} s; got {self.got}")

    def close(self):
        self.sock.close()


def start(revo, args, manager, tmp_path):
    env = base_env({"NOTIFY_SOCKET": manager.name})
    err = open(tmp_path / "daemon.err", "wb")
    p = subprocess.Popen(revo.argv(args), stdout=subprocess.DEVNULL, stderr=err,
                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    return p, tmp_path / "daemon.err"


def stop(p, errpath):
    try:
        assert p.wait(timeout=30) == 0, errpath.read_text()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    check_sanitizers("revo daemon", errpath.read_text())


@pytest.mark.parametrize("where", ["path", "abstract"])
def test_ocsp_serve_ready_reload_stopping(world, tmp_path, where):
    name = str(tmp_path / "notify.sock") if where == "path" else f"@revo-test-{os.getpid()}-{time.monotonic_ns()}"
    m = Manager(name)
    try:
        p, err = start(world.revo, ["ocsp", "serve", "--listen", "127.0.0.1:0", "--threads", "1"],
                       m, tmp_path)
        ready = m.wait("READY=1")
        assert "STATUS=serving on 127.0.0.1:" in ready
        p.send_signal(signal.SIGHUP)
        m.wait("RELOADING=1")
        assert "STATUS=serving" in m.wait("READY=1")
        p.send_signal(signal.SIGTERM)
        m.wait("STOPPING=1")
        stop(p, err)
    finally:
        m.close()


def test_publish_ready_and_stopping(world, tmp_path):
    world.file_target()
    m = Manager(str(tmp_path / "notify.sock"))
    try:
        p, err = start(world.revo, ["publish"], m, tmp_path)
        assert "STATUS=publishing 1 target(s)" in m.wait("READY=1")
        p.send_signal(signal.SIGTERM)
        m.wait("STOPPING=1")
        stop(p, err)
    finally:
        m.close()


def test_unreachable_manager_does_not_stop_the_daemon(world, tmp_path):
    """A NOTIFY_SOCKET nobody listens on is not an error: the responder serves anyway."""
    env = base_env({"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")})
    out = tmp_path / "serve.out"
    with open(out, "wb") as f, open(tmp_path / "serve.err", "wb") as e:
        p = subprocess.Popen(world.revo.argv(["ocsp", "serve", "--listen", "127.0.0.1:0"]),
                             stdout=f, stderr=e, stdin=subprocess.DEVNULL, env=env,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while "listening on" not in out.read_text() and time.monotonic() < deadline:
            assert p.poll() is None, (tmp_path / "serve.err").read_text()
            time.sleep(0.02)
        assert "listening on" in out.read_text()
        p.send_signal(signal.SIGTERM)
        stop(p, tmp_path / "serve.err")
    finally:
        if p.poll() is None:
            p.kill()
