"""How long `gitops-conformance audit` takes on a tree (a script that prints figures, not a test).

    python -m benchmarks.audit_bench PATH [--runs 3] [--no-kustomize]

Each run is a fresh `python -m gitops_conformance.audit.cli audit PATH --format json` process (imports, walk, parse,
kustomize builds, rules, report); the figure is its wall time, median over the runs, with the
process's CPU time (children included: kustomize) and the machine's load average, which on a
shared machine says how far wall time is from what an idle one would give. Target (issue 10):
the argoproj/argo-cd tree in <= 20 s on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_once(path: Path, no_kustomize: bool) -> tuple[float, float, dict]:
    argv = [sys.executable, "-m", "gitops_conformance.audit.cli", "audit", str(path), "--format", "json"]
    if no_kustomize:
        argv += ["--kustomize", "/nonexistent/kustomize"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1):
        sys.exit(f"audit exited {proc.returncode}: {proc.stdout[-500:]}{proc.stderr[-500:]}")
    report = json.loads(proc.stdout)
    return wall, cpu, report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.audit_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-kustomize", action="store_true", help="do not render kustomizations")
    args = ap.parse_args(argv)
    if not args.path.is_dir():
        print(f"{args.path}: no such directory", file=sys.stderr)
        return 2
    walls, cpus = [], []
    report: dict = {}
    for i in range(args.runs):
        load = os.getloadavg()[0]
        wall, cpu, report = run_once(args.path, args.no_kustomize)
        walls.append(wall)
        cpus.append(cpu)
        print(f"run {i + 1}: wall {wall:.1f} s, cpu {cpu:.1f} s, load average before {load:.1f}", flush=True)
    summary = report["summary"]
    print(f"{args.path}: {report['files_scanned']} YAML files, {summary['total']} findings "
          f"({summary['error']} errors, {summary['warning']} warnings)")
    print(f"median wall {statistics.median(walls):.1f} s, median cpu {statistics.median(cpus):.1f} s over "
          f"{args.runs} runs; {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"kustomize {'off' if args.no_kustomize else 'on'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
