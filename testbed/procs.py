"""Host-process supervision for the testbed: start, track by PID, wait for health, stop.

Every process gets one log file in the state dir and a PID recorded in
`<state>/pids/<name>.pid`, so `down` (or the next `up` after a crash) can find it
without any in-memory state.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from gitops_conformance.waiter import Waiter


@dataclasses.dataclass
class ProcessSpec:
    """How to run one testbed component as a host process."""

    name: str
    argv: list[str]
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    port: int | None = None  # the main port, shown by `status`
    health_url: str | None = None  # polled until it answers 2xx (TLS is not verified)
    health_check: Callable[[], bool] | None = None  # used when there is no URL
    health_timeout: float = 60.0
    cwd: str | None = None


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 2.0, headers: dict[str, str] | None = None) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # health only; the suite verifies TLS where it matters
    req = urllib.request.Request(url, headers=headers or {})
    # loopback only: never route a health probe through HTTP(S)_PROXY from the environment
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))
    try:
        with opener.open(req, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still "exists": treat it as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Supervisor:
    def __init__(self, state_dir: Path, waiter: Waiter | None = None):
        # imported here: the peers image carries this module for ProcessSpec, without tenacity
        from gitops_conformance.waiter import Waiter

        self.state_dir = Path(state_dir)
        self.waiter = waiter or Waiter()  # bounds the start-up and shutdown waits
        self.pid_dir = self.state_dir / "pids"
        self.log_dir = self.state_dir / "logs"
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, spec: ProcessSpec) -> int:
        log = open(self.log_path(spec.name), "ab")
        env = {**os.environ, **spec.env}
        proc = subprocess.Popen(
            spec.argv, env=env, cwd=spec.cwd, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: Ctrl-C in the shell does not hit it, down kills the group
        )
        log.close()
        (self.pid_dir / f"{spec.name}.pid").write_text(str(proc.pid))
        return proc.pid

    def wait_healthy(self, spec: ProcessSpec, pid: int) -> None:
        def healthy_or_exited() -> bool:
            if not pid_alive(pid):
                raise ComponentFailed(spec.name, "exited during start-up", self.tail(spec.name))
            return self.healthy(spec)

        polled = self.waiter.poll(healthy_or_exited, timeout=spec.health_timeout, initial_wait=0.1)
        if not polled.done:
            raise ComponentFailed(spec.name, f"not healthy within {polled.bound:.0f}s", self.tail(spec.name))

    @staticmethod
    def healthy(spec: ProcessSpec) -> bool:
        if spec.health_url:
            return http_ok(spec.health_url)
        if spec.health_check:
            return spec.health_check()
        if spec.port:
            return port_open(spec.port)
        return True

    def pids(self) -> dict[str, int]:
        out = {}
        for f in sorted(self.pid_dir.glob("*.pid")):
            try:
                out[f.stem] = int(f.read_text().strip())
            except ValueError:
                f.unlink()
        return out

    def stop(self, name: str, grace: float = 10.0) -> None:
        pidfile = self.pid_dir / f"{name}.pid"
        if not pidfile.exists():
            return
        pid = int(pidfile.read_text().strip() or 0)
        if pid and pid_alive(pid):
            _signal_group(pid, signal.SIGTERM)
            if not self.waiter.poll(lambda: not pid_alive(pid), timeout=grace, initial_wait=0.1, max_wait=0.1).done:
                _signal_group(pid, signal.SIGKILL)
                time.sleep(0.2)
        _reap(pid)
        pidfile.unlink(missing_ok=True)

    def stop_all(self, order: list[str] | None = None) -> None:
        names = list(self.pids())
        if order:  # stop in the given order (reverse start order), then anything left
            names = [n for n in order if n in names] + [n for n in names if n not in order]
        for name in names:
            self.stop(name)

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.log_path(name)
        if not path.exists():
            return "(no log)"
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


class ComponentFailed(RuntimeError):
    def __init__(self, component: str, reason: str, log_tail: str):
        super().__init__(f"{component}: {reason}")
        self.component = component
        self.reason = reason
        self.log_tail = log_tail


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
