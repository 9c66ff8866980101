"""SIGTERM unwinds a run like Ctrl-C (fast, no cluster): the running test's fixtures are torn
down, the session ends as interrupted, and a second SIGTERM does not cut the teardown short.
tests/test_interrupt.py proves the same against the testbed (objects swept, testbed stopped)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

INNER = '''
import pathlib, time
import pytest

MARKS = pathlib.Path({marks!r})

@pytest.fixture
def resource():
    (MARKS / "started").write_text("")
    yield
    time.sleep(1)  # a teardown that takes a while: a second SIGTERM arrives meanwhile
    (MARKS / "torn-down").write_text("")

def test_long(resource):
    time.sleep(60)
'''


def test_sigterm_runs_the_teardown_like_ctrl_c(tmp_path):
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER.format(marks=str(tmp_path))))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_CONFORMANCE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "gitops_conformance.fixtures.results",
         "-p", "gitops_conformance.fixtures.plugin", "-p", "no:cacheprovider",
         str(tmp_path / "test_inner.py"), "--rootdir", str(tmp_path), "--report-dir", str(tmp_path / "report")],
        cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-2000:]
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)  # CI runners often repeat it
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (tmp_path / "torn-down").exists(), out[-2000:]
    assert "SIGTERM received: cleaning up as on Ctrl-C" in out, out[-2000:]
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out[-2000:]
