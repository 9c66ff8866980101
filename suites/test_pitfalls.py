"""The Common Pitfalls audit of the team's own GitOps repository (`--audit-repo PATH`),
reported as the optional item `pitfalls`. Without --audit-repo it is deselected (the contract's
`enabled_by`) and the item is left out of the report (it is not one of the eleven Validation items)."""
from __future__ import annotations

import pytest

from gitops_conformance.suites import pitfalls_checks

pytestmark = pytest.mark.validation("pitfalls")


def test_gitops_repository_has_no_error_findings(settings, record_check, record_evidence):
    report = pitfalls_checks.no_error_findings(settings.audit_repo)
    record_evidence("audit-findings", report.to_text())
    for f in report.findings:  # warnings stay visible in the report; errors failed above
        record_check(f"{f.rule} {f.file}:{f.line}", "no finding", f"{f.severity}: {f.message}", True, f.remediation)
