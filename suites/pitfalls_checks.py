"""Checks for the optional item `pitfalls`: the Common Pitfalls audit of the team's repository."""
from __future__ import annotations

from pathlib import Path

from gitops_conformance.audit import audit
from gitops_conformance.fixtures import checks


def no_error_findings(repo: Path):
    """Audit the repository; no finding of error severity may remain. Returns the audit report."""
    report = audit(repo)
    errors = [f for f in report.findings if f.severity == "error"]
    checks.expect(
        not errors, what=f"Common Pitfalls audit of {repo}", expected="no error-severity finding",
        observed=f"{len(errors)} error finding(s): "
                 + "; ".join(f"{f.rule} at {f.file}:{f.line}: {f.message}" for f in errors[:10]),
        remediation=" ".join(dict.fromkeys(f.remediation for f in errors if f.remediation)),
        evidence={"audit-findings": report.to_text()})
    return report
