"""No secret ever shows in the process table: while an inner run performs the install and
repo_auth items (`argocd login`, `argocd repo add` with a token, a wrong token, SSH keys)
against the session's testbed, every process's argv (/proc/*/cmdline) is sampled over and
over; none may hold the Git tokens, the admin password or any other testbed secret, and no
process the run starts may carry a `--password` flag or a bearer token (JWT)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.testbed

JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.")  # Argo CD session and role tokens
PASSWORD_FLAG = re.compile(rb"(^|\x00)--password(=|\x00|$)")


class ProcessTable:
    """Samples (pid, ppid, argv) of every process until stopped; keeps each distinct one."""

    def __init__(self) -> None:
        self.seen: set[tuple[int, int, bytes]] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "ProcessTable":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                        argv = f.read()
                    with open(f"/proc/{entry.name}/stat", "rb") as f:
                        ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue  # gone in between
                if argv:
                    self.seen.add((int(entry.name), ppid, argv))
            self.samples += 1
            self._stop.wait(0.005)

    def descendants(self, root: int) -> list[bytes]:
        """argv of every process seen below `root` (children of children included)."""
        tree: set[int] = {root}
        grew = True
        while grew:
            grew = False
            for pid, ppid, _ in self.seen:
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    grew = True
        return [argv for pid, _, argv in self.seen if pid in tree and pid != root]


def _testbed_secrets(testbed_handle, kube, target) -> dict[str, str]:
    from gitops_conformance.fixtures.argocd import admin_password
    from gitops_conformance.testbed import argo
    from gitops_conformance.testbed.peers_setup import git_credentials, slack_token

    lay = testbed_handle.layout
    creds = git_credentials(lay)
    return {"admin password": admin_password(kube, target.argocd_namespace),
            "Git writer token": creds["writer"][1], "Git reader token": creds["reader"][1],
            "Slack token": slack_token(lay), "redis password": argo.redis_password(lay)}


def _before(argv: bytes, marker: bytes) -> str:
    """The command up to where the secret starts (a failure message must not leak it again)."""
    return argv.split(marker, 1)[0].replace(b"\x00", b" ").decode(errors="replace")[:200] + " ..."


def test_no_secret_in_any_argv_during_install_and_repo_auth(target, kube, testbed_handle, tmp_path):
    secrets = _testbed_secrets(testbed_handle, kube, target)
    env = {**os.environ, "GITOPS_CONFORMANCE_RUN_ID": f"argv-{os.getpid()}"}
    with ProcessTable() as table:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "suites/test_install.py", "suites/test_repo_auth.py", "-p", "no:cacheprovider",
             "--reuse-testbed", str(testbed_handle.state_dir), "--report-dir", str(tmp_path / "report")],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = proc.communicate(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
    run = table.descendants(proc.pid)
    # the sampling was fast enough to see the commands that used to carry the secrets
    assert any(b"argocd\x00" in a and b"\x00login\x00" in a for a in run), f"no `argocd login` seen in {table.samples} samples:\n{out[-2000:]}"
    assert any(b"\x00repo\x00add\x00" in a for a in run), f"no `argocd repo add` seen in {table.samples} samples:\n{out[-2000:]}"

    leaks = [f"{what} in pid {pid}'s argv" for pid, _, argv in table.seen
             for what, value in secrets.items() if value and value.encode() in argv]
    leaks += [f"a --password flag: {_before(a, b'--password')}" for a in run if PASSWORD_FLAG.search(a)]
    leaks += [f"a bearer token (JWT): {_before(a, b'eyJ')}" for a in run if JWT.search(a)]
    leaks += [f"the repo_auth test's wrong token: {_before(a, b'not-the-token-')}" for a in run if b"not-the-token-" in a]
    assert not leaks, "secrets visible in the process table:\n  " + "\n  ".join(leaks)
