"""Findings into a report: one per problem, in file order, as text or JSON.

Secret values are masked only where a finding quotes an external tool (kustomize's stderr):
rule messages never contain values, and masking the whole output would turn a common word into
`***` in rule texts, file names and JSON fields. The JSON structure is built from the masked
findings, never rewritten as text.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace

from gitops_conformance.audit.masking import MASK, Masker
from gitops_conformance.audit.model import ERROR, WARNING, Finding

__all__ = ["MASK", "Report", "TOOL_OUTPUT_RULES"]

# findings whose message quotes an external tool's output
TOOL_OUTPUT_RULES = frozenset({"kustomize-build-error"})
NOT_APPLICABLE = "not applicable: no Argo CD objects"


@dataclass
class Report:
    findings: list[Finding]
    files_scanned: int
    applicable: bool = True

    @classmethod
    def build(cls, findings: list[Finding], files_scanned: int, sensitive: set[str] | frozenset[str] = frozenset(),
              applicable: bool = True) -> "Report":
        """De-duplicate (one finding per rule and object: overlays rendering one base report it once;
        the first in file order wins), sort by file, line, rule, and mask tool output."""
        masker = Masker(sensitive)
        unique: dict[tuple, Finding] = {}
        for f in sorted(findings, key=lambda f: (f.file, f.line, f.rule)):
            if masker and f.rule in TOOL_OUTPUT_RULES:
                f = replace(f, message=masker.mask(f.message))
            unique.setdefault(f.key(), f)
        return cls(list(unique.values()), files_scanned, applicable)

    @property
    def exit_code(self) -> int:
        return 1 if any(f.severity == ERROR for f in self.findings) else 0

    def summary(self) -> dict:
        by_rule: dict[str, int] = {}
        for f in self.findings:
            by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
        return {"total": len(self.findings),
                "error": sum(f.severity == ERROR for f in self.findings),
                "warning": sum(f.severity == WARNING for f in self.findings),
                "by_rule": dict(sorted(by_rule.items())),
                "exit_code": self.exit_code}

    def to_json(self) -> str:
        data = {"findings": [f.to_dict() for f in self.findings], "summary": self.summary(),
                "files_scanned": self.files_scanned, "applicable": self.applicable}
        if not self.applicable:
            data["note"] = NOT_APPLICABLE
        return json.dumps(data, indent=2)

    def to_text(self) -> str:
        lines = []
        for f in self.findings:
            origin = f" (defined in {f.origin})" if f.origin else ""
            lines.append(f"{f.severity.upper()} {f.rule} {f.file}:{f.line} {f.message}{origin}")
            lines.append(f"  remediation: {f.remediation}")
        s = self.summary()
        scanned = f"{self.files_scanned} YAML file(s) scanned"
        if not self.applicable:
            lines.append(f"{NOT_APPLICABLE}; {s['total']} finding(s) reading the files; {scanned}")
        elif s["total"]:
            lines.append(f"{s['total']} finding(s): {s['error']} error(s), {s['warning']} warning(s); {scanned}")
        else:
            lines.append(f"no findings; {scanned}")
        return "\n".join(lines) + "\n"
