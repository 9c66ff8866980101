"""`--audit-repo PATH` adds the optional item `pitfalls` to the conformance report; without it
the item is left out (it is not one of the eleven Validation items)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REPOS = ROOT / "tests" / "audit_repos"


def _run(tmp_path: Path, *args: str) -> tuple[int, dict]:
    report = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "pytest", "suites/test_pitfalls.py", "-p", "no:cacheprovider",
                           "--report-dir", str(report), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    return proc.returncode, json.loads((report / "conformance.json").read_text())


@pytest.mark.parametrize("repo, status, code", [("clean", "pass", 0), ("prune-disabled", "fail", 1)])
def test_audit_repo_is_reported_as_item_pitfalls(tmp_path, repo, status, code):
    rc, report = _run(tmp_path, "--audit-repo", str(REPOS / repo))
    assert rc == code
    assert report["items"]["pitfalls"]["status"] == status
    assert report["verdict"] == "NOT CERTIFIED"  # the eleven items did not run
    if status == "fail":
        assert any("prune-disabled" in c["name"] for t in report["items"]["pitfalls"]["tests"] for c in t["checks"])


def test_without_audit_repo_the_item_is_left_out(tmp_path):
    rc, report = _run(tmp_path)
    assert rc == pytest.ExitCode.NO_TESTS_COLLECTED  # its one test deselected, never skipped
    assert "pitfalls" not in report["items"]
