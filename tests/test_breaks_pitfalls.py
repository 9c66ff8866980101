"""Self-test: the pitfalls check fails on a repository with a Common Pitfall (prune disabled),
naming the rule, the file and the fix."""
from __future__ import annotations

from pathlib import Path

import pytest

from gitops_conformance.suites import pitfalls_checks
from tests.breaking import fails_within

REPOS = Path(__file__).resolve().parent / "audit_repos"


@pytest.mark.breaks("suites.pitfalls_checks.no_error_findings")
def test_prune_disabled_repository_fails_the_pitfalls_check():
    message = fails_within(pitfalls_checks.no_error_findings, REPOS / "prune-disabled", bound=30)
    assert "prune-disabled" in message and "error finding" in message
    assert "prune: true" in message  # the pitfall's fix, as remediation


def test_clean_repository_passes():
    assert pitfalls_checks.no_error_findings(REPOS / "clean").findings is not None
