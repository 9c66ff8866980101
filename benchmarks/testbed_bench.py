"""Testbed figures: cold build time per component, warm `up` / `down` time, idle memory.

    python -m benchmarks.testbed_bench [--runs 3] [--idle 20] [--state-root DIR] [--engine argocd|flux]

A script, not a test. Cold build times are not re-measured (that takes many minutes
and the network): they are the `build_seconds` each real build on this machine wrote
into ~/.cache/gitops-conformance/bin/<component>-<version>/.built.json. Everything else
is measured now, in fresh state dirs under a temporary directory, and every testbed it
starts is stopped in a `finally`.

RSS is VmRSS from /proc/<pid>/status, summed per component over the process group its
leader heads (the Supervisor starts each component in a session of its own) plus any
descendant that left the group; shared pages are counted once per process, so the sum
is an upper bound of the real footprint.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from gitops_conformance.testbed import versions  # noqa: E402
from gitops_conformance.testbed.stack import Testbed  # noqa: E402


def _proc_table() -> dict[int, tuple[int, int, int, str]]:
    """pid -> (ppid, pgid, rss_kib, comm) of every live, non-zombie process."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            status = (d / "status").read_text()
        except OSError:
            continue
        comm = stat.split("(", 1)[1].rsplit(")", 1)[0]
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        rss = next((int(l.split()[1]) for l in status.splitlines() if l.startswith("VmRSS:")), 0)
        out[int(d.name)] = (int(fields[1]), int(fields[2]), rss, comm)
    return out


def component_rss(pids: dict[str, int]) -> dict[str, tuple[int, int]]:
    """component -> (rss KiB, number of processes), its group plus descendants."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    result = {}
    for name, leader in pids.items():
        members = {p for p, (_, pgid, _, _) in table.items() if pgid == leader}
        stack = [leader]
        while stack:  # descendants that started a session of their own
            p = stack.pop()
            for c in children.get(p, []):
                if c not in members:
                    members.add(c)
                stack.append(c)
        members &= set(table)
        result[name] = (sum(table[p][2] for p in members), len(members))
    return result


def _meminfo_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _foreign_testbed_processes(own_root: Path) -> int:
    """Processes running testbed binaries that are not ours (they skew the timings)."""
    bin_root = str(versions.cache_root() / "bin")
    n = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if bin_root in cmd and str(own_root) not in cmd:
            n += 1
    return n


def _go_version() -> str:
    go = shutil.which("go")
    if not go:
        return "(no go on PATH)"
    try:
        return subprocess.run([go, "version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def header() -> None:
    print(f"date      {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')}")
    print(f"machine   {os.cpu_count()} CPU(s) ({_cpu_model()}), {_meminfo_gib():.1f} GiB memory, "
          f"{platform.system()} {platform.release()}, Python {platform.python_version()}")
    print(f"go        {_go_version()}")
    comps = versions.load()
    print("versions  " + ", ".join(f"{c.name} {c.version}" for c in comps.values()))


def cold_builds() -> None:
    print("\ncold build time per component (build_seconds from .built.json, real builds on this machine)")
    print(f"  {'component':<15} {'version':<10} {'build s':>8}  built at")
    total = 0.0
    for comp in versions.load().values():
        stamp = versions.bin_dir(comp) / ".built.json"
        if not stamp.exists():
            print(f"  {comp.name:<15} {comp.version:<10} {'-':>8}  not built")
            continue
        data = json.loads(stamp.read_text())
        secs = float(data.get("build_seconds", 0))
        total += secs
        print(f"  {comp.name:<15} {comp.version:<10} {secs:>8.1f}  {data.get('built_at', '?')[:19]}")
    print(f"  {'total':<15} {'':<10} {total:>8.1f}  ({total / 60:.1f} min, sequential)")


def warm_runs(runs: int, idle: float, root: Path, engine: str = "argocd") -> None:
    ups, downs, totals = [], [], []
    last_table: dict[str, tuple[int, int]] = {}
    foreign = _foreign_testbed_processes(root)
    for i in range(runs):
        tb = Testbed(root / f"run{i}", out=lambda line: None, engine=engine)
        try:
            t0 = time.monotonic()
            tb.up()
            ups.append(time.monotonic() - t0)
            time.sleep(idle)
            last_table = component_rss(tb.sup.pids())
            totals.append(sum(r for r, _ in last_table.values()))
        finally:
            t1 = time.monotonic()
            tb.down(quiet=True)
            downs.append(time.monotonic() - t1)
        print(f"  run {i + 1}: up {ups[-1]:.1f}s, idle RSS {totals[-1] / 1024:.0f} MiB, down {downs[-1]:.1f}s",
              flush=True)
    print(f"\nwarm up (binaries cached), {runs} runs in fresh state dirs: "
          f"median {statistics.median(ups):.1f}s (min {min(ups):.1f}, max {max(ups):.1f})")
    print(f"down: median {statistics.median(downs):.1f}s (min {min(downs):.1f}, max {max(downs):.1f})")
    print(f"idle RSS ~{idle:.0f}s after up, all components: median {statistics.median(totals) / 1024:.0f} MiB "
          f"(runs: {', '.join(f'{t / 1024:.0f}' for t in totals)} MiB)")
    if foreign:
        print(f"note: {foreign} testbed process(es) of another testbed were running during the measurement")
    print(f"\nper-component RSS, last run ({len(last_table)} components)")
    print(f"  {'component':<31} {'RSS MiB':>8} {'procs':>6}")
    for name, (rss, n) in sorted(last_table.items(), key=lambda kv: -kv[1][0]):
        print(f"  {name:<31} {rss / 1024:>8.1f} {n:>6}")
    print(f"  {'total':<31} {sum(r for r, _ in last_table.values()) / 1024:>8.1f} "
          f"{sum(n for _, n in last_table.values()):>6}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="warm up/down runs (default 3)")
    ap.add_argument("--idle", type=float, default=20.0, help="seconds after up before RSS is read (default 20)")
    ap.add_argument("--state-root", default=None, help="where the fresh state dirs go (default: a new temp dir)")
    ap.add_argument("--engine", choices=["argocd", "flux"], default="argocd", help="the engine the testbed runs")
    args = ap.parse_args(argv)
    root = Path(args.state_root or tempfile.mkdtemp(prefix="testbed-bench-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    header()
    cold_builds()
    print(f"\nwarm runs, engine {args.engine} (state under {root})")
    warm_runs(args.runs, args.idle, root, args.engine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
