"""Where commit -> Synced goes (issue 14): one app, N commits, every step timed (prints figures).

    python -m benchmarks.commit_trace [--commits 10] [--reuse-testbed DIR]

Runs benchmarks/commit_trace_run.py in a pytest session against a warm testbed (given, or
started once and stopped after). For each commit to the prod overlay (replicas alternate), the
run records, from the moment `git commit` starts:
  pushed      `git push` returned (the Git server took the commit)
  webhook     the push-event POST to Argo CD's /api/webhook returned
  refresh     the Application got the refresh annotation (Argo CD handled the webhook)
  compared    status.sync.revision is the commit (repo-server generated the manifests)
  sync        status.operationState.phase Running (the automated sync started)
  applied     the Deployment's spec changed (the sync applied it)
  done        operationState Succeeded at the commit, Synced and Healthy
  seen        the suite's check (auto_sync_checks.commit_is_synced) returned
from watch events (fixtures/changes.ChangeLog), not polls. Prints the median and range of each
point and of each step between points.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.warm import pytest_argv

ROOT = Path(__file__).resolve().parent.parent
POINTS = ["pushed", "webhook", "refresh", "compared", "sync", "applied", "done", "seen"]
TRACE_ENV = "GITOPS_CONFORMANCE_TRACE_OUT"
COMMITS_ENV = "GITOPS_CONFORMANCE_TRACE_COMMITS"


def run(state_dir: Path, commits: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "trace.json"
        proc = subprocess.run(
            pytest_argv(state_dir, Path(tmp) / "report", str(ROOT / "benchmarks" / "commit_trace_run.py"), "-n", "0"),
            cwd=ROOT, capture_output=True, text=True,
            env={**os.environ, TRACE_ENV: str(out), COMMITS_ENV: str(commits)})
        if proc.returncode != 0 or not out.exists():
            sys.exit(f"the trace run failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
        return json.loads(out.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commits", type=int, default=10)
    ap.add_argument("--reuse-testbed", type=Path, default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from benchmarks.warm import print_header, warm_testbed

    print_header()
    with warm_testbed(args.reuse_testbed, "commit-trace-") as state:
        traces = run(state, args.commits)
    print(f"{len(traces)} commit(s); seconds from `git commit` (median, min-max); a point not seen is left out")
    previous = None
    for point in POINTS:
        at = [t[point] for t in traces if t.get(point) is not None]
        if not at:
            print(f"  {point:9s} not seen")
            continue
        line = f"  {point:9s} at {statistics.median(at):6.2f}  ({min(at):.2f}-{max(at):.2f})"
        if previous:
            steps = [t[point] - t[previous] for t in traces if t.get(point) is not None and t.get(previous) is not None]
            if steps:
                line += f"   step from {previous}: {statistics.median(steps):5.2f}  ({min(steps):.2f}-{max(steps):.2f})"
        print(line)
        previous = point
    return 0


if __name__ == "__main__":
    sys.exit(main())
