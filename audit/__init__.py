"""The Common Pitfalls audit: static analysis of a GitOps repository, no cluster needed.

    from gitops_conformance.audit import audit
    report = audit("path/to/repo")      # loader -> rules -> report
    print(report.to_text()); sys.exit(report.exit_code)
"""
from __future__ import annotations

import os
from typing import Any

from gitops_conformance.audit import loader, rules
from gitops_conformance.audit.report import Report

__all__ = ["audit", "Report"]


def audit(path: str | os.PathLike, kustomize: Any = loader.AUTO) -> Report:
    """Audit the repository at `path` (a directory). `kustomize`: binary path, None to not render.
    A repository without Argo CD (or Flux) objects is reported not applicable: only problems
    reading its files are findings."""
    repo = loader.load(path, kustomize=kustomize)
    applicable = bool(rules.engines(repo))
    findings = repo.problems + (rules.run_all(repo) if applicable else [])
    return Report.build(findings, repo.files_scanned, repo.sensitive, applicable)
