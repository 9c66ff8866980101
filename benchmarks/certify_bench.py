"""Warm certification wall time, serial against parallel (a script that prints figures, not a test).

    python -m benchmarks.certify_bench [--runs 3] [--workers 4] [--reuse-testbed DIR]

One testbed is started once (or given) and stays up; each run is the whole certification,
`gitops-conformance certify --reuse-testbed DIR` with `-n 0` (serial) or `-n WORKERS`, timed
as one process. Prints every run (wall time, verdict, declared checks passed), the medians,
and the ratio serial/parallel. Target (issue 14): parallel median <= 180 s on 2 cores.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.warm import report_outcome

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 180.0


def certify(state_dir: Path, workers: int) -> tuple[float, str]:
    """One certification; a run that is not CERTIFIED keeps its report (and pytest's output) in a
    directory of its own, named in the outcome, so a flake can be read afterwards."""
    with tempfile.TemporaryDirectory() as report:
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "gitops_conformance.cli", "certify", "--report-dir", report,
                               "--reuse-testbed", str(state_dir), "-n", str(workers), "-q", "-p", "no:cacheprovider"],
                              cwd=ROOT, capture_output=True, text=True)
        elapsed = time.monotonic() - t0
        outcome = report_outcome(report) or f"no report (exit {proc.returncode})"
        if not outcome.startswith("CERTIFIED"):
            kept = Path(tempfile.mkdtemp(prefix="certify-bench-failed-"))
            shutil.copytree(report, kept, dirs_exist_ok=True)
            (kept / "pytest-output.txt").write_text(proc.stdout + proc.stderr)
            outcome += f" (report kept in {kept})"
    return elapsed, outcome


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--reuse-testbed", type=Path, default=None)
    ap.add_argument("--parallel-only", action="store_true", help="skip the serial runs (e.g. 10 runs in a row)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from benchmarks.warm import print_header, warm_testbed

    print_header()
    medians = {}
    with warm_testbed(args.reuse_testbed, "certify-bench-") as state:
        modes = [("parallel", args.workers)] if args.parallel_only else [("serial", 0), ("parallel", args.workers)]
        for mode, workers in modes:
            times = []
            for i in range(args.runs):
                elapsed, outcome = certify(state, workers)
                times.append(elapsed)
                print(f"  {mode} (-n {workers}) run {i + 1}: {elapsed:6.1f}s  {outcome}", flush=True)
            medians[mode] = statistics.median(times)
            print(f"{mode}: median {medians[mode]:.1f}s over {args.runs} run(s) "
                  f"(min {min(times):.1f}, max {max(times):.1f})", flush=True)
    if "serial" in medians:
        print(f"ratio serial/parallel: {medians['serial'] / medians['parallel']:.2f}")
    print(f"parallel target <= {TARGET_S:.0f}s: {'meets' if medians['parallel'] <= TARGET_S else 'MISSES'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
