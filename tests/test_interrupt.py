"""Ctrl-C in the middle of a conformance test still cleans up: the Application, its namespace
and the test's repository credentials are gone after the interrupted run exits."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixtures import cleanup

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.testbed


def _labelled(kube, kind: str, run_id: str, namespace: str | None = None) -> list[str]:
    return cleanup.labelled(kube, kind, f"gitops-conformance/run-id={run_id}", namespace)


def test_ctrl_c_during_a_test_leaves_nothing_behind(target, kube, testbed_handle, tmp_path):
    run_id = f"interrupt-{os.getpid()}"
    env = {**os.environ, "GITOPS_CONFORMANCE_RUN_ID": run_id}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "suites/test_self_heal.py", "-k", "scale", "-p", "no:cacheprovider",
         "--reuse-testbed", str(testbed_handle.state_dir), "--report-dir", str(tmp_path / "report")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not _labelled(kube, "applications.argoproj.io", run_id, "argocd"):
            assert proc.poll() is None, f"the run ended before its Application appeared:\n{proc.stdout.read()[-2000:]}"
            time.sleep(0.5)
        assert _labelled(kube, "applications.argoproj.io", run_id, "argocd"), "the test never created its Application"
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "KeyboardInterrupt" in out, out[-2000:]
    assert _labelled(kube, "applications.argoproj.io", run_id, "argocd") == []
    deadline = time.monotonic() + 60  # namespaces terminate asynchronously
    while time.monotonic() < deadline and _labelled(kube, "namespaces", run_id):
        time.sleep(1)
    leftover = [n for n in _labelled(kube, "namespaces", run_id)
                if (kube.get("namespace", n) or {}).get("status", {}).get("phase") != "Terminating"]
    assert leftover == [], f"namespaces left behind after Ctrl-C: {leftover}"
