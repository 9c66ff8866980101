"""pytest plugin: renders report.html and summary.md once the harness has written conformance.json
(the harness's hook fixtures/hookspecs.py pytest_conformance_report_written; it never imports this
layer)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from gitops_conformance.redact import redact
from gitops_conformance.reports import render


def pytest_conformance_report_written(report_dir: Path, say: Callable[[str], None]) -> None:
    try:
        render.render_all(report_dir)
    except Exception as exc:  # noqa: BLE001 - conformance.json is written; say what is missing
        render.remove_outputs(report_dir)  # never leave an earlier run's report.html next to this run's json
        say(f"gitops-conformance: rendering the report failed: {type(exc).__name__}: {redact(str(exc))}")
