"""Kind certification figures: `kind create` -> all Argo components Ready (with the images
loaded and Step 1 applied), the full `pytest suites --cluster kind` wall time, memory at peak.

    python -m benchmarks.kind_certify_bench [--skip-certification]

A script, not a test; needs Docker (CI machine: `.ci/dockerd.sh`), the node image and the
image archives (`gitops-conformance testbed node-image`, `gitops-conformance testbed images`).
Memory: the host's used memory (MemTotal - MemAvailable) sampled every 0.5 s, above its value
before the cluster was created (the whole cost: node, pods, port-forwards, pytest).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.kind_bench import _used_mib  # noqa: E402
from benchmarks.warm import report_outcome  # noqa: E402
from gitops_conformance.testbed import versions  # noqa: E402
from gitops_conformance import certify_cluster
from gitops_conformance.testbed.kind import lifecycle  # noqa: E402


class PeakMemory:
    def __init__(self):
        self.base = _used_mib()
        self.peak = self.base
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.wait(0.5):
            self.peak = max(self.peak, _used_mib())

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


def create_to_argo_ready(name: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        try:
            certify_cluster.up(name, Path(tmp) / "kubeconfig")
            return time.monotonic() - started
        finally:
            lifecycle.delete(name)


REPORT = REPO_ROOT / "reports" / "bench-kind"


def certification() -> tuple[float, int]:
    env = dict(os.environ)
    env["PATH"] = f"{versions.binary_path('kubectl').parent}{os.pathsep}{env['PATH']}"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "suites", "--cluster", "kind", "--kind-bin",
                           str(versions.binary_path("kind")), "--report-dir", str(REPORT),
                           "-p", "no:cacheprovider", "-q"], cwd=REPO_ROOT, env=env, timeout=3600)
    return time.monotonic() - started, proc.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-certification", action="store_true")
    args = ap.parse_args(argv)
    print(f"kind certification benchmark, {dt.date.today()}, {os.cpu_count()} cores")
    with PeakMemory() as mem:
        ready = create_to_argo_ready("gc-bench")
    print(f"kind create -> images loaded -> Argo CD, Rollouts, Image Updater Ready: {ready:.1f} s "
          f"(peak memory above idle {mem.peak - mem.base:.0f} MiB)")
    if not args.skip_certification:
        with PeakMemory() as mem:
            wall, code = certification()
        print(f"full kind certification (pytest suites --cluster kind): {wall:.1f} s, exit {code}, {report_outcome(REPORT) or 'no report'}, "
              f"peak memory above idle {mem.peak - mem.base:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
