"""Shared by the benchmarks that time the suites on a warm testbed: the header they print and
the testbed they run against (given, or started once and stopped at the end)."""
from __future__ import annotations

import contextlib
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator


def print_header() -> None:
    print(f"date     {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(f"machine  {os.cpu_count()} CPU(s), {platform.platform()}, Python {platform.python_version()}",
          flush=True)


def pytest_argv(state_dir: Path, report_dir: Path | str, *args: str) -> list[str]:
    """`python -m pytest ARGS` against the warm testbed, its report in `report_dir`."""
    import sys

    return [sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider",
            "--reuse-testbed", str(state_dir), "--report-dir", str(report_dir)]


def report_outcome(report_dir: Path | str) -> str | None:
    """A run's verdict, declared checks passed and the items that did not pass, from its
    conformance.json; None when it wrote none."""
    import json

    try:
        data = json.loads((Path(report_dir) / "conformance.json").read_text())
        declared = [c for i in data["items"].values() for c in i["declared_checks"]]
        passed = sum(c["status"] in ("pass", "warn") for c in declared)
        bad = [f"{n}={i['status']}" for n, i in data["items"].items() if i["status"] not in ("pass", "warn")]
    except (OSError, KeyError, ValueError):
        return None
    return f"{data['verdict']}, {passed}/{len(declared)} declared checks passed" + (f" ({', '.join(bad)})" if bad else "")


@contextlib.contextmanager
def warm_testbed(given: Path | None, prefix: str) -> Iterator[Path]:
    """The state dir of a running testbed: `given` as it is, else one started now and stopped after."""
    from gitops_conformance.testbed.stack import Testbed

    state = given or Path(tempfile.mkdtemp(prefix=prefix))
    tb = Testbed(state, out=lambda line: None)
    started = not tb.is_up()
    try:
        if started:
            tb.up()
        yield state
    finally:
        if started:
            tb.down(quiet=True)
        if given is None:  # ours: its etcd data, logs and certificates go too (also after Ctrl-C)
            shutil.rmtree(state, ignore_errors=True)
