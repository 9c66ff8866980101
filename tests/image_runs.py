"""Run what an image holds without a container runtime: a static binary straight from the
unpacked root filesystem, or any command chrooted into it (in its own mount and PID
namespaces, with /proc and /dev, sharing the host's loopback network so tests can talk to it).
"""
from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{url}: the server exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if requests.get(url, timeout=1).status_code < 500:  # 503 = still starting
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def run_http_binary(binary: Path, env: dict[str, str], *, requests: int = 0) -> tuple[list[int], str]:
    """Start myapp from the rootfs, GET / `requests` times, return (status codes, /metrics)."""
    import requests as http

    port = free_port()
    proc = subprocess.Popen([str(binary)], env={**env, "MYAPP_LISTEN": f"127.0.0.1:{port}"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
        codes = [http.get(f"http://127.0.0.1:{port}/", timeout=5).status_code for _ in range(requests)]
        return codes, http.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def chroot_command(root: Path, argv: list[str], *, user: str = "0:0", env: dict[str, str] | None = None,
                   workdir: str = "/") -> list[str]:
    """`unshare` a mount+PID namespace, mount /proc and /dev into the rootfs, chroot as `user`."""
    env_args = [f"{k}={v}" for k, v in (env or {}).items()]
    inner = (f"mount -t proc proc {shlex.quote(str(root / 'proc'))} && "
             f"mount --rbind /dev {shlex.quote(str(root / 'dev'))} && "
             f"exec chroot --userspec={user} {shlex.quote(str(root))} "
             f"/usr/bin/env -i HOME=/tmp {' '.join(map(shlex.quote, env_args))} "
             f"sh -c {shlex.quote('cd ' + shlex.quote(workdir) + ' && exec ' + shlex.join(argv))}")
    return ["unshare", "--mount", "--pid", "--fork", "sh", "-c", inner]


def prepare_root(root: Path) -> None:
    for d in ("proc", "dev", "tmp"):
        (root / d).mkdir(exist_ok=True)
    os.chmod(root / "tmp", 0o1777)


def run_in(root: Path, argv: list[str], *, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    prepare_root(root)
    return subprocess.run(chroot_command(root, argv, **kw), capture_output=True, text=True, timeout=timeout)


def start_in(root: Path, argv: list[str], **kw) -> subprocess.Popen:
    prepare_root(root)
    return subprocess.Popen(chroot_command(root, argv, **kw), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """End the chrooted server: its unshare'd PID namespace dies with its first process."""
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)
