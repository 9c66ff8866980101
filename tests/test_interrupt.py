"""A run stopped in the middle of a conformance test still cleans up, whether by Ctrl-C (SIGINT)
or by SIGTERM (what CI timeouts, `timeout` and `kill` send): the Application, its namespace and
the test's repository credentials are gone after the run exits, and a testbed the run started
itself is stopped (no process, no listening port left)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitops_conformance.fixtures import cleanup
from gitops_conformance.fixtures.kube import Kube
from gitops_conformance.testbed.procs import pid_alive, port_open
from gitops_conformance.testbed.stack import Testbed

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.testbed
INNER = ["suites/test_self_heal.py", "-k", "scale", "-p", "no:cacheprovider"]


def _labelled(kube, kind: str, run_id: str, namespace: str | None = None) -> list[str]:
    return cleanup.labelled(kube, kind, f"gitops-conformance/run-id={run_id}", namespace)


def _leftovers(kube, run_id: str) -> dict[str, list[str]]:
    """What of the run is still in the cluster (namespaces already Terminating count as gone)."""
    return {
        "applications": _labelled(kube, "applications.argoproj.io", run_id, "argocd"),
        "repository secrets": _labelled(kube, "secrets", run_id, "argocd"),
        "namespaces": [n for n in _labelled(kube, "namespaces", run_id)
                       if (kube.get("namespace", n) or {}).get("status", {}).get("phase") != "Terminating"],
    }


def _wait_for_application(proc: subprocess.Popen, kube_of, run_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended before its Application appeared:\n{proc.stdout.read()[-2000:]}"
        kube = kube_of()
        if kube is not None and _labelled(kube, "applications.argoproj.io", run_id, "argocd"):
            return
        time.sleep(0.5)
    raise AssertionError(f"the test created no Application within {timeout:.0f}s")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopped_run_leaves_no_object_behind(target, kube, testbed_handle, tmp_path, sig):
    run_id = f"interrupt-{sig.name.lower()}-{os.getpid()}"
    env = {**os.environ, "GITOPS_CONFORMANCE_RUN_ID": run_id}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *INNER, "--reuse-testbed", str(testbed_handle.state_dir),
         "--report-dir", str(tmp_path / "report")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_application(proc, lambda: kube, run_id, 90)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert ("KeyboardInterrupt" if sig == signal.SIGINT else "SIGTERM received") in out, out[-2000:]
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out[-2000:]
    assert testbed_handle.is_up(), "a reused testbed is not the run's to stop"
    deadline = time.monotonic() + 60  # namespaces terminate asynchronously
    while time.monotonic() < deadline and any(_leftovers(kube, run_id).values()):
        time.sleep(1)
    assert not any(_leftovers(kube, run_id).values()), f"left behind after {sig.name}: {_leftovers(kube, run_id)}"


def test_sigterm_stops_the_testbed_the_run_started(tmp_path):
    """The inner run starts a testbed of its own (no --reuse-testbed); SIGTERM mid-test must
    leave none of its processes or ports, after sweeping its objects while the cluster was up."""
    state = tmp_path / "own-testbed"
    run_id = f"sigterm-own-{os.getpid()}"
    env = {**os.environ, "GITOPS_CONFORMANCE_RUN_ID": run_id, "GITOPS_CONFORMANCE_TESTBED_DIR": str(state)}
    env.pop("GITOPS_CONFORMANCE_REUSE_TESTBED", None)
    tb = Testbed(state, out=lambda line: None)
    kubes: list[Kube] = []

    def inner_kube() -> Kube | None:  # once the inner run's testbed is up (its endpoints recorded)
        if not kubes and (state / "state.json").exists() and tb.endpoints().get("argocd_server"):
            kubes.append(Kube(tb.layout.kubeconfig, None, {**os.environ, **tb.env()}))
        return kubes[0] if kubes else None

    proc = subprocess.Popen([sys.executable, "-m", "pytest", *INNER, "--report-dir", str(tmp_path / "report")],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    last_seen = None
    try:
        _wait_for_application(proc, inner_kube, run_id, 240)
        kube = kubes[0]
        pids = tb.sup.pids()
        recorded = json.loads((state / "state.json").read_text())
        ports = {**recorded["ports"], **{k: v for k, v in recorded.get("component_ports", {}).items() if v}}
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            try:  # the cluster's last answer before the run stopped it
                last_seen = _leftovers(kube, run_id)
            except Exception:
                pass
            time.sleep(0.3)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        tb.down(quiet=True)  # whatever the assertions say, leave nothing of it running
    assert "SIGTERM received" in out, out[-3000:]
    alive = {n: p for n, p in pids.items() if pid_alive(p)}
    assert not alive, f"testbed processes still running after SIGTERM: {alive}\n{out[-2000:]}"
    groups = _live_in_groups(set(pids.values()))  # every component leads its own process group
    assert not groups, f"processes of the testbed's process groups still running: {groups}"
    listening = {n: p for n, p in ports.items() if port_open(p)}
    assert not listening, f"testbed ports still listening after SIGTERM: {listening}"
    assert last_seen is not None, "the cluster never answered after SIGTERM"
    assert not any(last_seen.values()), f"objects left when the testbed was stopped: {last_seen}"


def _live_in_groups(pgids: set[int]) -> list[str]:
    """Live (non-zombie) processes whose process group is one of `pgids`."""
    found = []
    for d in Path("/proc").iterdir():
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split() if d.name.isdigit() else None
        except OSError:
            continue
        if fields and int(fields[2]) in pgids and fields[0] != "Z":
            found.append(d.name)
    return found
