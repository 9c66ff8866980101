"""How long the suites take on a warm testbed (a script that prints figures, not a test).

    python -m benchmarks.suites_bench [--runs 3] [--reuse-testbed DIR]

Groups, with their targets on 2 cores:
  steps 1-3: install, repo_auth, auto_sync, self_heal, prune, app_of_apps, rbac   <= 90 s
  steps 4-6: image_promotion, canary, notifications, drift_alerts                 <= 120 s
Each group runs `pytest suites/ -m "<items>"` against one testbed started once (or given);
the figure is the wall time of the pytest process, median over the runs.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.warm import pytest_argv

ROOT = Path(__file__).resolve().parent.parent
GROUPS = {
    "steps 1-3": (["install", "repo_auth", "auto_sync", "self_heal", "prune", "app_of_apps", "rbac"], 90),
    "steps 4-6": (["image_promotion", "canary", "notifications", "drift_alerts"], 120),
}


def run_group(items: list[str], state_dir: Path) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as report:
        t0 = time.monotonic()
        proc = subprocess.run(pytest_argv(state_dir, report, "suites", "-m", " or ".join(items)),
                              cwd=ROOT, capture_output=True, text=True)
        elapsed = time.monotonic() - t0
        try:
            statuses = json.loads((Path(report) / "conformance.json").read_text())["items"]
            outcome = ", ".join(f"{i}={statuses[i]['status']}" for i in items)
        except (OSError, KeyError, ValueError):
            outcome = f"no report (pytest exit {proc.returncode})"
    return elapsed, outcome


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reuse-testbed", type=Path, default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from benchmarks.warm import print_header, warm_testbed

    print_header()
    with warm_testbed(args.reuse_testbed, "suites-bench-") as state:
        for name, (items, target) in GROUPS.items():
            times = []
            for i in range(args.runs):
                elapsed, outcome = run_group(items, state)
                times.append(elapsed)
                print(f"  {name} run {i + 1}: {elapsed:6.1f}s  {outcome}")
            median = statistics.median(times)
            verdict = "meets" if median <= target else "MISSES"
            print(f"{name}: median {median:.1f}s over {args.runs} run(s) (min {min(times):.1f}, max {max(times):.1f}); "
                  f"target <= {target}s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
